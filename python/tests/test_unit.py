"""The lookup's arithmetic and the readers, without the kvr program."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import kvrun
from kvrun.lookup import grain, llround, round_fractions


def rows(*specs: tuple, model_hash: str = "a" * 16) -> list:
    return [kvrun.Row("m", "h", len(t), "kvr", "hier", 64, sum(t), 1.0 + i, tuple(t),
                      model_hash=model_hash, machine_hash="b" * 16)
            for i, t in enumerate(specs)]


def test_llround_halves_away_from_zero() -> None:
    assert [llround(x) for x in (0.5, 1.5, 2.5, 2.4999999999999996, 0.49999999999999994)] == [1, 2, 3, 2, 0]


def test_grain_falls_back_to_one_token() -> None:
    assert grain(4, 255, 64) == 1 and grain(4, 256, 64) == 64


def test_rounding_sums_to_ctx_and_keeps_chunks() -> None:
    for ctx in (4, 100, 1000, 12345):
        t = round_fractions([0.97, 0.01, 0.01, 0.01], ctx, 64)
        assert sum(t) == ctx and all(x >= 1 for x in t)


def test_exact_interpolated_clamped() -> None:
    t = kvrun.Table(rows((512, 512), (1024, 1024)))
    assert t.lookup("m", "h", 2, 1024).exact
    a = t.lookup("m", "h", 2, 1536)
    assert a.method == "interpolated" and sum(a.tokens) == 1536 and a.neighbours == (1024, 2048)
    with pytest.raises(kvrun.OutOfRange):
        t.lookup("m", "h", 2, 4096)
    assert t.lookup("m", "h", 2, 4096, clamp=True).clamped


def test_predicted_ttft_stored_interpolated_or_none_when_clamped() -> None:
    t = kvrun.Table(rows((512, 512), (1024, 1024)))  # stored 1.0 s at 1024, 2.0 s at 2048
    assert t.lookup("m", "h", 2, 1024).predicted_ttft_s == 1.0
    assert t.lookup("m", "h", 2, 1536).predicted_ttft_s == pytest.approx(1.5)
    # the end row's 2.0 s is not 4096's: no estimate rather than a wrong one
    assert t.lookup("m", "h", 2, 4096, clamp=True).predicted_ttft_s is None
    assert t.lookup("m", "h", 2, 256, clamp=True).predicted_ttft_s is None


def test_two_definitions_under_one_name_need_the_hash() -> None:
    t = kvrun.Table(rows((512, 512)) + rows((600, 424), model_hash="c" * 16))
    with pytest.raises(kvrun.LookupError_, match="more than one definition"):
        t.lookup("m", "h", 2, 1024)
    assert t.lookup("m", "h", 2, 1024, model_hash="c" * 16).tokens == (600, 424)


def test_bad_rows_are_refused() -> None:
    with pytest.raises(kvrun.LookupError_, match="sums to"):
        kvrun.Row("m", "h", 2, "kvr", "hier", 64, 1000, 1.0, (500, 400))
    with pytest.raises(kvrun.LookupError_, match="mapping"):
        kvrun.Row("m", "h", 2, "kvr", "hier", 64, 1000, 1.0, (500, 500), mapping=(1, 1))


def test_format_1_csv_still_reads(tmp_path: Path) -> None:
    f = tmp_path / "t1.csv"
    f.write_text("# kvrun lookup table, format 1\n"
                 "model,machine,p,scheme,method,granularity_tokens,ctx_tokens,predicted_ttft_s,partition_tokens\n"
                 "m,h,2,kvr,hier,64,1024,0.1,512;512\nm,h,2,kvr,hier,64,2048,0.2,1088;960\n")
    a = kvrun.Table.load(f).lookup("m", "h", 2, 1536)
    assert sum(a.tokens) == 1536 and not a.exact


def test_newer_format_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "t3.csv"
    f.write_text("# kvrun lookup table, format 3\n")
    with pytest.raises(kvrun.LookupError_, match="format 3"):
        kvrun.Table.load(f)


def test_ranges_cover_the_prompt() -> None:
    t = kvrun.Table(rows((300, 250, 250, 224), (600, 500, 500, 448)))
    r = kvrun.token_ranges(t, "m", "h", 1500, 4)
    assert [x.start for x in r] == [0] + [x.end for x in r[:-1]] and r[-1].end == 1500
    assert [x.gpu for x in r] == [0, 1, 2, 3]
    planner = kvrun.PrefillPlanner(t, "m", "h", min_tokens_per_rank=1000)
    assert len(planner.plan(1500, 4)) == 1  # too short for 4 ranks of >= 1000 tokens


def test_hybrid_layout_rows() -> None:
    """A row of tp_degree t: p / t chunks (one per stage), each stage's range on its t GPUs;
    the plain rows of the same key stay apart (tp = 1), and a t not dividing p is refused."""
    lay = [kvrun.Row("m", "h", 4, "kvr", "hier", 64, sum(t), 1.0 + i, tuple(t), model_hash="a" * 16,
                     machine_hash="b" * 16, mapping=(0, 2, 1, 3), tp_degree=2)
           for i, t in enumerate(((1024, 1024), (2048, 2048)))]
    t = kvrun.Table(lay + rows((512, 512, 512, 512)))
    a = t.lookup("m", "h", 4, 3072, tp=2)
    assert a.tp == 2 and len(a.tokens) == 2 and sum(a.tokens) == 3072
    r = kvrun.ranges_of(a)
    assert [x.gpu for x in r] == [0, 2, 1, 3] and r[0].start == r[1].start == 0
    assert r[2].start == r[3].start == a.tokens[0] and r[3].end == 3072
    assert t.lookup("m", "h", 4, 2048).tp == 1 and len(t.lookup("m", "h", 4, 2048).tokens) == 4
    with pytest.raises(kvrun.LookupError_):
        kvrun.Row("m", "h", 4, "kvr", "hier", 64, 2048, 1.0, (1024, 1024), tp_degree=3)
    with pytest.raises(kvrun.LookupError_):  # a layout's row with p chunks
        kvrun.Row("m", "h", 4, "kvr", "hier", 64, 2048, 1.0, (512,) * 4, tp_degree=2)


_JROW = {"format_version": 2, "model": "m", "model_hash": "a" * 16, "machine": "h",
         "machine_hash": "b" * 16, "p": 2, "tp_degree": 1, "scheme": "kvr", "method": "hier",
         "objective": "mean", "objective_trials": 1, "granularity_tokens": 64,
         "ctx_tokens": 1024, "predicted_ttft_s": 0.1, "partition_tokens": [512, 512],
         "mapping": [0, 1], "simulator_version": "t", "searched_unix_s": 0}


def _jdoc(rows: list) -> dict:
    """A format 2 JSON document with every field its schema requires (no definitions)."""
    return {"format": "kvrun-lookup-table", "format_version": 2, "generator": "test",
            "created_utc": "2026-01-01T00:00:00Z", "created_unix_s": 0,
            "partition_meaning": "tokens per chunk",
            "interpolation": {"rule": "linear-fractions", "description": "linear"},
            "layout": {"tp_degree": 1, "mapping": "identity"}, "models": [], "machines": [],
            "rows": rows}


def test_json_counts_are_integers(tmp_path: Path) -> None:
    """A JSON row's counts are exact integers: 512.5 (which sums to ctx with 511.5), true or
    "512" are refused by field, never served (the schema says integer)."""
    import json
    row = dict(_JROW)
    doc = _jdoc([row])
    assert kvrun.Table.from_document(doc).lookup("m", "h", 2, 1024).tokens == (512, 512)
    for field, bad in (("partition_tokens", [512.5, 511.5]), ("ctx_tokens", 1024.0),
                       ("p", True), ("granularity_tokens", "64"), ("mapping", [0, 1.0]),
                       ("predicted_ttft_s", "0.1"), ("format_version", 3)):
        d = json.loads(json.dumps(doc))
        d["rows"][0][field] = bad
        with pytest.raises(kvrun.LookupError_, match=field):
            kvrun.Table.from_document(d)
    with pytest.raises(kvrun.LookupError_, match="format_version True is a bool, not an integer"):
        kvrun.Table.from_document(dict(doc, format_version=True))


def test_ctx_must_be_an_integer() -> None:
    t = kvrun.Table(rows((512, 512), (1024, 1024)))
    for bad in (1536.5, 1536.0, "1536", True):
        with pytest.raises(kvrun.LookupError_, match="not"):
            t.lookup("m", "h", 2, bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("clamp", [False, True])
@pytest.mark.parametrize("ctx", [0, -1, -1024, 4194305, 2**64 + 1536])
def test_ctx_outside_kvrs_range_is_refused(ctx: int, clamp: bool) -> None:
    """ctx < 1 or > 4194304 (kvr's cap on --ctx) is refused, clamp or not (clamp had served
    4194305 and 2**64 + 1536 the end row's split)."""
    t = kvrun.Table(rows((512, 512), (1024, 1024)))
    with pytest.raises(kvrun.LookupError_, match=rf"ctx {ctx} is outside 1\.\.4194304"):
        t.lookup("m", "h", 2, ctx, clamp=clamp)
    planner = kvrun.PrefillPlanner(t, "m", "h")
    with pytest.raises(kvrun.LookupError_, match=rf"prompt_tokens {ctx} is outside"):
        planner.plan(ctx, 2)
    assert t.lookup("m", "h", 2, 4194304, clamp=True).clamped


@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("prompt", [0, -5])
def test_planner_refuses_empty_prompts(prompt: int, p: int) -> None:
    """plan() had answered a prompt of 0 or -5 tokens (p = 1: one range [0, -5))."""
    planner = kvrun.PrefillPlanner(kvrun.Table(rows((512, 512), (1024, 1024))), "m", "h",
                                   min_tokens_per_rank=100)
    with pytest.raises(kvrun.LookupError_, match=f"prompt_tokens {prompt} is outside"):
        planner.plan(prompt, p)


@pytest.mark.parametrize("p", [0, -1, True, 2.0])
def test_planner_refuses_p_below_one(p: object) -> None:
    """plan() had answered p = 0 and -1 with one range (the min_tokens_per_rank fallback)."""
    planner = kvrun.PrefillPlanner(kvrun.Table(rows((512, 512), (1024, 1024))), "m", "h",
                                   min_tokens_per_rank=100)
    with pytest.raises(kvrun.LookupError_, match="is not a number of ranks >= 1"):
        planner.plan(1024, p)  # type: ignore[arg-type]
    assert len(kvrun.PrefillPlanner(planner.table, "m", "h").plan(1024, 1)) == 1


def test_mapping_onto_gpus_of_a_bigger_machine() -> None:
    """A chain of 4 on GPUs 7, 6, 5, 4 of an 8-GPU node (what the search stores around a slow
    link) is a row like any other; two chunks on one GPU is not. Each answer runs on the lower
    neighbour's GPUs (the exact row's, the end row's when clamped), as kvr lookup answers."""
    spec = ((512, 512, 512, 512), (1024, 1024, 1024, 1024), (2048,) * 4)
    maps = ((0, 1, 2, 3), (7, 6, 5, 4), (3, 2, 1, 0))
    rs = [kvrun.Row("m", "h", 4, "kvr", "hier", 64, sum(t), 1.0 + i, t, model_hash="a" * 16,
                    machine_hash="b" * 16, mapping=m) for i, (t, m) in enumerate(zip(spec, maps))]
    t = kvrun.Table(rs)
    assert t.lookup("m", "h", 4, 2048).mapping == (0, 1, 2, 3)
    assert t.lookup("m", "h", 4, 4096).mapping == (7, 6, 5, 4)
    assert t.lookup("m", "h", 4, 5000).mapping == (7, 6, 5, 4)
    assert t.lookup("m", "h", 4, 8192).mapping == (3, 2, 1, 0)
    assert t.lookup("m", "h", 4, 9000, clamp=True).mapping == (3, 2, 1, 0)
    assert [r.gpu for r in kvrun.ranges_of(t.lookup("m", "h", 4, 5000))] == [7, 6, 5, 4]
    with pytest.raises(kvrun.LookupError_, match="distinct"):
        kvrun.Row("m", "h", 4, "kvr", "hier", 64, 2048, 1.0, (512,) * 4, mapping=(7, 6, 6, 4))
    with pytest.raises(kvrun.LookupError_, match="distinct"):
        kvrun.Row("m", "h", 4, "kvr", "hier", 64, 2048, 1.0, (512,) * 4, mapping=(0, 1, 2))


def _store_v9(c: sqlite3.Connection) -> None:
    """The tables of a version-9 kvrun store that the package reads, empty."""
    c.execute(f"PRAGMA application_id = {0x4B565231}")  # kvrun's store
    c.execute("PRAGMA user_version = 9")
    c.execute("CREATE TABLE plan (model, machine, p, scheme, method, granularity_tokens, "
              "ctx_tokens, predicted_ttft_s, partition_tokens, model_hash, machine_hash, mapping, "
              "tp, stale, kv_forward DEFAULT 'whole')")
    c.execute("CREATE TABLE definition (kind, hash, name, canonical_text, provenance)")


@pytest.mark.parametrize("folder", ["a #1?x", "p%41", "sp ace"])
def test_sqlite_path_with_uri_characters(tmp_path: Path, folder: str) -> None:
    """A database under a folder whose name holds '#', '?' or '%' is read as that file (it
    opened another name, and created an empty database there)."""
    import sqlite3
    d = tmp_path / folder
    d.mkdir()
    db = d / "plans.db"
    c = sqlite3.connect(db)
    _store_v9(c)
    c.execute("INSERT INTO plan VALUES ('m', 'h', 2, 'kvr', 'hier', 64, 1024, 0.1, '576;448', "
              "'aaaaaaaaaaaaaaaa', 'bbbbbbbbbbbbbbbb', NULL, 1, 0, 'whole')")
    c.commit()
    c.close()
    before = sorted(p.name for p in tmp_path.iterdir())
    assert kvrun.Table.load(db).lookup("m", "h", 2, 1024).tokens == (576, 448)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_only_stale_rows_say_so(tmp_path: Path) -> None:
    """A database whose rows of a key are all stale (or from before content hashes) refuses the
    query saying so, as kvr lookup does, instead of a bare "no rows"."""
    import sqlite3
    db = tmp_path / "s.db"
    c = sqlite3.connect(db)
    _store_v9(c)
    c.execute("INSERT INTO plan VALUES ('m', 'h', 2, 'kvr', 'hier', 64, 1024, 0.1, '576;448', "
              "'aaaaaaaaaaaaaaaa', 'bbbbbbbbbbbbbbbb', NULL, 1, 1, 'whole')")
    c.execute("INSERT INTO plan VALUES ('m', 'h', 2, 'kvr', 'hier', 64, 2048, 0.2, '1088;960', "
              "'', '', NULL, 1, 0, 'whole')")
    c.commit()
    c.close()
    with pytest.raises(kvrun.LookupError_, match="only 2 stale rows"):
        kvrun.Table.load(db).lookup("m", "h", 2, 1024)
    with pytest.raises(kvrun.LookupError_, match="no rows for m on h, p = 4$"):
        kvrun.Table.load(db).lookup("m", "h", 4, 1024)


_CSV2 = ("format_version,model,model_hash,machine,machine_hash,p,tp_degree,scheme,method,objective,"
         "objective_trials,granularity_tokens,ctx_tokens,predicted_ttft_s,partition_tokens,mapping\n"
         "2,m,0123456789abcdef,h,fedcba9876543210,2,1,kvr,hier,mean,1,64,1024,0.1,576;448,0;1\n")
_ROW2 = "2,m,0123456789abcdef,h,fedcba9876543210,2,1,kvr,hier,mean,1,64,2048,0.2,1088;960,0;1"


@pytest.mark.parametrize("bad, says", [
    (_ROW2 + "\n" + _ROW2.replace("1088;960", "1000;1048"), "two rows for model m"),
    (_ROW2.replace(",0.2,", ",nan,"), "predicted_ttft_s 'nan'"),
    (_ROW2.replace(",0.2,", ",-1,"), "predicted_ttft_s '-1'"),
    (_ROW2.replace(",0.2,", ",0,"), "predicted_ttft_s 0.0 is not a finite time > 0"),
    (_ROW2 + ",junk", "expected 16 fields"),
    (_ROW2.rsplit(",", 1)[0], "expected 16 fields"),
    (_ROW2.replace(",2048,", ",2_048,"), "ctx '2_048'"),
    (_ROW2.replace(",2048,", ", 2048,"), "ctx ' 2048'"),
    (_ROW2.replace(",64,", ",+64,"), "granularity '\\+64'"),
    (_ROW2.replace("1088;960", "1_088;960"), "1_088;960"),
    (_ROW2.replace("2,m,", "2,,", 1), "model, machine, scheme and method must be set"),
    (_ROW2.replace("0123456789abcdef", "xyz"), "model_hash 'xyz'"),
    # objective and trials as libkvr_lookup's is_objective (they had been read and ignored)
    (_ROW2.replace(",mean,1,", ",bogus,1,"), "objective 'bogus' over 1 trials"),
    (_ROW2.replace(",mean,1,", ",p0,1,"), "objective 'p0'"),
    (_ROW2.replace(",mean,1,", ",p101,1,"), "objective 'p101'"),
    (_ROW2.replace(",mean,1,", ",p.5,1,"), "objective 'p.5'"),
    (_ROW2.replace(",mean,1,", ",p9.5.5,1,"), "objective 'p9.5.5'"),
    (_ROW2.replace(",mean,1,", ",p1e1,1,"), "objective 'p1e1'"),
    (_ROW2.replace(",mean,1,", ",p,1,"), "objective 'p'"),
    (_ROW2.replace(",mean,1,", ",mean,0,"), "over 0 trials"),
    (_ROW2.replace(",mean,1,", ",mean,-1,"), "over '-1' trials"),
    (_ROW2.replace(",mean,1,", ",mean,1.5,"), "over '1.5' trials"),
    (_ROW2.replace(",mean,1,", ",mean,x,"), "over 'x' trials"),
    (_ROW2.replace(",mean,1,", ",mean,18446744073709551616,"), "over '18446744073709551616'"),
    (_ROW2.replace(",2048,", ",18446744073709551616,"), "ctx '18446744073709551616'"),
    (_ROW2.replace("2,m,", "2,m\0,", 1), ":3: a NUL byte"),
    pytest.param(_ROW2 + "," + "x" * (1 << 20), ":3: a line of", id="line of 1 MiB"),
])
def test_csv_refuses_what_the_c_library_refuses(tmp_path: Path, bad: str, says: str) -> None:
    """A CSV row libkvr_lookup refuses (a second row of one key and context, a TTFT that is not
    a finite time > 0, a field too many or too few, a count int() would take but the C reader
    does not, an empty name, a bad hash) is refused here too, naming the file: never one of two
    answers, or an interpolation around a dropped row."""
    f = tmp_path / "t.csv"
    f.write_text(_CSV2 + bad + "\n")
    with pytest.raises(kvrun.LookupError_, match=f"^{f}.*{says}"):
        kvrun.Table.load(f)
    f.write_text(_CSV2 + _ROW2 + "\n")
    assert kvrun.Table.load(f).lookup("m", "h", 2, 2048).tokens == (1088, 960)


@pytest.mark.parametrize("objective, trials", [("bogus", 1), ("p0", 1), ("p101", 1), ("p.5", 1),
                                               (50, 1), ("mean", 0), ("mean", -1), ("mean", 1.5),
                                               ("mean", True), ("mean", "1")])
def test_json_objective_as_the_c_library(objective: object, trials: object) -> None:
    """A JSON row's objective and trials are checked as a CSV row's (they had been ignored)."""
    row = dict(_JROW, objective="p99", objective_trials=5)
    doc = _jdoc([row])
    assert kvrun.Table.from_document(doc).lookup("m", "h", 2, 1024).exact
    doc["rows"] = [dict(row, objective=objective, objective_trials=trials)]
    with pytest.raises(kvrun.LookupError_, match=r"rows\[0\].*objective"):
        kvrun.Table.from_document(doc)
    # format 1 (no schema) rows are checked too
    doc1 = {"format": "kvrun-lookup-table", "format_version": 1, "rows": doc["rows"]}
    with pytest.raises(kvrun.LookupError_, match=r"rows\[0\]: objective .* is not mean or pNN"):
        kvrun.Table.from_document(doc1)


@pytest.mark.parametrize("objective", ["mean", "p50", "p99.9", "p100", "p0.5", "p1."])
def test_csv_takes_the_objectives_the_c_library_takes(tmp_path: Path, objective: str) -> None:
    f = tmp_path / "t.csv"
    f.write_text(_CSV2 + _ROW2.replace(",mean,1,", f",{objective},7,") + "\n")
    assert kvrun.Table.load(f).lookup("m", "h", 2, 2048).tokens == (1088, 960)


def test_json_that_is_not_a_table_is_a_lookup_error(tmp_path: Path) -> None:
    """Broken JSON, bytes that are not UTF-8, NaN, a row or a definition that is not an object:
    LookupError_ naming the file (kvrun-lookup: exit 2), never a traceback (exit 1) or a NaN
    served; two rows of one key and context are refused as in a CSV."""
    import json
    row = dict(_JROW)
    doc = _jdoc([row])
    f = tmp_path / "t.json"
    cases = [(b'{"format":\n', "not JSON"), (b"{\xff}", "not UTF-8"), (b"\xff\xfe{", "not UTF-8"),
             (json.dumps(dict(doc, rows=[dict(row, predicted_ttft_s=float("nan"))])).encode(), "NaN"),
             (json.dumps(dict(doc, rows=["x"])).encode(), "rows\\[0\\]: str is not object"),
             (json.dumps(dict(doc, rows={})).encode(), "rows: dict is not array"),
             (json.dumps(dict(doc, models=[{}])).encode(), "models\\[0\\]: missing 'name'"),
             (json.dumps(dict(doc, rows=[row, dict(row, partition_tokens=[600, 424])])).encode(),
              "two rows for model m")]
    for text, says in cases:
        f.write_bytes(text)
        with pytest.raises(kvrun.LookupError_, match=f"^{f}.*{says}"):
            kvrun.Table.load(f)
    with pytest.raises(kvrun.LookupError_, match="not a kvrun lookup table"):
        kvrun.Table.from_document([doc])  # type: ignore[arg-type]
    f.write_text(json.dumps(doc))
    assert kvrun.Table.load(f).lookup("m", "h", 2, 1024).tokens == (512, 512)


def test_console_script_exits_2_on_a_broken_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from kvrun.__main__ import main
    f = tmp_path / "t.json"
    f.write_text('{"format":')
    assert main([str(f), "m", "h", "2", "1024"]) == 2
    assert "not JSON" in capsys.readouterr().err


@pytest.mark.parametrize("mutate, says", [
    (lambda d: d["interpolation"].update(rule="cubic"),
     "interpolation.rule: 'cubic' is not one of \\['linear-fractions'\\]"),
    (lambda d: d["rows"][0].pop("mapping"), "rows\\[0\\]: missing 'mapping'"),
    (lambda d: d["rows"][0].pop("tp_degree"), "rows\\[0\\]: missing 'tp_degree'"),
    (lambda d: d.pop("rows"), "no 'rows'"),
    (lambda d: d.update(format_version="2"), "format_version '2' is a str, not an integer"),
    (lambda d: d.pop("interpolation"), "missing 'interpolation'"),
    (lambda d: d["layout"].pop("tp_degree"), "layout: missing 'tp_degree'"),
    (lambda d: d["rows"][0].pop("objective"), "rows\\[0\\]: missing 'objective'"),
    (lambda d: d["machines"].append({"name": "h", "hash": "b" * 16}), "machines\\[0\\]: missing 'gpu'"),
    (lambda d: d.update(extra=1), "unexpected key 'extra'"),
])
def test_json_follows_its_schema(mutate: object, says: str) -> None:
    """A format 2 document is held to kvrun-lookup-table-2.schema.json: another interpolation
    rule had been served linearly, a row without mapping or tp_degree given the identity and
    t = 1, a document without rows read as an empty table, format_version "2" named as 2."""
    import copy
    doc = _jdoc([dict(_JROW), dict(_JROW, ctx_tokens=2048, partition_tokens=[1024, 1024])])
    assert kvrun.Table.from_document(doc).lookup("m", "h", 2, 1536).method == "interpolated"
    bad = copy.deepcopy(doc)
    mutate(bad)  # type: ignore[operator]
    with pytest.raises(kvrun.LookupError_, match=says):
        kvrun.Table.from_document(bad)


def test_the_packaged_schema_is_partitions(source_root: Path) -> None:
    """The schema the package ships is partition/'s, byte for byte."""
    from importlib import resources
    theirs = source_root / "partition" / "kvrun-lookup-table-2.schema.json"
    if not theirs.is_file():
        pytest.skip(f"{theirs}: not a source tree")
    ours = resources.files("kvrun") / "kvrun-lookup-table-2.schema.json"
    assert ours.read_bytes() == theirs.read_bytes()


def _cli_table(tmp_path: Path) -> Path:
    f = tmp_path / "t.csv"
    f.write_text(_CSV2 + _ROW2 + "\n")
    return f


@pytest.mark.parametrize("args, says", [
    (["2", "1536", "--tp", "1", "--tp", "2"], "--tp given twice"),
    (["2", "1536", "--scheme", "kvr", "--scheme=x"], "--scheme given twice"),
    (["2", "1536", "--clamp", "--clamp"], "--clamp given twice"),
    (["2", "1536", "--model-hash", "0123456789abcdef", "--model-hash", "x"], "--model-hash given twice"),
    (["2", "1_536"], "ctx '1_536' is not plain decimal digits"),
    (["2", " 1536"], "ctx ' 1536' is not plain decimal digits"),
    (["2", "+1536"], "ctx '+1536' is not plain decimal digits"),
    (["2", "-5"], "ctx '-5' is not plain decimal digits"),
    (["2", "0"], "ctx 0 is outside 1..4194304"),
    (["2", "4194305", "--clamp"], "ctx 4194305 is outside 1..4194304"),
    ([" 2", "1536"], "p ' 2' is not plain decimal digits"),
    (["2", "1536", "--tp", "0"], "--tp 0 is outside 1..64"),
    (["2", "1536", "--tp", "-1"], "--tp '-1' is not plain decimal digits"),
    (["2", "1536", "--cl"], "unrecognized arguments: --cl"),
])
def test_console_script_refuses_bad_options(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            args: list, says: str) -> None:
    """kvrun-lookup refuses an option given twice (it kept the last), a count int() takes but
    is not plain digits (' 1536', '1_536'), --tp 0 or -1, a context outside kvr's range."""
    from kvrun.__main__ import main
    f = _cli_table(tmp_path)
    assert main([str(f), "m", "h", "2", "1536"]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main([str(f), "m", "h", *args])
    assert e.value.code == 2 and says in capsys.readouterr().err


@pytest.mark.parametrize("args, says", [
    (["--scheme", "ring"], "scheme 'ring' (its rows have 'kvr')"),
    (["--method", "exhaustive"], "method 'exhaustive' (its rows have 'hier')"),
    (["--model-hash", "ffffffffffffffff"], "model_hash 'ffffffffffffffff' (its rows have '0123456789abcdef')"),
    (["--machine-hash", "ffffffffffffffff"], "machine_hash 'ffffffffffffffff'"),
])
def test_console_script_names_the_filter_that_left_no_rows(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list, says: str) -> None:
    from kvrun.__main__ import main
    assert main([str(_cli_table(tmp_path)), "m", "h", "2", "1536", *args]) == 2
    err = capsys.readouterr().err
    assert "no rows for m on h, p = 2" in err and says in err


# ---- helper-69's audit: the CSV reader reads a file as libkvr_lookup does, line for line ----

_CSV1 = ("# kvrun lookup table, format 1\n"
         "model,machine,p,scheme,method,granularity_tokens,ctx_tokens,predicted_ttft_s,partition_tokens\n"
         "m,h,2,kvr,hier,64,1024,0.1,512;512\n")


def test_csv_errors_name_the_files_line_past_blank_lines(tmp_path: Path) -> None:
    """csv.DictReader skipped blank lines and counted records: the bad row on line 5 was named
    as line 3."""
    f = tmp_path / "t.csv"
    f.write_text(_CSV2 + "\n\n" + _ROW2.replace(",mean,", ",meen,") + "\n")
    with pytest.raises(kvrun.LookupError_, match=f"^{f}:5: objective 'meen'"):
        kvrun.Table.load(f)
    f.write_text(_CSV2 + "\r\n\n" + _ROW2 + "\n")  # blank lines are skipped, as in C
    assert kvrun.Table.load(f).lookup("m", "h", 2, 2048).exact


@pytest.mark.parametrize("text, says", [
    # the csv module read "m"x as mx, and a quoted header as the header; C refuses both
    (_CSV2 + _ROW2.replace("2,m,", '2,"m"x,', 1), ":3: expected 16 fields"),
    ('"format_version"' + _CSV2[len("format_version"):], ":1: not a kvrun lookup table"),
    (_CSV1.replace("\nmodel,", '\n"model",'), ":2: expected the format 1 header"),
    # a quoted line break (C reads lines: an unclosed quote), and '\r' alone ending lines
    (_CSV2 + _ROW2.replace("2,m,", '2,"m\nx",', 1), ":3: expected 16 fields"),
    (_CSV2.replace("\n", "\r"), ":1: a format 2 header other than"),
    # format 1's first line is the magic and exactly "1" (" 1 " was read as 1 after strip())
    (_CSV1.replace("format 1\n", "format 1 \n"), ":1: # kvrun lookup table, format 1 ;"),
    # a byte-order mark is named (both readers said "not a kvrun lookup table")
    ("\ufeff" + _CSV2 + _ROW2 + "\n", ":1: a UTF-8 byte-order mark before the header"),
    ("\ufeff" + _CSV1, ":1: a UTF-8 byte-order mark before the header"),
])
def test_csv_dialect_is_the_c_librarys(tmp_path: Path, text: str, says: str) -> None:
    f = tmp_path / "t.csv"
    f.write_text(text, newline="")
    with pytest.raises(kvrun.LookupError_, match=f"^{f}{says}"):
        kvrun.Table.load(f)


def test_csv_takes_what_the_c_library_takes(tmp_path: Path) -> None:
    """A format_version of 02 is a count as C reads counts (it was refused); quoted fields and
    CRLF read as C reads them."""
    f = tmp_path / "t.csv"
    f.write_text((_CSV2 + "0" + _ROW2.replace("2,m,", '2,"m",', 1) + "\n").replace("\n", "\r\n"),
                 newline="")
    assert kvrun.Table.load(f).lookup("m", "h", 2, 2048).tokens == (1088, 960)


@pytest.mark.parametrize("ttft", ["1e301", "2e-308", "4.9e-324"])
def test_csv_time_as_the_c_library(tmp_path: Path, ttft: str) -> None:
    """C's parse_time refuses a time above 1e300 or below the smallest normal double (strtod's
    ERANGE); they were served here."""
    f = tmp_path / "t.csv"
    f.write_text(_CSV2 + _ROW2.replace(",0.2,", f",{ttft},") + "\n")
    with pytest.raises(kvrun.LookupError_, match=f"^{f}:3: predicted_ttft_s '{ttft}'"):
        kvrun.Table.load(f)


def test_mapping_gpu_ids_fit_the_c_librarys_int(tmp_path: Path) -> None:
    """GPU 2^31 was mapped here, and refused by libkvr_lookup (its mapping is int)."""
    f = tmp_path / "t.csv"
    f.write_text(_CSV2 + _ROW2.replace(",0;1", ",0;2147483648") + "\n")
    with pytest.raises(kvrun.LookupError_, match=f"^{f}:3: .*2147483648"):
        kvrun.Table.load(f)
    with pytest.raises(kvrun.LookupError_, match="2147483648"):
        kvrun.Row("m", "h", 2, "kvr", "hier", 64, 1024, 1.0, (512, 512), mapping=(0, 2**31))


def test_csv_not_utf8_names_the_line(tmp_path: Path) -> None:
    """from_csv raised UnicodeDecodeError (only load turned it into a LookupError_)."""
    f = tmp_path / "t.csv"
    f.write_bytes((_CSV2 + _ROW2.replace("2,m,", "2,m\xe9,", 1) + "\n").encode("latin-1"))
    with pytest.raises(kvrun.LookupError_, match=f"^{f}:3: not UTF-8"):
        kvrun.Table.from_csv(f)


@pytest.mark.parametrize("query, says", [
    (dict(p=2.0), "p 2.0 is not an integer"),
    (dict(p=True), "p True is not an integer"),
    (dict(p="2"), "p '2' is not an integer"),
    (dict(p=0), "p 0 is not an integer in 1..64"),
    (dict(p=65), "p 65 is not an integer in 1..64"),
    (dict(tp=True), "tp True is not an integer"),
    (dict(tp=1.0), "tp 1.0 is not an integer"),
    (dict(tp=0), "tp 0 is not an integer in 1..64"),
    (dict(tp=3), "tp 3 does not divide p = 2"),
    (dict(clamp="no"), "clamp 'no' is not True or False"),
    (dict(clamp=0.5), "clamp 0.5 is not True or False"),
    (dict(scheme=None), "scheme None is not a string"),
    (dict(model=b"m"), "model b'm' is not a string"),
    (dict(model_hash=123), "model_hash 123 is not a string"),
])
def test_query_values_are_checked_and_named(query: dict, says: str) -> None:
    """p = 2.0 and tp = True were served, clamp = "no" clamped, and scheme None (the default in
    CTable, through C's NULL) answered "no row has method 'hier' together"."""
    t = kvrun.Table(rows((512, 512), (1024, 1024)))
    q = {**dict(model="m", machine="h", p=2, ctx_tokens=500), **query}
    with pytest.raises(kvrun.LookupError_, match=says):
        t.lookup(**q)
    assert t.lookup("m", "h", 2, 500, clamp=True).clamped and t.lookup("m", "h", 2, 1024, clamp=1).exact

"""The package against the kvr program: same partitions on every context, valid exports."""

from __future__ import annotations

import copy
import csv
import json
import re
from pathlib import Path
from typing import Dict, List

import pytest

import kvrun
from kvrun import clib

from conftest import DEGREES, MACHINE, MODEL, run_kvr


@pytest.mark.parametrize("source", ["json", "csv", "db"])
def test_lookup_equals_kvr_lookup_on_every_context(searched: Dict[str, Path],
                                                    kvr_answers: Dict[int, List[dict]],
                                                    source: str) -> None:
    table = kvrun.Table.load(searched[source])
    for p in DEGREES:
        want = kvr_answers[p]
        assert len(want) == 32768 - 1024 + 1
        bad = []
        for w in want:
            a = table.lookup(MODEL, MACHINE, p, w["ctx_tokens"])
            if (list(a.tokens), a.method, list(a.neighbours), list(a.mapping)) != (
                    w["partition_tokens"], w["method"], w["neighbours"], w["mapping"]):
                bad.append((w["ctx_tokens"], list(a.tokens), w["partition_tokens"]))
        assert not bad, f"p = {p}: {len(bad)} contexts differ, first {bad[:3]}"


def test_hashes_match_kvr_lookup(searched: Dict[str, Path], kvr_answers: Dict[int, List[dict]]) -> None:
    rows = kvrun.Table.load(searched["json"]).select(MODEL, MACHINE, 4)
    assert {(r.model_hash, r.machine_hash) for r in rows} == {
        (kvr_answers[4][0]["model_hash"], kvr_answers[4][0]["machine_hash"])}


def test_c_library_through_ctypes(searched: Dict[str, Path], kvr_answers: Dict[int, List[dict]]) -> None:
    if not clib.available():
        pytest.skip("libkvr_lookup not found (KVR_LOOKUP_LIB)")
    t = clib.CTable(searched["csv"])
    py = kvrun.Table.load(searched["csv"])
    for w in kvr_answers[8][::97]:
        a = t.lookup(MODEL, MACHINE, 8, w["ctx_tokens"])
        assert list(a.tokens) == w["partition_tokens"] and list(a.mapping) == w["mapping"]
        assert a == py.lookup(MODEL, MACHINE, 8, w["ctx_tokens"])
    with pytest.raises(kvrun.LookupError_, match="outside the table's range"):
        t.lookup(MODEL, MACHINE, 8, 40000)


def _c_python_kvr_agree(csv_path: Path, want: List[dict], model: str, machine: str, p: int,
                        tp: int, clamp: bool = False) -> None:
    """On every context of want (kvr lookup --json): the C library through ctypes and the
    package answer alike (the whole Answer, the interpolated TTFT included), and both give kvr
    lookup's partition, GPUs, t, method and neighbours."""
    c, py = clib.CTable(csv_path), kvrun.Table.load(csv_path)
    bad = []
    for w in want:
        ctx = w["ctx_tokens"]
        a = py.lookup(model, machine, p, ctx, clamp=clamp, tp=tp)
        b = c.lookup(model, machine, p, ctx, clamp=clamp, tp=tp)
        got = (list(a.tokens), list(a.mapping), a.tp, a.method, list(a.neighbours), a.clamped)
        if a != b or got != (w["partition_tokens"], w["mapping"], w["tp"], w["method"],
                             w["neighbours"], w["clamped"]):
            bad.append((ctx, got, b, w["partition_tokens"], w["mapping"]))
    assert want and not bad, f"{csv_path.name}, t = {tp}: {len(bad)} of {len(want)} differ: {bad[:2]}"
    # the wrong t: not found, naming the t the table has
    wrong = 1 if tp > 1 else 2
    if p % wrong == 0:
        with pytest.raises(kvrun.LookupError_, match=rf"of tp_degree {wrong} \(the table has this "
                           rf"key's rows of tp_degree ([0-9]+, )*{tp}(, [0-9]+)* only"):
            c.lookup(model, machine, p, want[0]["ctx_tokens"], tp=wrong)


def test_c_python_kvr_agree_on_a_hybrid_table(tmp_path: Path) -> None:
    """kvr search --tp 2,4 then the CSV export: libkvr_lookup, the package and kvr lookup --tp
    agree on every context 8k..32k of each t (p / t chunks, one per stage)."""
    if not clib.available():
        pytest.skip("libkvr_lookup not found (KVR_LOOKUP_LIB)")
    from conftest import run_kvr
    db, out = tmp_path / "h.db", tmp_path / "h.csv"
    key = ["--model", "llama-2-70b", "--machine", "h100-nvlink", "--gpus", "8"]
    run_kvr("search", *key, "--ctx", "8k-32k+4k", "--tp", "2,4", "--db", str(db))
    run_kvr("export", "--db", str(db), "--format", "csv", "--out", str(out))
    for t in (2, 4):
        want = json.loads(run_kvr("lookup", *key, "--ctx", "8192-32768+1", "--tp", str(t),
                                  "--db", str(db), "--json"))
        assert {len(w["partition_tokens"]) for w in want} == {8 // t}
        _c_python_kvr_agree(out, want, "llama-2-70b", "h100-nvlink", 8, t)


def test_c_python_kvr_agree_on_a_mapped_multi_node_table(tmp_path: Path, source_root: Path) -> None:
    """Two nodes of 8 H100s at 25 GB/s between them, a chain of 12: the search puts it on GPUs
    4..15 (one id beyond p), for t = 1 (clamped beyond the rows too) and for layouts t = 2, 4;
    libkvr_lookup, the package and kvr lookup agree on every context of a range."""
    if not clib.available():
        pytest.skip("libkvr_lookup not found (KVR_LOOKUP_LIB)")
    from conftest import run_kvr
    db, out = tmp_path / "n.db", tmp_path / "n.csv"
    machine = str(source_root / "data" / "machines" / "h100-2x8-25.ini")
    plain = ["--model", MODEL, "--machine", machine, "--gpus", "12"]
    hybrid = ["--model", "llama-2-70b", "--machine", machine, "--gpus", "12"]
    run_kvr("search", *plain, "--ctx", "1k-32k+1k", "--db", str(db))
    run_kvr("search", *hybrid, "--ctx", "16k-64k+8k", "--tp", "2,4", "--db", str(db))
    run_kvr("export", "--db", str(db), "--format", "csv", "--out", str(out))
    want = json.loads(run_kvr("lookup", *plain, "--ctx", "600-34000+1", "--clamp", "--db",
                              str(db), "--json"))
    assert any(w["mapping"] != list(range(12)) for w in want) and any(w["clamped"] for w in want)
    _c_python_kvr_agree(out, want, MODEL, "h100-2x8-25", 12, 1, clamp=True)
    for t in (2, 4):
        want = json.loads(run_kvr("lookup", *hybrid, "--ctx", "16384-65536+1", "--tp", str(t),
                                  "--db", str(db), "--json"))
        assert all(w["mapping"] != list(range(12)) for w in want)
        _c_python_kvr_agree(out, want, "llama-2-70b", "h100-2x8-25", 12, t)


def test_csv_export_reads_with_dictreader(searched: Dict[str, Path]) -> None:
    with open(searched["csv"], newline="") as f:
        first = f.readline()
        assert not first.startswith("#")
        f.seek(0)
        reader = csv.DictReader(f)
        assert reader.fieldnames == kvrun.CSV_HEADER
        rows = list(reader)
    assert len(rows) == 3 * 32
    for r in rows:
        assert r["format_version"] == "2" and r["tp_degree"] == "1"
        parts = [int(x) for x in r["partition_tokens"].split(";")]
        assert len(parts) == int(r["p"]) and sum(parts) == int(r["ctx_tokens"])
        assert [int(x) for x in r["mapping"].split(";")] == list(range(int(r["p"])))
        assert int(r["ctx_tokens"]) % 1024 == 0 and float(r["predicted_ttft_s"]) > 0


def test_json_export_follows_the_schema(searched: Dict[str, Path], source_root: Path) -> None:
    schema = json.loads((source_root / "partition" / "kvrun-lookup-table-2.schema.json").read_text())
    doc = json.loads(searched["json"].read_text())
    kvrun.validate(doc, schema)
    assert doc["format_version"] == 2 and len(doc["rows"]) == 96
    hashes = {m["hash"] for m in doc["models"]} | {m["hash"] for m in doc["machines"]}
    assert all(r["model_hash"] in hashes and r["machine_hash"] in hashes for r in doc["rows"])
    assert {m["p"] for m in doc["machines"]} == set(DEGREES)
    # the validator can fail: a missing field, a wrong type, an unknown key
    for mutate in (lambda d: d["rows"][0].pop("mapping"),
                   lambda d: d["rows"][0].update(p="4"),
                   lambda d: d["machines"][0].update(extra=1),
                   lambda d: d.update(format_version=1)):
        bad = copy.deepcopy(doc)
        mutate(bad)
        with pytest.raises(kvrun.SchemaError):
            kvrun.validate(bad, schema)


def test_example_prints_ranges(searched: Dict[str, Path], source_root: Path) -> None:
    import subprocess
    import sys
    out = subprocess.run([sys.executable, str(source_root / "python" / "examples" / "cp_prefill.py"),
                          str(searched["json"]), MODEL, MACHINE, "12345", "4"],
                         check=True, capture_output=True, text=True).stdout
    ranges = json.loads(out)
    assert ranges[0]["start"] == 0 and ranges[-1]["end"] == 12345 and len(ranges) == 4


def test_layouts_export_read_and_look_up(tmp_path: Path, source_root: Path) -> None:
    """kvr search --tp (a row per t): the JSON export follows the schema, the package reads it
    and the database, and its lookups of each t equal kvr lookup --tp's (#21)."""
    from conftest import run_kvr
    db, out = tmp_path / "l.db", tmp_path / "l.json"
    key = ["--model", "llama-2-70b", "--machine", "h100-nvlink", "--gpus", "8"]
    run_kvr("search", *key, "--ctx", "8k,16k,32k", "--tp", "2,4", "--db", str(db))
    run_kvr("export", "--db", str(db), "--format", "json", "--out", str(out))
    doc = json.loads(out.read_text())
    kvrun.validate(doc, json.loads((source_root / "partition" /
                                    "kvrun-lookup-table-2.schema.json").read_text()))
    assert doc["layout"]["tp_degree"] == 0 and {r["tp_degree"] for r in doc["rows"]} == {2, 4}
    for source in (out, db):
        table = kvrun.Table.load(source)
        for t in (2, 4):
            want = json.loads(run_kvr("lookup", *key, "--ctx", "24k", "--tp", str(t), "--db",
                                      str(db), "--json"))
            a = table.lookup("llama-2-70b", "h100-nvlink", 8, 24576, tp=t)
            assert a.tp == t and list(a.tokens) == want["partition_tokens"]
            assert len(kvrun.ranges_of(a)) == 8
        with pytest.raises(kvrun.LookupError_):
            table.lookup("llama-2-70b", "h100-nvlink", 8, 24576)  # no rows of t = 1


def test_mappings_onto_a_bigger_machine_equal_kvr_lookup(tmp_path: Path, source_root: Path) -> None:
    """Rows whose chain runs on some GPUs of a bigger machine (4 of 8 around slow or high-latency
    links, where the GPUs change with the context: 1-4, 4-7, 6-3 descending; 3 of the 2x4 nodes on
    GPUs 3, 2, 1): the package reads them from the database and both exports, and answers every
    context with kvr lookup's partition and GPUs (it refused such tables, and served every
    context on the first row's GPUs)."""
    from conftest import run_kvr
    db = tmp_path / "m.db"
    slow = ["--machine", "a100-10GBps", "--link", "1-2=300GB/s,2ms", "--link", "3-4=300GB/s,2ms",
            "--link", "5-6=5GB/s", "--gpus", "4"]
    nodes = ["--machine", str(source_root / "data" / "machines" / "h100-2x4.ini"), "--gpus", "3"]
    for key in (slow, nodes):
        run_kvr("search", "--model", MODEL, *key, "--ctx", "1k-32k+1k", "--db", str(db))
    for fmt in ("json", "csv"):
        run_kvr("export", "--db", str(db), "--format", fmt, "--out", str(tmp_path / ("m." + fmt)))
    for key, name, p, step in ((slow, "a100-10GBps+link=1-2=300GB/s,2ms+link=3-4=300GB/s,2ms+link=5-6=5GB/s", 4, 1),
                               (nodes, "h100-2x4", 3, 5)):
        want = json.loads(run_kvr("lookup", "--model", MODEL, *key, "--ctx",
                                  f"1024-32768+{step}", "--db", str(db), "--json"))
        assert len({tuple(w["mapping"]) for w in want}) >= (2 if p == 4 else 1)
        for source in (db, tmp_path / "m.json", tmp_path / "m.csv"):
            table = kvrun.Table.load(source)
            bad = [(w["ctx_tokens"], a.mapping, w["mapping"])
                   for w in want for a in [table.lookup(MODEL, name, p, w["ctx_tokens"])]
                   if (list(a.tokens), list(a.mapping)) != (w["partition_tokens"], w["mapping"])]
            assert not bad, f"{source.name}, p = {p}: {len(bad)} contexts differ, first {bad[:3]}"


def test_exports_against_jsonschema(searched: Dict[str, Path], source_root: Path) -> None:
    """The JSON export against a full JSON Schema implementation (python3-jsonschema, draft
    2020-12) when installed: valid, and the small validator agrees on broken documents."""
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((source_root / "partition" / "kvrun-lookup-table-2.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    v = jsonschema.Draft202012Validator(schema)
    doc = json.loads(searched["json"].read_text())
    assert not list(v.iter_errors(doc))
    for mutate in (lambda d: d["rows"][0].pop("mapping"), lambda d: d["rows"][0].update(p="4"),
                   lambda d: d["rows"][0].update(partition_tokens=[0, 1024]),
                   lambda d: d["machines"][0].update(extra=1),
                   lambda d: d["models"][0].update(hash="XYZ"),
                   lambda d: d.update(created_utc="yesterday")):
        bad = copy.deepcopy(doc)
        mutate(bad)
        assert list(v.iter_errors(bad))
        with pytest.raises(kvrun.SchemaError):
            kvrun.validate(bad, schema)


def test_console_script_takes_the_layout(tmp_path: Path) -> None:
    """kvrun-lookup --tp T answers a layout's rows as Table.lookup(..., tp=T) does."""
    import subprocess
    import sys
    from conftest import run_kvr
    db = tmp_path / "l.db"
    key = ["--model", "llama-2-70b", "--machine", "h100-nvlink", "--gpus", "8"]
    run_kvr("search", *key, "--ctx", "8k,16k", "--tp", "2", "--db", str(db))
    out = subprocess.run([sys.executable, "-m", "kvrun", str(db), "llama-2-70b", "h100-nvlink",
                          "8", "12000", "--tp", "2"], check=True, capture_output=True, text=True)
    a = json.loads(out.stdout)
    want = json.loads(run_kvr("lookup", *key, "--ctx", "12000", "--tp", "2", "--db", str(db),
                              "--json"))
    assert a["tp"] == 2 and a["partition_tokens"] == want["partition_tokens"]


def test_sqlite_refuses_a_plan_of_another_kv_hand_off(tmp_path: Path) -> None:
    """kvr export refuses rows searched for --kv-forward direct; so does the SQLite reader
    (it had served them as plain plans, their TTFT that of another hand-off)."""
    db = tmp_path / "kf.db"
    run_kvr("search", "--model", "llama-7b", "--machine", "a100-10GBps", "--gpus", "2",
            "--ctx", "2k,4k", "--db", str(db), "--kv-forward", "direct", "-q")
    with pytest.raises(kvrun.LookupError_, match="ctx 2048 was searched for kv_forward direct"):
        kvrun.Table.from_sqlite(str(db))


_SMALL_CSV = ("format_version,model,model_hash,machine,machine_hash,p,tp_degree,scheme,method,"
              "objective,objective_trials,granularity_tokens,ctx_tokens,predicted_ttft_s,"
              "partition_tokens,mapping\r\n"
              "2,m,0123456789abcdef,h,fedcba9876543210,4,1,kvr,hier,mean,1,64,10240,0.1,"
              "3072;2560;2560;2048,0;1;2;3\r\n"
              "2,m,0123456789abcdef,h,fedcba9876543210,4,1,kvr,hier,mean,1,64,20480,0.2,"
              "6144;5120;5120;4096,0;1;2;3\r\n")


@pytest.mark.parametrize("kw, says", [
    (dict(ctx_tokens=2**64 + 12500), "ctx 18446744073709564116 is outside"),  # wrapped to 12500
    (dict(ctx_tokens=-1), "ctx -1 is outside"),                                # 2**64 - 1, clamped
    (dict(ctx_tokens=-1, clamp=True), "ctx -1 is outside"),
    (dict(ctx_tokens=4194305, clamp=True), "ctx 4194305 is outside"),
    (dict(p=2**32 + 4), "p 4294967300 is not an integer in 1..64"),           # wrapped to 4
    (dict(p=-2**32 + 4), "p -4294967292 is not an integer in 1..64"),
    (dict(tp=2**32 + 1), "tp 4294967297 is not an integer in 1..64"),         # wrapped to 1
    (dict(tp=0), "tp 0 is not an integer in 1..64"),
    (dict(ctx_tokens=12500.0), "ctx 12500.0 is not an integer"),
    (dict(clamp=2**32), "clamp 4294967296 is not True or False"),
    (dict(model="m\0x"), "model 'm\\x00x' is not a string without NUL bytes"),  # read as 'm'
])
def test_ctypes_query_integers_are_range_checked(tmp_path: Path, kw: dict, says: str) -> None:
    """CTable.lookup checks every value before ctypes, which wrapped what did not fit (2**64 +
    12500 answered as 12500, p = 2**32 + 4 as 4, -1 as 2**64 - 1)."""
    if not clib.available():
        pytest.skip("libkvr_lookup not found (KVR_LOOKUP_LIB)")
    csv_path = tmp_path / "t.csv"
    csv_path.write_text(_SMALL_CSV, newline="")
    t = clib.CTable(csv_path)
    q = dict(model="m", machine="h", p=4, ctx_tokens=12500)
    assert t.lookup(**q).tokens == kvrun.Table.load(csv_path).lookup(**q).tokens
    with pytest.raises(kvrun.LookupError_, match=re.escape(says)):
        t.lookup(**{**q, **kw})

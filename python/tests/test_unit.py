"""The lookup's arithmetic and the readers, without the kvr program."""

from __future__ import annotations

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

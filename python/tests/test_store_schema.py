"""The package's SQLite reader across store schemas: a database the kvr program writes today
(schema 9, measurement.last_layer) is read, and the same file turned back into schema 8 (no
last_layer) and 7 (no measurement.tp either) gives the same plan rows (the plan table, all the
package reads, did not change); schema 6 and a newer schema are refused by number."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

import kvrun
from conftest import run_kvr


def _downgrade(path: Path, version: int) -> None:
    c = sqlite3.connect(path)
    cols = {r[1] for r in c.execute("PRAGMA table_info(measurement)")}
    if version < 9 and "last_layer" in cols:
        c.execute("ALTER TABLE measurement DROP COLUMN last_layer")
    if version < 8 and "tp" in cols:
        c.execute("ALTER TABLE measurement DROP COLUMN tp")
    c.execute(f"PRAGMA user_version = {version}")
    c.commit()
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()


def _rows(table: kvrun.Table) -> list:
    return sorted((r.key, r.ctx_tokens, r.partition_tokens, r.predicted_ttft_s) for r in table.rows)


def test_schema_9_and_the_two_before_read_alike(tmp_path: Path) -> None:
    db = tmp_path / "s9.db"
    run_kvr("search", "--model", "llama-7b", "--machine", "a100-10GBps", "--gpus", "2,4",
            "--ctx", "4k,8k", "--db", str(db))
    c = sqlite3.connect(db)
    ver = c.execute("PRAGMA user_version").fetchone()[0]
    cols = [r[1] for r in c.execute("PRAGMA table_info(measurement)")]
    c.close()
    assert ver == 9 and "last_layer" in cols
    want = _rows(kvrun.Table.load(db))
    assert len(want) == 4
    for version in (8, 7):
        old = tmp_path / f"s{version}.db"
        shutil.copy(db, old)
        _downgrade(old, version)
        got = kvrun.Table.load(old)
        assert _rows(got) == want, version
        # and the lookups answer the same
        a, b = got.lookup("llama-7b", "a100-10GBps", 4, 6144), kvrun.Table.load(db).lookup(
            "llama-7b", "a100-10GBps", 4, 6144)
        assert a.tokens == b.tokens
    for version in (6, 10):
        bad = tmp_path / f"s{version}.db"
        shutil.copy(db, bad)
        _downgrade(bad, min(version, 8))
        c = sqlite3.connect(bad)
        c.execute(f"PRAGMA user_version = {version}")
        c.commit()
        c.close()
        with pytest.raises(kvrun.LookupError_, match=f"schema {version}; this package reads schemas 7 to 9"):
            kvrun.Table.load(bad)

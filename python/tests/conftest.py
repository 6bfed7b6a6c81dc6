"""Fixtures: a table searched by the kvr program (KVR: its path) at p = 2, 4, 8 on 1k..32k,
exported as JSON and CSV. Without KVR the tests that need it are skipped."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Dict, List

import pytest

MODEL, MACHINE = "llama-7b", "a100-10GBps"
DEGREES = (2, 4, 8)


def kvr_path() -> str:
    path = os.environ.get("KVR")
    if not path:
        pytest.skip("KVR (the kvr program) is not set")
    return path


def run_kvr(*args: str) -> str:
    out = subprocess.run([kvr_path(), *args], check=True, capture_output=True, text=True)
    return out.stdout


@pytest.fixture(scope="session")
def source_root() -> Path:
    return Path(os.environ.get("KVR_SOURCE_ROOT", Path(__file__).resolve().parents[2]))


@pytest.fixture(scope="session")
def searched(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Path]:
    d = tmp_path_factory.mktemp("table")
    db = d / "plans.db"
    run_kvr("search", "--model", MODEL, "--machine", MACHINE, "--gpus", "2,4,8",
            "--ctx", "1k-32k+1k", "--db", str(db))
    for fmt, name in (("json", "table.json"), ("csv", "table.csv")):
        run_kvr("export", "--db", str(db), "--format", fmt, "--out", str(d / name))
    return {"db": db, "json": d / "table.json", "csv": d / "table.csv"}


@pytest.fixture(scope="session")
def kvr_answers(searched: Dict[str, Path]) -> Dict[int, List[dict]]:
    """kvr lookup --json on every context 1k..32k at each p."""
    return {p: json.loads(run_kvr("lookup", "--model", MODEL, "--machine", MACHINE, "--gpus",
                                  str(p), "--ctx", "1024-32768+1", "--db", str(searched["db"]),
                                  "--json"))
            for p in DEGREES}

"""kvrun: KV-Runahead partition lookup tables for deployments.

Load a table that ``kvr export`` wrote (JSON or CSV, format 2 or 1) or the SQLite database of
``kvr search``, and ask for the partition of any prompt length::

    import kvrun
    t = kvrun.Table.load("table.json")
    a = t.lookup("llama-7b", "a100-nvlink", p=4, ctx_tokens=12_500)
    a.tokens                        # chunk lengths, earliest tokens first
    kvrun.ranges_of(a)              # [(position, gpu, start, end), ...]

Exact rows are returned as stored; other lengths are interpolated and rounded exactly as
``kvr lookup`` and the C library ``kvr_lookup`` do (see :mod:`kvrun.lookup`).
"""

from .lookup import Answer, OutOfRange, round_fractions, solve
from .ranges import PrefillPlanner, RankRange, ranges_of, token_ranges
from .schema import SchemaError, validate
from .table import CSV_HEADER, FORMAT_VERSION, LookupError_, Row, Table

__version__ = "0.1.0"
__all__ = ["Answer", "CSV_HEADER", "FORMAT_VERSION", "LookupError_", "OutOfRange",
           "PrefillPlanner", "RankRange", "Row", "SchemaError", "Table", "ranges_of",
           "round_fractions", "solve", "token_ranges", "validate"]

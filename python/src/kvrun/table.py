"""Lookup tables in kvrun's format 2 (and format 1): the JSON and CSV exports of
``kvr export`` and the SQLite database ``kvr search`` writes (schema 6), read with the standard
library only.

A row's key is (model, model_hash, machine, machine_hash, p, scheme, method); the hashes name
the exact model and machine definitions the row was searched on, so a table that holds rows of
two definitions under one name refuses a query that does not say which.
"""

from __future__ import annotations

import json
import math
import operator
import os
import sqlite3
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple, Union

if TYPE_CHECKING:
    from .lookup import Answer

__all__ = ["LookupError_", "Row", "Table", "FORMAT_VERSION", "CSV_HEADER", "check_key", "check_clamp"]

FORMAT_VERSION = 2
CSV_HEADER = ("format_version,model,model_hash,machine,machine_hash,p,tp_degree,scheme,method,"
              "objective,objective_trials,granularity_tokens,ctx_tokens,predicted_ttft_s,"
              "partition_tokens,mapping").split(",")
_CSV1_MAGIC = "# kvrun lookup table, format "
_CSV1_HEADER = ("model,machine,p,scheme,method,granularity_tokens,ctx_tokens,predicted_ttft_s,"
                "partition_tokens").split(",")
_STORE_APPLICATION_ID = 0x4B565231
_STORE_SCHEMA = 9
# the schemas whose plan table is this one: 7 -> 8 added measurement.tp, 8 -> 9
# measurement.last_layer; neither touched the plans, all this package reads
_STORE_SCHEMAS_READ = (9, 8, 7)

_MAX_LINE_BYTES = 1 << 20  # kvr_lookup_csv.c's MAX_LINE_BYTES: a line's bytes, '\r' included, < this

_MAX_GPU_ID = 2**31 - 1  # kvr_lookup_csv.c: a mapping's GPU must fit an int

PathLike = Union[str, "os.PathLike[str]"]


class LookupError_(ValueError):
    """A table that cannot be read, or a query it cannot answer (the message says why)."""


@dataclass(frozen=True)
class Row:
    """One searched partition: ``partition_tokens[i]`` tokens for chunk ``i``. With
    ``tp_degree`` t = 1 chunk ``i`` runs on GPU ``mapping[i]``; with t > 1 (a hybrid layout:
    p / t stages, each a tensor-parallel group of t GPUs) chunk ``i`` is stage ``i``'s, on the
    GPUs ``mapping[i * t : (i + 1) * t]``."""

    model: str
    machine: str
    p: int
    scheme: str
    method: str
    granularity_tokens: int
    ctx_tokens: int
    predicted_ttft_s: float
    partition_tokens: Tuple[int, ...]
    model_hash: str = ""
    machine_hash: str = ""
    mapping: Tuple[int, ...] = ()
    tp_degree: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.p <= 64:
            raise LookupError_(f"p = {self.p} is outside 1..64")
        if self.tp_degree < 1 or self.p % self.tp_degree:
            raise LookupError_(f"tp_degree {self.tp_degree} does not divide p = {self.p}")
        n = self.p // self.tp_degree
        if len(self.partition_tokens) != n or any(t < 1 for t in self.partition_tokens):
            raise LookupError_(f"partition {list(self.partition_tokens)} is not {n} non-empty chunks")
        if sum(self.partition_tokens) != self.ctx_tokens:
            raise LookupError_(f"partition sums to {sum(self.partition_tokens)}, not ctx {self.ctx_tokens}")
        if self.granularity_tokens < 1:
            raise LookupError_("granularity must be >= 1")
        # what kvr_lookup_check_row refuses too: the C library and this package serve one table
        if not (math.isfinite(self.predicted_ttft_s) and self.predicted_ttft_s > 0):
            raise LookupError_(f"predicted_ttft_s {self.predicted_ttft_s!r} is not a finite time > 0")
        if not all((self.model, self.machine, self.scheme, self.method)):
            raise LookupError_("model, machine, scheme and method must be set")
        if not self.mapping:
            object.__setattr__(self, "mapping", tuple(range(self.p)))
        # p distinct GPUs of the machine, which may have more than p (a chain of 4 on GPUs
        # 7, 6, 5, 4 of an 8-GPU node)
        # (GPU ids are C ints in libkvr_lookup's rows and answers: 2^31 and above it refuses)
        if (len(self.mapping) != self.p or len(set(self.mapping)) != self.p
                or any(not 0 <= g <= _MAX_GPU_ID for g in self.mapping)):
            raise LookupError_(f"mapping {list(self.mapping)} is not {self.p} distinct GPUs "
                               f"(ids 0..{_MAX_GPU_ID})")

    @property
    def stages(self) -> int:
        """The chunks of the partition: p / tp_degree."""
        return self.p // self.tp_degree

    @property
    def key(self) -> Tuple[str, str, str, str, int, int, str, str]:
        return (self.model, self.model_hash, self.machine, self.machine_hash, self.p,
                self.tp_degree, self.scheme, self.method)


def as_index(x: object) -> Optional[int]:
    """x as an integer if it is one (an int or numpy integer; never a bool, 2.0 or "2")."""
    if isinstance(x, bool):
        return None
    try:
        return int(operator.index(x))  # type: ignore[arg-type]
    except TypeError:
        return None


def _count(x: object, lo: int, hi: int, what: str) -> int:
    """A query's count: an integer (as_index) in lo..hi."""
    n = as_index(x)
    if n is None or not lo <= n <= hi:
        raise LookupError_(f"{what} {x!r} is not an integer in {lo}..{hi}")
    return n


def check_key(model: object, machine: object, p: object, scheme: object, method: object,
              model_hash: object, machine_hash: object, tp: object) -> Tuple[int, int]:
    """A query's key, checked as libkvr_lookup checks its query, naming the value: p = 2.0 and
    tp = True matched the rows of 2 and 1 (==), scheme None answered no rows (C's NULL is the
    default). Returns (p, tp)."""
    for what, x in (("model", model), ("machine", machine), ("scheme", scheme),
                    ("method", method)):
        if not isinstance(x, str):
            raise LookupError_(f"{what} {x!r} is not a string")
    for what, x in (("model_hash", model_hash), ("machine_hash", machine_hash)):
        if x is not None and not isinstance(x, str):
            raise LookupError_(f"{what} {x!r} is not a string (or None: any)")
    n, t = _count(p, 1, 64, "p"), _count(tp, 1, 64, "tp")
    if n % t:
        raise LookupError_(f"tp {t} does not divide p = {n}")
    return n, t


def check_clamp(clamp: object) -> None:
    """True or False (or 1, 0): "no" or 0.5 clamped, being truthy."""
    if not (isinstance(clamp, int) and clamp in (0, 1)):
        raise LookupError_(f"clamp {clamp!r} is not True or False")


def _uint(text: str, what: str) -> int:
    """A CSV count as the C library reads it: ASCII digits only (int() would also take ' 64',
    '+64' and '6_4')."""
    if not (text.isascii() and text.isdigit()) or int(text) >= 2**64:  # strtoull's ERANGE
        raise ValueError(f"{what} {text!r} is not a whole number")
    return int(text)


def _objective(stat: Any, trials: Any) -> None:
    """A row's objective as libkvr_lookup checks it (is_objective): "mean" or pNN with NN a
    plain number (digits and '.', not starting with '.') in (0, 100], over trials >= 1."""
    ok = isinstance(stat, str) and (stat == "mean" or (
        stat[:1] == "p" and stat[1:2] not in ("", ".") and not stat[1:].strip("0123456789.")
        and stat[1:].count(".") <= 1 and 0 < float(stat[1:]) <= 100))
    if not ok or isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ValueError(f"objective {stat!r} over {trials!r} trials is not mean or pNN over 1 "
                         "or more")


def _time(text: str) -> float:
    """A CSV TTFT as the C library reads it: a finite number (> 0, Row checks), no sign, blanks,
    inf or nan."""
    if not text or text[0] not in "0123456789." or text.strip("0123456789.eE+-"):
        raise ValueError(f"predicted_ttft_s {text!r} is not a time")
    v = float(text)
    # parse_time's range: above 1e300, or below the least normal double (strtod's ERANGE), C
    # refuses the row (0 is Row's to refuse: not > 0)
    if v > 1e300 or 0 < v < sys.float_info.min:
        raise ValueError(f"predicted_ttft_s {text!r} is outside libkvr_lookup's range of times "
                         f"({sys.float_info.min!r} to 1e300 s)")
    return v


def _ints(text: str) -> Tuple[int, ...]:
    try:
        return tuple(_uint(t, "item") for t in text.split(";"))
    except ValueError:
        raise LookupError_(f"'{text}' is not integers joined by ';'") from None


def _row(r: Dict[str, Any], rest: Callable[[Dict[str, Any]], Dict[str, Any]]) -> Row:
    """A CSV record: the plain fields, then ``rest(r)``, the lists, hashes and t (read in that
    order, so the first bad field is the one an error names)."""
    return Row(model=r["model"], machine=r["machine"], p=_uint(r["p"], "p"), scheme=r["scheme"],
               method=r["method"], granularity_tokens=_uint(r["granularity_tokens"], "granularity"),
               ctx_tokens=_uint(r["ctx_tokens"], "ctx"), predicted_ttft_s=_time(r["predicted_ttft_s"]),
               **rest(r))


def _json_int(x: Any, what: str) -> int:
    """A JSON integer (not a bool, not 512.5 or "512"): the counts of a table are exact."""
    if isinstance(x, bool) or not isinstance(x, int):
        raise ValueError(f"{what}: {x!r} is not an integer")
    return x


def _json_ints(xs: Any, what: str) -> Tuple[int, ...]:
    if not isinstance(xs, list):
        raise ValueError(f"{what}: {xs!r} is not a list of integers")
    return tuple(_json_int(x, what) for x in xs)


def _json_row(r: Dict[str, Any]) -> Row:
    """A JSON row: integers where the schema says integer, the fields format 1 rows may lack."""
    if "objective" in r or "objective_trials" in r:  # format 2 (format 1 rows have neither)
        _objective(r["objective"], r["objective_trials"])
    ttft = r["predicted_ttft_s"]
    if isinstance(ttft, bool) or not isinstance(ttft, (int, float)):
        raise ValueError(f"predicted_ttft_s: {ttft!r} is not a number")
    return Row(model=r["model"], machine=r["machine"], p=_json_int(r["p"], "p"),
               scheme=r["scheme"], method=r["method"],
               granularity_tokens=_json_int(r["granularity_tokens"], "granularity_tokens"),
               ctx_tokens=_json_int(r["ctx_tokens"], "ctx_tokens"), predicted_ttft_s=float(ttft),
               partition_tokens=_json_ints(r["partition_tokens"], "partition_tokens"),
               model_hash=r.get("model_hash", ""), machine_hash=r.get("machine_hash", ""),
               mapping=_json_ints(r.get("mapping", []), "mapping"),
               tp_degree=_json_int(r.get("tp_degree", 1), "tp_degree"))


_SCHEMA_2: Dict[str, Any] = {}


def _schema_2() -> Dict[str, Any]:
    """partition/kvrun-lookup-table-2.schema.json, as shipped in the package (a test keeps the
    two identical)."""
    if not _SCHEMA_2:
        from importlib import resources
        text = (resources.files(__package__ or "kvrun") / "kvrun-lookup-table-2.schema.json").read_text(
            encoding="utf-8")
        _SCHEMA_2.update(json.loads(text))
    return _SCHEMA_2


def _no_constant(name: str) -> Any:
    """json's parse_constant: NaN, Infinity and -Infinity are not JSON (Python writes them)."""
    raise ValueError(f"{name} is not a JSON number")


def _json_list(doc: Dict[str, Any], key: str, where: str) -> List[Any]:
    xs = doc.get(key, [])
    if not isinstance(xs, list):
        raise LookupError_(f"{where}: {key}: {xs!r} is not a list")
    return xs


def _json_defs(doc: Dict[str, Any], key: str, where: str) -> Dict[str, Dict[str, Any]]:
    """The definitions (models or machines) by hash: objects with a string 'hash'."""
    out: Dict[str, Dict[str, Any]] = {}
    for i, m in enumerate(_json_list(doc, key, where)):
        if not isinstance(m, dict) or not isinstance(m.get("hash"), str):
            raise LookupError_(f"{where}: {key}[{i}]: not an object with a 'hash'")
        out[m["hash"]] = m
    return out


def _csv_fields(r: Dict[str, Any]) -> Dict[str, Any]:
    """A CSV record's lists (integers joined by ';'), and its hashes and t."""
    trials = r["objective_trials"]
    _objective(r["objective"], int(trials) if trials.isascii() and trials.isdigit()
               and int(trials) < 2**64 else trials)
    for k in ("model_hash", "machine_hash"):  # 16 hex digits, as the C library demands
        if len(r[k]) != 16 or r[k].strip("0123456789abcdef"):
            raise ValueError(f"{k} {r[k]!r} is not 16 hex digits")
    return dict(partition_tokens=_ints(r["partition_tokens"]), model_hash=r["model_hash"],
                machine_hash=r["machine_hash"], mapping=_ints(r["mapping"]),
                tp_degree=_uint(r["tp_degree"], "tp_degree"))


@dataclass
class Table:
    """A loaded lookup table: rows sorted by key then context, plus the definitions (format 2
    JSON and SQLite) that the rows' hashes name."""

    rows: List[Row]
    models: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    machines: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    meta: Dict[str, Any] = field(default_factory=dict)
    # (model, machine, p) -> rows a database holds but never serves (stale, or from before
    # content hashes), so that a query of only those says so
    left_out: Dict[Tuple[str, str, int], int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rows.sort(key=lambda r: (r.key, r.ctx_tokens))
        # one answer per key and context, as the C library demands: which of two rows a lookup
        # served would otherwise depend on the file's order
        for a, b in zip(self.rows, self.rows[1:]):
            if (a.key, a.ctx_tokens) == (b.key, b.ctx_tokens):
                raise LookupError_(f"two rows for model {b.model}, machine {b.machine}, scheme "
                                   f"{b.scheme}, method {b.method}, p = {b.p}, tp_degree "
                                   f"{b.tp_degree}, ctx = {b.ctx_tokens}")

    # ---- loading ----
    @classmethod
    def load(cls, path: PathLike) -> "Table":
        """A JSON or CSV export, or a kvrun SQLite database, by its first bytes."""
        with open(path, "rb") as f:
            head = f.read(16)
        if head.startswith(b"SQLite format 3"):
            return cls.from_sqlite(path)
        if head.lstrip().startswith(b"{"):
            return cls.from_json(path)
        try:
            return cls.from_csv(path)
        except UnicodeDecodeError as e:
            raise LookupError_(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None

    @classmethod
    def from_json(cls, path: PathLike) -> "Table":
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f, parse_constant=_no_constant)
        except UnicodeDecodeError as e:
            raise LookupError_(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
        except ValueError as e:  # json.JSONDecodeError, or NaN/Infinity (not JSON)
            raise LookupError_(f"{path}: not JSON: {e}") from None
        return cls.from_document(doc, str(path))

    @classmethod
    def from_document(cls, doc: Dict[str, Any], where: str = "table") -> "Table":
        """A parsed JSON export (format 1 or 2)."""
        if not isinstance(doc, dict) or doc.get("format") != "kvrun-lookup-table":
            raise LookupError_(f"{where}: not a kvrun lookup table")
        version = doc.get("format_version")
        if isinstance(version, bool) or not isinstance(version, int):
            raise LookupError_(f"{where}: format_version {version!r} is a "
                               f"{type(version).__name__}, not an integer")
        if version not in (1, 2):
            raise LookupError_(f"{where}: format {version}; this package reads formats 1 and 2")
        if "rows" not in doc:
            raise LookupError_(f"{where}: no 'rows' (a table without it is not an empty one)")
        if version == 2:
            # the schema whole: its required fields and enums (interpolation.rule: a table of
            # another rule is not one this package's linear interpolation serves), types, ranges
            from .schema import SchemaError, validate
            try:
                validate(doc, _schema_2())
            except SchemaError as e:
                raise LookupError_(f"{where}: not a format 2 table "
                                   f"(kvrun-lookup-table-2.schema.json): {e}") from None
        rows = []
        for i, r in enumerate(_json_list(doc, "rows", where)):
            try:
                if not isinstance(r, dict):
                    raise ValueError(f"{r!r} is not an object")
                if version == 2 and r.get("format_version") != 2:
                    raise ValueError(f"format_version {r.get('format_version')!r} in a format 2 table")
                rows.append(_json_row(r))
            except (KeyError, TypeError, ValueError) as e:
                raise LookupError_(f"{where}: rows[{i}]: {e}") from None
        meta = {k: v for k, v in doc.items() if k not in ("rows", "models", "machines")}
        return cls._of(where, rows, _json_defs(doc, "models", where),
                       _json_defs(doc, "machines", where), meta)

    @classmethod
    def _of(cls, where: str, *args: Any) -> "Table":
        """The table of a file's rows; a refusal of the whole (two rows of one key and context)
        names the file."""
        try:
            return cls(*args)
        except LookupError_ as e:
            raise LookupError_(f"{where}: {e}") from None

    @classmethod
    def from_csv(cls, path: PathLike) -> "Table":
        """A CSV export: format 2 (header first) or format 1 (a comment line first), read line
        for line as libkvr_lookup reads it (_csv_lines, _split): the csv module's dialect took
        what C refuses ("m"x as mx, a quoted header, CR alone ending lines, a quoted line
        break) and counted records, not lines, in its errors."""
        lines = _csv_lines(path)
        first = lines[0][1] if lines else ""
        if first.startswith("\ufeff"):  # named as C names it, not "not a table"
            raise LookupError_(f"{path}:1: a UTF-8 byte-order mark before the header (kvr writes "
                               "none: remove it)")
        if first.startswith(_CSV1_MAGIC):
            return cls._of(str(path), _csv1_rows(lines, str(path)))
        if first != ",".join(CSV_HEADER):
            raise LookupError_(f"{path}:1: " + ("a format 2 header other than the expected "
                                                if first.startswith("format_version,") else
                                                "not a kvrun lookup table; expected ")
                               + ",".join(CSV_HEADER))
        rows = []
        for n, text in lines[1:]:
            try:
                f = _split(text, len(CSV_HEADER))
                r = dict(zip(CSV_HEADER, f))
                if _uint(r["format_version"], "format_version") != 2:  # "02" is C's 2 too
                    raise ValueError(f"format_version {r['format_version']!r} in a format 2 "
                                     "table (this package reads 1 and 2)")
                rows.append(_row(r, _csv_fields))
            except (TypeError, ValueError) as e:
                raise LookupError_(f"{path}:{n}: {e}") from None
        return cls._of(str(path), rows)

    @classmethod
    def from_sqlite(cls, path: PathLike) -> "Table":
        """The plan rows of a kvrun database (schema 9, or 8 or 7: the same plan table, their
        rows read alike), read-only; stale rows and rows from before content hashes are left
        out (kvr lookup never serves them either)."""
        # a file: URI with the path quoted (a '#', '?' or '%' in it is a file name's, not the
        # URI's), read-only: never a new empty database beside the one asked for
        uri = Path(os.path.abspath(os.fspath(path))).as_uri() + "?mode=ro"
        if not os.path.isfile(path):
            raise LookupError_(f"{path}: no such database file")
        try:
            con = sqlite3.connect(uri, uri=True)
            app, ver = con.execute("SELECT (SELECT application_id FROM pragma_application_id),"
                                   " (SELECT user_version FROM pragma_user_version)").fetchone()
        except sqlite3.Error as e:
            raise LookupError_(f"{path}: {e}") from None
        try:
            if app != _STORE_APPLICATION_ID:
                raise LookupError_(f"{path}: not a kvrun database")
            if ver not in _STORE_SCHEMAS_READ:
                raise LookupError_(f"{path}: schema {ver}; this package reads schemas "
                                   f"{min(_STORE_SCHEMAS_READ)} to {_STORE_SCHEMA} "
                                   "(a writing kvr command migrates older ones)")
            # a plan searched for another KV hand-off is not this package's plan: refused as
            # kvr export refuses it (an answer has no field for the hand-off)
            fwd = con.execute("SELECT model, p, ctx_tokens, kv_forward FROM plan WHERE stale = 0"
                              " AND model_hash != '' AND kv_forward NOT IN ('', 'whole')"
                              " ORDER BY model, p, ctx_tokens LIMIT 1").fetchone()
            if fwd:
                raise LookupError_(f"{path}: the plan of {fwd[0]} at p = {fwd[1]}, ctx {fwd[2]} "
                                   f"was searched for kv_forward {fwd[3]}, which this package "
                                   "cannot serve (kvr lookup can)")
            rows = [Row(model=m, machine=h, p=p, scheme=s, method=me, granularity_tokens=g,
                        ctx_tokens=c, predicted_ttft_s=t, partition_tokens=_ints(part),
                        model_hash=mh, machine_hash=hh, mapping=_ints(mp) if mp else (),
                        tp_degree=tp)
                    for (m, h, p, s, me, g, c, t, part, mh, hh, mp, tp) in con.execute(
                        "SELECT model, machine, p, scheme, method, granularity_tokens, ctx_tokens,"
                        " predicted_ttft_s, partition_tokens, model_hash, machine_hash, mapping, tp"
                        " FROM plan WHERE stale = 0 AND model_hash != ''")]
            left_out = {(m, h, p): n for (m, h, p, n) in con.execute(
                "SELECT model, machine, p, count(*) FROM plan WHERE stale != 0 OR model_hash = ''"
                " GROUP BY model, machine, p")}
            defs: Dict[str, Dict[str, Dict[str, Any]]] = {"model": {}, "machine": {}}
            for kind, hsh, name, text, prov in con.execute(
                    "SELECT kind, hash, name, canonical_text, provenance FROM definition"):
                defs[kind][hsh] = {"name": name, "hash": hsh, "canonical_text": text,
                                   "provenance": prov}
        finally:
            con.close()
        return cls(rows, defs["model"], defs["machine"], {"format_version": 2, "source": str(path)},
                   left_out)

    # ---- queries ----
    def select(self, model: str, machine: str, p: int, scheme: str = "kvr",
               method: str = "hier", model_hash: Optional[str] = None,
               machine_hash: Optional[str] = None, tp: int = 1) -> List[Row]:
        """The rows of one key (``tp``: the layout's t, 1 the plain plans), sorted by context;
        refuses rows of two definitions."""
        p, tp = check_key(model, machine, p, scheme, method, model_hash, machine_hash, tp)
        sel = [r for r in self.rows
               if (r.model, r.machine, r.p, r.scheme, r.method) == (model, machine, p, scheme, method)
               and r.tp_degree == tp
               and (model_hash is None or r.model_hash == model_hash)
               and (machine_hash is None or r.machine_hash == machine_hash)]
        if not sel:
            stale = self.left_out.get((model, machine, p), 0)
            raise LookupError_(f"no rows for {model} on {machine}, p = {p}"
                               + (f", tp = {tp}" if tp != 1 else "")
                               + (f": only {stale} stale rows (of an older definition, or from"
                                  " before content hashes), never served; run kvr search again"
                                  if stale else "")
                               + self._excluded(model, machine, p, tp, scheme=scheme,
                                                method=method, model_hash=model_hash,
                                                machine_hash=machine_hash))
        if len({(r.model_hash, r.machine_hash) for r in sel}) > 1:
            raise LookupError_(f"rows of more than one definition of {model} on {machine} "
                               f"(p = {p}): give the model_hash and machine_hash")
        return sel

    def _excluded(self, model: str, machine: str, p: int, tp: int, **filters: Optional[str]) -> str:
        """Which of the given filters left no row of (model, machine, p, tp): '' when there are
        none of those rows at all."""
        base = [r for r in self.rows if (r.model, r.machine, r.p, r.tp_degree) == (model, machine, p, tp)]
        if not base:
            return ""
        why = []
        for name, want in filters.items():
            have = sorted({getattr(r, name) for r in base})
            if want is not None and want not in have:
                why.append(f"{name} {want!r} (its rows have {', '.join(map(repr, have))})")
        return ": " + ("; ".join(why) if why else
                       "no row has " + ", ".join(f"{k} {v!r}" for k, v in filters.items()
                                                 if v is not None) + " together")

    def lookup(self, model: str, machine: str, p: int, ctx_tokens: int, clamp: bool = False,
               **key: Any) -> "Answer":
        """The partition for ``ctx_tokens``: exact row, else interpolated (see kvrun.lookup)."""
        from .lookup import solve
        check_clamp(clamp)
        return solve(self.select(model, machine, p, **key), ctx_tokens, clamp)

    def keys(self) -> List[Tuple[str, str, str, str, int, int, str, str]]:
        """Every distinct key (model, model_hash, machine, machine_hash, p, tp, scheme, method)."""
        return sorted({r.key for r in self.rows})


def _csv_lines(path: PathLike) -> List[Tuple[int, str]]:
    """A CSV file's lines as libkvr_lookup's next_line reads them, numbered from 1: split at
    LF, every CR at a line's end dropped, empty lines left out (the header is line 1
    whatever it holds); a NUL byte, a line of 1 MiB or more or one that is not UTF-8 refused,
    naming the line."""
    with open(path, "rb") as fb:
        data = fb.read()
    out = []
    for n, line in enumerate(data.split(b"\n"), start=1):
        if b"\0" in line:
            raise LookupError_(f"{path}:{n}: a NUL byte (byte {line.index(0)} of the line)")
        if len(line) >= _MAX_LINE_BYTES:
            raise LookupError_(f"{path}:{n}: a line of {len(line)} bytes (the most is "
                               f"{_MAX_LINE_BYTES - 1})")
        try:
            text = line.rstrip(b"\r").decode("utf-8")
        except UnicodeDecodeError as e:
            raise LookupError_(f"{path}:{n}: not UTF-8 text ({e.reason} at byte {e.start})") from None
        if text or n == 1:
            out.append((n, text))
    return out


def _split(line: str, n_fields: int) -> List[str]:
    """A line's fields as kvr_lookup_csv.c's split reads them: RFC 4180 quotes ("" a quote), a
    quote that does not close or text after a closing quote refused; exactly n_fields."""
    fields: List[str] = []
    i, end = 0, len(line)
    while True:
        if i < end and line[i] == '"':
            j, buf = i + 1, []
            while True:
                if j >= end:
                    raise ValueError(f"expected {n_fields} fields (a quote that does not close)")
                if line.startswith('""', j):
                    buf.append('"')
                    j += 2
                elif line[j] == '"':
                    break
                else:
                    buf.append(line[j])
                    j += 1
            i = j + 1
            if i < end and line[i] != ",":
                raise ValueError(f"expected {n_fields} fields (text after a closing quote)")
            fields.append("".join(buf))
        else:
            j = line.find(",", i)
            j = end if j < 0 else j
            fields.append(line[i:j])
            i = j
        if i >= end:
            break
        i += 1  # the comma
    if len(fields) != n_fields:
        raise ValueError(f"expected {n_fields} fields")
    return fields


def _csv1_rows(lines: List[Tuple[int, str]], path: str) -> List[Row]:
    """Format 1: the magic, exactly "1" (C's strcmp: "1 " and "01" are not), its header on
    line 2, then rows of 9 fields."""
    first = lines[0][1]
    if first != _CSV1_MAGIC + "1":
        raise LookupError_(f"{path}:1: {first}; this package reads formats 1 and 2")
    if len(lines) < 2 or lines[1] != (2, ",".join(_CSV1_HEADER)):
        raise LookupError_(f"{path}:2: expected the format 1 header {','.join(_CSV1_HEADER)}")
    rows = []
    for n, text in lines[2:]:
        try:
            m, h, p, s, me, g, c, t, part = _split(text, len(_CSV1_HEADER))
            rows.append(Row(m, h, _uint(p, "p"), s, me, _uint(g, "granularity"), _uint(c, "ctx"),
                            _time(t), _ints(part)))
        except ValueError as e:
            raise LookupError_(f"{path}:{n}: {e}") from None
    return rows

"""Exact and interpolated lookup, rounded exactly as ``kvr_lookup`` (C) and ``kvr lookup``.

The arithmetic follows ``partition/lookup/kvr_lookup.c`` operation for operation in IEEE
doubles, so the partitions agree bit for bit:

* ``ctx`` with a row: that row's partition.
* ``lo < ctx < hi`` (neighbouring rows): each chunk's fraction ``c_i / sum`` is interpolated
  linearly with ``w = (ctx - lo) / (hi - lo)``.
* Layouts (``tp`` t > 1): the ``p / t`` chunks (one per stage) are interpolated and rounded as
  above with ``p`` read as ``p / t``. The GPUs (``mapping``) are the exact row's, the end row's
  when clamped, the lower neighbour's when interpolated (even where the neighbours' differ).
* Rounding: ``g`` = granularity (``g = 1`` when ``ctx < p * g``); cumulative boundaries
  ``b_i = llround(ctx * (f_0 + ... + f_i) / g) * g`` for ``i < p - 1``, each clamped to
  ``[b_(i-1) + g, floor((ctx - (p-1-i) * g) / g) * g]``; the last chunk takes the rest.
* Outside the rows: :class:`OutOfRange`, or with ``clamp`` the nearest end row's fractions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from .table import LookupError_, Row, as_index

__all__ = ["Answer", "OutOfRange", "MAX_CTX", "check_ctx", "fractions", "grain", "llround",
           "round_fractions", "solve"]

#: the longest context a query may name: kvr's cap on --ctx (4 Mi tokens)
MAX_CTX = 4194304


class OutOfRange(LookupError_):
    """The context length is outside the rows of the key and ``clamp`` was not given."""


@dataclass(frozen=True)
class Answer:
    """A partition for one context length.

    ``tokens[i]`` is the length of chunk ``i``; chunk ``i`` holds the tokens
    ``[sum(tokens[:i]), sum(tokens[:i+1]))`` (earliest first) and runs at chain position ``i``
    on GPU ``mapping[i]``; with ``tp`` > 1 chunk ``i`` is stage ``i``'s, on the GPUs
    ``mapping[i * tp : (i + 1) * tp]``.
    """

    ctx_tokens: int
    tokens: Tuple[int, ...]
    mapping: Tuple[int, ...]
    exact: bool
    clamped: bool
    neighbours: Tuple[int, ...]
    #: an exact row's stored prediction; between rows the linear interpolation of the two
    #: neighbours' (an estimate: ``kvr lookup`` simulates the partition); None when clamped
    predicted_ttft_s: Optional[float]
    tp: int = 1

    @property
    def method(self) -> str:
        """``"exact"`` or ``"interpolated"``, as ``kvr lookup --json`` says."""
        return "exact" if self.exact else "interpolated"


def llround(x: float) -> int:
    """C's ``llround`` for x >= 0: halves away from zero (Python's ``round`` is to even)."""
    r = math.floor(x)
    return int(r + 1 if x - r >= 0.5 else r)


def grain(p: int, ctx: int, granularity: int) -> int:
    """The grain boundaries round to: the granularity, or 1 when ``ctx < p * granularity``."""
    return granularity if granularity >= 1 and ctx >= p * granularity else 1


def fractions(tokens: Sequence[int]) -> List[float]:
    """Each chunk's share of the context (``kvr_lookup_fractions``)."""
    total = 0.0
    for t in tokens:
        total += float(t)
    p = len(tokens)
    return [float(t) / total if total > 0 else 1.0 / p for t in tokens]


def round_fractions(frac: Sequence[float], ctx: int, granularity: int) -> List[int]:
    """Chunk fractions back to token counts summing to ``ctx`` (``kvr_lookup_round``)."""
    p = len(frac)
    g = grain(p, ctx, granularity)
    cum, prev, out = 0.0, 0, []
    for i in range(p - 1):
        cum += frac[i]
        want = cum * float(ctx) / float(g)
        b = llround(want) * g if want > 0 else 0
        lo, hi = prev + g, (ctx - (p - 1 - i) * g) // g * g
        b = lo if b < lo else hi if b > hi else b
        out.append(b - prev)
        prev = b
    out.append(ctx - prev)
    return out


def _from_rows(lo: Row, hi: Row, ctx: int) -> Tuple[List[int], float]:
    span = hi.ctx_tokens - lo.ctx_tokens
    w = 0.0 if span == 0 else float(ctx - lo.ctx_tokens) / float(span)
    f_lo, f_hi = fractions(lo.partition_tokens), fractions(hi.partition_tokens)
    f = [a + w * (b - a) for a, b in zip(f_lo, f_hi)]
    ttft = lo.predicted_ttft_s + w * (hi.predicted_ttft_s - lo.predicted_ttft_s)
    return round_fractions(f, ctx, lo.granularity_tokens), ttft


def check_ctx(ctx: object, what: str = "ctx") -> int:
    """A query's context: an integer (or numpy integer; never a bool or 12500.5) in
    1..MAX_CTX, clamp or not; else :class:`LookupError_` naming it."""
    if isinstance(ctx, bool):
        raise LookupError_(f"{what} {ctx!r} is not a number of tokens")
    n = as_index(ctx)
    if n is None:
        raise LookupError_(f"{what} {ctx!r} is not an integer number of tokens")
    if not 1 <= n <= MAX_CTX:
        raise LookupError_(f"{what} {n} is outside 1..{MAX_CTX} (kvr's cap on --ctx)")
    return n


def solve(rows: Sequence[Row], ctx: int, clamp: bool = False) -> Answer:
    """The partition for ``ctx`` from the rows of one key, sorted by ``ctx_tokens``."""
    if not rows:
        raise LookupError_("no rows for this key")
    ctx = check_ctx(ctx)
    tp, n = rows[0].tp_degree, rows[0].stages
    if ctx < n:  # every chunk (one per stage) needs a token
        raise LookupError_(f"ctx {ctx} is smaller than the {n} chunks")
    k = 0
    while k < len(rows) and rows[k].ctx_tokens < ctx:
        k += 1
    # the GPUs are the lower neighbour's (the exact row's; the end row's when clamped), as
    # kvr lookup answers: rows of one key may map the chain differently at different contexts
    if k < len(rows) and rows[k].ctx_tokens == ctx:
        r = rows[k]
        return Answer(ctx, tuple(r.partition_tokens), tuple(r.mapping), True, False, (ctx,),
                      r.predicted_ttft_s, tp)
    if k == 0 or k == len(rows):
        if not clamp:
            raise OutOfRange(f"ctx {ctx} is outside the table's range "
                             f"[{rows[0].ctx_tokens}, {rows[-1].ctx_tokens}] (use clamp)")
        end = rows[0 if k == 0 else -1]
        tokens, _ = _from_rows(end, end, ctx)
        # the end row's time is not this context's: no estimate rather than a wrong one
        return Answer(ctx, tuple(tokens), tuple(end.mapping), False, True, (end.ctx_tokens,),
                      None, tp)
    tokens, ttft = _from_rows(rows[k - 1], rows[k], ctx)
    return Answer(ctx, tuple(tokens), tuple(rows[k - 1].mapping), False, False,
                  (rows[k - 1].ctx_tokens, rows[k].ctx_tokens), ttft, tp)



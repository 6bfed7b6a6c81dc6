"""Per-rank token ranges for a context-parallel prefill (the consumer side of a table).

A serving system that splits one long prompt over ``p`` GPUs (KV-Runahead: rank ``i`` computes
chunk ``i``, receives the KV cache of all earlier tokens from rank ``i - 1`` and passes its own
on to ``i + 1``) needs, per request, which tokens each rank owns. :func:`token_ranges` answers
that from a table; :class:`PrefillPlanner` wraps a loaded table for a scheduler.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

from .lookup import Answer, check_ctx
from .table import LookupError_, PathLike, Table

__all__ = ["RankRange", "token_ranges", "ranges_of", "PrefillPlanner"]


@dataclass(frozen=True)
class RankRange:
    """Tokens ``[start, end)`` of the prompt, computed at chain position ``position`` on GPU
    ``gpu`` (``mapping[position]``); a hybrid layout (tp > 1) gives one range per GPU, the
    ``tp`` GPUs of a stage sharing its range (position = stage * tp + shard)."""

    position: int
    gpu: int
    start: int
    end: int

    @property
    def n_tokens(self) -> int:
        return self.end - self.start


def ranges_of(answer: Answer) -> List[RankRange]:
    """The contiguous ranges of an answer, earliest tokens first."""
    out, start, t = [], 0, answer.tp
    for i, n in enumerate(answer.tokens):
        for j in range(t):
            out.append(RankRange(i * t + j, answer.mapping[i * t + j], start, start + n))
        start += n
    return out


def token_ranges(table: Table, model: str, machine: str, prompt_tokens: int, p: int,
                 clamp: bool = True) -> List[RankRange]:
    """Per-rank ranges for a prompt of ``prompt_tokens`` on ``p`` ranks. ``clamp`` (default on
    for serving) extends the nearest end row's split to prompts outside the table."""
    return ranges_of(table.lookup(model, machine, p, prompt_tokens, clamp=clamp))


class PrefillPlanner:
    """One model on one machine: ``plan(prompt_tokens, p)`` → ranges. Loads the table once;
    each call is a few microseconds of arithmetic. ``min_tokens_per_rank`` lowers p for short
    prompts (each rank then gets at least that many tokens); None keeps p as asked."""

    def __init__(self, table: "Table | PathLike", model: str, machine: str,
                 min_tokens_per_rank: Optional[int] = None) -> None:
        self.table = table if isinstance(table, Table) else Table.load(table)
        self.model, self.machine = model, machine
        self.min_tokens_per_rank = min_tokens_per_rank
        self._available = sorted({r.p for r in self.table.rows
                                  if (r.model, r.machine) == (model, machine)})
        if not self._available:
            raise LookupError_(f"no rows for {model} on {machine}")

    @property
    def degrees(self) -> List[int]:
        """The GPU counts the table has rows for."""
        return list(self._available)

    def plan(self, prompt_tokens: int, p: int) -> List[RankRange]:
        """The ranges of a prompt of ``prompt_tokens`` (1..MAX_CTX) on up to ``p`` >= 1 ranks;
        anything else is a :class:`LookupError_` naming the value, p = 1 included."""
        prompt_tokens = check_ctx(prompt_tokens, "prompt_tokens")
        if isinstance(p, bool) or not isinstance(p, int) or p < 1:
            raise LookupError_(f"p {p!r} is not a number of ranks >= 1")
        if p == 1:
            return [RankRange(0, 0, 0, prompt_tokens)]
        if self.min_tokens_per_rank:
            fit = [q for q in self._available if q <= p and
                   prompt_tokens >= q * self.min_tokens_per_rank]
            if not fit:
                return [RankRange(0, 0, 0, prompt_tokens)]
            p = max(fit)
        return token_ranges(self.table, self.model, self.machine, prompt_tokens, p)

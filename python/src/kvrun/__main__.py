"""``kvrun-lookup TABLE MODEL MACHINE P CTX [--clamp] [--tp T] [--model-hash H]
[--machine-hash H] [--scheme S] [--method M]``: one answer as JSON (the fields of
``kvr lookup --json``: ctx_tokens, tp, partition_tokens, mapping, method, clamped, neighbours)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable, List, Optional

from .lookup import MAX_CTX
from .table import LookupError_, Table


def _count(what: str, lo: int, hi: int) -> Callable[[str], int]:
    """A count as the CSV rule reads one: plain decimal digits only (int() would also take
    ' 12500', '+12500' and '1_2500'), in lo..hi."""
    def parse(text: str) -> int:
        if not (text.isascii() and text.isdigit()):
            raise argparse.ArgumentTypeError(f"{what} {text!r} is not plain decimal digits")
        if not lo <= int(text) <= hi:
            raise argparse.ArgumentTypeError(f"{what} {text} is outside {lo}..{hi}")
        return int(text)
    return parse


class _Once(argparse.Action):
    """An option given twice is refused, naming it (argparse keeps the last silently)."""

    def __call__(self, parser: argparse.ArgumentParser, ns: argparse.Namespace, values: Any,
                 option_string: Optional[str] = None) -> None:
        seen = ns.__dict__.setdefault("_given", set())
        if self.dest in seen:
            parser.error(f"{option_string} given twice")
        seen.add(self.dest)
        setattr(ns, self.dest, True if self.nargs == 0 else values)


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="kvrun-lookup", description=__doc__, allow_abbrev=False)
    ap.add_argument("table"), ap.add_argument("model"), ap.add_argument("machine")
    ap.add_argument("p", type=_count("p", 1, 64))
    ap.add_argument("ctx", type=_count("ctx", 1, MAX_CTX))
    ap.add_argument("--clamp", action=_Once, nargs=0, default=False)
    ap.add_argument("--tp", action=_Once, type=_count("--tp", 1, 64), default=1,
                    help="the layout's TP degree (default 1)")
    ap.add_argument("--model-hash", action=_Once, help="the model definition, when the table has two")
    ap.add_argument("--machine-hash", action=_Once,
                    help="the machine definition, when the table has two")
    ap.add_argument("--scheme", action=_Once, default="kvr")
    ap.add_argument("--method", action=_Once, default="hier", help="the search method of the rows")
    a = ap.parse_args(argv)
    try:
        ans = Table.load(a.table).lookup(a.model, a.machine, a.p, a.ctx, clamp=a.clamp, tp=a.tp,
                                         model_hash=a.model_hash, machine_hash=a.machine_hash,
                                         scheme=a.scheme, method=a.method)
    except (LookupError_, OSError) as e:
        print(f"kvrun-lookup: {e}", file=sys.stderr)
        return 2
    json.dump({"ctx_tokens": ans.ctx_tokens, "tp": ans.tp, "partition_tokens": list(ans.tokens),
               "mapping": list(ans.mapping), "method": ans.method, "clamped": ans.clamped,
               "neighbours": list(ans.neighbours)}, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``kvrun-lookup TABLE MODEL MACHINE P CTX [--clamp] [--tp T] [--model-hash H]
[--machine-hash H] [--scheme S] [--method M]``: one answer as JSON (the fields of
``kvr lookup --json``: ctx_tokens, tp, partition_tokens, mapping, method, clamped, neighbours)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional

from .table import LookupError_, Table


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="kvrun-lookup", description=__doc__)
    ap.add_argument("table"), ap.add_argument("model"), ap.add_argument("machine")
    ap.add_argument("p", type=int), ap.add_argument("ctx", type=int)
    ap.add_argument("--clamp", action="store_true")
    ap.add_argument("--tp", type=int, default=1, help="the layout's TP degree (default 1)")
    ap.add_argument("--model-hash", help="the model definition, when the table has two")
    ap.add_argument("--machine-hash", help="the machine definition, when the table has two")
    ap.add_argument("--scheme", default="kvr")
    ap.add_argument("--method", default="hier", help="the search method of the rows")
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

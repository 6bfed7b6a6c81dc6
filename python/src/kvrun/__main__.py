"""``kvrun-lookup TABLE MODEL MACHINE P CTX [--clamp]``: one answer as JSON (the fields of
``kvr lookup --json``: ctx_tokens, partition_tokens, method, clamped, neighbours)."""

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
    a = ap.parse_args(argv)
    try:
        ans = Table.load(a.table).lookup(a.model, a.machine, a.p, a.ctx, clamp=a.clamp)
    except (LookupError_, OSError) as e:
        print(f"kvrun-lookup: {e}", file=sys.stderr)
        return 2
    json.dump({"ctx_tokens": ans.ctx_tokens, "partition_tokens": list(ans.tokens),
               "mapping": list(ans.mapping), "method": ans.method, "clamped": ans.clamped,
               "neighbours": list(ans.neighbours)}, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())

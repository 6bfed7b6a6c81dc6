#!/usr/bin/env python3
"""Context-parallel prefill: which tokens of a prompt each rank computes.

    python3 cp_prefill.py TABLE MODEL MACHINE PROMPT_TOKENS P

prints the ranges as JSON: [{"position": 0, "gpu": 0, "start": 0, "end": 4480}, ...]. Rank i
computes tokens [start, end) (earliest first), receives the KV cache of [0, start) from rank
i - 1, and passes [0, end) on to rank i + 1; the last rank emits the first token.
"""

import json
import sys

import kvrun


def main() -> int:
    if len(sys.argv) != 6:
        print(__doc__, file=sys.stderr)
        return 2
    table, model, machine, prompt, p = sys.argv[1:]
    ranges = kvrun.token_ranges(kvrun.Table.load(table), model, machine, int(prompt), int(p))
    json.dump([r.__dict__ for r in ranges], sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())

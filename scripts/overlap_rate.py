#!/usr/bin/env python3
"""The overlap cap that `kvr calibrate --overlap-bw` takes, read from `kvr validate --timeline
--json` (scripts/gpu/multi.sh, phase a): the median rate of the transfers a receiver waited for
(waited_transfer_Bps), printed as RATE in B/s. Exits 1 naming what is wrong when the output is
not JSON, has no such key, counts no waited transfer (the timeline measured no overlap) or gives
a rate that is not a positive number, so that no profile is fitted without its cap.

Usage: scripts/overlap_rate.py VALIDATE.json   (tests/test_cli.sh checks it)"""
import json
import math
import sys


def fail(why):
    print("overlap_rate: %s: %s" % (sys.argv[1], why), file=sys.stderr)
    sys.exit(1)


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        sys.exit(2)
    try:
        d = json.load(open(sys.argv[1]))
    except (OSError, ValueError) as e:
        fail("not kvr validate --timeline --json's output (%s)" % e)
    if not isinstance(d, dict) or "waited_transfer_Bps" not in d or "waited_transfers" not in d:
        fail("no waited_transfers / waited_transfer_Bps (not kvr validate --timeline --json?)")
    n, rate = d["waited_transfers"], d["waited_transfer_Bps"]
    if not isinstance(n, int) or n <= 0:
        fail("no transfer that a receiver waited for: the timeline measures no overlap rate")
    if not isinstance(rate, (int, float)) or not math.isfinite(rate) or rate <= 0:
        fail("waited_transfer_Bps %r is not a positive rate" % (rate,))
    print("%.0fB/s" % rate)


main()

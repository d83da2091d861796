#!/usr/bin/env python3
"""`make storm`: a seeded storm of overlapping events against a guest on a debug kernel, under
traffic, per driver (tests/nfr/storm.py, the plan in tests/nfr/stormplan.py).

  make storm SEED=<n>[,<n>...] EVENTS=<n> DRIVERS="c rust" REPLAY=<i> STORM_OUT=<file>

SEED=0 (the default) draws a seed and prints it. Each driver name runs on its debug flavour
(`rust` -> rust-debug); a flavour named in full runs as it is. REPLAY=i runs each plan up to and
including event i, so that a failure can be reproduced and then shrunk.

Prints, per seed, one table with the drivers side by side: events run by kind, refused
operations with their errnos, invariant failures, splats by class, leaks, traffic
interruptions longer than the bound, packets lost in total and per 100 events, the time to
recover after each settle, and whether the failover module unloaded. Writes the whole report as
JSON to --out. Exits non-zero on any failure of any driver: an invariant, a splat, a leak, a
refused operation that changed state, an invalid one accepted, traffic not back through the
primary within the bound, the module not unloading, or a guest that stopped.
"""

import argparse
import json
import signal
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from nfr import config  # noqa: E402
from nfr.netns import NetNS  # noqa: E402
from nfr.storm import Storm, report_table  # noqa: E402
from nfr.stormplan import draw_seed, plan  # noqa: E402


def flavour_of(driver):
    return driver if driver.endswith("-debug") or "-" in driver else f"{driver}-debug"


def run_one(flavour, p, log):
    ns = NetNS()
    try:
        t0 = time.monotonic()
        rep = Storm(flavour, p, ns, log=log).run()
        rep["seconds"] = round(time.monotonic() - t0, 1)
        return rep
    finally:
        ns.close()


def _interrupted(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main():
    # Stopped by SIGINT or SIGTERM, the storm stops its guests, traffic and namespace on the
    # way out. A shell without job control starts a background command with SIGINT ignored,
    # which Python keeps: take it back.
    signal.signal(signal.SIGINT, _interrupted)
    signal.signal(signal.SIGTERM, _interrupted)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", default="0", help="seed(s), comma-separated; 0 draws one")
    ap.add_argument("--events", type=int, default=500)
    ap.add_argument("--drivers", default="c rust", help="drivers or flavours, space/comma")
    ap.add_argument("--flavours", default="",
                    help="exact flavours instead (e.g. a production kernel, for a quick look)")
    ap.add_argument("--replay", type=int, default=None, help="run each plan up to this event")
    ap.add_argument("--out", default=str(config.OUT / "storm.json"))
    a = ap.parse_args()

    seeds = []
    for s in a.seed.replace(",", " ").split():
        s = int(s)
        if s == 0:
            s = draw_seed()
            print(f"storm: SEED=0, drew seed {s}", flush=True)
        seeds.append(s)
    flavours = a.flavours.replace(",", " ").split() or \
        [flavour_of(d) for d in a.drivers.replace(",", " ").split()]
    for f in flavours:
        config.stage(f)  # fails early, with the build hint, if it is not built

    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {"events": a.events, "replay": a.replay, "seeds": {}}
    failed = False
    for seed in seeds:
        p = plan(seed, a.events)
        if a.replay is not None:
            p = p.upto(a.replay)
        print(f"storm: seed {seed}: {len(p.events)} events, {p.pairs} failover pair(s), "
              f"on {', '.join(flavours)}; kinds: "
              f"{dict(Counter(e.kind for e in p.events).most_common())}", flush=True)
        reports = []
        for f in flavours:
            print(f"storm: seed {seed} on {f} ...", flush=True)
            rep = run_one(f, p, log=lambda text: print(text, flush=True))
            reports.append(rep)
            result["seeds"].setdefault(str(seed), {})[f] = rep
            out.write_text(json.dumps(result, indent=1))
            failed |= not rep["passed"]
            print(f"storm: seed {seed} on {f}: {'passed' if rep['passed'] else 'FAILED'} in "
                  f"{rep['seconds'] / 60:.1f} min", flush=True)
        print(f"\nstorm: seed {seed}\n{report_table(reports)}\n", flush=True)
    print(f"storm: report in {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

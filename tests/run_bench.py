#!/usr/bin/env python3
"""`make bench`: packets lost on primary unplug, replug and live migration, per driver.

Each run boots a fresh guest, brings up its failover group, then measures, under 100 pps ping in
each direction: QMP device_del of the primary, device_add of it, and a live migration to a second
QEMU on 127.0.0.1. Prints a table per driver and writes JSON to --out:

  {"<driver>": {"unplug"|"replug"|"migrate": {"guest_to_peer_lost": [..],
   "peer_to_guest_lost": [..], "max_gap_ms": [..], "downtime_ms": [..] (migrate only)}}}

Details of every run (timings, per-direction ping results) go beside it, as *-details.json.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from nfr import config  # noqa: E402
from nfr.bench import Bench  # noqa: E402
from nfr.vm import accel  # noqa: E402

EVENTS = ("unplug", "replug", "migrate")
FIELDS = ("guest_to_peer_lost", "peer_to_guest_lost", "max_gap_ms")


def mmm(xs):
    if not xs:
        return "-"
    med = statistics.median(xs)
    med = int(med) if med == int(med) else med
    return f"{min(xs):g} / {med:g} / {max(xs):g}"


def table(driver, data, runs, model):
    lines = [f"driver {driver}: {runs} runs, primary {model}, {accel(driver).upper()}, "
             f"{config.SMP} vCPU, 100 pps each way; packets lost min / median / max",
             f"{'event':<9} {'guest->peer lost':<18} {'peer->guest lost':<18} "
             f"{'longest gap ms':<22} {'QEMU downtime ms':<18}"]
    for ev in EVENTS:
        d = data[ev]
        lines.append(f"{ev:<9} {mmm(d['guest_to_peer_lost']):<18} {mmm(d['peer_to_guest_lost']):<18} "
                     f"{mmm(d['max_gap_ms']):<22} {mmm(d.get('downtime_ms', [])):<18}")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", default=str(config.OUT / "bench.json"))
    ap.add_argument("--primary", default="e1000e")
    ap.add_argument("--drivers", default=",".join(config.flavours()))
    a = ap.parse_args()
    drivers = [d for d in a.drivers.split(",") if d]
    if not drivers:
        sys.exit("no driver flavour is built: run `make build`")

    result, details = {}, {}
    for driver in drivers:
        data = {ev: {f: [] for f in FIELDS} for ev in EVENTS}
        data["migrate"]["downtime_ms"] = []
        details[driver] = []
        for run in range(a.runs):
            t0 = time.monotonic()
            with Bench(driver, primary_model=a.primary) as b:
                rec = {"unplug": b.unplug(), "replug": b.replug(), "migrate": b.migrate()}
            for ev in EVENTS:
                for f in FIELDS:
                    data[ev][f].append(rec[ev][f])
            data["migrate"]["downtime_ms"].append(rec["migrate"]["downtime_ms"])
            details[driver].append(rec)
            print(f"[bench] {driver} run {run + 1}/{a.runs} ({time.monotonic() - t0:.0f} s): " +
                  ", ".join(f"{ev} {rec[ev]['guest_to_peer_lost']}/{rec[ev]['peer_to_guest_lost']}"
                            for ev in EVENTS), flush=True)
        result[driver] = data

    print()
    for driver in drivers:
        print(table(driver, result[driver], a.runs, a.primary))
        print()
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    out.with_name(out.stem + "-details.json").write_text(json.dumps(details, indent=1) + "\n")
    print(f"JSON: {out}")


if __name__ == "__main__":
    main()

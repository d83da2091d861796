#!/usr/bin/env python3
"""`make bench`: the C and the Rust driver side by side, measured in the same invocation.

Each run boots a fresh guest per driver (the drivers alternate within a run, their order swapped
from one run to the next, so both see the same machine load) and measures, in that guest:

  unplug, replug, migrate                  100 pps ping each way; QMP device_del of the primary,
                                           device_add of it, live migration to a second QEMU
  unplug_peer_only, replug_peer_only,      the same with only the peer pinging: the guest sends
  migrate_peer_only                        nothing of its own, so a stale bridge entry shows
  migrate_tcp                              an iperf3 TCP stream (the guest sends, 0.2 s intervals)
                                           across a live migration: did it survive, its dip
  overhead                                 iperf3 TCP each way through the master, then through
                                           the primary alone (rmmod virtio_net), then through the
                                           master again; 4 streams of 3 s each way on each path,
                                           median per path; ratio master / direct

The TCP parts (migrate_tcp, overhead) cost about 3 min per driver and run: --tcp / NFR_BENCH_TCP
(all, migrate, overhead, none; default all) picks them, --tcp-runs / NFR_BENCH_TCP_RUNS limits
them to the first N runs (default 0: every run).

Prints one table, drivers side by side, min / median / max over the runs, and the design's
targets per driver and event, judged on the worst run: unplug and replug lose nothing in either
direction; a migration loses at most ceil(QEMU downtime_ms / 10) + 1 packets each way (one per
10 ms of downtime at 100 pps, plus one), each run against its own downtime; and through the
master, the ratio master / direct of TCP throughput, over C's ratio in the same run, is at least
1.0 within the noise: the spread of the runs reaches 1.0.

QEMU's downtime is the source's figure: from its STOP to the end of the stream. The guest stays
paused until the destination has loaded the last state and started (its RESUME event), and no
guest driver can pass a frame while the guest is paused. So the table also shows that pause,
from the QMP events' timestamps, and the same rule against it (ceil(paused_ms / 10) + 1): what
a driver loses beyond it, it lost of its own, after the guest ran again.

JSON in --out, one list entry per run (written after every run, so a failed bench keeps what it
measured):

  {"<driver>": {
    "unplug"|"replug"|"migrate": {"guest_to_peer_lost": [..], "peer_to_guest_lost": [..],
        "max_gap_ms": [..], "downtime_ms": [..] (migrate only), "target_pass": [..],
        "target_limit": [..], "paused_ms": [..], "pause_limit": [..],
        "pause_pass": [..] (migrate only)},
    "unplug_peer_only"|"replug_peer_only"|"migrate_peer_only": {"peer_to_guest_lost": [..],
        "max_gap_ms": [..], "downtime_ms": [..] (migrate only), "target_pass": [..],
        "target_limit": [..], "paused_ms": [..], "pause_limit": [..],
        "pause_pass": [..] (migrate only)},
    "migrate_tcp": {"run": [..], "survived": [..], "mbps": [..], "baseline_mbps": [..],
        "min_mbps": [..], "below_half_s": [..], "recovered_s": [..], "downtime_ms": [..],
        "paused_ms": [..]},
    "overhead": {"run": [..], "master_tx_mbps": [..], "direct_tx_mbps": [..], "ratio_tx": [..],
        "master_rx_mbps": [..], "direct_rx_mbps": [..], "ratio_rx": [..],
        "ratio_tx_vs_c": [..], "ratio_rx_vs_c": [..] (other drivers than c: this driver's
        ratio / c's, same run), "master_tx_vs_c": [..], "master_rx_vs_c": [..] (the same for
        the master's throughput alone)}}}

tx is guest -> peer, rx peer -> guest; "run" is the bench run (0-based) a TCP entry comes from.
migrate_tcp: survived = iperf3 ran its 20 s and exited 0 without a JSON error (no reset);
recovered_s = from the migration until the stream is back at or above half its baseline (the
median before the migration) and stays there for 2 s, null if it never was.
Details of every run (timings, ping results, iperf3 intervals) go beside it, as *-details.json:
{"<driver>": [{event: {...}} per run]}.
"""

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from nfr import config  # noqa: E402
from nfr.bench import Bench  # noqa: E402
from nfr.plot import figure  # noqa: E402
from nfr.vm import accel  # noqa: E402

EVENTS = ("unplug", "replug", "migrate")
PEER_ONLY = tuple(f"{ev}_peer_only" for ev in EVENTS)
FIELDS = ("guest_to_peer_lost", "peer_to_guest_lost", "max_gap_ms")
PO_FIELDS = ("peer_to_guest_lost", "max_gap_ms")
TCP_FIELDS = ("survived", "mbps", "baseline_mbps", "min_mbps", "below_half_s", "recovered_s",
              "downtime_ms", "paused_ms")
OH_FIELDS = ("master_tx_mbps", "direct_tx_mbps", "ratio_tx",
             "master_rx_mbps", "direct_rx_mbps", "ratio_rx")
TCP_CHOICES = ("all", "migrate", "overhead", "none")


def migrate_limit(ms):
    """Issue 5: at 100 pps, one packet per 10 ms of QEMU's downtime (or of the pause), plus one."""
    return math.ceil(ms / 10) + 1


def num(x):
    if x == int(x):
        return str(int(x))
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.1f}" if abs(x) >= 10 else f"{x:.3g}"


def mmm(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return "-"
    return f"{num(min(xs))} / {num(statistics.median(xs))} / {num(max(xs))}"


def target(ev, d, key="target"):
    """PASS/FAIL of the design's target for event `ev`, judged on the worst run; key "pause" judges
    a migration against the guest's measured pause instead of QEMU's downtime."""
    passed, limit = d.get(f"{key}_pass"), d.get(f"{key}_limit")
    if not passed:
        return "-"
    ok = all(passed)
    ways = [f for f in ("guest_to_peer_lost", "peer_to_guest_lost") if f in d]
    if not ev.startswith("migrate"):
        worst = "/".join(str(max(d[f])) for f in ways)
        return f"{'PASS' if ok else 'FAIL'} (max {worst})"
    # Each run against its own downtime: show the run that came closest to (or furthest over)
    # its limit.
    n = len(passed)
    i = max(range(n), key=lambda i: max(d[f][i] for f in ways) - limit[i])
    lost = "/".join(str(d[f][i]) for f in ways)
    over = n - sum(passed)
    return f"{'PASS' if ok else 'FAIL'} ({over}/{n} over; worst {lost} vs <= {limit[i]})"


def ratio_target(xs):
    """PASS when Rust / C reaches 1.0 within the noise: the spread of the runs includes it, or
    lies above it."""
    if not xs:
        return "-"
    return f"{'PASS' if max(xs) >= 1.0 else 'FAIL'} (max {num(max(xs))})"


def rows(data, drivers):
    """-> [(event, measure, {driver: cell})] for the table."""
    out = []

    def add(ev, label, cell):
        cells = {drv: cell(data[drv][ev]) if ev in data[drv] else "-" for drv in drivers}
        out.append((ev, label, cells))

    for ev in EVENTS + PEER_ONLY:
        if ev in EVENTS:
            add(ev, "guest->peer lost", lambda d: mmm(d["guest_to_peer_lost"]))
        add(ev, "peer->guest lost", lambda d: mmm(d["peer_to_guest_lost"]))
        add(ev, "longest gap ms", lambda d: mmm(d["max_gap_ms"]))
        if ev.startswith("migrate"):
            add(ev, "QEMU downtime ms", lambda d: mmm(d["downtime_ms"]))
            add(ev, "guest paused ms", lambda d: mmm(d["paused_ms"]))
        add(ev, "target " + ("<= ceil(dt/10)+1" if ev.startswith("migrate") else "0 lost"),
            lambda d, e=ev: target(e, d))
        if ev.startswith("migrate"):
            add(ev, "<= ceil(paused/10)+1", lambda d, e=ev: target(e, d, "pause"))
    if any(data[drv].get("migrate_tcp", {}).get("run") for drv in drivers):
        ev = "migrate_tcp"
        add(ev, "survived (runs)",
            lambda d: f"{sum(d['survived'])}/{len(d['survived'])}" if d["survived"] else "-")
        add(ev, "baseline Mbit/s", lambda d: mmm(d["baseline_mbps"]))
        add(ev, "min Mbit/s", lambda d: mmm(d["min_mbps"]))
        add(ev, "s below 50% baseline", lambda d: mmm(d["below_half_s"]))
        add(ev, "recovered (runs)", lambda d: f"{sum(x is not None for x in d['recovered_s'])}/"
            f"{len(d['recovered_s'])}" if d["recovered_s"] else "-")
        add(ev, "s to recover 50%", lambda d: mmm(d["recovered_s"]))
        add(ev, "QEMU downtime ms", lambda d: mmm(d["downtime_ms"]))
        add(ev, "guest paused ms", lambda d: mmm(d["paused_ms"]))
    if any(data[drv].get("overhead", {}).get("run") for drv in drivers):
        ev = "overhead"
        for way in ("tx", "rx"):
            add(ev, f"master/direct {way}", lambda d, w=way: mmm(d[f"ratio_{w}"]))
            add(ev, f"master {way} Mbit/s", lambda d, w=way: mmm(d[f"master_{w}_mbps"]))
            add(ev, f"direct {way} Mbit/s", lambda d, w=way: mmm(d[f"direct_{w}_mbps"]))
            add(ev, f"master/direct {way} / c's", lambda d, w=way: mmm(d.get(f"ratio_{w}_vs_c", [])))
            add(ev, "target >= 1.0 in spread",
                lambda d, w=way: ratio_target(d.get(f"ratio_{w}_vs_c", [])))
            add(ev, f"master {way} / c master", lambda d, w=way: mmm(d.get(f"master_{w}_vs_c", [])))
    return out


def table(data, drivers, runs, model, tcp_note):
    head = (f"make bench: {runs} run{'s' if runs != 1 else ''}, drivers {' and '.join(drivers)} "
            f"alternating in each run, primary {model}, {accel(drivers[0]).upper()}, "
            f"{config.SMP} vCPU, 100 pps ping; min / median / max over the runs\n"
            f"tx = guest->peer, rx = peer->guest; TCP: {tcp_note}\n"
            "targets, judged on the worst run: unplug/replug lose 0 each way; "
            "migration <= ceil(QEMU downtime ms / 10) + 1 each way, per run; TCP master/direct "
            "over C's reaches 1.0 within the runs' spread;\n"
            "guest paused = source STOP to destination RESUME (QMP event times); QEMU's downtime "
            "leaves out the destination's load and start")
    rs = rows(data, drivers)
    w_ev = max(len("event"), *(len(r[0]) for r in rs))
    w_me = max(len("measure"), *(len(r[1]) for r in rs))
    w = {drv: max(len(drv), *(len(r[2][drv]) for r in rs)) for drv in drivers}
    lines = [head, "",
             (f"{'event':<{w_ev}}  {'measure':<{w_me}}  "
              + "  ".join(f"{d:<{w[d]}}" for d in drivers)).rstrip()]
    lines.append("-" * len(lines[-1]))
    last = None
    for ev, label, cells in rs:
        if last is not None and ev != last:
            lines.append("")
        lines.append(f"{ev if ev != last else '':<{w_ev}}  {label:<{w_me}}  "
                     + "  ".join(f"{cells[d]:<{w[d]}}" for d in drivers).rstrip())
        last = ev
    return "\n".join(lines)


def empty():
    data = {ev: {f: [] for f in FIELDS} for ev in EVENTS}
    data.update({ev: {f: [] for f in PO_FIELDS} for ev in PEER_ONLY})
    for ev in ("migrate", "migrate_peer_only"):
        data[ev].update(downtime_ms=[], target_limit=[], paused_ms=[], pause_limit=[],
                        pause_pass=[])
    for ev in EVENTS + PEER_ONLY:
        data[ev]["target_pass"] = []
    data["migrate_tcp"] = {f: [] for f in ("run",) + TCP_FIELDS}
    data["overhead"] = {f: [] for f in ("run",) + OH_FIELDS}
    return data


def record(data, rec, run):
    """Add one run's measures of one driver to its lists."""
    for ev in EVENTS + PEER_ONLY:
        r, d = rec[ev], data[ev]
        ways = [f for f in ("guest_to_peer_lost", "peer_to_guest_lost") if f in r]
        for f in d:
            if f in r:
                d[f].append(r[f])
        if ev.startswith("migrate"):
            for key, ms in (("target", "downtime_ms"), ("pause", "paused_ms")):
                lim = migrate_limit(r[ms])
                d[f"{key}_limit"].append(lim)
                d[f"{key}_pass"].append(all(r[f] <= lim for f in ways))
        else:
            d["target_pass"].append(all(r[f] == 0 for f in ways))
    if "migrate_tcp" in rec:
        data["migrate_tcp"]["run"].append(run)
        for f in TCP_FIELDS:
            data["migrate_tcp"][f].append(rec["migrate_tcp"][f])
    if "overhead" in rec:
        o, d = rec["overhead"], data["overhead"]
        d["run"].append(run)
        for way in ("tx", "rx"):
            d[f"master_{way}_mbps"].append(o["master"][way])
            d[f"direct_{way}_mbps"].append(o["direct"][way])
            d[f"ratio_{way}"].append(o[f"ratio_{way}"])


def vs_c(result):
    """Each other driver's ratio master / direct and master throughput over c's, run by run
    where both were measured."""
    if "c" not in result:
        return
    c = result["c"]["overhead"]
    for drv, data in result.items():
        o = data["overhead"]
        if drv == "c":
            continue
        for way in ("tx", "rx"):
            for key, f in (("ratio", f"ratio_{way}"), ("master", f"master_{way}_mbps")):
                o[f"{key}_{way}_vs_c"] = [round(m / c[f][c["run"].index(r)], 3)
                                          for r, m in zip(o["run"], o[f]) if r in c["run"]]


# The events drawn (see figure_run): the figure's name and the record's key.
FIGURES = {"unplug": "unplug", "replug": "replug", "migration": "migrate"}


def figure_run(driver, model):
    """The events of FIGURES once more on a fresh guest, each with its timeline: a run of its
    own, as the guest's counter sampler it needs must not weigh on the measured runs."""
    print(f"[bench] figures {driver}: booting", flush=True)
    with Bench(driver, primary_model=model, record=True) as b:
        return {"unplug": b.unplug(), "replug": b.replug(), "migrate": b.migrate()}


def figures(recs, out_dir):
    """One figure per event of FIGURES ({driver: figure_run()}), the drivers side by side ->
    their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return [figure(ev, {drv: rec[ev]["timeline"] for drv, rec in recs.items()},
                   out_dir / f"bench-{name}.png") for name, ev in FIGURES.items()]


def one_run(driver, model, tcp, tag):
    """One bench run on a fresh guest; each step says when it starts (`tag`: which run)."""
    rec = {}
    t0 = time.monotonic()

    def step(name, fn):
        print(f"[bench] {tag}: {name} ({time.monotonic() - t0:.0f} s in)", flush=True)
        rec[name] = fn()

    print(f"[bench] {tag}: booting", flush=True)
    with Bench(driver, primary_model=model) as b:
        step("unplug", b.unplug)
        step("replug", b.replug)
        step("unplug_peer_only", lambda: b.unplug(peer_only=True))
        step("replug_peer_only", lambda: b.replug(peer_only=True))
        step("migrate", b.migrate)
        step("migrate_peer_only", lambda: b.migrate(peer_only=True))
        if tcp in ("all", "migrate"):
            step("migrate_tcp", b.migrate_tcp)
        if tcp in ("all", "overhead"):
            step("overhead", b.overhead)
    return rec


def summary(rec):
    s = []
    for ev in EVENTS:
        s.append(f"{ev} {rec[ev]['guest_to_peer_lost']}/{rec[ev]['peer_to_guest_lost']}")
    s += [f"{ev} {rec[ev]['peer_to_guest_lost']}" for ev in PEER_ONLY]
    if "migrate_tcp" in rec:
        t = rec["migrate_tcp"]
        s.append(f"tcp {'survived' if t['survived'] else 'FAILED'} min {t['min_mbps']} Mbit/s "
                 f"recovered after {t['recovered_s']} s")
    if "overhead" in rec:
        s.append(f"master/direct tx {rec['overhead']['ratio_tx']} rx {rec['overhead']['ratio_rx']}")
    return ", ".join(s)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5,
                    help="measured runs (0: the figures' runs only)")
    ap.add_argument("--out", default=str(config.OUT / "bench.json"))
    ap.add_argument("--primary", default="e1000e")
    ap.add_argument("--drivers", default=",".join(config.flavours()))
    ap.add_argument("--tcp", choices=TCP_CHOICES, default=os.environ.get("NFR_BENCH_TCP", "all"),
                    help="TCP measures: migrate_tcp, overhead, both (all) or none")
    ap.add_argument("--tcp-runs", type=int, default=int(os.environ.get("NFR_BENCH_TCP_RUNS", "0")),
                    help="TCP measures in the first N runs only (0: every run)")
    a = ap.parse_args()
    drivers = [d for d in a.drivers.split(",") if d]
    if not drivers:
        sys.exit("no driver flavour is built: run `make build`")
    tcp_runs = a.tcp_runs if 0 < a.tcp_runs < a.runs else a.runs
    tcp_note = {"all": "migrate_tcp and overhead", "migrate": "migrate_tcp only",
                "overhead": "overhead only", "none": "off"}[a.tcp]
    if a.tcp != "none":
        tcp_note += (", in every run" if tcp_runs == a.runs
                     else f", in the first {tcp_runs} of {a.runs} runs")

    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    details_path = out.with_name(out.stem + "-details.json")
    result = {drv: empty() for drv in drivers}
    details = {drv: [] for drv in drivers}
    t_all = time.monotonic()
    done, total = 0, a.runs * len(drivers)
    for run in range(a.runs):
        # Swap the order every run: neither driver always boots on a machine the other just
        # loaded, or always comes last.
        for driver in drivers if run % 2 == 0 else drivers[::-1]:
            t0 = time.monotonic()
            tag = f"run {run + 1}/{a.runs} {driver}"
            rec = one_run(driver, a.primary, a.tcp if run < tcp_runs else "none", tag)
            record(result[driver], rec, run)
            details[driver].append(rec)
            done += 1
            left = (time.monotonic() - t_all) / done * (total - done)
            print(f"[bench] {tag} ({time.monotonic() - t0:.0f} s): {summary(rec)}; about "
                  f"{left / 60:.0f} min left", flush=True)
        vs_c(result)
        out.write_text(json.dumps(result, indent=1) + "\n")
        details_path.write_text(json.dumps(details, indent=1) + "\n")

    if a.runs:
        text = table(result, drivers, a.runs, a.primary, tcp_note)
        print()
        print(text)
        print()
        # The table as text too: `make patches` puts it in the series' cover letter.
        out.with_suffix(".txt").write_text(text + "\n")
    recs = {drv: figure_run(drv, a.primary) for drv in drivers}
    for path in figures(recs, out.parent / "figures"):
        print(f"figure: {path}")
    # What they were drawn from.
    (out.parent / "figures" / "bench-figures.json").write_text(json.dumps(recs, indent=1) + "\n")
    print(f"bench took {(time.monotonic() - t_all) / 60:.1f} min; JSON: {out} (details: "
          f"{details_path.name})")


if __name__ == "__main__":
    main()

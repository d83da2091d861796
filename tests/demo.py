#!/usr/bin/env python3
"""`make demo`: one narrated failover pass on the bench.

boot -> topology -> traffic on the primary -> unplug (standby) -> replug (primary) -> live
migration (destination), with 100 pps ping each way throughout each step, and a timeline of which
slave carried the guest's traffic.
"""

import argparse
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from nfr import config  # noqa: E402
from nfr.bench import Bench  # noqa: E402
from nfr.plot import figure  # noqa: E402
from nfr.traffic import PingPair  # noqa: E402
from nfr.vm import accel  # noqa: E402

TICK = 0.5


class Sampler(threading.Thread):
    """Samples the slaves' tx counters every TICK; one char per tick: P, S, - (nothing sent)."""

    def __init__(self, bench):
        super().__init__(daemon=True)
        self.bench, self.marks, self.stop_ev = bench, [], threading.Event()

    def run(self):
        last = None
        while not self.stop_ev.wait(TICK):
            try:
                c = self.bench.net.counters()
            except Exception:
                self.marks.append("?")  # agent busy re-connecting (migration)
                last = None
                continue
            cur = {k: (v[1] if v else None) for k, v in c.items()}
            if last is None:
                self.marks.append(".")
            else:
                p = cur["primary"] is not None and last["primary"] is not None and cur["primary"] > last["primary"]
                s = cur["standby"] is not None and last["standby"] is not None and cur["standby"] > last["standby"]
                self.marks.append("B" if p and s else "P" if p else "S" if s else "-")
            last = cur

    def take(self):
        m, self.marks = "".join(self.marks), []
        return m


def say(msg):
    print(f"\n== {msg}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--driver", default=(config.flavours() or ["c"])[0])
    ap.add_argument("--primary", default="e1000e")
    a = ap.parse_args()

    say(f"boot: driver '{a.driver}', QEMU q35 {accel(a.driver).upper()}, {config.SMP} vCPU; "
        f"virtio-net (failover=on) + {a.primary} (failover_pair_id), same MAC {config.FAILOVER_MAC}")
    t_boot = time.monotonic()
    with Bench(a.driver, primary_model=a.primary, record=True) as b:
        print(f"   guest up, failover group formed and primary active in {time.monotonic() - t_boot:.1f} s")
        say("topology (in the guest)")
        r = b.net.roles()
        for role in ("master", "standby", "primary"):
            d = r[role]
            print(f"   {role:<8} {d['name']:<6} driver={d['driver']:<13} master={d['master'] or '-':<6} "
                  f"carrier={d['carrier']} mtu={d['mtu']} lowers={','.join(d['lowers']) or '-'}")
        print(f"   master parent: {r['master']['dev']}")
        print(f"   guest {config.GUEST_IP4} on {r['master']['name']}; peer {config.PEER_IP4} on a bridge "
              f"in netns {b.ns.name}")

        sampler = Sampler(b)
        sampler.start()
        timeline = []

        say("traffic on the primary (3 s)")
        res = PingPair(b.ns, b.net, 3, tag="demo").start().wait()
        lost = (res["guest_to_peer"]["lost"], res["peer_to_guest"]["lost"])
        timeline.append(("steady", sampler.take(), lost, ""))
        print(f"   lost guest->peer {lost[0]}, peer->guest {lost[1]}")

        say("hot-unplug of the primary (QMP device_del) -> standby")
        u = b.unplug()
        timeline.append(("unplug", sampler.take(), (u["guest_to_peer_lost"], u["peer_to_guest_lost"]),
                         f"gap {u['max_gap_ms']} ms"))
        print(f"   DEVICE_DELETED after {u['device_deleted_s']} s; lost guest->peer "
              f"{u['guest_to_peer_lost']}, peer->guest {u['peer_to_guest_lost']}, longest gap {u['max_gap_ms']} ms")

        say("re-plug of the primary (QMP device_add) -> primary")
        p = b.replug()
        timeline.append(("replug", sampler.take(), (p["guest_to_peer_lost"], p["peer_to_guest_lost"]),
                         f"gap {p['max_gap_ms']} ms"))
        print(f"   enslaved after {p['enslaved_s']} s, carrier after {p['active_s']} s; lost guest->peer "
              f"{p['guest_to_peer_lost']}, peer->guest {p['peer_to_guest_lost']}, longest gap {p['max_gap_ms']} ms")

        say("live migration to a second QEMU on 127.0.0.1 -> destination")
        m = b.migrate()
        timeline.append(("migrate", sampler.take(), (m["guest_to_peer_lost"], m["peer_to_guest_lost"]),
                         f"gap {m['max_gap_ms']} ms, downtime {m['downtime_ms']} ms"))
        print(f"   {' -> '.join(m['states'])} in {m['total_ms']} ms (QEMU downtime {m['downtime_ms']} ms); "
              f"primary active on the destination {m['primary_active_s']} s after the start")
        print(f"   lost guest->peer {m['guest_to_peer_lost']}, peer->guest {m['peer_to_guest_lost']}, "
              f"longest gap {m['max_gap_ms']} ms")
        sampler.stop_ev.set()
        sampler.join()

        say(f"timeline: one mark per {TICK} s of which slave transmitted the guest's traffic "
            "(P primary, S standby, B both, - none, ? agent reconnecting)")
        for name, marks, (g2p, p2g), extra in timeline:
            print(f"   {name:<8} {marks:<44} lost {g2p:>3} / {p2g:<3} {extra}")
        print("   (lost: guest->peer / peer->guest packets at 100 pps)")

    say("figures: packets per second through each slave, lost pings and the event's steps")
    out = config.OUT / "figures"
    out.mkdir(parents=True, exist_ok=True)
    for name, rec in (("unplug", u), ("replug", p), ("migration", m)):
        ev = "migrate" if name == "migration" else name
        print(f"   {figure(ev, {a.driver: rec['timeline']}, out / f'demo-{name}.png')}")


if __name__ == "__main__":
    main()

"""A failover bench: one namespace, one guest with its failover group up, and the three events
(unplug, replug, live migration) measured under 100 pps ping in both directions or from the peer
only; an iperf3 TCP stream across a live migration; TCP throughput through the master against
through the primary alone."""

import statistics
import time

from . import config
from .guest import Net
from .netns import NetNS
from .timeline import Timeline, wall_to_host
from .traffic import Iperf, PingPair, dip
from .vm import Guest

MIGRATION_PORT = 4444
LEAD_S = 1.0  # traffic before the event starts
TCP_LEAD_S = 3.0  # TCP stream before the migration: slow start, then the baseline


def qmp_time(event):
    """Host time of a QMP event, in seconds."""
    ts = event["timestamp"]
    return ts["seconds"] + ts["microseconds"] / 1e6


def delta(before, after):
    """Per-role (rx, tx) difference between two Net.counters() snapshots."""
    out = {}
    for role in ("master", "standby", "primary"):
        b, a = before.get(role), after.get(role)
        out[role] = (a[0] - b[0], a[1] - b[1]) if a and b else None
    return out


# How long a replugged primary may take to be enslaved, and then active.
REPLUG_TIMEOUT = 60


class Bench:
    def __init__(self, flavour, primary_model="e1000e", modules="virtio_net,e1000e,igb",
                 with_primary=True, kunit=False, record=False):
        """record: each measured event records its timeline (nfr.timeline), for a figure."""
        self._state(flavour, primary_model, modules, record)
        self.guest = None
        try:
            self.guest = self.new_guest(kunit=kunit)
            self.guest.boot(add_primary=with_primary)
            self.net = Net(self.guest)
            self.master = self.net.setup_ip()
            if with_primary:
                self.net.wait_primary_active()
        except Exception:
            self.close()
            raise

    def _state(self, flavour, primary_model, modules, record):
        """What every bench holds before its guest boots (nfr.debian.DistroBench too)."""
        self.flavour, self.primary_model, self.modules = flavour, primary_model, modules
        self.record, self.timeline, self.paused_from = record, None, None
        self.ns = NetNS()

    def new_guest(self, **kw):
        """A guest of this bench's flavour, modules and primary (the migration destination too).
        nfr.debian.DistroBench boots its Debian root disk instead."""
        return Guest(self.ns, self.flavour, modules=self.modules,
                     primary_model=self.primary_model, **kw)

    def close(self):
        if self.guest:
            self.guest.stop()
            self.guest = None
        self.ns.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- measured events ---------------------------------------------------------------------

    def refresh(self):
        """The guest pings the peer twice: the bridge and the peer's ARP cache point at the port
        it sends from now, whatever an earlier peer-only event left behind."""
        self.net.run(f"ping -n -c 2 -i 0.2 -W 1 {config.PEER_IP4}", timeout=30)

    def mark(self, name, t=None):
        """A step of the event being measured, for its timeline (host time `t`, or now)."""
        if self.timeline:
            self.timeline.mark(name, t)

    def _window(self, seconds, event, tag, peer_only=False):
        if peer_only:
            # (With both pings, the guest's first echo request does that before the event.)
            self.refresh()
        pings = PingPair(self.ns, self.net, seconds, tag=tag, guest_ping=not peer_only)
        if self.record:
            names = {v["name"]: k for k, v in self.net.roles().items() if v}
            self.timeline, self.paused_from = Timeline(self.net, names).start(), None
        pings.start()
        try:
            time.sleep(LEAD_S)
            info = event(pings) or {}
            res = pings.wait()
        finally:
            pings.stop()
        if self.timeline:
            self.timeline.stop(self.net, self.paused_from)
            info["timeline"] = self.timeline.data(pings, res)
            self.timeline = None
        g2p, p2g = res["guest_to_peer"], res["peer_to_guest"]
        if peer_only:
            info.update(peer_to_guest_lost=p2g["lost"], max_gap_ms=p2g["gap_ms"], pings=res)
            return info
        info.update(guest_to_peer_lost=g2p["lost"], peer_to_guest_lost=p2g["lost"],
                    max_gap_ms=max(g2p["gap_ms"], p2g["gap_ms"]), pings=res)
        return info

    def unplug(self, seconds=5, peer_only=False):
        """device_del the primary under traffic."""
        before = self.net.counters()

        def ev(_):
            self.mark("device_del")
            took = self.guest.del_primary()
            self.mark("DEVICE_DELETED")
            return {"device_deleted_s": round(took, 3)}

        info = self._window(seconds, ev, "unplug", peer_only)
        self.net.wait_primary_gone()
        info["counters"] = delta(before, self.net.counters())
        return info

    def replug(self, seconds=10, model=None, peer_only=False):
        """device_add the primary under traffic; the window covers its link-up."""
        def ev(_):
            t0 = time.monotonic()
            self.mark("device_add", t0)
            self.guest.add_primary(model)
            # The window is what is measured; a debug kernel under TCG may take longer than it
            # to probe and enslave the primary (enslaved_s and active_s say how long).
            self.net.wait_primary_enslaved(timeout=max(seconds, REPLUG_TIMEOUT))
            t1 = time.monotonic()
            self.mark("enslaved", t1)
            self.net.wait_primary_active(timeout=max(seconds, REPLUG_TIMEOUT))
            self.mark("primary active")
            return {"enslaved_s": round(t1 - t0, 3), "active_s": round(time.monotonic() - t0, 3)}

        return self._window(seconds, ev, "replug", peer_only)

    def _migrate(self, timeout):
        """Live-migrate to a second QEMU on 127.0.0.1 and wait for its primary to be active;
        self.guest and self.net then are the destination's. -> timings and QEMU's figures."""
        dest = self.new_guest(name="dst", incoming_port=MIGRATION_PORT)
        try:
            src = self.guest
            src.qmp.clear_events()
            t0 = time.monotonic()
            self.mark("migrate", t0)
            src.qmp.cmd("migrate", uri=f"tcp:127.0.0.1:{MIGRATION_PORT}")
            states = []
            while True:
                st = src.qmp.cmd("query-migrate")
                if not states or states[-1] != st.get("status"):
                    states.append(st.get("status"))
                if st.get("status") in ("completed", "failed", "cancelled"):
                    break
                if time.monotonic() - t0 > 120:
                    raise TimeoutError(f"migration stuck: {states}")
                time.sleep(0.05)
            if st["status"] != "completed":
                raise RuntimeError(f"migration {st['status']}: {st.get('error-desc')}")
            t_done = time.monotonic() - t0
            # The guest is paused from the source's STOP to the destination's RESUME. QEMU's
            # downtime is the source's view, from its STOP to the end of the stream; the
            # destination's load and start come after it.
            stopped = next((qmp_time(e) for e in src.qmp.get_events() if e.get("event") == "STOP"),
                           None)
            resumed = qmp_time(dest.wait_event("RESUME", timeout=30))
            if stopped is not None:
                self.paused_from = wall_to_host(stopped)
                self.mark("STOP", self.paused_from)
            self.mark("RESUME", wall_to_host(resumed))
            self.guest = dest
            src.stop()
        except Exception:
            if self.guest is not dest:
                dest.stop()
            raise
        t_stop = time.monotonic() - t0
        dest.connect_agent()
        t_agent = time.monotonic() - t0
        self.net = Net(dest)
        self.net.wait_primary_active(timeout=timeout)
        self.mark("primary active")
        paused = round((resumed - stopped) * 1000, 1) if stopped is not None else None
        return {"states": states, "downtime_ms": st.get("downtime"), "paused_ms": paused,
                "total_ms": st.get("total-time"), "completed_s": round(t_done, 3),
                "src_stopped_s": round(t_stop, 3), "agent_s": round(t_agent, 3),
                "primary_active_s": round(time.monotonic() - t0, 3)}

    def migrate(self, seconds=20, peer_only=False):
        """Live migration under traffic; the window covers the destination replug."""
        def ev(pings):
            try:
                return self._migrate(seconds)
            finally:
                pings.net = self.net

        return self._window(seconds, ev, "migrate", peer_only)

    def migrate_tcp(self, seconds=20):
        """An iperf3 TCP stream (the guest sends) across a live migration: did it survive, and
        how deep and long was its dip?"""
        self.refresh()
        tcp = Iperf(self.ns, self.net, seconds).start()
        try:
            time.sleep(TCP_LEAD_S)
            t_mig = time.monotonic() - tcp.t0
            # The agent may take a while to answer on the destination under the stream's load.
            info = self._migrate(60)
            tcp.net = self.net
            res = tcp.wait()
        finally:
            tcp.stop()
        info.update(survived=res["survived"], error=res["error"], rc=res["rc"],
                    mbps=res["mbps"], migrate_at_s=round(t_mig, 3),
                    **dip(res["intervals"], t_mig, length=seconds), intervals=res["intervals"])
        return info

    def overhead(self, seconds=3, streams=2):
        """iperf3 TCP throughput, each way, through the master, then through the primary alone:
        `rmmod virtio_net` takes the master away and releases the primary, which gets the
        guest's address; `modprobe virtio_net` then brings the group back, and the master is
        measured again. `streams` streams each way before and after, twice as many through the
        primary: each path gets as many, and the master's bracket the direct ones in time (the
        machine's load drifts). A path's figure is the median of its streams, which one stream
        that TCG slowed down does not move. The packet counters of the slaves show which
        carried them."""
        def measure(net, n):
            out, before = {"tx": [], "rx": []}, net.counters()
            for _ in range(n):
                for way, rev in (("tx", True), ("rx", False)):
                    r = Iperf(self.ns, net, seconds, reverse=rev, interval=seconds).run()
                    if not r["survived"]:
                        raise RuntimeError(f"iperf3 {way} failed: {r['error']}")
                    out[way].append(r["mbps"])
            out["counters"] = delta(before, net.counters())
            return out

        self.refresh()
        info = {"master_before": measure(self.net, streams)}
        p = self.net.roles()["primary"]["name"]
        self.net.sh("rmmod virtio_net", timeout=120)
        self.net.wait(lambda r: r["master"] is None and r["standby"] is None, 30, "master gone")
        self.net.sh(f"ip link set {p} up && "
                    f"ip addr add {config.GUEST_IP4}/{config.PREFIX4} dev {p}")
        self.net.wait(lambda r: r["primary"] and r["primary"]["carrier"] == "1", 30, f"{p} carrier")
        self.refresh()
        try:
            info["direct_streams"] = measure(self.net, 2 * streams)
        finally:
            self.net.sh(f"ip addr flush dev {p}")
            self.net.sh("modprobe virtio_net")
            self.net.wait_primary_enslaved(60)
            self.net.setup_ip()
            self.net.wait_primary_active()
        self.refresh()
        info["master_after"] = measure(self.net, streams)
        master = {w: info["master_before"][w] + info["master_after"][w] for w in ("tx", "rx")}
        info["master"] = {w: round(statistics.median(master[w]), 2) for w in ("tx", "rx")}
        info["direct"] = {w: round(statistics.median(info["direct_streams"][w]), 2)
                          for w in ("tx", "rx")}
        for way in ("tx", "rx"):
            info[f"ratio_{way}"] = round(info["master"][way] / info["direct"][way], 3)
        return info

"""A failover bench: one namespace, one guest with its failover group up, and the three events
(unplug, replug, live migration) measured under 100 pps ping in both directions."""

import time

from . import config
from .guest import Net
from .netns import NetNS
from .traffic import PingPair
from .vm import Guest

MIGRATION_PORT = 4444
LEAD_S = 1.0  # traffic before the event starts


def delta(before, after):
    """Per-role (rx, tx) difference between two Net.counters() snapshots."""
    out = {}
    for role in ("master", "standby", "primary"):
        b, a = before.get(role), after.get(role)
        out[role] = (a[0] - b[0], a[1] - b[1]) if a and b else None
    return out


class Bench:
    def __init__(self, flavour, primary_model="e1000e", modules="virtio_net,e1000e,igb",
                 with_primary=True, kunit=False):
        self.flavour, self.primary_model, self.modules = flavour, primary_model, modules
        self.ns = NetNS()
        self.guest = None
        try:
            self.guest = Guest(self.ns, flavour, modules=modules, primary_model=primary_model,
                               kunit=kunit)
            self.guest.boot(add_primary=with_primary)
            self.net = Net(self.guest)
            self.master = self.net.setup_ip()
            if with_primary:
                self.net.wait_primary_active()
        except Exception:
            self.close()
            raise

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

    def _window(self, seconds, event, tag):
        pings = PingPair(self.ns, self.net, seconds, tag=tag)
        pings.start()
        try:
            time.sleep(LEAD_S)
            info = event(pings) or {}
            res = pings.wait()
        finally:
            pings.stop()
        g2p, p2g = res["guest_to_peer"], res["peer_to_guest"]
        info.update(guest_to_peer_lost=g2p["lost"], peer_to_guest_lost=p2g["lost"],
                    max_gap_ms=max(g2p["gap_ms"], p2g["gap_ms"]), pings=res)
        return info

    def unplug(self, seconds=5):
        """device_del the primary under traffic."""
        before = self.net.counters()

        def ev(_):
            return {"device_deleted_s": round(self.guest.del_primary(), 3)}

        info = self._window(seconds, ev, "unplug")
        self.net.wait_primary_gone()
        info["counters"] = delta(before, self.net.counters())
        return info

    def replug(self, seconds=10, model=None):
        """device_add the primary under traffic; the window covers its link-up."""
        def ev(_):
            t0 = time.monotonic()
            self.guest.add_primary(model)
            self.net.wait_primary_enslaved(timeout=seconds)
            t1 = time.monotonic()
            self.net.wait_primary_active(timeout=seconds)
            return {"enslaved_s": round(t1 - t0, 3), "active_s": round(time.monotonic() - t0, 3)}

        return self._window(seconds, ev, "replug")

    def migrate(self, seconds=20):
        """Live-migrate to a second QEMU on 127.0.0.1; the window covers the destination replug."""
        dest = Guest(self.ns, self.flavour, name="dst", modules=self.modules,
                     primary_model=self.primary_model, incoming_port=MIGRATION_PORT)

        def ev(pings):
            src = self.guest
            t0 = time.monotonic()
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
            self.guest = dest
            src.stop()
            t_stop = time.monotonic() - t0
            dest.connect_agent()
            t_agent = time.monotonic() - t0
            self.net = Net(dest)
            pings.net = self.net
            self.net.wait_primary_active(timeout=seconds)
            return {"states": states, "downtime_ms": st.get("downtime"),
                    "total_ms": st.get("total-time"), "completed_s": round(t_done, 3),
                    "src_stopped_s": round(t_stop, 3), "agent_s": round(t_agent, 3),
                    "primary_active_s": round(time.monotonic() - t0, 3)}

        try:
            return self._window(seconds, ev, "migrate")
        except Exception:
            if self.guest is not dest:
                dest.stop()
            raise

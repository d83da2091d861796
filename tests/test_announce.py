"""Peers are told when the active slave changes.

A driver that switches slaves without announcing it leaves the bridge forwarding to the old
port until the guest happens to transmit. These tests watch the taps for the guest's
announcements: a gratuitous ARP and an unsolicited neighbour advertisement from the failover
MAC, arriving on the tap of the slave that carries the traffic after the switch.
"""

import time

import pytest

from expect import strict
from nfr import config
from nfr.announce import AnnounceWatch


@pytest.fixture
def watch(bench):
    w = AnnounceWatch(bench.ns, config.FAILOVER_MAC)
    yield w
    w.close()


def announced(seen, tap):
    return all((tap, kind) in seen for kind in ("garp", "na"))


def test_announce_on_switch(bench, watch, driver):
    """Unplug: announced through the standby. Replug: announced through the primary."""
    t = time.time()
    bench.unplug(seconds=2)
    after_unplug = watch.wait(t, bench.guest.tap_standby)
    t = time.time()
    bench.replug(seconds=10)
    after_replug = watch.wait(t, bench.guest.tap_primary)
    strict(driver, "no_announce",
           announced(after_unplug, bench.guest.tap_standby) and
           announced(after_replug, bench.guest.tap_primary),
           f"after unplug: {after_unplug or 'nothing'}; after replug: {after_replug or 'nothing'}")


def test_announce_after_migration(bench, watch, driver):
    """virtio's post-migration announce, raised on the standby, is made for the master: on the
    destination it goes out through the standby, before the primary comes back."""
    t = time.time()
    info = bench.migrate()
    assert info["states"][-1] == "completed"
    seen = watch.wait(t, bench.guest.tap_standby, kinds=("garp",))
    strict(driver, "no_announce", (bench.guest.tap_standby, "garp") in seen,
           f"on the destination's taps since the migration: {seen or 'nothing'}")

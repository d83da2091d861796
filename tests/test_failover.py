"""Failover scenarios a-j (issue 2), run against every built driver flavour.

Each test asserts what can be observed: kernel state in the guest (sysfs, ip, ethtool), QEMU's
view over QMP, and traffic (which slave's counters moved, what the pings lost). Known driver gaps
are in expect.py; they turn a strict assertion into an xfail that states the measured figure.
"""

import json
import math
import time

import pytest

from expect import C_RECORDED_MIN, strict
from nfr import config
from nfr.bench import Bench, delta
from nfr.guest import Net
from nfr.netns import NetNS
from nfr.traffic import PingPair, parse_ping
from nfr.vm import PRIMARY_ID, Guest

STANDBY_FEATURE = 62  # VIRTIO_NET_F_STANDBY


@pytest.fixture
def bench(request, driver):
    model = request.node.callspec.params.get("primary_model", "e1000e")
    b = Bench(driver, primary_model=model)
    yield b
    b.close()


def traffic(b, seconds=2, tag="t"):
    """Ping both ways for `seconds`; -> (ping results, per-role counter deltas)."""
    before = b.net.counters()
    res = PingPair(b.ns, b.net, seconds, tag=tag).start().wait()
    return res, delta(before, b.net.counters())


def lost(res):
    return res["guest_to_peer"]["lost"] + res["peer_to_guest"]["lost"]


def assert_carried_by_primary(res, d):
    n = res["guest_to_peer"]["received"] + res["peer_to_guest"]["received"]
    assert n > 0, res
    assert d["primary"][0] >= n, f"primary rx {d['primary'][0]} < {n} echo packets: {d}"
    assert d["primary"][1] >= n, f"primary tx {d['primary'][1]} < {n} echo packets: {d}"
    assert d["standby"][1] == 0, f"standby transmitted while the primary was usable: {d}"


# --- a. enslaving ---------------------------------------------------------------------------

def test_enslaving(bench, primary_model):
    r = bench.net.roles()
    m, s, p = r["master"], r["standby"], r["primary"]
    assert m and s and p, r
    # The master's parent is the virtio device, like the standby's (cloud-init keys on it).
    assert m["dev"] == s["dev"] and "/virtio" in m["dev"], (m["dev"], s["dev"])
    assert p["driver"] == primary_model and "/virtio" not in p["dev"]
    # Both slaves are enslaved: sysfs master and lower_* links.
    assert s["master"] == m["name"] and p["master"] == m["name"]
    assert sorted(m["lowers"]) == sorted([s["name"], p["name"]])
    # Same MAC everywhere.
    assert m["addr"] == s["addr"] == p["addr"] == config.FAILOVER_MAC
    assert bench.net.features_bit(STANDBY_FEATURE)
    # Userspace identity of the master.
    drvinfo = bench.net.sh(f"ethtool -i {m['name']}")
    assert "driver: net_failover" in drvinfo


def test_primary_hidden_until_standby(driver):
    """QEMU keeps the primary hidden until the guest acks STANDBY (i.e. virtio_net binds)."""
    # Bench() waits for a master, so this guest is built by hand.
    ns = NetNS()
    g = None
    try:
        g = Guest(ns, driver, modules="e1000e,igb")
        g.boot(add_primary=True)
        net = Net(g)
        time.sleep(3)
        assert PRIMARY_ID not in g.pci_devices()
        assert not net.pci_has_primary()
        assert net.roles()["master"] is None
        net.sh("modprobe virtio_net")
        r = net.wait_primary_enslaved(timeout=60)
        assert PRIMARY_ID in g.pci_devices()
        assert net.pci_has_primary()
        assert net.features_bit(STANDBY_FEATURE)
        assert r["primary"]["master"] == r["master"]["name"]
    finally:
        if g:
            g.stop()
        ns.close()


# --- b. data path ---------------------------------------------------------------------------

def test_datapath_primary(bench, primary_model):
    res, d = traffic(bench, 3)
    assert lost(res) == 0, res
    assert_carried_by_primary(res, d)
    # The host side agrees: the primary's tap carried the frames, the standby's did not send.
    assert bench.ns.counters(bench.guest.tap_primary)[0] > 0


# --- c. hot-unplug --------------------------------------------------------------------------

@pytest.mark.debug
def test_hot_unplug(bench, driver):
    info = bench.unplug()
    r = bench.net.roles()
    assert r["primary"] is None
    assert r["master"]["oper"] == "up" and r["master"]["carrier"] == "1"
    assert r["master"]["lowers"] == [r["standby"]["name"]]
    # Traffic goes on through the standby.
    res, d = traffic(bench, 2, "after")
    assert lost(res) == 0, res
    assert d["standby"][1] >= res["guest_to_peer"]["received"] > 0
    strict(driver, "unplug_loss", info["guest_to_peer_lost"] == 0 == info["peer_to_guest_lost"],
           f"lost g->p {info['guest_to_peer_lost']}, p->g {info['peer_to_guest_lost']}, "
           f"gap {info['max_gap_ms']} ms")


# --- d. re-plug -----------------------------------------------------------------------------

@pytest.mark.debug
def test_replug(bench, driver):
    bench.unplug()
    info = bench.replug()
    r = bench.net.roles()
    assert r["primary"]["master"] == r["master"]["name"] and r["primary"]["carrier"] == "1"
    res, d = traffic(bench, 2, "after")
    assert lost(res) == 0, res
    assert_carried_by_primary(res, d)
    strict(driver, "replug_loss", info["guest_to_peer_lost"] == 0 == info["peer_to_guest_lost"],
           f"lost g->p {info['guest_to_peer_lost']}, p->g {info['peer_to_guest_lost']}, "
           f"gap {info['max_gap_ms']} ms, primary active after {info['active_s']} s")


# --- e. live migration ----------------------------------------------------------------------

@pytest.mark.debug
def test_live_migration(bench, driver):
    info = bench.migrate()
    assert info["states"][-1] == "completed"
    r = bench.net.roles()
    # The destination re-plugged the primary, and it carries traffic again.
    assert r["primary"] and r["primary"]["master"] == r["master"]["name"]
    assert r["master"]["oper"] == "up"
    res, d = traffic(bench, 2, "after")
    assert lost(res) == 0, res
    assert_carried_by_primary(res, d)
    if config.driver_of(driver) != "c":
        # Never worse than the C driver's recorded migration loss.
        g2p, p2g = C_RECORDED_MIN["migrate"]
        assert info["guest_to_peer_lost"] < g2p and info["peer_to_guest_lost"] < p2g, \
            f"lost {info['guest_to_peer_lost']}/{info['peer_to_guest_lost']}, C: {g2p}/{p2g}"
    lost_both = (f"lost g->p {info['guest_to_peer_lost']}, p->g {info['peer_to_guest_lost']}, "
                 f"gap {info['max_gap_ms']} ms")

    def within(ms):
        budget = math.ceil(ms / 10) + 2  # packets at 100 pps, + 2 in flight
        return info["guest_to_peer_lost"] <= budget and info["peer_to_guest_lost"] <= budget

    # Nothing is lost once the guest runs again on the destination: the loss is the pause, from
    # the source's STOP to the destination's RESUME.
    strict(driver, "migrate_loss", within(info["paused_ms"]),
           f"{lost_both}; guest paused {info['paused_ms']} ms")
    # Issue 5's target as worded: against QEMU's downtime, which leaves out the destination's
    # load and start.
    strict(driver, "migrate_downtime", within(info["downtime_ms"]),
           f"{lost_both}; QEMU downtime {info['downtime_ms']} ms, guest paused "
           f"{info['paused_ms']} ms")


# --- f. MTU ---------------------------------------------------------------------------------

def max_mtu(b, dev):
    return json.loads(b.net.sh(f"ip -d -j link show dev {dev}"))[0]["max_mtu"]


def test_mtu(bench, driver):
    r = bench.net.roles()
    m, s, p = r["master"]["name"], r["standby"]["name"], r["primary"]["name"]
    bench.net.sh(f"ip link set dev {m} mtu 1400")
    r = bench.net.roles()
    assert r["master"]["mtu"] == r["standby"]["mtu"] == r["primary"]["mtu"] == 1400
    # Above the smallest slave maximum: refused, nothing changes.
    too_big = min(max_mtu(bench, s), max_mtu(bench, p)) + 1
    rc, out = bench.net.run(f"ip link set dev {m} mtu {too_big}")
    assert rc != 0, out
    r = bench.net.roles()
    assert r["master"]["mtu"] == r["standby"]["mtu"] == r["primary"]["mtu"] == 1400, out
    # Traffic still flows at the new MTU, and a re-plugged primary gets the master's MTU. The
    # MTU change resets e1000e's link: C takes no standby rx meanwhile (its flap_rx gap).
    res, _ = traffic(bench, 1)
    bench.unplug(seconds=2)
    bench.replug(seconds=8)
    assert bench.net.roles()["primary"]["mtu"] == 1400
    strict(driver, "flap_rx", lost(res) == 0, f"lost {lost(res)} right after the MTU change")


# --- g. VLAN --------------------------------------------------------------------------------

def vlan_ping(b, count=100):
    before = b.net.counters()
    rc, out = b.net.run(f"ping -D -n -i 0.01 -c {count} -W 2 {config.PEER_VLAN_IP4}", timeout=60)
    return parse_ping(out), delta(before, b.net.counters())


def test_vlan(bench):
    bench.ns.start_vlan_peer()
    m = bench.master
    bench.net.sh(f"ip link add link {m} name {m}.{config.VLAN_ID} type vlan id {config.VLAN_ID} && "
                 f"ip addr add {config.GUEST_VLAN_IP4}/{config.PREFIX4} dev {m}.{config.VLAN_ID} && "
                 f"ip link set {m}.{config.VLAN_ID} up")
    res, d = vlan_ping(bench)
    assert res["lost"] == 0, res
    assert d["primary"][1] >= 100 and d["standby"][1] == 0, d
    bench.unplug(seconds=2)
    res, d = vlan_ping(bench)
    assert res["lost"] == 0, res
    assert d["standby"][1] >= 100, d


# --- h. address filters ---------------------------------------------------------------------

def test_multicast_filters(bench):
    r = bench.net.roles()
    group = "01:00:5e:01:02:03"
    bench.net.sh(f"ip maddr add {group} dev {r['master']['name']}")
    for role in ("standby", "primary"):
        assert group in bench.net.sh(f"ip maddr show dev {r[role]['name']}"), role
    bench.net.sh(f"ip maddr del {group} dev {r['master']['name']}")
    for role in ("standby", "primary"):
        assert group not in bench.net.sh(f"ip maddr show dev {r[role]['name']}"), role


# --- i. link flap ---------------------------------------------------------------------------

def test_link_flap(bench, driver):
    bench.guest.set_primary_link(False)
    bench.net.wait(lambda r: r["primary"]["carrier"] == "0", 30, "primary carrier off")
    res, d = traffic(bench, 2, "down")
    # xmit moves to the standby (with C, only ARP probes get that far: their replies are lost).
    assert d["primary"][1] == 0, d
    assert d["standby"][1] > 0, d
    rx_ok = lost(res) == 0 and d["standby"][1] >= res["guest_to_peer"]["sent"]
    bench.guest.set_primary_link(True)
    bench.net.wait_primary_active(30)
    res2, d2 = traffic(bench, 2, "up")
    assert_carried_by_primary(res2, d2)
    # Right after the link returns, the bridge may still send to the standby's tap until the
    # guest transmits from the primary: a driver that takes standby rx loses nothing there.
    strict(driver, "flap_rx", rx_ok and lost(res2) == 0,
           f"with the primary's link down: lost g->p {res['guest_to_peer']['lost']}, "
           f"p->g {res['peer_to_guest']['lost']} of {res['guest_to_peer']['sent']}, "
           f"standby tx {d['standby'][1]}; after it came back: lost {lost(res2)}")


# --- j. order -------------------------------------------------------------------------------

def test_primary_driver_first(driver):
    """The primary's driver is loaded before virtio_net: the primary still ends up enslaved."""
    with Bench(driver, modules="e1000e,igb,virtio_net") as b:
        r = b.net.roles()
        assert r["primary"]["master"] == r["master"]["name"]
        res, d = traffic(b, 1)
        assert lost(res) == 0
        assert_carried_by_primary(res, d)


def test_master_after_primary(bench):
    """virtio_net (and so the master) comes back while the primary is registered: the master
    finds the existing primary when it is created."""
    r = bench.net.roles()
    primary = r["primary"]["name"]
    bench.net.sh("rmmod virtio_net")
    r = bench.net.wait(lambda r: r["master"] is None and r["standby"] is None, 30, "master gone")
    assert r["primary"] and r["primary"]["name"] == primary and not r["primary"]["master"]
    bench.net.sh("modprobe virtio_net")
    r = bench.net.wait_primary_enslaved(60)
    assert r["primary"]["name"] == primary
    bench.net.setup_ip()
    bench.net.wait_primary_active()
    res, d = traffic(bench, 1)
    assert lost(res) == 0, res
    assert_carried_by_primary(res, d)

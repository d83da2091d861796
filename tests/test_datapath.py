"""Traffic through the master: which slave carries it, and what is lost.

With both slaves usable the primary carries everything and the standby transmits nothing
(slave counters in the guest, the host's tap counters); a VLAN on the master goes through the
primary, then through the standby once the primary is gone; multicast addresses added to the
master reach both slaves; with the primary's link down traffic moves to the standby and back
when it returns; with no usable slave left, the master drops and counts what it is given.

Known driver gaps are in expect.py: they turn a strict assertion into an xfail that states the
measured figure. After every test the kernel-log scanner (conftest.py) fails it on any splat.
"""

from expect import strict
from nfr import config
from nfr.checks import (assert_carried_by_primary, assert_carried_by_standby,
                        lose_every_slave_under_traffic, lost, traffic, vlan_ping)
from nfr.vm import STANDBY_ID


def test_datapath_primary(bench, primary_model):
    res, d = traffic(bench, 3)
    assert lost(res) == 0, res
    assert_carried_by_primary(res, d)
    # The host side agrees: the primary's tap carried the frames, the standby's did not send.
    assert bench.ns.counters(bench.guest.tap_primary)[0] > 0


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


def test_multicast_filters(bench):
    r = bench.net.roles()
    group = "01:00:5e:01:02:03"
    bench.net.sh(f"ip maddr add {group} dev {r['master']['name']}")
    for role in ("standby", "primary"):
        assert group in bench.net.sh(f"ip maddr show dev {r[role]['name']}"), role
    bench.net.sh(f"ip maddr del {group} dev {r['master']['name']}")
    for role in ("standby", "primary"):
        assert group not in bench.net.sh(f"ip maddr show dev {r[role]['name']}"), role


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


def test_no_usable_slave_drops_in_the_driver(bench):
    """Found by the event storm (seed 1749604221): when the last usable slave goes while the
    guest sends, what reaches the master is dropped and counted by it, and the kernel log stays
    clean. A master that stops its queues then (C does) makes the core drop each frame itself,
    until the carrier change reaches the qdisc layer (up to a second later), and log "Virtual
    device ... asks to queue packet!" for them (a known C report in expect.py)."""
    r = bench.net.roles()
    m = r["master"]["name"]
    before = bench.net.link(m)["stats64"]["tx"]["dropped"]
    lose_every_slave_under_traffic(bench, "nousable")
    after = bench.net.link(m)["stats64"]["tx"]["dropped"]
    assert after - before >= 5, f"master tx_dropped {before} -> {after}"
    # Usable again, it carries traffic again. The outage let both sides' neighbour entries
    # fail, and the first ~100 ms after it go to ARP (C and Rust alike): resolve first.
    bench.guest.qmp.cmd("set_link", name=STANDBY_ID, up=True)
    bench.net.wait(lambda r: r["master"]["oper"] == "up", 30, "master operstate up")
    bench.refresh()
    res, d = traffic(bench, 1)
    assert_carried_by_standby(bench, res, d)

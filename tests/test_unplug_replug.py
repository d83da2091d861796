"""The primary hot-unplugged and re-plugged under traffic.

After an unplug the master keeps its carrier over the standby alone; after a replug the primary
is enslaved again and carries the traffic. A correct driver loses no packet at either event
(100 pps each way): it moves off the primary at the earliest unplug signal, and keeps taking the
standby's rx until the new primary is usable. An unplug in the middle of a loop that takes the
master down and up and changes its MTU leaves a clean group on the standby.

Known driver gaps are in expect.py: they turn a strict assertion into an xfail that states the
measured figure. After every test the kernel-log scanner (conftest.py) fails it on any splat.
"""

import time

import pytest

from expect import strict
from nfr import config
from nfr.checks import (assert_carried_by_primary, assert_carried_by_standby, assert_clean_log,
                        lost, traffic, wait_true)

FLAP = ("setsid sh -c 'i=0; while [ ! -e /tmp/flap.stop ]; do i=$((i+1)); "
        "ip link set {m} down; ip link set {m} mtu 1400; ip link set {m} up; "
        "ip link set {m} mtu 1500; echo iteration $i; done; echo flap done' "
        ">/tmp/flap.log 2>&1 </dev/null &")


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


@pytest.mark.debug
def test_unplug_during_flap(bench):
    """The primary goes while the master is taken down and up and its MTU changes."""
    r = bench.net.roles()
    m, s = r["master"]["name"], r["standby"]["name"]
    bench.net.sh(f"rm -f /tmp/flap.stop; {FLAP.format(m=m)}")
    time.sleep(1)
    bench.guest.del_primary(timeout=60)
    bench.net.wait_primary_gone(60)
    time.sleep(1)
    bench.net.sh("touch /tmp/flap.stop")
    wait_true(lambda: "flap done" in bench.net.sh("cat /tmp/flap.log"), 60, "the flap loop")
    log = bench.net.sh("cat /tmp/flap.log")
    assert log.count("iteration") >= 2, log
    bench.net.sh(f"ip link set {m} mtu 1500 && ip link set {m} up")
    if not bench.net.sh(f"ip -4 addr show dev {m}").strip():
        bench.net.sh(f"ip addr add {config.GUEST_IP4}/{config.PREFIX4} dev {m}")
    r = bench.net.wait(lambda r: r["master"]["carrier"] == "1", 30, "master carrier")
    assert r["primary"] is None and r["master"]["lowers"] == [s], r
    assert r["master"]["mtu"] == r["standby"]["mtu"] == 1500
    res, d = traffic(bench, 1)
    assert_carried_by_standby(bench, res, d)
    assert_clean_log(bench)

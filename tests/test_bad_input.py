"""Requests the failover group must refuse, or follow, without breaking.

An MTU set on the master goes to both slaves; one above a slave's maximum is refused and
changes nothing. A MAC change on the master is refused, up or down, and every address and
permanent address stays. A primary that cannot take the master's MTU is not enslaved, and the
refusal is logged. In each case the group stays as it was, traffic flows through the slave that
should carry it, and the kernel log has no warning.

Known driver gaps are in expect.py: they turn a strict assertion into an xfail that states the
measured figure. After every test the kernel-log scanner (conftest.py) fails it on any splat.
"""

import re
import time

from expect import strict
from nfr import config
from nfr.checks import (assert_carried_by_primary, assert_carried_by_standby, assert_clean_log,
                        assert_not_slave, group, lost, max_mtu, traffic)


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


def test_mtu_above_slave_max(bench):
    r = bench.net.roles()
    m, s, p = r["master"]["name"], r["standby"]["name"], r["primary"]["name"]
    assert max_mtu(bench, p) < max_mtu(bench, s)
    for mtu in (max_mtu(bench, p) + 1, max_mtu(bench, s)):
        rc, out = bench.net.run(f"ip link set dev {m} mtu {mtu}")
        assert rc != 0, f"mtu {mtu}: {out}"
        after = bench.net.roles()
        assert group(after) == group(r), f"mtu {mtu}: {out}"
        assert after["master"]["mtu"] == after["standby"]["mtu"] == after["primary"]["mtu"] == 1500
    res, d = traffic(bench, 1)
    assert lost(res) == 0, res
    assert_carried_by_primary(res, d)
    assert_clean_log(bench)


def test_mac_change_refused(bench):
    r = bench.net.roles()
    m = r["master"]["name"]
    perm = {k: bench.net.link(v["name"]).get("permaddr") for k, v in r.items()}
    for state in ("up", "down"):
        bench.net.sh(f"ip link set {m} {state}")
        rc, out = bench.net.run(f"ip link set dev {m} address 52:54:00:fa:11:02")
        assert rc != 0 and "not supported" in out, f"master {state}: {out}"
        after = bench.net.roles()
        assert {k: v["addr"] for k, v in after.items()} == \
            {k: config.FAILOVER_MAC for k in after}, after
        assert {k: bench.net.link(v["name"]).get("permaddr") for k, v in after.items()} == perm
    bench.net.sh(f"ip link set {m} up")
    bench.net.wait_primary_active(60)
    assert group(bench.net.roles()) == group(r)
    res, d = traffic(bench, 1)
    assert lost(res) == 0, res
    assert_carried_by_primary(res, d)
    assert_clean_log(bench)


def test_primary_mtu_unalignable(bench):
    """The master's MTU is above the primary's maximum when the primary comes back: refused."""
    bench.unplug(seconds=2)
    r = bench.net.roles()
    m, s = r["master"]["name"], r["standby"]["name"]
    mtu = 9300  # above e1000e's 9212, within virtio-net's 65535
    bench.net.sh(f"ip link set dev {m} mtu {mtu}")
    r = bench.net.roles()
    assert r["master"]["mtu"] == r["standby"]["mtu"] == mtu
    bench.guest.add_primary()
    r = bench.net.wait(lambda r: r["primary"] is not None, 60, "primary registered")
    p = r["primary"]["name"]
    time.sleep(3)
    r = bench.net.roles()
    assert not r["primary"]["master"] and r["master"]["lowers"] == [s], r
    assert r["primary"]["mtu"] < mtu and r["master"]["mtu"] == r["standby"]["mtu"] == mtu, r
    assert_not_slave(bench, p)
    refusal = [line for line in bench.net.dmesg().splitlines()
               if p in line and re.search(r"\bmtu\b", line, re.I)]
    assert refusal, f"no refusal naming {p} and its MTU in the kernel log"
    res, d = traffic(bench, 1)
    assert_carried_by_standby(bench, res, d)
    assert_clean_log(bench)

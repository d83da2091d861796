"""Traffic and state checks that the scenario tests share: which slave carried a ping run, what it
lost, whether a device is a slave, what of the failover group bad input must leave alone, and
whether the guest's kernel log is clean."""

import json
import time

from expect import known_splat

from . import config
from .bench import delta
from .traffic import PingPair, parse_ping
from .vm import STANDBY_ID

STANDBY_FEATURE = 62  # VIRTIO_NET_F_STANDBY


def traffic(b, seconds=2, tag="t"):
    """Ping both ways for `seconds`; -> (ping results, per-role counter deltas)."""
    before = b.net.counters()
    res = PingPair(b.ns, b.net, seconds, tag=tag).start().wait()
    return res, delta(before, b.net.counters())


def lost(res):
    """Packets a traffic() run lost, both ways together."""
    return res["guest_to_peer"]["lost"] + res["peer_to_guest"]["lost"]


def assert_carried_by_primary(res, d):
    """Every echo packet of a traffic() run went through the primary, none out of the standby."""
    n = res["guest_to_peer"]["received"] + res["peer_to_guest"]["received"]
    assert n > 0, res
    assert d["primary"][0] >= n, f"primary rx {d['primary'][0]} < {n} echo packets: {d}"
    assert d["primary"][1] >= n, f"primary tx {d['primary'][1]} < {n} echo packets: {d}"
    assert d["standby"][1] == 0, f"standby transmitted while the primary was usable: {d}"


def assert_carried_by_standby(b, res, d):
    """A traffic() run lost nothing and went out of the standby; a primary that is there but not
    enslaved sent nothing for the master."""
    assert lost(res) == 0, res
    assert d["standby"][1] >= res["guest_to_peer"]["received"] > 0, d
    if d["primary"]:
        assert d["primary"][1] == 0, f"an unenslaved primary transmitted for the master: {d}"


def traffic_by_name(b, names, seconds=1, tag="n"):
    """Like traffic(), with counter deltas by device name, for topologies roles() cannot name."""
    def snap():
        return {n: (lk["stats64"]["rx"]["packets"], lk["stats64"]["tx"]["packets"])
                for n in names for lk in [b.net.link(n)]}
    before = snap()
    res = PingPair(b.ns, b.net, seconds, tag=tag).start().wait()
    after = snap()
    return res, {n: (after[n][0] - before[n][0], after[n][1] - before[n][1]) for n in names}


def vlan_ping(b, count=100):
    """Ping the VLAN peer from the guest; -> (ping results, per-role counter deltas)."""
    before = b.net.counters()
    rc, out = b.net.run(f"ping -D -n -i 0.01 -c {count} -W 2 {config.PEER_VLAN_IP4}", timeout=60)
    return parse_ping(out), delta(before, b.net.counters())


def use_directly(b, dev):
    """Give `dev` the guest's address and ping the peer through it: a plain, usable netdev."""
    b.net.sh(f"ip link set {dev} up && ip addr add {config.GUEST_IP4}/{config.PREFIX4} dev {dev}")
    b.net.wait(lambda r: r["primary"] and r["primary"]["carrier"] == "1", 30, f"{dev} carrier")
    before = b.net.link(dev)["stats64"]
    rc, out = b.net.run(f"ping -n -c 5 -i 0.2 -W 2 {config.PEER_IP4}", timeout=60)
    res = parse_ping(out)
    after = b.net.link(dev)["stats64"]
    assert res["received"] > 0, out
    assert after["tx"]["packets"] - before["tx"]["packets"] >= res["received"], (before, after)
    assert after["rx"]["packets"] - before["rx"]["packets"] >= res["received"], (before, after)
    # IFF_NO_ADDRCONF is gone with the failover slave flags: the kernel configures it again.
    wait_true(lambda: b.net.has_link_local(dev), 15, f"an IPv6 link-local address on {dev}")
    b.net.sh(f"ip addr flush dev {dev}")


def wait_true(pred, timeout, what):
    """Poll `pred` every 0.5 s until it is true; TimeoutError naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.5)


def assert_not_slave(b, dev, netns=None):
    """`dev` exists and has no master; -> its `ip -j link` entry."""
    link = b.net.link(dev, netns)
    assert link, f"{dev} is gone"
    assert "master" not in link, f"{dev} still has a master: {link}"
    return link


def group(r):
    """The parts of the failover group that bad input must not change."""
    return {k: v and {f: v[f] for f in ("name", "master", "lowers", "mtu", "addr", "oper")}
            for k, v in r.items()}


def max_mtu(b, dev):
    """The largest MTU that `dev` accepts, as the guest's kernel reports it."""
    return json.loads(b.net.sh(f"ip -d -j link show dev {dev}"))[0]["max_mtu"]


def assert_clean_log(b):
    """The guest's kernel log so far has no report (tests/nfr/klog.py: warning, BUG, refcount,
    lockdep, ...) but the known ones of tests/expect.py. Called at a step of a test, it names
    that step; the scan after every test (tests/conftest.py) covers the rest."""
    problems = [p for p in b.net.kernel_problems() if not known_splat(b.flavour, p)]
    assert not problems, "kernel log:\n" + "\n".join(problems)


def lose_every_slave_under_traffic(b, tag="noslave"):
    """Unplug the primary, then, under pings both ways, take the standby's link away: for a
    while every frame sent reaches a master with no usable slave. The standby stays down."""
    b.guest.del_primary(timeout=60)
    b.net.wait_primary_gone(60)
    pings = PingPair(b.ns, b.net, 4, tag=tag).start()
    try:
        time.sleep(1)
        b.guest.qmp.cmd("set_link", name=STANDBY_ID, up=False)
        b.net.wait(lambda r: r["master"]["carrier"] == "0", 30, "master carrier off")
        pings.wait()
    finally:
        pings.stop()

"""Failover scenarios of issue 4: module unload, master removal, devices that share the pair's MAC
but must never be enslaved, and bad input. Run against every built driver flavour.

Each scenario asserts the state before and after, which slave carried traffic, and that the
kernel log has no warning, BUG or refcount complaint. Known driver gaps are in expect.py.
"""

import re
import time

import pytest

from expect import known_splat, strict
from nfr import config
from nfr.bench import Bench
from nfr.guest import failover_module
from nfr.traffic import PingPair, parse_ping
from nfr.vm import PRIMARY_ID, STANDBY_ID
from test_failover import assert_carried_by_primary, lost, max_mtu, traffic

GUEST_NS = "nfrx"  # a network namespace inside the guest


@pytest.fixture
def bench(driver):
    b = Bench(driver)
    yield b
    b.close()


def assert_clean_log(b):
    problems = [p for p in b.net.kernel_problems() if not known_splat(b.flavour, p)]
    assert not problems, "kernel log:\n" + "\n".join(problems)


def group(r):
    """The parts of the failover group that bad input must not change."""
    return {k: v and {f: v[f] for f in ("name", "master", "lowers", "mtu", "addr", "oper")}
            for k, v in r.items()}


def assert_carried_by_standby(b, res, d):
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
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.5)


def assert_not_slave(b, dev, netns=None):
    link = b.net.link(dev, netns)
    assert link, f"{dev} is gone"
    assert "master" not in link, f"{dev} still has a master: {link}"
    return link


# --- 1. module unload and reload --------------------------------------------------------------

@pytest.mark.debug
def test_module_unload_reload(bench, driver):
    mod = failover_module(driver)
    assert config.staged_module(driver, mod), f"{mod} is not among {driver}'s staged modules"
    r = bench.net.roles()
    m, s, p = r["master"]["name"], r["standby"]["name"], r["primary"]["name"]
    assert not bench.net.has_link_local(p), "an enslaved primary has IFF_NO_ADDRCONF"

    # The failover module is in use by virtio_net: it stays, and so does the group.
    rc, out = bench.net.run(f"rmmod {mod}")
    assert rc != 0, out
    assert re.search(r"in use|busy|temporarily unavailable", out, re.I), out
    assert re.search(rf"^{mod}\s", bench.net.sh("lsmod"), re.M)
    assert group(bench.net.roles()) == group(r)
    res, d = traffic(bench, 1, "pinned")
    assert lost(res) == 0, res
    assert_carried_by_primary(res, d)

    # Unloading virtio_net destroys the master while both slaves exist.
    bench.net.sh("rmmod virtio_net", timeout=120)
    r = bench.net.wait(lambda r: r["master"] is None and r["standby"] is None, 30, "master gone")
    assert r["primary"] and r["primary"]["name"] == p, r
    assert not r["primary"]["master"] and m not in bench.net.topo()
    assert_not_slave(bench, p)
    assert_clean_log(bench)
    use_directly(bench, p)

    # Loading it again brings the master back over both slaves, the primary carrying traffic.
    bench.net.sh("modprobe virtio_net")
    r = bench.net.wait_primary_enslaved(60)
    assert r["primary"]["name"] == p
    assert sorted(r["master"]["lowers"]) == sorted([r["standby"]["name"], p])
    bench.net.setup_ip()
    bench.net.wait_primary_active()
    res, d = traffic(bench, 1, "reloaded")
    assert lost(res) == 0, res
    assert_carried_by_primary(res, d)
    assert_clean_log(bench)


@pytest.mark.debug
def test_failover_module_unload_frees_everything(bench, driver):
    """Found by the event storm (seed 20261202): once virtio_net and the failover module are
    unloaded, nothing the module allocated may be left. The Rust driver's list of masters is a
    static, whose buffer no drop freed; kmemleak (on the debug kernels, scanned when the test
    ends) reported it as soon as the module was gone."""
    mod = failover_module(driver)
    bench.net.sh("rmmod virtio_net", timeout=120)
    bench.net.wait(lambda r: r["master"] is None and r["standby"] is None, 30, "master gone")
    bench.net.sh(f"rmmod {mod} && {{ rmmod failover 2>/dev/null; true; }}", timeout=120)
    assert not re.search(rf"^(?:{mod}|failover)\s", bench.net.sh("lsmod"), re.M)
    # Loaded again, it works again.
    bench.net.sh("modprobe virtio_net")
    bench.net.wait_primary_enslaved(60)
    assert_clean_log(bench)


# --- 2. master removed ------------------------------------------------------------------------

@pytest.mark.debug
def test_master_removed(bench):
    """The virtio device goes (and the master with it) while the primary stays."""
    r = bench.net.roles()
    p = r["primary"]["name"]
    bench.guest.del_device(STANDBY_ID, timeout=60)
    r = bench.net.wait(lambda r: r["master"] is None and r["standby"] is None, 30, "master gone")
    assert r["primary"] and r["primary"]["name"] == p, r
    assert not r["primary"]["master"]
    assert PRIMARY_ID in bench.guest.pci_devices()
    assert_not_slave(bench, p)
    assert_clean_log(bench)
    use_directly(bench, p)
    assert_clean_log(bench)


@pytest.mark.debug
def test_master_destroyed_under_traffic(bench, driver):
    """Found by the event storm (seed 20261202, event 16): virtio_net is unbound, which destroys
    the master, while the guest and its peer ping each other. The master goes without a crit
    line. A master whose queues are stopped before it is unregistered (C detaches it first,
    netif_device_detach()) makes the core drop each frame sent meanwhile itself, and log
    "Virtual device ... asks to queue packet!" for it (a known C report in expect.py)."""
    r = bench.net.roles()
    virtio = bench.net.sh(f"basename $(readlink /sys/class/net/{r['standby']['name']}/device)")
    pings = PingPair(bench.ns, bench.net, 4, tag="destroy").start()
    try:
        time.sleep(1)
        bench.net.sh(f"echo {virtio.strip()} > /sys/bus/virtio/drivers/virtio_net/unbind")
        bench.net.wait(lambda r: r["master"] is None, 30, "master gone")
        pings.wait()
    finally:
        pings.stop()
    queued = [ln for ln in bench.net.dmesg().splitlines() if "asks to queue packet" in ln]
    strict(driver, "queue_on_destroy", not queued,
           f"{len(queued)} \"asks to queue packet\" lines, first: {queued[:1]}")
    r = bench.net.roles()
    assert r["primary"] and not r["primary"]["master"], r


# --- 3. same MAC, not a PCI device ------------------------------------------------------------

def test_same_mac_soft_devices(bench, driver):
    """A dummy and a veth pair with the pair's MAC are never enslaved.

    Given an address at creation, they keep a zero permanent address (NET_ADDR_SET), so a driver
    that matches on perm_addr drops them there already; test_same_mac_virtio_not_standby covers a
    same-MAC device whose permanent address does match."""
    missing = [m for m in ("dummy", "veth") if not config.staged_module(driver, m)]
    if missing:
        pytest.skip(f"{driver} kernel has no {', '.join(missing)} module (CONFIG_DUMMY/VETH=m)")
    mac = config.FAILOVER_MAC
    before = bench.net.roles()
    bench.net.sh(f"ip link add d0 address {mac} type dummy && "
                 f"ip link add v0 address {mac} type veth peer name v1 address {mac} && "
                 "ip link set d0 up && ip link set v0 up && ip link set v1 up")
    for dev in ("d0", "v0", "v1"):
        link = assert_not_slave(bench, dev)
        assert link["address"] == mac, link
    r = bench.net.roles()
    assert r["master"]["lowers"] == before["master"]["lowers"]
    assert r["primary"]["master"] == r["standby"]["master"] == r["master"]["name"]
    res, d = traffic(bench, 1)
    assert lost(res) == 0, res
    assert_carried_by_primary(res, d)
    # Deleting them leaves the group alone too.
    bench.net.sh("ip link del d0 && ip link del v0")
    assert group(bench.net.roles()) == group(r)
    assert_clean_log(bench)


def test_same_mac_virtio_not_standby(bench):
    """A second virtio-net with the pair's MAC (no failover) is neither standby nor primary: its
    parent is a virtio device, not the master's and not PCI. The primary is unplugged first, so
    the slot and the refusal are both the PCI check's."""
    bench.unplug(seconds=2)
    before = bench.net.roles()
    bench.guest.qmp.cmd("device_add", driver="virtio-net-pci", netdev="hn1", id="other0",
                        mac=config.FAILOVER_MAC, bus="rp1", romfile="")
    t0 = time.monotonic()
    while True:
        devs = bench.net.topo()
        other = [d for d in devs.values() if d["driver"] == "virtio_net"
                 and d["name"] != before["standby"]["name"]]
        if other:
            break
        assert time.monotonic() - t0 < 60, f"the second virtio-net never appeared: {devs}"
        time.sleep(0.5)
    o = other[0]["name"]
    time.sleep(2)
    link = assert_not_slave(bench, o)
    assert link["address"] == config.FAILOVER_MAC
    devs = bench.net.topo()
    m, s = before["master"]["name"], before["standby"]["name"]
    assert devs[m]["lowers"] == [s] and devs[s]["master"] == m, devs
    # It stays down: up, it would share the MAC on the bridge and steal the peer's frames.
    res, d = traffic_by_name(bench, [s, o])
    assert lost(res) == 0, res
    assert d[s][1] >= res["guest_to_peer"]["received"] > 0 and d[o][1] == 0, d
    bench.guest.del_device("other0", timeout=60)
    assert_clean_log(bench)


# --- 4. same MAC, other network namespace -----------------------------------------------------

def test_same_mac_other_netns(bench, driver):
    """The primary moved to another namespace is let go and not taken again; moved back, it is
    enslaved again."""
    r = bench.net.roles()
    m, s, p = r["master"]["name"], r["standby"]["name"], r["primary"]["name"]
    bench.net.sh(f"mkdir -p /run/netns && ip netns add {GUEST_NS}")
    bench.net.sh(f"ip link set {p} netns {GUEST_NS}")
    time.sleep(2)
    link = bench.net.link(p, GUEST_NS)
    assert link, f"{p} is not in {GUEST_NS}"
    # What a correct driver shows: no master across namespaces, the master on its standby.
    r = bench.net.roles()
    assert r["primary"] is None and r["master"] and r["standby"]["master"] == m
    seen = {"master_link": link.get("master"), "lowers": r["master"]["lowers"],
            "log": [line.split("] ", 1)[-1] for line in bench.net.dmesg().splitlines()
                    if f"slave:{p} registered" in line][-1:]}
    tx0 = link["stats64"]["tx"]["packets"]
    res, d = traffic(bench, 1, "netns")
    seen["primary_tx_from_master"] = bench.net.link(p, GUEST_NS)["stats64"]["tx"]["packets"] - tx0
    seen["standby_tx"] = d["standby"][1]
    ok = (seen["master_link"] is None and seen["lowers"] == [s]
          and seen["primary_tx_from_master"] == 0 and lost(res) == 0
          and d["standby"][1] >= res["guest_to_peer"]["received"] > 0)
    assert_clean_log(bench)

    # Back home it is a primary again, whatever happened over there.
    bench.net.sh(f"ip -n {GUEST_NS} link set {p} netns 1")
    r = bench.net.wait_primary_active(60)
    assert r["primary"]["name"] == p
    assert sorted(r["master"]["lowers"]) == sorted([s, p])
    res, d = traffic(bench, 1, "home")
    assert_carried_by_primary(res, d)
    assert_clean_log(bench)
    # Right after it is active again the bridge may still send to the standby's tap, whose
    # frames C drops: its replug loss (seen: 1 packet peer->guest).
    home_ok = lost(res) == 0

    strict(driver, "netns_enslave", ok,
           f"{p} in guest netns {GUEST_NS}: master {seen['master_link']!r}, log {seen['log']}, "
           f"master's lowers in its own netns {seen['lowers']}; pinging from {m} sent "
           f"{seen['primary_tx_from_master']} packets out of {p} and {seen['standby_tx']} "
           f"out of {s}")
    strict(driver, "replug_loss", home_ok,
           f"back home: lost g->p {res['guest_to_peer']['lost']}, "
           f"p->g {res['peer_to_guest']['lost']}")


# --- 5. bad input -----------------------------------------------------------------------------

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


def test_no_usable_slave_drops_in_the_driver(bench):
    """Found by the event storm (seed 1749604221): when the last usable slave goes while the
    guest sends, what reaches the master is dropped and counted by it, and the kernel log stays
    clean. A master that stops its queues then (C does) makes the core drop each frame itself,
    until the carrier change reaches the qdisc layer (up to a second later), and log "Virtual
    device ... asks to queue packet!" for them (a known C report in expect.py)."""
    r = bench.net.roles()
    m = r["master"]["name"]
    bench.guest.del_primary(timeout=60)
    bench.net.wait_primary_gone(60)
    before = bench.net.link(m)["stats64"]["tx"]["dropped"]
    pings = PingPair(bench.ns, bench.net, 4, tag="nousable").start()
    try:
        time.sleep(1)
        bench.guest.qmp.cmd("set_link", name=STANDBY_ID, up=False)
        bench.net.wait(lambda r: r["master"]["carrier"] == "0", 30, "master carrier off")
        pings.wait()
    finally:
        pings.stop()
    after = bench.net.link(m)["stats64"]["tx"]["dropped"]
    assert after - before >= 5, f"master tx_dropped {before} -> {after}"
    # Usable again, it carries traffic again. The outage let both sides' neighbour entries
    # fail, and the first ~100 ms after it go to ARP (C and Rust alike): resolve first.
    bench.guest.qmp.cmd("set_link", name=STANDBY_ID, up=True)
    bench.net.wait(lambda r: r["master"]["oper"] == "up", 30, "master operstate up")
    bench.refresh()
    res, d = traffic(bench, 1)
    assert_carried_by_standby(bench, res, d)


FLAP = ("setsid sh -c 'i=0; while [ ! -e /tmp/flap.stop ]; do i=$((i+1)); "
        "ip link set {m} down; ip link set {m} mtu 1400; ip link set {m} up; "
        "ip link set {m} mtu 1500; echo iteration $i; done; echo flap done' "
        ">/tmp/flap.log 2>&1 </dev/null &")


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

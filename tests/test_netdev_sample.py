"""samples/rust/rust_netdev_pair: a veth-like pair written with the Rust netdev abstractions
only. It must pass real traffic, count it, follow its peer's state and unload cleanly."""

import re
import time

import pytest

from nfr.netns import NetNS
from nfr.traffic import parse_ping
from nfr.vm import Guest


@pytest.fixture
def guest(driver):
    ns = NetNS()
    g = None
    try:
        g = Guest(ns, driver, name="sample", modules="")
        g.connect_agent()
        yield g
    finally:
        if g:
            g.stop()
        ns.close()


def _read(dev, netns=None):
    pre = f"ip netns exec {netns} " if netns else ""
    return (f"{pre}cat /sys/class/net/{dev}/statistics/rx_packets "
            f"/sys/class/net/{dev}/statistics/tx_packets "
            f"/sys/class/net/{dev}/statistics/tx_dropped; "
            f"{pre}cat /sys/class/net/{dev}/carrier 2>/dev/null || echo -1")


def _parse(vals):
    return {"rx": vals[0], "tx": vals[1], "tx_dropped": vals[2], "carrier": vals[3]}


def stats(a, dev, netns=None):
    return _parse([int(x) for x in a.check(_read(dev, netns)).split()])


def both(a):
    """Both sides' counters, read in one guest command."""
    v = [int(x) for x in a.check(_read("rpair0") + "; " + _read("rpair1", "peer")).split()]
    return _parse(v[:4]), _parse(v[4:])


def test_pair_passes_traffic(guest):
    a = guest.agent
    a.check("modprobe rust_netdev_pair")
    assert "rust_netdev_pair: rpair0 <-> rpair1" in a.check("dmesg")
    # No IPv6: its autoconfiguration would send frames of its own during the count.
    a.check("ip netns add peer && ip link set rpair1 netns peer && "
            "ip netns exec peer sysctl -qw net.ipv6.conf.all.disable_ipv6=1 && "
            "sysctl -qw net.ipv6.conf.rpair0.disable_ipv6=1 && "
            "ip -n peer link set lo up && "
            "ip addr add 198.51.100.1/24 dev rpair0 && ip link set rpair0 up")
    # Only one side up: no carrier.
    assert stats(a, "rpair0")["carrier"] == 0
    a.check("ip -n peer addr add 198.51.100.2/24 dev rpair1 && ip -n peer link set rpair1 up")
    assert stats(a, "rpair0")["carrier"] == 1
    assert stats(a, "rpair1", "peer")["carrier"] == 1

    before0, before1 = both(a)
    res = parse_ping(a.check("ping -n -i 0.01 -c 100 -W 2 198.51.100.2", timeout=60))
    assert res["lost"] == 0, res
    after0, after1 = both(a)
    d = {k: after0[k] - before0[k] for k in ("rx", "tx")}
    d1 = {k: after1[k] - before1[k] for k in ("rx", "tx")}
    # The counters match the packets ping sent: 100 echo requests one way, 100 replies the
    # other, plus at most an ARP exchange (IPv6 is off, so nothing else is sent).
    assert 100 <= d["tx"] <= 102 and 100 <= d1["tx"] <= 102, (d, d1)
    # What one side sent, the other received.
    assert d1["rx"] == d["tx"] and d["rx"] == d1["tx"], (d, d1)
    assert after0["tx_dropped"] == before0["tx_dropped"]

    # ethtool: driver name, link settings, and -S statistics that match the peer's tx.
    assert "driver: rust_netdev_pair" in a.check("ethtool -i rpair0")
    link = a.check("ethtool rpair0")
    assert "Speed: 10000Mb/s" in link and "Duplex: Full" in link and "Link detected: yes" in link
    # The peer may send a frame of its own meanwhile (its ARP entry for us turning stale sends a
    # unicast probe): its tx counter is read just before and just after ethtool's.
    peer_tx = "ip netns exec peer cat /sys/class/net/rpair1/statistics/tx_packets"
    out = a.check(f"{peer_tx}; ethtool -S rpair0; {peer_tx}").split("\n")
    lines = [line.strip() for line in out if line.strip()]
    tx_before, tx_after = int(lines[0]), int(lines[-1])
    st = "\n".join(lines[1:-1])
    m = re.search(r"peer_tx_packets: (\d+)", st)
    assert m and tx_before <= int(m.group(1)) <= tx_after, (tx_before, st, tx_after)
    assert "peer_tx_dropped: 0" in st, st

    # The peer going down takes the carrier away, and nothing gets through.
    a.check("ip -n peer link set rpair1 down")
    assert stats(a, "rpair0")["carrier"] == 0
    rc, out = a.run("ping -n -c 3 -i 0.01 -W 1 198.51.100.2")
    assert parse_ping(out)["received"] == 0

    # Unloading with both devices registered (one in another namespace), while traffic flows
    # across them, is clean.
    a.check("ip -n peer link set rpair1 up")
    a.check("(setsid /bin/ping -n -i 0.002 -w 8 198.51.100.2 >/tmp/flood.log 2>&1 &); sleep 1")
    before = stats(a, "rpair0")["tx"]
    time.sleep(0.5)
    assert stats(a, "rpair0")["tx"] > before, "no traffic across the pair before rmmod"
    a.check("rmmod rust_netdev_pair")
    assert "rpair0" not in a.check("ip -o link")
    assert "rpair1" not in a.check("ip -n peer -o link")
    dmesg = a.check("dmesg")
    for bad in ("BUG", "WARNING", "unregister_netdevice: waiting"):
        assert bad not in dmesg, dmesg[-3000:]

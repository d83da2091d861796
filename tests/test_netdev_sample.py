"""samples/rust/rust_netdev_pair: a veth-like pair written with the Rust netdev abstractions
only. It must pass real traffic, count it, follow its peer's state and unload cleanly."""

import pytest

from nfr.netns import NetNS
from nfr.traffic import parse_ping
from nfr.vm import Guest


@pytest.fixture
def guest(driver):
    ns = NetNS()
    g = Guest(ns, driver, name="sample", modules="")
    try:
        g.connect_agent()
        yield g
    finally:
        g.stop()
        ns.close()


def stats(a, dev, netns=None):
    pre = f"ip netns exec {netns} " if netns else ""
    out = a.check(f"{pre}cat /sys/class/net/{dev}/statistics/rx_packets "
                  f"/sys/class/net/{dev}/statistics/tx_packets "
                  f"/sys/class/net/{dev}/statistics/tx_dropped "
                  f"/sys/class/net/{dev}/carrier 2>/dev/null || true")
    v = [int(x) for x in out.split()]
    return {"rx": v[0], "tx": v[1], "tx_dropped": v[2], "carrier": v[3] if len(v) > 3 else None}


def test_pair_passes_traffic(guest):
    a = guest.agent
    a.check("modprobe rust_netdev_pair")
    assert "rust_netdev_pair: rpair0 <-> rpair1" in a.check("dmesg")
    a.check("ip netns add peer && ip link set rpair1 netns peer && "
            "ip -n peer link set lo up && "
            "ip addr add 198.51.100.1/24 dev rpair0 && ip link set rpair0 up")
    # Only one side up: no carrier.
    assert stats(a, "rpair0")["carrier"] == 0
    a.check("ip -n peer addr add 198.51.100.2/24 dev rpair1 && ip -n peer link set rpair1 up")
    assert stats(a, "rpair0")["carrier"] == 1
    assert stats(a, "rpair1", "peer")["carrier"] == 1

    before0, before1 = stats(a, "rpair0"), stats(a, "rpair1", "peer")
    res = parse_ping(a.check("ping -n -i 0.01 -c 100 -W 2 198.51.100.2", timeout=60))
    assert res["lost"] == 0, res
    after0, after1 = stats(a, "rpair0"), stats(a, "rpair1", "peer")
    sent0 = after0["tx"] - before0["tx"]
    sent1 = after1["tx"] - before1["tx"]
    # Every frame one side sent, the other received: the counters match exactly.
    assert sent0 >= 100 and sent1 >= 100
    assert after1["rx"] - before1["rx"] == sent0
    assert after0["rx"] - before0["rx"] == sent1
    assert after0["tx_dropped"] == before0["tx_dropped"]

    # The peer going down takes the carrier away; traffic then counts as dropped.
    a.check("ip -n peer link set rpair1 down")
    assert stats(a, "rpair0")["carrier"] == 0
    a.run("ping -n -c 3 -i 0.01 -W 1 198.51.100.2")

    # Unloading with both devices registered (one in another namespace) is clean.
    a.check("rmmod rust_netdev_pair")
    assert "rpair0" not in a.check("ip -o link")
    assert "rpair1" not in a.check("ip -n peer -o link")
    dmesg = a.check("dmesg")
    for bad in ("BUG", "WARNING", "unregister_netdevice: waiting"):
        assert bad not in dmesg, dmesg[-3000:]

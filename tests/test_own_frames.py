"""Our own frames do not come back to us.

Both slaves sit on the same L2 and share the master's MAC address. A broadcast or multicast
frame the master sends through one slave (a gratuitous ARP, an unsolicited neighbour
advertisement after a switch) is flooded back to the other. Delivered to the master, IPv6 takes
our own advertisement for another host's and logs "NA: <mac> advertised our address ... !".
The Rust driver does not deliver frames whose source is the master's address, and counts them
(`ethtool -S`: rx_looped_back).

The C driver has no such check; it also never announces a switch (test_announce.py), so it
sends nothing that could come back through the other slave: the log tests pass for it as well,
and only the counter is its known gap (no ethtool statistics).
"""

import time

from test_visibility import stats

WARNING = "advertised our address"


def own_address_warnings(bench):
    return [line for line in bench.net.dmesg().splitlines() if WARNING in line]


def test_no_own_address_warning_across_unplug_replug_and_migration(bench, driver):
    """Over an unplug, a replug and a live migration, with the announcements of each switch,
    IPv6 never logs our own address as advertised by another host; the frames that came back
    through the other slave are counted."""
    bench.unplug(seconds=2)
    bench.replug(seconds=10)
    info = bench.migrate()
    assert info["states"][-1] == "completed"
    assert own_address_warnings(bench) == []
    d = stats(bench, driver)
    # At least the replug's announcement, sent through the primary, is flooded back to the
    # standby.
    assert d["rx_looped_back"] > 0, d


def dad_state(bench, master, addr):
    """The flags of `addr` on the master: tentative while DAD runs, dadfailed if it failed."""
    out = bench.net.sh(f"ip -6 addr show dev {master} to {addr}/128")
    return [f for f in ("tentative", "dadfailed") if f in out], out


def wait_dad(bench, master, addr, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        flags, out = dad_state(bench, master, addr)
        if "tentative" not in flags or time.monotonic() > deadline:
            return flags, out
        time.sleep(0.5)


def test_ipv6_address_added_during_a_switch_passes_dad(bench, driver):
    """An IPv6 address added as the master switches (to the standby on an unplug, back to
    the primary on a replug) passes duplicate address detection: its own probes and
    advertisements coming back through the other slave do not count as another host's."""
    master = bench.net.roles()["master"]["name"]
    added = {}
    for n, event in ((1, lambda: bench.unplug(seconds=2)),
                     (2, lambda: bench.replug(seconds=10))):
        addr = f"2001:db8:0:1::{n}"
        bench.net.sh(f"ip -6 addr add {addr}/64 dev {master}")
        event()
        added[addr] = wait_dad(bench, master, addr)
    for addr, (flags, out) in added.items():
        assert addr in out and flags == [], (addr, out)
    assert own_address_warnings(bench) == []

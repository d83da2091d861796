"""What an operator sees of the data path: the master's `ethtool -S` counters, and one log line
per change of the active slave.

The counters answer "which path carried the traffic, and how often did it switch": rx and tx per
slave role (kept when the slave goes, as the master's own stats are), the switches to each
role, the primary's unplug notices, the peer announcements, frames dropped because no slave was
usable, and unicast frames taken from the standby while the primary was active. Each is checked
here against the traffic or the event the test caused. The names are stable: scripts and image
tests read them.

The C driver has neither (its ethtool ops report driver info and link settings only, and it logs
nothing when it switches): expect.py states both as its known gaps.
"""

import json
import re
import subprocess
import sys
import time
from pathlib import Path

from expect import strict
from nfr import config
from nfr.checks import assert_carried_by_primary, lose_every_slave_under_traffic, traffic
from nfr.vm import STANDBY_ID

STAT_NAMES = [f"{role}_{c}" for role in ("primary", "standby")
              for c in ("rx_packets", "rx_bytes", "tx_packets", "tx_bytes", "rx_dropped",
                        "tx_dropped")] + [
    "switches_to_primary", "switches_to_standby", "primary_leaving", "peer_announcements",
    "tx_no_slave_dropped", "standby_rx_while_primary", "rx_looped_back"]

# Frames that are neither the test's traffic nor under its control (IPv6 neighbour and router
# discovery) may pass between reading the master's counters and a slave's own.
NOISE_PACKETS = 3

RAWSEND = Path(__file__).parent / "nfr" / "rawsend.py"


def parse_stats(out):
    """`ethtool -S` output -> {name: value}, in the driver's order."""
    return {m[1]: int(m[2]) for m in re.finditer(r"^\s+(\S+): (\d+)$", out, flags=re.M)}


def stats(bench, driver):
    """The master's `ethtool -S` counters, with exactly the stable names; for the driver that
    has none, an xfail."""
    return with_slave(bench, driver, None)[0]


def diff(a, b):
    return {k: b[k] - a[k] for k in a}


def with_slave(bench, driver, role):
    """The master's counters and, read right after them in the same guest command, the `role`
    slave's own (by the names of the master's counters), or None."""
    r = bench.net.roles()
    m = r["master"]["name"]
    cmd = f"ethtool -S {m}" + (f"; echo @@; ip -s -j link show dev {r[role]['name']}"
                               if role else "")
    rc, out = bench.net.run(cmd)
    text, _, link = out.partition("@@")
    got = parse_stats(text)
    strict(driver, "no_ethtool_stats", rc == 0 and list(got) == STAT_NAMES,
           f"ethtool -S {m}: {text.strip()[:200]}")
    if not role:
        return got, None
    s = json.loads(link)[0]["stats64"]
    own = {f"{role}_{d}_{f}": s[d][f] for d in ("rx", "tx") for f in ("packets", "bytes",
                                                                        "dropped")}
    return got, own


def test_ethtool_stats_per_slave_follow_the_traffic(bench, driver):
    """Over a ping run through the primary, the primary_* counters grow as the primary's own
    counters do, by at least the echo packets; the standby transmits nothing."""
    s0, own0 = with_slave(bench, driver, "primary")
    res, d = traffic(bench, 2)
    s1, own1 = with_slave(bench, driver, "primary")
    assert_carried_by_primary(res, d)
    n = res["guest_to_peer"]["received"] + res["peer_to_guest"]["received"]
    for key in own0:
        got, want = s1[key] - s0[key], own1[key] - own0[key]
        slack = NOISE_PACKETS * (1500 if key.endswith("bytes") else 1)
        assert abs(got - want) <= slack, f"{key} grew by {got}, the primary's own by {want}"
    assert s1["primary_tx_packets"] - s0["primary_tx_packets"] >= n
    assert s1["primary_rx_packets"] - s0["primary_rx_packets"] >= n
    assert s1["standby_tx_packets"] == s0["standby_tx_packets"], (s0, s1)


def test_ethtool_stats_count_unplug_and_replug(bench, driver):
    """An unplug is one unplug notice, one switch to the standby and one announcement, and the
    primary's counters stay; a replug is one switch to the primary and one announcement."""
    s0 = stats(bench, driver)
    bench.unplug()
    s1 = stats(bench, driver)
    d = diff(s0, s1)
    assert (d["primary_leaving"], d["switches_to_standby"], d["switches_to_primary"]) == \
        (1, 1, 0), d
    # num_grat_arp=1: one announcement per switch.
    assert d["peer_announcements"] == 1, d
    assert s1["primary_tx_packets"] >= s0["primary_tx_packets"] > 0, (s0, s1)
    assert d["standby_tx_packets"] > 0, d
    bench.replug()
    s2 = stats(bench, driver)
    d = diff(s1, s2)
    assert (d["primary_leaving"], d["switches_to_standby"], d["switches_to_primary"]) == \
        (0, 0, 1), d
    assert d["peer_announcements"] == 1, d
    assert d["primary_tx_packets"] > 0, d


def test_ethtool_stats_count_standby_frames_taken_while_the_primary_is_active(bench, driver):
    """Unicast frames for the guest that the peer puts on the standby (as it does until it has
    learnt of a switch to the primary) are taken, and counted."""
    ns, tap = bench.ns, bench.guest.tap_standby
    s0 = stats(bench, driver)
    count = 50
    subprocess.run(
        ns.exec_args(sys.executable, str(RAWSEND), tap, config.FAILOVER_MAC, config.PEER_IP4,
                     config.GUEST_IP4, str(count)), check=True, timeout=60)
    time.sleep(1)
    s1 = stats(bench, driver)
    d = diff(s0, s1)
    assert count <= d["standby_rx_while_primary"] <= count + NOISE_PACKETS, d
    assert d["standby_rx_packets"] >= count, d


def test_ethtool_stats_count_frames_dropped_with_no_usable_slave(bench, driver):
    """Frames sent while no slave is usable (the primary unplugged, the standby's link lost)
    reach the master until the qdisc layer learns of its carrier loss (up to a second): each is
    dropped and counted, in tx_no_slave_dropped and in the master's tx_dropped. The latter then
    also counts what the noop qdisc drops, once the carrier loss has reached it."""
    m = bench.net.roles()["master"]["name"]
    s0 = stats(bench, driver)
    dropped0 = bench.net.link(m)["stats64"]["tx"]["dropped"]
    # The window lasts as long as the link watch takes to act on the master's carrier loss,
    # often a few ms: the guest also sends 1000 pings/s, so that frames fall in it.
    bench.net.sh("setsid sh -c 'echo $$ >/tmp/fastping.pid; "
                 f"exec ping -q -i 0.001 -c 20000 {config.PEER_IP4}' >/dev/null 2>&1 </dev/null &")
    try:
        lose_every_slave_under_traffic(bench)
    finally:
        bench.net.sh("kill $(cat /tmp/fastping.pid) 2>/dev/null; true")
    s1 = stats(bench, driver)
    dropped = bench.net.link(m)["stats64"]["tx"]["dropped"] - dropped0
    d = diff(s0, s1)
    assert d["tx_no_slave_dropped"] > 0, d
    assert d["tx_no_slave_dropped"] <= dropped - d["standby_tx_dropped"], (dropped, d)
    bench.guest.qmp.cmd("set_link", name=STANDBY_ID, up=True)
    bench.net.wait(lambda r: r["master"]["oper"] == "up", 30, "master operstate up")
    s2 = stats(bench, driver)
    assert s2["switches_to_standby"] - s1["switches_to_standby"] == 1, (s1, s2)


def new_log(bench, since):
    return bench.net.dmesg().splitlines()[since:]


def test_each_switch_logs_one_line_with_its_reason(bench, driver):
    """Each change of the active slave logs one line, with its reason, in the form operators
    grep for: "data path switched to <role> <slave>: <why>"."""
    r = bench.net.roles()
    standby, primary = r["standby"]["name"], r["primary"]["name"]
    since = len(bench.net.dmesg().splitlines())
    bench.unplug()
    lines = new_log(bench, since)
    want = f"data path switched to standby {standby}: {primary} leaving"
    strict(driver, "no_switch_log", sum(want in ln for ln in lines) == 1,
           f"{want!r} not logged once: {lines}")
    since += len(lines)
    bench.replug()
    primary = bench.net.roles()["primary"]["name"]
    lines = new_log(bench, since)
    want = re.compile(rf"data path switched to primary {primary}: {primary} "
                      r"(link up|registered)$")
    assert sum(bool(want.search(ln)) for ln in lines) == 1, lines
    assert not [ln for ln in lines if "switched to standby" in ln], lines

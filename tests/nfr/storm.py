"""The event storm: a seeded sequence of overlapping events (tests/nfr/stormplan.py) against one
guest, under traffic, with the failover group's invariants checked after every event.

One `Storm` runs one plan on one driver flavour:

- Traffic runs throughout: a ping from the peer to each pair's master and from the guest to the
  peer (100 pps each, 20 on a debug kernel: PING_INTERVAL_S), and a bidirectional iperf3 TCP
  stream (2 Mbit/s each way, so that a debug guest under TCG keeps up with the events). A
  stream that dies is restarted and counted.
- After every event: the group's invariants (`invariants()`), the kernel log (tests/nfr/klog.py
  and the known splats of tests/expect.py), and, for an operation that was refused, that it
  changed nothing (`group_state()`).
- `settle` events, and the end: everything is restored (primary plugged, links up, modules
  loaded, namespaces gone, bindings back, MTU 1500), then traffic must flow through the primary
  within RECOVER_S (RECOVER_S_DEBUG on a debug kernel).
- At the end: two kmemleak scans, the failover module must unload, and the log after it must
  show no reference-tracker or refcount report.

The host pings are timestamped; each gap in their replies is laid on the event during which it
began. A gap longer than INTERRUPT_S is an interruption. On a two-pair guest, a gap of the
quiet pair that began during an event of the other pair is a failure, unless that event is
guest-wide or the gap began within QUIET_GRACE_S after one (`_quiet_excused`), or the quiet pair
was not whole when the event began (`quiet_whole`).
"""

import json
import re
import signal
import subprocess
import tempfile
import time
from collections import Counter, defaultdict

from expect import known_gap, known_splat

from . import config
from .agent import AgentError
from .stormplan import KIND, KINDS, SLAVE_MTUS, VALID_MTUS
from .vm import PAIR_IDS, Guest, console_tail, debug

# Traffic must flow through the primary this long after a settle restored everything, at most:
# on a production kernel under TCG, and on a debug kernel (KASAN, lockdep, kmemleak) under TCG,
# where re-plugging, probing and linking up an e1000e after a storm took up to 43 s.
RECOVER_S = 60
RECOVER_S_DEBUG = 120
# A gap in the peer's ping replies longer than this is an interruption.
INTERRUPT_S = 2.0
# A quiet pair's gap that begins this soon after a guest-wide event ended is laid on that event.
QUIET_GRACE_S = 2.0
# Waits for QEMU: an unplug the guest must finish, a migration.
UNPLUG_S = 60
MIGRATE_S = 240
MIGRATION_PORT = 4445
GUEST_NS = "storm"
BRIDGE, BOND, MACVLAN = "stormbr", "stormbond", "stormmv"
IPERF_PORT = 5202
IPERF_RATE = "2M"
# The pings' interval, and on a debug kernel. The guest answers every pair's echo requests from
# one ICMP socket whose send buffer (2 * SKB_TRUESIZE(64K), net/ipv4/icmp.c) holds each reply
# until its device has sent it. A debug guest under TCG that falls a few seconds behind in
# completing transmits (a module load under KASAN and kmemleak does it) filled that buffer at
# 100 pps a pair: the next replies failed in ip_append_data() (IcmpOutErrors, IpOutDiscards),
# on the quiet pair too. At 20 pps the buffer lasts five times as long, and the guest keeps up.
PING_INTERVAL_S = 0.01
PING_INTERVAL_DEBUG_S = 0.05


# Errno texts (strerror, as ip, ethtool and the shell print them) -> errno names.
ERRNOS = {
    "Device or resource busy": "EBUSY", "Invalid argument": "EINVAL",
    "Operation not supported": "EOPNOTSUPP", "not supported": "EOPNOTSUPP",
    "No such device": "ENODEV", "Cannot assign requested address": "EADDRNOTAVAIL",
    "Operation not permitted": "EPERM", "File exists": "EEXIST",
    "Numerical result out of range": "ERANGE", "No such file or directory": "ENOENT",
    "Resource temporarily unavailable": "EAGAIN", "Too many levels of symbolic links": "ELOOP",
    "Address already in use": "EADDRINUSE",
    "No space left on device": "ENOSPC", "Cannot allocate memory": "ENOMEM",
    # iproute2's and busybox's own words for the same errnos.
    "Cannot find device": "ENODEV", "nonexistent directory": "ENOENT",
}

# How an MTU out of range is refused: the core's checks against min_mtu and max_mtu (with their
# extack texts), or a slave's own refusal.
MTU_ERRNOS = {"mtu less than device minimum", "mtu greater than device maximum", "EINVAL",
              "ERANGE"}

# The guest's view in one agent call: every link with details and counters (ip -j), the links
# of each other namespace, the failover masters' lower links, the multicast lists, and which
# driver each Intel PCI function and virtio device is bound to. dash builtins where it can:
# every exec costs a debug guest under TCG about 0.1 s.
SNAPSHOT = r"""
ip -d -s -j link show
echo '@@NS'
ip netns list 2>/dev/null | while read -r n rest; do
	echo "@ns $n"; ip -n "$n" -d -j link show
done
echo '@@LOWER'
for l in /sys/class/net/*/lower_*; do [ -e "$l" ] && echo "$l"; done
echo '@@MC'
cat /proc/net/dev_mcast
echo '@@FDB'
bridge -j fdb show 2>/dev/null
echo '@@BUS'
for d in /sys/bus/pci/devices/* /sys/bus/virtio/devices/*; do
	drv=-
	cd -P "$d/driver" 2>/dev/null && drv=${PWD##*/}
	cd /
	echo "${d##*/} $drv"
done
echo '@@SNMP'
while read -r l; do case $l in Ip:*|Icmp:*) echo "$l";; esac; done </proc/net/snmp
echo '@@SOFTNET'
while read -r l; do echo "$l"; done </proc/net/softnet_stat
"""


def errno_of(out):
    """The errno name (or the kernel's extack text) in a refused command's output."""
    for text, name in ERRNOS.items():
        if text in out:
            return name
    m = re.search(r"Error: ([^\n]*)", out)
    text = m.group(1).strip().rstrip(".") if m else \
        (out.strip().splitlines() or ["no message"])[-1][:60]
    return message_key(text)


def message_key(text):
    """One key per kind of message, whatever device, module or id it names."""
    return re.sub(r"'[^']*'", "'…'", re.sub(r'"[^"]*"', '"…"', text.strip()))


def qmp_refusal(err):
    """The key of a QMP command's refusal: QEMU has no errno, so its message, without the ids
    it names (the ids differ between the two pairs, the kind of refusal does not)."""
    return "qemu: " + message_key(str(err).splitlines()[0] if str(err) else type(err).__name__)


class Snapshot:
    """One reading of the guest's links (see SNAPSHOT)."""

    def __init__(self, text, pairs):
        parts = re.split(r"^@@(NS|LOWER|MC|FDB|BUS|SNMP|SOFTNET)$", text, flags=re.M)
        self.links = {d["ifname"]: d for d in json.loads(parts[0] or "[]")}
        sec = dict(zip(parts[1::2], parts[2::2]))
        self.netns = {}
        for chunk in re.split(r"^@ns ", sec.get("NS", ""), flags=re.M)[1:]:
            name, _, js = chunk.partition("\n")
            self.netns[name.strip()] = {d["ifname"]: d for d in json.loads(js or "[]")}
        self.lowers = defaultdict(set)
        for line in sec.get("LOWER", "").split():
            m = re.match(r"/sys/class/net/([^/]+)/lower_(.+)$", line)
            if m:
                self.lowers[m.group(1)].add(m.group(2))
        self.mc = defaultdict(set)
        for line in sec.get("MC", "").splitlines():
            f = line.split()
            if len(f) == 5:
                self.mc[f[1]].add(f[4])
        # A device's own unicast and multicast address lists ("self" entries of `bridge fdb`).
        self.fdb = defaultdict(set)
        for e in json.loads(sec.get("FDB", "").strip() or "[]"):
            if "self" in e.get("flags", []):
                self.fdb[e.get("ifname")].add(e.get("mac"))
        self.bus = dict(line.split() for line in sec.get("BUS", "").splitlines()
                        if len(line.split()) == 2)
        # The guest's IP and ICMP counters (/proc/net/snmp: a line of names, then one of
        # values), and the packets its CPUs' backlogs dropped (softnet_stat's second column).
        self.snmp = {}
        lines = [line for line in sec.get("SNMP", "").splitlines() if line.strip()]
        for names, values in zip(lines[::2], lines[1::2]):
            proto = names.split(":")[0]
            for k, v in zip(names.split()[1:], values.split()[1:]):
                self.snmp[f"{proto}{k}"] = int(v)
        self.softnet_dropped = sum(int(line.split()[1], 16)
                                   for line in sec.get("SOFTNET", "").splitlines()
                                   if len(line.split()) > 1)
        self.pairs = pairs
        self.roles = [self._roles(p) for p in range(pairs)]

    def _roles(self, pair):
        mac = config.pair_mac(pair)
        virt = [d for d in self.links.values()
                if d.get("parentbus") == "virtio" and d.get("address") == mac]
        names = {d["ifname"] for d in virt}
        standby = [d for d in virt if d.get("master") in names]
        r = {"master": None, "standby": None, "primary": None, "primary_ns": None,
             "virtio": virt}
        if standby:
            r["standby"] = standby[0]
            r["master"] = self.links[standby[0]["master"]]
        elif len(virt) == 1:
            # A master without its standby cannot exist; a lone virtio device is the standby.
            r["standby"] = virt[0]
        elif virt:
            # Two virtio devices and no link between them: only lower_* can tell.
            m = [d for d in virt if self.lowers.get(d["ifname"])]
            r["master"] = m[0] if m else None
            r["standby"] = next((d for d in virt if d is not r["master"]), None)
        for d in self.links.values():
            if d.get("parentbus") == "pci" and mac in (d.get("address"), d.get("permaddr")):
                r["primary"] = d
        for ns, links in self.netns.items():
            for d in links.values():
                if d.get("parentbus") == "pci" and mac in (d.get("address"), d.get("permaddr")):
                    r["primary_ns"] = (ns, d)
        return r

    def name(self, pair, role):
        d = self.roles[pair].get(role)
        return d["ifname"] if d else None

    def stacked(self, pair, kind):
        """Devices of `kind` (vlan, macvlan) on pair's master: {name: link}."""
        m = self.name(pair, "master")
        return {n: d for n, d in self.links.items()
                if m and d.get("link") == m
                and d.get("linkinfo", {}).get("info_kind") == kind}


def invariants(snap, prev_counters):
    """The failover group's invariants on one snapshot: a list of failures (empty: all hold).
    prev_counters: {(pair, master ifindex): (rx_packets, tx_packets, rx_bytes, tx_bytes)},
    updated, except where they dropped: a drop keeps failing when read again (the caller resets
    the baseline once it reported it, with master_counters())."""
    bad = []
    for p in range(snap.pairs):
        r = snap.roles[p]
        virt = r["virtio"]
        masters = [d for d in virt if not d.get("master")]
        if len(virt) > 2 or len(masters) > 1:
            bad.append(f"pair {p}: {len(masters)} masters over one standby: "
                       f"{[d['ifname'] for d in virt]}")
        m = r["master"]
        if len(virt) == 2 and not m:
            bad.append(f"pair {p}: master and standby exist but the standby is not enslaved: "
                       f"{[d['ifname'] for d in virt]}")
        if not m:
            continue
        mname = m["ifname"]
        lowers = snap.lowers.get(mname, set())
        slaves = {n for n, d in snap.links.items() if d.get("master") == mname}
        if lowers != slaves:
            bad.append(f"pair {p}: master {mname}'s lowers {sorted(lowers)} but devices naming "
                       f"it as master {sorted(slaves)}")
        for low in lowers:
            if low not in snap.links:
                bad.append(f"pair {p}: master {mname} holds {low}, which is not in its "
                           f"namespace")
            elif config.pair_mac(p) not in (snap.links[low].get("address"),
                                            snap.links[low].get("permaddr")):
                bad.append(f"pair {p}: master {mname} holds {low}, another pair's device "
                           f"({snap.links[low].get('address')})")
        for ns, links in snap.netns.items():
            for n, d in links.items():
                if d.get("master") and config.pair_mac(p) in (d.get("address"),
                                                              d.get("permaddr")):
                    bad.append(f"pair {p}: {n} in namespace {ns} is enslaved ({d['master']})")
        for low in lowers & set(snap.links):
            d = snap.links[low]
            lo, hi = d.get("min_mtu", 0), d.get("max_mtu", 1 << 32)
            if not lo <= m["mtu"] <= hi:
                bad.append(f"pair {p}: master {mname} mtu {m['mtu']} outside {low}'s "
                           f"[{lo}, {hi}]")
        key = (p, m["ifindex"])
        now = master_counters(snap)[key]
        if key in prev_counters and any(a < b for a, b in zip(now, prev_counters[key])):
            bad.append(f"pair {p}: master {mname} counters went backwards: "
                       f"{prev_counters[key]} -> {now}")
        else:
            prev_counters[key] = now
    return bad


# Invariant failures that are a driver's known gap (tests/expect.py): (gap key, phrases of the
# failure's text).
INVARIANT_GAPS = (
    ("netns_enslave", ("which is not in its namespace", " in namespace ")),
)


def changed_mtu(current, drawn, choices):
    """The drawn MTU, or, if the device has it already (a no-op event), the next of `choices`
    after it that differs, so that every MTU event changes something."""
    if drawn != current:
        return drawn
    i = choices.index(drawn)
    return next(m for m in choices[i + 1:] + choices[:i] if m != current)


def invariant_gap(failure):
    """The known-gap key an invariant failure of invariants() belongs to, or None."""
    for key, phrases in INVARIANT_GAPS:
        if any(ph in failure for ph in phrases):
            return key
    return None


def master_counters(snap):
    """Each master's counters, as invariants() keeps them."""
    out = {}
    for p in range(snap.pairs):
        m = snap.roles[p]["master"]
        if m:
            st = m.get("stats64", {})
            out[(p, m["ifindex"])] = (st.get("rx", {}).get("packets", 0),
                                      st.get("tx", {}).get("packets", 0),
                                      st.get("rx", {}).get("bytes", 0),
                                      st.get("tx", {}).get("bytes", 0))
    return out


def group_state(snap):
    """What a refused operation must leave unchanged, for the devices present in a snapshot:
    per device its name, master, MTU, admin state, promiscuity and allmulti counts, address,
    multicast list, and unicast and multicast address lists (`bridge fdb`'s "self" entries);
    per master its VLANs and macvlans. Carrier and presence are not in it:
    QEMU and pending unplugs change them on their own."""
    out = {}
    for p in range(snap.pairs):
        r = snap.roles[p]
        for role in ("master", "standby", "primary"):
            d = r[role]
            if d:
                out[(p, role, d["ifindex"])] = {
                    "name": d["ifname"], "master": d.get("master"), "mtu": d.get("mtu"),
                    "up": "UP" in d.get("flags", []), "promiscuity": d.get("promiscuity"),
                    "allmulti": d.get("allmulti"), "address": d.get("address"),
                    "mc": sorted(snap.mc.get(d["ifname"], ())),
                    "uc_mc": sorted(snap.fdb.get(d["ifname"], ()))}
        if r["master"]:
            out[(p, "stacked", r["master"]["ifindex"])] = {
                "vlans": sorted(snap.stacked(p, "vlan")),
                "macvlans": sorted(snap.stacked(p, "macvlan"))}
    return out


def operstates(snap):
    """Each group device's and stacked device's operstate."""
    out = {n: d.get("operstate") for p in range(snap.pairs)
           for role in ("master", "standby", "primary")
           for d in [snap.roles[p][role]] if d for n in [d["ifname"]]}
    for p in range(snap.pairs):
        for kind in ("vlan", "macvlan"):
            out.update({n: d.get("operstate") for n, d in snap.stacked(p, kind).items()})
    return out


def state_diff(before, after):
    """Differences between two group_state()s, on the devices present in both."""
    diff = []
    for key in before.keys() & after.keys():
        for f, v in before[key].items():
            if after[key].get(f) != v:
                diff.append(f"pair {key[0]} {key[1]}: {f} {v!r} -> {after[key].get(f)!r}")
    return diff


def counters_diff(before, snap):
    """Counters (counters_of) that went backwards since `before`, on the devices present in
    both. Under traffic they move; a refused operation must not reset them."""
    after = counters_of(snap)
    return [f"pair {k[0]} {k[1]}: counters {before[k]} -> {after[k]}"
            for k in before.keys() & after.keys()
            if any(a < b for a, b in zip(after[k], before[k]))]


def counters_of(snap):
    return {(p, role, d["ifindex"]): (d["stats64"]["rx"]["packets"], d["stats64"]["tx"]["packets"])
            for p in range(snap.pairs) for role in ("master", "standby", "primary")
            for d in [snap.roles[p][role]] if d and "stats64" in d}


# The guest's counters that a quiet-pair gap is read against (see path_counters).
PATH_SNMP = ("IcmpInEchos", "IcmpOutEchoReps", "IcmpOutErrors", "IpInDiscards", "IpOutDiscards",
             "IpOutNoRoutes")


def path_counters(snap, host, pair):
    """Counters along pair `pair`'s path, read at a check: its devices' packets, drops and
    misses ([rx, rx dropped, rx missed, tx, tx dropped]), the guest's ICMP echo and IP discard
    counters (all pairs'), its backlog drops, and `host`: the host's taps and bridge. Across the
    event in which a quiet-pair gap began (path_delta), they show where its packets went."""
    out = {}
    for role in ("master", "primary", "standby"):
        d = snap.roles[pair][role]
        st = (d or {}).get("stats64")
        if st:
            rx, tx = st["rx"], st["tx"]
            out[f"{role} {d['ifname']}"] = [rx.get("packets", 0), rx.get("dropped", 0),
                                            rx.get("missed", 0), tx.get("packets", 0),
                                            tx.get("dropped", 0)]
    out.update({k: snap.snmp[k] for k in PATH_SNMP if k in snap.snmp})
    out["softnet dropped"] = snap.softnet_dropped
    out.update(host)
    return out


def path_delta(before, after):
    """What each of path_counters() moved by between two checks, for the keys both have."""
    def sub(a, b):
        return [y - x for x, y in zip(a, b)] if isinstance(a, list) else b - a
    return {k: sub(before[k], after[k]) for k in before.keys() & after.keys()}


# --- traffic ---------------------------------------------------------------------------------

_reply = re.compile(r"^\[(\d+\.\d+)\] \d+ bytes from [^:]+: icmp_seq=(\d+)")
_summary = re.compile(r"(\d+) packets transmitted, (\d+) received")


def ping_gaps(text):
    """From `ping -D -O` output: (transmitted, received, gaps), gaps [(t_from, t_to, lost)]
    between consecutive answered sequence numbers (unwrapped past 65535). iputils numbers its
    requests from 1, so the last one sent is number `transmitted`; a gap after the last answer
    has t_to None (until the ping stopped)."""
    seen, base, last = {}, 0, None
    for line in text.splitlines():
        m = _reply.match(line)
        if not m or "DUP!" in line:
            continue
        seq = int(m.group(2)) + base
        if last is not None and seq < last - 30000:
            base += 65536
            seq += 65536
        last = seq if last is None else max(last, seq)
        seen.setdefault(seq, float(m.group(1)))
    m = _summary.search(text)
    sent = int(m.group(1)) if m else (max(seen) if seen else 0)
    order = sorted(seen)
    gaps = [(seen[a], seen[b], b - a - 1) for a, b in zip(order, order[1:]) if b - a > 1]
    if order and sent > order[-1]:
        gaps.append((seen[order[-1]], None, sent - order[-1]))
    return sent, len(seen), gaps


def _interrupt(proc):
    """SIGINT our own process (ping and iperf3 print their summary), SIGKILL if it hangs."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Traffic:
    """The storm's traffic: a ping from the peer to each pair's master, one from the guest to the
    peer, and an iperf3 --bidir stream, restarted when it dies."""

    def __init__(self, storm):
        self.s = storm
        self.pings = []
        self.iperf = None
        self.iperf_out = None
        self.iperf_restarts = []

    def start(self):
        for p in range(self.s.plan.pairs):
            out = tempfile.TemporaryFile(mode="w+")
            proc = subprocess.Popen(
                self.s.ns.exec_args("ping", "-D", "-O", "-n", "-i", str(self.s.ping_interval),
                                    config.pair_guest_ip4(p)),
                stdout=out, stderr=subprocess.STDOUT, text=True)
            self.pings.append((p, proc, out))
        # /bin/ping is iputils': busybox's setsid would run its own ping applet for "ping".
        self.s.gsh(f"setsid /bin/ping -q -n -i {self.s.ping_interval} -W 1 {config.PEER_IP4} "
                   ">/tmp/storm-ping.out 2>&1 </dev/null & echo $! >/tmp/storm-ping.pid")
        self._start_server()
        self._start_iperf()

    def _start_server(self):
        """(Re)start the guest's iperf3 server and wait until it listens."""
        self.s.grun("kill $(cat /tmp/storm-iperf.pid 2>/dev/null) 2>/dev/null; "
                    f"setsid iperf3 -s -p {IPERF_PORT} >/tmp/storm-iperf.out 2>&1 </dev/null & "
                    "echo $! >/tmp/storm-iperf.pid; "
                    f"for i in $(seq 100); do netstat -ltn | grep -q ':{IPERF_PORT} ' && exit 0; "
                    "sleep 0.1; done; echo iperf3 server not listening; exit 1")

    RESTART_S = 10

    def _start_iperf(self):
        self.iperf_t0 = time.monotonic()
        self.iperf_out = tempfile.TemporaryFile(mode="w+")
        self.iperf = subprocess.Popen(
            self.s.ns.exec_args("iperf3", "-c", config.GUEST_IP4, "-p", str(IPERF_PORT),
                                "--bidir", "-b", IPERF_RATE, "-t", "86400", "-i", "0",
                                "--connect-timeout", "3000"),
            stdout=self.iperf_out, stderr=subprocess.STDOUT, text=True)

    def check(self, index):
        """Restart a dead iperf3 stream, and its server in the guest (which may still count the
        old one as running); a restart is an interruption of the event `index`. At most one
        restart in RESTART_S: while the master is gone, every attempt dies at once."""
        if not self.iperf or self.iperf.poll() is None:
            return
        if time.monotonic() - self.iperf_t0 < self.RESTART_S:
            return
        self.iperf_out.seek(0)
        tail = self.iperf_out.read()[-300:].strip().replace("\n", " | ")
        self.iperf_out.close()
        self.iperf_restarts.append({"event": index, "rc": self.iperf.returncode,
                                    "output": tail})
        self._start_server()
        self._start_iperf()

    def stop(self):
        """Stop everything; -> {'pings': [(pair, text)], 'guest_ping': summary text, 'stopped':
        host time the pings were stopped}."""
        res = {"pings": [], "guest_ping": "", "stopped": time.time()}
        for p, proc, out in self.pings:
            _interrupt(proc)
            out.seek(0)
            res["pings"].append((p, out.read()))
            out.close()
        self.pings = []
        if self.iperf:
            _interrupt(self.iperf)
        if self.iperf_out:
            self.iperf_out.close()
        self.iperf = self.iperf_out = None
        try:
            self.s.grun("kill -INT $(cat /tmp/storm-ping.pid) 2>/dev/null; "
                        "kill $(cat /tmp/storm-iperf.pid) 2>/dev/null; sleep 1; "
                        "cat /tmp/storm-ping.out", timeout=60)
            res["guest_ping"] = self.s.grun("cat /tmp/storm-ping.out")[1]
        except (AgentError, OSError) as e:
            res["guest_ping"] = f"unavailable: {e}"
        return res


# --- the storm -------------------------------------------------------------------------------

class StormFailure(Exception):
    pass


class Storm:
    """One plan on one flavour; run() -> the flavour's report (see run_storm.py)."""

    def __init__(self, flavour, plan, ns, log=print):
        self.flavour, self.plan, self.ns, self.log = flavour, plan, ns, log
        self.guest = None
        self.traffic = None
        self.snap = None
        self.masters = {}          # pair -> ifindex of the master the storm configured
        self.configured_at = {}    # pair -> index of the event after which it configured it
        self.master_counters = {}
        self.links_down = set()    # (pair, nic) whose QEMU link the storm set off
        self.pci_addr = {}         # pair -> the primary's guest PCI address
        self.virtio_dev = {}       # pair -> the standby's virtio device
        self.readers = False
        self.held = []             # (due event, kind, args): what a `removes` toggle took away
        self.unplug_pending = set()  # pairs whose primary was device_del'ed, maybe not yet gone
        self.events = []           # per event: what it did
        self.failures = []
        self.last_clean = -1
        self.splats = Counter()
        self.known_splats = Counter()
        self.lockdep_off = None    # the event after which lockdep was off, if it turned off
        self.leaks = []
        self.recoveries = []
        self.t_events = []
        self.recover_s = RECOVER_S_DEBUG if debug(flavour) else RECOVER_S
        self.ping_interval = PING_INTERVAL_DEBUG_S if debug(flavour) else PING_INTERVAL_S
        # Guest commands and QMP commands sent so far, and how many had been when self.snap was
        # read: while the two are equal, nothing the storm did can have changed the guest since.
        self.actions = 0
        self.snap_actions = -1

    # --- guest access ------------------------------------------------------------------------

    def grun(self, cmd, timeout=120):
        self.actions += 1
        return self._timed_run(cmd, timeout)

    def _timed_run(self, cmd, timeout):
        """A guest command, its time added to the current event's (the log's agent_s, calls)."""
        t0 = time.monotonic()
        try:
            return self.guest.agent.run(cmd, timeout)
        finally:
            rec = self.current
            rec["agent_s"] = round(rec.get("agent_s", 0) + time.monotonic() - t0, 2)
            rec["agent_calls"] = rec.get("agent_calls", 0) + 1

    def gsh(self, cmd, timeout=120):
        rc, out = self.grun(cmd, timeout)
        if rc != 0:
            raise StormFailure(f"guest command failed ({rc}): {cmd}\n{out}")
        return out

    def snapshot(self):
        for attempt in range(3):
            try:
                # A read: not one of self.actions.
                rc, out = self._timed_run(SNAPSHOT, 120)
                if rc != 0:
                    raise StormFailure(f"guest command failed ({rc}): snapshot\n{out}")
                self.snap = Snapshot(out, self.plan.pairs)
                break
            except json.JSONDecodeError:
                # A dump cut short while devices come and go ("Dump terminated"): read again.
                if attempt == 2:
                    raise
        self.snap_actions = self.actions
        for p in range(self.plan.pairs):
            s = self.snap.roles[p]["standby"]
            if s and s.get("parentdev"):
                self.virtio_dev[p] = s["parentdev"]
        return self.snap

    # --- setup and teardown ------------------------------------------------------------------

    def boot(self):
        self.guest = Guest(self.ns, self.flavour, name="storm", pairs=self.plan.pairs)
        for p in range(self.plan.pairs):
            self.guest.add_primary(pair=p)
        self.guest.connect_agent(timeout=300)
        deadline = time.monotonic() + 240
        while True:
            snap = self.snapshot()
            if all(r["master"] and r["primary"] and r["primary"].get("master") for r in snap.roles):
                break
            if time.monotonic() > deadline:
                raise StormFailure(f"the failover groups never formed: {snap.roles}")
            time.sleep(1)
        self._pci_map()
        self.ensure_ip()
        self.gsh("mkdir -p /run/netns; modprobe 8021q; modprobe macvlan; modprobe bridge; "
                 "modprobe bonding max_bonds=0")

    def _pci_map(self):
        """Each pair's primary's guest PCI address, from QEMU's view of the bus."""
        def walk(devs):
            for d in devs:
                for p, (_, pid) in enumerate(PAIR_IDS[:self.plan.pairs]):
                    if d.get("qdev_id") == pid:
                        self.pci_addr[p] = f"0000:{d['bus']:02x}:{d['slot']:02x}.{d['function']}"
                walk(d.get("pci_bridge", {}).get("devices", []))

        for bus in self.guest.qmp.cmd("query-pci"):
            walk(bus["devices"])
        missing = [p for p in range(self.plan.pairs) if p not in self.pci_addr]
        if missing:
            raise StormFailure(f"no PCI address for the primary of pair(s) {missing}")

    def ensure_ip(self):
        """Configure each pair's master once, as an operator's network config would: up, with
        its addresses. A master the storm configured already is left as the events left it."""
        snap = self.snap
        for p in range(self.plan.pairs):
            m = snap.roles[p]["master"]
            if not m or self.masters.get(p) == m["ifindex"]:
                continue
            n = m["ifname"]
            cmd = (f"ip link set {n} up; "
                   f"ip addr add {config.pair_guest_ip4(p)}/{config.PREFIX4} dev {n}")
            if p == 0:
                cmd += f"; ip -6 addr add {config.GUEST_IP6}/64 dev {n} nodad"
            self.grun(cmd)
            self.masters[p] = m["ifindex"]
            self.configured_at[p] = self.current["index"]

    # --- one event ---------------------------------------------------------------------------

    def op(self, cmd, expect_refused=False, timeout=120, errnos=None):
        """One guest operation. A refused one must change nothing: the group's state is
        compared before and after. With `errnos`, it must be refused with one of those.
        The state before is the last snapshot if the storm did nothing since (the previous
        event's check read it just now), and read anew otherwise, or when a refusal is
        expected. -> (rc, output)."""
        fresh = self.snap is not None and self.snap_actions == self.actions
        snap = self.snap if fresh and not (expect_refused or errnos) else self.snapshot()
        before, counters, opers = group_state(snap), counters_of(snap), operstates(snap)
        rc, out = self.grun(cmd, timeout)
        rec = self.current
        rec.setdefault("ops", []).append({"cmd": cmd, "rc": rc})
        if rc != 0:
            err = errno_of(out)
            rec["ops"][-1]["out"] = out.strip()[-200:]
            rec.setdefault("refused", []).append(err)
            snap = self.snapshot()
            diff = self._refused_diff(before, opers, counters, snap)
            if diff:
                # A pending unplug or QEMU's link change may land in between: read again.
                time.sleep(1)
                snap = self.snapshot()
                diff = self._refused_diff(before, opers, counters, snap)
            if diff:
                self.fail("refused operation changed state", f"{cmd}: {err}: {diff}")
            if errnos and err not in errnos:
                self.fail("refused with an unexpected errno",
                          f"{cmd}: {err}, expected one of {sorted(errnos)}")
        elif expect_refused:
            self.fail("invalid operation accepted", f"{cmd}: {out.strip()[:200]}")
        return rc, out

    def fail(self, what, detail):
        self.current.setdefault("failures", []).append(f"{what}: {detail}")

    def fail_unless_gap(self, key, what, detail):
        """A failure, unless the flavour's driver has the known gap `key` (tests/expect.py):
        then it is counted in the report's known gaps."""
        if key and known_gap(self.flavour, key):
            self.current.setdefault("known_gaps", []).append(f"{key}: {what}: {detail}")
        else:
            self.fail(what, detail)

    @staticmethod
    def _refused_diff(before, opers, counters, snap):
        """What changed across a refused operation. A device whose carrier came or went in
        between joins or leaves multicast groups on its own (IPv6 addrconf on link-ready, and
        its sync to the slaves): the address lists are then not compared."""
        diff = state_diff(before, group_state(snap)) + counters_diff(counters, snap)
        if operstates(snap) != opers:
            diff = [d for d in diff if ": mc " not in d and ": uc_mc " not in d]
        return diff

    def run_event(self, ev):
        self.current = {"index": ev.index, "kind": ev.kind, "args": ev.args,
                        "t": time.time()}
        self.events.append(self.current)
        self.t_events.append(self.current["t"])
        # The state the previous event's check() read last (or the boot's): nothing ran since.
        self.current["quiet_whole"] = self.quiet_whole(self.snap)
        self.put_back(ev.index)
        args = dict(ev.args)
        hold = args.pop("hold", None)
        if hold:
            # This event acts on what an earlier one of its kind may hold: that hold is over.
            self.held = [h for h in self.held if not self._same_target(h, ev.kind, args)]
        getattr(self, f"ev_{ev.kind}")(**args)
        if self.current.pop("removed", False) and hold:
            self.held.append((ev.index + hold, ev.kind, args))
        self.current["s"] = round(time.time() - self.current["t"], 2)

    @staticmethod
    def _same_target(held, kind, args):
        """Does a held entry act on what (kind, args) acts on? Hotplug's `wait`, PCI remove's
        `rescan_now` say how, not what."""
        if held[1] != kind:
            return False
        how = ("wait", "rescan_now")
        return ({k: v for k, v in held[2].items() if k not in how} ==
                {k: v for k, v in args.items() if k not in how})

    def put_back(self, index):
        """Before event `index`: undo what a `removes` toggle took away, once its hold is over
        (if no event put it back already). The undo's operations count as this event's."""
        due = [h for h in self.held if h[0] <= index]
        self.held = [h for h in self.held if h[0] > index]
        if due:
            self._drain_deleted()
        for _, kind, args in due:
            self.snapshot()
            if getattr(self, f"ev_{kind}")(**args, only_back=True):
                self.current.setdefault("put_back", []).append(kind)
        if due:
            self.snapshot()

    def quiet_whole(self, snap):
        """Is the quiet pair (pair 1) whole: its master up, with its address and carrier, over
        an enslaved primary with carrier? Only then must another pair's event leave it alone:
        after a guest-wide event (a module reload recreates its master) it recovers for a
        while, through events of the other pair."""
        if self.plan.pairs < 2:
            return None
        # Configured only after the previous event: its address and neighbours are still new.
        if self.configured_at.get(1) == self.current["index"] - 1:
            return False
        r = snap.roles[1]
        m, p = r["master"], r["primary"]
        return bool(m and p and self.masters.get(1) == m["ifindex"]
                    and "UP" in m.get("flags", []) and m.get("operstate") == "UP"
                    and p.get("master") == m["ifname"] and p.get("operstate") == "UP")

    # --- host side ---------------------------------------------------------------------------

    def _qemu_has(self, dev_id):
        try:
            return any(c["name"] == dev_id
                       for c in self.guest.qmp.cmd("qom-list", path="/machine/peripheral"))
        except Exception:
            return False

    def _qmp(self, cmd, **args):
        """A QMP command; an error is a refusal (host side), recorded with QEMU's words."""
        self.actions += 1
        try:
            self.guest.qmp.cmd(cmd, **args)
            self.current.setdefault("ops", []).append({"qmp": cmd, **args})
            return True
        except Exception as e:
            self.current.setdefault("refused", []).append(qmp_refusal(e))
            return False

    def _del_primary(self, wait, pair=0):
        """device_del the primary; with `wait`, until QEMU deleted it (DEVICE_DELETED: the guest
        let it go). -> whether QEMU took the request."""
        pid = PAIR_IDS[pair][1]
        self.guest.qmp.clear_events()
        if not self._qmp("device_del", id=pid):
            return False
        self.unplug_pending.add(pair)
        if wait:
            try:
                self.guest.wait_event("DEVICE_DELETED",
                                      lambda e: e.get("data", {}).get("device") == pid,
                                      UNPLUG_S)
                # Landed: from here QEMU may plug it back on its own (a virtio_net that
                # negotiates STANDBY again gets its primary back), which is no pending unplug.
                self.unplug_pending.discard(pair)
            except TimeoutError:
                self.fail("unplug not completed", f"no DEVICE_DELETED for {pid} in {UNPLUG_S} s")
        return True

    def _drain_deleted(self):
        """Read QEMU's queued events: a DEVICE_DELETED for a primary whose unplug is pending
        means it landed. The primary may be back already: a virtio_net that negotiates STANDBY
        again (a reload, a rebind) makes QEMU plug the primary it knows back in
        (failover_add_primary())."""
        while True:
            try:
                ev = self.guest.qmp.pull_event(wait=False)
            except Exception:  # noqa: BLE001 - no event, or QMP gone (judged elsewhere)
                return
            if ev is None:
                return
            if ev.get("event") == "DEVICE_DELETED":
                dev = ev.get("data", {}).get("device")
                for p, (_, pid) in enumerate(PAIR_IDS):
                    if dev == pid:
                        self.unplug_pending.discard(p)

    def _wait_deleted(self, pair=0):
        """Wait until QEMU no longer has pair's primary (an unplug still pending lands); a
        failure if it stays longer than UNPLUG_S. -> whether it is gone (False also when it
        went and QEMU plugged it back)."""
        pid = PAIR_IDS[pair][1]
        self._drain_deleted()
        if pair not in self.unplug_pending and self._qemu_has(pid):
            return False
        deadline = time.monotonic() + UNPLUG_S
        while self._qemu_has(pid):
            if time.monotonic() > deadline:
                self.fail("unplug not completed", f"{pid} still in QEMU after {UNPLUG_S} s")
                # The guest kept it: no longer waited for, until it is unplugged again.
                self.unplug_pending.discard(pair)
                return False
            time.sleep(0.05)
        self.unplug_pending.discard(pair)
        return True

    def _add_primary(self, pair=0):
        if self._qmp("device_add", **self.guest._primary_props(self.guest.primary_model, pair)):
            self.links_down.discard((pair, "primary"))
            self.unplug_pending.discard(pair)

    # A `removes` toggle (stormplan.py) marks the event "removed" when it takes something away;
    # with only_back=True it only puts back what is away, and does nothing else. It returns
    # whether it put something back.

    def ev_primary_hotplug(self, wait, only_back=False):
        if only_back:
            # Unplugged without waiting, it may still be in QEMU: put it back once it is gone.
            present = self._qemu_has(PAIR_IDS[0][1])
            if (not present or 0 in self.unplug_pending) and self._wait_deleted():
                self._add_primary()
                return True
        elif self._qemu_has(PAIR_IDS[0][1]):
            self.current["removed"] = self._del_primary(wait)
        else:
            self._add_primary()
            return True
        return False

    def ev_primary_bounce(self):
        """The primary unplugged and plugged back to back (as soon as QEMU let it go), or
        plugged and unplugged at once, while the guest is still probing it."""
        if self._qemu_has(PAIR_IDS[0][1]):
            if self._del_primary(False) and self._wait_deleted():
                self._add_primary()
        else:
            self._add_primary()
            self._del_primary(False)

    def ev_set_link(self, nic, only_back=False):
        key = (0, nic)
        up = key in self.links_down
        if only_back and not up:
            return False
        dev = PAIR_IDS[0][0 if nic == "standby" else 1]
        if self._qmp("set_link", name=dev, up=up):
            (self.links_down.discard if up else self.links_down.add)(key)
            self.current["removed"] = not up
            return up
        return False

    def _start_dest(self):
        return Guest(self.ns, self.flavour, name="storm-dst", pairs=self.plan.pairs,
                     primary_model=self.guest.primary_model, incoming_port=MIGRATION_PORT)

    def _wait_migration(self, src, t0, cancel_after=None):
        states, cancelled = [], False
        while True:
            st = src.qmp.cmd("query-migrate")
            if not states or states[-1] != st.get("status"):
                states.append(st.get("status"))
            if st.get("status") in ("completed", "failed", "cancelled"):
                return st, states
            if cancel_after is not None and not cancelled and \
                    time.monotonic() - t0 >= cancel_after:
                src.qmp.cmd("migrate_cancel")
                cancelled = True
            if time.monotonic() - t0 > MIGRATE_S:
                src.qmp.cmd("migrate_cancel")
                raise StormFailure(f"migration stuck: {states}")
            time.sleep(0.05)

    def _switch_to(self, dest):
        src = self.guest
        self.guest = dest
        src.stop()
        self._scan_guest(src)
        dest.connect_agent(timeout=300)
        # The destination's primaries are plugged anew, with their link up; virtio-net carries
        # its link state across.
        self.links_down = {k for k in self.links_down if k[1] == "standby"}
        self.unplug_pending = set()

    def _migrate(self, cancel_after=None):
        """Start a migration to a new destination (cancelled after `cancel_after` s, if given)
        and wait for its end. A completed one leaves the storm on the destination; otherwise
        the destination is stopped. -> the final query-migrate status."""
        dest = self._start_dest()
        src = self.guest
        self.actions += 1
        try:
            src.qmp.clear_events()
            t0 = time.monotonic()
            src.qmp.cmd("migrate", uri=f"tcp:127.0.0.1:{MIGRATION_PORT}")
            st, states = self._wait_migration(src, t0, cancel_after)
            self.current["migration"] = {"states": states, "downtime_ms": st.get("downtime")}
        except Exception:
            dest.stop()
            self._scan_guest(dest)
            raise
        if st["status"] == "completed":
            self._switch_to(dest)
        else:
            dest.stop()
            self._scan_guest(dest)
        return st

    def ev_migrate(self):
        st = self._migrate()
        if st["status"] != "completed":
            self.fail("migration failed", f"{st['status']}: {st.get('error-desc')}")

    def ev_migrate_cancel(self, after_ms):
        # Which primaries were plugged, and which were enslaved, before.
        before = self.snapshot()
        had = {p for p in range(self.plan.pairs)
               if self._qemu_has(PAIR_IDS[p][1]) and p not in self.unplug_pending}
        whole = {p for p in had if self._enslaved_primary(before, p)}
        # One that finishes before the cancel is a migration like any other.
        if self._migrate(cancel_after=after_ms / 1000)["status"] == "completed":
            return
        # After a cancelled migration QEMU plugs the primary back in; the guest runs on.
        if not self.guest.running():
            try:
                self.guest.qmp.cmd("cont")
            except Exception as e:
                self.fail("guest not running after a cancelled migration", str(e))
        deadline = time.monotonic() + self.recover_s
        while True:
            snap = self.snapshot()
            self._replug_dropped(had)
            missing = [f"pair {p}: not in QEMU" for p in had
                       if not self._qemu_has(PAIR_IDS[p][1])]
            missing += [f"pair {p}: not enslaved" for p in whole
                        if not self._enslaved_primary(snap, p)]
            if not missing:
                return
            if time.monotonic() > deadline:
                self.fail("primary not back after a cancelled migration",
                          f"within {self.recover_s} s: {missing}")
                return
            time.sleep(1)

    def _replug_dropped(self, had):
        """Plug back, as a management layer would, a primary that QEMU deleted after a cancelled
        migration. QEMU plugs a primary back on a cancel only while it still holds it, unplugged
        but not deleted (partially_hotplugged); it clears that mark as it plugs it back. A guest
        that finishes ejecting the primary after that (a debug guest under TCG takes ~10 s)
        makes QEMU delete it for good (DEVICE_DELETED), as for any unplug. The guest cannot
        prevent that, so the storm counts it (`qemu_dropped`) and adds the device again: it
        must then be enslaved within the recovery bound like any plugged primary."""
        for p in sorted(had):
            pid = PAIR_IDS[p][1]
            dropped = self.current.setdefault("qemu_dropped", [])
            if p in dropped or self._qemu_has(pid):
                continue
            if self._add_primary(p):
                dropped.append(p)

    @staticmethod
    def _enslaved_primary(snap, pair):
        r = snap.roles[pair]
        return bool(r["master"] and r["primary"]
                    and r["primary"].get("master") == r["master"]["ifname"])

    # --- guest links, MTU, VLAN, address lists -------------------------------------------------

    def _dev(self, role, pair=0):
        n = self.snap.name(pair, role)
        if not n:
            self.current["skipped"] = f"no {role}"
        return n

    def ev_link_toggle(self, role, only_back=False):
        n = self.snap.name(0, role) if only_back else self._dev(role)
        if n:
            up = "UP" in self.snap.links[n].get("flags", [])
            if only_back and up:
                return False
            rc, _ = self.op(f"ip link set {n} {'down' if up else 'up'}")
            self.current["removed"] = up and rc == 0
            return not up
        return False

    def ev_mtu_master(self, mtu):
        m = self._dev("master")
        if m:
            mtu = changed_mtu(self.snap.roles[0]["master"].get("mtu"), mtu, VALID_MTUS)
            self.current["mtu"] = mtu
            self.op(f"ip link set {m} mtu {mtu}")

    def ev_mtu_master_invalid(self, mtu):
        self._unplug_landed()
        m = self._dev("master")
        if not m:
            return
        r = self.snap.roles[0]
        must = True
        if mtu == "primary_max+1":
            p = r["primary"]
            if not p:
                self.current["skipped"] = "no primary"
                return
            mtu = p["max_mtu"] + 1
            # Refused only while that primary is the master's slave.
            must = p.get("master") == m
        elif mtu == "standby_max+1":
            mtu = r["standby"]["max_mtu"] + 1
        self.current["mtu"] = mtu
        self.op(f"ip link set {m} mtu {mtu}", expect_refused=must, errnos=MTU_ERRNOS)

    def ev_mtu_slave(self, role, mtu):
        n = self._dev(role)
        if n:
            mtu = changed_mtu(self.snap.roles[0][role].get("mtu"), mtu, SLAVE_MTUS)
            self.current["mtu"] = mtu
            self.op(f"ip link set {n} mtu {mtu}")

    def ev_vlan_toggle(self, vid, traffic):
        """Add or delete VLAN `vid` on the master. VLAN 100 with `traffic` has an address and a
        peer: once added, a ping over it must be answered while the master has carrier; deleted,
        it goes while a ping runs over it."""
        m = self._dev("master")
        if not m:
            return
        carrier = self.snap.roles[0]["master"].get("operstate") == "UP"
        have = {d["linkinfo"]["info_data"]["id"]: n
                for n, d in self.snap.stacked(0, "vlan").items()}
        with_traffic = traffic and vid == config.VLAN_ID
        if vid in have:
            if with_traffic:
                self.grun(f"setsid /bin/ping -q -n -i {self.ping_interval} -I {have[vid]} "
                          f"{config.PEER_VLAN_IP4} >/dev/null 2>&1 </dev/null & "
                          "echo $! >/tmp/storm-vlan-ping.pid; sleep 0.5")
            self.op(f"ip link del {have[vid]}")
            if with_traffic:
                self.grun("kill $(cat /tmp/storm-vlan-ping.pid) 2>/dev/null; true")
            return
        name = f"vl{vid}"
        rc, _ = self.op(f"ip link add link {m} name {name} type vlan id {vid}")
        if rc == 0:
            self.op(f"ip link set {name} up")
            if with_traffic:
                self.op(f"ip addr add {config.GUEST_VLAN_IP4}/{config.PREFIX4} dev {name}")
                # Answered at least once within 10 s: a data-path gap of a few seconds on a
                # debug guest under TCG is not a failure, no traffic at all is.
                rc, out = self.grun(f"/bin/ping -n -c 3 -i 0.2 -W 1 -w 10 {config.PEER_VLAN_IP4}")
                self.current["vlan_ping"] = out.strip().splitlines()[-2:] if out else []
                summary = _summary.search(out or "")
                # With the master's rx-vlan-filter off (an offload event), 8021q adds no VID to
                # it, so none reaches the slaves, whose filters cannot be turned off.
                filtering = "rx-vlan-filter: on" in self.grun(f"ethtool -k {m}")[1]
                self.current["vlan_filter_on"] = filtering
                if carrier and filtering and not (summary and int(summary.group(2)) > 0):
                    # C drops the standby's frames while a primary without link is enslaved.
                    p = self.snapshot().roles[0]["primary"]
                    gap = "flap_rx" if p and p.get("operstate") != "UP" else None
                    self.fail_unless_gap(gap, "no traffic over a VLAN of the master",
                                         f"{name} on {m} (with carrier): "
                                         f"{self.current['vlan_ping']}")
                    self.current["vlan_diag"] = self._vlan_diag(name)

    def _vlan_diag(self, name):
        """What a failed VLAN ping leaves to look at: the guest's links and neighbours, and the
        VLAN filter QEMU applies to each NIC of pair 0."""
        diag = {"guest": self.grun(f"ip -s -d link show; ip neigh show dev {name}; "
                                   f"cat /proc/net/vlan/{name}")[1][-6000:]}
        for dev_id in PAIR_IDS[0]:
            try:
                diag[dev_id] = self.guest.qmp.cmd("query-rx-filter", name=dev_id)
            except Exception as e:  # noqa: BLE001 - an e1000e has no rx-filter query
                diag[dev_id] = str(e)[:200]
        return diag

    def ev_mcast_toggle(self, group):
        m = self._dev("master")
        if m:
            hexa = group.replace(":", "")
            verb = "del" if hexa in self.snap.mc.get(m, ()) else "add"
            self.op(f"ip maddr {verb} {group} dev {m}")

    def ev_macvlan_toggle(self):
        m = self._dev("master")
        if not m:
            return
        if MACVLAN in self.snap.links:
            self.op(f"ip link del {MACVLAN}")
        else:
            rc, _ = self.op(f"ip link add link {m} name {MACVLAN} type macvlan mode bridge")
            if rc == 0:
                self.op(f"ip link set {MACVLAN} up")

    def _flag_toggle(self, flag, word):
        m = self._dev("master")
        if m:
            on = flag in self.snap.links[m].get("flags", [])
            self.op(f"ip link set {m} {word} {'off' if on else 'on'}")

    def ev_promisc_toggle(self):
        self._flag_toggle("PROMISC", "promisc")

    def ev_allmulti_toggle(self):
        self._flag_toggle("ALLMULTI", "allmulticast")

    def ev_ip6_toggle(self, addr):
        m = self._dev("master")
        if m:
            rc, out = self.grun(f"ip -6 addr show dev {m}")
            verb = "del" if f"{addr}/" in out else "add"
            self.op(f"ip -6 addr {verb} {addr}/64 dev {m}")

    def ev_rename(self, role, down):
        n = self._dev(role)
        if not n:
            return
        new = f"{role[0]}{self.current['index']}"
        if down:
            self.op(f"ip link set {n} down")
            rc, _ = self.op(f"ip link set {n} name {new}")
            self.op(f"ip link set {new if rc == 0 else n} up")
        else:
            self.op(f"ip link set {n} name {new}")

    # --- rebinds, modules, offloads, namespaces -------------------------------------------------

    def ev_primary_bind_toggle(self, only_back=False):
        addr = self.pci_addr[0]
        drv = self.snap.bus.get(addr)
        if drv is None:
            if not only_back:
                self.current["skipped"] = f"{addr} is not on the guest's bus"
        elif drv != "-":
            if not only_back:
                rc, _ = self.op(f"echo {addr} > /sys/bus/pci/drivers/{drv}/unbind")
                self.current["removed"] = rc == 0
        else:
            model = self.guest.primary_model
            self.op(f"echo {addr} > /sys/bus/pci/drivers/{model}/bind")
            return True
        return False

    def ev_pci_remove_rescan(self, rescan_now, only_back=False):
        addr = self.pci_addr[0]
        if addr in self.snap.bus:
            if only_back:
                return False
            rc, _ = self.op(f"echo 1 > /sys/bus/pci/devices/{addr}/remove")
            if rescan_now:
                self.op("echo 1 > /sys/bus/pci/rescan")
            else:
                self.current["removed"] = rc == 0
            return False
        self.op("echo 1 > /sys/bus/pci/rescan")
        return True

    def ev_virtio_bind_toggle(self, only_back=False):
        dev = self.virtio_dev.get(0)
        if not dev or dev not in self.snap.bus:
            if not only_back:
                self.current["skipped"] = "no virtio device known"
        elif self.snap.bus[dev] != "-":
            if not only_back:
                rc, _ = self.op(f"echo {dev} > /sys/bus/virtio/drivers/virtio_net/unbind")
                self.current["removed"] = rc == 0
        else:
            self.op(f"echo {dev} > /sys/bus/virtio/drivers/virtio_net/bind")
            return True
        return False

    def _remove_virtio_net(self):
        rc, _ = self.op("rmmod virtio_net", timeout=300)
        return rc == 0

    def ev_module_reload(self, module):
        if module == "e1000e":
            self.op("rmmod e1000e", timeout=300)
            self.op("modprobe e1000e")
        elif module == "virtio_net":
            self._remove_virtio_net()
            self.op("modprobe virtio_net")
        else:
            if self._remove_virtio_net():
                self.op("rmmod net_failover", timeout=300)
                self.grun("rmmod failover 2>/dev/null; true")
            self.op("modprobe virtio_net")

    def ev_module_order(self):
        self._remove_virtio_net()
        self.op("rmmod e1000e", timeout=300)
        self.op("modprobe e1000e")
        self.op("modprobe virtio_net")

    def ev_offload_toggle(self, role, feature):
        n = self._dev(role)
        if not n:
            return
        long = {"tso": "tcp-segmentation-offload", "gso": "generic-segmentation-offload",
                "sg": "scatter-gather", "rx-vlan-filter": "rx-vlan-filter"}[feature]
        rc, out = self.grun(f"ethtool -k {n}")
        m = re.search(rf"^{long}: (on|off)( \[fixed\])?", out, re.M)
        if not m:
            self.current["skipped"] = f"{n} has no {feature}"
            return
        self.current["fixed"] = bool(m.group(2))
        self.op(f"ethtool -K {n} {feature} {'off' if m.group(1) == 'on' else 'on'}")

    def ev_netns_toggle(self, only_back=False):
        r = self.snap.roles[0]
        if r["primary_ns"]:
            ns, d = r["primary_ns"]
            self.op(f"ip -n {ns} link set {d['ifname']} netns 1")
            return True
        if only_back:
            return False
        if r["primary"]:
            self.grun(f"ip netns add {GUEST_NS} 2>/dev/null; true")
            rc, _ = self.op(f"ip link set {r['primary']['ifname']} netns {GUEST_NS}")
            self.current["removed"] = rc == 0
        else:
            self.current["skipped"] = "no primary"
        return False

    def ev_netns_delete(self):
        r = self.snap.roles[0]
        if not r["primary_ns"]:
            if not r["primary"]:
                self.current["skipped"] = "no primary"
                return
            self.grun(f"ip netns add {GUEST_NS} 2>/dev/null; true")
            rc, _ = self.op(f"ip link set {r['primary']['ifname']} netns {GUEST_NS}")
            if rc != 0:
                return
        self.op(f"ip netns del {GUEST_NS}")

    # --- refused attempts ------------------------------------------------------------------------

    def _unplug_landed(self):
        """Before an event that names the primary or depends on it being there: let a pending
        unplug land first (the guest drops the primary seconds after device_del), so that the
        event does not act on a device that goes away under it."""
        if 0 in self.unplug_pending:
            self._wait_deleted()
            self.snapshot()

    def _enslaved(self, role):
        self._unplug_landed()
        n = self._dev(role)
        m = self.snap.name(0, "master")
        if n and self.snap.links[n].get("master") == m:
            return n
        if n:
            self.current["skipped"] = f"{role} {n} is not the master's slave"
        return None

    # A slave already has a master: rtnetlink asks that master to let it go (EOPNOTSUPP: a
    # failover master keeps its slaves); the bridge refuses a device with a master upper, and
    # bonding one whose receive handler is taken (both EBUSY).

    def ev_refuse_bridge(self, role, path):
        n = self._enslaved(role)
        if n:
            self.grun(f"ip link add {BRIDGE} type bridge 2>/dev/null; true")
            if path == "rtnl":
                self.op(f"ip link set {n} master {BRIDGE}", expect_refused=True,
                        errnos={"EOPNOTSUPP"})
            else:
                self.op(f"brctl addif {BRIDGE} {n}", expect_refused=True, errnos={"EBUSY"})
            self.grun(f"ip link del {BRIDGE}")

    def ev_refuse_bond(self, role, path):
        n = self._enslaved(role)
        if n:
            self.grun(f"ip link add {BOND} type bond 2>/dev/null; true")
            if path == "rtnl":
                self.op(f"ip link set {n} master {BOND}", expect_refused=True,
                        errnos={"EOPNOTSUPP"})
            else:
                # busybox's echo names the write's errno; dash's builtin only says "I/O error".
                self.op(f"/bin/echo +{n} > /sys/class/net/{BOND}/bonding/slaves",
                        expect_refused=True, errnos={"EBUSY"})
            self.grun(f"ip link del {BOND}")

    def ev_refuse_mac(self):
        self._unplug_landed()
        m = self._dev("master")
        if m:
            self.op(f"ip link set {m} address 52:54:00:fa:11:99", expect_refused=True,
                    errnos={"EOPNOTSUPP"})

    # --- overlapping events --------------------------------------------------------------------

    OVERLAP_S = 300

    def _overlap_guest_cmds(self, guest):
        """The guest half of an overlap event, as shell commands (None: nothing to act on), and
        whether it touches every pair (a module reload)."""
        r = self.snap.roles[0]
        p, sb, m = (r[k]["ifname"] if r[k] else None for k in ("primary", "standby", "master"))
        model = self.guest.primary_model
        if guest == "rename_primary" and p:
            new = f"o{self.current['index']}"
            return f"ip link set {p} down; ip link set {p} name {new}; ip link set {new} up", False
        if guest == "mtu_master" and m:
            return f"ip link set {m} mtu 1400; ip link set {m} mtu 1500", False
        if guest == "virtio_reload":
            return "rmmod virtio_net; modprobe virtio_net", True
        if guest in ("flap_primary", "flap_standby"):
            n = p if guest == "flap_primary" else sb
            return (f"ip link set {n} down; ip link set {n} up", False) if n else (None, False)
        if guest == "rebind_primary":
            addr = self.pci_addr[0]
            drv = self.snap.bus.get(addr)
            if drv and drv != "-":
                return (f"echo {addr} > /sys/bus/pci/drivers/{drv}/unbind; "
                        f"echo {addr} > /sys/bus/pci/drivers/{drv}/bind"), False
        if guest == "primary_driver_reload":
            return f"rmmod {model}; modprobe {model}", True
        return None, False

    def ev_overlap(self, host, guest, delay_ms):
        """A guest operation started in the background, then, `delay_ms` later, a host one
        (unplug of the primary, a NIC's link off, a live migration); once the guest's is done,
        the host's is undone (plugged back, link on)."""
        cmds, wide = self._overlap_guest_cmds(guest)
        if cmds is None:
            self.current["skipped"] = f"nothing for {guest}"
            return
        self.current["guest_wide"] = wide or host == "migrate"
        self.current.setdefault("ops", []).append({"background": cmds})
        # dash, so that `ip` is iproute2's (busybox's sh prefers its own applets); files named
        # after the event, so that a job that outlived its event cannot end another.
        done, out = (f"/tmp/overlap.{self.current['index']}.{x}" for x in ("done", "out"))
        self.gsh(f"setsid dash -c '{cmds}; echo done >{done}' >{out} 2>&1 </dev/null &")
        time.sleep(delay_ms / 1000)
        undo = None
        if host == "unplug":
            if self._qemu_has(PAIR_IDS[0][1]) and self._del_primary(False):
                undo = "plug"
        elif host in ("link_standby", "link_primary"):
            nic = host.split("_")[1]
            dev = PAIR_IDS[0][0 if nic == "standby" else 1]
            if (0, nic) not in self.links_down and self._qmp("set_link", name=dev, up=False):
                self.links_down.add((0, nic))
                undo = nic
        else:
            st = self._migrate()
            if st["status"] != "completed":
                self.fail("migration failed", f"{st['status']}: {st.get('error-desc')}")
        deadline = time.monotonic() + self.OVERLAP_S
        while self.grun(f"cat {done} 2>/dev/null")[1].strip() != "done":
            if time.monotonic() > deadline:
                self.fail("guest operation never finished",
                          f"{cmds}: {self.grun(f'cat {out}')[1][-300:]}")
                break
            time.sleep(0.5)
        self.current["background_out"] = self.grun(f"cat {out}")[1].strip()[-300:]
        if undo == "plug":
            if self._wait_deleted():
                self._add_primary()
        elif undo:
            dev = PAIR_IDS[0][0 if undo == "standby" else 1]
            if self._qmp("set_link", name=dev, up=True):
                self.links_down.discard((0, undo))

    # --- readers ------------------------------------------------------------------------------

    def ev_readers_toggle(self):
        """Start or stop the readers: one loop in its own session (setsid), stopped by killing
        that session's process group, so that the storm's idea of it stays true."""
        if self.readers:
            self.grun("kill -TERM -$(cat /tmp/readers.pid) 2>/dev/null; true")
        else:
            self.grun(
                "setsid dash -c 'while :; do "
                "ip -s -d link >/dev/null 2>&1; for d in /sys/class/net/*; do n=${d##*/}; "
                "ethtool -S $n >/dev/null 2>&1; ethtool $n >/dev/null 2>&1; "
                "cat $d/statistics/rx_packets $d/statistics/tx_packets $d/mtu $d/operstate "
                "$d/carrier >/dev/null 2>&1; done; sleep 0.2; done' >/dev/null 2>&1 </dev/null & "
                "echo $! >/tmp/readers.pid")
        self.readers = not self.readers

    # --- settle: restore, then traffic through the primary ---------------------------------------

    def restore(self):
        """Put everything back: QEMU's primaries and links, modules, namespaces, bindings, the
        PCI bus, admin state and MTU of the master and its slaves."""
        for p in range(self.plan.pairs):
            sid, pid = PAIR_IDS[p]
            if not self._qemu_has(pid):
                self._add_primary(p)
            for dev in (sid, pid):
                self.actions += 1
                try:
                    self.guest.qmp.cmd("set_link", name=dev, up=True)
                except Exception:
                    pass  # a primary still hidden by QEMU
            self.links_down -= {(p, "standby"), (p, "primary")}
        self.grun(f"ip netns del {GUEST_NS} 2>/dev/null; "
                  "modprobe e1000e; modprobe virtio_net; echo 1 > /sys/bus/pci/rescan; true",
                  timeout=300)
        snap = self.snapshot()
        for p in range(self.plan.pairs):
            dev = self.virtio_dev.get(p)
            if dev and snap.bus.get(dev) == "-":
                self.grun(f"echo {dev} > /sys/bus/virtio/drivers/virtio_net/bind")
            addr = self.pci_addr[p]
            if snap.bus.get(addr) == "-":
                self.grun(f"echo {addr} > /sys/bus/pci/drivers/{self.guest.primary_model}/bind")

    def settle(self, why):
        """Restore, then wait until traffic flows through each pair's primary: its counters
        carry the pings and the standby sends nothing. -> seconds it took, or None."""
        t0 = time.monotonic()
        deadline = t0 + self.recover_s
        last = None
        self.held = []  # all of it is put back here
        while True:
            # Again in every round: an unplug that was pending may only now have landed.
            self.restore()
            snap = self.snapshot()
            self.ensure_ip()
            cmds = []
            for p in range(self.plan.pairs):
                r = snap.roles[p]
                for role in ("master", "standby", "primary"):
                    d = r[role]
                    if d and (d.get("mtu") != 1500 or "UP" not in d.get("flags", [])):
                        cmds.append(f"ip link set {d['ifname']} mtu 1500 up")
            if cmds:
                self.grun("; ".join(cmds))
            ok, last = self._flows_through_primary()
            if ok:
                # Every primary is in QEMU and enslaved: no unplug is pending any more.
                self.unplug_pending = set()
                took = round(time.monotonic() - t0, 1)
                self.recoveries.append({"after": why, "s": took})
                return took
            if time.monotonic() > deadline:
                self.fail("traffic did not recover through the primary",
                          f"within {self.recover_s} s of settling: {last}")
                self.recoveries.append({"after": why, "s": None, "detail": last})
                return None
            time.sleep(1)

    def _flows_through_primary(self, window=2.0):
        a = self.snapshot()
        time.sleep(window)
        b = self.snapshot()
        ca, cb = counters_of(a), counters_of(b)
        seen = {}
        for p in range(self.plan.pairs):
            r = b.roles[p]
            if not (r["master"] and r["primary"] and r["primary"].get("master") ==
                    r["master"]["ifname"]):
                return False, f"pair {p}: primary not enslaved"
            d = {role: tuple(y - x for x, y in zip(ca[k], cb[k]))
                 for role in ("primary", "standby") for k in [(p, role, r[role]["ifindex"])]
                 if k in ca and k in cb}
            seen[p] = d
            # The peer's ping and, on pair 0, the guest's: both ways, at PING_INTERVAL_S.
            need = int(window / self.ping_interval * 0.8)
            if "primary" not in d or d["primary"][0] < need or d["primary"][1] < need:
                return False, f"pair {p}: primary rx/tx {d.get('primary')} < {need}: {seen}"
            if d.get("standby", (0, 0))[1] != 0:
                return False, f"pair {p}: standby sent {d['standby'][1]} packets: {seen}"
        return True, seen

    def ev_settle(self):
        self.settle(f"event {self.current['index']}")

    # --- checks ------------------------------------------------------------------------------

    def _scan_guest(self, g, kmemleak=True):
        """Kernel-log reports of guest g since the last scan (and kmemleak's, unless
        kmemleak=False), minus the known ones."""
        found, known = [], 0
        for rep in (g.final_problems if g.final_problems is not None
                    else g.scan(kmemleak=kmemleak)):
            if not known_splat(self.flavour, rep):
                found.append(rep)
            else:
                known += 1
                # Stated in tests/expect.py (a known gap of C's, or upstream's): counted in the
                # report, not a failure.
                self.known_splats[splat_class(rep)] += 1
        if g.final_problems is not None:
            g.final_problems = []
        elif found or known:
            self._lockdep_state(g)
        for rep in found:
            if rep.startswith("unreferenced object"):
                self.leaks.append(rep)
            else:
                self.splats[splat_class(rep)] += 1
            self.fail("kernel log", rep)
        return found

    def _lockdep_state(self, g):
        """Lockdep turns itself off at its first report (a known one too): note the event
        after which the rest of the run had no lock checking."""
        if self.lockdep_off is not None:
            return
        try:
            rc, out = g.agent.run("grep -s debug_locks /proc/lockdep_stats", 30)
        except Exception:  # noqa: BLE001 - a guest that stopped answering is judged elsewhere
            return
        if rc == 0 and re.search(r"debug_locks:\s*0\b", out):
            self.lockdep_off = self.current["index"]

    def check(self):
        """After an event: invariants (read again when they fail, for a change still landing),
        the kernel log, and the traffic generators."""
        t0 = time.monotonic()
        snap = self.snapshot()
        self.ensure_ip()
        bad = invariants(snap, self.master_counters)
        for _ in range(2):
            if not bad:
                break
            time.sleep(1)
            snap = self.snapshot()
            bad = invariants(snap, self.master_counters)
        for b in bad:
            self.fail_unless_gap(invariant_gap(b), "invariant", b)
        if bad:
            # Reported once, at the event that did it; later events compare from here.
            self.master_counters.update(master_counters(snap))
        if self.plan.pairs > 1:
            self.current["quiet_path"] = path_counters(snap, self._host_counters(1), 1)
        self._scan_guest(self.guest, kmemleak=False)
        self.traffic.check(self.current["index"])
        self.current["check_s"] = round(time.monotonic() - t0, 2)

    def _host_counters(self, pair):
        """Pair `pair`'s taps and bridge on the host: [rx, rx dropped, tx, tx dropped] (a tap's
        tx is towards QEMU, the guest's receive side)."""
        names = set(self.guest.taps[pair]) | {f"br{pair}"}
        try:
            links = json.loads(self.ns.ip("-s", "-j", "link", "show").stdout)
        except (RuntimeError, json.JSONDecodeError):
            return {}
        return {f"host {d['ifname']}": [d["stats64"]["rx"]["packets"],
                                        d["stats64"]["rx"]["dropped"],
                                        d["stats64"]["tx"]["packets"],
                                        d["stats64"]["tx"]["dropped"]]
                for d in links if d.get("ifname") in names and "stats64" in d}

    # --- the run ------------------------------------------------------------------------------

    def run(self):
        self.ns.start_vlan_peer()
        self.current = {"index": -1, "kind": "boot", "args": {}, "t": time.time()}
        try:
            return self._run()
        finally:
            if self.guest:
                self.guest.stop()

    def _run(self):
        try:
            self.boot()
            self.traffic = Traffic(self)
            self.traffic.start()
        except Exception as e:  # noqa: BLE001 - a guest that never came up is a failure too
            return self._boot_failed(e)
        aborted = None
        try:
            for ev in self.plan.events:
                try:
                    self.run_event(ev)
                    self.check()
                except Exception as e:  # noqa: BLE001 - any failure is reported, then judged
                    self.fail("event aborted", f"{type(e).__name__}: {e}")
                    aborted = self._alive(ev.index)
                    if aborted:
                        self.report_failure()
                        break
                if self.current.get("failures"):
                    self.report_failure()
                else:
                    self.last_clean = ev.index
                self._progress(ev.index + 1)
            self.current = {"index": len(self.plan.events), "kind": "end", "args": {},
                            "t": time.time()}
            self.events.append(self.current)
            self.t_events.append(self.current["t"])
            if not aborted:
                try:
                    if self.readers:
                        self.ev_readers_toggle()
                    self.settle("the end")
                    self.check()
                except Exception as e:  # noqa: BLE001 - reported, the run still ends cleanly
                    self.fail("the end aborted", f"{type(e).__name__}: {e}")
                    aborted = self._alive("end")
        finally:
            traffic = self.traffic.stop()
        if not aborted:
            try:
                self.final_checks()
            except Exception as e:  # noqa: BLE001 - as above: a hung rmmod is what it looks for
                self.fail("final checks aborted", f"{type(e).__name__}: {e}")
                aborted = self._alive("end") or "the final checks did not finish"
        self.guest.stop()
        self._scan_guest(self.guest)
        if self.current.get("failures") and not self.current.get("reported"):
            self.report_failure()
        return self.summary(traffic, aborted)

    PROGRESS_EVERY = 25

    def _progress(self, done):
        """Every PROGRESS_EVERY events: how far, how fast, how many failures so far (a long
        storm on a debug kernel under TCG runs for hours)."""
        if done % self.PROGRESS_EVERY and done != len(self.plan.events):
            return
        elapsed = time.time() - self.t_events[0]
        self.log(f"storm: {self.flavour}: {done}/{len(self.plan.events)} events in "
                 f"{elapsed / 60:.1f} min ({elapsed / done:.1f} s an event), "
                 f"{len(self.failures)} failure(s)")

    def _boot_failed(self, e):
        """The guest did not come up: report why, its kernel log's reports and the end of its
        console, and return a failed summary."""
        self.events.append(self.current)
        self.fail("boot", f"{type(e).__name__}: {e}")
        if self.traffic:
            self.traffic.stop()
        if self.guest:
            tail = console_tail(self.guest.console)
            self.guest.stop()
            self._scan_guest(self.guest)
            self.fail("console", tail)
        self.report_failure()
        return self.summary({"pings": [], "guest_ping": "", "stopped": time.time()},
                            "the guest did not boot")

    def _alive(self, index):
        """After an exception: None if the guest still runs and answers, else why not."""
        if not self.guest.running():
            return f"the guest stopped at event {index}"
        try:
            self.guest.connect_agent(timeout=180)
        except (AgentError, OSError) as e:
            return f"the guest's agent stopped answering at event {index}: {e}"
        return None

    NETNS_FREED_S = 60

    def final_checks(self):
        """kmemleak (two scans, through the guest's scanner), then the failover module must
        unload, and so must the primaries' drivers: a reference leaked on a primary shows only
        when it unregisters (the core then waits for it, and says so). Every namespace the storm
        made must be freed: a leaked reference keeps one alive without a word, so the netns
        reference tracker's debugfs entries are counted. Nothing may be reported after (the
        guest's last scan, at its stop)."""
        self._scan_guest(self.guest)
        rc, out = self.grun("rmmod virtio_net && rmmod net_failover && "
                            "{ rmmod failover 2>/dev/null; true; } && lsmod", timeout=300)
        self.current["unload"] = {"rc": rc, "lsmod": out.strip()[-300:]}
        if rc != 0 or re.search(r"^(net_failover|failover)\s", out, re.M):
            self.fail("failover module did not unload", out.strip()[-300:])
        rc, out = self.grun(f"rmmod {self.guest.primary_model}; rmmod igb 2>/dev/null; "
                            "lsmod", timeout=300)
        if re.search(rf"^{self.guest.primary_model}\s", out, re.M):
            self.fail("the primary's driver did not unload", out.strip()[-300:])
        self.grun(f"ip netns del {GUEST_NS} 2>/dev/null; true")
        tracker = "/sys/kernel/debug/ref_tracker"
        deadline = time.monotonic() + self.NETNS_FREED_S
        while True:
            rc, out = self.grun(f"ls {tracker}")
            live = sorted(n for n in out.split() if re.fullmatch(r"netns-.*-refcnt", n))
            self.current["netns_live"] = live
            if rc != 0:
                if debug(self.flavour):
                    self.fail("no netns reference tracker", f"{tracker}: {out.strip()[:200]}")
                break
            if len(live) <= 1:
                break
            if time.monotonic() > deadline:
                self.fail("a network namespace was never freed",
                          f"{len(live)} alive {self.NETNS_FREED_S} s after the last was "
                          f"deleted: {live}")
                break
            time.sleep(1)
        # The core reports a device still referenced after 10 s of waiting.
        time.sleep(12)

    def report_failure(self):
        """Print a failure: the seed, the event, the events since the last clean check, and the
        log lines."""
        ev = self.current
        since = [e for e in self.events if self.last_clean < e["index"] <= ev["index"]]
        lines = [f"STORM FAILURE: flavour {self.flavour}, seed {self.plan.seed}, "
                 f"event #{ev['index']} ({ev['kind']} {ev['args']})",
                 f"  events since the last clean check (#{self.last_clean}):"]
        lines += [f"    #{e['index']} {e['kind']} {e['args']} ops={e.get('ops', [])} "
                  f"refused={e.get('refused', [])}" for e in since]
        lines += ["  " + f.replace("\n", "\n    ") for f in ev["failures"]]
        self.failures.append({"event": ev["index"], "kind": ev["kind"],
                              "failures": list(ev["failures"])})
        self.log("\n".join(lines))
        ev["reported"] = True
        self.last_clean = ev["index"]

    # --- the report ----------------------------------------------------------------------------

    def _quiet_excused(self, idx, t_from):
        """Is a quiet-pair gap that began at t_from, during event idx, the whole guest's: idx
        is guest-wide, or the guest-wide event before it ended less than QUIET_GRACE_S before?"""
        if self._guest_wide(idx):
            return True
        return (0 < idx < len(self.t_events) and self._guest_wide(idx - 1)
                and t_from - self.t_events[idx] <= QUIET_GRACE_S)

    def _guest_wide(self, idx):
        """Did event `idx` act on the whole guest (its kind, or what an overlap event did)?"""
        kind = self._kind(idx)
        rec = self.events[idx] if 0 <= idx < len(self.events) else {}
        return kind not in KIND or KIND[kind].guest_wide or bool(rec.get("guest_wide"))

    def _kind(self, idx):
        if idx < 0:
            return "boot"
        return self.plan.events[idx].kind if idx < len(self.plan.events) else "end"

    def _event_at(self, t):
        """Index of the event that was running at host time t."""
        i = -1
        for j, start in enumerate(self.t_events):
            if start <= t:
                i = j
            else:
                break
        return i

    def summary(self, traffic, aborted):
        by_kind = Counter(e["kind"] for e in self.events if e["index"] >= 0
                          and e["kind"] in KIND)
        refused = defaultdict(Counter)
        for e in self.events:
            for err in e.get("refused", []):
                refused[e["kind"]][err] += 1
        skipped = Counter(e["kind"] for e in self.events if e.get("skipped"))
        qemu_dropped = sum(len(e.get("qemu_dropped", [])) for e in self.events)
        put_back = Counter(k for e in self.events for k in e.get("put_back", []))
        failures_by = Counter(f.split(":", 1)[0] for e in self.events
                              for f in e.get("failures", []))
        lost, interruptions, quiet = {}, [], []
        for p, text in traffic["pings"]:
            sent, received, gaps = ping_gaps(text)
            lost[f"peer_to_pair{p}"] = {"sent": sent, "received": received,
                                        "lost": sent - received}
            for t_from, t_to, n in gaps:
                t_to = t_to or traffic["stopped"]
                # The first lost request left about one interval after the last answered one.
                idx = self._event_at(t_from + self.ping_interval)
                dur = round(t_to - t_from, 2)
                if dur > INTERRUPT_S:
                    interruptions.append({"pair": p, "event": idx, "kind": self._kind(idx),
                                          "s": dur, "lost": n})
                # The quiet pair, whole when another pair's event began, must lose nothing
                # to it; what the whole guest goes through is excused. A gap is judged by the
                # event it began in: a later guest-wide event (or the end) excuses nothing.
                rec = self.events[idx] if 0 <= idx < len(self.events) else {}
                if p == 1 and rec.get("quiet_whole") and not self._quiet_excused(idx, t_from):
                    prev = self.events[idx - 1] if idx >= 1 else {}
                    quiet.append({"event": idx, "kind": self._kind(idx), "lost": n,
                                  "t_from": round(t_from - self.t_events[0], 2),
                                  "s": dur, "path": path_delta(prev.get("quiet_path", {}),
                                                               rec.get("quiet_path", {}))})
        m = _summary.search(traffic["guest_ping"])
        if m:
            lost["guest_to_peer"] = {"sent": int(m.group(1)), "received": int(m.group(2)),
                                     "lost": int(m.group(1)) - int(m.group(2))}
        for q in quiet:
            failures_by["quiet pair lost packets"] += 1
            why = ""
            if q["path"].get("IcmpOutErrors", 0) > 0:
                why = (f"; the guest failed to build {q['path']['IcmpOutErrors']} ICMP replies "
                       "(IcmpOutErrors): its ICMP socket's send buffer was full of replies its "
                       "devices had not finished sending (see PING_INTERVAL_S)")
            self.log(f"STORM FAILURE: flavour {self.flavour}, seed {self.plan.seed}, event "
                     f"#{q['event']} ({q['kind']}): the quiet pair lost {q['lost']} packets, "
                     f"a gap of {q['s']} s from {q['t_from']} s into the storm; across the "
                     f"event, its path's counters moved by {q['path']}{why}")
            self.failures.append({"event": q["event"], "kind": q["kind"],
                                  "failures": [f"quiet pair lost {q['lost']} packets"],
                                  "path": q["path"]})
        total_lost = sum(v["lost"] for v in lost.values())
        ran = sum(1 for e in self.events if 0 <= e["index"] < len(self.plan.events))
        n = max(1, ran)
        return {
            "flavour": self.flavour, "seed": self.plan.seed, "pairs": self.plan.pairs,
            "events": len(self.plan.events), "events_run": ran,
            "events_by_kind": dict(sorted(by_kind.items())),
            "skipped_by_kind": dict(sorted(skipped.items())),
            "put_back_by_kind": dict(sorted(put_back.items())),
            "qemu_dropped": qemu_dropped,
            "refused": {k: dict(v) for k, v in sorted(refused.items())},
            "failures_by_class": dict(failures_by),
            "invariant_failures": failures_by.get("invariant", 0),
            "splats": dict(self.splats), "known_splats": dict(self.known_splats),
            "known_gaps": dict(Counter(g.split(":", 1)[0] for e in self.events
                                       for g in e.get("known_gaps", []))),
            "lockdep_off_since": self.lockdep_off,
            "leaks": len(self.leaks),
            "interruptions": interruptions, "interrupt_bound_s": INTERRUPT_S,
            "iperf_restarts": self.traffic.iperf_restarts if self.traffic else [],
            "lost": lost, "lost_total": total_lost,
            "guest_ping_output": traffic["guest_ping"][-300:],
            "lost_per_100_events": round(total_lost * 100 / n, 1),
            "recoveries": self.recoveries, "recover_bound_s": self.recover_s,
            "unload": self.events[-1].get("unload"),
            "aborted": aborted, "failures": self.failures,
            "passed": not self.failures and not aborted,
            "log": [{k: v for k, v in e.items() if k != "t"} for e in self.events],
        }


_CLASSES = (("KASAN", "kasan"), ("KFENCE", "kfence"), ("UBSAN", "ubsan"), ("ODEBUG", "odebug"),
            ("refcount_t", "refcount"), ("ref_tracker", "ref_tracker"),
            ("circular locking", "lockdep"), ("recursive locking", "lockdep"),
            ("inconsistent lock", "lockdep"), ("non-static key", "lockdep"),
            ("suspicious RCU", "rcu"), ("detected stall", "rcu_stall"),
            ("sleeping function", "atomic_sleep"), ("lockup", "lockup"),
            ("blocked for more than", "hung_task"), ("unregister_netdevice", "unregister_wait"),
            ("Usage count", "unregister_wait"), ("corruption", "list_corruption"),
            ("panicked at", "rust_panic"), ("asks to queue packet", "queue_on_virtual"),
            ("Dead loop on virtual device", "dead_loop"), ("WARNING:", "warning"), ("BUG:", "bug"),
            ("kernel BUG", "bug"), ("Oops", "oops"), ("general protection", "oops"))


def splat_class(report):
    """A report's class, for the storm's table."""
    first = report.splitlines()[0]
    for needle, cls in _CLASSES:
        if needle in first:
            return cls
    for needle, cls in _CLASSES:
        if needle in report:
            return cls
    return "other"


def report_table(reports):
    """The per-seed table: one column per flavour."""
    fl = [r["flavour"] for r in reports]
    w = max(24, *(len(f) + 2 for f in fl))
    rows = []

    def row(name, vals):
        rows.append(f"{name:<34}" + "".join(f"{str(v):>{w}}" for v in vals))

    row("", fl)
    row("events (pairs)", [f"{r['events']} ({r['pairs']})" for r in reports])
    for k in KINDS:
        vals = [r["events_by_kind"].get(k.name, 0) for r in reports]
        if any(vals):
            sk = [r["skipped_by_kind"].get(k.name, 0) for r in reports]
            row(f"  {k.name}",
                [f"{v}" + (f" ({s} skipped)" if s else "") for v, s in zip(vals, sk)])
    row("put back after their hold", [sum(r.get("put_back_by_kind", {}).values())
                                      for r in reports])
    row("primaries QEMU deleted on cancel", [r.get("qemu_dropped", 0) for r in reports])
    errs = sorted({(k, e) for r in reports for k, v in r["refused"].items() for e in v})
    if errs:
        row("refused (kind: errno)", [""] * len(reports))
        for k, e in errs:
            row(f"  {k}: {e}"[:34], [r["refused"].get(k, {}).get(e, 0) for r in reports])
    row("invariant failures", [r["invariant_failures"] for r in reports])
    classes = sorted({c for r in reports for c in r["splats"]})
    row("splats", [sum(r["splats"].values()) for r in reports])
    for c in classes:
        row(f"  {c}", [r["splats"].get(c, 0) for r in reports])
    known = sorted({c for r in reports for c in r.get("known_splats", {})})
    row("known splats (tests/expect.py)", [sum(r.get("known_splats", {}).values())
                                            for r in reports])
    for c in known:
        row(f"  {c}", [r.get("known_splats", {}).get(c, 0) for r in reports])
    row("lockdep off since event", [("boot" if r.get("lockdep_off_since") == -1 else
                                     f"#{r['lockdep_off_since']}")
                                    if r.get("lockdep_off_since") is not None else "no"
                                    for r in reports])
    gaps = sorted({c for r in reports for c in r.get("known_gaps", {})})
    row("known gaps (tests/expect.py)", [sum(r.get("known_gaps", {}).values())
                                          for r in reports])
    for c in gaps:
        row(f"  {c}", [r.get("known_gaps", {}).get(c, 0) for r in reports])
    row("leaks (kmemleak)", [r["leaks"] for r in reports])
    row(f"interruptions > {reports[0]['interrupt_bound_s']} s",
        [len(r["interruptions"]) for r in reports])
    row("iperf3 stream restarts", [len(r["iperf_restarts"]) for r in reports])
    row("packets lost", [r["lost_total"] for r in reports])
    row("  per 100 events", [r["lost_per_100_events"] for r in reports])
    row(f"recovered through primary (<= {reports[0]['recover_bound_s']} s)",
        [f"{sum(1 for x in r['recoveries'] if x['s'] is not None)}/{len(r['recoveries'])}, "
         f"max {max((x['s'] for x in r['recoveries'] if x['s'] is not None), default='-')} s"
         for r in reports])
    row("failover module unloaded",
        [bool(r["unload"] and r["unload"]["rc"] == 0) for r in reports])
    row("other failures", [sum(v for k, v in r["failures_by_class"].items()
                               if k not in ("invariant", "kernel log")) for r in reports])
    row("aborted", [r["aborted"] or "no" for r in reports])
    row("minutes", [round(r["seconds"] / 60, 1) for r in reports])
    # Where the time goes: a command in a debug guest under TCG takes seconds.
    row("guest commands (s)", [f"{sum(e.get('agent_calls', 0) for e in r['log'])} "
                               f"({round(sum(e.get('agent_s', 0) for e in r['log']))})"
                               for r in reports])
    row("PASSED", [r["passed"] for r in reports])
    return "\n".join(rows)

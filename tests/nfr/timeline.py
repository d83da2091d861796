"""What happened during one measured event, on the host's clock: how many packets each slave
sent and received every ~30 ms, which pings were lost and when, and the moments of the event's
steps (QMP commands and events, the guest's pause in a migration, the driver's switches).

The rates come from the guest: a busybox loop reads the counters of each of the master's lower
devices every 20 ms, and stamps them with the guest's uptime. Guest time is put on the host's
clock by an offset measured through the agent (the best of three round trips, so within half
the shortest one); a migration pauses the guest, whose clock stands still meanwhile, so the
offset is measured again after it and applies from the source's STOP on.

The switches are the driver's tracepoint net_failover:net_failover_active_changed, stamped
with the boot clock, the one /proc/uptime reads (the Rust driver's; C has no tracepoints).
"""

import re
import time

from .traffic import INTERVAL

SAMPLER = r"""rm -f /tmp/tl.stop /tmp/tl.samples
setsid sh -c 'while [ ! -e /tmp/tl.stop ]; do
	read up idle </proc/uptime
	line=$up
	for d in /sys/class/net/{master}/lower_*; do
		[ -e "$d" ] || continue
		read rx <"$d/statistics/rx_packets" || continue
		read tx <"$d/statistics/tx_packets" || continue
		line="$line ${{d##*/lower_}}=$rx,$tx"
	done
	echo "$line"
	usleep 20000
done >/tmp/tl.samples 2>/dev/null' </dev/null >/dev/null 2>&1 &
"""

TRACEFS = "/sys/kernel/tracing"
SWITCH_EVENT = "net_failover/net_failover_active_changed"

# Starts tracing the changes of the active slave, if the driver has the tracepoint.
TRACE_START = f"""[ -e {TRACEFS}/trace ] || mount -t tracefs tracefs {TRACEFS} 2>/dev/null
if [ -e {TRACEFS}/events/{SWITCH_EVENT}/enable ]; then
	echo boot >{TRACEFS}/trace_clock
	echo >{TRACEFS}/trace
	echo 1 >{TRACEFS}/events/{SWITCH_EVENT}/enable
fi
"""

TRACE_STOP = f"""if [ -e {TRACEFS}/events/{SWITCH_EVENT}/enable ]; then
	echo 0 >{TRACEFS}/events/{SWITCH_EVENT}/enable
	cat {TRACEFS}/trace
fi
"""

# A trace line of the switch: "<task>-<pid> [cpu] <flags> <seconds>: <event>: <fields>".
SWITCH_RE = re.compile(r"\s(\d+\.\d+): net_failover_active_changed: (.*)$")
FIELD_RE = re.compile(r"(\w+)=(\S*)")


def switch_label(fields):
    """"to standby eth1 (unplug_notice eth2)" from the tracepoint's fields."""
    f = dict(FIELD_RE.findall(fields))
    to = f"to {f.get('new')} {f.get('active', '')}".rstrip()
    return f"{to} ({f.get('reason')} {f.get('cause')})"


def wall_to_host(wall):
    """A wall-clock time (a QMP event's timestamp) on the host's monotonic clock."""
    return wall - (time.time() - time.monotonic())


class Timeline:
    """Start before the event's traffic, mark its steps, stop after it (with the Net of the
    guest that then runs: the destination after a migration), then data()."""

    def __init__(self, net, roles):
        self.roles = roles  # {name: role} of the slaves at the start
        self.master = next(n for n, r in roles.items() if r == "master")
        self.standby = next(n for n, r in roles.items() if r == "standby")
        self.marks = []
        self.offsets = []  # (from host time, guest->host offset)
        self.net = net

    def offset(self, net):
        """What to add to the guest's uptime for the host's monotonic time."""
        best = None
        for _ in range(3):
            h0 = time.monotonic()
            up = float(net.sh("cat /proc/uptime").split()[0])
            h1 = time.monotonic()
            if best is None or h1 - h0 < best[0]:
                best = (h1 - h0, (h0 + h1) / 2 - up)
        return best[1]

    def start(self):
        self.offsets.append((float("-inf"), self.offset(self.net)))
        self.net.sh(TRACE_START)
        self.net.sh(SAMPLER.format(master=self.master))
        return self

    def mark(self, name, t=None):
        self.marks.append((name, time.monotonic() if t is None else t))

    def stop(self, net, paused_from=None):
        """Stops the sampler of the guest `net` reaches; paused_from: host time the guest was
        paused at (a migration's STOP), after which the offset is measured anew."""
        if paused_from is not None:
            self.offsets.append((paused_from, self.offset(net)))
        net.sh("touch /tmp/tl.stop")
        time.sleep(0.1)
        self.samples_text = net.sh("cat /tmp/tl.samples")
        self.trace = net.sh(TRACE_STOP)

    def to_host(self, guest_t, base=None):
        """Guest time `guest_t` on the host's clock: an uptime, or a time on another guest
        clock whose offset to the host's was `base` before any pause."""
        first = self.offsets[0][1]
        off = first if base is None else base
        for since, o in self.offsets[1:]:
            if guest_t + off >= since:
                # The guest's clocks all stood still while it was paused.
                off = o if base is None else base + (o - first)
        return guest_t + off

    def data(self, pings, ping_res):
        """-> dict for the figure (nfr.plot) and the bench's details: samples [t, {role: [rx,
        tx]}] with t on the host clock, marks [[name, t]], lost {direction: [t]}, switches
        [[t, line]]."""
        samples = []
        for line in self.samples_text.splitlines():
            parts = line.split()
            if not parts:
                continue
            try:
                t = self.to_host(float(parts[0]))
            except ValueError:
                continue
            roles = {}
            for p in parts[1:]:
                name, _, val = p.partition("=")
                rx, _, tx = val.partition(",")
                role = "standby" if name == self.standby else "primary"
                roles[role] = [name, int(rx), int(tx)]
            samples.append([round(t, 4), roles])
        lost = {}
        for direction, res in ping_res.items():
            if res is None:
                continue
            if direction == "peer_to_guest":
                lost[direction] = [round(wall_to_host(t), 4) for t in res["lost_at"]]
            elif res["first_reply"]:
                # The guest's ping stamps with the guest's wall clock, which the guest's uptime
                # does not tell: put its first answered request at the time it was started
                # (plus the nominal interval per request before it).
                seq, stamp = res["first_reply"]
                base = pings.t_guest + (seq - 1) * INTERVAL - stamp
                lost[direction] = [round(self.to_host(t, base), 4) for t in res["lost_at"]]
        switches = []
        for line in self.trace.splitlines():
            m = SWITCH_RE.search(line)
            if m:
                t = self.to_host(float(m.group(1)))
                if samples and samples[0][0] <= t <= samples[-1][0]:
                    switches.append([round(t, 4), switch_label(m.group(2))])
        return {"samples": samples, "marks": [[n, round(t, 4)] for n, t in self.marks],
                "lost": lost, "switches": switches}

"""100 pps pings in both directions (or from the peer only), what they lost, and iperf3 TCP."""

import bisect
import json
import re
import statistics
import subprocess
import tempfile
import time

from . import config

INTERVAL = 0.01  # 100 pps

_ts_re = re.compile(r"^\[(\d+\.\d+)\] \d+ bytes from .*icmp_seq=(\d+)")
_sum_re = re.compile(r"(\d+) packets transmitted, (\d+) received")


def parse_ping(text):
    """-> dict(sent, received, lost, max_gap_ms) from iputils `ping -D -O` output."""
    m = _sum_re.search(text)
    if not m:
        raise ValueError(f"no ping summary in:\n{text[-2000:]}")
    sent, received = int(m.group(1)), int(m.group(2))
    seen, stamps, replies = set(), [], {}
    for line in text.splitlines():
        t = _ts_re.match(line)
        if t and "DUP!" not in line and int(t.group(2)) not in seen:
            seen.add(int(t.group(2)))
            stamps.append(float(t.group(1)))
            replies[int(t.group(2))] = float(t.group(1))
    stamps.sort()
    gap = max((b - a for a, b in zip(stamps, stamps[1:])), default=0.0)
    # The longest run of unanswered sequence numbers, as time at the nominal interval: the
    # measure for the guest's own ping, whose clock is not trustworthy across a migration.
    run = best = 0
    for seq in range(1, sent + 1):
        run = 0 if seq in seen else run + 1
        best = max(best, run)
    return {"sent": sent, "received": received, "lost": sent - received,
            "lost_at": lost_at(sent, seen, replies),
            "first_reply": min(replies.items()) if replies else None,
            "max_gap_ms": round(gap * 1000, 1),
            "max_seq_gap_ms": round((best + 1) * INTERVAL * 1000, 1) if best else 0.0}


def lost_at(sent, seen, replies):
    """When each unanswered echo request was sent, on the ping's clock: between the replies to
    the nearest answered ones before and after it, in proportion (the actual sending rate
    lags the nominal one on a loaded host); at the nominal interval from the nearest one where
    only one side has a reply."""
    answered = sorted(replies)
    out = []
    for seq in range(1, sent + 1):
        if seq in seen or not answered:
            continue
        i = bisect.bisect(answered, seq)
        before = answered[i - 1] if i > 0 else None
        after = answered[i] if i < len(answered) else None
        if before is not None and after is not None:
            t0, t1 = replies[before], replies[after]
            out.append(round(t0 + (t1 - t0) * (seq - before) / (after - before), 4))
        elif before is not None:
            out.append(round(replies[before] + (seq - before) * INTERVAL, 4))
        else:
            out.append(round(replies[after] - (after - seq) * INTERVAL, 4))
    return out


class PingPair:
    """guest->peer ping run in the guest, peer->guest ping run in the namespace, same length.

    With guest_ping=False only the peer pings: the guest sends nothing but its echo replies, so a
    bridge learns where the guest went only from what the guest announces (gratuitous ARP,
    unsolicited NA) or from a reply to a request that found it anyway. 'guest_to_peer' is None.
    """

    def __init__(self, ns, net, seconds, tag="p", peer=config.PEER_IP4, guest_ip=config.GUEST_IP4,
                 guest_ping=True):
        self.ns, self.net, self.tag = ns, net, tag
        self.count = int(seconds / INTERVAL)
        self.peer, self.guest_ip = peer, guest_ip
        self.guest_ping = guest_ping
        self.host = None

    def start(self):
        args = ["ping", "-D", "-O", "-n", "-i", str(INTERVAL), "-c", str(self.count), "-W", "1"]
        self.t_guest = time.monotonic()
        if self.guest_ping:
            out = f"/tmp/ping-{self.tag}.out"
            self.net.sh(f"rm -f {out}; setsid /bin/{' '.join(args)} {self.peer} >{out} 2>&1 &")
        # To a file, not a pipe: a pipe that fills up would block ping and stop its sending.
        self.host_out = tempfile.TemporaryFile(mode="w+")
        self.host = subprocess.Popen(self.ns.exec_args(*args, self.guest_ip),
                                     stdout=self.host_out, stderr=subprocess.STDOUT, text=True)
        self.t0 = time.monotonic()
        return self

    def wait(self, timeout=None):
        """-> {'guest_to_peer': {...}, 'peer_to_guest': {...}}; waits for both to finish."""
        timeout = timeout or self.count * INTERVAL * 3 + 60
        try:
            self.host.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.host.kill()
            self.host.wait()
        self.host_out.seek(0)
        host_out = self.host_out.read()
        self.host_out.close()
        p2g = parse_ping(host_out)
        # Host timestamps are real time; the guest's clock may jump across a migration.
        p2g["gap_ms"] = p2g["max_gap_ms"]
        if not self.guest_ping:
            # Nothing frames the peer's replies from the guest side: a loss that lasts to the end
            # of the window shows only in the sequence numbers.
            p2g["gap_ms"] = max(p2g["max_gap_ms"], p2g["max_seq_gap_ms"])
            return {"guest_to_peer": None, "peer_to_guest": p2g}
        deadline = time.monotonic() + timeout
        while True:
            rc, out = self.net.run(f"cat /tmp/ping-{self.tag}.out")
            if "packets transmitted" in out:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"guest ping did not finish:\n{out[-2000:]}")
            time.sleep(0.5)
        g2p = parse_ping(out)
        g2p["gap_ms"] = g2p["max_seq_gap_ms"]
        return {"guest_to_peer": g2p, "peer_to_guest": p2g}

    def stop(self):
        if self.host and self.host.poll() is None:
            self.host.kill()
            self.host.wait()



class Iperf:
    """One iperf3 TCP stream between the peer and the guest.

    The client runs in the namespace, so its report (-J, one interval every `interval` s) is on
    the host's clock, which a migration does not move; the server runs in the guest (one test,
    then it exits). reverse=True (iperf3 -R): the guest sends the data, peer -> guest otherwise.
    """

    PORT = 5201

    def __init__(self, ns, net, seconds, reverse=True, interval=0.2, guest_ip=config.GUEST_IP4,
                 rate=None):
        """rate: iperf3 -b (e.g. "5M"), a stream that leaves room for other traffic."""
        self.ns, self.net = ns, net
        self.rate = rate
        self.seconds, self.reverse, self.interval = seconds, reverse, interval
        self.guest_ip = guest_ip
        self.client = self.server_pid = None

    def start(self):
        self.server_pid = self.net.sh(
            f"setsid iperf3 -s -1 -p {self.PORT} >/tmp/iperf3-s.out 2>&1 & echo $!").strip()
        self.net.sh(f"for i in $(seq 100); do netstat -ltn | grep -q ':{self.PORT} ' && exit 0; "
                    "sleep 0.1; done; echo iperf3 server not listening; exit 1")
        args = ["iperf3", "-c", self.guest_ip, "-p", str(self.PORT), "-t", str(self.seconds),
                "-i", str(self.interval), "-J", "--connect-timeout", "5000"]
        if self.reverse:
            args.append("-R")
        if self.rate:
            args += ["-b", self.rate]
        self.out = tempfile.TemporaryFile(mode="w+")
        self.t0 = time.monotonic()
        self.client = subprocess.Popen(self.ns.exec_args(*args), stdout=self.out,
                                       stderr=subprocess.STDOUT, text=True)
        return self

    def wait(self, timeout=None):
        """-> dict(rc, error, survived, intervals [(start, end, Mbit/s)], mbps); waits for it."""
        timeout = timeout or self.seconds * 3 + 60
        try:
            self.client.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.client.kill()
            self.client.wait()
        rc = self.client.returncode
        self.out.seek(0)
        text = self.out.read()
        self.out.close()
        try:
            js = json.loads(text[text.index("{"):]) if "{" in text else {}
        except ValueError:
            js = {}
        err = js.get("error") or (None if js else text.strip()[-500:] or "no output")
        ivs = [(round(i["sum"]["start"], 3), round(i["sum"]["end"], 3),
                round(i["sum"]["bits_per_second"] / 1e6, 2)) for i in js.get("intervals", [])]
        end = js.get("end", {}).get("sum_received", {})
        mbps = round(end["bits_per_second"] / 1e6, 2) if "bits_per_second" in end else None
        return {"rc": rc, "error": err, "survived": rc == 0 and not err and mbps is not None,
                "mbps": mbps, "seconds": end.get("seconds"), "intervals": ivs}

    def stop(self):
        if self.client and self.client.poll() is None:
            self.client.kill()
            self.client.wait()
        if self.server_pid:
            # Our own server, by pid; it is gone already when the test ran to its end.
            try:
                self.net.run(f"kill {self.server_pid} 2>/dev/null; true", timeout=10)
            except Exception:
                pass
            self.server_pid = None

    def run(self):
        """Start, wait, stop: -> wait()'s dict."""
        self.start()
        try:
            return self.wait()
        finally:
            self.stop()


def dip(intervals, t_event, warmup=1.0, length=None, hold=2.0):
    """A stream's throughput around an event at t_event s into it (intervals from Iperf.wait()).

    baseline: median Mbit/s of the intervals between warmup (slow start) and t_event; min: the
    lowest interval from t_event on; below_half_s: time in intervals after warmup below half
    the baseline (the stream's whole length, not only the event's neighbourhood), plus the time
    missing at the end if the stream stopped before `length` s; recovered_s: from t_event to the
    start of the first interval, after the first one below half the baseline, from which the
    stream stays at or above half for `hold` s (or to its end); 0 if it never dipped, None if
    it did not recover (a stream can run to its end without a reset and still carry nothing
    after the event: TCP's retransmission backoff can outlast the outage by seconds).
    """
    none = {"baseline_mbps": None, "min_mbps": None, "below_half_s": None, "recovered_s": None}
    base = [m for s, e, m in intervals if s >= warmup - 1e-6 and e <= t_event + 1e-6]
    after = [(s, e, m) for s, e, m in intervals if e > t_event]
    if not base or not after:
        return none
    b = statistics.median(base)
    below = sum(e - s for s, e, m in intervals if s >= warmup - 1e-6 and m < b / 2)
    end = intervals[-1][1]
    if length:
        below += max(0.0, length - end)
    short = bool(length) and length - end > 0.5  # stopped early: it did not recover
    first = next((i for i, (s, e, m) in enumerate(after) if m < b / 2), None)
    rec = 0.0 if first is None and not short else None
    if first is not None and not short:
        for i in range(first + 1, len(after)):
            t = after[i][0]
            if all(m >= b / 2 for s, e, m in after[i:] if s < t + hold):
                rec = round(max(0.0, t - t_event), 2)
                break
    return {"baseline_mbps": round(b, 2), "min_mbps": min(m for s, e, m in after),
            "below_half_s": round(below, 2), "recovered_s": rec}

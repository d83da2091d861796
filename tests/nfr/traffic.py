"""100 pps pings in both directions, and what they lost."""

import re
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
    seen, stamps = set(), []
    for line in text.splitlines():
        t = _ts_re.match(line)
        if t and "DUP!" not in line and int(t.group(2)) not in seen:
            seen.add(int(t.group(2)))
            stamps.append(float(t.group(1)))
    stamps.sort()
    gap = max((b - a for a, b in zip(stamps, stamps[1:])), default=0.0)
    # The longest run of unanswered sequence numbers, as time at the nominal interval: the
    # measure for the guest's own ping, whose clock is not trustworthy across a migration.
    run = best = 0
    for seq in range(1, sent + 1):
        run = 0 if seq in seen else run + 1
        best = max(best, run)
    return {"sent": sent, "received": received, "lost": sent - received,
            "max_gap_ms": round(gap * 1000, 1),
            "max_seq_gap_ms": round((best + 1) * INTERVAL * 1000, 1) if best else 0.0}


class PingPair:
    """guest->peer ping run in the guest, peer->guest ping run in the namespace, same length."""

    def __init__(self, ns, net, seconds, tag="p", peer=config.PEER_IP4, guest_ip=config.GUEST_IP4):
        self.ns, self.net, self.tag = ns, net, tag
        self.count = int(seconds / INTERVAL)
        self.peer, self.guest_ip = peer, guest_ip
        self.host = None

    def start(self):
        args = ["ping", "-D", "-O", "-n", "-i", str(INTERVAL), "-c", str(self.count), "-W", "1"]
        self.net.sh(f"rm -f /tmp/ping-{self.tag}.out; "
                    f"setsid /bin/{' '.join(args)} {self.peer} >/tmp/ping-{self.tag}.out 2>&1 &")
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
        deadline = time.monotonic() + timeout
        while True:
            rc, out = self.net.run(f"cat /tmp/ping-{self.tag}.out")
            if "packets transmitted" in out:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"guest ping did not finish:\n{out[-2000:]}")
            time.sleep(0.5)
        g2p, p2g = parse_ping(out), parse_ping(host_out)
        # Host timestamps are real time; the guest's clock may jump across a migration.
        g2p["gap_ms"], p2g["gap_ms"] = g2p["max_seq_gap_ms"], p2g["max_gap_ms"]
        return {"guest_to_peer": g2p, "peer_to_guest": p2g}

    def stop(self):
        if self.host and self.host.poll() is None:
            self.host.kill()
            self.host.wait()


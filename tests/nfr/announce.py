"""Watch a bridge namespace for a guest's announcements: gratuitous ARP and unsolicited NA.

As a script, run inside the bench namespace: announce.py <mac>. It prints "ready", then one JSON
line per announcement a tap receives from <mac>: {"t": host time, "if": tap, "kind": "garp"|"na"}.
AnnounceWatch runs it and collects the lines.
"""

import json
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

ETH_P_ALL = 0x0003


def kind(frame, mac):
    """'garp', 'na' or None for an Ethernet frame from `mac`."""
    if len(frame) < 14 or frame[6:12] != mac:
        return None
    etype = struct.unpack("!H", frame[12:14])[0]
    if etype == 0x0806 and len(frame) >= 42:
        # ARP for IPv4 over Ethernet: gratuitous when the sender and target addresses match.
        spa, tpa = frame[28:32], frame[38:42]
        return "garp" if spa == tpa else None
    if etype == 0x86DD and len(frame) >= 55:
        # IPv6, next header ICMPv6 (no extension headers in an NA), type 136.
        return "na" if frame[20] == 58 and frame[54] == 136 else None
    return None


def main():
    mac = bytes.fromhex(sys.argv[1].replace(":", ""))
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    print("ready", flush=True)
    while True:
        data, addr = s.recvfrom(65536)
        # Only what the guest sends into a tap, not the bridge's copies out of other ports.
        if addr[2] == socket.PACKET_OUTGOING or not addr[0].startswith("nfrtap"):
            continue
        k = kind(data, mac)
        if k:
            print(json.dumps({"t": time.time(), "if": addr[0], "kind": k}), flush=True)


class AnnounceWatch:
    """Collects the announcements of `mac` seen on the taps of namespace `ns`."""

    def __init__(self, ns, mac):
        self.proc = subprocess.Popen(ns.exec_args(sys.executable, str(Path(__file__)), mac),
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        line = self.proc.stdout.readline()
        if "ready" not in line:
            self.proc.kill()
            raise RuntimeError(f"announce watcher did not start: {line}{self.proc.stdout.read()}")
        self.events = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            with self._lock:
                self.events.append(ev)

    def since(self, t):
        """Announcements seen at or after host time t: [(tap, kind)]."""
        with self._lock:
            return [(e["if"], e["kind"]) for e in self.events if e["t"] >= t]

    def wait(self, t, tap, kinds=("garp", "na"), timeout=10):
        """Wait until each of `kinds` was seen on `tap` since t; -> what was seen since t."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            seen = self.since(t)
            if all((tap, k) in seen for k in kinds):
                return seen
            time.sleep(0.1)
        return self.since(t)

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


if __name__ == "__main__":
    main()

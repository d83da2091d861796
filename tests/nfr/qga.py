"""Host side of the QEMU guest agent (qemu-guest-agent in the Debian guest), over its
virtio-serial port: run a command and read its exit code and output."""

import base64
import json
import random
import socket
import time

from .agent import AgentError, recv_line


class QgaError(AgentError):
    pass


class QemuGuestAgent:
    """One connection to a guest's org.qemu.guest_agent.0 port (a QEMU unix-socket chardev)."""

    def __init__(self, path, timeout=300):
        self.path = str(path)
        self.sock = None
        self.buf = b""
        self.connect(timeout)

    def connect(self, timeout):
        """Connect, then wait until the agent answers a guest-sync (it starts late in boot)."""
        deadline = time.monotonic() + timeout
        while True:
            self.close()
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(self.path)
                self.sock, self.buf = s, b""
                self._sync(min(10, max(1, deadline - time.monotonic())))
                return
            except (OSError, AgentError):
                self.close()
                if time.monotonic() > deadline:
                    raise QgaError(f"the guest agent on {self.path} does not answer")
                time.sleep(1)

    def close(self):
        if self.sock:
            self.sock.close()
            self.sock = None

    def _sync(self, timeout):
        """guest-sync-delimited: drops what an earlier, abandoned request left in the channel."""
        token = random.randrange(1 << 30)
        self.sock.sendall(b"\xff" + json.dumps(
            {"execute": "guest-sync-delimited", "arguments": {"id": token}}).encode())
        deadline = time.monotonic() + timeout
        while True:
            msg = self._read(deadline)
            if msg.get("return") == token:
                return

    def _read(self, deadline):
        """The next reply: one JSON object per line, after guest-sync-delimited's 0xff marker
        if one precedes it."""
        while True:
            line, self.buf = recv_line(self.sock, self.buf, deadline)
            line = line.split(b"\xff")[-1]
            if line.strip():
                return json.loads(line)

    def cmd(self, name, timeout=30, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        reply = self._read(time.monotonic() + timeout)
        if "error" in reply:
            raise QgaError(f"{name}: {reply['error']}")
        return reply.get("return")

    def run(self, script, timeout=120):
        """Run a shell script with /bin/sh in the guest -> (exit code, stdout + stderr)."""
        pid = self.cmd("guest-exec", path="/bin/sh", arg=["-c", script],
                       **{"capture-output": True})["pid"]
        deadline = time.monotonic() + timeout
        while True:
            st = self.cmd("guest-exec-status", pid=pid)
            if st.get("exited"):
                out = b"".join(base64.b64decode(st.get(k, "")) for k in ("out-data", "err-data"))
                return st.get("exitcode", -1), out.decode(errors="replace")
            if time.monotonic() > deadline:
                raise QgaError(f"guest command timed out after {timeout} s: {script}")
            time.sleep(0.2)

    def check(self, script, timeout=120):
        """Run; -> the output, or QgaError on a non-zero exit."""
        rc, out = self.run(script, timeout)
        if rc != 0:
            raise QgaError(f"guest command failed ({rc}): {script}\n{out}")
        return out

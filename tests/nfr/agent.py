"""Host side of the guest control channel (scripts/guest/nfr-agent) over virtio-serial."""

import base64
import itertools
import socket
import threading
import time


class AgentError(RuntimeError):
    pass


class CommandFailed(AgentError):
    def __init__(self, cmd, rc, out):
        super().__init__(f"guest command failed ({rc}): {cmd}\n{out}")
        self.rc, self.out = rc, out


def recv_line(sock, buf, deadline):
    """One line from a guest agent's stream socket, whose earlier reads left `buf`: -> (the line
    without its newline, what was read past it). AgentError at `deadline` or on EOF."""
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AgentError("timeout waiting for the guest agent")
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        if not chunk:
            raise AgentError("guest agent connection closed")
        buf += chunk
    line, buf = buf.split(b"\n", 1)
    return line, buf


class Agent:
    """One connection to a guest's org.nfr.ctl port (a QEMU unix-socket chardev)."""

    _ids = itertools.count(1)

    def __init__(self, path, timeout=120):
        self.path = str(path)
        self.sock = None
        self.buf = b""
        self.lock = threading.Lock()  # one request at a time (the demo samples from a thread)
        self.connect(timeout)

    def connect(self, timeout=120):
        """Connect, then wait until the guest agent answers.

        If a probe goes unanswered, drop the connection and connect again: the guest's port then
        sees the host close and open, and the agent re-opens it. After a live migration the
        destination may otherwise hold our bytes back until the guest re-opens the port.
        """
        deadline = time.monotonic() + timeout
        self.probes = 0
        # Each unanswered probe waits longer: a slow guest (a debug kernel under TCG) takes
        # seconds to start the agent again after a reconnect, and a probe that always gives
        # up first would reconnect forever.
        wait = 1.5
        while True:
            self.close()
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(self.path)
            except OSError:
                s.close()
                if time.monotonic() > deadline:
                    raise AgentError(f"cannot connect to {self.path}")
                time.sleep(0.2)
                continue
            self.sock, self.buf = s, b""
            self.probes += 1
            try:
                rc, out = self.run("echo nfr-ok", timeout=wait)
                if rc == 0 and out.strip() == "nfr-ok":
                    return
            except (AgentError, OSError):
                pass
            wait = min(wait * 1.5, 10)
            if time.monotonic() > deadline:
                raise AgentError("guest agent does not answer")
            time.sleep(0.2)

    def close(self):
        if self.sock:
            self.sock.close()
            self.sock = None

    def _readline(self, deadline):
        line, self.buf = recv_line(self.sock, self.buf, deadline)
        return line.decode()

    def run(self, cmd, timeout=60):
        """Run a shell script in the guest; return (exit code, combined stdout+stderr)."""
        with self.lock:
            return self._run(cmd, timeout)

    def _run(self, cmd, timeout):
        rid = str(next(self._ids))
        payload = base64.b64encode(cmd.encode()).decode()
        self.sock.sendall(f"{rid} {payload}\n".encode())
        deadline = time.monotonic() + timeout
        while True:
            parts = self._readline(deadline).split(" ", 2)
            if parts[0] != rid:
                continue  # a late answer to an abandoned request
            rc = int(parts[1])
            out = base64.b64decode(parts[2]).decode(errors="replace") if len(parts) > 2 else ""
            return rc, out

    def check(self, cmd, timeout=60):
        """Run and return the output; raise CommandFailed on a non-zero exit."""
        rc, out = self.run(cmd, timeout)
        if rc != 0:
            raise CommandFailed(cmd, rc, out)
        return out

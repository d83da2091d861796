"""The Debian guest (scripts/mkdebian.sh) and a bench on it, for tests/test_distro.py.

Each guest boots the flavour's kernel with root=/dev/vda: a qcow2 overlay over the flavour's
read-only Debian image, which the migration destination opens too (shared storage on one host),
and a small seed disk (ext4, label nfr-seed) whose files/ tree nfr-seed.service copies over the
root before udev and the network stacks start: the scenario's network configuration, its
cloud-init seed, root's authorized ssh key. The kernel command line picks the one network stack
that runs. The guest is driven through its QEMU guest agent.
"""

import json
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from . import config
from .bench import Bench
from .guest import Net
from .vm import Guest

# What runs the network in each stack's boots; the others are masked on the command line.
STACK_UNITS = {
    "networkmanager": ["NetworkManager.service"],
    "networkd": ["systemd-networkd.service", "systemd-networkd.socket"],
    # Debian's networking.service (ifup -a) runs in every boot: alone it brings up lo only.
    "ifupdown": [],
}
ALL_UNITS = [u for units in STACK_UNITS.values() for u in units]

# The journal identifiers of each stack and its DHCP clients: a line of theirs about the master
# after an event means it reconfigured something.
JOURNAL_IDS = {
    "networkmanager": ["NetworkManager"],
    "networkd": ["systemd-networkd"],
    "ifupdown": ["dhclient", "ifup", "ifdown", "networking"],
}

# The names udev gives the group: the standby's slot (root port 1, bus 1), the name the kernel
# derives from it for the standby, and the primary's slot (bus 2).
MASTER, STANDBY, PRIMARY = "enp1s0", "enp1s0nsby", "enp2s0"
BOOT_TIMEOUT = 600


def image(flavour):
    """The flavour's Debian root image (scripts/mkdebian.sh)."""
    img = config.STAGE / flavour / "debian.img"
    if not img.exists():
        raise FileNotFoundError(f"no Debian image for {flavour!r}: run `make debian`")
    return img


class Disk:
    """A guest's disks: an overlay of the flavour's image, and the seed with `files`
    ({path in the guest: text}, or (text, mode))."""

    def __init__(self, flavour, stack, files, workdir, cloud_init=False):
        self.stack, self.cloud_init = stack, cloud_init
        self.dir = Path(workdir)
        self.root = self.dir / "root.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b",
                        str(image(flavour)), str(self.root)], check=True)
        tree = self.dir / "seed"
        for path, content in files.items():
            text, mode = content if isinstance(content, tuple) else (content, 0o644)
            f = tree / "files" / path.lstrip("/")
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(text)
            f.chmod(mode)
        tree.mkdir(exist_ok=True)
        self.seed = self.dir / "seed.img"
        subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "nfr-seed", "-d", str(tree),
                        str(self.seed), "16M"], check=True)

    def cmdline(self):
        masked = [u for u in ALL_UNITS if u not in STACK_UNITS[self.stack]]
        return " ".join(["root=/dev/vda", "rw", "rootwait", "systemd.show_status=0",
                         *(f"systemd.mask={u}" for u in masked),
                         *([] if self.cloud_init else ["cloud-init=disabled"])])

    def qemu_args(self):
        return ["-drive", f"file={self.root},if=none,id=root,format=qcow2",
                "-device", "virtio-blk-pci,drive=root",
                "-drive", f"file={self.seed},if=none,id=seed,format=raw,readonly=on",
                "-device", "virtio-blk-pci,drive=seed",
                "-device", "virtio-rng-pci"]


class DistroBench(Bench):
    """Bench's events (unplug, replug, migrate) on a Debian guest whose network stack configures
    the master itself from the peer's DHCP and router advertisements.

    stack: networkmanager, networkd or ifupdown; files: the seed's files; cloud_init: let
    cloud-init run (its NoCloud seed among the files); primary_at_boot: the primary is in the
    guest from its start, or is plugged once it has booted."""

    def __init__(self, flavour, stack, files, *, cloud_init=False, primary_at_boot=True,
                 primary_model="e1000e"):
        self._state(flavour, primary_model, "", record=False)
        self.stack = stack
        self.guest = self.disk = None
        self.ssh = []
        self.workdir = Path(tempfile.mkdtemp(prefix="nfr-debian-", dir=_workdir()))
        try:
            self.ns.start_dhcp(self.workdir)
            self.key = self.workdir / "id_ed25519"
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.key)],
                           check=True)
            pub = (self.workdir / "id_ed25519.pub").read_text()
            files = {**files, "root/.ssh/authorized_keys": (pub, 0o600)}
            self.disk = Disk(flavour, stack, files, self.workdir, cloud_init)
            self.guest = self.new_guest()
            if primary_at_boot:
                self.guest.add_primary()
            self.guest.connect_agent(timeout=BOOT_TIMEOUT)
            self.net = Net(self.guest)
            self.wait_booted()
            if not primary_at_boot:
                self.guest.add_primary()
            self.net.wait_primary_active(timeout=120)
            self.master = self.net.roles()["master"]["name"]
        except Exception:
            self.close()
            raise

    def new_guest(self, **kw):
        return Guest(self.ns, self.flavour, primary_model=self.primary_model, disk=self.disk, **kw)

    def close(self):
        for s in self.ssh:
            s.stop()
        super().close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    # --- the guest's state -------------------------------------------------------------------

    def wait_booted(self, timeout=BOOT_TIMEOUT):
        """Until systemd has finished starting up (running, or degraded: a failed unit is the
        tests' to judge)."""
        deadline = time.monotonic() + timeout
        while True:
            rc, out = self.net.run("systemctl is-system-running", timeout=30)
            if out.strip() in ("running", "degraded"):
                return out.strip()
            if time.monotonic() > deadline:
                raise TimeoutError(f"the guest did not finish booting: {out.strip()}")
            time.sleep(2)

    def addresses(self, dev):
        """dev's addresses: [(family, address, scope)]; [] if it has none or is gone."""
        rc, out = self.net.run(f"ip -j addr show dev {dev}")
        if rc != 0 or not out.strip():
            return []
        return [(a["family"], a["local"], a["scope"])
                for d in json.loads(out) for a in d.get("addr_info", [])]

    def default_routes(self):
        """The devices of the default routes: {"inet": [dev], "inet6": [dev]}."""
        out = {}
        for fam, flag in (("inet", "-4"), ("inet6", "-6")):
            rc, text = self.net.run(f"ip {flag} -j route show default")
            out[fam] = sorted({r.get("dev") for r in json.loads(text or "[]")}) if rc == 0 else []
        return out

    def wait_configured(self, timeout=300):
        """Until the stack has configured the master: the DHCPv4 address, a global IPv6
        address, and both default routes."""
        deadline = time.monotonic() + timeout
        while True:
            addrs = self.addresses(self.master)
            v4 = any(a == config.GUEST_IP4 for f, a, s in addrs if f == "inet")
            v6 = any(f == "inet6" and s == "global" for f, a, s in addrs)
            routes = self.default_routes()
            if v4 and v6 and routes["inet"] and routes["inet6"]:
                return addrs
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.stack} did not configure {self.master}: {addrs}, "
                                   f"default routes {routes}")
            time.sleep(2)

    def guest_time(self):
        return float(self.net.sh("date +%s.%N").strip())

    def journal(self, since, ids=None):
        """The stack's journal lines since guest time `since`."""
        ids = ids or JOURNAL_IDS[self.stack]
        tags = " ".join(f"-t {i}" for i in ids)
        rc, out = self.net.run(f"journalctl -q -o short-unix --no-pager {tags} --since @{since:.6f}",
                               timeout=60)
        return [ln for ln in out.splitlines() if ln.strip()] if rc == 0 else [f"journal: {out}"]

    def dhcp_clients_on(self, devs):
        """DHCP client processes (dhclient, dhcpcd) whose command line names one of devs."""
        out = self.net.sh("ps -eo args")
        return [ln for ln in out.splitlines()
                if re.search(r"\b(dhclient|dhcpcd)\b", ln) and any(
                    re.search(rf"(^|\s|\.){re.escape(d)}(\s|$|\.)", ln) for d in devs)]

    # --- sessions from the peer --------------------------------------------------------------

    def ssh_session(self):
        """An ssh session from the peer that prints a tick every 0.2 s (SshSession)."""
        s = SshSession(self.ns, self.key, self.workdir)
        self.ssh.append(s)
        return s


class SshSession:
    """`ssh root@guest` from the peer, printing the guest's clock every 0.2 s until stopped."""

    def __init__(self, ns, key, workdir):
        self.out = tempfile.TemporaryFile(mode="w+", dir=workdir)
        self.proc = subprocess.Popen(ns.exec_args(
            "ssh", "-i", str(key), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
            "-o", "ServerAliveInterval=2", "-o", "ServerAliveCountMax=30",
            f"root@{config.GUEST_IP4}", "while :; do date +%s.%N; sleep 0.2; done"),
            stdout=self.out, stderr=subprocess.STDOUT, text=True)

    def ticks(self):
        self.out.seek(0)
        return [ln for ln in self.out.read().splitlines() if re.fullmatch(r"\d+\.\d+", ln)]

    def wait_ticking(self, timeout=60):
        deadline = time.monotonic() + timeout
        while len(self.ticks()) < 3:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.out.seek(0)
                raise RuntimeError(f"ssh session did not start: {self.out.read()[-500:]}")
            time.sleep(0.5)

    def alive(self, within=10):
        """Is the session still open, and ticking again within `within` s?"""
        n = len(self.ticks())
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if len(self.ticks()) > n:
                return True
            time.sleep(0.5)
        return False

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.out.close()


def _workdir():
    d = config.OUT / "vm"
    d.mkdir(parents=True, exist_ok=True)
    return d

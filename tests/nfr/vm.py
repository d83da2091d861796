"""A bench guest: QEMU q35 inside the bench namespace, driven over QMP and the guest agent."""

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from qemu.qmp.legacy import QEMUMonitorProtocol

from . import config, klog
from .agent import Agent, AgentError
from .qga import QemuGuestAgent

PRIMARY_ID = "primary0"
STANDBY_ID = "standby0"
# A guest may have a second failover pair (the event storm's quiet pair): its own virtio-net and
# primary, with another MAC, on their own taps and root ports.
PAIR_IDS = ((STANDBY_ID, PRIMARY_ID), ("standby1", "primary1"))

_accel = None

# Every guest started and not yet checked by the kernel-log scanner (see `scan_guests`).
GUESTS = []


def qemu_has_device(model):
    out = subprocess.run(["qemu-system-x86_64", "-device", "help"], capture_output=True,
                         text=True).stdout
    return f'name "{model}"' in out


def qemu_failover_primary_ok(model):
    """Does this QEMU accept `model` as a failover primary?

    QEMU 10.0 has igb, but refuses it as a primary ("failover: primary device must be in its
    own PCI slot"): igb is an SR-IOV PF and carries the multifunction capability. A primary whose
    failover_pair_id matches no virtio-net is realized at once, so the refusal shows here.
    """
    if not qemu_has_device(model):
        return False
    p = subprocess.run(
        ["qemu-system-x86_64", "-machine", "q35", "-accel", "tcg", "-S", "-nodefaults",
         "-display", "none", "-device", "pcie-root-port,id=rp1,chassis=1",
         "-device", f"{model},bus=rp1,failover_pair_id=probe", "-qmp", "stdio"],
        input='{"execute":"qmp_capabilities"}\n{"execute":"quit"}\n',
        capture_output=True, text=True, timeout=60)
    return "failover" not in p.stderr and '"return"' in p.stdout


def primary_models():
    """Primary NIC models to test: e1000e, and igb where QEMU has it and accepts it."""
    models = [m for m in ("e1000e", "igb") if qemu_failover_primary_ok(m)]
    if "e1000e" not in models:
        raise RuntimeError("this QEMU cannot use e1000e as a failover primary")
    return models


# TCG's CPU model: everything TCG has, but without fast string moves (ERMS, FSRM). With them the
# guest kernel copies each user buffer with `rep movsb`, which TCG runs byte by byte; the copy
# took 80% of the guest's time in a TCP send, and in about one stream in four it fell onto
# TCG's slow memory path (helper_ldub_mmu/helper_stb_mmu in a host profile), halving the rate.
# Without them the kernel copies 8 bytes a move: twice the rate, and no such second mode.
#
# And without 5-level paging (LA57). identify_boot_cpu() clears boot_cpu_data's capabilities
# and reads them again; an interrupt in that window (TCG runs CPUID slowly, so one arrives now
# and then) sees LA57 off, so a KASAN kernel computes its shadow bounds for 4-level paging and
# reports the 5-level direct map and vmalloc addresses the handler touches as wild accesses,
# then hangs (upstream 7.3: pgtable_l5_enabled() is cpu_feature_enabled(X86_FEATURE_LA57)).
# Seen twice: a CI run's storm guest, and a guest of a `make check-debug` run.
TCG_CPU = os.environ.get("NFR_TCG_CPU", "max,erms=off,fsrm=off,la57=off")


# The debug kernels (scripts/config/debug.config) run under TCG, many times slower than a
# production kernel on hardware: their watchdogs get syzbot's timeouts for emulators (the hung-
# task and RCU stall timeouts are in the config), and KASAN reports every error, not only the
# first. Their memory (NFR_DEBUG_MEM, 1 GiB) holds KASAN's shadow (1/8) and lockdep; more costs
# time in every kmemleak scan (two scans: 13 s with 1 GiB, 28 s with 2 GiB).
DEBUG_CMDLINE = ("watchdog_thresh=165 workqueue.watchdog_thresh=420 "
                 "kasan_multi_shot")
DEBUG_MEM_MB = int(os.environ.get("NFR_DEBUG_MEM", "1024"))


def debug(flavour):
    """Is this a debug flavour (<flavour>-debug)?"""
    return flavour.endswith("-debug")


def accel(flavour):
    """'kvm' if a probe guest boots on /dev/kvm, else 'tcg'. Probed once per process.

    /dev/kvm on this kind of machine is PVM-backed and normal guests die on it with "KVM
    internal error", so the probe boots the real bench guest and waits for its init to say so.
    """
    global _accel
    if _accel is None:
        _accel = os.environ.get("NFR_ACCEL") or ("kvm" if _probe_kvm(flavour) else "tcg")
    return _accel


def _probe_kvm(flavour):
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    kernel, initrd = config.stage(flavour)
    with tempfile.TemporaryDirectory(prefix="nfr-kvm-probe-") as d:
        log = Path(d) / "console.log"
        args = ["qemu-system-x86_64", "-machine", "q35", "-accel", "kvm", "-cpu", "host",
                "-m", "512", "-nodefaults", "-display", "none", "-no-reboot",
                "-kernel", str(kernel), "-initrd", str(initrd),
                "-append", "console=ttyS0 panic=-1 kunit.enable=0 nfr.probe=1",
                "-serial", f"file:{log}"]
        p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        return log.exists() and "nfr-init: ready" in log.read_text(errors="replace")


class Guest:
    """One QEMU process. Stopped by pid (its pidfile / Popen), never by name."""

    def __init__(self, ns, flavour, *, name="src", modules="virtio_net,e1000e,igb",
                 primary_model="e1000e", incoming_port=None, kunit=False, append="", pairs=1,
                 disk=None):
        """disk: boot a distribution from its root disk (nfr.debian.Disk) instead of the
        initramfs, controlled through its QEMU guest agent instead of the initramfs agent."""
        self.ns, self.flavour, self.name = ns, flavour, name
        self.disk = disk
        self.primary_model = primary_model
        self.pairs = pairs
        self.dir = Path(tempfile.mkdtemp(prefix=f"nfr-{name}-", dir=_workdir()))
        self.console = self.dir / "console.log"
        self.taps = []
        for pair in range(pairs):
            br = ns.pair_bridge(pair)
            self.taps.append((ns.add_tap(bridge=br), ns.add_tap(vf=True, bridge=br)))
        self.tap_standby, self.tap_primary = self.taps[0]
        self.proc = None
        self.qmp = None
        self.agent = None
        # Kernel-log scanning: how far the console log was scanned, the kmemleak objects
        # already reported, and what the final scan in stop() found.
        self.scanned = 0
        self.leaks_seen = set()
        self.final_problems = None
        kernel, initrd = config.stage(flavour)
        acc = accel(flavour)
        boot = disk.cmdline() if disk else f"nfr.modules={modules}"
        cmdline = (f"console=ttyS0 panic=-1 tsc=reliable {boot} "
                   f"kunit.enable={1 if kunit else 0} {DEBUG_CMDLINE if debug(flavour) else ''} "
                   f"{append}")
        mem = DEBUG_MEM_MB if debug(flavour) else config.MEM_MB
        args = [
            "qemu-system-x86_64", "-name", f"nfr-{name}",
            "-machine", "q35", "-accel", acc, "-cpu", "host" if acc == "kvm" else TCG_CPU,
            "-smp", str(config.SMP), "-m", str(mem),
            "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
            "-kernel", str(kernel), "-append", cmdline,
            *(disk.qemu_args() if disk else ["-initrd", str(initrd)]),
            "-serial", f"file:{self.console}",
            "-qmp", f"unix:{self.dir}/qmp.sock,server=on,wait=off",
            "-pidfile", str(self.dir / "qemu.pid"),
            *self._root_ports(0),
            "-device", "virtio-serial-pci,id=vser0",
            "-chardev", f"socket,id=ctl,path={self.dir}/ctl.sock,server=on,wait=off",
            "-device", "virtserialport,chardev=ctl,name="
                       + ("org.qemu.guest_agent.0" if disk else "org.nfr.ctl"),
            *self._pair_nics(0),
        ]
        for pair in range(1, pairs):
            args += [*self._root_ports(pair), *self._pair_nics(pair)]
        if incoming_port is not None:
            # The migration target is configured with the primaries; QEMU keeps them hidden and
            # plugs them once the incoming virtio-net state shows STANDBY negotiated.
            for pair in range(pairs):
                spec = ",".join(f"{k}={v}"
                                for k, v in self._primary_props(primary_model, pair).items())
                args += ["-device", spec]
            args += ["-incoming", f"tcp:127.0.0.1:{incoming_port}"]
        self.args = args
        GUESTS.append(self)
        self.proc = subprocess.Popen(ns.exec_args(*args), stdin=subprocess.DEVNULL,
                                     stdout=open(self.dir / "qemu.out", "w"),
                                     stderr=subprocess.STDOUT)
        try:
            self.qmp = self._qmp_connect()
        except Exception:
            self.stop()
            raise

    # Pair p's NICs sit on root ports rp<2p> (the standby) and rp<2p+1> (the primary), on
    # netdevs hn<2p> and hn<2p+1>; the primary is added by -device or QMP (_primary_props).

    @staticmethod
    def _root_ports(pair):
        return ["-device", f"pcie-root-port,id=rp{2 * pair},chassis={2 * pair + 1}",
                "-device", f"pcie-root-port,id=rp{2 * pair + 1},chassis={2 * pair + 2}"]

    def _pair_nics(self, pair):
        """The standby and the primary's netdev of pair `pair`."""
        tap_s, tap_p = self.taps[pair]
        return ["-netdev", f"tap,id=hn{2 * pair},ifname={tap_s},script=no,downscript=no",
                "-device", f"virtio-net-pci,netdev=hn{2 * pair},id={PAIR_IDS[pair][0]},"
                           f"mac={config.pair_mac(pair)},failover=on,bus=rp{2 * pair},romfile=",
                "-netdev", f"tap,id=hn{2 * pair + 1},ifname={tap_p},script=no,downscript=no"]

    # --- lifecycle -----------------------------------------------------------------------

    def _qmp_connect(self, timeout=30):
        deadline = time.monotonic() + timeout
        sock = self.dir / "qmp.sock"
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"QEMU exited: {(self.dir / 'qemu.out').read_text()}")
            if sock.exists():
                try:
                    q = QEMUMonitorProtocol(str(sock))
                    q.connect()
                    return q
                except OSError:
                    pass
            if time.monotonic() > deadline:
                raise RuntimeError("QMP socket never came up")
            time.sleep(0.1)

    def connect_agent(self, timeout=180):
        """Wait for the guest's agent; returns it."""
        if self.agent:
            self.agent.close()
        if self.disk:
            self.agent = QemuGuestAgent(self.dir / "ctl.sock", timeout=timeout)
        else:
            self.agent = Agent(self.dir / "ctl.sock", timeout=timeout)
        return self.agent

    def boot(self, add_primary=True, timeout=180):
        """Add the primary right away (QEMU hides it until STANDBY is acked), wait for the agent."""
        if add_primary:
            self.add_primary()
        return self.connect_agent(timeout)

    def stop(self):
        """Quit QEMU (QMP, then SIGKILL of our own pid) and remove its files. The kernel log is
        scanned first; `scan_guests` reports what was found."""
        if self.final_problems is None:
            self.final_problems = self.scan()
        if self.agent:
            self.agent.close()
            self.agent = None
        if self.proc and self.proc.poll() is None:
            try:
                if self.qmp:
                    self.qmp.cmd("quit")
            except Exception:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                # `ip netns exec` execs QEMU, so this pid (also in qemu.pid) is QEMU's own.
                self.proc.kill()
                self.proc.wait()
        if self.qmp:
            try:
                self.qmp.close()
            except Exception:
                pass
            self.qmp = None
        if not os.environ.get("NFR_KEEP"):
            if self.console.exists():
                keep_console(self.console, self.name)
            shutil.rmtree(self.dir, ignore_errors=True)

    # --- kernel-log scanning -------------------------------------------------------------

    def running(self):
        """Is the guest's CPU running (not paused, migrated away or dead)?"""
        if not self.proc or self.proc.poll() is not None or not self.qmp:
            return False
        try:
            return self.qmp.cmd("query-status").get("status") == "running"
        except Exception:
            return False

    def scan(self, kmemleak=True):
        """Problem lines in the kernel log since the last scan, and kmemleak's new reports
        (kmemleak=False: the log only, as often as after every event of a storm)."""
        found = []
        if self.console.exists():
            text = self.console.read_bytes()
            new, self.scanned = text[self.scanned:], len(text)
            found += klog.problems(new.decode(errors="replace"))
        if kmemleak and self.agent and self.running():
            try:
                report = klog.kmemleak_scan(self.agent)
            except (AgentError, OSError) as e:
                report = f"kmemleak scan failed: {e}"
            if report.startswith("kmemleak scan failed"):
                found.append(report)
            for leak in klog.leaks(report):
                head = leak.splitlines()[0]
                if head not in self.leaks_seen:
                    self.leaks_seen.add(head)
                    found.append(leak)
        return found

    # --- QMP helpers ---------------------------------------------------------------------

    @staticmethod
    def _primary_props(model, pair=0):
        """Pair `pair`'s primary's device properties, for -device and for QMP device_add alike."""
        standby_id, primary_id = PAIR_IDS[pair]
        return {"driver": model, "netdev": f"hn{2 * pair + 1}", "id": primary_id,
                "mac": config.pair_mac(pair), "bus": f"rp{2 * pair + 1}",
                "failover_pair_id": standby_id, "romfile": ""}

    def add_primary(self, model=None, pair=0):
        self.primary_model = model or self.primary_model
        self.qmp.cmd("device_add", **self._primary_props(self.primary_model, pair))

    def del_primary(self, timeout=30, pair=0):
        """device_del the primary and wait for DEVICE_DELETED (the guest let it go)."""
        return self.del_device(PAIR_IDS[pair][1], timeout)

    def del_device(self, dev_id, timeout=30):
        """device_del `dev_id` and wait for its DEVICE_DELETED; -> seconds it took."""
        self.qmp.clear_events()
        self.qmp.cmd("device_del", id=dev_id)
        t0 = time.monotonic()
        self.wait_event("DEVICE_DELETED", lambda e: e.get("data", {}).get("device") == dev_id,
                        timeout)
        return time.monotonic() - t0

    def wait_event(self, name, match=lambda e: True, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no QMP event {name}")
            ev = self.qmp.pull_event(wait=left)
            if ev and ev.get("event") == name and match(ev):
                return ev

    def set_primary_link(self, up, pair=0):
        self.qmp.cmd("set_link", name=PAIR_IDS[pair][1], up=bool(up))

    def pci_devices(self):
        """QEMU's view of the guest's PCI devices: list of qdev ids."""
        ids = []

        def walk(devs):
            for d in devs:
                if d.get("qdev_id"):
                    ids.append(d["qdev_id"])
                walk(d.get("pci_bridge", {}).get("devices", []))

        for bus in self.qmp.cmd("query-pci"):
            walk(bus["devices"])
        return ids



CONSOLES_KEPT = 80


def keep_console(console, name):
    """Keep a stopped guest's console log: the newest of each name as last-console/<name>.log,
    and every one as last-console/<time>-<name>.log, the newest CONSOLES_KEPT of them. A failure
    that a later guest of the same name would hide (a CI run's) can then still be read."""
    keep = _workdir() / "last-console"
    keep.mkdir(exist_ok=True)
    shutil.copy(console, keep / f"{name}.log")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    shutil.copy(console, keep / f"{stamp}-{os.getpid()}-{name}.log")
    dated = sorted(keep.glob("2*-*.log"), key=lambda f: f.stat().st_mtime)
    for old in dated[:-CONSOLES_KEPT]:
        old.unlink(missing_ok=True)


def console_tail(console, lines=40):
    """The last lines of a console log (for a failure report)."""
    try:
        return "\n".join(console.read_text(errors="replace").splitlines()[-lines:])
    except OSError as e:
        return f"(no console log: {e})"


def _workdir():
    d = config.OUT / "vm"
    d.mkdir(parents=True, exist_ok=True)
    return d


def scan_guests():
    """Scans every guest started since the last call, and those still running: -> {guest name:
    problem lines}. Guests that stopped are forgotten afterwards."""
    found = {}
    for g in list(GUESTS):
        lines = g.final_problems if g.final_problems is not None else g.scan()
        if g.final_problems is not None:
            GUESTS.remove(g)
            g.final_problems = []
        if lines:
            found[f"{g.name} ({g.flavour})"] = lines
    return found

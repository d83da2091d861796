"""The guest's view of the failover group, read through the agent."""

import json
import time

from . import config, klog

PRIMARY_DRIVERS = ("e1000e", "igb")
# The master reports this driver name in ethtool -i, C and Rust alike (userspace identity).
MASTER_DRIVER = "net_failover"
# The module that creates the master, per driver flavour (virtio_net depends on it). The Rust
# flavour is expected to keep the C module's name; if it does not, this is the one place to change.
FAILOVER_MODULES = {"c": "net_failover", "rust": "net_failover"}
def failover_module(flavour):
    return FAILOVER_MODULES[config.driver_of(flavour)]


def parse_topo(text):
    devs = {}
    for line in text.splitlines():
        kv = dict(f.split("=", 1) for f in line.split() if "=" in f)
        if "name" in kv and all(kv.get(k, "").isdigit() for k in ("rx", "tx", "mtu")) \
                and kv.get("flags", "").startswith("0x"):
            kv["lowers"] = [x for x in kv.get("lowers", "").split(",") if x]
            for k in ("rx", "tx", "mtu"):
                kv[k] = int(kv[k])
            kv["flags"] = int(kv["flags"], 16)
            devs[kv["name"]] = kv
    return devs


class Net:
    """Topology, counters and waits for one guest (re-bound after a migration)."""

    def __init__(self, guest):
        self.guest = guest

    @property
    def agent(self):
        return self.guest.agent

    def sh(self, cmd, timeout=60):
        return self.agent.check(cmd, timeout)

    def run(self, cmd, timeout=60):
        return self.agent.run(cmd, timeout)

    def topo(self):
        return parse_topo(self.sh("nfr-topo"))

    def roles(self, devs=None):
        """{'master', 'standby', 'primary'} -> device dict or None."""
        devs = devs if devs is not None else self.topo()
        r = {"master": None, "standby": None, "primary": None}
        for d in devs.values():
            if d["driver"] == MASTER_DRIVER:
                r["master"] = d
            elif d["driver"] == "virtio_net":
                r["standby"] = d
            elif d["driver"] in PRIMARY_DRIVERS:
                r["primary"] = d
        return r

    def wait(self, pred, timeout=60, what="condition"):
        """Poll the topology until pred(roles) is true; return the roles."""
        deadline = time.monotonic() + timeout
        while True:
            r = self.roles()
            if pred(r):
                return r
            if time.monotonic() > deadline:
                raise TimeoutError(f"guest: timed out waiting for {what}; topology: {r}")
            time.sleep(0.25)

    def wait_master(self, timeout=120):
        return self.wait(lambda r: r["master"] and r["standby"]
                         and r["standby"]["master"] == r["master"]["name"],
                         timeout, "master with standby enslaved")

    def wait_primary_enslaved(self, timeout=120):
        return self.wait(lambda r: r["master"] and r["primary"]
                         and r["primary"]["master"] == r["master"]["name"],
                         timeout, "primary enslaved")

    def wait_primary_active(self, timeout=120):
        """Primary enslaved, running and with carrier: the C and Rust drivers both xmit on it."""
        return self.wait(lambda r: r["master"] and r["primary"]
                         and r["primary"]["master"] == r["master"]["name"]
                         and r["primary"]["carrier"] == "1" and r["master"]["carrier"] == "1",
                         timeout, "primary active")

    def wait_primary_gone(self, timeout=60):
        return self.wait(lambda r: r["primary"] is None, timeout, "primary gone")

    def setup_ip(self):
        """Bring the master up with the bench addresses, as an operator's network config would."""
        m = self.wait_master()["master"]["name"]
        self.sh(f"ip link set {m} up && ip addr add {config.GUEST_IP4}/{config.PREFIX4} dev {m} && "
                f"ip -6 addr add {config.GUEST_IP6}/64 dev {m} nodad")
        return m

    def dmesg(self):
        return self.sh("dmesg")

    def kernel_problems(self):
        """The reports of the kernel log (tests/nfr/klog.py): warnings, BUGs, oopses, refcount
        and lockdep trouble. Every test is also checked after it ends (tests/conftest.py)."""
        return klog.problems(self.dmesg())

    def link(self, dev, netns=None):
        """`ip -d -j link show` of one device (in guest namespace `netns`), or None if absent."""
        n = f"-n {netns} " if netns else ""
        rc, out = self.run(f"ip {n}-d -s -j link show dev {dev}")
        return json.loads(out)[0] if rc == 0 else None

    def has_link_local(self, dev, netns=None):
        """Does `dev` have an IPv6 link-local address? A failover slave is IFF_NO_ADDRCONF: none."""
        n = f"-n {netns} " if netns else ""
        return "fe80::" in self.sh(f"ip {n}-6 addr show dev {dev}")

    def counters(self):
        """{role: (rx_packets, tx_packets)} for the failover group."""
        r = self.roles()
        return {k: ((v["rx"], v["tx"]) if v else None) for k, v in r.items()}

    def features_bit(self, bit):
        """Is virtio feature `bit` negotiated on the standby's virtio device?"""
        r = self.roles()
        dev = r["standby"]["dev"]
        bits = self.sh(f"cat {dev}/features").strip()
        return len(bits) > bit and bits[bit] == "1"

    def pci_has_primary(self):
        """Does the guest see an Intel NIC (e1000e 8086:10d3 or igb 8086:10c9) on its PCI bus?"""
        out = self.sh("for d in /sys/bus/pci/devices/*; do echo $(cat $d/vendor):$(cat $d/device); done")
        return any(x in out for x in ("0x8086:0x10d3", "0x8086:0x10c9"))

"""A private network namespace holding the peer: a bridge with the peer's addresses, and taps."""

import itertools
import os
import re
import subprocess
import sys
from pathlib import Path

from . import config

_seq = itertools.count()


def sh(*args, check=True, **kw):
    """Run a host command; raise with its output on failure."""
    p = subprocess.run(args, capture_output=True, text=True, **kw)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({p.returncode}): {p.stderr.strip()}")
    return p


class NetNS:
    """`ip netns` named nfr-<pid>-<n>, removed (with its taps and bridge) by close()."""

    def __init__(self):
        self.name = f"nfr-{os.getpid()}-{next(_seq)}"
        self._taps = itertools.count()
        self._vlan_peer = None
        self._nft = False
        self._bridges = set()
        self._dnsmasq = self.dhcp_log = None
        sh("ip", "netns", "add", self.name)
        try:
            self.ip("link", "set", "lo", "up")
            self._add_bridge("br0", f"{config.PEER_IP4}/{config.PREFIX4}")
            self.ip("addr", "add", f"{config.PEER_IP6}/64", "dev", "br0", "nodad")
        except Exception:
            self.close()
            raise

    def _add_bridge(self, br, addr):
        # A fixed address: a bridge that has none takes its ports' lowest, and changes it as
        # taps join and leave (a migration's destination adds its own). The guest's neighbour
        # entry for the peer, and the VLAN peer's replies (vlanpeer.py answers from the
        # bridge's address as it was when it started), would then point at a stale one.
        mac = f"02:4e:46:52:00:{int(br[2:]) + 1:02x}"
        self.ip("link", "add", br, "address", mac, "type", "bridge", "stp_state", "0",
                "forward_delay", "0", "mcast_snooping", "0")
        self.ip("addr", "add", addr, "dev", br)
        self.ip("link", "set", br, "up")
        self._bridges.add(br)

    def pair_bridge(self, pair):
        """The bridge of failover pair `pair`, the peer's address on it (made on first use).
        A second pair has its own L2 segment: on one segment with the first, the guest answers
        ARP for either pair's address on both (ARP flux), and one pair's traffic could flow
        through the other's devices."""
        br = f"br{pair}"
        if br not in self._bridges:
            self._add_bridge(br, f"{config.pair_peer_ip4(pair)}/{config.PREFIX4}")
        return br

    def ip(self, *args, check=True):
        return sh("ip", "-n", self.name, *args, check=check)

    def exec_args(self, *args):
        """argv that runs args inside the namespace."""
        return ["ip", "netns", "exec", self.name, *args]

    def add_tap(self, vf=False, bridge="br0"):
        """Create a tap on a bridge; QEMU (run inside the namespace) attaches to it by name.

        vf: the tap backs an emulated NIC that stands in for a VF. A VF is passed through, so
        QEMU never announces it; an emulated NIC it announces like any other, with RARPs after
        a migration, before the guest has a driver bound to it, and the bridge would then send
        the guest's traffic into a port nobody reads. The bridge drops RARPs from such a tap
        (NFR_VF_RARP=pass keeps them); the guest's own frames through it are untouched.
        """
        name = f"nfrtap{next(self._taps)}"
        self.ip("tuntap", "add", "dev", name, "mode", "tap")
        self.ip("link", "set", name, "master", bridge, "up")
        if vf and os.environ.get("NFR_VF_RARP") != "pass":
            self._drop_rarp(name)
        return name

    def _drop_rarp(self, tap):
        if not self._nft:
            self._nft = True
            sh(*self.exec_args("nft", "-f", "-"), input=(
                "table bridge nfr {\n"
                "  set vf_ports { type ifname; }\n"
                "  chain prerouting {\n"
                "    type filter hook prerouting priority filter; policy accept;\n"
                "    iifname @vf_ports ether type 0x8035 drop\n"
                "  }\n"
                "}\n"))
        sh(*self.exec_args("nft", "add", "element", "bridge", "nfr", "vf_ports", f"{{ {tap} }}"))

    def counters(self, dev):
        """(rx_packets, tx_packets) of a device in the namespace."""
        out = sh("ip", "netns", "exec", self.name, "cat",
                 f"/sys/class/net/{dev}/statistics/rx_packets",
                 f"/sys/class/net/{dev}/statistics/tx_packets").stdout.split()
        return int(out[0]), int(out[1])

    def start_vlan_peer(self, vid=config.VLAN_ID, ip=config.PEER_VLAN_IP4):
        """Answer ARP and ping for `ip` on VLAN `vid` behind the bridge.

        The host kernel here has neither 8021q nor bridge VLAN filtering, so a small AF_PACKET
        responder (vlanpeer.py) terminates the VLAN instead of a vlan netdev.
        """
        if self._vlan_peer is None:
            self._vlan_peer = subprocess.Popen(
                self.exec_args(sys.executable, str(Path(__file__).with_name("vlanpeer.py")),
                               "br0", str(vid), ip),
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            line = self._vlan_peer.stdout.readline()
            if "ready" not in line:
                raise RuntimeError(f"vlan peer did not start: {line}{self._vlan_peer.stdout.read()}")

    def start_dhcp(self, workdir, mac=config.FAILOVER_MAC):
        """The peer's network services for a distribution's guest (tests/test_distro.py), by
        dnsmasq on br0: DHCPv4 (with the peer as router), router advertisements for SLAAC, and
        DHCPv6. `mac` always gets the guest's addresses, 12-hour leases: no renewal in a
        test. Its log (log_dhcp) holds every exchange; no DNS."""
        d = Path(workdir)
        self.dhcp_log = d / "dnsmasq.log"
        self._dnsmasq = subprocess.Popen(self.exec_args(
            "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--port=0",
            "--interface=br0", "--bind-interfaces", "--dhcp-authoritative",
            "--dhcp-range=198.18.0.100,198.18.0.199,255.255.255.0,12h",
            f"--dhcp-option=option:router,{config.PEER_IP4}",
            "--dhcp-range=2001:db8::100,2001:db8::1ff,slaac,64,12h", "--enable-ra",
            f"--dhcp-host={mac},{config.GUEST_IP4},[{config.GUEST_IP6}],12h",
            f"--dhcp-leasefile={d}/leases", "--log-dhcp",
            f"--log-facility={self.dhcp_log}", f"--pid-file={d}/dnsmasq.pid"),
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    def dhcp_exchanges(self):
        """The DHCPv4 and DHCPv6 client messages dnsmasq has logged so far: a list of lines
        (DHCPDISCOVER, DHCPREQUEST, DHCPSOLICIT, ...)."""
        if self.dhcp_log is None or not self.dhcp_log.exists():
            return []
        text = self.dhcp_log.read_text(errors="replace")
        return [ln for ln in text.splitlines() if re.search(
            r"DHCP(DISCOVER|REQUEST|INFORM|DECLINE|RELEASE|SOLICIT|RENEW|REBIND|CONFIRM)\b", ln)]

    def close(self):
        if self._dnsmasq is not None:
            self._dnsmasq.terminate()
            try:
                self._dnsmasq.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._dnsmasq.kill()
                self._dnsmasq.wait()
            self._dnsmasq = None
        if self._vlan_peer is not None:
            self._vlan_peer.kill()
            self._vlan_peer.wait()
            self._vlan_peer = None
        sh("ip", "netns", "del", self.name, check=False)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

"""Paths and settings shared by the tests, the bench and the demo (see scripts/env.sh)."""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("NFR_CACHE", "/var/cache/net-failover-rust"))
STAGE = CACHE / "stage"
OUT = Path(os.environ.get("NFR_OUT", CACHE / "out"))

# Addresses of the bench's private network. It exists only inside a network namespace that the
# harness creates; 198.18.0.0/15 is the benchmarking range (RFC 2544), 2001:db8::/32 is the
# documentation range.
PEER_IP4 = "198.18.0.1"
GUEST_IP4 = "198.18.0.2"
PEER_IP6 = "2001:db8::1"
GUEST_IP6 = "2001:db8::2"
VLAN_ID = 100
PEER_VLAN_IP4 = "198.19.100.1"
GUEST_VLAN_IP4 = "198.19.100.2"
PREFIX4 = 24

# The failover pair's MAC, as a hypervisor would give both NICs.
FAILOVER_MAC = "52:54:00:fa:11:01"
# A second pair (the event storm's quiet pair) has its own MAC and its own subnet.
PAIR1_MAC = "52:54:00:fa:11:11"
PAIR1_PEER_IP4 = "198.18.1.1"
PAIR1_GUEST_IP4 = "198.18.1.2"


def pair_mac(pair):
    """The MAC that the hypervisor gives both NICs of failover pair `pair` (0 or 1)."""
    return (FAILOVER_MAC, PAIR1_MAC)[pair]


def pair_peer_ip4(pair):
    """The peer's IPv4 address on failover pair `pair`'s segment."""
    return (PEER_IP4, PAIR1_PEER_IP4)[pair]


def pair_guest_ip4(pair):
    """The guest's IPv4 address on failover pair `pair`'s master."""
    return (GUEST_IP4, PAIR1_GUEST_IP4)[pair]

SMP = int(os.environ.get("NFR_SMP", "2"))
MEM_MB = int(os.environ.get("NFR_MEM", "1024"))


def flavours():
    """Driver flavours to test: $NFR_DRIVERS (comma-separated) or every staged flavour but the
    built-in variants (tests/test_builtin.py boots those)."""
    env = os.environ.get("NFR_DRIVERS")
    if env:
        return [d for d in env.split(",") if d]
    if not STAGE.exists():
        return []
    return sorted(p.name for p in STAGE.iterdir()
                  if (p / "initramfs.cpio.gz").exists() and not p.name.endswith("-builtin"))


def driver_of(flavour):
    """The driver a flavour builds: "c" or "rust" (c-debug is the C driver on a debug kernel)."""
    return flavour.split("-")[0]


def builtin(flavour):
    """Is the driver built into the flavour's kernel (rust-builtin, rust-builtin-debug), with
    virtio_net, rather than a module?"""
    return "builtin" in flavour.split("-")


def stage(flavour):
    """(bzImage, initramfs) of a built flavour."""
    d = STAGE / flavour
    kernel, initrd = d / "bzImage", d / "initramfs.cpio.gz"
    if not kernel.exists() or not initrd.exists():
        raise FileNotFoundError(f"flavour {flavour!r} is not built: run `make build`")
    return kernel, initrd


def staged_module(flavour, name):
    """Path of module `name` (dash or underscore alike) in a flavour's staged modules, or None."""
    want = name.replace("-", "_")
    for ko in (STAGE / flavour / "lib" / "modules").glob("*/kernel/**/*.ko*"):
        if ko.name.split(".ko")[0].replace("-", "_") == want:
            return ko
    return None

"""The Rust driver built into the kernel (flavour rust-builtin, or rust-builtin-debug in `make
check`: NET_FAILOVER=y with virtio_net built in), not as a module: the master still appears at
boot, finds the primary, and fails over without loss."""

import os

import pytest

from nfr import config
from nfr.checks import assert_carried_by_primary, lost, traffic

FLAVOUR = os.environ.get("NFR_BUILTIN", "rust-builtin")


@pytest.fixture
def flavour():
    """The conftest.py `bench` boots the built-in flavour ($NFR_BUILTIN), once, not once per
    driver flavour under test."""
    try:
        config.stage(FLAVOUR)
    except FileNotFoundError:
        pytest.fail(f"flavour {FLAVOUR} is not built: run `make build`")
    return FLAVOUR


def test_builtin_failover(bench):
    net = bench.net
    # Built in: nothing loaded as a module.
    assert "net_failover" not in net.sh("cat /proc/modules")
    assert "virtio_net" not in net.sh("cat /proc/modules")
    assert "drivers/net/net_failover.ko" in net.sh("cat /lib/modules/$(uname -r)/modules.builtin")
    r = net.roles()
    assert r["master"] and r["standby"]["master"] == r["master"]["name"]
    assert r["primary"]["master"] == r["master"]["name"]
    assert "driver: net_failover" in net.sh(f"ethtool -i {r['master']['name']}")
    res, d = traffic(bench, 2)
    assert lost(res) == 0, res
    assert_carried_by_primary(res, d)
    # Unplug and replug lose nothing, as with the module.
    info = bench.unplug()
    assert info["guest_to_peer_lost"] == 0 == info["peer_to_guest_lost"], info
    info = bench.replug()
    assert info["guest_to_peer_lost"] == 0 == info["peer_to_guest_lost"], info
    assert net.kernel_problems() == [], net.kernel_problems()

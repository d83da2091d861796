"""The Rust toolchain end to end: the guest runs the kernel crate's KUnit doctests at boot and
loads the rust_minimal sample."""

import re

import pytest

from nfr.netns import NetNS
from nfr.vm import Guest


@pytest.fixture(scope="module")
def kunit_guest(request):
    # parametrized indirectly through `driver` in each test
    guests = {}

    def get(driver):
        if driver not in guests:
            ns = NetNS()
            g = None
            try:
                g = Guest(ns, driver, name=f"kunit-{driver}", modules="", kunit=True)
                g.connect_agent()
            except Exception:
                if g:
                    g.stop()
                ns.close()
                raise
            guests[driver] = (ns, g)
        return guests[driver][1]

    yield get
    for ns, g in guests.values():
        g.stop()
        ns.close()


def parse_ktap(text):
    """-> (results, totals): results is [(ok, name)] for every KTAP result line."""
    results = []
    for line in text.splitlines():
        m = re.search(r"(?:^|\] )\s*(not ok|ok) \d+ (.+?)(?: # (SKIP).*)?$", line)
        if m:
            results.append((m.group(1) == "ok", m.group(2).strip()))
    return results


@pytest.mark.debug
def test_kunit_doctests(driver, kunit_guest):
    g = kunit_guest(driver)
    out = g.agent.check("dmesg")
    res = parse_ktap(out)
    assert res, "no KTAP output in the guest's kernel log"
    failed = [name for ok, name in res if not ok]
    assert not failed, f"KUnit failures: {failed}"
    assert any(ok and "rust_doctests_kernel" in name for ok, name in res), \
        "the kernel crate's doctests did not run"
    # The project's own KUnit suites (rust/kernel/net/, rust/kernel/notifier.rs).
    for suite in ("rust_net_dev", "rust_net_netdev", "rust_net_notifier", "rust_net_rx_handler",
                  "rust_net_slot", "rust_net_upper", "rust_notifier"):
        assert (True, suite) in res, f"KUnit suite {suite} did not pass: {res}"
    m = re.findall(r"# Totals: pass:(\d+) fail:(\d+)", out)
    assert m and all(int(f) == 0 for _, f in m)
    assert sum(int(p) for p, _ in m) > 100


@pytest.mark.debug
def test_rust_minimal(driver, kunit_guest):
    g = kunit_guest(driver)
    g.agent.check("dmesg -c >/dev/null; modprobe rust_minimal")
    assert "Rust minimal sample (init)" in g.agent.check("dmesg")
    assert "rust_minimal" in g.agent.check("lsmod")
    g.agent.check("rmmod rust_minimal")
    out = g.agent.check("dmesg")
    assert "Rust minimal sample (exit)" in out

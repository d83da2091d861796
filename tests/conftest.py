"""pytest setup: every scenario runs once per driver flavour ($NFR_DRIVERS), on the guest that
the `bench` fixture boots, and every test is checked by the kernel-log scanner
(tests/nfr/klog.py) afterwards. The checks the scenarios share are in tests/nfr/checks.py."""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
# The shared checks assert like the tests do: pytest explains their failures the same way.
pytest.register_assert_rewrite("nfr.checks")

from expect import known_splat  # noqa: E402
from nfr import config  # noqa: E402
from nfr.bench import Bench  # noqa: E402
from nfr.vm import primary_models, scan_guests  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "debug: in the subset that `make check` also runs on the debug kernels: the "
        "unplug, replug, migration, unload and teardown paths, and KUnit "
        "(test_unplug_replug.py, test_migration.py, test_lifecycle.py, test_kunit.py); "
        "`make check-debug` runs every test on them")
    config.addinivalue_line(
        "markers", "storm: the short event storm, run by `make check` on the Rust debug kernel "
        "(tests/test_storm.py); `make storm` runs the full length")
    config.addinivalue_line(
        "markers", "distro: a Debian guest's scenario (tests/test_distro.py), run by "
        "`make check-distro`")
    config.addinivalue_line(
        "markers", "distro_subset: the Debian scenarios that `make check` runs too")


def pytest_generate_tests(metafunc):
    if "driver" in metafunc.fixturenames:
        flavours = config.flavours()
        if not flavours:
            raise pytest.UsageError("no driver flavour is built: run `make build` first")
        metafunc.parametrize("driver", flavours)
    if "primary_model" in metafunc.fixturenames:
        metafunc.parametrize("primary_model", primary_models())


@pytest.fixture
def flavour(driver):
    """The flavour that `bench` boots: the driver flavour under test. tests/test_builtin.py
    overrides it with the built-in flavour, which takes the test out of the `driver`
    parametrization."""
    return driver


@pytest.fixture
def bench(request, flavour):
    """A guest of `flavour` with its failover group up and the guest's address on the master
    (nfr.bench.Bench), stopped after the test. The primary is the test's `primary_model`
    parameter if it has one, e1000e otherwise. A built-in flavour has virtio_net and the failover
    driver built in: only the primary's driver is loaded as a module."""
    callspec = getattr(request.node, "callspec", None)
    model = callspec.params.get("primary_model", "e1000e") if callspec else "e1000e"
    extra = {"modules": "e1000e"} if config.builtin(flavour) else {}
    b = Bench(flavour, primary_model=model, **extra)
    yield b
    b.close()


@pytest.fixture(autouse=True)
def _root():
    if os.geteuid() != 0:
        pytest.fail("the bench needs root (network namespaces, taps)")


@pytest.fixture(autouse=True)
def _kernel_log_clean(request):
    """Fails the test on any splat, leak or hang in the kernel log of a guest it used (set up
    first, so torn down last: after the test's guests were stopped and scanned)."""
    scan_guests()  # what came before the test is not its own
    yield
    report = []
    for guest, lines in scan_guests().items():
        flavour = guest.split("(")[-1].rstrip(")")
        ours = [r for r in lines if not known_splat(flavour, r)]
        if ours:
            report.append(f"guest {guest}: {len(ours)} report(s)\n" + "\n\n".join(ours))
    if report:
        # The first line names the first report, for the short summary at the end of the run.
        first = report[0].split("\n")[1]
        pytest.fail(f"{request.node.nodeid}: kernel log problems, first: {first}\n"
                    + "\n".join(report), pytrace=False)

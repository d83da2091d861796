"""pytest setup: every scenario runs once per driver flavour ($NFR_DRIVERS), and every test is
checked by the kernel-log scanner (tests/nfr/klog.py) afterwards."""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from expect import known_splat  # noqa: E402
from nfr import config  # noqa: E402
from nfr.vm import primary_models, scan_guests  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "debug: in the subset that `make check` also runs on the debug kernels (the "
        "unplug, replug, migration, unload and teardown paths, KUnit and the sample); `make "
        "check-debug` runs every test on them")
    config.addinivalue_line(
        "markers", "storm: the short event storm, run by `make check` on the Rust debug kernel "
        "(tests/test_storm.py); `make storm` runs the full length")


def pytest_generate_tests(metafunc):
    if "driver" in metafunc.fixturenames:
        flavours = config.flavours()
        if not flavours:
            raise pytest.UsageError("no driver flavour is built: run `make build` first")
        metafunc.parametrize("driver", flavours)
    if "primary_model" in metafunc.fixturenames:
        metafunc.parametrize("primary_model", primary_models())


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

"""pytest setup: every scenario runs once per built driver flavour ("c" now, "rust" later)."""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from nfr import config  # noqa: E402
from nfr.vm import primary_models  # noqa: E402


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

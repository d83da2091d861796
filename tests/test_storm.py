"""A short event storm (tests/nfr/storm.py) on the Rust debug kernel, in `make check`: one fixed
seed, and one drawn at each run and printed, so that every run also tries a new sequence. The
full length is `make storm`."""

import json
import os
import time

import pytest

from nfr import config
from nfr.netns import NetNS
from nfr.storm import Storm, report_table
from nfr.stormplan import draw_seed, plan
from nfr.vm import debug

# Two storms of this length keep make check within CI's 90 minutes (tests/README.md).
EVENTS = int(os.environ.get("NFR_STORM_EVENTS", "15"))
FIXED_SEED = 20261202


def storm_flavours():
    """The Rust debug flavours among those under test ($NFR_DRIVERS)."""
    return [f for f in config.flavours() if debug(f) and config.driver_of(f) == "rust"
            and "builtin" not in f]


def pytest_generate_tests(metafunc):
    if "storm_flavour" in metafunc.fixturenames:
        metafunc.parametrize("storm_flavour", storm_flavours() or
                             [pytest.param(None, marks=pytest.mark.skip(
                                 reason="no Rust debug flavour under test"))])


@pytest.mark.storm
@pytest.mark.parametrize("seed", [FIXED_SEED, "drawn"])
def test_short_storm(storm_flavour, seed, request, capsys):
    if seed == "drawn":
        seed = draw_seed()
    request.node.user_properties.append(("storm_seed", seed))
    # Shown whether the test passes or not: a drawn seed must be replayable.
    with capsys.disabled():
        print(f"\nstorm seed {seed} ({EVENTS} events, replay: make storm SEED={seed} "
              f"EVENTS={EVENTS} DRIVERS=rust)")
    ns = NetNS()
    t0 = time.monotonic()
    try:
        rep = Storm(storm_flavour, plan(seed, EVENTS), ns).run()
    finally:
        ns.close()
    rep["seconds"] = round(time.monotonic() - t0, 1)
    print(report_table([rep]))
    # The whole report, with every event's log and duration, as `make storm` writes it.
    out = config.OUT / f"storm-check-{seed}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"events": EVENTS, "seeds": {str(seed): {storm_flavour: rep}}},
                              indent=1))
    assert rep["passed"], (f"storm seed {seed} on {storm_flavour} failed (replay: make storm "
                           f"SEED={seed} EVENTS={EVENTS} DRIVERS=rust): {rep['failures']}")

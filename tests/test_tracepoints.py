"""The driver's tracepoints, net_failover:*, as an operator enables them in tracefs: each
event of an unplug, a replug and a live migration, in order, with its fields.

- net_failover_slave_enslaved, net_failover_slave_released: master, slave, ifindex, role;
- net_failover_active_changed: master, old and new role, the new active slave, the reason
  (enslaved, unregister, unplug_notice, link, admin) and the slave that caused it;
- net_failover_announce: master, the slave it announced through, the rounds.

Each test reduces the trace to one token per event ("changed:primary>standby:unplug_notice",
"announce:standby", ...) and matches the sequence the design gives; the fields that a token
leaves out (the names of the slaves) are checked against the guest's devices.

The C driver has no tracepoints: expect.py states that as its known gap.
"""

import re

from expect import strict

TRACEFS = "/sys/kernel/tracing"
EVENTS = ("net_failover_slave_enslaved", "net_failover_slave_released",
          "net_failover_active_changed", "net_failover_announce")

LINE_RE = re.compile(r"\s(\d+\.\d+): (net_failover_\w+): (.*)$")
FIELD_RE = re.compile(r"(\w+)=(\S*)")


def start(bench, driver):
    """Mount tracefs, clear the buffer and enable the four events; xfail where the driver has
    no such events."""
    sh = f"[ -e {TRACEFS}/trace ] || mount -t tracefs tracefs {TRACEFS}; " \
         f"ls {TRACEFS}/events/net_failover"
    rc, out = bench.net.run(sh)
    strict(driver, "no_tracepoints", rc == 0 and all(e in out.split() for e in EVENTS),
           f"{TRACEFS}/events/net_failover: {out.strip()[:200]}")
    bench.net.sh(f"echo >{TRACEFS}/trace; " +
                 "; ".join(f"echo 1 >{TRACEFS}/events/net_failover/{e}/enable" for e in EVENTS))


def events(bench):
    """The trace since start(), as [(event, {field: value})]; the buffer is cleared."""
    out = bench.net.sh(f"cat {TRACEFS}/trace; echo >{TRACEFS}/trace")
    got = []
    for line in out.splitlines():
        m = LINE_RE.search(line)
        if m:
            got.append((m.group(2).removeprefix("net_failover_"), dict(FIELD_RE.findall(m[3]))))
    return got


def token(event, f):
    if event == "active_changed":
        return f"changed:{f['old']}>{f['new']}:{f['reason']}"
    if event == "announce":
        return f"announce:{f['active']}"
    return f"{event.removeprefix('slave_')}:{f['role']}"


def check(got, pattern, names, master):
    """Match the tokens of `got` against `pattern`, with role names for the slaves' names
    (the roles' devices in `names`), and check each event's names."""
    roles = {v: k for k, v in names.items()}
    tokens = []
    for event, f in got:
        assert f.get("master") == master, (event, f)
        if event == "announce":
            f = {**f, "active": roles.get(f["active"], f["active"])}
        elif event == "active_changed":
            assert f["active"] == names.get(f["new"], ""), (event, f, names)
            assert roles.get(f["cause"]) in ("primary", "standby"), (event, f, names)
        else:
            assert f["slave"] == names[f["role"]], (event, f, names)
        tokens.append(token(event, f))
    seq = " ".join(tokens)
    assert re.fullmatch(pattern, seq), f"events: {seq!r}, want {pattern!r}"
    return tokens


# The unplug: the notice moves the traffic and announces it; the release follows.
UNPLUG = r"changed:primary>standby:unplug_notice announce:standby released:primary"
# The replug: enslaved, then active when usable (at once, or on its link coming up).
REPLUG = r"enslaved:primary changed:standby>primary:(enslaved|link) announce:primary"


def names(bench):
    r = bench.net.roles()
    return r["master"]["name"], {k: r[k]["name"] for k in ("primary", "standby") if r.get(k)}


def test_tracepoints_record_unplug_and_replug(bench, driver):
    """An unplug is the switch to the standby for the unplug notice, its announcement and the
    primary's release; a replug is the primary's enslavement, the switch to it and its
    announcement. Nothing else is traced."""
    master, devs = names(bench)
    start(bench, driver)
    bench.unplug(seconds=2)
    check(events(bench), UNPLUG, devs, master)
    bench.replug(seconds=10)
    master, devs = names(bench)
    check(events(bench), REPLUG, devs, master)


def test_tracepoints_record_a_migration(bench, driver):
    """A live migration is an unplug on the source and a replug on the destination, with
    virtio's post-migration announcement, made through the standby, in between."""
    master, devs = names(bench)
    start(bench, driver)
    info = bench.migrate()
    assert info["states"][-1] == "completed"
    master, after = names(bench)
    got = events(bench)
    # The primary's name on the source, for the events up to its release; the new one's after.
    released = [i for i, (e, _) in enumerate(got) if e == "slave_released"]
    assert len(released) == 1, got
    check(got[:released[0] + 1], UNPLUG, devs, master)
    # On the destination, virtio's announcement goes out through the standby before the
    # primary is active. QEMU asks for it in rounds over about a second, so it may repeat, and
    # a late round goes out through the primary.
    enslaved, switch = REPLUG.split(" ", 1)
    tokens = check(got[released[0] + 1:], rf"(announce:standby )*{enslaved} "
                   rf"(announce:standby )*{switch}( announce:primary)*", after, master)
    assert "announce:standby" in tokens, tokens

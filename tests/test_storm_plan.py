"""The event storm's plan and its checks, on the host: the sequence is a function of the seed
alone, every event kind is reachable, and the invariants catch what they are meant to."""

import hashlib
import json

import pytest

from nfr import config
from nfr.storm import (Snapshot, Storm, counters_diff, counters_of, errno_of, group_state,
                       invariants, master_counters, operstates, path_counters, path_delta,
                       ping_gaps, qmp_refusal, state_diff)
from nfr.stormplan import HOLDS, KIND, KINDS, Event, Plan, draw_seed, plan


def test_same_seed_same_sequence():
    a, b = plan(1234, 500), plan(1234, 500)
    assert a == b
    assert [(e.kind, e.args) for e in a.events] == [(e.kind, e.args) for e in b.events]


def test_plan_is_pinned():
    """A recorded seed (a closing note's, a bug report's) keeps meaning the same events: any
    change to the kinds, their weights or their arguments changes this digest, and must update
    it on purpose."""
    p = plan(20261202, 500)
    digest = hashlib.sha256(json.dumps([(e.kind, e.args) for e in p.events],
                                       sort_keys=True).encode()).hexdigest()
    assert (p.pairs, digest) == (
        2, "20321f9592f3510ad9d9adb527a31e4f18665a62814a38d3d62b626512ccad62")


def test_other_seed_other_sequence():
    assert plan(1, 100).events != plan(2, 100).events


def test_replay_is_a_prefix():
    full = plan(77, 300)
    cut = full.upto(41)
    assert cut.events == full.events[:42] and cut.pairs == full.pairs and cut.seed == 77


def test_every_kind_reachable_and_both_guest_shapes():
    seen, pairs = set(), set()
    for seed in range(1, 21):
        p = plan(seed, 500)
        seen |= {e.kind for e in p.events}
        pairs.add(p.pairs)
    assert seen == {k.name for k in KINDS}
    assert pairs == {1, 2}


def test_arguments_cover_their_choices():
    p = plan(5, 3000)
    args = {k.name: set() for k in KINDS}
    for e in p.events:
        args[e.kind].add(json.dumps(e.args, sort_keys=True))
    assert {json.loads(a)["wait"] for a in args["primary_hotplug"]} == {True, False}
    assert {json.loads(a)["role"] for a in args["link_toggle"]} == {"master", "standby",
                                                                     "primary"}
    assert {json.loads(a)["mtu"] for a in args["mtu_master_invalid"]} >= {0, 67, 65536}
    assert {json.loads(a)["module"] for a in args["module_reload"]} == {
        "e1000e", "virtio_net", "net_failover"}


def test_only_removing_toggles_draw_a_hold():
    p = plan(9, 3000)
    for e in p.events:
        assert ("hold" in e.args) == KIND[e.kind].removes
        assert "hold" not in e.args or e.args["hold"] in HOLDS
    assert {e.args["hold"] for e in p.events if "hold" in e.args} == set(HOLDS)
    assert {k.name for k in KINDS if k.removes} >= {"primary_hotplug", "virtio_bind_toggle",
                                                     "netns_toggle", "link_toggle"}


class _HoldStorm(Storm):
    """A storm without a guest: the toggle records its calls and takes the device away when it
    is there, puts it back when it is not."""

    def __init__(self, events):
        super().__init__("rust", Plan(1, 1, tuple(events)), None, log=lambda *_: None)
        self.away, self.calls = False, []

    def snapshot(self):
        return None

    def quiet_whole(self, snap):
        return None

    def ev_virtio_bind_toggle(self, only_back=False):
        self.calls.append((self.current["index"], only_back))
        if self.away:
            self.away = False
            return True
        if not only_back:
            self.away = self.current["removed"] = True
        return False

    def ev_readers_toggle(self):
        pass

    def settle(self, why):
        self.held, self.away = [], False


def test_a_removal_is_put_back_after_its_hold():
    evs = [Event(0, "virtio_bind_toggle", {"hold": 2}), Event(1, "readers_toggle", {}),
           Event(2, "readers_toggle", {}), Event(3, "readers_toggle", {})]
    st = _HoldStorm(evs)
    for ev in evs:
        st.run_event(ev)
    assert st.calls == [(0, False), (2, True)] and not st.away
    assert st.events[2]["put_back"] == ["virtio_bind_toggle"]


def test_a_removal_undone_by_an_event_or_settle_is_not_undone_again():
    evs = [Event(0, "virtio_bind_toggle", {"hold": 3}), Event(1, "virtio_bind_toggle",
                                                               {"hold": 1}),
           Event(2, "readers_toggle", {}), Event(3, "readers_toggle", {})]
    st = _HoldStorm(evs)
    for ev in evs:
        st.run_event(ev)
    # Event 1 put it back itself, and so ended the hold that would have ended at 3.
    assert st.calls == [(0, False), (1, False)] and not st.away
    # Taken away again at 2 for 10 events: event 0's hold must not cut that short.
    evs = [Event(0, "virtio_bind_toggle", {"hold": 3}), Event(1, "virtio_bind_toggle",
                                                               {"hold": 1}),
           Event(2, "virtio_bind_toggle", {"hold": 10})] + \
        [Event(i, "readers_toggle", {}) for i in range(3, 13)]
    st = _HoldStorm(evs)
    for ev in evs:
        st.run_event(ev)
    assert st.calls == [(0, False), (1, False), (2, False), (12, True)]
    assert [e["index"] for e in st.events if e.get("put_back")] == [12]
    evs = [Event(0, "virtio_bind_toggle", {"hold": 2}), Event(1, "settle", {}),
           Event(2, "readers_toggle", {})]
    st = _HoldStorm(evs)
    st.ev_settle = lambda: st.settle("test")
    for ev in evs:
        st.run_event(ev)
    assert st.calls == [(0, False)]


def test_seed_zero_is_not_a_seed():
    with pytest.raises(ValueError):
        plan(0, 10)
    assert draw_seed() > 0
    assert KIND["migrate"].guest_wide and not KIND["primary_hotplug"].guest_wide


# --- the checks ------------------------------------------------------------------------------

MAC = config.FAILOVER_MAC


def link(name, idx, **kw):
    d = {"ifname": name, "ifindex": idx, "address": MAC, "mtu": 1500, "min_mtu": 68,
         "max_mtu": 9000, "flags": ["UP"],
         "stats64": {"rx": {"packets": 10, "bytes": 1000}, "tx": {"packets": 10, "bytes": 1000}}}
    d.update(kw)
    return d


def snap(links, lowers, ns=None, mc="", fdb=()):
    text = json.dumps(links) + "\n@@NS\n"
    for n, ls in (ns or {}).items():
        text += f"@ns {n}\n{json.dumps(ls)}\n"
    text += "@@LOWER\n" + "".join(f"/sys/class/net/{m}/lower_{lo}\n" for m, lo in lowers)
    text += "@@MC\n" + mc
    text += "@@FDB\n" + json.dumps([{"mac": mac, "ifname": dev, "flags": ["self"],
                                      "state": "permanent"} for dev, mac in fdb]) + "\n"
    text += "@@BUS\n0000:02:00.0 e1000e\nvirtio1 virtio_net\n"
    return Snapshot(text, 1)


def group(**primary):
    links = [link("eth0", 3, parentbus="virtio", parentdev="virtio1"),
             link("eth1", 4, parentbus="virtio", parentdev="virtio1", master="eth0"),
             link("eth2", 5, parentbus="pci", parentdev="0000:02:00.0", master="eth0",
                  **primary)]
    return links


def test_invariants_hold_on_a_sound_group():
    s = snap(group(), [("eth0", "eth1"), ("eth0", "eth2")])
    assert s.name(0, "master") == "eth0" and s.name(0, "standby") == "eth1"
    assert s.name(0, "primary") == "eth2"
    assert invariants(s, {}) == []


def test_invariants_catch_a_broken_group():
    # The master's MTU above a slave's maximum.
    s = snap(group(max_mtu=1400), [("eth0", "eth1"), ("eth0", "eth2")])
    assert any("outside eth2" in b for b in invariants(s, {}))
    # A lower link without the slave's master link, and the reverse.
    s = snap(group(), [("eth0", "eth1")])
    assert any("lowers" in b for b in invariants(s, {}))
    # A slave enslaved from another namespace.
    links = group()[:2]
    other = [link("eth2", 5, parentbus="pci", master="eth0")]
    s = snap(links, [("eth0", "eth1"), ("eth0", "eth2")], ns={"storm": other})
    bad = invariants(s, {})
    assert any("not in its namespace" in b for b in bad)
    assert any("in namespace storm is enslaved" in b for b in bad)
    # A device of another pair (another MAC) under this pair's master.
    links = group()
    links[2]["address"] = config.PAIR1_MAC
    s = snap(links, [("eth0", "eth1"), ("eth0", "eth2")])
    assert any("another pair's device" in b for b in invariants(s, {}))
    # Two masters over one standby.
    links = group() + [link("eth3", 6, parentbus="virtio", parentdev="virtio1")]
    s = snap(links, [("eth0", "eth1"), ("eth0", "eth2")])
    assert any("2 masters" in b for b in invariants(s, {}))


def test_invariants_catch_counters_going_backwards():
    prev = {}
    s = snap(group(), [("eth0", "eth1"), ("eth0", "eth2")])
    assert invariants(s, prev) == []
    links = group()
    links[0]["stats64"]["tx"]["packets"] = 3
    s = snap(links, [("eth0", "eth1"), ("eth0", "eth2")])
    assert any("backwards" in b for b in invariants(s, prev))
    # Read again (for a change still landing), it still fails; once reported, the baseline
    # is reset and the next event compares from there.
    assert any("backwards" in b for b in invariants(s, prev))
    prev.update(master_counters(s))
    assert invariants(s, prev) == []
    # A new master (another ifindex) starts from zero: not a failure.
    links = group()
    links[0].update(ifindex=9)
    links[0]["stats64"]["tx"]["packets"] = 0
    s = snap(links, [("eth0", "eth1"), ("eth0", "eth2")])
    assert invariants(s, prev) == []


def test_refused_operation_state_compare():
    a = group_state(snap(group(), [("eth0", "eth1"), ("eth0", "eth2")],
                         mc="3 eth0 1 0 01005e010203\n"))
    b = group_state(snap(group(), [("eth0", "eth1"), ("eth0", "eth2")]))
    assert any("mc" in d for d in state_diff(a, b))
    c = group_state(snap(group(mtu=1400), [("eth0", "eth1"), ("eth0", "eth2")],
                         mc="3 eth0 1 0 01005e010203\n"))
    assert any("primary: mtu 1500 -> 1400" in d for d in state_diff(a, c))
    # A unicast address (a macvlan's, synced down) gone from a slave's list.
    e = group_state(snap(group(), [("eth0", "eth1"), ("eth0", "eth2")],
                         mc="3 eth0 1 0 01005e010203\n", fdb=[("eth2", "52:54:00:aa:bb:cc")]))
    assert any("primary: uc_mc" in d for d in state_diff(e, a))
    # A device whose carrier changed in between joins groups by itself: lists not compared.
    up = group()
    up[0]["operstate"] = "UP"
    down = group()
    down[0]["operstate"] = "DOWN"
    sa = snap(down, [("eth0", "eth1"), ("eth0", "eth2")], mc="3 eth0 1 0 01005e010203\n")
    sb = snap(up, [("eth0", "eth1"), ("eth0", "eth2")])
    assert Storm._refused_diff(group_state(sa), operstates(sa), counters_of(sa), sb) == []
    assert Storm._refused_diff(group_state(sa), operstates(sb), counters_of(sa), sb) != []
    # The primary gone (a pending unplug landing) is not a change of state.
    d = group_state(snap(group()[:2], [("eth0", "eth1")], mc="3 eth0 1 0 01005e010203\n"))
    assert state_diff(a, d) == []


def test_ping_gaps_and_wrap():
    lines = [f"[{100 + i * 0.01:.6f}] 64 bytes from 198.18.0.2: icmp_seq={i % 65536} ttl=64"
             for i in range(1, 70000) if not 500 <= i < 800]
    lines.append("69999 packets transmitted, 69699 received, 0% packet loss")
    sent, received, gaps = ping_gaps("\n".join(lines))
    assert (sent, received) == (69999, 69699)
    assert len(gaps) == 1 and gaps[0][2] == 300
    assert abs(gaps[0][1] - gaps[0][0] - 3.01) < 1e-6
    # The last two requests unanswered when the ping stopped: numbered 69998 and 69999.
    sent, received, gaps = ping_gaps("\n".join(lines[:-3] + [lines[-1]]))
    assert (sent, received) == (69999, 69697)
    assert gaps[-1][1] is None and gaps[-1][2] == 2


def test_errno_names():
    assert errno_of("RTNETLINK answers: Device or resource busy") == "EBUSY"
    assert errno_of("Error: mtu greater than device maximum.") == "mtu greater than device maximum"
    assert errno_of("RTNETLINK answers: Operation not supported") == "EOPNOTSUPP"
    assert errno_of('Cannot find device "eth2"') == "ENODEV"
    assert errno_of("sh: can't create /sys/bus/pci/drivers/e1000e/bind: nonexistent directory") \
        == "ENOENT"
    assert errno_of('Error: Device "eth2" is busy') == 'Device "…" is busy'


def test_qmp_refusals_are_keyed_by_kind_not_by_id():
    assert qmp_refusal("Device 'nfr-primary' not found") == \
        qmp_refusal("Device 'nfr-primary1' not found") == "qemu: Device '…' not found"
    assert qmp_refusal("Duplicate device ID 'nfr-primary'\nmore") == \
        "qemu: Duplicate device ID '…'"


def test_refused_operation_must_not_reset_counters():
    before = counters_of(snap(group(), [("eth0", "eth1"), ("eth0", "eth2")]))
    links = group()
    links[1]["stats64"]["tx"]["packets"] = 2
    assert counters_diff(before, snap(links, [("eth0", "eth1"), ("eth0", "eth2")])) == \
        ["pair 0 standby: counters (10, 10) -> (10, 2)"]
    links = group()
    links[2]["stats64"]["rx"]["packets"] = 50
    assert counters_diff(before, snap(links, [("eth0", "eth1"), ("eth0", "eth2")])) == []


def _judged_storm(kinds, starts):
    """A Storm with only what the quiet-pair judgement reads: events of `kinds` started at
    host times `starts`."""
    st = Storm.__new__(Storm)
    st.plan = Plan(1, 2, [Event(i, k, {}) for i, k in enumerate(kinds) if k != "end"])
    st.events = [{"index": i, "kind": k, "args": {}, "t": t, "quiet_whole": True}
                 for i, (k, t) in enumerate(zip(kinds, starts))]
    st.t_events = list(starts)
    return st


def test_quiet_pair_gap_judged_by_the_event_it_began_in():
    st = _judged_storm(["module_reload", "vlan_toggle", "mtu_master", "migrate", "end"],
                       [0.0, 10.0, 20.0, 30.0, 40.0])
    # In a guest-wide event, or just after one ended: the whole guest's.
    assert st._quiet_excused(0, 5.0)
    assert st._quiet_excused(1, 11.0)
    # Later into the next event, or in a later one: the event's own, even if the gap lasts
    # into a guest-wide event or to the end.
    assert not st._quiet_excused(1, 13.0)
    assert not st._quiet_excused(2, 20.5)
    assert st._quiet_excused(3, 31.0)
    # Concurrent readers load the guest but stop nothing: not excused.
    st = _judged_storm(["readers_toggle", "vlan_toggle"], [0.0, 10.0])
    assert not st._quiet_excused(0, 1.0) and not st._quiet_excused(1, 10.5)


def test_mtu_events_always_change_the_mtu():
    from nfr.storm import changed_mtu
    from nfr.stormplan import SLAVE_MTUS, VALID_MTUS
    assert changed_mtu(1500, 9000, VALID_MTUS) == 9000
    assert changed_mtu(1500, 1500, VALID_MTUS) == 2000
    assert changed_mtu(9000, 9000, VALID_MTUS) == 1280
    assert changed_mtu(4000, 4000, SLAVE_MTUS) == 1280
    for cur in set(VALID_MTUS):
        assert all(changed_mtu(cur, m, VALID_MTUS) != cur for m in VALID_MTUS)


def test_known_gaps_of_invariants():
    from nfr.storm import invariant_gap
    assert invariant_gap("pair 0: eth2 in namespace stormns is enslaved (eth0)") == \
        "netns_enslave"
    assert invariant_gap("pair 0: master eth0 holds eth2, which is not in its namespace") == \
        "netns_enslave"
    assert invariant_gap("pair 0: master eth0 counters went backwards: (1,) -> (0,)") is None


def test_quiet_pair_just_configured_is_not_judged():
    st = _judged_storm(["module_reload", "vlan_toggle"], [0.0, 10.0])
    st.configured_at = {1: 0}       # its new master got its address after event 0
    st.current = st.events[1]
    assert st.quiet_whole(None) is False


class _FakeQmp:
    def __init__(self, events, present):
        self.events, self.present = list(events), present

    def pull_event(self, wait=False):
        return self.events.pop(0) if self.events else None

    def cmd(self, name, **args):
        assert name == "qom-list"
        return [{"name": "primary0"}] if self.present else []


class _FakeGuest:
    def __init__(self, qmp):
        self.qmp = qmp


def test_a_landed_unplug_that_qemu_plugged_back_is_not_waited_for():
    # device_del'ed, then virtio_net negotiated STANDBY again: QEMU plugged the primary back.
    st = Storm.__new__(Storm)
    st.guest = _FakeGuest(_FakeQmp([{"event": "DEVICE_DELETED",
                                     "data": {"device": "primary0"}}], present=True))
    st.unplug_pending = {0}
    assert st._wait_deleted() is False and st.unplug_pending == set()
    # Still pending and gone: waited for, and gone.
    st.guest = _FakeGuest(_FakeQmp([], present=False))
    st.unplug_pending = {0}
    assert st._wait_deleted() is True and st.unplug_pending == set()


def test_vlan_peer_answers_arp_with_a_whole_arp_body():
    import socket
    import struct
    from nfr.vlanpeer import answer
    mine, theirs = bytes.fromhex("02004e465200"), bytes.fromhex("525400fa1101")
    ip, sender = socket.inet_aton("198.19.100.1"), socket.inet_aton("198.19.100.2")
    tag = struct.pack("!HH", 0x8100, 100)
    request = (struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + theirs + sender +
               b"\0" * 6 + ip)
    frame = answer(0x0806, request, theirs, mine, ip, tag)
    assert frame[:6] == theirs and frame[12:16] == tag
    arp = frame[18:]
    # 28 bytes: the guest drops a shorter one, and a virtio NIC does not pad it.
    assert len(arp) == 28
    assert struct.unpack("!H", arp[6:8])[0] == 2
    assert arp[8:14] == mine and arp[14:18] == ip
    assert arp[18:24] == theirs and arp[24:28] == sender
    assert answer(0x0806, request[:-4] + socket.inet_aton("198.19.100.9"), theirs, mine, ip,
                  tag) is None


def test_path_counters_say_where_a_quiet_gap_went():
    links = group()
    links[2]["stats64"] = {"rx": {"packets": 50, "dropped": 1, "missed": 2},
                           "tx": {"packets": 40, "dropped": 0}}
    text = (json.dumps(links) + "\n@@NS\n@@LOWER\n@@MC\n@@FDB\n[]\n@@BUS\n@@SNMP\n"
            "Ip: Forwarding InDiscards OutDiscards OutNoRoutes\nIp: 2 3 4 0\n"
            "Icmp: InMsgs InEchos OutEchoReps\nIcmp: 9 7 6\n"
            "@@SOFTNET\n00000010 00000002 00000000\n00000010 0000000a 00000000\n")
    a = path_counters(Snapshot(text, 1), {"host nfrtap3": [1, 0, 5, 0]}, 0)
    assert a["primary eth2"] == [50, 1, 2, 40, 0]
    assert a["IcmpInEchos"] == 7 and a["IcmpOutEchoReps"] == 6 and a["IpOutDiscards"] == 4
    assert a["softnet dropped"] == 12
    b = dict(a, **{"IcmpInEchos": 17, "primary eth2": [60, 1, 9, 50, 0]})
    b["host nfrtap3"] = [1, 0, 15, 3]
    del b["IpInDiscards"]
    d = path_delta(a, b)
    assert d["IcmpInEchos"] == 10 and d["primary eth2"] == [10, 0, 7, 10, 0]
    assert d["host nfrtap3"] == [0, 0, 10, 3] and "IpInDiscards" not in d


class _CountingAgent:
    def __init__(self):
        self.cmds = []

    def run(self, cmd, timeout=60):
        self.cmds.append(cmd)
        return 0, (json.dumps(group()) + "\n@@BUS\n") if "@@NS" in cmd else ""


def test_an_operation_reads_the_state_before_it_unless_nothing_ran_since():
    st = Storm.__new__(Storm)
    st.plan = Plan(1, 1, ())
    st.guest = _FakeGuest(None)
    st.guest.agent = _CountingAgent()
    st.current, st.virtio_dev, st.actions, st.snap_actions, st.snap = {}, {}, 0, -1, None
    reads = lambda: sum("@@NS" in c for c in st.guest.agent.cmds)  # noqa: E731
    st.snapshot()
    st.op("ip link set eth0 up")
    assert reads() == 1          # the check's snapshot, as it was
    st.op("ip link set eth0 down")
    assert reads() == 2          # the first operation ran since: read again
    st.snapshot()
    st.op("ip link set eth0 mtu 1", expect_refused=True)
    assert reads() == 4          # a refusal is expected: read just before it
    st.snapshot()
    st.guest.qmp = type("Q", (), {"cmd": lambda self, *a, **k: None})()
    st._qmp("set_link", name="standby0", up=False)
    st.op("ip link set eth0 up")
    assert reads() == 6          # QEMU acted since


def test_a_primary_qemu_deleted_after_a_cancel_is_plugged_back_once():
    # QEMU re-plugged it on the cancel, then the guest's eject finished: QEMU deleted it.
    st = Storm.__new__(Storm)
    st.guest = _FakeGuest(_FakeQmp([], present=False))
    st.current = {}
    added = []

    def add(pair=0):
        added.append(pair)
        st.guest.qmp.present = True
        return True
    st._add_primary = add
    st._replug_dropped({0})
    st._replug_dropped({0})
    assert added == [0] and st.current["qemu_dropped"] == [0]
    # Still in QEMU (plugged back by QEMU itself): nothing to do.
    st.current = {}
    st._replug_dropped({0})
    assert added == [0] and st.current["qemu_dropped"] == []

"""The event storm's catalogue and its seeded plan: which events run, in which order, with which
arguments. Pure logic, no guest: tests/test_storm_plan.py checks it on the host.

A plan is a function of the seed alone (Python's `random.Random`, MT19937, whose sequence for
an integer seed is stable across Python versions): the same seed gives the same events in the
same order with the same arguments. What an event does is decided when it runs, from the state
it finds: most events are toggles ("the primary's PCI device: unbind it if it is bound, else
bind it"), so that a sequence keeps moving between states instead of repeating a refusal.

A toggle that takes a device or a link away (a `removes` kind) also draws how long that lasts:
`hold` events later the storm puts it back, unless an event did so first. Without it, a device
taken away by a rare kind stayed away for dozens of events, which then found nothing to act on.
"""

import random
import secrets
from dataclasses import dataclass, field

# Share of seeds whose guest has a second failover pair, the quiet pair: it gets no event of its
# own, only the guest-wide ones, and must lose nothing while the other pair's events run.
TWO_PAIRS_SHARE = 0.35

# Roles of a failover group's devices.
SLAVES = ("standby", "primary")
ROLES = ("master",) + SLAVES

# MTUs the master must take (when its slaves can), and ones it must refuse: below the minimum
# (68), 0, and huge ones. "primary_max+1" and "standby_max+1" are resolved when the event runs,
# from the slave's max_mtu; the first is refused only while a primary is enslaved.
VALID_MTUS = (1280, 1400, 1500, 1500, 2000, 4000, 9000)
INVALID_MTUS = (0, 67, "primary_max+1", "standby_max+1", 65536, 2**31 - 1)
SLAVE_MTUS = (1280, 1500, 4000)
VLAN_IDS = (100, 200, 4094)
MCAST_GROUPS = ("01:00:5e:01:02:03", "33:33:00:00:12:34")
IP6_ADDRS = ("2001:db8:5::10", "2001:db8:5::11")
OFFLOADS = ("tso", "gso", "sg", "rx-vlan-filter")
# The two halves of an overlap event (storm.py's ev_overlap says what each does).
OVERLAP_HOST = ("unplug", "link_standby", "link_primary", "migrate")
OVERLAP_GUEST = ("rename_primary", "mtu_master", "virtio_reload", "flap_primary", "flap_standby",
                 "rebind_primary", "primary_driver_reload")


# How many events a `removes` toggle's effect lasts at most: a device is back soon in most
# sequences, and now and then stays away for a while, through other events.
HOLDS = (1, 1, 2, 2, 3, 4, 6, 10)


@dataclass(frozen=True)
class Kind:
    """An event kind: its weight in the draw, whether it acts on one pair (the storm's pair 0)
    or on the whole guest, how its arguments are drawn, and whether one side of it takes a
    device or a link away (then the plan also draws its `hold`)."""
    name: str
    weight: int
    group: str
    args: object = field(default=lambda rng: {}, repr=False)
    guest_wide: bool = False
    removes: bool = False


def _pick(seq):
    return lambda rng: seq[rng.randrange(len(seq))]


KINDS = (
    # Host side, over QMP.
    Kind("primary_hotplug", 10, "host",
         lambda rng: {"wait": rng.random() < 0.5},             # device_del (waited or not) / add
         removes=True),
    Kind("primary_bounce", 4, "host"),                         # add+del or del+add back to back
    Kind("set_link", 6, "host",
         lambda rng: {"nic": _pick(SLAVES)(rng)}, removes=True),  # toggles a NIC's link
    Kind("migrate", 2, "host", guest_wide=True),
    Kind("migrate_cancel", 2, "host",
         lambda rng: {"after_ms": rng.choice((0, 200, 1000))}, guest_wide=True),
    # Guest links.
    Kind("link_toggle", 8, "link", lambda rng: {"role": _pick(ROLES)(rng)}, removes=True),
    # MTU.
    Kind("mtu_master", 5, "mtu", lambda rng: {"mtu": _pick(VALID_MTUS)(rng)}),
    Kind("mtu_master_invalid", 4, "mtu", lambda rng: {"mtu": _pick(INVALID_MTUS)(rng)}),
    Kind("mtu_slave", 3, "mtu",
         lambda rng: {"role": _pick(SLAVES)(rng), "mtu": _pick(SLAVE_MTUS)(rng)}),
    # VLANs on the master; VLAN 100 has a peer behind the bridge, so it can carry traffic.
    Kind("vlan_toggle", 4, "vlan",
         lambda rng: {"vid": _pick(VLAN_IDS)(rng), "traffic": rng.random() < 0.5}),
    # Address lists.
    Kind("mcast_toggle", 3, "addr", lambda rng: {"group": _pick(MCAST_GROUPS)(rng)}),
    Kind("macvlan_toggle", 3, "addr"),
    Kind("promisc_toggle", 3, "addr"),
    Kind("allmulti_toggle", 2, "addr"),
    Kind("ip6_toggle", 3, "addr", lambda rng: {"addr": _pick(IP6_ADDRS)(rng)}),
    # Renames, while up or while down (then brought up again: the open path).
    Kind("rename", 4, "rename",
         lambda rng: {"role": _pick(SLAVES)(rng), "down": rng.random() < 0.5}),
    # Rebinds.
    Kind("primary_bind_toggle", 4, "rebind", removes=True),    # sysfs unbind / bind
    Kind("pci_remove_rescan", 3, "rebind",
         lambda rng: {"rescan_now": rng.random() < 0.5}, removes=True),
    Kind("virtio_bind_toggle", 3, "rebind", removes=True),     # destroys / recreates the master
    # Modules.
    Kind("module_reload", 3, "module",
         lambda rng: {"module": _pick(("e1000e", "virtio_net", "net_failover"))(rng)},
         guest_wide=True),
    Kind("module_order", 2, "module", guest_wide=True),        # primary's driver first
    # Offloads.
    Kind("offload_toggle", 4, "offload",
         lambda rng: {"role": _pick(ROLES)(rng), "feature": _pick(OFFLOADS)(rng)}),
    # Namespaces.
    Kind("netns_toggle", 3, "netns", removes=True),            # the primary there and back
    Kind("netns_delete", 2, "netns"),                          # deleted while it holds it
    # Refused attempts: must fail cleanly and change nothing.
    # Through rtnetlink (`ip link set master`, which asks the current master to let go), and
    # straight to the bridge and bond code (the bridge ioctl of brctl, bonding's sysfs).
    Kind("refuse_bridge", 2, "refused",
         lambda rng: {"role": _pick(SLAVES)(rng), "path": _pick(("rtnl", "ioctl"))(rng)}),
    Kind("refuse_bond", 2, "refused",
         lambda rng: {"role": _pick(SLAVES)(rng), "path": _pick(("rtnl", "sysfs"))(rng)}),
    Kind("refuse_mac", 2, "refused"),
    # Overlapping events: a guest operation (in the background) and a host one, started
    # `delay_ms` apart: the VF unplugged while it is renamed, a migration during a link flap,
    # the MTU changed while virtio_net reloads.
    Kind("overlap", 5, "overlap",
         lambda rng: {"host": _pick(OVERLAP_HOST)(rng), "guest": _pick(OVERLAP_GUEST)(rng),
                      "delay_ms": _pick((0, 50, 300))(rng)}),
    # Concurrent readers (ip -s link, ethtool -S, ethtool, sysfs) while events run.
    Kind("readers_toggle", 2, "readers"),
    # Restore everything, then traffic must flow through the primary within the bound.
    Kind("settle", 3, "settle", guest_wide=True),
)
KIND = {k.name: k for k in KINDS}


@dataclass(frozen=True)
class Event:
    index: int
    kind: str
    args: dict

    def __str__(self):
        a = " ".join(f"{k}={v}" for k, v in sorted(self.args.items()))
        return f"#{self.index} {self.kind}{' ' + a if a else ''}"


@dataclass(frozen=True)
class Plan:
    seed: int
    pairs: int
    events: tuple

    def upto(self, last):
        """The plan cut after event `last` (REPLAY=): the same prefix of the same sequence."""
        return Plan(self.seed, self.pairs, self.events[:last + 1])


def draw_seed():
    """A seed for SEED=0: random, never 0, printed by the caller so that it can be replayed."""
    return secrets.randbelow(2**31 - 1) + 1


def plan(seed, events):
    """The seeded sequence of `events` events (see the module's docstring)."""
    if seed <= 0:
        raise ValueError("seed must be positive (0 means: draw one with draw_seed())")
    rng = random.Random(seed)
    pairs = 2 if rng.random() < TWO_PAIRS_SHARE else 1
    names = [k.name for k in KINDS]
    weights = [k.weight for k in KINDS]
    out = []
    for i in range(events):
        name = rng.choices(names, weights)[0]
        args = dict(KIND[name].args(rng))
        if KIND[name].removes:
            args["hold"] = _pick(HOLDS)(rng)
        out.append(Event(i, name, args))
    return Plan(seed, pairs, tuple(out))

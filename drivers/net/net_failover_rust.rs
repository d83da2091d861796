// SPDX-License-Identifier: GPL-2.0

//! Failover master for paravirtual network devices.
//!
//! A drop-in for `drivers/net/net_failover.c` and `net/core/failover.c`. A paravirtual driver
//! (virtio_net with `VIRTIO_NET_F_STANDBY`) calls `net_failover_create()` for its device. The
//! master netdev made here enslaves that device as the *standby*, and a PCI device (a VF) with
//! the same permanent address, in the same network namespace, as the *primary*. It transmits
//! through the primary whenever the primary is usable (running, with carrier), else through the
//! standby, and takes the frames of both. Userspace only ever configures the master.

use core::{
    cell::Ref,
    ptr, //
};
use kernel::{
    alloc::kvec::PushError,
    net::{
        dev::{
            self,
            Device,
            DeviceRef,
            OpsLocked, //
        },
        ethtool,
        failover::{
            trace::{
                self,
                Reason, //
            },
            NetFailover,
        },
        netdev::{
            features,
            Config,
            Driver,
            Ethtool,
            NetDev,
            Registration,
            RxFlags,
            Stats64,
            TxResult, //
        },
        notifier::{
            self,
            Event,
            Notify, //
        },
        rtnl::{
            Rtnl,
            RtnlCell,
            RtnlGuard, //
        },
        rx_handler::{
            self,
            RxAction, //
        },
        skbuff::{
            DropReason,
            SkBuff,
            SkBuffRef, //
        },
        slot::DeviceSlot, //
    },
    netdev_err,
    netdev_info,
    new_spinlock,
    pci,
    prelude::*,
    sync::{
        aref::ARef,
        atomic::{
            Atomic,
            Relaxed, //
        },
        rcu::{
            self,
            CoreRcu, //
        },
        Arc,
        SpinLock, //
    }, //
};

module! {
    type: FailoverModule,
    name: "net_failover",
    authors: ["The net_failover_rust authors"],
    description: "Failover driver for Paravirtual drivers",
    license: "GPL v2",
    params: {
        num_grat_arp: u32 {
            default: 1,
            description: "Gratuitous ARPs and unsolicited NAs sent when the active slave changes",
        },
    },
}

kernel::net_failover_export!(Failover);

/// Offloads a VLAN on the master may use, when the slaves have them (`FAILOVER_VLAN_FEATURES`).
const VLAN_FEATURES: u64 = features::HW_CSUM
    | features::SG
    | features::FRAGLIST
    | features::ALL_TSO
    | features::HIGHDMA
    | features::LRO;

/// Offloads for encapsulated traffic, when the slaves have them (`FAILOVER_ENC_FEATURES`).
const ENC_FEATURES: u64 = features::HW_CSUM | features::SG | features::RXCSUM | features::ALL_TSO;

/// The Ethernet header length (`ETH_HLEN`).
const ETH_HLEN: u16 = 14;

/// The master's transmit queues: at least two, and enough for the VFs met in practice.
const TX_QUEUES: u32 = 16;

/// The two slave roles.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The passthrough device (VF), preferred whenever usable.
    Primary = 0,
    /// The paravirtual device, used while the primary is not.
    Standby = 1,
}

impl Role {
    /// Both roles, in the order the data path prefers them.
    const ALL: [Role; 2] = [Role::Primary, Role::Standby];

    fn name(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Standby => "standby",
        }
    }

    /// The role as the tracepoints record it.
    fn traced(self) -> trace::Role {
        match self {
            Role::Primary => trace::Role::Primary,
            Role::Standby => trace::Role::Standby,
        }
    }
}

/// A [`Reason`] with the slave it is about, as the log line says it.
struct Why<'a, 'b> {
    reason: Reason,
    dev: &'a Device,
    rtnl: &'a Rtnl<'b>,
}

impl kernel::fmt::Display for Why<'_, '_> {
    fn fmt(&self, f: &mut kernel::fmt::Formatter<'_>) -> kernel::fmt::Result {
        kernel::fmt::Display::fmt(self.dev.name(self.rtnl), f)?;
        let up = |yes| if yes { "up" } else { "down" };
        match self.reason {
            Reason::Enslaved => f.write_str(" registered"),
            Reason::Unregister => f.write_str(" unregistered"),
            Reason::UnplugNotice => f.write_str(" leaving"),
            Reason::Link => write!(f, " link {}", up(self.dev.carrier_ok())),
            Reason::Admin => write!(f, " set {}", up(self.dev.is_up())),
        }
    }
}

/// The master's own events, for `ethtool -S`. Most are counted on the control path; the two
/// counted on the data path are exceptional cases, off the path that every frame takes, so an
/// atomic add there costs the common case nothing.
struct Events {
    /// The primary became the active slave.
    to_primary: Atomic<u64>,
    /// The standby became the active slave.
    to_standby: Atomic<u64>,
    /// Notices that the primary is leaving (its driver is being unbound).
    primary_leaving: Atomic<u64>,
    /// Peer announcements: each is a gratuitous ARP and an unsolicited NA per address.
    announcements: Atomic<u64>,
    /// Frames sent to the master while no slave was usable, and dropped.
    tx_no_slave: Atomic<u64>,
    /// Unicast frames for us that arrived on the standby while the primary was active: the
    /// peer had not yet learnt of the switch. Delivered (the C driver drops them).
    standby_rx_while_primary: Atomic<u64>,
    /// Frames from the master's own address that came back in through a slave: sent through
    /// one slave, they reach the other, on the same L2. Not delivered to the master.
    rx_looped_back: Atomic<u64>,
}

impl Events {
    fn new() -> Self {
        Self {
            to_primary: Atomic::new(0),
            to_standby: Atomic::new(0),
            primary_leaving: Atomic::new(0),
            announcements: Atomic::new(0),
            tx_no_slave: Atomic::new(0),
            standby_rx_while_primary: Atomic::new(0),
            rx_looped_back: Atomic::new(0),
        }
    }

    fn count(counter: &Atomic<u64>) {
        counter.add(1u64, Relaxed);
    }
}

/// The names of the master's `ethtool -S` statistics: per slave role (primary first, as
/// [`Role::ALL`]), then the master's [`Events`]. The order is [`Ethtool::get_ethtool_stats`]'s.
const STAT_NAMES: [&CStr; 19] = [
    c"primary_rx_packets",
    c"primary_rx_bytes",
    c"primary_tx_packets",
    c"primary_tx_bytes",
    c"primary_rx_dropped",
    c"primary_tx_dropped",
    c"standby_rx_packets",
    c"standby_rx_bytes",
    c"standby_tx_packets",
    c"standby_tx_bytes",
    c"standby_rx_dropped",
    c"standby_tx_dropped",
    c"switches_to_primary",
    c"switches_to_standby",
    c"primary_leaving",
    c"peer_announcements",
    c"tx_no_slave_dropped",
    c"standby_rx_while_primary",
    c"rx_looped_back",
];

/// Whether `dev` can transmit: running, with carrier, and its qdiscs attached. The link watch
/// attaches them a moment after the carrier comes up; until then the noop qdisc drops what
/// is sent (the C driver looks at the carrier alone, and loses those packets).
fn usable(dev: &Device) -> bool {
    dev.is_running() && dev.carrier_ok() && !dev.tx_is_noop()
}

/// The slaves, read by the data path under RCU and written under the RTNL.
struct Slaves {
    slots: [DeviceSlot; 2],
    /// The primary's driver is being unbound (hot-unplug): it is not used any more, though it
    /// still works until its driver's remove closes it.
    primary_leaving: Atomic<bool>,
}

impl Slaves {
    fn slot(&self, role: Role) -> &DeviceSlot {
        &self.slots[role as usize]
    }

    /// Whether `dev`, in `role`, carries the traffic if it can.
    fn eligible(&self, role: Role, dev: &Device) -> bool {
        usable(dev) && (role == Role::Standby || !self.primary_leaving.load(Relaxed))
    }

    /// The slave to transmit through, if any: the primary if usable and staying, else the
    /// standby if usable.
    fn active<'a>(&self, rcu: &'a CoreRcu) -> Option<&'a Device> {
        Role::ALL
            .into_iter()
            .find_map(|r| self.slot(r).get(rcu).filter(|d| self.eligible(r, d)))
    }

    /// The slaves present and their roles, primary first, each read when reached; control path.
    fn present<'a>(
        &'a self,
        rtnl: &'a Rtnl<'a>,
    ) -> impl Iterator<Item = (Role, ARef<Device>)> + 'a {
        Role::ALL
            .into_iter()
            .filter_map(move |r| Some((r, self.slot(r).get_rtnl(rtnl)?)))
    }

    /// [`Slaves::active`], for the control path, with its role.
    fn active_rtnl(&self, rtnl: &Rtnl<'_>) -> Option<(Role, ARef<Device>)> {
        self.present(rtnl).find(|(r, dev)| self.eligible(*r, dev))
    }

    /// The role `dev` has, if it is one of the slaves.
    fn role_of(&self, rtnl: &Rtnl<'_>, dev: &Device) -> Option<Role> {
        let found = self.present(rtnl).find(|(_, d)| ptr::eq(&**d, dev));
        found.map(|(role, _)| role)
    }

    /// Applies `change` to each slave, primary first. If it fails on one, `undo` is applied to
    /// those it was applied to, and the error is returned: the slaves are left as they were,
    /// as bonding unwinds a change to its slaves.
    fn apply(
        &self,
        rtnl: &Rtnl<'_>,
        mut change: impl FnMut(&Device) -> Result,
        mut undo: impl FnMut(&Device),
    ) -> Result {
        let mut done: [Option<ARef<Device>>; 2] = [None, None];
        for (role, dev) in self.present(rtnl) {
            if let Err(e) = change(&dev) {
                done.iter().rev().flatten().for_each(|d| undo(d));
                return Err(e);
            }
            done[role as usize] = Some(dev);
        }
        Ok(())
    }
}

/// Counters that outlive the slaves: the totals per role (the master's are their sum), and
/// each slave's values when they were last folded into the totals.
#[derive(Default)]
struct MasterStats {
    roles: [Stats64; 2],
    seen: [Stats64; 2],
}

/// Adds to `total` what each counter grew by from `old` to `new`. Counters that went back
/// (some drivers reset them on down/up) add nothing; 32-bit counters wrap as 32-bit.
fn fold(total: &mut Stats64, new: &Stats64, old: &Stats64) {
    let it = total
        .values_mut()
        .iter_mut()
        .zip(new.values())
        .zip(old.values());
    for ((res, &nv), &ov) in it {
        let delta = if (nv | ov) >> 32 == 0 {
            i64::from((nv as u32).wrapping_sub(ov as u32) as i32)
        } else {
            nv.wrapping_sub(ov) as i64
        };
        if delta > 0 {
            *res += delta as u64;
        }
    }
}

/// The master's private data.
#[pin_data]
struct Master {
    slaves: Arc<Slaves>,
    #[pin]
    stats: SpinLock<MasterStats>,
    /// The slaves' receive handlers; dropping one releases the slave's frames.
    rx: RtnlCell<[Option<rx_handler::Registration<SlaveRx>>; 2]>,
    /// The active slave that peers were last told about.
    announced: RtnlCell<Option<Role>>,
    events: Arc<Events>,
}

impl Master {
    /// Folds each slave's counters into the totals, and returns `read` of them.
    fn fold_stats<R>(&self, read: impl FnOnce(&MasterStats) -> R) -> R {
        let mut guard = self.stats.lock();
        let f = &mut *guard;
        let rcu = rcu::read_lock();
        for role in Role::ALL {
            if let Some(dev) = self.slaves.slot(role).get(&rcu) {
                let r = role as usize;
                let new = dev.stats();
                fold(&mut f.roles[r], &new, &f.seen[r]);
                f.seen[r] = new;
            }
        }
        read(f)
    }

    /// Unregisters the handler of the slave in `role`, if any; EBUSY while they are borrowed.
    fn unregister_rx(&self, rtnl: &Rtnl<'_>, role: Role) -> Result {
        let rx = self.rx.borrow_mut(rtnl)?[role as usize].take();
        if let Some(rx) = rx {
            rx.unregister(rtnl);
        }
        Ok(())
    }
}

#[vtable]
impl Driver for Master {
    fn open(dev: &NetDev<Self>, rtnl: &Rtnl<'_>) -> Result {
        let slaves = &dev.data().slaves;
        slaves
            .apply(rtnl, |s| s.open(rtnl), |s| s.close(rtnl))
            .inspect_err(|_| dev.tx_disable())?;
        // Running but not yet up: the slaves' NETDEV_UP followed them, with no one to announce to.
        let active = slaves.active_rtnl(rtnl).map(|(role, _)| role);
        if active.is_some() {
            dev.carrier_on();
        }
        // Open whether or not a slave is usable: see `follow_slaves`.
        dev.tx_wake_all_queues();
        // Never borrowed across a call: the borrow cannot fail, and if it could, a stale
        // value only costs one announcement.
        if let Ok(mut announced) = dev.data().announced.borrow_mut(rtnl) {
            *announced = active;
        }
        Ok(())
    }

    fn stop(dev: &NetDev<Self>, rtnl: &Rtnl<'_>) -> Result {
        dev.tx_disable();
        for (_, s) in dev.data().slaves.present(rtnl) {
            s.close(rtnl);
        }
        Ok(())
    }

    fn start_xmit(dev: &NetDev<Self>, rcu: &CoreRcu, skb: SkBuff) -> TxResult {
        match dev.data().slaves.active(rcu) {
            Some(slave) => {
                skb.restore_lower_queue_mapping();
                // On error the slave dropped and counted the packet.
                let _ = skb.transmit(slave);
            }
            None => {
                dev.count_tx_dropped();
                Events::count(&dev.data().events.tx_no_slave);
                skb.drop_reason(DropReason::DevReady);
            }
        }
        TxResult::Ok
    }

    fn select_queue(dev: &NetDev<Self>, skb: &SkBuffRef) -> u16 {
        let rcu = rcu::read_lock();
        let txq = match dev.data().slaves.slot(Role::Primary).get(&rcu) {
            Some(primary) => skb.pick_tx_queue(primary),
            None => skb.rx_queue().unwrap_or(0),
        };
        // The slave sees the queue the stack mapped the packet to; see `start_xmit`.
        skb.save_lower_queue_mapping();
        match u16::try_from(dev.real_num_tx_queues()) {
            Ok(n) if n > 0 => txq % n,
            _ => 0,
        }
    }

    fn features_check(_dev: &NetDev<Self>, _skb: &SkBuffRef, features: u64) -> u64 {
        // The slave checks the packet again when it transmits it.
        features
    }

    fn get_stats64(dev: &NetDev<Self>, stats: &mut Stats64) {
        dev.data().fold_stats(|f| {
            let [p, s] = &f.roles;
            let sums = p.values().iter().zip(s.values());
            for (out, (a, b)) in stats.values_mut().iter_mut().zip(sums) {
                *out = a.wrapping_add(*b);
            }
        });
    }

    fn change_mtu(dev: &NetDev<Self>, rtnl: &Rtnl<'_>, new_mtu: u32) -> Result {
        dev.data().slaves.apply(
            rtnl,
            |s| s.set_mtu(rtnl, new_mtu),
            |s| {
                // Back to the MTU it had: one it accepted just now.
                let _ = s.set_mtu(rtnl, dev.mtu());
            },
        )
    }

    fn set_rx_mode(dev: &NetDev<Self>, lists: &dev::AddrListsLocked<'_>) {
        let rcu = rcu::read_lock();
        for role in Role::ALL {
            if let Some(slave) = dev.data().slaves.slot(role).get(&rcu) {
                // Like the C driver, a slave short of memory misses the update until the next.
                let _ = lists.sync_to(slave);
            }
        }
    }

    fn change_rx_flags(dev: &NetDev<Self>, rtnl: &Rtnl<'_>, changed: RxFlags) {
        // To both slaves, not only the active one as bonding does, so that a switch finds the
        // new active slave ready. While the primary is active, the standby's frames for other
        // hosts are not delivered (`SlaveRx::handle`): the peer sends them to the primary.
        for (_, slave) in dev.data().slaves.present(rtnl) {
            follow_rx_flags(rtnl, dev, &slave, changed);
        }
    }

    fn vlan_rx_add_vid(dev: &NetDev<Self>, rtnl: &Rtnl<'_>, proto: u16, vid: u16) -> Result {
        dev.data().slaves.apply(
            rtnl,
            |s| s.vlan_vid_add(rtnl, proto, vid),
            |s| s.vlan_vid_del(rtnl, proto, vid),
        )
    }

    fn vlan_rx_kill_vid(dev: &NetDev<Self>, rtnl: &Rtnl<'_>, proto: u16, vid: u16) -> Result {
        for (_, s) in dev.data().slaves.present(rtnl) {
            s.vlan_vid_del(rtnl, proto, vid);
        }
        Ok(())
    }
}

#[vtable]
impl Ethtool for Master {
    const ETHTOOL_STATS: &'static [&'static CStr] = &STAT_NAMES;

    fn get_ethtool_stats(dev: &NetDev<Self>, data: &mut [u64]) {
        let m = dev.data();
        let roles = m.fold_stats(|f| f.roles.clone());
        let e = &*m.events;
        let per_role = roles.iter().flat_map(|s| {
            [
                s.rx_packets(),
                s.rx_bytes(),
                s.tx_packets(),
                s.tx_bytes(),
                s.rx_dropped(),
                s.tx_dropped(),
            ]
        });
        let own = [
            &e.to_primary,
            &e.to_standby,
            &e.primary_leaving,
            &e.announcements,
            &e.tx_no_slave,
            &e.standby_rx_while_primary,
            &e.rx_looped_back,
        ]
        .map(|c| c.load(Relaxed));
        for (slot, value) in data.iter_mut().zip(Iterator::chain(per_role, own)) {
            *slot = value;
        }
    }

    fn get_drvinfo(_dev: &NetDev<Self>, info: &mut ethtool::DrvInfo) {
        info.set_driver(c"net_failover");
        info.set_version(c"0.1");
    }

    fn get_link_ksettings(
        dev: &NetDev<Self>,
        rtnl: &Rtnl<'_>,
        settings: &mut ethtool::LinkKsettings,
    ) -> Result {
        match dev.data().slaves.active_rtnl(rtnl) {
            Some((_, slave)) => slave.link_ksettings(rtnl, settings),
            None => {
                settings.set_duplex(ethtool::Duplex::Unknown);
                settings.set_port_other();
                settings.set_speed(ethtool::LinkKsettings::SPEED_UNKNOWN);
                Ok(())
            }
        }
    }
}

/// A slave's receive handler: its frames become the master's.
struct SlaveRx {
    slaves: Arc<Slaves>,
    events: Arc<Events>,
    master: DeviceRef,
}

impl rx_handler::RxHandler for SlaveRx {
    fn handle<'a>(&'a self, rcu: &'a CoreRcu, skb: SkBuff) -> RxAction<'a> {
        // A frame from the master's own address was sent by us (the master has no
        // `ndo_set_mac_address`: its address is its permanent one) and came back through the
        // other slave, which shares the L2: IPv6 would report our own unsolicited NA as another
        // host advertising our address. Only handlers bound to the slave itself see it.
        if skb
            .eth_source()
            .is_some_and(|src| src[..] == *self.master.perm_addr())
        {
            Events::count(&self.events.rx_looped_back);
            return RxAction::Exact(skb);
        }
        let standby = self.slaves.slot(Role::Standby).get(rcu);
        let on_standby = standby.is_some_and(|s| skb.is_on(s));
        // While the primary carries the traffic, broadcast and multicast frames also reach the
        // standby: only handlers bound to the standby itself (e.g. AF_PACKET) see those. A
        // unicast frame for us is never dropped: until the peers have learnt that the primary
        // is active, that is where they still send (the C driver drops them as soon as a
        // primary registers, even before it has link).
        if on_standby {
            let primary = self.slaves.slot(Role::Primary).get(rcu);
            if primary.is_some_and(|p| self.slaves.eligible(Role::Primary, p)) {
                if !skb.is_for_host() {
                    return RxAction::Exact(skb);
                }
                Events::count(&self.events.standby_rx_while_primary);
            }
        }
        RxAction::Another(skb, &self.master)
    }
}

/// Every failover master, for matching new devices against (by permanent address). A master
/// is unregistered when `net_failover_destroy()` takes it off this list.
static MASTERS: RtnlCell<KVec<Registration<Master>>> = RtnlCell::new(KVec::new());

/// The first master `pred` accepts. Shared borrows of the list nest: the notifications that
/// enslaving and releasing raise look masters up again.
fn find_master<'a>(
    rtnl: &'a Rtnl<'_>,
    pred: impl Fn(&NetDev<Master>) -> bool,
) -> Option<Ref<'a, NetDev<Master>>> {
    Ref::filter_map(MASTERS.borrow(rtnl).ok()?, |masters| {
        masters.iter().map(Registration::dev).find(|m| pred(m))
    })
    .ok()
}

/// The master whose permanent address is `dev`'s, if any.
fn master_for<'a>(rtnl: &'a Rtnl<'_>, dev: &Device) -> Option<Ref<'a, NetDev<Master>>> {
    find_master(rtnl, |m| m.perm_addr() == dev.perm_addr())
}

/// The running master `dev` is a slave of, if any.
fn running_master_of<'a>(rtnl: &'a Rtnl<'_>, dev: &Device) -> Option<Ref<'a, NetDev<Master>>> {
    master_for(rtnl, dev).filter(|m| m.is_running() && m.data().slaves.role_of(rtnl, dev).is_some())
}

/// The role a device would have under `master`: the standby shares the master's parent (the
/// virtio device).
fn role_for(master: &Device, dev: &Device) -> Role {
    let parent = |d: &Device| d.parent().map(ptr::from_ref);
    if parent(master) == parent(dev) {
        Role::Standby
    } else {
        Role::Primary
    }
}

/// Tells the master and LAG-offloading drivers whether `slave` has link and carries traffic.
fn lower_state_changed(rtnl: &Rtnl<'_>, slaves: &Slaves, slave: &Device) {
    let primary = slaves.slot(Role::Primary).get_rtnl(rtnl);
    let tx_enabled = match &primary {
        Some(p) if ptr::eq(&**p, slave) => slave.is_running(),
        Some(p) if p.is_running() => false,
        _ => slave.is_running(),
    };
    slave.lower_state_changed(rtnl, slave.carrier_ok(), tx_enabled);
}

/// Derives the master's offloads and header room from its slaves.
fn compute_features(rtnl: &Rtnl<'_>, master: &NetDev<Master>) {
    let mut vlan = VLAN_FEATURES & features::ALL_FOR_ALL;
    let mut enc = ENC_FEATURES;
    let mut hard_header_len = ETH_HLEN;
    let mut release_dst = true;
    for (_, s) in master.data().slaves.present(rtnl) {
        vlan = features::increment(vlan, s.vlan_features(), VLAN_FEATURES);
        enc = features::increment(enc, s.hw_enc_features(), ENC_FEATURES);
        release_dst &= s.releases_dst();
        hard_header_len = hard_header_len.max(s.hard_header_len());
    }
    let enc = enc | features::GSO_ENCAP_ALL;
    master.set_lower_offloads(rtnl, vlan, enc, hard_header_len, release_dst);
}

/// Checks that `dev` may become `master`'s slave in `role`.
fn may_enslave(rtnl: &Rtnl<'_>, master: &NetDev<Master>, dev: &Device, role: Role) -> Result {
    if master.data().slaves.slot(role).is_some() {
        netdev_err!(
            master,
            "{} attempting to register as slave dev when {} already present\n",
            dev.name(rtnl),
            role.name()
        );
        return Err(EINVAL);
    }
    // Only a directly attached VF may be the primary; there is no easy way to tell a VF, so
    // it must be a PCI device. The C driver does not check the namespace.
    if role == Role::Primary && (!dev.parent_is_pci() || !dev.same_net(master)) {
        return Err(EINVAL);
    }
    // The C driver checks the master's flag here, which a master never has.
    if dev.is_vlan_challenged() && master.vlan_in_use(rtnl) {
        netdev_err!(
            master,
            "Device {} is VLAN challenged and failover device has VLAN set up\n",
            dev.name(rtnl)
        );
        return Err(EINVAL);
    }
    Ok(())
}

/// Passes the changes of the master's promiscuity and allmulti on to `slave`: it holds one
/// count of each while the master has it (from [`attach`] to [`release`]). The counts fail only
/// where they would wrap.
fn follow_rx_flags(rtnl: &Rtnl<'_>, master: &Device, slave: &Device, changed: RxFlags) {
    let inc = |on| if on { 1 } else { -1 };
    if changed.promisc() {
        let _ = slave.set_promiscuity(rtnl, inc(master.is_promisc()));
    }
    if changed.allmulti() {
        let _ = slave.set_allmulti(rtnl, inc(master.is_allmulti()));
    }
}

/// Makes a linked slave part of the master's state: MTU, up state, address and VLAN filters,
/// promiscuity and allmulti, then the slot the data path reads.
fn attach(rtnl: &Rtnl<'_>, master: &NetDev<Master>, slave: &OpsLocked<'_>, role: Role) -> Result {
    let dev = slave.dev();
    let orig_mtu = dev.mtu();
    slave.set_mtu(master.mtu()).inspect_err(|_| {
        netdev_err!(
            master,
            "unable to change mtu of {} to {} register failed\n",
            dev.name(rtnl),
            master.mtu()
        );
    })?;
    if master.is_running() {
        match slave.open() {
            Ok(()) => {}
            // Opening fails while udev renames the device; it is retried on CHANGENAME.
            Err(e) if e == EBUSY => {}
            Err(e) => {
                netdev_err!(
                    master,
                    "Opening slave {} failed err:{}\n",
                    dev.name(rtnl),
                    e.to_errno()
                );
                let _ = slave.set_mtu(orig_mtu);
                return Err(e);
            }
        }
    }
    master.with_addr_lists(|lists| {
        let _ = lists.sync_to(dev);
    });
    if let Err(e) = dev.vlan_vids_add_by_dev(rtnl, master) {
        netdev_err!(
            master,
            "Failed to add vlan ids to device {} err:{}\n",
            dev.name(rtnl),
            e.to_errno()
        );
        dev.addr_lists_unsync(rtnl, master);
        slave.close();
        let _ = slave.set_mtu(orig_mtu);
        return Err(e);
    }

    // The master's promiscuity and allmulti, as `follow_rx_flags` passes them on.
    if master.is_promisc() {
        let _ = slave.set_promiscuity(1);
    }
    if master.is_allmulti() {
        let _ = slave.set_allmulti(1);
    }

    let m = master.data();
    // The counters so far are the slave's own, not the master's.
    m.stats.lock().seen[role as usize] = dev.stats();
    if role == Role::Primary {
        m.slaves.primary_leaving.store(false, Relaxed);
    }
    m.slaves
        .slot(role)
        .replace(rtnl, Some(DeviceRef::new(dev, GFP_KERNEL)));
    if role == Role::Primary {
        master.set_mtu_range(rtnl, dev.min_mtu(), dev.max_mtu());
    }
    lower_state_changed(rtnl, &m.slaves, dev);
    compute_features(rtnl, master);
    trace::slave_enslaved(rtnl, master, dev, role.traced());
    follow_slaves(rtnl, master, Reason::Enslaved, dev);
    dev.call_notifiers(rtnl, dev::PlainEvent::Join);
    netdev_info!(
        master,
        "failover {} slave:{} registered\n",
        role.name(),
        dev.name(rtnl)
    );
    Ok(())
}

/// Enslaves `slave` to `master`: takes its frames, links it below the master, marks it as a
/// failover slave and attaches it. Undoes everything if a step fails.
fn enslave(rtnl: &Rtnl<'_>, master: &NetDev<Master>, slave: &OpsLocked<'_>) -> Result {
    let dev = slave.dev();
    let role = role_for(master, dev);
    may_enslave(rtnl, master, dev, role)?;
    let handler = SlaveRx {
        slaves: master.data().slaves.clone(),
        events: master.data().events.clone(),
        master: DeviceRef::new(master, GFP_KERNEL),
    };
    let rx = rx_handler::Registration::new(rtnl, dev, handler).inspect_err(|e| {
        netdev_err!(
            dev,
            "can not register failover rx handler (err = {})\n",
            e.to_errno()
        );
    })?;
    if let Err(e) = dev.master_upper_link(rtnl, master, dev::LagTxType::ActiveBackup) {
        netdev_err!(
            dev,
            "can not set failover device {} (err = {})\n",
            master.name(rtnl),
            e.to_errno()
        );
        rx.unregister(rtnl);
        return Err(e);
    }
    dev.set_failover_slave(rtnl, true);
    // Stored before attaching, which raises notifications, so that no borrow spans them. The
    // slot is empty (`may_enslave`); what it held is unregistered, not dropped under the RTNL.
    let mut slots = match master.data().rx.borrow_mut(rtnl) {
        Ok(slots) => slots,
        Err(e) => {
            dev.upper_unlink(rtnl, master);
            dev.set_failover_slave(rtnl, false);
            rx.unregister(rtnl);
            return Err(e);
        }
    };
    let previous = slots[role as usize].replace(rx);
    drop(slots);
    if let Some(previous) = previous {
        previous.unregister(rtnl);
    }
    if let Err(e) = attach(rtnl, master, slave, role) {
        dev.upper_unlink(rtnl, master);
        dev.set_failover_slave(rtnl, false);
        // Ours, stored above: the borrow succeeds as the first one did.
        let _ = master.data().unregister_rx(rtnl, role);
        return Err(e);
    }
    Ok(())
}

/// Releases `dev` from `master`, undoing every step of [`enslave`].
fn release(rtnl: &Rtnl<'_>, master: &NetDev<Master>, dev: &Device) {
    let m = master.data();
    let Some(role) = m.slaves.role_of(rtnl, dev) else {
        return;
    };
    // Only `enslave` and `release` borrow the handlers, and neither is running further up
    // the stack: neither raises a notification while it holds the borrow. If it could fail,
    // the handler's reference on `dev` would hold up its unregistration.
    if let Err(e) = m.unregister_rx(rtnl, role) {
        kernel::warn_on!(true);
        netdev_err!(
            dev,
            "failover rx handler busy, left registered (err = {})\n",
            e.to_errno()
        );
    }
    dev.upper_unlink(rtnl, master);
    dev.set_failover_slave(rtnl, false);

    dev.vlan_vids_del_by_dev(rtnl, master);
    dev.addr_lists_unsync(rtnl, master);
    if master.is_promisc() {
        let _ = dev.set_promiscuity(rtnl, -1);
    }
    if master.is_allmulti() {
        let _ = dev.set_allmulti(rtnl, -1);
    }
    dev.close(rtnl);
    // What the slave carried until now stays in the master's counters.
    m.fold_stats(|_| ());
    m.slaves.slot(role).replace(rtnl, None);
    if role == Role::Primary {
        if let Some(s) = m.slaves.slot(Role::Standby).get_rtnl(rtnl) {
            master.set_mtu_range(rtnl, s.min_mtu(), s.max_mtu());
        }
    }
    compute_features(rtnl, master);
    trace::slave_released(rtnl, master, dev, role.traced());
    follow_slaves(rtnl, master, Reason::Unregister, dev);
    netdev_info!(
        master,
        "failover {} slave:{} unregistered\n",
        role.name(),
        dev.name(rtnl)
    );
}

/// A new device: enslave it if it matches a master.
fn slave_register(rtnl: &Rtnl<'_>, slave: &OpsLocked<'_>) {
    let dev = slave.dev();
    // Already enslaved: the notifier, registered after the master found it, replays REGISTER.
    if !dev.is_ether() || dev.is_failover_slave() {
        return;
    }
    if let Some(master) = master_for(rtnl, dev) {
        // Failures are logged where they happen; the device stays on its own.
        let _ = enslave(rtnl, &master, slave);
    }
}

/// Announces the master's addresses to its peers (gratuitous ARP, unsolicited NA) through
/// the `active` slave, so that bridges and switches learn at once which port now leads to it.
fn announce(rtnl: &Rtnl<'_>, master: &NetDev<Master>, active: &Device) {
    let count = module_parameters::num_grat_arp.value();
    if count == 0 {
        return;
    }
    trace::announce(rtnl, master, active, count);
    for _ in 0..count {
        master.notify_peers(rtnl);
        Events::count(&master.data().events.announcements);
    }
}

/// Follows the slaves' state with the master's carrier. A change of the active slave is
/// counted, logged with `why` (rate-limited, for a flapping link) and announced to the peers.
///
/// The queues stay open while no slave is usable. The master has no qdisc (`IFF_NO_QUEUE`), so
/// a stopped queue holds nothing back: the core drops each frame itself, with the reason
/// `RECURSION_LIMIT`, and logs "Virtual device ... asks to queue packet!", a line meant for a
/// driver bug, at every burst (C's net_failover stops them, and does). Open, the frames reach
/// `start_xmit`, which drops and counts them as sent with no usable slave.
fn follow_slaves(rtnl: &Rtnl<'_>, master: &NetDev<Master>, reason: Reason, dev: &Device) {
    let m = master.data();
    if !master.is_running() {
        return;
    }
    let active = m.slaves.active_rtnl(rtnl);
    let role = active.as_ref().map(|(role, _)| *role);
    if active.is_some() {
        master.carrier_on();
    } else {
        m.fold_stats(|_| ());
        master.carrier_off();
    }
    // Never borrowed across a call: the borrow cannot fail.
    let Ok(old) = m
        .announced
        .borrow_mut(rtnl)
        .map(|mut announced| core::mem::replace(&mut *announced, role))
    else {
        return;
    };
    if old == role {
        return;
    }
    trace::active_changed(
        rtnl,
        master,
        old.map(Role::traced),
        active
            .as_ref()
            .map(|(role, slave)| (role.traced(), &**slave)),
        reason,
        dev,
    );
    let why = Why { reason, dev, rtnl };
    match &active {
        Some((role, slave)) => {
            Events::count(match role {
                Role::Primary => &m.events.to_primary,
                Role::Standby => &m.events.to_standby,
            });
            if dev::net_ratelimit() {
                netdev_info!(
                    master,
                    "data path switched to {} {}: {}\n",
                    role.name(),
                    slave.name(rtnl),
                    why
                );
            }
            announce(rtnl, master, slave);
        }
        None => {
            if dev::net_ratelimit() {
                netdev_info!(master, "data path down, no usable slave: {}\n", why);
            }
        }
    }
}

/// Watches PCI devices losing their driver: a primary's means it is about to go (hot-unplug,
/// unbind or module unload), so traffic moves to the standby while the primary still works.
struct PrimaryUnbind;

impl pci::Unbinding for PrimaryUnbind {
    fn unbinding(&self, pci: &kernel::device::Device) {
        let guard = RtnlGuard::lock();
        let rtnl = guard.token();
        // What this triggers (lower state and peer notifications) neither creates nor
        // destroys a master, so the list stays borrowed throughout.
        let Ok(masters) = MASTERS.borrow(&rtnl) else {
            return;
        };
        for master in masters.iter().map(Registration::dev) {
            let slaves = &master.data().slaves;
            let Some(primary) = slaves.slot(Role::Primary).get_rtnl(&rtnl) else {
                continue;
            };
            if primary.parent().is_some_and(|p| ptr::eq(p, pci)) {
                slaves.primary_leaving.store(true, Relaxed);
                Events::count(&master.data().events.primary_leaving);
                netdev_info!(
                    master,
                    "failover primary slave:{} leaving\n",
                    primary.name(&rtnl)
                );
                follow_slaves(&rtnl, master, Reason::UnplugNotice, &primary);
                lower_state_changed(&rtnl, slaves, &primary);
            }
        }
    }
}

/// The netdevice notifier that finds and follows slaves.
struct SlaveWatch;

impl Notify for SlaveWatch {
    fn notify(
        &self,
        rtnl: &Rtnl<'_>,
        event: Event,
        dev: &Device,
        locked: Option<&OpsLocked<'_>>,
    ) -> Result {
        // Events of the masters themselves are not about slaves.
        if dev.is_failover() {
            return Ok(());
        }
        match (event, locked) {
            (Event::Register, Some(slave)) => slave_register(rtnl, slave),
            (Event::Unregister, _) if dev.is_failover_slave() => {
                if let Some(master) = master_for(rtnl, dev) {
                    release(rtnl, &master, dev);
                }
            }
            // A slave's link or up state changed: follow it with the master's carrier.
            (Event::Up | Event::Down | Event::Change, _) if dev.is_failover_slave() => {
                if let Some(master) = running_master_of(rtnl, dev) {
                    let reason = match event {
                        Event::Change => Reason::Link,
                        _ => Reason::Admin,
                    };
                    follow_slaves(rtnl, &master, reason, dev);
                    lower_state_changed(rtnl, &master.data().slaves, dev);
                }
            }
            // virtio_net announces after a migration, on the standby, which has no addresses:
            // the master's are the ones to announce.
            (Event::NotifyPeers, _) if dev.is_failover_slave() => {
                if let Some(master) = master_for(rtnl, dev).filter(|m| m.is_running()) {
                    if let Some((_, active)) = master.data().slaves.active_rtnl(rtnl) {
                        announce(rtnl, &master, &active);
                    }
                }
            }
            // udev renamed the slave: bring it up if that failed with EBUSY when enslaved.
            (Event::ChangeName, Some(slave)) if dev.is_failover_slave() => {
                if running_master_of(rtnl, dev).is_some() {
                    let _ = slave.open();
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// The `net_failover_create()`/`net_failover_destroy()` implementation.
struct Failover;

/// What virtio_net holds for a master: which one it is, by the address of its `net_device`.
/// Only compared, never followed.
#[derive(Clone, Copy, PartialEq, Eq)]
struct MasterId(usize);

impl MasterId {
    fn of(master: &NetDev<Master>) -> Self {
        Self(master.as_raw() as usize)
    }
}

impl NetFailover for Failover {
    type Handle = MasterId;

    fn create(standby: &Device) -> Result<KBox<MasterId>> {
        let parent = standby.parent().ok_or(EINVAL)?;
        let addr: [u8; 6] = {
            // The standby is not registered yet, but its address is read under the RTNL.
            let guard = RtnlGuard::lock();
            standby
                .addr(&guard.token())
                .try_into()
                .map_err(|_| EINVAL)?
        };
        let config = Config::new(c"eth%d")
            .queues(TX_QUEUES)
            .parent(parent)
            .net_of(standby)
            .addr(&addr)
            .mtu_range(standby.min_mtu(), standby.max_mtu())
            .virtual_master()
            .hw_features(
                VLAN_FEATURES
                    | features::HW_VLAN_CTAG_TX
                    | features::HW_VLAN_CTAG_RX
                    | features::HW_VLAN_CTAG_FILTER
                    | features::GSO_ENCAP_ALL,
            );
        let slaves = Arc::new(
            Slaves {
                slots: [DeviceSlot::new(), DeviceSlot::new()],
                primary_leaving: Atomic::new(false),
            },
            GFP_KERNEL,
        )?;
        let events = Arc::new(Events::new(), GFP_KERNEL)?;
        let reg = Registration::new(
            config,
            try_pin_init!(Master {
                slaves,
                stats <- new_spinlock!(MasterStats::default()),
                rx: RtnlCell::new([None, None]),
                announced: RtnlCell::new(None),
                events,
            }),
        )
        .inspect_err(|_| dev_err!(parent, "Unable to register failover_dev!\n"))?;
        reg.dev().carrier_off();
        let id = MasterId::of(reg.dev());
        // On failure `reg` is dropped, which unregisters the master (taking the RTNL).
        let handle = KBox::new(id, GFP_KERNEL)?;

        let guard = RtnlGuard::lock();
        let rtnl = guard.token();
        // Room is reserved first, so that the push cannot fail: a registration must not be
        // dropped while the RTNL is held. On any failure it is unregistered.
        let pushed = match MASTERS.borrow_mut(&rtnl) {
            Ok(mut masters) => match masters.reserve(1, GFP_KERNEL) {
                Ok(()) => masters
                    .push_within_capacity(reg)
                    .map_err(|PushError(reg)| (reg, ENOMEM)),
                Err(e) => Err((reg, e.into())),
            },
            Err(e) => Err((reg, e)),
        };
        if let Err((reg, e)) = pushed {
            reg.unregister(&rtnl);
            return Err(e);
        }
        let Some(master) = find_master(&rtnl, |m| MasterId::of(m) == id) else {
            // Cannot happen: pushed just above in this RTNL section.
            kernel::warn_on!(true);
            return Err(EBUSY);
        };
        master.set_failover(&rtnl, true);
        netdev_info!(
            &*master,
            "failover master:{} registered\n",
            master.name(&rtnl)
        );
        // The VF may have come first.
        let scanned = master.for_each_in_net(&rtnl, |dev| {
            if !dev.is_failover() && dev.perm_addr() == master.perm_addr() {
                slave_register(&rtnl, &dev.lock_ops(&rtnl));
            }
        });
        if let Err(e) = scanned {
            netdev_err!(
                &*master,
                "cannot look for a primary that came first (err = {})\n",
                e.to_errno()
            );
        }
        Ok(handle)
    }

    fn destroy(handle: KBox<MasterId>) {
        let id = KBox::into_inner(handle);
        // One RTNL section, as C's net_failover_destroy(): the slaves are released and the
        // master unregistered without a gap in which a new slave could be matched to it.
        let guard = RtnlGuard::lock();
        let rtnl = guard.token();
        let Some(master) = find_master(&rtnl, |m| MasterId::of(m) == id) else {
            // virtio_net destroys only what it created, from its remove or probe-error path,
            // which the driver does not reach while it holds the list.
            kernel::warn_on!(true);
            return;
        };
        // Not detached first, as C does (netif_device_detach()): that stops the queues of a
        // device without a qdisc, and until unregistering closes it the core drops every frame
        // sent to it itself, logging "Virtual device ... asks to queue packet!". Open, they
        // reach `start_xmit`, which drops and counts them once the slaves are released.
        for (_, slave) in master.data().slaves.present(&rtnl) {
            release(&rtnl, &master, &slave);
        }
        master.set_failover(&rtnl, false);
        netdev_info!(
            &*master,
            "failover master:{} unregistered\n",
            master.name(&rtnl)
        );
        drop(master);
        // Found just above, and the list is borrowed nowhere up the stack. Freed once the RTNL
        // is released (`guard` below) and the last reference is gone.
        let reg = take_master(&rtnl, &id);
        kernel::warn_on!(reg.is_none());
        if let Some(reg) = reg {
            reg.unregister(&rtnl);
        }
        drop(guard);
    }
}

/// Takes the master virtio_net's handle `id` names off the list.
fn take_master(rtnl: &Rtnl<'_>, id: &MasterId) -> Option<Registration<Master>> {
    let mut masters = MASTERS.borrow_mut(rtnl).ok()?;
    let at = masters.iter().position(|r| MasterId::of(r.dev()) == *id)?;
    masters.remove(at).ok()
}

struct FailoverModule {
    _slave_watch: Pin<KBox<notifier::Registration<SlaveWatch>>>,
    _primary_unbind: Pin<KBox<pci::UnbindNotifier<PrimaryUnbind>>>,
}

impl kernel::Module for FailoverModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(Self {
            _slave_watch: KBox::pin_init(notifier::Registration::new(SlaveWatch), GFP_KERNEL)?,
            _primary_unbind: KBox::pin_init(pci::UnbindNotifier::new(PrimaryUnbind), GFP_KERNEL)?,
        })
    }
}

impl Drop for FailoverModule {
    fn drop(&mut self) {
        // A static is never dropped: the list's buffer, allocated by the first master, would
        // outlive the module (kmemleak reports it once the module is gone). Every master is
        // gone by now (virtio_net, which creates them, uses this module), but whatever is left
        // is dropped after the RTNL is released, as a registration's drop takes it.
        let masters = {
            let guard = RtnlGuard::lock();
            let rtnl = guard.token();
            MASTERS
                .borrow_mut(&rtnl)
                .map(|mut masters| core::mem::take(&mut *masters))
                .unwrap_or_default()
        };
        drop(masters);
    }
}

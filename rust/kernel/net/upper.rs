// SPDX-License-Identifier: GPL-2.0

//! Upper and lower devices: linking a device under a master, as bonding, team and failover do.
//!
//! C header: [`include/linux/netdevice.h`](srctree/include/linux/netdevice.h)

use crate::{
    bindings,
    error::to_result,
    net::{
        dev::Device,
        rtnl::Rtnl, //
    },
    prelude::*, //
};
use core::ptr;

/// How a master transmits over its lower devices (`enum netdev_lag_tx_type`), as reported to
/// userspace and to drivers that offload LAG.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LagTxType {
    /// One active lower device at a time, the others standing by.
    ActiveBackup,
    /// Round robin over the lower devices.
    RoundRobin,
    /// A hash picks the lower device.
    Hash,
}

impl LagTxType {
    fn as_raw(self) -> bindings::netdev_lag_tx_type {
        match self {
            LagTxType::ActiveBackup => bindings::netdev_lag_tx_type_NETDEV_LAG_TX_TYPE_ACTIVEBACKUP,
            LagTxType::RoundRobin => bindings::netdev_lag_tx_type_NETDEV_LAG_TX_TYPE_ROUNDROBIN,
            LagTxType::Hash => bindings::netdev_lag_tx_type_NETDEV_LAG_TX_TYPE_HASH,
        }
    }
}

/// An event a driver may raise itself with [`Device::call_notifiers`].
///
/// Only events whose notifier info is the plain `struct netdev_notifier_info` are here: C
/// listeners take the larger info of other events (`netdev_notifier_change_info` for
/// `NETDEV_CHANGE`, `netdev_notifier_changelowerstate_info` for `NETDEV_CHANGELOWERSTATE`)
/// with `container_of()`, and would read past a plain one. Those events have their own
/// functions, which build the right info: [`Device::state_change`] and
/// [`Device::lower_state_changed`].
///
/// [`Device::state_change`]: crate::net::dev::Device::state_change
///
/// ```ignore,compile_fail,E0308
/// use kernel::net::{dev::Device, notifier::Event, rtnl::Rtnl};
///
/// fn raise(dev: &Device, rtnl: &Rtnl<'_>) {
///     // A CHANGE with a plain info would be read as a `netdev_notifier_change_info`.
///     let _ = dev.call_notifiers(rtnl, Event::Change);
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlainEvent {
    /// The device joined an upper device (`NETDEV_JOIN`).
    Join,
    /// Peers should be told about the device's addresses (`NETDEV_NOTIFY_PEERS`).
    NotifyPeers,
    /// The device's features changed (`NETDEV_FEAT_CHANGE`).
    FeatChange,
}

/// A device whose unicast and multicast address lists are locked (`netif_addr_lock_bh()`),
/// as in [`Driver::set_rx_mode`], so that a master can sync them to its lower devices.
///
/// [`Driver::set_rx_mode`]: crate::net::netdev::Driver::set_rx_mode
///
/// # Invariants
///
/// The current thread holds `dev`'s address list lock for `'a`.
pub struct AddrListsLocked<'a> {
    dev: &'a Device,
    _not_send: crate::types::NotThreadSafe,
}

impl<'a> AddrListsLocked<'a> {
    /// # Safety
    ///
    /// The caller must hold `dev`'s address list lock for `'a`.
    pub(crate) unsafe fn assume_locked(dev: &'a Device) -> Self {
        // INVARIANT: Guaranteed by the caller.
        Self {
            dev,
            _not_send: crate::types::NotThreadSafe,
        }
    }

    /// The device whose lists are locked.
    pub fn dev(&self) -> &'a Device {
        self.dev
    }

    /// Adds this device's unicast and multicast addresses to `lower`'s, and removes those it
    /// no longer has (`dev_uc_sync_multiple()` and `dev_mc_sync_multiple()`). Usable for
    /// several lower devices; undone by [`Device::addr_lists_unsync`].
    /// Fails with `EINVAL` for the device itself, whose lock is held.
    pub fn sync_to(&self, lower: &Device) -> Result {
        if ptr::eq(lower, self.dev) {
            return Err(EINVAL);
        }
        // SAFETY: Both devices are valid and distinct, and our address list lock is held (type
        // invariant); the functions take `lower`'s, nested.
        to_result(unsafe { bindings::dev_uc_sync_multiple(lower.as_raw(), self.dev.as_raw()) })?;
        // SAFETY: As above.
        to_result(unsafe { bindings::dev_mc_sync_multiple(lower.as_raw(), self.dev.as_raw()) })
    }
}

impl Device {
    /// Runs `f` with the device's address lists locked (`netif_addr_lock_bh()`); `f` runs with
    /// bottom halves disabled, so it must not sleep.
    pub fn with_addr_lists<R>(&self, f: impl FnOnce(&AddrListsLocked<'_>) -> R) -> R {
        // SAFETY: The device is valid.
        unsafe { bindings::netif_addr_lock_bh(self.as_raw()) };
        // SAFETY: The lock is held until after `f` returns.
        let r = f(&unsafe { AddrListsLocked::assume_locked(self) });
        // SAFETY: Taken above.
        unsafe { bindings::netif_addr_unlock_bh(self.as_raw()) };
        r
    }

    /// Removes from `self` the unicast and multicast addresses synced from `upper` by
    /// [`AddrListsLocked::sync_to`] (`dev_uc_unsync()` and `dev_mc_unsync()`). Takes both
    /// devices' address list locks: called where one is held (inside [`Device::with_addr_lists`]
    /// or [`Driver::set_rx_mode`]), it deadlocks.
    ///
    /// [`Driver::set_rx_mode`]: crate::net::netdev::Driver::set_rx_mode
    pub fn addr_lists_unsync(&self, _rtnl: &Rtnl<'_>, upper: &Device) {
        // SAFETY: Both devices are valid and the RTNL is held; the functions take the address
        // list locks themselves (a caller holding one deadlocks, which is not undefined
        // behaviour), and do nothing for addresses that were not synced.
        unsafe {
            bindings::dev_uc_unsync(self.as_raw(), upper.as_raw());
            bindings::dev_mc_unsync(self.as_raw(), upper.as_raw());
        }
    }

    /// Raises `event` for this device on the netdevice notifier chain
    /// (`call_netdevice_notifiers()`), e.g. [`PlainEvent::Join`] once a master has enslaved it.
    pub fn call_notifiers(&self, _rtnl: &Rtnl<'_>, event: PlainEvent) {
        let cmd = match event {
            PlainEvent::Join => bindings::netdev_cmd_NETDEV_JOIN,
            PlainEvent::NotifyPeers => bindings::netdev_cmd_NETDEV_NOTIFY_PEERS,
            PlainEvent::FeatChange => bindings::netdev_cmd_NETDEV_FEAT_CHANGE,
        };
        // SAFETY: The device is valid and the RTNL is held (`call_netdevice_notifiers()`
        // needs it); these events' listeners expect the plain `netdev_notifier_info` that the
        // function builds.
        unsafe { bindings::call_netdevice_notifiers(cmd as c_ulong, self.as_raw()) };
    }

    /// Links `self` under `master` as its master upper device, with LAG information
    /// (`netdev_master_upper_dev_link()`). Fails with `EBUSY` if `self` already has a master.
    pub fn master_upper_link(&self, _rtnl: &Rtnl<'_>, master: &Device, tx: LagTxType) -> Result {
        let mut info = bindings::netdev_lag_upper_info {
            tx_type: tx.as_raw(),
            hash_type: bindings::netdev_lag_hash_NETDEV_LAG_HASH_NONE,
        };
        // SAFETY: Both devices are valid and the RTNL is held; `info` is only read during the
        // call.
        to_result(unsafe {
            bindings::netdev_master_upper_dev_link(
                self.as_raw(),
                master.as_raw(),
                ptr::null_mut(),
                (&raw mut info).cast(),
                ptr::null_mut(),
            )
        })
    }

    /// Unlinks `self` from its upper device `upper` (`netdev_upper_dev_unlink()`); does nothing
    /// if `upper` is not linked above `self` (the core would warn).
    pub fn upper_unlink(&self, _rtnl: &Rtnl<'_>, upper: &Device) {
        // SAFETY: Both devices are valid and the RTNL is held.
        if !unsafe { bindings::netdev_has_upper_dev(self.as_raw(), upper.as_raw()) } {
            return;
        }
        // SAFETY: Both devices are valid, the RTNL is held, and `upper` is linked above `self`.
        unsafe { bindings::netdev_upper_dev_unlink(self.as_raw(), upper.as_raw()) };
    }

    /// The device's master upper device, if linked (`netdev_master_upper_dev_get()`).
    pub fn master_upper<'a>(&'a self, _rtnl: &'a Rtnl<'_>) -> Option<&'a Device> {
        // SAFETY: The device is valid and the RTNL is held.
        let m = unsafe { bindings::netdev_master_upper_dev_get(self.as_raw()) };
        if m.is_null() {
            None
        } else {
            // SAFETY: The link, and so the master, cannot go away while the RTNL is held.
            Some(unsafe { Device::from_raw(m) })
        }
    }

    /// Tells the master and LAG-offloading drivers about this lower device's state
    /// (`netdev_lower_state_changed()`, raising `NETDEV_CHANGELOWERSTATE`).
    pub fn lower_state_changed(&self, _rtnl: &Rtnl<'_>, link_up: bool, tx_enabled: bool) {
        // SAFETY: All-zero is a valid `netdev_lag_lower_state_info` (both bits clear).
        let mut info: bindings::netdev_lag_lower_state_info = unsafe { core::mem::zeroed() };
        info.set_link_up(link_up.into());
        info.set_tx_enabled(tx_enabled.into());
        // SAFETY: The device is valid, the RTNL is held, and `info` is only read during the
        // call.
        unsafe { bindings::netdev_lower_state_changed(self.as_raw(), (&raw mut info).cast()) };
    }

    /// Asks the stack to announce the device's addresses to its peers, e.g. by gratuitous ARP
    /// and unsolicited neighbour advertisements (`__netdev_notify_peers()`, raising
    /// `NETDEV_NOTIFY_PEERS`).
    pub fn notify_peers(&self, _rtnl: &Rtnl<'_>) {
        // SAFETY: The device is valid and the RTNL is held.
        unsafe { bindings::__netdev_notify_peers(self.as_raw()) };
    }

    /// Adds VLAN `vid` of protocol `proto` (host order, e.g. `ETH_P_8021Q`) to the device's
    /// filter (`vlan_vid_add()`).
    pub fn vlan_vid_add(&self, _rtnl: &Rtnl<'_>, proto: u16, vid: u16) -> Result {
        // SAFETY: The device is valid and the RTNL is held.
        to_result(unsafe { bindings::vlan_vid_add(self.as_raw(), proto.to_be(), vid) })
    }

    /// Removes VLAN `vid` of protocol `proto` from the device's filter (`vlan_vid_del()`).
    pub fn vlan_vid_del(&self, _rtnl: &Rtnl<'_>, proto: u16, vid: u16) {
        // SAFETY: The device is valid and the RTNL is held.
        unsafe { bindings::vlan_vid_del(self.as_raw(), proto.to_be(), vid) };
    }

    /// Adds to `self` every VLAN id that `by` has (`vlan_vids_add_by_dev()`), as a master does
    /// for a new lower device.
    pub fn vlan_vids_add_by_dev(&self, _rtnl: &Rtnl<'_>, by: &Device) -> Result {
        // SAFETY: Both devices are valid and the RTNL is held.
        to_result(unsafe { bindings::vlan_vids_add_by_dev(self.as_raw(), by.as_raw()) })
    }

    /// Removes from `self` every VLAN id that `by` has (`vlan_vids_del_by_dev()`).
    pub fn vlan_vids_del_by_dev(&self, _rtnl: &Rtnl<'_>, by: &Device) {
        // SAFETY: Both devices are valid and the RTNL is held.
        unsafe { bindings::vlan_vids_del_by_dev(self.as_raw(), by.as_raw()) };
    }
}

#[macros::kunit_tests(rust_net_upper)]
mod tests {
    use super::*;
    use crate::net::{
        dev::OpsLocked,
        netdev::{
            Config,
            Driver,
            Ethtool,
            NetDev,
            Registration,
            TxResult, //
        },
        notifier::{
            self,
            Event,
            Notify, //
        },
        rtnl::RtnlGuard,
        skbuff::SkBuff,
        slot::CoreRcu, //
    };
    use crate::sync::{
        atomic::{
            Atomic,
            Relaxed, //
        },
        Arc, //
    };

    #[pin_data]
    struct Plain {}

    #[vtable]
    impl Driver for Plain {
        fn start_xmit(_dev: &NetDev<Self>, _rcu: &CoreRcu, skb: SkBuff) -> TxResult {
            skb.consume();
            TxResult::Ok
        }
    }

    #[vtable]
    impl Ethtool for Plain {}

    struct Seen {
        change_upper: Atomic<u32>,
        change: Atomic<u32>,
        lower_state: Atomic<u32>,
        notify_peers: Atomic<u32>,
        join: Atomic<u32>,
    }

    struct Watch(Arc<Seen>, i32);

    impl Notify for Watch {
        fn notify(
            &self,
            _rtnl: &Rtnl<'_>,
            event: Event,
            dev: &Device,
            _locked: Option<&OpsLocked<'_>>,
        ) -> Result {
            if dev.ifindex() == self.1 {
                match event {
                    Event::ChangeUpper => self.0.change_upper.add(1, Relaxed),
                    Event::Change => self.0.change.add(1, Relaxed),
                    Event::ChangeLowerState => self.0.lower_state.add(1, Relaxed),
                    Event::NotifyPeers => self.0.notify_peers.add(1, Relaxed),
                    Event::Join => self.0.join.add(1, Relaxed),
                    _ => {}
                }
            }
            Ok(())
        }
    }

    #[test]
    fn link_state_unlink() -> Result {
        let cfg = Config::new(c"rup%d").random_addr();
        let upper = Registration::new(cfg, try_pin_init!(Plain {}))?;
        let cfg = Config::new(c"rup%d").random_addr();
        let lower = Registration::new(cfg, try_pin_init!(Plain {}))?;
        let seen = Arc::new(
            Seen {
                change_upper: Atomic::new(0),
                change: Atomic::new(0),
                lower_state: Atomic::new(0),
                notify_peers: Atomic::new(0),
                join: Atomic::new(0),
            },
            GFP_KERNEL,
        )?;
        let nb = KBox::pin_init(
            notifier::Registration::new(Watch(seen.clone(), lower.dev().ifindex())),
            GFP_KERNEL,
        )?;
        {
            let rtnl = RtnlGuard::lock();
            let r = rtnl.token();
            let (u, l) = (&**upper.dev(), &**lower.dev());
            assert!(l.master_upper(&r).is_none());
            l.master_upper_link(&r, u, LagTxType::ActiveBackup)?;
            assert_eq!(l.master_upper(&r).map(|m| m.ifindex()), Some(u.ifindex()));
            // Linking twice is refused.
            assert_eq!(
                l.master_upper_link(&r, u, LagTxType::ActiveBackup),
                Err(EEXIST)
            );
            assert!(!l.is_failover_slave());
            l.set_failover_slave(&r, true);
            assert!(l.is_failover_slave());
            assert_ne!(
                l.priv_flags() & bindings::netdev_priv_flags_IFF_NO_ADDRCONF,
                0
            );
            l.set_failover_slave(&r, false);
            assert!(!l.is_failover_slave());
            l.lower_state_changed(&r, true, true);
            u.open(&r)?;
            l.open(&r)?;
            l.notify_peers(&r);
            // Raising events: JOIN goes to the listeners.
            l.call_notifiers(&r, PlainEvent::Join);
            // A state change goes with its `netdev_notifier_change_info` (an up device only).
            l.state_change(&r);
            // The upper's address lists sync to the lower and back.
            u.with_addr_lists(|lists| lists.sync_to(l))?;
            l.addr_lists_unsync(&r, u);
            l.upper_unlink(&r, u);
            assert!(l.master_upper(&r).is_none());
            // Unlinking what is not linked does nothing (the core would warn).
            l.upper_unlink(&r, u);
            // A device's lists cannot be synced to itself (its lock is held).
            assert_eq!(u.with_addr_lists(|lists| lists.sync_to(u)), Err(EINVAL));
        }
        assert_eq!(seen.change_upper.load(Relaxed), 2);
        assert!(seen.change.load(Relaxed) >= 1);
        assert_eq!(seen.lower_state.load(Relaxed), 1);
        assert_eq!(seen.notify_peers.load(Relaxed), 1);
        assert_eq!(seen.join.load(Relaxed), 1);
        drop(nb);
        Ok(())
    }
}

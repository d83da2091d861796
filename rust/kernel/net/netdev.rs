// SPDX-License-Identifier: GPL-2.0

//! Network device drivers: allocation, registration, `net_device_ops` and `ethtool_ops`.
//!
//! A driver implements [`Driver`] and [`Ethtool`] on the type of its devices' private data.
//! [`Registration::new`] allocates an Ethernet device with that private data initialised in
//! place, and registers it; dropping the [`Registration`] unregisters and frees it.
//!
//! C header: [`include/linux/netdevice.h`](srctree/include/linux/netdevice.h)

use crate::{
    bindings,
    error::VTABLE_DEFAULT_ERROR,
    net::{
        dev::{
            AddrListsLocked,
            Device, //
        },
        rtnl::Rtnl,
        skbuff::{
            SkBuff,
            SkBuffRef, //
        }, //
    },
    prelude::*,
    sync::rcu::CoreRcu, //
};
use core::{
    marker::PhantomData,
    ops::Deref, //
};

pub(super) mod ethtool;
mod ops;
mod registration;
mod tests;

pub use crate::net::dev::{
    features,
    Stats64, //
};
pub use crate::net::ethtool::{
    DrvInfo,
    Duplex,
    LinkKsettings, //
};
pub use ethtool::Ethtool;
pub use registration::{
    Config,
    Registration, //
};

/// The receive flags whose change [`Driver::change_rx_flags`] reports; the device's
/// [`Device::flags`] have their new state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxFlags(u32);

impl RxFlags {
    /// Whether promiscuity (`IFF_PROMISC`) changed.
    #[inline]
    pub fn promisc(self) -> bool {
        self.0 & bindings::net_device_flags_IFF_PROMISC != 0
    }

    /// Whether allmulti (`IFF_ALLMULTI`) changed.
    #[inline]
    pub fn allmulti(self) -> bool {
        self.0 & bindings::net_device_flags_IFF_ALLMULTI != 0
    }
}

/// What a driver did with a packet handed to [`Driver::start_xmit`].
pub enum TxResult {
    /// The driver took the packet (`NETDEV_TX_OK`).
    Ok,
    /// The driver cannot take it now; the core keeps it and retries (`NETDEV_TX_BUSY`).
    Busy(SkBuff),
}

/// A network device driver, implemented by the type of its devices' private data.
///
/// These are the `net_device_ops` callbacks; the `ethtool_ops` ones are in [`Ethtool`], which the
/// driver implements as well: a [`Registration`] needs both.
///
/// The private data lives until the device is unregistered and no reference to it remains; it is
/// dropped by the networking core then (`priv_destructor`), after the RTNL is released.
#[vtable]
pub trait Driver: Sized + Send + Sync + 'static {
    /// The device is brought up (`ndo_open`), under the RTNL.
    fn open(_dev: &NetDev<Self>, _rtnl: &Rtnl<'_>) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// The device is brought down (`ndo_stop`), under the RTNL.
    fn stop(_dev: &NetDev<Self>, _rtnl: &Rtnl<'_>) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Transmits a packet (`ndo_start_xmit`), with bottom halves disabled, inside the core's RCU
    /// read-side section (`rcu`).
    fn start_xmit(dev: &NetDev<Self>, rcu: &CoreRcu, skb: SkBuff) -> TxResult;

    /// Picks the transmit queue for `skb` (`ndo_select_queue`); must be below the number of
    /// transmit queues. The core keeps owning the packet. Called with bottom halves disabled,
    /// but not always in an RCU read-side section (`AF_PACKET` bypassing the qdisc calls it
    /// without one).
    fn select_queue(_dev: &NetDev<Self>, _skb: &SkBuffRef) -> u16 {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Lets the driver restrict the offloads used for `skb` (`ndo_features_check`).
    fn features_check(_dev: &NetDev<Self>, _skb: &SkBuffRef, _features: u64) -> u64 {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Validates a new MTU (`ndo_change_mtu`), under the RTNL. On success the core's MTU
    /// becomes `new_mtu`; on error nothing changes.
    fn change_mtu(_dev: &NetDev<Self>, _rtnl: &Rtnl<'_>, _new_mtu: u32) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// The unicast or multicast address lists changed (`ndo_set_rx_mode`). Runs with the
    /// address list lock held, in atomic context; `lists` lets a master sync them to its lower
    /// devices.
    fn set_rx_mode(_dev: &NetDev<Self>, _lists: &AddrListsLocked<'_>) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// The device's promiscuity or allmulti changed (`ndo_change_rx_flags`; [`RxFlags`] says
    /// which), under the RTNL. A change of `IFF_MULTICAST` is reported too, with neither set.
    /// A master passes promiscuity and allmulti on to its lower devices, with
    /// [`Device::set_promiscuity`] and [`Device::set_allmulti`].
    ///
    /// A driver with this callback has [`Driver::set_rx_mode`] called from the core's deferred
    /// work (`__dev_set_rx_mode()`), under the RTNL, unless the call that changed the address
    /// lists runs it before returning (the userspace paths do, `netif_rx_mode_sync()`).
    fn change_rx_flags(_dev: &NetDev<Self>, _rtnl: &Rtnl<'_>, _changed: RxFlags) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// A VLAN id was added on the device (`ndo_vlan_rx_add_vid`), under the RTNL. `proto` is
    /// in host byte order (e.g. `ETH_P_8021Q`).
    fn vlan_rx_add_vid(_dev: &NetDev<Self>, _rtnl: &Rtnl<'_>, _proto: u16, _vid: u16) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// A VLAN id was removed from the device (`ndo_vlan_rx_kill_vid`), under the RTNL.
    fn vlan_rx_kill_vid(_dev: &NetDev<Self>, _rtnl: &Rtnl<'_>, _proto: u16, _vid: u16) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Checks the device's address before it comes up (`ndo_validate_addr`). Without it, an
    /// Ethernet device needs a valid unicast address (`eth_validate_addr()`).
    fn validate_addr(_dev: &NetDev<Self>) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Lets the driver accept a new hardware address (`ndo_set_mac_address`), under the RTNL.
    /// `addr` is a valid unicast address, and the device is down (or takes live changes): the
    /// abstraction checks both first, as `eth_mac_addr()` does, and refuses an invalid address
    /// with `EADDRNOTAVAIL` and a running device with `EBUSY` without calling the driver. On
    /// success the address is set. Without this callback, address changes are refused with
    /// `EOPNOTSUPP`.
    fn set_mac_address(_dev: &NetDev<Self>, _rtnl: &Rtnl<'_>, _addr: &[u8; 6]) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Reports statistics (`ndo_get_stats64`). May run in any context.
    fn get_stats64(_dev: &NetDev<Self>, _stats: &mut Stats64) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// The device is being unregistered (`ndo_uninit`), under the RTNL: it is down and off the
    /// device lists, and its UNREGISTER notifiers ran. The place to let go of references to other
    /// devices, which would otherwise keep the unregistration waiting. Also called if
    /// registration fails after the private data was initialised.
    fn uninit(_dev: &NetDev<Self>, _rtnl: &Rtnl<'_>) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
}

/// A network device driven by `T`, seen from one of its callbacks or its [`Registration`].
///
/// # Invariants
///
/// The device's private area holds an initialised `T`, and the device is valid.
#[repr(transparent)]
pub struct NetDev<T> {
    dev: Device,
    _t: PhantomData<T>,
}

impl<T: Driver> NetDev<T> {
    /// # Safety
    ///
    /// `ptr` must be a valid device allocated by [`Registration::new::<T>`] whose private data
    /// is initialised, valid for `'a`.
    unsafe fn from_raw<'a>(ptr: *mut bindings::net_device) -> &'a Self {
        // SAFETY: `NetDev<T>` is `repr(transparent)` over `Device`, itself over the C struct.
        unsafe { &*ptr.cast() }
    }

    /// The driver's private data.
    pub fn data(&self) -> &T {
        // SAFETY: By the type invariant the private area holds an initialised `T`, which lives
        // as long as the device.
        unsafe { &*bindings::netdev_priv(self.dev.as_raw()).cast::<T>() }
    }
}

impl<T: Driver> NetDev<T> {
    /// Sets the smallest and largest MTU the device accepts, e.g. to follow a lower device.
    pub fn set_mtu_range(&self, _rtnl: &Rtnl<'_>, min: u32, max: u32) {
        // SAFETY: The device is ours and valid; the RTNL serialises writers, and the volatile
        // writes (`WRITE_ONCE()`) pair with the readers' volatile reads, which may run without
        // the RTNL (`Device::min_mtu`, `Device::max_mtu`).
        unsafe {
            core::ptr::write_volatile(&raw mut (*self.as_raw()).min_mtu, min);
            core::ptr::write_volatile(&raw mut (*self.as_raw()).max_mtu, max);
        }
    }

    /// Sets the offload state a master derives from its lower devices: the features VLANs on
    /// top may use (`vlan_features`), those for encapsulated traffic (`hw_enc_features`), the
    /// header room (`hard_header_len`) and whether dst entries may be released before transmit
    /// (`IFF_XMIT_DST_RELEASE`); then lets the core recompute the features
    /// (`netdev_change_features()`).
    pub fn set_lower_offloads(
        &self,
        rtnl: &Rtnl<'_>,
        vlan_features: u64,
        hw_enc_features: u64,
        hard_header_len: u16,
        xmit_dst_release: bool,
    ) {
        let raw = self.as_raw();
        // SAFETY: The device is ours and valid; the RTNL serialises writers of these fields.
        unsafe {
            (*raw).vlan_features = vlan_features;
            (*raw).hw_enc_features = hw_enc_features;
            (*raw).hard_header_len = hard_header_len;
        }
        let f = bindings::netdev_priv_flags_IFF_XMIT_DST_RELEASE;
        if xmit_dst_release {
            self.update_priv_flags(rtnl, f, 0);
        } else {
            self.update_priv_flags(rtnl, 0, f);
        }
        // SAFETY: The device is valid and registered, and the RTNL is held.
        unsafe { bindings::netdev_change_features(raw) };
    }

    /// Stops transmission on all queues and waits for running transmits to finish
    /// (`netif_tx_disable()`).
    pub fn tx_disable(&self) {
        // SAFETY: The device is valid.
        unsafe { bindings::netif_tx_disable(self.as_raw()) };
    }
}

impl<T> Deref for NetDev<T> {
    type Target = Device;

    fn deref(&self) -> &Device {
        &self.dev
    }
}

// SPDX-License-Identifier: GPL-2.0

//! The `net_device_ops` table whose entries call a [`Driver`]'s callbacks.
//!
//! C header: [`include/linux/netdevice.h`](srctree/include/linux/netdevice.h)

use crate::{
    bindings,
    error::{
        from_result,
        to_result, //
    },
    net::{
        dev::AddrListsLocked,
        netdev::{
            Driver,
            NetDev,
            RxFlags,
            Stats64,
            TxResult, //
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
    ptr::NonNull, //
};

/// The `net_device_ops` table of the devices driven by `T`, and its entries.
pub(super) struct Ops<T>(PhantomData<T>);

impl<T: Driver> Ops<T> {
    pub(super) const OPS: bindings::net_device_ops = bindings::net_device_ops {
        ndo_open: if T::HAS_OPEN { Some(Self::open) } else { None },
        ndo_stop: if T::HAS_STOP { Some(Self::stop) } else { None },
        ndo_start_xmit: Some(Self::start_xmit),
        ndo_get_stats64: if T::HAS_GET_STATS64 {
            Some(Self::get_stats64)
        } else {
            None
        },
        ndo_select_queue: if T::HAS_SELECT_QUEUE {
            Some(Self::select_queue)
        } else {
            None
        },
        ndo_features_check: if T::HAS_FEATURES_CHECK {
            Some(Self::features_check)
        } else {
            None
        },
        ndo_change_mtu: if T::HAS_CHANGE_MTU {
            Some(Self::change_mtu)
        } else {
            None
        },
        ndo_set_rx_mode: if T::HAS_SET_RX_MODE {
            Some(Self::set_rx_mode)
        } else {
            None
        },
        ndo_change_rx_flags: if T::HAS_CHANGE_RX_FLAGS {
            Some(Self::change_rx_flags)
        } else {
            None
        },
        ndo_vlan_rx_add_vid: if T::HAS_VLAN_RX_ADD_VID {
            Some(Self::vlan_rx_add_vid)
        } else {
            None
        },
        ndo_vlan_rx_kill_vid: if T::HAS_VLAN_RX_KILL_VID {
            Some(Self::vlan_rx_kill_vid)
        } else {
            None
        },
        ndo_validate_addr: if T::HAS_VALIDATE_ADDR {
            Some(Self::validate_addr)
        } else {
            Some(bindings::eth_validate_addr)
        },
        ndo_set_mac_address: if T::HAS_SET_MAC_ADDRESS {
            Some(Self::set_mac_address)
        } else {
            None
        },
        ndo_uninit: if T::HAS_UNINIT {
            Some(Self::uninit)
        } else {
            None
        },
        // SAFETY: All-zero is valid for the remaining fields (no callback).
        ..unsafe { core::mem::zeroed() }
    };

    /// # Safety
    ///
    /// Called by the networking core on a device of [`Registration<T>`].
    ///
    /// [`Registration<T>`]: crate::net::netdev::Registration
    unsafe extern "C" fn open(dev: *mut bindings::net_device) -> c_int {
        from_result(|| {
            // SAFETY: `ndo_open` is called with the RTNL held.
            let rtnl = unsafe { Rtnl::assume_held() };
            // SAFETY: `dev` is one of our devices.
            T::open(unsafe { NetDev::from_raw(dev) }, &rtnl)?;
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Called by the networking core on a device of [`Registration<T>`].
    ///
    /// [`Registration<T>`]: crate::net::netdev::Registration
    unsafe extern "C" fn stop(dev: *mut bindings::net_device) -> c_int {
        from_result(|| {
            // SAFETY: `ndo_stop` is called with the RTNL held.
            let rtnl = unsafe { Rtnl::assume_held() };
            // SAFETY: `dev` is one of our devices.
            T::stop(unsafe { NetDev::from_raw(dev) }, &rtnl)?;
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Called by the networking core on a device of [`Registration<T>`], handing over `skb`.
    ///
    /// [`Registration<T>`]: crate::net::netdev::Registration
    unsafe extern "C" fn start_xmit(
        skb: *mut bindings::sk_buff,
        dev: *mut bindings::net_device,
    ) -> bindings::netdev_tx_t {
        // SAFETY: The core hands us a valid, non-null skb to own.
        let skb = unsafe { SkBuff::from_raw(NonNull::new_unchecked(skb)) };
        // SAFETY: `ndo_start_xmit` is called with bottom halves disabled, an RCU read-side
        // critical section (see `CoreRcu`), until it returns.
        let rcu = unsafe { CoreRcu::assume() };
        // SAFETY: `dev` is one of our devices.
        match T::start_xmit(unsafe { NetDev::from_raw(dev) }, &rcu, skb) {
            TxResult::Ok => bindings::netdev_tx_NETDEV_TX_OK,
            TxResult::Busy(skb) => {
                // The core keeps ownership of a packet it gets back as busy.
                let _ = skb.into_raw();
                bindings::netdev_tx_NETDEV_TX_BUSY
            }
        }
    }

    /// # Safety
    ///
    /// Called by the networking core on a device of [`Registration<T>`] with a valid `skb` it
    /// keeps owning.
    ///
    /// [`Registration<T>`]: crate::net::netdev::Registration
    unsafe extern "C" fn select_queue(
        dev: *mut bindings::net_device,
        skb: *mut bindings::sk_buff,
        _sb_dev: *mut bindings::net_device,
    ) -> u16 {
        // SAFETY: `netdev_core_pick_tx()` passes an skb that it keeps owning and that only this
        // thread reaches, valid for the call; the callback only borrows it.
        let skb = unsafe { SkBuffRef::from_raw(skb) };
        // SAFETY: `dev` is one of our devices.
        T::select_queue(unsafe { NetDev::from_raw(dev) }, skb)
    }

    /// # Safety
    ///
    /// Called by the networking core on a device of [`Registration<T>`] with a valid `skb` it
    /// keeps owning.
    ///
    /// [`Registration<T>`]: crate::net::netdev::Registration
    unsafe extern "C" fn features_check(
        skb: *mut bindings::sk_buff,
        dev: *mut bindings::net_device,
        features: bindings::netdev_features_t,
    ) -> bindings::netdev_features_t {
        // SAFETY: `netif_skb_features()` passes an skb that it keeps owning and that only this
        // thread reaches, valid for the call; the callback only borrows it.
        let skb = unsafe { SkBuffRef::from_raw(skb) };
        // SAFETY: `dev` is one of our devices.
        T::features_check(unsafe { NetDev::from_raw(dev) }, skb, features)
    }

    /// # Safety
    ///
    /// Called by the networking core on a device of [`Registration<T>`], under the RTNL.
    ///
    /// [`Registration<T>`]: crate::net::netdev::Registration
    unsafe extern "C" fn change_mtu(dev: *mut bindings::net_device, new_mtu: c_int) -> c_int {
        from_result(|| {
            let mtu = u32::try_from(new_mtu).map_err(|_| EINVAL)?;
            // SAFETY: `ndo_change_mtu` is called with the RTNL held.
            let rtnl = unsafe { Rtnl::assume_held() };
            // SAFETY: `dev` is one of our devices.
            T::change_mtu(unsafe { NetDev::from_raw(dev) }, &rtnl, mtu)?;
            // SAFETY: `dev` is valid; the core expects the driver to store the new MTU
            // (`WRITE_ONCE(dev->mtu, new_mtu)`).
            unsafe { core::ptr::write_volatile(&raw mut (*dev).mtu, mtu) };
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Called by the networking core on a device of [`Registration<T>`].
    ///
    /// [`Registration<T>`]: crate::net::netdev::Registration
    unsafe extern "C" fn set_rx_mode(dev: *mut bindings::net_device) {
        // SAFETY: `dev` is one of our devices.
        let dev = unsafe { NetDev::from_raw(dev) };
        // SAFETY: `ndo_set_rx_mode` is called with the device's address list lock held.
        let lists = unsafe { AddrListsLocked::assume_locked(dev) };
        T::set_rx_mode(dev, &lists);
    }

    /// # Safety
    ///
    /// Called by the networking core on a device of [`Registration<T>`], under the RTNL.
    ///
    /// [`Registration<T>`]: crate::net::netdev::Registration
    unsafe extern "C" fn change_rx_flags(dev: *mut bindings::net_device, flags: c_int) {
        // SAFETY: `ndo_change_rx_flags` is called under the RTNL for devices that are not "ops
        // locked" (`netdev_assert_locked_ops_compat()` in `__dev_set_promiscuity()`,
        // `netif_set_allmulti()` and `__dev_change_flags()`), and `Registration` registers no
        // other outside the abstractions' tests.
        let rtnl = unsafe { Rtnl::assume_held() };
        // SAFETY: `dev` is one of our devices.
        let dev = unsafe { NetDev::from_raw(dev) };
        // The flags are `IFF_*` bits, non-negative.
        T::change_rx_flags(dev, &rtnl, RxFlags(flags as u32));
    }

    /// # Safety
    ///
    /// Called by the networking core on a device of [`Registration<T>`].
    ///
    /// [`Registration<T>`]: crate::net::netdev::Registration
    unsafe extern "C" fn validate_addr(dev: *mut bindings::net_device) -> c_int {
        from_result(|| {
            // SAFETY: `dev` is one of our devices.
            T::validate_addr(unsafe { NetDev::from_raw(dev) })?;
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Called by the networking core on a device of [`Registration<T>`] with a valid
    /// `struct sockaddr`, under the RTNL.
    ///
    /// [`Registration<T>`]: crate::net::netdev::Registration
    unsafe extern "C" fn set_mac_address(
        dev: *mut bindings::net_device,
        addr: *mut c_void,
    ) -> c_int {
        from_result(|| {
            // SAFETY: `dev` is valid and `addr` is the `struct sockaddr_storage` the core passes
            // (`netif_set_mac_address()`); the function checks the address is valid unicast and
            // that a running device takes live changes, as `eth_mac_addr()` does first.
            to_result(unsafe { bindings::eth_prepare_mac_addr_change(dev, addr) })?;
            // SAFETY: `addr` is a `struct sockaddr_storage` whose data holds at least `ETH_ALEN`
            // bytes (checked above, for an Ethernet device).
            let mac = unsafe {
                &*(*addr.cast::<bindings::sockaddr>())
                    .sa_data
                    .as_ptr()
                    .cast::<[u8; 6]>()
            };
            // SAFETY: `ndo_set_mac_address` is called with the RTNL held.
            let rtnl = unsafe { Rtnl::assume_held() };
            // SAFETY: `dev` is one of our devices.
            T::set_mac_address(unsafe { NetDev::from_raw(dev) }, &rtnl, mac)?;
            // SAFETY: `dev` and `addr` are valid, the RTNL is held, and the address was checked.
            unsafe { bindings::eth_commit_mac_addr_change(dev, addr) };
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Called by the networking core on a device of [`Registration<T>`], under the RTNL.
    ///
    /// [`Registration<T>`]: crate::net::netdev::Registration
    unsafe extern "C" fn vlan_rx_add_vid(
        dev: *mut bindings::net_device,
        proto: bindings::__be16,
        vid: u16,
    ) -> c_int {
        from_result(|| {
            // SAFETY: `ndo_vlan_rx_add_vid` is called with the RTNL held.
            let rtnl = unsafe { Rtnl::assume_held() };
            // SAFETY: `dev` is one of our devices.
            let dev = unsafe { NetDev::from_raw(dev) };
            T::vlan_rx_add_vid(dev, &rtnl, u16::from_be(proto), vid)?;
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Called by the networking core on a device of [`Registration<T>`], under the RTNL.
    ///
    /// [`Registration<T>`]: crate::net::netdev::Registration
    unsafe extern "C" fn vlan_rx_kill_vid(
        dev: *mut bindings::net_device,
        proto: bindings::__be16,
        vid: u16,
    ) -> c_int {
        from_result(|| {
            // SAFETY: `ndo_vlan_rx_kill_vid` is called with the RTNL held.
            let rtnl = unsafe { Rtnl::assume_held() };
            // SAFETY: `dev` is one of our devices.
            let dev = unsafe { NetDev::from_raw(dev) };
            T::vlan_rx_kill_vid(dev, &rtnl, u16::from_be(proto), vid)?;
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Called by the networking core on a device of [`Registration<T>`] with valid `stats`.
    ///
    /// [`Registration<T>`]: crate::net::netdev::Registration
    unsafe extern "C" fn get_stats64(
        dev: *mut bindings::net_device,
        stats: *mut bindings::rtnl_link_stats64,
    ) {
        // `stats` may be misaligned: rtnetlink passes the payload of a netlink attribute, which
        // is only 4-byte aligned where unaligned access is cheap (`nla_reserve_64bit()`). So the
        // driver fills in an aligned copy, written back unaligned.
        // SAFETY: `stats` is valid for reads and writes for the call, and exclusively ours.
        let mut local = Stats64(unsafe { stats.read_unaligned() });
        // SAFETY: `dev` is one of our devices.
        T::get_stats64(unsafe { NetDev::from_raw(dev) }, &mut local);
        // SAFETY: As above.
        unsafe { stats.write_unaligned(local.0) };
    }

    /// # Safety
    ///
    /// Called by the networking core on a device of [`Registration<T>`], under the RTNL.
    ///
    /// [`Registration<T>`]: crate::net::netdev::Registration
    unsafe extern "C" fn uninit(dev: *mut bindings::net_device) {
        // SAFETY: `ndo_uninit` is called with the RTNL held (`unregister_netdevice_many()`, and
        // the error path of `register_netdevice()`).
        let rtnl = unsafe { Rtnl::assume_held() };
        // SAFETY: `dev` is one of our devices; its private data is initialised until
        // `priv_destructor` runs, after this.
        T::uninit(unsafe { NetDev::from_raw(dev) }, &rtnl);
    }

    /// Drops the private data, once the device is unregistered and unreferenced
    /// (`priv_destructor`, set by [`Registration::unregister`]).
    ///
    /// # Safety
    ///
    /// Called by `netdev_run_todo()` on a device of [`Registration<T>`], once, after which the
    /// core frees the device (`needs_free_netdev`).
    ///
    /// [`Registration::unregister`]: crate::net::netdev::Registration::unregister
    /// [`Registration<T>`]: crate::net::netdev::Registration
    pub(super) unsafe extern "C" fn priv_destructor(dev: *mut bindings::net_device) {
        // SAFETY: The private data is an initialised `T` (type invariant of the registration),
        // and nothing uses it any more: no callback runs on an unregistered device whose last
        // reference is gone.
        unsafe { core::ptr::drop_in_place(bindings::netdev_priv(dev).cast::<T>()) };
    }
}

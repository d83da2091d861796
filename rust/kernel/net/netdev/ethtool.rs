// SPDX-License-Identifier: GPL-2.0

//! Support for ethtool: the driver's [`Ethtool`] callbacks, and the `ethtool_ops` table whose
//! entries call them. The data types they fill in are in [`crate::net::ethtool`].
//!
//! C header: [`include/linux/ethtool.h`](srctree/include/linux/ethtool.h)

use crate::{
    bindings,
    error::{
        from_result,
        VTABLE_DEFAULT_ERROR, //
    },
    net::{
        ethtool::{
            DrvInfo,
            LinkKsettings, //
        },
        netdev::{
            Driver,
            NetDev, //
        },
        rtnl::Rtnl, //
    },
    prelude::*,
    str::CStr, //
};
use core::marker::PhantomData;

/// The ethtool callbacks of a network device driver (`ethtool_ops`), implemented by the type of
/// its devices' private data next to its [`Driver`] implementation.
///
/// Every callback is optional: a driver without any implements the trait with an empty
/// `#[vtable]` block. The link state (`get_link`) is always reported, by
/// `ethtool_op_get_link()`.
///
/// # Examples
///
/// ```
/// use kernel::net::{
///     netdev::{Driver, DrvInfo, Ethtool, NetDev, TxResult},
///     skbuff::SkBuff,
/// };
/// use kernel::prelude::*;
/// use kernel::sync::rcu::CoreRcu;
///
/// struct Quiet;
///
/// #[vtable]
/// impl Driver for Quiet {
///     fn start_xmit(_dev: &NetDev<Self>, _rcu: &CoreRcu, skb: SkBuff) -> TxResult {
///         skb.consume();
///         TxResult::Ok
///     }
/// }
///
/// #[vtable]
/// impl Ethtool for Quiet {
///     fn get_drvinfo(_dev: &NetDev<Self>, info: &mut DrvInfo) {
///         info.set_driver(c"quiet");
///     }
/// }
/// ```
#[vtable]
pub trait Ethtool: Driver {
    /// Names of the driver's `ethtool -S` statistics, in the order [`Ethtool::get_ethtool_stats`]
    /// fills them in. Each must be shorter than `ETH_GSTRING_LEN` (32) bytes.
    const ETHTOOL_STATS: &'static [&'static CStr] = &[];

    /// Fills in the values of [`Ethtool::ETHTOOL_STATS`]; `data` has one slot per name.
    fn get_ethtool_stats(_dev: &NetDev<Self>, _data: &mut [u64]) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Reports the driver's name and the device's bus address (`ethtool -i`).
    fn get_drvinfo(_dev: &NetDev<Self>, _info: &mut DrvInfo) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Reports the link settings (`ethtool <dev>`), under the RTNL. ethtool is asked to take
    /// it for this callback on "ops locked" devices too (`ETHTOOL_OP_NEEDS_RTNL_LINKSETTINGS`).
    fn get_link_ksettings(
        _dev: &NetDev<Self>,
        _rtnl: &Rtnl<'_>,
        _settings: &mut LinkKsettings,
    ) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
}

/// The `ethtool_ops` table of the devices driven by `T`, and its entries.
pub(super) struct EthOps<T>(PhantomData<T>);

impl<T: Ethtool> EthOps<T> {
    pub(super) const OPS: bindings::ethtool_ops = bindings::ethtool_ops {
        get_drvinfo: if T::HAS_GET_DRVINFO {
            Some(Self::get_drvinfo)
        } else {
            None
        },
        get_link: Some(bindings::ethtool_op_get_link),
        // ethtool takes the RTNL for this callback on "ops locked" devices too only when asked
        // to; `get_link_ksettings` below relies on it.
        op_needs_rtnl: if T::HAS_GET_LINK_KSETTINGS {
            bindings::ETHTOOL_OP_NEEDS_RTNL_LINKSETTINGS
        } else {
            0
        },
        get_link_ksettings: if T::HAS_GET_LINK_KSETTINGS {
            Some(Self::get_link_ksettings)
        } else {
            None
        },
        get_sset_count: if T::HAS_GET_ETHTOOL_STATS {
            Some(Self::get_sset_count)
        } else {
            None
        },
        get_strings: if T::HAS_GET_ETHTOOL_STATS {
            Some(Self::get_strings)
        } else {
            None
        },
        get_ethtool_stats: if T::HAS_GET_ETHTOOL_STATS {
            Some(Self::get_ethtool_stats)
        } else {
            None
        },
        // SAFETY: All-zero is valid for the remaining fields (no callback, no capability).
        ..unsafe { core::mem::zeroed() }
    };

    /// # Safety
    ///
    /// Called by ethtool on a device of [`Registration<T>`] with a valid `info`.
    ///
    /// [`Registration<T>`]: crate::net::netdev::Registration
    unsafe extern "C" fn get_drvinfo(
        dev: *mut bindings::net_device,
        info: *mut bindings::ethtool_drvinfo,
    ) {
        // SAFETY: `info` is valid and ours for the call; `DrvInfo` is transparent.
        let info = unsafe { &mut *info.cast::<DrvInfo>() };
        // SAFETY: `dev` is one of our devices.
        T::get_drvinfo(unsafe { NetDev::from_raw(dev) }, info);
    }

    /// # Safety
    ///
    /// Called by ethtool on a device of [`Registration<T>`] with valid `ks`, under the RTNL.
    ///
    /// [`Registration<T>`]: crate::net::netdev::Registration
    unsafe extern "C" fn get_link_ksettings(
        dev: *mut bindings::net_device,
        ks: *mut bindings::ethtool_link_ksettings,
    ) -> c_int {
        from_result(|| {
            // Most callers clear it first (`netif_get_link_ksettings()`, the ioctl), not all
            // (ksmbd's): the driver must not read what it did not write.
            // SAFETY: `ks` is valid for writes and ours for the call.
            unsafe { core::ptr::write_bytes(ks, 0, 1) };
            // SAFETY: `ks` is valid, initialised and ours for the call; `LinkKsettings` is
            // transparent.
            let ks = unsafe { &mut *ks.cast::<LinkKsettings>() };
            // SAFETY: ethtool's ioctl and netlink paths take the RTNL for this callback, on an
            // "ops locked" device too since `OPS.op_needs_rtnl` has
            // `ETHTOOL_OP_NEEDS_RTNL_LINKSETTINGS` (`ethtool_ioctl_needs_rtnl()`,
            // `ethtool_nl_msg_needs_rtnl()`). `__ethtool_get_link_ksettings()` asserts the RTNL,
            // and every other in-kernel caller holds it (audited against 7.3: bridge, bonding,
            // team, the cbs and taprio qdiscs, net-sysfs, ledtrig-netdev, fcoe, ksmbd).
            let rtnl = unsafe { Rtnl::assume_held() };
            // SAFETY: `dev` is one of our devices.
            T::get_link_ksettings(unsafe { NetDev::from_raw(dev) }, &rtnl, ks)?;
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Called by ethtool on a device of [`Registration<T>`].
    ///
    /// [`Registration<T>`]: crate::net::netdev::Registration
    unsafe extern "C" fn get_sset_count(_dev: *mut bindings::net_device, sset: c_int) -> c_int {
        if sset == bindings::ethtool_stringset_ETH_SS_STATS as c_int {
            T::ETHTOOL_STATS.len() as c_int
        } else {
            EOPNOTSUPP.to_errno()
        }
    }

    /// # Safety
    ///
    /// Called by ethtool with `data` sized by our `get_sset_count` for `sset`.
    unsafe extern "C" fn get_strings(_dev: *mut bindings::net_device, sset: u32, data: *mut u8) {
        if sset != bindings::ethtool_stringset_ETH_SS_STATS {
            return;
        }
        const LEN: usize = bindings::ETH_GSTRING_LEN as usize;
        // SAFETY: ethtool allocated `ETH_GSTRING_LEN` bytes per string we reported.
        let buf = unsafe {
            core::slice::from_raw_parts_mut(data.cast::<[u8; LEN]>(), T::ETHTOOL_STATS.len())
        };
        for (slot, name) in buf.iter_mut().zip(T::ETHTOOL_STATS) {
            let name = name.to_bytes();
            let n = name.len().min(LEN - 1);
            slot[..n].copy_from_slice(&name[..n]);
            slot[n..].fill(0);
        }
    }

    /// # Safety
    ///
    /// Called by ethtool on a device of [`Registration<T>`] with `data` holding one `u64` per
    /// statistic we reported.
    ///
    /// [`Registration<T>`]: crate::net::netdev::Registration
    unsafe extern "C" fn get_ethtool_stats(
        dev: *mut bindings::net_device,
        _stats: *mut bindings::ethtool_stats,
        data: *mut u64,
    ) {
        // SAFETY: ethtool allocated one `u64` per statistic we reported.
        let data = unsafe { core::slice::from_raw_parts_mut(data, T::ETHTOOL_STATS.len()) };
        data.fill(0);
        // SAFETY: `dev` is one of our devices.
        T::get_ethtool_stats(unsafe { NetDev::from_raw(dev) }, data);
    }
}

// SPDX-License-Identifier: GPL-2.0

//! Network device drivers: allocation, registration and `net_device_ops`.
//!
//! A driver implements [`Driver`] on the type of its devices' private data. [`Registration::new`]
//! allocates an Ethernet device with that private data initialised in place, and registers it;
//! dropping the [`Registration`] unregisters and frees it.
//!
//! C header: [`include/linux/netdevice.h`](srctree/include/linux/netdevice.h)

use crate::{
    bindings,
    error::{from_result, to_result, VTABLE_DEFAULT_ERROR},
    net::{dev::Device, rtnl::Rtnl, skbuff::SkBuff},
    prelude::*,
    str::CStr,
};
use core::{marker::PhantomData, ops::Deref, ptr::NonNull};

/// What a driver did with a packet handed to [`Driver::start_xmit`].
pub enum TxResult {
    /// The driver took the packet (`NETDEV_TX_OK`).
    Ok,
    /// The driver cannot take it now; the core keeps it and retries (`NETDEV_TX_BUSY`).
    Busy(SkBuff),
}

/// Device statistics (`struct rtnl_link_stats64`): filled in by [`Driver::get_stats64`], read
/// with [`Device::stats`].
#[repr(transparent)]
pub struct Stats64(bindings::rtnl_link_stats64);

impl Stats64 {
    pub(crate) fn from_raw(raw: bindings::rtnl_link_stats64) -> Self {
        Self(raw)
    }

    /// Received packets.
    pub fn rx_packets(&self) -> u64 {
        self.0.rx_packets
    }

    /// Transmitted packets.
    pub fn tx_packets(&self) -> u64 {
        self.0.tx_packets
    }

    /// Received bytes.
    pub fn rx_bytes(&self) -> u64 {
        self.0.rx_bytes
    }

    /// Transmitted bytes.
    pub fn tx_bytes(&self) -> u64 {
        self.0.tx_bytes
    }

    /// Received packets dropped.
    pub fn rx_dropped(&self) -> u64 {
        self.0.rx_dropped
    }

    /// Transmitted packets dropped.
    pub fn tx_dropped(&self) -> u64 {
        self.0.tx_dropped
    }

    /// Sets the received packet and byte counts.
    pub fn set_rx(&mut self, packets: u64, bytes: u64) {
        self.0.rx_packets = packets;
        self.0.rx_bytes = bytes;
    }

    /// Sets the transmitted packet and byte counts.
    pub fn set_tx(&mut self, packets: u64, bytes: u64) {
        self.0.tx_packets = packets;
        self.0.tx_bytes = bytes;
    }

    /// Sets the dropped packet counts.
    pub fn set_dropped(&mut self, rx: u64, tx: u64) {
        self.0.rx_dropped = rx;
        self.0.tx_dropped = tx;
    }
}

/// Driver information for `ethtool -i` (`struct ethtool_drvinfo`).
#[repr(transparent)]
pub struct DrvInfo(bindings::ethtool_drvinfo);

fn copy_cstr(dst: &mut [crate::ffi::c_char], src: &CStr) {
    let src = src.to_bytes();
    let n = src.len().min(dst.len().saturating_sub(1));
    for (d, s) in dst.iter_mut().zip(&src[..n]) {
        *d = *s as crate::ffi::c_char;
    }
    if let Some(end) = dst.get_mut(n) {
        *end = 0;
    }
}

impl DrvInfo {
    /// Sets the driver name (truncated to fit).
    pub fn set_driver(&mut self, name: &CStr) {
        copy_cstr(&mut self.0.driver, name);
    }

    /// Sets the bus address of the device (truncated to fit).
    pub fn set_bus_info(&mut self, bus: &CStr) {
        copy_cstr(&mut self.0.bus_info, bus);
    }
}

/// Duplex mode of a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Duplex {
    /// Half duplex.
    Half,
    /// Full duplex.
    Full,
    /// Not known.
    Unknown,
}

/// Link settings for `ethtool <dev>` (`struct ethtool_link_ksettings`).
#[repr(transparent)]
pub struct LinkKsettings(bindings::ethtool_link_ksettings);

impl LinkKsettings {
    /// Sets the speed in Mb/s (`SPEED_UNKNOWN` if not known).
    pub fn set_speed(&mut self, mbps: u32) {
        self.0.base.speed = mbps;
    }

    /// Sets the duplex mode.
    pub fn set_duplex(&mut self, duplex: Duplex) {
        self.0.base.duplex = match duplex {
            Duplex::Half => bindings::DUPLEX_HALF,
            Duplex::Full => bindings::DUPLEX_FULL,
            Duplex::Unknown => bindings::DUPLEX_UNKNOWN,
        } as u8;
    }

    /// Sets the port type to "other" (`PORT_OTHER`), as virtual devices report.
    pub fn set_port_other(&mut self) {
        self.0.base.port = bindings::PORT_OTHER as u8;
    }
}

/// A network device driver, implemented by the type of its devices' private data.
#[vtable]
pub trait Driver: Sized + Send + Sync {
    /// The device is brought up (`ndo_open`), under the RTNL.
    fn open(_dev: &NetDev<Self>, _rtnl: &Rtnl<'_>) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// The device is brought down (`ndo_stop`), under the RTNL.
    fn stop(_dev: &NetDev<Self>, _rtnl: &Rtnl<'_>) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Transmits a packet (`ndo_start_xmit`). Runs in softirq context with the queue locked.
    fn start_xmit(dev: &NetDev<Self>, skb: SkBuff) -> TxResult;

    /// Picks the transmit queue for `skb` (`ndo_select_queue`); must be below the number of
    /// transmit queues.
    fn select_queue(_dev: &NetDev<Self>, _skb: &SkBuff) -> u16 {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Lets the driver restrict the offloads used for `skb` (`ndo_features_check`).
    fn features_check(_dev: &NetDev<Self>, _skb: &SkBuff, _features: u64) -> u64 {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Validates a new MTU (`ndo_change_mtu`), under the RTNL. On success the core's MTU
    /// becomes `new_mtu`; on error nothing changes.
    fn change_mtu(_dev: &NetDev<Self>, _rtnl: &Rtnl<'_>, _new_mtu: u32) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// The unicast or multicast address lists changed (`ndo_set_rx_mode`). Runs with the
    /// address list lock held, in atomic context.
    fn set_rx_mode(_dev: &NetDev<Self>) {
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

    /// Names of the driver's `ethtool -S` statistics, in the order [`Driver::get_ethtool_stats`]
    /// fills them in. Each must be shorter than `ETH_GSTRING_LEN` (32) bytes.
    const ETHTOOL_STATS: &'static [&'static CStr] = &[];

    /// Fills in the values of [`Driver::ETHTOOL_STATS`]; `data` has one slot per name.
    fn get_ethtool_stats(_dev: &NetDev<Self>, _data: &mut [u64]) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Reports the driver's name and the device's bus address (`ethtool -i`).
    fn get_drvinfo(_dev: &NetDev<Self>, _info: &mut DrvInfo) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Reports the link settings (`ethtool <dev>`), under the RTNL.
    fn get_link_ksettings(_dev: &NetDev<Self>, _settings: &mut LinkKsettings) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Reports statistics (`ndo_get_stats64`). May run in any context.
    fn get_stats64(_dev: &NetDev<Self>, _stats: &mut Stats64) {
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

impl<T> Deref for NetDev<T> {
    type Target = Device;

    fn deref(&self) -> &Device {
        &self.dev
    }
}

struct Ops<T>(PhantomData<T>);

impl<T: Driver> Ops<T> {
    const OPS: bindings::net_device_ops = bindings::net_device_ops {
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
        ndo_validate_addr: Some(bindings::eth_validate_addr),
        ndo_set_mac_address: Some(bindings::eth_mac_addr),
        // SAFETY: All-zero is valid for the remaining fields (no callback).
        ..unsafe { core::mem::zeroed() }
    };

    /// # Safety
    ///
    /// Called by the networking core on a device of [`Registration<T>`].
    unsafe extern "C" fn open(dev: *mut bindings::net_device) -> crate::ffi::c_int {
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
    unsafe extern "C" fn stop(dev: *mut bindings::net_device) -> crate::ffi::c_int {
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
    unsafe extern "C" fn start_xmit(
        skb: *mut bindings::sk_buff,
        dev: *mut bindings::net_device,
    ) -> bindings::netdev_tx_t {
        // SAFETY: The core hands us a valid, non-null skb to own.
        let skb = unsafe { SkBuff::from_raw(NonNull::new_unchecked(skb)) };
        // SAFETY: `dev` is one of our devices.
        match T::start_xmit(unsafe { NetDev::from_raw(dev) }, skb) {
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
    unsafe extern "C" fn select_queue(
        dev: *mut bindings::net_device,
        skb: *mut bindings::sk_buff,
        _sb_dev: *mut bindings::net_device,
    ) -> u16 {
        // SAFETY: The core passes a valid skb and keeps owning it.
        let skb = unsafe { SkBuff::borrow_raw(skb) };
        // SAFETY: `dev` is one of our devices.
        T::select_queue(unsafe { NetDev::from_raw(dev) }, &skb)
    }

    /// # Safety
    ///
    /// Called by the networking core on a device of [`Registration<T>`] with a valid `skb` it
    /// keeps owning.
    unsafe extern "C" fn features_check(
        skb: *mut bindings::sk_buff,
        dev: *mut bindings::net_device,
        features: bindings::netdev_features_t,
    ) -> bindings::netdev_features_t {
        // SAFETY: The core passes a valid skb and keeps owning it.
        let skb = unsafe { SkBuff::borrow_raw(skb) };
        // SAFETY: `dev` is one of our devices.
        T::features_check(unsafe { NetDev::from_raw(dev) }, &skb, features)
    }

    /// # Safety
    ///
    /// Called by the networking core on a device of [`Registration<T>`], under the RTNL.
    unsafe extern "C" fn change_mtu(
        dev: *mut bindings::net_device,
        new_mtu: crate::ffi::c_int,
    ) -> crate::ffi::c_int {
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
    unsafe extern "C" fn set_rx_mode(dev: *mut bindings::net_device) {
        // SAFETY: `dev` is one of our devices.
        T::set_rx_mode(unsafe { NetDev::from_raw(dev) });
    }

    /// # Safety
    ///
    /// Called by the networking core on a device of [`Registration<T>`], under the RTNL.
    unsafe extern "C" fn vlan_rx_add_vid(
        dev: *mut bindings::net_device,
        proto: bindings::__be16,
        vid: u16,
    ) -> crate::ffi::c_int {
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
    unsafe extern "C" fn vlan_rx_kill_vid(
        dev: *mut bindings::net_device,
        proto: bindings::__be16,
        vid: u16,
    ) -> crate::ffi::c_int {
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
    unsafe extern "C" fn get_stats64(
        dev: *mut bindings::net_device,
        stats: *mut bindings::rtnl_link_stats64,
    ) {
        // SAFETY: `stats` is valid and exclusively ours for the call; `Stats64` is transparent.
        let stats = unsafe { &mut *stats.cast::<Stats64>() };
        // SAFETY: `dev` is one of our devices.
        T::get_stats64(unsafe { NetDev::from_raw(dev) }, stats);
    }
}

struct EthOps<T>(PhantomData<T>);

impl<T: Driver> EthOps<T> {
    const OPS: bindings::ethtool_ops = bindings::ethtool_ops {
        get_drvinfo: if T::HAS_GET_DRVINFO {
            Some(Self::get_drvinfo)
        } else {
            None
        },
        get_link: Some(bindings::ethtool_op_get_link),
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
    unsafe extern "C" fn get_link_ksettings(
        dev: *mut bindings::net_device,
        ks: *mut bindings::ethtool_link_ksettings,
    ) -> crate::ffi::c_int {
        from_result(|| {
            // SAFETY: `ks` is valid and ours for the call; `LinkKsettings` is transparent.
            let ks = unsafe { &mut *ks.cast::<LinkKsettings>() };
            // SAFETY: `dev` is one of our devices.
            T::get_link_ksettings(unsafe { NetDev::from_raw(dev) }, ks)?;
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Called by ethtool on a device of [`Registration<T>`].
    unsafe extern "C" fn get_sset_count(
        _dev: *mut bindings::net_device,
        sset: crate::ffi::c_int,
    ) -> crate::ffi::c_int {
        if sset == bindings::ethtool_stringset_ETH_SS_STATS as crate::ffi::c_int {
            T::ETHTOOL_STATS.len() as crate::ffi::c_int
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
        let len = bindings::ETH_GSTRING_LEN as usize;
        // SAFETY: ethtool allocated `ETH_GSTRING_LEN` bytes per string we reported.
        let buf = unsafe { core::slice::from_raw_parts_mut(data, len * T::ETHTOOL_STATS.len()) };
        for (slot, name) in buf.chunks_exact_mut(len).zip(T::ETHTOOL_STATS) {
            let name = name.to_bytes();
            let n = name.len().min(len - 1);
            slot[..n].copy_from_slice(&name[..n]);
            slot[n..].fill(0);
        }
    }

    /// # Safety
    ///
    /// Called by ethtool on a device of [`Registration<T>`] with `data` holding one `u64` per
    /// statistic we reported.
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

/// A registered Ethernet device driven by `T`; unregistered and freed on drop.
///
/// # Invariants
///
/// `dev` was allocated with a private area holding an initialised `T`, has `Ops<T>` as its
/// `netdev_ops`, and is registered.
pub struct Registration<T: Driver> {
    dev: NonNull<bindings::net_device>,
    _t: PhantomData<T>,
}

// SAFETY: The device can be unregistered and freed from any thread; `T` is `Send`.
unsafe impl<T: Driver> Send for Registration<T> {}

// SAFETY: `&Registration` only gives `&NetDev<T>`, and `T` is `Sync`.
unsafe impl<T: Driver> Sync for Registration<T> {}

/// Settings applied to a device before it is registered.
pub struct Config<'a> {
    /// Name or name template (e.g. `c"rnet%d"`).
    pub name: &'a CStr,
    /// Number of transmit and receive queues.
    pub queues: u32,
    /// Use a random locally administered MAC address.
    pub random_mac: bool,
}

impl<T: Driver> Registration<T> {
    /// Allocates an Ethernet device with `init` as its private data, and registers it.
    ///
    /// Takes the RTNL, so it must not be called with the RTNL held.
    pub fn new(config: Config<'_>, init: impl PinInit<T, Error>) -> Result<Self> {
        const {
            assert!(
                core::mem::align_of::<T>() <= bindings::NETDEV_ALIGN as usize,
                "the private data needs a larger alignment than netdev_priv() gives"
            )
        };
        let size = i32::try_from(core::mem::size_of::<T>()).map_err(|_| EINVAL)?;
        // SAFETY: Valid arguments; `ether_setup` is the Ethernet setup function.
        let dev = unsafe {
            bindings::alloc_netdev_mqs(
                size,
                config.name.as_char_ptr(),
                bindings::NET_NAME_ENUM as u8,
                Some(bindings::ether_setup),
                config.queues,
                config.queues,
            )
        };
        let dev = NonNull::new(dev).ok_or(ENOMEM)?;
        let raw = dev.as_ptr();
        // SAFETY: `raw` is a valid device.
        let slot = unsafe { bindings::netdev_priv(raw) }.cast::<T>();
        // SAFETY: The private area is sized and aligned for `T` (checked above) and not yet
        // initialised; on error the initialiser cleans up after itself.
        let res = unsafe { pin_init::raw_try_init(slot, init) };
        if let Err(e) = res {
            // SAFETY: Allocated above and never registered.
            unsafe { bindings::free_netdev(raw) };
            return Err(e);
        }
        // SAFETY: `raw` is valid and not yet visible to anyone else.
        unsafe {
            (*raw).netdev_ops = &Ops::<T>::OPS;
            (*raw).ethtool_ops = &EthOps::<T>::OPS;
            if config.random_mac {
                bindings::eth_hw_addr_random(raw);
            }
        }
        // SAFETY: The device is fully set up.
        if let Err(e) = to_result(unsafe { bindings::register_netdev(raw) }) {
            // SAFETY: Not registered: drop the private data, then free the device.
            unsafe {
                core::ptr::drop_in_place(bindings::netdev_priv(raw).cast::<T>());
                bindings::free_netdev(raw);
            }
            return Err(e);
        }
        // INVARIANT: Allocated with an initialised `T`, `Ops<T>` and registered.
        Ok(Self {
            dev,
            _t: PhantomData,
        })
    }

    /// The registered device.
    pub fn dev(&self) -> &NetDev<T> {
        // SAFETY: By the type invariant the device is ours, valid and initialised.
        unsafe { NetDev::from_raw(self.dev.as_ptr()) }
    }
}

impl<T: Driver> Drop for Registration<T> {
    fn drop(&mut self) {
        let raw = self.dev.as_ptr();
        // SAFETY: Registered (type invariant). After `unregister_netdev` returns, no callback
        // runs any more and all references are gone, so the private data can be dropped and the
        // device freed.
        unsafe {
            bindings::unregister_netdev(raw);
            core::ptr::drop_in_place(bindings::netdev_priv(raw).cast::<T>());
            bindings::free_netdev(raw);
        }
    }
}

#[macros::kunit_tests(rust_net_netdev)]
mod tests {
    use super::*;
    use crate::net::{
        notifier::{self, Event, Notify},
        rtnl::{Rtnl, RtnlGuard},
    };
    use crate::sync::{
        atomic::{Atomic, Relaxed},
        Arc,
    };

    #[pin_data]
    struct TestDev {
        rx_mode: Atomic<u32>,
        sent_on_1: Atomic<u32>,
    }

    #[vtable]
    impl Driver for TestDev {
        fn start_xmit(dev: &NetDev<Self>, skb: SkBuff) -> TxResult {
            if skb.queue_mapping() == 1 && skb.len() == 60 {
                dev.data().sent_on_1.add(1, Relaxed);
            }
            skb.consume();
            TxResult::Ok
        }

        fn select_queue(_dev: &NetDev<Self>, _skb: &SkBuff) -> u16 {
            1
        }

        fn change_mtu(_dev: &NetDev<Self>, _rtnl: &Rtnl<'_>, new_mtu: u32) -> Result {
            // This device takes even MTUs only.
            if new_mtu % 2 == 0 {
                Ok(())
            } else {
                Err(EINVAL)
            }
        }

        fn set_rx_mode(dev: &NetDev<Self>) {
            dev.data().rx_mode.add(1, Relaxed);
        }

        fn get_stats64(_dev: &NetDev<Self>, stats: &mut Stats64) {
            stats.set_rx(11, 1100);
            stats.set_tx(22, 2200);
            stats.set_dropped(3, 4);
        }
    }

    /// Counts REGISTER and UNREGISTER events of devices named "rtest*".
    struct Watch {
        register: Atomic<u32>,
        unregister: Atomic<u32>,
    }

    struct Watcher(Arc<Watch>);

    impl Notify for Watcher {
        fn notify(&self, rtnl: &Rtnl<'_>, event: Event, dev: &Device) -> Result {
            if dev.name(rtnl).to_bytes().starts_with(b"rtest") {
                match event {
                    Event::Register => self.0.register.add(1, Relaxed),
                    Event::Unregister => self.0.unregister.add(1, Relaxed),
                    _ => {}
                }
            }
            Ok(())
        }
    }

    #[test]
    fn register_stats_unregister() -> Result {
        let watch = Arc::new(
            Watch {
                register: Atomic::new(0),
                unregister: Atomic::new(0),
            },
            GFP_KERNEL,
        )?;
        let nb = KBox::pin_init(
            notifier::Registration::new(Watcher(watch.clone())),
            GFP_KERNEL,
        )?;
        let reg = Registration::new(
            Config {
                name: c"rtest%d",
                queues: 2,
                random_mac: true,
            },
            try_pin_init!(TestDev {
                rx_mode: Atomic::new(0),
                sent_on_1: Atomic::new(0),
            }),
        )?;
        let ifindex = reg.dev().ifindex();
        assert!(ifindex > 0);
        assert_eq!(watch.register.load(Relaxed), 1);
        {
            let rtnl = RtnlGuard::lock();
            assert!(reg
                .dev()
                .name(&rtnl.token())
                .to_bytes()
                .starts_with(b"rtest"));
        }
        let found = Device::get_by_name_init_net(c"rtest0").ok_or(ENODEV)?;
        assert_eq!(found.ifindex(), ifindex);
        drop(found);

        let s = reg.dev().stats();
        assert_eq!((s.rx_packets(), s.tx_packets()), (11, 22));
        assert_eq!((s.rx_dropped(), s.tx_dropped()), (3, 4));

        // Control-plane operations on a registered device.
        {
            let dev = reg.dev();
            let rtnl = RtnlGuard::lock();
            let r = rtnl.token();
            assert!(!dev.is_running());
            dev.open(&r)?;
            assert!(dev.is_running() && dev.is_up());
            // Opening programs the address filters.
            assert!(dev.data().rx_mode.load(Relaxed) > 0);
            assert_eq!(dev.mtu(), 1500);
            dev.set_mtu(&r, 1400)?;
            assert_eq!(dev.mtu(), 1400);
            // The driver's change_mtu refuses odd MTUs: nothing changes.
            assert_eq!(dev.set_mtu(&r, 1401), Err(EINVAL));
            assert_eq!(dev.mtu(), 1400);
            // Above the maximum: refused, nothing changes.
            assert_eq!(dev.set_mtu(&r, dev.max_mtu() + 1), Err(EINVAL));
            assert_eq!(dev.mtu(), 1400);
            // A random address is locally administered unicast, and not permanent.
            let addr = dev.addr(&r);
            assert_eq!(addr.len(), 6);
            assert!(addr[0] & 0x02 != 0 && addr[0] & 0x01 == 0);
            assert!(dev.perm_addr().iter().all(|b| *b == 0));
            assert!(dev.parent().is_none() && !dev.parent_is_pci());
            let lo = Device::get_by_name_init_net(c"lo").ok_or(ENODEV)?;
            assert!(dev.same_net(&lo));
        }
        // Transmit through the stack: select_queue picks queue 1, start_xmit sees it there.
        SkBuff::from_data(&[0u8; 60], GFP_KERNEL)?.transmit(reg.dev())?;
        for _ in 0..200 {
            if reg.dev().data().sent_on_1.load(Relaxed) > 0 {
                break;
            }
            crate::time::delay::fsleep(crate::time::Delta::from_millis(5));
        }
        assert_eq!(reg.dev().data().sent_on_1.load(Relaxed), 1);
        {
            let rtnl = RtnlGuard::lock();
            reg.dev().close(&rtnl.token());
            assert!(!reg.dev().is_running());
        }

        drop(reg);
        assert_eq!(watch.unregister.load(Relaxed), 1);
        assert!(Device::get_by_name_init_net(c"rtest0").is_none());
        drop(nb);
        Ok(())
    }
}

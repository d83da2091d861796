// SPDX-License-Identifier: GPL-2.0

//! Network devices.
//!
//! C header: [`include/linux/netdevice.h`](srctree/include/linux/netdevice.h)

use crate::{
    bindings, device,
    error::to_result,
    net::rtnl::Rtnl,
    prelude::*,
    str::CStr,
    sync::aref::{ARef, AlwaysRefCounted},
    types::Opaque,
};
use core::ptr::{self, NonNull};

/// A network device.
///
/// Wraps the kernel's [`struct net_device`]. Shared references to it are handed out by the
/// networking core (in callbacks and notifiers) and owned references are [`ARef<Device>`],
/// backed by the device's reference count (`dev_hold`/`dev_put`).
///
/// # Invariants
///
/// A `Device` is only ever reached through a pointer to a `struct net_device` that is valid,
/// i.e. whose reference count is above zero or that is otherwise kept alive (for example by the
/// RTNL or an RCU read-side section), for as long as the reference is used.
///
/// [`struct net_device`]: srctree/include/linux/netdevice.h
#[repr(transparent)]
pub struct Device(Opaque<bindings::net_device>);

// SAFETY: A `net_device` may be used from any thread; every mutation goes through the kernel's
// own synchronisation (RTNL, RCU, atomics).
unsafe impl Send for Device {}

// SAFETY: Shared access from several threads only reads, or calls into C functions that are
// safe to call concurrently.
unsafe impl Sync for Device {}

// SAFETY: `dev_hold`/`dev_put` maintain the device's reference count; the device stays
// allocated while it is above zero.
unsafe impl AlwaysRefCounted for Device {
    #[inline]
    fn inc_ref(&self) {
        // SAFETY: By the type invariant the device is valid.
        unsafe { bindings::dev_hold(self.as_raw()) };
    }

    #[inline]
    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: The caller owns a reference from a previous `inc_ref`.
        unsafe { bindings::dev_put(obj.as_ptr().cast()) };
    }
}

impl Device {
    /// Creates a reference to a [`Device`] from a raw pointer.
    ///
    /// # Safety
    ///
    /// `ptr` must point to a valid `struct net_device` that stays valid for the lifetime `'a`.
    #[inline]
    pub unsafe fn from_raw<'a>(ptr: *mut bindings::net_device) -> &'a Self {
        // SAFETY: `Device` is `repr(transparent)` over the C struct, and the caller guarantees
        // the pointer is valid for `'a`.
        unsafe { &*ptr.cast() }
    }

    /// The raw `struct net_device` pointer.
    #[inline]
    pub fn as_raw(&self) -> *mut bindings::net_device {
        self.0.get()
    }

    /// Looks a device up by name in the initial network namespace; takes a reference.
    ///
    /// # Examples
    ///
    /// ```
    /// use kernel::net::dev::Device;
    ///
    /// let lo = Device::get_by_name_init_net(c"lo").expect("loopback exists");
    /// assert_eq!(lo.ifindex(), 1);
    /// assert!(Device::get_by_name_init_net(c"no-such-dev0").is_none());
    /// ```
    pub fn get_by_name_init_net(name: &CStr) -> Option<ARef<Self>> {
        // SAFETY: `init_net` is always valid and `name` is NUL-terminated. On success the
        // function returns a device with a reference taken for us.
        let ptr = unsafe {
            bindings::dev_get_by_name(ptr::addr_of_mut!(bindings::init_net), name.as_char_ptr())
        };
        let ptr = NonNull::new(ptr)?;
        // SAFETY: `ptr` points to a valid device and we own the reference it carries.
        Some(unsafe { ARef::from_raw(ptr.cast()) })
    }

    /// The interface index.
    #[inline]
    pub fn ifindex(&self) -> i32 {
        // SAFETY: By the type invariant the device is valid; `ifindex` is set at registration
        // and does not change afterwards.
        unsafe { (*self.as_raw()).ifindex }
    }

    /// The device's name. The RTNL keeps it from changing while it is borrowed.
    pub fn name<'a>(&'a self, _rtnl: &'a Rtnl<'_>) -> &'a CStr {
        // SAFETY: The device is valid, and `name` is a NUL-terminated array that only changes
        // under the RTNL, which the token proves is held for `'a`.
        unsafe { CStr::from_char_ptr((*self.as_raw()).name.as_ptr()) }
    }

    /// The hardware address (`dev_addr`); it changes only under the RTNL.
    pub fn addr<'a>(&'a self, _rtnl: &'a Rtnl<'_>) -> &'a [u8] {
        // SAFETY: The device is valid; `dev_addr` points to `addr_len` bytes that only change
        // under the RTNL, held for `'a`.
        unsafe {
            let d = self.as_raw();
            core::slice::from_raw_parts((*d).dev_addr, usize::from((*d).addr_len))
        }
    }

    /// The permanent hardware address (`perm_addr`), all zero if the device has none (for
    /// example when its address is random).
    pub fn perm_addr(&self) -> &[u8] {
        // SAFETY: The device is valid; `perm_addr` is set before registration and never changes
        // afterwards, and `addr_len` is at most its size.
        unsafe {
            let d = self.as_raw();
            core::slice::from_raw_parts(
                (&raw const (*d).perm_addr).cast::<u8>(),
                usize::from((*d).addr_len),
            )
        }
    }

    /// The features currently enabled (`NETIF_F_*`).
    pub fn features(&self) -> u64 {
        // SAFETY: The device is valid; features change under the RTNL, hence the volatile read.
        unsafe { ptr::read_volatile(ptr::addr_of!((*self.as_raw()).features)) }
    }

    /// The device's parent, e.g. the PCI or virtio device it drives, if any.
    pub fn parent(&self) -> Option<&device::Device> {
        // SAFETY: The device is valid; its parent is set before registration and outlives it.
        let parent = unsafe { (*self.as_raw()).dev.parent };
        if parent.is_null() {
            None
        } else {
            // SAFETY: A non-null parent is a valid `struct device`, kept alive by the reference
            // the net device's own `struct device` holds on it.
            Some(unsafe { device::Device::from_raw(parent) })
        }
    }

    /// Whether the device's parent is a PCI device (`dev_is_pci()`).
    pub fn parent_is_pci(&self) -> bool {
        #[cfg(CONFIG_PCI)]
        {
            self.parent()
                .is_some_and(|p| <&crate::pci::Device>::try_from(p).is_ok())
        }
        #[cfg(not(CONFIG_PCI))]
        false
    }

    /// Whether `self` and `other` are in the same network namespace.
    pub fn same_net(&self, other: &Device) -> bool {
        // SAFETY: Both devices are valid.
        unsafe { bindings::dev_net(self.as_raw()) == bindings::dev_net(other.as_raw()) }
    }

    /// The private flags (`IFF_*` of `enum netdev_priv_flags`, invisible to userspace).
    pub fn priv_flags(&self) -> u32 {
        // SAFETY: The device is valid; the accessor reads the 32-bit `priv_flags` bitfield
        // through a raw pointer. The flags change under the RTNL.
        let flags = unsafe {
            bindings::net_device__bindgen_ty_1__bindgen_ty_1::priv_flags_raw(
                &raw const (*self.as_raw()).__bindgen_anon_1.__bindgen_anon_1,
            )
        };
        // The bitfield is 32 bits wide.
        flags as u32
    }

    /// Whether the device is a failover slave (`netif_is_failover_slave()`).
    pub fn is_failover_slave(&self) -> bool {
        self.priv_flags() & bindings::netdev_priv_flags_IFF_FAILOVER_SLAVE != 0
    }

    /// Marks the device as a failover slave, or clears the mark: sets `IFF_FAILOVER_SLAVE` and
    /// `IFF_NO_ADDRCONF` (the stack then gives it no addresses of its own), as the failover core
    /// does for the devices it enslaves.
    pub fn set_failover_slave(&self, _rtnl: &Rtnl<'_>, slave: bool) {
        let mask = bindings::netdev_priv_flags_IFF_FAILOVER_SLAVE
            | bindings::netdev_priv_flags_IFF_NO_ADDRCONF;
        let flags = if slave {
            self.priv_flags() | mask
        } else {
            self.priv_flags() & !mask
        };
        // SAFETY: The device is valid and the RTNL, which serialises writers of `priv_flags`,
        // is held.
        unsafe {
            bindings::net_device__bindgen_ty_1__bindgen_ty_1::set_priv_flags_raw(
                &raw mut (*self.as_raw()).__bindgen_anon_1.__bindgen_anon_1,
                flags as crate::ffi::c_ulong,
            )
        };
    }

    /// Brings the device up (`dev_open()`), as `ip link set up` does.
    pub fn open(&self, _rtnl: &Rtnl<'_>) -> Result {
        // SAFETY: The device is valid and the RTNL is held.
        to_result(unsafe { bindings::dev_open(self.as_raw(), ptr::null_mut()) })
    }

    /// Brings the device down (`dev_close()`).
    pub fn close(&self, _rtnl: &Rtnl<'_>) {
        // SAFETY: The device is valid and the RTNL is held.
        unsafe { bindings::dev_close(self.as_raw()) };
    }

    /// Changes the MTU (`dev_set_mtu()`); an MTU outside the device's limits is refused with
    /// `EINVAL` and nothing changes.
    pub fn set_mtu(&self, _rtnl: &Rtnl<'_>, mtu: u32) -> Result {
        let mtu = i32::try_from(mtu).map_err(|_| EINVAL)?;
        // SAFETY: The device is valid and the RTNL is held.
        to_result(unsafe { bindings::dev_set_mtu(self.as_raw(), mtu) })
    }

    /// The current MTU.
    #[inline]
    pub fn mtu(&self) -> u32 {
        // SAFETY: The device is valid; the MTU may change concurrently, hence the volatile read
        // (`READ_ONCE` in C).
        unsafe { ptr::read_volatile(ptr::addr_of!((*self.as_raw()).mtu)) }
    }

    /// The smallest MTU the device accepts.
    #[inline]
    pub fn min_mtu(&self) -> u32 {
        // SAFETY: The device is valid; set by the driver before registration.
        unsafe { (*self.as_raw()).min_mtu }
    }

    /// The largest MTU the device accepts; 0 means no limit (as for loopback).
    #[inline]
    pub fn max_mtu(&self) -> u32 {
        // SAFETY: The device is valid; set by the driver before registration.
        unsafe { (*self.as_raw()).max_mtu }
    }

    /// The interface flags (`IFF_*`, as in `ip link`).
    #[inline]
    pub fn flags(&self) -> u32 {
        // SAFETY: The device is valid; flags change under the RTNL, hence the volatile read.
        unsafe { ptr::read_volatile(ptr::addr_of!((*self.as_raw()).flags)) }
    }

    /// Whether the device is administratively up (`IFF_UP`).
    #[inline]
    pub fn is_up(&self) -> bool {
        self.flags() & bindings::net_device_flags_IFF_UP != 0
    }

    /// Whether the device is running (`netif_running()`): opened and not stopped.
    #[inline]
    pub fn is_running(&self) -> bool {
        // SAFETY: The device is valid.
        unsafe { bindings::netif_running(self.as_raw()) }
    }

    /// Whether the device has carrier (`netif_carrier_ok()`).
    #[inline]
    pub fn carrier_ok(&self) -> bool {
        // SAFETY: The device is valid.
        unsafe { bindings::netif_carrier_ok(self.as_raw()) }
    }

    /// Signals that the link is up (`netif_carrier_on()`).
    pub fn carrier_on(&self) {
        // SAFETY: The device is valid.
        unsafe { bindings::netif_carrier_on(self.as_raw()) };
    }

    /// Signals that the link is down (`netif_carrier_off()`).
    pub fn carrier_off(&self) {
        // SAFETY: The device is valid.
        unsafe { bindings::netif_carrier_off(self.as_raw()) };
    }

    /// Allows transmission on all queues (`netif_tx_start_all_queues()`).
    pub fn tx_start_all_queues(&self) {
        // SAFETY: The device is valid.
        unsafe { bindings::netif_tx_start_all_queues(self.as_raw()) };
    }

    /// Allows transmission on all queues and reschedules them (`netif_tx_wake_all_queues()`).
    pub fn tx_wake_all_queues(&self) {
        // SAFETY: The device is valid.
        unsafe { bindings::netif_tx_wake_all_queues(self.as_raw()) };
    }

    /// Stops transmission on all queues (`netif_tx_stop_all_queues()`).
    pub fn tx_stop_all_queues(&self) {
        // SAFETY: The device is valid.
        unsafe { bindings::netif_tx_stop_all_queues(self.as_raw()) };
    }

    /// The device's statistics (`dev_get_stats()`), as `ip -s link` shows them.
    pub fn stats(&self) -> crate::net::netdev::Stats64 {
        let mut storage = core::mem::MaybeUninit::<bindings::rtnl_link_stats64>::zeroed();
        // SAFETY: The device is valid and `storage` is a writable `rtnl_link_stats64`;
        // `dev_get_stats` fills it in (and may be called in any context).
        unsafe { bindings::dev_get_stats(self.as_raw(), storage.as_mut_ptr()) };
        // SAFETY: Zero-initialised, then filled in: a valid value.
        crate::net::netdev::Stats64::from_raw(unsafe { storage.assume_init() })
    }

    /// The number of references held on the device (`netdev_refcnt_read()`).
    ///
    /// For tests and diagnostics: the value can change at any time.
    pub fn refcnt(&self) -> i32 {
        // SAFETY: The device is valid.
        unsafe { bindings::netdev_refcnt_read(self.as_raw()) }
    }
}

#[macros::kunit_tests(rust_net_dev)]
mod tests {
    use super::*;
    use crate::net::rtnl::{self, RtnlGuard};

    #[test]
    fn loopback_accessors() {
        let lo = Device::get_by_name_init_net(c"lo").expect("loopback exists");
        assert_eq!(lo.ifindex(), 1);
        let guard = RtnlGuard::lock();
        assert!(rtnl::is_locked());
        assert_eq!(lo.name(&guard.token()), c"lo");
        drop(guard);
        // Loopback has a 64 KiB MTU and no maximum.
        assert_eq!(lo.mtu(), 65536);
        assert_eq!(lo.max_mtu(), 0);
        assert!(lo.mtu() >= lo.min_mtu());
    }

    #[test]
    fn references_return_to_start() {
        let lo = Device::get_by_name_init_net(c"lo").expect("loopback exists");
        let start = lo.refcnt();
        let more = lo.clone();
        assert_eq!(lo.refcnt(), start + 1);
        drop(more);
        assert_eq!(lo.refcnt(), start);
    }
}

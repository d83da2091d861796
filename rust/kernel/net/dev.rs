// SPDX-License-Identifier: GPL-2.0

//! Network devices.
//!
//! C header: [`include/linux/netdevice.h`](srctree/include/linux/netdevice.h)

use crate::{
    bindings,
    device,
    error::to_result,
    net::{
        ethtool::LinkKsettings,
        rtnl::Rtnl, //
    },
    prelude::*,
    str::CStr,
    sync::aref::{
        ARef,
        AlwaysRefCounted, //
    },
    types::Opaque, //
};
use core::ptr::{
    self,
    NonNull, //
};

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

/// A tracked reference to a [`Device`] (`netdev_hold()`/`netdev_put()`).
///
/// Like [`ARef<Device>`], it keeps the device from being freed; in addition, with
/// `CONFIG_NET_DEV_REFCNT_TRACKER`, the reference is tracked: a reference still held when the
/// device unregisters is reported with the stack that took it. Long-lived references (a master's
/// slaves, a handler's device) should be `DeviceRef`s; [`ARef<Device>`] is for short-lived ones.
///
/// # Invariants
///
/// `dev` points to a valid `net_device` on which this value holds one reference, recorded in
/// `tracker`.
///
/// # Examples
///
/// ```
/// use kernel::net::dev::{Device, DeviceRef};
/// use kernel::prelude::*;
///
/// let lo = Device::get_by_name_init_net(c"lo").expect("loopback exists");
/// let start = lo.refcnt();
/// let held = DeviceRef::new(&lo, GFP_KERNEL);
/// assert_eq!(held.ifindex(), 1);
/// assert_eq!(lo.refcnt(), start + 1);
/// drop(held);
/// assert_eq!(lo.refcnt(), start);
/// ```
pub struct DeviceRef {
    dev: NonNull<bindings::net_device>,
    tracker: bindings::netdevice_tracker,
}

// SAFETY: The reference may be released from any thread, and `Device` is `Sync`.
unsafe impl Send for DeviceRef {}

// SAFETY: `&DeviceRef` only gives `&Device`, which is `Sync`.
unsafe impl Sync for DeviceRef {}

impl DeviceRef {
    /// Takes a tracked reference on `dev`; `flags` is for the tracker's bookkeeping.
    pub fn new(dev: &Device, flags: crate::alloc::Flags) -> Self {
        // SAFETY: All-zero is the "no tracker" value of `netdevice_tracker` (a pointer, or an
        // empty struct without `CONFIG_NET_DEV_REFCNT_TRACKER`).
        let mut tracker: bindings::netdevice_tracker = unsafe { core::mem::zeroed() };
        // SAFETY: `dev` is valid; `tracker` is ours to fill in.
        unsafe { bindings::netdev_hold(dev.as_raw(), &mut tracker, flags.as_raw()) };
        // INVARIANT: One reference was taken and recorded in `tracker`. The tracker holds a
        // pointer to separately allocated bookkeeping, so it may move with `self`.
        Self {
            dev: NonNull::from(dev).cast(),
            tracker,
        }
    }
}

impl core::ops::Deref for DeviceRef {
    type Target = Device;

    #[inline]
    fn deref(&self) -> &Device {
        // SAFETY: The reference keeps the device valid while `self` exists (type invariant).
        unsafe { Device::from_raw(self.dev.as_ptr()) }
    }
}

impl Drop for DeviceRef {
    fn drop(&mut self) {
        // SAFETY: We hold one reference, recorded in `tracker` (type invariant).
        unsafe { bindings::netdev_put(self.dev.as_ptr(), &mut self.tracker) };
    }
}

/// A device whose instance lock the current thread holds, if the device uses one ("ops
/// locked" devices, see `netdev_need_ops_lock()`), together with the RTNL.
///
/// The networking core calls some notifiers (e.g. for [`Event::Register`], [`Event::Up`] and
/// [`Event::ChangeName`]) in that state; code running there must use the operations of this
/// type, not the [`Device`] ones, which take the instance lock themselves. Elsewhere,
/// [`Device::lock_ops`] gives one.
///
/// [`Event::Register`]: crate::net::notifier::Event::Register
/// [`Event::Up`]: crate::net::notifier::Event::Up
/// [`Event::ChangeName`]: crate::net::notifier::Event::ChangeName
///
/// A token from [`Device::lock_ops`] lives no longer than the lock:
///
/// ```ignore,compile_fail,E0505
/// use kernel::net::{dev::Device, rtnl::RtnlGuard};
///
/// fn reopen(dev: &Device) {
///     let rtnl = RtnlGuard::lock();
///     let r = rtnl.token();
///     let guard = dev.lock_ops(&r);
///     let locked = &*guard;
///     drop(guard);
///     let _ = locked.open();
/// }
/// ```
///
/// # Invariants
///
/// The RTNL is held and, if `netdev_need_ops_lock(dev)`, so is `dev`'s instance lock, for `'a`.
pub struct OpsLocked<'a> {
    dev: &'a Device,
    _not_send: crate::types::NotThreadSafe,
}

impl<'a> OpsLocked<'a> {
    /// # Safety
    ///
    /// The caller must hold the RTNL and, if the device needs one, its instance lock, for `'a`.
    pub unsafe fn assume_locked(dev: &'a Device) -> Self {
        // INVARIANT: Guaranteed by the caller.
        Self {
            dev,
            _not_send: crate::types::NotThreadSafe,
        }
    }

    /// The device.
    #[inline]
    pub fn dev(&self) -> &'a Device {
        self.dev
    }

    /// Brings the device up (`netif_open()`).
    pub fn open(&self) -> Result {
        // SAFETY: The device is valid; the RTNL and the instance lock are held (invariant).
        to_result(unsafe { bindings::netif_open(self.dev.as_raw(), ptr::null_mut()) })
    }

    /// Brings the device down (`netif_close()`).
    pub fn close(&self) {
        // SAFETY: The device is valid; the RTNL and the instance lock are held (invariant).
        unsafe { bindings::netif_close(self.dev.as_raw()) };
    }

    /// Changes the MTU (`netif_set_mtu()`); refused with `EINVAL` outside the device's limits.
    pub fn set_mtu(&self, mtu: u32) -> Result {
        let mtu = i32::try_from(mtu).map_err(|_| EINVAL)?;
        // SAFETY: The device is valid; the RTNL and the instance lock are held (invariant).
        to_result(unsafe { bindings::netif_set_mtu(self.dev.as_raw(), mtu) })
    }

    /// Adds `inc` to the promiscuity count (`netif_set_promiscuity()`), as
    /// [`Device::set_promiscuity`] does, but leaves the device's address filters to the core's
    /// deferred work where that one programs them before returning (`netif_rx_mode_sync()`).
    pub fn set_promiscuity(&self, inc: i32) -> Result {
        // SAFETY: The device is valid; the RTNL and the instance lock are held (invariant).
        to_result(unsafe { bindings::netif_set_promiscuity(self.dev.as_raw(), inc) })
    }

    /// Adds `inc` to the allmulti count (`netif_set_allmulti()`), as
    /// [`Device::set_allmulti`] does, with the same difference as
    /// [`OpsLocked::set_promiscuity`].
    pub fn set_allmulti(&self, inc: i32) -> Result {
        // SAFETY: The device is valid; the RTNL and the instance lock are held (invariant).
        to_result(unsafe { bindings::netif_set_allmulti(self.dev.as_raw(), inc, true) })
    }
}

/// Holds a device's instance lock (if it uses one) until dropped; see [`Device::lock_ops`].
pub struct OpsLockGuard<'a>(OpsLocked<'a>);

impl<'a> core::ops::Deref for OpsLockGuard<'a> {
    type Target = OpsLocked<'a>;

    fn deref(&self) -> &OpsLocked<'a> {
        &self.0
    }
}

impl Drop for OpsLockGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: Taken in `Device::lock_ops`.
        unsafe { bindings::netdev_unlock_ops(self.0.dev.as_raw()) };
    }
}

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

    /// The interface index. It is set at registration, and changes when the device moves to
    /// another network namespace whose index it already holds (under the RTNL); without the RTNL
    /// the value may be stale.
    #[inline]
    pub fn ifindex(&self) -> i32 {
        // SAFETY: By the type invariant the device is valid. The field is written under the
        // RTNL (`dev_change_net_namespace()`) with a plain store of an aligned `int`; the
        // volatile read (`READ_ONCE()`, as `dev_get_by_index_rcu()` readers do) sees the old
        // or the new value.
        unsafe { ptr::read_volatile(ptr::addr_of!((*self.as_raw()).ifindex)) }
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

    /// Whether the device is in the initial network namespace.
    pub fn in_init_net(&self) -> bool {
        // SAFETY: The device is valid; `init_net` is a static that is always valid.
        unsafe {
            ptr::eq(
                bindings::dev_net(self.as_raw()),
                &raw const bindings::init_net,
            )
        }
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
    pub fn set_failover_slave(&self, rtnl: &Rtnl<'_>, slave: bool) {
        let mask = bindings::netdev_priv_flags_IFF_FAILOVER_SLAVE
            | bindings::netdev_priv_flags_IFF_NO_ADDRCONF;
        if slave {
            self.update_priv_flags(rtnl, mask, 0);
        } else {
            self.update_priv_flags(rtnl, 0, mask);
        }
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

    /// The smallest MTU the device accepts. A driver may change it at run time, under the
    /// RTNL (a master following its lower devices); without the RTNL the value may be stale.
    #[inline]
    pub fn min_mtu(&self) -> u32 {
        // SAFETY: The device is valid. Writers hold the RTNL; the volatile read (`READ_ONCE()`)
        // sees the old or the new value of the aligned field.
        unsafe { ptr::read_volatile(ptr::addr_of!((*self.as_raw()).min_mtu)) }
    }

    /// The largest MTU the device accepts; 0 means no limit (as for loopback). Changes as
    /// [`Device::min_mtu`] does.
    #[inline]
    pub fn max_mtu(&self) -> u32 {
        // SAFETY: As in `min_mtu`.
        unsafe { ptr::read_volatile(ptr::addr_of!((*self.as_raw()).max_mtu)) }
    }

    /// The interface flags (`IFF_*`, as in `ip link`).
    #[inline]
    pub fn flags(&self) -> u32 {
        // SAFETY: The device is valid; flags change under the RTNL, hence the volatile read.
        unsafe { ptr::read_volatile(ptr::addr_of!((*self.as_raw()).flags)) }
    }

    /// Whether the device receives every frame (`IFF_PROMISC`): its promiscuity count is above 0.
    #[inline]
    pub fn is_promisc(&self) -> bool {
        self.flags() & bindings::net_device_flags_IFF_PROMISC != 0
    }

    /// Whether the device receives every multicast frame (`IFF_ALLMULTI`).
    #[inline]
    pub fn is_allmulti(&self) -> bool {
        self.flags() & bindings::net_device_flags_IFF_ALLMULTI != 0
    }

    /// Adds `inc` to the device's promiscuity count (`dev_set_promiscuity()`), as a master does
    /// for its lower devices; the device is promiscuous while the count is above 0. Each
    /// increment must be undone by a decrement: one without an increment leaves the count
    /// wrong, and the device promiscuous. An increment that would wrap the count is refused
    /// with `EOVERFLOW`. Takes the instance lock: where it is held, use
    /// [`OpsLocked::set_promiscuity`].
    pub fn set_promiscuity(&self, _rtnl: &Rtnl<'_>, inc: i32) -> Result {
        // SAFETY: The device is valid and the RTNL is held; `dev_set_promiscuity()` takes the
        // instance lock itself.
        to_result(unsafe { bindings::dev_set_promiscuity(self.as_raw(), inc) })
    }

    /// Adds `inc` to the device's allmulti count (`dev_set_allmulti()`), as
    /// [`Device::set_promiscuity`] does to the promiscuity count.
    pub fn set_allmulti(&self, _rtnl: &Rtnl<'_>, inc: i32) -> Result {
        // SAFETY: The device is valid and the RTNL is held; `dev_set_allmulti()` takes the
        // instance lock itself.
        to_result(unsafe { bindings::dev_set_allmulti(self.as_raw(), inc) })
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

    /// Whether every transmit queue still has the noop qdisc (`qdisc_tx_is_noop()`), which
    /// drops what it is given.
    ///
    /// So it is while the device is down, and for a moment after its carrier came up: the link
    /// watch attaches the real qdiscs (`dev_activate()`) after `netif_carrier_on()`, and only
    /// then raises `NETDEV_CHANGE`. A device with carrier is ready to transmit only once this
    /// is false, as IPv6's `addrconf_link_ready()` checks.
    #[inline]
    pub fn tx_is_noop(&self) -> bool {
        // SAFETY: The device is valid; the function only compares the queues' qdisc pointers.
        unsafe { bindings::qdisc_tx_is_noop(self.as_raw()) }
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
    pub fn stats(&self) -> Stats64 {
        let mut storage = core::mem::MaybeUninit::<bindings::rtnl_link_stats64>::zeroed();
        // SAFETY: The device is valid and `storage` is a writable `rtnl_link_stats64`;
        // `dev_get_stats` fills it in (and may be called in any context).
        unsafe { bindings::dev_get_stats(self.as_raw(), storage.as_mut_ptr()) };
        // SAFETY: Zero-initialised, then filled in: a valid value.
        Stats64::from_raw(unsafe { storage.assume_init() })
    }

    /// Takes the device's instance lock if it uses one (`netdev_lock_ops()`), for the
    /// operations of [`OpsLocked`]. Must not be called where the lock is already held, e.g. in
    /// the notifiers that [`OpsLocked`] lists.
    pub fn lock_ops<'a>(&'a self, _rtnl: &'a Rtnl<'_>) -> OpsLockGuard<'a> {
        // SAFETY: The device is valid; the RTNL is held, and the caller does not hold the lock.
        unsafe { bindings::netdev_lock_ops(self.as_raw()) };
        // SAFETY: The RTNL is held for `'a`, and the instance lock until the guard drops.
        OpsLockGuard(unsafe { OpsLocked::assume_locked(self) })
    }

    /// Whether the device is an Ethernet device (`type == ARPHRD_ETHER`).
    #[inline]
    pub fn is_ether(&self) -> bool {
        // SAFETY: The device is valid; `type` is set before registration.
        u32::from(unsafe { (*self.as_raw()).type_ }) == bindings::ARPHRD_ETHER
    }

    /// The features that VLAN devices on top of this one may use (`vlan_features`).
    pub fn vlan_features(&self) -> u64 {
        // SAFETY: The device is valid; changes happen under the RTNL, hence the volatile read.
        unsafe { ptr::read_volatile(ptr::addr_of!((*self.as_raw()).vlan_features)) }
    }

    /// The features encapsulated traffic may use (`hw_enc_features`).
    pub fn hw_enc_features(&self) -> u64 {
        // SAFETY: The device is valid; changes happen under the RTNL, hence the volatile read.
        unsafe { ptr::read_volatile(ptr::addr_of!((*self.as_raw()).hw_enc_features)) }
    }

    /// The link-layer header length the device needs (`hard_header_len`).
    pub fn hard_header_len(&self) -> u16 {
        // SAFETY: The device is valid; changes happen under the RTNL, hence the volatile read.
        unsafe { ptr::read_volatile(ptr::addr_of!((*self.as_raw()).hard_header_len)) }
    }

    /// The number of transmit queues in use (`real_num_tx_queues`).
    #[inline]
    pub fn real_num_tx_queues(&self) -> u32 {
        // SAFETY: The device is valid; the value changes under the RTNL, hence the volatile
        // read.
        unsafe { ptr::read_volatile(ptr::addr_of!((*self.as_raw()).real_num_tx_queues)) }
    }

    /// Whether the device cannot handle VLAN-tagged traffic (`NETIF_F_VLAN_CHALLENGED`).
    pub fn is_vlan_challenged(&self) -> bool {
        self.features() & features::VLAN_CHALLENGED != 0
    }

    /// Whether VLAN devices are stacked on this device (`vlan_uses_dev()`).
    pub fn vlan_in_use(&self, _rtnl: &Rtnl<'_>) -> bool {
        #[cfg(CONFIG_VLAN_8021Q)]
        {
            // SAFETY: The device is valid and the RTNL is held.
            unsafe { bindings::vlan_uses_dev(self.as_raw()) }
        }
        #[cfg(not(CONFIG_VLAN_8021Q))]
        false
    }

    /// Whether the device lets the stack release dst entries before transmit, permanently
    /// (`IFF_XMIT_DST_RELEASE` and `IFF_XMIT_DST_RELEASE_PERM`); a master may do so only if all
    /// its lower devices do.
    pub fn releases_dst(&self) -> bool {
        let both = bindings::netdev_priv_flags_IFF_XMIT_DST_RELEASE
            | bindings::netdev_priv_flags_IFF_XMIT_DST_RELEASE_PERM;
        self.priv_flags() & both == both
    }

    /// Whether the device is a failover master (`netif_is_failover()`).
    pub fn is_failover(&self) -> bool {
        self.priv_flags() & bindings::netdev_priv_flags_IFF_FAILOVER != 0
    }

    /// Sets or clears a private flag (`IFF_*` of `enum netdev_priv_flags`).
    pub(crate) fn update_priv_flags(&self, _rtnl: &Rtnl<'_>, set: u32, clear: u32) {
        let flags = (self.priv_flags() & !clear) | set;
        // SAFETY: The device is valid and the RTNL, which serialises writers of `priv_flags`,
        // is held.
        unsafe {
            bindings::net_device__bindgen_ty_1__bindgen_ty_1::set_priv_flags_raw(
                &raw mut (*self.as_raw()).__bindgen_anon_1.__bindgen_anon_1,
                flags as c_ulong,
            )
        };
    }

    /// Marks the device as a failover master, or clears the mark (`IFF_FAILOVER`).
    pub fn set_failover(&self, rtnl: &Rtnl<'_>, master: bool) {
        let f = bindings::netdev_priv_flags_IFF_FAILOVER;
        if master {
            self.update_priv_flags(rtnl, f, 0);
        } else {
            self.update_priv_flags(rtnl, 0, f);
        }
    }

    /// Counts a packet dropped on transmit in the core's per-device counters
    /// (`dev_core_stats_tx_dropped_inc()`), reported in the device's statistics.
    #[inline]
    pub fn count_tx_dropped(&self) {
        // SAFETY: The device is valid; the counters are per-CPU and usable in any context.
        unsafe { bindings::dev_core_stats_tx_dropped_inc(self.as_raw()) };
    }

    /// Fills in the link settings of the device, as `ethtool <dev>` shows them
    /// (`__ethtool_get_link_ksettings()`).
    pub fn link_ksettings(&self, _rtnl: &Rtnl<'_>, settings: &mut LinkKsettings) -> Result {
        // SAFETY: The device is valid, the RTNL is held, and `settings` is a writable
        // `ethtool_link_ksettings` (`LinkKsettings` is transparent).
        to_result(unsafe {
            bindings::__ethtool_get_link_ksettings(self.as_raw(), settings.as_raw())
        })
    }

    /// Marks the device as removed (`netif_device_detach()`): its queues stop and the stack
    /// stops using it, before it is unregistered.
    pub fn detach(&self) {
        // SAFETY: The device is valid.
        unsafe { bindings::netif_device_detach(self.as_raw()) };
    }

    /// Calls `f` for each device that is in the same network namespace as `self` when the
    /// call starts, including `self` (`for_each_netdev()`).
    ///
    /// The devices are listed first, each with a reference, and `f` runs after: it may
    /// register, unregister or move devices (under the same RTNL) without disturbing the walk.
    /// Fails with `ENOMEM` if the list cannot be allocated, before calling `f`.
    pub fn for_each_in_net(&self, _rtnl: &Rtnl<'_>, mut f: impl FnMut(&Device)) -> Result {
        let mut devs = KVec::<ARef<Device>>::new();
        // SAFETY: The device is valid; its namespace lives at least as long as it does.
        let net = unsafe { bindings::dev_net(self.as_raw()) };
        // SAFETY: `dev_base_head` is the list of the namespace's devices, linked through their
        // `dev_list`; it only changes under the RTNL, which is held, and nothing below changes
        // it (`push` only allocates).
        let head = unsafe { &raw mut (*net).dev_base_head };
        // SAFETY: As above; the head is valid.
        let mut pos = unsafe { (*head).next };
        while pos != head {
            // SAFETY: `pos` is the `dev_list` of a device on the list.
            let dev = unsafe { crate::container_of!(pos, bindings::net_device, dev_list) };
            // SAFETY: Devices on the list are registered, and stay so while the RTNL is held.
            let dev = unsafe { Device::from_raw(dev) };
            devs.push(dev.into(), GFP_KERNEL)?;
            // SAFETY: `pos` is still on the list, which did not change (see above).
            pos = unsafe { (*pos).next };
        }
        for dev in &devs {
            f(dev);
        }
        Ok(())
    }

    /// Changes the hardware address (`dev_set_mac_address()`), as `ip link set address` does.
    /// The driver may refuse, e.g. an invalid address (`EADDRNOTAVAIL`) or a change while
    /// running (`EBUSY`); nothing changes then.
    pub fn set_mac_address(&self, _rtnl: &Rtnl<'_>, addr: &[u8; 6]) -> Result {
        // SAFETY: All-zero is a valid `sockaddr_storage` (integers only).
        let mut ss: bindings::__kernel_sockaddr_storage = unsafe { core::mem::zeroed() };
        // SAFETY: The family and data are the first member of the storage's union, the one
        // that `netif_set_mac_address()` reads; `__data` has room for far more than 6 bytes.
        // The device is valid and its `type` is set before registration.
        unsafe {
            let sa = &raw mut ss.__bindgen_anon_1.__bindgen_anon_1;
            (*sa).ss_family = (*self.as_raw()).type_;
            let data = (&raw mut (*sa).__data).cast::<u8>();
            ptr::copy_nonoverlapping(addr.as_ptr(), data, addr.len());
        }
        // SAFETY: The device is valid, the RTNL is held (the function takes the instance lock
        // and `dev_addr_sem` itself), and `ss` is a valid address for the call.
        to_result(unsafe { bindings::dev_set_mac_address(self.as_raw(), &mut ss, ptr::null_mut()) })
    }

    /// Tells the stack that the device's state changed (`netdev_state_change()`): raises
    /// [`Event::Change`] with its `netdev_notifier_change_info`, and a netlink message. Takes
    /// the instance lock, so not for code that holds it.
    ///
    /// [`Event::Change`]: crate::net::notifier::Event::Change
    pub fn state_change(&self, _rtnl: &Rtnl<'_>) {
        // SAFETY: The device is valid and the RTNL is held; the function takes the instance
        // lock, which the caller does not hold (an `OpsLocked` is not at hand here).
        unsafe { bindings::netdev_state_change(self.as_raw()) };
    }

    /// Prints a message prefixed with the device's driver, bus and name (`netdev_printk()`);
    /// see [`netdev_info!`] and [`netdev_err!`].
    ///
    /// [`netdev_info!`]: crate::netdev_info
    /// [`netdev_err!`]: crate::netdev_err
    #[doc(hidden)]
    pub fn printk(&self, level: &CStr, msg: core::fmt::Arguments<'_>) {
        #[cfg(CONFIG_PRINTK)]
        // SAFETY: The device is valid; `level` is a NUL-terminated `KERN_*` prefix and "%pA"
        // takes a pointer to `fmt::Arguments`, which we pass.
        unsafe {
            bindings::netdev_printk(
                level.as_char_ptr(),
                self.as_raw(),
                c"%pA".as_char_ptr(),
                ptr::from_ref(&msg).cast::<c_void>(),
            )
        };
        #[cfg(not(CONFIG_PRINTK))]
        let _ = (level, msg);
    }

    /// The number of references held on the device (`netdev_refcnt_read()`).
    ///
    /// For tests and diagnostics: the value can change at any time.
    pub fn refcnt(&self) -> i32 {
        // SAFETY: The device is valid.
        unsafe { bindings::netdev_refcnt_read(self.as_raw()) }
    }

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

pub mod features;
mod stats;
mod tests;

pub use stats::Stats64;

/// Prints an informational message about a network device, as C's `netdev_info()`:
/// `netdev_info!(dev, "link up\n")`.
#[macro_export]
macro_rules! netdev_info {
    ($dev:expr, $($arg:tt)*) => {
        $crate::net::dev::Device::printk(
            $dev,
            $crate::c_str!("\x016"),
            $crate::prelude::fmt!($($arg)*),
        )
    };
}

/// Whether a message of the networking stack may be printed now, under the limit that C's
/// `net_info_ratelimited()` and its siblings share (`net_ratelimit()`: a burst of
/// `net.core.message_burst` messages every `net.core.message_cost` jiffies; the kernel logs how
/// many it suppressed). For messages that a peer or a flapping link can make frequent.
///
/// # Examples
///
/// ```
/// use kernel::net::dev::net_ratelimit;
///
/// // A burst of 10 every 5 s by default: 20 at once cannot all pass.
/// assert!((0..20).filter(|_| net_ratelimit()).count() <= 10);
/// ```
pub fn net_ratelimit() -> bool {
    // SAFETY: `net_ratelimit()` has no precondition: it takes its own raw spinlock with
    // interrupts disabled (a trylock, so it never waits), and may be called in any context.
    unsafe { bindings::net_ratelimit() != 0 }
}

/// Prints an error message about a network device, as C's `netdev_err()`.
#[macro_export]
macro_rules! netdev_err {
    ($dev:expr, $($arg:tt)*) => {
        $crate::net::dev::Device::printk(
            $dev,
            $crate::c_str!("\x013"),
            $crate::prelude::fmt!($($arg)*),
        )
    };
}

// SPDX-License-Identifier: GPL-2.0

//! An RCU-protected slot holding an optional network device reference.
//!
//! The data path reads the slot in an RCU read-side critical section ([`ReadSide`]): one it
//! opened ([`rcu::Guard`]), or the networking core's around a data-path callback
//! ([`CoreRcu`](rcu::CoreRcu)).
//! The control path replaces its content under the RTNL, and the old reference is released only
//! after an RCU grace period.

use crate::{
    bindings,
    net::{
        dev::{
            Device,
            DeviceRef, //
        },
        rtnl::Rtnl, //
    },
    sync::{
        aref::ARef,
        atomic::{
            Acquire,
            Atomic,
            Release, //
        },
        rcu::{
            self,
            ReadSide, //
        }, //
    }, //
};
use core::{
    cell::UnsafeCell,
    ptr::{
        self,
        NonNull, //
    }, //
};

/// An optional tracked device reference ([`DeviceRef`]) that readers reach under RCU.
///
/// # Invariants
///
/// `ptr` is null when `owner` is `None`, and otherwise the device `owner` holds a reference on.
/// `owner` is only accessed by writers, which the RTNL serialises.
///
/// # Examples
///
/// ```
/// use kernel::net::{dev::{Device, DeviceRef}, rtnl::RtnlGuard, slot::DeviceSlot};
/// use kernel::prelude::*;
/// use kernel::sync::rcu;
///
/// let slot = DeviceSlot::new();
/// let lo = Device::get_by_name_init_net(c"lo").expect("loopback exists");
/// let guard = RtnlGuard::lock();
/// assert!(slot.replace(&guard.token(), Some(DeviceRef::new(&lo, GFP_KERNEL))).is_none());
/// drop(guard);
/// {
///     let rcu = rcu::read_lock();
///     assert_eq!(slot.get(&rcu).map(|d| d.ifindex()), Some(1));
/// }
/// let guard = RtnlGuard::lock();
/// let old = slot.replace(&guard.token(), None);
/// assert_eq!(old.map(|d| d.ifindex()), Some(1));
/// ```
pub struct DeviceSlot {
    ptr: Atomic<*mut bindings::net_device>,
    owner: UnsafeCell<Option<DeviceRef>>,
}

impl DeviceSlot {
    /// An empty slot.
    pub const fn new() -> Self {
        Self {
            ptr: Atomic::new(ptr::null_mut()),
            owner: UnsafeCell::new(None),
        }
    }

    /// # Safety
    ///
    /// The caller must keep the slot's current device alive for `'a` (RCU or the RTNL).
    #[inline]
    unsafe fn load<'a>(&self) -> Option<&'a Device> {
        // Acquire pairs with the Release in `replace` (`rcu_dereference()`/`rcu_assign_pointer()`).
        let p = self.ptr.load(Acquire);
        // SAFETY: A non-null pointer is a device the slot holds a reference on (type
        // invariant), kept alive for `'a` by the caller.
        NonNull::new(p).map(|p| unsafe { Device::from_raw(p.as_ptr()) })
    }

    /// The device in the slot, for the duration of an RCU read-side section; the device cannot
    /// be used after the section ends:
    ///
    /// ```ignore,compile_fail,E0505
    /// use kernel::net::slot::DeviceSlot;
    /// use kernel::sync::rcu;
    ///
    /// fn ifindex_later(slot: &DeviceSlot) -> Option<i32> {
    ///     let rcu = rcu::read_lock();
    ///     let dev = slot.get(&rcu);
    ///     drop(rcu);
    ///     dev.map(|d| d.ifindex())
    /// }
    /// ```
    #[inline]
    pub fn get<'a>(&self, _rcu: &'a impl ReadSide) -> Option<&'a Device> {
        // SAFETY: The slot's reference is released only after a grace period, which cannot end
        // while the section `_rcu` names lasts.
        unsafe { self.load() }
    }

    /// The device in the slot, for control-plane code under the RTNL. A reference is taken, so
    /// the device outlives a later [`DeviceSlot::replace`].
    pub fn get_rtnl(&self, _rtnl: &Rtnl<'_>) -> Option<ARef<Device>> {
        // SAFETY: Only writers change the slot, and they need the RTNL, which is held.
        unsafe { self.load() }.map(ARef::from)
    }

    /// Whether the slot holds a device.
    #[inline]
    pub fn is_some(&self) -> bool {
        !self.ptr.load(Acquire).is_null()
    }

    /// Puts `new` in the slot and returns what it held, once no reader can still see it.
    ///
    /// Waits for an RCU grace period when the slot was not empty, so it may sleep.
    pub fn replace(&self, _rtnl: &Rtnl<'_>, new: Option<DeviceRef>) -> Option<DeviceRef> {
        let p = new.as_ref().map_or(ptr::null_mut(), |d| d.as_raw());
        // SAFETY: Writers hold the RTNL (the token proves it), so nobody else accesses `owner`.
        let old = unsafe { core::mem::replace(&mut *self.owner.get(), new) };
        // INVARIANT: `ptr` and `owner` agree again.
        self.ptr.store(p, Release);
        if old.is_some() {
            rcu::synchronize_rcu();
        }
        old
    }
}

impl Default for DeviceSlot {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for DeviceSlot {
    fn drop(&mut self) {
        if self.owner.get_mut().is_some() {
            // Readers that found the device through this slot may still be inside their
            // read-side section.
            rcu::synchronize_rcu();
        }
    }
}

// SAFETY: The slot only holds a device reference, which may be released from any thread.
unsafe impl Send for DeviceSlot {}

// SAFETY: Readers use RCU and only read `ptr`; writers, which also touch `owner`, are serialised
// by the RTNL.
unsafe impl Sync for DeviceSlot {}

#[macros::kunit_tests(rust_net_slot)]
mod tests {
    use super::*;
    use crate::net::rtnl::RtnlGuard;
    use crate::prelude::*;

    #[test]
    fn swap_and_refcount() {
        let lo = Device::get_by_name_init_net(c"lo").expect("loopback exists");
        let start = lo.refcnt();
        let slot = DeviceSlot::new();
        {
            let g = RtnlGuard::lock();
            assert!(slot
                .replace(&g.token(), Some(DeviceRef::new(&lo, GFP_KERNEL)))
                .is_none());
            assert_eq!(slot.get_rtnl(&g.token()).map(|d| d.ifindex()), Some(1));
        }
        assert_eq!(lo.refcnt(), start + 1);
        {
            let rcu = rcu::read_lock();
            assert!(slot.get(&rcu).is_some());
        }
        {
            let g = RtnlGuard::lock();
            let old = slot.replace(&g.token(), Some(DeviceRef::new(&lo, GFP_KERNEL)));
            assert!(old.is_some());
            drop(old);
            assert_eq!(lo.refcnt(), start + 1);
            assert!(slot.replace(&g.token(), None).is_some());
        }
        assert!(!slot.is_some());
        assert_eq!(lo.refcnt(), start);
        drop(slot);
        assert_eq!(lo.refcnt(), start);
    }
}

// SPDX-License-Identifier: GPL-2.0

//! An RCU-protected slot holding an optional network device reference.
//!
//! The data path reads the slot under [`rcu::Guard`]; the control path replaces its content under
//! the RTNL, and the old reference is released only after an RCU grace period.

use crate::{
    bindings,
    net::{dev::Device, rtnl::Rtnl},
    sync::{
        aref::ARef,
        atomic::{Acquire, Atomic, Release},
        rcu,
    },
};
use core::ptr::{self, NonNull};

/// An optional [`ARef<Device>`] that readers reach under RCU.
///
/// # Invariants
///
/// `ptr` is null or comes from [`ARef::into_raw`]; the slot owns that reference. Writers are
/// serialised by the RTNL.
///
/// # Examples
///
/// ```
/// use kernel::net::{dev::Device, rtnl::RtnlGuard, slot::DeviceSlot};
/// use kernel::sync::rcu;
///
/// let slot = DeviceSlot::new();
/// let lo = Device::get_by_name_init_net(c"lo").expect("loopback exists");
/// let guard = RtnlGuard::lock();
/// assert!(slot.replace(&guard.token(), Some(lo)).is_none());
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
}

impl DeviceSlot {
    /// An empty slot.
    pub const fn new() -> Self {
        Self {
            ptr: Atomic::new(ptr::null_mut()),
        }
    }

    /// # Safety
    ///
    /// The caller must keep the slot's current device alive for `'a` (RCU or the RTNL).
    #[inline]
    unsafe fn load<'a>(&self) -> Option<&'a Device> {
        // Acquire pairs with the Release in `replace` (`rcu_dereference()`/`rcu_assign_pointer()`).
        let p = self.ptr.load(Acquire);
        // SAFETY: A non-null pointer carries a reference owned by the slot (type invariant),
        // kept alive for `'a` by the caller.
        NonNull::new(p).map(|p| unsafe { Device::from_raw(p.as_ptr()) })
    }

    /// The device in the slot, for the duration of an RCU read-side section.
    #[inline]
    pub fn get<'a>(&self, _rcu: &'a rcu::Guard) -> Option<&'a Device> {
        // SAFETY: The slot's reference is released only after a grace period, which cannot end
        // while `_rcu` is held.
        unsafe { self.load() }
    }

    /// The device in the slot; stable while the RTNL, which serialises writers, is held.
    #[inline]
    pub fn get_rtnl<'a>(&'a self, _rtnl: &'a Rtnl<'_>) -> Option<&'a Device> {
        // SAFETY: Only writers change the slot, and they need the RTNL, held for `'a`.
        unsafe { self.load() }
    }

    /// Whether the slot holds a device.
    #[inline]
    pub fn is_some(&self) -> bool {
        !self.ptr.load(Acquire).is_null()
    }

    /// Puts `new` in the slot and returns what it held, once no reader can still see it.
    ///
    /// Waits for an RCU grace period when the slot was not empty, so it may sleep.
    pub fn replace(&self, _rtnl: &Rtnl<'_>, new: Option<ARef<Device>>) -> Option<ARef<Device>> {
        let new = new.map_or(ptr::null_mut(), |d| ARef::into_raw(d).as_ptr().cast());
        let old = self.ptr.xchg(new, Release);
        let old = NonNull::new(old)?;
        rcu::synchronize_rcu();
        // SAFETY: `old` came from `ARef::into_raw` (type invariant) and, after the grace period,
        // no reader holds it any more.
        Some(unsafe { ARef::from_raw(old.cast()) })
    }
}

impl Default for DeviceSlot {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for DeviceSlot {
    fn drop(&mut self) {
        let p = self.ptr.load(Acquire);
        if let Some(p) = NonNull::new(p) {
            // Readers that found the device through this slot may still be inside their
            // read-side section.
            rcu::synchronize_rcu();
            // SAFETY: The slot owns this reference (type invariant).
            drop(unsafe { ARef::<Device>::from_raw(p.cast()) });
        }
    }
}

// SAFETY: The slot only holds a device reference, which may be released from any thread.
unsafe impl Send for DeviceSlot {}

// SAFETY: Readers use RCU, writers are serialised by the RTNL.
unsafe impl Sync for DeviceSlot {}

#[macros::kunit_tests(rust_net_slot)]
mod tests {
    use super::*;
    use crate::net::rtnl::RtnlGuard;

    #[test]
    fn swap_and_refcount() {
        let lo = Device::get_by_name_init_net(c"lo").expect("loopback exists");
        let start = lo.refcnt();
        let slot = DeviceSlot::new();
        {
            let g = RtnlGuard::lock();
            assert!(slot.replace(&g.token(), Some(lo.clone())).is_none());
            assert_eq!(slot.get_rtnl(&g.token()).map(|d| d.ifindex()), Some(1));
        }
        assert_eq!(lo.refcnt(), start + 1);
        {
            let rcu = rcu::read_lock();
            assert!(slot.get(&rcu).is_some());
        }
        {
            let g = RtnlGuard::lock();
            let old = slot.replace(&g.token(), Some(lo.clone()));
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

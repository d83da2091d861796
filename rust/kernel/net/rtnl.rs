// SPDX-License-Identifier: GPL-2.0

//! The routing netlink lock (RTNL).
//!
//! Most control-plane changes to network devices require the RTNL. Code that needs it takes an
//! [`Rtnl`] token, which exists only while the lock is held: calling such code without the lock
//! does not compile.
//!
//! C header: [`include/linux/rtnetlink.h`](srctree/include/linux/rtnetlink.h)

use crate::{
    bindings,
    error::{
        code::EBUSY,
        Result, //
    },
    types::NotThreadSafe, //
};
use core::{
    cell::{
        Ref,
        RefCell,
        RefMut, //
    },
    marker::PhantomData, //
};

/// Evidence that the RTNL is held by the current thread.
///
/// Functions that must run under the RTNL take `&Rtnl<'_>`. A token is obtained from an
/// [`RtnlGuard`], or is passed to callbacks that the networking core calls with the RTNL held.
///
/// Safe code cannot make one without the lock:
///
/// ```ignore,compile_fail,E0133
/// use kernel::net::rtnl::Rtnl;
///
/// let _forged: Rtnl<'static> = Rtnl::assume_held();
/// ```
///
/// nor keep one after the lock is released:
///
/// ```ignore,compile_fail,E0505
/// use kernel::net::rtnl::RtnlGuard;
///
/// let guard = RtnlGuard::lock();
/// let token = guard.token();
/// drop(guard);
/// let _still = &token;
/// ```
///
/// nor hand one to another thread, which does not hold the lock:
///
/// ```ignore,compile_fail,E0277
/// use kernel::net::rtnl::RtnlGuard;
///
/// fn to_another_thread<T: Send>(_: T) {}
///
/// let guard = RtnlGuard::lock();
/// to_another_thread(guard.token());
/// ```
///
/// # Invariants
///
/// The RTNL is held by the current thread for the whole lifetime `'a`.
pub struct Rtnl<'a> {
    _not_send: NotThreadSafe,
    _lifetime: PhantomData<&'a ()>,
}

impl Rtnl<'_> {
    /// Creates a token for a context that already holds the RTNL.
    ///
    /// # Safety
    ///
    /// The caller must hold the RTNL for the whole lifetime of the returned token.
    #[inline]
    pub unsafe fn assume_held() -> Self {
        // INVARIANT: The caller guarantees that the RTNL is held.
        Self {
            _not_send: NotThreadSafe,
            _lifetime: PhantomData,
        }
    }
}

/// Whether the RTNL is currently held, by any thread.
///
/// Meant for assertions, like the C `ASSERT_RTNL()`.
#[inline]
pub fn is_locked() -> bool {
    // SAFETY: `rtnl_is_locked` only reads the state of the lock.
    unsafe { bindings::rtnl_is_locked() != 0 }
}

/// Holds the RTNL until dropped.
///
/// # Invariants
///
/// The current thread holds the RTNL while the guard exists.
///
/// # Examples
///
/// ```
/// use kernel::net::rtnl::{self, RtnlGuard};
///
/// let guard = RtnlGuard::lock();
/// assert!(rtnl::is_locked());
/// let _token = guard.token();
/// drop(guard);
/// ```
pub struct RtnlGuard {
    _not_send: NotThreadSafe,
}

impl RtnlGuard {
    /// Takes the RTNL; sleeps until it is available.
    #[inline]
    pub fn lock() -> Self {
        // SAFETY: `rtnl_lock` may sleep; Rust code runs in process context unless stated
        // otherwise, and there are no other requirements.
        unsafe { bindings::rtnl_lock() };
        // INVARIANT: The lock was just taken.
        Self {
            _not_send: NotThreadSafe,
        }
    }

    /// A token proving the RTNL is held, valid as long as this guard is borrowed.
    #[inline]
    pub fn token(&self) -> Rtnl<'_> {
        // SAFETY: By the type invariant the lock is held while `self` exists, and the token
        // cannot outlive the borrow of `self`.
        unsafe { Rtnl::assume_held() }
    }
}

impl Drop for RtnlGuard {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: By the type invariant this thread holds the RTNL.
        unsafe { bindings::rtnl_unlock() };
    }
}

/// Data protected by the RTNL, as pointers read with `rtnl_dereference()` are in C.
///
/// Access needs an [`Rtnl`] token, so only one thread at a time can reach the data. Within
/// that thread, borrows are checked at run time: borrowing again while a mutable borrow is
/// live (e.g. from a notifier raised by the code holding it) fails with `EBUSY` instead of
/// aliasing, and does not panic.
///
/// # Invariants
///
/// The inner [`RefCell`] is only reached by a thread that holds the RTNL.
///
/// # Examples
///
/// ```
/// use kernel::net::rtnl::{RtnlCell, RtnlGuard};
/// use kernel::prelude::*;
///
/// static COUNT: RtnlCell<u32> = RtnlCell::new(0);
///
/// let guard = RtnlGuard::lock();
/// let rtnl = guard.token();
/// *COUNT.borrow_mut(&rtnl)? += 1;
/// assert_eq!(*COUNT.borrow(&rtnl)?, 1);
///
/// // Nested borrows that would alias fail cleanly.
/// let shared = COUNT.borrow(&rtnl)?;
/// assert_eq!(COUNT.borrow_mut(&rtnl).err(), Some(EBUSY));
/// assert_eq!(*COUNT.borrow(&rtnl)?, *shared);
/// drop(shared);
/// let exclusive = COUNT.borrow_mut(&rtnl)?;
/// assert_eq!(COUNT.borrow(&rtnl).err(), Some(EBUSY));
/// drop(exclusive);
/// # Ok::<(), Error>(())
/// ```
///
/// The data cannot be reached without the lock:
///
/// ```ignore,compile_fail,E0061
/// use kernel::net::rtnl::RtnlCell;
///
/// static COUNT: RtnlCell<u32> = RtnlCell::new(0);
/// let _ = COUNT.borrow();
/// ```
pub struct RtnlCell<T>(RefCell<T>);

// SAFETY: By the type invariant the data is only reached with the RTNL held, so by one thread
// at a time; it may be reached from any thread, hence `T: Send`.
unsafe impl<T: Send> Sync for RtnlCell<T> {}

impl<T> RtnlCell<T> {
    /// Wraps `data`.
    pub const fn new(data: T) -> Self {
        Self(RefCell::new(data))
    }

    /// Borrows the data while the RTNL is held.
    ///
    /// Fails with `EBUSY` if the data is mutably borrowed.
    pub fn borrow<'a>(&'a self, _rtnl: &'a Rtnl<'_>) -> Result<Ref<'a, T>> {
        self.0.try_borrow().map_err(|_| EBUSY)
    }

    /// Borrows the data mutably while the RTNL is held.
    ///
    /// Fails with `EBUSY` if the data is borrowed.
    pub fn borrow_mut<'a>(&'a self, _rtnl: &'a Rtnl<'_>) -> Result<RefMut<'a, T>> {
        self.0.try_borrow_mut().map_err(|_| EBUSY)
    }
}

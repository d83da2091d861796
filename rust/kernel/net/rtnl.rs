// SPDX-License-Identifier: GPL-2.0

//! The routing netlink lock (RTNL).
//!
//! Most control-plane changes to network devices require the RTNL. Code that needs it takes an
//! [`Rtnl`] token, which exists only while the lock is held: calling such code without the lock
//! does not compile.
//!
//! C header: [`include/linux/rtnetlink.h`](srctree/include/linux/rtnetlink.h)

use crate::{bindings, types::NotThreadSafe};
use core::marker::PhantomData;

/// Evidence that the RTNL is held by the current thread.
///
/// Functions that must run under the RTNL take `&Rtnl<'_>`. A token is obtained from an
/// [`RtnlGuard`], or is passed to callbacks that the networking core calls with the RTNL held.
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

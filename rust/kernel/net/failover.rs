// SPDX-License-Identifier: GPL-2.0

//! The failover interface of paravirtual network drivers.
//!
//! A paravirtual driver (virtio_net with `VIRTIO_NET_F_STANDBY`) calls `net_failover_create()`
//! for its device before registering it, and `net_failover_destroy()` when it goes away. A Rust
//! implementation of that pair implements [`NetFailover`] and exports the two C functions with
//! [`net_failover_export!`](crate::net_failover_export).
//!
//! The master's events are tracepoints, in [`trace`].
//!
//! C header: [`include/net/net_failover.h`](srctree/include/net/net_failover.h)

use crate::{
    bindings,
    net::dev::Device,
    prelude::*, //
};

pub mod trace;

/// An implementation of `net_failover_create()` and `net_failover_destroy()`.
pub trait NetFailover {
    /// The handle of a master that [`NetFailover::create`] returns: the paravirtual driver
    /// holds it as an opaque `struct failover *` until it hands it to [`NetFailover::destroy`].
    type Handle: Send;

    /// Creates and registers a failover master for `standby`, which is not registered yet.
    /// Called in process context, without the RTNL.
    fn create(standby: &Device) -> Result<KBox<Self::Handle>>;

    /// Unregisters and frees a master made by [`NetFailover::create`]. Called in process
    /// context, without the RTNL.
    fn destroy(handle: KBox<Self::Handle>);
}

/// The body of the exported `net_failover_create()`.
///
/// # Safety
///
/// `standby` must be a valid `net_device`, valid for the call.
#[doc(hidden)]
pub unsafe fn create<T: NetFailover>(
    standby: *mut bindings::net_device,
) -> *mut bindings::failover {
    // SAFETY: Valid for the call, per the caller.
    let standby = unsafe { Device::from_raw(standby) };
    match T::create(standby) {
        Ok(handle) => KBox::into_raw(handle).cast(),
        Err(e) => e.to_ptr(),
    }
}

/// The body of the exported `net_failover_destroy()`.
///
/// # Safety
///
/// `failover` must be null, an error pointer, or a value returned by [`create::<T>`] and not
/// destroyed yet.
#[doc(hidden)]
pub unsafe fn destroy<T: NetFailover>(failover: *mut bindings::failover) {
    // virtio_net keeps what `net_failover_create()` returned, an error pointer included, and
    // does not call destroy for one; C's `net_failover_destroy()` ignores null.
    if failover.is_null() || crate::error::from_err_ptr(failover).is_err() {
        return;
    }
    // SAFETY: Per the caller, `failover` came from `KBox::into_raw` in `create` and is handed
    // back once.
    T::destroy(unsafe { KBox::from_raw(failover.cast()) });
}

/// Exports `net_failover_create()` and `net_failover_destroy()` (GPL-only) from the module,
/// implemented by the given [`NetFailover`] type. `#[export]` checks their signatures against
/// the C prototypes (`include/net/net_failover.h`, in the bindings).
///
/// # Examples
///
/// ```ignore
/// kernel::net_failover_export!(MyFailover);
/// ```
#[macro_export]
macro_rules! net_failover_export {
    ($t:ty) => {
        /// Creates a failover master for `standby` (`include/net/net_failover.h`).
        ///
        /// # Safety
        ///
        /// `standby` must be a valid `net_device`.
        #[$crate::macros::export]
        pub unsafe extern "C" fn net_failover_create(
            standby: *mut $crate::bindings::net_device,
        ) -> *mut $crate::bindings::failover {
            // SAFETY: The C caller passes a valid device.
            unsafe { $crate::net::failover::create::<$t>(standby) }
        }

        /// Destroys a failover master made by `net_failover_create()`.
        ///
        /// # Safety
        ///
        /// `failover` must be null or come from `net_failover_create()`, and be destroyed once.
        #[$crate::macros::export]
        pub unsafe extern "C" fn net_failover_destroy(failover: *mut $crate::bindings::failover) {
            // SAFETY: Guaranteed by the C caller.
            unsafe { $crate::net::failover::destroy::<$t>(failover) }
        }

        $crate::__export_symbol_gpl!(net_failover_create);
        $crate::__export_symbol_gpl!(net_failover_destroy);
    };
}

/// Emits the `EXPORT_SYMBOL_GPL()` record of a `#[no_mangle]` function: an entry in the
/// `.export_symbol` section, from which modpost builds the symbol table, laid out as
/// `___EXPORT_SYMBOL()` in `include/linux/export.h` does: the licence, an empty namespace, and
/// a pointer-sized reference to the symbol.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_symbol_gpl {
    ($sym:ident) => {
        #[cfg(target_pointer_width = "64")]
        $crate::__export_symbol_gpl!($sym, ".balign 8\n.quad ");
        #[cfg(target_pointer_width = "32")]
        $crate::__export_symbol_gpl!($sym, ".balign 4\n.long ");
    };
    ($sym:ident, $reference:literal) => {
        ::core::arch::global_asm!(::core::concat!(
            ".section \".export_symbol\",\"a\"\n",
            "__export_symbol_",
            ::core::stringify!($sym),
            ":\n",
            ".asciz \"GPL\"\n",
            ".asciz \"\"\n",
            $reference,
            ::core::stringify!($sym),
            "\n",
            ".previous\n",
        ));
    };
}

// SPDX-License-Identifier: GPL-2.0

//! Notifier blocks: the part of registering on a notifier chain that every chain shares.
//!
//! An abstraction of a chain (the netdevice notifiers, a bus's notifiers) keeps a pinned
//! `struct notifier_block` in its registration, initialises and registers it with
//! [`register_block`], and unregisters it on drop with the chain's own function. Its callback
//! answers with [`DONE`] or, to stop the chain with an error, [`from_errno`].
//!
//! C header: [`include/linux/notifier.h`](srctree/include/linux/notifier.h)

use crate::{
    bindings,
    error::to_result,
    prelude::*,
    types::Opaque, //
};

/// The type of a notifier callback (`notifier_fn_t`).
pub type NotifierFn =
    unsafe extern "C" fn(*mut bindings::notifier_block, c_ulong, *mut c_void) -> c_int;

/// Initialises a pinned `notifier_block` whose callback is `call`, then registers it with
/// `register` (which returns 0 or a negative errno), e.g. on the netdevice notifier chain.
///
/// # Safety
///
/// Once registered, the chain calls `call` with the block until it is unregistered: `call`
/// must be sound to call with this block and the chain's arguments, and the caller must
/// unregister the block (with the chain's own function) before the block is dropped.
pub unsafe fn register_block(
    call: NotifierFn,
    register: impl FnOnce(*mut bindings::notifier_block) -> c_int,
) -> impl PinInit<Opaque<bindings::notifier_block>, Error> {
    Opaque::try_ffi_init(move |slot: *mut bindings::notifier_block| {
        // SAFETY: `slot` is valid for writes; an all-zero `notifier_block` is valid.
        unsafe {
            slot.write(core::mem::zeroed());
            (*slot).notifier_call = Some(call);
        }
        to_result(register(slot))
    })
}

/// Encodes a negative errno as a callback's "stop" result (`notifier_from_errno()`).
pub fn from_errno(err: c_int) -> c_int {
    // SAFETY: Pure arithmetic on its argument.
    unsafe { bindings::notifier_from_errno(err) }
}

/// The result of a callback that is done with an event and lets the chain go on
/// (`NOTIFY_DONE`).
pub const DONE: c_int = bindings::NOTIFY_DONE as c_int;

#[macros::kunit_tests(rust_notifier)]
mod tests {
    use super::*;

    #[test]
    fn errno_results() {
        assert_eq!(from_errno(0), bindings::NOTIFY_OK as c_int);
        assert_ne!(
            from_errno(EINVAL.to_errno()) & bindings::NOTIFY_STOP_MASK as c_int,
            0
        );
    }
}

// SPDX-License-Identifier: GPL-2.0

//! The failover master's tracepoints, `net_failover:*`.
//!
//! The events are declared in C, with their format for tracefs; a module that calls these
//! functions must define them with a C file of two lines:
//!
//! ```c
//! #define CREATE_TRACE_POINTS
//! #define CREATE_RUST_TRACE_POINTS
//! #include <trace/events/net_failover.h>
//! ```
//!
//! Each function is inlined into its caller, and costs the test of a static key while its
//! event is off. They read the devices' names, so they take the RTNL's token: under it, no rename is
//! under way. (They have no runnable examples: the tracepoints live in the module that
//! defines them, not in the kernel image that doctests are built into.)
//!
//! C header: [`include/trace/events/net_failover.h`](srctree/include/trace/events/net_failover.h)

use crate::{bindings, net::dev::Device, net::rtnl::Rtnl};

/// A slave's role under the master (`enum net_failover_role`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The passthrough device (VF), preferred whenever usable.
    Primary,
    /// The paravirtual device, used while the primary is not.
    Standby,
}

impl Role {
    fn raw(role: Option<Role>) -> bindings::net_failover_role {
        match role {
            None => bindings::net_failover_role_NET_FAILOVER_ROLE_NONE,
            Some(Role::Primary) => bindings::net_failover_role_NET_FAILOVER_ROLE_PRIMARY,
            Some(Role::Standby) => bindings::net_failover_role_NET_FAILOVER_ROLE_STANDBY,
        }
    }
}

/// Why the master looked at its slaves again (`enum net_failover_reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// A slave was enslaved.
    Enslaved,
    /// A slave was released, by its unregistration or by the master's.
    Unregister,
    /// The primary's driver is being unbound: the notice of a hot-unplug.
    UnplugNotice,
    /// A slave's carrier or state changed.
    Link,
    /// A slave was set up or down.
    Admin,
}

impl Reason {
    fn raw(self) -> bindings::net_failover_reason {
        match self {
            Reason::Enslaved => bindings::net_failover_reason_NET_FAILOVER_REASON_ENSLAVED,
            Reason::Unregister => bindings::net_failover_reason_NET_FAILOVER_REASON_UNREGISTER,
            Reason::UnplugNotice => bindings::net_failover_reason_NET_FAILOVER_REASON_UNPLUG_NOTICE,
            Reason::Link => bindings::net_failover_reason_NET_FAILOVER_REASON_LINK,
            Reason::Admin => bindings::net_failover_reason_NET_FAILOVER_REASON_ADMIN,
        }
    }
}

mod raw {
    use crate::bindings::{net_device, net_failover_reason, net_failover_role};

    crate::declare_trace! {
        /// # Safety
        ///
        /// `master` and `slave` are valid devices whose names do not change during the call.
        pub(super) unsafe fn net_failover_slave_enslaved(
            master: *const net_device,
            slave: *const net_device,
            role: net_failover_role,
        );

        /// # Safety
        ///
        /// As [`net_failover_slave_enslaved`].
        pub(super) unsafe fn net_failover_slave_released(
            master: *const net_device,
            slave: *const net_device,
            role: net_failover_role,
        );

        /// # Safety
        ///
        /// `master` and `cause` are valid devices, `active` is one or null, and their names do
        /// not change during the call.
        pub(super) unsafe fn net_failover_active_changed(
            master: *const net_device,
            old: net_failover_role,
            new: net_failover_role,
            active: *const net_device,
            reason: net_failover_reason,
            cause: *const net_device,
        );

        /// # Safety
        ///
        /// `master` and `active` are valid devices whose names do not change during the call.
        pub(super) unsafe fn net_failover_announce(
            master: *const net_device,
            active: *const net_device,
            count: u32,
        );
    }
}

/// `net_failover:slave_enslaved`: `slave` was enslaved to `master` as `role`.
#[inline(always)]
pub fn slave_enslaved(_rtnl: &Rtnl<'_>, master: &Device, slave: &Device, role: Role) {
    // SAFETY: The references make both devices valid for the call, and the RTNL, which `_rtnl`
    // proves held, keeps their names from changing (`dev_change_name()` runs under it).
    unsafe {
        raw::net_failover_slave_enslaved(master.as_raw(), slave.as_raw(), Role::raw(Some(role)))
    }
}

/// `net_failover:slave_released`: `slave`, enslaved as `role`, was released from `master`.
#[inline(always)]
pub fn slave_released(_rtnl: &Rtnl<'_>, master: &Device, slave: &Device, role: Role) {
    // SAFETY: As in `slave_enslaved`.
    unsafe {
        raw::net_failover_slave_released(master.as_raw(), slave.as_raw(), Role::raw(Some(role)))
    }
}

/// `net_failover:active_changed`: the slave that carries `master`'s traffic changed from the
/// role `old` to `new`, the device `new` names (`None`: no usable slave), because of `reason`
/// on `cause`.
#[inline(always)]
pub fn active_changed(
    _rtnl: &Rtnl<'_>,
    master: &Device,
    old: Option<Role>,
    new: Option<(Role, &Device)>,
    reason: Reason,
    cause: &Device,
) {
    let (role, active) = match new {
        Some((role, dev)) => (Some(role), dev.as_raw().cast_const()),
        None => (None, core::ptr::null()),
    };
    // SAFETY: The references make `master`, `cause` and the active device valid for the call,
    // `active` is null where there is none, and the RTNL, which `_rtnl` proves held, keeps the
    // names from changing.
    unsafe {
        raw::net_failover_active_changed(
            master.as_raw(),
            Role::raw(old),
            Role::raw(role),
            active,
            reason.raw(),
            cause.as_raw(),
        )
    }
}

/// `net_failover:announce`: `master` announced itself to its peers through `active`, `count`
/// rounds of a gratuitous ARP and an unsolicited neighbour advertisement per address.
#[inline(always)]
pub fn announce(_rtnl: &Rtnl<'_>, master: &Device, active: &Device, count: u32) {
    // SAFETY: As in `slave_enslaved`.
    unsafe { raw::net_failover_announce(master.as_raw(), active.as_raw(), count) }
}

// SPDX-License-Identifier: GPL-2.0

//! Network device notifiers.
//!
//! A [`Registration`] subscribes a [`Notify`] implementation to the netdevice notifier chain:
//! it is told when network devices register, come up, change, go down and unregister.
//!
//! C header: [`include/linux/netdevice.h`](srctree/include/linux/netdevice.h)

use crate::{
    bindings,
    net::{
        dev::{
            Device,
            OpsLocked, //
        },
        rtnl::Rtnl, //
    },
    notifier::{
        self,
        register_block, //
    },
    prelude::*,
    types::Opaque, //
};

/// A netdevice notifier event (`enum netdev_cmd`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The device came up (`NETDEV_UP`).
    Up,
    /// The device went down (`NETDEV_DOWN`).
    Down,
    /// The device is about to go down (`NETDEV_GOING_DOWN`).
    GoingDown,
    /// The device's state changed, e.g. its carrier (`NETDEV_CHANGE`).
    Change,
    /// The device was registered (`NETDEV_REGISTER`).
    Register,
    /// The device is being unregistered (`NETDEV_UNREGISTER`).
    Unregister,
    /// The MTU changed (`NETDEV_CHANGEMTU`).
    ChangeMtu,
    /// The MTU is about to change; an error vetoes it (`NETDEV_PRECHANGEMTU`).
    PreChangeMtu,
    /// The hardware address changed (`NETDEV_CHANGEADDR`).
    ChangeAddr,
    /// The device was renamed (`NETDEV_CHANGENAME`).
    ChangeName,
    /// The features changed (`NETDEV_FEAT_CHANGE`).
    FeatChange,
    /// The device is about to come up; an error vetoes it (`NETDEV_PRE_UP`).
    PreUp,
    /// The device was initialised, before it is visible (`NETDEV_POST_INIT`).
    PostInit,
    /// Peers should be notified of the device's addresses, e.g. by gratuitous ARP
    /// (`NETDEV_NOTIFY_PEERS`).
    NotifyPeers,
    /// The device joined an upper device (`NETDEV_JOIN`).
    Join,
    /// An upper device is about to be linked or unlinked (`NETDEV_PRECHANGEUPPER`).
    PreChangeUpper,
    /// An upper device was linked or unlinked (`NETDEV_CHANGEUPPER`).
    ChangeUpper,
    /// A lower device's state changed (`NETDEV_CHANGELOWERSTATE`).
    ChangeLowerState,
    /// Any other event, by its `enum netdev_cmd` value.
    Other(u64),
}

impl Event {
    /// The event for an `enum netdev_cmd` value.
    pub fn from_raw(cmd: u64) -> Self {
        let Ok(c) = bindings::netdev_cmd::try_from(cmd) else {
            return Event::Other(cmd);
        };
        match c {
            bindings::netdev_cmd_NETDEV_UP => Event::Up,
            bindings::netdev_cmd_NETDEV_DOWN => Event::Down,
            bindings::netdev_cmd_NETDEV_GOING_DOWN => Event::GoingDown,
            bindings::netdev_cmd_NETDEV_CHANGE => Event::Change,
            bindings::netdev_cmd_NETDEV_REGISTER => Event::Register,
            bindings::netdev_cmd_NETDEV_UNREGISTER => Event::Unregister,
            bindings::netdev_cmd_NETDEV_CHANGEMTU => Event::ChangeMtu,
            bindings::netdev_cmd_NETDEV_PRECHANGEMTU => Event::PreChangeMtu,
            bindings::netdev_cmd_NETDEV_CHANGEADDR => Event::ChangeAddr,
            bindings::netdev_cmd_NETDEV_CHANGENAME => Event::ChangeName,
            bindings::netdev_cmd_NETDEV_FEAT_CHANGE => Event::FeatChange,
            bindings::netdev_cmd_NETDEV_PRE_UP => Event::PreUp,
            bindings::netdev_cmd_NETDEV_POST_INIT => Event::PostInit,
            bindings::netdev_cmd_NETDEV_NOTIFY_PEERS => Event::NotifyPeers,
            bindings::netdev_cmd_NETDEV_JOIN => Event::Join,
            bindings::netdev_cmd_NETDEV_PRECHANGEUPPER => Event::PreChangeUpper,
            bindings::netdev_cmd_NETDEV_CHANGEUPPER => Event::ChangeUpper,
            bindings::netdev_cmd_NETDEV_CHANGELOWERSTATE => Event::ChangeLowerState,
            _ => Event::Other(cmd),
        }
    }
}

/// Receives netdevice notifier events.
pub trait Notify: Sync {
    /// Called for every event on every network device of every namespace, with the RTNL held.
    ///
    /// For the events the core raises with the device's instance lock held (if the device uses
    /// one: [`Event::Register`], [`Event::Up`], [`Event::Down`], [`Event::GoingDown`],
    /// [`Event::Change`] and [`Event::ChangeName`]), `locked` is given: operations on `dev`
    /// must then go through it, since the [`Device`] ones would take the lock again.
    ///
    /// An error vetoes the events that can be vetoed (e.g. [`Event::PreUp`],
    /// [`Event::PreChangeMtu`]) and is otherwise ignored by the networking core.
    fn notify(
        &self,
        rtnl: &Rtnl<'_>,
        event: Event,
        dev: &Device,
        locked: Option<&OpsLocked<'_>>,
    ) -> Result;
}

/// A registered netdevice notifier; unregisters when dropped.
///
/// On registration the core replays [`Event::Register`] (and [`Event::Up`] for devices that are
/// up) for every existing device; on unregistration it replays [`Event::GoingDown`],
/// [`Event::Down`] and [`Event::Unregister`].
///
/// # Invariants
///
/// `nb` is registered on the netdevice notifier chain from the end of initialisation until
/// drop, and its `notifier_call` is `Registration::callback`.
#[pin_data(PinnedDrop)]
pub struct Registration<T: Notify> {
    data: T,
    #[pin]
    nb: Opaque<bindings::notifier_block>,
}

// SAFETY: The notifier can be unregistered from any thread; `T: Notify` is `Sync`, so the
// callback may use it from whichever thread the core runs it on.
unsafe impl<T: Notify + Send> Send for Registration<T> {}

// SAFETY: `&self` only gives access to `data`, which is `Sync`.
unsafe impl<T: Notify> Sync for Registration<T> {}

impl<T: Notify> Registration<T> {
    /// Registers `data` on the netdevice notifier chain.
    ///
    /// Takes the RTNL, so it must not be called with the RTNL held.
    pub fn new(data: T) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            data,
            // `data` is initialised before `nb`: registration replays events at once.
            // INVARIANT: On success `nb` is registered with our callback; `PinnedDrop`
            // unregisters it.
            // SAFETY: `callback` is sound for this block: it is the `nb` of a `Registration<T>`
            // that lives while the block is registered, and the netdevice chain passes what
            // `callback` expects. `PinnedDrop` unregisters the block before it is dropped. And
            // `register_netdevice_notifier()` gets a pinned, initialised block that stays
            // registered until drop.
            nb <- unsafe {
                register_block(Self::callback, |nb| bindings::register_netdevice_notifier(nb))
            },
        })
    }

    /// The notified data.
    pub fn data(&self) -> &T {
        &self.data
    }

    /// # Safety
    ///
    /// Only called by the netdevice notifier chain, with `nb` inside a live [`Registration`]
    /// and `ptr` a `struct netdev_notifier_info`, under the RTNL.
    unsafe extern "C" fn callback(
        nb: *mut bindings::notifier_block,
        event: c_ulong,
        ptr: *mut c_void,
    ) -> c_int {
        // SAFETY: `nb` is the `nb` field of a live `Registration<T>` (type invariant).
        let this = unsafe {
            &*crate::container_of!(nb.cast::<Opaque<bindings::notifier_block>>(), Self, nb)
        };
        // SAFETY: Netdevice notifiers receive a `struct netdev_notifier_info`, whose device is
        // valid for the duration of the call.
        let dev = unsafe { Device::from_raw(bindings::netdev_notifier_info_to_dev(ptr.cast())) };
        // SAFETY: The netdevice notifier chain is always called with the RTNL held.
        let rtnl = unsafe { Rtnl::assume_held() };
        let event = Event::from_raw(event as u64);
        let locked = match event {
            Event::Register
            | Event::Up
            | Event::Down
            | Event::GoingDown
            | Event::Change
            | Event::ChangeName => {
                // The claim below, checked by lockdep: one of these events raised without the
                // lock (by a caller that breaks the documented rule) warns here.
                // SAFETY: The device is valid for the call.
                unsafe { bindings::netdev_assert_locked_ops_compat_or_invisible(dev.as_raw()) };
                // SAFETY: Documentation/networking/netdevices.rst ("Notifiers and netdev
                // instance lock"): for devices with locked ops, these notifiers run under the
                // instance lock, and all of them under the RTNL. The abstractions raise none of
                // them without it: `Device::state_change()` takes the lock, and
                // `Device::call_notifiers()` raises no CHANGE.
                Some(unsafe { OpsLocked::assume_locked(dev) })
            }
            _ => None,
        };
        match this.data.notify(&rtnl, event, dev, locked.as_ref()) {
            Ok(()) => notifier::DONE,
            Err(e) => notifier::from_errno(e.to_errno()),
        }
    }
}

#[pinned_drop]
impl<T: Notify> PinnedDrop for Registration<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: By the type invariant `nb` is registered. The core replays the unregister
        // events to us here, while `data` is still alive.
        unsafe { bindings::unregister_netdevice_notifier(self.nb.get()) };
    }
}

#[macros::kunit_tests(rust_net_notifier)]
mod tests {
    use super::*;
    use crate::sync::Arc;
    use core::sync::atomic::{AtomicU32, Ordering::Relaxed};

    /// Records, for the loopback device, the order in which events arrive.
    #[derive(Default)]
    struct Order {
        seq: AtomicU32,
        register: AtomicU32,
        up: AtomicU32,
        going_down: AtomicU32,
        down: AtomicU32,
        unregister: AtomicU32,
    }

    struct Recorder(Arc<Order>);

    impl Notify for Recorder {
        fn notify(
            &self,
            _rtnl: &Rtnl<'_>,
            event: Event,
            dev: &Device,
            _locked: Option<&OpsLocked<'_>>,
        ) -> Result {
            if dev.ifindex() != 1 {
                return Ok(());
            }
            let o = &self.0;
            let n = o.seq.fetch_add(1, Relaxed) + 1;
            let slot = match event {
                Event::Register => &o.register,
                Event::Up => &o.up,
                Event::GoingDown => &o.going_down,
                Event::Down => &o.down,
                Event::Unregister => &o.unregister,
                _ => return Ok(()),
            };
            slot.store(n, Relaxed);
            Ok(())
        }
    }

    #[test]
    fn replay_on_register_and_unregister() -> Result {
        let lo = crate::net::dev::Device::get_by_name_init_net(c"lo").ok_or(ENODEV)?;
        // Loopback is down while the kernel boots (when these tests run) and up later.
        let up = lo.is_up();
        let order = Arc::new(Order::default(), GFP_KERNEL)?;
        let reg = KBox::pin_init(Registration::new(Recorder(order.clone())), GFP_KERNEL)?;
        // Registration replays REGISTER, then UP if the device is up.
        let (r, u) = (order.register.load(Relaxed), order.up.load(Relaxed));
        assert!(r > 0);
        let replayed_up = u > r;
        assert_eq!(replayed_up, up);
        drop(reg);
        // Unregistration replays GOING_DOWN and DOWN if the device is up, then UNREGISTER.
        let (g, d, x) = (
            order.going_down.load(Relaxed),
            order.down.load(Relaxed),
            order.unregister.load(Relaxed),
        );
        if up {
            assert!(g > u && d > g && x > d);
        } else {
            assert!(g == 0 && d == 0 && x > r);
        }
        Ok(())
    }

    #[test]
    fn event_codes() {
        assert_eq!(
            Event::from_raw(bindings::netdev_cmd_NETDEV_UP.into()),
            Event::Up
        );
        assert_eq!(
            Event::from_raw(bindings::netdev_cmd_NETDEV_NOTIFY_PEERS.into()),
            Event::NotifyPeers
        );
        assert_eq!(Event::from_raw(u64::MAX), Event::Other(u64::MAX));
    }
}

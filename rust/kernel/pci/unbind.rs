// SPDX-License-Identifier: GPL-2.0

//! Early notice that a PCI device is losing its driver.
//!
//! The driver core raises `BUS_NOTIFY_UNBIND_DRIVER` before it calls a driver's remove, on every
//! path that unbinds it: PCIe native hot-unplug (pciehp), ACPI eject (acpiphp), a write to the
//! driver's `unbind` file and module unload. For a network device whose parent that is, this
//! comes before the driver closes and unregisters it, while it still transmits: an upper device
//! can move its traffic elsewhere without losing any.
//!
//! C header: [`include/linux/device/bus.h`](srctree/include/linux/device/bus.h)

use crate::{
    bindings,
    device,
    notifier,
    prelude::*,
    types::Opaque, //
};

/// Receives the notice.
pub trait Unbinding: Sync {
    /// `dev` is about to be unbound from its driver. Runs in process context with `dev`'s
    /// device lock held, before the driver's remove; may sleep and take the RTNL.
    fn unbinding(&self, dev: &device::Device);
}

/// A registered PCI bus notifier that passes [`Unbinding::unbinding`] on; unregisters on drop.
///
/// # Invariants
///
/// `nb` is registered on the PCI bus's notifier chain from the end of initialisation until
/// drop, with `UnbindNotifier::callback` as its `notifier_call`.
#[pin_data(PinnedDrop)]
pub struct UnbindNotifier<T: Unbinding> {
    data: T,
    #[pin]
    nb: Opaque<bindings::notifier_block>,
}

// SAFETY: The notifier can be unregistered from any thread; `T` is `Sync`, so the callback may
// use it from any thread.
unsafe impl<T: Unbinding + Send> Send for UnbindNotifier<T> {}

// SAFETY: `&self` only gives access to `data`, which is `Sync`.
unsafe impl<T: Unbinding> Sync for UnbindNotifier<T> {}

impl<T: Unbinding> UnbindNotifier<T> {
    /// Registers `data` on the PCI bus's notifier chain.
    pub fn new(data: T) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            data,
            // INVARIANT: On success `nb` is registered with our callback; `PinnedDrop`
            // unregisters it.
            // SAFETY: `callback` is sound for this block: it is the `nb` of an `UnbindNotifier<T>`
            // that lives while the block is registered, and the PCI bus chain passes what
            // `callback` expects. `PinnedDrop` unregisters the block before it is dropped. And
            // `bus_register_notifier()` gets the PCI bus and a pinned, initialised block that
            // stays registered until drop.
            nb <- unsafe {
                notifier::register_block(Self::callback, |nb| {
                    bindings::bus_register_notifier(&raw const bindings::pci_bus_type, nb)
                })
            },
        })
    }

    /// The notified data.
    pub fn data(&self) -> &T {
        &self.data
    }

    /// # Safety
    ///
    /// Only called by the PCI bus notifier chain, with `nb` inside a live
    /// [`UnbindNotifier`] and `data` a `struct device`.
    unsafe extern "C" fn callback(
        nb: *mut bindings::notifier_block,
        action: c_ulong,
        data: *mut c_void,
    ) -> c_int {
        if action == bindings::bus_notifier_event_BUS_NOTIFY_UNBIND_DRIVER as c_ulong {
            // SAFETY: `nb` is the `nb` field of a live `UnbindNotifier<T>` (invariant).
            let this = unsafe {
                &*crate::container_of!(nb.cast::<Opaque<bindings::notifier_block>>(), Self, nb)
            };
            // SAFETY: Bus notifiers receive the device concerned, valid during the call.
            this.data
                .unbinding(unsafe { device::Device::from_raw(data.cast()) });
        }
        notifier::DONE
    }
}

#[pinned_drop]
impl<T: Unbinding> PinnedDrop for UnbindNotifier<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: Registered (type invariant); unregistering waits for running callbacks.
        unsafe {
            bindings::bus_unregister_notifier(&raw const bindings::pci_bus_type, self.nb.get())
        };
    }
}

// SPDX-License-Identifier: GPL-2.0

//! Receive handlers (`rx_handler`): a device's frames are handed to its handler first.
//!
//! Bonding, bridges and failover use them to take over the frames of their lower devices.
//!
//! C header: [`include/linux/netdevice.h`](srctree/include/linux/netdevice.h)

use crate::{
    bindings,
    error::to_result,
    net::{
        dev::{
            Device,
            DeviceRef, //
        },
        rtnl::{
            Rtnl,
            RtnlGuard, //
        },
        skbuff::SkBuff, //
    },
    prelude::*,
    sync::rcu::CoreRcu, //
};
use core::ptr::NonNull;

/// What a receive handler did with a frame (`rx_handler_result_t`).
pub enum RxAction<'a> {
    /// Deliver the frame again, as received on another device (`RX_HANDLER_ANOTHER`).
    Another(SkBuff, &'a Device),
    /// Deliver the frame only to handlers bound to this exact device (`RX_HANDLER_EXACT`).
    Exact(SkBuff),
    /// Process the frame normally (`RX_HANDLER_PASS`).
    Pass(SkBuff),
    /// The handler took the frame: it consumed, freed or forwarded it (`RX_HANDLER_CONSUMED`).
    Consumed,
}

/// A receive handler.
pub trait RxHandler: Send + Sync {
    /// Called for every frame the device receives, in softirq context, inside the core's RCU
    /// read-side section (`rcu`).
    ///
    /// The handler owns `skb` and either hands it back with what to do next, or keeps it.
    fn handle<'a>(&'a self, rcu: &'a CoreRcu, skb: SkBuff) -> RxAction<'a>;
}

/// A receive handler registered on a device; unregistered on drop.
///
/// # Invariants
///
/// While `registered`, `data` is registered as `dev`'s `rx_handler_data` with
/// `Self::trampoline` as its handler; `registered` is true from [`Registration::new`] until
/// `Drop` or [`Registration::unregister`].
pub struct Registration<T: RxHandler> {
    dev: DeviceRef,
    data: KBox<T>,
    registered: bool,
}

impl<T: RxHandler> Registration<T> {
    /// Registers `data` as `dev`'s receive handler (`netdev_rx_handler_register()`).
    ///
    /// Fails with `EBUSY` if the device already has one.
    pub fn new(rtnl: &Rtnl<'_>, dev: &Device, data: T) -> Result<Self> {
        let _ = rtnl;
        let data = KBox::new(data, GFP_KERNEL)?;
        let ptr: *const T = &*data;
        // SAFETY: The device is valid, the RTNL is held, and `data` stays allocated (and at
        // the same address) until the handler is unregistered.
        to_result(unsafe {
            bindings::netdev_rx_handler_register(
                dev.as_raw(),
                Some(Self::trampoline),
                ptr.cast_mut().cast(),
            )
        })?;
        // INVARIANT: Registered above.
        Ok(Self {
            dev: DeviceRef::new(dev, GFP_KERNEL),
            data,
            registered: true,
        })
    }

    /// The device the handler is registered on.
    pub fn dev(&self) -> &Device {
        &self.dev
    }

    /// The handler's data.
    pub fn data(&self) -> &T {
        &self.data
    }

    /// Unregisters the handler in a context that already holds the RTNL.
    pub fn unregister(mut self, rtnl: &Rtnl<'_>) {
        self.do_unregister(rtnl);
    }

    fn do_unregister(&mut self, _rtnl: &Rtnl<'_>) {
        if self.registered {
            // SAFETY: Registered (type invariant) and the RTNL is held. The function waits for
            // an RCU grace period, after which no handler call can still use `data`, which is
            // freed with `self`.
            unsafe { bindings::netdev_rx_handler_unregister(self.dev.as_raw()) };
            // INVARIANT: No longer registered.
            self.registered = false;
        }
    }

    /// # Safety
    ///
    /// Only called by the receive path with a valid `*pskb` of a device registered by
    /// [`Registration::new`], under RCU.
    unsafe extern "C" fn trampoline(
        pskb: *mut *mut bindings::sk_buff,
    ) -> bindings::rx_handler_result_t {
        // SAFETY: The receive path passes a valid skb that the handler may own.
        let skb = unsafe { SkBuff::from_raw(NonNull::new_unchecked(*pskb)) };
        // SAFETY: `__netif_receive_skb_core()` calls the handler of `skb->dev`, a valid device,
        // under `rcu_read_lock()`; `rcu_dereference()` of its `rx_handler_data` there gives our
        // `T`, which stays allocated until a grace period after unregistration (type invariant).
        let data = unsafe {
            &*bindings::netdev_rx_handler_data(skb.dev_raw())
                .cast::<T>()
                .cast_const()
        };
        // SAFETY: `__netif_receive_skb_core()` calls rx handlers under `rcu_read_lock()`.
        let rcu = unsafe { CoreRcu::assume() };
        let (skb, res) = match data.handle(&rcu, skb) {
            RxAction::Another(mut skb, dev) => {
                skb.set_dev(dev);
                (Some(skb), bindings::rx_handler_result_RX_HANDLER_ANOTHER)
            }
            RxAction::Exact(skb) => (Some(skb), bindings::rx_handler_result_RX_HANDLER_EXACT),
            RxAction::Pass(skb) => (Some(skb), bindings::rx_handler_result_RX_HANDLER_PASS),
            RxAction::Consumed => (None, bindings::rx_handler_result_RX_HANDLER_CONSUMED),
        };
        if let Some(skb) = skb {
            // SAFETY: `pskb` is valid; the receive path takes the skb back.
            unsafe { *pskb = skb.into_raw().as_ptr() };
        }
        res
    }
}

impl<T: RxHandler> Drop for Registration<T> {
    /// Unregisters the handler; takes the RTNL, so a context that holds it must use
    /// [`Registration::unregister`] instead.
    fn drop(&mut self) {
        if self.registered {
            let guard = RtnlGuard::lock();
            self.do_unregister(&guard.token());
        }
    }
}

#[macros::kunit_tests(rust_net_rx_handler)]
mod tests {
    use super::*;
    use crate::net::netdev::{
        self,
        Config,
        NetDev,
        TxResult, //
    };
    use crate::sync::aref::ARef;
    use crate::sync::atomic::{
        Atomic,
        Relaxed, //
    };
    use crate::time::{
        delay::fsleep,
        Delta, //
    };

    #[pin_data]
    struct Sink {}

    #[vtable]
    impl netdev::Driver for Sink {
        fn start_xmit(_dev: &NetDev<Self>, _rcu: &CoreRcu, skb: SkBuff) -> TxResult {
            skb.consume();
            TxResult::Ok
        }
    }

    #[vtable]
    impl netdev::Ethtool for Sink {}

    /// On the first device: frames of type 0x88b5 go on to `target`, others pass.
    struct Redirect {
        target: ARef<Device>,
        seen: Atomic<u32>,
    }

    impl RxHandler for Redirect {
        fn handle<'a>(&'a self, _rcu: &'a CoreRcu, skb: SkBuff) -> RxAction<'a> {
            self.seen.add(1, Relaxed);
            if skb.protocol() == 0x88b5 {
                RxAction::Another(skb, &self.target)
            } else {
                RxAction::Pass(skb)
            }
        }
    }

    /// On the second device: count, check the source address, and consume.
    struct Count {
        seen: Atomic<u32>,
    }

    impl RxHandler for Count {
        fn handle<'a>(&'a self, _rcu: &'a CoreRcu, skb: SkBuff) -> RxAction<'a> {
            // Received, the frame has its Ethernet header.
            if skb.eth_source() == Some(SOURCE) {
                self.seen.add(1, Relaxed);
            }
            skb.consume();
            RxAction::Consumed
        }
    }

    const SOURCE: [u8; 6] = [0x02, 0, 0, 0, 0, 1];

    fn frame(ethertype: u16) -> [u8; 60] {
        let mut f = [0u8; 60];
        f[..6].copy_from_slice(&[0xff; 6]);
        f[6..12].copy_from_slice(&SOURCE);
        f[12..14].copy_from_slice(&ethertype.to_be_bytes());
        f
    }

    fn wait_for(counter: &Atomic<u32>, value: u32) -> u32 {
        // Forwarded frames are processed asynchronously, in the receive softirq.
        for _ in 0..200 {
            if counter.load(Relaxed) >= value {
                break;
            }
            fsleep(Delta::from_millis(5));
        }
        counter.load(Relaxed)
    }

    #[test]
    fn delivery_another_pass_consumed() -> Result {
        let cfg = |name| Config::new(name).random_addr();
        let d0 = netdev::Registration::new(cfg(c"rrx%d"), try_pin_init!(Sink {}))?;
        let d1 = netdev::Registration::new(cfg(c"rrx%d"), try_pin_init!(Sink {}))?;
        let (a, b) = {
            let rtnl = RtnlGuard::lock();
            let r = rtnl.token();
            d0.dev().open(&r)?;
            d1.dev().open(&r)?;
            let target: ARef<Device> = (&**d1.dev()).into();
            let a = Registration::new(
                &r,
                d0.dev(),
                Redirect {
                    target,
                    seen: Atomic::new(0),
                },
            )?;
            let b = Registration::new(
                &r,
                d1.dev(),
                Count {
                    seen: Atomic::new(0),
                },
            )?;
            // One handler per device.
            let busy = Registration::new(
                &r,
                d0.dev(),
                Count {
                    seen: Atomic::new(0),
                },
            );
            assert!(matches!(busy, Err(e) if e == EBUSY));
            (a, b)
        };

        // ANOTHER: the frame is delivered again on the second device, whose handler takes it.
        SkBuff::from_data(&frame(0x88b5), GFP_KERNEL)?.forward(d0.dev());
        assert_eq!(wait_for(&b.data().seen, 1), 1);
        assert_eq!(a.data().seen.load(Relaxed), 1);

        // PASS: the frame goes on to the stack of the first device.
        SkBuff::from_data(&frame(0x88b6), GFP_KERNEL)?.forward(d0.dev());
        assert_eq!(wait_for(&a.data().seen, 2), 2);
        assert_eq!(b.data().seen.load(Relaxed), 1);

        // Unregistering frees the slot; `a` holds a reference on the second device, so it goes
        // before the devices do.
        {
            let rtnl = RtnlGuard::lock();
            a.unregister(&rtnl.token());
        }
        drop(b);
        let again = {
            let rtnl = RtnlGuard::lock();
            Registration::new(
                &rtnl.token(),
                d0.dev(),
                Count {
                    seen: Atomic::new(0),
                },
            )?
        };
        drop(again);
        Ok(())
    }
}

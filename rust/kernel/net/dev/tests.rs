// SPDX-License-Identifier: GPL-2.0

//! KUnit tests of [`Device`](super::Device): its accessors and references, and what a master
//! does with a lower device (the upper link, the notifiers it raises, address list sync).
//!
//! `#[kunit_tests]` takes an inline module only: each suite is a module below.

#[macros::kunit_tests(rust_net_dev)]
mod accessors {
    use super::super::*;
    use crate::net::rtnl::{
        self,
        RtnlGuard, //
    };

    #[test]
    fn loopback_accessors() {
        let lo = Device::get_by_name_init_net(c"lo").expect("loopback exists");
        assert_eq!(lo.ifindex(), 1);
        let guard = RtnlGuard::lock();
        assert!(rtnl::is_locked());
        assert_eq!(lo.name(&guard.token()), c"lo");
        drop(guard);
        // Loopback has a 64 KiB MTU and no maximum.
        assert_eq!(lo.mtu(), 65536);
        assert_eq!(lo.max_mtu(), 0);
        assert!(lo.mtu() >= lo.min_mtu());
    }

    #[test]
    fn references_return_to_start() {
        let lo = Device::get_by_name_init_net(c"lo").expect("loopback exists");
        let start = lo.refcnt();
        let more = lo.clone();
        assert_eq!(lo.refcnt(), start + 1);
        drop(more);
        assert_eq!(lo.refcnt(), start);
    }
}

#[macros::kunit_tests(rust_net_upper)]
mod upper {
    use super::super::*;
    use crate::net::{
        dev::OpsLocked,
        netdev::{
            Config,
            Driver,
            Ethtool,
            NetDev,
            Registration,
            TxResult, //
        },
        notifier::{
            self,
            Event,
            Notify, //
        },
        rtnl::RtnlGuard,
        skbuff::SkBuff, //
    };
    use crate::sync::{
        atomic::{
            Atomic,
            Relaxed, //
        },
        rcu::CoreRcu,
        Arc, //
    };

    #[pin_data]
    struct Plain {}

    #[vtable]
    impl Driver for Plain {
        fn start_xmit(_dev: &NetDev<Self>, _rcu: &CoreRcu, skb: SkBuff) -> TxResult {
            skb.consume();
            TxResult::Ok
        }
    }

    #[vtable]
    impl Ethtool for Plain {}

    struct Seen {
        change_upper: Atomic<u32>,
        change: Atomic<u32>,
        lower_state: Atomic<u32>,
        notify_peers: Atomic<u32>,
        join: Atomic<u32>,
    }

    struct Watch(Arc<Seen>, i32);

    impl Notify for Watch {
        fn notify(
            &self,
            _rtnl: &Rtnl<'_>,
            event: Event,
            dev: &Device,
            _locked: Option<&OpsLocked<'_>>,
        ) -> Result {
            if dev.ifindex() == self.1 {
                match event {
                    Event::ChangeUpper => self.0.change_upper.add(1, Relaxed),
                    Event::Change => self.0.change.add(1, Relaxed),
                    Event::ChangeLowerState => self.0.lower_state.add(1, Relaxed),
                    Event::NotifyPeers => self.0.notify_peers.add(1, Relaxed),
                    Event::Join => self.0.join.add(1, Relaxed),
                    _ => {}
                }
            }
            Ok(())
        }
    }

    #[test]
    fn link_state_unlink() -> Result {
        let cfg = Config::new(c"rup%d").random_addr();
        let upper = Registration::new(cfg, try_pin_init!(Plain {}))?;
        let cfg = Config::new(c"rup%d").random_addr();
        let lower = Registration::new(cfg, try_pin_init!(Plain {}))?;
        let seen = Arc::new(
            Seen {
                change_upper: Atomic::new(0),
                change: Atomic::new(0),
                lower_state: Atomic::new(0),
                notify_peers: Atomic::new(0),
                join: Atomic::new(0),
            },
            GFP_KERNEL,
        )?;
        let nb = KBox::pin_init(
            notifier::Registration::new(Watch(seen.clone(), lower.dev().ifindex())),
            GFP_KERNEL,
        )?;
        {
            let rtnl = RtnlGuard::lock();
            let r = rtnl.token();
            let (u, l) = (&**upper.dev(), &**lower.dev());
            assert!(l.master_upper(&r).is_none());
            l.master_upper_link(&r, u, LagTxType::ActiveBackup)?;
            assert_eq!(l.master_upper(&r).map(|m| m.ifindex()), Some(u.ifindex()));
            // Linking twice is refused.
            assert_eq!(
                l.master_upper_link(&r, u, LagTxType::ActiveBackup),
                Err(EEXIST)
            );
            assert!(!l.is_failover_slave());
            l.set_failover_slave(&r, true);
            assert!(l.is_failover_slave());
            assert_ne!(
                l.priv_flags() & bindings::netdev_priv_flags_IFF_NO_ADDRCONF,
                0
            );
            l.set_failover_slave(&r, false);
            assert!(!l.is_failover_slave());
            l.lower_state_changed(&r, true, true);
            u.open(&r)?;
            l.open(&r)?;
            l.notify_peers(&r);
            // Raising events: JOIN goes to the listeners.
            l.call_notifiers(&r, PlainEvent::Join);
            // A state change goes with its `netdev_notifier_change_info` (an up device only).
            l.state_change(&r);
            // The upper's address lists sync to the lower and back.
            u.with_addr_lists(|lists| lists.sync_to(l))?;
            l.addr_lists_unsync(&r, u);
            l.upper_unlink(&r, u);
            assert!(l.master_upper(&r).is_none());
            // Unlinking what is not linked does nothing (the core would warn).
            l.upper_unlink(&r, u);
            // A device's lists cannot be synced to itself (its lock is held).
            assert_eq!(u.with_addr_lists(|lists| lists.sync_to(u)), Err(EINVAL));
        }
        assert_eq!(seen.change_upper.load(Relaxed), 2);
        assert!(seen.change.load(Relaxed) >= 1);
        assert_eq!(seen.lower_state.load(Relaxed), 1);
        assert_eq!(seen.notify_peers.load(Relaxed), 1);
        assert_eq!(seen.join.load(Relaxed), 1);
        drop(nb);
        Ok(())
    }
}

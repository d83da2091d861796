// SPDX-License-Identifier: GPL-2.0

//! KUnit tests of the network device abstractions: registration, the `net_device_ops` and
//! `ethtool_ops` tables, and a registered device's operations (the `suite` module); and what a
//! master does with a lower device: the upper link, the notifiers it raises, address list sync
//! (the `upper` module).
//!
//! `#[kunit_tests]` takes an inline module only: each suite is a module below.

#[macros::kunit_tests(rust_net_netdev)]
mod suite {
    use crate::{
        bindings,
        net::{
            dev::{
                AddrListsLocked,
                Device,
                OpsLocked, //
            },
            netdev::{
                ethtool::EthOps,
                features,
                Config,
                Driver,
                Ethtool,
                LinkKsettings,
                NetDev,
                Registration,
                RxFlags,
                Stats64,
                TxResult, //
            },
            notifier::{
                self,
                Event,
                Notify, //
            },
            rtnl::{
                Rtnl,
                RtnlGuard, //
            },
            skbuff::{
                SkBuff,
                SkBuffRef, //
            }, //
        },
        prelude::*,
        sync::{
            atomic::{
                Atomic,
                Relaxed, //
            },
            rcu::CoreRcu,
            Arc, //
        }, //
    };

    #[pin_data]
    struct TestDev {
        rx_mode: Atomic<u32>,
        sent_on_1: Atomic<u32>,
        mac_calls: Atomic<u32>,
    }

    #[vtable]
    impl Driver for TestDev {
        fn start_xmit(dev: &NetDev<Self>, _rcu: &CoreRcu, skb: SkBuff) -> TxResult {
            if skb.queue_mapping() == 1 && skb.len() == 60 {
                dev.data().sent_on_1.add(1, Relaxed);
            }
            skb.consume();
            TxResult::Ok
        }

        fn select_queue(_dev: &NetDev<Self>, _skb: &SkBuffRef) -> u16 {
            1
        }

        fn set_mac_address(dev: &NetDev<Self>, _rtnl: &Rtnl<'_>, addr: &[u8; 6]) -> Result {
            // Only ever called with a valid unicast address.
            assert!(addr[0] & 1 == 0 && addr.iter().any(|b| *b != 0));
            dev.data().mac_calls.add(1, Relaxed);
            Ok(())
        }

        fn change_mtu(_dev: &NetDev<Self>, _rtnl: &Rtnl<'_>, new_mtu: u32) -> Result {
            // This device takes even MTUs only.
            if new_mtu % 2 == 0 {
                Ok(())
            } else {
                Err(EINVAL)
            }
        }

        fn set_rx_mode(dev: &NetDev<Self>, _lists: &AddrListsLocked<'_>) {
            dev.data().rx_mode.add(1, Relaxed);
        }

        fn get_stats64(_dev: &NetDev<Self>, stats: &mut Stats64) {
            stats.set_rx(11, 1100);
            stats.set_tx(22, 2200);
            stats.set_dropped(3, 4);
        }
    }

    #[vtable]
    impl Ethtool for TestDev {
        fn get_link_ksettings(
            _dev: &NetDev<Self>,
            _rtnl: &Rtnl<'_>,
            _settings: &mut LinkKsettings,
        ) -> Result {
            Ok(())
        }
    }

    /// Counts REGISTER, UNREGISTER and (ops-locked) CHANGE events of devices named "rtest*".
    struct Watch {
        register: Atomic<u32>,
        unregister: Atomic<u32>,
        change_locked: Atomic<u32>,
    }

    struct Watcher(Arc<Watch>);

    impl Notify for Watcher {
        fn notify(
            &self,
            rtnl: &Rtnl<'_>,
            event: Event,
            dev: &Device,
            locked: Option<&OpsLocked<'_>>,
        ) -> Result {
            if dev.name(rtnl).to_bytes().starts_with(b"rtest") {
                match event {
                    Event::Register => self.0.register.add(1, Relaxed),
                    Event::Unregister => self.0.unregister.add(1, Relaxed),
                    // The token is handed for CHANGE, and on a device that needs the instance
                    // lock the trampoline's lockdep check proves it is held.
                    Event::Change if locked.is_some() => self.0.change_locked.add(1, Relaxed),
                    _ => {}
                }
            }
            Ok(())
        }
    }

    fn watch() -> Result<Arc<Watch>> {
        Ok(Arc::new(
            Watch {
                register: Atomic::new(0),
                unregister: Atomic::new(0),
                change_locked: Atomic::new(0),
            },
            GFP_KERNEL,
        )?)
    }

    #[test]
    fn mac_address_checked_before_the_driver() -> Result {
        let reg = Registration::new(Config::new(c"rtestmac").random_addr(), test_dev())?;
        let dev = reg.dev();
        let rtnl = RtnlGuard::lock();
        let r = rtnl.token();
        let mut before = [0u8; 6];
        before.copy_from_slice(dev.addr(&r));
        // Multicast and all-zero addresses: refused before the driver sees them.
        for bad in [[0x01, 0, 0x5e, 0, 0, 1], [0; 6]] {
            assert_eq!(dev.set_mac_address(&r, &bad), Err(EADDRNOTAVAIL));
        }
        assert_eq!(dev.data().mac_calls.load(Relaxed), 0);
        assert_eq!(dev.addr(&r), &before[..]);
        // A valid one while down: the driver accepts it, and it is set.
        let good = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];
        dev.set_mac_address(&r, &good)?;
        assert_eq!(dev.data().mac_calls.load(Relaxed), 1);
        assert_eq!(dev.addr(&r), &good[..]);
        // While running, without live address changes: busy, and the driver is not called.
        dev.open(&r)?;
        let other = [0x02, 0x11, 0x22, 0x33, 0x44, 0x66];
        assert_eq!(dev.set_mac_address(&r, &other), Err(EBUSY));
        assert_eq!(dev.data().mac_calls.load(Relaxed), 1);
        assert_eq!(dev.addr(&r), &good[..]);
        dev.close(&r);
        drop(rtnl);
        Ok(())
    }

    #[test]
    fn state_change_is_ops_locked() -> Result {
        let watch = watch()?;
        let nb = KBox::pin_init(
            notifier::Registration::new(Watcher(watch.clone())),
            GFP_KERNEL,
        )?;
        // A device whose operations and notifiers run under its instance lock (without
        // `set_rx_mode`, which such a driver must not have).
        let dropped = Arc::new(Atomic::new(0u32), GFP_KERNEL)?;
        let reg = Registration::new(
            Config::new(c"rtestlock").random_addr().request_ops_lock(),
            try_pin_init!(Linked {
                peer: crate::net::slot::DeviceSlot::new(),
                dropped,
            }),
        )?;
        {
            let rtnl = RtnlGuard::lock();
            let r = rtnl.token();
            reg.dev().open(&r)?;
            reg.dev().state_change(&r);
            // The locked-ops variants work in that state too.
            reg.dev().lock_ops(&r).set_mtu(1400)?;
            reg.dev().close(&r);
        }
        assert!(watch.change_locked.load(Relaxed) >= 1);
        drop(reg);
        drop(nb);
        Ok(())
    }

    /// Private data that counts its drops, and two devices that hold a reference to each other
    /// until `uninit`.
    #[pin_data(PinnedDrop)]
    struct Linked {
        peer: crate::net::slot::DeviceSlot,
        dropped: Arc<Atomic<u32>>,
    }

    #[pinned_drop]
    impl PinnedDrop for Linked {
        fn drop(self: Pin<&mut Self>) {
            self.dropped.add(1, Relaxed);
        }
    }

    #[vtable]
    impl Driver for Linked {
        fn start_xmit(_dev: &NetDev<Self>, _rcu: &CoreRcu, skb: SkBuff) -> TxResult {
            skb.consume();
            TxResult::Ok
        }

        fn uninit(dev: &NetDev<Self>, rtnl: &Rtnl<'_>) {
            dev.data().peer.replace(rtnl, None);
        }
    }

    #[vtable]
    impl Ethtool for Linked {}

    #[test]
    fn unregister_under_rtnl_frees_after_unlock() -> Result {
        let dropped = Arc::new(Atomic::new(0u32), GFP_KERNEL)?;
        let linked = |dropped| {
            try_pin_init!(Linked {
                peer: crate::net::slot::DeviceSlot::new(),
                dropped,
            })
        };
        let a = Registration::new(
            Config::new(c"rtestua").random_addr(),
            linked(dropped.clone()),
        )?;
        let b = Registration::new(
            Config::new(c"rtestub").random_addr(),
            linked(dropped.clone()),
        )?;
        let rtnl = RtnlGuard::lock();
        let r = rtnl.token();
        let a_ref = crate::net::dev::DeviceRef::new(a.dev(), GFP_KERNEL);
        let b_ref = crate::net::dev::DeviceRef::new(b.dev(), GFP_KERNEL);
        a.dev().data().peer.replace(&r, Some(b_ref));
        b.dev().data().peer.replace(&r, Some(a_ref));
        // One section: `uninit` breaks the cycle, and nothing is freed while it lasts.
        a.unregister(&r);
        b.unregister(&r);
        assert!(Device::get_by_name_init_net(c"rtestua").is_none());
        assert_eq!(dropped.load(Relaxed), 0);
        drop(rtnl);
        // Released: both devices were freed, and their private data dropped.
        assert_eq!(dropped.load(Relaxed), 2);
        Ok(())
    }

    fn test_dev() -> impl PinInit<TestDev, Error> {
        try_pin_init!(TestDev {
            rx_mode: Atomic::new(0),
            sent_on_1: Atomic::new(0),
            mac_calls: Atomic::new(0),
        })
    }

    /// A device that hears of its promiscuity and allmulti changes. (With `change_rx_flags`,
    /// the core programs a device's address filters from its deferred work, so `TestDev` has
    /// none: its test sees `set_rx_mode` called by `open`.)
    #[pin_data]
    struct FlagsDev {
        promisc_changes: Atomic<u32>,
        allmulti_changes: Atomic<u32>,
    }

    #[vtable]
    impl Driver for FlagsDev {
        fn start_xmit(_dev: &NetDev<Self>, _rcu: &CoreRcu, skb: SkBuff) -> TxResult {
            skb.consume();
            TxResult::Ok
        }

        fn change_rx_flags(dev: &NetDev<Self>, _rtnl: &Rtnl<'_>, changed: RxFlags) {
            if changed.promisc() {
                dev.data().promisc_changes.add(1, Relaxed);
            }
            if changed.allmulti() {
                dev.data().allmulti_changes.add(1, Relaxed);
            }
        }
    }

    #[vtable]
    impl Ethtool for FlagsDev {}

    #[test]
    fn rx_flags_follow_the_counts() -> Result {
        let reg = Registration::new(
            Config::new(c"rtestrxf").random_addr(),
            try_pin_init!(FlagsDev {
                promisc_changes: Atomic::new(0),
                allmulti_changes: Atomic::new(0),
            }),
        )?;
        let dev = reg.dev();
        let rtnl = RtnlGuard::lock();
        let r = rtnl.token();
        let promisc = || dev.data().promisc_changes.load(Relaxed);
        // The first count sets the flag and the last clears it; the driver hears of both.
        dev.set_promiscuity(&r, 1)?;
        dev.set_promiscuity(&r, 1)?;
        assert!(dev.is_promisc());
        assert_eq!(promisc(), 1);
        dev.set_promiscuity(&r, -1)?;
        assert!(dev.is_promisc());
        dev.set_promiscuity(&r, -1)?;
        assert!(!dev.is_promisc());
        assert_eq!(promisc(), 2);
        dev.set_allmulti(&r, 1)?;
        assert!(dev.is_allmulti() && !dev.is_promisc());
        dev.set_allmulti(&r, -1)?;
        assert!(!dev.is_allmulti());
        assert_eq!(dev.data().allmulti_changes.load(Relaxed), 2);
        // Where the instance lock is held.
        let locked = dev.lock_ops(&r);
        locked.set_promiscuity(1)?;
        assert!(dev.is_promisc());
        locked.set_promiscuity(-1)?;
        drop(locked);
        assert!(!dev.is_promisc());
        assert_eq!(promisc(), 4);
        drop(rtnl);
        Ok(())
    }

    #[test]
    fn bad_names() -> Result {
        let first = Registration::new(Config::new(c"rtestdup").random_addr(), test_dev())?;
        // A name in use, and names the core refuses: an errno, and nothing is registered.
        let dup = Registration::new(Config::new(c"rtestdup").random_addr(), test_dev());
        assert_eq!(dup.err(), Some(EEXIST));
        // A name of IFNAMSIZ bytes or more would hit a BUG_ON in alloc_netdev_mqs().
        let r = Registration::new(Config::new(c"rtest0123456789a").random_addr(), test_dev());
        assert_eq!(r.err(), Some(EINVAL));
        let long = c"rtest0123456789abcdefghijklmnopqrstuvwxyz";
        assert_eq!(
            Registration::new(Config::new(long).random_addr(), test_dev()).err(),
            Some(EINVAL)
        );
        // Fifteen bytes fit.
        drop(Registration::new(
            Config::new(c"rtest0123456789").random_addr(),
            test_dev(),
        )?);
        for bad in [c"", c"bad/name", c"bad name", c"."] {
            let r = Registration::new(Config::new(bad).random_addr(), test_dev());
            assert_eq!(r.err(), Some(EINVAL));
        }
        // A wrong address length is refused before registration.
        let r = Registration::new(Config::new(c"rtestaddr").addr(&[2, 0, 0]), test_dev());
        assert_eq!(r.err(), Some(EINVAL));
        assert!(Device::get_by_name_init_net(c"rtestaddr").is_none());
        let dev = Device::get_by_name_init_net(c"rtestdup").ok_or(ENODEV)?;
        assert_eq!(dev.ifindex(), first.dev().ifindex());
        drop(dev);
        drop(first);
        assert!(Device::get_by_name_init_net(c"rtestdup").is_none());
        Ok(())
    }

    #[test]
    fn register_stats_unregister() -> Result {
        let watch = watch()?;
        let nb = KBox::pin_init(
            notifier::Registration::new(Watcher(watch.clone())),
            GFP_KERNEL,
        )?;
        let reg = Registration::new(Config::new(c"rtest%d").queues(2).random_addr(), test_dev())?;
        let ifindex = reg.dev().ifindex();
        assert!(ifindex > 0);
        assert_eq!(watch.register.load(Relaxed), 1);
        {
            let rtnl = RtnlGuard::lock();
            assert!(reg
                .dev()
                .name(&rtnl.token())
                .to_bytes()
                .starts_with(b"rtest"));
        }
        let found = Device::get_by_name_init_net(c"rtest0").ok_or(ENODEV)?;
        assert_eq!(found.ifindex(), ifindex);
        drop(found);

        let s = reg.dev().stats();
        assert_eq!((s.rx_packets(), s.tx_packets()), (11, 22));
        // The counters in order: rx_packets, tx_packets, rx_bytes, tx_bytes, ...
        assert_eq!(s.values()[..4], [11, 22, 1100, 2200]);
        assert_eq!((s.rx_dropped(), s.tx_dropped()), (3, 4));

        // Control-plane operations on a registered device.
        {
            let dev = reg.dev();
            let rtnl = RtnlGuard::lock();
            let r = rtnl.token();
            assert!(!dev.is_running());
            // Down: every transmit queue has the noop qdisc.
            assert!(dev.tx_is_noop());
            dev.open(&r)?;
            assert!(dev.is_running() && dev.is_up());
            // Opened with carrier: the real qdiscs are attached.
            assert!(dev.carrier_ok() && !dev.tx_is_noop());
            // Opening programs the address filters.
            assert!(dev.data().rx_mode.load(Relaxed) > 0);
            assert_eq!(dev.mtu(), 1500);
            dev.set_mtu(&r, 1400)?;
            assert_eq!(dev.mtu(), 1400);
            // The driver's change_mtu refuses odd MTUs: nothing changes.
            assert_eq!(dev.set_mtu(&r, 1401), Err(EINVAL));
            assert_eq!(dev.mtu(), 1400);
            // Above the maximum: refused, nothing changes.
            assert_eq!(dev.set_mtu(&r, dev.max_mtu() + 1), Err(EINVAL));
            assert_eq!(dev.mtu(), 1400);
            // The same through the instance-lock variants.
            dev.lock_ops(&r).set_mtu(1300)?;
            assert_eq!(dev.mtu(), 1300);
            assert_eq!(dev.lock_ops(&r).set_mtu(1301), Err(EINVAL));
            assert_eq!(dev.mtu(), 1300);
            // A master sets its offloads and MTU range from its lower devices.
            dev.set_mtu_range(&r, 68, 9000);
            assert_eq!((dev.min_mtu(), dev.max_mtu()), (68, 9000));
            dev.set_lower_offloads(&r, features::SG, features::SG, 18, false);
            assert_eq!(
                (dev.vlan_features(), dev.hw_enc_features()),
                (features::SG, features::SG)
            );
            assert_eq!(dev.hard_header_len(), 18);
            assert!(!dev.releases_dst());
            assert!(!dev.is_failover());
            dev.set_failover(&r, true);
            assert!(dev.is_failover());
            dev.set_failover(&r, false);
            // A random address is locally administered unicast, and not permanent.
            let addr = dev.addr(&r);
            assert_eq!(addr.len(), 6);
            assert!(addr[0] & 0x02 != 0 && addr[0] & 0x01 == 0);
            assert!(dev.perm_addr().iter().all(|b| *b == 0));
            assert!(dev.parent().is_none() && !dev.parent_is_pci());
            let lo = Device::get_by_name_init_net(c"lo").ok_or(ENODEV)?;
            assert!(dev.same_net(&lo));
        }
        // Transmit through the stack: select_queue picks queue 1, start_xmit sees it there.
        SkBuff::from_data(&[0u8; 60], GFP_KERNEL)?.transmit(reg.dev())?;
        for _ in 0..200 {
            if reg.dev().data().sent_on_1.load(Relaxed) > 0 {
                break;
            }
            crate::time::delay::fsleep(crate::time::Delta::from_millis(5));
        }
        assert_eq!(reg.dev().data().sent_on_1.load(Relaxed), 1);
        {
            let rtnl = RtnlGuard::lock();
            reg.dev().close(&rtnl.token());
            assert!(!reg.dev().is_running());
        }

        drop(reg);
        assert_eq!(watch.unregister.load(Relaxed), 1);
        assert!(Device::get_by_name_init_net(c"rtest0").is_none());
        drop(nb);
        Ok(())
    }

    /// A driver without link settings, to compare the ethtool table with.
    struct NoLinkSettings;

    #[vtable]
    impl Driver for NoLinkSettings {
        fn start_xmit(_dev: &NetDev<Self>, _rcu: &CoreRcu, skb: SkBuff) -> TxResult {
            skb.consume();
            TxResult::Ok
        }
    }

    #[vtable]
    impl Ethtool for NoLinkSettings {}

    #[test]
    fn link_settings_make_ethtool_take_the_rtnl() {
        // `get_link_ksettings` hands the driver an `Rtnl` token. On an "ops locked" device
        // (`request_ops_lock`, queue management or shaping), ethtool holds only the instance
        // lock for it unless the table asks for the RTNL.
        let asks = |ops: &bindings::ethtool_ops| {
            ops.op_needs_rtnl & bindings::ETHTOOL_OP_NEEDS_RTNL_LINKSETTINGS != 0
        };
        assert!(EthOps::<TestDev>::OPS.get_link_ksettings.is_some());
        assert!(asks(&EthOps::<TestDev>::OPS));
        assert!(EthOps::<NoLinkSettings>::OPS.get_link_ksettings.is_none());
        assert!(!asks(&EthOps::<NoLinkSettings>::OPS));
    }
}

#[macros::kunit_tests(rust_net_upper)]
mod upper {
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
        rtnl::{
            Rtnl,
            RtnlGuard, //
        },
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
    use crate::{
        bindings,
        net::dev::{
            Device,
            LagTxType,
            PlainEvent, //
        },
        prelude::*, //
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

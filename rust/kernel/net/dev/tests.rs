// SPDX-License-Identifier: GPL-2.0

//! KUnit tests of [`Device`](super::Device): its accessors and references. What a master does
//! with a lower device needs a registered driver: those tests are in `netdev/tests.rs`.
//!
//! `#[kunit_tests]` takes an inline module only: the suite is the module below.

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

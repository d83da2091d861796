// SPDX-License-Identifier: GPL-2.0

//! Rust network device sample: a pair of virtual Ethernet devices that pass frames to each
//! other, like veth.
//!
//! Loading the module creates `rpair0` and `rpair1`. A frame sent on one is received on the
//! other; each side has carrier only while both are up.

use kernel::{
    net::{
        dev::DeviceRef,
        netdev::{
            Config,
            Driver,
            DrvInfo,
            Duplex,
            Ethtool,
            LinkKsettings,
            NetDev,
            Registration,
            Stats64,
            TxResult, //
        },
        rtnl::{
            Rtnl,
            RtnlGuard, //
        },
        skbuff::{
            RxResult,
            SkBuff, //
        },
        slot::DeviceSlot, //
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

module! {
    type: RustNetdevPair,
    name: "rust_netdev_pair",
    authors: ["net_failover_rust developers"],
    description: "Rust network device sample: a veth-like pair",
    license: "GPL",
}

/// Counters of the frames one side sent to the other.
struct Direction {
    packets: Atomic<u64>,
    bytes: Atomic<u64>,
    dropped: Atomic<u64>,
}

impl Direction {
    const fn new() -> Self {
        Self {
            packets: Atomic::new(0),
            bytes: Atomic::new(0),
            dropped: Atomic::new(0),
        }
    }
}

/// Counters shared by both sides: `dir[i]` counts what side `i` sent.
struct Shared {
    dir: [Direction; 2],
}

#[pin_data]
struct PairDev {
    side: usize,
    shared: Arc<Shared>,
    peer: DeviceSlot,
}

#[vtable]
impl Driver for PairDev {
    fn open(dev: &NetDev<Self>, rtnl: &Rtnl<'_>) -> Result {
        if let Some(peer) = dev.data().peer.get_rtnl(rtnl) {
            if peer.is_up() {
                dev.carrier_on();
                peer.carrier_on();
            }
        }
        dev.tx_start_all_queues();
        Ok(())
    }

    fn stop(dev: &NetDev<Self>, rtnl: &Rtnl<'_>) -> Result {
        dev.tx_stop_all_queues();
        dev.carrier_off();
        if let Some(peer) = dev.data().peer.get_rtnl(rtnl) {
            peer.carrier_off();
        }
        Ok(())
    }

    fn start_xmit(dev: &NetDev<Self>, rcu: &CoreRcu, skb: SkBuff) -> TxResult {
        let data = dev.data();
        let count = &data.shared.dir[data.side];
        let len = u64::from(skb.len());
        match data.peer.get(rcu).map(|peer| skb.forward(peer)) {
            Some(RxResult::Success) => {
                count.packets.add(1, Relaxed);
                count.bytes.add(len, Relaxed);
            }
            Some(RxResult::Dropped) | None => count.dropped.add(1, Relaxed),
        }
        TxResult::Ok
    }

    fn set_mac_address(_dev: &NetDev<Self>, _rtnl: &Rtnl<'_>, _addr: &[u8; 6]) -> Result {
        // Any valid unicast address will do.
        Ok(())
    }

    fn uninit(dev: &NetDev<Self>, rtnl: &Rtnl<'_>) {
        // Each side holds a reference to the other: let go of it here, or unregistering both
        // would wait for those references forever.
        dev.data().peer.replace(rtnl, None);
    }

    fn get_stats64(dev: &NetDev<Self>, stats: &mut Stats64) {
        let data = dev.data();
        let tx = &data.shared.dir[data.side];
        let rx = &data.shared.dir[1 - data.side];
        stats.set_tx(tx.packets.load(Relaxed), tx.bytes.load(Relaxed));
        stats.set_rx(rx.packets.load(Relaxed), rx.bytes.load(Relaxed));
        stats.set_dropped(0, tx.dropped.load(Relaxed));
    }
}

#[vtable]
impl Ethtool for PairDev {
    const ETHTOOL_STATS: &'static [&'static CStr] = &[c"peer_tx_packets", c"peer_tx_dropped"];

    fn get_ethtool_stats(dev: &NetDev<Self>, data: &mut [u64]) {
        let me = dev.data();
        let peer = &me.shared.dir[1 - me.side];
        data[0] = peer.packets.load(Relaxed);
        data[1] = peer.dropped.load(Relaxed);
    }

    fn get_drvinfo(_dev: &NetDev<Self>, info: &mut DrvInfo) {
        info.set_driver(c"rust_netdev_pair");
    }

    fn get_link_ksettings(
        _dev: &NetDev<Self>,
        _rtnl: &Rtnl<'_>,
        settings: &mut LinkKsettings,
    ) -> Result {
        settings.set_speed(10000);
        settings.set_duplex(Duplex::Full);
        settings.set_port_other();
        Ok(())
    }
}

struct RustNetdevPair {
    devs: Option<[Registration<PairDev>; 2]>,
}

impl RustNetdevPair {
    fn side(side: usize, shared: &Arc<Shared>) -> Result<Registration<PairDev>> {
        let name = if side == 0 { c"rpair0" } else { c"rpair1" };
        Registration::new(
            Config::new(name).random_addr(),
            try_pin_init!(PairDev {
                side,
                shared: shared.clone(),
                peer: DeviceSlot::new(),
            }),
        )
    }
}

impl kernel::Module for RustNetdevPair {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let shared = Arc::new(
            Shared {
                dir: [Direction::new(), Direction::new()],
            },
            GFP_KERNEL,
        )?;
        let devs = [Self::side(0, &shared)?, Self::side(1, &shared)?];
        let rtnl = RtnlGuard::lock();
        for (me, other) in [(0, 1), (1, 0)] {
            let peer = DeviceRef::new(devs[other].dev(), GFP_KERNEL);
            devs[me]
                .dev()
                .data()
                .peer
                .replace(&rtnl.token(), Some(peer));
            devs[me].dev().carrier_off();
        }
        drop(rtnl);
        pr_info!("rust_netdev_pair: rpair0 <-> rpair1\n");
        Ok(Self { devs: Some(devs) })
    }
}

impl Drop for RustNetdevPair {
    fn drop(&mut self) {
        // Both sides go in one RTNL section: each one's `uninit` lets go of its peer, and both
        // are freed when the RTNL is released.
        let rtnl = RtnlGuard::lock();
        for reg in self.devs.take().into_iter().flatten() {
            reg.unregister(&rtnl.token());
        }
    }
}

// SPDX-License-Identifier: GPL-2.0

//! Device statistics: [`Stats64`], the counters of `struct rtnl_link_stats64`.

use crate::bindings;

/// Device statistics (`struct rtnl_link_stats64`): filled in by [`Driver::get_stats64`], read
/// with [`Device::stats`].
///
/// [`Driver::get_stats64`]: crate::net::netdev::Driver::get_stats64
/// [`Device::stats`]: crate::net::dev::Device::stats
#[repr(transparent)]
pub struct Stats64(pub(crate) bindings::rtnl_link_stats64);

impl Clone for Stats64 {
    fn clone(&self) -> Self {
        Self(self.0)
    }
}

impl Default for Stats64 {
    fn default() -> Self {
        // SAFETY: All-zero is a valid `rtnl_link_stats64` (only integers).
        Self(unsafe { core::mem::zeroed() })
    }
}

/// The number of counters in [`Stats64`].
const STATS64_LEN: usize = core::mem::size_of::<bindings::rtnl_link_stats64>() / 8;

impl Stats64 {
    pub(crate) fn from_raw(raw: bindings::rtnl_link_stats64) -> Self {
        Self(raw)
    }

    /// All counters, in the order of `struct rtnl_link_stats64`; they are all `u64`.
    pub fn values(&self) -> &[u64; STATS64_LEN] {
        const {
            assert!(core::mem::size_of::<bindings::rtnl_link_stats64>() == STATS64_LEN * 8);
            assert!(core::mem::align_of::<bindings::rtnl_link_stats64>() >= 8);
        };
        // SAFETY: The struct consists of `STATS64_LEN` `u64` counters (checked above) and has
        // the same alignment as `u64`.
        unsafe { &*(&raw const self.0).cast() }
    }

    /// All counters, mutably; see [`Stats64::values`].
    pub fn values_mut(&mut self) -> &mut [u64; STATS64_LEN] {
        // SAFETY: As in `values`; every bit pattern is a valid counter.
        unsafe { &mut *(&raw mut self.0).cast() }
    }

    /// Received packets.
    pub fn rx_packets(&self) -> u64 {
        self.0.rx_packets
    }

    /// Transmitted packets.
    pub fn tx_packets(&self) -> u64 {
        self.0.tx_packets
    }

    /// Received bytes.
    pub fn rx_bytes(&self) -> u64 {
        self.0.rx_bytes
    }

    /// Transmitted bytes.
    pub fn tx_bytes(&self) -> u64 {
        self.0.tx_bytes
    }

    /// Received packets dropped.
    pub fn rx_dropped(&self) -> u64 {
        self.0.rx_dropped
    }

    /// Transmitted packets dropped.
    pub fn tx_dropped(&self) -> u64 {
        self.0.tx_dropped
    }

    /// Sets the received packet and byte counts.
    pub fn set_rx(&mut self, packets: u64, bytes: u64) {
        self.0.rx_packets = packets;
        self.0.rx_bytes = bytes;
    }

    /// Sets the transmitted packet and byte counts.
    pub fn set_tx(&mut self, packets: u64, bytes: u64) {
        self.0.tx_packets = packets;
        self.0.tx_bytes = bytes;
    }

    /// Sets the dropped packet counts.
    pub fn set_dropped(&mut self, rx: u64, tx: u64) {
        self.0.rx_dropped = rx;
        self.0.tx_dropped = tx;
    }
}

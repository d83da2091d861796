// SPDX-License-Identifier: GPL-2.0

//! Device feature bits (`NETIF_F_*`, `netdev_features_t`).
//!
//! C header: [`include/linux/netdev_features.h`](srctree/include/linux/netdev_features.h)

use crate::bindings;

const fn bit(b: u32) -> u64 {
    1u64 << b
}

/// Scatter/gather I/O.
pub const SG: u64 = bit(bindings::NETIF_F_SG_BIT);
/// Checksums all protocols in hardware.
pub const HW_CSUM: u64 = bit(bindings::NETIF_F_HW_CSUM_BIT);
/// Can transmit fragment lists.
pub const FRAGLIST: u64 = bit(bindings::NETIF_F_FRAGLIST_BIT);
/// Can DMA to high memory.
pub const HIGHDMA: u64 = bit(bindings::NETIF_F_HIGHDMA_BIT);
/// Large receive offload.
pub const LRO: u64 = bit(bindings::NETIF_F_LRO_BIT);
/// Receive checksum offload.
pub const RXCSUM: u64 = bit(bindings::NETIF_F_RXCSUM_BIT);
/// Cannot handle VLAN-tagged frames.
pub const VLAN_CHALLENGED: u64 = bit(bindings::NETIF_F_VLAN_CHALLENGED_BIT);
/// Inserts 802.1Q tags on transmit.
pub const HW_VLAN_CTAG_TX: u64 = bit(bindings::NETIF_F_HW_VLAN_CTAG_TX_BIT);
/// Strips 802.1Q tags on receive.
pub const HW_VLAN_CTAG_RX: u64 = bit(bindings::NETIF_F_HW_VLAN_CTAG_RX_BIT);
/// Filters received 802.1Q VLANs.
pub const HW_VLAN_CTAG_FILTER: u64 = bit(bindings::NETIF_F_HW_VLAN_CTAG_FILTER_BIT);
/// Copies user data without caching it.
pub const NOCACHE_COPY: u64 = bit(bindings::NETIF_F_NOCACHE_COPY_BIT);
/// FCoE segmentation.
pub const FSO: u64 = bit(bindings::NETIF_F_FSO_BIT);
/// Every TCP segmentation offload (`NETIF_F_ALL_TSO`).
pub const ALL_TSO: u64 = bit(bindings::NETIF_F_TSO_BIT)
    | bit(bindings::NETIF_F_TSO6_BIT)
    | bit(bindings::NETIF_F_TSO_ECN_BIT)
    | bit(bindings::NETIF_F_TSO_MANGLEID_BIT);
/// Features that, set on an upper device, apply to all lower ones (`NETIF_F_ALL_FOR_ALL`).
pub const ALL_FOR_ALL: u64 = NOCACHE_COPY | FSO;
/// Every tunnel segmentation offload (`NETIF_F_GSO_ENCAP_ALL`).
pub const GSO_ENCAP_ALL: u64 = bit(bindings::NETIF_F_GSO_GRE_BIT)
    | bit(bindings::NETIF_F_GSO_GRE_CSUM_BIT)
    | bit(bindings::NETIF_F_GSO_IPXIP4_BIT)
    | bit(bindings::NETIF_F_GSO_IPXIP6_BIT)
    | bit(bindings::NETIF_F_GSO_UDP_TUNNEL_BIT)
    | bit(bindings::NETIF_F_GSO_UDP_TUNNEL_CSUM_BIT);

/// Adds a lower device's features `one` to an upper device's `all`, within `mask`
/// (`netdev_increment_features()`): what every lower device can do, and what one can do
/// for the features where one is enough.
pub fn increment(all: u64, one: u64, mask: u64) -> u64 {
    // SAFETY: Pure computation on its arguments.
    unsafe { bindings::netdev_increment_features(all, one, mask) }
}

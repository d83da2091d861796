// SPDX-License-Identifier: GPL-2.0

//! Socket buffers.
//!
//! C header: [`include/linux/skbuff.h`](srctree/include/linux/skbuff.h)

use crate::{
    bindings,
    net::dev::Device,
    prelude::*,
    types::Opaque, //
};
use core::{
    mem::ManuallyDrop,
    ops::Deref,
    ptr::{
        self,
        NonNull, //
    }, //
};

/// A socket buffer (`struct sk_buff`) that someone else owns, lent to the code that holds a
/// `&SkBuffRef`: a callback that may look at the packet and set some of its fields, but not free
/// it or hand it on. An owned [`SkBuff`] derefs to it.
///
/// Only shared references to it exist (as with a block request, `kernel::block::mq::Request`):
/// the fields it changes are behind the C struct's interior mutability, and it is neither
/// `Send` nor `Sync`, so no other thread reaches the packet through it meanwhile.
///
/// The packet cannot be taken out of a borrowed one, so a callback cannot free the core's skb:
///
/// ```ignore,compile_fail,E0507
/// use kernel::net::skbuff::SkBuffRef;
///
/// fn steal(skb: &SkBuffRef) -> SkBuffRef {
///     // Only references to an `SkBuffRef` exist, and the packet cannot be moved out of one
///     // (nor replaced through one: there is no `&mut SkBuffRef`).
///     *skb
/// }
/// ```
///
/// # Invariants
///
/// The `sk_buff` is valid for as long as the reference is used; nobody frees it, and no other
/// thread changes it, meanwhile.
#[repr(transparent)]
pub struct SkBuffRef(Opaque<bindings::sk_buff>);

/// The length of an Ethernet address.
pub const ETH_ALEN: usize = bindings::ETH_ALEN as usize;
/// The length of an Ethernet header.
const ETH_HLEN: usize = bindings::ETH_HLEN as usize;

/// Why a packet was dropped (`enum skb_drop_reason`), as `kfree_skb` tracepoints and drop
/// monitors report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// No more specific reason (`SKB_DROP_REASON_NOT_SPECIFIED`).
    NotSpecified,
    /// The device that was to send or receive the packet is not ready: down, without
    /// carrier, or with nothing to send through (`SKB_DROP_REASON_DEV_READY`).
    DevReady,
}

impl DropReason {
    fn as_raw(self) -> bindings::skb_drop_reason {
        match self {
            DropReason::NotSpecified => bindings::skb_drop_reason_SKB_DROP_REASON_NOT_SPECIFIED,
            DropReason::DevReady => bindings::skb_drop_reason_SKB_DROP_REASON_DEV_READY,
        }
    }
}

/// An owned socket buffer (`struct sk_buff`).
///
/// Whoever holds an `SkBuff` owns the packet: it is freed when dropped (`kfree_skb()`), and the
/// consuming methods hand it on, so it can be neither used after it is sent on nor leaked:
///
/// ```ignore,compile_fail,E0382
/// use kernel::net::{dev::Device, skbuff::SkBuff};
///
/// fn send_twice(skb: SkBuff, dev: &Device) {
///     let _ = skb.transmit(dev);
///     // The packet belongs to `dev` now.
///     let _ = skb.len();
/// }
/// ```
///
/// # Invariants
///
/// `ptr` points to a valid `sk_buff` that this value owns exclusively.
pub struct SkBuff {
    ptr: NonNull<bindings::sk_buff>,
}

// SAFETY: An owned skb may move to, and be freed on, another thread.
unsafe impl Send for SkBuff {}

/// What happened to a forwarded packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RxResult {
    /// The receiving stack took the packet (`NET_RX_SUCCESS`).
    Success,
    /// The packet was dropped (`NET_RX_DROP`), e.g. because the target device is down.
    Dropped,
}

/// `&raw mut skb->dev` (inside anonymous unions, hence the bindgen path).
///
/// # Safety
///
/// `skb` must point to a valid `sk_buff`.
#[inline]
unsafe fn dev_field(skb: *mut bindings::sk_buff) -> *mut *mut bindings::net_device {
    // SAFETY: `skb` is valid per the caller; only the field's address is taken.
    unsafe {
        &raw mut (*skb)
            .__bindgen_anon_1
            .__bindgen_anon_1
            .__bindgen_anon_1
            .dev
    }
}

impl SkBuffRef {
    /// Borrows a raw `sk_buff`.
    ///
    /// # Safety
    ///
    /// `ptr` must point to a valid `sk_buff` that stays valid, and that nobody frees or
    /// changes from another thread, for `'a`.
    #[inline]
    pub unsafe fn from_raw<'a>(ptr: *mut bindings::sk_buff) -> &'a Self {
        // SAFETY: `SkBuffRef` is `repr(transparent)` over the C struct; valid for `'a` per the
        // caller.
        unsafe { &*ptr.cast() }
    }

    #[inline]
    fn as_raw(&self) -> *mut bindings::sk_buff {
        self.0.get()
    }

    /// Whether the packet is on `dev` (`skb->dev == dev`). No reference to the device is
    /// handed out: `skb->dev` holds none.
    #[inline]
    pub fn is_on(&self, dev: &Device) -> bool {
        // SAFETY: The skb is valid (type invariant); only the pointer is compared.
        ptr::eq(unsafe { *dev_field(self.as_raw()) }, dev.as_raw())
    }

    /// The source address of the frame's Ethernet header, where the skb has one: its MAC header
    /// is set (as `eth_type_trans()` does on receive) and lies in the linear data. A packet
    /// built by a driver has none until it sets it. For Ethernet devices only: on others the
    /// bytes at the MAC header are not an Ethernet header.
    ///
    /// ```
    /// use kernel::net::skbuff::SkBuff;
    ///
    /// let skb = SkBuff::from_data(&[0u8; 60], GFP_KERNEL)?;
    /// assert_eq!(skb.eth_source(), None);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn eth_source(&self) -> Option<[u8; ETH_ALEN]> {
        let skb = self.as_raw();
        // SAFETY: The skb is valid (type invariant).
        if !unsafe { bindings::skb_mac_header_was_set(skb) } {
            return None;
        }
        // SAFETY: The skb is valid and its MAC header is set: both functions only add an offset
        // to `skb->head`. Whether the header lies in the data is checked below.
        let (mac, tail) = unsafe {
            (
                bindings::skb_mac_header(skb),
                bindings::skb_tail_pointer(skb),
            )
        };
        // The header must end before the linear data does.
        if (tail as usize).checked_sub(mac as usize)? < ETH_HLEN {
            return None;
        }
        let mut src = [0u8; ETH_ALEN];
        // SAFETY: The `ETH_HLEN` bytes at `mac` are in the skb's linear data (checked above),
        // and nobody changes them while the skb is borrowed (type invariant); the source
        // address is at `ETH_ALEN` in them.
        unsafe { ptr::copy_nonoverlapping(mac.add(ETH_ALEN), src.as_mut_ptr(), ETH_ALEN) };
        Some(src)
    }

    /// The length of the data, in bytes (`skb->len`).
    #[inline]
    pub fn len(&self) -> u32 {
        // SAFETY: The skb is valid (type invariant).
        unsafe { (*self.as_raw()).len }
    }

    /// Whether the skb holds no data.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The transmit queue the packet was mapped to (`skb_get_queue_mapping()`).
    #[inline]
    pub fn queue_mapping(&self) -> u16 {
        // SAFETY: The skb is valid.
        unsafe { bindings::skb_get_queue_mapping(self.as_raw()) }
    }

    /// Maps the packet to transmit queue `queue` (`skb_set_queue_mapping()`).
    #[inline]
    pub fn set_queue_mapping(&self, queue: u16) {
        // SAFETY: The skb is valid, and only this thread reaches it (type invariant).
        unsafe { bindings::skb_set_queue_mapping(self.as_raw(), queue) };
    }

    /// The receive queue the packet arrived on, if recorded (`skb_get_rx_queue()`).
    #[inline]
    pub fn rx_queue(&self) -> Option<u16> {
        // SAFETY: The skb is valid.
        if unsafe { bindings::skb_rx_queue_recorded(self.as_raw()) } {
            // SAFETY: The skb is valid.
            Some(unsafe { bindings::skb_get_rx_queue(self.as_raw()) })
        } else {
            None
        }
    }

    /// Keeps the current queue mapping in the packet's queueing control block
    /// (`qdisc_skb_cb(skb)->slave_dev_queue_mapping`), for a master that picks a queue of its
    /// own and hands the packet to a lower device, which should see the original.
    #[inline]
    pub fn save_lower_queue_mapping(&self) {
        let q = self.queue_mapping();
        // SAFETY: The skb is valid and only this thread reaches it (type invariant); its control
        // block belongs to the transmit path it is on.
        unsafe { (*bindings::qdisc_skb_cb(self.as_raw())).slave_dev_queue_mapping = q };
    }

    /// Restores the queue mapping kept by [`SkBuffRef::save_lower_queue_mapping`].
    #[inline]
    pub fn restore_lower_queue_mapping(&self) {
        // SAFETY: The skb is valid and only this thread reaches it (type invariant); its control
        // block belongs to the transmit path it is on.
        let q = unsafe { (*bindings::qdisc_skb_cb(self.as_raw())).slave_dev_queue_mapping };
        self.set_queue_mapping(q);
    }

    /// Whether a received frame is addressed to this host's unicast address
    /// (`skb->pkt_type == PACKET_HOST`), as opposed to broadcast, multicast or another host.
    #[inline]
    pub fn is_for_host(&self) -> bool {
        // SAFETY: The skb is valid; `pkt_type` lives in the `headers` group, always accessible
        // through the first member of its union.
        let t = unsafe {
            (*self.as_raw())
                .__bindgen_anon_4
                .__bindgen_anon_1
                .as_ref()
                .pkt_type()
        };
        u32::from(t) == bindings::PACKET_HOST
    }

    /// The packet's protocol (`skb->protocol`), in host byte order, e.g. `ETH_P_IP`.
    #[inline]
    pub fn protocol(&self) -> u16 {
        // SAFETY: The skb is valid.
        u16::from_be(unsafe { bindings::skb_protocol(self.as_raw(), false) })
    }

    /// Picks the transmit queue of `dev` for this packet, as the stack would: `dev`'s
    /// `ndo_select_queue`, or the core's choice (`netdev_pick_tx()`). For a master that
    /// transmits through `dev`.
    pub fn pick_tx_queue(&self, dev: &Device) -> u16 {
        let dev = dev.as_raw();
        // SAFETY: The device is valid; its ops do not change while it is registered.
        let select = unsafe { (*(*dev).netdev_ops).ndo_select_queue };
        match select {
            // SAFETY: The device's own callback, with a valid device and a valid skb that this
            // thread alone reaches (type invariant), as `netdev_core_pick_tx()` calls it.
            Some(f) => unsafe { f(dev, self.as_raw(), ptr::null_mut()) },
            // SAFETY: As above.
            None => unsafe { bindings::netdev_pick_tx(dev, self.as_raw(), ptr::null_mut()) },
        }
    }
}

impl Deref for SkBuff {
    type Target = SkBuffRef;

    #[inline]
    fn deref(&self) -> &SkBuffRef {
        // SAFETY: We own the skb (type invariant); the borrow of `self` keeps it from being
        // freed or handed on, and `SkBuff` is not `Sync`.
        unsafe { SkBuffRef::from_raw(self.as_raw()) }
    }
}

impl SkBuff {
    /// Takes ownership of a raw `sk_buff`.
    ///
    /// # Safety
    ///
    /// `ptr` must point to a valid `sk_buff` whose ownership passes to the returned value.
    #[inline]
    pub unsafe fn from_raw(ptr: NonNull<bindings::sk_buff>) -> Self {
        // INVARIANT: The caller hands over ownership of a valid skb.
        Self { ptr }
    }

    /// Allocates a packet and copies `data` into it (`alloc_skb()` + `skb_put_data()`).
    pub fn from_data(data: &[u8], flags: crate::alloc::Flags) -> Result<Self> {
        let len = u32::try_from(data.len()).map_err(|_| EINVAL)?;
        // SAFETY: Plain allocation; returns null on failure.
        let ptr = unsafe { bindings::alloc_skb(len, flags.as_raw()) };
        let ptr = NonNull::new(ptr).ok_or(ENOMEM)?;
        // SAFETY: A fresh skb with room for `len` bytes; `data` is valid for `len` bytes.
        unsafe { bindings::skb_put_data(ptr.as_ptr(), data.as_ptr().cast(), len) };
        // INVARIANT: We own the fresh skb.
        Ok(Self { ptr })
    }

    /// Sets `skb->dev`, for a receive handler that hands the frame to another device, or for
    /// a packet about to be handed to `dev` (`forward`, `transmit`).
    pub(crate) fn set_dev(&mut self, dev: &Device) {
        // SAFETY: The skb is ours. In the receive path the core keeps `dev` alive under RCU while
        // it processes the frame; `forward` and `transmit` hand the skb to `dev` at once.
        unsafe { *dev_field(self.as_raw()) = dev.as_raw() };
    }

    /// The raw `skb->dev`, for the receive handler trampoline.
    #[inline]
    pub fn dev_raw(&self) -> *mut bindings::net_device {
        // SAFETY: The skb is valid and ours.
        unsafe { *dev_field(self.as_raw()) }
    }

    /// Gives up ownership; the caller becomes responsible for the skb.
    #[inline]
    pub fn into_raw(self) -> NonNull<bindings::sk_buff> {
        ManuallyDrop::new(self).ptr
    }

    #[inline]
    fn as_raw(&self) -> *mut bindings::sk_buff {
        self.ptr.as_ptr()
    }

    /// Frees the packet as successfully handled (`dev_consume_skb_any()`), not as a drop.
    /// Usable in any context.
    #[inline]
    pub fn consume(self) {
        // SAFETY: We own the skb; `into_raw` keeps `Drop` from freeing it again.
        unsafe {
            bindings::dev_kfree_skb_any_reason(
                self.into_raw().as_ptr(),
                bindings::skb_drop_reason_SKB_CONSUMED,
            )
        };
    }

    /// Frees the packet as dropped, for `reason` (`dev_kfree_skb_any_reason()`). Usable in any
    /// context. Dropping an `SkBuff` frees it as [`DropReason::NotSpecified`].
    #[inline]
    pub fn drop_reason(self, reason: DropReason) {
        // SAFETY: We own the skb; `into_raw` keeps `Drop` from freeing it again.
        unsafe { bindings::dev_kfree_skb_any_reason(self.into_raw().as_ptr(), reason.as_raw()) };
    }

    /// Hands the packet to `dev`'s receive path as if it had arrived there (`dev_forward_skb()`),
    /// as veth does. Consumes the skb in every case.
    pub fn forward(mut self, dev: &Device) -> RxResult {
        // `dev_forward_skb` compares the namespaces of the skb's current device and `dev`: a
        // packet that is on no device yet (a fresh one) starts out on `dev`.
        if self.dev_raw().is_null() {
            self.set_dev(dev);
        }
        // SAFETY: `dev` is valid; `dev_forward_skb` takes ownership of the skb whatever it
        // returns.
        let ret = unsafe { bindings::dev_forward_skb(dev.as_raw(), self.into_raw().as_ptr()) };
        if ret == bindings::NET_RX_SUCCESS as i32 {
            RxResult::Success
        } else {
            RxResult::Dropped
        }
    }

    /// Transmits the packet on `dev` through its queueing discipline (`dev_queue_xmit()`).
    /// Consumes the skb whatever happens; an error means it was dropped.
    pub fn transmit(mut self, dev: &Device) -> Result {
        self.set_dev(dev);
        // SAFETY: The skb is ours and on `dev`, a valid device; `__dev_queue_xmit` takes
        // ownership in every case.
        let ret = unsafe { bindings::__dev_queue_xmit(self.into_raw().as_ptr(), ptr::null_mut()) };
        if ret == bindings::NET_XMIT_SUCCESS as i32 {
            Ok(())
        } else if ret < 0 {
            Err(Error::from_errno(ret))
        } else {
            Err(ENOBUFS)
        }
    }
}

impl Drop for SkBuff {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: We own the skb (type invariant). Usable in any context, like the data path.
        unsafe {
            bindings::dev_kfree_skb_any_reason(self.as_raw(), DropReason::NotSpecified.as_raw())
        };
    }
}

// SPDX-License-Identifier: GPL-2.0

//! Device setup and lifetime: the [`Config`] a device is set up with, and the [`Registration`]
//! that owns a registered device.

use crate::{
    bindings,
    error::to_result,
    net::{
        dev::Device,
        netdev::{
            ethtool::EthOps,
            ops::Ops,
            Driver,
            Ethtool,
            NetDev, //
        },
        rtnl::{
            Rtnl,
            RtnlGuard, //
        }, //
    },
    prelude::*,
    str::CStr, //
};
use core::{
    marker::PhantomData,
    ptr::NonNull, //
};

/// A registered Ethernet device driven by `T`; unregistered and freed on drop.
///
/// # Invariants
///
/// `dev` was allocated with a private area holding an initialised `T`, has `Ops<T>` as its
/// `netdev_ops`, and is registered.
pub struct Registration<T: Driver + Ethtool> {
    dev: NonNull<bindings::net_device>,
    _t: PhantomData<T>,
}

// SAFETY: The device can be unregistered and freed from any thread; `T` is `Send`.
unsafe impl<T: Driver + Ethtool> Send for Registration<T> {}

// SAFETY: `&Registration` only gives `&NetDev<T>`, and `T` is `Sync`.
unsafe impl<T: Driver + Ethtool> Sync for Registration<T> {}

/// Settings applied to a device before it is registered.
///
/// # Examples
///
/// ```
/// use kernel::net::netdev::{features, Config};
///
/// // A virtual Ethernet device with a random address and two queues.
/// let _ = Config::new(c"rnet%d").queues(2).random_addr();
/// // A master device that transmits through its lower devices.
/// let _ = Config::new(c"eth%d")
///     .queues(16)
///     .virtual_master()
///     .hw_features(features::SG | features::HW_CSUM);
/// ```
pub struct Config<'a> {
    name: &'a CStr,
    queues: u32,
    addr: Option<&'a [u8]>,
    random_addr: bool,
    parent: Option<&'a crate::device::Device>,
    net_of: Option<&'a Device>,
    mtu_range: Option<(u32, u32)>,
    virtual_master: bool,
    ops_lock: bool,
    hw_features: u64,
}

impl<'a> Config<'a> {
    /// A device named after `name`, a name or a template such as `c"eth%d"`, with one queue,
    /// in the initial network namespace.
    pub fn new(name: &'a CStr) -> Self {
        Self {
            name,
            queues: 1,
            addr: None,
            random_addr: false,
            parent: None,
            net_of: None,
            mtu_range: None,
            virtual_master: false,
            ops_lock: false,
            hw_features: 0,
        }
    }

    /// The number of transmit and receive queues.
    pub fn queues(mut self, queues: u32) -> Self {
        self.queues = queues;
        self
    }

    /// Uses a random locally administered address.
    pub fn random_addr(mut self) -> Self {
        self.random_addr = true;
        self
    }

    /// Uses `addr` as the hardware address (`dev_addr_set()`); it must be `ETH_ALEN` bytes.
    pub fn addr(mut self, addr: &'a [u8]) -> Self {
        self.addr = Some(addr);
        self
    }

    /// Makes `parent` the device's parent (`SET_NETDEV_DEV()`): sysfs places the device below
    /// it, and userspace (udev, cloud-init) sees its bus and driver.
    pub fn parent(mut self, parent: &'a crate::device::Device) -> Self {
        self.parent = Some(parent);
        self
    }

    /// Registers the device in the network namespace of `dev` (`dev_net_set()`).
    pub fn net_of(mut self, dev: &'a Device) -> Self {
        self.net_of = Some(dev);
        self
    }

    /// The smallest and largest MTU the device accepts.
    pub fn mtu_range(mut self, min: u32, max: u32) -> Self {
        self.mtu_range = Some((min, max));
        self
    }

    /// A virtual device that transmits through lower devices, as bonding and failover masters
    /// do: no queueing discipline (`IFF_NO_QUEUE`), lockless transmit (`lltx`), unicast
    /// filtering passed down (`IFF_UNICAST_FLT`), no shared skbs on transmit, dst entries kept
    /// until the lower device, and fixed to its network namespace (`netns_immutable`).
    pub fn virtual_master(mut self) -> Self {
        self.virtual_master = true;
        self
    }

    /// Asks the core to call the device's operations with its instance lock held
    /// (`request_ops_lock`), as it does for drivers with queue management or shaping: the
    /// notifiers listed at [`OpsLocked`] then run with that lock too. For the abstractions' own
    /// tests: `NetDev`'s operations do not take that lock yet.
    ///
    /// [`OpsLocked`]: crate::net::dev::OpsLocked
    #[cfg(CONFIG_KUNIT)]
    pub(crate) fn request_ops_lock(mut self) -> Self {
        self.ops_lock = true;
        self
    }

    /// Features the user may toggle (`hw_features`); they start enabled.
    pub fn hw_features(mut self, features: u64) -> Self {
        self.hw_features = features;
        self
    }

    /// # Safety
    ///
    /// `raw` must be a valid device, allocated and not yet registered.
    unsafe fn apply(&self, raw: *mut bindings::net_device) -> Result {
        // SAFETY: The caller guarantees `raw` is valid and not yet visible to anyone else.
        unsafe {
            if let Some(addr) = self.addr {
                if addr.len() != bindings::ETH_ALEN as usize {
                    return Err(EINVAL);
                }
                bindings::dev_addr_set(raw, addr.as_ptr());
            } else if self.random_addr {
                bindings::eth_hw_addr_random(raw);
            }
            if let Some(parent) = self.parent {
                (*raw).dev.parent = parent.as_raw();
            }
            if let Some(other) = self.net_of {
                bindings::dev_net_set(raw, bindings::dev_net(other.as_raw()));
            }
            if let Some((min, max)) = self.mtu_range {
                (*raw).min_mtu = min;
                (*raw).max_mtu = max;
            }
            if self.virtual_master {
                let anon = &raw mut (*raw).__bindgen_anon_1.__bindgen_anon_1;
                let flags = bindings::net_device__bindgen_ty_1__bindgen_ty_1::priv_flags_raw(anon);
                let set = bindings::netdev_priv_flags_IFF_UNICAST_FLT
                    | bindings::netdev_priv_flags_IFF_NO_QUEUE;
                let clear = bindings::netdev_priv_flags_IFF_XMIT_DST_RELEASE
                    | bindings::netdev_priv_flags_IFF_TX_SKB_SHARING;
                let flags = (flags | set as c_ulong) & !(clear as c_ulong);
                bindings::net_device__bindgen_ty_1__bindgen_ty_1::set_priv_flags_raw(anon, flags);
                bindings::net_device__bindgen_ty_1__bindgen_ty_1::set_lltx_raw(anon, 1);
                bindings::net_device::set_netns_immutable_raw(raw, 1);
            }
            (*raw).request_ops_lock = self.ops_lock;
            (*raw).hw_features |= self.hw_features;
            (*raw).features |= self.hw_features;
        }
        Ok(())
    }
}

impl<T: Driver + Ethtool> Registration<T> {
    /// Allocates an Ethernet device with `init` as its private data, and registers it.
    ///
    /// Takes the RTNL, so it must not be called with the RTNL held.
    pub fn new(config: Config<'_>, init: impl PinInit<T, Error>) -> Result<Self> {
        const {
            assert!(
                core::mem::align_of::<T>() <= bindings::NETDEV_ALIGN as usize,
                "the private data needs a larger alignment than netdev_priv() gives"
            )
        };
        let size = i32::try_from(core::mem::size_of::<T>()).map_err(|_| EINVAL)?;
        // `alloc_netdev_mqs()` BUGs on a name that does not fit.
        if config.name.to_bytes().len() >= bindings::IFNAMSIZ as usize {
            return Err(EINVAL);
        }
        // The core unregisters a device it cannot move out of a dying namespace; the
        // registration would then unregister it a second time.
        if config.virtual_master && config.net_of.is_some_and(|d| !d.in_init_net()) {
            return Err(EINVAL);
        }
        // SAFETY: Valid arguments: the name fits in `IFNAMSIZ` (checked above), the queue
        // counts are checked by the function, and `ether_setup` is the Ethernet setup function.
        let dev = unsafe {
            bindings::alloc_netdev_mqs(
                size,
                config.name.as_char_ptr(),
                bindings::NET_NAME_ENUM as u8,
                Some(bindings::ether_setup),
                config.queues,
                config.queues,
            )
        };
        let dev = NonNull::new(dev).ok_or(ENOMEM)?;
        let raw = dev.as_ptr();
        // SAFETY: `raw` is a valid device.
        let slot = unsafe { bindings::netdev_priv(raw) }.cast::<T>();
        // SAFETY: The private area is sized and aligned for `T` (checked above) and not yet
        // initialised; on error the initialiser cleans up after itself.
        let res = unsafe { pin_init::raw_try_init(slot, init) };
        if let Err(e) = res {
            // SAFETY: Allocated above and never registered.
            unsafe { bindings::free_netdev(raw) };
            return Err(e);
        }
        // SAFETY: `raw` is valid and not yet visible to anyone else.
        unsafe {
            (*raw).netdev_ops = &Ops::<T>::OPS;
            (*raw).ethtool_ops = &EthOps::<T>::OPS;
        }
        // SAFETY: As above. The device is set up once `apply` succeeds.
        let res = unsafe { config.apply(raw) }
            // SAFETY: As above.
            .and_then(|()| to_result(unsafe { bindings::register_netdev(raw) }));
        if let Err(e) = res {
            // SAFETY: Not registered: drop the private data, then free the device.
            unsafe {
                core::ptr::drop_in_place(bindings::netdev_priv(raw).cast::<T>());
                bindings::free_netdev(raw);
            }
            return Err(e);
        }
        // INVARIANT: Allocated with an initialised `T`, `Ops<T>` and registered.
        Ok(Self {
            dev,
            _t: PhantomData,
        })
    }

    /// The registered device.
    pub fn dev(&self) -> &NetDev<T> {
        // SAFETY: By the type invariant the device is ours, valid and initialised.
        unsafe { NetDev::from_raw(self.dev.as_ptr()) }
    }

    /// Unregisters the device in a section that holds the RTNL (`unregister_netdevice()`), as
    /// the last step of a teardown done under one lock. [`Driver::uninit`] runs now; once the
    /// RTNL is released and the last reference is gone, the core drops the private data and
    /// frees the device. Dropping the registration does the same, taking the RTNL itself.
    ///
    /// # Examples
    ///
    /// ```
    /// use kernel::net::{
    ///     netdev::{Config, Driver, Ethtool, NetDev, Registration, TxResult},
    ///     rtnl::RtnlGuard,
    ///     skbuff::SkBuff,
    /// };
    /// use kernel::prelude::*;
    /// use kernel::sync::rcu::CoreRcu;
    ///
    /// #[pin_data]
    /// struct Quiet {}
    ///
    /// #[vtable]
    /// impl Driver for Quiet {
    ///     fn start_xmit(_dev: &NetDev<Self>, _rcu: &CoreRcu, skb: SkBuff) -> TxResult {
    ///         skb.consume();
    ///         TxResult::Ok
    ///     }
    /// }
    ///
    /// #[vtable]
    /// impl Ethtool for Quiet {}
    ///
    /// let a = Registration::new(Config::new(c"rdoc%d").random_addr(), try_pin_init!(Quiet {}))?;
    /// let b = Registration::new(Config::new(c"rdoc%d").random_addr(), try_pin_init!(Quiet {}))?;
    /// let rtnl = RtnlGuard::lock();
    /// a.unregister(&rtnl.token());
    /// b.unregister(&rtnl.token());
    /// // Both are freed here, when the RTNL is released.
    /// drop(rtnl);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn unregister(self, _rtnl: &Rtnl<'_>) {
        let raw = core::mem::ManuallyDrop::new(self).dev.as_ptr();
        // SAFETY: Registered (type invariant) and the RTNL is held (`unregister_netdevice()`
        // is `unregister_netdevice_queue()` without a list). The core reads
        // `priv_destructor` and `needs_free_netdev` only in `netdev_run_todo()`, after this
        // unregistration; the destructor drops the initialised `T` and the core then frees the
        // device, which nothing else does: this registration was its owner, and is consumed.
        unsafe {
            (*raw).priv_destructor = Some(Ops::<T>::priv_destructor);
            (*raw).needs_free_netdev = true;
            bindings::unregister_netdevice_queue(raw, core::ptr::null_mut());
        }
    }
}

impl<T: Driver + Ethtool> Drop for Registration<T> {
    fn drop(&mut self) {
        let rtnl = RtnlGuard::lock();
        let dev = self.dev;
        // INVARIANT: `self` is not used after this: `unregister` takes over its device.
        Self {
            dev,
            _t: PhantomData,
        }
        .unregister(&rtnl.token());
        // Releasing the RTNL runs `netdev_run_todo()`, which waits for the last reference, then
        // drops the private data and frees the device, before this returns.
        drop(rtnl);
    }
}

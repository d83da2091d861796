// SPDX-License-Identifier: GPL-2.0

//! ethtool's data types: the driver information and the link settings that a driver's
//! [`Ethtool`](crate::net::netdev::Ethtool) callbacks fill in.
//!
//! A leaf module: [`Device`](crate::net::dev::Device) reads link settings without depending on
//! the driver side of ethtool.
//!
//! C header: [`include/linux/ethtool.h`](srctree/include/linux/ethtool.h)

use crate::{
    bindings,
    prelude::*,
    str::CStr, //
};

/// Driver information for `ethtool -i` (`struct ethtool_drvinfo`).
#[repr(transparent)]
pub struct DrvInfo(bindings::ethtool_drvinfo);

fn copy_cstr(dst: &mut [c_char], src: &CStr) {
    let src = src.to_bytes();
    let n = src.len().min(dst.len().saturating_sub(1));
    for (d, s) in dst.iter_mut().zip(&src[..n]) {
        *d = *s as c_char;
    }
    if let Some(end) = dst.get_mut(n) {
        *end = 0;
    }
}

impl DrvInfo {
    /// Sets the driver name (truncated to fit).
    pub fn set_driver(&mut self, name: &CStr) {
        copy_cstr(&mut self.0.driver, name);
    }

    /// Sets the driver version (truncated to fit).
    pub fn set_version(&mut self, version: &CStr) {
        copy_cstr(&mut self.0.version, version);
    }

    /// Sets the bus address of the device (truncated to fit).
    pub fn set_bus_info(&mut self, bus: &CStr) {
        copy_cstr(&mut self.0.bus_info, bus);
    }
}

/// Duplex mode of a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Duplex {
    /// Half duplex.
    Half,
    /// Full duplex.
    Full,
    /// Not known.
    Unknown,
}

/// Link settings for `ethtool <dev>` (`struct ethtool_link_ksettings`).
#[repr(transparent)]
pub struct LinkKsettings(bindings::ethtool_link_ksettings);

impl LinkKsettings {
    /// The C struct, for a function that reads or fills it in.
    pub fn as_raw(&mut self) -> *mut bindings::ethtool_link_ksettings {
        &raw mut self.0
    }

    /// Sets the speed in Mb/s (`SPEED_UNKNOWN` if not known).
    pub fn set_speed(&mut self, mbps: u32) {
        self.0.base.speed = mbps;
    }

    /// Sets the duplex mode.
    pub fn set_duplex(&mut self, duplex: Duplex) {
        self.0.base.duplex = match duplex {
            Duplex::Half => bindings::DUPLEX_HALF,
            Duplex::Full => bindings::DUPLEX_FULL,
            Duplex::Unknown => bindings::DUPLEX_UNKNOWN,
        } as u8;
    }

    /// The speed value for "not known" (`SPEED_UNKNOWN`).
    pub const SPEED_UNKNOWN: u32 = u32::MAX;

    /// Sets the port type to "other" (`PORT_OTHER`), as virtual devices report.
    pub fn set_port_other(&mut self) {
        self.0.base.port = bindings::PORT_OTHER as u8;
    }
}

//! Library version.

use std::ffi::c_char;

/// Major version of the headers (compare with `mqtt_version_number()`).
pub const MQTT5C_VERSION_MAJOR: u32 = 0;
pub const MQTT5C_VERSION_MINOR: u32 = 1;
pub const MQTT5C_VERSION_PATCH: u32 = 0;
/// 0xXXYYZZ: major, minor, patch of the header.
pub const MQTT5C_VERSION_NUMBER: u32 = 0x000100;

/// The library version as text, e.g. "mqtt5c 0.1.0".
///
/// Ownership: static; do not free. Blocks: no. Threads: any.
#[no_mangle]
pub extern "C" fn mqtt_version() -> *const c_char {
    ffi_guard!({ concat!("mqtt5c ", env!("CARGO_PKG_VERSION"), "\0").as_ptr() as *const c_char })
}

/// The library version as 0xXXYYZZ, to compare with the header's
/// `MQTT5C_VERSION_NUMBER` at run time.
///
/// Returns: the version number (never fails). Blocks: no. Threads: any.
#[no_mangle]
pub extern "C" fn mqtt_version_number() -> u32 {
    MQTT5C_VERSION_NUMBER
}

//! Library version, from Cargo.toml's `version` (build.rs writes the same
//! numbers into the header's MQTT5C_VERSION* macros).

use std::ffi::c_char;

/// 0xXXYYZZ: major, minor and patch of this library.
const VERSION_NUMBER: u32 = (parse(env!("CARGO_PKG_VERSION_MAJOR")) << 16)
    | (parse(env!("CARGO_PKG_VERSION_MINOR")) << 8)
    | parse(env!("CARGO_PKG_VERSION_PATCH"));

/// A decimal version part at compile time (each part must fit a byte).
const fn parse(text: &str) -> u32 {
    let bytes = text.as_bytes();
    let mut value = 0;
    let mut i = 0;
    while i < bytes.len() {
        assert!(bytes[i].is_ascii_digit(), "a numeric version part");
        value = value * 10 + (bytes[i] - b'0') as u32;
        i += 1;
    }
    assert!(
        value <= 0xFF,
        "a version part over 255 does not fit 0xXXYYZZ"
    );
    value
}

/// The library version as text, e.g. "mqtt5c 0.1.0".
///
/// Ownership: static; do not free.
/// Blocks: no.
/// Threads: any.
#[no_mangle]
pub extern "C" fn mqtt_version() -> *const c_char {
    ffi_guard!({ concat!("mqtt5c ", env!("CARGO_PKG_VERSION"), "\0").as_ptr() as *const c_char })
}

/// The library version as 0xXXYYZZ, to compare with the header's
/// `MQTT5C_VERSION_NUMBER` at run time.
///
/// Returns: the version number (never fails).
/// Blocks: no.
/// Threads: any.
#[no_mangle]
pub extern "C" fn mqtt_version_number() -> u32 {
    VERSION_NUMBER
}

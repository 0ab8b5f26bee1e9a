//! The panic guard and argument checks used by every exported function.

use std::os::raw::c_int;

/// The value a function returns when it cannot do its work: for a caught
/// panic (`internal`) or a bad argument (`invalid`).
pub(crate) trait Fallback {
    fn internal() -> Self;
    fn invalid() -> Self;
}

impl Fallback for c_int {
    fn internal() -> Self {
        super::error::MQTT5C_ERR_INTERNAL
    }
    fn invalid() -> Self {
        super::error::MQTT5C_ERR_INVALID_ARGUMENT
    }
}

/// For helpers that check arguments on behalf of an exported function:
/// the error carries the code that function returns.
impl<T> Fallback for Result<T, c_int> {
    fn internal() -> Self {
        Err(super::error::MQTT5C_ERR_INTERNAL)
    }
    fn invalid() -> Self {
        Err(super::error::MQTT5C_ERR_INVALID_ARGUMENT)
    }
}

impl<T> Fallback for *mut T {
    fn internal() -> Self {
        std::ptr::null_mut()
    }
    fn invalid() -> Self {
        std::ptr::null_mut()
    }
}

impl<T> Fallback for *const T {
    fn internal() -> Self {
        std::ptr::null()
    }
    fn invalid() -> Self {
        std::ptr::null()
    }
}

impl Fallback for () {
    fn internal() -> Self {}
    fn invalid() -> Self {}
}

impl Fallback for bool {
    fn internal() -> Self {
        false
    }
    fn invalid() -> Self {
        false
    }
}

impl Fallback for u64 {
    fn internal() -> Self {
        0
    }
    fn invalid() -> Self {
        0
    }
}

impl Fallback for usize {
    fn internal() -> Self {
        0
    }
    fn invalid() -> Self {
        0
    }
}

/// Runs the body of an exported function, turning a panic into the
/// function's fallback value and a `mqtt_last_error()` text.
macro_rules! ffi_guard {
    ($body:block) => {{
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(|| $body)) {
            Ok(v) => v,
            Err(_) => {
                $crate::ffi::error::set_last_error(
                    "internal error: a panic was caught at the C boundary (please report it)",
                );
                $crate::ffi::guard::Fallback::internal()
            }
        }
    }};
}

/// `&T` from a pointer, or an early return of the invalid-argument value.
macro_rules! try_ref {
    ($ptr:expr, $name:literal) => {{
        let p = $ptr;
        if p.is_null() {
            $crate::ffi::error::set_last_error(concat!($name, " is NULL"));
            return $crate::ffi::guard::Fallback::invalid();
        }
        // SAFETY: non-NULL; the caller promises it points to a live object
        // of this type (the API's ownership rules).
        unsafe { &*p }
    }};
}

/// A counted call on a `mqtt_client` pointer (see `calls`), or an early
/// return of the invalid-argument value for NULL. Every function that
/// takes a client uses it, so `mqtt_client_free` can wait for the call.
macro_rules! try_client {
    ($ptr:expr) => {
        $crate::ffi::calls::ClientCall::enter(try_ref!($ptr, "client"))
    };
}

/// `&mut T` from a pointer, or an early return of the invalid-argument value.
macro_rules! try_mut {
    ($ptr:expr, $name:literal) => {{
        let p = $ptr;
        if p.is_null() {
            $crate::ffi::error::set_last_error(concat!($name, " is NULL"));
            return $crate::ffi::guard::Fallback::invalid();
        }
        // SAFETY: as for try_ref; the caller does not use it concurrently.
        unsafe { &mut *p }
    }};
}

/// `&str` from a NUL-terminated UTF-8 C string, or an early return.
macro_rules! try_str {
    ($ptr:expr, $name:literal) => {{
        let p = $ptr;
        if p.is_null() {
            $crate::ffi::error::set_last_error(concat!($name, " is NULL"));
            return $crate::ffi::guard::Fallback::invalid();
        }
        // SAFETY: non-NULL; the caller promises a NUL-terminated string.
        match unsafe { ::std::ffi::CStr::from_ptr(p) }.to_str() {
            Ok(s) => s,
            Err(_) => {
                $crate::ffi::error::set_last_error(concat!($name, " is not valid UTF-8"));
                return $crate::ffi::guard::Fallback::invalid();
            }
        }
    }};
}

/// Like `try_str!` but NULL gives `None`.
macro_rules! try_opt_str {
    ($ptr:expr, $name:literal) => {{
        let p = $ptr;
        if p.is_null() {
            None
        } else {
            Some(try_str!(p, $name))
        }
    }};
}

/// A byte slice from pointer and length; NULL is allowed only with length 0.
macro_rules! try_slice {
    ($ptr:expr, $len:expr, $name:literal) => {{
        let (p, len) = ($ptr as *const u8, $len);
        if len == 0 {
            &[][..]
        } else if p.is_null() {
            $crate::ffi::error::set_last_error(concat!($name, " is NULL but its length is not 0"));
            return $crate::ffi::guard::Fallback::invalid();
        } else {
            // SAFETY: non-NULL; the caller promises `len` readable bytes.
            unsafe { ::std::slice::from_raw_parts(p, len) }
        }
    }};
}

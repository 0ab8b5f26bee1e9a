//! Exports that panic inside the library's panic guard (src/ffi/guard.rs,
//! the very file), for scripts/firmware-check/check.c.

use std::os::raw::c_int;

// The macros reach their helpers as `$crate::ffi::guard` and
// `$crate::ffi::error`; guard.rs itself uses `super::error`.
#[macro_use]
#[allow(unused_macros, dead_code)]
#[path = "../../../src/ffi/guard.rs"]
pub mod guard;

mod ffi {
    pub use crate::error;
    pub use crate::guard;
}

pub mod error {
    use std::cell::RefCell;
    use std::os::raw::c_int;

    pub const MQTT5C_ERR_INTERNAL: c_int = -99;
    pub const MQTT5C_ERR_INVALID_ARGUMENT: c_int = -1;

    thread_local! {
        pub static LAST: RefCell<String> = const { RefCell::new(String::new()) };
    }

    pub fn set_last_error(text: &str) {
        LAST.with(|l| *l.borrow_mut() = text.to_owned());
    }
}

/// Counts drops, to see that unwinding ran the destructors on its way.
struct Counted<'a>(&'a mut c_int);

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        *self.0 += 1;
    }
}

/// Panics inside the guard with `value` in the message when it is not
/// negative; returns the guard's fallback (MQTT5C_ERR_INTERNAL) and counts
/// the destructor that unwinding ran in `*dropped`.
///
/// # Safety
/// `dropped` points to a writable int.
#[no_mangle]
pub unsafe extern "C" fn check_panic(value: c_int, dropped: *mut c_int) -> c_int {
    ffi_guard!({
        // SAFETY: the caller's promise.
        let _c = Counted(unsafe { &mut *dropped });
        if value >= 0 {
            panic!("check_panic: deliberate panic {value}");
        }
        0
    })
}

/// Element `index` of [1, 2, 3]: an index out of bounds panics (a panic
/// core raises, not ours) and gives the fallback, MQTT5C_ERR_INTERNAL.
#[no_mangle]
pub extern "C" fn check_index(index: usize) -> c_int {
    ffi_guard!({
        let v = std::hint::black_box([1, 2, 3]);
        v[std::hint::black_box(index)]
    })
}

/// The text the guard left, copied NUL-terminated into `buf`.
///
/// # Safety
/// `buf` points to `len` (at least 1) writable bytes.
#[no_mangle]
pub unsafe extern "C" fn check_last_error(buf: *mut u8, len: usize) {
    ffi::error::LAST.with(|l| {
        let l = l.borrow();
        let n = l.len().min(len.saturating_sub(1));
        // SAFETY: the caller's promise.
        unsafe {
            std::ptr::copy_nonoverlapping(l.as_ptr(), buf, n);
            *buf.add(n) = 0;
        }
    });
}

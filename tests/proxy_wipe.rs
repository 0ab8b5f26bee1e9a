//! Review of issue 13: the HTTP proxy's Basic credentials are never left
//! in freed memory. An allocator of our own moves every block that grows
//! (the worst case of `realloc`) and looks in each block freed by the
//! library's threads for a piece of the base64 credentials. Deterministic,
//! unlike a scan of the heap, where `realloc` growing in place or a later
//! allocation can hide a copy.

mod common;

use common::tunnel::{Behaviour, Flavor, TunnelProxy};
use mqtt5c::client::{ClientOptions, ConnectionEvent, Handler, MqttClient};
use mqtt5c::packet::{MqttStr, Publish};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A long password (a token): the request outgrows small buffers.
const PW: &str = "http-proxy-token-Kx2w.eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.\
    eyJzdWIiOiJnYXRld2F5LTQyIiwiaWF0IjoxNzAwMDAwMDAwfQ.Qm9ndXNTaWduYXR1cmVGb3JUaGVXaXBl";

/// Each byte of the needle XOR this, so the needle itself is no hit.
const MASK: u8 = 0xA5;
const NEEDLE_MAX: usize = 64;

static NEEDLE: [AtomicUsize; NEEDLE_MAX] = [const { AtomicUsize::new(0) }; NEEDLE_MAX];
static NEEDLE_LEN: AtomicUsize = AtomicUsize::new(0);
static HITS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Frees on this thread are looked at (the client's threads only: the
    /// test's proxy, in this process, holds the credentials too).
    static WATCHED: Cell<bool> = const { Cell::new(false) };
}

struct Watching;

fn contains_needle(block: &[u8]) -> bool {
    let n = NEEDLE_LEN.load(Ordering::Relaxed);
    if n == 0 || block.len() < n {
        return false;
    }
    let byte = |i: usize| NEEDLE[i].load(Ordering::Relaxed) as u8 ^ MASK;
    block
        .windows(n)
        .any(|w| w.iter().enumerate().all(|(i, &b)| b == byte(i)))
}

fn look_at(ptr: *mut u8, size: usize) {
    if WATCHED.with(Cell::get) {
        // SAFETY: a live block of `size` bytes, about to be freed.
        let block = unsafe { std::slice::from_raw_parts(ptr, size) };
        if contains_needle(block) {
            HITS.fetch_add(1, Ordering::Relaxed);
        }
    }
}

// SAFETY: forwards to System; realloc always moves (alloc, copy, free).
unsafe impl GlobalAlloc for Watching {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        look_at(ptr, layout.size());
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = System.alloc(Layout::from_size_align_unchecked(new_size, layout.align()));
        if !new.is_null() {
            std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
            self.dealloc(ptr, layout);
        }
        new
    }
}

#[global_allocator]
static ALLOC: Watching = Watching;

struct Nothing;

impl Handler for Nothing {
    fn on_message(&self, _m: Publish) {}
    fn on_connection(&self, _e: &ConnectionEvent) {}
}

#[test]
fn http_proxy_credentials_are_not_left_in_freed_memory() {
    let proxy = TunnelProxy::start(Flavor::Http, Some(("user", PW)), Behaviour::Refuse);
    // A piece of the base64 of "user:PW" that depends on PW only.
    let basic = common::tunnel::base64(&format!("user:{PW}"));
    let needle = &basic.as_bytes()[8..8 + 48];
    for (slot, &b) in NEEDLE.iter().zip(needle) {
        slot.store(usize::from(b ^ MASK), Ordering::Relaxed);
    }
    NEEDLE_LEN.store(needle.len(), Ordering::Relaxed);
    drop(basic);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .on_thread_start(|| WATCHED.with(|w| w.set(true)))
        .build()
        .unwrap();
    let mut o = ClientOptions {
        client_id: MqttStr::new("px-wipe").unwrap(),
        connect_timeout: Duration::from_secs(20),
        ..Default::default()
    };
    let url = format!("http://user:{PW}@127.0.0.1:{}", proxy.port());
    o.set_proxy(Some(&url)).unwrap();
    for _ in 0..3 {
        let c = MqttClient::new(o.clone(), Arc::new(Nothing), rt.handle().clone());
        WATCHED.with(|w| w.set(true));
        let r = rt.block_on(c.connect("mqtt://127.0.0.1:1"));
        drop(c);
        WATCHED.with(|w| w.set(false));
        let e = r.expect_err("the proxy refuses every tunnel").to_string();
        assert!(e.contains("refused the tunnel"), "{e}");
    }
    drop(rt);
    assert_eq!(
        HITS.load(Ordering::Relaxed),
        0,
        "freed blocks held the proxy's Basic credentials"
    );
}

//! Many clients in one process (issue 10), through the C API (called from
//! Rust) against a mosquitto of the test's own:
//! - idle clients: one file descriptor each, at most 8 threads in the
//!   process, at most 16 KiB of resident memory each. 1,000 clients here;
//!   10,000 with `MQTT5C_SOAK=1` (`make soak`);
//! - 1,000 clients each publishing and receiving at once: every message
//!   arrives, in order per client, and the process never has more than 16
//!   threads (the callbacks share a fixed pool, see `client::pool`).
//!
//! Each scenario runs in a child process (this binary again, with
//! `MQTT5C_SCALE_SCENARIO` set), so that its threads, descriptors and
//! memory are counted alone.

mod common;

use common::child::{report, rss, status_field};
use common::Broker;
use mqtt5c::ffi::*;
use std::collections::HashMap;
use std::ffi::{c_void, CString};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const SCENARIO: &str = "MQTT5C_SCALE_SCENARIO";
const URL: &str = "MQTT5C_SCALE_URL";
/// The longest a child waits for a condition.
const WAIT: Duration = Duration::from_secs(300);

fn soak() -> bool {
    std::env::var("MQTT5C_SOAK").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Raises the soft descriptor limit to the hard one, for this process and
/// what it spawns (mosquitto, the child); returns the new soft limit.
fn raise_fd_limit() -> u64 {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `l` is a valid rlimit to fill in and then pass back.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut l), 0);
        l.rlim_cur = l.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &l), 0);
    }
    l.rlim_cur
}

/// Runs `scenario` in a child process and returns what it measured.
fn run_child(scenario: &str, url: &str) -> HashMap<String, f64> {
    common::child::run_child((SCENARIO, scenario), (URL, url))
}

fn broker() -> Broker {
    Broker::start_with("max_connections -1\nmax_queued_messages 0\n")
}

/// Idle clients: one descriptor each, few threads, little memory.
fn idle_clients(n: usize) {
    let limit = raise_fd_limit();
    assert!(
        limit as usize > n + 100,
        "descriptor limit {limit} too low for {n} clients"
    );
    let b = broker();
    let m = run_child(&format!("idle {n}"), &b.url());
    let fds = m["fds_per_client"];
    let threads = m["threads"];
    let rss = m["rss_per_client"];
    println!("{n} idle clients: {fds} fds, {rss:.0} bytes of RSS each, {threads} threads");
    assert_eq!(fds, 1.0, "descriptors per connection");
    assert!(threads <= IDLE_THREADS as f64, "{threads} threads");
    assert!(rss <= 16.0 * 1024.0, "{rss:.0} bytes of RSS per client");
}

/// Issue 10: one descriptor per connection (the transports kept a cloned
/// control handle: two), at most 8 threads and 16 KiB of RSS per client.
#[test]
fn idle_clients_cost_one_descriptor_and_little_memory() {
    idle_clients(if soak() { 10_000 } else { 1_000 });
}

/// Issue 10: 1,000 clients each publishing to and receiving from its own
/// topic at once: all messages arrive in order, on at most 16 threads
/// (one blocking-pool thread per busy client peaked at 200-500).
#[test]
fn busy_clients_share_a_few_callback_threads() {
    raise_fd_limit();
    let b = broker();
    let m = run_child("busy 1000 20", &b.url());
    let peak = m["peak_threads"];
    println!("1000 busy clients: peak {peak} threads");
    assert_eq!(m["out_of_order"], 0.0);
    assert!(peak <= 16.0, "{peak} threads at the peak");
}

/// The callback pool grows when its threads all wait in callbacks for
/// other callbacks: 10 clients whose callbacks each wait until all 10
/// have started (more than the pool's 4 threads) all return, as they did
/// with a thread per busy client. A pool that never grew would hang here.
#[test]
fn callbacks_waiting_for_each_other_do_not_starve_the_pool() {
    let b = broker();
    let m = run_child("meet 10", &b.url());
    assert_eq!(m["met"], 10.0);
}

// ------------------------------------------------------------ the child

fn threads() -> u64 {
    status_field("Threads:")
}

fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn new_client(id: &str) -> *mut mqtt_client {
    let id = CString::new(id).unwrap();
    let opts = mqtt_options_new();
    assert!(!opts.is_null());
    assert_eq!(mqtt_options_set_client_id(opts, id.as_ptr()), MQTT5C_OK);
    // The default keep-alive is 60 s: idle clients send nothing here.
    assert_eq!(mqtt_options_set_connect_timeout(opts, 60_000), MQTT5C_OK);
    assert_eq!(mqtt_options_set_operation_timeout(opts, 60_000), MQTT5C_OK);
    let c = mqtt_client_new(opts);
    mqtt_options_free(opts);
    assert!(!c.is_null());
    c
}

fn connect(c: *mut mqtt_client, url: &CString) {
    let rc = mqtt_connect(c, url.as_ptr());
    assert_eq!(rc, MQTT5C_OK, "connect: {rc}");
}

fn free_all(clients: Vec<*mut mqtt_client>) {
    for c in clients {
        mqtt_disconnect(c, 0, std::ptr::null());
        mqtt_client_free(c);
    }
}

/// The most threads idle clients may keep (the test's own two included).
const IDLE_THREADS: u64 = 8;

/// The thread count once the clients are idle: the callback pool's threads
/// (which delivered the connection events) and the runtime's blocking
/// threads leave a second after their last job, later on a loaded machine.
/// Waits for the count to reach `IDLE_THREADS`, at most `WAIT`, and returns
/// the lowest count seen, so that threads which never leave (one per
/// client, say) still fail the test.
fn settled_threads() -> u64 {
    let start = Instant::now();
    let mut lowest = threads();
    while lowest > IDLE_THREADS && start.elapsed() < WAIT.min(Duration::from_secs(60)) {
        std::thread::sleep(Duration::from_millis(50));
        lowest = lowest.min(threads());
    }
    lowest
}

/// Connects `n` clients after a first one (which starts the runtime) and
/// reports descriptors, threads and memory per client.
fn idle(url: &CString, n: usize) {
    let first = new_client("scale-idle-first");
    connect(first, url);
    let (fds0, rss0) = (fds(), rss());
    let clients: Vec<_> = (0..n)
        .map(|i| {
            let c = new_client(&format!("scale-idle-{i}"));
            connect(c, url);
            c
        })
        .collect();
    let (fds1, rss1) = (fds(), rss());
    report("fds_per_client", (fds1 - fds0) as f64 / n as f64);
    report("rss_per_client", (rss1 as f64 - rss0 as f64) / n as f64);
    report("threads", settled_threads() as f64);
    free_all(clients);
    free_all(vec![first]);
}

/// What one busy client's callback checks.
struct Seen {
    next: AtomicU32,
    out_of_order: AtomicU32,
}

static RECEIVED: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_message(user_data: *mut c_void, m: *const mqtt_message) {
    // SAFETY: user_data is the `Seen` of this client, which outlives it.
    let seen = unsafe { &*(user_data as *const Seen) };
    let mut len = 0usize;
    let p = mqtt_message_payload(m, &mut len);
    assert_eq!(len, 4);
    // SAFETY: the payload is `len` bytes, valid during the callback.
    let seq = u32::from_le_bytes(
        unsafe { std::slice::from_raw_parts(p.cast::<u8>(), 4) }
            .try_into()
            .unwrap(),
    );
    if seen.next.swap(seq + 1, Ordering::Relaxed) != seq {
        seen.out_of_order.fetch_add(1, Ordering::Relaxed);
    }
    RECEIVED.fetch_add(1, Ordering::Release);
}

/// `n` clients each subscribed to its own topic; 4 threads publish
/// `per_client` numbered QoS 1 messages to each client's topic from that
/// client, round robin. Reports the most threads seen meanwhile.
fn busy(url: &CString, n: usize, per_client: u32) {
    const PUBLISHERS: usize = 4;
    let seen: Vec<Seen> = (0..n)
        .map(|_| Seen {
            next: AtomicU32::new(0),
            out_of_order: AtomicU32::new(0),
        })
        .collect();
    let topics: Vec<CString> = (0..n)
        .map(|i| CString::new(format!("scale/busy/{i}")).unwrap())
        .collect();
    let clients: Vec<usize> = (0..n)
        .map(|i| {
            let c = new_client(&format!("scale-busy-{i}"));
            let ud = &seen[i] as *const Seen as *mut c_void;
            assert_eq!(
                mqtt_set_message_callback(c, Some(on_message), ud),
                MQTT5C_OK
            );
            connect(c, url);
            let rc = mqtt_subscribe(c, topics[i].as_ptr(), 1, std::ptr::null());
            assert_eq!(rc, 1, "granted QoS");
            c as usize
        })
        .collect();
    let total = n as u64 * per_client as u64;
    let mut peak = threads();
    std::thread::scope(|s| {
        for t in 0..PUBLISHERS {
            let (clients, topics) = (&clients, &topics);
            s.spawn(move || {
                for seq in 0..per_client {
                    for i in (t..n).step_by(PUBLISHERS) {
                        let c = clients[i] as *mut mqtt_client;
                        let b = seq.to_le_bytes();
                        let rc = mqtt_publish(
                            c,
                            topics[i].as_ptr(),
                            b.as_ptr().cast(),
                            4,
                            1,
                            false,
                            std::ptr::null(),
                        );
                        assert!((0..0x80).contains(&rc), "publish: {rc}");
                    }
                }
            });
        }
        // Sampling /proc: there is no event to wait on for a thread count.
        let end = Instant::now() + WAIT;
        while RECEIVED.load(Ordering::Acquire) < total && Instant::now() < end {
            peak = peak.max(threads());
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    let got = RECEIVED.load(Ordering::Acquire);
    assert_eq!(got, total, "messages received");
    let bad: u32 = seen
        .iter()
        .map(|s| s.out_of_order.load(Ordering::Relaxed))
        .sum();
    report("out_of_order", bad as f64);
    report("peak_threads", peak as f64);
    free_all(clients.into_iter().map(|c| c as *mut mqtt_client).collect());
}

/// Callbacks that wait until `MEET.1` of them have started.
static MEET: (std::sync::Mutex<(usize, usize)>, std::sync::Condvar) =
    (std::sync::Mutex::new((0, 0)), std::sync::Condvar::new());

extern "C" fn on_meet(_: *mut c_void, _: *const mqtt_message) {
    let (lock, cv) = &MEET;
    let mut g = lock.lock().unwrap();
    g.0 += 1;
    cv.notify_all();
    let (g, _) = cv.wait_timeout_while(g, WAIT, |g| g.0 < g.1).unwrap();
    assert!(g.0 >= g.1, "the callbacks did not all start");
    RECEIVED.fetch_add(1, Ordering::Release);
}

/// `n` clients, one message each; each callback waits for all `n`.
fn meet(url: &CString, n: usize) {
    MEET.0.lock().unwrap().1 = n;
    let clients: Vec<_> = (0..n)
        .map(|i| {
            let c = new_client(&format!("scale-meet-{i}"));
            assert_eq!(
                mqtt_set_message_callback(c, Some(on_meet), std::ptr::null_mut()),
                MQTT5C_OK
            );
            connect(c, url);
            let topic = CString::new(format!("scale/meet/{i}")).unwrap();
            assert_eq!(mqtt_subscribe(c, topic.as_ptr(), 1, std::ptr::null()), 1);
            (c, topic)
        })
        .collect();
    for (c, topic) in &clients {
        let rc = mqtt_publish(
            *c,
            topic.as_ptr(),
            b"x".as_ptr().cast(),
            1,
            1,
            false,
            std::ptr::null(),
        );
        assert!((0..0x80).contains(&rc), "publish: {rc}");
    }
    let end = Instant::now() + WAIT;
    // Sampling: the count is written by callbacks that may never run.
    while RECEIVED.load(Ordering::Acquire) < n as u64 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(10));
    }
    report("met", RECEIVED.load(Ordering::Acquire) as f64);
    free_all(clients.into_iter().map(|(c, _)| c).collect());
}

/// The client side of the tests above; does nothing unless run by one.
#[test]
#[ignore = "the client side of the scale tests, run by them in a child process"]
fn child() {
    let Ok(scenario) = std::env::var(SCENARIO) else {
        return;
    };
    let url = CString::new(std::env::var(URL).unwrap()).unwrap();
    let words: Vec<&str> = scenario.split(' ').collect();
    match words[..] {
        ["idle", n] => idle(&url, n.parse().unwrap()),
        ["meet", n] => meet(&url, n.parse().unwrap()),
        ["busy", n, per] => busy(&url, n.parse().unwrap(), per.parse().unwrap()),
        _ => panic!("unknown scenario {scenario}"),
    }
}

//! Many clients in one process (issue 10), through the C API (called from
//! Rust) against a mosquitto of the test's own:
//! - idle clients: one file descriptor each, at most 8 threads in the
//!   process, at most 16 KiB of resident memory each. 1,000 clients here;
//!   10,000 with `MQTT5C_SOAK=1` (`make soak`).
//!
//! Each scenario runs in a child process (this binary again, with
//! `MQTT5C_SCALE_SCENARIO` set), so that its threads, descriptors and
//! memory are counted alone.

mod common;

use common::Broker;
use mqtt5c::ffi::*;
use std::collections::HashMap;
use std::ffi::CString;
use std::process::Command;

const SCENARIO: &str = "MQTT5C_SCALE_SCENARIO";
const URL: &str = "MQTT5C_SCALE_URL";

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
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child", "--ignored", "--nocapture"])
        .args(["--test-threads", "1"])
        .env(SCENARIO, scenario)
        .env(URL, url)
        .output()
        .expect("running the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child '{scenario}' failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    print!("{stdout}");
    stdout
        .lines()
        .filter_map(|l| l.split_once("measure ").map(|(_, m)| m))
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.trim().parse().expect("a number")))
        .collect()
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
    assert!(threads <= 8.0, "{threads} threads");
    assert!(rss <= 16.0 * 1024.0, "{rss:.0} bytes of RSS per client");
}

/// Issue 10: one descriptor per connection (the transports kept a cloned
/// control handle: two), at most 8 threads and 16 KiB of RSS per client.
#[test]
fn idle_clients_cost_one_descriptor_and_little_memory() {
    idle_clients(if soak() { 10_000 } else { 1_000 });
}

// ------------------------------------------------------------ the child

fn report(name: &str, value: f64) {
    println!("measure {name} {value}");
}

fn status_field(name: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} in /proc/self/status"))
}

fn threads() -> u64 {
    status_field("Threads:")
}

fn rss() -> u64 {
    status_field("VmRSS:") * 1024
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
    report("threads", threads() as f64);
    free_all(clients);
    free_all(vec![first]);
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
        _ => panic!("unknown scenario {scenario}"),
    }
}

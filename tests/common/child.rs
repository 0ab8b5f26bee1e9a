//! Measurements taken in a child process: the test binary runs itself
//! again with only its ignored `child` test, the scenario named in an
//! environment variable, so that the threads, descriptors and memory it
//! counts are the scenario's alone. The child prints `measure NAME VALUE`
//! lines (`report`); the parent collects them (`run_child`).

use std::collections::HashMap;
use std::fmt::Display;
use std::process::Command;
use std::str::FromStr;

/// Runs this test binary's `child` test with `scenario` in `scenario_var`
/// and `url` in `url_var`; returns what it reported. Fails when the child
/// failed.
pub fn run_child<T: FromStr>(
    (scenario_var, scenario): (&str, &str),
    (url_var, url): (&str, &str),
) -> HashMap<String, T>
where
    T::Err: std::fmt::Debug,
{
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child", "--ignored", "--nocapture"])
        .args(["--test-threads", "1"])
        .env(scenario_var, scenario)
        .env(url_var, url)
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
        // libtest may print "test child ... " on the same line first.
        .filter_map(|l| l.split_once("measure ").map(|(_, m)| m))
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.trim().parse().expect("a number")))
        .collect()
}

/// Prints one measurement for `run_child` to collect.
pub fn report(name: &str, value: impl Display) {
    println!("measure {name} {value}");
}

/// A numeric field of /proc/self/status ("Threads:", "VmRSS:" in kB).
pub fn status_field(name: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} in /proc/self/status"))
}

/// Resident memory of this process, in bytes.
pub fn rss() -> u64 {
    status_field("VmRSS:") * 1024
}

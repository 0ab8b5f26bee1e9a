//! The whole programs of docs/guide.md run: its publisher, and both ways a
//! subscriber's `main` waits (a condition variable signalled from the
//! callbacks; `sigwait` until SIGINT), linked against the library and
//! pointed at a private mosquitto instead of localhost:1883.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(60);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The directory holding libmqtt5c.so: `cargo test` builds it into deps/.
fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    [profile.join("deps"), profile.to_path_buf()]
        .into_iter()
        .find(|d| d.join("libmqtt5c.so").is_file())
        .expect("libmqtt5c.so in target/<profile>/deps")
}

/// The guide's ```c block that contains every one of `marks`.
fn program(guide: &str, marks: &[&str]) -> String {
    let mut blocks = Vec::new();
    let mut lines = guide.lines();
    while lines.any(|l| l.trim_end() == "```c") {
        let body: Vec<&str> = lines
            .by_ref()
            .take_while(|l| !l.starts_with("```"))
            .collect();
        blocks.push(body.join("\n") + "\n");
    }
    let found: Vec<_> = blocks
        .into_iter()
        .filter(|b| b.contains("int main") && marks.iter().all(|m| b.contains(m)))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one whole program of docs/guide.md with {marks:?}"
    );
    found.into_iter().next().unwrap()
}

fn build(dir: &Path, name: &str, code: &str, url: &str) -> PathBuf {
    assert!(
        code.contains("mqtt://localhost:1883"),
        "{name} connects elsewhere"
    );
    let src = dir.join(format!("{name}.c"));
    fs::write(&src, code.replace("mqtt://localhost:1883", url)).expect("write program");
    let exe = dir.join(name);
    let lib = lib_dir();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = Command::new(&cc)
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pthread", "-I"])
        .arg(root().join("include"))
        .arg(&src)
        .arg("-L")
        .arg(&lib)
        .arg("-lmqtt5c")
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-o")
        .arg(&exe)
        .output()
        .expect("run cc");
    assert!(
        out.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

/// A program that is killed and reaped if the test ends before it did.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(exe: &Path, out: &Path) -> Running {
    Running(
        Command::new(exe)
            .stdout(fs::File::create(out).expect("stdout file"))
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start program"),
    )
}

fn lines(path: &Path) -> usize {
    fs::read_to_string(path).unwrap_or_default().lines().count()
}

#[test]
fn the_guides_publisher_and_subscribers_run() {
    let guide = fs::read_to_string(root().join("docs/guide.md")).expect("guide");
    let broker = common::Broker::start();
    let dir = common::TempDir::new("guide-programs").expect("temp dir");
    let url = broker.url();
    let publisher = build(
        dir.path(),
        "pub",
        &program(&guide, &["mqtt_publish("]),
        &url,
    );
    let counting = build(
        dir.path(),
        "sub_cond",
        &program(&guide, &["pthread_cond_wait"]),
        &url,
    );
    let signalled = build(dir.path(), "sub_sig", &program(&guide, &["sigwait"]), &url);

    let mut sub_cond = spawn(&counting, &dir.path().join("cond.out"));
    let sig_out = dir.path().join("sig.out");
    let mut sub_sig = spawn(&signalled, &sig_out);

    // Publish until the counting subscriber had its ten messages and left,
    // and the signalled one printed at least one (each subscribes once it
    // is connected, so the first publishes may reach neither).
    let start = Instant::now();
    let mut cond_status = None;
    while cond_status.is_none() || lines(&sig_out) == 0 {
        assert!(
            start.elapsed() < DEADLINE,
            "the subscribers did not receive in {DEADLINE:?}"
        );
        let Output { status, stderr, .. } = Command::new(&publisher).output().expect("run pub");
        assert!(
            status.success(),
            "pub failed: {}",
            String::from_utf8_lossy(&stderr)
        );
        if cond_status.is_none() {
            cond_status = sub_cond.0.try_wait().expect("wait sub_cond");
        }
    }
    assert!(
        cond_status.unwrap().success(),
        "the condition-variable subscriber failed"
    );

    let killed = Command::new("kill")
        .args(["-INT", &sub_sig.0.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = sub_sig.0.wait().expect("wait sub_sig");
    assert!(
        status.success(),
        "the sigwait subscriber did not end cleanly on SIGINT: {status}"
    );
    let printed = fs::read_to_string(&sig_out).unwrap_or_default();
    assert!(
        printed.lines().all(|l| l == "sensors/1/temp 21.5"),
        "the sigwait subscriber printed {printed:?}"
    );
}

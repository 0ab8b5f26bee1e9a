//! C programs that Rust tests build and run against the fresh library
//! (tests/c_api.rs, and the helpers of tests/c/helpers/ that gateway.rs
//! and persistence.rs drive): where the library is, compiling a program
//! against it, and starting one, under valgrind when asked.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Whether the environment variable `name` is set, and not to "" or "0".
pub fn env_on(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Whether the C programs run under valgrind (MQTT5C_VALGRIND).
pub fn valgrind() -> bool {
    env_on("MQTT5C_VALGRIND")
}

/// `secs`, scaled as the C tests scale their waits under valgrind.
pub fn scaled(secs: u64) -> Duration {
    Duration::from_secs(if valgrind() { secs * 10 } else { secs })
}

/// target/<profile>: the test executable lives in target/<profile>/deps.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("test executable in target/<profile>/deps")
        .to_path_buf()
}

/// The directory holding the freshly built libmqtt5c.so. `cargo test` builds
/// the library with all its crate types into deps/ (it only copies them up
/// to target/<profile>/ on `cargo build`), so deps/ is never older.
/// MQTT5C_TEST_LIB_DIR names another build's directory instead: the
/// firmware build of scripts/firmware.sh, tested with the harness of the
/// build with the same features.
pub fn lib_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MQTT5C_TEST_LIB_DIR").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        assert!(
            dir.join("libmqtt5c.so").is_file(),
            "MQTT5C_TEST_LIB_DIR={}: no libmqtt5c.so there",
            dir.display()
        );
        return dir;
    }
    let profile = profile_dir();
    for dir in [profile.join("deps"), profile.clone()] {
        if dir.join("libmqtt5c.so").is_file() {
            return dir;
        }
    }
    panic!(
        "libmqtt5c.so not found in {0}/deps or {0}: run `cargo build` first",
        profile.display()
    );
}

/// Compiles `src` (relative to the repository) with $CC (or cc) against
/// the library to target/<profile>/c-tests/`name`.
pub fn compile(src: &str, name: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = profile_dir().join("c-tests");
    std::fs::create_dir_all(&out).unwrap();
    let exe = out.join(name);
    let lib = lib_dir();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(cc)
        .args([
            "-std=c11", "-Wall", "-Wextra", "-Werror", "-pthread", "-g", "-O1",
        ])
        .arg("-I")
        .arg(root.join("include"))
        .arg("-I")
        .arg(root.join("tests/c"))
        .arg(root.join(src))
        .arg("-o")
        .arg(&exe)
        .arg("-L")
        .arg(&lib)
        .arg("-lmqtt5c")
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .status()
        .expect("run cc");
    assert!(status.success(), "compiling {src} failed");
    exe
}

/// A command running `exe` (under valgrind when asked: definite leaks and
/// errors fail it with exit code 99) against the fresh library, its stdin
/// a pipe.
pub fn command(exe: &Path) -> Command {
    let mut cmd = if valgrind() {
        let supp = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/valgrind.supp");
        let mut c = Command::new("valgrind");
        c.args([
            "--leak-check=full",
            "--errors-for-leak-kinds=definite",
            "--error-exitcode=99",
        ])
        .arg(format!("--suppressions={}", supp.display()))
        .arg(exe);
        c
    } else {
        Command::new(exe)
    };
    cmd.env("LD_LIBRARY_PATH", lib_dir()).stdin(Stdio::piped());
    cmd
}

/// The lines of `stream` (a program's stdout or stderr), read on a thread
/// of their own; with `echo`, each is also printed to stderr as "[c] line".
pub fn lines(stream: impl Read + Send + 'static, echo: bool) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(stream).lines() {
            let Ok(l) = l else { break };
            if echo {
                eprintln!("[c] {l}");
            }
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    rx
}

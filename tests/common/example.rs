//! Builds a C program of the repository (an example) against the
//! libmqtt5c.so `cargo test` just built, for tests that run it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// target/<profile>, from the test executable in target/<profile>/deps.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("test executable in target/<profile>/deps")
        .to_path_buf()
}

/// Compiles `src` (relative to the repository) to
/// target/<profile>/c-tests/`name` (`-std=c11 -Wall -Wextra -Werror`).
pub fn compile(src: &str, name: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let profile = profile_dir();
    let lib = [profile.join("deps"), profile.clone()]
        .into_iter()
        .find(|d| d.join("libmqtt5c.so").is_file())
        .expect("libmqtt5c.so: run `cargo build` first");
    let out = profile.join("c-tests");
    std::fs::create_dir_all(&out).unwrap();
    let exe = out.join(name);
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(cc)
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pthread", "-O1"])
        .arg("-I")
        .arg(root.join("include"))
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

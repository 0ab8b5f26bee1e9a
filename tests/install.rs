//! `make install` works like a C library's: into a temporary prefix (run
//! twice), a program built against the installed copy with `pkg-config`,
//! with CMake's `find_package(mqtt5c)` and statically completes a round trip
//! (tests/install/roundtrip.c; roundtrip.cpp for the C++ header, with
//! pkg-config) through a private mosquitto; the shared
//! library exports only `mqtt_*` symbols, each at a version node, under the
//! soname `libmqtt5c.so.MAJOR`; the version in Cargo.toml, the header's
//! macros, `mqtt_version()`, `mqtt_version_number()`, mqtt5c.pc, the CMake
//! package and the file names agree; and a `DESTDIR` install names the
//! staging directory in no installed file.
//!
//! It installs the build of this test's own profile (`PROFILE=dev` under
//! `cargo test`), so it adds no release build to `make test`. Needs `make`,
//! `cc`, `pkg-config`, `cmake`, `nm` and `readelf` (scripts/ensure-deps.sh).

mod common;

use common::{Broker, TempDir};
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

const VERSION: &str = env!("CARGO_PKG_VERSION");
const MAJOR: &str = env!("CARGO_PKG_VERSION_MAJOR");
/// A round trip takes well under a second; a loaded CI machine gets margin.
const RUN_LIMIT: Duration = Duration::from_secs(60);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// target/<dir>: this test executable lives in target/<dir>/deps.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("test executable in target/<dir>/deps")
        .to_path_buf()
}

/// The cargo profile this test was built with, for `make PROFILE=`.
fn profile() -> String {
    match profile_dir().file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev".into(),
        Some(other) => other.into(),
    }
}

/// Runs a command to completion; panics with its output when it fails.
fn run(cmd: &mut Command) -> String {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (scripts/ensure-deps.sh installs it)"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

fn stdout(cmd: &mut Command) -> String {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `make install` with these variables. One at a time: two makes would
/// link target/<dir>/libmqtt5c.so.X.Y.Z at once. The outer make's flags
/// (`make test` runs `cargo test`) are not passed on.
fn make_install(vars: &[(&str, &Path)]) -> String {
    static MAKE: Mutex<()> = Mutex::new(());
    let _one = MAKE.lock().unwrap_or_else(|e| e.into_inner());
    let mut cmd = Command::new("make");
    cmd.current_dir(root())
        .args(["--no-print-directory", "install"])
        .arg(format!("PROFILE={}", profile()))
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .env_remove("MAKELEVEL");
    // What cargo sets for this test process: ring's build script reruns
    // when CARGO_PKG_NAME, CARGO_MANIFEST_DIR, ... differ from the last
    // build's, so the cargo build inside make would recompile ring, rustls
    // and mqtt5c here, and once more at the next plain `cargo build`.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_MANIFEST_")
            || name.starts_with("CARGO_BIN_")
            || [
                "CARGO_CRATE_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "OUT_DIR",
            ]
            .contains(&name.as_ref())
        {
            cmd.env_remove(name.as_ref());
        }
    }
    for (name, value) in vars {
        cmd.arg(format!("{name}={}", value.display()));
    }
    let text = run(&mut cmd);
    assert!(
        !text.contains("Compiling "),
        "make install rebuilt what cargo test had built:\n{text}"
    );
    text
}

/// One installed prefix for the tests that build against it, installed
/// twice: target/<dir>/install-test/prefix, made afresh by each run (a
/// static is never dropped, so a temp dir would be left behind).
fn prefix() -> &'static Path {
    static PREFIX: OnceLock<PathBuf> = OnceLock::new();
    PREFIX.get_or_init(|| {
        let dir = profile_dir().join("install-test/prefix");
        let _ = fs::remove_dir_all(&dir);
        make_install(&[("PREFIX", &dir)]);
        make_install(&[("PREFIX", &dir)]);
        dir
    })
}

/// Every file and link under `dir`, relative to it.
fn tree(dir: &Path) -> BTreeSet<String> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeSet<String>) {
        for entry in fs::read_dir(dir).expect("read_dir") {
            let path = entry.expect("dir entry").path();
            let meta = fs::symlink_metadata(&path).expect("metadata");
            if meta.is_dir() {
                walk(base, &path, out);
            } else {
                out.insert(path.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(dir, dir, &mut out);
    out
}

fn expected_tree() -> BTreeSet<String> {
    [
        "include/mqtt5c.h".to_string(),
        "include/mqtt5c.hpp".into(),
        "lib/libmqtt5c.a".into(),
        "lib/libmqtt5c.so".into(),
        format!("lib/libmqtt5c.so.{MAJOR}"),
        format!("lib/libmqtt5c.so.{VERSION}"),
        "lib/pkgconfig/mqtt5c.pc".into(),
        "lib/cmake/mqtt5c/mqtt5cConfig.cmake".into(),
        "lib/cmake/mqtt5c/mqtt5cConfigVersion.cmake".into(),
    ]
    .into_iter()
    .collect()
}

/// Runs a program built against the installed library, against a private
/// mosquitto, without cargo's LD_LIBRARY_PATH (it must find the library by
/// its rpath or not need it); returns its output.
fn round_trip(exe: &Path) -> String {
    let broker = Broker::start();
    let mut child = Command::new(exe)
        .arg(broker.url())
        .env_remove("LD_LIBRARY_PATH")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()));
    let started = Instant::now();
    // Polls the child: std offers no wait with a deadline.
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{} failed ({:?}):\n{text}\nbroker log:\n{}",
        exe.display(),
        out.status,
        broker.log()
    );
    assert!(
        text.contains(&format!("version {VERSION} mqtt5c {VERSION} ")),
        "{}: header or library version is not Cargo.toml's {VERSION}:\n{text}",
        exe.display()
    );
    assert!(
        text.contains("received mqtt5c/install/roundtrip hello"),
        "{}: no round trip:\n{text}",
        exe.display()
    );
    text
}

/// The shared libraries `exe` loads, as the dynamic loader resolves them.
fn loaded_libraries(exe: &Path) -> String {
    stdout(Command::new("ldd").arg(exe).env_remove("LD_LIBRARY_PATH"))
}

fn pkg_config(args: &[&str]) -> Vec<String> {
    let pc_dir = prefix().join("lib/pkgconfig");
    stdout(
        Command::new("pkg-config")
            .args(args)
            .arg("mqtt5c")
            .env("PKG_CONFIG_PATH", &pc_dir)
            .env_remove("PKG_CONFIG_LIBDIR"),
    )
    .split_whitespace()
    .map(String::from)
    .collect()
}

fn roundtrip_source() -> PathBuf {
    root().join("tests/install/roundtrip.c")
}

#[test]
fn installs_the_expected_files_and_links() {
    let prefix = prefix();
    assert_eq!(
        tree(prefix),
        expected_tree(),
        "files under {}",
        prefix.display()
    );
    let lib = prefix.join("lib");
    let link = |name: &str| fs::read_link(lib.join(name)).expect("a symlink");
    assert_eq!(
        link(&format!("libmqtt5c.so.{MAJOR}")),
        Path::new(&format!("libmqtt5c.so.{VERSION}"))
    );
    assert_eq!(
        link("libmqtt5c.so"),
        Path::new(&format!("libmqtt5c.so.{MAJOR}"))
    );
    let dynamic = stdout(
        Command::new("readelf")
            .arg("-d")
            .arg(lib.join(format!("libmqtt5c.so.{VERSION}"))),
    );
    assert!(
        dynamic.contains(&format!("Library soname: [libmqtt5c.so.{MAJOR}]")),
        "soname:\n{dynamic}"
    );
    // The installed headers are the repository's.
    for header in ["include/mqtt5c.h", "include/mqtt5c.hpp"] {
        assert_eq!(
            fs::read(prefix.join(header)).unwrap(),
            fs::read(root().join(header)).unwrap(),
            "{header}"
        );
    }
}

/// Every symbol the installed shared library exports is `mqtt_*` at
/// version node MQTT5C_* (mqtt5c.map), and they are exactly the functions
/// cargo's own cdylib exports.
#[test]
fn shared_library_exports_only_versioned_mqtt_symbols() {
    let so = prefix().join(format!("lib/libmqtt5c.so.{VERSION}"));
    // readelf names each symbol with its version: mqtt_connect@@MQTT5C_0.1.
    let syms = stdout(Command::new("readelf").args(["--dyn-syms", "-W"]).arg(&so));
    let mut exported = BTreeSet::new();
    for line in syms.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        // Num: Value Size Type Bind Vis Ndx Name
        if f.len() < 8 || f[0] == "Num:" || !f[0].ends_with(':') || f[6] == "UND" || f[4] == "LOCAL"
        {
            continue;
        }
        let name = f[7];
        if f[3] == "OBJECT" && f[6] == "ABS" && name.starts_with("MQTT5C_") {
            continue; // the version node's own definition
        }
        let (base, version) = name
            .split_once("@@")
            .unwrap_or_else(|| panic!("{name} has no default version node:\n{syms}"));
        assert!(base.starts_with("mqtt_"), "{so:?} exports {name}");
        assert!(
            version.starts_with("MQTT5C_"),
            "{name}: version node is not MQTT5C_*"
        );
        exported.insert(base.to_string());
    }
    let cdylib = profile_dir().join("libmqtt5c.so");
    let cargo_exports: BTreeSet<String> = stdout(
        Command::new("nm")
            .args(["-D", "--defined-only"])
            .arg(&cdylib),
    )
    .lines()
    .filter_map(|l| l.split_whitespace().nth(2).map(String::from))
    .collect();
    assert!(exported.len() > 50, "too few exports: {exported:?}");
    assert_eq!(exported, cargo_exports, "installed vs {}", cdylib.display());
}

/// Cargo.toml's version is the header's, mqtt_version()'s,
/// mqtt_version_number()'s, the .pc's and the CMake package's.
#[test]
fn versions_agree() {
    let header = fs::read_to_string(prefix().join("include/mqtt5c.h")).unwrap();
    let define = |name: &str| -> String {
        let prefix = format!("#define {name} ");
        let line = header
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no {name} in the header"));
        line[prefix.len()..].trim().to_string()
    };
    let parts: Vec<u32> = VERSION.split('.').map(|p| p.parse().unwrap()).collect();
    assert_eq!(define("MQTT5C_VERSION"), format!("\"{VERSION}\""));
    assert_eq!(define("MQTT5C_VERSION_MAJOR"), parts[0].to_string());
    assert_eq!(define("MQTT5C_VERSION_MINOR"), parts[1].to_string());
    assert_eq!(define("MQTT5C_VERSION_PATCH"), parts[2].to_string());
    let number = (parts[0] << 16) | (parts[1] << 8) | parts[2];
    assert_eq!(define("MQTT5C_VERSION_NUMBER"), format!("0x{number:06X}"));

    assert_eq!(mqtt5c::ffi::mqtt_version_number(), number);
    let text = unsafe { std::ffi::CStr::from_ptr(mqtt5c::ffi::mqtt_version()) };
    assert_eq!(text.to_str().unwrap(), format!("mqtt5c {VERSION}"));

    assert_eq!(pkg_config(&["--modversion"]), [VERSION]);
    let config_version =
        fs::read_to_string(prefix().join("lib/cmake/mqtt5c/mqtt5cConfigVersion.cmake")).unwrap();
    assert!(config_version.contains(&format!("set(PACKAGE_VERSION \"{VERSION}\")")));
}

#[test]
fn pkg_config_build_round_trips() {
    let scratch = TempDir::new("mqtt5c-pc").unwrap();
    let exe = scratch.path().join("roundtrip_pc");
    let libdir = pkg_config(&["--variable=libdir"]).concat();
    run(Command::new("cc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror"])
        .args(pkg_config(&["--cflags"]))
        .arg(roundtrip_source())
        .arg("-o")
        .arg(&exe)
        .args(pkg_config(&["--libs"]))
        .arg(format!("-Wl,-rpath,{libdir}")));
    let libs = loaded_libraries(&exe);
    let expected = format!("libmqtt5c.so.{MAJOR} => {libdir}/libmqtt5c.so.{MAJOR}");
    assert!(libs.contains(&expected), "ldd: want {expected}:\n{libs}");
    round_trip(&exe);
}

/// A C++17 program using the installed mqtt5c.hpp (tests/install/roundtrip.cpp),
/// built with pkg-config like the C one.
#[test]
fn cxx_pkg_config_build_round_trips() {
    let scratch = TempDir::new("mqtt5c-pc-cxx").unwrap();
    let exe = scratch.path().join("roundtrip_pc_cxx");
    let libdir = pkg_config(&["--variable=libdir"]).concat();
    run(Command::new("c++")
        .args(["-std=c++17", "-Wall", "-Wextra", "-Werror", "-pthread"])
        .args(pkg_config(&["--cflags"]))
        .arg(root().join("tests/install/roundtrip.cpp"))
        .arg("-o")
        .arg(&exe)
        .args(pkg_config(&["--libs"]))
        .arg(format!("-Wl,-rpath,{libdir}")));
    round_trip(&exe);
}

/// libmqtt5c.a linked in (the system libraries stay shared) with the
/// libraries `pkg-config --static` lists: the program needs no libmqtt5c.so.
#[test]
fn static_pkg_config_build_round_trips() {
    let scratch = TempDir::new("mqtt5c-static-pc").unwrap();
    let exe = scratch.path().join("roundtrip_static");
    let libs = pkg_config(&["--static", "--libs"]);
    assert!(
        libs.iter().any(|l| l == "-lpthread"),
        "Libs.private missing: {libs:?}"
    );
    // README.md "Linking": -Bstatic for -lmqtt5c only, --as-needed so that
    // the -lmqtt5c that --libs repeats adds no NEEDED entry.
    run(Command::new("cc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror"])
        .args(pkg_config(&["--cflags"]))
        .arg(roundtrip_source())
        .arg("-o")
        .arg(&exe)
        .args([
            "-Wl,-Bstatic",
            "-lmqtt5c",
            "-Wl,-Bdynamic",
            "-Wl,--as-needed",
        ])
        .args(&libs));
    let loaded = loaded_libraries(&exe);
    assert!(
        !loaded.contains("libmqtt5c"),
        "linked statically, yet:\n{loaded}"
    );
    round_trip(&exe);
}

/// find_package(mqtt5c X.Y) with CMAKE_PREFIX_PATH: mqtt5c::mqtt5c and
/// mqtt5c::mqtt5c_static.
#[test]
fn cmake_build_round_trips() {
    let scratch = TempDir::new("mqtt5c-cmake").unwrap();
    let build = scratch.path().join("build");
    let want = VERSION.rsplit_once('.').unwrap().0; // X.Y
    let configure = run(Command::new("cmake")
        .arg("-S")
        .arg(root().join("tests/install"))
        .arg("-B")
        .arg(&build)
        .arg(format!("-DCMAKE_PREFIX_PATH={}", prefix().display()))
        .arg(format!("-DMQTT5C_WANT_VERSION={want}"))
        .env("CFLAGS", "-std=c11 -Wall -Wextra -Werror"));
    assert!(
        configure.contains(&format!("mqtt5c_VERSION={VERSION}")),
        "find_package version:\n{configure}"
    );
    run(Command::new("cmake").arg("--build").arg(&build));

    let shared = build.join("roundtrip_cmake");
    let libs = loaded_libraries(&shared);
    let expected = format!("libmqtt5c.so.{MAJOR} => {}", prefix().join("lib").display());
    assert!(libs.contains(&expected), "ldd: want {expected}:\n{libs}");
    round_trip(&shared);

    let fixed = build.join("roundtrip_cmake_static");
    let libs = loaded_libraries(&fixed);
    assert!(
        !libs.contains("libmqtt5c"),
        "linked statically, yet:\n{libs}"
    );
    round_trip(&fixed);
}

/// Configures tests/install/CMakeLists.txt asking `find_package(mqtt5c
/// WANT)`; returns whether CMake accepted the installed package, and its
/// output.
fn cmake_find(want: &str) -> (bool, String) {
    let scratch = TempDir::new("mqtt5c-cmake-version").unwrap();
    let out = Command::new("cmake")
        .arg("-S")
        .arg(root().join("tests/install"))
        .arg("-B")
        .arg(scratch.path().join("build"))
        .arg(format!("-DCMAKE_PREFIX_PATH={}", prefix().display()))
        .arg(format!("-DMQTT5C_WANT_VERSION={want}"))
        .stdin(Stdio::null())
        .output()
        .expect("cmake");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// mqtt5cConfigVersion.cmake: the same major version is compatible (while
/// it is 0, the same minor version too); another major, or an older minor
/// of 0.x, is refused with the version found named.
#[test]
fn cmake_package_version_rules() {
    let (ok, text) = cmake_find(MAJOR);
    assert!(
        ok,
        "find_package(mqtt5c {MAJOR}) refused {VERSION}:\n{text}"
    );
    let next_major = MAJOR.parse::<u32>().unwrap() + 1;
    let (ok, text) = cmake_find(&format!("{next_major}.0"));
    assert!(
        !ok,
        "find_package(mqtt5c {next_major}.0) accepted {VERSION}"
    );
    assert!(
        text.contains(VERSION),
        "cmake does not name the version found:\n{text}"
    );
    let minor: u32 = env!("CARGO_PKG_VERSION_MINOR").parse().unwrap();
    if MAJOR == "0" && minor > 0 {
        let older = format!("0.{}", minor - 1);
        let (ok, _) = cmake_find(&older);
        assert!(
            !ok,
            "find_package(mqtt5c {older}) accepted {VERSION}: 0.x minors differ in API"
        );
    }
}

/// `make install DESTDIR=STAGE PREFIX=/usr/local`, twice: the same files as
/// a plain install, and none of them (nor a link) names STAGE.
#[test]
fn destdir_install_twice_names_no_staging_directory() {
    let stage = TempDir::new("mqtt5c-destdir").unwrap();
    let usr_local = Path::new("/usr/local");
    make_install(&[("DESTDIR", stage.path()), ("PREFIX", usr_local)]);
    let first = tree(stage.path());
    make_install(&[("DESTDIR", stage.path()), ("PREFIX", usr_local)]);
    let installed = stage.path().join("usr/local");
    assert_eq!(
        tree(stage.path()),
        first,
        "a second install changed the tree"
    );
    assert_eq!(tree(&installed), expected_tree());

    let needle = stage.path().to_str().unwrap().as_bytes().to_vec();
    for name in tree(&installed) {
        let path = installed.join(&name);
        let bytes = match fs::read_link(&path) {
            Ok(target) => target.into_os_string().into_encoded_bytes(),
            Err(_) => fs::read(&path).unwrap(),
        };
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle.as_slice()),
            "{name} names the staging directory {}",
            stage.path().display()
        );
    }
    let pc = fs::read_to_string(installed.join("lib/pkgconfig/mqtt5c.pc")).unwrap();
    assert!(pc.starts_with("prefix=/usr/local\n"), "mqtt5c.pc:\n{pc}");
}

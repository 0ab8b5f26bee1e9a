//! Drives the C tests in tests/c/: each `tests/c/NAME.c` is compiled with
//! strict warnings against the library cargo just built, and run against a
//! fresh mosquitto of its own (one #[test] per program, so a failure names
//! the program).
//!
//! A C file may add broker configuration with comment lines such as
//! `// broker-conf: max_packet_size 2000`, or run against a scripted broker
//! (tests/scripted) instead of mosquitto with `// fake-broker: NAME`; the
//! test then also fails when the script does.
//!
//! The program gets the broker port as argv[1] and in env MQTT_TEST_PORT,
//! and mosquitto's process id in env MQTT_TEST_BROKER_PID (to stop it).
//!
//! A C file with a `// needs: tls` line gets TLS: the driver makes a CA,
//! server and client certificates, adds a TLS listener and a mutual-TLS
//! listener to the broker and passes MQTT_TEST_TLS_PORT,
//! MQTT_TEST_MTLS_PORT, MQTT_TEST_CAFILE, MQTT_TEST_OTHER_CAFILE,
//! MQTT_TEST_CLIENT_CERT and MQTT_TEST_CLIENT_KEY. The `*_over_tls` tests
//! run a plain program with MQTT_TEST_URL set to the TLS listener (and
//! MQTT_TEST_CAFILE), so test_common.h's test_url/test_client_new use TLS.
//! A C file with a `// needs: broker-control` line may stop and start its
//! broker: the driver listens on a Unix socket whose path it passes in
//! MQTT_TEST_BROKER_CONTROL, and runs each command line it receives there
//! (`stop`: SIGTERM, a persistent broker saves its database; `start`: the
//! same broker again, on the same port; `wipe`: stop, delete the database,
//! start: the broker has lost every session), answering `ok` once done
//! (see `broker_control` in tests/c/test_common.h). A `// broker-persistent`
//! line starts the broker with `persistence true`.
//! A C file with a `// needs: proxy` line gets a TCP proxy in front of its
//! broker (tests/common/proxy.rs), whose port is in MQTT_TEST_PROXY_PORT,
//! and the control socket above with three more commands: `blackhole-drop`
//! and `blackhole-hold` (the proxy stops forwarding without closing,
//! dropping or holding the bytes, see `Proxy::blackhole`) and `forward`
//! (new connections are forwarded again).
//! A C file with a `// needs: dlopen` line is not linked to the library
//! (but to libdl): it loads it itself, from the path in MQTT_TEST_LIB
//! (which every program gets).
//! A `// broker-passwd: USER PASSWORD` line makes a mosquitto password
//! file with that one user (`mosquitto_passwd -c -b`), turns anonymous
//! access off and passes the file's path in MQTT_TEST_PASSWD_FILE (the
//! program may change it and send the broker SIGHUP to reload it).
//! With env MQTT5C_VALGRIND=1 it runs under valgrind (definite leaks and
//! memory errors fail the test). With env MQTT5C_SANITIZE=1 (`make asan`)
//! the program is built with clang or clang++ (env MQTT5C_SANITIZE_CC and
//! MQTT5C_SANITIZE_CXX override) and -fsanitize=address,undefined, linked
//! to the ordinary library: the C code is instrumented, the Rust library
//! is not, but ASan's malloc and leak checker see the allocations of both;
//! any report fails the test (leak suppressions, each with its reason, in
//! tests/lsan.supp). Env MQTT5C_C_TEST_TIMEOUT (seconds) overrides the
//! per-program time limit.

mod common;
mod scripted;

use common::cprog::{env_on, lib_dir, profile_dir, valgrind};
use common::proxy::{Hole, Proxy};
use common::{Broker, TempDir};
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The C tests; `every_c_file_is_listed` keeps this in step with tests/c/.
macro_rules! c_tests {
    ($($name:ident),* $(,)?) => {
        const C_TESTS: &[&str] = &[$(stringify!($name)),*];
        $(
            #[test]
            fn $name() {
                run_c_test(stringify!($name));
            }
        )*
    };
}

c_tests!(
    test_basic,
    test_features,
    test_bad_input,
    test_callback_echo,
    test_disconnect,
    test_lost_connection,
    test_free,
    test_order,
    test_threads,
    test_idle_threads,
    test_tls,
    test_tls_memory,
    test_sigpipe,
    test_backpressure,
    test_flow,
    test_auth,
    test_auth_verify,
    test_wrong_acks,
    test_session_present,
    test_inbound_limits,
    test_properties,
    test_properties_index,
    test_subscriptions,
    test_shared,
    test_session_will,
    test_blackhole,
    test_subscribe_cb,
    test_request,
    test_reconnect,
    test_publish_async,
    test_publish_async_lost,
    test_outgoing_properties,
    test_disconnect_rules,
    test_free_auth,
    test_route_free,
    test_callback_replace,
    test_free_blocked,
    test_free_stalled_write,
    test_ack_after_callback,
    test_keepalive_backpressure,
    test_blocking_bound,
    test_keepalive_silent_broker,
    test_offline_queue,
    test_ride_out,
    test_resubscribe,
    test_persistence,
    test_persist_qos2,
    test_manual_ack,
    test_failover,
    test_pre_connect,
    test_pre_connect_reentry,
    test_v311,
    test_v311_reconnect,
    test_v311_request,
    test_global_cleanup,
    test_cleanup_timeout,
    test_cleanup_panic,
    test_fork,
    test_dlopen,
    test_log_stats,
    test_log_replace,
    test_churn,
    test_callback_stress,
);

/// The C++ tests (tests/cxx/test_*.cpp, against include/mqtt5c.hpp): run
/// like the C tests, with the same directives, compiled as C++17;
/// `every_cxx_file_is_listed` keeps this in step with tests/cxx/.
macro_rules! cxx_tests {
    ($($name:ident),* $(,)?) => {
        const CXX_TESTS: &[&str] = &[$(stringify!($name)),*];
        $(
            #[test]
            fn $name() {
                run_c_test(stringify!($name));
            }
        )*
    };
}

cxx_tests!(test_cxx_binding);

#[test]
fn test_callback_echo_over_tls() {
    run_c_test_mode("test_callback_echo", true);
}

#[test]
fn test_threads_over_tls() {
    run_c_test_mode("test_threads", true);
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs a command to completion, returning (success, combined output).
fn run_quiet(cmd: &mut Command) -> (bool, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn sanitize() -> bool {
    env_on("MQTT5C_SANITIZE")
}

fn cc() -> String {
    if sanitize() {
        return std::env::var("MQTT5C_SANITIZE_CC").unwrap_or_else(|_| "clang".into());
    }
    std::env::var("CC").unwrap_or_else(|_| "cc".into())
}

/// What the sanitizer build adds: ASan and UBSan, every UBSan finding fatal.
const SANITIZE_FLAGS: &[&str] = &[
    "-fsanitize=address,undefined",
    "-fno-sanitize-recover=all",
    "-fno-omit-frame-pointer",
];

/// The run-time options of a sanitizer run: reports fail the program with
/// exit code 98, leaks included (suppressions in tests/lsan.supp).
fn sanitizer_env(root: &Path) -> [(&'static str, String); 3] {
    [
        (
            "ASAN_OPTIONS",
            "exitcode=98:detect_leaks=1:abort_on_error=0:detect_stack_use_after_return=1".into(),
        ),
        (
            "UBSAN_OPTIONS",
            "print_stacktrace=1:halt_on_error=1:exitcode=98".into(),
        ),
        (
            "LSAN_OPTIONS",
            format!(
                "exitcode=98:suppressions={}:print_suppressions=0",
                root.join("tests/lsan.supp").display()
            ),
        ),
    ]
}

fn cxx() -> String {
    if sanitize() {
        return std::env::var("MQTT5C_SANITIZE_CXX").unwrap_or_else(|_| "clang++".into());
    }
    std::env::var("CXX").unwrap_or_else(|_| "c++".into())
}

/// The source of test NAME: tests/c/NAME.c, or the C++ test
/// tests/cxx/NAME.cpp.
fn test_source(name: &str) -> PathBuf {
    let root = repo_root();
    let c = root.join("tests/c").join(format!("{name}.c"));
    if c.is_file() {
        return c;
    }
    root.join("tests/cxx").join(format!("{name}.cpp"))
}

/// Compiles test NAME (see `test_source`) to target/<profile>/c-tests/EXE_NAME
/// (a name of its own per #[test], so that two tests running one program in
/// parallel never run a file the other is writing).
fn compile_c(name: &str, exe_name: &str) -> PathBuf {
    let root = repo_root();
    let src = test_source(name);
    let lib = lib_dir();
    let out_dir = profile_dir().join("c-tests");
    fs::create_dir_all(&out_dir).expect("create c-tests dir");
    let exe = out_dir.join(exe_name);
    let is_cxx = src.extension().is_some_and(|e| e == "cpp");
    let loads_itself = fs::read_to_string(&src)
        .unwrap_or_else(|e| panic!("read {}: {e}", src.display()))
        .lines()
        .any(|l| l.trim() == "// needs: dlopen");
    let (mut cmd, std) = if is_cxx {
        (Command::new(cxx()), "-std=c++17")
    } else {
        (Command::new(cc()), "-std=c11")
    };
    cmd.args([std, "-Wall", "-Wextra", "-Werror", "-pthread", "-g", "-O1"])
        .args(if sanitize() { SANITIZE_FLAGS } else { &[] })
        .arg("-I")
        .arg(root.join("include"))
        .arg("-I")
        .arg(root.join("tests/c"))
        .arg(&src)
        .arg("-o")
        .arg(&exe);
    if loads_itself {
        cmd.arg("-ldl");
    } else {
        cmd.arg("-L")
            .arg(&lib)
            .arg("-lmqtt5c")
            .arg(format!("-Wl,-rpath,{}", lib.display()));
    }
    let (ok, text) = run_quiet(&mut cmd);
    assert!(ok, "compiling {} failed:\n{cmd:?}\n{text}", src.display());
    exe
}

/// `// broker-conf: LINE` comments of a C file, as config lines.
fn broker_conf(src: &str) -> String {
    src.lines()
        .filter_map(|l| l.trim().strip_prefix("// broker-conf:"))
        .map(|l| format!("{}\n", l.trim()))
        .collect()
}

fn time_limit() -> Duration {
    if let Some(secs) = std::env::var("MQTT5C_C_TEST_TIMEOUT")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    {
        return Duration::from_secs(secs);
    }
    Duration::from_secs(if valgrind() { 1800 } else { 300 })
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Certificates and broker configuration for a test that needs TLS.
struct TlsSetup {
    conf: String,
    env: Vec<(&'static str, String)>,
    tls_port: u16,
    ca_file: String,
}

fn tls_setup(dir: &Path) -> TlsSetup {
    use common::certs::{tls_listener_conf, Ca, KeyKind, Validity};
    let ca = Ca::new(dir, "ca");
    let other = Ca::new(dir, "other");
    let server = ca.server("server", &["127.0.0.1", "localhost"], Validity::Current);
    let client = ca.client("client", KeyKind::EcdsaP256);
    let tls_port = common::free_port();
    let mtls_port = common::free_port();
    let conf = tls_listener_conf(tls_port, &ca.file, &server, false)
        + &tls_listener_conf(mtls_port, &ca.file, &server, true);
    let s = |p: &Path| p.display().to_string();
    TlsSetup {
        conf,
        env: vec![
            ("MQTT_TEST_TLS_PORT", tls_port.to_string()),
            ("MQTT_TEST_MTLS_PORT", mtls_port.to_string()),
            ("MQTT_TEST_CAFILE", s(&ca.file)),
            ("MQTT_TEST_OTHER_CAFILE", s(&other.file)),
            ("MQTT_TEST_CLIENT_CERT", s(&client.cert)),
            ("MQTT_TEST_CLIENT_KEY", s(&client.key)),
        ],
        tls_port,
        ca_file: s(&ca.file),
    }
}

/// A mosquitto password file in `dir` with the one user of `spec`
/// ("USER PASSWORD").
fn password_file(dir: &Path, spec: &str) -> PathBuf {
    let (user, password) = spec
        .split_once(' ')
        .unwrap_or_else(|| panic!("// broker-passwd: wants USER PASSWORD, got '{spec}'"));
    let file = dir.join("passwd");
    let (ok, text) = run_quiet(
        Command::new("mosquitto_passwd")
            .args(["-c", "-b"])
            .arg(&file)
            .args([user, password.trim()]),
    );
    assert!(ok, "mosquitto_passwd failed: {text}");
    file
}

/// The optional transports the library under test was built with, for
/// MQTT_TEST_FEATURES (test_features.c checks that the others are refused).
fn features() -> String {
    let on = [
        ("tls", cfg!(feature = "tls")),
        ("websocket", cfg!(feature = "websocket")),
    ];
    let names: Vec<&str> = on.iter().filter(|f| f.1).map(|f| f.0).collect();
    names.join(" ")
}

fn run_c_test(name: &str) {
    run_c_test_mode(name, false);
}

/// Runs tests/c/NAME.c; with `over_tls` its test_url() is a TLS URL.
fn run_c_test_mode(name: &str, over_tls: bool) {
    let root = repo_root();
    let src_path = test_source(name);
    let src = fs::read_to_string(&src_path)
        .unwrap_or_else(|e| panic!("read {}: {e}", src_path.display()));
    assert!(
        !(valgrind() && sanitize()),
        "MQTT5C_VALGRIND and MQTT5C_SANITIZE exclude each other"
    );
    let exe_name = format!(
        "{name}{}{}",
        if over_tls { "_over_tls" } else { "" },
        if sanitize() { "_asan" } else { "" }
    );
    let exe = compile_c(name, &exe_name);
    let script = src
        .lines()
        .find_map(|l| l.trim().strip_prefix("// fake-broker:"))
        .map(|n| scripted::Script::start(scripted::by_name(n.trim())));
    let scratch = TempDir::new("mqtt5c-ctest").expect("temp dir");
    let needs_tls = over_tls || src.lines().any(|l| l.trim() == "// needs: tls");
    let tls = needs_tls.then(|| tls_setup(scratch.path()));
    let mut conf = broker_conf(&src);
    if let Some(t) = &tls {
        conf.push_str(&t.conf);
    }
    let passwd = src
        .lines()
        .find_map(|l| l.trim().strip_prefix("// broker-passwd:"))
        .map(|l| password_file(scratch.path(), l.trim()));
    if let Some(file) = &passwd {
        conf.push_str(&format!(
            "password_file {}\nallow_anonymous false\n",
            file.display()
        ));
    }
    let persistent = src.lines().any(|l| l.trim() == "// broker-persistent");
    let broker = match &script {
        Some(_) => None,
        None if persistent => Some(Broker::start_persistent(&conf)),
        None => Some(Broker::start_with(&conf)),
    };
    let port = match (&script, &broker) {
        (Some(s), _) => s.port,
        (None, Some(b)) => b.port(),
        (None, None) => unreachable!("one of the two was started"),
    };
    let pid = broker.as_ref().map(|b| b.pid());
    let broker = Arc::new(Mutex::new(broker));
    let proxy = src
        .lines()
        .any(|l| l.trim() == "// needs: proxy")
        .then(|| Arc::new(Proxy::start(port)));
    let wants_control =
        proxy.is_some() || src.lines().any(|l| l.trim() == "// needs: broker-control");
    let control =
        wants_control.then(|| BrokerControl::start(scratch.path(), broker.clone(), proxy.clone()));
    let stdout_path = scratch.path().join("stdout");
    let stderr_path = scratch.path().join("stderr");

    let mut cmd = if valgrind() {
        let mut c = Command::new("valgrind");
        c.args([
            "--leak-check=full",
            "--errors-for-leak-kinds=definite",
            "--show-leak-kinds=definite",
            "--error-exitcode=99",
            "--track-origins=yes",
        ])
        .arg(format!(
            "--suppressions={}",
            root.join("tests/valgrind.supp").display()
        ))
        .arg(&exe);
        c
    } else {
        let mut c = Command::new(&exe);
        if sanitize() {
            c.envs(sanitizer_env(&root));
        }
        c
    };
    if let Some(pid) = pid {
        cmd.env("MQTT_TEST_BROKER_PID", pid.to_string());
    }
    if let Some(c) = &control {
        cmd.env("MQTT_TEST_BROKER_CONTROL", &c.path);
    }
    if let Some(p) = &proxy {
        cmd.env("MQTT_TEST_PROXY_PORT", p.port().to_string());
    }
    if let Some(file) = &passwd {
        cmd.env("MQTT_TEST_PASSWD_FILE", file);
    }
    if let Some(t) = &tls {
        cmd.envs(t.env.iter().map(|(k, v)| (k, v)));
        if over_tls {
            cmd.env("MQTT_TEST_URL", format!("mqtts://127.0.0.1:{}", t.tls_port))
                .env("MQTT_TEST_CAFILE", &t.ca_file);
        }
    }
    // cargo runs tests with LD_LIBRARY_PATH containing target/<profile>,
    // which holds the library of the last `cargo build` (possibly stale)
    // and would win over the rpath: point it at the fresh one.
    cmd.arg(port.to_string())
        .env("LD_LIBRARY_PATH", lib_dir())
        .env("MQTT_TEST_LIB", lib_dir().join("libmqtt5c.so"))
        .env("MQTT_TEST_PORT", port.to_string())
        .env("MQTT_TEST_FEATURES", features())
        .current_dir(scratch.path())
        .stdin(Stdio::null())
        .stdout(fs::File::create(&stdout_path).expect("stdout file"))
        .stderr(fs::File::create(&stderr_path).expect("stderr file"));

    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let limit = time_limit();
    // Polls the child: the process itself has no other completion signal
    // that std offers with a deadline.
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for C test") {
            break Some(status);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = started.elapsed();
    if let Some(c) = control {
        c.stop();
    }
    let broker = broker.lock().unwrap().take();
    let stdout = fs::read_to_string(&stdout_path).unwrap_or_default();
    let stderr = fs::read_to_string(&stderr_path).unwrap_or_default();
    // A failed program leaves the script waiting; give it a moment only.
    let scripted = script.is_some();
    let script_result = match script {
        Some(s) if status.is_some_and(|st| st.success()) => s.finish(Duration::from_secs(30)),
        Some(s) => s.finish(Duration::from_secs(1)),
        None => Ok(()),
    };
    let verdict = match status {
        Some(s) if s.success() && script_result.is_ok() => {
            println!("{name}: passed in {elapsed:.1?}\n--- stdout ---\n{stdout}");
            return;
        }
        Some(s) if s.success() => format!(
            "passed but the scripted broker failed: {}",
            script_result.as_ref().unwrap_err()
        ),
        Some(s) if s.code() == Some(99) && valgrind() => format!("valgrind found errors ({s})"),
        Some(s) if s.code() == Some(98) && sanitize() => format!("a sanitizer found errors ({s})"),
        Some(s) => format!("failed: {s}"),
        None => format!("did not finish within {limit:?}; killed"),
    };
    panic!(
        "{name} {verdict} after {elapsed:.1?}\n\
         --- stdout ---\n{stdout}\n--- stderr ---\n{stderr}\n\
         --- broker log (last 40 lines) ---\n{}",
        match (scripted, broker) {
            (true, _) => format!("(scripted broker: {script_result:?})"),
            (false, Some(b)) => tail(&b.log(), 40),
            (false, None) => String::new(),
        }
    );
}

/// The broker control socket of a `// needs: broker-control` test.
struct BrokerControl {
    path: PathBuf,
    thread: std::thread::JoinHandle<()>,
}

impl BrokerControl {
    fn start(
        dir: &Path,
        broker: Arc<Mutex<Option<Broker>>>,
        proxy: Option<Arc<Proxy>>,
    ) -> BrokerControl {
        let path = dir.join("broker-control.sock");
        let listener = UnixListener::bind(&path).expect("bind the broker control socket");
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut line = String::new();
                if BufReader::new(&stream).read_line(&mut line).is_err() {
                    continue;
                }
                let mut guard = broker.lock().unwrap();
                let Some(b) = guard.as_mut() else { return };
                let reply = match line.trim() {
                    "stop" => {
                        b.stop();
                        "ok"
                    }
                    "start" => {
                        b.start_again();
                        "ok"
                    }
                    "wipe" => {
                        b.stop();
                        let _ = fs::remove_file(b.dir().join("mosquitto.db"));
                        b.start_again();
                        "ok"
                    }
                    "blackhole-drop" | "blackhole-hold" | "forward" if proxy.is_some() => {
                        let p = proxy.as_deref().expect("checked by the guard");
                        match line.trim() {
                            "blackhole-drop" => p.blackhole(Hole::Drop),
                            "blackhole-hold" => p.blackhole(Hole::Hold),
                            _ => p.forward_again(),
                        }
                        "ok"
                    }
                    "quit" => return,
                    _ => "unknown command",
                };
                let _ = writeln!(stream, "{reply}");
            }
        });
        BrokerControl { path, thread }
    }

    /// Ends the control thread (the broker is left as it is).
    fn stop(self) {
        if let Ok(mut s) = std::os::unix::net::UnixStream::connect(&self.path) {
            let _ = writeln!(s, "quit");
        }
        let _ = self.thread.join();
    }
}

#[test]
fn every_c_file_is_listed() {
    let mut on_disk: Vec<String> = fs::read_dir(repo_root().join("tests/c"))
        .expect("tests/c")
        .filter_map(|e| {
            let p = e.ok()?.path();
            (p.extension()? == "c").then(|| p.file_stem().unwrap().to_string_lossy().into_owned())
        })
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = C_TESTS.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(
        on_disk, listed,
        "tests/c/*.c and the c_tests! list in tests/c_api.rs differ"
    );
}

#[test]
fn every_cxx_file_is_listed() {
    let mut on_disk: Vec<String> = fs::read_dir(repo_root().join("tests/cxx"))
        .expect("tests/cxx")
        .filter_map(|e| {
            let p = e.ok()?.path();
            let stem = p.file_stem()?.to_string_lossy().into_owned();
            (p.extension()? == "cpp" && stem.starts_with("test_")).then_some(stem)
        })
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = CXX_TESTS.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(
        on_disk, listed,
        "tests/cxx/test_*.cpp and the cxx_tests! list in tests/c_api.rs differ"
    );
}

/// The header compiles on its own as C and as C++, and a C++ program that
/// includes it links against the library and runs (extern "C" linkage).
#[test]
fn header_compiles_as_c_and_cxx() {
    let root = repo_root();
    let header = root.join("include/mqtt5c.h");
    assert!(header.is_file(), "{} missing", header.display());

    let (ok, text) = run_quiet(
        Command::new(cc())
            .args([
                "-x",
                "c",
                "-std=c99",
                "-Wall",
                "-Wextra",
                "-Werror",
                "-fsyntax-only",
            ])
            .arg(&header),
    );
    assert!(ok, "header as C99:\n{text}");
    let (ok, text) = run_quiet(
        Command::new(cxx())
            .args([
                "-x",
                "c++",
                "-std=c++11",
                "-Wall",
                "-Wextra",
                "-Werror",
                "-fsyntax-only",
            ])
            .arg(&header),
    );
    assert!(ok, "header as C++:\n{text}");

    let lib = lib_dir();
    let out_dir = profile_dir().join("c-tests");
    fs::create_dir_all(&out_dir).unwrap();
    let exe = out_dir.join("header_check_cxx");
    let (ok, text) = run_quiet(
        Command::new(cxx())
            .args(["-std=c++11", "-Wall", "-Wextra", "-Werror", "-pthread"])
            .arg("-I")
            .arg(root.join("include"))
            .arg(root.join("tests/cxx/header_check.cpp"))
            .arg("-o")
            .arg(&exe)
            .arg("-L")
            .arg(&lib)
            .arg("-lmqtt5c")
            .arg(format!("-Wl,-rpath,{}", lib.display())),
    );
    assert!(ok, "compiling tests/cxx/header_check.cpp:\n{text}");
    let (ok, text) = run_quiet(&mut Command::new(&exe));
    assert!(ok, "header_check_cxx failed:\n{text}");
}

/// A C program links statically against libmqtt5c.a too.
#[test]
fn static_library_links() {
    let root = repo_root();
    let lib = lib_dir();
    let archive = lib.join("libmqtt5c.a");
    assert!(archive.is_file(), "{} missing", archive.display());
    let scratch = TempDir::new("mqtt5c-static").unwrap();
    let src = scratch.path().join("static.c");
    fs::write(
        &src,
        "#include <stdio.h>\n#include \"mqtt5c.h\"\n\
         int main(void) {\n\
             mqtt_client *c = mqtt_client_new(NULL);\n\
             if (!c) { fprintf(stderr, \"mqtt_client_new: %s\\n\", mqtt_last_error()); return 1; }\n\
             mqtt_client_free(c);\n\
             printf(\"%s\\n\", mqtt_version());\n\
             return 0;\n\
         }\n",
    )
    .unwrap();
    let exe = scratch.path().join("static");
    let (ok, text) = run_quiet(
        Command::new(cc())
            .args(["-std=c11", "-Wall", "-Wextra", "-Werror"])
            .arg("-I")
            .arg(root.join("include"))
            .arg(&src)
            .arg("-o")
            .arg(&exe)
            .arg(&archive)
            .args(["-lpthread", "-ldl", "-lm"]),
    );
    assert!(ok, "static link failed:\n{text}");
    let (ok, text) = run_quiet(&mut Command::new(&exe));
    assert!(ok, "statically linked program failed:\n{text}");
}

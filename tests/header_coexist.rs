//! `mqtt5c.h` coexists with the headers of the libraries our users migrate
//! from: libmosquitto's `mosquitto.h` and `mqtt_protocol.h`, Paho's
//! `MQTTAsync.h` and `MQTTClient.h`. One translation unit includes all five
//! in every order (120), as C and as C++, with warnings as errors, and uses
//! a name of each so that a macro of one turning another's identifier into
//! a number cannot hide. Another test keeps every macro of ours under the
//! `MQTT5C_` prefix, so the next constant added cannot collide either.
//!
//! Needs gcc, g++, libmosquitto-dev and libpaho-mqtt-dev
//! (scripts/ensure-deps.sh installs them).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

const OURS: &str = "mqtt5c.h";
const OTHERS: [&str; 4] = [
    "mosquitto.h",
    "mqtt_protocol.h",
    "MQTTAsync.h",
    "MQTTClient.h",
];

/// After the includes: one name from each header, used so that it must
/// still mean what its header says, and our property ids checked against
/// mosquitto's enum (both are the spec's numbers). Valid C and C++.
const BODY: &str = r#"
typedef char same_property_ids[
    (MQTT5C_PROP_PAYLOAD_FORMAT_INDICATOR == MQTT_PROP_PAYLOAD_FORMAT_INDICATOR &&
     MQTT5C_PROP_USER_PROPERTY == MQTTPROPERTY_CODE_USER_PROPERTY) ? 1 : -1];

int coexist(void);
int coexist(void)
{
    enum mqtt5_property mosq_prop = MQTT_PROP_SUBSCRIPTION_IDENTIFIER;
    enum mqtt5_return_codes mosq_rc = MQTT_RC_NO_MATCHING_SUBSCRIBERS;
    MQTTAsync_connectOptions async_opts = MQTTAsync_connectOptions_initializer5;
    MQTTClient_connectOptions sync_opts = MQTTClient_connectOptions_initializer5;
    MQTTProperty paho_prop;
    int ours = MQTT5C_PROP_SUBSCRIPTION_IDENTIFIER + MQTT5C_QOS1 + MQTT5C_OK;
    paho_prop.identifier = MQTTPROPERTY_CODE_SUBSCRIPTION_IDENTIFIER;
    (void)&mosquitto_lib_init;
    (void)&MQTTAsync_create;
    (void)&MQTTClient_create;
    (void)&mqtt_client_new;
    ours += MQTT5C_SUCCEEDED(ours) + mqtt_succeeded(ours);
    return ours + (int)mosq_prop + (int)mosq_rc + (int)paho_prop.identifier +
           async_opts.MQTTVersion + sync_opts.MQTTVersion + (int)sizeof(mqtt_options *);
}
"#;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every order of `items` (Heap's algorithm would do; five items are few).
fn permutations(items: &[&'static str]) -> Vec<Vec<&'static str>> {
    if items.len() <= 1 {
        return vec![items.to_vec()];
    }
    let mut all = Vec::new();
    for (i, first) in items.iter().enumerate() {
        let mut rest = items.to_vec();
        rest.remove(i);
        for mut tail in permutations(&rest) {
            tail.insert(0, first);
            all.push(tail);
        }
    }
    all
}

fn translation_unit(order: &[&str]) -> String {
    let mut tu = String::new();
    for header in order {
        if *header == OURS {
            tu.push_str("#include \"mqtt5c.h\"\n");
        } else {
            tu.push_str(&format!("#include <{header}>\n"));
        }
    }
    tu + BODY
}

/// Compiles `source` (syntax only) with warnings as errors; the
/// compiler's complaint on failure.
fn compile(compiler: &str, std: &str, source: &Path) -> Result<(), String> {
    let out = Command::new(compiler)
        .args([
            std,
            "-fsyntax-only",
            "-Wall",
            "-Wextra",
            "-pedantic",
            "-Werror",
        ])
        .arg("-I")
        .arg(root().join("include"))
        .arg(source)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {compiler}: {e} (scripts/ensure-deps.sh installs it)")
        });
    if out.status.success() && out.stderr.is_empty() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// `tag` keeps the probes of tests running at once apart.
fn other_headers_installed(tag: &str) {
    let probe = std::env::temp_dir().join(format!(
        "mqtt5c-coexist-probe-{tag}-{}.c",
        std::process::id()
    ));
    for header in OTHERS {
        fs::write(&probe, format!("#include <{header}>\n")).expect("write probe");
        let found = compile("cc", "-std=c11", &probe);
        assert!(
            found.is_ok(),
            "<{header}> does not compile alone; install libmosquitto-dev and \
             libpaho-mqtt-dev (scripts/ensure-deps.sh):\n{}",
            found.unwrap_err()
        );
    }
    let _ = fs::remove_file(probe);
}

/// Compiles every order with `compiler`, two at a time; panics listing the
/// orders that failed and the first complaint.
fn every_order_compiles(compiler: &str, std: &str, ext: &str) {
    other_headers_installed(ext);
    let dir = std::env::temp_dir().join(format!("mqtt5c-coexist-{ext}-{}", std::process::id()));
    fs::create_dir_all(&dir).expect("temp dir");
    let mut all = vec![OURS];
    all.extend(OTHERS);
    let orders = permutations(&all);
    assert_eq!(orders.len(), 120);
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(order) = orders.get(i) else { break };
                let source = dir.join(format!("order{i}.{ext}"));
                fs::write(&source, translation_unit(order)).expect("write TU");
                if let Err(text) = compile(compiler, std, &source) {
                    failures.lock().unwrap().push((order.join(", "), text));
                }
            });
        }
    });
    let _ = fs::remove_dir_all(&dir);
    let failures = failures.into_inner().unwrap();
    if let Some((order, text)) = failures.first() {
        let orders: Vec<&str> = failures.iter().map(|(o, _)| o.as_str()).collect();
        panic!(
            "{compiler}: {} of 120 include orders fail:\n  {}\nfirst ({order}):\n{text}",
            failures.len(),
            orders.join("\n  ")
        );
    }
}

#[test]
fn every_include_order_compiles_as_c() {
    every_order_compiles("cc", "-std=c11", "c");
}

#[test]
fn every_include_order_compiles_as_cxx() {
    every_order_compiles("c++", "-std=c++11", "cpp");
}

/// Names fixed by other issues: the protocol versions equal mosquitto's
/// definitions token for token (a legal identical redefinition), and
/// MQTT_PROTOCOL_AUTO and the key kinds are in neither library's headers.
const UNPREFIXED_ALLOWED: [&str; 2] = ["MQTT_PROTOCOL_", "MQTT_TLS_KEY_"];

#[test]
fn every_macro_of_ours_is_prefixed() {
    let header = fs::read_to_string(root().join("include/mqtt5c.h")).expect("read header");
    let stray: Vec<&str> = header
        .lines()
        .filter_map(|l| l.strip_prefix("#define "))
        .filter_map(|rest| rest.split_whitespace().next())
        .filter(|name| {
            !name.starts_with("MQTT5C_") && !UNPREFIXED_ALLOWED.iter().any(|p| name.starts_with(p))
        })
        .collect();
    assert!(
        stray.is_empty(),
        "macros without the MQTT5C_ prefix: {stray:?}"
    );
}

/// The C++ binding, first and last, with the four other headers (the C
/// header's own orders are covered above; the binding adds no macro but
/// its include guard): each name of the others still means what it says.
#[test]
fn cxx_binding_coexists_first_and_last() {
    other_headers_installed("hpp");
    let dir = std::env::temp_dir().join(format!("mqtt5c-coexist-hpp-{}", std::process::id()));
    fs::create_dir_all(&dir).expect("temp dir");
    let others: String = OTHERS.iter().map(|h| format!("#include <{h}>\n")).collect();
    let ours = "#include \"mqtt5c.hpp\"\n";
    let use_ours = "int binding(void);\nint binding(void) {\n    \
                    return mqtt5c::succeeded(mqtt5c::qos1) + static_cast<int>(mqtt5c::prop::user_property);\n}\n";
    for (i, tu) in [
        format!("{ours}{others}{BODY}{use_ours}"),
        format!("{others}{ours}{BODY}{use_ours}"),
    ]
    .iter()
    .enumerate()
    {
        let source = dir.join(format!("hpp{i}.cpp"));
        fs::write(&source, tu).expect("write TU");
        if let Err(text) = compile("c++", "-std=c++17", &source) {
            panic!("mqtt5c.hpp with the other headers ({i}):\n{text}");
        }
    }
    let _ = fs::remove_dir_all(&dir);
}

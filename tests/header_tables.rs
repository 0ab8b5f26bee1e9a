//! The reason code and property tables (src/packet/reason_table.rs,
//! property_table.rs) are the one source of their numbers, names and
//! texts: a C program compiled against the committed header prints every
//! `MQTT5C_RC_*` and `MQTT5C_PROP_*` constant, and each must equal its row;
//! the header has no such constant the tables lack; and the Rust enums,
//! the `mqtt5c::ffi` constants and `mqtt_strerror` agree with the rows.

use mqtt5c::packet::{PropertyId, ReasonCode};
use std::collections::BTreeMap;
use std::ffi::CStr;
use std::path::PathBuf;
use std::process::Command;

include!("../src/packet/reason_table.rs");
include!("../src/packet/property_table.rs");

/// A row as the tables give it: C name, number, spec name.
struct Row {
    c_name: &'static str,
    value: u8,
    text: &'static str,
}

macro_rules! reason_rows {
    ($($name:ident = $value:literal, $c:ident, $text:literal, $packets:expr;)*) => {{
        $(
            assert_eq!(ReasonCode::$name as u8, $value, stringify!($name));
            assert_eq!(ReasonCode::from_u8($value), Some(ReasonCode::$name));
            assert_eq!(ReasonCode::$name.description(), $text);
            assert_eq!(mqtt5c::ffi::$c, $value, stringify!($c));
        )*
        vec![$(Row { c_name: stringify!($c), value: $value, text: $text }),*]
    }};
}

macro_rules! property_rows {
    ($($name:ident = $id:literal, $c:ident, $kind:ident, $text:literal, $senders:expr, $doc:literal;)*) => {{
        $(
            assert_eq!(PropertyId::$name as u8, $id, stringify!($name));
            assert_eq!(PropertyId::from_u8($id), Some(PropertyId::$name));
            assert_eq!(PropertyId::$name.name(), $text);
            assert_eq!(mqtt5c::ffi::$c, $id, stringify!($c));
        )*
        vec![$(Row { c_name: stringify!($c), value: $id, text: $text }),*]
    }};
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `MQTT5C_RC_*` and `MQTT5C_PROP_*` macro the committed header
/// defines, with its value as the C compiler reads it.
fn header_constants() -> BTreeMap<String, i64> {
    let header = std::fs::read_to_string(root().join("include/mqtt5c.h")).expect("read header");
    let names: Vec<&str> = header
        .lines()
        .filter_map(|l| l.strip_prefix("#define "))
        .filter_map(|rest| rest.split_whitespace().next())
        .filter(|n| n.starts_with("MQTT5C_RC_") || n.starts_with("MQTT5C_PROP_"))
        .collect();
    let mut program = String::from("#include <stdio.h>\n#include \"mqtt5c.h\"\nint main(void) {\n");
    for n in &names {
        program.push_str(&format!(
            "    printf(\"%s %ld\\n\", \"{n}\", (long)({n}));\n"
        ));
    }
    program.push_str("    return 0;\n}\n");
    let dir = std::env::temp_dir().join(format!("mqtt5c-header-tables-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (src, exe) = (dir.join("constants.c"), dir.join("constants"));
    std::fs::write(&src, program).expect("write program");
    let out = Command::new("cc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-I"])
        .arg(root().join("include"))
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .output()
        .expect("run cc (scripts/ensure-deps.sh installs it)");
    assert!(
        out.status.success(),
        "cc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(&exe).output().expect("run the program");
    let _ = std::fs::remove_dir_all(&dir);
    String::from_utf8(out.stdout)
        .expect("ASCII")
        .lines()
        .map(|l| {
            let (name, value) = l.split_once(' ').expect("name value");
            (name.to_string(), value.parse().expect("a number"))
        })
        .collect()
}

#[test]
fn header_constants_are_the_tables() {
    let mut rows = for_each_reason_code!(reason_rows);
    assert_eq!(rows.len(), ReasonCode::ALL.len());
    let properties = for_each_property!(property_rows);
    assert_eq!(properties.len(), PropertyId::ALL.len());
    rows.extend(properties);

    let mut in_header = header_constants();
    for row in &rows {
        match in_header.remove(row.c_name) {
            Some(v) => assert_eq!(v, i64::from(row.value), "{} in the header", row.c_name),
            None => panic!("{} ({}) is missing from the header", row.c_name, row.text),
        }
    }
    assert!(
        in_header.is_empty(),
        "in the header but in no table: {in_header:?}"
    );
}

#[test]
fn strerror_gives_the_tables_text() {
    for rc in ReasonCode::ALL
        .into_iter()
        .filter(|rc| *rc != ReasonCode::Success)
    {
        let text = mqtt5c::ffi::mqtt_strerror(rc as i32);
        // SAFETY: mqtt_strerror returns a static NUL-terminated string.
        let text = unsafe { CStr::from_ptr(text) }.to_str().expect("UTF-8");
        assert_eq!(text, rc.description(), "{rc:?}");
    }
}

/// The section (banner title) each line of the header is under.
fn sections_of_header() -> Vec<(String, String)> {
    let header = std::fs::read_to_string(root().join("include/mqtt5c.h")).expect("read header");
    let mut section = String::new();
    let mut lines = Vec::new();
    let mut after_rule = false;
    for line in header.lines() {
        if line.starts_with("/* ====") {
            after_rule = true;
            continue;
        }
        if after_rule {
            section = line.trim_start_matches(" * ").to_string();
            after_rule = false;
        }
        lines.push((section.clone(), line.to_string()));
    }
    lines
}

#[test]
fn header_reads_in_order() {
    let lines = sections_of_header();
    let mut titles: Vec<&str> = lines.iter().map(|(s, _)| s.as_str()).collect();
    titles.dedup();
    assert_eq!(
        titles,
        [
            "",
            "1. Version and errors",
            "2. Objects",
            "3. Options",
            "4. Client",
            "5. Publish and subscribe",
            "6. Messages",
            "7. Properties",
            "8. The rest"
        ]
    );
    let section_of = |decl: &str| -> &str {
        let (s, _) = lines
            .iter()
            .find(|(_, l)| l.starts_with(decl))
            .unwrap_or_else(|| panic!("{decl} not in the header"));
        s
    };
    for (decl, want) in [
        ("#define MQTT5C_ERR_IO", "1. Version and errors"),
        ("#define MQTT5C_SUCCEEDED", "1. Version and errors"),
        ("typedef struct mqtt_client mqtt_client;", "2. Objects"),
        ("mqtt_options *mqtt_options_new(", "3. Options"),
        ("int mqtt_connect(", "4. Client"),
        ("int mqtt_publish(", "5. Publish and subscribe"),
        ("const char *mqtt_message_topic(", "6. Messages"),
        ("#define MQTT5C_PROP_USER_PROPERTY", "7. Properties"),
    ] {
        assert_eq!(section_of(decl), want, "{decl}");
    }
}

/// Returns, Blocks and Threads each start a line of their own.
#[test]
fn doc_labels_start_lines() {
    for (_, line) in sections_of_header() {
        for label in ["Ownership:", "Returns:", "Blocks:", "Threads:"] {
            // A label, not a mention of one ("Threads:" in quotes).
            for (at, _) in line.match_indices(&format!(" {label}")) {
                let before = line[..at].trim();
                assert!(
                    before == "*" || before.ends_with(","),
                    "{label} in the middle of: {line}"
                );
            }
        }
    }
}

/// The examples test statuses with `MQTT5C_SUCCEEDED`, never with a
/// comparison to `MQTT5C_OK` or 0x80 that misreads a success such as 0x10.
#[test]
fn examples_test_statuses_with_the_success_macro() {
    for entry in std::fs::read_dir(root().join("examples-c")).expect("examples-c") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("c") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read example");
        assert!(
            text.contains("MQTT5C_SUCCEEDED("),
            "{} never uses it",
            path.display()
        );
        for habit in ["!= MQTT5C_OK", "== MQTT5C_OK", "rc < 0 ||"] {
            assert!(!text.contains(habit), "{}: `{habit}`", path.display());
        }
    }
}

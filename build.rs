//! Generates include/mqtt5c.h with cbindgen on every build. CI fails when
//! the committed header differs from the generated one.
//!
//! The version has one source, `version` in Cargo.toml: the header's
//! MQTT5C_VERSION* macros are written here from it, `mqtt_version()` and
//! `mqtt_version_number()` read it through `env!` (src/ffi/version.rs), and
//! the Makefile takes the installed file names, the soname, mqtt5c.pc and
//! the CMake package version from it. tests/install.rs checks they agree.
//!
//! The soname and the symbol versions are not given here: rustc passes its
//! own version script to the linker for a cdylib, and a second one cannot
//! override it (lld keeps rustc's exact names over our `mqtt_*`, GNU ld
//! refuses an anonymous and a named version together). The Makefile links
//! the installed libmqtt5c.so.X.Y.Z from libmqtt5c.a instead.

use std::path::PathBuf;

#[path = "buildscript/sections.rs"]
mod sections;

// The reason code and property tables, shared with the crate: the header's
// MQTT5C_RC_* and MQTT5C_PROP_* constants come from the same rows as the
// Rust enums (cbindgen cannot see constants a macro makes).
include!("src/packet/reason_table.rs");
include!("src/packet/property_table.rs");

fn main() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=buildscript/sections.rs");
    println!("cargo:rerun-if-changed=src/packet/reason_table.rs");
    println!("cargo:rerun-if-changed=src/packet/property_table.rs");
    let mut config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    config.after_includes = Some(version_macros() + config.after_includes.as_deref().unwrap_or(""));
    // Only src/ffi is the C API: parsing the whole crate would export every
    // `pub const` of the Rust side (it once leaked DEFAULT_RECEIVE_MAXIMUM,
    // VERSION, PREFIX, MAX_LEN... unprefixed into the header).
    match cbindgen::Builder::new()
        .with_src(dir.join("src/ffi/mod.rs"))
        .with_config(config)
        .generate()
    {
        Ok(bindings) => {
            let mut raw = Vec::new();
            bindings.write(&mut raw);
            let raw = String::from_utf8(raw).expect("cbindgen writes UTF-8");
            let header = polish(&sections::in_sections(&raw, &table_constants()));
            let path = dir.join("include/mqtt5c.h");
            // Rewriting an unchanged header would only disturb mtimes.
            if std::fs::read_to_string(&path).ok().as_deref() != Some(header.as_str()) {
                std::fs::write(&path, header).expect("write include/mqtt5c.h");
            }
        }
        // A syntax error elsewhere is reported by rustc itself; keep the
        // old header rather than failing the build twice.
        Err(e) => println!("cargo:warning=cbindgen: {e}"),
    }
}

/// The header's version macros, from Cargo.toml's version.
fn version_macros() -> String {
    let part = |name: &str| -> u32 {
        let text = std::env::var(name).unwrap_or_else(|_| panic!("{name} is set by cargo"));
        let n = text.parse().expect("a numeric version part");
        assert!(n <= 0xFF, "version part {n} does not fit 0xXXYYZZ");
        n
    };
    let (major, minor, patch) = (
        part("CARGO_PKG_VERSION_MAJOR"),
        part("CARGO_PKG_VERSION_MINOR"),
        part("CARGO_PKG_VERSION_PATCH"),
    );
    let number = (major << 16) | (minor << 8) | patch;
    format!(
        "
/**
 * The version of this header, from Cargo.toml's version. The library's own,
 * at run time: mqtt_version() (\"mqtt5c X.Y.Z\") and mqtt_version_number().
 */
#define MQTT5C_VERSION \"{major}.{minor}.{patch}\"
#define MQTT5C_VERSION_MAJOR {major}
#define MQTT5C_VERSION_MINOR {minor}
#define MQTT5C_VERSION_PATCH {patch}
/**
 * 0xXXYYZZ: major, minor, patch; compare with mqtt_version_number().
 */
#define MQTT5C_VERSION_NUMBER 0x{number:06X}
"
    )
}

/// One C item (doc comment and `#define`) per row of the tables.
fn table_constants() -> Vec<String> {
    macro_rules! reason_items {
        ($($name:ident = $value:literal, $c:ident, $text:literal, $packets:expr;)*) => {
            vec![$(format!(
                "{}#define {} 0x{:02X}\n",
                doc_comment(&format!(
                    "{}: {}; in {}.",
                    stringify!($value),
                    $text,
                    stringify!($packets).replace(" |", ",")
                )),
                stringify!($c),
                $value
            )),*]
        };
    }
    macro_rules! property_items {
        ($($name:ident = $id:literal, $c:ident, $kind:ident, $text:literal, $senders:expr, $doc:literal;)*) => {
            vec![$(format!(
                "{}#define {} 0x{:02X}\n",
                doc_comment(&format!("{} {}", $text, $doc)),
                stringify!($c),
                $id
            )),*]
        };
    }
    let mut items: Vec<String> = for_each_reason_code!(reason_items);
    items.extend(for_each_property!(property_items));
    items
}

/// `text` as a doc comment in cbindgen's style, wrapped before column 80.
fn doc_comment(text: &str) -> String {
    let mut out = String::from("/**\n");
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > 72 {
            out.push_str(&format!(" * {line}\n"));
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push_str(&format!(" * {line}\n */\n"));
    out
}

/// What cbindgen cannot be told: negative constants in parentheses (so
/// `x - MQTT5C_ERR_IO` stays valid C).
fn polish(header: &str) -> String {
    let mut out = String::with_capacity(header.len() + 64);
    for line in header.lines() {
        let mut parts = line.splitn(3, ' ');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("#define"), Some(name), Some(value))
                if value.starts_with('-') && value[1..].bytes().all(|b| b.is_ascii_digit()) =>
            {
                out.push_str(&format!("#define {name} ({value})"));
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

//! What can be checked of bindings/swift without a Swift toolchain (none
//! on the project's machines): its module map builds the C header as the
//! Clang module `mqtt5c` (the way Swift's Clang importer builds it), and
//! every C name its Swift layer uses is declared in the header.

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `mqtt_*`, `MQTT5C_*` and `MQTT_*` identifiers of `text`.
fn c_names(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("mqtt_") || w.starts_with("MQTT5C_") || w.starts_with("MQTT_"))
        .map(str::to_string)
        .collect()
}

/// Whether `name` is a word of `header`, or, ending with `_` (a family
/// such as `MQTT5C_ERR_` in a comment), the start of one.
fn is_declared(header: &str, name: &str) -> bool {
    header
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .any(|w| w == name || (name.ends_with('_') && w.starts_with(name)))
}

#[test]
fn the_swift_layer_uses_only_names_the_header_declares() {
    let header = fs::read_to_string(root().join("include/mqtt5c.h")).expect("header");
    let swift = fs::read_to_string(root().join("bindings/swift/Sources/Mqtt5cSwift/Mqtt5c.swift"))
        .expect("Swift source");
    let names = c_names(&swift);
    assert!(names.len() > 20, "too few C names found: {names:?}");
    let missing: Vec<_> = names.iter().filter(|n| !is_declared(&header, n)).collect();
    assert!(
        missing.is_empty(),
        "Mqtt5c.swift uses undeclared names: {missing:?}"
    );
    // Swift imports no function-like macro: the success test must be the function.
    assert!(
        !swift.contains("MQTT5C_SUCCEEDED"),
        "use mqtt_succeeded() from Swift"
    );
}

#[test]
fn the_module_map_builds_the_header_as_a_clang_module() {
    let clang = std::env::var("CLANG").unwrap_or_else(|_| "clang".into());
    if Command::new(&clang).arg("--version").output().is_err() {
        eprintln!("skipped: no {clang} to build the Clang module with");
        return;
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("swift-module");
    fs::create_dir_all(&dir).expect("temp dir");
    let src = dir.join("probe.m");
    fs::write(
        &src,
        "@import mqtt5c;\n\
         int probe(void);\n\
         int probe(void) { return mqtt_succeeded(MQTT5C_OK) && MQTT5C_ERR_INTERNAL < 0; }\n",
    )
    .expect("write probe");
    let out = Command::new(&clang)
        .args(["-fmodules", "-Wall", "-Werror", "-x", "objective-c", "-c"])
        .arg(format!(
            "-fmodules-cache-path={}",
            dir.join("cache").display()
        ))
        .arg(format!(
            "-fmodule-map-file={}",
            root()
                .join("bindings/swift/Sources/mqtt5c/module.modulemap")
                .display()
        ))
        .arg("-I")
        .arg(root().join("include"))
        .arg(&src)
        .arg("-o")
        .arg(dir.join("probe.o"))
        .output()
        .expect("run clang");
    assert!(
        out.status.success(),
        "the module map does not build:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

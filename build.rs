//! Generates include/mqtt5c.h with cbindgen on every build. CI fails when
//! the committed header differs from the generated one.

use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    match cbindgen::Builder::new()
        .with_crate(&dir)
        .with_config(config)
        .generate()
    {
        Ok(bindings) => {
            let mut raw = Vec::new();
            bindings.write(&mut raw);
            let header = polish(&String::from_utf8(raw).expect("cbindgen writes UTF-8"));
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

/// What cbindgen cannot be told: negative constants in parentheses (so
/// `x - MQTT_ERR_IO` stays valid C) and the version number in hex.
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
            (Some("#define"), Some("MQTT5C_VERSION_NUMBER"), Some(value)) => {
                let n: u32 = value.parse().expect("a decimal version number");
                out.push_str(&format!("#define MQTT5C_VERSION_NUMBER 0x{n:06X}"));
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

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
            bindings.write_to_file(dir.join("include/mqtt5c.h"));
        }
        // A syntax error elsewhere is reported by rustc itself; keep the
        // old header rather than failing the build twice.
        Err(e) => println!("cargo:warning=cbindgen: {e}"),
    }
}

//! The documentation stays true to the code: the README's first C example
//! and every C block of docs/*.md compile against the committed header with
//! the flags the C tests use, every mqtt5c, libmosquitto and Paho C name
//! docs/*.md mentions exists in its header,
//! the README's layout names every file in examples-c/, and the URL schemes
//! listed for `mqtt_connect` (header and README) are exactly those that
//! parse.

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// The body of the first fenced block whose info string is `lang`.
fn first_block(text: &str, lang: &str) -> Option<String> {
    let mut lines = text.lines();
    lines.find(|l| l.trim_end() == format!("```{lang}"))?;
    let body: Vec<&str> = lines.take_while(|l| !l.starts_with("```")).collect();
    Some(body.join("\n") + "\n")
}

/// The text of the section under the heading `## title`, up to the next
/// `## ` heading.
fn section<'a>(text: &'a str, title: &str) -> &'a str {
    let start = text
        .find(&format!("\n## {title}\n"))
        .unwrap_or_else(|| panic!("README has no '## {title}' section"))
        + 1;
    let end = text[start + 3..]
        .find("\n## ")
        .map_or(text.len(), |i| start + 3 + i);
    &text[start..end]
}

/// The schemes written as `scheme://` in `text`.
fn schemes_in(text: &str) -> BTreeSet<String> {
    text.match_indices("://")
        .filter_map(|(i, _)| {
            let before = &text[..i];
            let start = before
                .rfind(|c: char| !c.is_ascii_alphanumeric())
                .map_or(0, |j| j + 1);
            let scheme = &before[start..];
            (!scheme.is_empty()).then(|| scheme.to_ascii_lowercase())
        })
        .collect()
}

fn supported() -> BTreeSet<String> {
    mqtt5c::transport::SCHEMES
        .iter()
        .map(|s| s.to_string())
        .collect()
}

#[test]
fn readme_first_c_example_compiles() {
    let code = first_block(&read("README.md"), "c").expect("README has a ```c block");
    assert!(
        code.contains("int main"),
        "the README's first C block is meant to be a whole program:\n{code}"
    );
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("readme-example");
    fs::create_dir_all(&dir).expect("create temp dir");
    let src = dir.join("readme_example.c");
    fs::write(&src, &code).expect("write example");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = Command::new(&cc)
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-c"])
        .arg("-I")
        .arg(root().join("include"))
        .arg(&src)
        .arg("-o")
        .arg(dir.join("readme_example.o"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cc}: {e}"));
    assert!(
        out.status.success(),
        "the README's first C example does not compile:\n{}\n{code}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The fenced blocks of `text` whose info string is `c` (a whole
/// translation unit) or `c fragment` (statements, compiled inside a
/// function given `mqtt_options *o` and `mqtt_client *c`), as compilable
/// sources, with the line each starts on.
fn c_blocks(text: &str) -> Vec<(usize, String)> {
    const PRELUDE: &str = "#include <stdbool.h>\n#include <stdint.h>\n#include <stdio.h>\n\
                           #include <stdlib.h>\n#include <string.h>\n#include <mqtt5c.h>\n";
    let mut blocks = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        let info = match line.strip_prefix("```") {
            Some(info) => info.trim(),
            None => continue,
        };
        let body: Vec<&str> = lines
            .by_ref()
            .map(|(_, l)| l)
            .take_while(|l| !l.starts_with("```"))
            .collect();
        let body = body.join("\n") + "\n";
        match info {
            "c" => blocks.push((n + 1, body)),
            "c fragment" => blocks.push((
                n + 1,
                format!(
                    "{PRELUDE}void doc_fragment(mqtt_options *o, mqtt_client *c);\n\
                     void doc_fragment(mqtt_options *o, mqtt_client *c) {{\n\
                     (void)o;\n(void)c;\n{body}}}\n"
                ),
            )),
            _ => {}
        }
    }
    blocks
}

#[test]
fn every_c_block_of_the_docs_compiles() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("docs-blocks");
    fs::create_dir_all(&dir).expect("create temp dir");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let mut failures = Vec::new();
    let mut compiled = 0;
    for entry in fs::read_dir(root().join("docs")).expect("docs/") {
        let path = entry.expect("dir entry").path();
        if path.extension().map_or(true, |e| e != "md") {
            continue;
        }
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let text = fs::read_to_string(&path).expect("read doc");
        for (line, code) in c_blocks(&text) {
            let src = dir.join(format!("{name}_{line}.c"));
            fs::write(&src, &code).expect("write block");
            let out = Command::new(&cc)
                .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-c"])
                .arg("-I")
                .arg(root().join("include"))
                .arg(&src)
                .arg("-o")
                .arg(src.with_extension("o"))
                .output()
                .unwrap_or_else(|e| panic!("cannot run {cc}: {e}"));
            compiled += 1;
            if !out.status.success() {
                failures.push(format!(
                    "docs/{name}.md line {line}:\n{}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
    }
    assert!(
        compiled >= 10,
        "expected docs/guide.md's C blocks, compiled {compiled}"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The identifiers of `text` that start with one of `prefixes`, except file
/// names (`mqtt_protocol.h`) and environment variables being set
/// (`MQTT5C_SOAK=1`), deduplicated.
fn names_with_prefix(text: &str, prefixes: &[&str]) -> BTreeSet<String> {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find(is_ident) {
        let after = &rest[start..];
        let len = after.find(|c| !is_ident(c)).unwrap_or(after.len());
        let (word, tail) = after.split_at(len);
        let preceded = rest[..start].ends_with(is_ident);
        if !preceded
            && !tail.starts_with(".h")
            && !tail.starts_with('=')
            && prefixes.iter().any(|p| word.starts_with(p))
        {
            names.insert(word.to_string());
        }
        rest = tail;
    }
    names
}

/// Whether `name` occurs in `text` as a whole identifier, or, when it ends
/// with `_` (a family such as `MQTT5C_ERR_`), as the start of one.
fn declares(text: &str, name: &str) -> bool {
    text.match_indices(name).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + name.len()..].chars().next();
        let boundary =
            |c: Option<char>| c.map_or(true, |c| !(c.is_ascii_alphanumeric() || c == '_'));
        boundary(before) && (name.ends_with('_') || boundary(after))
    })
}

fn docs_text() -> String {
    let mut all = String::new();
    for entry in fs::read_dir(root().join("docs")).expect("docs/") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_some_and(|e| e == "md") {
            all += &fs::read_to_string(&path).expect("read doc");
        }
    }
    all
}

#[test]
fn every_mqtt5c_name_in_the_docs_is_in_the_header() {
    let header = read("include/mqtt5c.h");
    let names = names_with_prefix(
        &docs_text(),
        &["mqtt_", "MQTT5C_", "MQTT_PROTOCOL_", "MQTT_TLS_KEY_"],
    );
    assert!(names.len() > 50, "too few names found: {names:?}");
    // libmosquitto's MQTT 3.1, named in docs/protocol-versions.md as what
    // mqtt5c does not support.
    let theirs_only = ["MQTT_PROTOCOL_V31"];
    let missing: Vec<_> = names
        .iter()
        .filter(|n| !declares(&header, n) && !theirs_only.contains(&n.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/*.md name what include/mqtt5c.h does not declare: {missing:?}"
    );
}

/// The names a program migrating from libmosquitto or Paho C uses are
/// real: checked against the headers of libmosquitto-dev and
/// libpaho-mqtt-dev (scripts/ensure-deps.sh installs them).
#[test]
fn every_libmosquitto_and_paho_name_in_the_docs_is_real() {
    let headers = [
        "mosquitto.h",
        "mqtt_protocol.h",
        "MQTTAsync.h",
        "MQTTClient.h",
        "MQTTClientPersistence.h",
        "MQTTProperties.h",
    ];
    let theirs: String = headers
        .iter()
        .map(|h| {
            fs::read_to_string(PathBuf::from("/usr/include").join(h)).unwrap_or_else(|e| {
                panic!(
                    "/usr/include/{h}: {e}; install libmosquitto-dev and libpaho-mqtt-dev \
                     (scripts/ensure-deps.sh)"
                )
            })
        })
        .collect();
    let names = names_with_prefix(
        &docs_text(),
        &[
            "mosquitto_",
            "MOSQ_",
            "MQTTAsync_",
            "MQTTClient_",
            "MQTTVERSION_",
            "MQTTCLIENT_",
            "MQTTASYNC_",
            "MQTTProperties_",
        ],
    );
    assert!(names.len() > 50, "too few names found: {names:?}");
    let missing: Vec<_> = names.iter().filter(|n| !declares(&theirs, n)).collect();
    assert!(
        missing.is_empty(),
        "docs/*.md name what the libmosquitto and Paho headers do not declare: {missing:?}"
    );
}

#[test]
fn readme_layout_lists_every_example_file() {
    let readme = read("README.md");
    let layout = section(&readme, "Layout");
    let mut missing = Vec::new();
    for entry in fs::read_dir(root().join("examples-c")).expect("examples-c/") {
        let name = entry.expect("dir entry").file_name();
        let name = name.to_string_lossy();
        if !layout.contains(name.as_ref()) {
            missing.push(name.into_owned());
        }
    }
    assert!(
        missing.is_empty(),
        "README's Layout does not name examples-c/ files {missing:?}:\n{layout}"
    );
}

#[test]
fn header_lists_exactly_the_url_schemes_that_parse() {
    let header = read("include/mqtt5c.h");
    let decl = header
        .find("int mqtt_connect(")
        .expect("mqtt_connect in the header");
    let doc_start = header[..decl].rfind("/**").expect("mqtt_connect's doc");
    assert_eq!(
        schemes_in(&header[doc_start..decl]),
        supported(),
        "mqtt_connect's doc comment"
    );
}

#[test]
fn readme_lists_exactly_the_url_schemes_that_parse() {
    let readme = read("README.md");
    let table: String = section(&readme, "Transports and TLS")
        .lines()
        .take_while(|l| !l.starts_with("```"))
        .filter(|l| l.starts_with('|'))
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(schemes_in(&table), supported(), "README's URL table");
}

#[test]
fn every_listed_scheme_parses() {
    for scheme in mqtt5c::transport::SCHEMES {
        let url = if *scheme == "unix" {
            "unix:///tmp/socket".to_string()
        } else {
            format!("{}://localhost", scheme.to_ascii_uppercase())
        };
        assert!(
            mqtt5c::transport::BrokerUrl::parse(&url).is_ok(),
            "{url} does not parse"
        );
    }
    assert!(mqtt5c::transport::BrokerUrl::parse("http://localhost").is_err());
}

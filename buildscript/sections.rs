//! Puts the header in reading order. cbindgen writes every constant, then
//! every type, then every function; a reader wants one topic at a time:
//! version and errors, the objects, options, client, publish and
//! subscribe, messages, properties, then the rest, each under a banner.
//! Items are assigned to sections by name (`SECTIONS`), keep cbindgen's
//! order within a section (constants, types, functions), and a callback
//! type moves up to the first section that uses it, so that C sees every
//! name declared before its use. Each object's doc gets the list of its
//! functions, computed here so that it cannot go stale.

struct Section {
    title: &'static str,
    intro: &'static str,
    /// Exact names, or prefixes ending in `*`; an exact name wins over a
    /// prefix, a longer prefix over a shorter one.
    names: &'static [&'static str],
}

const SECTIONS: &[Section] = &[
    Section {
        title: "Version and errors",
        intro: "What a status means (MQTT5C_SUCCEEDED), the library's own codes \
                (MQTT5C_ERR_*), the broker's reason codes (MQTT5C_RC_*) and \
                their texts.",
        names: &[
            "MQTT5C_VERSION*",
            "MQTT5C_SUCCEEDED",
            "MQTT5C_OK",
            "MQTT5C_ERR_*",
            "MQTT5C_RC_*",
            "mqtt_version*",
            "mqtt_strerror",
            "mqtt_succeeded",
            "mqtt_last_error",
        ],
    },
    Section {
        title: "Objects",
        intro: "The handles the API works on, each with the list of its functions. \
                All are opaque: only pointers are passed.",
        names: &[],
    },
    Section {
        title: "Options",
        intro: "How a client connects, set before mqtt_client_new() (which copies \
                them).",
        names: &[
            "mqtt_options_*",
            "MQTT5C_QUEUE_*",
            "MQTT5C_PROTOCOL_*",
            "MQTT_PROTOCOL_*",
            "MQTT_TLS_KEY_*",
        ],
    },
    Section {
        title: "Client",
        intro: "Create, connect, follow the connection, disconnect, free.",
        names: &[
            "mqtt_client_*",
            "mqtt_connect",
            "mqtt_disconnect",
            "mqtt_is_connected",
            "mqtt_session_present",
            "mqtt_connack_properties",
            "mqtt_disconnect_properties",
            "mqtt_set_message_callback",
            "mqtt_set_connection_callback",
            "mqtt_message_cb",
            "mqtt_connection_cb",
            "MQTT5C_EVENT_*",
            "MQTT5C_STAT_*",
            "mqtt5c_stats",
            "mqtt_set_log_callback",
            "mqtt_log_cb",
            "mqtt_free_cb",
            "MQTT5C_LOG_*",
        ],
    },
    Section {
        title: "Publish and subscribe",
        intro: "",
        names: &[
            "mqtt_publish*",
            "mqtt_subscribe*",
            "mqtt_unsubscribe*",
            "MQTT5C_QOS*",
            "MQTT5C_SUB_*",
        ],
    },
    Section {
        title: "Messages",
        intro: "A received message, borrowed by the message callback; \
                mqtt_message_copy() keeps one.",
        names: &["mqtt_message_*", "mqtt_ack"],
    },
    Section {
        title: "Properties",
        intro: "MQTT v5 properties of a packet, by identifier (MQTT5C_PROP_*).",
        names: &["mqtt_properties_*", "MQTT5C_PROP_*"],
    },
    Section {
        title: "The rest",
        intro: "Enhanced authentication, request/response, failover and the runtime.",
        names: &[],
    },
];
const OBJECTS: usize = 1;
/// The objects in the order of their sections; others follow.
const OBJECT_ORDER: &[&str] = &[
    "mqtt_options",
    "mqtt_client",
    "mqtt_message",
    "mqtt_properties",
];
const REST: usize = SECTIONS.len() - 1;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Macro,
    Object,
    Type,
    Function,
}

struct Item {
    text: String,
    name: String,
    kind: Kind,
    section: usize,
}

/// Reorders cbindgen's output (see the module doc). `header` is what
/// cbindgen wrote, with its one `extern "C"` block around the functions.
pub fn in_sections(header: &str, extra_items: &[String]) -> String {
    const OPEN: &str = "#ifdef __cplusplus\nextern \"C\" {\n#endif // __cplusplus\n";
    const CLOSE: &str = "#ifdef __cplusplus\n}  // extern \"C\"\n#endif  // __cplusplus\n";
    let body_start = header.find("\n\n/**").expect("an item after the includes") + 2;
    let close = header.rfind(CLOSE).expect("cbindgen closes extern \"C\"");
    let body = header[body_start..close].replacen(OPEN, "", 1);
    let mut items: Vec<Item> = chunks(&body)
        .into_iter()
        .chain(extra_items.iter().map(|t| t.trim().to_string()))
        .map(parse)
        .collect();
    hoist_types(&mut items);
    items.sort_by_key(|i| (i.section, i.kind, rank(i)));
    list_functions_of_objects(&mut items);

    let mut out = String::from(&header[..body_start]);
    out.push_str(OPEN);
    for (n, section) in SECTIONS.iter().enumerate() {
        let texts: Vec<&str> = items
            .iter()
            .filter(|i| i.section == n)
            .map(|i| i.text.as_str())
            .collect();
        if texts.is_empty() {
            continue;
        }
        out.push('\n');
        out.push_str(&banner(n + 1, section));
        out.push('\n');
        out.push_str(&texts.join("\n\n"));
        out.push_str("\n\n");
    }
    out.push_str(CLOSE);
    out.push_str(&header[close + CLOSE.len()..]);
    out
}

/// Within a section and kind: objects in `OBJECT_ORDER`, and a section's
/// constructors and destructors before its other functions.
fn rank(item: &Item) -> usize {
    match item.kind {
        Kind::Object => OBJECT_ORDER
            .iter()
            .position(|o| *o == item.name)
            .unwrap_or(OBJECT_ORDER.len()),
        Kind::Function if item.name.ends_with("_new") => 0,
        Kind::Function if item.name.ends_with("_free") => 1,
        _ => 2,
    }
}

fn banner(number: usize, section: &Section) -> String {
    let rule = "=".repeat(74);
    let mut b = format!("/* {rule}\n * {number}. {}\n", section.title);
    if !section.intro.is_empty() {
        b.push_str(" *\n");
        for line in wrap(section.intro, 72) {
            b.push_str(&format!(" * {line}\n"));
        }
    }
    b.push_str(&format!(" * {rule} */\n"));
    b
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let line = lines.last_mut().expect("one line at least");
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(word.to_string());
        } else {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
    }
    lines
}

/// The items: text between blank lines, except that a piece that does not
/// start a declaration at column 0 (inside a struct or enum body, say)
/// belongs to the one before.
fn chunks(body: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for piece in body.split("\n\n").filter(|t| !t.trim().is_empty()) {
        let piece = piece.trim_matches('\n');
        let starts_item = piece.starts_with("/**")
            || piece.starts_with(|c: char| c.is_ascii_alphabetic() || c == '#' || c == '_');
        match out.last_mut() {
            Some(last) if !starts_item || is_open(last) => {
                last.push_str("\n\n");
                last.push_str(piece);
            }
            _ => out.push(piece.to_string()),
        }
    }
    out
}

/// Whether an item's braces are not closed yet.
fn is_open(text: &str) -> bool {
    text.matches('{').count() > text.matches('}').count()
}

/// The declaration line of an item: its first line outside the doc.
fn declaration(text: &str) -> &str {
    text.lines()
        .find(|l| !(l.starts_with("/**") || l.starts_with(" *")))
        .unwrap_or("")
}

fn parse(text: String) -> Item {
    let decl = declaration(&text).to_string();
    let ident = |s: &str| -> String {
        s.trim_start_matches('*')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let (name, kind) = if let Some(rest) = decl.strip_prefix("#define ") {
        (ident(rest), Kind::Macro)
    } else if decl.starts_with("typedef struct ") && !decl.contains('{') {
        let last = decl.trim_end_matches(';').rsplit(' ').next().unwrap_or("");
        (ident(last), Kind::Object)
    } else if let Some(at) = decl.find("(*") {
        (ident(&decl[at + 2..]), Kind::Type)
    } else if decl.contains('{') {
        // A struct, enum or union with a body: named after its keyword,
        // else (anonymous) after its closing brace.
        let tag = decl
            .split_whitespace()
            .find(|w| !["typedef", "struct", "enum", "union", "{"].contains(w) && !w.is_empty());
        let after_body = text.rsplit('}').next().unwrap_or("");
        (ident(tag.unwrap_or(after_body.trim())), Kind::Type)
    } else if decl.starts_with("typedef ") {
        let last = decl.trim_end_matches(';').rsplit(' ').next().unwrap_or("");
        (ident(last), Kind::Type)
    } else {
        let before = &decl[..decl.find('(').unwrap_or(decl.len())];
        (
            ident(before.rsplit(' ').next().unwrap_or("")),
            Kind::Function,
        )
    };
    // An item we cannot name still goes into the header, with the rest.
    let section = if name.is_empty() {
        REST
    } else if kind == Kind::Object {
        OBJECTS
    } else {
        section_of(&name)
    };
    Item {
        text,
        name,
        kind,
        section,
    }
}

fn section_of(name: &str) -> usize {
    if let Some(n) = SECTIONS.iter().position(|s| s.names.contains(&name)) {
        return n;
    }
    let mut best = (0, REST);
    for (n, section) in SECTIONS.iter().enumerate() {
        for prefix in section.names.iter().filter_map(|p| p.strip_suffix('*')) {
            if name.starts_with(prefix) && prefix.len() > best.0 {
                best = (prefix.len(), n);
            }
        }
    }
    best.1
}

/// Whether `text` uses `name` as a whole identifier.
fn mentions(text: &str, name: &str) -> bool {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(name).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + name.len()..].chars().next();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

/// A type moves up to the first section that uses it.
fn hoist_types(items: &mut [Item]) {
    for t in 0..items.len() {
        if items[t].kind != Kind::Type {
            continue;
        }
        let first_use = items
            .iter()
            .enumerate()
            .filter(|(u, i)| *u != t && mentions(&i.text, &items[t].name))
            .map(|(_, i)| i.section)
            .min();
        if let Some(s) = first_use.filter(|s| *s < items[t].section) {
            items[t].section = s;
        }
    }
}

/// Appends "Functions: ..." to each object's doc: those named after it
/// (`mqtt_options_*`) and those whose first parameter is one.
fn list_functions_of_objects(items: &mut [Item]) {
    for o in 0..items.len() {
        if items[o].kind != Kind::Object {
            continue;
        }
        let object = items[o].name.clone();
        let functions: Vec<String> = items
            .iter()
            .filter(|i| i.kind == Kind::Function)
            .filter(|i| {
                let first_param = i.text.lines().last().unwrap_or("").split(['(', ',']).nth(1);
                i.name.starts_with(&format!("{object}_"))
                    || first_param.is_some_and(|p| mentions(p, &object))
            })
            .map(|i| format!("{}(),", i.name))
            .collect();
        if functions.is_empty() {
            continue;
        }
        let list = format!("Functions: {}", functions.join(" "));
        let list = list.trim_end_matches(',').to_string() + ".";
        let mut doc = String::from(" *\n");
        for line in wrap(&list, 72) {
            doc.push_str(&format!(" * {line}\n"));
        }
        let text = &mut items[o].text;
        if let Some(end) = text.find(" */") {
            text.insert_str(end, &doc);
        }
    }
}

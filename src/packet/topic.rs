//! Topic name and topic filter rules (spec section 4.7) and matching.

/// Prefix of a shared subscription filter (spec section 4.8.2).
const SHARE_PREFIX: &str = "$share/";

/// Longest string the wire format can carry.
const MAX_LEN: usize = u16::MAX as usize;

/// A topic name for PUBLISH: non-empty, no `+` or `#`, at most 65535 bytes, no U+0000.
pub fn is_valid_topic_name(topic: &str) -> bool {
    !topic.is_empty()
        && topic.len() <= MAX_LEN
        && !topic.bytes().any(|b| matches!(b, b'+' | b'#' | 0))
}

/// A topic filter: `#` only as the whole last level, `+` only as a whole level,
/// `$share/{group}/{filter}` with a non-empty group without wildcards and a valid filter.
pub fn is_valid_topic_filter(filter: &str) -> bool {
    if filter.is_empty() || filter.len() > MAX_LEN || filter.contains('\0') {
        return false;
    }
    match filter.strip_prefix(SHARE_PREFIX) {
        Some(rest) => match rest.split_once('/') {
            // ShareName: at least one character, no `/`, `+` or `#`.
            Some((group, inner)) => {
                !group.is_empty()
                    && !group.contains(['+', '#'])
                    && !inner.is_empty()
                    && is_valid_plain_filter(inner)
            }
            None => false,
        },
        None => is_valid_plain_filter(filter),
    }
}

/// The level rules for a non-empty filter without the `$share/` prefix.
fn is_valid_plain_filter(filter: &str) -> bool {
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        let is_last = levels.peek().is_none();
        if level.contains('#') && !(level == "#" && is_last) {
            return false;
        }
        if level.contains('+') && level != "+" {
            return false;
        }
    }
    true
}

/// Whether `topic` matches `filter` (a `$share/group/` prefix is ignored;
/// topics starting with `$` are not matched by a leading wildcard).
pub fn matches(filter: &str, topic: &str) -> bool {
    let filter = strip_share(filter);
    if topic.starts_with('$') && filter.starts_with(['+', '#']) {
        return false;
    }
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            // `#` also matches the parent level: `a/#` matches `a`.
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(fl), Some(tl)) if fl == tl => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// The filter a shared subscription applies, without `$share/{group}/`.
fn strip_share(filter: &str) -> &str {
    filter
        .strip_prefix(SHARE_PREFIX)
        .and_then(|rest| rest.split_once('/'))
        .map_or(filter, |(_, inner)| inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names() {
        for ok in ["a", "a/b", "/", "a//b", "$SYS/x", " ", "ä/ö"] {
            assert!(is_valid_topic_name(ok), "{ok:?}");
        }
        for bad in ["", "a/+", "#", "a/b#", "a\0b"] {
            assert!(!is_valid_topic_name(bad), "{bad:?}");
        }
        assert!(is_valid_topic_name(&"x".repeat(65535)));
        assert!(!is_valid_topic_name(&"x".repeat(65536)));
    }

    #[test]
    fn topic_filters() {
        for ok in [
            "a",
            "#",
            "+",
            "a/#",
            "a/+/b",
            "+/+",
            "/+",
            "a//b",
            "$SYS/#",
            "$share/g/a/#",
            "$share/g/#",
            "$share/g/+",
            "$share",
            "$sharex/+",
        ] {
            assert!(is_valid_topic_filter(ok), "{ok:?}");
        }
        for bad in [
            "",
            "a#",
            "a/#/b",
            "#/a",
            "a+",
            "a/+b",
            "++",
            "a\0",
            "$share/",
            "$share/g",
            "$share/g/",
            "$share//a",
            "$share/g+/a",
            "$share/#/a",
            "$share/g/a#",
        ] {
            assert!(!is_valid_topic_filter(bad), "{bad:?}");
        }
    }

    #[test]
    fn matching() {
        let yes = [
            ("a/b", "a/b"),
            ("a/+", "a/b"),
            ("a/#", "a/b/c"),
            ("a/#", "a"),
            ("#", "a/b"),
            ("+/+", "/x"),
            ("+", ""),
            ("a/+/c", "a/b/c"),
            ("$SYS/#", "$SYS/load"),
            ("$SYS/+", "$SYS/x"),
            ("$share/g/a/+", "a/b"),
        ];
        for (f, t) in yes {
            assert!(matches(f, t), "{f:?} should match {t:?}");
        }
        let no = [
            ("a/b", "a/c"),
            ("a/+", "a"),
            ("a/+", "a/b/c"),
            ("a/b", "a/b/c"),
            ("a/b/c", "a/b"),
            ("#", "$SYS/x"),
            ("+/x", "$SYS/x"),
            ("$share/g/#", "$SYS/x"),
            ("a", "A"),
        ];
        for (f, t) in no {
            assert!(!matches(f, t), "{f:?} should not match {t:?}");
        }
    }
}

//! Topic name and topic filter rules (spec section 4.7) and matching.

/// A topic name for PUBLISH: non-empty, no `+` or `#`, at most 65535 bytes, no U+0000.
pub fn is_valid_topic_name(topic: &str) -> bool {
    let _ = topic;
    todo!()
}

/// A topic filter: `#` only as the whole last level, `+` only as a whole level,
/// `$share/{group}/{filter}` with a non-empty group without wildcards and a valid filter.
pub fn is_valid_topic_filter(filter: &str) -> bool {
    let _ = filter;
    todo!()
}

/// Whether `topic` matches `filter` (a `$share/group/` prefix is ignored;
/// topics starting with `$` are not matched by a leading wildcard).
pub fn matches(filter: &str, topic: &str) -> bool {
    let _ = (filter, topic);
    todo!()
}

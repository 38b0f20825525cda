//! JSON paths in the `$.nodes[0].output_rule.score` form used by every error.

/// `base.key`, or `base["key"]` when the key is not a plain identifier, so a
/// path stays unambiguous for keys such as `a.b`.
pub(crate) fn key(base: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain {
        format!("{base}.{key}")
    } else {
        format!("{base}[{}]", serde_json::Value::String(key.to_owned()))
    }
}

pub(crate) fn index(base: &str, index: usize) -> String {
    format!("{base}[{index}]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_keys_that_are_not_identifiers() {
        assert_eq!(key("$", "output_rule"), "$.output_rule");
        assert_eq!(key("$.reuse", "a.b"), "$.reuse[\"a.b\"]");
        assert_eq!(index("$.nodes", 2), "$.nodes[2]");
    }
}

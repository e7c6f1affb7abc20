//! `infra render`: the template of a stack straight from a `Pulumi.<stack>.yaml` file, without
//! Pulumi. The one renderer every check and the local run call, so none of them builds
//! `PULUMI_CONFIG` its own way.
//!
//! A stack file's `config:` map is flat (`namespace:key: value`), which is all this program's
//! stacks use; anything else (a nested value, an encrypted `secure:` value) is refused with the
//! line that has it, and a secret is passed with `--set` instead.

use std::collections::BTreeMap;

/// The `config:` map of a stack file: full key (`aws:region`, `cross-account-relay:side`) to
/// its value as `PULUMI_CONFIG` carries it (a string).
pub fn parse(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut config = BTreeMap::new();
    let mut in_config = false;
    for (number, line) in text.lines().enumerate() {
        let at = || format!("line {}", number + 1);
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if !line.starts_with(' ') {
            in_config = trimmed == "config:";
            continue;
        }
        if !in_config {
            continue;
        }
        let (key, value) = trimmed
            .split_once(':')
            .and_then(|(ns, rest)| {
                let (key, value) = rest
                    .split_once(": ")
                    .or_else(|| rest.strip_suffix(':').map(|k| (k, "")))?;
                Some((format!("{ns}:{key}"), value))
            })
            .ok_or_else(|| format!("{}: expected `namespace:key: value`", at()))?;
        let value = scalar(value.trim()).ok_or_else(|| {
            format!(
                "{}: `{key}` is not a plain value (encrypted or nested values are not read; pass it with --set {key}=...)",
                at()
            )
        })?;
        config.insert(key, value);
    }
    Ok(config)
}

/// A YAML scalar as a string: quoted or bare, with a trailing comment removed.
fn scalar(value: &str) -> Option<String> {
    let unquoted = |q: char| {
        value
            .strip_prefix(q)
            .and_then(|v| v.split_once(q))
            .filter(|(_, rest)| rest.trim().is_empty() || rest.trim().starts_with('#'))
            .map(|(v, _)| v.to_string())
    };
    if value.starts_with('"') {
        return unquoted('"').filter(|v| !v.contains('\\'));
    }
    if value.starts_with('\'') {
        return unquoted('\'');
    }
    let bare = value.split(" #").next().unwrap_or("").trim();
    if bare.is_empty() || bare.starts_with(['{', '[', '|', '>', '&', '*', '!']) {
        return None;
    }
    Some(bare.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_flat_config_map() {
        let text = "# comment\nencryptionsalt: v1:abc\nconfig:\n  aws:region: eu-west-1\n  # note\n  p:count: \"5\"\n  p:expr: rate(5 minutes)  # every 5\n  p:quoted: 'a b'\n";
        let config = parse(text).unwrap();
        assert_eq!(config["aws:region"], "eu-west-1");
        assert_eq!(config["p:count"], "5");
        assert_eq!(config["p:expr"], "rate(5 minutes)");
        assert_eq!(config["p:quoted"], "a b");
        assert_eq!(config.len(), 4);
    }

    #[test]
    fn refuses_what_it_cannot_read_and_names_the_line() {
        let secure = "config:\n  p:externalId:\n    secure: AAABAL\n";
        let err = parse(secure).unwrap_err();
        assert!(
            err.contains("line 2") && err.contains("--set p:externalId"),
            "{err}"
        );
        let nested = "config:\n  p:tags: {a: b}\n";
        assert!(parse(nested).unwrap_err().contains("line 2"));
        let no_namespace = "config:\n  region eu-west-1\n";
        assert!(parse(no_namespace).unwrap_err().contains("namespace:key"));
    }
}

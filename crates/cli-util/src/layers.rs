//! The one way a setting is resolved: built-in default < config file < `GPUFLOW_*`
//! environment variable < flag. Each value remembers where it came from, so that a
//! command can say why it is what it is, and an error can name what to fix.

use std::fmt;

use serde::Serialize;

/// Where a setting came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "name")]
pub enum Source {
    /// Built in.
    Default,
    /// The renter's `config.toml`, the profile of this name.
    File(String),
    /// A key of a binary's own config file, described (`` `rpc` in /etc/gpuflow/node.toml ``).
    Config(String),
    /// This environment variable.
    Env(String),
    /// This flag.
    Flag(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("default"),
            Self::File(profile) => write!(f, "config file, profile {profile}"),
            Self::Config(key) => f.write_str(key),
            Self::Env(var) => write!(f, "environment {var}"),
            Self::Flag(flag) => write!(f, "flag {flag}"),
        }
    }
}

/// A resolved setting.
#[derive(Clone, Debug, Serialize)]
pub struct Setting<T> {
    /// Its value.
    pub value: T,
    /// Where it came from.
    pub source: Source,
}

impl<T> Setting<T> {
    /// A built-in default.
    pub fn default_value(value: T) -> Self {
        Self { value, source: Source::Default }
    }
}

/// An environment variable holds something its setting cannot take.
#[derive(Debug, thiserror::Error)]
#[error("{var}=`{text}` is not valid: {reason}")]
pub struct LayerError {
    /// The variable.
    pub var: String,
    /// What it holds.
    pub text: String,
    /// Why it is refused.
    pub reason: String,
}

/// Resolves one setting from its layers, highest first: the flag (its value and name),
/// the environment variable `env` (read with `parse`), then the config file's value with
/// its source. `None` when no layer sets it; the caller applies the default.
pub fn layer<T, E: fmt::Display>(
    flag: (Option<T>, &str),
    env: &str,
    file: Option<(Source, Option<T>)>,
    parse: impl Fn(&str) -> Result<T, E>,
) -> Result<Option<Setting<T>>, LayerError> {
    if let Some(value) = flag.0 {
        return Ok(Some(Setting { value, source: Source::Flag(flag.1.to_owned()) }));
    }
    if let Some(text) = std::env::var(env).ok().filter(|v| !v.is_empty()) {
        let value = parse(&text).map_err(|e| LayerError {
            var: env.to_owned(),
            reason: e.to_string(),
            text: gpuflow_escrow::shown(&text).to_owned(),
        })?;
        return Ok(Some(Setting { value, source: Source::Env(env.to_owned()) }));
    }
    Ok(file.and_then(|(source, value)| value.map(|value| Setting { value, source })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(t: &str) -> Result<String, std::convert::Infallible> {
        Ok(t.to_owned())
    }

    #[test]
    fn flags_beat_profiles() {
        let profile = || Some((Source::File("dev".into()), Some("b".to_owned())));
        let s =
            layer((Some("a".to_owned()), "--rpc"), "GPUFLOW_TEST_SURELY_UNSET", profile(), text)
                .unwrap()
                .unwrap();
        assert_eq!((s.value.as_str(), s.source), ("a", Source::Flag("--rpc".into())));
        let s =
            layer((None, "--rpc"), "GPUFLOW_TEST_SURELY_UNSET", profile(), text).unwrap().unwrap();
        assert_eq!(s.source, Source::File("dev".into()));
        let none = layer((None, "--rpc"), "GPUFLOW_TEST_SURELY_UNSET", None, text).unwrap();
        assert!(none.is_none());
    }

    #[test]
    fn a_config_key_is_named_as_given() {
        let source = Source::Config("`rpc` in /etc/gpuflow/node.toml".into());
        assert_eq!(source.to_string(), "`rpc` in /etc/gpuflow/node.toml");
        let json = serde_json::to_value(Source::File("dev".into())).unwrap();
        assert_eq!(json, serde_json::json!({"kind": "file", "name": "dev"}));
    }
}

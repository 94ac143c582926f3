//! Layered settings: built-in defaults < `config.toml` profile < `GPUFLOW_*` < flags.
//!
//! Each value remembers where it came from so `gpuflow config` can say why it is what
//! it is. The file never holds secrets: wallets are referred to by name.

use std::{collections::BTreeMap, path::PathBuf};

use serde::Deserialize;

use crate::error::{Exit, fail};

/// Node URL when nothing else is set.
pub(crate) const DEFAULT_NODE: &str = "http://127.0.0.1:8080";
/// RPC URL when nothing else is set.
pub(crate) use gpuflow_cli_util::opts::DEFAULT_RPC;

/// `config.toml`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfigFile {
    /// Profile used when neither `--profile` nor `GPUFLOW_PROFILE` names one.
    pub(crate) profile: Option<String>,
    /// Named chain profiles.
    #[serde(default)]
    pub(crate) profiles: BTreeMap<String, Profile>,
}

/// One `[profiles.NAME]` table.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Profile {
    pub(crate) node: Option<String>,
    pub(crate) rpc: Option<String>,
    pub(crate) escrow: Option<String>,
    /// Expected chain id; a different chain behind `rpc` is an error.
    pub(crate) chain_id: Option<u64>,
    /// Default wallet name.
    pub(crate) wallet: Option<String>,
    /// First block to read escrow events from: the escrow's deployment block. Public RPCs
    /// refuse log queries from block 0.
    pub(crate) from_block: Option<u64>,
}

pub(crate) use gpuflow_cli_util::{Setting, Source};

/// `$XDG_CONFIG_HOME/gpuflow`.
pub(crate) fn dir() -> anyhow::Result<PathBuf> {
    gpuflow_cli_util::config_dir().map_err(|e| fail(Exit::Usage, e))
}

/// `$XDG_CONFIG_HOME/gpuflow/config.toml`.
pub(crate) fn path() -> anyhow::Result<PathBuf> {
    Ok(dir()?.join("config.toml"))
}

/// Reads the config file; a missing file is an empty one.
pub(crate) fn load() -> anyhow::Result<ConfigFile> {
    let path = path()?;
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ConfigFile::default()),
        Err(e) => return Err(fail(Exit::Usage, format!("cannot read {}: {e}", path.display()))),
    };
    toml::from_str(&text)
        .map_err(|e| fail(Exit::Usage, format!("{} is not a valid config: {e}", path.display())))
}

/// Picks the profile: the flag, else `GPUFLOW_PROFILE`, else the file's `profile`, else
/// `default`. A profile named by the user must exist; the implicit `default` may not.
pub(crate) fn select(
    file: &ConfigFile,
    flag: Option<&str>,
) -> anyhow::Result<Option<Setting<(String, Profile)>>> {
    let env = std::env::var("GPUFLOW_PROFILE").ok().filter(|v| !v.is_empty());
    let (name, source) = match (flag, env, &file.profile) {
        (Some(name), _, _) => (name.to_owned(), Source::Flag("--profile".into())),
        (None, Some(name), _) => (name, Source::Env("GPUFLOW_PROFILE".into())),
        (None, None, Some(name)) => (name.clone(), Source::File("(top level)".into())),
        (None, None, None) => {
            return Ok(file.profiles.get("default").map(|p| Setting {
                value: ("default".to_owned(), p.clone()),
                source: Source::Default,
            }));
        }
    };
    match file.profiles.get(&name) {
        Some(p) => Ok(Some(Setting { value: (name, p.clone()), source })),
        None => {
            let known: Vec<&str> = file.profiles.keys().map(String::as_str).collect();
            Err(fail(
                Exit::NotFound,
                format!(
                    "profile `{name}` (from {source}) is not in {}; known profiles: {}",
                    path()?.display(),
                    if known.is_empty() { "none".to_owned() } else { known.join(", ") }
                ),
            ))
        }
    }
}

/// Resolves one setting from its layers, highest first: flag, environment, profile.
pub(crate) fn layer<T>(
    flag: (Option<T>, &str),
    env: &str,
    profile: Option<(&str, Option<T>)>,
    parse: impl Fn(&str) -> anyhow::Result<T>,
) -> anyhow::Result<Option<Setting<T>>> {
    let profile = profile.map(|(name, value)| (Source::File(name.to_owned()), value));
    let parse = |text: &str| parse(text).map_err(|e| format!("{e:#}"));
    gpuflow_cli_util::layers::layer(flag, env, profile, parse)
        .map_err(|e| fail(Exit::Usage, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_parses_profiles() {
        let file: ConfigFile = toml::from_str(
            "profile = \"dev\"\n[profiles.dev]\nrpc = \"http://x\"\nchain_id = 31337\n\
             from_block = 5200000\n",
        )
        .unwrap();
        assert_eq!(file.profiles["dev"].chain_id, Some(31337));
        assert_eq!(file.profiles["dev"].from_block, Some(5_200_000));
        assert!(toml::from_str::<ConfigFile>("[profiles.dev]\nrcp = \"typo\"\n").is_err());
    }
}

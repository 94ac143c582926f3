//! What a renter's container starts with besides its image: environment variables, the
//! container ports to publish, and the command to run instead of the image's own.

use serde::{Deserialize, Serialize};

/// Most environment variables a quote request may carry.
pub const MAX_ENV: usize = 64;
/// Most ports a rental may publish besides SSH.
pub const MAX_PORTS: usize = 16;
/// Longest `KEY=VALUE` entry, and longest command.
const MAX_TEXT: usize = 4096;
/// Variables the provider sets itself: a renter cannot override them.
const RESERVED: &[&str] = &["PUBLIC_KEY", "NVIDIA_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES"];

/// The renter's launch settings (`gpuflow rent --env --port --cmd`). Empty for a rental of
/// the image as it is; absent from older clients' requests.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Launch {
    /// `KEY=VALUE` entries added to the container's environment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// Container TCP ports published on free host ports (SSH's 22 always is).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<u16>,
    /// A shell command run instead of the image's command (`sh -c COMMAND`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<String>,
    /// The renter's volume on the provider's machine, mounted into the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<VolumeMount>,
}

/// Where a volume is mounted when the renter names no path.
pub const DEFAULT_VOLUME_PATH: &str = "/workspace";
/// Longest volume name.
const MAX_VOLUME_NAME: usize = 64;
/// Longest mount path.
const MAX_VOLUME_PATH: usize = 256;

/// A renter's named volume (`gpuflow rent --volume NAME[:PATH]`): kept on the provider's
/// machine after the rental for the grace period its offer shows, and mounted again when
/// the same renter rents the same machine with the same name within it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeMount {
    /// The renter's name for it: lowercase letters, digits, `_`, `.` and `-`.
    pub name: String,
    /// Where it is mounted in the container, an absolute path.
    pub path: String,
}

impl VolumeMount {
    /// Parses `NAME` (mounted at [`DEFAULT_VOLUME_PATH`]) or `NAME:/PATH`, and checks it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (name, path) = text.split_once(':').unwrap_or((text, DEFAULT_VOLUME_PATH));
        let volume = Self { name: name.to_owned(), path: path.to_owned() };
        volume.check()?;
        Ok(volume)
    }

    /// Checks the name and the path: a name the engine accepts in its volume names, and an
    /// absolute, normal path that is not the root and cannot end a mount specification.
    pub fn check(&self) -> Result<(), String> {
        let Self { name, path } = self;
        let name_ok = name.len() <= MAX_VOLUME_NAME
            && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && name.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
            });
        if !name_ok {
            return Err(format!(
                "volume name `{}`: use 1 to {MAX_VOLUME_NAME} lowercase letters, digits, `_`,                  `.` or `-`, starting with a letter or digit",
                shown(name)
            ));
        }
        let path_ok = path.len() <= MAX_VOLUME_PATH
            && path.starts_with('/')
            && path != "/"
            && path
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'.' | b'-'))
            && path.split('/').skip(1).all(|part| !part.is_empty() && part != "." && part != "..");
        if !path_ok {
            return Err(format!(
                "volume path `{}`: give an absolute path other than `/`, such as {DEFAULT_VOLUME_PATH}, \
                 of letters, digits, `_`, `.`, `-` and `/`, without `..`",
                shown(path)
            ));
        }
        Ok(())
    }
}

/// A container port and the host port it is published on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedPort {
    /// The port inside the container.
    pub container: u16,
    /// The host port it is reached on, at the provider's SSH host.
    pub host: u16,
}

impl Launch {
    /// Whether nothing is asked beyond the image.
    pub fn is_empty(&self) -> bool {
        self.env.is_empty() && self.ports.is_empty() && self.cmd.is_none() && self.volume.is_none()
    }

    /// The names of the environment variables, in order.
    pub fn env_keys(&self) -> impl Iterator<Item = &str> {
        self.env.iter().filter_map(|entry| entry.split_once('=').map(|(key, _)| key))
    }

    /// Checks what a provider would hand to its runtime: variable names a shell accepts
    /// and none of the provider's own, ports other than SSH's, bounded sizes, no control
    /// characters that could end a line of the container's configuration.
    pub fn check(&self) -> Result<(), String> {
        if self.env.len() > MAX_ENV {
            return Err(format!("at most {MAX_ENV} environment variables"));
        }
        for entry in &self.env {
            let Some((key, value)) = entry.split_once('=') else {
                return Err(format!(
                    "environment entry `{key}` is not KEY=VALUE",
                    key = shown(entry)
                ));
            };
            let mut chars = key.chars();
            let name = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !name {
                return Err(format!("`{}` is not an environment variable name", shown(key)));
            }
            if key.starts_with("GPUFLOW_") || RESERVED.contains(&key) {
                return Err(format!("{key} is set by the provider; choose another name"));
            }
            if entry.len() > MAX_TEXT || value.chars().any(|c| c == '\0' || c == '\n') {
                return Err(format!(
                    "the value of {key} has a newline or NUL, or is over {MAX_TEXT} bytes"
                ));
            }
        }
        if self.ports.len() > MAX_PORTS {
            return Err(format!("at most {MAX_PORTS} ports besides SSH"));
        }
        for (i, port) in self.ports.iter().enumerate() {
            if *port == 0 || *port == 22 {
                return Err(format!(
                    "port {port}: give a container port from 1 to 65535 other than SSH's 22"
                ));
            }
            if self.ports[..i].contains(port) {
                return Err(format!("port {port} is given twice"));
            }
        }
        if let Some(cmd) = &self.cmd
            && (cmd.trim().is_empty() || cmd.len() > MAX_TEXT || cmd.contains('\0'))
        {
            return Err(format!("the command is empty, over {MAX_TEXT} bytes, or has a NUL"));
        }
        if let Some(volume) = &self.volume {
            volume.check()?;
        }
        Ok(())
    }
}

/// The part of the provider's machine a rental gets besides its GPUs, in proportion to
/// them: set by the agent on the container and shown in the quote, so that a renter knows
/// before paying what `--gpus N` buys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Share {
    /// CPU time, in thousandths of a CPU.
    pub cpu_millis: u64,
    /// Memory, bytes.
    pub memory_bytes: u64,
    /// Shared memory (`/dev/shm`), bytes; part of `memory_bytes`.
    pub shm_bytes: u64,
    /// Most processes and threads at once.
    pub pids: u64,
}

impl std::fmt::Display for Share {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let gb = |bytes: u64| crate::format_units(u128::from(bytes / 100_000_000), 1);
        write!(
            f,
            "{} CPUs, {} GB memory ({} GB of it /dev/shm), {} processes",
            crate::format_units(u128::from(self.cpu_millis), 3),
            gb(self.memory_bytes),
            gb(self.shm_bytes),
            self.pids
        )
    }
}

/// Echoes a renter's entry unless it looks like a secret.
fn shown(text: &str) -> &str {
    let hex_run = text.chars().fold((0, 0), |(run, most), c| {
        let run = if c.is_ascii_hexdigit() { run + 1 } else { 0 };
        (run, most.max(run))
    });
    if hex_run.1 >= 64 || text.len() > 64 { "(not shown)" } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launch(env: &[&str], ports: &[u16], cmd: Option<&str>) -> Launch {
        Launch {
            env: env.iter().map(|e| (*e).to_owned()).collect(),
            ports: ports.to_vec(),
            cmd: cmd.map(str::to_owned),
            volume: None,
        }
    }

    #[test]
    fn a_volume_is_a_plain_name_and_an_absolute_path() {
        let data = VolumeMount::parse("data").unwrap();
        assert_eq!((data.name.as_str(), data.path.as_str()), ("data", DEFAULT_VOLUME_PATH));
        let models = VolumeMount::parse("hf-cache.v2:/root/.cache/huggingface").unwrap();
        assert_eq!(models.path, "/root/.cache/huggingface");
        for bad in ["", "Data", "-x", "a/b", "a b", &"x".repeat(65)] {
            let error = VolumeMount::parse(bad).unwrap_err();
            assert!(error.contains("lowercase letters"), "{bad}: {error}");
        }
        for bad in
            ["d:", "d:/", "d:relative", "d:/a/../etc", "d:/a//b", "d:/a:ro", "d:/a,b", "d:/a/"]
        {
            let error = VolumeMount::parse(bad).unwrap_err();
            assert!(error.contains("absolute path"), "{bad}: {error}");
        }
        let with = Launch { volume: Some(data.clone()), ..Launch::default() };
        assert!(!with.is_empty() && with.check().is_ok());
        let bad = VolumeMount { name: "data".into(), path: "/".into() };
        assert!(Launch { volume: Some(bad), ..Launch::default() }.check().is_err());
        // Carried in a quote request, and read back.
        let text = serde_json::to_string(&with).unwrap();
        assert_eq!(serde_json::from_str::<Launch>(&text).unwrap(), with);
    }

    #[test]
    fn a_renters_launch_settings_are_checked() {
        assert!(Launch::default().is_empty() && Launch::default().check().is_ok());
        let good = launch(&["HF_TOKEN=abc", "X=a=b", "EMPTY="], &[8888, 8000], Some("jupyter lab"));
        assert_eq!(good.check(), Ok(()));
        assert_eq!(good.env_keys().collect::<Vec<_>>(), ["HF_TOKEN", "X", "EMPTY"]);
        for (bad, why) in [
            (launch(&["NOVALUE"], &[], None), "KEY=VALUE"),
            (launch(&["1X=a"], &[], None), "not an environment variable name"),
            (launch(&["GPUFLOW_RENTAL_ID=9"], &[], None), "set by the provider"),
            (launch(&["NVIDIA_VISIBLE_DEVICES=all"], &[], None), "set by the provider"),
            (launch(&["A=b\nc"], &[], None), "newline"),
            (launch(&[], &[22], None), "other than SSH"),
            (launch(&[], &[0], None), "from 1 to 65535"),
            (launch(&[], &[80, 80], None), "given twice"),
            (launch(&[], &[], Some("  ")), "empty"),
        ] {
            let err = bad.check().unwrap_err();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
        let key = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";
        let err = launch(&[key], &[], None).check().unwrap_err();
        assert!(!err.contains(key), "{err}");
    }

    #[test]
    fn a_share_reads_as_cpus_and_gigabytes() {
        let share = Share {
            cpu_millis: 8_500,
            memory_bytes: 57_600_000_000,
            shm_bytes: 28_800_000_000,
            pids: 8192,
        };
        assert_eq!(
            share.to_string(),
            "8.5 CPUs, 57.6 GB memory (28.8 GB of it /dev/shm), 8192 processes"
        );
    }

    #[test]
    fn an_empty_launch_is_not_on_the_wire() {
        assert_eq!(serde_json::to_string(&Launch::default()).unwrap(), "{}");
        let parsed: Launch = serde_json::from_str("{}").unwrap();
        assert!(parsed.is_empty());
    }
}

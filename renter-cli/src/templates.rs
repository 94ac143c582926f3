//! The template catalog (`templates/` at the repository root, one file each, compiled in):
//! the image, ports, environment and command of an environment renters reach for, the
//! least VRAM it needs, and what to open once it runs.

use std::collections::BTreeMap;

use gpuflow_protocol::PublishedPort;
use serde::{Deserialize, Serialize};

/// Every template: its name and its file.
const CATALOG: &[(&str, &str)] = &[
    ("pytorch-jupyter", include_str!("../../templates/pytorch-jupyter.toml")),
    ("vllm", include_str!("../../templates/vllm.toml")),
    ("ollama", include_str!("../../templates/ollama.toml")),
    ("comfyui", include_str!("../../templates/comfyui.toml")),
    ("cuda-dev", include_str!("../../templates/cuda-dev.toml")),
];

/// One environment a renter can start with `rent --template NAME`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Template {
    /// The file's name without `.toml`.
    #[serde(default)]
    pub name: String,
    pub description: String,
    pub image: String,
    /// GPU memory, all rented GPUs together, in GB (10^9 bytes).
    pub min_vram_gb: u64,
    /// Whether the image runs an SSH server.
    pub ssh: bool,
    #[serde(default)]
    pub ports: Vec<u16>,
    /// `KEY=VALUE`; `{token}` in a value is a random token made per rental.
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub cmd: Option<String>,
    #[serde(default)]
    pub open: Vec<Open>,
}

/// Something to open once the rental runs.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct Open {
    pub name: String,
    /// With `{host}`, `{ssh}`, `{port:N}` and `{env:KEY}` filled in once it runs.
    pub url: String,
}

/// Every template, in catalog order.
pub(crate) fn all() -> Vec<Template> {
    CATALOG.iter().map(|(name, text)| parse(name, text).expect("the catalog is checked")).collect()
}

/// The template called `name`, or an error listing the names there are.
pub(crate) fn find(name: &str) -> Result<Template, String> {
    all().into_iter().find(|t| t.name == name).ok_or_else(|| {
        let names: Vec<&str> = CATALOG.iter().map(|(name, _)| *name).collect();
        format!("no template called `{name}`; there are {} (`gpuflow templates`)", names.join(", "))
    })
}

/// 128 random bits as 32 hex digits, from the kernel's generator.
fn random_token() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut bytes))
        .expect("/dev/urandom is readable");
    alloy::hex::encode(bytes)
}

fn parse(name: &str, text: &str) -> Result<Template, String> {
    let mut template: Template =
        toml::from_str(text).map_err(|e| format!("template {name}: {e}"))?;
    template.name = name.to_owned();
    Ok(template)
}

impl Template {
    /// The template's environment with each `{token}` replaced by a fresh random token.
    pub(crate) fn env_for_rental(&self) -> Vec<String> {
        self.env
            .iter()
            .map(|entry| {
                let mut entry = entry.clone();
                while entry.contains("{token}") {
                    entry = entry.replacen("{token}", &random_token(), 1);
                }
                entry
            })
            .collect()
    }

    /// What to open, filled in for a running rental: the provider's `host`, its `ssh`
    /// port, the published `ports` and the environment `env` that was sent. A placeholder
    /// that cannot be filled (a port not published) stays as it is.
    pub(crate) fn open_for(
        &self,
        host: &str,
        ssh: Option<u16>,
        ports: &[PublishedPort],
        env: &[String],
    ) -> Vec<Open> {
        let mut values: BTreeMap<String, String> = BTreeMap::new();
        values.insert("host".into(), host.to_owned());
        if let Some(port) = ssh {
            values.insert("ssh".into(), port.to_string());
        }
        for port in ports {
            values.insert(format!("port:{}", port.container), port.host.to_string());
        }
        for (key, value) in env.iter().filter_map(|entry| entry.split_once('=')) {
            values.insert(format!("env:{key}"), value.to_owned());
        }
        self.open
            .iter()
            .map(|open| {
                let mut url = open.url.clone();
                for (key, value) in &values {
                    url = url.replace(&format!("{{{key}}}"), value);
                }
                Open { name: open.name.clone(), url }
            })
            .collect()
    }

    /// Refuses `count` GPUs of `gpu_bytes` each when they have less memory together than
    /// the template needs, saying what to search for instead.
    pub(crate) fn check_vram(&self, gpu_bytes: u64, count: u32) -> Result<(), String> {
        let vram = gpu_bytes.saturating_mul(u64::from(count));
        if vram >= self.min_vram_gb.saturating_mul(1_000_000_000) {
            return Ok(());
        }
        Err(format!(
            "the {} template needs {} GB of GPU memory; {count} GPU(s) of this offer have {} \
             GB. Rent more of its GPUs, or search for bigger ones (`gpu_ram>={}`)",
            self.name,
            self.min_vram_gb,
            vram / 1_000_000_000,
            self.min_vram_gb.div_ceil(u64::from(count.max(1)))
        ))
    }

    /// Refuses a machine that would not run `image` (the template's, or the `--image` that
    /// replaces it): neither pulled ahead (`images`) nor allowed by its provider's
    /// allow-list (`allowed`), saying how to find one that would.
    pub(crate) fn check_ready(
        &self,
        image: &str,
        images: &[String],
        allowed: &[String],
    ) -> Result<(), String> {
        if gpuflow_protocol::image_ready(images, allowed, image) {
            return Ok(());
        }
        let search = if image == self.image {
            format!("gpuflow search --template {}", self.name)
        } else {
            format!("gpuflow search 'image={image} gpu_total_ram>={}'", self.min_vram_gb)
        };
        Err(format!(
            "this offer's provider does not run `{image}`: it allows only {}; nothing was asked \
             or paid. Find machines that run it with `{search}`",
            allowed.join(", ")
        ))
    }

    /// Checks what a template file says: an image reference with an explicit tag, a
    /// valid launch, and placeholders that name its own ports and variables.
    #[cfg(test)]
    fn check(&self) -> Result<(), String> {
        gpuflow_protocol::RentalRequest::check_image(&self.image)?;
        let tag = self.image.rsplit('/').next().and_then(|last| last.split_once(':'));
        if tag.is_none_or(|(_, tag)| tag.is_empty() || tag == "latest") {
            return Err(format!("image {} needs an explicit tag other than latest", self.image));
        }
        let launch = gpuflow_protocol::Launch {
            env: self.env_for_rental(),
            ports: self.ports.clone(),
            cmd: self.cmd.clone(),
            volume: None,
        };
        launch.check()?;
        if self.description.trim().is_empty() || self.min_vram_gb == 0 {
            return Err("a description and a min_vram_gb of at least 1".into());
        }
        let keys: Vec<&str> =
            self.env.iter().filter_map(|e| e.split_once('=')).map(|(k, _)| k).collect();
        for open in &self.open {
            let mut rest = open.url.as_str();
            while let Some(start) = rest.find('{') {
                let end = rest[start..].find('}').ok_or(format!("unclosed {{ in {}", open.url))?;
                let placeholder = &rest[start + 1..start + end];
                let known = match placeholder.split_once(':') {
                    None => placeholder == "host" || (placeholder == "ssh" && self.ssh),
                    Some(("port", port)) => port.parse().is_ok_and(|p| self.ports.contains(&p)),
                    Some(("env", key)) => keys.contains(&key),
                    Some(_) => false,
                };
                if !known {
                    return Err(format!(
                        "`{{{placeholder}}}` in {} names nothing of the template",
                        open.url
                    ));
                }
                rest = &rest[start + end + 1..];
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_in_templates_is_in_the_catalog_and_sound() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|entry| entry.unwrap().file_name().into_string().ok())
            .filter_map(|name| name.strip_suffix(".toml").map(str::to_owned))
            .collect();
        files.sort();
        let mut listed: Vec<String> = CATALOG.iter().map(|(name, _)| (*name).to_owned()).collect();
        listed.sort();
        assert_eq!(files, listed, "templates/ and the compiled catalog differ");
        for (name, text) in CATALOG {
            let template = parse(name, text).unwrap();
            template.check().unwrap_or_else(|e| panic!("template {name}: {e}"));
        }
        for wanted in ["pytorch-jupyter", "vllm", "ollama", "comfyui", "cuda-dev"] {
            assert!(find(wanted).is_ok(), "{wanted}");
        }
        assert!(find("tensorflow").unwrap_err().contains("pytorch-jupyter"));
    }

    #[test]
    fn a_bad_template_is_refused() {
        let good = find("pytorch-jupyter").unwrap();
        let latest = Template { image: "runpod/pytorch:latest".into(), ..good.clone() };
        assert!(latest.check().unwrap_err().contains("explicit tag"));
        let untagged = Template { image: "127.0.0.1:5000/pytorch".into(), ..good.clone() };
        assert!(untagged.check().unwrap_err().contains("explicit tag"));
        let unknown_port = Template { ports: vec![9999], ..good.clone() };
        assert!(unknown_port.check().unwrap_err().contains("port:8888"));
        let bad_env = Template { env: vec!["GPUFLOW_X=1".into()], ..good };
        assert!(bad_env.check().is_err());
        assert!(parse("x", "description = 'a'\nsurprise = 1").is_err());
    }

    #[test]
    fn too_little_gpu_memory_is_refused() {
        let vllm = find("vllm").unwrap();
        let rtx_3090 = 25_769_803_776;
        assert!(vllm.check_vram(rtx_3090, 1).is_ok());
        let t4 = 16_106_127_360;
        let err = vllm.check_vram(t4, 1).unwrap_err();
        assert!(err.contains("needs 24 GB") && err.contains("have 16 GB"), "{err}");
        assert!(err.contains("`gpu_ram>=24`"), "{err}");
        assert!(vllm.check_vram(t4, 2).is_ok(), "two of them together suffice");
    }

    #[test]
    fn a_machine_that_would_not_run_the_image_is_refused_naming_the_search() {
        let ollama = find("ollama").unwrap();
        let list = |items: &[&str]| items.iter().map(|i| (*i).to_owned()).collect::<Vec<_>>();
        assert!(ollama.check_ready(&ollama.image, &[], &[]).is_ok(), "no list: any image");
        assert!(ollama.check_ready(&ollama.image, &[], &list(&["ollama/ollama:*"])).is_ok());
        let pulled = list(&[&ollama.image]);
        assert!(ollama.check_ready(&ollama.image, &pulled, &list(&["ubuntu:*"])).is_ok());
        let err = ollama.check_ready(&ollama.image, &[], &list(&["ubuntu:*", "nvidia/cuda:*"]));
        let err = err.unwrap_err();
        assert!(err.contains("allows only ubuntu:*, nvidia/cuda:*"), "{err}");
        assert!(err.contains("`gpuflow search --template ollama`"), "{err}");
        let err = ollama.check_ready("ollama/ollama:0.4.0", &[], &list(&["ubuntu:*"]));
        let err = err.unwrap_err();
        assert!(
            err.contains("`gpuflow search 'image=ollama/ollama:0.4.0 gpu_total_ram>=8'`"),
            "{err}"
        );
    }

    #[test]
    fn tokens_are_fresh_and_urls_filled_in() {
        let jupyter = find("pytorch-jupyter").unwrap();
        let (one, two) = (jupyter.env_for_rental(), jupyter.env_for_rental());
        assert_ne!(one, two);
        let token = one[0].strip_prefix("JUPYTER_TOKEN=").unwrap();
        assert_eq!(token.len(), 32);
        let ports = [PublishedPort { container: 8888, host: 40_001 }];
        let open = jupyter.open_for("203.0.113.7", Some(40_000), &ports, &one);
        assert_eq!(open[0].url, format!("http://203.0.113.7:40001/lab?token={token}"));
        let ssh = find("cuda-dev").unwrap().open_for("h", Some(40_000), &[], &[]);
        assert_eq!(ssh[0].url, "ssh://root@h:40000");
    }
}

//! `gpuflow copy`: files to and from a rental's machine over its SSH endpoint, with rsync
//! where both ends have it (resumable, only what changed), else scp.

use std::{path::PathBuf, process::Command};

use clap::{Args, ValueEnum};
use serde_json::json;

use super::{
    Ctx, print_json,
    ssh::{Login, no_client},
};
use crate::error::{Exit, fail};

/// `gpuflow copy`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  gpuflow copy ./data 7:/workspace           # a directory up, into /workspace/data
  gpuflow copy 7:/workspace/out .            # and results down
  gpuflow copy 7:/root/model.bin ./ -i ~/.ssh/work_ed25519

One side is RENTAL:PATH, the other a local path (write ./7:x for a local file named
7:x). Directories are copied with their contents. With rsync on both ends (the default
when it is), a copy that was cut off resumes where it stopped when run again, and files
already there are not sent twice; otherwise scp copies everything. Progress is shown on
the terminal; --json prints what was copied once it is done.")]
pub struct CopyArgs {
    /// What to copy: a local path, or RENTAL:PATH.
    source: String,
    /// Where to: RENTAL:PATH, or a local path.
    destination: String,
    /// Private key to log in with [default: the one `rent --ssh-key` installed].
    #[arg(short = 'i', long, value_name = "PATH")]
    identity: Option<PathBuf>,
    /// The copying tool [default: rsync when both ends have it, else scp].
    #[arg(long, value_enum)]
    with: Option<Tool>,
}

/// How files travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Tool {
    /// Resumable, sends only what changed; needs rsync on both ends.
    Rsync,
    /// Everything, over SFTP; needs nothing but the SSH server.
    Scp,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Self::Rsync => "rsync",
            Self::Scp => "scp",
        }
    }
}

/// `RENTAL:PATH` as the rental id and the path (the login directory when empty).
fn remote(text: &str) -> Option<(u64, &str)> {
    let (id, path) = text.split_once(':')?;
    let id = id.parse().ok().filter(|_| id.bytes().all(|b| b.is_ascii_digit()))?;
    Some((id, if path.is_empty() { "." } else { path }))
}

/// An argument of rsync's `-e` command, quoted for rsync's own splitting.
fn quoted(arg: &str) -> String {
    if arg.contains(['\'', ' ', '"']) {
        format!("\"{}\"", arg.replace('"', "\\\""))
    } else {
        arg.to_owned()
    }
}

impl CopyArgs {
    pub(crate) async fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        let (rental, upload) = match (remote(&self.source), remote(&self.destination)) {
            (Some(_), Some(_)) => {
                return Err(fail(
                    Exit::Usage,
                    "both sides name a rental; copy between rentals through this machine, one \
                     side at a time",
                ));
            }
            (None, None) => {
                return Err(fail(
                    Exit::Usage,
                    "neither side names a rental; write one side as RENTAL:PATH, e.g. \
                     `gpuflow copy ./data 7:/workspace`",
                ));
            }
            (Some((id, _)), None) => (id, false),
            (None, Some((id, _))) => (id, true),
        };
        let local = if upload { &self.source } else { &self.destination };
        if upload && !std::path::Path::new(local).exists() {
            return Err(fail(Exit::Usage, format!("{local} does not exist on this machine")));
        }
        let login = Login::of(ctx, rental, self.identity).await?;
        let tool = match self.with {
            Some(tool) => tool,
            None if has_rsync(&login) => Tool::Rsync,
            None => Tool::Scp,
        };
        let remote_path = |text: &str| remote(text).map(|(_, path)| path.to_owned());
        let remote_path =
            if upload { remote_path(&self.destination) } else { remote_path(&self.source) }
                .expect("one side is the rental");
        let there = format!("{}:{remote_path}", login.destination());
        let (from, to) = if upload { (local.clone(), there) } else { (there, local.clone()) };

        let mut command = match tool {
            Tool::Rsync => {
                let mut ssh =
                    vec!["ssh".to_owned(), "-p".to_owned(), login.endpoint.port.to_string()];
                ssh.extend(login.options());
                let shell: Vec<String> = ssh.iter().map(|arg| quoted(arg)).collect();
                let mut rsync = Command::new("rsync");
                // Archive mode, and a file cut off midway kept so the next run resumes it.
                rsync.args(["--archive", "--partial"]);
                rsync.arg(if ctx.json { "--quiet" } else { "--info=progress2" });
                rsync.arg("-e").arg(shell.join(" "));
                rsync
            }
            Tool::Scp => {
                let mut scp = Command::new("scp");
                scp.args(["-r", "-p", "-P", &login.endpoint.port.to_string()]);
                scp.args(login.options());
                if ctx.json {
                    scp.arg("-q");
                }
                scp
            }
        };
        command.arg(&from).arg(&to);
        tracing::info!(rental, tool = tool.name(), from, to, "copying");
        let status = command.status().map_err(|e| no_client(tool.name(), e))?;
        if !status.success() {
            let resume = match tool {
                Tool::Rsync => "; run the same command again to resume",
                Tool::Scp => "",
            };
            return Err(fail(
                Exit::Generic,
                format!("{} failed ({status}) copying {from} to {to}{resume}", tool.name()),
            ));
        }
        if ctx.json {
            print_json(&json!({"rental_id": rental, "with": tool.name(), "from": from, "to": to}));
        }
        Ok(())
    }
}

/// Whether rsync runs here and on the rental's machine.
fn has_rsync(login: &Login) -> bool {
    let here =
        Command::new("rsync").arg("--version").output().is_ok_and(|out| out.status.success());
    here && login
        .ssh()
        .args(["--", "command -v rsync"])
        .output()
        .is_ok_and(|out| out.status.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rental_side_is_an_id_and_a_path() {
        assert_eq!(remote("7:/workspace"), Some((7, "/workspace")));
        assert_eq!(remote("12:"), Some((12, ".")));
        assert_eq!(remote("./7:x"), None);
        assert_eq!(remote("data"), None);
        assert_eq!(remote("+7:x"), None);
        assert_eq!(remote("/tmp/a:b"), None);
    }

    #[test]
    fn rsyncs_shell_keeps_paths_with_spaces_whole() {
        assert_eq!(quoted("-p"), "-p");
        assert_eq!(quoted("UserKnownHostsFile=/home/a b/x"), "\"UserKnownHostsFile=/home/a b/x\"");
    }
}

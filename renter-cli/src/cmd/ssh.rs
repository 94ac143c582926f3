//! `gpuflow ssh` and `gpuflow ssh-url`: a shell, one command, or the address, of the
//! rental's machine. [`Login`] is how every SSH client of a rental (also `gpuflow copy`)
//! reaches it.

use std::{io::IsTerminal, os::unix::process::CommandExt, path::PathBuf, process::Command};

use clap::Args;
use gpuflow_protocol::{SshEndpoint, WorkloadState};
use serde_json::json;

use super::{Ctx, print_json};
use crate::{
    error::{Exit, fail},
    provider::{ProviderClient, ssh_identity},
};

/// How to log in to a rental's machine now: the endpoint the provider reports (a container
/// restarted by the provider's engine may be on another port), the key, and the rental's
/// own known-hosts file.
#[derive(Debug)]
pub(crate) struct Login {
    pub(crate) endpoint: SshEndpoint,
    pub(crate) identity: Option<PathBuf>,
    known_hosts: PathBuf,
}

impl Login {
    /// Asks the rental's provider where its SSH server is; `identity` overrides the key
    /// remembered from `rent --ssh-key`.
    pub(crate) async fn of(
        ctx: &Ctx,
        rental_id: u64,
        identity: Option<PathBuf>,
    ) -> anyhow::Result<Self> {
        let settings = ctx.settings()?;
        let (escrow, _) = settings.escrow(None).await?;
        let rental = escrow.rental(rental_id).await?;
        let provider =
            ProviderClient::for_rental(&settings.node(), escrow.address(), rental_id, &rental)
                .await?;
        let status = provider.status(rental_id).await?;
        let Some(endpoint) = status.ssh.filter(|_| status.state == WorkloadState::Running) else {
            return Err(fail(
                Exit::NotFound,
                format!(
                    "rental {rental_id} has no SSH endpoint: its workload is {} ({}); a rental \
                     is reachable by SSH while it runs in a container with the key given to \
                     `gpuflow rent --ssh-key`",
                    status.state, status.detail
                ),
            ));
        };
        let identity = identity.or_else(|| ssh_identity(escrow.address(), rental_id, &rental));
        let known_hosts = crate::config::dir()?.join("known_hosts");
        std::fs::create_dir_all(&known_hosts)?;
        let known_hosts = known_hosts.join(format!("{:#x}-{rental_id}", escrow.address()));
        Ok(Self { endpoint, identity, known_hosts })
    }

    /// The `-o`/`-i` options of every SSH client (ssh, scp, rsync's ssh): each rental's
    /// machine has host keys of its own, on ports other rentals used before, so they are
    /// trusted on first use for this rental only; without a terminal nobody can type a
    /// password or answer a question, so ssh fails instead of waiting.
    pub(crate) fn options(&self) -> Vec<String> {
        let mut options = vec![
            "-o".to_owned(),
            format!("UserKnownHostsFile={}", self.known_hosts.display()),
            "-o".to_owned(),
            "StrictHostKeyChecking=accept-new".to_owned(),
        ];
        if let Some(identity) = &self.identity {
            options.extend(["-i".to_owned(), identity.display().to_string()]);
            options.extend(["-o".to_owned(), "IdentitiesOnly=yes".to_owned()]);
        }
        if !std::io::stdin().is_terminal() {
            options.extend(["-o".to_owned(), "BatchMode=yes".to_owned()]);
        }
        options
    }

    /// `USER@HOST`.
    pub(crate) fn destination(&self) -> String {
        format!("{}@{}", self.endpoint.user, self.endpoint.host)
    }

    /// `ssh -p PORT OPTIONS USER@HOST`, ready for a command.
    pub(crate) fn ssh(&self) -> Command {
        let mut ssh = Command::new("ssh");
        ssh.args(["-p", &self.endpoint.port.to_string()]).args(self.options());
        ssh.arg(self.destination());
        ssh
    }

    /// `ssh://USER@HOST:PORT`.
    pub(crate) fn url(&self) -> String {
        format!("ssh://{}@{}:{}", self.endpoint.user, self.endpoint.host, self.endpoint.port)
    }
}

/// Fails naming the missing OpenSSH client.
pub(crate) fn no_client(program: &str, error: std::io::Error) -> anyhow::Error {
    fail(Exit::Generic, format!("cannot run {program} ({error}); install an OpenSSH client"))
}

/// `gpuflow ssh`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  gpuflow ssh 7
  gpuflow ssh 7 -- nvidia-smi
  gpuflow ssh 7 -i ~/.ssh/work_ed25519 -- python3 train.py

Logs in as the provider reports it now (a container restarted by the provider's engine
may be on another port) with the private half of the key given to `rent --ssh-key`,
remembered on this machine; -i names another. The rental's host key is trusted the
first time and remembered for that rental only. The exit status is ssh's: the
command's own, or 255 when ssh could not connect.")]
pub struct SshArgs {
    /// Rental id, as printed by `gpuflow rent`.
    rental: u64,
    /// Private key to log in with [default: the one `rent --ssh-key` installed].
    #[arg(short = 'i', long, value_name = "PATH")]
    identity: Option<PathBuf>,
    /// The command to run instead of a shell, after `--`.
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

impl SshArgs {
    pub(crate) async fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        let login = Login::of(ctx, self.rental, self.identity).await?;
        let mut ssh = login.ssh();
        if !self.command.is_empty() {
            ssh.arg("--").args(&self.command);
        }
        tracing::info!(rental = self.rental, endpoint = %login.endpoint, identity = ?login.identity, "logging in");
        // ssh takes this process over: its terminal, its signals and its exit status.
        Err(no_client("ssh", ssh.exec()))
    }
}

/// `gpuflow ssh-url`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  gpuflow ssh-url 7                 # ssh://root@203.0.113.7:40022
  ssh $(gpuflow ssh-url 7)          # OpenSSH takes the URL as it is
  gpuflow --json ssh-url 7          # host, port, user, key and the ssh command

The address is the one the provider reports now; a container restarted by the
provider's engine may be on another port, so ask again rather than keeping it.")]
pub struct SshUrlArgs {
    /// Rental id, as printed by `gpuflow rent`.
    rental: u64,
}

impl SshUrlArgs {
    pub(crate) async fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        let login = Login::of(ctx, self.rental, None).await?;
        if ctx.json {
            print_json(&json!({
                "rental_id": self.rental,
                "url": login.url(),
                "host": login.endpoint.host,
                "port": login.endpoint.port,
                "user": login.endpoint.user,
                "identity": login.identity,
                "command": login.endpoint.to_string(),
            }));
        } else {
            println!("{}", login.url());
        }
        Ok(())
    }
}

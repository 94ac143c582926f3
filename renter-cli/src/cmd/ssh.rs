//! `gpuflow ssh`: a shell, or one command, in the rental's machine.

use std::{io::IsTerminal, os::unix::process::CommandExt, path::PathBuf};

use clap::Args;
use gpuflow_protocol::WorkloadState;

use super::Ctx;
use crate::{
    error::{Exit, fail},
    provider::{ProviderClient, ssh_identity},
};

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
        let settings = ctx.settings()?;
        let (escrow, _) = settings.escrow(None).await?;
        let rental = escrow.rental(self.rental).await?;
        let provider =
            ProviderClient::for_rental(&settings.node(), escrow.address(), self.rental, &rental)
                .await?;
        let status = provider.status(self.rental).await?;
        let Some(endpoint) = status.ssh.filter(|_| status.state == WorkloadState::Running) else {
            return Err(fail(
                Exit::NotFound,
                format!(
                    "rental {} has no SSH endpoint: its workload is {} ({}); a rental is \
                     reachable by SSH while it runs in a container with the key given to \
                     `gpuflow rent --ssh-key`",
                    self.rental, status.state, status.detail
                ),
            ));
        };
        let identity =
            self.identity.or_else(|| ssh_identity(escrow.address(), self.rental, &rental));
        let known_hosts = crate::config::dir()?.join("known_hosts");
        std::fs::create_dir_all(&known_hosts)?;
        let known_hosts = known_hosts.join(format!("{:#x}-{}", escrow.address(), self.rental));

        let mut ssh = std::process::Command::new("ssh");
        ssh.args(["-p", &endpoint.port.to_string()])
            // Each rental's machine has host keys of its own, on ports other rentals used
            // before: trusted on first use, for this rental only.
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
            .args(["-o", "StrictHostKeyChecking=accept-new"]);
        if let Some(identity) = &identity {
            ssh.arg("-i").arg(identity).args(["-o", "IdentitiesOnly=yes"]);
        }
        if !std::io::stdin().is_terminal() {
            // Nobody to type a password or answer a question: fail instead of waiting.
            ssh.args(["-o", "BatchMode=yes"]);
        }
        ssh.arg(format!("{}@{}", endpoint.user, endpoint.host));
        if !self.command.is_empty() {
            ssh.arg("--").args(&self.command);
        }
        tracing::info!(rental = self.rental, %endpoint, ?identity, "logging in");
        // ssh takes this process over: its terminal, its signals and its exit status.
        let error = ssh.exec();
        Err(fail(
            Exit::Generic,
            format!("cannot run ssh ({error}); install an OpenSSH client (`ssh`)"),
        ))
    }
}

//! `gpuflow completions`.

use clap::Args;
use clap_complete::Shell;

/// `gpuflow completions`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  gpuflow completions bash > ~/.local/share/bash-completion/completions/gpuflow
  gpuflow completions zsh > \"${fpath[1]}/_gpuflow\"
  gpuflow completions fish > ~/.config/fish/completions/gpuflow.fish")]
pub struct CompletionsArgs {
    /// The shell.
    shell: Shell,
}

impl CompletionsArgs {
    pub(crate) fn run(self, command: &mut clap::Command) -> anyhow::Result<()> {
        let mut script = Vec::new();
        clap_complete::generate(self.shell, command, "gpuflow", &mut script);
        match std::io::Write::write_all(&mut std::io::stdout(), &script) {
            // `gpuflow completions bash | head` is fine.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            other => Ok(other?),
        }
    }
}

//! Terminal output shared by the commands: tables, spinners, confirmation.
//!
//! Results go to stdout; progress and questions go to stderr, so `--json` output and
//! pipes stay clean.

use std::{
    io::{BufRead, IsTerminal, Write},
    time::Duration,
};

use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::error::{Exit, fail};

/// A table in the one style every command uses.
pub(crate) fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY).set_header(header.to_vec());
    table
}

/// A spinner on stderr; hidden with `--json` or when stderr is not a terminal.
pub(crate) fn spinner(json: bool, message: impl Into<String>) -> ProgressBar {
    let target = if json || !std::io::stderr().is_terminal() {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    };
    let bar = ProgressBar::with_draw_target(None, target);
    bar.set_style(ProgressStyle::with_template("{spinner} {msg} ({elapsed})").expect("template"));
    bar.set_message(message.into());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// Asks `question` on the terminal before money moves. Refuses, naming `--yes`, when
/// nobody can answer: with `--json` (output for a script, which never prompts) or when
/// stdin is not a terminal.
pub(crate) fn consent(json: bool, question: &str) -> anyhow::Result<()> {
    if json {
        return Err(fail(
            Exit::Usage,
            "not confirmed: --json never asks, so add --yes to confirm the payment. No money \
             moved",
        ));
    }
    if !std::io::stdin().is_terminal() {
        return Err(fail(
            Exit::Usage,
            "not confirmed: stdin is not a terminal, so nobody can answer; pass --yes to \
             confirm non-interactively. No money moved",
        ));
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        Err(fail(Exit::Refused, "not confirmed; no money moved"))
    }
}

/// Seconds as `3d 4h`, `2h 5m`, `42s`.
pub(crate) fn duration(seconds: u64) -> String {
    let (d, h, m, s) = (seconds / 86_400, seconds / 3600 % 24, seconds / 60 % 60, seconds % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

/// A unix time as this machine's local time, `2026-12-05 14:03 +01:00`.
pub(crate) fn local_time(unix: u64) -> String {
    let Ok(time) = libc::time_t::try_from(unix) else { return format!("unix time {unix}") };
    // SAFETY: localtime_r reads `time` and writes only `tm`, which is zeroed memory of the
    // right type; its result is checked before `tm` is read.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&time, &mut tm).is_null() {
            return format!("unix time {unix}");
        }
        tm
    };
    let offset = tm.tm_gmtoff / 60;
    let sign = if offset < 0 { '-' } else { '+' };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} {sign}{:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        offset.abs() / 60,
        offset.abs() % 60
    )
}

/// What a renter is told in a rental's last ten minutes, `None` before them.
pub(crate) fn ending_soon(rental_id: u64, left: u64) -> Option<String> {
    (left <= 600).then(|| {
        format!(
            "less than 10 minutes left: the machine and every file on it are gone at the end; \
             `gpuflow extend {rental_id} --hours 1` keeps it"
        )
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn local_times_read_as_dates() {
        let text = super::local_time(1_796_400_000);
        assert_eq!(text.len(), "2026-12-04 16:00 +00:00".len(), "{text}");
        assert!(text.starts_with("2026-12-0"), "{text}");
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(super::duration(9), "9s");
        assert_eq!(super::duration(3600), "1h 0m");
        assert_eq!(super::duration(90_061), "1d 1h");
    }
}

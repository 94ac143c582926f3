//! Figures, their targets, the machine they were measured on, and the `BENCHMARKS.md` they
//! are written to.

use std::{fmt::Write as _, time::Duration};

/// What a figure promises.
#[derive(Clone, Copy, Debug)]
pub enum Target {
    /// The figure must not exceed this.
    AtMost(f64),
    /// The figure must reach at least this.
    AtLeast(f64),
}

impl Target {
    /// Whether `value` keeps the promise.
    pub fn met(self, value: f64) -> bool {
        match self {
            Self::AtMost(bound) => value <= bound,
            Self::AtLeast(bound) => value >= bound,
        }
    }

    fn bound(self) -> f64 {
        match self {
            Self::AtMost(bound) | Self::AtLeast(bound) => bound,
        }
    }
}

/// One measured (or deliberately unmeasured) figure.
#[derive(Clone, Debug)]
pub struct Figure {
    /// What was measured, e.g. `search latency p50`.
    pub name: String,
    /// The median from one run; `None` when it was not measured.
    pub value: Option<f64>,
    /// Unit of `value`.
    pub unit: &'static str,
    /// The promise, if there is one.
    pub target: Option<Target>,
    /// The command that measured it.
    pub command: String,
    /// Why it was not measured, or what a reader needs to read it right.
    pub note: String,
}

impl Figure {
    /// A measured figure.
    pub fn new(
        name: impl Into<String>,
        value: f64,
        unit: &'static str,
        target: Option<Target>,
        command: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            value: Some(value),
            unit,
            target,
            command: command.into(),
            note: String::new(),
        }
    }

    /// A figure that could not be measured, and why.
    pub fn missing(
        name: impl Into<String>,
        unit: &'static str,
        target: Option<Target>,
        command: impl Into<String>,
        why: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            value: None,
            unit,
            target,
            command: command.into(),
            note: why.into(),
        }
    }

    /// Adds a note.
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = note.into();
        self
    }

    /// Whether the figure was measured and missed its target.
    pub fn missed(&self) -> bool {
        matches!((self.value, self.target), (Some(v), Some(t)) if !t.met(v))
    }
}

/// Everything one benchmark contributes: figures and a section of details.
#[derive(Debug, Default)]
pub struct Section {
    /// The figures for the summary table.
    pub figures: Vec<Figure>,
    /// Markdown with the parameters, breakdowns and, for missed targets, where the time
    /// goes and the plan to close the gap.
    pub details: String,
}

/// The machine a run measured, read from `/proc`.
#[derive(Debug)]
pub struct Machine {
    /// CPU model name.
    pub cpu: String,
    /// Cores available to this process.
    pub cores: usize,
    /// Total memory in GiB.
    pub ram_gib: f64,
    /// Kernel release.
    pub kernel: String,
    /// The 1-, 5- and 15-minute load averages when the run started: other work on the
    /// machine shows here.
    pub load: String,
}

impl Machine {
    /// Reads the machine's description.
    pub fn read() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')))
            .map(|(_, name)| name.trim().to_owned())
            .unwrap_or_else(|| "unknown".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let kib = proc_kib(&meminfo, "MemTotal:").unwrap_or(0);
        Self {
            cpu,
            cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            ram_gib: kib as f64 / 1024.0 / 1024.0,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_owned())
                .unwrap_or_default(),
            load: std::fs::read_to_string("/proc/loadavg")
                .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
                .unwrap_or_default(),
        }
    }
}

/// The value of a `Key:   123 kB` line of a `/proc` file, in KiB.
pub fn proc_kib(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// Resident memory of process `pid` in MiB (VmRSS from `/proc/PID/status`).
pub fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    proc_kib(&status, "VmRSS:").map(|kib| kib as f64 / 1024.0)
}

/// The `q`-quantile (0..=1) of `samples`, nearest-rank; sorts them.
pub fn quantile(samples: &mut [f64], q: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort_by(f64::total_cmp);
    let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
    samples[rank - 1]
}

/// Milliseconds in `d`, as a float.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Formats a number with a precision that suits its size and thousands separators.
pub fn number(value: f64) -> String {
    if value.abs() >= 1000.0 {
        let whole = value.round() as i64;
        let digits = whole.unsigned_abs().to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        if whole < 0 { format!("-{out}") } else { out }
    } else if value.abs() >= 100.0 {
        format!("{value:.0}")
    } else if value.abs() >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// Renders `BENCHMARKS.md`.
pub fn markdown(machine: &Machine, command: &str, sections: &[Section], started: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# gpuflow benchmarks\n");
    let _ = writeln!(
        out,
        "Written by `{command}` (crate `bench/`, run with `make bench`; `make bench-smoke` \
         runs the same code at toy sizes). Every figure is the median (or the named percentile) \
         from one run on the machine below; the load generator runs on the same machine, so \
         it competes with the measured process for the same cores.\n"
    );
    let _ = writeln!(out, "## Machine\n");
    let _ = writeln!(out, "| | |\n| --- | --- |");
    let _ = writeln!(out, "| CPU | {} |", machine.cpu);
    let _ = writeln!(out, "| cores | {} |", machine.cores);
    let _ = writeln!(out, "| RAM | {:.1} GiB |", machine.ram_gib);
    let _ = writeln!(out, "| kernel | Linux {} |", machine.kernel);
    let _ = writeln!(out, "| load average at the start (1, 5, 15 min) | {} |", machine.load);
    let _ = writeln!(out, "| run started | {started} (unix time) |\n");
    let _ = writeln!(out, "## Figures\n");
    let _ = writeln!(
        out,
        "Ratio is measured ÷ target: at most 1.00 keeps an upper bound, at least 1.00 keeps a \
         lower bound.\n"
    );
    let _ = writeln!(out, "| figure | measured | target | ratio | | measured by |");
    let _ = writeln!(out, "| --- | ---: | ---: | ---: | --- | --- |");
    for figure in sections.iter().flat_map(|s| &s.figures) {
        let (measured, ratio, verdict) = match (figure.value, figure.target) {
            (None, _) => ("not measured".to_owned(), "–".to_owned(), "–"),
            (Some(v), None) => (format!("{} {}", number(v), figure.unit), "–".into(), "reported"),
            (Some(v), Some(t)) => (
                format!("{} {}", number(v), figure.unit),
                format!("{:.2}", v / t.bound()),
                if t.met(v) { "met" } else { "**missed**" },
            ),
        };
        let target = match figure.target {
            None => "–".to_owned(),
            Some(Target::AtMost(b)) => format!("≤ {} {}", number(b), figure.unit),
            Some(Target::AtLeast(b)) => format!("≥ {} {}", number(b), figure.unit),
        };
        let mut name = figure.name.clone();
        if !figure.note.is_empty() {
            name = format!("{name} ({})", figure.note);
        }
        let _ = writeln!(
            out,
            "| {name} | {measured} | {target} | {ratio} | {verdict} | `{}` |",
            figure.command
        );
    }
    out.push('\n');
    for section in sections {
        if !section.details.is_empty() {
            out.push_str(section.details.trim_end());
            out.push_str("\n\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let mut samples: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&mut samples, 0.5), 50.0);
        assert_eq!(quantile(&mut samples, 0.99), 99.0);
        assert_eq!(quantile(&mut samples, 1.0), 100.0);
        assert_eq!(quantile(&mut [3.0], 0.5), 3.0);
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(number(105_795.0), "105,795");
        assert_eq!(number(4.256), "4.26");
        assert_eq!(number(42.26), "42.3");
    }

    #[test]
    fn targets_compare_both_ways() {
        assert!(Target::AtMost(5.0).met(5.0));
        assert!(!Target::AtMost(5.0).met(5.1));
        assert!(Target::AtLeast(3000.0).met(3001.0));
        assert!(!Target::AtLeast(3000.0).met(2999.0));
    }
}

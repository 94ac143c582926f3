//! The process runtime: runs a rental's workload as a local process group.
//!
//! Production providers run containers; this runtime serves development and tests, with
//! the same contract: start with the rented GPUs, capture logs, stop on time.

use std::{path::PathBuf, process::Stdio, time::Duration};

use tokio::process::{Child, Command};

/// How long a workload gets to exit after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// What a workload is given.
#[derive(Clone, Debug)]
pub struct WorkloadSpec {
    /// The rental it serves.
    pub rental_id: u64,
    /// UUIDs of the GPUs it may use.
    pub gpus: Vec<String>,
    /// Unix time the rental ends.
    pub ends_at: u64,
    /// Shell command to run.
    pub command: String,
    /// Where stdout and stderr go.
    pub log_path: PathBuf,
}

/// A running workload.
#[derive(Debug)]
pub struct Workload {
    child: Child,
    pid: u32,
}

impl Workload {
    /// Starts the workload in its own process group.
    pub fn start(spec: &WorkloadSpec) -> std::io::Result<Self> {
        if let Some(dir) = spec.log_path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let log = std::fs::File::create(&spec.log_path)?;
        let devices = spec.gpus.join(",");
        let child = Command::new("sh")
            .arg("-c")
            .arg(&spec.command)
            .env("GPUFLOW_RENTAL_ID", spec.rental_id.to_string())
            .env("GPUFLOW_RENTAL_ENDS_AT", spec.ends_at.to_string())
            .env("NVIDIA_VISIBLE_DEVICES", &devices)
            .env("CUDA_VISIBLE_DEVICES", &devices)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .kill_on_drop(true)
            .spawn()?;
        let pid = child.id().ok_or_else(|| std::io::Error::other("workload exited at once"))?;
        Ok(Self { child, pid })
    }

    /// The workload's process (group) id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// True while the workload's main process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stops the whole process group: SIGTERM, then SIGKILL after a grace period.
    pub async fn stop(mut self) {
        let group = -(self.pid as i32);
        // SAFETY: kill(2) with a negative pid signals our own child's process group.
        unsafe { libc::kill(group, libc::SIGTERM) };
        if tokio::time::timeout(STOP_GRACE, self.child.wait()).await.is_err() {
            // SAFETY: as above.
            unsafe { libc::kill(group, libc::SIGKILL) };
            let _ = self.child.wait().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn workload_runs_with_its_gpus_and_stops() {
        let dir = tempfile::tempdir().unwrap();
        let ready = dir.path().join("ready");
        let spec = WorkloadSpec {
            rental_id: 7,
            gpus: vec!["GPU-a".into(), "GPU-b".into()],
            ends_at: 0,
            command: format!(
                "echo \"$GPUFLOW_RENTAL_ID $CUDA_VISIBLE_DEVICES\" > {}; exec sleep 600",
                ready.display()
            ),
            log_path: dir.path().join("logs/7.log"),
        };
        let mut workload = Workload::start(&spec).unwrap();
        let written = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Ok(text) = std::fs::read_to_string(&ready)
                    && text.ends_with('\n')
                {
                    return text;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("workload wrote its marker within 10 s");
        assert_eq!(written, "7 GPU-a,GPU-b\n");
        assert!(workload.is_running());
        let pid = workload.pid() as i32;
        workload.stop().await;
        // SAFETY: signal 0 only checks whether the process exists.
        assert_ne!(unsafe { libc::kill(pid, 0) }, 0, "workload process still exists");
    }
}

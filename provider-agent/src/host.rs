//! The machine around the GPUs, read from the host: its CPUs, memory and free disk go in
//! the offer, and each rental gets a share of the CPUs and memory in proportion to the
//! GPUs it rents.

use std::path::Path;

use gpuflow_protocol::Share;

/// Processes one rented GPU's share allows.
const PIDS_PER_GPU: u64 = 4096;
/// Memory shares are whole mebibytes, as the kernel sizes `/dev/shm` in pages.
const MIB: u64 = 1 << 20;

/// The machine the offered GPUs sit in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Host {
    /// Logical CPUs.
    pub cpus: u64,
    /// Memory, bytes (`MemTotal`); 0 when unreadable.
    pub memory_bytes: u64,
    /// Free space, bytes, on the filesystem the workloads write to; `None` when unreadable.
    pub disk_free_bytes: Option<u64>,
}

impl Host {
    /// This machine: its CPUs, `/proc/meminfo`, and the free space at `disk`.
    pub fn read(disk: &Path) -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
        let memory_kb = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|text| {
                let line = text.lines().find(|l| l.starts_with("MemTotal:"))?.to_owned();
                line.split_whitespace().nth(1)?.parse::<u64>().ok()
            })
            .unwrap_or(0);
        Self {
            cpus,
            memory_bytes: memory_kb.saturating_mul(1024),
            disk_free_bytes: free_space(disk),
        }
    }

    /// What a rental of `rented` of the `offered` GPUs gets: that share of the CPUs (at
    /// least one) and of nine tenths of the memory (the rest is the host's), half of its
    /// memory as `/dev/shm` (data loaders pass batches through it; Docker's default is
    /// 64 MB), both in whole MiB, and 4096 processes per GPU.
    pub fn share(&self, offered: usize, rented: usize) -> Share {
        let offered = offered.max(1) as u64;
        let rented = (rented as u64).clamp(1, offered);
        let part =
            |total: u64| (u128::from(total) * u128::from(rented) / u128::from(offered)) as u64;
        let memory_bytes = part(self.memory_bytes / 10 * 9) / MIB * MIB;
        Share {
            cpu_millis: part(self.cpus.saturating_mul(1000)).max(1000),
            memory_bytes,
            shm_bytes: memory_bytes / 2 / MIB * MIB,
            pids: PIDS_PER_GPU * rented,
        }
    }
}

/// Free bytes for an unprivileged writer on the filesystem holding `path`.
fn free_space(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is a NUL-terminated string and `stat` is written by statvfs before
    // it is read, which happens only when the call succeeded.
    let stat = unsafe {
        if libc::statvfs(path.as_ptr(), stat.as_mut_ptr()) != 0 {
            return None;
        }
        stat.assume_init()
    };
    Some((stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rental_gets_the_machines_cpus_and_memory_in_proportion_to_its_gpus() {
        let host = Host { cpus: 32, memory_bytes: 256_000_000_000, disk_free_bytes: None };
        let two = host.share(8, 2);
        assert_eq!(two.cpu_millis, 8_000, "a quarter of 32 CPUs");
        // A quarter of nine tenths of 256 GB, 57.6 GB, in whole MiB; half of it as shm.
        assert_eq!(two.memory_bytes, 54_931 * MIB);
        assert_eq!(two.shm_bytes, 27_465 * MIB);
        assert_eq!(two.pids, 8192);
        // Never less than one CPU, never more than the machine.
        let small = Host { cpus: 2, ..host };
        assert_eq!(small.share(8, 1).cpu_millis, 1_000);
        assert_eq!(host.share(8, 99).cpu_millis, 32_000);
        assert_eq!(Host { cpus: 3, ..host }.share(2, 1).cpu_millis, 1_500);
    }

    #[test]
    fn the_host_is_read_from_the_system() {
        let dir = std::env::temp_dir();
        let host = Host::read(&dir);
        assert!(host.cpus >= 1);
        assert!(host.memory_bytes > 0, "MemTotal of /proc/meminfo");
        assert!(host.disk_free_bytes.is_some_and(|b| b > 0), "free space at {}", dir.display());
        assert_eq!(free_space(Path::new("/no/such/place")), None);
    }
}

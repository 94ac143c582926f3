//! One agent per data directory.
//!
//! Two agents on one data directory would share a peer id and a rental database: each
//! would refuse rentals the other runs, and two rentals could end up on one GPU. `run`
//! therefore holds an exclusive lock on `agent.lock` in the data directory for as long as
//! it runs; the kernel releases it when the process exits, even after `kill -9`, so a
//! crashed agent never blocks the next start.

use std::{
    fs::{File, OpenOptions, TryLockError},
    io::{Read, Seek, Write},
    path::{Path, PathBuf},
};

/// Name of the lock file inside the data directory.
pub const LOCK_FILE: &str = "agent.lock";

/// Why the data directory could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds the lock.
    #[error(
        "another gpuflow-provider{} is already running with the data dir {}; stop it first, \
         or give this agent a data dir of its own with --data-dir",
        .pid.map(|pid| format!(" (pid {pid})")).unwrap_or_default(),
        .dir.display()
    )]
    Held {
        /// The data directory.
        dir: PathBuf,
        /// The process holding it, as it wrote in the lock file.
        pid: Option<u32>,
    },
    /// The lock file could not be created or locked.
    #[error("locking the data dir {}: {source}", .dir.display())]
    Io {
        /// The data directory.
        dir: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}

/// The held lock; released when dropped or when the process exits.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// Takes the exclusive lock on `dir` (created if missing), failing at once when another
    /// process holds it, and records this process's id in the lock file.
    pub fn acquire(dir: &Path) -> Result<Self, LockError> {
        let io = |source| LockError::Io { dir: dir.to_path_buf(), source };
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(LOCK_FILE))
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let pid =
                    file.read_to_string(&mut text).ok().and_then(|_| text.trim().parse().ok());
                return Err(LockError::Held { dir: dir.to_path_buf(), pid });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        file.flush().map_err(io)?;
        Ok(Self { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_dir_fails_naming_the_holder_and_a_released_one_is_taken() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(dir.path()).unwrap();
        let second = DataDirLock::acquire(dir.path()).unwrap_err();
        let message = second.to_string();
        assert!(
            matches!(second, LockError::Held { pid: Some(pid), .. } if pid == std::process::id()),
            "{message}"
        );
        assert!(message.contains(&dir.path().display().to_string()), "{message}");
        assert!(message.contains("--data-dir"), "{message}");
        drop(first);
        DataDirLock::acquire(dir.path()).expect("a released lock is taken again");
    }
}

use std::path::PathBuf;

/// Why the offer store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The directory meant to hold the database could not be created.
    #[error("cannot create directory {}: {source}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The database file could not be opened or configured.
    #[error("cannot open database {}: {source}", path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// The underlying SQLite error.
        source: rusqlite::Error,
    },
    /// The database carries a schema version this build does not know, usually because a
    /// newer gpuflow-node wrote it.
    #[error("database schema version {found} is unknown; this build supports up to {supported}")]
    UnknownSchema {
        /// Version found in the file.
        found: i64,
        /// Highest version this build can use.
        supported: i64,
    },
    /// The configured uptime bucket width does not split a day into whole bytes of bits.
    #[error(
        "uptime buckets of {0} s are not supported; pick a width that divides 10800 \
         (60 is the default)"
    )]
    BucketWidth(u64),
    /// The thread owning the database could not be started.
    #[error("cannot start the store thread: {0}")]
    Spawn(std::io::Error),
    /// A migration failed; the database was left at the version before it.
    #[error("cannot migrate the database to schema version {version}: {source}")]
    Migrate {
        /// The version the failed migration leads to.
        version: usize,
        /// The underlying SQLite error.
        source: rusqlite::Error,
    },
    /// An offer field does not fit SQLite's signed 64-bit integers; the offer is refused
    /// and should be counted as invalid input, not treated as a store failure.
    #[error("offer field `{field}` = {value} is out of the storable range")]
    OutOfRange {
        /// Name of the field.
        field: &'static str,
        /// Its value.
        value: u128,
    },
    /// An SQLite statement failed.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored JSON column could not be encoded or decoded.
    #[error("stored JSON is invalid: {0}")]
    Json(#[from] serde_json::Error),
    /// The thread owning the database has stopped, so requests cannot be answered.
    #[error("the store has shut down")]
    Closed,
    /// The transaction holding this write could not be committed, so nothing of it was
    /// stored.
    #[error("could not commit: {0}")]
    Commit(String),
    /// A stored value no longer reads as what was written.
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// A blocking read task panicked or was cancelled.
    #[error("a database read did not finish: {0}")]
    Read(String),
}

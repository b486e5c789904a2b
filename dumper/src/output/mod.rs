//! Where a capture's artifacts go, and how each becomes visible.
//!
//! A [`Destination`] is one dump's place (a private directory on a disk or
//! an NFS export today; a stream to a server later); an [`Artifact`] is one
//! file being written there, visible under its name only once it is whole
//! and durable. The stream writes into an artifact through `io::Write` and
//! knows nothing of directories, renames or fsyncs.

mod dir;
mod file;

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;

pub use self::dir::{
    create_private_file, incomplete_path, publish, DirDestination, INCOMPLETE_SUFFIX,
};
pub use self::file::{FileSink, WRITEBACK_CHUNK};

/// A failed step of writing an artifact, with the path it concerns.
#[derive(Debug, Error)]
pub enum OutputError {
    #[error("cannot create directory {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot create {path}")]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot make {path} durable")]
    Sync {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot rename {from} to {to}")]
    Rename {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Where one capture's artifacts go. Shared between PID 1's main thread and
/// its watchdog, which writes the record when a deadline cuts the dump.
pub trait Destination: Send + Sync {
    /// Starts the artifact `name`; it is not visible under that name until
    /// [`Artifact::commit`].
    fn create(&self, name: &str) -> Result<Box<dyn Artifact>, OutputError>;
    /// Writes a small artifact whole, replacing one of the same name, and
    /// makes it durable before returning.
    fn put(&self, name: &str, bytes: &[u8]) -> Result<(), OutputError>;
    /// Where it is, for messages (`/mnt/target0/var/crash/202612030915`).
    fn describe(&self) -> String;
    /// Writes `bytes` of incompressible data to a scratch artifact, durable
    /// as a dump is, and removes it; returns how long the writing took: the
    /// plain write rate of this destination, to compare the dump's with.
    fn measure_write_rate(&self, bytes: u64) -> Result<Duration, OutputError>;
}

/// The scratch artifact of [`Destination::measure_write_rate`].
pub const WRITE_RATE_SCRATCH: &str = ".lifeboat-write-rate";

/// 1 MiB that no compressor shrinks (xorshift64), written over and over
/// to measure a write rate: neither a disk nor a network path compresses
/// or deduplicates across a whole MiB.
pub fn incompressible_block() -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut block = Vec::with_capacity(1 << 20);
    while block.len() < 1 << 20 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        block.extend_from_slice(&state.to_le_bytes());
    }
    block
}

/// One artifact being written.
pub trait Artifact: io::Write + Send {
    /// Makes what was written durable, then visible under the artifact's
    /// name; returns the bytes written.
    fn commit(self: Box<Self>) -> Result<u64, OutputError>;
    /// Where the unfinished artifact is, for messages.
    fn describe(&self) -> String;
}

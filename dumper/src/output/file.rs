//! A file written sequentially with bounded page-cache use.
//!
//! A capture kernel has a few tens of MiB of RAM. Left alone, the page cache
//! would fill with dirty pages of the dump file until writeback throttles
//! the writer, starving the rest of the system; so the file sink pushes each
//! chunk to the device as it goes and drops it from the cache once written.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsRawFd;

use nix::fcntl::{posix_fadvise, PosixFadviseAdvice};

use crate::sys::{sync_file_range, SyncRange};

/// Bytes written between two writeback steps.
pub const WRITEBACK_CHUNK: u64 = 4 << 20;

/// Chunks submitted for writeback and not yet waited for. The page cache
/// holds at most one more chunk than this of the dump (16 MiB); the wait
/// for a chunk comes this many chunks after its submission, which gives
/// the device time to write it: waiting on the chunk just before cost
/// about a tenth of the time of a fast dump on a virtio disk.
const CHUNKS_IN_WRITEBACK: usize = 3;

/// A file written sequentially with bounded page-cache use.
pub struct FileSink {
    file: File,
    written: u64,
    /// The ends of the chunks submitted for writeback and not yet waited
    /// for, oldest first; the first starts at `retired`.
    in_writeback: VecDeque<u64>,
    /// Everything before this offset is on the device and out of the cache.
    retired: u64,
}

impl FileSink {
    pub fn new(file: File) -> FileSink {
        FileSink {
            file,
            written: 0,
            in_writeback: VecDeque::with_capacity(CHUNKS_IN_WRITEBACK + 1),
            retired: 0,
        }
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    /// Everything before this offset has been submitted for writeback.
    fn submitted(&self) -> u64 {
        self.in_writeback.back().copied().unwrap_or(self.retired)
    }

    /// Starts writeback of what was written since the last call, then, once
    /// more than `CHUNKS_IN_WRITEBACK` chunks are in writeback, waits for the
    /// oldest and drops it from the page cache.
    ///
    /// A failed writeback (EIO, ENOSPC, EDQUOT) is an error of the dump: on
    /// NFS and other filesystems that allocate late, a full or failing
    /// target says so here, not at `write`, and the dump must stop within a
    /// chunk rather than at the final fsync. A file that cannot do these
    /// hints at all (a pipe, a filesystem without them) is written without.
    fn write_back(&mut self) -> io::Result<()> {
        let fd = self.file.as_raw_fd();
        let submitted = self.submitted();
        writeback_result(sync_file_range(
            &self.file,
            submitted,
            self.written - submitted,
            SyncRange::Start,
        ))?;
        self.in_writeback.push_back(self.written);
        while self.in_writeback.len() > CHUNKS_IN_WRITEBACK {
            let Some(end) = self.in_writeback.pop_front() else {
                break;
            };
            let len = end - self.retired;
            writeback_result(sync_file_range(
                &self.file,
                self.retired,
                len,
                SyncRange::Complete,
            ))?;
            let _ = posix_fadvise(
                fd,
                self.retired as i64,
                len as i64,
                PosixFadviseAdvice::POSIX_FADV_DONTNEED,
            );
            self.retired = end;
        }
        Ok(())
    }

    /// Makes everything durable (data and size) and returns the file.
    pub fn finish(mut self) -> io::Result<File> {
        self.file.flush()?;
        self.file.sync_all()?;
        Ok(self.file)
    }
}

/// A writeback step's outcome: errors that say the file cannot take the
/// hint are no errors of the dump; every other one is.
fn writeback_result(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(error) if hint_unsupported(&error) => Ok(()),
        other => other,
    }
}

/// ESPIPE: a pipe or socket; EINVAL, EOPNOTSUPP, ENOSYS: a file or kernel
/// without the call.
fn hint_unsupported(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::ESPIPE | libc::EINVAL | libc::EOPNOTSUPP | libc::ENOSYS)
    )
}

impl Write for FileSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        if self.written - self.submitted() >= WRITEBACK_CHUNK {
            self.write_back()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn writeback_errors_stop_the_dump_unless_the_hint_is_unsupported() {
        let cases = [
            (libc::EIO, false),
            (libc::ENOSPC, false),
            (libc::EDQUOT, false),
            (libc::ESPIPE, true),
            (libc::EINVAL, true),
            (libc::EOPNOTSUPP, true),
            (libc::ENOSYS, true),
        ];
        for (errno, ignored) in cases {
            let result = writeback_result(Err(io::Error::from_raw_os_error(errno)));
            assert_eq!(result.is_ok(), ignored, "errno {errno}");
        }
        assert!(writeback_result(Ok(())).is_ok());
    }

    #[test]
    fn a_pipe_takes_the_stream_without_writeback() {
        // sync_file_range on a pipe fails with ESPIPE: the sink goes on.
        let (reader, writer) = nix::unistd::pipe().unwrap();
        let drain = std::thread::spawn(move || {
            let mut reader = File::from(reader);
            let mut sink = Vec::new();
            reader.read_to_end(&mut sink).unwrap();
            sink.len()
        });
        let mut sink = FileSink::new(File::from(writer));
        let block = vec![7u8; 1 << 20];
        for _ in 0..20 {
            sink.write_all(&block).unwrap();
        }
        drop(sink);
        assert_eq!(drain.join().unwrap(), 20 << 20);
    }

    #[test]
    fn everything_written_reaches_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let mut sink = FileSink::new(File::create(&path).unwrap());
        let block: Vec<u8> = (0..1_000_003u32).map(|i| (i % 251) as u8).collect();
        for _ in 0..20 {
            sink.write_all(&block).unwrap();
        }
        assert_eq!(sink.written(), 20 * block.len() as u64);
        drop(sink.finish().unwrap());
        let mut back = Vec::new();
        File::open(&path).unwrap().read_to_end(&mut back).unwrap();
        assert_eq!(back.len(), 20 * block.len());
        assert!(back.chunks(block.len()).all(|c| c == block));
    }
}

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
    /// oldest and drops it from the page cache. Filesystems that do not
    /// support these hints (some network ones) just ignore them.
    fn write_back(&mut self) {
        let fd = self.file.as_raw_fd();
        let submitted = self.submitted();
        let _ = sync_file_range(
            &self.file,
            submitted,
            self.written - submitted,
            SyncRange::Start,
        );
        self.in_writeback.push_back(self.written);
        while self.in_writeback.len() > CHUNKS_IN_WRITEBACK {
            let Some(end) = self.in_writeback.pop_front() else {
                break;
            };
            let len = end - self.retired;
            let _ = sync_file_range(&self.file, self.retired, len, SyncRange::Complete);
            let _ = posix_fadvise(
                fd,
                self.retired as i64,
                len as i64,
                PosixFadviseAdvice::POSIX_FADV_DONTNEED,
            );
            self.retired = end;
        }
    }

    /// Makes everything durable (data and size) and returns the file.
    pub fn finish(mut self) -> io::Result<File> {
        self.file.flush()?;
        self.file.sync_all()?;
        Ok(self.file)
    }
}

impl Write for FileSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        if self.written - self.submitted() >= WRITEBACK_CHUNK {
            self.write_back();
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

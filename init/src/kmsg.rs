//! What the kernel printed while a system call ran, read from `/dev/kmsg`.
//!
//! mount(2) says only an errno; the reason is in the kernel log (`EXT4-fs
//! (vda): Cannot load crc32c driver.` behind ENOENT, `XFS (vda): Invalid
//! superblock magic number` behind EINVAL). A cursor opened at the end of
//! the log before the call reads the records that arrived during it.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// At most this many lines are kept: a reason is a line or two, and a
/// flood (a dying disk) must not fill PID 1's memory or its log.
const MAX_LINES: usize = 8;

/// A reader of the kernel log records that arrive after it was opened.
pub struct KernelLogCursor {
    file: File,
}

impl KernelLogCursor {
    /// Opens `path` (`/dev/kmsg`) positioned after the last record; `None`
    /// when it cannot be opened, so that callers go on without reasons.
    pub fn at_end(path: &Path) -> Option<KernelLogCursor> {
        let mut file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .ok()?;
        file.seek(SeekFrom::End(0)).ok()?;
        Some(KernelLogCursor { file })
    }

    /// The kernel's own messages (not userspace's, ours included) logged
    /// since the cursor was opened or last read, oldest first.
    pub fn kernel_lines(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        // One read returns one record; the kernel refuses buffers smaller
        // than the record, and records are at most about 1 KiB of text.
        let mut record = [0u8; 8192];
        loop {
            match self.file.read(&mut record) {
                Ok(0) => break,
                Ok(length) => {
                    if let Some(line) = kernel_message(&record[..length]) {
                        if lines.len() == MAX_LINES {
                            lines.remove(0);
                        }
                        lines.push(line);
                    }
                }
                // Records were overwritten before we read them; the next
                // read goes on from the oldest one left.
                Err(error) if error.raw_os_error() == Some(libc::EPIPE) => continue,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                // WouldBlock: nothing more. Anything else: nothing we can do.
                Err(_) => break,
            }
        }
        lines
    }
}

/// The text of one `/dev/kmsg` record when the kernel itself logged it:
/// `<prefix>;<text>\n` followed by ` KEY=value` lines, where the prefix is
/// `<priority>,<sequence>,<microseconds>,<flags>` and the priority's
/// facility (priority / 8) is 0 for the kernel.
fn kernel_message(record: &[u8]) -> Option<String> {
    let record = String::from_utf8_lossy(record);
    let (prefix, rest) = record.split_once(';')?;
    let priority: u32 = prefix.split(',').next()?.parse().ok()?;
    if priority >> 3 != 0 {
        return None;
    }
    let text = rest.split('\n').next().unwrap_or("").trim_end();
    (!text.is_empty()).then(|| text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_parsed_and_userspace_skipped() {
        let cases: &[(&[u8], Option<&str>)] = &[
            (
                b"3,1234,5678901,-;EXT4-fs (vda): Cannot load crc32c driver.\n",
                Some("EXT4-fs (vda): Cannot load crc32c driver."),
            ),
            (
                b"3,77,100,-;XFS (vda): Invalid superblock magic number\n SUBSYSTEM=block\n DEVICE=b254:0\n",
                Some("XFS (vda): Invalid superblock magic number"),
            ),
            (b"6,78,101,c;a;b;c\n", Some("a;b;c")),
            // Our own lines, written as <15> (user facility).
            (b"15,79,102,-;lifeboat: mounting /dev/vda\n", None),
            (b"14,80,103,-;systemd: hello\n", None),
            (b"6,81,104,-;\n", None),
            (b"garbage", None),
            (b"x,1,2,-;text\n", None),
        ];
        for (record, want) in cases {
            assert_eq!(
                kernel_message(record).as_deref(),
                *want,
                "{}",
                String::from_utf8_lossy(record)
            );
        }
    }

    #[test]
    fn a_cursor_reads_only_what_follows_it() {
        // A regular file stands in for /dev/kmsg: one record per read does
        // not hold there, so each "record" is written as one whole file.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kmsg");
        std::fs::write(&path, b"3,1,1,-;before\n").unwrap();
        let mut cursor = KernelLogCursor::at_end(&path).unwrap();
        assert!(cursor.kernel_lines().is_empty());
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut file| io::Write::write_all(&mut file, b"3,2,2,-;after\n"))
            .unwrap();
        assert_eq!(cursor.kernel_lines(), ["after"]);
        assert!(KernelLogCursor::at_end(&dir.path().join("missing")).is_none());
    }
}

//! Finding the dump device without udev: what blkid does, for the few
//! filesystems lifeboat writes to.
//!
//! The capture kernel has no udev, hence no `/dev/disk/by-uuid`. PID 1 lists
//! `/sys/class/block`, opens each device node (devtmpfs creates them) and
//! reads its superblock to learn the filesystem type, UUID and label, and the
//! parent disk's partition table for PARTUUIDs. Each read is a few KiB at a
//! fixed offset, so a scan costs a few KiB per device; the exception is a
//! GPT's entry array (16 KiB on disks partitioned by common tools), read
//! once per disk.
//!
//! The disks are whatever the machine has, damaged ones included, and PID 1
//! aborts on a panic: every field is read with [`dumper::bytes::Bytes`], and
//! a structure too short for its fields is "not this filesystem" or "no
//! partition table", never a panic. Only I/O errors are errors.
//!
//! - [`probe_filesystem`] (`probe.rs`): the superblocks of ext2/3/4, xfs,
//!   btrfs and vfat;
//! - [`read_partitions`] (`partitions.rs`): GPT and DOS partition tables;
//! - [`scan`] and [`find`] (`scan.rs`): walking `/sys/class/block` and
//!   matching a [`DeviceSpec`](lifeboat_config::DeviceSpec).

#![deny(unsafe_code)]

mod partitions;
mod probe;
mod scan;
#[cfg(test)]
mod test_tools;

use std::fmt::Write as _;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;

use thiserror::Error;

pub use partitions::read_partitions;
pub use probe::probe_filesystem;
pub use scan::{find, scan};

/// What a device's superblock says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FsInfo {
    /// The type as mount(2) takes it: "ext4", "ext3", "ext2", "xfs",
    /// "btrfs" or "vfat".
    pub fstype: &'static str,
    /// Lowercase dashed UUID; for vfat the volume serial as blkid shows it,
    /// uppercase `ABCD-1234` (compare UUIDs case-insensitively).
    pub uuid: Option<String>,
    pub label: Option<String>,
}

/// One entry of a partition table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// The number Linux gives the partition (`vdb3` is 3).
    pub number: u32,
    /// Lowercase: the GPT entry's unique GUID, or for a DOS partition table
    /// `<disk signature, 8 hex digits>-<number, 2 hex digits>`, as blkid.
    pub partuuid: String,
    pub first_lba: u64,
    pub last_lba: u64,
}

/// A block device found by [`scan`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockDevice {
    /// The kernel's name: `vdb1`.
    pub name: String,
    /// `<dev_root>/<name>`.
    pub dev_path: PathBuf,
    pub partuuid: Option<String>,
    pub fs: Option<FsInfo>,
}

/// Why a device could not be probed. What a device holds is never an
/// error: a structure that is not there, or damaged, is `None` or an empty
/// partition list.
#[derive(Debug, Error)]
pub enum BlkidError {
    #[error("cannot read the {what} at offset {offset:#x}")]
    Read {
        what: &'static str,
        offset: u64,
        #[source]
        source: io::Error,
    },
    #[error("cannot find the size of the disk")]
    DiskSize {
        #[source]
        source: io::Error,
    },
    #[error("sector size {size} is not a power of two of at least 512")]
    SectorSize { size: u64 },
}

/// Reads `buf.len()` bytes of the `what` at `offset`; `false` when the
/// device ends first, which for a probe means "not this filesystem", not an
/// error.
pub(crate) fn read_at<R: Read + Seek>(
    dev: &mut R,
    what: &'static str,
    offset: u64,
    buf: &mut [u8],
) -> Result<bool, BlkidError> {
    let read = dev
        .seek(SeekFrom::Start(offset))
        .and_then(|_| dev.read_exact(buf));
    match read {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(source) => Err(BlkidError::Read {
            what,
            offset,
            source,
        }),
    }
}

/// 16 bytes as a lowercase dashed UUID, in the order given:
/// `00112233-4455-6677-8899-aabbccddeeff`.
pub(crate) fn dashed_hex(bytes: [u8; 16]) -> String {
    let mut text = String::with_capacity(36);
    for (index, byte) in bytes.iter().enumerate() {
        if matches!(index, 4 | 6 | 8 | 10) {
            text.push('-');
        }
        // Writing to a String cannot fail.
        let _ = write!(text, "{byte:02x}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_tools::*;
    use std::fs::File;
    use std::io::Cursor;

    /// Damaged copies of real superblocks and tables must give an answer,
    /// never a panic: PID 1 probes whatever disks the machine has.
    #[test]
    fn damaged_devices_do_not_panic() {
        let dir = tempfile::tempdir().unwrap();
        let disk = dir.path().join("disk.img");
        partitioned_disk(&disk, DOS_SCRIPT);
        let gpt = dir.path().join("gpt.img");
        partitioned_disk(&gpt, GPT_SCRIPT);
        let fat = dir.path().join("fat.img");
        sparse_file(&fat, 300 << 20);
        run(
            "mkfs.vfat",
            &["-F", "32", fat.to_str().unwrap()],
            "dosfstools",
        );
        let ext = dir.path().join("ext.img");
        sparse_file(&ext, 16 << 20);
        run(
            "mkfs.ext4",
            &["-q", "-F", ext.to_str().unwrap()],
            "e2fsprogs",
        );
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut random = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for image in [&disk, &gpt, &fat, &ext] {
            let mut head = vec![0u8; 80 << 10];
            File::open(image).unwrap().read_exact(&mut head).unwrap();
            for _ in 0..2000 {
                let mut damaged = head.clone();
                for _ in 0..1 + random() % 8 {
                    // Mostly the first sectors, where the structures are.
                    let span = if random() % 4 == 0 {
                        damaged.len()
                    } else {
                        2048
                    };
                    let at = (random() % span as u64) as usize;
                    damaged[at] = random() as u8;
                }
                let _ = probe_filesystem(&mut Cursor::new(&damaged)).unwrap();
                let _ = read_partitions(&mut Cursor::new(&damaged), 512).unwrap();
            }
        }
    }
}

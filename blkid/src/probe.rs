//! Filesystem superblocks: ext2/3/4, xfs, btrfs and vfat, each told by its
//! magic and sane fields, with the UUID and label as blkid reports them.
//!
//! Each probe takes its whole structure (superblock or boot sector) or
//! nothing: a device too short for it does not hold that filesystem.

use std::io::{Read, Seek, SeekFrom};

use dumper::bytes::Bytes;

use crate::{dashed_hex, read_at, BlkidError, FsInfo};

/// The first bytes of a device, read once for every probe: they hold the
/// FAT boot sector, the xfs superblock and the ext superblock.
const HEAD_BYTES: usize = 2048;
/// The ext superblock: 1024 bytes at 1024.
const EXT_SUPERBLOCK_OFFSET: usize = 1024;
const EXT_SUPERBLOCK_BYTES: usize = 1024;
/// The xfs superblock fills the first sector; its fields take less.
const XFS_SUPERBLOCK_BYTES: usize = 512;
/// The btrfs superblock (BTRFS_SUPER_INFO_SIZE) at 64 KiB.
const BTRFS_SUPERBLOCK_OFFSET: u64 = 64 * 1024;
const BTRFS_SUPERBLOCK_BYTES: usize = 4096;
/// The FAT boot sector, which holds the BIOS parameter block.
const FAT_BOOT_SECTOR_BYTES: usize = 512;
/// The part of a FAT root directory searched for the volume label.
const FAT_ROOT_SEARCH_BYTES: u64 = 4096;

/// A UUID stored as 16 bytes in RFC 4122 byte order (ext, xfs, btrfs);
/// `None` when all zero, as blkid reports no UUID then.
fn uuid_from_bytes(bytes: [u8; 16]) -> Option<String> {
    (bytes != [0; 16]).then(|| dashed_hex(bytes))
}

/// A fixed-size label field: up to the first NUL, trailing spaces dropped
/// (FAT pads with spaces); `None` when empty.
fn label_from_bytes(bytes: &[u8]) -> Option<String> {
    let text = bytes.split(|&b| b == 0).next().unwrap_or_default();
    let label = String::from_utf8_lossy(text);
    let label = label.trim_end_matches(' ');
    (!label.is_empty()).then(|| label.to_owned())
}

/// Identifies the filesystem on a device from its superblock: ext2/3/4,
/// xfs, btrfs or vfat (FAT12/16/32). `Ok(None)` when none of them is there.
pub fn probe_filesystem<R: Read + Seek>(dev: &mut R) -> Result<Option<FsInfo>, BlkidError> {
    // A device shorter than the head is probed for what it has: each probe
    // then finds its structure whole or not at all.
    let mut head = Vec::with_capacity(HEAD_BYTES);
    dev.seek(SeekFrom::Start(0))
        .and_then(|_| dev.by_ref().take(HEAD_BYTES as u64).read_to_end(&mut head))
        .map_err(|source| BlkidError::Read {
            what: "first sectors",
            offset: 0,
            source,
        })?;
    let head = Bytes::new(&head);
    if head.is_empty() {
        return Ok(None);
    }
    if let Some(info) = probe_ext(head) {
        return Ok(Some(info));
    }
    if let Some(info) = probe_xfs(head) {
        return Ok(Some(info));
    }
    if let Some(info) = probe_btrfs(dev)? {
        return Ok(Some(info));
    }
    probe_vfat(dev, head)
}

/// ext2, ext3 and ext4 share a superblock (magic 0xEF53 at 1024 + 0x38); the
/// type is told from the feature flags, as blkid does: ext2 and ext3 are
/// those without features their drivers lack, ext3 has a journal.
fn probe_ext(head: Bytes) -> Option<FsInfo> {
    let sb = head.sub(EXT_SUPERBLOCK_OFFSET, EXT_SUPERBLOCK_BYTES).ok()?;
    if sb.u16_le(0x38).ok()? != 0xef53 {
        return None;
    }
    const COMPAT_HAS_JOURNAL: u32 = 0x0004;
    const INCOMPAT_JOURNAL_DEV: u32 = 0x0008;
    // FILETYPE | META_BG, plus RECOVER for ext3.
    const EXT2_INCOMPAT: u32 = 0x0002 | 0x0010;
    const EXT3_INCOMPAT: u32 = EXT2_INCOMPAT | 0x0004;
    // SPARSE_SUPER | LARGE_FILE | BTREE_DIR.
    const EXT23_RO_COMPAT: u32 = 0x0001 | 0x0002 | 0x0004;
    let compat = sb.u32_le(0x5c).ok()?;
    let incompat = sb.u32_le(0x60).ok()?;
    let ro_compat = sb.u32_le(0x64).ok()?;
    if incompat & INCOMPAT_JOURNAL_DEV != 0 {
        // An external journal, not a filesystem.
        return None;
    }
    let old_ro_compat = ro_compat & !EXT23_RO_COMPAT == 0;
    let fstype = if compat & COMPAT_HAS_JOURNAL != 0 {
        if incompat & !EXT3_INCOMPAT == 0 && old_ro_compat {
            "ext3"
        } else {
            "ext4"
        }
    } else if incompat & !EXT2_INCOMPAT == 0 && old_ro_compat {
        "ext2"
    } else {
        "ext4"
    };
    Some(FsInfo {
        fstype,
        uuid: uuid_from_bytes(sb.array(0x68).ok()?),
        label: label_from_bytes(sb.slice(0x78, 16).ok()?),
    })
}

/// The xfs superblock is at 0, big-endian, magic "XFSB".
fn probe_xfs(head: Bytes) -> Option<FsInfo> {
    let sb = head.sub(0, XFS_SUPERBLOCK_BYTES).ok()?;
    if sb.slice(0, 4).ok()? != b"XFSB" {
        return None;
    }
    let block_size = sb.u32_be(4).ok()?;
    if !block_size.is_power_of_two() || !(512..=65536).contains(&block_size) {
        return None;
    }
    Some(FsInfo {
        fstype: "xfs",
        uuid: uuid_from_bytes(sb.array(32).ok()?),
        label: label_from_bytes(sb.slice(108, 12).ok()?),
    })
}

/// The btrfs superblock is at 64 KiB.
fn probe_btrfs<R: Read + Seek>(dev: &mut R) -> Result<Option<FsInfo>, BlkidError> {
    let mut sb = vec![0u8; BTRFS_SUPERBLOCK_BYTES];
    if !read_at(dev, "btrfs superblock", BTRFS_SUPERBLOCK_OFFSET, &mut sb)? {
        return Ok(None);
    }
    Ok(parse_btrfs(Bytes::new(&sb)))
}

/// A btrfs superblock: magic "_BHRfS_M" at 0x40; it records its own offset,
/// which tells it from a backup copy seen through a partition that starts
/// at one.
fn parse_btrfs(sb: Bytes) -> Option<FsInfo> {
    let sb = sb.sub(0, BTRFS_SUPERBLOCK_BYTES).ok()?;
    if sb.slice(0x40, 8).ok()? != b"_BHRfS_M" || sb.u64_le(0x30).ok()? != BTRFS_SUPERBLOCK_OFFSET {
        return None;
    }
    Some(FsInfo {
        fstype: "btrfs",
        uuid: uuid_from_bytes(sb.array(0x20).ok()?),
        label: label_from_bytes(sb.slice(0x12b, 256).ok()?),
    })
}

/// What the FAT boot sector's BIOS parameter block says, when it is one.
pub(crate) struct FatBoot {
    bytes_per_sector: u64,
    sectors_per_cluster: u64,
    reserved_sectors: u64,
    fat_count: u64,
    root_entries: u64,
    /// Sectors per FAT; the FAT32 field when the FAT12/16 one is zero.
    fat_sectors: u64,
    /// FAT32's root directory cluster; `None` for FAT12/16.
    root_cluster: Option<u64>,
    serial: Option<u32>,
    label: Option<String>,
}

/// The BIOS parameter block of a FAT boot sector (the first 512 bytes of
/// `sector`), when it is one.
pub(crate) fn parse_fat_boot(sector: Bytes) -> Option<FatBoot> {
    let sector = sector.sub(0, FAT_BOOT_SECTOR_BYTES).ok()?;
    let jump = sector.u8(0).ok()?;
    let bytes_per_sector = sector.u16_le(0x0b).ok()?;
    let sectors_per_cluster = sector.u8(0x0d).ok()?;
    let reserved_sectors = sector.u16_le(0x0e).ok()?;
    let fat_count = sector.u8(0x10).ok()?;
    let media = sector.u8(0x15).ok()?;
    let valid = matches!(jump, 0xeb | 0xe9)
        && matches!(bytes_per_sector, 512 | 1024 | 2048 | 4096)
        && sectors_per_cluster.is_power_of_two()
        && reserved_sectors != 0
        && fat_count != 0
        && (media == 0xf0 || media >= 0xf8);
    if !valid {
        return None;
    }
    let fat16_sectors = sector.u16_le(0x16).ok()?;
    // FAT32 moved the extended BPB (signature, serial, label, type name)
    // from 0x24 to 0x40 to make room for its own fields.
    let (fat_sectors, root_cluster, extended) = if fat16_sectors == 0 {
        if sector.slice(0x52, 8).ok()? != b"FAT32   " {
            return None;
        }
        (
            u64::from(sector.u32_le(0x24).ok()?),
            Some(u64::from(sector.u32_le(0x2c).ok()?)),
            0x40,
        )
    } else {
        if sector.slice(0x36, 3).ok()? != b"FAT" {
            return None;
        }
        (u64::from(fat16_sectors), None, 0x24)
    };
    // Signature 0x29 has a serial and a label, 0x28 only a serial.
    let signature = sector.u8(extended + 2).ok()?;
    let serial = match signature {
        0x28 | 0x29 => Some(sector.u32_le(extended + 3).ok()?),
        _ => None,
    };
    let label = match signature {
        0x29 => label_from_bytes(sector.slice(extended + 7, 11).ok()?),
        _ => None,
    }
    .filter(|label| label != "NO NAME");
    Some(FatBoot {
        bytes_per_sector: u64::from(bytes_per_sector),
        sectors_per_cluster: u64::from(sectors_per_cluster),
        reserved_sectors: u64::from(reserved_sectors),
        fat_count: u64::from(fat_count),
        root_entries: u64::from(sector.u16_le(0x11).ok()?),
        fat_sectors,
        root_cluster,
        serial,
        label,
    })
}

/// FAT12/16/32, identified by a sane BIOS parameter block and the type name
/// mkfs.fat and every other formatter writes.
fn probe_vfat<R: Read + Seek>(dev: &mut R, head: Bytes) -> Result<Option<FsInfo>, BlkidError> {
    let Some(boot) = parse_fat_boot(head) else {
        return Ok(None);
    };
    // The label that Windows and blkid show is the volume-label entry of the
    // root directory; the boot sector's copy is often stale after a rename.
    let label = fat_root_label(dev, &boot)?.or(boot.label);
    Ok(Some(FsInfo {
        fstype: "vfat",
        uuid: boot.serial.map(fat_serial_text),
        label,
    }))
}

/// A FAT volume serial as blkid shows it: `ABCD-1234`.
fn fat_serial_text(serial: u32) -> String {
    format!("{:04X}-{:04X}", serial >> 16, serial & 0xffff)
}

/// The volume-label entry among the first 4 KiB of the root directory.
fn fat_root_label<R: Read + Seek>(
    dev: &mut R,
    boot: &FatBoot,
) -> Result<Option<String>, BlkidError> {
    // The fields are at most 32 bits wide, so these sums and products fit
    // in 64; the byte offset is checked, as a sector size times a sector
    // number from a damaged boot sector is not bounded by the device.
    let fats_end = boot.reserved_sectors + boot.fat_count * boot.fat_sectors;
    let (start_sector, len) = match boot.root_cluster {
        // FAT32 has no fixed root directory: data clusters, numbered from 2,
        // start right after the FATs.
        Some(cluster) if cluster >= 2 => (
            fats_end + (cluster - 2) * boot.sectors_per_cluster,
            boot.sectors_per_cluster * boot.bytes_per_sector,
        ),
        Some(_) => return Ok(None),
        None => (fats_end, boot.root_entries * 32),
    };
    let Some(offset) = start_sector.checked_mul(boot.bytes_per_sector) else {
        return Ok(None);
    };
    let mut dir = vec![0u8; len.min(FAT_ROOT_SEARCH_BYTES) as usize];
    if !read_at(dev, "FAT root directory", offset, &mut dir)? {
        return Ok(None);
    }
    Ok(fat_volume_label(Bytes::new(&dir)))
}

/// The volume-label entry of a FAT directory, up to its end marker.
fn fat_volume_label(dir: Bytes) -> Option<String> {
    const ENTRY_BYTES: usize = 32;
    const ATTR_VOLUME_ID: u8 = 0x08;
    const ATTR_DIRECTORY: u8 = 0x10;
    const ATTR_LONG_NAME: u8 = 0x0f;
    for entry in dir.as_slice().chunks_exact(ENTRY_BYTES) {
        let entry = Bytes::new(entry);
        let mut name = entry.array::<11>(0).ok()?;
        match name {
            [0x00, ..] => break,
            [0xe5, ..] => continue,
            _ => {}
        }
        let attributes = entry.u8(11).ok()?;
        if attributes != ATTR_LONG_NAME
            && attributes & (ATTR_VOLUME_ID | ATTR_DIRECTORY) == ATTR_VOLUME_ID
        {
            // 0x05 stands for a leading 0xE5, which marks deleted entries.
            if let [first @ 0x05, ..] = &mut name {
                *first = 0xe5;
            }
            return label_from_bytes(&name);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_tools::*;
    use std::fs::{self, File};
    use std::io::Cursor;
    use std::path::Path;

    fn probe_file(path: &Path) -> Option<FsInfo> {
        probe_filesystem(&mut File::open(path).unwrap()).unwrap()
    }

    struct MkfsCase {
        tool: &'static str,
        package: &'static str,
        /// `{uuid}`, `{label}` and `{file}` are replaced.
        args: &'static [&'static str],
        size_mib: u64,
        uuid: &'static str,
        label: &'static str,
        fstype: &'static str,
        /// The UUID as the probe must report it.
        expected_uuid: &'static str,
    }

    const MKFS: &[MkfsCase] = &[
        MkfsCase {
            tool: "mkfs.ext4",
            package: "e2fsprogs",
            args: &["-q", "-F", "-U", "{uuid}", "-L", "{label}", "{file}"],
            size_mib: 64,
            uuid: "0BD3A2C6-8D7E-4F1C-9A55-2C1F3C0E9A11",
            label: "dumps",
            fstype: "ext4",
            expected_uuid: "0bd3a2c6-8d7e-4f1c-9a55-2c1f3c0e9a11",
        },
        MkfsCase {
            tool: "mkfs.ext3",
            package: "e2fsprogs",
            args: &["-q", "-F", "-U", "{uuid}", "-L", "{label}", "{file}"],
            size_mib: 64,
            uuid: "1c8e5b0a-35f4-4a0e-8d2b-6f0a9c3e7d21",
            label: "old-style",
            fstype: "ext3",
            expected_uuid: "1c8e5b0a-35f4-4a0e-8d2b-6f0a9c3e7d21",
        },
        MkfsCase {
            tool: "mkfs.ext2",
            package: "e2fsprogs",
            args: &["-q", "-F", "-U", "{uuid}", "-L", "{label}", "{file}"],
            size_mib: 16,
            uuid: "2d9f6c1b-46a5-4b1f-9e3c-7a1b0d4f8e32",
            label: "LIFEBOAT",
            fstype: "ext2",
            expected_uuid: "2d9f6c1b-46a5-4b1f-9e3c-7a1b0d4f8e32",
        },
        MkfsCase {
            tool: "mkfs.ext4",
            package: "e2fsprogs",
            // ext4 without a journal is still ext4: extents make it so.
            args: &[
                "-q",
                "-F",
                "-O",
                "^has_journal",
                "-U",
                "{uuid}",
                "-L",
                "{label}",
                "{file}",
            ],
            size_mib: 16,
            uuid: "3e0a7d2c-57b6-4c20-af4d-8b2c1e5a9f43",
            label: "no journal",
            fstype: "ext4",
            expected_uuid: "3e0a7d2c-57b6-4c20-af4d-8b2c1e5a9f43",
        },
        MkfsCase {
            tool: "mkfs.xfs",
            package: "xfsprogs",
            args: &["-q", "-f", "-m", "uuid={uuid}", "-L", "{label}", "{file}"],
            // mkfs.xfs refuses filesystems under 300 MiB.
            size_mib: 320,
            uuid: "4f1b8e3d-68c7-4d31-b05e-9c3d2f6b0a54",
            label: "xfs-dumps",
            fstype: "xfs",
            expected_uuid: "4f1b8e3d-68c7-4d31-b05e-9c3d2f6b0a54",
        },
        MkfsCase {
            tool: "mkfs.btrfs",
            package: "btrfs-progs",
            args: &["-q", "-f", "-U", "{uuid}", "-L", "{label}", "{file}"],
            size_mib: 256,
            uuid: "50a2c9f4-79d8-4e42-816f-ad4e307c1b65",
            label: "btrfs dumps",
            fstype: "btrfs",
            expected_uuid: "50a2c9f4-79d8-4e42-816f-ad4e307c1b65",
        },
        MkfsCase {
            tool: "mkfs.vfat",
            package: "dosfstools",
            args: &["-F", "12", "-i", "{uuid}", "-n", "{label}", "{file}"],
            size_mib: 4,
            uuid: "1234abcd",
            label: "FAT12 DISK",
            fstype: "vfat",
            expected_uuid: "1234-ABCD",
        },
        MkfsCase {
            tool: "mkfs.vfat",
            package: "dosfstools",
            args: &["-F", "16", "-i", "{uuid}", "-n", "{label}", "{file}"],
            size_mib: 64,
            uuid: "0000BEEF",
            label: "FAT16",
            fstype: "vfat",
            expected_uuid: "0000-BEEF",
        },
        MkfsCase {
            tool: "mkfs.vfat",
            package: "dosfstools",
            args: &["-F", "32", "-i", "{uuid}", "-n", "{label}", "{file}"],
            size_mib: 300,
            uuid: "5E0A7C2B",
            label: "LIFEBOAT",
            fstype: "vfat",
            expected_uuid: "5E0A-7C2B",
        },
        MkfsCase {
            tool: "mkfs.vfat",
            package: "dosfstools",
            // 4 KiB sectors move every offset of the root directory.
            args: &[
                "-F", "32", "-S", "4096", "-i", "{uuid}", "-n", "{label}", "{file}",
            ],
            size_mib: 300,
            uuid: "CAFEF00D",
            label: "BIGSECTORS",
            fstype: "vfat",
            expected_uuid: "CAFE-F00D",
        },
    ];

    /// Makes the filesystem of `case` in a new sparse file at `file`.
    fn make_filesystem(case: &MkfsCase, file: &Path) {
        sparse_file(file, case.size_mib << 20);
        let file_text = file.to_str().unwrap();
        let args: Vec<String> = case
            .args
            .iter()
            .map(|arg| {
                arg.replace("{uuid}", case.uuid)
                    .replace("{label}", case.label)
                    .replace("{file}", file_text)
            })
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(case.tool, &args, case.package);
    }

    impl MkfsCase {
        fn expected(&self) -> FsInfo {
            FsInfo {
                fstype: self.fstype,
                uuid: Some(self.expected_uuid.to_owned()),
                label: Some(self.label.to_owned()),
            }
        }
    }

    #[test]
    fn real_filesystems_are_recognised() {
        let dir = tempfile::tempdir().unwrap();
        for (index, case) in MKFS.iter().enumerate() {
            let file = dir.path().join(format!("fs{index}.img"));
            make_filesystem(case, &file);
            assert_eq!(
                probe_file(&file),
                Some(case.expected()),
                "{} {:?}",
                case.tool,
                case.args
            );
            fs::remove_file(&file).unwrap();
        }
    }

    /// The structure each probe parses, as (offset, length) in the device.
    fn structure_of(fstype: &str) -> (usize, usize) {
        match fstype {
            "ext2" | "ext3" | "ext4" => (0, EXT_SUPERBLOCK_OFFSET + EXT_SUPERBLOCK_BYTES),
            "xfs" => (0, XFS_SUPERBLOCK_BYTES),
            "btrfs" => (BTRFS_SUPERBLOCK_OFFSET as usize, BTRFS_SUPERBLOCK_BYTES),
            "vfat" => (0, FAT_BOOT_SECTOR_BYTES),
            _ => unreachable!("no parser for {fstype}"),
        }
    }

    /// Each parser fed its structure from a filesystem made by the real
    /// tool, cut at every length: `None` below the whole structure, the
    /// filesystem at it, and never a panic. For FAT, the boot sector gives
    /// the serial and its copy of the label, which mkfs.fat makes the same
    /// as the root directory's.
    #[test]
    fn truncated_superblocks_are_none() {
        type Parse = fn(Bytes) -> Option<FsInfo>;
        let parse_fat: Parse = |sector| {
            parse_fat_boot(sector).map(|boot| FsInfo {
                fstype: "vfat",
                uuid: boot.serial.map(fat_serial_text),
                label: boot.label,
            })
        };
        let parsers: &[(&str, Parse)] = &[
            ("ext2", probe_ext),
            ("ext3", probe_ext),
            ("ext4", probe_ext),
            ("xfs", probe_xfs),
            ("btrfs", parse_btrfs),
            ("vfat", parse_fat),
        ];
        let dir = tempfile::tempdir().unwrap();
        for (index, case) in MKFS.iter().enumerate() {
            let file = dir.path().join(format!("fs{index}.img"));
            make_filesystem(case, &file);
            let (offset, len) = structure_of(case.fstype);
            let mut whole = vec![0u8; len];
            let mut device = File::open(&file).unwrap();
            device.seek(SeekFrom::Start(offset as u64)).unwrap();
            device.read_exact(&mut whole).unwrap();
            fs::remove_file(&file).unwrap();

            let (_, parse) = parsers.iter().find(|(t, _)| *t == case.fstype).unwrap();
            let what = format!("{} {:?}", case.tool, case.args);
            for cut in 0..len {
                assert_eq!(
                    parse(Bytes::new(&whole[..cut])),
                    None,
                    "{what} cut at {cut}"
                );
            }
            assert_eq!(parse(Bytes::new(&whole)), Some(case.expected()), "{what}");
        }
    }

    /// Whole devices cut short at every length around their structures:
    /// the probe answers, with the right filesystem or none, and finds it
    /// once the structure is whole.
    #[test]
    fn truncated_devices_are_probed_without_panic() {
        let dir = tempfile::tempdir().unwrap();
        // ext4, xfs, btrfs, FAT16, FAT32.
        for case in [0, 4, 5, 7, 8].map(|index| &MKFS[index]) {
            let file = dir.path().join("fs.img");
            make_filesystem(case, &file);
            let (offset, len) = structure_of(case.fstype);
            let end = offset + len;
            let mut bytes = vec![0u8; end];
            File::open(&file).unwrap().read_exact(&mut bytes).unwrap();
            fs::remove_file(&file).unwrap();

            let what = format!("{} {:?}", case.tool, case.args);
            let cuts = (0..HEAD_BYTES.min(end)).chain(offset.max(HEAD_BYTES)..=end);
            for cut in cuts {
                let found = probe_filesystem(&mut Cursor::new(&bytes[..cut]))
                    .unwrap_or_else(|e| panic!("{what} cut at {cut}: {e}"));
                if let Some(info) = &found {
                    assert_eq!(info.fstype, case.fstype, "{what} cut at {cut}");
                }
                if cut == end {
                    assert!(found.is_some(), "{what}: not found whole");
                }
            }
        }
    }

    #[test]
    fn fat_labels_come_from_the_root_directory_first() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("fat.img");
        sparse_file(&file, 32 << 20);
        let file_text = file.to_str().unwrap();
        run(
            "mkfs.vfat",
            &["-F", "16", "-i", "12345678", file_text],
            "dosfstools",
        );
        // No label given: mkfs.fat writes "NO NAME" in the boot sector and
        // no label entry.
        let info = probe_file(&file).unwrap();
        assert_eq!(
            (info.uuid.as_deref(), info.label),
            (Some("1234-5678"), None)
        );
        // fatlabel writes both copies; then make the boot sector's stale, as
        // a rename by some other systems leaves it.
        run("fatlabel", &[file_text, "RENAMED"], "dosfstools");
        let mut bytes = fs::read(&file).unwrap();
        bytes[0x2b..0x36].copy_from_slice(b"OLD NAME   ");
        fs::write(&file, &bytes).unwrap();
        assert_eq!(probe_file(&file).unwrap().label.as_deref(), Some("RENAMED"));
    }

    #[test]
    fn what_is_not_a_filesystem_is_none() {
        let mut ext_magic_only = vec![0u8; 4096];
        ext_magic_only[1024 + 0x38..1024 + 0x3a].copy_from_slice(&0xef53u16.to_le_bytes());
        let mut journal_device = ext_magic_only.clone();
        journal_device[1024 + 0x60] = 0x08;
        let mut xfs_bad_block_size = vec![0u8; 4096];
        xfs_bad_block_size[..4].copy_from_slice(b"XFSB");
        xfs_bad_block_size[4..8].copy_from_slice(&3000u32.to_be_bytes());
        let cases: &[(&str, Vec<u8>, Option<&str>)] = &[
            ("empty", Vec::new(), None),
            ("tiny", vec![0xeb; 100], None),
            ("zeros", vec![0; 1 << 20], None),
            ("external journal", journal_device, None),
            ("xfs magic, bad block size", xfs_bad_block_size, None),
            // Magic alone is an ext filesystem without features: ext2, no
            // UUID, no label.
            ("ext magic", ext_magic_only, Some("ext2")),
        ];
        for (what, bytes, fstype) in cases {
            let info = probe_filesystem(&mut Cursor::new(bytes)).unwrap();
            assert_eq!(info.as_ref().map(|i| i.fstype), *fstype, "{what}");
            if let Some(info) = info {
                assert_eq!((info.uuid, info.label), (None, None), "{what}");
            }
        }
    }
}

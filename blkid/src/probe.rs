//! Filesystem superblocks: ext2/3/4, xfs, btrfs and vfat, each told by its
//! magic and sane fields, with the UUID and label as blkid reports them.

use std::io::{self, Read, Seek, SeekFrom};

use crate::{be32, le16, le32, le64, read_at, FsInfo};

/// A UUID stored as 16 bytes in RFC 4122 byte order (ext, xfs, btrfs);
/// `None` when all zero, as blkid reports no UUID then.
fn uuid_from_bytes(bytes: &[u8]) -> Option<String> {
    if bytes.iter().all(|&b| b == 0) {
        return None;
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Some(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

/// A fixed-size label field: up to the first NUL, trailing spaces dropped
/// (FAT pads with spaces); `None` when empty.
fn label_from_bytes(bytes: &[u8]) -> Option<String> {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    let label = String::from_utf8_lossy(&bytes[..end]);
    let label = label.trim_end_matches(' ');
    (!label.is_empty()).then(|| label.to_owned())
}

/// Identifies the filesystem on a device from its superblock: ext2/3/4,
/// xfs, btrfs or vfat (FAT12/16/32). `Ok(None)` when none of them is there.
pub fn probe_filesystem<R: Read + Seek>(dev: &mut R) -> io::Result<Option<FsInfo>> {
    // The first 2 KiB hold the FAT boot sector, the xfs superblock and the
    // ext superblock (at 1024).
    let mut head = [0u8; 2048];
    let head_len = if read_at(dev, 0, &mut head)? {
        head.len()
    } else {
        // A tiny device: probe what there is, the rest reads as zeros.
        dev.seek(SeekFrom::Start(0))?;
        let mut partial = Vec::new();
        dev.take(head.len() as u64).read_to_end(&mut partial)?;
        head[..partial.len()].copy_from_slice(&partial);
        partial.len()
    };
    if head_len == 0 {
        return Ok(None);
    }
    if let Some(info) = probe_ext(&head) {
        return Ok(Some(info));
    }
    if let Some(info) = probe_xfs(&head) {
        return Ok(Some(info));
    }
    if let Some(info) = probe_btrfs(dev)? {
        return Ok(Some(info));
    }
    probe_vfat(dev, &head)
}

/// ext2, ext3 and ext4 share a superblock (magic 0xEF53 at 1024 + 0x38); the
/// type is told from the feature flags, as blkid does: ext2 and ext3 are
/// those without features their drivers lack, ext3 has a journal.
fn probe_ext(head: &[u8; 2048]) -> Option<FsInfo> {
    let sb = &head[1024..2048];
    if le16(sb, 0x38) != 0xef53 {
        return None;
    }
    const COMPAT_HAS_JOURNAL: u32 = 0x0004;
    const INCOMPAT_JOURNAL_DEV: u32 = 0x0008;
    // FILETYPE | META_BG, plus RECOVER for ext3.
    const EXT2_INCOMPAT: u32 = 0x0002 | 0x0010;
    const EXT3_INCOMPAT: u32 = EXT2_INCOMPAT | 0x0004;
    // SPARSE_SUPER | LARGE_FILE | BTREE_DIR.
    const EXT23_RO_COMPAT: u32 = 0x0001 | 0x0002 | 0x0004;
    let compat = le32(sb, 0x5c);
    let incompat = le32(sb, 0x60);
    let ro_compat = le32(sb, 0x64);
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
        uuid: uuid_from_bytes(&sb[0x68..0x78]),
        label: label_from_bytes(&sb[0x78..0x88]),
    })
}

/// The xfs superblock is at 0, big-endian, magic "XFSB".
fn probe_xfs(head: &[u8; 2048]) -> Option<FsInfo> {
    if &head[0..4] != b"XFSB" {
        return None;
    }
    let block_size = be32(head, 4);
    if !block_size.is_power_of_two() || !(512..=65536).contains(&block_size) {
        return None;
    }
    Some(FsInfo {
        fstype: "xfs",
        uuid: uuid_from_bytes(&head[32..48]),
        label: label_from_bytes(&head[108..120]),
    })
}

/// The btrfs superblock is at 64 KiB, magic "_BHRfS_M" at 0x40; it records
/// its own offset, which tells it from a backup copy seen through a
/// partition that starts at one.
fn probe_btrfs<R: Read + Seek>(dev: &mut R) -> io::Result<Option<FsInfo>> {
    const OFFSET: u64 = 64 * 1024;
    let mut sb = [0u8; 0x12b + 256];
    if !read_at(dev, OFFSET, &mut sb)?
        || &sb[0x40..0x48] != b"_BHRfS_M"
        || le64(&sb, 0x30) != OFFSET
    {
        return Ok(None);
    }
    Ok(Some(FsInfo {
        fstype: "btrfs",
        uuid: uuid_from_bytes(&sb[0x20..0x30]),
        label: label_from_bytes(&sb[0x12b..0x12b + 256]),
    }))
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

pub(crate) fn parse_fat_boot(sector: &[u8]) -> Option<FatBoot> {
    let bytes_per_sector = le16(sector, 0x0b);
    let sectors_per_cluster = sector[0x0d];
    let reserved_sectors = le16(sector, 0x0e);
    let fat_count = sector[0x10];
    let media = sector[0x15];
    let valid = matches!(sector[0], 0xeb | 0xe9)
        && matches!(bytes_per_sector, 512 | 1024 | 2048 | 4096)
        && sectors_per_cluster.is_power_of_two()
        && reserved_sectors != 0
        && fat_count != 0
        && (media == 0xf0 || media >= 0xf8);
    if !valid {
        return None;
    }
    let fat16_sectors = le16(sector, 0x16);
    // FAT32 moved the extended BPB (signature, serial, label, type name)
    // from 0x24 to 0x40 to make room for its own fields.
    let (fat_sectors, root_cluster, extended) = if fat16_sectors == 0 {
        if &sector[0x52..0x5a] != b"FAT32   " {
            return None;
        }
        (
            le32(sector, 0x24) as u64,
            Some(le32(sector, 0x2c) as u64),
            0x40,
        )
    } else {
        if &sector[0x36..0x39] != b"FAT" {
            return None;
        }
        (fat16_sectors as u64, None, 0x24)
    };
    // Signature 0x29 has a serial and a label, 0x28 only a serial.
    let signature = sector[extended + 2];
    let serial = matches!(signature, 0x28 | 0x29).then(|| le32(sector, extended + 3));
    let label = (signature == 0x29)
        .then(|| label_from_bytes(&sector[extended + 7..extended + 18]))
        .flatten()
        .filter(|label| label != "NO NAME");
    Some(FatBoot {
        bytes_per_sector: bytes_per_sector as u64,
        sectors_per_cluster: sectors_per_cluster as u64,
        reserved_sectors: reserved_sectors as u64,
        fat_count: fat_count as u64,
        root_entries: le16(sector, 0x11) as u64,
        fat_sectors,
        root_cluster,
        serial,
        label,
    })
}

/// FAT12/16/32, identified by a sane BIOS parameter block and the type name
/// mkfs.fat and every other formatter writes.
fn probe_vfat<R: Read + Seek>(dev: &mut R, head: &[u8; 2048]) -> io::Result<Option<FsInfo>> {
    let Some(boot) = parse_fat_boot(&head[..512]) else {
        return Ok(None);
    };
    // The label that Windows and blkid show is the volume-label entry of the
    // root directory; the boot sector's copy is often stale after a rename.
    let label = fat_root_label(dev, &boot)?.or(boot.label);
    Ok(Some(FsInfo {
        fstype: "vfat",
        uuid: boot
            .serial
            .map(|serial| format!("{:04X}-{:04X}", serial >> 16, serial & 0xffff)),
        label,
    }))
}

/// The volume-label entry among the first 4 KiB of the root directory.
fn fat_root_label<R: Read + Seek>(dev: &mut R, boot: &FatBoot) -> io::Result<Option<String>> {
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
    let mut dir = vec![0u8; len.min(4096) as usize];
    if !read_at(dev, start_sector * boot.bytes_per_sector, &mut dir)? {
        return Ok(None);
    }
    const ATTR_VOLUME_ID: u8 = 0x08;
    const ATTR_DIRECTORY: u8 = 0x10;
    const ATTR_LONG_NAME: u8 = 0x0f;
    for entry in dir.chunks_exact(32) {
        match entry[0] {
            0x00 => break,
            0xe5 => continue,
            _ => {}
        }
        let attributes = entry[11];
        if attributes != ATTR_LONG_NAME
            && attributes & (ATTR_VOLUME_ID | ATTR_DIRECTORY) == ATTR_VOLUME_ID
        {
            let mut name = [0u8; 11];
            name.copy_from_slice(&entry[..11]);
            // 0x05 stands for a leading 0xE5, which marks deleted entries.
            if name[0] == 0x05 {
                name[0] = 0xe5;
            }
            return Ok(label_from_bytes(&name));
        }
    }
    Ok(None)
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

    #[test]
    fn real_filesystems_are_recognised() {
        let dir = tempfile::tempdir().unwrap();
        for (index, case) in MKFS.iter().enumerate() {
            let file = dir.path().join(format!("fs{index}.img"));
            sparse_file(&file, case.size_mib << 20);
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
            let expected = FsInfo {
                fstype: case.fstype,
                uuid: Some(case.expected_uuid.to_owned()),
                label: Some(case.label.to_owned()),
            };
            assert_eq!(probe_file(&file), Some(expected), "{} {args:?}", case.tool);
            fs::remove_file(&file).unwrap();
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

//! Finding the dump device without udev: what blkid does, for the few
//! filesystems lifeboat writes to.
//!
//! The capture kernel has no udev, hence no `/dev/disk/by-uuid`. PID 1 lists
//! `/sys/class/block`, opens each device node (devtmpfs creates them) and
//! reads its superblock to learn the filesystem type, UUID and label, and the
//! parent disk's partition table for PARTUUIDs. Each read is a few hundred
//! bytes at a fixed offset, so a scan costs a few KiB per device; the
//! exception is a GPT's entry array (16 KiB on disks partitioned by common
//! tools), read once per disk.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use lifeboat_config::DeviceSpec;

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
pub struct GptPartition {
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

/// Reads `buf.len()` bytes at `offset`; `false` when the device ends first,
/// which for a probe means "not this filesystem", not an error.
fn read_at<R: Read + Seek>(dev: &mut R, offset: u64, buf: &mut [u8]) -> io::Result<bool> {
    dev.seek(SeekFrom::Start(offset))?;
    let mut filled = 0;
    while filled < buf.len() {
        match dev.read(&mut buf[filled..]) {
            Ok(0) => return Ok(false),
            Ok(n) => filled += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(true)
}

fn le16(bytes: &[u8], offset: usize) -> u16 {
    u16::from_le_bytes([bytes[offset], bytes[offset + 1]])
}

fn le32(bytes: &[u8], offset: usize) -> u32 {
    u32::from_le_bytes(bytes[offset..offset + 4].try_into().unwrap())
}

fn le64(bytes: &[u8], offset: usize) -> u64 {
    u64::from_le_bytes(bytes[offset..offset + 8].try_into().unwrap())
}

fn be32(bytes: &[u8], offset: usize) -> u32 {
    u32::from_be_bytes(bytes[offset..offset + 4].try_into().unwrap())
}

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

/// A GUID as GPT stores it: the first three fields little-endian.
fn guid_from_bytes(bytes: &[u8]) -> String {
    let mut swapped = [0u8; 16];
    swapped.copy_from_slice(&bytes[..16]);
    swapped[0..4].reverse();
    swapped[4..6].reverse();
    swapped[6..8].reverse();
    let hex: String = swapped.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
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
struct FatBoot {
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

fn parse_fat_boot(sector: &[u8]) -> Option<FatBoot> {
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

/// CRC-32 (IEEE 802.3, reflected), as GPT headers and entry arrays use.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= byte as u32;
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xedb8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

/// GPT entry arrays larger than this are refused: common tools write 16 KiB
/// (128 entries of 128 bytes), and a scan must stay cheap.
const MAX_GPT_ENTRIES_BYTES: u64 = 64 * 1024;
/// How many extended boot records a DOS table may chain, so that a looping
/// chain on a damaged disk ends.
const MAX_LOGICAL_PARTITIONS: u32 = 128;

/// The partitions of a disk: from its GPT (the primary one, else the backup
/// at the disk's end) when the MBR is protective, else from its DOS table,
/// logical partitions included. Empty when the disk has neither.
pub fn gpt_partitions<R: Read + Seek>(
    disk: &mut R,
    sector_size: u64,
) -> io::Result<Vec<GptPartition>> {
    if !sector_size.is_power_of_two() || sector_size < 512 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("sector size {sector_size} is not a power of two of at least 512"),
        ));
    }
    let mut mbr = [0u8; 512];
    if !read_at(disk, 0, &mut mbr)? || mbr[510..512] != [0x55, 0xaa] {
        return Ok(Vec::new());
    }
    let entries: Vec<&[u8]> = (0..4).map(|i| &mbr[446 + 16 * i..462 + 16 * i]).collect();
    const PROTECTIVE: u8 = 0xee;
    if entries.iter().any(|entry| entry[4] == PROTECTIVE) {
        if let Some(partitions) = read_gpt(disk, sector_size, 1)? {
            return Ok(partitions);
        }
        let disk_sectors = disk.seek(SeekFrom::End(0))? / sector_size;
        if disk_sectors > 1 {
            if let Some(partitions) = read_gpt(disk, sector_size, disk_sectors - 1)? {
                log::debug!("primary GPT damaged, using the backup");
                return Ok(partitions);
            }
        }
        return Ok(Vec::new());
    }
    // A FAT boot sector also ends in 55 AA; its boot code is not a table.
    if entries.iter().any(|entry| !matches!(entry[0], 0x00 | 0x80))
        || parse_fat_boot(&mbr).is_some()
    {
        return Ok(Vec::new());
    }
    read_dos(disk, sector_size, &mbr)
}

/// Reads the GPT header at `lba` and its entries; `None` when the header or
/// the entries fail their checks.
fn read_gpt<R: Read + Seek>(
    disk: &mut R,
    sector_size: u64,
    lba: u64,
) -> io::Result<Option<Vec<GptPartition>>> {
    let mut header = [0u8; 512];
    if !read_at(disk, lba * sector_size, &mut header)? || &header[0..8] != b"EFI PART" {
        return Ok(None);
    }
    let header_size = le32(&header, 12) as usize;
    if !(92..=512).contains(&header_size) {
        return Ok(None);
    }
    let mut checked = header[..header_size].to_vec();
    checked[16..20].fill(0);
    if crc32(&checked) != le32(&header, 16) || le64(&header, 24) != lba {
        return Ok(None);
    }
    let entries_lba = le64(&header, 72);
    let entry_count = le32(&header, 80) as u64;
    let entry_size = le32(&header, 84) as u64;
    let array_size = entry_count * entry_size;
    // The UEFI specification allows entries of 128 × 2^n bytes.
    if entry_size < 128 || !entry_size.is_power_of_two() || array_size > MAX_GPT_ENTRIES_BYTES {
        return Ok(None);
    }
    let Some(array_offset) = entries_lba.checked_mul(sector_size) else {
        return Ok(None);
    };
    let mut array = vec![0u8; array_size as usize];
    if !read_at(disk, array_offset, &mut array)? || crc32(&array) != le32(&header, 88) {
        return Ok(None);
    }
    let partitions = array
        .chunks_exact(entry_size as usize)
        .enumerate()
        // An unused entry has an all-zero type GUID.
        .filter(|(_, entry)| entry[..16].iter().any(|&b| b != 0))
        .map(|(index, entry)| GptPartition {
            number: index as u32 + 1,
            partuuid: guid_from_bytes(&entry[16..32]),
            first_lba: le64(entry, 32),
            last_lba: le64(entry, 40),
        })
        .collect();
    Ok(Some(partitions))
}

/// A DOS partition table: four primary slots (numbers 1–4, kept even when a
/// slot before is empty) and, inside an extended partition, a chain of
/// extended boot records whose partitions Linux numbers from 5.
fn read_dos<R: Read + Seek>(
    disk: &mut R,
    sector_size: u64,
    mbr: &[u8; 512],
) -> io::Result<Vec<GptPartition>> {
    let signature = le32(mbr, 440);
    let partuuid = |number: u32| format!("{signature:08x}-{number:02x}");
    let is_extended = |kind: u8| matches!(kind, 0x05 | 0x0f | 0x85);
    let mut partitions = Vec::new();
    let mut extended_start = None;
    for slot in 0..4u32 {
        let entry = &mbr[446 + 16 * slot as usize..];
        let (kind, start, sectors) = (entry[4], le32(entry, 8) as u64, le32(entry, 12) as u64);
        if kind == 0 || sectors == 0 {
            continue;
        }
        partitions.push(GptPartition {
            number: slot + 1,
            partuuid: partuuid(slot + 1),
            first_lba: start,
            last_lba: start + sectors - 1,
        });
        if is_extended(kind) && extended_start.is_none() {
            extended_start = Some(start);
        }
    }
    let Some(extended_start) = extended_start else {
        return Ok(partitions);
    };
    let mut ebr_lba = extended_start;
    let mut number = 5;
    while number < 5 + MAX_LOGICAL_PARTITIONS {
        let mut ebr = [0u8; 512];
        if !read_at(disk, ebr_lba * sector_size, &mut ebr)? || ebr[510..512] != [0x55, 0xaa] {
            break;
        }
        let logical = &ebr[446..462];
        let (start, sectors) = (le32(logical, 8) as u64, le32(logical, 12) as u64);
        if logical[4] != 0 && sectors != 0 {
            partitions.push(GptPartition {
                number,
                partuuid: partuuid(number),
                first_lba: ebr_lba + start,
                last_lba: ebr_lba + start + sectors - 1,
            });
            number += 1;
        }
        // The second entry points to the next EBR, relative to the start of
        // the extended partition.
        let next = &ebr[462..478];
        if !is_extended(next[4]) || le32(next, 8) == 0 {
            break;
        }
        ebr_lba = extended_start + le32(next, 8) as u64;
    }
    Ok(partitions)
}

fn read_number(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The sysfs directory of the disk a partition belongs to: its parent in
/// `/sys/devices` (class entries are symbolic links there), else the
/// partition name without its number (`vdb1` → `vdb`, `nvme0n1p2` →
/// `nvme0n1`) for trees where the links are flat.
fn parent_disk(sys_class_block: &Path, name: &str) -> Option<(String, PathBuf)> {
    let real = fs::canonicalize(sys_class_block.join(name)).ok()?;
    if let Some(parent) = real.parent() {
        if parent.join("dev").is_file() {
            let parent_name = parent.file_name()?.to_str()?.to_owned();
            return Some((parent_name, parent.to_owned()));
        }
    }
    let without_number = name.trim_end_matches(|c: char| c.is_ascii_digit());
    let disk = match without_number.strip_suffix('p') {
        Some(disk) if disk.ends_with(|c: char| c.is_ascii_digit()) => disk,
        _ => without_number,
    };
    let dir = sys_class_block.join(disk);
    (disk != name && dir.join("dev").is_file()).then(|| (disk.to_owned(), dir))
}

/// Lists the block devices of `sys_class_block` (`/sys/class/block`) and
/// probes each device node under `dev_root` (`/dev`). Devices of size 0
/// (unused loop and ram devices, empty drives) are left out, and so are
/// devices that cannot be opened or read: one broken disk must not stop a
/// capture that another disk can take.
pub fn scan(sys_class_block: &Path, dev_root: &Path) -> Vec<BlockDevice> {
    let mut names: Vec<String> = match fs::read_dir(sys_class_block) {
        Ok(entries) => entries
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .collect(),
        Err(error) => {
            log::debug!("cannot list {}: {error}", sys_class_block.display());
            return Vec::new();
        }
    };
    names.sort();
    // Partition tables by disk name, read once per disk.
    let mut tables: HashMap<String, Vec<GptPartition>> = HashMap::new();
    let mut devices = Vec::new();
    for name in names {
        let sys_dir = sys_class_block.join(&name);
        if read_number(&sys_dir.join("size")) == Some(0) {
            continue;
        }
        let dev_path = dev_root.join(&name);
        let fs = match File::open(&dev_path).and_then(|mut file| probe_filesystem(&mut file)) {
            Ok(fs) => fs,
            Err(error) => {
                log::debug!("skipping {}: {error}", dev_path.display());
                continue;
            }
        };
        let partuuid = read_number(&sys_dir.join("partition")).and_then(|number| {
            let (disk, disk_sys_dir) = parent_disk(sys_class_block, &name)?;
            let table = tables.entry(disk.clone()).or_insert_with(|| {
                let sector_size = read_number(&disk_sys_dir.join("queue/logical_block_size"))
                    .filter(|size| size.is_power_of_two() && *size >= 512)
                    .unwrap_or(512);
                let disk_path = dev_root.join(&disk);
                File::open(&disk_path)
                    .and_then(|mut file| gpt_partitions(&mut file, sector_size))
                    .unwrap_or_else(|error| {
                        log::debug!(
                            "cannot read the partition table of {}: {error}",
                            disk_path.display()
                        );
                        Vec::new()
                    })
            });
            let partition = table.iter().find(|p| u64::from(p.number) == number)?;
            Some(partition.partuuid.clone())
        });
        devices.push(BlockDevice {
            name,
            dev_path,
            partuuid,
            fs,
        });
    }
    devices
}

/// The first device that `spec` names.
pub fn find<'a>(devices: &'a [BlockDevice], spec: &DeviceSpec) -> Option<&'a BlockDevice> {
    devices.iter().find(|device| match spec {
        DeviceSpec::Uuid(uuid) => device
            .fs
            .as_ref()
            .and_then(|fs| fs.uuid.as_deref())
            .is_some_and(|found| found.eq_ignore_ascii_case(uuid)),
        DeviceSpec::Label(label) => device
            .fs
            .as_ref()
            .and_then(|fs| fs.label.as_deref())
            .is_some_and(|found| found == label),
        DeviceSpec::PartUuid(partuuid) => device
            .partuuid
            .as_deref()
            .is_some_and(|found| found.eq_ignore_ascii_case(partuuid)),
        DeviceSpec::Path(path) => {
            Path::new(path) == device.dev_path
                || path.strip_prefix("/dev/") == Some(device.name.as_str())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;
    use std::io::Cursor;
    use std::process::Command;

    /// Runs a tool that must be installed; a missing one fails the test
    /// with the Debian package to install.
    fn run(program: &str, args: &[&str], package: &str) {
        let output = Command::new(program)
            .args(args)
            .output()
            .or_else(|_| Command::new(format!("/sbin/{program}")).args(args).output())
            .unwrap_or_else(|error| {
                panic!("{program} is needed (Debian package {package}): {error}")
            });
        assert!(
            output.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn sparse_file(path: &Path, size: u64) {
        File::create(path).unwrap().set_len(size).unwrap();
    }

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

    /// A 32 MiB sparse disk image at `disk`, partitioned by sfdisk with
    /// `script`.
    fn partitioned_disk(disk: &Path, script: &str) {
        sparse_file(disk, 32 << 20);
        let mut args: Vec<&OsStr> = ["--quiet", "--no-reread", "--no-tell-kernel"]
            .iter()
            .map(OsStr::new)
            .collect();
        args.push(disk.as_os_str());
        run_with_stdin("sfdisk", &args, script);
    }

    /// Runs `program` (from the PATH, else /sbin, where Debian keeps the
    /// fdisk package's tools) with `script` on its standard input, and
    /// returns its standard output.
    fn run_with_stdin(program: &str, args: &[&OsStr], script: &str) -> String {
        use std::io::Write;
        let spawn = |path: &str| {
            Command::new(path)
                .args(args)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
        };
        let mut child = spawn(program)
            .or_else(|_| spawn(&format!("/sbin/{program}")))
            .unwrap_or_else(|_| panic!("{program} is needed (Debian package fdisk)"));
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{program}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    const GPT_SCRIPT: &str = "label: gpt\n\
        label-id: 9A3B1C2D-0000-4000-8000-00000000D15C\n\
        start=2048, size=4096, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=6A1F0E0C-1B2D-4E3F-8A4B-5C6D7E8F9001\n\
        start=8192, size=8192, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=7b2a1f1d-2c3e-4f40-9b5c-6d7e8f90a112\n\
        disk.img4: start=20480, size=2048, uuid=8C3B2A2E-3D4F-4051-AC6D-7E8F90A1B223\n";

    fn gpt_expected() -> Vec<GptPartition> {
        partitions(&[
            (1, "6a1f0e0c-1b2d-4e3f-8a4b-5c6d7e8f9001", 2048, 6143),
            (2, "7b2a1f1d-2c3e-4f40-9b5c-6d7e8f90a112", 8192, 16383),
            (4, "8c3b2a2e-3d4f-4051-ac6d-7e8f90a1b223", 20480, 22527),
        ])
    }

    /// Partitions from rows of (number, PARTUUID, first LBA, last LBA).
    fn partitions(rows: &[(u32, &str, u64, u64)]) -> Vec<GptPartition> {
        rows.iter()
            .map(|&(number, partuuid, first_lba, last_lba)| GptPartition {
                number,
                partuuid: partuuid.to_owned(),
                first_lba,
                last_lba,
            })
            .collect()
    }

    const DOS_SCRIPT: &str = "label: dos\n\
        label-id: 0x5E0A7C2B\n\
        start=2048, size=4096, type=83\n\
        start=8192, size=16384, type=5\n\
        start=10240, size=2048, type=83\n\
        start=14336, size=4096, type=c\n";

    fn dos_expected() -> Vec<GptPartition> {
        partitions(&[
            (1, "5e0a7c2b-01", 2048, 6143),
            (2, "5e0a7c2b-02", 8192, 24575),
            (5, "5e0a7c2b-05", 10240, 12287),
            (6, "5e0a7c2b-06", 14336, 18431),
        ])
    }

    #[test]
    fn partition_tables_written_by_sfdisk_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let gpt_disk = dir.path().join("disk.img");
        partitioned_disk(&gpt_disk, GPT_SCRIPT);
        let dos_disk = dir.path().join("dos.img");
        partitioned_disk(&dos_disk, DOS_SCRIPT);

        // The same GPT with its primary header damaged: the backup at the
        // disk's end must serve.
        let damaged_primary = dir.path().join("damaged.img");
        fs::copy(&gpt_disk, &damaged_primary).unwrap();
        let mut bytes = fs::read(&damaged_primary).unwrap();
        bytes[512 + 40] ^= 0xff;
        fs::write(&damaged_primary, &bytes).unwrap();
        // Both headers damaged: no table, not garbage.
        let both_damaged = dir.path().join("both.img");
        let last_sector = bytes.len() - 512;
        bytes[last_sector + 8] ^= 0xff;
        fs::write(&both_damaged, &bytes).unwrap();
        let fat = dir.path().join("fat.img");
        sparse_file(&fat, 8 << 20);
        run("mkfs.vfat", &[fat.to_str().unwrap()], "dosfstools");
        let blank = dir.path().join("blank.img");
        sparse_file(&blank, 1 << 20);

        let cases: Vec<(&Path, Vec<GptPartition>)> = vec![
            (&gpt_disk, gpt_expected()),
            (&dos_disk, dos_expected()),
            (&damaged_primary, gpt_expected()),
            (&both_damaged, Vec::new()),
            (&fat, Vec::new()),
            (&blank, Vec::new()),
        ];
        for (disk, expected) in cases {
            let got = gpt_partitions(&mut File::open(disk).unwrap(), 512).unwrap();
            assert_eq!(got, expected, "{}", disk.display());
        }
    }

    /// Disks with 4 KiB logical sectors (many NVMe drives) put the GPT
    /// header at byte 4096 and count LBAs in 4 KiB units.
    #[test]
    fn gpt_on_4k_sector_disks_is_read_in_4k_units() {
        // sfdisk of Debian 12 has no --sector-size; fdisk -b has, and reads
        // its own work back as the reference.
        let dir = tempfile::tempdir().unwrap();
        let disk = dir.path().join("disk4k.img");
        sparse_file(&disk, 64 << 20);
        let fdisk = |script: &str, args: &[&str]| -> String {
            let mut argv: Vec<&OsStr> = vec![OsStr::new("-b"), OsStr::new("4096")];
            argv.extend(args.iter().map(OsStr::new));
            argv.push(disk.as_os_str());
            run_with_stdin("fdisk", &argv, script)
        };
        // New GPT; partition 1 at LBA 256-2303, partition 2 at 4096-8191.
        fdisk("g\nn\n1\n256\n2303\nn\n2\n4096\n8191\nw\n", &[]);
        let listing = fdisk("", &["-l", "-o", "Start,End,UUID"]);
        let expected: Vec<GptPartition> = listing
            .lines()
            .skip_while(|line| !line.starts_with("Start"))
            .skip(1)
            .zip(1..)
            .map(|(line, number)| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                GptPartition {
                    number,
                    partuuid: fields[2].to_ascii_lowercase(),
                    first_lba: fields[0].parse().unwrap(),
                    last_lba: fields[1].parse().unwrap(),
                }
            })
            .collect();
        assert_eq!(
            expected
                .iter()
                .map(|p| (p.first_lba, p.last_lba))
                .collect::<Vec<_>>(),
            [(256, 2303), (4096, 8191)],
            "fdisk -l:\n{listing}"
        );
        let got = gpt_partitions(&mut File::open(&disk).unwrap(), 4096).unwrap();
        assert_eq!(got, expected);
        // Read as 512-byte sectors, the same disk has no GPT where one would
        // be; whatever comes back must not be the 4 KiB partitions.
        let as_512 = gpt_partitions(&mut File::open(&disk).unwrap(), 512).unwrap();
        assert_ne!(as_512, expected);
    }

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
                let _ = gpt_partitions(&mut Cursor::new(&damaged), 512).unwrap();
            }
        }
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(b""), 0);
    }

    /// Writes a sysfs entry: `dev`, `size` (in 512-byte sectors) and, for a
    /// partition, `partition`.
    fn sys_entry(dir: &Path, size_sectors: u64, partition: Option<u32>) {
        fs::create_dir_all(dir).unwrap();
        fs::write(dir.join("dev"), "254:0\n").unwrap();
        fs::write(dir.join("size"), format!("{size_sectors}\n")).unwrap();
        if let Some(number) = partition {
            fs::write(dir.join("partition"), format!("{number}\n")).unwrap();
        }
    }

    #[test]
    fn scan_finds_devices_by_every_kind_of_name() {
        let root = tempfile::tempdir().unwrap();
        let sys = root.path().join("sys");
        let class = sys.join("class/block");
        let devices = sys.join("devices/virtual/block");
        let dev = root.path().join("dev");
        fs::create_dir_all(&class).unwrap();
        fs::create_dir_all(&dev).unwrap();

        // vda: a GPT disk laid out like real sysfs, partitions under the disk
        // and class entries as symbolic links.
        partitioned_disk(&dev.join("vda"), GPT_SCRIPT);
        sys_entry(&devices.join("vda"), 65536, None);
        sys_entry(&devices.join("vda/vda2"), 8192, Some(2));
        sys_entry(&devices.join("vda/vda4"), 2048, Some(4));
        std::os::unix::fs::symlink(devices.join("vda"), class.join("vda")).unwrap();
        std::os::unix::fs::symlink(devices.join("vda/vda2"), class.join("vda2")).unwrap();
        std::os::unix::fs::symlink(devices.join("vda/vda4"), class.join("vda4")).unwrap();
        sparse_file(&dev.join("vda2"), 16 << 20);
        run(
            "mkfs.ext4",
            &[
                "-q",
                "-F",
                "-U",
                "0bd3a2c6-8d7e-4f1c-9a55-2c1f3c0e9a11",
                "-L",
                "DUMPS",
                dev.join("vda2").to_str().unwrap(),
            ],
            "e2fsprogs",
        );
        sparse_file(&dev.join("vda4"), 1 << 20);

        // nvme0n1: a DOS disk in a flat tree (no links), so the disk is found
        // by name.
        partitioned_disk(&dev.join("nvme0n1"), DOS_SCRIPT);
        sys_entry(&class.join("nvme0n1"), 65536, None);
        sys_entry(&class.join("nvme0n1p5"), 2048, Some(5));
        sparse_file(&dev.join("nvme0n1p5"), 8 << 20);
        run(
            "mkfs.vfat",
            &[
                "-i",
                "5e0a7c2b",
                "-n",
                "LIFEBOAT",
                dev.join("nvme0n1p5").to_str().unwrap(),
            ],
            "dosfstools",
        );

        // Devices to leave out: empty loop and ram devices, and one whose
        // node is missing.
        sys_entry(&class.join("loop0"), 0, None);
        sys_entry(&class.join("ram0"), 0, None);
        sparse_file(&dev.join("loop0"), 0);
        sys_entry(&class.join("vdz"), 2048, None);

        let found = scan(&class, &dev);
        let summary: Vec<(&str, Option<&str>, Option<&str>)> = found
            .iter()
            .map(|d| {
                (
                    d.name.as_str(),
                    d.partuuid.as_deref(),
                    d.fs.as_ref().map(|f| f.fstype),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("nvme0n1", None, None),
                ("nvme0n1p5", Some("5e0a7c2b-05"), Some("vfat")),
                ("vda", None, None),
                (
                    "vda2",
                    Some("7b2a1f1d-2c3e-4f40-9b5c-6d7e8f90a112"),
                    Some("ext4")
                ),
                ("vda4", Some("8c3b2a2e-3d4f-4051-ac6d-7e8f90a1b223"), None),
            ]
        );
        assert_eq!(found[3].dev_path, dev.join("vda2"));

        let dev_path = |name: &str| dev.join(name).to_str().unwrap().to_owned();
        let cases: Vec<(DeviceSpec, Option<&str>)> = vec![
            (
                DeviceSpec::Uuid("0BD3A2C6-8D7E-4F1C-9A55-2C1F3C0E9A11".into()),
                Some("vda2"),
            ),
            (DeviceSpec::Uuid("5e0a-7c2b".into()), Some("nvme0n1p5")),
            (
                DeviceSpec::Uuid("00000000-0000-0000-0000-000000000000".into()),
                None,
            ),
            (DeviceSpec::Label("LIFEBOAT".into()), Some("nvme0n1p5")),
            (DeviceSpec::Label("lifeboat".into()), None),
            (DeviceSpec::Label("DUMPS".into()), Some("vda2")),
            (
                DeviceSpec::PartUuid("8C3B2A2E-3D4F-4051-AC6D-7E8F90A1B223".into()),
                Some("vda4"),
            ),
            (
                DeviceSpec::PartUuid("5e0a7c2b-05".into()),
                Some("nvme0n1p5"),
            ),
            (DeviceSpec::PartUuid("5e0a7c2b-01".into()), None),
            (DeviceSpec::Path("/dev/vda4".into()), Some("vda4")),
            (DeviceSpec::Path(dev_path("vda2")), Some("vda2")),
            (DeviceSpec::Path("/dev/loop0".into()), None),
        ];
        for (spec, expected) in cases {
            assert_eq!(
                find(&found, &spec).map(|d| d.name.as_str()),
                expected,
                "{spec}"
            );
        }
    }

    #[test]
    fn scan_of_a_missing_tree_is_empty() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(scan(&root.path().join("nothing"), root.path()), []);
    }
}

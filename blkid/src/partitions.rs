//! Partition tables: GPT (the primary header, else the backup) and DOS
//! (primary slots and the chain of logical partitions), read for the
//! PARTUUIDs that blkid reports.
//!
//! A table that fails its checks (signature, CRC, sizes), or a sector too
//! short for it, is no table: the disk then has no partitions to report.

use std::io::{Read, Seek, SeekFrom};

use dumper::bytes::Bytes;

use crate::probe::parse_fat_boot;
use crate::{dashed_hex, read_at, BlkidError, Partition};

/// GPT entry arrays larger than this are refused: common tools write 16 KiB
/// (128 entries of 128 bytes), and a scan must stay cheap.
const MAX_GPT_ENTRIES_BYTES: u64 = 64 * 1024;
/// How many extended boot records a DOS table may chain, so that a looping
/// chain on a damaged disk ends.
const MAX_LOGICAL_PARTITIONS: u32 = 128;
/// An MBR or EBR, and the part of a logical block read for a GPT header.
const SECTOR_BYTES: usize = 512;

/// A GUID as GPT stores it: the first three fields little-endian.
fn guid_from_bytes(bytes: [u8; 16]) -> String {
    let [a0, a1, a2, a3, b0, b1, c0, c1, rest @ ..] = bytes;
    let [d0, d1, d2, d3, d4, d5, d6, d7] = rest;
    dashed_hex([
        a3, a2, a1, a0, b1, b0, c1, c0, d0, d1, d2, d3, d4, d5, d6, d7,
    ])
}

/// CRC-32 (IEEE 802.3, reflected), as GPT headers and entry arrays use, of
/// the concatenated `parts`.
fn crc32(parts: &[&[u8]]) -> u32 {
    let mut crc = !0u32;
    for &byte in parts.iter().copied().flatten() {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xedb8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

/// One slot of an MBR or EBR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct BootRecordEntry {
    /// 0x80 for the active partition, else 0x00.
    boot_indicator: u8,
    kind: u8,
    start: u32,
    sectors: u32,
}

/// An MBR or an EBR: a sector ending in 55 AA, with four 16-byte slots at
/// 446 and, in an MBR, the disk signature at 440.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct BootRecord {
    disk_signature: u32,
    entries: [BootRecordEntry; 4],
}

/// The boot record in the first 512 bytes of `sector`, when they are one.
fn parse_boot_record(sector: Bytes) -> Option<BootRecord> {
    let sector = sector.sub(0, SECTOR_BYTES).ok()?;
    if sector.slice(510, 2).ok()? != [0x55, 0xaa] {
        return None;
    }
    let mut entries = [BootRecordEntry {
        boot_indicator: 0,
        kind: 0,
        start: 0,
        sectors: 0,
    }; 4];
    for (slot, entry) in entries.iter_mut().enumerate() {
        let bytes = sector.sub(446 + 16 * slot, 16).ok()?;
        *entry = BootRecordEntry {
            boot_indicator: bytes.u8(0).ok()?,
            kind: bytes.u8(4).ok()?,
            start: bytes.u32_le(8).ok()?,
            sectors: bytes.u32_le(12).ok()?,
        };
    }
    Some(BootRecord {
        disk_signature: sector.u32_le(440).ok()?,
        entries,
    })
}

/// The partitions of a disk: from its GPT (the primary one, else the backup
/// at the disk's end) when the MBR is protective, else from its DOS table,
/// logical partitions included. Empty when the disk has neither.
pub fn read_partitions<R: Read + Seek>(
    disk: &mut R,
    sector_size: u64,
) -> Result<Vec<Partition>, BlkidError> {
    if !sector_size.is_power_of_two() || sector_size < 512 {
        return Err(BlkidError::SectorSize { size: sector_size });
    }
    let mut sector = [0u8; SECTOR_BYTES];
    if !read_at(disk, "MBR", 0, &mut sector)? {
        return Ok(Vec::new());
    }
    let Some(mbr) = parse_boot_record(Bytes::new(&sector)) else {
        return Ok(Vec::new());
    };
    const PROTECTIVE: u8 = 0xee;
    if mbr.entries.iter().any(|entry| entry.kind == PROTECTIVE) {
        if let Some(partitions) = read_gpt(disk, sector_size, 1)? {
            return Ok(partitions);
        }
        let disk_bytes = disk
            .seek(SeekFrom::End(0))
            .map_err(|source| BlkidError::DiskSize { source })?;
        let disk_sectors = disk_bytes / sector_size;
        if disk_sectors > 1 {
            if let Some(partitions) = read_gpt(disk, sector_size, disk_sectors - 1)? {
                log::debug!("primary GPT damaged, using the backup");
                return Ok(partitions);
            }
        }
        return Ok(Vec::new());
    }
    // A FAT boot sector also ends in 55 AA; its boot code is not a table.
    if mbr
        .entries
        .iter()
        .any(|entry| !matches!(entry.boot_indicator, 0x00 | 0x80))
        || parse_fat_boot(Bytes::new(&sector)).is_some()
    {
        return Ok(Vec::new());
    }
    read_dos(disk, sector_size, &mbr)
}

/// What a GPT header says about its entry array, once its checks pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct GptHeader {
    entries_lba: u64,
    entry_count: u32,
    entry_size: u32,
    entries_crc: u32,
}

/// The GPT header in the first 512 bytes of `sector`, read from `lba`: its
/// signature, size, CRC and own LBA must be right.
fn parse_gpt_header(sector: Bytes, lba: u64) -> Option<GptHeader> {
    let sector = sector.sub(0, SECTOR_BYTES).ok()?;
    if sector.slice(0, 8).ok()? != b"EFI PART" {
        return None;
    }
    let header_size = sector.u32_le(12).ok()? as usize;
    if !(92..=SECTOR_BYTES).contains(&header_size) {
        return None;
    }
    let header = sector.sub(0, header_size).ok()?;
    // The CRC covers the header with its own CRC field zeroed.
    let computed = crc32(&[
        header.slice(0, 16).ok()?,
        &[0; 4],
        header.tail(20).ok()?.as_slice(),
    ]);
    if computed != header.u32_le(16).ok()? || header.u64_le(24).ok()? != lba {
        return None;
    }
    Some(GptHeader {
        entries_lba: header.u64_le(72).ok()?,
        entry_count: header.u32_le(80).ok()?,
        entry_size: header.u32_le(84).ok()?,
        entries_crc: header.u32_le(88).ok()?,
    })
}

/// The used entries of a GPT entry array of `count` entries of
/// `entry_size` bytes (at least 128, as the header check ensures).
fn parse_gpt_entries(array: Bytes, count: usize, entry_size: usize) -> Option<Vec<Partition>> {
    // chunks_exact() needs a size; and an array cut short has lost entries.
    if entry_size == 0 {
        return None;
    }
    let array = array.sub(0, count.checked_mul(entry_size)?).ok()?;
    let mut partitions = Vec::new();
    for (index, entry) in array.as_slice().chunks_exact(entry_size).enumerate() {
        let entry = Bytes::new(entry);
        // An unused entry has an all-zero type GUID.
        if entry.array::<16>(0).ok()? == [0; 16] {
            continue;
        }
        partitions.push(Partition {
            number: u32::try_from(index + 1).ok()?,
            partuuid: guid_from_bytes(entry.array(16).ok()?),
            first_lba: entry.u64_le(32).ok()?,
            last_lba: entry.u64_le(40).ok()?,
        });
    }
    Some(partitions)
}

/// Reads the GPT header at `lba` and its entries; `None` when the header or
/// the entries fail their checks.
fn read_gpt<R: Read + Seek>(
    disk: &mut R,
    sector_size: u64,
    lba: u64,
) -> Result<Option<Vec<Partition>>, BlkidError> {
    let Some(offset) = lba.checked_mul(sector_size) else {
        return Ok(None);
    };
    let mut sector = [0u8; SECTOR_BYTES];
    if !read_at(disk, "GPT header", offset, &mut sector)? {
        return Ok(None);
    }
    let Some(header) = parse_gpt_header(Bytes::new(&sector), lba) else {
        return Ok(None);
    };
    let entry_size = u64::from(header.entry_size);
    let array_size = u64::from(header.entry_count) * entry_size;
    // The UEFI specification allows entries of 128 × 2^n bytes.
    if entry_size < 128 || !entry_size.is_power_of_two() || array_size > MAX_GPT_ENTRIES_BYTES {
        return Ok(None);
    }
    let Some(array_offset) = header.entries_lba.checked_mul(sector_size) else {
        return Ok(None);
    };
    let mut array = vec![0u8; array_size as usize];
    if !read_at(disk, "GPT entry array", array_offset, &mut array)?
        || crc32(&[&array]) != header.entries_crc
    {
        return Ok(None);
    }
    Ok(parse_gpt_entries(
        Bytes::new(&array),
        header.entry_count as usize,
        entry_size as usize,
    ))
}

/// A DOS partition table: four primary slots (numbers 1–4, kept even when a
/// slot before is empty) and, inside an extended partition, a chain of
/// extended boot records whose partitions Linux numbers from 5.
fn read_dos<R: Read + Seek>(
    disk: &mut R,
    sector_size: u64,
    mbr: &BootRecord,
) -> Result<Vec<Partition>, BlkidError> {
    let signature = mbr.disk_signature;
    let partuuid = |number: u32| format!("{signature:08x}-{number:02x}");
    let is_extended = |kind: u8| matches!(kind, 0x05 | 0x0f | 0x85);
    let mut partitions = Vec::new();
    let mut extended_start = None;
    for (number, entry) in (1..).zip(mbr.entries) {
        if entry.kind == 0 || entry.sectors == 0 {
            continue;
        }
        let start = u64::from(entry.start);
        partitions.push(Partition {
            number,
            partuuid: partuuid(number),
            first_lba: start,
            last_lba: start + u64::from(entry.sectors) - 1,
        });
        if is_extended(entry.kind) && extended_start.is_none() {
            extended_start = Some(start);
        }
    }
    let Some(extended_start) = extended_start else {
        return Ok(partitions);
    };
    let mut ebr_lba = extended_start;
    let mut number = 5;
    while number < 5 + MAX_LOGICAL_PARTITIONS {
        let Some(offset) = ebr_lba.checked_mul(sector_size) else {
            break;
        };
        let mut sector = [0u8; SECTOR_BYTES];
        if !read_at(disk, "extended boot record", offset, &mut sector)? {
            break;
        }
        let Some(ebr) = parse_boot_record(Bytes::new(&sector)) else {
            break;
        };
        let [logical, next, ..] = ebr.entries;
        if logical.kind != 0 && logical.sectors != 0 {
            let first_lba = ebr_lba + u64::from(logical.start);
            partitions.push(Partition {
                number,
                partuuid: partuuid(number),
                first_lba,
                last_lba: first_lba + u64::from(logical.sectors) - 1,
            });
            number += 1;
        }
        // The second entry points to the next EBR, relative to the start of
        // the extended partition.
        if !is_extended(next.kind) || next.start == 0 {
            break;
        }
        ebr_lba = extended_start + u64::from(next.start);
    }
    Ok(partitions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_tools::*;
    use std::ffi::OsStr;
    use std::fs::{self, File};
    use std::io::Cursor;
    use std::path::Path;

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

        let cases: Vec<(&Path, Vec<Partition>)> = vec![
            (&gpt_disk, gpt_expected()),
            (&dos_disk, dos_expected()),
            (&damaged_primary, gpt_expected()),
            (&both_damaged, Vec::new()),
            (&fat, Vec::new()),
            (&blank, Vec::new()),
        ];
        for (disk, expected) in cases {
            let got = read_partitions(&mut File::open(disk).unwrap(), 512).unwrap();
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
        let expected: Vec<Partition> = listing
            .lines()
            .skip_while(|line| !line.starts_with("Start"))
            .skip(1)
            .zip(1..)
            .map(|(line, number)| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                Partition {
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
        let got = read_partitions(&mut File::open(&disk).unwrap(), 4096).unwrap();
        assert_eq!(got, expected);
        // Read as 512-byte sectors, the same disk has no GPT where one would
        // be; whatever comes back must not be the 4 KiB partitions.
        let as_512 = read_partitions(&mut File::open(&disk).unwrap(), 512).unwrap();
        assert_ne!(as_512, expected);
    }

    /// The first `len` bytes of the file at `path`.
    fn head_of(path: &Path, len: usize) -> Vec<u8> {
        let mut bytes = vec![0u8; len];
        File::open(path).unwrap().read_exact(&mut bytes).unwrap();
        bytes
    }

    /// Each table parser fed its structure from disks partitioned by
    /// sfdisk, cut at every length: `None` below the whole structure, the
    /// table at it, and never a panic.
    #[test]
    fn truncated_tables_are_none() {
        let dir = tempfile::tempdir().unwrap();
        let gpt_disk = dir.path().join("gpt.img");
        partitioned_disk(&gpt_disk, GPT_SCRIPT);
        let dos_disk = dir.path().join("dos.img");
        partitioned_disk(&dos_disk, DOS_SCRIPT);
        // The protective MBR, the header at LBA 1, 128 entries from LBA 2.
        let gpt = head_of(&gpt_disk, 34 * 512);
        let dos = head_of(&dos_disk, 512);
        let (gpt_header, gpt_entries) = (&gpt[512..1024], &gpt[1024..]);

        let entry = |boot_indicator, kind, start, sectors| BootRecordEntry {
            boot_indicator,
            kind,
            start,
            sectors,
        };
        let unused = entry(0, 0, 0, 0);
        let dos_mbr = BootRecord {
            disk_signature: 0x5e0a_7c2b,
            entries: [
                entry(0, 0x83, 2048, 4096),
                entry(0, 0x05, 8192, 16384),
                unused,
                unused,
            ],
        };
        let gpt_header_fields = GptHeader {
            entries_lba: 2,
            entry_count: 128,
            entry_size: 128,
            entries_crc: crc32(&[gpt_entries]),
        };

        type Parse = fn(Bytes) -> Option<String>;
        let cases: &[(&str, &[u8], Parse, String)] = &[
            (
                "DOS MBR",
                &dos,
                |bytes| parse_boot_record(bytes).map(|r| format!("{r:?}")),
                format!("{dos_mbr:?}"),
            ),
            (
                "GPT header",
                gpt_header,
                |bytes| parse_gpt_header(bytes, 1).map(|h| format!("{h:?}")),
                format!("{gpt_header_fields:?}"),
            ),
            (
                "GPT entries",
                gpt_entries,
                |bytes| parse_gpt_entries(bytes, 128, 128).map(|p| format!("{p:?}")),
                format!("{:?}", gpt_expected()),
            ),
        ];
        for (what, whole, parse, expected) in cases {
            for cut in 0..whole.len() {
                assert_eq!(
                    parse(Bytes::new(&whole[..cut])),
                    None,
                    "{what} cut at {cut}"
                );
            }
            assert_eq!(parse(Bytes::new(whole)).as_ref(), Some(expected), "{what}");
        }
    }

    /// Disks cut short: what is read is always the start of the whole
    /// table (a GPT whole or not at all; a DOS table's primary partitions,
    /// then each logical one as its EBR comes within reach), never garbage
    /// or a panic.
    #[test]
    fn truncated_disks_give_the_start_of_their_table() {
        let dir = tempfile::tempdir().unwrap();
        let gpt_disk = dir.path().join("gpt.img");
        partitioned_disk(&gpt_disk, GPT_SCRIPT);
        let dos_disk = dir.path().join("dos.img");
        partitioned_disk(&dos_disk, DOS_SCRIPT);

        // The primary GPT ends after its 16 KiB entry array.
        let gpt_end = 34 * 512;
        let gpt = head_of(&gpt_disk, gpt_end + 512);
        for cut in 0..=gpt.len() {
            let got = read_partitions(&mut Cursor::new(&gpt[..cut]), 512).unwrap();
            let expected = if cut < gpt_end {
                Vec::new()
            } else {
                gpt_expected()
            };
            assert_eq!(got, expected, "GPT cut at {cut}");
        }

        // Past the extended partition's last EBR, every byte is data.
        let dos = head_of(&dos_disk, 24576 * 512);
        let full = dos_expected();
        let mut seen = 0;
        let cuts =
            (0..=1024).chain((3..=24576).flat_map(|sector| [sector * 512 - 212, sector * 512]));
        for cut in cuts {
            let got = read_partitions(&mut Cursor::new(&dos[..cut]), 512).unwrap();
            assert!(
                got.len() >= seen,
                "DOS cut at {cut}: {got:?} lost partitions"
            );
            assert_eq!(got, full[..got.len()], "DOS cut at {cut}");
            if cut < 512 {
                assert_eq!(got, [], "DOS cut at {cut}");
            }
            seen = got.len();
        }
        assert_eq!(seen, full.len());
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(&[b"123456789"]), 0xcbf4_3926);
        assert_eq!(crc32(&[b"1234", b"", b"56789"]), 0xcbf4_3926);
        assert_eq!(crc32(&[]), 0);
    }
}

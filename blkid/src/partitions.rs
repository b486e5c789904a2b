//! Partition tables: GPT (the primary header, else the backup) and DOS
//! (primary slots and the chain of logical partitions), read for the
//! PARTUUIDs that blkid reports.

use std::io::{self, Read, Seek, SeekFrom};

use crate::probe::parse_fat_boot;
use crate::{le32, le64, read_at, Partition};

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
pub fn read_partitions<R: Read + Seek>(
    disk: &mut R,
    sector_size: u64,
) -> io::Result<Vec<Partition>> {
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
) -> io::Result<Option<Vec<Partition>>> {
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
        .map(|(index, entry)| Partition {
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
) -> io::Result<Vec<Partition>> {
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
        partitions.push(Partition {
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
            partitions.push(Partition {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_tools::*;
    use std::ffi::OsStr;
    use std::fs::{self, File};
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

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(b""), 0);
    }
}

//! Which page frames a makedumpfile dump in the kdump-compressed format
//! (`makedumpfile -l`/`-c`/`-z`) keeps, read from its bitmaps and page
//! descriptors (makedumpfile's `diskdump_mod.h`): the reference lifeboat's
//! dump levels are compared with.
//!
//! Layout, version 6 and later, little-endian x86_64 C structs:
//! - block 0: `disk_dump_header`: signature `KDUMP   `, version, the
//!   utsname, a timeval, then `block_size` at byte 428, `sub_hdr_size` at
//!   432, `bitmap_blocks` at 436;
//! - block 1: `kdump_sub_header`, whose `max_mapnr_64` (byte 96) is the
//!   number of page frames the bitmaps cover;
//! - blocks `1 + sub_hdr_size` on: the two bitmaps, `bitmap_blocks` blocks
//!   in all, half each; bit `pfn % 8` of byte `pfn / 8`. The first has the
//!   frames in memory, the second those dumped;
//! - then one 24-byte `page_desc` (offset, size, flags, page flags) for
//!   each frame of the second bitmap, in pfn order. Zero pages that
//!   `-d 1` leaves out stay in the second bitmap and share one descriptor,
//!   whose data, one page of zeros, is the first thing after the
//!   descriptors (without `-d 1` the first frame's data is there).

use std::fs::File;
use std::io::Read as _;
use std::os::unix::fs::FileExt as _;
use std::path::Path;

use anyhow::{bail, Context as _, Result};

const SIGNATURE: &[u8; 8] = b"KDUMP   ";
const PAGE_DESC_BYTES: u64 = 24;

/// What a kdump-format dump says of each page frame.
pub struct KdumpPages {
    /// Frames in memory (the first bitmap).
    pub in_memory: Vec<bool>,
    /// Frames written with their data (in the second bitmap, not zero).
    pub with_data: Vec<bool>,
    /// Frames left out as pages of zeros (in the second bitmap, sharing the
    /// zero page's descriptor).
    pub zero: Vec<bool>,
}

impl KdumpPages {
    /// Reads the dump at `path`, made with a level that leaves out zero
    /// pages (bit 1) if `zero_pages`.
    pub fn read(path: &Path, zero_pages: bool) -> Result<KdumpPages> {
        let mut file =
            File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let mut header = [0u8; 464];
        file.read_exact(&mut header)
            .with_context(|| format!("{}: no kdump header", path.display()))?;
        if &header[..8] != SIGNATURE {
            bail!("{} is not in the kdump-compressed format", path.display());
        }
        let word = |at: usize| u32::from_le_bytes(header[at..at + 4].try_into().unwrap());
        let version = word(8);
        let block_size = u64::from(word(428));
        let sub_hdr_size = u64::from(word(432));
        let bitmap_blocks = u64::from(word(436));
        if version < 6 || block_size == 0 || bitmap_blocks % 2 != 0 {
            bail!(
                "{}: kdump header version {version}, block size {block_size}, {bitmap_blocks} bitmap blocks: not what makedumpfile 1.7 writes",
                path.display()
            );
        }
        let mut max_mapnr = [0u8; 8];
        file.read_exact_at(&mut max_mapnr, block_size + 96)?;
        let max_mapnr = u64::from_le_bytes(max_mapnr);
        let bitmaps_at = block_size * (1 + sub_hdr_size);
        let half = bitmap_blocks / 2 * block_size;
        if max_mapnr.div_ceil(8) > half {
            bail!(
                "{}: {max_mapnr} frames do not fit {half}-byte bitmaps",
                path.display()
            );
        }
        let mut first = vec![0u8; half as usize];
        let mut second = vec![0u8; half as usize];
        file.read_exact_at(&mut first, bitmaps_at)?;
        file.read_exact_at(&mut second, bitmaps_at + half)?;
        let bit = |bitmap: &[u8], pfn: u64| bitmap[(pfn / 8) as usize] >> (pfn % 8) & 1 == 1;
        let dumped: u64 = second.iter().map(|byte| u64::from(byte.count_ones())).sum();
        let descs_at = bitmaps_at + 2 * half;
        let zero_data_at = descs_at + dumped * PAGE_DESC_BYTES;
        let mut descs = vec![0u8; (dumped * PAGE_DESC_BYTES) as usize];
        file.read_exact_at(&mut descs, descs_at)
            .with_context(|| format!("{}: page descriptors cut short", path.display()))?;
        let mut pages = KdumpPages {
            in_memory: vec![false; max_mapnr as usize],
            with_data: vec![false; max_mapnr as usize],
            zero: vec![false; max_mapnr as usize],
        };
        let mut desc = descs.chunks_exact(PAGE_DESC_BYTES as usize);
        for pfn in 0..max_mapnr {
            pages.in_memory[pfn as usize] = bit(&first, pfn);
            if !bit(&second, pfn) {
                continue;
            }
            let entry = desc
                .next()
                .context("fewer descriptors than dumped frames")?;
            let offset = u64::from_le_bytes(entry[..8].try_into().unwrap());
            if zero_pages && offset == zero_data_at {
                pages.zero[pfn as usize] = true;
            } else {
                pages.with_data[pfn as usize] = true;
            }
        }
        Ok(pages)
    }
}

/// makedumpfile's report of what it left out (`--message-level 16` and
/// more), page counts by its names.
pub fn report_counts(report: &str) -> Vec<(String, u64)> {
    const NAMES: [&str; 7] = [
        "Pages filled with zero",
        "Non-private cache pages",
        "Private cache pages",
        "User process data pages",
        "Free pages",
        "Hwpoison pages",
        "Offline pages",
    ];
    NAMES
        .iter()
        .filter_map(|name| {
            let line = report
                .lines()
                .find(|line| line.trim_start().starts_with(name))?;
            let value = line.rsplit(':').next()?.trim();
            let count = u64::from_str_radix(value.trim_start_matches("0x"), 16).ok()?;
            Some((name.to_string(), count))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_counts_are_read_by_name() {
        let report = "Original pages  : 0x000000000007c70c\n  Excluded pages   : 0x0000000000073953\n    \
                      Pages filled with zero  : 0x0000000000000e29\n    Non-private cache pages : 0x0000000000000e87\n    \
                      Private cache pages     : 0x0000000000000000\n    User process data pages : 0x000000000000400a\n    \
                      Free pages              : 0x000000000006dc99\n    Hwpoison pages          : 0x0000000000000000\n    \
                      Offline pages           : 0x0000000000000000\n";
        let counts = report_counts(report);
        assert_eq!(counts.len(), 7);
        assert_eq!(counts[0], ("Pages filled with zero".into(), 0xe29));
        assert_eq!(counts[4], ("Free pages".into(), 0x6dc99));
    }
}

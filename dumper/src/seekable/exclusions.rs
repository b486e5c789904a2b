//! The exclusion record: which bytes of a frame a dump level left out, and
//! why, so that a reader can tell "excluded" from "was zero".
//!
//! An excluded page is written as zeros at its usual place, so the dump
//! still decompresses to an ELF vmcore with the same layout. The record
//! that says so is a skippable frame right after the frame it describes,
//! and the seek table's compressed size of that frame covers both: stock
//! `zstd -d` and `zstd -t` skip it, a reader that seeks by the table finds
//! it with its frame, and a dump cut short still describes every frame it
//! holds whole. A frame from which nothing was left out has no record.
//!
//! Layout (integers little-endian; LEB128 is unsigned, 7 bits a byte, low
//! group first):
//!
//! ```text
//! u32 EXCLUSION_MAGIC (0x184D2A5B)   u32 size of what follows
//! u8  version (1)
//! per run, in order: LEB128 bytes since the end of the previous run (or
//!     the frame's start), LEB128 length of the run (not zero), u8 category
//!     (its index in ExcludeCategory::ALL)
//! ```
//!
//! Runs do not overlap or touch when their categories are equal (they are
//! merged), and lie inside the frame. A run of a whole 1 MiB frame costs
//! ten bytes; the worst case, every other page of a frame excluded, about
//! four bytes a page, a tenth of a percent of the data it describes.

use thiserror::Error;

use crate::filter::ExcludeCategory;

/// Magic number of an exclusion record: one of zstd's sixteen skippable
/// magics, not the seek table's.
pub const EXCLUSION_MAGIC: u32 = 0x184D_2A5B;

/// The only version written.
const VERSION: u8 = 1;

/// A run of bytes left out of a frame, counted from the frame's first
/// decompressed byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExcludedRun {
    pub start: u64,
    pub len: u64,
    pub category: ExcludeCategory,
}

impl ExcludedRun {
    pub fn end(&self) -> u64 {
        self.start + self.len
    }
}

/// What is wrong with an exclusion record.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum RecordProblem {
    #[error("it is {len} bytes, too short for its header")]
    Short { len: usize },
    #[error("its magic is {magic:#010x}")]
    Magic { magic: u32 },
    #[error("its header says {said} bytes follow, but {actual} do")]
    Size { said: u64, actual: u64 },
    #[error("it has version {version}, not 1")]
    Version { version: u8 },
    #[error("run {index} is cut short")]
    Truncated { index: usize },
    #[error("run {index} has a number of more than 64 bits")]
    Overflow { index: usize },
    #[error("run {index} is empty")]
    EmptyRun { index: usize },
    #[error("run {index} has category {code}, which does not exist")]
    Category { index: usize, code: u8 },
    #[error("run {index} ends at {end}, past the frame's {frame_len} bytes")]
    PastFrame {
        index: usize,
        end: u64,
        frame_len: u64,
    },
}

/// Appends the skippable frame recording `runs` (ordered, inside the
/// frame) to `out`; appends nothing when there are none.
pub fn encode_record(runs: &[ExcludedRun], out: &mut Vec<u8>) {
    if runs.is_empty() {
        return;
    }
    out.extend_from_slice(&EXCLUSION_MAGIC.to_le_bytes());
    let size_at = out.len();
    out.extend_from_slice(&[0; 4]);
    out.push(VERSION);
    let mut at = 0u64;
    for run in runs {
        put_leb128(out, run.start - at);
        put_leb128(out, run.len);
        out.push(run.category.index() as u8);
        at = run.end();
    }
    let size = (out.len() - size_at - 4) as u32;
    out[size_at..size_at + 4].copy_from_slice(&size.to_le_bytes());
}

/// The runs of a whole record (its skippable frame header included) that
/// describes a frame of `frame_len` decompressed bytes.
pub fn decode_record(bytes: &[u8], frame_len: u64) -> Result<Vec<ExcludedRun>, RecordProblem> {
    let header: &[u8; 9] = bytes
        .first_chunk()
        .ok_or(RecordProblem::Short { len: bytes.len() })?;
    let magic = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    if magic != EXCLUSION_MAGIC {
        return Err(RecordProblem::Magic { magic });
    }
    let said = u64::from(u32::from_le_bytes([
        header[4], header[5], header[6], header[7],
    ]));
    let actual = bytes.len() as u64 - 8;
    if said != actual {
        return Err(RecordProblem::Size { said, actual });
    }
    if header[8] != VERSION {
        return Err(RecordProblem::Version { version: header[8] });
    }
    let mut rest = &bytes[9..];
    let mut runs = Vec::new();
    let mut at = 0u64;
    while !rest.is_empty() {
        let index = runs.len();
        let gap = take_leb128(&mut rest, index)?;
        let len = take_leb128(&mut rest, index)?;
        let (&code, after) = rest
            .split_first()
            .ok_or(RecordProblem::Truncated { index })?;
        rest = after;
        if len == 0 {
            return Err(RecordProblem::EmptyRun { index });
        }
        let category = *ExcludeCategory::ALL
            .get(usize::from(code))
            .ok_or(RecordProblem::Category { index, code })?;
        let start = at
            .checked_add(gap)
            .ok_or(RecordProblem::Overflow { index })?;
        let end = start
            .checked_add(len)
            .ok_or(RecordProblem::Overflow { index })?;
        if end > frame_len {
            return Err(RecordProblem::PastFrame {
                index,
                end,
                frame_len,
            });
        }
        runs.push(ExcludedRun {
            start,
            len,
            category,
        });
        at = end;
    }
    Ok(runs)
}

fn put_leb128(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn take_leb128(rest: &mut &[u8], index: usize) -> Result<u64, RecordProblem> {
    let mut value = 0u64;
    for shift in (0..).step_by(7) {
        let (&byte, after) = rest
            .split_first()
            .ok_or(RecordProblem::Truncated { index })?;
        *rest = after;
        let bits = u64::from(byte & 0x7f);
        if shift >= 64 || (shift > 57 && bits >> (64 - shift) != 0) {
            return Err(RecordProblem::Overflow { index });
        }
        value |= bits << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    unreachable!("the loop returns")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ExcludeCategory::*;

    fn run(start: u64, len: u64, category: ExcludeCategory) -> ExcludedRun {
        ExcludedRun {
            start,
            len,
            category,
        }
    }

    #[test]
    fn records_read_back_and_stock_zstd_skips_them() {
        let cases: &[&[ExcludedRun]] = &[
            &[run(0, 1 << 20, Free)],
            &[run(4096, 4096, Zero), run(8192, 4096, User)],
            &[
                run(0, 4096, Hwpoison),
                run(1 << 19, 100 << 12, Cache),
                run((1 << 20) - 4096, 4096, Offline),
            ],
            &[run(u64::MAX - 5, 5, CachePrivate)],
        ];
        for runs in cases {
            let mut record = Vec::new();
            encode_record(runs, &mut record);
            assert_eq!(decode_record(&record, u64::MAX).unwrap(), *runs);
            assert_eq!(zstd::decode_all(&record[..]).unwrap(), Vec::<u8>::new());
        }
        let mut none = Vec::new();
        encode_record(&[], &mut none);
        assert!(none.is_empty());
        let mut whole = Vec::new();
        encode_record(&[run(0, 1 << 20, Free)], &mut whole);
        assert_eq!(whole.len(), 9 + 1 + 3 + 1);
    }

    #[test]
    fn bad_records_are_named() {
        let mut good = Vec::new();
        encode_record(&[run(4096, 8192, User)], &mut good);
        let with = |edit: &dyn Fn(&mut Vec<u8>)| {
            let mut bytes = good.clone();
            edit(&mut bytes);
            bytes
        };
        let resize = |bytes: &mut Vec<u8>| {
            let size = (bytes.len() - 8) as u32;
            bytes[4..8].copy_from_slice(&size.to_le_bytes());
        };
        let cases: Vec<(Vec<u8>, u64, RecordProblem)> = vec![
            (good[..5].to_vec(), 1 << 20, RecordProblem::Short { len: 5 }),
            (
                with(&|b| b[0] = 0x5e),
                1 << 20,
                RecordProblem::Magic { magic: 0x184D_2A5E },
            ),
            (
                with(&|b| b.push(0)),
                1 << 20,
                RecordProblem::Size {
                    said: good.len() as u64 - 8,
                    actual: good.len() as u64 - 7,
                },
            ),
            (
                with(&|b| b[8] = 2),
                1 << 20,
                RecordProblem::Version { version: 2 },
            ),
            (
                with(&|b| {
                    b.pop();
                    resize(b)
                }),
                1 << 20,
                RecordProblem::Truncated { index: 0 },
            ),
            (
                with(&|b| {
                    b.truncate(9);
                    b.extend_from_slice(&[0, 0, 3]);
                    resize(b)
                }),
                1 << 20,
                RecordProblem::EmptyRun { index: 0 },
            ),
            (
                with(&|b| {
                    *b.last_mut().unwrap() = 7;
                    resize(b)
                }),
                1 << 20,
                RecordProblem::Category { index: 0, code: 7 },
            ),
            (
                good.clone(),
                8192,
                RecordProblem::PastFrame {
                    index: 0,
                    end: 12288,
                    frame_len: 8192,
                },
            ),
            (
                with(&|b| {
                    b.truncate(9);
                    b.extend_from_slice(&[0xff; 10]);
                    b.extend_from_slice(&[0x01, 1, 0]);
                    resize(b)
                }),
                1 << 20,
                RecordProblem::Overflow { index: 0 },
            ),
        ];
        for (bytes, frame_len, expected) in cases {
            assert_eq!(
                decode_record(&bytes, frame_len),
                Err(expected.clone()),
                "{expected}"
            );
        }
    }
}

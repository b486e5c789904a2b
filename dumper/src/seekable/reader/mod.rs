//! Reading dumps in the seekable format.
//!
//! A [`Dump`] finds its frames from the seek table when the table is there
//! and agrees with the file; otherwise (a dump cut short, or one written as
//! a single plain zstd frame by an older lifeboat or by `zstd` itself) it
//! walks the frame and block headers from the start of the file, and the
//! frames found before the first damage are the intact part of the dump.
//!
//! Random reads decompress the frames they touch and keep the result in a
//! small cache of 1 MiB pieces: the printk reader makes thousands of small
//! reads in a few places of memory, and must not decompress a frame for
//! each. [`Dump`] implements [`ReadAt`], so a [`crate::vmcore::Vmcore`]
//! reads VMCOREINFO and the kernel log straight out of a compressed dump.
//!
//! A dump is untrusted input: every size read from it is checked against
//! the file, memory is bounded by constants rather than by header fields
//! (a frame is decoded in pieces, never into a buffer of its declared
//! size), and a corrupt frame is an error, never a panic.
//!
//! Walking frame headers and reading the seek table is in `scan.rs`,
//! decoding frames and the cache in `decode.rs`.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::sync::Mutex;

use crate::xxh64::Xxh64;
use thiserror::Error;
use zstd::zstd_safe::{self, DCtx, InBuffer, OutBuffer, ResetDirective};

use super::exclusions::{decode_record, ExcludedRun, RecordProblem, EXCLUSION_MAGIC};
use super::{
    zero_checksum, CHECKSUM_FLAG, ENTRY_BYTES, FOOTER_BYTES, MAX_FRAMES, MAX_FRAME_BYTES,
    SEEKABLE_MAGIC, SKIPPABLE_MAGIC, ZSTD_MAGIC,
};
use crate::bytes::{Bytes, OutOfBounds};
use crate::elf::ReadAt;

mod decode;
mod scan;
#[cfg(test)]
mod tests;

use self::decode::*;
use self::scan::*;

/// Decompressed bytes per cache entry, and per step of sequential decoding.
pub const PIECE_BYTES: usize = 1 << 20;

/// Decoded bytes the random-access cache keeps at most: the printk reader's
/// working set (descriptor ring, info array, text ring, a few kernel
/// variables) is a few MiB, spread over a handful of frames.
pub const CACHE_BYTES: usize = 128 << 20;

/// Cache entries kept at most, whatever their size: lookups scan the list.
const CACHE_ENTRIES: usize = 256;

/// Frames up to this size are decoded whole on a random read, their
/// checksum checked before any of their bytes is returned. Larger frames
/// (only single-frame dumps of older writers have them) are decoded lazily,
/// up to the piece that is needed.
pub const WHOLE_FRAME_BYTES: u64 = 64 << 20;

/// Compressed bytes read from the file per step of decoding.
const INPUT_CHUNK: usize = 128 << 10;

/// zstd's largest block, in either form.
const BLOCK_MAX: u64 = 128 << 10;

/// A zstd frame header is at most magic (4), descriptor (1), window (1),
/// dictionary id (4) and content size (8) bytes long.
const FRAME_HEADER_MAX: usize = 18;

/// The smallest complete zstd frame: magic, descriptor, a one-byte content
/// size and one block header.
const FRAME_MIN: u64 = 9;

/// The high 28 bits shared by the 16 skippable frame magic numbers.
const SKIPPABLE_MASK: u32 = 0xFFFF_FFF0;

/// Bytes of the file read at once while walking frame and block headers.
const SCAN_READ_AHEAD: usize = 16 << 10;

/// One frame of a dump: where it is in the file and what it decompresses to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameInfo {
    pub compressed_offset: u64,
    pub compressed_size: u64,
    /// Where the frame's content starts in the decompressed vmcore.
    pub decompressed_offset: u64,
    pub decompressed_size: u64,
    /// The low 32 bits of XXH64 of the content: from the seek table, or
    /// else from the frame's own content checksum; `None` if neither has it.
    pub checksum: Option<u32>,
}

impl FrameInfo {
    fn compressed_end(&self) -> u64 {
        self.compressed_offset + self.compressed_size
    }

    fn decompressed_end(&self) -> u64 {
        self.decompressed_offset + self.decompressed_size
    }
}

/// What became of the seek table when the dump was opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TableStatus {
    /// The table is there and agrees with the file: the frames are its.
    Consistent,
    /// The file does not end with a seek table footer.
    Missing,
    /// A table is there but cannot be right; the frames were found by
    /// walking the file instead.
    Inconsistent(TableProblem),
}

/// Why a seek table was not used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableProblem {
    /// The descriptor's reserved bits are set.
    ReservedBits {
        descriptor: u8,
    },
    TooManyFrames {
        count: u64,
    },
    /// The table frame would be larger than the file.
    LargerThanFile {
        table_bytes: u64,
        file_size: u64,
    },
    /// The skippable frame holding the table has the wrong magic or size.
    BadFrameHeader {
        magic: u32,
        size: u32,
    },
    /// An entry describes a frame no writer can produce.
    BadEntry {
        index: usize,
        compressed_size: u32,
        decompressed_size: u32,
    },
    /// The frames do not fill the file up to the table.
    SizeMismatch {
        frames_bytes: u64,
        data_bytes: u64,
    },
}

impl fmt::Display for TableProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            TableProblem::ReservedBits { descriptor } => {
                write!(f, "descriptor {descriptor:#04x} has reserved bits set")
            }
            TableProblem::TooManyFrames { count } => {
                write!(f, "{count} frames exceed the format's {MAX_FRAMES}")
            }
            TableProblem::LargerThanFile {
                table_bytes,
                file_size,
            } => write!(
                f,
                "a table of {table_bytes} bytes does not fit in a file of {file_size} bytes"
            ),
            TableProblem::BadFrameHeader { magic, size } => write!(
                f,
                "the table's skippable frame header is wrong (magic {magic:#010x}, size {size})"
            ),
            TableProblem::BadEntry {
                index,
                compressed_size,
                decompressed_size,
            } => write!(
                f,
                "entry {index} is impossible ({compressed_size} bytes compressed, \
                 {decompressed_size} decompressed)"
            ),
            TableProblem::SizeMismatch {
                frames_bytes,
                data_bytes,
            } => write!(
                f,
                "its frames total {frames_bytes} bytes but {data_bytes} bytes precede it"
            ),
        }
    }
}

/// Where and why the walk over the frames of a dump without a usable seek
/// table stopped before the end of the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Damage {
    /// Offset in the file of the frame that could not be taken.
    pub offset: u64,
    pub kind: DamageKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DamageKind {
    /// The file ends inside a frame: the dump was cut short.
    Truncated,
    /// The file ends inside a skippable frame: a dump cut inside its seek
    /// table, after all its data.
    SkippableTruncated,
    /// The frame does not record its content size, so its place in the
    /// vmcore cannot be known without decompressing it.
    NoContentSize,
    /// Neither a zstd frame nor a skippable frame starts here.
    NotAFrame { magic: u32 },
    /// The frame header has reserved bits set or needs a dictionary.
    BadFrameHeader,
    /// A block header is invalid (reserved type, or larger than zstd allows).
    BadBlock { offset: u64 },
    /// The content size cannot be what the blocks hold.
    ImpossibleContentSize { content_size: u64 },
    /// More frames than the format allows.
    TooManyFrames,
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let offset = self.offset;
        match self.kind {
            DamageKind::Truncated => write!(f, "the file ends inside the frame at {offset:#x}"),
            DamageKind::SkippableTruncated => write!(
                f,
                "the file ends inside the skippable frame (a seek table?) at {offset:#x}"
            ),
            DamageKind::NoContentSize => write!(
                f,
                "the frame at {offset:#x} does not record its content size"
            ),
            DamageKind::NotAFrame { magic } => {
                write!(f, "no frame starts at {offset:#x} (magic {magic:#010x})")
            }
            DamageKind::BadFrameHeader => {
                write!(
                    f,
                    "the frame header at {offset:#x} is invalid or needs a dictionary"
                )
            }
            DamageKind::BadBlock { offset: block } => write!(
                f,
                "the frame at {offset:#x} has an invalid block header at {block:#x}"
            ),
            DamageKind::ImpossibleContentSize { content_size } => write!(
                f,
                "the frame at {offset:#x} cannot hold the {content_size} bytes its header claims"
            ),
            DamageKind::TooManyFrames => {
                write!(f, "more than {MAX_FRAMES} frames before {offset:#x}")
            }
        }
    }
}

/// Why a dump could not be opened or read.
#[derive(Debug, Error)]
pub enum SeekableError {
    #[error("cannot read the {what} at offset {offset:#x}")]
    Read {
        what: &'static str,
        offset: u64,
        #[source]
        source: io::Error,
    },
    #[error("frame {frame} at offset {offset:#x}: {problem}")]
    FrameHeader {
        frame: usize,
        offset: u64,
        problem: FrameHeaderProblem,
    },
    #[error("frame {frame} at offset {offset:#x} does not decompress: {message}")]
    Decompress {
        frame: usize,
        offset: u64,
        message: &'static str,
    },
    #[error("frame {frame} at offset {offset:#x} is cut short")]
    FrameTruncated { frame: usize, offset: u64 },
    #[error("frame {frame} at offset {offset:#x} ends {trailing} bytes before its recorded size")]
    TrailingData {
        frame: usize,
        offset: u64,
        trailing: u64,
    },
    #[error(
        "frame {frame} at offset {offset:#x} is followed by a bad exclusion record: {problem}"
    )]
    BadExclusionRecord {
        frame: usize,
        offset: u64,
        problem: RecordProblem,
    },
    #[error("frame {frame} at offset {offset:#x} decompresses to {actual} bytes, not {expected}")]
    SizeMismatch {
        frame: usize,
        offset: u64,
        expected: u64,
        actual: u64,
    },
    #[error(
        "frame {frame} at offset {offset:#x}: checksum {actual:#010x} instead of {expected:#010x}"
    )]
    ChecksumMismatch {
        frame: usize,
        offset: u64,
        expected: u32,
        actual: u32,
    },
    #[error("cannot read {len} bytes at {offset:#x}: the intact part of the dump is {size} bytes")]
    OutOfRange { offset: u64, len: usize, size: u64 },
    #[error("a field of the {what} lies outside the bytes read")]
    FieldRead {
        what: &'static str,
        #[source]
        source: OutOfBounds,
    },
}

impl SeekableError {
    /// The frame this error is about, if it is about one.
    pub fn frame(&self) -> Option<usize> {
        match *self {
            SeekableError::FrameHeader { frame, .. }
            | SeekableError::Decompress { frame, .. }
            | SeekableError::FrameTruncated { frame, .. }
            | SeekableError::TrailingData { frame, .. }
            | SeekableError::BadExclusionRecord { frame, .. }
            | SeekableError::SizeMismatch { frame, .. }
            | SeekableError::ChecksumMismatch { frame, .. } => Some(frame),
            SeekableError::Read { .. }
            | SeekableError::OutOfRange { .. }
            | SeekableError::FieldRead { .. } => None,
        }
    }

    /// A copy of a decoding error, to remember a corrupt frame; I/O errors
    /// may be transient and are not remembered.
    fn clone_decoding(&self) -> Option<SeekableError> {
        Some(match *self {
            SeekableError::FrameHeader {
                frame,
                offset,
                problem,
            } => SeekableError::FrameHeader {
                frame,
                offset,
                problem,
            },
            SeekableError::Decompress {
                frame,
                offset,
                message,
            } => SeekableError::Decompress {
                frame,
                offset,
                message,
            },
            SeekableError::FrameTruncated { frame, offset } => {
                SeekableError::FrameTruncated { frame, offset }
            }
            SeekableError::TrailingData {
                frame,
                offset,
                trailing,
            } => SeekableError::TrailingData {
                frame,
                offset,
                trailing,
            },
            SeekableError::BadExclusionRecord {
                frame,
                offset,
                ref problem,
            } => SeekableError::BadExclusionRecord {
                frame,
                offset,
                problem: problem.clone(),
            },
            SeekableError::SizeMismatch {
                frame,
                offset,
                expected,
                actual,
            } => SeekableError::SizeMismatch {
                frame,
                offset,
                expected,
                actual,
            },
            SeekableError::ChecksumMismatch {
                frame,
                offset,
                expected,
                actual,
            } => SeekableError::ChecksumMismatch {
                frame,
                offset,
                expected,
                actual,
            },
            SeekableError::Read { .. }
            | SeekableError::OutOfRange { .. }
            | SeekableError::FieldRead { .. } => return None,
        })
    }
}

/// The outcome of decoding every frame of a dump in order.
#[derive(Debug)]
pub struct VerifyReport {
    /// Frames the dump has (the intact part's, without a seek table).
    pub frames: usize,
    /// Leading frames that decoded, with the right size and checksums.
    pub good_frames: usize,
    /// The decompressed bytes of those frames: the vmcore prefix that can
    /// be trusted.
    pub good_bytes: u64,
    /// The first frame that failed, and why; decoding stops there.
    pub first_bad: Option<SeekableError>,
}

impl VerifyReport {
    /// Every frame decoded and matched its checksums.
    pub fn is_ok(&self) -> bool {
        self.first_bad.is_none() && self.good_frames == self.frames
    }
}

/// A dump opened for reading.
pub struct Dump<R: ReadAt> {
    reader: R,
    frames: Vec<FrameInfo>,
    table: TableStatus,
    damage: Option<Damage>,
    decompressed_size: u64,
    cache: Mutex<Cache>,
}

impl<R: ReadAt> Dump<R> {
    /// Opens a dump: from its seek table when the table is present and
    /// consistent with the file, otherwise by walking the file's frames up
    /// to the first one that is cut short or damaged.
    pub fn open(reader: R) -> Result<Self, SeekableError> {
        let (frames, table, damage) = match read_table(&reader)? {
            Ok(frames) => (frames, TableStatus::Consistent, None),
            Err(table) => {
                let (frames, damage) = scan_frames(&reader)?;
                (frames, table, damage)
            }
        };
        let decompressed_size = frames.last().map_or(0, FrameInfo::decompressed_end);
        Ok(Dump {
            reader,
            frames,
            table,
            damage,
            decompressed_size,
            cache: Mutex::new(Cache {
                pieces: Vec::new(),
                bytes: 0,
                clock: 0,
                decoder: None,
                failed: Vec::new(),
            }),
        })
    }

    /// The seek table is present and consistent with the file: the dump
    /// was finished by its writer.
    pub fn is_complete(&self) -> bool {
        self.table == TableStatus::Consistent
    }

    pub fn table_status(&self) -> &TableStatus {
        &self.table
    }

    /// Where the walk over frames stopped short of the end of the file, for
    /// a dump without a usable seek table.
    pub fn damage(&self) -> Option<&Damage> {
        self.damage.as_ref()
    }

    pub fn frames(&self) -> &[FrameInfo] {
        &self.frames
    }

    /// The runs a dump level left out of frame `frame` (zeros in the dump),
    /// from the exclusion record that follows the frame; none when it has
    /// no record. The record starts where the zstd frame ends: inside the
    /// seek table's entry, or as the next skippable frame of a dump read
    /// without its table.
    pub fn exclusions(&self, frame: usize) -> Result<Vec<ExcludedRun>, SeekableError> {
        let Some(info) = self.frames.get(frame).copied() else {
            return Ok(Vec::new());
        };
        let offset = info.compressed_offset;
        let mut peeker = Peeker::new(&self.reader);
        let end = match scan_one(&mut peeker, offset, info.decompressed_offset)? {
            ScanStep::Frame(found) => found.compressed_end(),
            _ => return Err(SeekableError::FrameTruncated { frame, offset }),
        };
        let mut header = [0u8; 8];
        if end + 8 > self.reader.size() || self.reader.read_exact_at(&mut header, end).is_err() {
            return Ok(Vec::new());
        }
        let [m0, m1, m2, m3, s0, s1, s2, s3] = header;
        if u32::from_le_bytes([m0, m1, m2, m3]) != EXCLUSION_MAGIC {
            return Ok(Vec::new());
        }
        let len = 8 + u64::from(u32::from_le_bytes([s0, s1, s2, s3]));
        if end + len > self.reader.size() || len > MAX_RECORD_BYTES {
            return Err(SeekableError::BadExclusionRecord {
                frame,
                offset,
                problem: RecordProblem::Size {
                    said: len - 8,
                    actual: self.reader.size().saturating_sub(end + 8),
                },
            });
        }
        read_record(
            &self.reader,
            frame,
            offset,
            end,
            len,
            info.decompressed_size,
        )
    }

    /// The size of the vmcore the intact frames decompress to.
    pub fn decompressed_size(&self) -> u64 {
        self.decompressed_size
    }

    /// The size of the dump file.
    pub fn compressed_size(&self) -> u64 {
        self.reader.size()
    }

    pub fn reader(&self) -> &R {
        &self.reader
    }

    pub fn into_reader(self) -> R {
        self.reader
    }

    /// The number of frames that hold only zero bytes, told without
    /// decompressing anything: their checksum is that of as many zeroes
    /// (a false positive has a chance of 2^-32 per frame). Frames larger
    /// than [`WHOLE_FRAME_BYTES`] are not considered, nor frames without a
    /// checksum.
    pub fn zero_frame_count(&self) -> usize {
        let mut checksums: HashMap<u64, u32> = HashMap::new();
        self.frames
            .iter()
            .filter(|frame| {
                let Some(checksum) = frame.checksum else {
                    return false;
                };
                if frame.decompressed_size > WHOLE_FRAME_BYTES {
                    return false;
                }
                let zero = *checksums
                    .entry(frame.decompressed_size)
                    .or_insert_with(|| zero_checksum(frame.decompressed_size));
                checksum == zero
            })
            .count()
    }

    /// Decodes every frame in order, handing the content to `sink` with
    /// its offset in the vmcore and calling `progress(done, total)`; stops
    /// at the first frame that fails to decode or match its checksums. An
    /// error from the sink ends the walk and is returned as is.
    pub fn decompress_to<E>(
        &self,
        mut sink: impl FnMut(u64, &[u8]) -> Result<(), E>,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<VerifyReport, E> {
        let mut report = VerifyReport {
            frames: self.frames.len(),
            good_frames: 0,
            good_bytes: 0,
            first_bad: None,
        };
        let total = self.decompressed_size;
        let mut decoder = FrameDecoder::new();
        let mut buffer = vec![0u8; PIECE_BYTES];
        for (index, info) in self.frames.iter().enumerate() {
            if let Err(error) = decoder.start(&self.reader, index, *info) {
                report.first_bad = Some(error);
                return Ok(report);
            }
            // A frame of up to a piece reaches the sink only once it has
            // been checked whole (the fill that returns its last byte also
            // checks its end); a larger frame is passed on as it decodes,
            // and only the frames counted in the report are trustworthy.
            let mut offset = info.decompressed_offset;
            loop {
                let want = (info.decompressed_end() - offset).min(PIECE_BYTES as u64) as usize;
                match decoder.fill(&self.reader, &mut buffer[..want]) {
                    Ok(n) => {
                        sink(offset, &buffer[..n])?;
                        offset += n as u64;
                        progress(offset, total);
                    }
                    Err(error) => {
                        report.first_bad = Some(error);
                        return Ok(report);
                    }
                }
                if decoder.finished {
                    break;
                }
            }
            report.good_frames += 1;
            report.good_bytes = info.decompressed_end();
        }
        Ok(report)
    }

    /// Decodes every frame and checks zstd's checksum and the seek table's;
    /// see [`Dump::decompress_to`].
    pub fn verify(&self, progress: impl FnMut(u64, u64)) -> VerifyReport {
        match self.decompress_to(|_, _| Ok::<(), std::convert::Infallible>(()), progress) {
            Ok(report) => report,
            Err(never) => match never {},
        }
    }

    /// Reads `buf.len()` bytes of the vmcore at `offset`, decompressing the
    /// frames that hold them unless they are in the cache.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), SeekableError> {
        let out_of_range = || SeekableError::OutOfRange {
            offset,
            len: buf.len(),
            size: self.decompressed_size,
        };
        let end = offset
            .checked_add(buf.len() as u64)
            .ok_or_else(out_of_range)?;
        if end > self.decompressed_size {
            return Err(out_of_range());
        }
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let mut done = 0usize;
        while done < buf.len() {
            let at = offset + done as u64;
            // The first frame that ends after `at`: frames are contiguous
            // and `at` is below the total, so it exists and holds `at`.
            let frame = self.frames.partition_point(|f| f.decompressed_end() <= at);
            let info = self.frames[frame];
            let in_frame = at - info.decompressed_offset;
            let start = in_frame - in_frame % PIECE_BYTES as u64;
            let piece = match cache.find(frame, start) {
                Some(piece) => piece,
                None => self.load(&mut cache, frame, start)?,
            };
            let data = &cache.pieces[piece].data;
            let from = (in_frame - start) as usize;
            let n = (data.len() - from).min(buf.len() - done);
            buf[done..done + n].copy_from_slice(&data[from..from + n]);
            done += n;
        }
        Ok(())
    }

    /// Decodes the piece of frame `frame` starting at `start` into the
    /// cache: with the whole frame if it is small enough to be checked
    /// before use, else alone.
    fn load(&self, cache: &mut Cache, frame: usize, start: u64) -> Result<usize, SeekableError> {
        if let Some(error) = cache.failure(frame) {
            return Err(error);
        }
        let result = if self.frames[frame].decompressed_size <= WHOLE_FRAME_BYTES {
            self.load_whole(cache, frame, start)
        } else {
            self.load_piece(cache, frame, start)
        };
        if let Err(error) = &result {
            cache.remember_failure(error);
        }
        result
    }

    fn load_whole(
        &self,
        cache: &mut Cache,
        frame: usize,
        wanted: u64,
    ) -> Result<usize, SeekableError> {
        let info = self.frames[frame];
        let decoder = cache.decoder.get_or_insert_with(FrameDecoder::new);
        decoder.start(&self.reader, frame, info)?;
        let mut pieces = Vec::new();
        let mut start = 0u64;
        while !decoder.finished {
            let len = (info.decompressed_size - start).min(PIECE_BYTES as u64) as usize;
            let mut data = vec![0u8; len];
            let n = decoder.fill(&self.reader, &mut data)?;
            data.truncate(n);
            if n > 0 {
                pieces.push((start, data));
            }
            start += n as u64;
        }
        // The wanted piece goes in last, so that it is the newest and the
        // others cannot evict it.
        let position = pieces.iter().position(|(start, _)| *start == wanted);
        let Some(position) = position else {
            return Err(SeekableError::SizeMismatch {
                frame,
                offset: info.compressed_offset,
                expected: info.decompressed_size,
                actual: start,
            });
        };
        let (wanted_start, wanted_data) = pieces.swap_remove(position);
        for (start, data) in pieces {
            cache.insert(frame, start, data);
        }
        Ok(cache.insert(frame, wanted_start, wanted_data))
    }

    fn load_piece(
        &self,
        cache: &mut Cache,
        frame: usize,
        start: u64,
    ) -> Result<usize, SeekableError> {
        let info = self.frames[frame];
        let decoder = cache.decoder.get_or_insert_with(FrameDecoder::new);
        if decoder.frame != frame || decoder.finished || decoder.produced > start {
            decoder.start(&self.reader, frame, info)?;
        }
        let mut skip = vec![0u8; PIECE_BYTES];
        while decoder.produced < start {
            let len = (start - decoder.produced).min(PIECE_BYTES as u64) as usize;
            if decoder.fill(&self.reader, &mut skip[..len])? == 0 {
                break;
            }
        }
        let len = (info.decompressed_size - start).min(PIECE_BYTES as u64) as usize;
        skip.truncate(len);
        let mut data = skip;
        let n = decoder.fill(&self.reader, &mut data)?;
        if decoder.produced != start + len as u64 || n != len {
            return Err(SeekableError::SizeMismatch {
                frame,
                offset: info.compressed_offset,
                expected: info.decompressed_size,
                actual: decoder.produced,
            });
        }
        Ok(cache.insert(frame, start, data))
    }
}

impl<R: ReadAt> ReadAt for Dump<R> {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.read_at(offset, buf).map_err(|error| {
            let kind = match error {
                SeekableError::OutOfRange { .. } => io::ErrorKind::UnexpectedEof,
                SeekableError::Read { ref source, .. } => source.kind(),
                _ => io::ErrorKind::InvalidData,
            };
            io::Error::new(kind, error)
        })
    }

    fn size(&self) -> u64 {
        self.decompressed_size
    }
}

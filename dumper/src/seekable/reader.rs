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
//! [`salvage_core`] turns the intact prefix of a vmcore into a valid ELF
//! core by rewriting its program headers, so that what was saved before a
//! capture was cut short can still be opened by crash or makedumpfile.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::sync::Mutex;

use crate::xxh64::Xxh64;
use thiserror::Error;
use zstd::zstd_safe::{self, DCtx, InBuffer, OutBuffer, ResetDirective};

use super::{
    zero_checksum, CHECKSUM_FLAG, ENTRY_BYTES, FOOTER_BYTES, MAX_FRAMES, MAX_FRAME_BYTES,
    SEEKABLE_MAGIC, SKIPPABLE_MAGIC, ZSTD_MAGIC,
};
use crate::bytes::{Bytes, OutOfBounds};
use crate::elf::{
    parse_elf_header, parse_program_header, read_core_headers, ElfError, ElfHeader, ProgramHeader,
    ReadAt, ELF_HEADER_SIZE, PHDR_SIZE, PN_XNUM, PT_LOAD,
};

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

/// What is wrong with a frame header met while decoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum FrameHeaderProblem {
    #[error("magic {magic:#010x} is not a zstd frame's")]
    BadMagic { magic: u32 },
    #[error("the header is cut short")]
    Truncated,
    #[error("reserved bit set in the frame header descriptor")]
    ReservedBit,
    #[error("the frame needs dictionary {dictionary_id}")]
    Dictionary { dictionary_id: u32 },
    #[error("the frame does not record its content size")]
    NoContentSize,
    #[error("content size {in_header} differs from the seek table's {in_table}")]
    ContentSizeMismatch { in_header: u64, in_table: u64 },
}

/// The fields of a zstd frame header (RFC 8878, 3.1.1.1) that locating and
/// checking frames needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FrameHeader {
    /// Bytes from the magic number to the first block header.
    header_len: usize,
    content_size: Option<u64>,
    has_checksum: bool,
}

/// Parses a frame header from the bytes at the start of a frame (the
/// magic included); `bytes` may run past the header.
fn parse_frame_header(bytes: &[u8]) -> Result<FrameHeader, FrameHeaderProblem> {
    let bytes = Bytes::new(bytes);
    let truncated = |_: OutOfBounds| FrameHeaderProblem::Truncated;
    // The magic and the descriptor, or nothing: four bytes of a wrong magic
    // are a header cut short as much as four bytes of the right one.
    let start = bytes.sub(0, 5).map_err(truncated)?;
    let magic = start.u32_le(0).map_err(truncated)?;
    if magic != ZSTD_MAGIC {
        return Err(FrameHeaderProblem::BadMagic { magic });
    }
    let descriptor = start.u8(4).map_err(truncated)?;
    let fcs_flag = descriptor >> 6;
    let single_segment = descriptor & 0x20 != 0;
    if descriptor & 0x08 != 0 {
        return Err(FrameHeaderProblem::ReservedBit);
    }
    let has_checksum = descriptor & 0x04 != 0;
    let dictionary_id_len = [0usize, 1, 2, 4][usize::from(descriptor & 0x03)];
    let window_len = usize::from(!single_segment);
    let fcs_len = match (fcs_flag, single_segment) {
        (0, false) => 0,
        (0, true) => 1,
        (1, _) => 2,
        (2, _) => 4,
        _ => 8,
    };
    let header_len = 5 + window_len + dictionary_id_len + fcs_len;
    // The whole header first, so that a cut one is told apart from the
    // problems of its fields.
    let header = bytes.sub(0, header_len).map_err(truncated)?;
    let dictionary_at = 5 + window_len;
    let mut dictionary_id = 0u32;
    let dictionary_bytes = header
        .slice(dictionary_at, dictionary_id_len)
        .map_err(truncated)?;
    for (i, &byte) in dictionary_bytes.iter().enumerate() {
        dictionary_id |= u32::from(byte) << (8 * i);
    }
    if dictionary_id != 0 {
        return Err(FrameHeaderProblem::Dictionary { dictionary_id });
    }
    let fcs_at = dictionary_at + dictionary_id_len;
    let mut content_size = 0u64;
    let fcs_bytes = header.slice(fcs_at, fcs_len).map_err(truncated)?;
    for (i, &byte) in fcs_bytes.iter().enumerate() {
        content_size |= u64::from(byte) << (8 * i);
    }
    let content_size = match fcs_len {
        0 => None,
        // The two-byte form is offset by 256 (RFC 8878, 3.1.1.1.4).
        2 => Some(content_size + 256),
        _ => Some(content_size),
    };
    Ok(FrameHeader {
        header_len,
        content_size,
        has_checksum,
    })
}

/// A block header (RFC 8878, 3.1.1.2): whether it is the last block, how
/// many bytes of the frame the block takes after its header, and the least
/// and the most it decompresses to; `None` for a reserved block type or an
/// oversized block.
fn parse_block_header(bytes: [u8; 3]) -> Option<(bool, u64, u64, u64)> {
    let [b0, b1, b2] = bytes;
    let header = u32::from(b0) | u32::from(b1) << 8 | u32::from(b2) << 16;
    let last = header & 1 != 0;
    let size = u64::from(header >> 3);
    if size > BLOCK_MAX {
        return None;
    }
    match (header >> 1) & 3 {
        // Raw: the bytes themselves.
        0 => Some((last, size, size, size)),
        // RLE: one byte, repeated `size` times.
        1 => Some((last, 1, size, size)),
        // Compressed: `size` bytes that decode to at most a full block.
        2 => Some((last, size, 0, BLOCK_MAX)),
        _ => None,
    }
}

/// Reads a file front to back through a small buffer, so that walking
/// thousands of 3-byte block headers is not thousands of system calls.
struct Peeker<'r, R: ?Sized> {
    reader: &'r R,
    size: u64,
    buffer: Vec<u8>,
    buffer_start: u64,
}

impl<'r, R: ReadAt + ?Sized> Peeker<'r, R> {
    fn new(reader: &'r R) -> Self {
        Peeker {
            reader,
            size: reader.size(),
            buffer: Vec::new(),
            buffer_start: 0,
        }
    }

    /// `len` bytes at `offset` (at most [`SCAN_READ_AHEAD`]), or `None` if
    /// the file ends before.
    fn get(&mut self, offset: u64, len: usize) -> Result<Option<Bytes<'_>>, SeekableError> {
        let Some(end) = offset
            .checked_add(len as u64)
            .filter(|&end| end <= self.size)
        else {
            return Ok(None);
        };
        let buffer_end = self.buffer_start + self.buffer.len() as u64;
        if offset < self.buffer_start || end > buffer_end {
            let n = (self.size - offset).min(SCAN_READ_AHEAD.max(len) as u64) as usize;
            self.buffer.resize(n, 0);
            self.reader
                .read_exact_at(&mut self.buffer, offset)
                .map_err(|source| SeekableError::Read {
                    what: "frame headers",
                    offset,
                    source,
                })?;
            self.buffer_start = offset;
        }
        let at = (offset - self.buffer_start) as usize;
        Bytes::new(&self.buffer)
            .sub(at, len)
            .map(Some)
            .map_err(|source| SeekableError::FieldRead {
                what: "frame headers",
                source,
            })
    }
}

/// Where the walk over frames ended.
enum ScanStep {
    Frame(FrameInfo),
    Skippable { end: u64 },
    End,
    Damage(DamageKind),
}

/// A field that the peeker handed over too short: the peeker returns
/// exactly the bytes asked for, so this is a bug, reported as an error.
fn frame_field(what: &'static str) -> impl Fn(OutOfBounds) -> SeekableError {
    move |source| SeekableError::FieldRead { what, source }
}

/// Looks at what starts at `offset` of the file.
fn scan_one<R: ReadAt + ?Sized>(
    peeker: &mut Peeker<'_, R>,
    offset: u64,
    decompressed_offset: u64,
) -> Result<ScanStep, SeekableError> {
    if offset == peeker.size {
        return Ok(ScanStep::End);
    }
    let Some(magic) = peeker.get(offset, 4)? else {
        return Ok(ScanStep::Damage(DamageKind::Truncated));
    };
    let magic = magic.u32_le(0).map_err(frame_field("frame magic"))?;
    if magic & SKIPPABLE_MASK == SKIPPABLE_MAGIC & SKIPPABLE_MASK {
        let Some(header) = peeker.get(offset, 8)? else {
            return Ok(ScanStep::Damage(DamageKind::SkippableTruncated));
        };
        let size = header
            .u32_le(4)
            .map_err(frame_field("skippable frame header"))?;
        let end = offset + 8 + u64::from(size);
        if end > peeker.size {
            return Ok(ScanStep::Damage(DamageKind::SkippableTruncated));
        }
        return Ok(ScanStep::Skippable { end });
    }
    if magic != ZSTD_MAGIC {
        return Ok(ScanStep::Damage(DamageKind::NotAFrame { magic }));
    }
    let available = (peeker.size - offset).min(FRAME_HEADER_MAX as u64) as usize;
    let Some(bytes) = peeker.get(offset, available)? else {
        return Ok(ScanStep::Damage(DamageKind::Truncated));
    };
    let header = match parse_frame_header(bytes.as_slice()) {
        Ok(header) => header,
        Err(FrameHeaderProblem::Truncated) => return Ok(ScanStep::Damage(DamageKind::Truncated)),
        Err(_) => return Ok(ScanStep::Damage(DamageKind::BadFrameHeader)),
    };
    let Some(content_size) = header.content_size else {
        return Ok(ScanStep::Damage(DamageKind::NoContentSize));
    };
    // Walk the blocks, bounding what they can decompress to: a header
    // claiming more than its blocks can hold is corrupt, and would otherwise
    // make the dump look larger than it is.
    let mut at = offset + header.header_len as u64;
    let mut least = 0u64;
    let mut most = 0u64;
    loop {
        let Some(bytes) = peeker.get(at, 3)? else {
            return Ok(ScanStep::Damage(DamageKind::Truncated));
        };
        let block = bytes.array::<3>(0).map_err(frame_field("block header"))?;
        let Some((last, body, min, max)) = parse_block_header(block) else {
            return Ok(ScanStep::Damage(DamageKind::BadBlock { offset: at }));
        };
        least += min;
        most += max;
        at += 3 + body;
        if at > peeker.size {
            return Ok(ScanStep::Damage(DamageKind::Truncated));
        }
        if last {
            break;
        }
    }
    let checksum = if header.has_checksum {
        let Some(bytes) = peeker.get(at, 4)? else {
            return Ok(ScanStep::Damage(DamageKind::Truncated));
        };
        let checksum = bytes.u32_le(0).map_err(frame_field("frame checksum"))?;
        at += 4;
        Some(checksum)
    } else {
        None
    };
    if content_size > most || content_size < least {
        return Ok(ScanStep::Damage(DamageKind::ImpossibleContentSize {
            content_size,
        }));
    }
    if decompressed_offset.checked_add(content_size).is_none() {
        return Ok(ScanStep::Damage(DamageKind::ImpossibleContentSize {
            content_size,
        }));
    }
    Ok(ScanStep::Frame(FrameInfo {
        compressed_offset: offset,
        compressed_size: at - offset,
        decompressed_offset,
        decompressed_size: content_size,
        checksum,
    }))
}

/// Walks the file from the start, frame after frame, up to its end or the
/// first damage.
fn scan_frames<R: ReadAt + ?Sized>(
    reader: &R,
) -> Result<(Vec<FrameInfo>, Option<Damage>), SeekableError> {
    let mut peeker = Peeker::new(reader);
    let mut frames = Vec::new();
    let mut offset = 0u64;
    let mut decompressed = 0u64;
    loop {
        if frames.len() as u64 >= MAX_FRAMES {
            let damage = Damage {
                offset,
                kind: DamageKind::TooManyFrames,
            };
            return Ok((frames, Some(damage)));
        }
        match scan_one(&mut peeker, offset, decompressed)? {
            ScanStep::End => return Ok((frames, None)),
            ScanStep::Damage(kind) => return Ok((frames, Some(Damage { offset, kind }))),
            ScanStep::Skippable { end } => offset = end,
            ScanStep::Frame(frame) => {
                offset = frame.compressed_end();
                decompressed = frame.decompressed_end();
                frames.push(frame);
            }
        }
    }
}

/// Reads the seek table at the end of the file: `Ok(Err(status))` when it
/// is missing or unusable.
fn read_table<R: ReadAt + ?Sized>(
    reader: &R,
) -> Result<Result<Vec<FrameInfo>, TableStatus>, SeekableError> {
    let file_size = reader.size();
    if file_size < (8 + FOOTER_BYTES) as u64 {
        return Ok(Err(TableStatus::Missing));
    }
    let footer_at = file_size - FOOTER_BYTES as u64;
    let mut footer = [0u8; FOOTER_BYTES];
    reader
        .read_exact_at(&mut footer, footer_at)
        .map_err(|source| SeekableError::Read {
            what: "seek table footer",
            offset: footer_at,
            source,
        })?;
    let footer = Bytes::new(&footer);
    let footer_field = frame_field("seek table footer");
    if footer.u32_le(5).map_err(&footer_field)? != SEEKABLE_MAGIC {
        return Ok(Err(TableStatus::Missing));
    }
    let inconsistent = |problem| Ok(Err(TableStatus::Inconsistent(problem)));
    let count = u64::from(footer.u32_le(0).map_err(&footer_field)?);
    let descriptor = footer.u8(4).map_err(&footer_field)?;
    // Bits 6-2 are reserved and must be zero; bits 1-0 are unused.
    if descriptor & 0x7c != 0 {
        return inconsistent(TableProblem::ReservedBits { descriptor });
    }
    if count > MAX_FRAMES {
        return inconsistent(TableProblem::TooManyFrames { count });
    }
    let entry_bytes = if descriptor & CHECKSUM_FLAG != 0 {
        ENTRY_BYTES
    } else {
        ENTRY_BYTES - 4
    };
    // The count is capped, so this cannot overflow.
    let table_bytes = 8 + count * entry_bytes as u64 + FOOTER_BYTES as u64;
    if table_bytes > file_size {
        return inconsistent(TableProblem::LargerThanFile {
            table_bytes,
            file_size,
        });
    }
    let table_at = file_size - table_bytes;
    let mut header = [0u8; 8];
    reader
        .read_exact_at(&mut header, table_at)
        .map_err(|source| SeekableError::Read {
            what: "seek table header",
            offset: table_at,
            source,
        })?;
    let header = Bytes::new(&header);
    let header_field = frame_field("seek table header");
    let magic = header.u32_le(0).map_err(&header_field)?;
    let size = header.u32_le(4).map_err(&header_field)?;
    if magic != SKIPPABLE_MAGIC || u64::from(size) != table_bytes - 8 {
        return inconsistent(TableProblem::BadFrameHeader { magic, size });
    }
    // The table lies inside the file, so the buffer is bounded by its size.
    let mut entries = vec![0u8; (count as usize) * entry_bytes];
    reader
        .read_exact_at(&mut entries, table_at + 8)
        .map_err(|source| SeekableError::Read {
            what: "seek table",
            offset: table_at + 8,
            source,
        })?;
    let mut frames = Vec::with_capacity(count as usize);
    let mut compressed = 0u64;
    let mut decompressed = 0u64;
    let entry_field = frame_field("seek table entry");
    for (index, entry) in entries.chunks_exact(entry_bytes).enumerate() {
        let entry = Bytes::new(entry);
        let compressed_size = entry.u32_le(0).map_err(&entry_field)?;
        let decompressed_size = entry.u32_le(4).map_err(&entry_field)?;
        let checksum = match entry_bytes == ENTRY_BYTES {
            true => Some(entry.u32_le(8).map_err(&entry_field)?),
            false => None,
        };
        // Every frame has a header and a block; a frame holds 1 GiB at
        // most; and zstd never makes a frame larger than its bound (it
        // stores incompressible blocks raw). The last check also bounds
        // what decoding the frame reads into memory.
        let bound = zstd_safe::compress_bound(decompressed_size as usize) as u64 + 32;
        if u64::from(compressed_size) < FRAME_MIN
            || u64::from(decompressed_size) > MAX_FRAME_BYTES
            || u64::from(compressed_size) > bound
        {
            return inconsistent(TableProblem::BadEntry {
                index,
                compressed_size,
                decompressed_size,
            });
        }
        frames.push(FrameInfo {
            compressed_offset: compressed,
            compressed_size: u64::from(compressed_size),
            decompressed_offset: decompressed,
            decompressed_size: u64::from(decompressed_size),
            checksum,
        });
        compressed += u64::from(compressed_size);
        decompressed += u64::from(decompressed_size);
    }
    if compressed != table_at {
        return inconsistent(TableProblem::SizeMismatch {
            frames_bytes: compressed,
            data_bytes: table_at,
        });
    }
    Ok(Ok(frames))
}

/// Decodes one frame at a time, sequentially, in steps of at most the
/// caller's buffer, checking what the frame must be: its header, its size
/// and its checksum.
struct FrameDecoder {
    context: DCtx<'static>,
    frame: usize,
    info: FrameInfo,
    input: Vec<u8>,
    input_pos: usize,
    /// File offset of the next compressed byte to read.
    next_in: u64,
    /// Decompressed bytes of the frame produced so far.
    produced: u64,
    hasher: Xxh64,
    finished: bool,
}

impl FrameDecoder {
    fn new() -> Self {
        FrameDecoder {
            context: DCtx::create(),
            frame: 0,
            info: FrameInfo {
                compressed_offset: 0,
                compressed_size: 0,
                decompressed_offset: 0,
                decompressed_size: 0,
                checksum: None,
            },
            input: Vec::new(),
            input_pos: 0,
            next_in: 0,
            produced: 0,
            hasher: Xxh64::new(0),
            finished: true,
        }
    }

    /// Starts decoding frame `frame`, after checking its header.
    fn start<R: ReadAt + ?Sized>(
        &mut self,
        reader: &R,
        frame: usize,
        info: FrameInfo,
    ) -> Result<(), SeekableError> {
        let header_problem = |problem| SeekableError::FrameHeader {
            frame,
            offset: info.compressed_offset,
            problem,
        };
        let len = info.compressed_size.min(FRAME_HEADER_MAX as u64) as usize;
        let mut header = vec![0u8; len];
        reader
            .read_exact_at(&mut header, info.compressed_offset)
            .map_err(|source| SeekableError::Read {
                what: "frame header",
                offset: info.compressed_offset,
                source,
            })?;
        let parsed = parse_frame_header(&header).map_err(header_problem)?;
        match parsed.content_size {
            None => return Err(header_problem(FrameHeaderProblem::NoContentSize)),
            Some(in_header) if in_header != info.decompressed_size => {
                return Err(header_problem(FrameHeaderProblem::ContentSizeMismatch {
                    in_header,
                    in_table: info.decompressed_size,
                }))
            }
            Some(_) => {}
        }
        // A failed frame leaves the context in error; a reset clears it and
        // drops whatever frame was in progress.
        let _ = self.context.reset(ResetDirective::SessionOnly);
        self.frame = frame;
        self.info = info;
        self.input.clear();
        self.input_pos = 0;
        self.next_in = info.compressed_offset;
        self.produced = 0;
        self.hasher = Xxh64::new(0);
        self.finished = false;
        Ok(())
    }

    fn compressed_end(&self) -> u64 {
        self.info.compressed_end()
    }

    /// Fills `out` with the next bytes of the frame, or fewer if the frame
    /// ends first; once the frame's last byte is out, also checks its end
    /// (checksum included), whatever room is left in `out`.
    fn fill<R: ReadAt + ?Sized>(
        &mut self,
        reader: &R,
        out: &mut [u8],
    ) -> Result<usize, SeekableError> {
        let frame = self.frame;
        let offset = self.info.compressed_offset;
        let expected = self.info.decompressed_size;
        let mut filled = 0usize;
        while !self.finished && (filled < out.len() || self.produced == expected) {
            if self.input_pos == self.input.len() && self.next_in < self.compressed_end() {
                let n = (self.compressed_end() - self.next_in).min(INPUT_CHUNK as u64) as usize;
                self.input.resize(n, 0);
                reader
                    .read_exact_at(&mut self.input, self.next_in)
                    .map_err(|source| SeekableError::Read {
                        what: "compressed frame",
                        offset: self.next_in,
                        source,
                    })?;
                self.input_pos = 0;
                self.next_in += n as u64;
            }
            let mut input = InBuffer {
                src: &self.input,
                pos: self.input_pos,
            };
            let mut output = OutBuffer::around(&mut out[filled..]);
            let result = self.context.decompress_stream(&mut output, &mut input);
            let produced = output.pos();
            let consumed = input.pos() - self.input_pos;
            self.input_pos = input.pos();
            self.hasher.update(&out[filled..filled + produced]);
            filled += produced;
            self.produced += produced as u64;
            let hint = result.map_err(|code| SeekableError::Decompress {
                frame,
                offset,
                message: zstd_safe::get_error_name(code),
            })?;
            if self.produced > expected {
                return Err(SeekableError::SizeMismatch {
                    frame,
                    offset,
                    expected,
                    actual: self.produced,
                });
            }
            if hint == 0 {
                self.finished = true;
                self.check_end()?;
            } else if produced == 0 && consumed == 0 {
                // zstd buffers partial input and always moves when it has
                // input and room: stuck means the frame wants more bytes
                // than it has, or more room than its content size.
                return Err(
                    if self.produced == expected && self.input_pos < self.input.len() {
                        SeekableError::SizeMismatch {
                            frame,
                            offset,
                            expected,
                            actual: self.produced + 1,
                        }
                    } else {
                        SeekableError::FrameTruncated { frame, offset }
                    },
                );
            }
        }
        Ok(filled)
    }

    /// Checks a frame that zstd says is complete (zstd has checked its own
    /// checksum by then).
    fn check_end(&self) -> Result<(), SeekableError> {
        let frame = self.frame;
        let offset = self.info.compressed_offset;
        let trailing =
            (self.input.len() - self.input_pos) as u64 + (self.compressed_end() - self.next_in);
        if trailing > 0 {
            return Err(SeekableError::TrailingData {
                frame,
                offset,
                trailing,
            });
        }
        if self.produced != self.info.decompressed_size {
            return Err(SeekableError::SizeMismatch {
                frame,
                offset,
                expected: self.info.decompressed_size,
                actual: self.produced,
            });
        }
        let actual = self.hasher.digest() as u32;
        match self.info.checksum {
            Some(expected) if expected != actual => Err(SeekableError::ChecksumMismatch {
                frame,
                offset,
                expected,
                actual,
            }),
            _ => Ok(()),
        }
    }
}

/// Decoded pieces of frames, least recently used evicted first.
struct Cache {
    pieces: Vec<Piece>,
    bytes: usize,
    clock: u64,
    /// The decoder, kept positioned inside a large frame so that reading it
    /// forward does not start over; made on the first read.
    decoder: Option<FrameDecoder>,
    /// Frames that failed to decode, so that reads into them fail fast.
    failed: Vec<SeekableError>,
}

struct Piece {
    frame: usize,
    /// Offset of the piece inside its frame's content.
    start: u64,
    data: Vec<u8>,
    last_used: u64,
}

impl Cache {
    fn find(&mut self, frame: usize, start: u64) -> Option<usize> {
        let index = self
            .pieces
            .iter()
            .position(|p| p.frame == frame && p.start == start)?;
        self.clock += 1;
        self.pieces[index].last_used = self.clock;
        Some(index)
    }

    fn insert(&mut self, frame: usize, start: u64, data: Vec<u8>) -> usize {
        self.clock += 1;
        self.bytes += data.len();
        self.pieces.push(Piece {
            frame,
            start,
            data,
            last_used: self.clock,
        });
        while self.pieces.len() > 1
            && (self.bytes > CACHE_BYTES || self.pieces.len() > CACHE_ENTRIES)
        {
            // The piece just inserted is the newest, so it is never the one
            // evicted.
            let oldest = self
                .pieces
                .iter()
                .enumerate()
                .min_by_key(|(_, p)| p.last_used)
                .map_or(0, |(i, _)| i);
            let evicted = self.pieces.swap_remove(oldest);
            self.bytes -= evicted.data.len();
        }
        self.pieces
            .iter()
            .position(|p| p.frame == frame && p.start == start)
            .unwrap_or(0)
    }

    fn failure(&self, frame: usize) -> Option<SeekableError> {
        self.failed
            .iter()
            .find(|e| e.frame() == Some(frame))
            .and_then(SeekableError::clone_decoding)
    }

    fn remember_failure(&mut self, error: &SeekableError) {
        if self.failed.len() < 64 {
            if let Some(copy) = error.clone_decoding() {
                self.failed.push(copy);
            }
        }
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

/// What salvaging did to one PT_LOAD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentFate {
    /// All of its file data is in the intact prefix.
    Kept,
    /// Cut where the prefix ends: `p_filesz` and `p_memsz` are now
    /// `new_size`.
    Shrunk { new_size: u64 },
    /// None of its file data is in the prefix; its header is gone.
    Dropped,
}

/// One PT_LOAD of the original core and what salvaging did to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SalvagedSegment {
    /// Index in the original program header table.
    pub index: usize,
    pub paddr: u64,
    pub vaddr: u64,
    pub file_offset: u64,
    pub file_size: u64,
    pub mem_size: u64,
    pub fate: SegmentFate,
}

impl SalvagedSegment {
    /// The physical range no longer described, as (start, length).
    pub fn lost_range(&self) -> Option<(u64, u64)> {
        match self.fate {
            SegmentFate::Kept => None,
            SegmentFate::Shrunk { new_size } => {
                Some((self.paddr + new_size, self.mem_size - new_size))
            }
            SegmentFate::Dropped => Some((self.paddr, self.mem_size)),
        }
    }

    /// Bytes of the segment's file data that are missing.
    pub fn lost_file_bytes(&self) -> u64 {
        match self.fate {
            SegmentFate::Kept => 0,
            SegmentFate::Shrunk { new_size } => self.file_size - new_size,
            SegmentFate::Dropped => self.file_size,
        }
    }
}

/// Bytes to write over a core to make its intact prefix a valid core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Patch {
    pub offset: u64,
    pub bytes: Vec<u8>,
}

/// How to turn a vmcore prefix into a valid ELF core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Salvage {
    /// The length of the prefix the patched core keeps.
    pub intact_len: u64,
    /// Writes over the ELF header and the program header table, in place:
    /// the headers keep their size.
    pub patches: Vec<Patch>,
    pub segments: Vec<SalvagedSegment>,
}

impl Salvage {
    /// Whether nothing was lost: every PT_LOAD is whole.
    pub fn is_whole(&self) -> bool {
        self.segments.iter().all(|s| s.fate == SegmentFate::Kept)
    }
}

/// Why a vmcore prefix cannot be made into a valid core.
#[derive(Debug, Error)]
pub enum SalvageError {
    #[error("the headers of the saved part are not a usable ELF core")]
    Headers(#[source] ElfError),
    #[error("cannot read the {what} at offset {offset:#x}")]
    Read {
        what: &'static str,
        offset: u64,
        #[source]
        source: io::Error,
    },
}

/// Plans how to make the vmcore prefix `core` (everything that is left of
/// a vmcore cut short) a valid ELF core: PT_LOADs whose file data lies
/// beyond the prefix are removed, the one cut in the middle shrinks
/// (`p_filesz` and `p_memsz`, so that no reader takes the missing memory
/// for zeroes), and every other header (PT_NOTE included) stays as it is.
/// The program header table keeps its place and size: removed entries are
/// dropped from the count and their slots zeroed.
pub fn salvage_core<R: ReadAt + ?Sized>(core: &R) -> Result<Salvage, SalvageError> {
    let intact_len = core.size();
    let headers = read_core_headers(core).map_err(SalvageError::Headers)?;
    let read = |what, offset, buf: &mut [u8]| {
        core.read_exact_at(buf, offset)
            .map_err(|source| SalvageError::Read {
                what,
                offset,
                source,
            })
    };
    let mut ehdr = [0u8; ELF_HEADER_SIZE];
    read("ELF header", 0, &mut ehdr)?;
    // read_core_headers() checked that the table lies in the file and its
    // count is capped, so this allocation is bounded by both.
    let mut table = vec![0u8; headers.phdr_count as usize * PHDR_SIZE];
    read("program header table", headers.phdr_offset, &mut table)?;

    let mut kept = Vec::with_capacity(table.len());
    let mut kept_count = 0u64;
    let mut segments = Vec::new();
    for (index, bytes) in table.chunks_exact(PHDR_SIZE).enumerate() {
        let phdr = parse_program_header(bytes).map_err(SalvageError::Headers)?;
        if phdr.p_type != PT_LOAD {
            kept.extend_from_slice(&phdr.to_bytes());
            kept_count += 1;
            continue;
        }
        let ProgramHeader {
            file_offset,
            vaddr,
            paddr,
            file_size,
            mem_size,
            ..
        } = phdr;
        // read_core_headers() checked that offset + size does not overflow.
        let fate = if file_size == 0 || file_offset + file_size <= intact_len {
            SegmentFate::Kept
        } else if file_offset >= intact_len {
            SegmentFate::Dropped
        } else {
            SegmentFate::Shrunk {
                new_size: intact_len - file_offset,
            }
        };
        match fate {
            SegmentFate::Kept => {
                kept.extend_from_slice(&phdr.to_bytes());
                kept_count += 1;
            }
            SegmentFate::Shrunk { new_size } => {
                let shrunk = ProgramHeader {
                    file_size: new_size,
                    mem_size: new_size,
                    ..phdr
                };
                kept.extend_from_slice(&shrunk.to_bytes());
                kept_count += 1;
            }
            SegmentFate::Dropped => {}
        }
        segments.push(SalvagedSegment {
            index,
            paddr,
            vaddr,
            file_offset,
            file_size,
            mem_size,
            fate,
        });
    }
    kept.resize(table.len(), 0);

    let mut patches = Vec::new();
    let elf_header = parse_elf_header(&ehdr).map_err(SalvageError::Headers)?;
    if elf_header.e_phnum == PN_XNUM {
        // The real count lives in sh_info of section header 0, which
        // read_core_headers() has read, so it is inside the prefix.
        patches.push(Patch {
            offset: elf_header.shdr_offset + 44,
            bytes: (kept_count as u32).to_le_bytes().to_vec(),
        });
    } else {
        let counted = ElfHeader {
            e_phnum: kept_count as u16,
            ..elf_header
        };
        patches.push(Patch {
            offset: 0,
            bytes: counted.to_bytes().to_vec(),
        });
    }
    patches.push(Patch {
        offset: headers.phdr_offset,
        bytes: kept,
    });
    Ok(Salvage {
        intact_len,
        patches,
        segments,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elf::synth::{CoreBuilder, Memory, Msg, PrbLayout, Ring};
    use crate::seekable::{zero_frame, FrameEntry, SeekTable};
    use std::path::Path;
    use zstd::zstd_safe::{CCtx, CParameter};

    /// Compresses `data` into one frame with content size and checksum,
    /// as the writer does.
    fn frame_of(data: &[u8]) -> Vec<u8> {
        let mut context = CCtx::create();
        context
            .set_parameter(CParameter::ChecksumFlag(true))
            .unwrap();
        context
            .set_parameter(CParameter::ContentSizeFlag(true))
            .unwrap();
        context
            .set_parameter(CParameter::CompressionLevel(1))
            .unwrap();
        let mut out = Vec::with_capacity(zstd_safe::compress_bound(data.len()));
        context.compress2(&mut out, data).unwrap();
        out
    }

    fn checksum(data: &[u8]) -> u32 {
        xxhash_rust::xxh64::xxh64(data, 0) as u32
    }

    /// A dump of `data` in frames of `frame_bytes`, zero chunks as zero
    /// frames, and its seek table; also the table's offset.
    fn dump_of(data: &[u8], frame_bytes: usize) -> (Vec<u8>, usize) {
        let mut out = Vec::new();
        let mut table = SeekTable::default();
        for chunk in data.chunks(frame_bytes) {
            let frame = if chunk.iter().all(|&b| b == 0) {
                zero_frame(chunk.len() as u64, zero_checksum(chunk.len() as u64))
            } else {
                frame_of(chunk)
            };
            table.entries.push(FrameEntry {
                compressed_size: frame.len() as u32,
                decompressed_size: chunk.len() as u32,
                checksum: checksum(chunk),
            });
            out.extend_from_slice(&frame);
        }
        let table_at = out.len();
        table.write_to(&mut out).unwrap();
        (out, table_at)
    }

    /// Text-like data with zero stretches, so that some chunks are zero.
    fn sample(len: usize) -> Vec<u8> {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        (0..len)
            .map(|i| {
                if (i / 5000) % 3 == 1 {
                    0
                } else {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    b' ' + (state % 64) as u8
                }
            })
            .collect()
    }

    fn read_all<R: ReadAt>(dump: &Dump<R>) -> Vec<u8> {
        let mut out = vec![0u8; dump.decompressed_size() as usize];
        dump.read_at(0, &mut out).unwrap();
        out
    }

    #[test]
    fn frame_headers() {
        type Expected = Result<(usize, Option<u64>, bool), FrameHeaderProblem>;
        let magic = ZSTD_MAGIC.to_le_bytes();
        let with = |rest: &[u8]| [&magic[..], rest].concat();
        let cases: Vec<(&str, Vec<u8>, Expected)> = vec![
            ("empty", vec![], Err(FrameHeaderProblem::Truncated)),
            ("magic only", with(&[]), Err(FrameHeaderProblem::Truncated)),
            (
                "skippable magic",
                [&SKIPPABLE_MAGIC.to_le_bytes()[..], &[0]].concat(),
                Err(FrameHeaderProblem::BadMagic {
                    magic: SKIPPABLE_MAGIC,
                }),
            ),
            // Window descriptor, no content size.
            ("no content size", with(&[0x00, 0x50]), Ok((6, None, false))),
            // Single segment: a 1-byte content size, no window descriptor.
            (
                "single segment",
                with(&[0x20, 200]),
                Ok((6, Some(200), false)),
            ),
            (
                "single segment cut",
                with(&[0x20]),
                Err(FrameHeaderProblem::Truncated),
            ),
            // The 2-byte form adds 256.
            (
                "two-byte size",
                with(&[0x60, 0x00, 0x01]),
                Ok((7, Some(512), false)),
            ),
            (
                "four-byte size and checksum",
                with(&[0x84, 0x58, 1, 2, 3, 4]),
                Ok((10, Some(0x0403_0201), true)),
            ),
            (
                "eight-byte size",
                with(&[0xc4, 0x58, 1, 0, 0, 0, 1, 0, 0, 0]),
                Ok((14, Some(0x1_0000_0001), true)),
            ),
            (
                "eight-byte size cut",
                with(&[0xc4, 0x58, 1, 0, 0, 0, 1, 0, 0]),
                Err(FrameHeaderProblem::Truncated),
            ),
            (
                "reserved bit",
                with(&[0x28, 200]),
                Err(FrameHeaderProblem::ReservedBit),
            ),
            (
                "dictionary",
                with(&[0x21, 7, 200]),
                Err(FrameHeaderProblem::Dictionary { dictionary_id: 7 }),
            ),
            // A dictionary id of zero means none.
            (
                "zero dictionary id",
                with(&[0x22, 0, 0, 200]),
                Ok((8, Some(200), false)),
            ),
        ];
        for (name, bytes, expected) in cases {
            let got =
                parse_frame_header(&bytes).map(|h| (h.header_len, h.content_size, h.has_checksum));
            assert_eq!(got, expected, "{name}");
        }
        // The longest header (window byte, 4-byte dictionary id of zero,
        // 8-byte content size) cut at every length.
        let longest = with(&[0xc7, 0x58, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(longest.len(), FRAME_HEADER_MAX);
        for len in 0..longest.len() {
            assert_eq!(
                parse_frame_header(&longest[..len]),
                Err(FrameHeaderProblem::Truncated),
                "cut at {len}"
            );
        }
        assert_eq!(
            parse_frame_header(&longest).map(|h| (h.header_len, h.content_size)),
            Ok((FRAME_HEADER_MAX, Some(0x1_0000_0001)))
        );
        // What the writer produces parses as itself.
        for frame in [frame_of(b"hello"), zero_frame(5 << 20, 0)] {
            let header = parse_frame_header(&frame).unwrap();
            assert!(header.has_checksum);
            assert_eq!(
                header.content_size,
                zstd_safe::get_frame_content_size(&frame).unwrap()
            );
        }
    }

    #[test]
    fn block_headers() {
        let header = |last: u32, kind: u32, size: u32| {
            let v = last | kind << 1 | size << 3;
            [v as u8, (v >> 8) as u8, (v >> 16) as u8]
        };
        let cases = [
            ("raw", header(0, 0, 100), Some((false, 100, 100, 100))),
            ("last raw", header(1, 0, 0), Some((true, 0, 0, 0))),
            (
                "rle",
                header(1, 1, 131_072),
                Some((true, 1, 131_072, 131_072)),
            ),
            (
                "compressed",
                header(0, 2, 4000),
                Some((false, 4000, 0, BLOCK_MAX)),
            ),
            ("reserved type", header(0, 3, 10), None),
            ("oversized", header(0, 0, 131_073), None),
        ];
        for (name, bytes, expected) in cases {
            assert_eq!(parse_block_header(bytes), expected, "{name}");
        }
    }

    #[test]
    fn table_dump_reads_back() {
        let data = sample(100_000);
        let (bytes, _) = dump_of(&data, 4096);
        let dump = Dump::open(bytes.as_slice()).unwrap();
        assert!(dump.is_complete());
        assert_eq!(dump.damage(), None);
        assert_eq!(dump.frames().len(), data.len().div_ceil(4096));
        assert_eq!(dump.decompressed_size(), data.len() as u64);
        assert_eq!(read_all(&dump), data);
        let zero_frames = data
            .chunks(4096)
            .filter(|c| c.iter().all(|&b| b == 0))
            .count();
        assert!(zero_frames > 0);
        assert_eq!(dump.zero_frame_count(), zero_frames);
        let mut calls = 0;
        let report = dump.verify(|done, total| {
            calls += 1;
            assert!(done <= total);
        });
        assert!(report.is_ok(), "{report:?}");
        assert_eq!(report.good_bytes, data.len() as u64);
        assert_eq!(calls, dump.frames().len());
        // Stock zstd decodes the same bytes.
        assert_eq!(zstd::decode_all(&bytes[..]).unwrap(), data);
    }

    #[test]
    fn random_reads_cross_frames() {
        let data = sample(50_000);
        let (bytes, _) = dump_of(&data, 3000);
        let dump = Dump::open(bytes).unwrap();
        for (offset, len) in [(0, 1), (2999, 2), (2990, 7000), (49_999, 1), (0, 50_000)] {
            let mut buf = vec![0u8; len];
            dump.read_at(offset, &mut buf).unwrap();
            assert_eq!(buf, &data[offset as usize..offset as usize + len]);
        }
        let mut buf = [0u8; 2];
        let err = dump.read_at(49_999, &mut buf).unwrap_err();
        assert!(matches!(err, SeekableError::OutOfRange { .. }), "{err}");
        let err = dump.read_at(u64::MAX, &mut buf).unwrap_err();
        assert!(matches!(err, SeekableError::OutOfRange { .. }), "{err}");
        dump.read_at(50_000, &mut []).unwrap();
    }

    #[test]
    fn plain_single_frame_file_is_a_dump_without_table() {
        let data = sample(300_000);
        let bytes = frame_of(&data);
        let dump = Dump::open(bytes.as_slice()).unwrap();
        assert!(!dump.is_complete());
        assert_eq!(dump.table_status(), &TableStatus::Missing);
        assert_eq!(dump.damage(), None);
        assert_eq!(dump.frames().len(), 1);
        assert_eq!(dump.frames()[0].checksum, Some(checksum(&data)));
        assert_eq!(read_all(&dump), data);
        assert!(dump.verify(|_, _| {}).is_ok());
    }

    #[test]
    fn large_frames_are_read_lazily() {
        // A frame over WHOLE_FRAME_BYTES, like the single frame older
        // writers made of a whole vmcore: pieces decode on demand.
        let len = WHOLE_FRAME_BYTES as usize + 3 * PIECE_BYTES + 17;
        let mut data = vec![0u8; len];
        for (i, b) in data.iter_mut().enumerate().step_by(4099) {
            *b = (i % 251) as u8 + 1;
        }
        let bytes = frame_of(&data);
        let dump = Dump::open(bytes.as_slice()).unwrap();
        assert_eq!(dump.frames().len(), 1);
        for offset in [len - 5, 10, PIECE_BYTES * 40 + 3, PIECE_BYTES * 41, 0] {
            let mut buf = [0u8; 5];
            dump.read_at(offset as u64, &mut buf).unwrap();
            assert_eq!(buf, data[offset..offset + 5], "at {offset}");
        }
        let report = dump.verify(|_, _| {});
        assert!(report.is_ok(), "{report:?}");
    }

    #[test]
    fn truncation_at_every_byte_keeps_the_whole_frames() {
        let data = sample(10_000);
        let (bytes, table_at) = dump_of(&data, 4096);
        let ends: Vec<usize> = {
            let dump = Dump::open(bytes.as_slice()).unwrap();
            dump.frames()
                .iter()
                .map(|f| (f.compressed_offset + f.compressed_size) as usize)
                .collect()
        };
        for cut in 0..bytes.len() {
            let dump = Dump::open(&bytes[..cut]).unwrap();
            assert!(!dump.is_complete(), "cut at {cut}");
            let whole = ends.iter().filter(|&&end| end <= cut).count();
            assert_eq!(dump.frames().len(), whole, "cut at {cut}");
            let size = (whole * 4096).min(data.len());
            assert_eq!(dump.decompressed_size(), size as u64, "cut at {cut}");
            if cut < table_at && !ends.contains(&cut) && cut > 0 {
                assert_eq!(
                    dump.damage().map(|d| d.kind),
                    Some(DamageKind::Truncated),
                    "cut at {cut}"
                );
            }
            if cut >= table_at + 4 {
                assert_eq!(
                    dump.damage().map(|d| d.kind),
                    Some(DamageKind::SkippableTruncated),
                    "cut at {cut}"
                );
            }
            let report = dump.verify(|_, _| {});
            assert!(report.is_ok(), "cut at {cut}: {report:?}");
            assert_eq!(read_all(&dump), &data[..size], "cut at {cut}");
        }
    }

    #[test]
    fn corrupt_bytes_are_caught() {
        let data = sample(10_000);
        let (bytes, table_at) = dump_of(&data, 4096);
        // Flip every byte of the frames in turn: either the dump no longer
        // opens to the same frames, or reading and verifying fail, or (in
        // bytes zstd ignores, like an unused window mantissa) the content
        // is still right. Never a panic, never wrong bytes unnoticed.
        for at in 0..table_at {
            let mut corrupt = bytes.clone();
            corrupt[at] ^= 0x40;
            let dump = Dump::open(corrupt.as_slice()).unwrap();
            let report = dump.verify(|_, _| {});
            let mut content = vec![0u8; dump.decompressed_size() as usize];
            let read = dump.read_at(0, &mut content);
            if report.is_ok() {
                assert!(read.is_ok(), "byte {at}");
                assert_eq!(content, &data[..content.len()], "byte {at}");
            } else {
                assert!(read.is_err(), "byte {at}: verify failed, read did not");
            }
        }
    }

    #[test]
    fn checksum_mismatches_are_named() {
        let data = sample(10_000);
        let (mut bytes, table_at) = dump_of(&data, 4096);
        // The table's checksum of frame 1, after 8 bytes of table header and
        // one 12-byte entry, and its 8 bytes of sizes.
        let at = table_at + 8 + ENTRY_BYTES + 8;
        bytes[at] ^= 1;
        let dump = Dump::open(bytes.as_slice()).unwrap();
        assert!(dump.is_complete());
        let report = dump.verify(|_, _| {});
        assert_eq!(report.good_frames, 1);
        assert_eq!(report.good_bytes, 4096);
        let error = report.first_bad.unwrap();
        assert!(
            matches!(error, SeekableError::ChecksumMismatch { frame: 1, .. }),
            "{error}"
        );
        let mut buf = [0u8; 1];
        dump.read_at(0, &mut buf).unwrap();
        for _ in 0..2 {
            let error = dump.read_at(4096, &mut buf).unwrap_err();
            assert!(
                matches!(error, SeekableError::ChecksumMismatch { frame: 1, .. }),
                "{error}"
            );
        }

        // zstd's own checksum, at the end of frame 0.
        let (mut bytes, _) = dump_of(&data, 4096);
        let frame0 = Dump::open(bytes.as_slice()).unwrap().frames()[0];
        bytes[(frame0.compressed_end() - 1) as usize] ^= 1;
        let dump = Dump::open(bytes.as_slice()).unwrap();
        let error = dump.verify(|_, _| {}).first_bad.unwrap();
        assert!(
            matches!(error, SeekableError::Decompress { frame: 0, .. }),
            "{error}"
        );
    }

    #[test]
    fn inconsistent_tables_fall_back_to_walking() {
        let data = sample(20_000);
        let (bytes, table_at) = dump_of(&data, 4096);
        let footer_at = bytes.len() - FOOTER_BYTES;
        type Patch = (usize, Vec<u8>);
        type Check = fn(&TableStatus) -> bool;
        let cases: Vec<(&str, Vec<Patch>, Check)> = vec![
            (
                "compressed size off by one",
                vec![(table_at + 8, {
                    let size =
                        u32::from_le_bytes(bytes[table_at + 8..table_at + 12].try_into().unwrap());
                    (size + 1).to_le_bytes().to_vec()
                })],
                |s| {
                    matches!(
                        s,
                        TableStatus::Inconsistent(TableProblem::SizeMismatch { .. })
                    )
                },
            ),
            (
                "count too large for the file",
                vec![(footer_at, 1000u32.to_le_bytes().to_vec())],
                |s| {
                    matches!(
                        s,
                        TableStatus::Inconsistent(TableProblem::LargerThanFile { .. })
                    )
                },
            ),
            (
                "count one less",
                vec![(footer_at, 4u32.to_le_bytes().to_vec())],
                |s| {
                    matches!(
                        s,
                        TableStatus::Inconsistent(TableProblem::BadFrameHeader { .. })
                    )
                },
            ),
            (
                "count beyond the format",
                vec![(footer_at, u32::MAX.to_le_bytes().to_vec())],
                |s| {
                    matches!(
                        s,
                        TableStatus::Inconsistent(TableProblem::TooManyFrames { .. })
                    )
                },
            ),
            (
                "reserved descriptor bits",
                vec![(footer_at + 4, vec![0x84])],
                |s| {
                    matches!(
                        s,
                        TableStatus::Inconsistent(TableProblem::ReservedBits { .. })
                    )
                },
            ),
            (
                "frame larger than 1 GiB",
                vec![(
                    table_at + 12,
                    (MAX_FRAME_BYTES as u32 + 1).to_le_bytes().to_vec(),
                )],
                |s| {
                    matches!(
                        s,
                        TableStatus::Inconsistent(TableProblem::BadEntry { index: 0, .. })
                    )
                },
            ),
            (
                "wrong skippable magic",
                vec![(table_at, 0x184D_2A50u32.to_le_bytes().to_vec())],
                |s| {
                    matches!(
                        s,
                        TableStatus::Inconsistent(TableProblem::BadFrameHeader { .. })
                    )
                },
            ),
            (
                "no footer magic",
                vec![(footer_at + 5, vec![0, 0, 0, 0])],
                |s| *s == TableStatus::Missing,
            ),
        ];
        for (name, patches, check) in cases {
            let mut corrupt = bytes.clone();
            for (at, patch) in patches {
                corrupt[at..at + patch.len()].copy_from_slice(&patch);
            }
            let dump = Dump::open(corrupt.as_slice()).unwrap();
            assert!(
                check(dump.table_status()),
                "{name}: {:?}",
                dump.table_status()
            );
            assert!(!dump.is_complete(), "{name}");
            // The frames are all there, found by walking them; the table
            // frame is skipped (or, without its magic, ends the walk).
            assert_eq!(dump.frames().len(), 5, "{name}");
            assert_eq!(read_all(&dump), data, "{name}");
        }
    }

    #[test]
    fn table_sizes_disagreeing_with_frames_are_decode_errors() {
        let data = sample(12_288);
        let (mut bytes, table_at) = dump_of(&data, 4096);
        // Swap the decompressed sizes of frames 0 and 1 in the table: the
        // sums still match, the frame headers do not.
        let entry = |i: usize| table_at + 8 + i * ENTRY_BYTES + 4;
        bytes[entry(0)..entry(0) + 4].copy_from_slice(&4000u32.to_le_bytes());
        bytes[entry(1)..entry(1) + 4].copy_from_slice(&4192u32.to_le_bytes());
        let dump = Dump::open(bytes.as_slice()).unwrap();
        assert!(dump.is_complete());
        let error = dump.verify(|_, _| {}).first_bad.unwrap();
        assert!(
            matches!(
                error,
                SeekableError::FrameHeader {
                    frame: 0,
                    problem: FrameHeaderProblem::ContentSizeMismatch { .. },
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn walking_stops_at_damage() {
        let data = sample(8192);
        let first = frame_of(&data[..4096]);
        let second = frame_of(&data[4096..]);
        let skippable = [
            &0x184D_2A53u32.to_le_bytes()[..],
            &3u32.to_le_bytes(),
            b"abc",
        ]
        .concat();
        let no_size = {
            // A frame without content size: streaming with an unknown size.
            let mut out = Vec::new();
            let mut encoder = zstd::stream::write::Encoder::new(&mut out, 1).unwrap();
            std::io::Write::write_all(&mut encoder, &data[..100]).unwrap();
            encoder.finish().unwrap();
            out
        };
        let cases: Vec<(&str, Vec<u8>, usize, Option<DamageKind>)> = vec![
            ("two frames", [&first[..], &second].concat(), 2, None),
            (
                "skippable frame between",
                [&first[..], &skippable, &second].concat(),
                2,
                None,
            ),
            (
                "garbage after",
                [&first[..], b"garbage!"].concat(),
                1,
                Some(DamageKind::NotAFrame {
                    magic: u32::from_le_bytes(*b"garb"),
                }),
            ),
            (
                "no content size",
                [&first[..], &no_size].concat(),
                1,
                Some(DamageKind::NoContentSize),
            ),
            (
                "skippable frame cut",
                [&first[..], &skippable[..9]].concat(),
                1,
                Some(DamageKind::SkippableTruncated),
            ),
            (
                "skippable header cut",
                [&first[..], &skippable[..6]].concat(),
                1,
                Some(DamageKind::SkippableTruncated),
            ),
            ("empty file", vec![], 0, None),
        ];
        for (name, bytes, frames, damage) in cases {
            let dump = Dump::open(bytes.as_slice()).unwrap();
            assert_eq!(dump.frames().len(), frames, "{name}");
            assert_eq!(dump.damage().map(|d| d.kind), damage, "{name}");
            if let Some(damage) = dump.damage() {
                assert_eq!(damage.offset, first.len() as u64, "{name}");
            }
        }
    }

    #[test]
    fn impossible_content_sizes_end_the_walk() {
        // A zero frame whose header claims more than its RLE blocks hold.
        let mut frame = zero_frame(4096, zero_checksum(4096));
        frame[6..10].copy_from_slice(&100_000u32.to_le_bytes());
        let dump = Dump::open(frame.as_slice()).unwrap();
        assert_eq!(dump.frames().len(), 0);
        assert!(matches!(
            dump.damage().map(|d| d.kind),
            Some(DamageKind::ImpossibleContentSize {
                content_size: 100_000
            })
        ));
    }

    #[test]
    fn vmcore_log_reads_through_a_dump() {
        let mut ring = Ring::new(4, 10);
        for i in 0..20u64 {
            ring.push(&Msg::new(i * 1_000_000, format!("message {i}").as_bytes()));
        }
        ring.push(&Msg::new(
            99_000_000,
            b"Kernel panic - not syncing: sysrq triggered crash",
        ));
        let mut memory = Memory::new();
        ring.write(&mut memory, &PrbLayout::linux_6_1());
        let core = memory.build();
        let (bytes, _) = dump_of(&core, 4096);
        let plain = crate::vmcore::Vmcore::open(core.as_slice()).unwrap();
        let packed = crate::vmcore::Vmcore::open(Dump::open(bytes.as_slice()).unwrap()).unwrap();
        let expected = crate::printk::read_log(&plain).unwrap();
        let records = crate::printk::read_log(&packed).unwrap();
        assert_eq!(records, expected);
        assert_eq!(
            crate::printk::panic_message(&records).as_deref(),
            Some("sysrq triggered crash")
        );
    }

    fn two_load_core() -> Vec<u8> {
        let mut core = CoreBuilder::new();
        core.note(b"VMCOREINFO", 0, b"OSRELEASE=6.1.0\n");
        core.load(0xffff_8880_0000_0000, 0, vec![0x11; 4096]);
        core.load_with_mem_size(0xffff_8880_0010_0000, 0x10_0000, vec![0x22; 8192], 16384);
        core.build()
    }

    fn apply(core: &[u8], salvage: &Salvage) -> Vec<u8> {
        let mut out = core[..salvage.intact_len as usize].to_vec();
        for patch in &salvage.patches {
            let at = patch.offset as usize;
            out[at..at + patch.bytes.len()].copy_from_slice(&patch.bytes);
        }
        out
    }

    #[test]
    fn salvage_shrinks_and_drops_segments() {
        let core = two_load_core();
        let headers = read_core_headers(core.as_slice()).unwrap();
        let (first, second) = (headers.loads[0], headers.loads[1]);
        type Check = fn(&[SegmentFate]) -> bool;
        let cases: Vec<(&str, u64, Check)> = vec![
            ("whole", core.len() as u64, |f| {
                f == [SegmentFate::Kept, SegmentFate::Kept]
            }),
            ("second cut", second.file_offset + 100, |f| {
                f == [SegmentFate::Kept, SegmentFate::Shrunk { new_size: 100 }]
            }),
            ("second gone", second.file_offset, |f| {
                f == [SegmentFate::Kept, SegmentFate::Dropped]
            }),
            ("first cut", first.file_offset + 1, |f| {
                f == [SegmentFate::Shrunk { new_size: 1 }, SegmentFate::Dropped]
            }),
            ("only headers", headers.header_size, |f| {
                f == [SegmentFate::Dropped, SegmentFate::Dropped]
            }),
        ];
        for (name, cut, check) in cases {
            let prefix = &core[..cut as usize];
            let salvage = salvage_core(prefix).unwrap();
            let fates: Vec<SegmentFate> = salvage.segments.iter().map(|s| s.fate).collect();
            assert!(check(&fates), "{name}: {fates:?}");
            let fixed = apply(&core, &salvage);
            let new = read_core_headers(fixed.as_slice()).unwrap();
            assert_eq!(new.notes, headers.notes, "{name}");
            for load in &new.loads {
                assert!(load.file_offset + load.file_size <= cut, "{name}");
                assert_eq!(load.file_size, load.mem_size.min(load.file_size), "{name}");
            }
            let kept = fates.iter().filter(|f| **f != SegmentFate::Dropped).count();
            assert_eq!(new.loads.len(), kept, "{name}");
            assert_eq!(new.phdr_count, kept as u64 + 1, "{name}");
            // A shrunk segment has no memory beyond its file data.
            for (segment, load) in salvage
                .segments
                .iter()
                .filter(|s| s.fate != SegmentFate::Dropped)
                .zip(&new.loads)
            {
                if let SegmentFate::Shrunk { new_size } = segment.fate {
                    assert_eq!((load.file_size, load.mem_size), (new_size, new_size));
                    let (start, len) = segment.lost_range().unwrap();
                    assert_eq!(start + len, segment.paddr + segment.mem_size);
                }
            }
            assert_eq!(salvage.is_whole(), name == "whole");
        }
        let second_lost = SalvagedSegment {
            index: 2,
            paddr: 0x10_0000,
            vaddr: 0,
            file_offset: second.file_offset,
            file_size: 8192,
            mem_size: 16384,
            fate: SegmentFate::Shrunk { new_size: 100 },
        };
        assert_eq!(second_lost.lost_file_bytes(), 8092);
        assert_eq!(second_lost.lost_range(), Some((0x10_0000 + 100, 16284)));
    }

    /// A dump cut inside the memory after the log, salvaged: the result is
    /// a core that readelf and makedumpfile accept, whose log is whole.
    #[test]
    fn salvaged_cores_satisfy_readelf_and_makedumpfile() {
        let mut ring = Ring::new(4, 10);
        for i in 0..20u64 {
            ring.push(&Msg::new(i * 1_000_000, format!("message {i}").as_bytes()));
        }
        let mut memory = Memory::new();
        ring.write(&mut memory, &PrbLayout::linux_6_1());
        let tail = memory.alloc_ram(64 << 10);
        memory.write(tail, &[0x5a; 64 << 10]);
        let core = memory.build();
        let ram = read_core_headers(core.as_slice()).unwrap().loads[1];
        assert_eq!(ram.file_offset + ram.file_size, core.len() as u64);

        let (bytes, _) = dump_of(&core, 4096);
        let whole = Dump::open(bytes.as_slice()).unwrap();
        let cut_in = ram.file_offset + ram.file_size - (32 << 10);
        let frame = whole
            .frames()
            .iter()
            .find(|f| f.decompressed_end() > cut_in)
            .unwrap();
        let dump = Dump::open(&bytes[..frame.compressed_offset as usize + 5]).unwrap();
        let mut prefix = vec![0u8; dump.decompressed_size() as usize];
        let report = dump
            .decompress_to(
                |offset, data| {
                    prefix[offset as usize..][..data.len()].copy_from_slice(data);
                    Ok::<(), ()>(())
                },
                |_, _| {},
            )
            .unwrap();
        assert!(report.is_ok(), "{report:?}");
        assert_eq!(prefix.len() as u64, frame.decompressed_offset);

        let salvage = salvage_core(prefix.as_slice()).unwrap();
        let fates: Vec<SegmentFate> = salvage.segments.iter().map(|s| s.fate).collect();
        let new_size = frame.decompressed_offset - ram.file_offset;
        assert_eq!(fates, [SegmentFate::Kept, SegmentFate::Shrunk { new_size }]);
        let fixed = apply(&prefix, &salvage);
        let plain = crate::vmcore::Vmcore::open(core.as_slice()).unwrap();
        let salvaged = crate::vmcore::Vmcore::open(fixed.as_slice()).unwrap();
        assert_eq!(
            crate::printk::read_log(&salvaged).unwrap(),
            crate::printk::read_log(&plain).unwrap()
        );

        let dir = tempfile::tempdir().unwrap();
        let (original, recovered) = (dir.path().join("vmcore"), dir.path().join("salvaged"));
        std::fs::write(&original, &core).unwrap();
        std::fs::write(&recovered, &fixed).unwrap();
        match std::process::Command::new("readelf")
            .arg("-lW")
            .arg(&recovered)
            .output()
        {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                eprintln!("readelf is not installed: not checking with it");
            }
            Err(e) => panic!("cannot run readelf: {e}"),
            Ok(output) => {
                assert!(output.status.success());
                assert!(output.stderr.is_empty(), "{:?}", output.stderr);
                let listing = String::from_utf8_lossy(&output.stdout).into_owned();
                assert_eq!(listing.matches("  LOAD ").count(), 2, "{listing}");
                assert!(
                    listing.contains(&format!("{new_size:#08x} {new_size:#08x}")),
                    "{listing}"
                );
            }
        }
        let dmesg = |vmcore: &Path| {
            let out = vmcore.with_extension("dmesg");
            std::process::Command::new("makedumpfile")
                .arg("--dump-dmesg")
                .arg(vmcore)
                .arg(&out)
                .output()
                .map(|_| std::fs::read(&out).unwrap_or_default())
        };
        match (dmesg(&original), dmesg(&recovered)) {
            (Err(e), _) if e.kind() == io::ErrorKind::NotFound => {
                eprintln!("makedumpfile is not installed: not checking with it");
            }
            (Ok(expected), Ok(got)) => {
                assert!(!expected.is_empty(), "makedumpfile reads the original");
                assert_eq!(got, expected, "makedumpfile reads the salvaged core alike");
            }
            (a, b) => panic!("cannot run makedumpfile: {a:?} {b:?}"),
        }
    }

    #[test]
    fn salvage_needs_whole_headers() {
        let core = two_load_core();
        let headers = read_core_headers(core.as_slice()).unwrap();
        for cut in [0, 63, 100, headers.header_size - 1] {
            let error = salvage_core(&core[..cut as usize]).unwrap_err();
            assert!(matches!(error, SalvageError::Headers(_)), "{cut}: {error}");
        }
    }
}

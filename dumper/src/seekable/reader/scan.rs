//! Finding a dump's frames: the seek table when it is there and agrees
//! with the file, else a walk over frame and block headers from the start.

use super::*;

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
pub(super) struct FrameHeader {
    /// Bytes from the magic number to the first block header.
    pub(super) header_len: usize,
    pub(super) content_size: Option<u64>,
    pub(super) has_checksum: bool,
}

/// Parses a frame header from the bytes at the start of a frame (the
/// magic included); `bytes` may run past the header.
pub(super) fn parse_frame_header(bytes: &[u8]) -> Result<FrameHeader, FrameHeaderProblem> {
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
pub(super) fn parse_block_header(bytes: [u8; 3]) -> Option<(bool, u64, u64, u64)> {
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
pub(super) struct Peeker<'r, R: ?Sized> {
    pub(super) reader: &'r R,
    pub(super) size: u64,
    pub(super) buffer: Vec<u8>,
    pub(super) buffer_start: u64,
}

impl<'r, R: ReadAt + ?Sized> Peeker<'r, R> {
    pub(super) fn new(reader: &'r R) -> Self {
        Peeker {
            reader,
            size: reader.size(),
            buffer: Vec::new(),
            buffer_start: 0,
        }
    }

    /// `len` bytes at `offset` (at most [`SCAN_READ_AHEAD`]), or `None` if
    /// the file ends before.
    pub(super) fn get(
        &mut self,
        offset: u64,
        len: usize,
    ) -> Result<Option<Bytes<'_>>, SeekableError> {
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
pub(super) enum ScanStep {
    Frame(FrameInfo),
    Skippable { end: u64 },
    End,
    Damage(DamageKind),
}

/// A field that the peeker handed over too short: the peeker returns
/// exactly the bytes asked for, so this is a bug, reported as an error.
pub(super) fn frame_field(what: &'static str) -> impl Fn(OutOfBounds) -> SeekableError {
    move |source| SeekableError::FieldRead { what, source }
}

/// Looks at what starts at `offset` of the file.
pub(super) fn scan_one<R: ReadAt + ?Sized>(
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
pub(super) fn scan_frames<R: ReadAt + ?Sized>(
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
pub(super) fn read_table<R: ReadAt + ?Sized>(
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

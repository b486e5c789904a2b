//! Decoding frames in bounded pieces, and the cache of decoded pieces that
//! random reads go through.

use super::*;

/// Decodes one frame at a time, sequentially, in steps of at most the
/// caller's buffer, checking what the frame must be: its header, its size
/// and its checksum.
pub(super) struct FrameDecoder {
    pub(super) context: DCtx<'static>,
    pub(super) frame: usize,
    pub(super) info: FrameInfo,
    pub(super) input: Vec<u8>,
    pub(super) input_pos: usize,
    /// File offset of the next compressed byte to read.
    pub(super) next_in: u64,
    /// Decompressed bytes of the frame produced so far.
    pub(super) produced: u64,
    pub(super) hasher: Xxh64,
    pub(super) finished: bool,
}

impl FrameDecoder {
    pub(super) fn new() -> Self {
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
    pub(super) fn start<R: ReadAt + ?Sized>(
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

    pub(super) fn compressed_end(&self) -> u64 {
        self.info.compressed_end()
    }

    /// Fills `out` with the next bytes of the frame, or fewer if the frame
    /// ends first; once the frame's last byte is out, also checks its end
    /// (checksum included), whatever room is left in `out`.
    pub(super) fn fill<R: ReadAt + ?Sized>(
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
                self.check_end(reader)?;
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
    /// checksum by then). What the seek table counts after the frame's end
    /// must be the frame's exclusion record.
    pub(super) fn check_end<R: ReadAt + ?Sized>(&self, reader: &R) -> Result<(), SeekableError> {
        let frame = self.frame;
        let offset = self.info.compressed_offset;
        let trailing =
            (self.input.len() - self.input_pos) as u64 + (self.compressed_end() - self.next_in);
        if trailing > 0 {
            let record_at = self.compressed_end() - trailing;
            let mut magic = [0u8; 4];
            let is_record = (8..=MAX_RECORD_BYTES).contains(&trailing)
                && reader.read_exact_at(&mut magic, record_at).is_ok()
                && u32::from_le_bytes(magic) == EXCLUSION_MAGIC;
            if !is_record {
                return Err(SeekableError::TrailingData {
                    frame,
                    offset,
                    trailing,
                });
            }
            read_record(
                reader,
                frame,
                offset,
                record_at,
                trailing,
                self.info.decompressed_size,
            )?;
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

/// The largest exclusion record read: a frame of 64 MiB with every other
/// page left out records 8192 runs of at most 21 bytes each.
pub(super) const MAX_RECORD_BYTES: u64 = 1 << 20;

/// Reads and decodes the exclusion record of `len` bytes at `at`, which
/// follows frame `frame` (at `offset`) of `frame_len` decompressed bytes.
pub(super) fn read_record<R: ReadAt + ?Sized>(
    reader: &R,
    frame: usize,
    offset: u64,
    at: u64,
    len: u64,
    frame_len: u64,
) -> Result<Vec<ExcludedRun>, SeekableError> {
    let mut bytes = vec![0u8; len.min(MAX_RECORD_BYTES) as usize];
    reader
        .read_exact_at(&mut bytes, at)
        .map_err(|source| SeekableError::Read {
            what: "exclusion record",
            offset: at,
            source,
        })?;
    decode_record(&bytes, frame_len).map_err(|problem| SeekableError::BadExclusionRecord {
        frame,
        offset,
        problem,
    })
}

/// Decoded pieces of frames, least recently used evicted first.
pub(super) struct Cache {
    pub(super) pieces: Vec<Piece>,
    pub(super) bytes: usize,
    pub(super) clock: u64,
    /// The decoder, kept positioned inside a large frame so that reading it
    /// forward does not start over; made on the first read.
    pub(super) decoder: Option<FrameDecoder>,
    /// Frames that failed to decode, so that reads into them fail fast.
    pub(super) failed: Vec<SeekableError>,
}

pub(super) struct Piece {
    pub(super) frame: usize,
    /// Offset of the piece inside its frame's content.
    pub(super) start: u64,
    pub(super) data: Vec<u8>,
    pub(super) last_used: u64,
}

impl Cache {
    pub(super) fn find(&mut self, frame: usize, start: u64) -> Option<usize> {
        let index = self
            .pieces
            .iter()
            .position(|p| p.frame == frame && p.start == start)?;
        self.clock += 1;
        self.pieces[index].last_used = self.clock;
        Some(index)
    }

    pub(super) fn insert(&mut self, frame: usize, start: u64, data: Vec<u8>) -> usize {
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

    pub(super) fn failure(&self, frame: usize) -> Option<SeekableError> {
        self.failed
            .iter()
            .find(|e| e.frame() == Some(frame))
            .and_then(SeekableError::clone_decoding)
    }

    pub(super) fn remember_failure(&mut self, error: &SeekableError) {
        if self.failed.len() < 64 {
            if let Some(copy) = error.clone_decoding() {
                self.failed.push(copy);
            }
        }
    }
}

//! The output side of a stream: the zstd context that compresses each
//! chunk into one frame, and the writer that puts the frames, compressed or
//! of zeros, into the dump and keeps the seek table that ends it.

use std::io::Write;

use zstd::zstd_safe::{self, CCtx, CParameter, InBuffer, OutBuffer, ResetDirective};

use crate::seekable::exclusions::{encode_record, ExcludedRun};
use crate::seekable::{zero_checksum, zero_frame, FrameEntry, SeekTable};

use super::StreamError;

/// A zstd compression context set up for dump frames.
pub(super) struct Compressor {
    context: CCtx<'static>,
    level: i32,
}

impl Compressor {
    pub(super) fn new(level: i32) -> Compressor {
        let mut context = CCtx::create();
        // Setting parameters only fails for values out of range; the level
        // is clamped by zstd and the flags are booleans.
        let _ = context.set_parameter(CParameter::CompressionLevel(level));
        // Each frame carries XXH64 of its content, which stock zstd checks
        // and whose low 32 bits are also the seek table's checksum.
        let _ = context.set_parameter(CParameter::ChecksumFlag(true));
        let _ = context.set_parameter(CParameter::ContentSizeFlag(true));
        Compressor { context, level }
    }

    fn error(&self, offset: u64, code: usize) -> StreamError {
        compress_error(self.level, offset, code)
    }

    /// Compresses `chunk` as one frame into `frame`, replacing what it
    /// held. One call with room for the whole frame lets zstd compress
    /// straight from the mapping: streaming through a small buffer copies
    /// the input into zstd's window first (5% of the time at level -7).
    pub(super) fn compress_frame(
        &mut self,
        chunk: &[u8],
        offset: u64,
        frame: &mut Vec<u8>,
    ) -> Result<(), StreamError> {
        frame.clear();
        frame.reserve(zstd_safe::compress_bound(chunk.len()));
        // One call knows the whole input: zstd puts its size in the frame
        // header (ContentSizeFlag) without being told.
        self.context
            .compress2(frame, chunk)
            .map_err(|e| self.error(offset, e))?;
        Ok(())
    }
}

impl Compressor {
    /// Compresses `chunk` as one frame into `frame`, with zeros in place of
    /// the `excluded` runs (ordered, inside the chunk), which are never
    /// read: an excluded page may be hardware-poisoned. zstd's streaming
    /// API takes the kept parts straight from the mapping and the zeros
    /// from a small buffer, so no copy of the chunk is made; it copies its
    /// input into its window, which costs a few percent over
    /// [`Compressor::compress_frame`], paid only by partly excluded chunks.
    pub(super) fn compress_masked(
        &mut self,
        chunk: &[u8],
        excluded: &[ExcludedRun],
        offset: u64,
        frame: &mut Vec<u8>,
    ) -> Result<(), StreamError> {
        frame.clear();
        frame.reserve(zstd_safe::compress_bound(chunk.len()));
        let level = self.level;
        let error = |code| compress_error(level, offset, code);
        self.context
            .reset(ResetDirective::SessionOnly)
            .map_err(error)?;
        self.context
            .set_pledged_src_size(Some(chunk.len() as u64))
            .map_err(error)?;
        let mut at = 0usize;
        for run in excluded {
            let start = run.start as usize;
            self.feed(&chunk[at..start], frame).map_err(error)?;
            let mut zeros = run.len as usize;
            while zeros > 0 {
                let n = zeros.min(ZEROS.len());
                self.feed(&ZEROS[..n], frame).map_err(error)?;
                zeros -= n;
            }
            at = run.end() as usize;
        }
        self.feed(&chunk[at..], frame).map_err(error)?;
        loop {
            let at = frame.len();
            let left = self
                .context
                .end_stream(&mut OutBuffer::around_pos(frame, at))
                .map_err(error)?;
            if left == 0 {
                return Ok(());
            }
            frame.reserve(left);
        }
    }

    /// Hands `bytes` to the frame being compressed.
    fn feed(&mut self, bytes: &[u8], frame: &mut Vec<u8>) -> Result<(), usize> {
        let mut input = InBuffer::around(bytes);
        while input.pos() < bytes.len() {
            if frame.capacity() == frame.len() {
                frame.reserve(zstd_safe::CCtx::out_size());
            }
            let at = frame.len();
            self.context.compress_stream2(
                &mut OutBuffer::around_pos(frame, at),
                &mut input,
                zstd_safe::zstd_sys::ZSTD_EndDirective::ZSTD_e_continue,
            )?;
        }
        Ok(())
    }
}

/// What excluded runs are compressed from.
static ZEROS: [u8; 64 << 10] = [0; 64 << 10];

fn compress_error(level: i32, offset: u64, code: usize) -> StreamError {
    StreamError::Compress {
        offset,
        level,
        message: zstd_safe::get_error_name(code),
    }
}

/// The output side: writes frames, keeps the seek table.
pub(super) struct DumpWriter<W> {
    out: W,
    written: u64,
    /// The last four bytes written: a frame's content checksum.
    tail: [u8; 4],
    table: SeekTable,
    frame_bytes: u64,
    full_zero_frame: Vec<u8>,
    zero_frames: u64,
    /// The last exclusion record's buffer, reused.
    record: Vec<u8>,
}

impl<W: Write> DumpWriter<W> {
    pub(super) fn new(out: W, frame_bytes: u64) -> DumpWriter<W> {
        DumpWriter {
            out,
            written: 0,
            tail: [0; 4],
            table: SeekTable::default(),
            frame_bytes,
            full_zero_frame: zero_frame(frame_bytes, zero_checksum(frame_bytes)),
            zero_frames: 0,
            record: Vec::new(),
        }
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), StreamError> {
        self.out
            .write_all(bytes)
            .map_err(|source| StreamError::Write {
                written: self.written,
                source,
            })?;
        self.written += bytes.len() as u64;
        if bytes.len() >= 4 {
            self.tail.copy_from_slice(&bytes[bytes.len() - 4..]);
        } else {
            let keep = 4 - bytes.len();
            self.tail.copy_within(bytes.len().., 0);
            self.tail[keep..].copy_from_slice(bytes);
        }
        Ok(())
    }

    /// Writes the exclusion record of the frame just written, if anything
    /// was left out of it, and records the frame and its record, written
    /// since `start`, in the seek table. The frame's last four bytes are its
    /// content checksum.
    fn frame_written(
        &mut self,
        start: u64,
        len: u64,
        excluded: &[ExcludedRun],
    ) -> Result<(), StreamError> {
        let checksum = u32::from_le_bytes(self.tail);
        if !excluded.is_empty() {
            let mut record = std::mem::take(&mut self.record);
            record.clear();
            encode_record(excluded, &mut record);
            let result = self.write(&record);
            self.record = record;
            result?;
        }
        self.table.entries.push(FrameEntry {
            compressed_size: (self.written - start) as u32,
            decompressed_size: len as u32,
            checksum,
        });
        Ok(())
    }

    /// Writes `frame`, the compressed frame of `len` bytes of input, from
    /// which the `excluded` runs were left out.
    pub(super) fn data_frame(
        &mut self,
        frame: &[u8],
        len: u64,
        excluded: &[ExcludedRun],
    ) -> Result<(), StreamError> {
        let start = self.written;
        self.write(frame)?;
        self.frame_written(start, len, excluded)
    }

    /// Writes a frame of `len` zero bytes without the compressor: zeros of
    /// the input, or the `excluded` runs, or both.
    pub(super) fn zero_frame(
        &mut self,
        len: u64,
        excluded: &[ExcludedRun],
    ) -> Result<(), StreamError> {
        let start = self.written;
        if len == self.frame_bytes {
            let frame = std::mem::take(&mut self.full_zero_frame);
            let result = self.write(&frame);
            self.full_zero_frame = frame;
            result?;
        } else {
            self.write(&zero_frame(len, zero_checksum(len)))?;
        }
        self.zero_frames += 1;
        self.frame_written(start, len, excluded)
    }

    pub(super) fn finish(mut self) -> Result<(W, u64, u64, u64), StreamError> {
        let written = self.written;
        self.table
            .write_to(&mut self.out)
            .and_then(|()| self.out.flush())
            .map_err(|source| StreamError::Write { written, source })?;
        let total = written + self.table.encoded_len() as u64;
        Ok((
            self.out,
            total,
            self.table.entries.len() as u64,
            self.zero_frames,
        ))
    }
}

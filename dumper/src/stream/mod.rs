//! Streaming a vmcore into a dump in the zstd seekable format.
//!
//! The input is cut into chunks of a fixed size (the frame size, 1 MiB up
//! to 128 GiB of input, growing beyond so that there are at most 2^17 of
//! them); each chunk becomes one independent zstd frame, so a dump cut short
//! is good up to its last whole frame and frames can be compressed in
//! parallel. All-zero chunks, over half of a typical vmcore, skip the
//! compressor: their frame is written directly (see
//! [`crate::seekable::zero_frame`]). The seek table goes at the end.
//!
//! The input is read through read-only mappings of large windows: on
//! `/proc/vmcore`, 4 KiB `read`s are about a hundred times slower than
//! touching mapped pages. Mapped vmcore pages are the crashed kernel's own
//! memory, not ours, so they do not count against the capture kernel.
//!
//! Memory, single-threaded: the compressor (1.3 MiB at level 1, up to about
//! 9 MiB at level 19 for a 1 MiB frame), one compressed frame (at most the
//! frame size and a little, for incompressible data), and the seek table, 12 bytes a frame: at most 2^17 frames, 1.5 MiB. With
//! threads, each thread adds its compressor and up to four windows in
//! flight, each with its compressed frame (about 1 MiB at worst, for
//! incompressible data): about 5.5 MiB a thread, plus the four mapped
//! windows, which count on a host but not in the capture kernel (measured
//! on a host with `lifeboat save`: 6.9 MiB with 1 thread, 20, 30 and 36 MiB
//! with 2, 3 and 4).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::xxh64::Xxh64;
use zstd::zstd_safe::{self, CCtx, CParameter};

use crate::plan::{Piece, Plan};
use crate::seekable::{zero_checksum, zero_frame, FrameEntry, SeekTable};
use crate::sys::Mapping;

/// The smallest frame: large enough that frame overheads (about 20 bytes
/// and a table entry) vanish, and that zstd's window is used well.
pub const MIN_FRAME_BYTES: u64 = 1 << 20;

/// Most frames a dump has: this bounds the seek table kept in memory.
pub const MAX_FRAMES: u64 = 1 << 17;

/// The largest frame, far under the format's 1 GiB.
pub const MAX_FRAME_BYTES: u64 = 64 << 20;

/// Bytes mapped at a time (or one frame, if frames are larger). Mapping
/// costs little next to compressing, and on a host, mapped pages of a
/// vmcore file count in the RSS that the memory bound is measured by.
pub const DEFAULT_WINDOW_BYTES: usize = 1 << 20;

/// The frame size for an input of `size` bytes: the smallest power of two
/// of at least 1 MiB that keeps the frame count at most [`MAX_FRAMES`].
pub fn frame_bytes_for(size: u64) -> u64 {
    size.div_ceil(MAX_FRAMES)
        .next_power_of_two()
        .clamp(MIN_FRAME_BYTES, MAX_FRAME_BYTES)
}

#[derive(Clone, Copy, Debug)]
pub struct StreamOptions {
    /// zstd level; negative levels are zstd's fast levels (`--fast=N`).
    pub level: i32,
    /// Compression threads; 1 compresses on the calling thread.
    pub threads: usize,
    /// The frame size; `None` picks [`frame_bytes_for`] the input size.
    pub frame_bytes: Option<u64>,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            level: 1,
            threads: 1,
            frame_bytes: None,
        }
    }
}

/// Where a stream stands, handed to the progress callback.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub elapsed: Duration,
}

/// How the input was read; mapping is what should happen on a vmcore.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadMethod {
    Mmap,
    Pread,
}

impl ReadMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            ReadMethod::Mmap => "mmap",
            ReadMethod::Pread => "pread",
        }
    }
}

/// The outcome of a finished stream.
#[derive(Clone, Copy, Debug)]
pub struct StreamSummary {
    pub input_bytes: u64,
    pub output_bytes: u64,
    /// XXH64 (seed 0) of the uncompressed input, as `xxhsum -H64` prints it.
    pub xxh64: u64,
    pub elapsed: Duration,
    pub read_method: ReadMethod,
    pub frame_bytes: u64,
    pub frames: u64,
    /// Frames of all-zero chunks, written without the compressor.
    pub zero_frames: u64,
    pub threads: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("cannot read input at offset {offset}")]
    Read {
        offset: u64,
        #[source]
        source: io::Error,
    },
    #[error("zstd cannot compress the frame at offset {offset} (level {level}): {message}")]
    Compress {
        offset: u64,
        level: i32,
        message: &'static str,
    },
    #[error("cannot write compressed output after {written} bytes")]
    Write {
        written: u64,
        #[source]
        source: io::Error,
    },
    #[error("cannot start compression thread {index}")]
    Thread {
        index: usize,
        #[source]
        source: io::Error,
    },
    #[error("a compression thread stopped before its work was done")]
    ThreadStopped,
    #[error(
        "frame size {frame_bytes} is not a multiple of 4096 between 4096 and {MAX_FRAME_BYTES}"
    )]
    FrameSize { frame_bytes: u64 },
}

/// Compresses `size` bytes of `input` from offset 0 into `output`: the
/// whole vmcore as it is ([`Plan::whole`]); see [`compress`].
pub fn compress_file<W: Write>(
    input: &File,
    size: u64,
    output: W,
    options: &StreamOptions,
    progress: impl FnMut(&Progress),
) -> Result<(StreamSummary, W), StreamError> {
    compress(input, &Plan::whole(size), output, options, progress)
}

/// Compresses what `plan` describes, with its ranges read from `input`,
/// into `output` as a dump in the seekable format, calling `progress` as it
/// goes. Returns the summary and the writer, which the caller still has to
/// make durable.
pub fn compress<W: Write>(
    input: &File,
    plan: &Plan,
    output: W,
    options: &StreamOptions,
    mut progress: impl FnMut(&Progress),
) -> Result<(StreamSummary, W), StreamError> {
    let start = Instant::now();
    let size = plan.size();
    let frame_bytes = options.frame_bytes.unwrap_or_else(|| frame_bytes_for(size));
    if !frame_bytes.is_multiple_of(4096) || !(4096..=MAX_FRAME_BYTES).contains(&frame_bytes) {
        return Err(StreamError::FrameSize { frame_bytes });
    }
    let source = Source::new(input, plan, frame_bytes);
    let mut writer = DumpWriter::new(output, frame_bytes);
    let mut hasher = Xxh64::new(0);
    let threads = options.threads.max(1);
    let mut report = |done: u64| {
        progress(&Progress {
            bytes_done: done,
            bytes_total: size,
            elapsed: start.elapsed(),
        })
    };
    if threads == 1 {
        let mut compressor = Compressor::new(options.level);
        let mut frame = Vec::new();
        source.for_each_window(|offset, window| {
            for (index, chunk) in window.chunks(frame_bytes as usize).enumerate() {
                let chunk_offset = offset + index as u64 * frame_bytes;
                if is_zero(chunk) {
                    hasher.update_zeros(chunk.len() as u64);
                    writer.zero_frame(chunk.len() as u64)?;
                } else {
                    hasher.update(chunk);
                    compressor.compress_frame(chunk, chunk_offset, &mut frame)?;
                    writer.data_frame(&frame, chunk.len() as u64)?;
                }
            }
            report(offset + window.len() as u64);
            Ok(())
        })?;
    } else {
        compress_parallel(
            &source,
            options.level,
            threads,
            &mut writer,
            &mut hasher,
            &mut report,
        )?;
    }
    let (output, output_bytes, frames, zero_frames) = writer.finish()?;
    let summary = StreamSummary {
        input_bytes: size,
        output_bytes,
        xxh64: hasher.digest(),
        elapsed: start.elapsed(),
        read_method: source.method,
        frame_bytes,
        frames,
        zero_frames,
        threads,
    };
    Ok((summary, output))
}

/// Reads the first `limit` bytes of `input` the way [`compress_file`]
/// does, touching every byte but doing nothing else, and returns how many
/// bytes that was and how long it took: the read limit a dump's rate
/// compares with.
pub fn measure_read(input: &File, size: u64, limit: u64) -> Result<(u64, Duration), StreamError> {
    let size = size.min(limit);
    let plan = Plan::whole(size);
    let source = Source::new(input, &plan, MIN_FRAME_BYTES);
    let start = Instant::now();
    let mut folded = 0u64;
    source.for_each_window(|_, window| {
        folded ^= window.chunks_exact(8).fold(0u64, |acc, word| {
            acc | u64::from_ne_bytes(word.try_into().expect("8 bytes"))
        });
        Ok(())
    })?;
    std::hint::black_box(folded);
    Ok((size, start.elapsed()))
}

/// Whether `bytes` are all zero. Folding whole words lets the compiler use
/// vector instructions; this runs over every byte of the vmcore.
pub fn is_zero(bytes: &[u8]) -> bool {
    let mut blocks = bytes.chunks_exact(64);
    blocks.by_ref().all(|block| {
        block.chunks_exact(8).fold(0u64, |acc, word| {
            acc | u64::from_ne_bytes(word.try_into().expect("8-byte chunk"))
        }) == 0
    }) && blocks.remainder().iter().all(|&b| b == 0)
}

/// The plan's output, window by window: a window inside one range of the
/// input is mapped when the input can be mapped (the common case, and the
/// only one for a whole vmcore), else read; a window of pieces is put
/// together in a buffer.
struct Source<'a> {
    file: &'a File,
    plan: &'a Plan,
    size: u64,
    frame_bytes: u64,
    /// Bytes per window: a whole number of frames.
    window: u64,
    method: ReadMethod,
}

/// mmap(2) maps from page boundaries only.
const PAGE_BYTES: u64 = 4096;

impl<'a> Source<'a> {
    fn new(file: &'a File, plan: &'a Plan, frame_bytes: u64) -> Source<'a> {
        let window = (DEFAULT_WINDOW_BYTES as u64).max(frame_bytes) / frame_bytes * frame_bytes;
        // Some inputs (pipes, most procfs files, a few filesystems) cannot
        // be mapped; reading them is slower but still right.
        let copies_input = plan
            .pieces()
            .iter()
            .any(|piece| matches!(piece, Piece::Copy { .. }));
        let probe = plan.size().min(4096) as usize;
        let method = if !copies_input || probe == 0 || Mapping::new(file, 0, probe).is_ok() {
            ReadMethod::Mmap
        } else {
            log::warn!("the input cannot be mapped; reading it with pread");
            ReadMethod::Pread
        };
        Source {
            file,
            plan,
            size: plan.size(),
            frame_bytes,
            window,
            method,
        }
    }

    /// Calls `f` with each window of the output, in order.
    fn for_each_window(
        &self,
        mut f: impl FnMut(u64, &[u8]) -> Result<(), StreamError>,
    ) -> Result<(), StreamError> {
        // Reading (when the input cannot be mapped) reuses one buffer.
        let mut buffer = Vec::new();
        let mut offset = 0;
        while offset < self.size {
            let len = self.window.min(self.size - offset) as usize;
            let window = self.window(offset, len, buffer)?;
            f(offset, window.bytes())?;
            buffer = match window {
                Window::Read(buffer) => buffer,
                Window::Mapped(_) => Vec::new(),
            };
            offset += len as u64;
        }
        Ok(())
    }

    /// `len` bytes of output at `offset` as a window that can be shared by
    /// threads: mapped, or put together in `buffer` (whose allocation is
    /// reused).
    fn window(&self, offset: u64, len: usize, mut buffer: Vec<u8>) -> Result<Window, StreamError> {
        let mut spans = self.plan.spans(offset, len as u64);
        if self.method == ReadMethod::Mmap {
            if let (Some(span), None) = (spans.next(), spans.next()) {
                if let Piece::Copy { offset: from, .. } = span.piece {
                    let at = from + span.offset_in_piece;
                    if at % PAGE_BYTES == 0 {
                        let mapping = Mapping::new(self.file, at, len).map_err(|errno| {
                            StreamError::Read {
                                offset: at,
                                source: errno.into(),
                            }
                        })?;
                        return Ok(Window::Mapped(mapping));
                    }
                }
            }
        }
        buffer.clear();
        buffer.resize(len, 0);
        let mut filled = 0usize;
        for span in self.plan.spans(offset, len as u64) {
            let part = &mut buffer[filled..filled + span.len as usize];
            match span.piece {
                Piece::Bytes(bytes) => {
                    let from = span.offset_in_piece as usize;
                    part.copy_from_slice(&bytes[from..from + part.len()]);
                }
                Piece::Copy { offset: from, .. } => {
                    let at = from + span.offset_in_piece;
                    self.file
                        .read_exact_at(part, at)
                        .map_err(|source| StreamError::Read { offset: at, source })?;
                }
                // `resize` zeroed the buffer.
                Piece::Zeros(_) => {}
            }
            filled += part.len();
        }
        Ok(Window::Read(buffer))
    }
}

/// A zstd compression context set up for dump frames.
struct Compressor {
    context: CCtx<'static>,
    level: i32,
}

impl Compressor {
    fn new(level: i32) -> Compressor {
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
    fn compress_frame(
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

fn compress_error(level: i32, offset: u64, code: usize) -> StreamError {
    StreamError::Compress {
        offset,
        level,
        message: zstd_safe::get_error_name(code),
    }
}

/// A window's worth of work for a compression thread: `len` bytes of the
/// input at `offset`, the frames from `first_sequence` on.
struct Job {
    offset: u64,
    len: usize,
    first_sequence: u64,
}

/// What a compression thread made of one chunk (one frame's worth).
enum Outcome {
    /// The chunk is all zero: hashing and writing it needs no bytes.
    Zero { len: u64 },
    /// The chunk's compressed frame, and the window holding the chunk,
    /// still to be hashed.
    Data {
        frame: Vec<u8>,
        window: Arc<Window>,
        start: usize,
        len: usize,
    },
}

/// A compression thread's answer: a chunk's sequence number and outcome.
type Done = (u64, Result<Outcome, StreamError>);

/// A window of the input, mapped or read by a compression thread, and
/// shared with the writer until the chunks with data in it are hashed.
enum Window {
    Mapped(Mapping),
    Read(Vec<u8>),
}

impl Window {
    fn bytes(&self) -> &[u8] {
        match self {
            Window::Mapped(mapping) => mapping.as_slice(),
            Window::Read(buffer) => buffer,
        }
    }
}

/// Compresses frames on `threads` threads while this thread hashes the
/// input in order and writes the frames in order.
///
/// Each thread maps a window (one frame, or several small ones), checks
/// each chunk for zeros and compresses the others, so that reading the
/// input, a third of the work on a mostly empty machine, is shared too.
/// (Windows of 4 and 8 MiB, for fewer TLB-flush interrupts between the
/// threads, were no faster measurably and multiplied the mapped memory.)
/// What stays on this thread is serial by
/// nature: the XXH64 of the whole input, which hashes a zero chunk from its
/// length alone (see [`Xxh64::update_zeros`]) and a chunk of data from the
/// window its thread shares, and the writing. Threads take windows from one
/// shared queue, so a slow frame holds up only its own thread, and a
/// reorder queue puts the frames back in order. At most
/// `WINDOWS_IN_FLIGHT_PER_THREAD × threads` windows are in flight (queued,
/// being compressed, or with chunks waiting to be written), which bounds
/// the memory: that many windows and their compressed frames, plus one
/// compressor per thread.
fn compress_parallel<W: Write>(
    source: &Source,
    level: i32,
    threads: usize,
    writer: &mut DumpWriter<W>,
    hasher: &mut Xxh64,
    report: &mut impl FnMut(u64),
) -> Result<(), StreamError> {
    let frame_bytes = source.frame_bytes;
    let window_bytes = source.window;
    let frames_per_window = (window_bytes / frame_bytes) as usize;
    let max_in_flight = WINDOWS_IN_FLIGHT_PER_THREAD * threads * frames_per_window;
    let (job_sender, job_receiver) = mpsc::channel::<Job>();
    let job_receiver = Mutex::new(job_receiver);
    let (done_sender, done_receiver) = mpsc::channel::<Done>();
    let spare_frames = Mutex::new(Vec::<Vec<u8>>::new());
    std::thread::scope(|scope| {
        for index in 0..threads {
            let done_sender = done_sender.clone();
            let job_receiver = &job_receiver;
            let spare_frames = &spare_frames;
            let worker = move || {
                let mut compressor = Compressor::new(level);
                loop {
                    // The lock is held only while waiting for the next job;
                    // a poisoned lock still guards a sound receiver.
                    let next = job_receiver
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .recv();
                    // The writer is done, or has given up, once the queue
                    // is closed.
                    let Ok(job) = next else { return };
                    let sent =
                        compress_window(source, &mut compressor, &job, spare_frames, |done| {
                            done_sender.send(done).is_ok()
                        });
                    if !sent {
                        return;
                    }
                }
            };
            std::thread::Builder::new()
                .name(format!("compress-{index}"))
                .spawn_scoped(scope, worker)
                .map_err(|source| StreamError::Thread { index, source })?;
        }
        drop(done_sender);
        let mut queue = ReorderQueue {
            pending: VecDeque::new(),
            written: 0,
            spare_frames: &spare_frames,
            done: done_receiver,
        };
        let mut sequence = 0u64;
        let mut offset = 0u64;
        while offset < source.size {
            let len = window_bytes.min(source.size - offset);
            let frames = len.div_ceil(frame_bytes) as usize;
            while queue.pending.len() + frames > max_in_flight {
                queue.wait_for_one()?;
                queue.write_ready(writer, hasher)?;
            }
            let job = Job {
                offset,
                len: len as usize,
                first_sequence: sequence,
            };
            job_sender
                .send(job)
                .map_err(|_| StreamError::ThreadStopped)?;
            queue.pending.extend((0..frames).map(|_| None));
            sequence += frames as u64;
            offset += len;
            queue.collect_finished()?;
            queue.write_ready(writer, hasher)?;
            report((queue.written * frame_bytes).min(source.size));
        }
        while !queue.pending.is_empty() {
            queue.wait_for_one()?;
            queue.write_ready(writer, hasher)?;
        }
        report(source.size);
        // Closing the job queue ends the threads; the scope waits for them.
        drop(job_sender);
        Ok(())
    })
}

/// Windows in flight per compression thread. A window of zeros takes a
/// tenth of a millisecond and one of data a few: with room for a few
/// windows each, one thread runs on through zeros while another compresses
/// (two per thread measured 10-20% slower on a mostly empty vmcore).
const WINDOWS_IN_FLIGHT_PER_THREAD: usize = 4;

/// A compression thread's work on one window: an outcome for each chunk,
/// handed to `send` as soon as it is known. Returns false once `send` does
/// (the writer has given up).
fn compress_window(
    source: &Source,
    compressor: &mut Compressor,
    job: &Job,
    spare_frames: &Mutex<Vec<Vec<u8>>>,
    mut send: impl FnMut(Done) -> bool,
) -> bool {
    let frame_bytes = source.frame_bytes as usize;
    let window = match source.window(job.offset, job.len, Vec::new()) {
        Ok(window) => Arc::new(window),
        Err(error) => return send((job.first_sequence, Err(error))),
    };
    for (index, chunk) in window.bytes().chunks(frame_bytes).enumerate() {
        let start = index * frame_bytes;
        let outcome = if is_zero(chunk) {
            Ok(Outcome::Zero {
                len: chunk.len() as u64,
            })
        } else {
            let mut frame = spare_frames
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop()
                .unwrap_or_default();
            compressor
                .compress_frame(chunk, job.offset + start as u64, &mut frame)
                .map(|()| Outcome::Data {
                    frame,
                    window: Arc::clone(&window),
                    start,
                    len: chunk.len(),
                })
        };
        if !send((job.first_sequence + index as u64, outcome)) {
            return false;
        }
    }
    true
}

/// The chunks between the last frame written and the last chunk handed
/// out, in dump order: `None` until its thread is done with it.
struct ReorderQueue<'a> {
    pending: VecDeque<Option<Outcome>>,
    /// Frames written so far: the sequence number of `pending[0]`.
    written: u64,
    /// Buffers of written frames, for the threads' next frames.
    spare_frames: &'a Mutex<Vec<Vec<u8>>>,
    done: mpsc::Receiver<Done>,
}

impl ReorderQueue<'_> {
    /// Files one finished chunk in its place.
    fn file(&mut self, (sequence, outcome): Done) -> Result<(), StreamError> {
        self.pending[(sequence - self.written) as usize] = Some(outcome?);
        Ok(())
    }

    /// Waits for the next finished chunk and files it.
    fn wait_for_one(&mut self) -> Result<(), StreamError> {
        let done = self.done.recv().map_err(|_| StreamError::ThreadStopped)?;
        self.file(done)
    }

    /// Files the chunks that are finished, without waiting.
    fn collect_finished(&mut self) -> Result<(), StreamError> {
        while let Ok(done) = self.done.try_recv() {
            self.file(done)?;
        }
        Ok(())
    }

    /// Hashes and writes the finished chunks at the head of the queue.
    fn write_ready<W: Write>(
        &mut self,
        writer: &mut DumpWriter<W>,
        hasher: &mut Xxh64,
    ) -> Result<(), StreamError> {
        while let Some(outcome) = self.pending.front_mut().and_then(Option::take) {
            self.pending.pop_front();
            self.written += 1;
            match outcome {
                Outcome::Zero { len } => {
                    hasher.update_zeros(len);
                    writer.zero_frame(len)?;
                }
                Outcome::Data {
                    frame,
                    window,
                    start,
                    len,
                } => {
                    hasher.update(&window.bytes()[start..start + len]);
                    writer.data_frame(&frame, len as u64)?;
                    self.spare_frames
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(frame);
                }
            }
        }
        Ok(())
    }
}

/// The output side: writes frames, keeps the seek table.
struct DumpWriter<W> {
    out: W,
    written: u64,
    /// The last four bytes written: a frame's content checksum.
    tail: [u8; 4],
    table: SeekTable,
    frame_bytes: u64,
    full_zero_frame: Vec<u8>,
    zero_frames: u64,
}

impl<W: Write> DumpWriter<W> {
    fn new(out: W, frame_bytes: u64) -> DumpWriter<W> {
        DumpWriter {
            out,
            written: 0,
            tail: [0; 4],
            table: SeekTable::default(),
            frame_bytes,
            full_zero_frame: zero_frame(frame_bytes, zero_checksum(frame_bytes)),
            zero_frames: 0,
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

    /// Records the frame written since `start`; its last four bytes are its
    /// content checksum.
    fn frame_written(&mut self, start: u64, len: u64) {
        self.table.entries.push(FrameEntry {
            compressed_size: (self.written - start) as u32,
            decompressed_size: len as u32,
            checksum: u32::from_le_bytes(self.tail),
        });
    }

    /// Writes `frame`, the compressed frame of `len` bytes of input.
    fn data_frame(&mut self, frame: &[u8], len: u64) -> Result<(), StreamError> {
        let start = self.written;
        self.write(frame)?;
        self.frame_written(start, len);
        Ok(())
    }

    /// Writes a frame of `len` zero bytes without the compressor.
    fn zero_frame(&mut self, len: u64) -> Result<(), StreamError> {
        let start = self.written;
        if len == self.frame_bytes {
            let frame = std::mem::take(&mut self.full_zero_frame);
            let result = self.write(&frame);
            self.full_zero_frame = frame;
            result?;
        } else {
            self.write(&zero_frame(len, zero_checksum(len)))?;
        }
        self.frame_written(start, len);
        self.zero_frames += 1;
        Ok(())
    }

    fn finish(mut self) -> Result<(W, u64, u64, u64), StreamError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seekable::{FOOTER_BYTES, SEEKABLE_MAGIC};

    /// Like a vmcore: zero chunks, text, and zero pages inside data.
    fn sample_input(len: usize) -> Vec<u8> {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        (0..len)
            .map(|i| {
                let page = i / 4096;
                if page % 3 == 0 || (300..600).contains(&page) {
                    0
                } else {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    b'a' + (state % 26) as u8
                }
            })
            .collect()
    }

    fn compress(data: &[u8], options: &StreamOptions) -> (StreamSummary, Vec<u8>) {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(data).unwrap();
        compress_file(&file, data.len() as u64, Vec::new(), options, |_| {}).unwrap()
    }

    /// The seek table's entries, read back by hand from the end.
    fn table_entries(dump: &[u8]) -> Vec<(u32, u32, u32)> {
        let footer = &dump[dump.len() - FOOTER_BYTES..];
        assert_eq!(&footer[5..], &SEEKABLE_MAGIC.to_le_bytes());
        let count = u32::from_le_bytes(footer[..4].try_into().unwrap()) as usize;
        let start = dump.len() - FOOTER_BYTES - count * 12;
        dump[start..dump.len() - FOOTER_BYTES]
            .chunks_exact(12)
            .map(|e| {
                let word = |i: usize| u32::from_le_bytes(e[i..i + 4].try_into().unwrap());
                (word(0), word(4), word(8))
            })
            .collect()
    }

    #[test]
    fn frame_sizes_keep_the_table_bounded() {
        let cases: &[(u64, u64)] = &[
            (0, 1 << 20),
            (4096, 1 << 20),
            (2 << 30, 1 << 20),
            (128 << 30, 1 << 20),
            ((128 << 30) + 1, 2 << 20),
            (1 << 40, 8 << 20),
            (64 << 40, 64 << 20),
        ];
        for &(size, frame) in cases {
            assert_eq!(frame_bytes_for(size), frame, "size {size}");
            assert!(size.div_ceil(frame) <= MAX_FRAMES || frame == MAX_FRAME_BYTES);
        }
    }

    #[test]
    fn dumps_are_standard_zstd_with_a_consistent_seek_table() {
        let frame = 64 << 10;
        for len in [0usize, 1, 4096, frame, frame + 17, 3 << 20] {
            let data = sample_input(len);
            for threads in [1, 2, 3] {
                let options = StreamOptions {
                    level: 1,
                    threads,
                    frame_bytes: Some(frame as u64),
                };
                let (summary, dump) = compress(&data, &options);
                assert_eq!(summary.output_bytes, dump.len() as u64);
                assert_eq!(summary.xxh64, xxhash_rust::xxh64::xxh64(&data, 0));
                assert_eq!(summary.read_method, ReadMethod::Mmap);
                assert!(zstd::decode_all(&dump[..]).unwrap() == data, "len {len}");

                let entries = table_entries(&dump);
                assert_eq!(entries.len() as u64, summary.frames);
                assert_eq!(entries.len(), len.div_ceil(frame));
                let mut compressed_offset = 0usize;
                for (index, &(compressed, decompressed, checksum)) in entries.iter().enumerate() {
                    let chunk = &data[index * frame..][..decompressed as usize];
                    let frame_bytes = &dump[compressed_offset..][..compressed as usize];
                    assert_eq!(zstd::decode_all(frame_bytes).unwrap(), chunk);
                    assert_eq!(checksum, xxhash_rust::xxh64::xxh64(chunk, 0) as u32);
                    compressed_offset += compressed as usize;
                }
                let zero_chunks = data.chunks(frame).filter(|c| is_zero(c)).count();
                assert_eq!(summary.zero_frames, zero_chunks as u64);
            }
        }
    }

    #[test]
    fn threads_write_the_same_frames_as_one() {
        // Frames of a whole window and frames several to a window; zero
        // chunks, which threads finish at once, between frames of data, so
        // that results come back out of order.
        let mut data = sample_input(9 << 20);
        data[(6 << 20)..(8 << 20)].fill(0);
        for frame_bytes in [1 << 20, 256 << 10] {
            let options = |threads| StreamOptions {
                level: 3,
                threads,
                frame_bytes: Some(frame_bytes),
            };
            let (single_summary, single) = compress(&data, &options(1));
            for threads in [2, 3, 4] {
                let (summary, parallel) = compress(&data, &options(threads));
                assert_eq!(summary.threads, threads);
                assert_eq!(summary.xxh64, single_summary.xxh64);
                assert_eq!(summary.zero_frames, single_summary.zero_frames);
                // Frames are compressed the same way on any thread.
                assert!(
                    single == parallel,
                    "{threads} threads, frames of {frame_bytes}"
                );
                assert!(zstd::decode_all(&parallel[..]).unwrap() == data);
            }
        }
    }

    #[test]
    fn plans_of_pieces_compress_to_their_content() {
        let data = sample_input(5 << 20);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("input");
        std::fs::write(&path, &data).unwrap();
        let file = File::open(&path).unwrap();
        // New headers, a page-aligned range (mapped), a range that is not
        // page-aligned (read), a run of zeros across frame boundaries, and
        // a range again: frames made of several pieces and of one.
        let header: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
        let plan = Plan::new(vec![
            Piece::Bytes(header.clone()),
            Piece::Copy {
                offset: 1 << 20,
                len: 2 << 20,
            },
            Piece::Copy {
                offset: 12345,
                len: 300_000,
            },
            Piece::Zeros(3 << 20),
            Piece::Copy {
                offset: 0,
                len: 1 << 20,
            },
        ]);
        let mut expected = header;
        expected.extend_from_slice(&data[1 << 20..3 << 20]);
        expected.extend_from_slice(&data[12345..12345 + 300_000]);
        expected.resize(expected.len() + (3 << 20), 0);
        expected.extend_from_slice(&data[..1 << 20]);
        assert_eq!(plan.size(), expected.len() as u64);
        let mut outputs = Vec::new();
        for threads in [1, 2, 3] {
            let options = StreamOptions {
                threads,
                frame_bytes: Some(256 << 10),
                ..StreamOptions::default()
            };
            let (summary, dump) =
                super::compress(&file, &plan, Vec::new(), &options, |_| {}).unwrap();
            assert!(
                zstd::decode_all(&dump[..]).unwrap() == expected,
                "{threads}"
            );
            assert_eq!(summary.input_bytes, expected.len() as u64);
            assert_eq!(summary.xxh64, xxhash_rust::xxh64::xxh64(&expected, 0));
            // The 3 MiB of zeros hold at least 11 whole 256 KiB frames.
            assert!(summary.zero_frames >= 11, "{}", summary.zero_frames);
            outputs.push(dump);
        }
        assert!(outputs.windows(2).all(|pair| pair[0] == pair[1]));
        // The whole plan is what compress_file writes.
        let options = StreamOptions::default();
        let (_, whole) = super::compress(
            &file,
            &Plan::whole(data.len() as u64),
            Vec::new(),
            &options,
            |_| {},
        )
        .unwrap();
        let (_, by_file) =
            compress_file(&file, data.len() as u64, Vec::new(), &options, |_| {}).unwrap();
        assert!(whole == by_file);
    }

    #[test]
    fn zero_detection() {
        let cases: &[(&[u8], bool)] = &[
            (&[], true),
            (&[0; 63], true),
            (&[0; 4096], true),
            (&[1], false),
        ];
        for &(bytes, zero) in cases {
            assert_eq!(is_zero(bytes), zero, "{bytes:?}");
        }
        for position in [0, 7, 63, 64, 4095, 4100] {
            let mut bytes = vec![0u8; 4101];
            bytes[position] = 0x80;
            assert!(!is_zero(&bytes), "nonzero at {position}");
        }
    }

    #[test]
    fn unmappable_input_falls_back_to_pread() {
        // procfs files cannot be mapped but can be read at an offset, like
        // the odd filesystem a host user might keep a vmcore on.
        let expected = std::fs::read("/proc/version").unwrap();
        let file = File::open("/proc/version").unwrap();
        for threads in [1, 2] {
            let options = StreamOptions {
                threads,
                ..StreamOptions::default()
            };
            let (summary, out) =
                compress_file(&file, expected.len() as u64, Vec::new(), &options, |_| {}).unwrap();
            assert_eq!(summary.read_method, ReadMethod::Pread);
            assert_eq!(zstd::decode_all(&out[..]).unwrap(), expected);
        }
    }

    #[test]
    fn write_failures_report_how_far_they_got() {
        #[derive(Debug)]
        struct Full(usize);
        impl Write for Full {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::from_raw_os_error(28));
                }
                let n = buf.len().min(self.0);
                self.0 -= n;
                Ok(n)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let data = sample_input(2 << 20);
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&data).unwrap();
        for threads in [1, 2] {
            let options = StreamOptions {
                level: 1,
                threads,
                frame_bytes: Some(64 << 10),
            };
            let error = compress_file(&file, data.len() as u64, Full(100_000), &options, |_| {})
                .expect_err("the sink is full");
            let StreamError::Write { written, source } = error else {
                panic!("expected a write error, got {error:?}");
            };
            assert!(written <= 100_000 && written > 50_000, "{written}");
            assert_eq!(source.raw_os_error(), Some(28));
        }
    }

    #[test]
    fn bad_frame_sizes_are_refused() {
        let file = tempfile::tempfile().unwrap();
        for frame_bytes in [0, 1000, 4097, MAX_FRAME_BYTES + 4096] {
            let options = StreamOptions {
                frame_bytes: Some(frame_bytes),
                ..StreamOptions::default()
            };
            assert!(matches!(
                compress_file(&file, 0, Vec::new(), &options, |_| {}),
                Err(StreamError::FrameSize { .. })
            ));
        }
    }
}

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
//!
//! Reading the plan's output, window by window, is `source`'s; the
//! compressor and the writer of frames and seek table are `writer`'s; the
//! threads and the queue that puts their frames back in order are
//! `parallel`'s. This module holds the options, the summary, the errors,
//! and the loop of a single thread.

mod exclude;
mod parallel;
mod source;
mod writer;

use std::fs::File;
use std::io::{self, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::filter::ExcludeCategory;
use crate::plan::Plan;
use crate::seekable::exclusions::ExcludedRun;
use crate::xxh64::Xxh64;

pub use self::exclude::{Exclude, KeepAll};
use self::parallel::{compress_parallel, compress_window, write_outcome, Job};
use self::source::Source;
use self::writer::{Compressor, DumpWriter};

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
    /// What was left out, by category.
    pub excluded: Excluded,
}

/// Bytes left out of a dump, by category.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Excluded {
    bytes: [u64; ExcludeCategory::ALL.len()],
}

impl Excluded {
    /// The bytes of `runs` by category, but for those in the `repeated`
    /// parts (see [`Exclude::repeated`]): a page frame counts once.
    fn outside(runs: &[ExcludedRun], repeated: &[std::ops::Range<u64>]) -> Excluded {
        let mut excluded = Excluded::default();
        for run in runs {
            let inside: u64 = repeated
                .iter()
                .map(|part| {
                    let from = part.start.max(run.start);
                    let to = part.end.min(run.end());
                    to.saturating_sub(from)
                })
                .sum();
            excluded.bytes[run.category.index()] += run.len - inside.min(run.len);
        }
        excluded
    }

    /// Bytes of `category` left out.
    pub fn bytes(&self, category: ExcludeCategory) -> u64 {
        self.bytes[category.index()]
    }

    /// Pages of `category` left out.
    pub fn pages(&self, category: ExcludeCategory) -> u64 {
        self.bytes(category) / 4096
    }

    /// The pages of every category, in report order: `zero 3, cache 0, …`,
    /// as the console and `lifeboat save` print them.
    pub fn describe_pages(&self) -> String {
        ExcludeCategory::ALL
            .iter()
            .map(|&category| format!("{} {}", category.name(), self.pages(category)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Bytes left out, all categories together.
    pub fn total_bytes(&self) -> u64 {
        self.bytes.iter().sum()
    }
}

impl std::ops::AddAssign for Excluded {
    fn add_assign(&mut self, other: Excluded) {
        for (mine, theirs) in self.bytes.iter_mut().zip(other.bytes) {
            *mine += theirs;
        }
    }
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
    progress: impl FnMut(&Progress),
) -> Result<(StreamSummary, W), StreamError> {
    compress_excluding(input, plan, output, options, &mut KeepAll, progress)
}

/// [`compress`], leaving out what `exclude` says: excluded bytes are not
/// read, come out as zeros at their place, and are described by an
/// exclusion record after their frame (see [`crate::seekable::exclusions`]).
pub fn compress_excluding<W: Write>(
    input: &File,
    plan: &Plan,
    output: W,
    options: &StreamOptions,
    exclude: &mut dyn Exclude,
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
    let mut excluded = Excluded::default();
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
        let spare_frames = Mutex::new(Vec::new());
        let zero_pages = exclude.zero_pages();
        let mut offset = 0;
        while offset < size {
            let len = source.window.min(size - offset);
            let job = Job::new(exclude, offset, len, 0);
            let mut result = Ok(());
            compress_window(
                &source,
                &mut compressor,
                job,
                zero_pages,
                &spare_frames,
                |(_, outcome)| {
                    result = outcome.and_then(|outcome| {
                        write_outcome(
                            outcome,
                            &mut writer,
                            &mut hasher,
                            &mut excluded,
                            &spare_frames,
                        )
                    });
                    result.is_ok()
                },
            );
            result?;
            offset += len;
            report(offset);
        }
    } else {
        compress_parallel(
            &source,
            options.level,
            threads,
            exclude,
            &mut writer,
            &mut hasher,
            &mut excluded,
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
        excluded,
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

#[cfg(test)]
mod tests;

//! Compressing a stream on several threads: the threads take windows of
//! the input from one queue and compress their chunks, while the calling
//! thread hashes the input and writes the frames, put back in order, with
//! a bound on the windows in flight.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::{mpsc, Arc, Mutex, PoisonError};

use crate::seekable::exclusions::ExcludedRun;
use crate::xxh64::Xxh64;

use super::exclude::{add_zero_pages, covers, kept, parts_in_chunk, runs_in_chunk, Exclude};
use super::source::{Source, Window};
use super::writer::{Compressor, DumpWriter};
use super::{Excluded, StreamError};

/// A window's worth of work for a compression thread: `len` bytes of the
/// input at `offset`, the frames from `first_sequence` on, and the runs of
/// the window to leave out (counted from `offset`).
pub(super) struct Job {
    pub(super) offset: u64,
    pub(super) len: usize,
    pub(super) first_sequence: u64,
    pub(super) excluded: Vec<ExcludedRun>,
    /// Parts of the window whose zero pages are not counted (see
    /// [`Exclude::repeated`]).
    pub(super) repeated: Vec<std::ops::Range<u64>>,
}

impl Job {
    /// The window of `len` bytes at `offset`, whose first frame is number
    /// `first_sequence`, with what `exclude` leaves out of it.
    pub(super) fn new(
        exclude: &mut dyn Exclude,
        offset: u64,
        len: u64,
        first_sequence: u64,
    ) -> Job {
        let mut excluded = Vec::new();
        exclude.exclude(offset, len, &mut excluded);
        let mut repeated = Vec::new();
        exclude.repeated(offset, len, &mut repeated);
        Job {
            offset,
            len: len as usize,
            first_sequence,
            excluded,
            repeated,
        }
    }
}

/// What a compression thread made of one chunk (one frame's worth).
pub(super) enum Outcome {
    /// The chunk is all zero, or left out, or both: hashing and writing it
    /// needs no bytes.
    Zero {
        len: u64,
        excluded: Vec<ExcludedRun>,
        counted: Excluded,
    },
    /// The chunk's compressed frame, and the window holding the chunk,
    /// still to be hashed (with zeros for its excluded runs).
    Data {
        frame: Vec<u8>,
        window: Arc<Window>,
        start: usize,
        len: usize,
        excluded: Vec<ExcludedRun>,
        counted: Excluded,
    },
}

/// A compression thread's answer: a chunk's sequence number and outcome.
pub(super) type Done = (u64, Result<Outcome, StreamError>);

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
#[allow(clippy::too_many_arguments)]
pub(super) fn compress_parallel<W: Write>(
    source: &Source,
    level: i32,
    threads: usize,
    exclude: &mut dyn Exclude,
    writer: &mut DumpWriter<W>,
    hasher: &mut Xxh64,
    excluded: &mut Excluded,
    report: &mut impl FnMut(u64),
) -> Result<(), StreamError> {
    let zero_pages = exclude.zero_pages();
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
                    let sent = compress_window(
                        source,
                        &mut compressor,
                        job,
                        zero_pages,
                        spare_frames,
                        |done| done_sender.send(done).is_ok(),
                    );
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
                queue.write_ready(writer, hasher, excluded)?;
            }
            let job = Job::new(exclude, offset, len, sequence);
            job_sender
                .send(job)
                .map_err(|_| StreamError::ThreadStopped)?;
            queue.pending.extend((0..frames).map(|_| None));
            sequence += frames as u64;
            offset += len;
            queue.collect_finished()?;
            queue.write_ready(writer, hasher, excluded)?;
            report((queue.written * frame_bytes).min(source.size));
        }
        while !queue.pending.is_empty() {
            queue.wait_for_one()?;
            queue.write_ready(writer, hasher, excluded)?;
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
/// (the writer has given up). A window left out whole is not mapped at
/// all, and no excluded byte is ever read.
pub(super) fn compress_window(
    source: &Source,
    compressor: &mut Compressor,
    job: Job,
    zero_pages: bool,
    spare_frames: &Mutex<Vec<Vec<u8>>>,
    mut send: impl FnMut(Done) -> bool,
) -> bool {
    let frame_bytes = source.frame_bytes;
    let chunks: Vec<(u64, u64, Vec<ExcludedRun>)> = (0..job.len as u64)
        .step_by(frame_bytes as usize)
        .map(|start| {
            let len = frame_bytes.min(job.len as u64 - start);
            (start, len, runs_in_chunk(&job.excluded, start, len))
        })
        .collect();
    let window = if chunks.iter().all(|(_, len, runs)| covers(runs, *len)) {
        None
    } else {
        match source.window(job.offset, job.len, Vec::new()) {
            Ok(window) => Some(Arc::new(window)),
            Err(error) => return send((job.first_sequence, Err(error))),
        }
    };
    for (index, (start, len, mut excluded)) in chunks.into_iter().enumerate() {
        let repeated = parts_in_chunk(&job.repeated, start, len);
        let outcome = match &window {
            Some(window) if !covers(&excluded, len) => {
                let chunk = &window.bytes()[start as usize..(start + len) as usize];
                if add_zero_pages(chunk, &mut excluded, zero_pages, &repeated) {
                    let counted = Excluded::outside(&excluded, &repeated);
                    Ok(Outcome::Zero {
                        len,
                        excluded,
                        counted,
                    })
                } else {
                    let mut frame = spare_frames
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .pop()
                        .unwrap_or_default();
                    let offset = job.offset + start;
                    let compressed = if excluded.is_empty() {
                        compressor.compress_frame(chunk, offset, &mut frame)
                    } else {
                        compressor.compress_masked(chunk, &excluded, offset, &mut frame)
                    };
                    let counted = Excluded::outside(&excluded, &repeated);
                    compressed.map(|()| Outcome::Data {
                        frame,
                        window: Arc::clone(window),
                        start: start as usize,
                        len: len as usize,
                        excluded,
                        counted,
                    })
                }
            }
            _ => Ok(Outcome::Zero {
                len,
                counted: Excluded::outside(&excluded, &repeated),
                excluded,
            }),
        };
        if !send((job.first_sequence + index as u64, outcome)) {
            return false;
        }
    }
    true
}

/// Hashes and writes one chunk's outcome, and counts what was left out.
pub(super) fn write_outcome<W: Write>(
    outcome: Outcome,
    writer: &mut DumpWriter<W>,
    hasher: &mut Xxh64,
    excluded_bytes: &mut Excluded,
    spare_frames: &Mutex<Vec<Vec<u8>>>,
) -> Result<(), StreamError> {
    match outcome {
        Outcome::Zero {
            len,
            excluded,
            counted,
        } => {
            hasher.update_zeros(len);
            *excluded_bytes += counted;
            writer.zero_frame(len, &excluded)
        }
        Outcome::Data {
            frame,
            window,
            start,
            len,
            excluded,
            counted,
        } => {
            let chunk = &window.bytes()[start..start + len];
            if excluded.is_empty() {
                hasher.update(chunk);
            } else {
                let mut at = 0;
                for (from, to) in kept(&excluded, len as u64) {
                    hasher.update_zeros(from - at);
                    hasher.update(&chunk[from as usize..to as usize]);
                    at = to;
                }
                hasher.update_zeros(len as u64 - at);
            }
            *excluded_bytes += counted;
            let result = writer.data_frame(&frame, len as u64, &excluded);
            spare_frames
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(frame);
            result
        }
    }
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
        excluded: &mut Excluded,
    ) -> Result<(), StreamError> {
        while let Some(outcome) = self.pending.front_mut().and_then(Option::take) {
            self.pending.pop_front();
            self.written += 1;
            write_outcome(outcome, writer, hasher, excluded, self.spare_frames)?;
        }
        Ok(())
    }
}

//! The input of a stream: the plan's output, window by window, mapped
//! from the input file where it can be (on `/proc/vmcore`, touching mapped
//! pages is about a hundred times faster than 4 KiB `read`s) and otherwise
//! read with pread or put together from the plan's pieces.

use std::fs::File;
use std::os::unix::fs::FileExt;

use crate::plan::{Piece, Plan};
use crate::sys::Mapping;

use super::{ReadMethod, StreamError, DEFAULT_WINDOW_BYTES};

/// The plan's output, window by window: a window inside one range of the
/// input is mapped when the input can be mapped (the common case, and the
/// only one for a whole vmcore), else read; a window of pieces is put
/// together in a buffer.
pub(super) struct Source<'a> {
    file: &'a File,
    plan: &'a Plan,
    pub(super) size: u64,
    pub(super) frame_bytes: u64,
    /// Bytes per window: a whole number of frames.
    pub(super) window: u64,
    pub(super) method: ReadMethod,
}

/// mmap(2) maps from page boundaries only.
const PAGE_BYTES: u64 = 4096;

impl<'a> Source<'a> {
    pub(super) fn new(file: &'a File, plan: &'a Plan, frame_bytes: u64) -> Source<'a> {
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
    pub(super) fn for_each_window(
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
    pub(super) fn window(
        &self,
        offset: u64,
        len: usize,
        mut buffer: Vec<u8>,
    ) -> Result<Window, StreamError> {
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

/// A window of the input, mapped or read by a compression thread, and
/// shared with the writer until the chunks with data in it are hashed.
pub(super) enum Window {
    Mapped(Mapping),
    Read(Vec<u8>),
}

impl Window {
    pub(super) fn bytes(&self) -> &[u8] {
        match self {
            Window::Mapped(mapping) => mapping.as_slice(),
            Window::Read(buffer) => buffer,
        }
    }
}

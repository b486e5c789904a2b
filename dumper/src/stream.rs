//! Streaming a vmcore through zstd.
//!
//! The input is read through read-only mappings of large windows: on
//! `/proc/vmcore`, 4 KiB `read`s are about a hundred times slower than
//! touching mapped pages, because each read copies through the old kernel's
//! memory with a page-table setup per call. Memory stays bounded by the
//! window (mapped, not allocated: vmcore pages are the crashed kernel's own
//! memory) plus the compressor's state, whatever the size of the input.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use xxhash_rust::xxh64::Xxh64;
use zstd::stream::write::Encoder;
use zstd::zstd_safe::CParameter;

use crate::sys::Mapping;

/// Bytes mapped at a time. Large enough that mapping costs nothing next to
/// compression, small enough not to strain a 64 MiB capture kernel's
/// address-space bookkeeping.
pub const DEFAULT_WINDOW_BYTES: usize = 4 << 20;

/// zstd's window is capped at 1 MiB (2^20) for every level: the compressor's
/// tables scale with it, and a capture kernel has a few tens of MiB in all.
pub const MAX_WINDOW_LOG: u32 = 20;

#[derive(Clone, Copy, Debug)]
pub struct StreamOptions {
    pub level: i32,
    pub window_bytes: usize,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            level: 1,
            window_bytes: DEFAULT_WINDOW_BYTES,
        }
    }
}

/// Where a stream stands, handed to the progress callback after each window.
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
}

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("cannot read input at offset {offset}")]
    Read {
        offset: u64,
        #[source]
        source: io::Error,
    },
    #[error("cannot set up the zstd compressor at level {level}")]
    Compressor {
        level: i32,
        #[source]
        source: io::Error,
    },
    #[error("cannot write compressed output after {written} bytes")]
    Write {
        written: u64,
        #[source]
        source: io::Error,
    },
}

/// Counts what reaches the writer, so errors and the summary can say how far
/// the output got.
struct Counting<W> {
    inner: W,
    written: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Compresses `size` bytes of `input` from offset 0 into `output` as one
/// standard zstd frame (with content size and checksum), calling `progress`
/// after each window. Returns the summary and the writer, which the caller
/// still has to make durable.
pub fn compress_file<W: Write>(
    input: &File,
    size: u64,
    output: W,
    options: &StreamOptions,
    mut progress: impl FnMut(&Progress),
) -> Result<(StreamSummary, W), StreamError> {
    let start = Instant::now();
    let compressor_error = |source| StreamError::Compressor {
        level: options.level,
        source,
    };
    let counting = Counting {
        inner: output,
        written: 0,
    };
    let mut encoder = Encoder::new(counting, options.level).map_err(compressor_error)?;
    encoder
        .include_checksum(true)
        .and_then(|()| encoder.set_pledged_src_size(Some(size)))
        .and_then(|()| encoder.set_parameter(CParameter::WindowLog(MAX_WINDOW_LOG)))
        .map_err(compressor_error)?;

    let mut hasher = Xxh64::new(0);
    let window = options.window_bytes.max(4096);
    let mut read_method = ReadMethod::Mmap;
    let mut buffer = Vec::new();
    let mut offset = 0u64;
    while offset < size {
        let len = window.min(usize::try_from(size - offset).unwrap_or(window));
        let mapping = match read_method {
            ReadMethod::Mmap => match Mapping::new(input, offset, len) {
                Ok(mapping) => Some(mapping),
                Err(errno) => {
                    // Some inputs (pipes, a few procfs files, exotic
                    // filesystems) cannot be mapped; reading them is slower
                    // but still right.
                    log::warn!("cannot map input ({errno}); falling back to pread");
                    read_method = ReadMethod::Pread;
                    None
                }
            },
            ReadMethod::Pread => None,
        };
        let chunk: &[u8] = match &mapping {
            Some(mapping) => mapping.as_slice(),
            None => {
                buffer.resize(len, 0);
                input
                    .read_exact_at(&mut buffer, offset)
                    .map_err(|source| StreamError::Read { offset, source })?;
                &buffer
            }
        };
        hasher.update(chunk);
        encoder
            .write_all(chunk)
            .map_err(|source| StreamError::Write {
                written: encoder.get_ref().written,
                source,
            })?;
        drop(mapping);
        offset += len as u64;
        progress(&Progress {
            bytes_done: offset,
            bytes_total: size,
            elapsed: start.elapsed(),
        });
    }
    let counting = encoder
        .finish()
        .map_err(|source| StreamError::Write { written: 0, source })?;
    let summary = StreamSummary {
        input_bytes: size,
        output_bytes: counting.written,
        xxh64: hasher.digest(),
        elapsed: start.elapsed(),
        read_method,
    };
    Ok((summary, counting.inner))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample_input(len: usize) -> Vec<u8> {
        // Half zero pages, half pseudo-random text, like a vmcore.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        (0..len)
            .map(|i| {
                if (i / 4096) % 2 == 0 {
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

    #[test]
    fn output_is_a_standard_zstd_frame_of_the_input() {
        for (len, window) in [
            (0, 4096),
            (1, 4096),
            (4096 * 5 + 17, 8192),
            (3 << 20, 1 << 20),
        ] {
            let data = sample_input(len);
            let mut file = tempfile::tempfile().unwrap();
            file.write_all(&data).unwrap();
            let options = StreamOptions {
                level: 1,
                window_bytes: window,
            };
            let mut calls = 0;
            let (summary, out) =
                compress_file(&file, len as u64, Vec::new(), &options, |_| calls += 1).unwrap();
            assert_eq!(calls, len.div_ceil(window), "len {len}");
            assert_eq!(summary.read_method, ReadMethod::Mmap);
            assert_eq!(summary.output_bytes, out.len() as u64);
            assert_eq!(summary.xxh64, xxhash_rust::xxh64::xxh64(&data, 0));
            let mut decoded = Vec::new();
            zstd::stream::read::Decoder::new(&out[..])
                .unwrap()
                .read_to_end(&mut decoded)
                .unwrap();
            assert!(decoded == data, "round trip of {len} bytes");
        }
    }

    #[test]
    fn unmappable_input_falls_back_to_pread() {
        // procfs files cannot be mapped but can be read at an offset, like
        // the odd filesystem a host user might keep a vmcore on.
        let expected = std::fs::read("/proc/version").unwrap();
        let file = File::open("/proc/version").unwrap();
        let (summary, out) = compress_file(
            &file,
            expected.len() as u64,
            Vec::new(),
            &StreamOptions::default(),
            |_| {},
        )
        .unwrap();
        assert_eq!(summary.read_method, ReadMethod::Pread);
        assert_eq!(zstd::decode_all(&out[..]).unwrap(), expected);
    }

    #[test]
    fn write_failures_report_how_far_they_got() {
        #[derive(Debug)]
        struct Full(usize);
        impl Write for Full {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::from_raw_os_error(libc_enospc()));
                }
                let n = buf.len().min(self.0);
                self.0 -= n;
                Ok(n)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        fn libc_enospc() -> i32 {
            28
        }
        let data = sample_input(2 << 20);
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&data).unwrap();
        let options = StreamOptions {
            level: 1,
            window_bytes: 64 << 10,
        };
        let error = compress_file(&file, data.len() as u64, Full(1000), &options, |_| {})
            .expect_err("the sink is full");
        let StreamError::Write { written, source } = error else {
            panic!("expected a write error");
        };
        assert_eq!(written, 1000);
        assert_eq!(source.raw_os_error(), Some(28));
    }
}

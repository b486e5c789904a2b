//! The few system calls of this crate that need `unsafe`: mapping windows of
//! a file read-only. Each is wrapped in a safe type.

#![allow(unsafe_code)]

use std::ffi::c_void;
use std::fs::File;
use std::num::NonZeroUsize;
use std::ptr::NonNull;

use nix::sys::mman::{mmap, munmap, MapFlags, ProtFlags};

/// A read-only, private mapping of `len` bytes of a file at `offset`,
/// unmapped when dropped.
pub(crate) struct Mapping {
    address: NonNull<c_void>,
    len: usize,
}

impl Mapping {
    /// Maps `len` bytes of `file` at `offset`, which must be page-aligned.
    pub(crate) fn new(file: &File, offset: u64, len: usize) -> nix::Result<Mapping> {
        let size = NonZeroUsize::new(len).ok_or(nix::Error::EINVAL)?;
        let offset = i64::try_from(offset).map_err(|_| nix::Error::EOVERFLOW)?;
        // SAFETY: a fresh read-only private mapping chosen by the kernel
        // (no fixed address) cannot alias any memory Rust knows about. The
        // file must not shrink while mapped, or reads raise SIGBUS: callers
        // map /proc/vmcore, whose size is fixed, or dump files they read.
        let address = unsafe {
            mmap(
                None,
                size,
                ProtFlags::PROT_READ,
                MapFlags::MAP_PRIVATE | MapFlags::MAP_POPULATE,
                file,
                offset,
            )?
        };
        Ok(Mapping { address, len })
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        // SAFETY: the mapping is `len` readable bytes that live until `self`
        // is dropped, and nothing writes to a private read-only mapping.
        unsafe { std::slice::from_raw_parts(self.address.as_ptr().cast::<u8>(), self.len) }
    }
}

// SAFETY: the mapping is read-only and private: nothing can change the
// bytes behind it while it lives, so sharing `&Mapping` (and the slices it
// hands out) between threads, or moving it to another thread that unmaps
// it, is as safe as doing so with a `Box<[u8]>`.
unsafe impl Send for Mapping {}
// SAFETY: see `Send` above: only shared, immutable access is ever given out.
unsafe impl Sync for Mapping {}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `address`/`len` describe exactly the mapping made in
        // `new`, and no slice borrowed from it outlives `self`.
        if let Err(error) = unsafe { munmap(self.address, self.len) } {
            log::warn!("munmap of {} bytes failed: {error}", self.len);
        }
    }
}

/// Which parts of `sync_file_range(2)` to do.
#[derive(Clone, Copy)]
pub(crate) enum SyncRange {
    /// Start writeback of dirty pages in the range.
    Start,
    /// Wait for earlier writeback, write, and wait again: the range is on
    /// the device afterwards.
    Complete,
}

/// `sync_file_range(2)` on `file`; nix does not wrap it.
pub(crate) fn sync_file_range(
    file: &File,
    offset: u64,
    len: u64,
    how: SyncRange,
) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let flags = match how {
        SyncRange::Start => libc::SYNC_FILE_RANGE_WRITE,
        SyncRange::Complete => {
            libc::SYNC_FILE_RANGE_WAIT_BEFORE
                | libc::SYNC_FILE_RANGE_WRITE
                | libc::SYNC_FILE_RANGE_WAIT_AFTER
        }
    };
    let offset =
        i64::try_from(offset).map_err(|_| std::io::Error::from_raw_os_error(libc::EOVERFLOW))?;
    let len = i64::try_from(len).map_err(|_| std::io::Error::from_raw_os_error(libc::EOVERFLOW))?;
    // SAFETY: the call only reads its integer arguments; `file` keeps the
    // descriptor open for its duration.
    let rc = unsafe { libc::sync_file_range(file.as_raw_fd(), offset, len, flags) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

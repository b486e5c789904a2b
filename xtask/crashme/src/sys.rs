//! The system calls crashme makes that the standard library does not offer.
//! Each is a safe function; the `unsafe` stays in here.

#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// Turns the C convention (-1 and `errno`) into an `io::Result`.
fn check(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn c_string(text: &str) -> io::Result<CString> {
    CString::new(text).map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, error))
}

/// mount(2) with no flags and no data.
pub fn mount(source: &str, target: &str, fstype: &str) -> io::Result<()> {
    let (source, target, fstype) = (c_string(source)?, c_string(target)?, c_string(fstype)?);
    // SAFETY: the three pointers are NUL-terminated strings that outlive the
    // call, and a null `data` is allowed.
    let ret = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    check(ret.into()).map(drop)
}

/// mount(2) with flags and optional data: a filesystem to mount, or a
/// remount (`MS_REMOUNT`) of `target`.
pub fn mount_with(
    source: &str,
    target: &str,
    fstype: &str,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> io::Result<()> {
    let (source, target, fstype) = (c_string(source)?, c_string(target)?, c_string(fstype)?);
    let data = data.map(c_string).transpose()?;
    let data_ptr = data.as_ref().map_or(std::ptr::null(), |data| {
        data.as_ptr().cast::<libc::c_void>()
    });
    // SAFETY: the strings are NUL-terminated and outlive the call; `data`
    // is a NUL-terminated string or null.
    let ret = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            flags,
            data_ptr,
        )
    };
    check(ret.into()).map(drop)
}

/// finit_module(2) with no parameters.
pub fn finit_module(module: &File) -> io::Result<()> {
    // SAFETY: the descriptor is open for the call and the parameter string
    // is an empty NUL-terminated string.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_finit_module,
            module.as_raw_fd(),
            c"".as_ptr(),
            0 as libc::c_int,
        )
    };
    check(ret).map(drop)
}

/// memfd_create(2): an anonymous shmem file.
pub fn memfd_create(name: &str) -> io::Result<File> {
    let name = c_string(name)?;
    // SAFETY: `name` is a NUL-terminated string that outlives the call.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), 0) };
    check(fd.into())?;
    // SAFETY: the descriptor is new and owned by nobody else.
    Ok(unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// posix_fadvise(2) `POSIX_FADV_DONTNEED` on the whole file: its clean
/// pages leave the page cache.
pub fn drop_from_cache(file: &File) -> io::Result<()> {
    // SAFETY: the descriptor is open for the call; no memory is passed.
    let ret = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    if ret != 0 {
        return Err(io::Error::from_raw_os_error(ret));
    }
    Ok(())
}

/// A mapping made here. It stays mapped until [`Mapping::unmap`], for the
/// rest of the process if that is never called.
pub struct Mapping {
    address: usize,
    len: usize,
}

impl Mapping {
    /// mmap(2) of `len` bytes at an address of the kernel's choosing:
    /// anonymous memory when `file` is `None`.
    pub fn new(
        len: usize,
        prot: libc::c_int,
        flags: libc::c_int,
        file: Option<&File>,
    ) -> io::Result<Mapping> {
        let fd = file.map_or(-1, |file| file.as_raw_fd());
        // SAFETY: a fresh mapping at an address of the kernel's choosing
        // cannot affect memory Rust already uses.
        let address = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, flags, fd, 0) };
        if address == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapping {
            address: address as usize,
            len,
        })
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the mapping is `len` readable bytes until `unmap`, which
        // takes `self`, so no slice outlives it.
        unsafe { std::slice::from_raw_parts(self.address as *const u8, self.len) }
    }

    /// The bytes, for writing; the mapping must be writable.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`, and `&mut self` makes the slice exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.address as *mut u8, self.len) }
    }

    /// madvise(2) on the bytes `start..start + len` of the mapping.
    pub fn advise(&self, start: usize, len: usize, advice: libc::c_int) -> io::Result<()> {
        assert!(start + len <= self.len, "advice outside the mapping");
        // SAFETY: the range is inside the mapping; advice does not make
        // its memory invalid for the slices we hand out (no MADV_DONTNEED
        // or MADV_FREE is asked for here).
        let ret =
            unsafe { libc::madvise((self.address + start) as *mut libc::c_void, len, advice) };
        check(ret.into()).map(drop)
    }

    /// munmap(2): the pages go back to the kernel.
    pub fn unmap(self) -> io::Result<()> {
        // SAFETY: the mapping is ours, and `self` is gone, so no slice of
        // it remains.
        let ret = unsafe { libc::munmap(self.address as *mut libc::c_void, self.len) };
        check(ret.into()).map(drop)
    }
}

/// Maps `len` bytes of private anonymous memory that stays mapped for the
/// rest of the process, with transparent huge pages off so that khugepaged
/// never moves the pages to other frames behind our back.
pub fn map_anonymous(len: usize) -> io::Result<&'static mut [u8]> {
    // SAFETY: asking the kernel for a fresh private anonymous mapping at an
    // address of its choosing cannot affect memory Rust already uses.
    let address = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if address == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `address` is the start of the `len`-byte mapping made above.
    let ret = unsafe { libc::madvise(address, len, libc::MADV_NOHUGEPAGE) };
    check(ret.into())?;
    // SAFETY: the mapping is `len` readable and writable bytes, zero-filled,
    // aliased by nothing else, and never unmapped, so a `'static` exclusive
    // slice over it is sound.
    Ok(unsafe { std::slice::from_raw_parts_mut(address.cast::<u8>(), len) })
}

/// mlock(2): keeps `memory` resident.
pub fn lock(memory: &[u8]) -> io::Result<()> {
    // SAFETY: the range is a live slice; mlock does not access its content.
    let ret = unsafe { libc::mlock(memory.as_ptr().cast(), memory.len()) };
    check(ret.into()).map(drop)
}

/// kexec_file_load(2) with `KEXEC_FILE_ON_CRASH`: loads the capture kernel
/// into the crashkernel reservation. The length passed counts the NUL.
pub fn kexec_file_load_on_crash(kernel: &File, initrd: &File, cmdline: &CStr) -> io::Result<()> {
    let cmdline_len = cmdline.to_bytes_with_nul().len();
    // SAFETY: both descriptors are open for the duration of the call, and
    // `cmdline` is a NUL-terminated string of `cmdline_len` bytes.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_kexec_file_load,
            kernel.as_raw_fd(),
            initrd.as_raw_fd(),
            cmdline_len,
            cmdline.as_ptr(),
            libc::KEXEC_FILE_ON_CRASH as libc::c_ulong,
        )
    };
    check(ret).map(drop)
}

/// Flushes the filesystems and powers the machine off, which ends QEMU. If
/// that fails, PID 1 exits: the kernel then panics, and with `panic=-1` on
/// its command line it reboots, which ends QEMU (`-no-reboot`) as well.
pub fn power_off() -> ! {
    // SAFETY: sync and reboot take no pointers; as PID 1 we may call reboot.
    unsafe {
        libc::sync();
        libc::reboot(libc::RB_POWER_OFF);
    }
    std::process::exit(1)
}

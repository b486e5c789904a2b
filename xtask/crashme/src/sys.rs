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

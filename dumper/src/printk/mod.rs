//! The crashed kernel's log, read from its memory in a vmcore and written
//! out as `makedumpfile --dump-dmesg` does, in the form of makedumpfile
//! 1.7.5 and later (a caller column) or of 1.7.4 and earlier (none).
//!
//! Two formats are read, chosen by what VMCOREINFO describes, in the order
//! makedumpfile tries them:
//! - the lockless ring buffer of 5.10+ (`SYMBOL(prb)`,
//!   kernel/printk/printk_ringbuffer.{c,h}): a descriptor ring whose ids and
//!   states say which records are complete, an info array with each record's
//!   metadata, and a text ring of data blocks;
//! - the variable-length record buffer of 3.5–5.9 (`SYMBOL(log_buf)`):
//!   `struct printk_log` headers followed by their text, with a zero-length
//!   header marking where the writer wrapped to the start.
//!
//! Every structure layout comes from VMCOREINFO. The memory is untrusted:
//! struct sizes and ring sizes are capped, every field read is bounds
//! checked, and every walk is bounded by the ring's capacity. A record that
//! is incomplete or corrupt is skipped (lockless ring) or ends the walk
//! (legacy buffer), as makedumpfile does, rather than failing the whole log.
//!
//! The reading is split by format: `lockless` walks the ring of 5.10+,
//! `legacy` the older `log_buf`, and `format` writes the records as
//! makedumpfile does. This module holds what they share: the records, the
//! errors, and the bounds-checked readers of VMCOREINFO values and of
//! structure fields.

mod format;
mod legacy;
mod lockless;

use thiserror::Error;

use crate::bytes::OutOfBounds;
use crate::elf::ReadAt;
use crate::vmcore::{Vmcore, VmcoreError};
use crate::vmcoreinfo::VmcoreInfo;

pub use self::format::{write_dmesg, write_dmesg_with_caller_ids};
use self::legacy::read_legacy;
use self::lockless::read_lockless;

/// One log record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The kernel's sequence number (lockless ring); for the legacy buffer,
    /// which does not store one, the record's index in the walk.
    pub seq: u64,
    pub ts_nsec: u64,
    /// Syslog level, 0 (emerg) to 7 (debug).
    pub level: u8,
    pub facility: u8,
    /// The printk caller: bit 31 set for a CPU id (`C<n>`), clear for a
    /// thread id (`T<n>`). The lockless ring always records it; the legacy
    /// buffer only with CONFIG_PRINTK_CALLER, and it is `None` otherwise.
    pub caller_id: Option<u32>,
    /// The message without its trailing newline; it may contain newlines
    /// and arbitrary bytes.
    pub text: Vec<u8>,
}

/// Why the log could not be read.
#[derive(Debug, Error)]
pub enum PrintkError {
    #[error("the vmcore has no usable VMCOREINFO")]
    NoVmcoreinfo,
    #[error("VMCOREINFO describes no log buffer (neither SYMBOL(prb) nor SYMBOL(log_buf))")]
    NoLogBuffer,
    #[error("VMCOREINFO has SYMBOL(log_end): the pre-3.5 character log buffer is not supported")]
    UnsupportedLogEnd,
    #[error("VMCOREINFO lacks {key}")]
    MissingKey { key: String },
    #[error("{what} is {size} bytes, more than the limit of {limit}")]
    StructTooLarge {
        what: &'static str,
        size: u64,
        limit: u64,
    },
    #[error("{field} at offset {offset} does not fit in {what} of {size} bytes")]
    FieldOutOfBounds {
        what: &'static str,
        field: &'static str,
        offset: u64,
        size: u64,
    },
    #[error("{what} of 2^{bits} exceeds the limit of 2^{limit}")]
    RingTooLarge {
        what: &'static str,
        bits: u32,
        limit: u32,
    },
    #[error("log_buf_len {len} cannot hold a {header}-byte record header")]
    BadLogBufLen { len: i32, header: u64 },
    #[error("the address of {what} overflows ({base:#x} + {offset:#x})")]
    AddressOverflow {
        what: &'static str,
        base: u64,
        offset: u64,
    },
    #[error("cannot read {what} at {vaddr:#x}")]
    Read {
        what: &'static str,
        vaddr: u64,
        #[source]
        source: VmcoreError,
    },
    #[error("{field} lies outside the {what} bytes read")]
    FieldRead {
        what: &'static str,
        field: &'static str,
        #[source]
        source: OutOfBounds,
    },
}

/// Cap on the size of any printk structure read whole (the largest,
/// `printk_info`, is 88 bytes on x86_64).
pub const MAX_STRUCT_SIZE: u64 = 4096;
/// `log_buf_len` is at most 2^31 (LOG_BUF_LEN_MAX), with one descriptor per
/// 32 bytes of text (PRB_AVGBITS).
pub const MAX_DESC_COUNT_BITS: u32 = 26;
/// The text ring is at most LOG_BUF_LEN_MAX, 2^31 bytes.
pub const MAX_DATA_SIZE_BITS: u32 = 31;

/// Reads the log, from the lockless ring if VMCOREINFO describes one,
/// otherwise from the legacy `log_buf`.
pub fn read_log<R: ReadAt>(core: &Vmcore<R>) -> Result<Vec<Record>, PrintkError> {
    let info = core.vmcoreinfo().ok_or(PrintkError::NoVmcoreinfo)?;
    if let Some(prb) = info.symbol("prb") {
        return read_lockless(core, info, prb);
    }
    if let Some(log_buf) = info.symbol("log_buf") {
        if info.symbol("log_end").is_some() {
            return Err(PrintkError::UnsupportedLogEnd);
        }
        return read_legacy(core, info, log_buf);
    }
    Err(PrintkError::NoLogBuffer)
}

/// The reason of the last `panic()`: the text after "Kernel panic - not
/// syncing: " of the last record starting with it, up to the end of that
/// line; e.g. "sysrq triggered crash".
pub fn panic_message(records: &[Record]) -> Option<String> {
    const PREFIX: &[u8] = b"Kernel panic - not syncing: ";
    records.iter().rev().find_map(|record| {
        let rest = record.text.strip_prefix(PREFIX)?;
        let line = rest.split(|&b| b == b'\n').next().unwrap_or_default();
        Some(String::from_utf8_lossy(line).into_owned())
    })
}

/// A VMCOREINFO value the reader cannot do without.
fn need<T>(value: Option<T>, key: impl FnOnce() -> String) -> Result<T, PrintkError> {
    value.ok_or_else(|| PrintkError::MissingKey { key: key() })
}

fn need_offset(info: &VmcoreInfo, field: &str) -> Result<u64, PrintkError> {
    need(info.offset(field), || format!("OFFSET({field})"))
}

fn need_size(info: &VmcoreInfo, what: &'static str) -> Result<u64, PrintkError> {
    let size = need(info.size(what), || format!("SIZE({what})"))?;
    if size > MAX_STRUCT_SIZE {
        return Err(PrintkError::StructTooLarge {
            what,
            size,
            limit: MAX_STRUCT_SIZE,
        });
    }
    Ok(size)
}

fn need_symbol(info: &VmcoreInfo, name: &str) -> Result<u64, PrintkError> {
    need(info.symbol(name), || format!("SYMBOL({name})"))
}

fn add(what: &'static str, base: u64, offset: u64) -> Result<u64, PrintkError> {
    base.checked_add(offset)
        .ok_or(PrintkError::AddressOverflow { what, base, offset })
}

fn read_bytes<R: ReadAt>(
    core: &Vmcore<R>,
    what: &'static str,
    vaddr: u64,
    buf: &mut [u8],
) -> Result<(), PrintkError> {
    core.read_virt(vaddr, buf)
        .map_err(|source| PrintkError::Read {
            what,
            vaddr,
            source,
        })
}

fn read_u64<R: ReadAt>(
    core: &Vmcore<R>,
    what: &'static str,
    vaddr: u64,
) -> Result<u64, PrintkError> {
    let mut bytes = [0u8; 8];
    read_bytes(core, what, vaddr, &mut bytes)?;
    Ok(u64::from_le_bytes(bytes))
}

fn read_u32<R: ReadAt>(
    core: &Vmcore<R>,
    what: &'static str,
    vaddr: u64,
) -> Result<u32, PrintkError> {
    let mut bytes = [0u8; 4];
    read_bytes(core, what, vaddr, &mut bytes)?;
    Ok(u32::from_le_bytes(bytes))
}

/// Checks that a field of `width` bytes at `offset` fits in a structure of
/// `size` bytes, and returns the offset as an index.
fn field_at(
    what: &'static str,
    field: &'static str,
    offset: u64,
    width: u64,
    size: u64,
) -> Result<usize, PrintkError> {
    match offset.checked_add(width) {
        Some(end) if end <= size => Ok(offset as usize),
        _ => Err(PrintkError::FieldOutOfBounds {
            what,
            field,
            offset,
            size,
        }),
    }
}

/// Offsets of a nested field: the outer member's offset plus the inner one.
fn nested(
    what: &'static str,
    field: &'static str,
    outer: u64,
    inner: u64,
) -> Result<u64, PrintkError> {
    outer
        .checked_add(inner)
        .ok_or(PrintkError::FieldOutOfBounds {
            what,
            field,
            offset: outer,
            size: inner,
        })
}

/// A field read from a structure's bytes. The layouts were checked against
/// the structure sizes, and the buffers have those sizes, so an error here
/// is a bug in those checks; it fails the log rather than PID 1.
fn field<T>(
    what: &'static str,
    field: &'static str,
    read: Result<T, OutOfBounds>,
) -> Result<T, PrintkError> {
    read.map_err(|source| PrintkError::FieldRead {
        what,
        field,
        source,
    })
}

/// The text a walk may read in all: records in a ring do not overlap, so
/// their texts together fit in the ring. Corrupt records can overlap, and
/// each can claim 64 KiB of text; the budget keeps a small corrupt buffer
/// from turning into a huge read.
struct TextBudget {
    left: u64,
}

impl TextBudget {
    fn new(ring_size: u64) -> Self {
        TextBudget { left: ring_size }
    }

    /// Takes `len` bytes from the budget, or says that they do not fit.
    fn take(&mut self, len: u64) -> bool {
        match self.left.checked_sub(len) {
            Some(left) => {
                self.left = left;
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests;

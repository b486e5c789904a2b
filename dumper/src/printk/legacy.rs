//! The variable-length record buffer of Linux 3.5 to 5.9
//! (`SYMBOL(log_buf)`): `struct printk_log` headers followed by their text,
//! with a zero-length header marking where the writer wrapped to the start.
//! A record that is corrupt ends the walk, as makedumpfile does.

use crate::bytes::Bytes;
use crate::elf::ReadAt;
use crate::vmcore::Vmcore;
use crate::vmcoreinfo::VmcoreInfo;

use super::{
    add, field, field_at, need_offset, need_size, need_symbol, read_bytes, read_u32, read_u64,
    PrintkError, Record, TextBudget,
};

/// The structure read whole, by its name in VMCOREINFO's SIZE() and
/// OFFSET() entries (and in errors).
const LOG: &str = "printk_log";

/// Where each `struct printk_log` field is in the record header.
struct LegacyLayout {
    header: u64,
    ts_nsec: usize,
    len: usize,
    text_len: usize,
    caller_id: Option<usize>,
}

/// One legacy record header.
struct LegacyHeader {
    len: u64,
    text_len: u64,
    ts_nsec: u64,
    caller_id: Option<u32>,
    facility: u8,
    level: u8,
}

pub(super) fn read_legacy<R: ReadAt>(
    core: &Vmcore<R>,
    info: &VmcoreInfo,
    log_buf_symbol: u64,
) -> Result<Vec<Record>, PrintkError> {
    let header = need_size(info, LOG)?;
    let layout = LegacyLayout {
        header,
        ts_nsec: field_at(
            LOG,
            "ts_nsec",
            need_offset(info, "printk_log.ts_nsec")?,
            8,
            header,
        )?,
        len: field_at(LOG, "len", need_offset(info, "printk_log.len")?, 2, header)?,
        text_len: field_at(
            LOG,
            "text_len",
            need_offset(info, "printk_log.text_len")?,
            2,
            header,
        )?,
        caller_id: match info.offset("printk_log.caller_id") {
            Some(offset) => Some(field_at(LOG, "caller_id", offset, 4, header)?),
            None => None,
        },
    };
    let log_buf = read_u64(core, "log_buf", log_buf_symbol)?;
    // `int log_buf_len`, `u32 log_first_idx`, `u32 log_next_idx`.
    let log_buf_len = read_u32(core, "log_buf_len", need_symbol(info, "log_buf_len")?)? as i32;
    let first_idx = u64::from(read_u32(
        core,
        "log_first_idx",
        need_symbol(info, "log_first_idx")?,
    )?);
    let next_idx = u64::from(read_u32(
        core,
        "log_next_idx",
        need_symbol(info, "log_next_idx")?,
    )?);
    let buf_len = u64::try_from(log_buf_len)
        .ok()
        .filter(|&len| len >= header)
        .ok_or(PrintkError::BadLogBufLen {
            len: log_buf_len,
            header,
        })?;
    // The last index at which a whole header fits.
    let last = buf_len - header;

    let mut hdr_buf = vec![0u8; header as usize];
    let mut read_header = |pos: u64| -> Result<LegacyHeader, PrintkError> {
        let vaddr = add("log_buf[]", log_buf, pos)?;
        read_bytes(core, "printk_log record", vaddr, &mut hdr_buf)?;
        // struct printk_log has `u16 text_len; u16 dict_len; u8 facility;
        // u8 flags:5, level:3` with no VMCOREINFO entries for the last two.
        let hdr = Bytes::new(&hdr_buf);
        // A header that ends before them reads them as zero.
        let byte_after = |n: usize| hdr.u8(layout.text_len + 4 + n).unwrap_or(0);
        let caller_id = match layout.caller_id {
            Some(at) => Some(field(LOG, "caller_id", hdr.u32_le(at))?),
            None => None,
        };
        Ok(LegacyHeader {
            len: u64::from(field(LOG, "len", hdr.u16_le(layout.len))?),
            text_len: u64::from(field(LOG, "text_len", hdr.u16_le(layout.text_len))?),
            ts_nsec: field(LOG, "ts_nsec", hdr.u64_le(layout.ts_nsec))?,
            caller_id,
            facility: byte_after(0),
            level: byte_after(1) >> 5,
        })
    };

    let mut records = Vec::new();
    let mut budget = TextBudget::new(buf_len);
    // Every index the walk dumped, to cut the log at a cycle.
    let mut visited: Vec<u64> = Vec::new();
    if first_idx > last {
        log::warn!(
            "printk log_buf: log_first_idx {first_idx:#x} is outside the {buf_len}-byte buffer"
        );
        return Ok(records);
    }
    // Brent's cycle detection, as makedumpfile runs it alongside the walk.
    let mut slow = first_idx;
    let mut power = 2u64;
    let mut length = 0u64;
    let mut ptr = first_idx;
    while ptr != next_idx {
        let at_ptr = read_header(ptr)?;
        // A zero-length header marks the wrap: the record is the one at
        // the start of the buffer, and the walk continues after it.
        let (pos, hdr) = if at_ptr.len == 0 {
            (0, read_header(0)?)
        } else {
            (ptr, at_ptr)
        };
        let text_at = pos + layout.header;
        let len = hdr.text_len.min(buf_len - text_at);
        if !budget.take(len) {
            log::warn!("printk log_buf: records hold more text than the {buf_len}-byte buffer; stopping at index {ptr:#x}");
            break;
        }
        let mut text = vec![0u8; len as usize];
        if len > 0 {
            read_bytes(
                core,
                "printk_log text",
                add("log_buf[]", log_buf, text_at)?,
                &mut text,
            )?;
        }
        records.push(Record {
            seq: records.len() as u64,
            ts_nsec: hdr.ts_nsec,
            level: hdr.level,
            facility: hdr.facility,
            caller_id: hdr.caller_id,
            text,
        });
        visited.push(ptr);
        let next = pos + hdr.len;

        if length == power {
            length = 0;
            power *= 2;
            slow = ptr;
        }
        length += 1;
        if slow == next {
            // The walk came back to an index it dumped. makedumpfile then
            // rewrites the log as the records up to the cycle plus one turn
            // of it: the first `mu + lambda` records, where `lambda` is the
            // cycle's length and `mu` the first index in it.
            let lambda = length as usize;
            let sequence: Vec<u64> = visited.iter().copied().chain([next]).collect();
            let mu = sequence
                .iter()
                .zip(sequence.iter().skip(lambda))
                .position(|(a, b)| a == b)
                .unwrap_or(0);
            records.truncate(mu + lambda);
            log::warn!("printk log_buf: cycle at index {next:#x}; the buffer is corrupt");
            break;
        }
        if next > last {
            log::warn!("printk log_buf: index {next:#x} is outside the {buf_len}-byte buffer");
            break;
        }
        ptr = next;
    }
    Ok(records)
}

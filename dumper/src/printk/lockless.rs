//! The lockless ring buffer of Linux 5.10 and later (`SYMBOL(prb)`,
//! `kernel/printk/printk_ringbuffer.[ch]`): a descriptor ring whose ids and
//! states say which records are complete, an info array with each record's
//! metadata, and a text ring of data blocks. A record that is incomplete or
//! corrupt is skipped, as makedumpfile does.

use crate::bytes::Bytes;
use crate::elf::ReadAt;
use crate::vmcore::Vmcore;
use crate::vmcoreinfo::VmcoreInfo;

use super::{
    add, field, field_at, need_offset, need_size, nested, read_bytes, read_u64, PrintkError,
    Record, TextBudget, MAX_DATA_SIZE_BITS, MAX_DESC_COUNT_BITS,
};

/// Descriptors read per batch (at most this many bytes): they are read in
/// id order, so batches keep the reads few without holding the whole array
/// in memory.
const DESC_BATCH_BYTES: u64 = 64 << 10;

/// state_var: the top two bits are the state, the rest the descriptor id.
const DESC_FLAGS_SHIFT: u32 = 62;
pub(super) const DESC_ID_MASK: u64 = (1 << DESC_FLAGS_SHIFT) - 1;
const DESC_COMMITTED: u64 = 1;
const DESC_FINALIZED: u64 = 2;

/// The structures read whole, by their names in VMCOREINFO's SIZE() and
/// OFFSET() entries (and in errors).
const RB: &str = "printk_ringbuffer";
const DESC: &str = "prb_desc";
const INFO: &str = "printk_info";

/// What precedes a message in the lockless ring's text blocks: the
/// descriptor id, an `unsigned long`.
const DATA_BLOCK_ID_SIZE: u64 = 8;

/// Where each lockless ring field is, as byte indexes into the structure
/// it is read from; each was checked to fit in that structure.
struct LocklessLayout {
    rb_size: u64,
    count_bits: usize,
    descs: usize,
    infos: usize,
    head_id: usize,
    tail_id: usize,
    size_bits: usize,
    data: usize,
    desc_size: u64,
    state_var: usize,
    lpos_begin: usize,
    lpos_next: usize,
    info_size: u64,
    seq: usize,
    ts_nsec: usize,
    text_len: usize,
    caller_id: Option<usize>,
}

impl LocklessLayout {
    fn from_vmcoreinfo(info: &VmcoreInfo) -> Result<Self, PrintkError> {
        let rb_size = need_size(info, RB)?;
        let desc_size = need_size(info, DESC)?;
        let info_size = need_size(info, INFO)?;
        let desc_ring = need_offset(info, "printk_ringbuffer.desc_ring")?;
        let text_ring = need_offset(info, "printk_ringbuffer.text_data_ring")?;
        let counter = need_offset(info, "atomic_long_t.counter")?;
        let in_rb = |field: &'static str, outer: u64, key: &str, width: u64| {
            let offset = nested(RB, field, outer, need_offset(info, key)?)?;
            field_at(RB, field, offset, width, rb_size)
        };
        let count_bits = in_rb(
            "desc_ring.count_bits",
            desc_ring,
            "prb_desc_ring.count_bits",
            4,
        )?;
        let descs = in_rb("desc_ring.descs", desc_ring, "prb_desc_ring.descs", 8)?;
        let infos = in_rb("desc_ring.infos", desc_ring, "prb_desc_ring.infos", 8)?;
        let head = nested(
            RB,
            "desc_ring.head_id",
            desc_ring,
            need_offset(info, "prb_desc_ring.head_id")?,
        )?;
        let head_id = field_at(
            RB,
            "desc_ring.head_id",
            nested(RB, "desc_ring.head_id", head, counter)?,
            8,
            rb_size,
        )?;
        let tail = nested(
            RB,
            "desc_ring.tail_id",
            desc_ring,
            need_offset(info, "prb_desc_ring.tail_id")?,
        )?;
        let tail_id = field_at(
            RB,
            "desc_ring.tail_id",
            nested(RB, "desc_ring.tail_id", tail, counter)?,
            8,
            rb_size,
        )?;
        let size_bits = in_rb(
            "text_data_ring.size_bits",
            text_ring,
            "prb_data_ring.size_bits",
            4,
        )?;
        let data = in_rb("text_data_ring.data", text_ring, "prb_data_ring.data", 8)?;

        let state = nested(
            DESC,
            "state_var",
            need_offset(info, "prb_desc.state_var")?,
            counter,
        )?;
        let state_var = field_at(DESC, "state_var", state, 8, desc_size)?;
        let lpos = need_offset(info, "prb_desc.text_blk_lpos")?;
        let begin = nested(
            DESC,
            "text_blk_lpos.begin",
            lpos,
            need_offset(info, "prb_data_blk_lpos.begin")?,
        )?;
        let lpos_begin = field_at(DESC, "text_blk_lpos.begin", begin, 8, desc_size)?;
        let next = nested(
            DESC,
            "text_blk_lpos.next",
            lpos,
            need_offset(info, "prb_data_blk_lpos.next")?,
        )?;
        let lpos_next = field_at(DESC, "text_blk_lpos.next", next, 8, desc_size)?;

        let in_info = |field: &'static str, width: u64| {
            field_at(
                INFO,
                field,
                need_offset(info, &format!("printk_info.{field}"))?,
                width,
                info_size,
            )
        };
        let caller_id = match info.offset("printk_info.caller_id") {
            Some(offset) => Some(field_at(INFO, "caller_id", offset, 4, info_size)?),
            None => None,
        };
        Ok(LocklessLayout {
            rb_size,
            count_bits,
            descs,
            infos,
            head_id,
            tail_id,
            size_bits,
            data,
            desc_size,
            state_var,
            lpos_begin,
            lpos_next,
            info_size,
            seq: in_info("seq", 8)?,
            ts_nsec: in_info("ts_nsec", 8)?,
            text_len: in_info("text_len", 2)?,
            caller_id,
        })
    }
}

/// The descriptor array, read a batch of slots at a time.
struct DescReader<'a, R> {
    core: &'a Vmcore<R>,
    base: u64,
    size: u64,
    count: u64,
    first_slot: u64,
    cached: u64,
    bytes: Vec<u8>,
}

impl<R: ReadAt> DescReader<'_, R> {
    fn get(&mut self, slot: u64) -> Result<Bytes<'_>, PrintkError> {
        if slot < self.first_slot || slot - self.first_slot >= self.cached {
            // A descriptor is at least one byte: SIZE(prb_desc) = 0 would
            // make every field check fail before this.
            let n = (DESC_BATCH_BYTES / self.size).clamp(1, self.count - slot);
            // slot < count <= 2^26 and size <= MAX_STRUCT_SIZE: no overflow.
            let vaddr = add("prb_desc_ring.descs[]", self.base, slot * self.size)?;
            self.bytes.resize((n * self.size) as usize, 0);
            read_bytes(self.core, "prb_desc_ring.descs[]", vaddr, &mut self.bytes)?;
            self.first_slot = slot;
            self.cached = n;
        }
        let at = ((slot - self.first_slot) * self.size) as usize;
        field(
            "prb_desc_ring.descs[]",
            "descriptor",
            Bytes::new(&self.bytes).sub(at, self.size as usize),
        )
    }
}

pub(super) fn read_lockless<R: ReadAt>(
    core: &Vmcore<R>,
    info: &VmcoreInfo,
    prb_symbol: u64,
) -> Result<Vec<Record>, PrintkError> {
    let layout = LocklessLayout::from_vmcoreinfo(info)?;
    let rb_addr = read_u64(core, "prb", prb_symbol)?;
    let mut rb_buf = vec![0u8; layout.rb_size as usize];
    read_bytes(core, "printk_ringbuffer", rb_addr, &mut rb_buf)?;
    let rb = Bytes::new(&rb_buf);

    let count_bits = field(RB, "desc_ring.count_bits", rb.u32_le(layout.count_bits))?;
    if count_bits > MAX_DESC_COUNT_BITS {
        return Err(PrintkError::RingTooLarge {
            what: "prb_desc_ring.count_bits",
            bits: count_bits,
            limit: MAX_DESC_COUNT_BITS,
        });
    }
    let size_bits = field(RB, "text_data_ring.size_bits", rb.u32_le(layout.size_bits))?;
    if size_bits > MAX_DATA_SIZE_BITS {
        return Err(PrintkError::RingTooLarge {
            what: "prb_data_ring.size_bits",
            bits: size_bits,
            limit: MAX_DATA_SIZE_BITS,
        });
    }
    let count = 1u64 << count_bits;
    let data_size = 1u64 << size_bits;
    let infos = field(RB, "desc_ring.infos", rb.u64_le(layout.infos))?;
    let data = field(RB, "text_data_ring.data", rb.u64_le(layout.data))?;
    let head_id = field(RB, "desc_ring.head_id", rb.u64_le(layout.head_id))? & DESC_ID_MASK;
    let tail_id = field(RB, "desc_ring.tail_id", rb.u64_le(layout.tail_id))? & DESC_ID_MASK;

    // makedumpfile walks from tail_id to head_id inclusive. A ring never
    // holds more than `count` descriptors, so a longer distance means a
    // corrupt head or tail; only the newest `count` ids can then still be
    // in the ring, and the walk starts at the oldest of them.
    let distance = head_id.wrapping_sub(tail_id) & DESC_ID_MASK;
    let (first_id, n_ids) = if distance < count {
        (tail_id, distance + 1)
    } else {
        log::warn!(
            "printk ring: tail id {tail_id:#x} is {distance} ids behind head id {head_id:#x}, \
             more than the {count} descriptors; reading the newest {count}"
        );
        (head_id.wrapping_sub(count - 1) & DESC_ID_MASK, count)
    };

    let mut descs = DescReader {
        core,
        base: field(RB, "desc_ring.descs", rb.u64_le(layout.descs))?,
        size: layout.desc_size,
        count,
        first_slot: 0,
        cached: 0,
        bytes: Vec::new(),
    };
    let mut info_buf = vec![0u8; layout.info_size as usize];
    let mut records = Vec::new();
    let mut budget = TextBudget::new(data_size);
    for i in 0..n_ids {
        let id = first_id.wrapping_add(i) & DESC_ID_MASK;
        let slot = id % count;
        let desc = descs.get(slot)?;
        let state_var = field(DESC, "state_var", desc.u64_le(layout.state_var))?;
        // Skip what is not committed or finalized, including a slot that
        // holds another id (desc_miss): reserved records are being written,
        // reusable ones have lost their data.
        let state = state_var >> DESC_FLAGS_SHIFT;
        if state_var & DESC_ID_MASK != id || (state != DESC_COMMITTED && state != DESC_FINALIZED) {
            continue;
        }
        let mut begin = field(DESC, "text_blk_lpos.begin", desc.u64_le(layout.lpos_begin))?;
        let mut next = field(DESC, "text_blk_lpos.next", desc.u64_le(layout.lpos_next))?;
        begin %= data_size;
        next %= data_size;
        // A data-less record (empty text, or text dropped for lack of
        // space) has equal positions.
        if begin == next {
            continue;
        }

        // slot < 2^26 and info_size <= MAX_STRUCT_SIZE: no overflow.
        let info_addr = add("prb_desc_ring.infos[]", infos, slot * layout.info_size)?;
        read_bytes(core, "prb_desc_ring.infos[]", info_addr, &mut info_buf)?;
        let info_rec = Bytes::new(&info_buf);
        let text_len = u64::from(field(INFO, "text_len", info_rec.u16_le(layout.text_len))?);

        // A block that would have wrapped is stored at the start of the
        // ring; its data follows the descriptor id. Kernels with the change
        // that stops "perfectly fitting records" from wrapping also let a
        // block end exactly at the end of the ring, which makedumpfile 1.7.2
        // takes for a wrapped block; older kernels never end a block there,
        // so reading such a block in place changes nothing for them.
        if next == 0 {
            next = data_size;
        } else if begin > next {
            begin = 0;
        }
        begin += DATA_BLOCK_ID_SIZE;
        // The text cannot extend past its block. makedumpfile compares in
        // unsigned arithmetic, so a block shorter than its id leaves the
        // length alone; the read is then kept inside the ring.
        let mut len = match next.checked_sub(begin) {
            Some(block) => text_len.min(block),
            None => text_len,
        };
        len = len.min(data_size.saturating_sub(begin));
        if !budget.take(len) {
            log::warn!("printk ring: records hold more text than the {data_size}-byte ring; stopping at id {id:#x}");
            break;
        }
        let mut text = vec![0u8; len as usize];
        if len > 0 {
            let text_addr = add("prb_data_ring.data[]", data, begin)?;
            read_bytes(core, "prb_data_ring.data[]", text_addr, &mut text)?;
        }

        // struct printk_info has `u16 text_len; u8 facility; u8 flags:5,
        // level:3` with no VMCOREINFO entries for the last two.
        // A structure that ends before them reads them as zero.
        let byte_after = |n: usize| info_rec.u8(layout.text_len + 2 + n).unwrap_or(0);
        let caller_id = match layout.caller_id {
            Some(at) => Some(field(INFO, "caller_id", info_rec.u32_le(at))?),
            None => None,
        };
        records.push(Record {
            seq: field(INFO, "seq", info_rec.u64_le(layout.seq))?,
            ts_nsec: field(INFO, "ts_nsec", info_rec.u64_le(layout.ts_nsec))?,
            level: byte_after(1) >> 5,
            facility: byte_after(0),
            caller_id,
            text,
        });
    }
    Ok(records)
}

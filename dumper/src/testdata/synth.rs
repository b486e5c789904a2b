//! Builders for synthetic vmcores: an ELF core with a PT_NOTE and PT_LOADs,
//! a model of the crashed kernel's memory (kernel image mapped at
//! `__START_KERNEL_map`, RAM in the direct map), and printk logs written into
//! it the way the kernel writes them (the lockless ring buffer of
//! kernel/printk/printk_ringbuffer.c and the legacy `log_buf` of 3.5–5.9).
//!
//! The layouts are driven by the same offsets the builders put into
//! VMCOREINFO, so tests can move fields around and check that the reader
//! follows VMCOREINFO rather than assumptions.

use std::collections::VecDeque;

use super::write;

/// `__START_KERNEL_map` on x86_64.
pub const START_KERNEL_MAP: u64 = 0xffff_ffff_8000_0000;
/// The direct map's base with 4-level paging and no memory KASLR.
pub const PAGE_OFFSET: u64 = 0xffff_8880_0000_0000;
/// Where the kernel image sits, virtually and physically (phys_base 0).
pub const KERNEL_VADDR: u64 = 0xffff_ffff_8100_0000;
pub const KERNEL_PADDR: u64 = KERNEL_VADDR - START_KERNEL_MAP;
/// Physical start of the RAM segment holding dynamically allocated data.
pub const RAM_PADDR: u64 = 0x0400_0000;

/// An ELF64 x86_64 core file: notes in one PT_NOTE, then PT_LOADs.
#[derive(Default)]
pub struct CoreBuilder {
    notes: Vec<u8>,
    loads: Vec<(u64, u64, Vec<u8>, u64)>,
}

impl CoreBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn note(&mut self, name: &[u8], note_type: u32, desc: &[u8]) {
        self.notes.extend(write::note(name, note_type, desc));
    }

    /// Zeroes after the notes, as older kexec-tools left in note segments.
    pub fn note_padding(&mut self, len: usize) {
        self.notes.resize(self.notes.len() + len, 0);
    }

    pub fn load(&mut self, vaddr: u64, paddr: u64, data: Vec<u8>) {
        let mem_size = data.len() as u64;
        self.loads.push((vaddr, paddr, data, mem_size));
    }

    /// A PT_LOAD whose memory size exceeds its file size: the rest reads as
    /// zeroes.
    pub fn load_with_mem_size(&mut self, vaddr: u64, paddr: u64, data: Vec<u8>, mem_size: u64) {
        self.loads.push((vaddr, paddr, data, mem_size));
    }

    /// The core file: memory 16-byte aligned after the notes.
    pub fn build(&self) -> Vec<u8> {
        let loads: Vec<write::Load> = self
            .loads
            .iter()
            .map(|(vaddr, paddr, data, mem_size)| write::Load {
                vaddr: *vaddr,
                paddr: *paddr,
                data,
                mem_size: *mem_size,
            })
            .collect();
        write::core_file(&self.notes, &loads, 16)
    }
}

/// The crashed kernel's memory as kexec lays it out in a vmcore: the kernel
/// image (static variables) through `__START_KERNEL_map`, RAM through the
/// direct map; plus the VMCOREINFO text describing it.
pub struct Memory {
    kernel: Vec<u8>,
    ram: Vec<u8>,
    vmcoreinfo: String,
}

impl Default for Memory {
    fn default() -> Self {
        Self::new()
    }
}

impl Memory {
    /// Memory that makedumpfile also accepts: with page tables and a
    /// memory model, which make it some 30 KiB larger than [`Memory::lean`].
    pub fn new() -> Self {
        let mut memory = Self::lean();
        memory.page_tables();
        // A flat mem_map, only so that makedumpfile's start-up, which wants
        // to know the memory model even for --dump-dmesg, succeeds.
        let mem_map = memory.alloc_kernel(8);
        let pages = memory.alloc_ram(64);
        memory.write_u64(mem_map, pages);
        memory.info(&format!("SYMBOL(mem_map)={mem_map:x}"));
        memory.info("SIZE(page)=64");
        memory.info("OFFSET(page.flags)=0");
        memory.info("OFFSET(page._refcount)=52");
        memory.info("OFFSET(page.mapping)=24");
        memory
    }

    /// Only what lifeboat's reader needs, for small fuzz seeds.
    pub fn lean() -> Self {
        let mut memory = Memory {
            kernel: Vec::new(),
            ram: Vec::new(),
            vmcoreinfo: String::new(),
        };
        memory.info("OSRELEASE=6.1.0-synthetic");
        memory.info("BUILD-ID=0123456789abcdef0123456789abcdef01234567");
        memory.info("PAGESIZE=4096");
        memory.info("NUMBER(phys_base)=0");
        memory.info("KERNELOFFSET=0");
        memory.info("CRASHTIME=1700000000");
        // The first bytes of each region stay unused so that no object sits
        // at a region boundary by accident.
        memory.kernel.resize(64, 0);
        memory.ram.resize(64, 0);
        // init_uts_ns, whose release makedumpfile checks against OSRELEASE:
        // struct new_utsname is six 65-byte strings, the release third.
        let uts = memory.alloc_kernel(6 * 65);
        memory.write(uts, b"Linux");
        memory.write(uts + 65, b"synthetic");
        memory.write(uts + 130, b"6.1.0-synthetic");
        memory.write(uts + 260, b"x86_64");
        memory.info(&format!("SYMBOL(init_uts_ns)={uts:x}"));
        memory.info("OFFSET(uts_namespace.name)=0");
        memory
    }

    /// 4-level page tables mapping each region with one 2 MiB page, for
    /// tools that translate addresses through `init_top_pgt` (makedumpfile
    /// does, for every kernel virtual address).
    fn page_tables(&mut self) {
        const TABLE: u64 = 0x3; // present, writable
        const HUGE: u64 = 0x83; // present, writable, PSE
        let pgd = self.alloc_kernel_aligned(4096, 4096);
        let map = |memory: &mut Memory, vaddr: u64, paddr: u64| {
            let pud = memory.alloc_ram_aligned(4096, 4096);
            let pmd = memory.alloc_ram_aligned(4096, 4096);
            let index = |shift: u32| (vaddr >> shift) & 511;
            memory.write_u64(pgd + index(39) * 8, (pud - PAGE_OFFSET) | TABLE);
            memory.write_u64(pud + index(30) * 8, (pmd - PAGE_OFFSET) | TABLE);
            memory.write_u64(pmd + index(21) * 8, paddr | HUGE);
        };
        map(self, KERNEL_VADDR, KERNEL_PADDR);
        map(self, PAGE_OFFSET + RAM_PADDR, RAM_PADDR);
        self.info(&format!("SYMBOL(init_top_pgt)={pgd:x}"));
        self.info("NUMBER(pgtable_l5_enabled)=0");
    }

    /// Appends a `KEY=VALUE` line to VMCOREINFO.
    pub fn info(&mut self, line: &str) {
        self.vmcoreinfo.push_str(line);
        self.vmcoreinfo.push('\n');
    }

    /// Removes the lines of `key`, e.g. `"SYMBOL(prb)"`.
    pub fn remove_info(&mut self, key: &str) {
        let prefix = format!("{key}=");
        self.vmcoreinfo = self
            .vmcoreinfo
            .lines()
            .filter(|line| !line.starts_with(&prefix))
            .map(|line| format!("{line}\n"))
            .collect();
    }

    pub fn vmcoreinfo(&self) -> &str {
        &self.vmcoreinfo
    }

    /// A static variable in the kernel image.
    pub fn alloc_kernel(&mut self, size: usize) -> u64 {
        self.alloc_kernel_aligned(size, 64)
    }

    fn alloc_kernel_aligned(&mut self, size: usize, align: usize) -> u64 {
        let at = self.kernel.len().next_multiple_of(align);
        self.kernel.resize(at + size, 0);
        assert!(
            self.kernel.len() <= 2 << 20,
            "the kernel image is mapped with one 2 MiB page"
        );
        KERNEL_VADDR + at as u64
    }

    /// Memory from the allocator, addressed through the direct map.
    pub fn alloc_ram(&mut self, size: usize) -> u64 {
        self.alloc_ram_aligned(size, 64)
    }

    fn alloc_ram_aligned(&mut self, size: usize, align: usize) -> u64 {
        let at = self.ram.len().next_multiple_of(align);
        self.ram.resize(at + size, 0);
        assert!(
            self.ram.len() <= 2 << 20,
            "RAM is mapped with one 2 MiB page"
        );
        PAGE_OFFSET + RAM_PADDR + at as u64
    }

    pub fn write(&mut self, vaddr: u64, bytes: &[u8]) {
        let (region, at) = if vaddr >= START_KERNEL_MAP {
            (&mut self.kernel, vaddr - KERNEL_VADDR)
        } else {
            (&mut self.ram, vaddr - PAGE_OFFSET - RAM_PADDR)
        };
        let at = at as usize;
        region[at..at + bytes.len()].copy_from_slice(bytes);
    }

    pub fn write_u16(&mut self, vaddr: u64, value: u16) {
        self.write(vaddr, &value.to_le_bytes());
    }

    pub fn write_u32(&mut self, vaddr: u64, value: u32) {
        self.write(vaddr, &value.to_le_bytes());
    }

    pub fn write_u64(&mut self, vaddr: u64, value: u64) {
        self.write(vaddr, &value.to_le_bytes());
    }

    /// The core: a PRSTATUS-like note, VMCOREINFO, the kernel image and the
    /// RAM segment.
    pub fn build(&self) -> Vec<u8> {
        let mut core = CoreBuilder::new();
        core.note(b"CORE", 1, &[0; 336]);
        core.note(b"VMCOREINFO", 0, self.vmcoreinfo.as_bytes());
        core.load(KERNEL_VADDR, KERNEL_PADDR, self.kernel.clone());
        core.load(PAGE_OFFSET + RAM_PADDR, RAM_PADDR, self.ram.clone());
        core.build()
    }
}

/// One message as printk stores it.
#[derive(Clone, Debug)]
pub struct Msg {
    pub text: Vec<u8>,
    pub ts_nsec: u64,
    pub caller_id: u32,
    pub level: u8,
    pub facility: u8,
}

impl Msg {
    pub fn new(ts_nsec: u64, text: &[u8]) -> Self {
        Msg {
            text: text.to_vec(),
            ts_nsec,
            caller_id: 1,
            level: 6,
            facility: 0,
        }
    }

    pub fn caller(mut self, caller_id: u32) -> Self {
        self.caller_id = caller_id;
        self
    }

    pub fn level(mut self, level: u8) -> Self {
        self.level = level;
        self
    }
}

/// Struct sizes and field offsets of the lockless ring buffer, as
/// VMCOREINFO reports them.
#[derive(Clone, Debug)]
pub struct PrbLayout {
    pub rb_size: u64,
    pub rb_desc_ring: u64,
    pub rb_text_data_ring: u64,
    pub rb_fail: u64,
    pub dr_count_bits: u64,
    pub dr_descs: u64,
    pub dr_infos: u64,
    pub dr_head_id: u64,
    pub dr_tail_id: u64,
    pub desc_size: u64,
    pub desc_state_var: u64,
    pub desc_text_blk_lpos: u64,
    pub lpos_begin: u64,
    pub lpos_next: u64,
    pub info_size: u64,
    pub info_seq: u64,
    pub info_ts_nsec: u64,
    pub info_text_len: u64,
    pub info_caller_id: u64,
    pub info_dev_info: u64,
    pub data_size_bits: u64,
    pub data_data: u64,
    pub data_head_lpos: u64,
    pub data_tail_lpos: u64,
    pub counter: u64,
}

impl PrbLayout {
    /// x86_64 Linux 6.1.
    pub fn linux_6_1() -> Self {
        PrbLayout {
            rb_size: 88,
            rb_desc_ring: 0,
            rb_text_data_ring: 48,
            rb_fail: 80,
            dr_count_bits: 0,
            dr_descs: 8,
            dr_infos: 16,
            dr_head_id: 24,
            dr_tail_id: 32,
            desc_size: 24,
            desc_state_var: 0,
            desc_text_blk_lpos: 8,
            lpos_begin: 0,
            lpos_next: 8,
            info_size: 88,
            info_seq: 0,
            info_ts_nsec: 8,
            info_text_len: 16,
            info_caller_id: 20,
            info_dev_info: 24,
            data_size_bits: 0,
            data_data: 8,
            data_head_lpos: 16,
            data_tail_lpos: 24,
            counter: 0,
        }
    }

    /// Every structure padded and reordered, so that a reader relying on
    /// the 6.1 layout instead of VMCOREINFO reads garbage.
    pub fn shuffled() -> Self {
        // With the counter at 8, each atomic_long_t takes 16 bytes.
        PrbLayout {
            rb_size: 160,
            rb_desc_ring: 88,
            rb_text_data_ring: 16,
            rb_fail: 0,
            dr_count_bits: 36,
            dr_descs: 16,
            dr_infos: 24,
            dr_head_id: 40,
            dr_tail_id: 0,
            desc_size: 48,
            desc_state_var: 32,
            desc_text_blk_lpos: 8,
            lpos_begin: 8,
            lpos_next: 0,
            info_size: 120,
            info_seq: 32,
            info_ts_nsec: 16,
            info_text_len: 64,
            info_caller_id: 8,
            info_dev_info: 72,
            data_size_bits: 48,
            data_data: 16,
            data_head_lpos: 24,
            data_tail_lpos: 32,
            counter: 8,
        }
    }

    fn vmcoreinfo_lines(&self, memory: &mut Memory, prb: u64) {
        let lines = [
            format!("SYMBOL(prb)={prb:x}"),
            format!("SIZE(printk_ringbuffer)={}", self.rb_size),
            format!("OFFSET(printk_ringbuffer.desc_ring)={}", self.rb_desc_ring),
            format!(
                "OFFSET(printk_ringbuffer.text_data_ring)={}",
                self.rb_text_data_ring
            ),
            format!("OFFSET(printk_ringbuffer.fail)={}", self.rb_fail),
            format!("SIZE(prb_desc_ring)={}", self.dr_tail_id + 16),
            format!("OFFSET(prb_desc_ring.count_bits)={}", self.dr_count_bits),
            format!("OFFSET(prb_desc_ring.descs)={}", self.dr_descs),
            format!("OFFSET(prb_desc_ring.infos)={}", self.dr_infos),
            format!("OFFSET(prb_desc_ring.head_id)={}", self.dr_head_id),
            format!("OFFSET(prb_desc_ring.tail_id)={}", self.dr_tail_id),
            format!("SIZE(prb_desc)={}", self.desc_size),
            format!("OFFSET(prb_desc.state_var)={}", self.desc_state_var),
            format!("OFFSET(prb_desc.text_blk_lpos)={}", self.desc_text_blk_lpos),
            "SIZE(prb_data_blk_lpos)=16".to_string(),
            format!("OFFSET(prb_data_blk_lpos.begin)={}", self.lpos_begin),
            format!("OFFSET(prb_data_blk_lpos.next)={}", self.lpos_next),
            format!("SIZE(printk_info)={}", self.info_size),
            format!("OFFSET(printk_info.seq)={}", self.info_seq),
            format!("OFFSET(printk_info.ts_nsec)={}", self.info_ts_nsec),
            format!("OFFSET(printk_info.text_len)={}", self.info_text_len),
            format!("OFFSET(printk_info.caller_id)={}", self.info_caller_id),
            format!("OFFSET(printk_info.dev_info)={}", self.info_dev_info),
            "SIZE(dev_printk_info)=64".to_string(),
            "OFFSET(dev_printk_info.subsystem)=0".to_string(),
            "LENGTH(printk_info_subsystem)=16".to_string(),
            "OFFSET(dev_printk_info.device)=16".to_string(),
            "LENGTH(printk_info_device)=48".to_string(),
            "SIZE(prb_data_ring)=32".to_string(),
            format!("OFFSET(prb_data_ring.size_bits)={}", self.data_size_bits),
            format!("OFFSET(prb_data_ring.data)={}", self.data_data),
            format!("OFFSET(prb_data_ring.head_lpos)={}", self.data_head_lpos),
            format!("OFFSET(prb_data_ring.tail_lpos)={}", self.data_tail_lpos),
            "SIZE(atomic_long_t)=8".to_string(),
            format!("OFFSET(atomic_long_t.counter)={}", self.counter),
            "SIZE(latched_seq)=24".to_string(),
            "OFFSET(latched_seq.val)=8".to_string(),
        ];
        for line in lines {
            memory.info(&line);
        }
    }
}

/// Descriptor states, kernel/printk/printk_ringbuffer.h.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DescState {
    Reserved = 0,
    Committed = 1,
    Finalized = 2,
    Reusable = 3,
}

const DESC_ID_MASK: u64 = (1 << 62) - 1;
const FAILED_LPOS: u64 = 0x1;
const NO_LPOS: u64 = 0x3;

#[derive(Clone, Copy, Default)]
struct Desc {
    state_var: u64,
    begin: u64,
    next: u64,
}

#[derive(Clone, Default)]
struct Info {
    seq: u64,
    ts_nsec: u64,
    text_len: u16,
    facility: u8,
    flags_level: u8,
    caller_id: u32,
}

/// A model of the lockless printk ring buffer that stores records the way
/// prb_reserve()/prb_commit()/prb_final_commit() do: descriptor ids starting
/// at DESC0_ID, logical positions starting at BLK0_LPOS, data blocks of
/// `ALIGN(8 + text_len, 8)` bytes that move to the start of the ring when
/// they would wrap, and old records made reusable when their data or their
/// descriptor slot is needed again.
pub struct Ring {
    count_bits: u32,
    size_bits: u32,
    descs: Vec<Desc>,
    infos: Vec<Info>,
    data: Vec<u8>,
    head_id: u64,
    tail_id: u64,
    head_lpos: u64,
    tail_lpos: u64,
    next_seq: u64,
    /// Ids of records whose data is still in the ring, oldest first.
    live: VecDeque<u64>,
    perfect_fit: bool,
}

impl Ring {
    pub fn new(count_bits: u32, size_bits: u32) -> Self {
        let count = 1usize << count_bits;
        let desc0_id = 0u64.wrapping_sub(count as u64 + 1) & DESC_ID_MASK;
        let blk0_lpos = 0u64.wrapping_sub(1 << size_bits);
        let mut ring = Ring {
            count_bits,
            size_bits,
            descs: vec![Desc::default(); count],
            infos: vec![Info::default(); count],
            data: vec![0; 1 << size_bits],
            head_id: desc0_id,
            tail_id: desc0_id,
            head_lpos: blk0_lpos,
            tail_lpos: blk0_lpos,
            next_seq: 0,
            live: VecDeque::new(),
            perfect_fit: false,
        };
        // The kernel's static initialisation of the last descriptor.
        let slot = ring.slot(desc0_id);
        ring.descs[slot] = Desc {
            state_var: desc0_id | (DescState::Reusable as u64) << 62,
            begin: FAILED_LPOS,
            next: FAILED_LPOS,
        };
        ring
    }

    /// Allocates blocks as kernels with the "perfectly fitting records"
    /// change do: a block may end exactly at the end of the ring.
    pub fn with_perfect_fit(mut self) -> Self {
        self.perfect_fit = true;
        self
    }

    fn count(&self) -> u64 {
        1 << self.count_bits
    }

    fn size(&self) -> u64 {
        1 << self.size_bits
    }

    fn slot(&self, id: u64) -> usize {
        (id % self.count()) as usize
    }

    fn set_state(&mut self, id: u64, state: DescState) {
        let slot = self.slot(id);
        self.descs[slot].state_var = id | (state as u64) << 62;
    }

    pub fn state(&self, id: u64) -> DescState {
        match self.descs[self.slot(id)].state_var >> 62 {
            0 => DescState::Reserved,
            1 => DescState::Committed,
            2 => DescState::Finalized,
            _ => DescState::Reusable,
        }
    }

    pub fn head_id(&self) -> u64 {
        self.head_id
    }

    /// Forces a record's state, e.g. to leave a writer's reservation open.
    pub fn force_state(&mut self, id: u64, state: DescState) {
        self.set_state(id, state);
    }

    /// Overwrites a record's whole state word (id and state).
    pub fn force_state_var(&mut self, id: u64, state_var: u64) {
        let slot = self.slot(id);
        self.descs[slot].state_var = state_var;
    }

    /// A record's text positions.
    pub fn lpos(&self, id: u64) -> (u64, u64) {
        let desc = self.descs[self.slot(id)];
        (desc.begin, desc.next)
    }

    /// Overwrites a record's text positions, e.g. to corrupt them.
    pub fn force_lpos(&mut self, id: u64, begin: u64, next: u64) {
        let slot = self.slot(id);
        self.descs[slot].begin = begin;
        self.descs[slot].next = next;
    }

    fn data_wraps(&self, lpos: u64) -> u64 {
        lpos >> self.size_bits
    }

    fn data_index(&self, lpos: u64) -> usize {
        (lpos & (self.size() - 1)) as usize
    }

    /// Invalidates the oldest data blocks until `lpos` is the tail or older,
    /// like data_push_tail().
    fn push_data_tail(&mut self, lpos: u64) {
        while (lpos.wrapping_sub(self.tail_lpos) as i64) > 0 {
            let Some(id) = self.live.pop_front() else {
                self.tail_lpos = lpos;
                break;
            };
            let next = self.descs[self.slot(id)].next;
            if self.state(id) != DescState::Reusable {
                self.set_state(id, DescState::Reusable);
            }
            self.tail_lpos = next;
        }
    }

    /// Stores one message and returns its id. The previous record becomes
    /// finalized, the new one stays committed, as after prb_commit().
    pub fn push(&mut self, msg: &Msg) -> u64 {
        let id = self.head_id.wrapping_add(1) & DESC_ID_MASK;
        // desc_reserve(): the slot is needed again once the ids wrap.
        let prev_wrap = id.wrapping_sub(self.count()) & DESC_ID_MASK;
        if prev_wrap == self.tail_id {
            let tail_next = self.descs[self.slot(self.tail_id)].next;
            if self.state(self.tail_id) != DescState::Reusable {
                self.set_state(self.tail_id, DescState::Reusable);
            }
            if self.live.front() == Some(&self.tail_id) {
                self.push_data_tail(tail_next);
            }
            self.tail_id = self.tail_id.wrapping_add(1) & DESC_ID_MASK;
        }
        // Reserving a new record finalizes the previous one.
        if self.state(self.head_id) == DescState::Committed {
            self.set_state(self.head_id, DescState::Finalized);
        }

        let slot = self.slot(id);
        let (begin, next) = if msg.text.is_empty() {
            (NO_LPOS, NO_LPOS)
        } else {
            let size = (8 + msg.text.len() as u64).next_multiple_of(8);
            assert!(size <= self.size() / 2, "message too long for the ring");
            let begin = self.head_lpos;
            let mut next = begin.wrapping_add(size);
            // get_next_lpos(); kernels with the "perfectly fitting records"
            // change let a block end exactly at the end of the ring.
            let last = if self.perfect_fit {
                next.wrapping_sub(1)
            } else {
                next
            };
            let wraps = self.data_wraps(begin) != self.data_wraps(last);
            if wraps {
                // The block moves to the start of the wrap it ends in.
                next = (next & !(self.size() - 1)).wrapping_add(size);
            }
            self.push_data_tail(next.wrapping_sub(self.size()));
            let start = self.data_index(begin);
            self.data[start..start + 8].copy_from_slice(&id.to_le_bytes());
            let block = if wraps { 0 } else { start };
            self.data[block..block + 8].copy_from_slice(&id.to_le_bytes());
            self.data[block + 8..block + 8 + msg.text.len()].copy_from_slice(&msg.text);
            self.head_lpos = next;
            self.live.push_back(id);
            (begin, next)
        };
        self.descs[slot] = Desc {
            state_var: id | (DescState::Committed as u64) << 62,
            begin,
            next,
        };
        self.infos[slot] = Info {
            seq: self.next_seq,
            ts_nsec: msg.ts_nsec,
            text_len: msg.text.len() as u16,
            facility: msg.facility,
            flags_level: msg.level << 5,
            caller_id: msg.caller_id,
        };
        self.next_seq += 1;
        self.head_id = id;
        id
    }

    /// Writes the ring into `memory` with `layout` (printk_rb_dynamic in the
    /// kernel image; descriptors, infos and text from the allocator) and
    /// describes it in VMCOREINFO. Returns the ring buffer's address.
    pub fn write(&self, memory: &mut Memory, layout: &PrbLayout) -> u64 {
        let count = self.count() as usize;
        let descs = memory.alloc_ram(count * layout.desc_size as usize);
        let infos = memory.alloc_ram(count * layout.info_size as usize);
        let data = memory.alloc_ram(self.data.len());
        let rb = memory.alloc_kernel(layout.rb_size as usize);
        let prb = memory.alloc_kernel(8);
        memory.write_u64(prb, rb);

        let dr = rb + layout.rb_desc_ring;
        memory.write_u32(dr + layout.dr_count_bits, self.count_bits);
        memory.write_u64(dr + layout.dr_descs, descs);
        memory.write_u64(dr + layout.dr_infos, infos);
        memory.write_u64(dr + layout.dr_head_id + layout.counter, self.head_id);
        memory.write_u64(dr + layout.dr_tail_id + layout.counter, self.tail_id);
        let tdr = rb + layout.rb_text_data_ring;
        memory.write_u32(tdr + layout.data_size_bits, self.size_bits);
        memory.write_u64(tdr + layout.data_data, data);
        memory.write_u64(tdr + layout.data_head_lpos + layout.counter, self.head_lpos);
        memory.write_u64(tdr + layout.data_tail_lpos + layout.counter, self.tail_lpos);

        for (slot, desc) in self.descs.iter().enumerate() {
            let at = descs + slot as u64 * layout.desc_size;
            memory.write_u64(at + layout.desc_state_var + layout.counter, desc.state_var);
            let lpos = at + layout.desc_text_blk_lpos;
            memory.write_u64(lpos + layout.lpos_begin, desc.begin);
            memory.write_u64(lpos + layout.lpos_next, desc.next);
        }
        for (slot, info) in self.infos.iter().enumerate() {
            let at = infos + slot as u64 * layout.info_size;
            memory.write_u64(at + layout.info_seq, info.seq);
            memory.write_u64(at + layout.info_ts_nsec, info.ts_nsec);
            memory.write_u16(at + layout.info_text_len, info.text_len);
            memory.write(
                at + layout.info_text_len + 2,
                &[info.facility, info.flags_level],
            );
            memory.write_u32(at + layout.info_caller_id, info.caller_id);
        }
        memory.write(data, &self.data);
        layout.vmcoreinfo_lines(memory, prb);
        rb
    }
}

/// Field offsets of the legacy `struct printk_log` record header.
#[derive(Clone, Debug)]
pub struct PrintkLogLayout {
    pub size: u64,
    pub ts_nsec: u64,
    pub len: u64,
    pub text_len: u64,
    pub dict_len: u64,
    pub caller_id: Option<u64>,
}

impl PrintkLogLayout {
    /// x86_64 3.5–5.9 without CONFIG_PRINTK_CALLER.
    pub fn linux_4_19() -> Self {
        PrintkLogLayout {
            size: 16,
            ts_nsec: 0,
            len: 8,
            text_len: 10,
            dict_len: 12,
            caller_id: None,
        }
    }

    /// x86_64 5.1–5.9 with CONFIG_PRINTK_CALLER.
    pub fn linux_5_4_caller() -> Self {
        PrintkLogLayout {
            size: 24,
            caller_id: Some(16),
            ..Self::linux_4_19()
        }
    }
}

/// A model of the legacy variable-length record buffer (3.5–5.9):
/// log_store() with log_make_free_space(), records of
/// `ALIGN(header + text, 8)` bytes, and a zero header marking the wrap.
pub struct LegacyLog {
    layout: PrintkLogLayout,
    buf: Vec<u8>,
    first_idx: u32,
    next_idx: u32,
    first_seq: u64,
    next_seq: u64,
}

impl LegacyLog {
    pub fn new(layout: PrintkLogLayout, len: usize) -> Self {
        LegacyLog {
            layout,
            buf: vec![0; len],
            first_idx: 0,
            next_idx: 0,
            first_seq: 0,
            next_seq: 0,
        }
    }

    fn record_len(&self, idx: u32) -> u32 {
        let at = idx as usize + self.layout.len as usize;
        u32::from(u16::from_le_bytes([self.buf[at], self.buf[at + 1]]))
    }

    fn log_next(&self, idx: u32) -> u32 {
        match self.record_len(idx) {
            0 => self.record_len(0),
            len => idx + len,
        }
    }

    fn has_space(&self, msg_size: u32, empty: bool) -> bool {
        let buf_len = self.buf.len() as u32;
        let free = if self.next_idx > self.first_idx || empty {
            (buf_len - self.next_idx).max(self.first_idx)
        } else {
            self.first_idx - self.next_idx
        };
        free >= msg_size + self.layout.size as u32
    }

    pub fn push(&mut self, msg: &Msg) {
        let hdr = self.layout.size as u32;
        let size = (hdr + msg.text.len() as u32).next_multiple_of(8);
        while self.first_seq < self.next_seq && !self.has_space(size, false) {
            self.first_idx = self.log_next(self.first_idx);
            self.first_seq += 1;
        }
        assert!(self.has_space(size, self.first_seq == self.next_seq));
        if self.next_idx + size + hdr > self.buf.len() as u32 {
            let at = self.next_idx as usize;
            self.buf[at..at + hdr as usize].fill(0);
            self.next_idx = 0;
        }
        let at = self.next_idx as usize;
        let l = &self.layout;
        self.buf[at..at + size as usize].fill(0);
        self.buf[at + l.ts_nsec as usize..][..8].copy_from_slice(&msg.ts_nsec.to_le_bytes());
        self.buf[at + l.len as usize..][..2].copy_from_slice(&(size as u16).to_le_bytes());
        self.buf[at + l.text_len as usize..][..2]
            .copy_from_slice(&(msg.text.len() as u16).to_le_bytes());
        let flags_at = at + l.dict_len as usize + 2;
        self.buf[flags_at] = msg.facility;
        self.buf[flags_at + 1] = msg.level << 5;
        if let Some(caller) = l.caller_id {
            self.buf[at + caller as usize..][..4].copy_from_slice(&msg.caller_id.to_le_bytes());
        }
        let text_at = at + hdr as usize;
        self.buf[text_at..text_at + msg.text.len()].copy_from_slice(&msg.text);
        self.next_idx += size;
        self.next_seq += 1;
    }

    /// The index of every record from the first to the next, following
    /// wrap markers like log_next().
    pub fn positions(&self) -> Vec<u32> {
        let mut positions = Vec::new();
        let mut idx = self.first_idx;
        while idx != self.next_idx {
            positions.push(idx);
            idx = self.log_next(idx);
        }
        positions
    }

    /// Overwrites the `len` field of the record at `idx`.
    pub fn force_len(&mut self, idx: u32, len: u16) {
        let at = idx as usize + self.layout.len as usize;
        self.buf[at..at + 2].copy_from_slice(&len.to_le_bytes());
    }

    /// Overwrites the `text_len` field of the record at `idx`.
    pub fn force_text_len(&mut self, idx: u32, text_len: u16) {
        let at = idx as usize + self.layout.text_len as usize;
        self.buf[at..at + 2].copy_from_slice(&text_len.to_le_bytes());
    }

    pub fn set_indices(&mut self, first_idx: u32, next_idx: u32) {
        self.first_idx = first_idx;
        self.next_idx = next_idx;
    }

    /// Writes the buffer (from the allocator, as after setup_log_buf()) and
    /// the variables describing it, and their VMCOREINFO lines.
    pub fn write(&self, memory: &mut Memory) {
        let buf = memory.alloc_ram(self.buf.len());
        memory.write(buf, &self.buf);
        let log_buf = memory.alloc_kernel(8);
        memory.write_u64(log_buf, buf);
        let log_buf_len = memory.alloc_kernel(4);
        memory.write_u32(log_buf_len, self.buf.len() as u32);
        let first = memory.alloc_kernel(4);
        memory.write_u32(first, self.first_idx);
        let clear = memory.alloc_kernel(4);
        memory.write_u32(clear, self.first_idx);
        let next = memory.alloc_kernel(4);
        memory.write_u32(next, self.next_idx);
        let l = &self.layout;
        memory.info(&format!("SYMBOL(log_buf)={log_buf:x}"));
        memory.info(&format!("SYMBOL(log_buf_len)={log_buf_len:x}"));
        memory.info(&format!("SYMBOL(log_first_idx)={first:x}"));
        memory.info(&format!("SYMBOL(clear_idx)={clear:x}"));
        memory.info(&format!("SYMBOL(log_next_idx)={next:x}"));
        memory.info(&format!("SIZE(printk_log)={}", l.size));
        memory.info(&format!("OFFSET(printk_log.ts_nsec)={}", l.ts_nsec));
        memory.info(&format!("OFFSET(printk_log.len)={}", l.len));
        memory.info(&format!("OFFSET(printk_log.text_len)={}", l.text_len));
        memory.info(&format!("OFFSET(printk_log.dict_len)={}", l.dict_len));
        if let Some(caller) = l.caller_id {
            memory.info(&format!("OFFSET(printk_log.caller_id)={caller}"));
        }
    }
}

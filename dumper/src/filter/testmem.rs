//! Synthetic physical memory for the filter's tests: sparse 4 KiB frames,
//! and x86_64 page tables built in them the way the kernel builds its own.

use std::collections::HashMap;

use super::PhysRead;
use crate::elf::synth::CoreBuilder;
use crate::vmcore::VmcoreError;

const FRAME: u64 = 4096;

/// Physical memory holding only the frames written to; reading any other
/// frame fails as a vmcore without it would.
#[derive(Default)]
pub struct SparseMemory {
    frames: HashMap<u64, Box<[u8; FRAME as usize]>>,
}

impl SparseMemory {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn write(&mut self, paddr: u64, bytes: &[u8]) {
        let mut done = 0;
        while done < bytes.len() {
            let at = paddr + done as u64;
            let offset = (at % FRAME) as usize;
            let len = (FRAME as usize - offset).min(bytes.len() - done);
            let frame = self
                .frames
                .entry(at / FRAME)
                .or_insert_with(|| Box::new([0; FRAME as usize]));
            frame[offset..offset + len].copy_from_slice(&bytes[done..done + len]);
            done += len;
        }
    }

    pub fn write_u64(&mut self, paddr: u64, value: u64) {
        self.write(paddr, &value.to_le_bytes());
    }

    /// Makes the frame holding `paddr` readable, as zeros if new.
    pub fn touch(&mut self, paddr: u64) {
        self.frames
            .entry(paddr / FRAME)
            .or_insert_with(|| Box::new([0; FRAME as usize]));
    }

    /// Makes the frame holding `paddr` unreadable.
    pub fn forget(&mut self, paddr: u64) {
        self.frames.remove(&(paddr / FRAME));
    }

    /// An ELF vmcore of this memory as kexec describes it: one PT_LOAD per
    /// run of adjacent frames, in the direct map at `direct_map`, and a
    /// VMCOREINFO note.
    pub fn to_core(&self, direct_map: u64, vmcoreinfo: &str) -> Vec<u8> {
        let mut frames: Vec<u64> = self.frames.keys().copied().collect();
        frames.sort_unstable();
        let mut core = CoreBuilder::new();
        core.note(b"VMCOREINFO", 0, vmcoreinfo.as_bytes());
        let mut start = 0;
        while start < frames.len() {
            let mut end = start + 1;
            while end < frames.len() && frames[end] == frames[end - 1] + 1 {
                end += 1;
            }
            let data: Vec<u8> = frames[start..end]
                .iter()
                .flat_map(|frame| self.frames[frame].iter().copied())
                .collect();
            let paddr = frames[start] * FRAME;
            core.load(direct_map + paddr, paddr, data);
            start = end;
        }
        core.build()
    }
}

impl PhysRead for SparseMemory {
    fn read_phys(&self, paddr: u64, buf: &mut [u8]) -> Result<(), VmcoreError> {
        let mut done = 0;
        while done < buf.len() {
            let at = paddr
                .checked_add(done as u64)
                .ok_or(VmcoreError::UnmappedPhysical { paddr: u64::MAX })?;
            let frame = self
                .frames
                .get(&(at / FRAME))
                .ok_or(VmcoreError::UnmappedPhysical { paddr: at })?;
            let offset = (at % FRAME) as usize;
            let len = (FRAME as usize - offset).min(buf.len() - done);
            buf[done..done + len].copy_from_slice(&frame[offset..offset + len]);
            done += len;
        }
        Ok(())
    }
}

/// Sizes of the pages a leaf entry maps.
pub const SIZE_4K: u64 = 1 << 12;
pub const SIZE_2M: u64 = 1 << 21;
pub const SIZE_1G: u64 = 1 << 30;

/// Present and writable: what the kernel puts in table entries.
const TABLE_FLAGS: u64 = 0x3;
/// The PS bit of a large leaf.
const PS: u64 = 0x80;

/// Four- or five-level page tables in a [`SparseMemory`], their tables
/// taken from a pool of frames.
pub struct PageTables {
    levels: u32,
    top: u64,
    next_table: u64,
    /// OR'd into every entry written: a memory-encryption bit, say.
    pub entry_bits: u64,
}

impl PageTables {
    /// Empty tables with the top one at `top`, more tables from `pool` up.
    pub fn new(memory: &mut SparseMemory, levels: u32, top: u64, pool: u64) -> Self {
        assert!(levels == 4 || levels == 5);
        memory.touch(top);
        PageTables {
            levels,
            top,
            next_table: pool,
            entry_bits: 0,
        }
    }

    /// The address bit where each level's index starts, top first.
    fn shifts(&self) -> &'static [u32] {
        if self.levels == 5 {
            &[48, 39, 30, 21, 12]
        } else {
            &[39, 30, 21, 12]
        }
    }

    /// Maps `size` bytes at `vaddr` (aligned to `size`) to `paddr`, with a
    /// leaf at the level that size calls for; `leaf_bits` are OR'd into the
    /// leaf entry.
    pub fn map(
        &mut self,
        memory: &mut SparseMemory,
        vaddr: u64,
        paddr: u64,
        size: u64,
        leaf_bits: u64,
    ) {
        assert_eq!(vaddr % size, 0, "{vaddr:#x} is not aligned to {size:#x}");
        let leaf_shift = size.trailing_zeros();
        let mut table = self.top;
        for &shift in self.shifts() {
            let slot = table + ((vaddr >> shift) & 511) * 8;
            if shift == leaf_shift {
                let ps = if size == SIZE_4K { 0 } else { PS };
                memory.write_u64(slot, paddr | TABLE_FLAGS | ps | leaf_bits | self.entry_bits);
                return;
            }
            let entry = read_u64(memory, slot);
            table = if entry & 1 != 0 {
                entry & 0x000f_ffff_ffff_f000 & !self.entry_bits
            } else {
                let new = self.next_table;
                self.next_table += FRAME;
                memory.touch(new);
                memory.write_u64(slot, new | TABLE_FLAGS | self.entry_bits);
                new
            };
        }
        panic!("no level maps {size:#x} bytes");
    }

    /// Clears the present bit of the entry for `vaddr` at the level whose
    /// index starts at bit `shift`.
    pub fn unmap_at(&self, memory: &mut SparseMemory, vaddr: u64, shift: u32) {
        let mut table = self.top;
        for &level_shift in self.shifts() {
            let slot = table + ((vaddr >> level_shift) & 511) * 8;
            let entry = read_u64(memory, slot);
            if level_shift == shift {
                memory.write_u64(slot, entry & !1);
                return;
            }
            table = entry & 0x000f_ffff_ffff_f000 & !self.entry_bits;
        }
        panic!("no level starts at bit {shift}");
    }

    /// The physical address of the table the entry for `vaddr` at the
    /// level starting at bit `shift` is in.
    pub fn table_at(&self, memory: &SparseMemory, vaddr: u64, shift: u32) -> u64 {
        let mut table = self.top;
        for &level_shift in self.shifts() {
            if level_shift == shift {
                return table;
            }
            let entry = read_u64(memory, table + ((vaddr >> level_shift) & 511) * 8);
            table = entry & 0x000f_ffff_ffff_f000 & !self.entry_bits;
        }
        panic!("no level starts at bit {shift}");
    }
}

pub fn read_u64(memory: &SparseMemory, paddr: u64) -> u64 {
    let mut bytes = [0u8; 8];
    memory.read_phys(paddr, &mut bytes).unwrap();
    u64::from_le_bytes(bytes)
}

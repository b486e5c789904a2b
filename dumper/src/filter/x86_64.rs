//! Kernel virtual to physical translation on x86_64, for the addresses the
//! filter reads: the `mem_section` arrays (direct map) and the struct pages
//! of the memory map (vmemmap).
//!
//! Three ways, tried in this order:
//!
//! - The kernel image, `__START_KERNEL_map` (`0xffffffff80000000`) up to
//!   `NUMBER(KERNEL_IMAGE_SIZE)`, sits at `NUMBER(phys_base)` plus its
//!   offset from `__START_KERNEL_map`. VMCOREINFO's `SYMBOL`s are already
//!   relocated by KASLR, so `KERNELOFFSET` is not added again. The kernel
//!   prints `phys_base` with `%ld`: a kernel loaded below its link address
//!   has a negative one, taken here as the two's complement it is.
//! - The direct map is where the PT_LOADs say: each RAM segment's
//!   `p_vaddr - p_paddr`. Memory KASLR randomises that offset, so it is
//!   never a constant here; and since an old kexec-tools wrote a constant
//!   `PAGE_OFFSET` even under KASLR, each offset is first confirmed by
//!   walking the page tables for the segment's first page. A segment the
//!   tables do not confirm is not used as a shortcut: addresses in the
//!   direct map are then walked like any other.
//! - Everything else, vmemmap above all, is walked in the kernel's page
//!   tables from `SYMBOL(init_top_pgt)` (`init_level4_pgt` before 4.13):
//!   five levels when `NUMBER(pgtable_l5_enabled)` is 1, else four, with
//!   1 GiB and 2 MiB leaves where the PS bit says so. Table entries hold
//!   physical addresses in bits 12 to 51, from which the memory-encryption
//!   bit `NUMBER(sme_mask)` is removed. The last few leaves walked are
//!   cached: the memory map is read in order and is mapped with 2 MiB
//!   pages where the kernel could, so one walk serves 32768 struct pages.

use crate::elf::LoadSegment;
use crate::vmcoreinfo::VmcoreInfo;

use super::keys::Keys;
use super::{FilterError, PhysRead};

/// `__START_KERNEL_map`: where the kernel image is mapped.
pub const START_KERNEL_MAP: u64 = 0xffff_ffff_8000_0000;

/// The image cannot reach past the top of the address space.
const MAX_KERNEL_IMAGE_SIZE: u64 = u64::MAX - START_KERNEL_MAP + 1;

/// Page-table entry bits.
const PRESENT: u64 = 1 << 0;
const PAGE_SIZE_BIT: u64 = 1 << 7;
/// Physical address bits 12 to 51 of an entry.
const ADDRESS_MASK: u64 = 0x000f_ffff_ffff_f000;

/// Leaves remembered; a handful covers the memory map being read in order
/// plus the odd direct-map or image page in between.
const CACHED_LEAVES: usize = 8;

/// One level of the page tables, named as Linux names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Pgd,
    P4d,
    Pud,
    Pmd,
    Pte,
}

impl Level {
    pub const fn name(self) -> &'static str {
        match self {
            Level::Pgd => "PGD",
            Level::P4d => "P4D",
            Level::Pud => "PUD",
            Level::Pmd => "PMD",
            Level::Pte => "PTE",
        }
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Four- or five-level paging.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Paging {
    FourLevel,
    FiveLevel,
}

impl Paging {
    /// The levels walked above the PTE, top first, with the address bit
    /// where each level's index starts.
    fn upper_levels(self) -> &'static [(Level, u32)] {
        match self {
            Paging::FourLevel => &[(Level::Pgd, 39), (Level::Pud, 30), (Level::Pmd, 21)],
            Paging::FiveLevel => &[
                (Level::Pgd, 48),
                (Level::P4d, 39),
                (Level::Pud, 30),
                (Level::Pmd, 21),
            ],
        }
    }

    /// Bits of a virtual address translated; those above must copy the
    /// top one (a canonical address).
    const fn virtual_bits(self) -> u32 {
        match self {
            Paging::FourLevel => 48,
            Paging::FiveLevel => 57,
        }
    }

    fn is_canonical(self, vaddr: u64) -> bool {
        let shift = 64 - self.virtual_bits();
        ((vaddr << shift) as i64 >> shift) as u64 == vaddr
    }
}

/// Where a virtual address lands: its physical address, and how many
/// bytes from there on are physically contiguous in the same mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub paddr: u64,
    pub len: u64,
}

/// A leaf of the page tables: `size` bytes at `vaddr` map to `paddr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Leaf {
    vaddr: u64,
    paddr: u64,
    size: u64,
}

impl Leaf {
    fn lookup(&self, vaddr: u64) -> Option<Mapping> {
        let offset = vaddr.wrapping_sub(self.vaddr);
        (vaddr >= self.vaddr && offset < self.size).then(|| Mapping {
            paddr: self.paddr + offset,
            len: self.size - offset,
        })
    }
}

/// Translates the crashed kernel's virtual addresses.
#[derive(Clone, Debug)]
pub struct Translator {
    /// `NUMBER(phys_base)` as the two's complement the kernel adds.
    phys_base: u64,
    /// `NUMBER(KERNEL_IMAGE_SIZE)`; without it the image is walked too.
    kernel_image_size: Option<u64>,
    /// Direct-map PT_LOADs whose offset the page tables confirmed, as
    /// leaves of their own size.
    direct_map: Vec<Leaf>,
    /// Physical address of the top-level table.
    top_table: u64,
    paging: Paging,
    /// Address bits of an entry, without the encryption bit.
    entry_mask: u64,
    cache: [Option<Leaf>; CACHED_LEAVES],
    next_victim: usize,
    walks: u64,
}

impl Translator {
    /// The translator for the kernel VMCOREINFO describes, with the
    /// direct-map offsets of `loads` that its page tables confirm.
    pub fn new(
        info: &VmcoreInfo,
        loads: &[LoadSegment],
        memory: &impl PhysRead,
    ) -> Result<Translator, FilterError> {
        let keys = Keys(info);
        let phys_base = keys
            .number("phys_base")?
            .ok_or_else(|| FilterError::MissingKey {
                key: "NUMBER(phys_base)".into(),
            })? as u64;

        let kernel_image_size = match keys.number("KERNEL_IMAGE_SIZE")? {
            None => None,
            Some(size) if (1..=MAX_KERNEL_IMAGE_SIZE as i64).contains(&size) => Some(size as u64),
            Some(value) => return Err(FilterError::KernelImageSize { value }),
        };

        let paging = match keys.number("pgtable_l5_enabled")? {
            None | Some(0) => Paging::FourLevel,
            Some(1) => Paging::FiveLevel,
            Some(value) => return Err(FilterError::PagingLevels { value }),
        };

        let entry_mask = ADDRESS_MASK & !(keys.number("sme_mask")?.unwrap_or(0) as u64);

        let (top_key, top_vaddr) = match (
            keys.symbol("init_top_pgt")?,
            keys.symbol("init_level4_pgt")?,
        ) {
            (Some(vaddr), _) => ("SYMBOL(init_top_pgt)", vaddr),
            (None, Some(vaddr)) => ("SYMBOL(init_level4_pgt)", vaddr),
            (None, None) => {
                return Err(FilterError::MissingOneOf {
                    keys: &["SYMBOL(init_top_pgt)", "SYMBOL(init_level4_pgt)"],
                })
            }
        };
        let top_table = image_offset(top_vaddr)
            .filter(|&offset| match kernel_image_size {
                Some(size) => offset < size,
                None => true,
            })
            .map(|offset| offset.wrapping_add(phys_base))
            .ok_or(FilterError::NotInKernelImage {
                key: top_key.into(),
                vaddr: top_vaddr,
            })?;
        if top_table % 4096 != 0 {
            return Err(FilterError::TableNotAligned {
                key: top_key.into(),
                paddr: top_table,
            });
        }

        let mut translator = Translator {
            phys_base,
            kernel_image_size,
            direct_map: Vec::new(),
            top_table,
            paging,
            entry_mask,
            cache: [None; CACHED_LEAVES],
            next_victim: 0,
            walks: 0,
        };
        translator.direct_map = translator.confirmed_direct_map(loads, memory);
        Ok(translator)
    }

    /// The PT_LOADs below the kernel image whose `p_vaddr - p_paddr` the
    /// page tables confirm: for each distinct offset, the walk of the first
    /// segment's first page must end at its `p_paddr`.
    fn confirmed_direct_map(&mut self, loads: &[LoadSegment], memory: &impl PhysRead) -> Vec<Leaf> {
        let mut offsets: Vec<(u64, bool)> = Vec::new();
        let mut direct_map = Vec::new();
        for load in loads {
            let kernel_half = load.vaddr >> 63 == 1;
            let below_image = load.vaddr < START_KERNEL_MAP;
            let Some(offset) = load.vaddr.checked_sub(load.paddr) else {
                continue;
            };
            if !kernel_half || !below_image || load.mem_size == 0 {
                continue;
            }
            let confirmed = match offsets.iter().find(|(o, _)| *o == offset) {
                Some(&(_, confirmed)) => confirmed,
                None => {
                    let walked = self.walk(memory, load.vaddr);
                    let confirmed = matches!(walked, Ok(mapping) if mapping.paddr == load.paddr);
                    if !confirmed {
                        log::warn!(
                            "the page tables do not map PT_LOAD {:#x} to {:#x} ({walked:?}): \
                             walking its addresses instead",
                            load.vaddr,
                            load.paddr,
                        );
                    }
                    offsets.push((offset, confirmed));
                    confirmed
                }
            };
            if confirmed {
                direct_map.push(Leaf {
                    vaddr: load.vaddr,
                    paddr: load.paddr,
                    size: load.mem_size,
                });
            }
        }
        direct_map
    }

    /// The direct-map offsets in use, `p_vaddr - p_paddr`, each once.
    pub fn direct_map_offsets(&self) -> Vec<u64> {
        let mut offsets: Vec<u64> = self
            .direct_map
            .iter()
            .map(|leaf| leaf.vaddr - leaf.paddr)
            .collect();
        offsets.sort_unstable();
        offsets.dedup();
        offsets
    }

    pub fn paging(&self) -> Paging {
        self.paging
    }

    /// How many page-table walks the cache did not spare.
    pub fn walks(&self) -> u64 {
        self.walks
    }

    /// Where `vaddr` is in physical memory, and how far that mapping runs.
    pub fn translate(
        &mut self,
        memory: &impl PhysRead,
        vaddr: u64,
    ) -> Result<Mapping, FilterError> {
        if let Some(mapping) = self.kernel_image(vaddr) {
            return Ok(mapping);
        }
        let cached = self.direct_map.iter().chain(self.cache.iter().flatten());
        if let Some(mapping) = cached.into_iter().find_map(|leaf| leaf.lookup(vaddr)) {
            return Ok(mapping);
        }
        self.walk(memory, vaddr)
    }

    /// Reads `buf.len()` bytes of kernel virtual memory at `vaddr`, across
    /// as many mappings as it spans.
    pub fn read(
        &mut self,
        memory: &impl PhysRead,
        vaddr: u64,
        buf: &mut [u8],
    ) -> Result<(), FilterError> {
        let mut done = 0;
        while done < buf.len() {
            let at = vaddr
                .checked_add(done as u64)
                .ok_or(FilterError::AddressOverflow {
                    vaddr,
                    len: buf.len(),
                })?;
            let mapping = self.translate(memory, at)?;
            let chunk = mapping.len.min((buf.len() - done) as u64) as usize;
            memory
                .read_phys(mapping.paddr, &mut buf[done..done + chunk])
                .map_err(|source| FilterError::ReadVirtual {
                    vaddr: at,
                    paddr: mapping.paddr,
                    source,
                })?;
            done += chunk;
        }
        Ok(())
    }

    /// A little-endian u64 of kernel virtual memory.
    pub fn read_u64(&mut self, memory: &impl PhysRead, vaddr: u64) -> Result<u64, FilterError> {
        let mut bytes = [0u8; 8];
        self.read(memory, vaddr, &mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    fn kernel_image(&self, vaddr: u64) -> Option<Mapping> {
        let size = self.kernel_image_size?;
        let offset = image_offset(vaddr).filter(|offset| *offset < size)?;
        Some(Mapping {
            paddr: offset.wrapping_add(self.phys_base),
            len: size - offset,
        })
    }

    /// Walks the page tables for `vaddr` and caches the leaf found.
    fn walk(&mut self, memory: &impl PhysRead, vaddr: u64) -> Result<Mapping, FilterError> {
        if !self.paging.is_canonical(vaddr) {
            return Err(FilterError::NonCanonical { vaddr });
        }
        self.walks += 1;
        let mut table = self.top_table;
        for &(level, shift) in self.paging.upper_levels() {
            let entry = self.entry(memory, vaddr, level, table, shift)?;
            // The PS bit makes a PUD or PMD entry a 1 GiB or 2 MiB leaf;
            // above the PUD it is reserved, and ignored as makedumpfile
            // ignores it.
            if matches!(level, Level::Pud | Level::Pmd) && entry & PAGE_SIZE_BIT != 0 {
                // In a large leaf, bit 12 is the PAT bit, not address.
                return Ok(self.cache_leaf(vaddr, entry, 1 << shift));
            }
            table = entry & self.entry_mask;
        }
        let entry = self.entry(memory, vaddr, Level::Pte, table, 12)?;
        Ok(self.cache_leaf(vaddr, entry, 1 << 12))
    }

    /// The present entry for `vaddr` in the table at `table`.
    fn entry(
        &self,
        memory: &impl PhysRead,
        vaddr: u64,
        level: Level,
        table: u64,
        shift: u32,
    ) -> Result<u64, FilterError> {
        let paddr = table + ((vaddr >> shift) & 511) * 8;
        let mut bytes = [0u8; 8];
        memory
            .read_phys(paddr, &mut bytes)
            .map_err(|source| FilterError::ReadPageTable {
                vaddr,
                level,
                paddr,
                source,
            })?;
        let entry = u64::from_le_bytes(bytes);
        if entry & PRESENT == 0 {
            return Err(FilterError::NotPresent {
                vaddr,
                level,
                entry,
            });
        }
        Ok(entry)
    }

    /// Remembers the leaf of `size` bytes that `entry` maps `vaddr` with,
    /// in place of the oldest one, and translates `vaddr` through it.
    fn cache_leaf(&mut self, vaddr: u64, entry: u64, size: u64) -> Mapping {
        let offset = vaddr & (size - 1);
        let leaf = Leaf {
            vaddr: vaddr - offset,
            paddr: entry & self.entry_mask & !(size - 1),
            size,
        };
        self.cache[self.next_victim] = Some(leaf);
        self.next_victim = (self.next_victim + 1) % CACHED_LEAVES;
        Mapping {
            paddr: leaf.paddr + offset,
            len: size - offset,
        }
    }
}

/// `vaddr`'s offset in the kernel image mapping, if it is in its range.
fn image_offset(vaddr: u64) -> Option<u64> {
    vaddr.checked_sub(START_KERNEL_MAP)
}

#[cfg(test)]
mod tests;

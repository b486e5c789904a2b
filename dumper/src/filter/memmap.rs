//! The memory map: where the crashed kernel keeps the `struct page` of
//! each page frame, found by walking `mem_section` as SPARSEMEM_EXTREME
//! lays it out, the only memory model x86_64 kernels are built with.
//!
//! Physical memory is cut into sections of `2^NUMBER(SECTION_SIZE_BITS)`
//! bytes (128 MiB on x86_64). `SYMBOL(mem_section)` is the address of the
//! root array (since 4.15 the value of the `mem_section` pointer, not the
//! address of the variable): `LENGTH(mem_section)` pointers, each to one
//! page of `PAGE_SIZE / SIZE(mem_section)` sections, or null where no
//! memory is. With five-level paging the root array is 1 MiB, so it is read
//! a page at a time and only as far as the highest section the dump holds.
//!
//! A section's `section_mem_map` (`OFFSET(mem_section.section_mem_map)`)
//! holds the address of the section's first `struct page` minus its first
//! pfn times `SIZE(page)`, so that adding any pfn of the section gives that
//! pfn's `struct page`; with vmemmap this is the same value, the vmemmap
//! base, for every section. Its low bits are flags: present (bit 0), has a
//! memory map (bit 1), online, early, ZONE_DEVICE and, in recent kernels,
//! vmemmap preinit (bit 5). The low six bits are masked off, not only the
//! five makedumpfile masks. A section counts when it is present and has a
//! memory map, the kernel's own `valid_section()`; the frames of any other
//! section have no `struct page` to classify and are kept.
//!
//! Every section must give the same vmemmap base, and `SYMBOL(vmemmap)` or
//! `NUMBER(VMEMMAP_START)` must agree with it where the kernel exports
//! them: a disagreement means the memory map is not what it seems, and no
//! page is classified from it.

use std::ops::Range;

use crate::elf::LoadSegment;
use crate::vmcoreinfo::VmcoreInfo;

use super::keys::Keys;
use super::layout::PAGE_SIZE;
use super::x86_64::Translator;
use super::{FilterError, PhysRead};

/// `section_mem_map` flags.
const SECTION_MARKED_PRESENT: u64 = 1 << 0;
const SECTION_HAS_MEM_MAP: u64 = 1 << 1;
/// The flag bits masked off the encoded memory map.
const SECTION_FLAGS: u64 = (1 << 6) - 1;

/// The widest physical address on x86_64.
const MAX_PHYSICAL_BITS: u32 = 52;

/// Root pointers read at a time: one page of them.
const ROOTS_PER_READ: u64 = PAGE_SIZE / 8;

/// `mem_section` as VMCOREINFO describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemSections {
    /// `SYMBOL(mem_section)`: the root array.
    root_array: u64,
    /// `LENGTH(mem_section)`: the number of roots.
    nr_roots: u64,
    /// `SIZE(mem_section)`.
    section_size: u64,
    /// `OFFSET(mem_section.section_mem_map)`.
    map_offset: u64,
    /// `NUMBER(SECTION_SIZE_BITS)`.
    section_size_bits: u32,
    /// `SYMBOL(vmemmap)` or `NUMBER(VMEMMAP_START)`, whichever is exported,
    /// with its key.
    vmemmap_exported: Vec<(&'static str, u64)>,
}

impl MemSections {
    pub fn from_vmcoreinfo(info: &VmcoreInfo) -> Result<MemSections, FilterError> {
        let keys = Keys(info);
        let root_array = keys.require("SYMBOL(mem_section)", |i| i.symbol("mem_section"))?;
        let nr_roots = keys.require("LENGTH(mem_section)", |i| i.length("mem_section"))?;
        let section_size = keys.require("SIZE(mem_section)", |i| i.size("mem_section"))?;
        if section_size < 8 || !PAGE_SIZE.is_multiple_of(section_size) {
            return Err(FilterError::SectionStructSize { size: section_size });
        }
        let map_offset = keys.require("OFFSET(mem_section.section_mem_map)", |i| {
            i.offset("mem_section.section_mem_map")
        })?;
        if !matches!(map_offset.checked_add(8), Some(end) if end <= section_size) {
            return Err(FilterError::FieldOutsideSection {
                offset: map_offset,
                size: section_size,
            });
        }

        let bits_key = "NUMBER(SECTION_SIZE_BITS)";
        let section_size_bits =
            keys.number("SECTION_SIZE_BITS")?
                .ok_or_else(|| FilterError::MissingKey {
                    key: bits_key.into(),
                })?;
        let section_size_bits = match u32::try_from(section_size_bits) {
            Ok(bits) if bits > PAGE_SIZE.trailing_zeros() && bits < MAX_PHYSICAL_BITS => bits,
            _ => {
                return Err(FilterError::SectionSizeBits {
                    value: section_size_bits,
                })
            }
        };

        // SPARSEMEM_EXTREME has just enough roots for every section of the
        // physical address width, NR_SECTION_ROOTS; without that width
        // exported (before 5.9), x86_64's widest bounds it.
        let per_root = PAGE_SIZE / section_size;
        match keys.number("MAX_PHYSMEM_BITS")? {
            Some(bits) => {
                let width = match u32::try_from(bits) {
                    Ok(width) if width > section_size_bits && width <= MAX_PHYSICAL_BITS => width,
                    _ => return Err(FilterError::MaxPhysmemBits { value: bits }),
                };
                let expected = (1u64 << (width - section_size_bits)).div_ceil(per_root);
                if nr_roots != expected {
                    return Err(FilterError::SectionRoots {
                        length: nr_roots,
                        expected,
                    });
                }
            }
            None => {
                let max = (1u64 << (MAX_PHYSICAL_BITS - section_size_bits)).div_ceil(per_root);
                if nr_roots == 0 || nr_roots > max {
                    return Err(FilterError::TooManySectionRoots {
                        length: nr_roots,
                        max,
                    });
                }
            }
        }

        if nr_roots
            .checked_mul(8)
            .and_then(|len| root_array.checked_add(len))
            .is_none()
        {
            return Err(FilterError::RootArrayOverflow {
                vaddr: root_array,
                length: nr_roots,
            });
        }

        let mut vmemmap_exported = Vec::new();
        if let Some(vmemmap) = keys.symbol("vmemmap")? {
            vmemmap_exported.push(("SYMBOL(vmemmap)", vmemmap));
        }
        if let Some(start) = keys.number("VMEMMAP_START")? {
            vmemmap_exported.push(("NUMBER(VMEMMAP_START)", start as u64));
        }

        Ok(MemSections {
            root_array,
            nr_roots,
            section_size,
            map_offset,
            section_size_bits,
            vmemmap_exported,
        })
    }

    /// Sections per root: one page of them.
    pub fn sections_per_root(&self) -> u64 {
        PAGE_SIZE / self.section_size
    }

    pub fn pfns_per_section(&self) -> u64 {
        1 << (self.section_size_bits - PAGE_SIZE.trailing_zeros())
    }

    /// Walks the sections holding pfns below `end_pfn` and returns the
    /// memory map they describe, with `struct page`s of `struct_page_size`
    /// bytes (`SIZE(page)` as [`PageLayout`](super::layout::PageLayout)
    /// checked it). Memory used: two pages of buffers, and one pfn range
    /// per run of adjacent valid sections below `end_pfn`.
    pub fn read(
        &self,
        struct_page_size: u64,
        translator: &mut Translator,
        memory: &impl PhysRead,
        end_pfn: u64,
    ) -> Result<MemMap, FilterError> {
        let per_root = self.sections_per_root();
        let pfns_per_section = self.pfns_per_section();
        let nr_sections = end_pfn
            .div_ceil(pfns_per_section)
            .min(self.nr_roots * per_root);
        let nr_roots = nr_sections.div_ceil(per_root);

        let mut roots = vec![0u8; PAGE_SIZE as usize];
        let mut block = vec![0u8; (per_root * self.section_size) as usize];
        let mut vmemmap: Option<(u64, u64)> = None;
        let mut present: Vec<Range<u64>> = Vec::new();

        for root in 0..nr_roots {
            let in_read = root % ROOTS_PER_READ;
            if in_read == 0 {
                let count = (nr_roots - root).min(ROOTS_PER_READ);
                let vaddr = self.root_array + root * 8;
                translator
                    .read(memory, vaddr, &mut roots[..(count * 8) as usize])
                    .map_err(|source| FilterError::MemSectionRoots {
                        root,
                        vaddr,
                        source: Box::new(source),
                    })?;
            }
            let sections = u64_at(&roots, in_read * 8);
            if sections == 0 {
                continue;
            }
            translator
                .read(memory, sections, &mut block)
                .map_err(|source| FilterError::MemSectionBlock {
                    root,
                    vaddr: sections,
                    source: Box::new(source),
                })?;
            let first = root * per_root;
            for section in first..(first + per_root).min(nr_sections) {
                let at = (section - first) * self.section_size + self.map_offset;
                let value = u64_at(&block, at);
                let valid = SECTION_MARKED_PRESENT | SECTION_HAS_MEM_MAP;
                if value & valid != valid {
                    continue;
                }
                let base = value & !SECTION_FLAGS;
                let first_pfn = section * pfns_per_section;
                let section_end = first_pfn + pfns_per_section;
                // The section's struct pages must be kernel addresses that
                // do not run off the end of the address space.
                let map_end = section_end
                    .checked_mul(struct_page_size)
                    .and_then(|len| base.checked_add(len));
                if base >> 63 == 0 || map_end.is_none() {
                    return Err(FilterError::SectionMemMap { section, value });
                }
                match vmemmap {
                    None => vmemmap = Some((section, base)),
                    Some((first_section, first_base)) if first_base != base => {
                        return Err(FilterError::InconsistentVmemmap {
                            section,
                            base,
                            first_section,
                            first_base,
                        })
                    }
                    Some(_) => {}
                }
                match present.last_mut() {
                    Some(run) if run.end == first_pfn => run.end = section_end,
                    _ => present.push(first_pfn..section_end),
                }
            }
        }

        let Some((_, vmemmap)) = vmemmap else {
            return Err(FilterError::NoMemorySections { end_pfn });
        };
        for &(key, value) in &self.vmemmap_exported {
            if value != vmemmap {
                return Err(FilterError::VmemmapMismatch {
                    key,
                    value,
                    base: vmemmap,
                });
            }
        }
        Ok(MemMap {
            vmemmap,
            struct_page_size,
            pfns_per_section,
            present,
        })
    }
}

/// The pfn after the last page any PT_LOAD holds: sections beyond it have
/// nothing in the dump to classify.
pub fn end_pfn(loads: &[LoadSegment]) -> u64 {
    loads
        .iter()
        .map(|load| load.paddr.saturating_add(load.mem_size).div_ceil(PAGE_SIZE))
        .max()
        .unwrap_or(0)
}

/// The little-endian u64 at `at`, or 0 (an absent root or section) past
/// the buffer's end; offsets were checked against the sizes the buffers
/// are made with, so that does not happen.
fn u64_at(buf: &[u8], at: u64) -> u64 {
    usize::try_from(at)
        .ok()
        .and_then(|at| buf.get(at..)?.first_chunk::<8>().copied())
        .map_or(0, u64::from_le_bytes)
}

/// Where each page frame's `struct page` is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemMap {
    vmemmap: u64,
    struct_page_size: u64,
    pfns_per_section: u64,
    /// Pfns of valid sections, in ascending runs of adjacent sections.
    present: Vec<Range<u64>>,
}

/// One valid section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Section {
    pub number: u64,
    pub first_pfn: u64,
    /// The virtual address of the section's first `struct page`.
    pub mem_map: u64,
}

impl MemMap {
    /// A memory map with vmemmap at `vmemmap` and `struct page`s for the
    /// pfns of `present` (ascending, not adjacent), for tests that need no
    /// `mem_section` walk.
    #[cfg(test)]
    pub(crate) fn synthetic(
        vmemmap: u64,
        struct_page_size: u64,
        pfns_per_section: u64,
        present: Vec<Range<u64>>,
    ) -> MemMap {
        MemMap {
            vmemmap,
            struct_page_size,
            pfns_per_section,
            present,
        }
    }

    /// The vmemmap base: the virtual address of pfn 0's `struct page`.
    pub fn vmemmap(&self) -> u64 {
        self.vmemmap
    }

    /// `SIZE(page)`: the stride of the memory map.
    pub fn struct_page_size(&self) -> u64 {
        self.struct_page_size
    }

    /// Pfns with a `struct page`, in ascending runs.
    pub fn present(&self) -> &[Range<u64>] {
        &self.present
    }

    /// The virtual address of `pfn`'s `struct page`, if its section has a
    /// memory map.
    pub fn struct_page(&self, pfn: u64) -> Option<u64> {
        let run = self.present.partition_point(|run| run.end <= pfn);
        self.present
            .get(run)
            .filter(|run| run.contains(&pfn))
            .map(|_| self.vmemmap + pfn * self.struct_page_size)
    }

    /// Every valid section, in order.
    pub fn sections(&self) -> impl Iterator<Item = Section> + '_ {
        self.present.iter().flat_map(move |run| {
            (run.start..run.end)
                .step_by(self.pfns_per_section as usize)
                .map(move |first_pfn| Section {
                    number: first_pfn / self.pfns_per_section,
                    first_pfn,
                    mem_map: self.vmemmap + first_pfn * self.struct_page_size,
                })
        })
    }
}

#[cfg(test)]
mod tests;

//! Dump levels: which page frames a dump may leave out, decided the way
//! makedumpfile's `-d` decides it, from what the crashed kernel left in
//! memory and described in VMCOREINFO, with no vmlinux.
//!
//! On a real machine most of RAM is page cache, user data and free pages,
//! which nobody analysing a kernel crash reads; distributions capture with
//! `makedumpfile -d 31` and keep about a tenth of RAM. The filter looks at
//! the crashed kernel's `struct page` of every frame and puts the frame in
//! one of the [`ExcludeCategory`] classes, or keeps it. An excluded frame is
//! not read from the vmcore at all and is written as zeros at its usual
//! place, so the dump stays an ELF vmcore with the same program headers.
//!
//! # Dump level bits
//!
//! The level is a sum of makedumpfile's bits, 0 to 31:
//!
//! | bit | leaves out |
//! |----:|------------|
//! |   1 | pages filled with zeros |
//! |   2 | page cache pages without private data |
//! |   4 | page cache pages, with or without private data (buffer heads) |
//! |   8 | user data: anonymous pages, transparent and hugetlbfs huge pages |
//! |  16 | free pages (buddy allocator), and unaccepted memory on 6.16+ |
//!
//! Bit 4 includes what bit 2 leaves out, as in makedumpfile, whose level 4
//! already drops both kinds of cache page. Two further categories are left
//! out at every level, 0 included: hardware-poisoned pages, because reading
//! one can machine-check the capture kernel, and pages the kernel marked
//! logically offline (ballooned or unplugged memory), because touching them
//! can upset the hypervisor that took them back. Slab, page tables,
//! reserved memory, vmalloc areas, stacks and every other kernel page are
//! always kept.
//!
//! # What is here
//!
//! Every piece is a pure function of VMCOREINFO and of memory read through
//! a narrow trait, so that tests feed synthetic kernels:
//!
//! - [`layout`]: the `struct page` layout, page-flag bits, page-type values
//!   and the encoding era they imply, from VMCOREINFO keys alone.
//! - [`x86_64`]: kernel virtual to physical translation: the kernel image,
//!   the direct map and a page-table walk for everything else (vmemmap).
//! - [`memmap`]: the `mem_section` walk that finds each frame's
//!   `struct page`, with the vmemmap base every section must agree on.
//! - [`classify`]: makedumpfile's decision for one frame, in its order,
//!   from the frame's `struct page` (and a compound head's `page[1]`): kept,
//!   left out as one category with the frames the decision covers (a free
//!   block, a compound page), or unclassifiable and kept.
//! - [`window`]: that decision over a range of frames one window at a time,
//!   in step with an output stream and without a bitmap of all RAM: the
//!   excluded runs of each window, pages by category, frames left
//!   unclassified and struct-page bytes read, the struct pages read in
//!   large contiguous reads and an exclusion that runs past a window (an
//!   order-10 free block, a 1 GiB hugetlb folio) carried into the next.
//!
//! - [`exclude`]: the filter as the stream asks for it
//!   ([`crate::stream::compress_excluding`]): each output window turned into
//!   the frames its PT_LOAD segments hold, and the frames to leave out back
//!   into byte runs; the kernel image's segment, which repeats frames of the
//!   direct map's, is kept whole; [`exclude::Filtering`] falls back to zero
//!   pages only when the classifier cannot be set up. PID 1 and
//!   `lifeboat save -d` both use it.
//!
//! # Memory
//!
//! What filtering adds to a dump's memory, term by term, for a machine with
//! 1 TiB of RAM (2^28 frames, 8192 sections of 128 MiB, 16 GiB of
//! `struct page`s), the same with 4- and 5-level paging unless said:
//!
//! - the memory map ([`memmap::MemMap`]): one pfn range per run of
//!   adjacent valid sections, 16 bytes each: a few on a real machine, at
//!   most 4096 (64 KiB) if every other section were missing;
//! - the `mem_section` walk, done once before the dump: one page of root
//!   pointers at a time and one page of sections, 8 KiB; with 5-level
//!   paging the root array is 1 MiB, read a page at a time all the same;
//! - the translator: a few cached translations;
//! - the classifier ([`window::Classifier`]): at most
//!   [`window::MAX_READ_BYTES`] (2 MiB) of `struct page`s at a time, one
//!   flag byte per `struct page` read (32 KiB), and one window's excluded
//!   runs, at most one per frame of the window and usually a handful: an
//!   8 MiB frame (the frame size at 1 TiB) has 2048 frames, 48 KiB at
//!   worst;
//! - the stream: each frame's runs (the same bound) and its exclusion
//!   record (at most 21 bytes a run), per frame in flight.
//!
//! So about 2.2 MiB, of which none grows with RAM but the memory map's
//! runs; measured in the capture kernel (2 GiB guest, crashkernel=72M),
//! PID 1's peak went from 2.8 MiB at level 0 to 3.2 MiB at level 31.
//!
//! Bad input never costs the dump: any [`FilterError`] from setting the
//! filter up means the caller dumps with zero-page exclusion only, and says
//! why.

use thiserror::Error;

use crate::elf::ReadAt;
use crate::vmcore::{Vmcore, VmcoreError};

pub mod classify;
pub mod exclude;
mod keys;
pub mod layout;
pub mod memmap;
#[cfg(test)]
mod testinfo;
#[cfg(test)]
mod testmem;
pub mod window;
pub mod x86_64;

/// The crashed machine's physical memory, as the filter reads it: through
/// this trait, so that tests give it synthetic memory.
pub trait PhysRead {
    /// Fills `buf` from physical address `paddr`, or says which address is
    /// not in the dump.
    fn read_phys(&self, paddr: u64, buf: &mut [u8]) -> Result<(), VmcoreError>;
}

impl<R: ReadAt> PhysRead for Vmcore<R> {
    fn read_phys(&self, paddr: u64, buf: &mut [u8]) -> Result<(), VmcoreError> {
        Vmcore::read_phys(self, paddr, buf)
    }
}

/// Why frames of one kind are left out of a dump; the names are those of
/// lifeboat.json's `excluded_pages` and match makedumpfile's report lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ExcludeCategory {
    /// "Pages filled with zero"; counted only for frames no other category
    /// excluded.
    Zero,
    /// "Non-private cache pages".
    Cache,
    /// "Private cache pages".
    CachePrivate,
    /// "User process data pages".
    User,
    /// "Free pages".
    Free,
    /// "Hwpoison pages": never read, at any level.
    Hwpoison,
    /// "Offline pages": never read, at any level.
    Offline,
}

impl ExcludeCategory {
    /// Every category, in the order reports list them. A category's index
    /// here is its code in the dump's exclusion records
    /// ([`crate::seekable::exclusions`]): never reorder, only append.
    pub const ALL: [ExcludeCategory; 7] = [
        ExcludeCategory::Zero,
        ExcludeCategory::Cache,
        ExcludeCategory::CachePrivate,
        ExcludeCategory::User,
        ExcludeCategory::Free,
        ExcludeCategory::Hwpoison,
        ExcludeCategory::Offline,
    ];

    /// The category's index in [`ExcludeCategory::ALL`]: its slot in
    /// per-category counts and its code in exclusion records.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The name used in lifeboat.json and `lifeboat inspect`.
    pub const fn name(self) -> &'static str {
        match self {
            ExcludeCategory::Zero => "zero",
            ExcludeCategory::Cache => "cache",
            ExcludeCategory::CachePrivate => "cache_private",
            ExcludeCategory::User => "user",
            ExcludeCategory::Free => "free",
            ExcludeCategory::Hwpoison => "hwpoison",
            ExcludeCategory::Offline => "offline",
        }
    }

    /// The dump level bits any one of which leaves this category out;
    /// zero for the categories that are left out at every level.
    const fn level_bits(self) -> u8 {
        match self {
            ExcludeCategory::Zero => 1,
            ExcludeCategory::Cache => 2 | 4,
            ExcludeCategory::CachePrivate => 4,
            ExcludeCategory::User => 8,
            ExcludeCategory::Free => 16,
            ExcludeCategory::Hwpoison | ExcludeCategory::Offline => 0,
        }
    }
}

/// A makedumpfile dump level, 0 (keep every page) to 31 (leave out zero,
/// cache, user and free pages).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct DumpLevel(u8);

impl DumpLevel {
    /// The highest level: every bit set.
    pub const MAX: DumpLevel = DumpLevel(31);

    /// The level `level`, if it is one of makedumpfile's.
    pub const fn new(level: u8) -> Result<DumpLevel, FilterError> {
        if level <= DumpLevel::MAX.0 {
            Ok(DumpLevel(level))
        } else {
            Err(FilterError::DumpLevelOutOfRange { level })
        }
    }

    /// The level as a number, as configured and as recorded.
    pub const fn get(self) -> u8 {
        self.0
    }

    /// Whether frames of `category` are left out at this level.
    pub const fn excludes(self, category: ExcludeCategory) -> bool {
        let bits = category.level_bits();
        bits == 0 || self.0 & bits != 0
    }
}

impl TryFrom<u8> for DumpLevel {
    type Error = FilterError;

    fn try_from(level: u8) -> Result<Self, Self::Error> {
        DumpLevel::new(level)
    }
}

impl std::fmt::Display for DumpLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Why the filter cannot be set up, or one address cannot be translated.
#[derive(Debug, Error)]
pub enum FilterError {
    #[error("dump level {level} is not between 0 and 31")]
    DumpLevelOutOfRange { level: u8 },

    // Reading the layout from VMCOREINFO.
    #[error("the vmcore has no VMCOREINFO note")]
    NoVmcoreInfo,
    #[error("VMCOREINFO has no {key}")]
    MissingKey { key: String },
    #[error("VMCOREINFO has none of {}", .keys.join(", "))]
    MissingOneOf { keys: &'static [&'static str] },
    #[error("VMCOREINFO has both {first} and {second}, which no known kernel exports together")]
    ConflictingKeys { first: String, second: String },
    #[error("VMCOREINFO has {key} but not {needs}, which every known kernel exports with it")]
    KeyWithout { key: String, needs: String },
    #[error("VMCOREINFO {key}={value:?} is not a number")]
    Unparsable { key: String, value: String },
    #[error("PAGESIZE={size}: only {} byte pages are supported", layout::PAGE_SIZE)]
    PageSize { size: u64 },
    #[error("SIZE(page)={size} is not the size of a struct page")]
    StructPageSize { size: u64 },
    #[error("{key}: {width} bytes at offset {offset} do not fit in a {size} byte struct page")]
    FieldOutsidePage {
        key: String,
        offset: u64,
        width: u64,
        size: u64,
    },
    #[error("{key}={value} is not a bit of the 64-bit page.flags")]
    FlagBit { key: String, value: i64 },
    #[error("{key}={value} is not a mask of one bit")]
    NotOneBit { key: String, value: i64 },
    #[error("{key}={value} does not fit the 32-bit page._mapcount")]
    NotA32BitValue { key: String, value: i64 },
    #[error("{key}={value} does not fit the one-byte compound destructor")]
    NotAByte { key: String, value: i64 },
    #[error("{key}={value:#010x} has the shape of no known page-type encoding")]
    PageTypeEncoding { key: String, value: u32 },
    #[error(
        "{key} is a page type of kernels {kernels} but {first_key} one of kernels {first_kernels}"
    )]
    MixedPageTypeEras {
        key: String,
        kernels: &'static str,
        first_key: String,
        first_kernels: &'static str,
    },
    #[error("{key} and {other} are the same page type {value:#010x}")]
    SamePageType {
        key: String,
        other: String,
        value: u32,
    },
    #[error("LENGTH(zone.free_area)={value} is not a number of buddy orders")]
    PageOrders { value: u64 },

    // Translating kernel virtual addresses.
    #[error("NUMBER(KERNEL_IMAGE_SIZE)={value} is not the size of a kernel image mapping")]
    KernelImageSize { value: i64 },
    #[error("NUMBER(pgtable_l5_enabled)={value} is neither 0 nor 1")]
    PagingLevels { value: i64 },
    #[error("{key}={vaddr:#x} is not in the kernel image")]
    NotInKernelImage { key: String, vaddr: u64 },
    #[error("{key} is at physical {paddr:#x}, which is not the start of a page")]
    TableNotAligned { key: String, paddr: u64 },
    #[error("{vaddr:#x} is not a canonical address")]
    NonCanonical { vaddr: u64 },
    #[error("{len} bytes at {vaddr:#x} run past the end of the address space")]
    AddressOverflow { vaddr: u64, len: usize },
    #[error("cannot read the {level} entry for {vaddr:#x} at physical {paddr:#x}")]
    ReadPageTable {
        vaddr: u64,
        level: x86_64::Level,
        paddr: u64,
        #[source]
        source: VmcoreError,
    },
    #[error("{vaddr:#x} is not mapped: its {level} entry {entry:#x} is not present")]
    NotPresent {
        vaddr: u64,
        level: x86_64::Level,
        entry: u64,
    },
    #[error("cannot read {vaddr:#x} at physical {paddr:#x}")]
    ReadVirtual {
        vaddr: u64,
        paddr: u64,
        #[source]
        source: VmcoreError,
    },

    // Walking mem_section.
    #[error("SIZE(mem_section)={size} does not divide a page into sections")]
    SectionStructSize { size: u64 },
    #[error("OFFSET(mem_section.section_mem_map): 8 bytes at offset {offset} do not fit in a {size} byte struct mem_section")]
    FieldOutsideSection { offset: u64, size: u64 },
    #[error("NUMBER(SECTION_SIZE_BITS)={value} is not a memory section size of x86_64")]
    SectionSizeBits { value: i64 },
    #[error("NUMBER(MAX_PHYSMEM_BITS)={value} is not a physical address width of x86_64 above the section size")]
    MaxPhysmemBits { value: i64 },
    #[error("LENGTH(mem_section)={length}, where SPARSEMEM_EXTREME with these sizes has {expected} roots")]
    SectionRoots { length: u64, expected: u64 },
    #[error("LENGTH(mem_section)={length} is not between 1 and the {max} roots of 52-bit physical addresses")]
    TooManySectionRoots { length: u64, max: u64 },
    #[error(
        "SYMBOL(mem_section)={vaddr:#x}: its {length} roots run past the end of the address space"
    )]
    RootArrayOverflow { vaddr: u64, length: u64 },
    #[error("cannot read the mem_section roots from {root} at {vaddr:#x}")]
    MemSectionRoots {
        root: u64,
        vaddr: u64,
        #[source]
        source: Box<FilterError>,
    },
    #[error("cannot read the sections of mem_section root {root} at {vaddr:#x}")]
    MemSectionBlock {
        root: u64,
        vaddr: u64,
        #[source]
        source: Box<FilterError>,
    },
    #[error("section {section} has section_mem_map {value:#x}, which is no memory map address")]
    SectionMemMap { section: u64, value: u64 },
    #[error(
        "section {section} puts vmemmap at {base:#x}, section {first_section} at {first_base:#x}"
    )]
    InconsistentVmemmap {
        section: u64,
        base: u64,
        first_section: u64,
        first_base: u64,
    },
    #[error("{key}={value:#x}, but the memory sections put vmemmap at {base:#x}")]
    VmemmapMismatch {
        key: &'static str,
        value: u64,
        base: u64,
    },
    #[error("no memory section below pfn {end_pfn:#x} has a memory map")]
    NoMemorySections { end_pfn: u64 },

    // Classifying.
    #[error("the memory map has {memmap} byte struct pages, the layout {layout} byte ones")]
    MemMapStride { memmap: u64, layout: u64 },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// For each level makedumpfile's documentation tabulates, the
    /// categories it leaves out, in [`ExcludeCategory::ALL`] order.
    #[test]
    fn levels_exclude_as_makedumpfile_tabulates() {
        use ExcludeCategory::*;
        let cases: &[(u8, &[ExcludeCategory])] = &[
            (0, &[Hwpoison, Offline]),
            (1, &[Zero, Hwpoison, Offline]),
            (2, &[Cache, Hwpoison, Offline]),
            (3, &[Zero, Cache, Hwpoison, Offline]),
            (4, &[Cache, CachePrivate, Hwpoison, Offline]),
            (6, &[Cache, CachePrivate, Hwpoison, Offline]),
            (8, &[User, Hwpoison, Offline]),
            (16, &[Free, Hwpoison, Offline]),
            (17, &[Zero, Free, Hwpoison, Offline]),
            (
                31,
                &[Zero, Cache, CachePrivate, User, Free, Hwpoison, Offline],
            ),
        ];
        for (level, expected) in cases {
            let level = DumpLevel::new(*level).unwrap();
            let excluded: Vec<ExcludeCategory> = ExcludeCategory::ALL
                .into_iter()
                .filter(|&category| level.excludes(category))
                .collect();
            assert_eq!(&excluded, expected, "level {level}");
        }
    }

    #[test]
    fn only_levels_up_to_31_exist() {
        for level in 0..=31u8 {
            assert_eq!(DumpLevel::try_from(level).unwrap().get(), level);
        }
        for level in [32u8, 63, 255] {
            let error = DumpLevel::new(level).unwrap_err();
            assert!(
                matches!(error, FilterError::DumpLevelOutOfRange { level: l } if l == level),
                "{error}"
            );
        }
        assert_eq!(
            DumpLevel::new(32).unwrap_err().to_string(),
            "dump level 32 is not between 0 and 31"
        );
        assert_eq!(DumpLevel::default().get(), 0);
        assert_eq!(DumpLevel::MAX.get(), 31);
    }

    #[test]
    fn indexes_are_places_in_all() {
        for (at, category) in ExcludeCategory::ALL.iter().enumerate() {
            assert_eq!(category.index(), at);
        }
    }

    #[test]
    fn names_are_those_of_the_record() {
        let names: Vec<&str> = ExcludeCategory::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(
            names,
            [
                "zero",
                "cache",
                "cache_private",
                "user",
                "free",
                "hwpoison",
                "offline"
            ]
        );
    }
}

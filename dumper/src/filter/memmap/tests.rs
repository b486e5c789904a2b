//! `mem_section` walks over synthetic kernels: root arrays and section
//! blocks in a KASLR'd direct map, sections present, absent, without a
//! memory map and with every flag bit, roots beyond the first page of the
//! root array, and the ways the sections can disagree.

use super::*;
use crate::filter::testmem::{PageTables, SparseMemory, SIZE_1G, SIZE_2M};

const TOP_VADDR: u64 = 0xffff_ffff_9621_0000;
const TOP_PADDR: u64 = 0x0f01_0000;
const TABLE_POOL: u64 = 0x2000_0000;
/// Where the root array and the section blocks are in physical memory.
const ROOT_ARRAY: u64 = 0x7f01_9000;
const BLOCKS: u64 = 0x7e00_0000;
/// 128 MiB sections of 4 KiB pages.
const SECTION_SIZE_BITS: u32 = 27;
const PFNS_PER_SECTION: u64 = 1 << (SECTION_SIZE_BITS - 12);
const PER_ROOT: u64 = 256;
/// Present, has a memory map, online, early.
const BOOT_FLAGS: u64 = 0xf;
const SIZE_OF_PAGE: u64 = 64;

struct Paging {
    levels: u32,
    direct_map: u64,
    vmemmap: u64,
    max_physmem_bits: u32,
}

const FOUR_LEVEL: Paging = Paging {
    levels: 4,
    direct_map: 0xffff_9a3c_8000_0000,
    vmemmap: 0xffff_d7a5_4000_0000,
    max_physmem_bits: 46,
};

const FIVE_LEVEL: Paging = Paging {
    levels: 5,
    direct_map: 0xff2a_ddf3_4000_0000,
    vmemmap: 0xffd4_b6c0_0000_0000,
    max_physmem_bits: 52,
};

impl Paging {
    fn nr_roots(&self) -> u64 {
        (1 << (self.max_physmem_bits - SECTION_SIZE_BITS)) / PER_ROOT
    }

    fn vmcoreinfo(&self, extra: &str) -> String {
        format!(
            "NUMBER(phys_base)=-119537664\n\
             SYMBOL(init_top_pgt)={TOP_VADDR:x}\n\
             NUMBER(pgtable_l5_enabled)={}\n\
             NUMBER(KERNEL_IMAGE_SIZE)=1073741824\n\
             SYMBOL(mem_section)={:x}\n\
             LENGTH(mem_section)={}\n\
             SIZE(mem_section)=16\n\
             OFFSET(mem_section.section_mem_map)=0\n\
             NUMBER(SECTION_SIZE_BITS)={SECTION_SIZE_BITS}\n\
             NUMBER(MAX_PHYSMEM_BITS)={}\n\
             {extra}",
            u8::from(self.levels == 5),
            self.direct_map + ROOT_ARRAY,
            self.nr_roots(),
            self.max_physmem_bits,
        )
    }
}

/// A crashed kernel whose sections hold the given `section_mem_map`
/// values, all others absent; RAM up to 4 GiB is in the direct map, and
/// the first 2 MiB of the memory map are mapped.
struct Kernel {
    memory: SparseMemory,
    translator: Translator,
    sections: MemSections,
}

fn kernel(paging: &Paging, values: &[(u64, u64)], extra: &str) -> Kernel {
    let mut memory = SparseMemory::new();
    let mut tables = PageTables::new(&mut memory, paging.levels, TOP_PADDR, TABLE_POOL);
    for gib in 0..4 {
        let offset = gib * SIZE_1G;
        tables.map(&mut memory, paging.direct_map + offset, offset, SIZE_1G, 0);
    }
    tables.map(&mut memory, paging.vmemmap, 0x3000_0000, SIZE_2M, 0);

    let mut blocks: Vec<u64> = Vec::new();
    for &(section, value) in values {
        let root = section / PER_ROOT;
        if !blocks.contains(&root) {
            let block = BLOCKS + blocks.len() as u64 * 4096;
            memory.touch(block);
            memory.write_u64(ROOT_ARRAY + root * 8, paging.direct_map + block);
            blocks.push(root);
        }
        let index = blocks.iter().position(|&r| r == root).unwrap() as u64;
        memory.write_u64(BLOCKS + index * 4096 + (section % PER_ROOT) * 16, value);
    }
    // The first two pages of the root array, which the tests read; the
    // rest may stay absent.
    memory.touch(ROOT_ARRAY);
    memory.touch(ROOT_ARRAY + 4096);

    let info = VmcoreInfo::parse(paging.vmcoreinfo(extra).as_bytes()).unwrap();
    let loads = [LoadSegment {
        file_offset: 0,
        vaddr: paging.direct_map + 0x10_0000,
        paddr: 0x10_0000,
        file_size: 4 * SIZE_1G - 0x10_0000,
        mem_size: 4 * SIZE_1G - 0x10_0000,
    }];
    let translator = Translator::new(&info, &loads, &memory).unwrap();
    let sections = MemSections::from_vmcoreinfo(&info).unwrap();
    Kernel {
        memory,
        translator,
        sections,
    }
}

impl Kernel {
    fn read(&mut self, end_pfn: u64) -> Result<MemMap, FilterError> {
        self.sections
            .read(SIZE_OF_PAGE, &mut self.translator, &self.memory, end_pfn)
    }
}

/// The sections of a machine with holes, sparse memory far up, and every
/// flag bit the kernel sets.
fn typical(paging: &Paging) -> Vec<(u64, u64)> {
    let base = paging.vmemmap;
    let mut values = Vec::new();
    for section in 0..16 {
        let flags = match section {
            3 => BOOT_FLAGS | 1 << 4, // ZONE_DEVICE
            5 => BOOT_FLAGS | 1 << 5, // vmemmap preinit
            _ => BOOT_FLAGS,
        };
        values.push((section, base | flags));
    }
    // 16 to 23 are a hole; 24 to 31 were hot-added (not early).
    for section in 24..32 {
        values.push((section, base | 0x7));
    }
    // Present but without a memory map: skipped.
    values.push((40, 1));
    // In the second root, and in the second page of roots.
    values.push((300, base | BOOT_FLAGS));
    values.push((512 * PER_ROOT, base | BOOT_FLAGS));
    values
}

fn pfns(sections: Range<u64>) -> Range<u64> {
    sections.start * PFNS_PER_SECTION..sections.end * PFNS_PER_SECTION
}

#[test]
fn sections_give_the_memory_map() {
    for paging in [&FOUR_LEVEL, &FIVE_LEVEL] {
        let mut kernel = kernel(paging, &typical(paging), "");
        let last = 512 * PER_ROOT;
        let memmap = kernel.read((last + 1) * PFNS_PER_SECTION).unwrap();
        assert_eq!(memmap.vmemmap(), paging.vmemmap);
        assert_eq!(
            memmap.present(),
            [
                pfns(0..16),
                pfns(24..32),
                pfns(300..301),
                pfns(last..last + 1)
            ]
        );
        let sections: Vec<Section> = memmap.sections().collect();
        assert_eq!(sections.len(), 16 + 8 + 1 + 1);
        assert_eq!(
            sections[16],
            Section {
                number: 24,
                first_pfn: 24 * PFNS_PER_SECTION,
                mem_map: paging.vmemmap + 24 * PFNS_PER_SECTION * SIZE_OF_PAGE,
            }
        );
        assert_eq!(sections[25].number, last);

        let cases: &[(u64, Option<u64>)] = &[
            (0, Some(paging.vmemmap)),
            (0x1234, Some(paging.vmemmap + 0x1234 * SIZE_OF_PAGE)),
            (
                16 * PFNS_PER_SECTION - 1,
                Some(paging.vmemmap + (16 * PFNS_PER_SECTION - 1) * SIZE_OF_PAGE),
            ),
            (16 * PFNS_PER_SECTION, None),
            (40 * PFNS_PER_SECTION, None),
            (
                300 * PFNS_PER_SECTION + 7,
                Some(paging.vmemmap + (300 * PFNS_PER_SECTION + 7) * SIZE_OF_PAGE),
            ),
            (u64::MAX, None),
        ];
        for (pfn, expected) in cases {
            assert_eq!(memmap.struct_page(*pfn), *expected, "pfn {pfn:#x}");
        }

        // The struct page found is the one the kernel wrote, through the
        // vmemmap's page tables.
        let vaddr = memmap.struct_page(0x1234).unwrap();
        kernel
            .memory
            .write_u64(0x3000_0000 + 0x1234 * SIZE_OF_PAGE, 0x5eed);
        assert_eq!(
            kernel.translator.read_u64(&kernel.memory, vaddr).unwrap(),
            0x5eed
        );
    }
}

/// Only the roots below the highest pfn the dump holds are read: the rest
/// of a 1 MiB root array may be absent from the dump.
#[test]
fn roots_are_read_only_as_far_as_needed() {
    let mut kernel = kernel(&FIVE_LEVEL, &typical(&FIVE_LEVEL), "");
    // The second page of roots is missing; memory up to 2 GiB needs one
    // root, memory up to section 301 two, both in the first page.
    kernel.memory.forget(ROOT_ARRAY + 4096);
    let memmap = kernel.read(pfns(0..16).end).unwrap();
    assert_eq!(memmap.present(), [pfns(0..16)]);
    let memmap = kernel.read(pfns(0..301).end).unwrap();
    assert_eq!(
        memmap.present(),
        [pfns(0..16), pfns(24..32), pfns(300..301)]
    );
    let error = kernel.read(pfns(0..512 * PER_ROOT + 1).end).unwrap_err();
    assert!(
        matches!(error, FilterError::MemSectionRoots { root: 512, .. }),
        "{error}"
    );
}

#[test]
fn end_pfn_of_the_loads() {
    let load = |paddr: u64, size: u64| LoadSegment {
        file_offset: 0,
        vaddr: 0,
        paddr,
        file_size: size,
        mem_size: size,
    };
    assert_eq!(end_pfn(&[]), 0);
    assert_eq!(
        end_pfn(&[load(0x10_0000, 0x7ff0_0000), load(0xd60_0000, 0x283_0000)]),
        0x8_0000
    );
    // A partial last page counts.
    assert_eq!(end_pfn(&[load(0x1000, 0x1001)]), 3);
}

/// Each case: a change to the typical sections or VMCOREINFO, and the
/// error's text.
#[test]
fn disagreeing_sections_are_errors() {
    let paging = &FOUR_LEVEL;
    let base = paging.vmemmap;
    let end = pfns(0..512 * PER_ROOT + 1).end;
    type Change = fn(&mut Vec<(u64, u64)>);
    let cases: &[(&str, Change, &str, String)] = &[
        (
            "one section elsewhere",
            |v| v.push((7, (FOUR_LEVEL.vmemmap + (1 << 30)) | BOOT_FLAGS)),
            "",
            format!(
                "section 7 puts vmemmap at {:#x}, section 0 at {base:#x}",
                base + (1 << 30)
            ),
        ),
        (
            "a user address",
            |v| v.push((0, 0x7f00_0000_0000 | BOOT_FLAGS)),
            "",
            "section 0 has section_mem_map 0x7f000000000f, which is no memory map address".into(),
        ),
        (
            "a memory map past the end of the address space",
            |v| {
                v.clear();
                v.push((9, 0xffff_ffff_ffe0_0000 | BOOT_FLAGS))
            },
            "",
            "section 9 has section_mem_map 0xffffffffffe0000f, which is no memory map address"
                .into(),
        ),
        (
            "no section with a memory map",
            |v| {
                v.clear();
                v.push((2, 1));
            },
            "",
            format!("no memory section below pfn {end:#x} has a memory map"),
        ),
        (
            "SYMBOL(vmemmap) elsewhere",
            |_| {},
            "SYMBOL(vmemmap)=ffffea0000000000\n",
            format!(
                "SYMBOL(vmemmap)=0xffffea0000000000, but the memory sections put vmemmap at {base:#x}"
            ),
        ),
        (
            "NUMBER(VMEMMAP_START) elsewhere",
            |_| {},
            "NUMBER(VMEMMAP_START)=-24189255811072\n",
            format!(
                "NUMBER(VMEMMAP_START)=0xffffea0000000000, but the memory sections put vmemmap at {base:#x}"
            ),
        ),
    ];
    for (name, change, extra, expected) in cases {
        let mut values = typical(paging);
        // Later values for a section overwrite earlier ones.
        change(&mut values);
        let mut kernel = kernel(paging, &values, extra);
        match kernel.read(end) {
            Ok(memmap) => panic!("{name}: accepted as {memmap:?}"),
            Err(error) => assert_eq!(error.to_string(), *expected, "{name}"),
        }
    }
}

#[test]
fn agreeing_exports_are_accepted() {
    let extra = format!(
        "SYMBOL(vmemmap)={:x}\nNUMBER(VMEMMAP_START)={}\n",
        FIVE_LEVEL.vmemmap, FIVE_LEVEL.vmemmap as i64
    );
    let mut kernel = kernel(&FIVE_LEVEL, &typical(&FIVE_LEVEL), &extra);
    let memmap = kernel.read(pfns(0..16).end).unwrap();
    assert_eq!(memmap.vmemmap(), FIVE_LEVEL.vmemmap);
}

#[test]
fn unreadable_sections_are_errors() {
    let mut kernel = kernel(&FOUR_LEVEL, &typical(&FOUR_LEVEL), "");
    // Root 1's block is the second one the builder placed.
    kernel.memory.forget(BLOCKS + 4096);
    let error = kernel.read(pfns(0..301).end).unwrap_err();
    let block = FOUR_LEVEL.direct_map + BLOCKS + 4096;
    assert_eq!(
        crate::error_chain(&error),
        format!(
            "cannot read the sections of mem_section root 1 at {block:#x}: \
             cannot read {block:#x} at physical {:#x}: \
             physical address {:#x} is in no PT_LOAD segment",
            BLOCKS + 4096,
            BLOCKS + 4096
        )
    );

    kernel.memory.forget(ROOT_ARRAY);
    let error = kernel.read(pfns(0..1).end).unwrap_err();
    assert!(
        matches!(error, FilterError::MemSectionRoots { root: 0, vaddr, .. } if vaddr == FOUR_LEVEL.direct_map + ROOT_ARRAY),
        "{error}"
    );
}

/// Each case: edits to the four-level kernel's VMCOREINFO, and the error's
/// text naming the key.
#[test]
fn bad_keys_are_errors_naming_the_key() {
    type Edits = &'static [(&'static str, Option<&'static str>)];
    let cases: &[(Edits, &str)] = &[
        (&[("SYMBOL(mem_section)", None)], "VMCOREINFO has no SYMBOL(mem_section)"),
        (&[("LENGTH(mem_section)", None)], "VMCOREINFO has no LENGTH(mem_section)"),
        (&[("SIZE(mem_section)", None)], "VMCOREINFO has no SIZE(mem_section)"),
        (
            &[("OFFSET(mem_section.section_mem_map)", None)],
            "VMCOREINFO has no OFFSET(mem_section.section_mem_map)",
        ),
        (
            &[("NUMBER(SECTION_SIZE_BITS)", None)],
            "VMCOREINFO has no NUMBER(SECTION_SIZE_BITS)",
        ),
        (
            &[("SIZE(mem_section)", Some("24"))],
            "SIZE(mem_section)=24 does not divide a page into sections",
        ),
        (
            &[("SIZE(mem_section)", Some("4"))],
            "SIZE(mem_section)=4 does not divide a page into sections",
        ),
        (
            &[("OFFSET(mem_section.section_mem_map)", Some("12"))],
            "OFFSET(mem_section.section_mem_map): 8 bytes at offset 12 do not fit in a 16 byte struct mem_section",
        ),
        (
            &[("NUMBER(SECTION_SIZE_BITS)", Some("12"))],
            "NUMBER(SECTION_SIZE_BITS)=12 is not a memory section size of x86_64",
        ),
        (
            &[("NUMBER(SECTION_SIZE_BITS)", Some("-27"))],
            "NUMBER(SECTION_SIZE_BITS)=-27 is not a memory section size of x86_64",
        ),
        (
            &[("NUMBER(MAX_PHYSMEM_BITS)", Some("60"))],
            "NUMBER(MAX_PHYSMEM_BITS)=60 is not a physical address width of x86_64 above the section size",
        ),
        (
            &[("NUMBER(MAX_PHYSMEM_BITS)", Some("27"))],
            "NUMBER(MAX_PHYSMEM_BITS)=27 is not a physical address width of x86_64 above the section size",
        ),
        (
            &[("LENGTH(mem_section)", Some("2047"))],
            "LENGTH(mem_section)=2047, where SPARSEMEM_EXTREME with these sizes has 2048 roots",
        ),
        (
            &[("NUMBER(MAX_PHYSMEM_BITS)", None), ("LENGTH(mem_section)", Some("0"))],
            "LENGTH(mem_section)=0 is not between 1 and the 131072 roots of 52-bit physical addresses",
        ),
        (
            &[("NUMBER(MAX_PHYSMEM_BITS)", None), ("LENGTH(mem_section)", Some("131073"))],
            "LENGTH(mem_section)=131073 is not between 1 and the 131072 roots of 52-bit physical addresses",
        ),
        (
            &[("SYMBOL(mem_section)", Some("fffffffffffff000"))],
            "SYMBOL(mem_section)=0xfffffffffffff000: its 2048 roots run past the end of the address space",
        ),
        (
            &[("SYMBOL(vmemmap)", Some("zz"))],
            "VMCOREINFO SYMBOL(vmemmap)=\"zz\" is not a number",
        ),
    ];
    for (edits, expected) in cases {
        let mut lines: Vec<String> = FOUR_LEVEL
            .vmcoreinfo("")
            .lines()
            .map(String::from)
            .collect();
        for (key, value) in *edits {
            lines.retain(|line| !line.starts_with(&format!("{key}=")));
            if let Some(value) = value {
                lines.push(format!("{key}={value}"));
            }
        }
        let info = VmcoreInfo::parse(lines.join("\n").as_bytes()).unwrap();
        match MemSections::from_vmcoreinfo(&info) {
            Ok(sections) => panic!("{edits:?}: accepted as {sections:?}"),
            Err(error) => assert_eq!(error.to_string(), *expected, "{edits:?}"),
        }
    }
    // Without MAX_PHYSMEM_BITS (before 5.9) the 52-bit bound is enough.
    let text = FOUR_LEVEL
        .vmcoreinfo("")
        .replace("NUMBER(MAX_PHYSMEM_BITS)=46\n", "");
    let info = VmcoreInfo::parse(text.as_bytes()).unwrap();
    MemSections::from_vmcoreinfo(&info).unwrap();
}

/// The real 6.1 notes: the cloud kernel's 16-byte sections, and the
/// generic kernel's 32-byte ones (with page_ext), both five-level.
#[test]
fn real_6_1_kernels() {
    let cases = [
        (
            include_str!("../../testdata/vmcoreinfo/6.1.0-57-cloud-amd64.txt"),
            256,
            0xff2a_ddf3_bf01_9000,
        ),
        (
            include_str!("../../testdata/vmcoreinfo/6.1.0-57-amd64.txt"),
            128,
            0xff22_6642_7f44_c000,
        ),
    ];
    for (text, per_root, root_array) in cases {
        let info = VmcoreInfo::parse(text.as_bytes()).unwrap();
        let sections = MemSections::from_vmcoreinfo(&info).unwrap();
        assert_eq!(sections.sections_per_root(), per_root);
        assert_eq!(sections.pfns_per_section(), 32768);
        assert_eq!(sections.root_array, root_array);
        assert!(sections.vmemmap_exported.is_empty());
    }
}

/// The whole chain on an ELF vmcore, as the capture will run it: the
/// translator from the vmcore's VMCOREINFO and PT_LOADs reading through
/// [`Vmcore`](crate::vmcore::Vmcore), then the walk.
#[test]
fn through_a_vmcore() {
    let paging = &FOUR_LEVEL;
    let mut kernel = kernel(paging, &typical(paging), "");
    let bytes = kernel
        .memory
        .to_core(paging.direct_map, &paging.vmcoreinfo(""));
    let vmcore = crate::vmcore::Vmcore::open(bytes.as_slice()).unwrap();
    let info = vmcore.vmcoreinfo().unwrap();
    let loads = &vmcore.headers().loads;
    let mut translator = Translator::new(info, loads, &vmcore).unwrap();
    assert_eq!(translator.direct_map_offsets(), [paging.direct_map]);
    let sections = MemSections::from_vmcoreinfo(info).unwrap();
    // The highest frames in the dump are the root array's, below 2 GiB.
    let end = end_pfn(loads);
    assert_eq!(end, (ROOT_ARRAY + 2 * 4096) / 4096);
    let memmap = sections
        .read(SIZE_OF_PAGE, &mut translator, &vmcore, end)
        .unwrap();
    assert_eq!(memmap.present(), [pfns(0..16)]);
    assert_eq!(memmap, kernel.read(end).unwrap());
}

//! Translation tests on synthetic machines: page tables built in sparse
//! physical memory with four and five levels, 4 KiB, 2 MiB and 1 GiB
//! leaves, a KASLR'd direct map and vmemmap, a kernel loaded below its link
//! address, and memory encryption; plus the real layout of the 6.1 cloud
//! kernel captured by the QEMU tests.

use super::*;
use crate::filter::testmem::{PageTables, SparseMemory, SIZE_1G, SIZE_2M, SIZE_4K};

/// `NUMBER(phys_base)` of the real 6.1 cloud vmcore: loaded 114 MiB below
/// its link address.
const PHYS_BASE: i64 = -119_537_664;
/// `SYMBOL(init_top_pgt)` of the same vmcore, and where it is physically.
const TOP_VADDR: u64 = 0xffff_ffff_9621_0000;
const TOP_PADDR: u64 = 0x0f01_0000;
/// Where the synthetic kernels' page tables come from.
const TABLE_POOL: u64 = 0x2000_0000;
/// The PAT bit of a large leaf, which is not part of its address.
const PAT_LARGE: u64 = 1 << 12;
/// An AMD memory-encryption bit.
const C_BIT: u64 = 1 << 47;

/// A synthetic machine's addresses for one paging mode.
struct Machine {
    paging: Paging,
    /// The randomised direct-map base.
    direct_map: u64,
    /// The randomised vmemmap base.
    vmemmap: u64,
    /// A vmalloc address mapped with a 1 GiB leaf.
    vmalloc: u64,
    /// Unmapped and canonical, with an empty top-level entry.
    unmapped: u64,
    /// Not canonical for this paging mode.
    non_canonical: u64,
}

const FOUR_LEVEL: Machine = Machine {
    paging: Paging::FourLevel,
    direct_map: 0xffff_9a3c_8000_0000,
    vmemmap: 0xffff_d7a5_4000_0000,
    vmalloc: 0xffff_b1c2_4000_0000,
    unmapped: 0xffff_8000_0000_0000,
    non_canonical: 0x0000_8000_0000_0000,
};

const FIVE_LEVEL: Machine = Machine {
    paging: Paging::FiveLevel,
    direct_map: 0xff2a_ddf3_4000_0000,
    vmemmap: 0xffd4_b6c0_0000_0000,
    vmalloc: 0xffa0_0011_4000_0000,
    unmapped: 0xff00_0000_0000_0000,
    non_canonical: 0x0100_0000_0000_0000,
};

/// The direct-map PT_LOAD: RAM from 1 MiB to 2 GiB.
const RAM_START: u64 = 0x10_0000;
const RAM_END: u64 = 0x8000_0000;

fn vmcoreinfo(paging: Paging, sme_mask: u64) -> String {
    let l5 = u8::from(paging == Paging::FiveLevel);
    format!(
        "NUMBER(phys_base)={PHYS_BASE}\n\
         SYMBOL(init_top_pgt)={TOP_VADDR:x}\n\
         NUMBER(pgtable_l5_enabled)={l5}\n\
         NUMBER(KERNEL_IMAGE_SIZE)=1073741824\n\
         NUMBER(sme_mask)={sme_mask}\n"
    )
}

fn load(vaddr: u64, paddr: u64, size: u64) -> LoadSegment {
    LoadSegment {
        file_offset: 0,
        vaddr,
        paddr,
        file_size: size,
        mem_size: size,
    }
}

/// Builds `machine`'s page tables, with `entry_bits` in every entry:
/// the direct map in 1 GiB leaves, vmemmap in two 2 MiB leaves (the second
/// with its PAT bit set) and one 4 KiB page after a hole, a 1 GiB vmalloc
/// leaf.
fn build(machine: &Machine, entry_bits: u64) -> (SparseMemory, PageTables) {
    let mut memory = SparseMemory::new();
    let levels = if machine.paging == Paging::FiveLevel {
        5
    } else {
        4
    };
    let mut tables = PageTables::new(&mut memory, levels, TOP_PADDR, TABLE_POOL);
    tables.entry_bits = entry_bits;
    for gib in 0..4 {
        let offset = gib * SIZE_1G;
        tables.map(&mut memory, machine.direct_map + offset, offset, SIZE_1G, 0);
    }
    let vmemmap = machine.vmemmap;
    tables.map(&mut memory, vmemmap, 0x3000_0000, SIZE_2M, 0);
    tables.map(
        &mut memory,
        vmemmap + SIZE_2M,
        0x3080_0000,
        SIZE_2M,
        PAT_LARGE,
    );
    tables.map(&mut memory, vmemmap + 2 * SIZE_2M, 0x3050_1000, SIZE_4K, 0);
    tables.map(&mut memory, machine.vmalloc, 0x4000_0000, SIZE_1G, 0);
    (memory, tables)
}

fn translator(machine: &Machine, memory: &SparseMemory, sme_mask: u64) -> Translator {
    let info = VmcoreInfo::parse(vmcoreinfo(machine.paging, sme_mask).as_bytes()).unwrap();
    let loads = [
        load(0xffff_ffff_9480_0000, 0x0d60_0000, 0x0283_0000),
        load(
            machine.direct_map + RAM_START,
            RAM_START,
            RAM_END - RAM_START,
        ),
    ];
    Translator::new(&info, &loads, memory).unwrap()
}

#[derive(Debug)]
enum Expect {
    Maps { paddr: u64, len: u64 },
    NotPresent(Level),
    NonCanonical,
}

fn check(translator: &mut Translator, memory: &SparseMemory, cases: &[(&str, u64, Expect)]) {
    for (name, vaddr, expected) in cases {
        let got = translator.translate(memory, *vaddr);
        match (expected, &got) {
            (Expect::Maps { paddr, len }, Ok(mapping)) => assert_eq!(
                *mapping,
                Mapping {
                    paddr: *paddr,
                    len: *len
                },
                "{name}: {vaddr:#x}"
            ),
            (Expect::NotPresent(level), Err(FilterError::NotPresent { level: l, .. }))
                if l == level => {}
            (Expect::NonCanonical, Err(FilterError::NonCanonical { vaddr: v })) if v == vaddr => {}
            _ => panic!("{name}: {vaddr:#x}: got {got:?}, expected {expected:?}"),
        }
    }
}

/// Each address kind, on both paging modes, with and without memory
/// encryption.
#[test]
fn translations_on_four_and_five_levels() {
    for machine in [&FOUR_LEVEL, &FIVE_LEVEL] {
        for sme_mask in [0, C_BIT] {
            let (memory, _) = build(machine, sme_mask);
            let mut translator = translator(machine, &memory, sme_mask);
            assert_eq!(translator.paging(), machine.paging);
            assert_eq!(translator.direct_map_offsets(), [machine.direct_map]);
            let v = machine.vmemmap;
            let (p4d_or_pgd, top) = match machine.paging {
                Paging::FourLevel => (Level::Pgd, Level::Pgd),
                Paging::FiveLevel => (Level::P4d, Level::Pgd),
            };
            let cases = [
                (
                    "kernel image, below its link address",
                    0xffff_ffff_9480_0123,
                    Expect::Maps {
                        paddr: 0x0d60_0123,
                        len: SIZE_1G - 0x1480_0123,
                    },
                ),
                (
                    "direct map in a PT_LOAD",
                    machine.direct_map + 0x7f01_9000,
                    Expect::Maps {
                        paddr: 0x7f01_9000,
                        len: RAM_END - 0x7f01_9000,
                    },
                ),
                (
                    "direct map outside the PT_LOADs",
                    machine.direct_map + 0x1000,
                    Expect::Maps {
                        paddr: 0x1000,
                        len: SIZE_1G - 0x1000,
                    },
                ),
                (
                    "direct map beyond the PT_LOADs",
                    machine.direct_map + 3 * SIZE_1G + 8,
                    Expect::Maps {
                        paddr: 3 * SIZE_1G + 8,
                        len: SIZE_1G - 8,
                    },
                ),
                (
                    "vmemmap, 2 MiB leaf",
                    v + 0x12340,
                    Expect::Maps {
                        paddr: 0x3001_2340,
                        len: SIZE_2M - 0x12340,
                    },
                ),
                (
                    "vmemmap, 2 MiB leaf with the PAT bit",
                    v + SIZE_2M + 8,
                    Expect::Maps {
                        paddr: 0x3080_0008,
                        len: SIZE_2M - 8,
                    },
                ),
                (
                    "vmemmap, 4 KiB leaf",
                    v + 2 * SIZE_2M + 0x10,
                    Expect::Maps {
                        paddr: 0x3050_1010,
                        len: SIZE_4K - 0x10,
                    },
                ),
                (
                    "vmalloc, 1 GiB leaf",
                    machine.vmalloc + 0x2345_6789,
                    Expect::Maps {
                        paddr: 0x6345_6789,
                        len: SIZE_1G - 0x2345_6789,
                    },
                ),
                (
                    "PTE not present",
                    v + 2 * SIZE_2M + SIZE_4K,
                    Expect::NotPresent(Level::Pte),
                ),
                (
                    "PMD not present",
                    v + 3 * SIZE_2M,
                    Expect::NotPresent(Level::Pmd),
                ),
                (
                    "PUD not present",
                    v + SIZE_1G,
                    Expect::NotPresent(Level::Pud),
                ),
                (
                    "P4D (PGD with four levels) not present",
                    v + (512 * SIZE_1G),
                    Expect::NotPresent(p4d_or_pgd),
                ),
                (
                    "top level not present",
                    machine.unmapped,
                    Expect::NotPresent(top),
                ),
                ("not canonical", machine.non_canonical, Expect::NonCanonical),
            ];
            check(&mut translator, &memory, &cases);
        }
    }
}

/// The memory map is read in order: one walk per leaf, however many
/// struct pages it holds, and the cache stays right as leaves are evicted.
#[test]
fn walks_are_cached() {
    let (memory, _) = build(&FIVE_LEVEL, 0);
    let mut translator = translator(&FIVE_LEVEL, &memory, 0);
    let after_new = translator.walks();
    let v = FIVE_LEVEL.vmemmap;
    for offset in (0..SIZE_2M).step_by(64) {
        let mapping = translator.translate(&memory, v + offset).unwrap();
        assert_eq!(mapping.paddr, 0x3000_0000 + offset);
    }
    assert_eq!(translator.walks(), after_new + 1);
    // Sixteen leaves in turn, twice: the eight remembered are never the
    // ones asked for next, and every answer is still right.
    let mut memory = memory;
    let levels = 5;
    let mut tables = PageTables::new(&mut memory, levels, TOP_PADDR, 0x2800_0000);
    let base = 0xffd5_0000_0000_0000;
    for leaf in 0..16 {
        tables.map(
            &mut memory,
            base + leaf * SIZE_2M,
            0x5000_0000 + leaf * 2 * SIZE_2M,
            SIZE_2M,
            0,
        );
    }
    let before = translator.walks();
    for _ in 0..2 {
        for leaf in 0..16 {
            let mapping = translator
                .translate(&memory, base + leaf * SIZE_2M + 0x40)
                .unwrap();
            assert_eq!(mapping.paddr, 0x5000_0000 + leaf * 2 * SIZE_2M + 0x40);
        }
    }
    assert_eq!(translator.walks(), before + 32);
}

/// A PT_LOAD whose `p_vaddr` is a fixed `PAGE_OFFSET` although memory KASLR
/// moved the direct map: its offset is not used, and direct-map addresses
/// are found by walking.
#[test]
fn unconfirmed_direct_map_is_walked() {
    let (memory, _) = build(&FOUR_LEVEL, 0);
    let info = VmcoreInfo::parse(vmcoreinfo(Paging::FourLevel, 0).as_bytes()).unwrap();
    let page_offset = 0xffff_8880_0000_0000;
    let loads = [
        load(page_offset + RAM_START, RAM_START, SIZE_2M),
        load(page_offset + SIZE_1G, SIZE_1G, SIZE_2M),
    ];
    let mut translator = Translator::new(&info, &loads, &memory).unwrap();
    assert_eq!(translator.direct_map_offsets(), Vec::<u64>::new());
    // One walk for both segments, which share the offset.
    assert_eq!(translator.walks(), 1);
    let error = translator
        .translate(&memory, page_offset + RAM_START)
        .unwrap_err();
    assert!(matches!(error, FilterError::NotPresent { .. }), "{error}");
    let mapping = translator
        .translate(&memory, FOUR_LEVEL.direct_map + RAM_START)
        .unwrap();
    assert_eq!(mapping.paddr, RAM_START);
}

/// Tables the dump does not hold are errors naming the level and where.
#[test]
fn unreadable_tables() {
    let (mut memory, tables) = build(&FOUR_LEVEL, 0);
    let v = FOUR_LEVEL.vmemmap;
    let pmd_table = tables.table_at(&memory, v, 21);
    memory.forget(pmd_table);
    let mut translator = translator(&FOUR_LEVEL, &memory, 0);
    let error = translator.translate(&memory, v).unwrap_err();
    match &error {
        FilterError::ReadPageTable {
            vaddr,
            level: Level::Pmd,
            paddr,
            ..
        } => {
            assert_eq!(*vaddr, v);
            assert_eq!(*paddr, pmd_table + ((v >> 21) & 511) * 8);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        error.to_string().starts_with(&format!(
            "cannot read the PMD entry for {v:#x} at physical {pmd_table:#x}"
        )),
        "{error}"
    );
}

#[test]
fn present_bit_cleared_at_each_level() {
    for (levels, machine, shifts) in [
        (4, &FOUR_LEVEL, &[39u32, 30, 21][..]),
        (5, &FIVE_LEVEL, &[48, 39, 30, 21][..]),
    ] {
        for &shift in shifts {
            let (mut memory, tables) = build(machine, 0);
            tables.unmap_at(&mut memory, machine.vmemmap, shift);
            let mut translator = translator(machine, &memory, 0);
            let error = translator.translate(&memory, machine.vmemmap).unwrap_err();
            let level = match (levels, shift) {
                (_, 48) | (4, 39) => Level::Pgd,
                (5, 39) => Level::P4d,
                (_, 30) => Level::Pud,
                _ => Level::Pmd,
            };
            assert!(
                matches!(error, FilterError::NotPresent { level: l, .. } if l == level),
                "{levels} levels, bit {shift}: {error}"
            );
        }
    }
}

#[test]
fn reads_cross_leaves() {
    let (mut memory, _) = build(&FOUR_LEVEL, 0);
    let v = FOUR_LEVEL.vmemmap;
    // The last bytes of the first vmemmap leaf and the first of the second,
    // which is elsewhere in physical memory.
    memory.write(0x3000_0000 + SIZE_2M - 4, &[1, 2, 3, 4]);
    memory.write(0x3080_0000, &[5, 6, 7, 8]);
    let mut translator = translator(&FOUR_LEVEL, &memory, 0);
    let mut buf = [0u8; 8];
    translator.read(&memory, v + SIZE_2M - 4, &mut buf).unwrap();
    assert_eq!(buf, [1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(
        translator.read_u64(&memory, v + SIZE_2M - 4).unwrap(),
        u64::from_le_bytes([1, 2, 3, 4, 5, 6, 7, 8])
    );

    // Mapped, but the frame is not in the dump.
    let error = translator
        .read(&memory, FOUR_LEVEL.vmalloc, &mut buf)
        .unwrap_err();
    assert!(
        matches!(error, FilterError::ReadVirtual { vaddr, paddr: 0x4000_0000, .. } if vaddr == FOUR_LEVEL.vmalloc),
        "{error}"
    );

    // An empty read needs no mapping.
    translator.read(&memory, 0, &mut []).unwrap();
}

#[test]
fn reads_stop_at_the_end_of_the_address_space() {
    let mut memory = SparseMemory::new();
    PageTables::new(&mut memory, 4, TOP_PADDR, TABLE_POOL);
    let text = format!(
        "NUMBER(phys_base)={PHYS_BASE}\n\
         SYMBOL(init_top_pgt)={TOP_VADDR:x}\n\
         NUMBER(KERNEL_IMAGE_SIZE)={}\n",
        1u64 << 31
    );
    let info = VmcoreInfo::parse(text.as_bytes()).unwrap();
    let mut translator = Translator::new(&info, &[], &memory).unwrap();
    let last = u64::MAX - 3;
    let paddr = (last - START_KERNEL_MAP).wrapping_add(PHYS_BASE as u64);
    memory.write(paddr, &[9; 4]);
    let mut buf = [0u8; 4];
    translator.read(&memory, last, &mut buf).unwrap();
    assert_eq!(buf, [9; 4]);
    let error = translator.read(&memory, last, &mut [0; 8]).unwrap_err();
    assert!(
        matches!(error, FilterError::AddressOverflow { vaddr, len: 8 } if vaddr == last),
        "{error}"
    );
}

/// Without `NUMBER(KERNEL_IMAGE_SIZE)` the image is walked like the rest,
/// and `init_level4_pgt` (before 4.13) is the top table.
#[test]
fn image_walked_without_its_size_and_old_symbol_name() {
    let mut memory = SparseMemory::new();
    let mut tables = PageTables::new(&mut memory, 4, TOP_PADDR, TABLE_POOL);
    tables.map(&mut memory, 0xffff_ffff_9480_0000, 0x0d60_0000, SIZE_2M, 0);
    let text = format!(
        "NUMBER(phys_base)={PHYS_BASE}\n\
         SYMBOL(init_level4_pgt)={TOP_VADDR:x}\n"
    );
    let info = VmcoreInfo::parse(text.as_bytes()).unwrap();
    let mut translator = Translator::new(&info, &[], &memory).unwrap();
    assert_eq!(translator.paging(), Paging::FourLevel);
    let mapping = translator
        .translate(&memory, 0xffff_ffff_9480_0040)
        .unwrap();
    assert_eq!(
        mapping,
        Mapping {
            paddr: 0x0d60_0040,
            len: SIZE_2M - 0x40
        }
    );
    assert_eq!(translator.walks(), 1);
}

/// Each case: VMCOREINFO, and the error's text naming the key concerned.
#[test]
fn setup_errors_name_the_key() {
    let cases: &[(&str, &str)] = &[
        (
            "SYMBOL(init_top_pgt)=ffffffff96210000\n",
            "VMCOREINFO has no NUMBER(phys_base)",
        ),
        (
            "NUMBER(phys_base)=0x\nSYMBOL(init_top_pgt)=ffffffff96210000\n",
            "VMCOREINFO NUMBER(phys_base)=\"0x\" is not a number",
        ),
        (
            "NUMBER(phys_base)=0\n",
            "VMCOREINFO has none of SYMBOL(init_top_pgt), SYMBOL(init_level4_pgt)",
        ),
        (
            "NUMBER(phys_base)=0\nSYMBOL(init_top_pgt)=ffffffff96210000\nNUMBER(pgtable_l5_enabled)=2\n",
            "NUMBER(pgtable_l5_enabled)=2 is neither 0 nor 1",
        ),
        (
            "NUMBER(phys_base)=0\nSYMBOL(init_top_pgt)=ffffffff96210000\nNUMBER(KERNEL_IMAGE_SIZE)=0\n",
            "NUMBER(KERNEL_IMAGE_SIZE)=0 is not the size of a kernel image mapping",
        ),
        (
            "NUMBER(phys_base)=0\nSYMBOL(init_top_pgt)=ffffffff96210000\nNUMBER(KERNEL_IMAGE_SIZE)=2147483649\n",
            "NUMBER(KERNEL_IMAGE_SIZE)=2147483649 is not the size of a kernel image mapping",
        ),
        (
            "NUMBER(phys_base)=0\nSYMBOL(init_top_pgt)=ff2addf3bf019000\n",
            "SYMBOL(init_top_pgt)=0xff2addf3bf019000 is not in the kernel image",
        ),
        (
            "NUMBER(phys_base)=0\nSYMBOL(init_top_pgt)=ffffffffc1000000\nNUMBER(KERNEL_IMAGE_SIZE)=1073741824\n",
            "SYMBOL(init_top_pgt)=0xffffffffc1000000 is not in the kernel image",
        ),
        (
            "NUMBER(phys_base)=100\nSYMBOL(init_top_pgt)=ffffffff96210000\n",
            "SYMBOL(init_top_pgt) is at physical 0x16210064, which is not the start of a page",
        ),
        (
            "NUMBER(phys_base)=0\nSYMBOL(init_top_pgt)=ffffffff96210000\nNUMBER(sme_mask)=x\n",
            "VMCOREINFO NUMBER(sme_mask)=\"x\" is not a number",
        ),
    ];
    let memory = SparseMemory::new();
    for (text, expected) in cases {
        let info = VmcoreInfo::parse(text.as_bytes()).unwrap();
        match Translator::new(&info, &[], &memory) {
            Ok(_) => panic!("{text:?}: accepted"),
            Err(error) => assert_eq!(error.to_string(), *expected, "{text:?}"),
        }
    }
}

/// The real 6.1 cloud vmcore: its VMCOREINFO and PT_LOADs, with page
/// tables mapping its direct map as the kernel did (five levels, 1 GiB
/// leaves). The kernel image lands where its PT_LOAD says, and
/// `mem_section` in the last RAM segment.
#[test]
fn real_6_1_cloud_layout() {
    let text = include_str!("../../testdata/vmcoreinfo/6.1.0-57-cloud-amd64.txt");
    let info = VmcoreInfo::parse(text.as_bytes()).unwrap();
    // `readelf -l` of the vmcore.
    let loads = [
        load(0xffff_ffff_9480_0000, 0x0d60_0000, 0x0283_0000),
        load(0xff2a_ddf3_4010_0000, 0x0010_0000, 0x78f0_0000),
        load(0xff2a_ddf3_bf00_0000, 0x7f00_0000, 0x00fd_c000),
    ];
    let direct_map = 0xff2a_ddf3_4000_0000;
    let mut memory = SparseMemory::new();
    let mut tables = PageTables::new(&mut memory, 5, TOP_PADDR, TABLE_POOL);
    for gib in 0..2 {
        tables.map(
            &mut memory,
            direct_map + gib * SIZE_1G,
            gib * SIZE_1G,
            SIZE_1G,
            0,
        );
    }
    let mut translator = Translator::new(&info, &loads, &memory).unwrap();
    assert_eq!(translator.paging(), Paging::FiveLevel);
    assert_eq!(translator.direct_map_offsets(), [direct_map]);
    let stext = info.symbol("_stext").unwrap();
    assert_eq!(
        translator.translate(&memory, stext).unwrap().paddr,
        0x0d60_0000
    );
    let mem_section = info.symbol("mem_section").unwrap();
    let mapping = translator.translate(&memory, mem_section).unwrap();
    assert_eq!(mapping.paddr, 0x7f01_9000);
    assert_eq!(mapping.len, 0x7f00_0000 + 0x00fd_c000 - 0x7f01_9000);
}

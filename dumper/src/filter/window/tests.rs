//! Window tests on synthetic machines: a memory map in sparse physical
//! memory, mapped by page tables with 2 MiB leaves or scattered 4 KiB
//! pages, classified in windows of many sizes. Free blocks and folios
//! that cross windows, tails met before their head, holes in the memory
//! map and in its mapping, and the reads it takes.

use std::cell::RefCell;

use super::*;
use crate::filter::layout::Hugetlb;
use crate::filter::testinfo::{era_layout, StructPages, ANON_MAPPING, ERAS};
use crate::filter::testmem::{PageTables, SparseMemory, SIZE_2M, SIZE_4K};
use crate::vmcore::VmcoreError;
use crate::vmcoreinfo::VmcoreInfo;
use ExcludeCategory::*;

const PHYS_BASE: i64 = -119_537_664;
const TOP_VADDR: u64 = 0xffff_ffff_9621_0000;
const TOP_PADDR: u64 = 0x0f01_0000;
const TABLE_POOL: u64 = 0x2000_0000;
/// The vmemmap base, aligned as the kernel aligns it.
const VMEMMAP: u64 = 0xffff_d7a5_4000_0000;
/// Where the memory map's frames are; nothing else is above.
const MEMMAP_PADDR: u64 = 0x1_0000_0000;
const PFNS_PER_SECTION: u64 = 32768;
const FRAMES_PER_2M: u64 = SIZE_2M / SIZE_4K;

/// How the page tables map the memory map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Vmemmap {
    /// 2 MiB leaves over contiguous frames, as the kernel maps it.
    Large,
    /// 4 KiB pages, each 2 MiB of them backwards over its frames: every
    /// page of the memory map is a mapping of its own.
    Scattered,
}

/// A crashed machine: its memory map and the page tables that map it.
struct Machine {
    memory: SparseMemory,
    tables: PageTables,
    layout: PageLayout,
    present: Vec<Range<u64>>,
    vmemmap: Vmemmap,
}

impl Machine {
    /// A machine whose frames up to `end` all have a struct page.
    fn new(layout: &PageLayout, end: u64, vmemmap: Vmemmap) -> Machine {
        Machine::with_present(layout, std::slice::from_ref(&(0..end)), vmemmap)
    }

    fn with_present(layout: &PageLayout, present: &[Range<u64>], vmemmap: Vmemmap) -> Machine {
        let mut memory = SparseMemory::new();
        let mut tables = PageTables::new(&mut memory, 4, TOP_PADDR, TABLE_POOL);
        let end = present.last().map_or(0, |run| run.end);
        let leaves = (end * layout.size).div_ceil(SIZE_2M);
        for leaf in 0..leaves {
            let vaddr = VMEMMAP + leaf * SIZE_2M;
            let paddr = MEMMAP_PADDR + leaf * SIZE_2M;
            match vmemmap {
                Vmemmap::Large => tables.map(&mut memory, vaddr, paddr, SIZE_2M, 0),
                Vmemmap::Scattered => {
                    for frame in 0..FRAMES_PER_2M {
                        let backwards = paddr + (FRAMES_PER_2M - 1 - frame) * SIZE_4K;
                        tables.map(&mut memory, vaddr + frame * SIZE_4K, backwards, SIZE_4K, 0);
                    }
                }
            }
        }
        Machine {
            memory,
            tables,
            layout: layout.clone(),
            present: present.to_vec(),
            vmemmap,
        }
    }

    /// Where the struct page of `pfn` is in physical memory.
    fn paddr(&self, pfn: u64) -> u64 {
        let offset = pfn * self.layout.size;
        match self.vmemmap {
            Vmemmap::Large => MEMMAP_PADDR + offset,
            Vmemmap::Scattered => {
                let leaf = offset / SIZE_2M;
                let frame = offset % SIZE_2M / SIZE_4K;
                let backwards = FRAMES_PER_2M - 1 - frame;
                MEMMAP_PADDR + leaf * SIZE_2M + backwards * SIZE_4K + offset % SIZE_4K
            }
        }
    }

    /// Writes `pages` as the struct pages from `first_pfn` on.
    fn write(&mut self, first_pfn: u64, pages: &StructPages) {
        for index in 0..pages.count() {
            let paddr = self.paddr(first_pfn + index);
            self.memory.write(paddr, pages.page(index));
        }
    }

    /// Makes the frame holding the struct page of `pfn` unreadable.
    fn forget(&mut self, pfn: u64) {
        let paddr = self.paddr(pfn);
        self.memory.forget(paddr);
    }

    fn classifier(&self, level: u8) -> Classifier {
        let text = format!(
            "NUMBER(phys_base)={PHYS_BASE}\n\
             SYMBOL(init_top_pgt)={TOP_VADDR:x}\n\
             NUMBER(KERNEL_IMAGE_SIZE)=1073741824\n"
        );
        let info = VmcoreInfo::parse(text.as_bytes()).unwrap();
        let translator = Translator::new(&info, &[], &self.memory).unwrap();
        let memmap = MemMap::synthetic(
            VMEMMAP,
            self.layout.size,
            PFNS_PER_SECTION,
            self.present.clone(),
        );
        let level = DumpLevel::new(level).unwrap();
        Classifier::new(self.layout.clone(), memmap, translator, level).unwrap()
    }
}

/// The memory, with a record of each read of the memory map's frames.
struct Recorder<'a> {
    memory: &'a SparseMemory,
    reads: RefCell<Vec<(u64, usize)>>,
}

impl<'a> Recorder<'a> {
    fn new(memory: &'a SparseMemory) -> Self {
        Recorder {
            memory,
            reads: RefCell::new(Vec::new()),
        }
    }

    fn take(&self) -> Vec<(u64, usize)> {
        std::mem::take(&mut self.reads.borrow_mut())
    }
}

impl PhysRead for Recorder<'_> {
    fn read_phys(&self, paddr: u64, buf: &mut [u8]) -> Result<(), VmcoreError> {
        if paddr >= MEMMAP_PADDR {
            self.reads.borrow_mut().push((paddr, buf.len()));
        }
        self.memory.read_phys(paddr, buf)
    }
}

type Runs = Vec<(Range<u64>, ExcludeCategory)>;

fn runs(window: &Window) -> Runs {
    window
        .excluded
        .iter()
        .map(|run| (run.pfns.clone(), run.category))
        .collect()
}

/// Classifies `windows` in turn, checking each window's result against
/// itself, and returns the runs of all merged across windows and the sum
/// of the windows.
fn classify_windows(
    classifier: &mut Classifier,
    memory: &impl PhysRead,
    windows: &[Range<u64>],
) -> (Runs, Window) {
    let mut all: Runs = Vec::new();
    let mut total = Window::default();
    for pfns in windows {
        let window = classifier.classify(memory, pfns.clone());
        let mut counts = CategoryCounts::default();
        let mut previous_end = pfns.start;
        for run in &window.excluded {
            assert!(
                run.pfns.start >= previous_end,
                "{pfns:?}: {:?}",
                window.excluded
            );
            assert!(run.pfns.start < run.pfns.end, "{pfns:?}: {run:?}");
            assert!(run.pfns.end <= pfns.end, "{pfns:?}: {run:?}");
            counts.add(run.category, run.pfns.end - run.pfns.start);
            previous_end = run.pfns.end;
        }
        assert_eq!(counts, window.counts, "{pfns:?}");
        for pair in window.excluded.windows(2) {
            let merged =
                pair[0].pfns.end == pair[1].pfns.start && pair[0].category == pair[1].category;
            assert!(!merged, "{pfns:?}: {pair:?} not merged");
        }
        for (range, category) in runs(&window) {
            match all.last_mut() {
                Some((last, c)) if *c == category && last.end == range.start => {
                    last.end = range.end
                }
                _ => all.push((range, category)),
            }
        }
        total.counts += &window.counts;
        total.unclassifiable += window.unclassifiable;
        total.struct_page_bytes += window.struct_page_bytes;
    }
    (all, total)
}

/// `range` cut into windows of `size` pfns.
fn windows_of(range: Range<u64>, size: u64) -> Vec<Range<u64>> {
    (range.start..range.end)
        .step_by(size as usize)
        .map(|start| start..(start + size).min(range.end))
        .collect()
}

/// Free blocks decided in one window and finished in the next ones, for
/// windows of many sizes; the windows a block covers whole read nothing.
#[test]
fn free_blocks_cross_windows() {
    let layout = era_layout("6.12");
    let mut pages = StructPages::new(&layout, 4096);
    pages.set_buddy(8, 3);
    pages.set_cache(20);
    pages.set_cache(21);
    pages.set_cache(22);
    pages.set_buddy(1024, 10);
    let mut machine = Machine::new(&layout, 4096, Vmemmap::Large);
    machine.write(0, &pages);
    let partitions: Vec<Vec<Range<u64>>> = vec![
        vec![0..4096],
        vec![0..12, 12..24, 24..1100, 1100..1500, 1500..2048, 2048..4096],
        windows_of(0..4096, 7),
        windows_of(0..4096, 256),
        windows_of(0..4096, 1000),
    ];
    let cases: &[(u8, Runs)] = &[
        (31, vec![(8..16, Free), (20..23, Cache), (1024..2048, Free)]),
        (16, vec![(8..16, Free), (1024..2048, Free)]),
        (2, vec![(20..23, Cache)]),
        (0, vec![]),
    ];
    for (level, expected) in cases {
        for windows in &partitions {
            let mut classifier = machine.classifier(*level);
            let (all, total) = classify_windows(&mut classifier, &machine.memory, windows);
            let what = format!("level {level}, {} windows", windows.len());
            assert_eq!(&all, expected, "{what}");
            let free = if *level & 16 != 0 { 8 + 1024 } else { 0 };
            assert_eq!(total.counts.get(Free), free, "{what}");
            assert_eq!(total.unclassifiable, 0, "{what}");
        }
    }
    // The window inside the order-10 block reads no struct page.
    let mut classifier = machine.classifier(16);
    let memory = Recorder::new(&machine.memory);
    classifier.classify(&memory, 0..1100);
    memory.take();
    let inside = classifier.classify(&memory, 1100..1500);
    assert_eq!(runs(&inside), [(1100..1500, Free)]);
    assert_eq!(inside.struct_page_bytes, 0);
    assert_eq!(memory.take(), []);
    // The next reads start where the block ends.
    let after = classifier.classify(&memory, 1500..2100);
    assert_eq!(runs(&after), [(1500..2048, Free)]);
    assert_eq!(memory.take(), [(machine.paddr(2048), 53 * 64)]);
    assert_eq!(after.struct_page_bytes, 53 * 64);
}

/// A 1 GiB hugetlb folio (order 18) excluded across 64 windows of 16 MiB,
/// in every era that can mark one, reading only the head's window.
#[test]
fn one_gib_hugetlb_folio_spans_many_windows() {
    let head = 1u64 << 18;
    let end = 1u64 << 19;
    for (name, _) in ERAS {
        let layout = era_layout(name);
        if layout.hugetlb == Hugetlb::NotExported {
            continue;
        }
        let mut machine = Machine::new(&layout, end + 4096, Vmemmap::Large);
        let mut before = StructPages::new(&layout, 4096 + 2);
        before.set_compound(4096, 18, true, VMEMMAP + head * 64 + 1);
        machine.write(head - 4096, &before);
        let mut after = StructPages::new(&layout, 4096);
        for index in 0..10 {
            after.set_cache(index);
        }
        machine.write(end, &after);
        for level in [8, 31] {
            let mut classifier = machine.classifier(level);
            let memory = Recorder::new(&machine.memory);
            let windows = windows_of(head - 4096..end + 4096, 4096);
            let mut reading = Vec::new();
            for pfns in &windows {
                let window = classifier.classify(&memory, pfns.clone());
                assert_eq!(window.unclassifiable, 0, "{name} {pfns:?}");
                if window.struct_page_bytes > 0 {
                    reading.push(pfns.start);
                }
            }
            assert_eq!(reading, [head - 4096, head, end], "{name} level {level}");
            let mut classifier = machine.classifier(level);
            let (all, total) = classify_windows(&mut classifier, &memory, &windows);
            let mut expected: Runs = vec![(head..end, User)];
            if level & 2 != 0 {
                expected.push((end..end + 10, Cache));
            }
            assert_eq!(all, expected, "{name} level {level}");
            assert_eq!(total.counts.get(User), head, "{name} level {level}");
        }
    }
}

/// Tails met before their head, in a first window that starts inside a
/// folio: the head is read once, through the tail word of each era, and
/// decides them; a head remembered from an earlier window is not read
/// again.
#[test]
fn tails_met_first_read_their_head() {
    let head = 512u64;
    let head_vaddr = VMEMMAP + head * 64;
    let mask = !((1u64 << (9 + 6)) - 1) | 1;
    let eras: &[(&str, u64)] = &[
        ("4.18", head_vaddr + 1),
        ("6.12", head_vaddr + 1),
        ("7.1", head_vaddr + 1),
        ("7.1", mask),
    ];
    let struct_pages = |pfns: u64| pfns * 64;
    for &(name, tail_word) in eras {
        let layout = era_layout(name);
        let mut pages = StructPages::new(&layout, 4096);
        pages.set_compound(head, 9, false, tail_word);
        pages.set_anon(head);
        pages.set_cache(1030);
        let mut machine = Machine::new(&layout, 4096, Vmemmap::Large);
        machine.write(0, &pages);
        let what = format!("{name} {tail_word:#x}");

        // Excluded: the head's decision covers the tails from the first.
        let mut classifier = machine.classifier(8);
        let first = classifier.classify(&machine.memory, 612..812);
        assert_eq!(runs(&first), [(612..812, User)], "{what}");
        assert_eq!(first.struct_page_bytes, struct_pages(201 + 2), "{what}");
        let second = classifier.classify(&machine.memory, 812..1100);
        assert_eq!(runs(&second), [(812..1024, User)], "{what}");
        assert_eq!(
            second.struct_page_bytes,
            struct_pages(1100 - 1024 + 1),
            "{what}"
        );

        // Kept: read once for all its tails.
        let mut classifier = machine.classifier(2);
        let first = classifier.classify(&machine.memory, 612..812);
        assert_eq!(runs(&first), [], "{what}");
        assert_eq!(first.struct_page_bytes, struct_pages(201 + 2), "{what}");
        let second = classifier.classify(&machine.memory, 812..1100);
        assert_eq!(runs(&second), [(1030..1031, Cache)], "{what}");
        assert_eq!(second.struct_page_bytes, struct_pages(289), "{what}");

        // The head in the previous window: excluded, the pending run
        // carries on; kept, remembered.
        for (level, expected) in [(8, vec![(600..1024, User)]), (2, vec![(1030..1031, Cache)])] {
            let mut classifier = machine.classifier(level);
            classifier.classify(&machine.memory, 0..600);
            let next = classifier.classify(&machine.memory, 600..1100);
            assert_eq!(runs(&next), expected, "{what} level {level}");
            let read = if level == 8 { 1100 - 1024 + 1 } else { 501 };
            assert_eq!(
                next.struct_page_bytes,
                struct_pages(read),
                "{what} level {level}"
            );
        }
    }
}

/// One page of each kind, a compound page, a free block and an absurd
/// order, at each level, in whole and in windows of 3.
#[test]
fn each_level_in_windows() {
    let layout = era_layout("6.9");
    let mut pages = StructPages::new(&layout, 64);
    let hwpoison = layout.flags.hwpoison.unwrap();
    pages.set_cache(1);
    pages.set_cache(2);
    pages.set_cache(3);
    pages.set_flag(3, layout.flags.private);
    pages.set_anon(4);
    pages.set_buddy(5, 0);
    pages.set_flag(6, hwpoison);
    pages.set_mapcount(7, layout.types.offline.unwrap());
    pages.set_compound(8, 2, false, VMEMMAP + 8 * 64 + 1);
    pages.set_anon(8);
    pages.set_buddy(12, 2);
    // Slab pages whose other words look free, anonymous and offline.
    pages.set_slab(16);
    pages.set_buddy(16, 0);
    pages.set_slab(17);
    pages.set_mapping(17, ANON_MAPPING);
    pages.set_slab(18);
    pages.set_mapcount(18, layout.types.offline.unwrap());
    // An order no kernel makes: the head alone, its tails kept.
    pages.set_compound(24, 200, false, VMEMMAP + 24 * 64 + 1);
    pages.set_anon(24);
    pages.set_anon(25);
    let mut machine = Machine::new(&layout, 64, Vmemmap::Large);
    machine.write(0, &pages);

    let base = [(6..7, Hwpoison), (7..8, Offline)];
    let cases: &[(u8, Runs)] = &[
        (0, base.to_vec()),
        (1, base.to_vec()),
        (2, [vec![(1..3, Cache)], base.to_vec()].concat()),
        (
            4,
            [vec![(1..3, Cache), (3..4, CachePrivate)], base.to_vec()].concat(),
        ),
        (
            8,
            [
                vec![(4..5, User)],
                base.to_vec(),
                vec![(8..12, User), (24..25, User)],
            ]
            .concat(),
        ),
        (
            16,
            [vec![(5..6, Free)], base.to_vec(), vec![(12..16, Free)]].concat(),
        ),
        (
            31,
            vec![
                (1..3, Cache),
                (3..4, CachePrivate),
                (4..5, User),
                (5..6, Free),
                (6..7, Hwpoison),
                (7..8, Offline),
                (8..12, User),
                (12..16, Free),
                (24..25, User),
            ],
        ),
    ];
    for (level, expected) in cases {
        for size in [64, 3, 1] {
            let mut classifier = machine.classifier(*level);
            let windows = windows_of(0..64, size);
            let (all, total) = classify_windows(&mut classifier, &machine.memory, &windows);
            assert_eq!(&all, expected, "level {level}, windows of {size}");
            assert_eq!(total.unclassifiable, 0, "level {level}, windows of {size}");
        }
    }
}

/// Struct pages that cannot be read keep their frames, counted; the rest
/// of the window is classified.
#[test]
fn unreadable_struct_pages_are_unclassifiable() {
    let layout = era_layout("6.12");
    let all_cache = |count: u64| {
        let mut pages = StructPages::new(&layout, count);
        for index in 0..count {
            pages.set_cache(index);
        }
        pages
    };

    // A frame of the memory map missing from the dump: 64 struct pages.
    for vmemmap in [Vmemmap::Large, Vmemmap::Scattered] {
        let mut machine = Machine::new(&layout, 8192, vmemmap);
        machine.write(0, &all_cache(8192));
        machine.forget(128);
        let mut classifier = machine.classifier(2);
        let window = classifier.classify(&machine.memory, 0..8192);
        assert_eq!(
            runs(&window),
            [(0..128, Cache), (192..8192, Cache)],
            "{vmemmap:?}"
        );
        assert_eq!(window.unclassifiable, 64, "{vmemmap:?}");
        assert_eq!(window.struct_page_bytes, 8192 * 64 - 4096, "{vmemmap:?}");
    }

    // A page of the memory map not mapped.
    let mut machine = Machine::new(&layout, 8192, Vmemmap::Scattered);
    machine.write(0, &all_cache(8192));
    let vaddr = VMEMMAP + 64 * 64;
    machine.tables.unmap_at(&mut machine.memory, vaddr, 12);
    let mut classifier = machine.classifier(2);
    let window = classifier.classify(&machine.memory, 0..8192);
    assert_eq!(runs(&window), [(0..64, Cache), (128..8192, Cache)]);
    assert_eq!(window.unclassifiable, 64);

    // 2 MiB of it not mapped: skipped in one step.
    let mut machine = Machine::new(&layout, 40000, Vmemmap::Large);
    machine.write(32768, &all_cache(100));
    machine.tables.unmap_at(&mut machine.memory, VMEMMAP, 21);
    let mut classifier = machine.classifier(2);
    let memory = Recorder::new(&machine.memory);
    let window = classifier.classify(&memory, 0..32868);
    assert_eq!(runs(&window), [(32768..32868, Cache)]);
    assert_eq!(window.unclassifiable, 32768);
    // The first read, past the hole, is the one struct page after it.
    let first = machine.paddr(32768);
    assert_eq!(memory.take(), [(first, 64), (first, 101 * 64)]);

    // A head whose page[1] cannot be read; tails whose head cannot be.
    let mut pages = all_cache(512);
    pages.set_compound(127, 1, false, VMEMMAP + 127 * 64 + 1);
    pages.set_compound(128, 7, false, VMEMMAP + 128 * 64 + 1);
    let mut machine = Machine::new(&layout, 512, Vmemmap::Large);
    machine.write(0, &pages);
    machine.forget(128);
    let mut classifier = machine.classifier(2);
    let window = classifier.classify(&machine.memory, 0..512);
    assert_eq!(runs(&window), [(0..127, Cache), (256..512, Cache)]);
    assert_eq!(window.unclassifiable, 1 + 64 + 64);
    // In a first window starting at the tails, the head is read, and fails,
    // once.
    let mut classifier = machine.classifier(2);
    let memory = Recorder::new(&machine.memory);
    let window = classifier.classify(&memory, 192..300);
    assert_eq!(runs(&window), [(256..300, Cache)]);
    assert_eq!(window.unclassifiable, 64);
    let head_reads = memory
        .take()
        .into_iter()
        .filter(|&(paddr, _)| paddr == machine.paddr(128))
        .count();
    assert_eq!(head_reads, 1);
}

/// Frames without a struct page are kept, and no read touches the hole.
#[test]
fn frames_outside_present_sections_are_kept() {
    let layout = era_layout("6.12");
    let present = [0..1024, 2048..3072];
    let mut machine = Machine::with_present(&layout, &present, Vmemmap::Large);
    for run in &present {
        let mut pages = StructPages::new(&layout, run.end - run.start);
        for index in 0..pages.count() {
            pages.set_cache(index);
        }
        machine.write(run.start, &pages);
    }
    let mut classifier = machine.classifier(2);
    let memory = Recorder::new(&machine.memory);
    let window = classifier.classify(&memory, 512..2560);
    assert_eq!(runs(&window), [(512..1024, Cache), (2048..2560, Cache)]);
    assert_eq!(window.unclassifiable, 0);
    assert_eq!(
        memory.take(),
        [
            (machine.paddr(512), 512 * 64),
            (machine.paddr(2048), 513 * 64)
        ]
    );
    // Windows with no present frame at all.
    for pfns in [1024..2048, 3072..5000, 100..100] {
        let window = classifier.classify(&memory, pfns.clone());
        assert_eq!(window, Window::default(), "{pfns:?}");
    }
    assert_eq!(memory.take(), []);
}

/// A window's struct pages come in one read per mapping of the memory
/// map: one per 2 MiB leaf, one per 4 KiB page when scattered, and the
/// answers are the same.
#[test]
fn struct_pages_are_read_in_large_reads() {
    let layout = era_layout("6.12");
    let mut pages = StructPages::new(&layout, 4097);
    for index in (0..4097).step_by(3) {
        pages.set_cache(index);
    }
    let mut answers = Vec::new();
    for vmemmap in [Vmemmap::Large, Vmemmap::Scattered] {
        let mut machine = Machine::new(&layout, 40000, vmemmap);
        machine.write(0, &pages);
        let mut classifier = machine.classifier(2);
        let memory = Recorder::new(&machine.memory);
        let window = classifier.classify(&memory, 0..4096);
        let reads = memory.take();
        match vmemmap {
            Vmemmap::Large => assert_eq!(reads, [(MEMMAP_PADDR, 4097 * 64)]),
            Vmemmap::Scattered => {
                assert_eq!(reads.len(), 65);
                assert!(reads.iter().all(|&(_, len)| len <= 4096), "{reads:?}");
            }
        }
        assert_eq!(window.struct_page_bytes, 4097 * 64);
        answers.push(window);
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0].counts.get(Cache), 1366);

    // A window of more than 2 MiB of struct pages: one read of that much,
    // split where the leaf ends for the struct page after it.
    let mut machine = Machine::new(&layout, 40000, Vmemmap::Large);
    machine.write(0, &StructPages::new(&layout, 40000));
    let mut classifier = machine.classifier(31);
    let memory = Recorder::new(&machine.memory);
    let window = classifier.classify(&memory, 0..40000);
    assert_eq!(
        memory.take(),
        [
            (MEMMAP_PADDR, SIZE_2M as usize),
            (MEMMAP_PADDR + SIZE_2M, 64),
            (MEMMAP_PADDR + SIZE_2M, (40000 - 32768) * 64),
        ]
    );
    assert_eq!(window.struct_page_bytes, 40001 * 64);
    assert_eq!(window.counts.total(), 0);
}

#[test]
fn the_memory_map_and_the_layout_must_agree() {
    let layout = era_layout("6.12");
    let machine = Machine::new(&layout, 64, Vmemmap::Large);
    let text = format!("NUMBER(phys_base)={PHYS_BASE}\nSYMBOL(init_top_pgt)={TOP_VADDR:x}\n");
    let info = VmcoreInfo::parse(text.as_bytes()).unwrap();
    let translator = Translator::new(&info, &[], &machine.memory).unwrap();
    let memmap = MemMap::synthetic(VMEMMAP, 80, PFNS_PER_SECTION, machine.present.clone());
    let error = Classifier::new(layout, memmap, translator, DumpLevel::MAX).unwrap_err();
    assert_eq!(
        error.to_string(),
        "the memory map has 80 byte struct pages, the layout 64 byte ones"
    );
}

//! Decision tests over synthetic struct pages of every encoding era (the
//! dictionaries of `testinfo`) and of the two real 6.1 kernels: each kind
//! of page at each level, compound pages and their orders, free and
//! unaccepted blocks, slab pages that look like something else, and the
//! tail word of each era.

use super::*;
use crate::filter::testinfo::{
    edit, era, era_layout, layout_of, StructPages, CLOUD_6_1, ERAS, GENERIC_6_1,
};
use ExcludeCategory::*;

/// The levels of the tables, in their column order.
const LEVELS: [u8; 7] = [0, 1, 2, 4, 8, 16, 31];

fn level(level: u8) -> DumpLevel {
    DumpLevel::new(level).unwrap()
}

fn exclude(category: ExcludeCategory, pages: u64) -> Decision {
    Decision::Exclude { category, pages }
}

/// The decision for the page at `index` of `pages`, at `pfn`.
fn decide(pages: &StructPages, index: u64, pfn: u64, at: u8) -> Decision {
    let page1 = (index + 1 < pages.count()).then(|| pages.page(index + 1));
    classify(&pages.layout, level(at), pfn, pages.page(index), page1)
}

/// Single pages of each kind the decision tells apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Kernel,
    Cache,
    CachePrivate,
    /// Swap-backed, in the swap cache, off the LRU and unmapped.
    SwapCache,
    /// `PG_swapcache` without `PG_swapbacked`, where the bit means
    /// something else.
    SwapCacheBitAlone,
    Anon,
    Buddy,
    Hwpoison,
    Offline,
    AnonHwpoison,
    CacheHwpoison,
    BuddyHwpoison,
    /// A slab page whose `_mapcount` holds the buddy value (up to 6.9
    /// slab used that word for itself).
    SlabLookingBuddy,
    SlabLookingAnon,
    SlabLookingOffline,
}

impl Kind {
    /// Writes this kind at `index`; `false` if the era cannot have it.
    fn write(self, pages: &mut StructPages, index: u64) -> bool {
        let layout = pages.layout.clone();
        let hwpoison = layout.flags.hwpoison.unwrap();
        let slab_flag = matches!(layout.slab, Slab::Flag(_));
        match self {
            Kind::Kernel => {}
            Kind::Cache => pages.set_cache(index),
            Kind::CachePrivate => {
                pages.set_cache(index);
                pages.set_flag(index, layout.flags.private);
            }
            Kind::SwapCache => {
                pages.set_flag(index, layout.flags.swapbacked);
                pages.set_flag(index, layout.flags.swapcache);
            }
            Kind::SwapCacheBitAlone => pages.set_flag(index, layout.flags.swapcache),
            Kind::Anon => pages.set_anon(index),
            Kind::Buddy => pages.set_buddy(index, 0),
            Kind::Hwpoison => pages.set_flag(index, hwpoison),
            Kind::Offline => {
                let Some(offline) = layout.types.offline else {
                    return false;
                };
                pages.set_mapcount(index, offline);
            }
            Kind::AnonHwpoison => {
                pages.set_anon(index);
                pages.set_flag(index, hwpoison);
            }
            Kind::CacheHwpoison => {
                pages.set_cache(index);
                pages.set_flag(index, hwpoison);
            }
            Kind::BuddyHwpoison => {
                pages.set_buddy(index, 0);
                pages.set_flag(index, hwpoison);
            }
            Kind::SlabLookingBuddy => {
                if !slab_flag {
                    return false;
                }
                pages.set_slab(index);
                pages.set_buddy(index, 0);
            }
            Kind::SlabLookingAnon => {
                pages.set_slab(index);
                pages.set_mapping(index, crate::filter::testinfo::ANON_MAPPING);
            }
            Kind::SlabLookingOffline => {
                let (true, Some(offline)) = (slab_flag, layout.types.offline) else {
                    return false;
                };
                pages.set_slab(index);
                pages.set_mapcount(index, offline);
            }
        }
        true
    }
}

/// For each kind, what each level of [`LEVELS`] leaves it out as.
#[test]
fn each_kind_at_each_level_in_every_era() {
    const N: Option<ExcludeCategory> = None;
    const C: Option<ExcludeCategory> = Some(Cache);
    const P: Option<ExcludeCategory> = Some(CachePrivate);
    const U: Option<ExcludeCategory> = Some(User);
    const F: Option<ExcludeCategory> = Some(Free);
    const H: Option<ExcludeCategory> = Some(Hwpoison);
    const O: Option<ExcludeCategory> = Some(Offline);
    let cases: &[(Kind, [Option<ExcludeCategory>; 7])] = &[
        //                         0  1  2  4  8 16 31
        (Kind::Kernel, [N, N, N, N, N, N, N]),
        (Kind::Cache, [N, N, C, C, N, N, C]),
        (Kind::CachePrivate, [N, N, N, P, N, N, P]),
        (Kind::SwapCache, [N, N, C, C, N, N, C]),
        (Kind::SwapCacheBitAlone, [N, N, N, N, N, N, N]),
        (Kind::Anon, [N, N, N, N, U, N, U]),
        (Kind::Buddy, [N, N, N, N, N, F, F]),
        (Kind::Hwpoison, [H, H, H, H, H, H, H]),
        (Kind::Offline, [O, O, O, O, O, O, O]),
        (Kind::AnonHwpoison, [H, H, H, H, U, H, U]),
        (Kind::CacheHwpoison, [H, H, C, C, H, H, C]),
        (Kind::BuddyHwpoison, [H, H, H, H, H, F, F]),
        (Kind::SlabLookingBuddy, [N, N, N, N, N, N, N]),
        (Kind::SlabLookingAnon, [N, N, N, N, N, N, N]),
        (Kind::SlabLookingOffline, [N, N, N, N, N, N, N]),
    ];
    for (name, _) in ERAS {
        let layout = era_layout(name);
        for (kind, expected) in cases {
            let mut pages = StructPages::new(&layout, 2);
            if !kind.write(&mut pages, 0) {
                continue;
            }
            for (&at, expected) in LEVELS.iter().zip(expected) {
                let want = match expected {
                    Some(category) => exclude(*category, 1),
                    None => Decision::Keep,
                };
                assert_eq!(
                    decide(&pages, 0, 0x1234, at),
                    want,
                    "{name} {kind:?} level {at}"
                );
            }
        }
    }
}

/// Compound pages of every era: what the head decides and for how many
/// frames, from the order and hugetlb mark where the era keeps them.
#[test]
fn compound_heads_in_every_era() {
    #[derive(Clone, Copy, Debug)]
    enum Head {
        Anon,
        File,
        Hugetlb,
        /// Neither anonymous nor file: hugetlb where the era cannot say.
        Unmarked,
        Hwpoison,
    }
    // (what, order, pfn, level, decision; None where the era has no
    // hugetlb mark)
    let cases: &[(Head, u8, u64, u8, Decision)] = &[
        (Head::Anon, 9, 512, 8, exclude(User, 512)),
        (Head::Anon, 9, 512, 31, exclude(User, 512)),
        (Head::Anon, 9, 512, 2, Decision::Keep),
        (Head::Anon, 9, 512, 4, Decision::Keep),
        (Head::Anon, 9, 512, 16, Decision::Keep),
        (Head::File, 4, 16, 2, exclude(Cache, 16)),
        (Head::File, 4, 16, 4, exclude(Cache, 16)),
        (Head::File, 4, 16, 8, Decision::Keep),
        (Head::Hugetlb, 9, 512, 8, exclude(User, 512)),
        (Head::Hugetlb, 9, 512, 31, exclude(User, 512)),
        (Head::Hugetlb, 9, 512, 4, Decision::Keep),
        (Head::Hugetlb, 18, 1 << 18, 8, exclude(User, 1 << 18)),
        (Head::Unmarked, 9, 512, 31, Decision::Keep),
        (Head::Hwpoison, 9, 512, 0, exclude(Hwpoison, 512)),
        // Not aligned to the order: the head alone.
        (Head::Anon, 9, 256, 8, exclude(User, 1)),
        (Head::Hugetlb, 18, 1 << 17, 8, exclude(User, 1)),
        // Pfn 0 is aligned to any order; the absurd ones count for one.
        (Head::Anon, 18, 0, 8, exclude(User, 1 << 18)),
        (Head::Anon, 19, 0, 8, exclude(User, 1)),
        (Head::Anon, 63, 0, 8, exclude(User, 1)),
        (Head::Anon, 64, 0, 8, exclude(User, 1)),
        (Head::Anon, 200, 0, 8, exclude(User, 1)),
        (Head::Anon, 255, 0, 8, exclude(User, 1)),
    ];
    for (name, _) in ERAS {
        let layout = era_layout(name);
        let has_hugetlb = layout.hugetlb != Hugetlb::NotExported;
        for &(head, order, pfn, at, expected) in cases {
            if matches!(head, Head::Hugetlb) && !has_hugetlb {
                continue;
            }
            let mut pages = StructPages::new(&layout, 4);
            let hugetlb = matches!(head, Head::Hugetlb);
            pages.set_compound(0, order, hugetlb, 0xffff_ea00_0000_0001);
            match head {
                Head::Anon => pages.set_anon(0),
                Head::File => pages.set_cache(0),
                Head::Hwpoison => pages.set_flag(0, layout.flags.hwpoison.unwrap()),
                Head::Hugetlb | Head::Unmarked => {}
            }
            let what = format!("{name} {head:?} order {order} at {pfn:#x} level {at}");
            assert_eq!(decide(&pages, 0, pfn, at), expected, "{what}");
            // Without its page[1], or with too little of it, the head
            // cannot be decided.
            let alone = classify(&layout, level(at), pfn, pages.page(0), None);
            assert_eq!(alone, Decision::Unclassifiable, "{what}, alone");
            let short = classify(&layout, level(at), pfn, pages.page(0), Some(&[0]));
            assert_eq!(short, Decision::Unclassifiable, "{what}, short page[1]");
            // Its tails are kept on their own, whatever they look like.
            pages.set_anon(2);
            pages.set_flag(2, layout.flags.hwpoison.unwrap());
            for at in LEVELS {
                assert_eq!(
                    decide(&pages, 2, pfn + 2, at),
                    Decision::Keep,
                    "{what}, tail"
                );
            }
        }
    }
}

/// Free blocks and unaccepted memory: the order, its bounds and its
/// alignment.
#[test]
fn free_and_unaccepted_blocks() {
    #[derive(Clone, Copy, Debug)]
    enum Block {
        Buddy(u64),
        Unaccepted,
    }
    let unaccepted_era = "6.16 with unaccepted memory";
    let cases: &[(&str, Block, u64, u8, Decision)] = &[
        ("6.12", Block::Buddy(3), 8, 16, exclude(Free, 8)),
        ("6.12", Block::Buddy(3), 8, 31, exclude(Free, 8)),
        ("6.12", Block::Buddy(3), 8, 15, Decision::Keep),
        ("6.12", Block::Buddy(0), 7, 16, exclude(Free, 1)),
        ("6.12", Block::Buddy(10), 1024, 16, exclude(Free, 1024)),
        // Not aligned: no block the buddy allocator makes.
        ("6.12", Block::Buddy(3), 12, 16, Decision::Unclassifiable),
        ("4.18", Block::Buddy(10), 512, 16, Decision::Unclassifiable),
        // Beyond LENGTH(zone.free_area) = 11.
        ("6.12", Block::Buddy(11), 0, 16, Decision::Unclassifiable),
        ("6.12", Block::Buddy(64), 0, 16, Decision::Unclassifiable),
        (
            "6.12",
            Block::Buddy(u64::MAX),
            0,
            16,
            Decision::Unclassifiable,
        ),
        ("4.18", Block::Buddy(3), 8, 16, exclude(Free, 8)),
        ("6.11", Block::Buddy(3), 8, 16, exclude(Free, 8)),
        // Unaccepted memory comes in blocks of the largest order.
        (
            unaccepted_era,
            Block::Unaccepted,
            1024,
            16,
            exclude(Free, 1024),
        ),
        (
            unaccepted_era,
            Block::Unaccepted,
            1024,
            31,
            exclude(Free, 1024),
        ),
        (unaccepted_era, Block::Unaccepted, 1024, 8, Decision::Keep),
        (
            unaccepted_era,
            Block::Unaccepted,
            1536,
            16,
            Decision::Unclassifiable,
        ),
        // The value is no page type of a kernel that does not export it.
        ("6.12", Block::Unaccepted, 1024, 16, Decision::Keep),
    ];
    for &(name, block, pfn, at, expected) in cases {
        let layout = era_layout(name);
        let mut pages = StructPages::new(&layout, 2);
        match block {
            Block::Buddy(order) => pages.set_buddy(0, order),
            Block::Unaccepted => pages.set_mapcount(0, 0xf700_0000),
        }
        let what = format!("{name} {block:?} at {pfn:#x} level {at}");
        assert_eq!(decide(&pages, 0, pfn, at), expected, "{what}");
    }
}

/// The tail word: the head's address plus one, or from 7.1 a mask plus
/// one under which the tail's own address gives the head's.
#[test]
fn tails_find_their_head() {
    let vmemmap: u64 = 0xffff_ea00_0000_0000;
    let head = vmemmap + 512 * 64;
    let tail = vmemmap + (512 + 37) * 64;
    // The kernel's mask for an order-9 folio of 64-byte struct pages.
    let mask = !((1u64 << (9 + 6)) - 1) | 1;
    let odd_size = edit(&era("7.1"), &[("SIZE(page)", Some("80"))]);
    let cases: &[(&str, String, u64, u64, Option<u64>)] = &[
        ("6.12, pointer", era("6.12"), tail, head + 1, Some(head)),
        ("4.18, pointer", era("4.18"), tail, head + 1, Some(head)),
        ("7.1, pointer", era("7.1"), tail, head + 1, Some(head)),
        ("7.1, mask", era("7.1"), tail, mask, Some(head)),
        (
            "7.1, mask, 1 GiB folio",
            era("7.1"),
            vmemmap + ((1 << 18) + 12345) * 64,
            !((1u64 << (18 + 6)) - 1) | 1,
            Some(vmemmap + (1 << 18) * 64),
        ),
        // A mask only with a power-of-two struct page, and only from 7.1:
        // otherwise the word is a pointer, however it looks.
        ("7.1, 80-byte pages", odd_size, tail, mask, Some(mask - 1)),
        ("6.12, mask-shaped", era("6.12"), tail, mask, Some(mask - 1)),
        ("not a tail", era("7.1"), tail, head, None),
        ("not a tail, zero", era("7.1"), tail, 0, None),
    ];
    for (name, text, vaddr, word, expected) in cases {
        let layout = layout_of(text);
        let mut pages = StructPages::new(&layout, 1);
        pages.set_compound_head(0, *word);
        let page = StructPage::parse(&layout, pages.page(0)).unwrap();
        assert_eq!(page.is_tail(), expected.is_some(), "{name}");
        assert_eq!(page.head(&layout, *vaddr), *expected, "{name}");
    }
}

/// What a head's decision means for a tail after it.
#[test]
fn tails_follow_their_head() {
    let cases: &[(Decision, u64, u64, Decision)] = &[
        (exclude(User, 512), 512, 700, exclude(User, 324)),
        (exclude(User, 512), 512, 1023, exclude(User, 1)),
        (exclude(User, 512), 512, 1024, Decision::Keep),
        (exclude(Free, 8), 8, 8, Decision::Keep),
        (exclude(Cache, 1), 512, 513, Decision::Keep),
        (
            exclude(User, 1 << 18),
            1 << 18,
            (1 << 18) + 5,
            exclude(User, (1 << 18) - 5),
        ),
        (Decision::Keep, 512, 700, Decision::Keep),
        (Decision::Unclassifiable, 512, 700, Decision::Unclassifiable),
        // Coverage that would run past the end of the pfns.
        (
            exclude(User, 1 << 40),
            u64::MAX - 4,
            u64::MAX - 1,
            exclude(User, 1),
        ),
    ];
    for &(head, head_pfn, tail_pfn, expected) in cases {
        assert_eq!(
            head.for_tail(head_pfn, tail_pfn),
            expected,
            "{head:?} {head_pfn} {tail_pfn}"
        );
    }
    assert_eq!(exclude(User, 512).pages(), 512);
    assert_eq!(Decision::Keep.pages(), 1);
    assert_eq!(Decision::Unclassifiable.pages(), 1);
}

/// The two real 6.1 kernels: the generic one exports `PG_hwpoison`, the
/// cloud one, built without CONFIG_MEMORY_FAILURE, does not, and keeps
/// the page whose bit 23 is set.
#[test]
fn real_6_1_kernels() {
    for (name, text, hwpoison) in [
        ("generic", GENERIC_6_1, exclude(Hwpoison, 1)),
        ("cloud", CLOUD_6_1, Decision::Keep),
    ] {
        let layout = layout_of(text);
        let mut pages = StructPages::new(&layout, 16);
        pages.set_cache(0);
        pages.set_anon(1);
        pages.set_buddy(2, 0);
        pages.set_flag(3, 23);
        pages.set_slab(4);
        pages.set_buddy(4, 0);
        // A 2 MiB hugetlb page at pfn 512, its order and destructor 2 in
        // page[1].
        pages.set_compound(8, 9, true, 0xffff_ea00_0000_8001);
        let cases: &[(u64, u64, u8, Decision)] = &[
            (0, 0x100, 2, exclude(Cache, 1)),
            (1, 0x101, 8, exclude(User, 1)),
            (2, 0x102, 16, exclude(Free, 1)),
            (3, 0x103, 0, hwpoison),
            (4, 0x104, 31, Decision::Keep),
            (8, 512, 8, exclude(User, 512)),
            (8, 512, 6, Decision::Keep),
        ];
        for &(index, pfn, at, expected) in cases {
            assert_eq!(
                decide(&pages, index, pfn, at),
                expected,
                "{name} page {index}"
            );
        }
        assert_eq!(pages.page(9)[16], 2, "{name}: the destructor byte");
        assert_eq!(pages.page(9)[17], 9, "{name}: the order byte");
    }
}

/// Too few bytes for the fields is no panic, only unclassifiable.
#[test]
fn short_struct_pages() {
    let layout = era_layout("6.12");
    let pages = StructPages::new(&layout, 1);
    for len in [0, 8, 40, 51] {
        let bytes = &pages.page(0)[..len];
        assert_eq!(StructPage::parse(&layout, bytes), None, "{len} bytes");
        assert_eq!(
            classify(&layout, level(31), 0, bytes, None),
            Decision::Unclassifiable,
            "{len} bytes"
        );
    }
    assert!(StructPage::parse(&layout, &pages.page(0)[..52]).is_some());
}

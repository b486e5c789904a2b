//! Layout tests: the two real 6.1 VMCOREINFO notes captured by the QEMU
//! tests, and the synthetic dictionaries of each encoding era (in
//! `testinfo`, which the classifier's tests share).

use super::*;
use crate::filter::testinfo::{edit, era, CLOUD_6_1, ERAS, GENERIC_6_1};
use crate::filter::FilterError;

fn layout(text: &str) -> Result<PageLayout, FilterError> {
    PageLayout::from_vmcoreinfo(&VmcoreInfo::parse(text.as_bytes()).unwrap())
}

/// What the eras differ in.
#[derive(Debug, PartialEq, Eq)]
struct EraParts {
    era: PageTypeEra,
    buddy: u32,
    offline: Option<u32>,
    unaccepted: Option<u32>,
    slab: Slab,
    compound_order: CompoundOrder,
    hugetlb: Hugetlb,
    head: CompoundHeadName,
}

#[test]
fn each_era_is_recognised_from_its_keys() {
    use CompoundHeadName::*;
    use PageTypeEra::*;
    let top_byte = |unaccepted, head| EraParts {
        era: TopByte,
        buddy: 0xf000_0000,
        offline: Some(0xf100_0000),
        unaccepted,
        slab: Slab::PageType(0xf500_0000),
        compound_order: CompoundOrder::TailFlagsLowByte,
        hugetlb: Hugetlb::PageType(0xf400_0000),
        head,
    };
    let cases: &[(&str, EraParts)] = &[
        (
            "4.18",
            EraParts {
                era: LowBitCleared,
                buddy: 0xffff_ff7f,
                offline: None,
                unaccepted: None,
                slab: Slab::Flag(7),
                compound_order: CompoundOrder::PageField { offset: 17 },
                hugetlb: Hugetlb::Dtor {
                    offset: 16,
                    value: 2,
                },
                head: CompoundHead,
            },
        ),
        (
            "6.3",
            EraParts {
                era: LowBitCleared,
                buddy: 0xffff_ff7f,
                offline: Some(0xffff_feff),
                unaccepted: None,
                slab: Slab::Flag(9),
                compound_order: CompoundOrder::FolioField { offset: 17 },
                hugetlb: Hugetlb::Dtor {
                    offset: 16,
                    value: 2,
                },
                head: CompoundHead,
            },
        ),
        (
            "6.6",
            EraParts {
                era: LowBitCleared,
                buddy: 0xffff_ff7f,
                offline: Some(0xffff_feff),
                unaccepted: None,
                slab: Slab::Flag(9),
                compound_order: CompoundOrder::TailFlagsLowByte,
                hugetlb: Hugetlb::TailFlag(8),
                head: CompoundHead,
            },
        ),
        (
            "6.6 without hugetlbfs",
            EraParts {
                era: LowBitCleared,
                buddy: 0xffff_ff7f,
                offline: None,
                unaccepted: None,
                slab: Slab::Flag(9),
                compound_order: CompoundOrder::TailFlagsLowByte,
                hugetlb: Hugetlb::NotExported,
                head: CompoundHead,
            },
        ),
        (
            "6.9",
            EraParts {
                era: LowBitCleared,
                buddy: 0xffff_ff7f,
                offline: Some(0xffff_feff),
                unaccepted: None,
                slab: Slab::Flag(9),
                compound_order: CompoundOrder::TailFlagsLowByte,
                hugetlb: Hugetlb::PageType(0xffff_f7ff),
                head: CompoundHead,
            },
        ),
        (
            "6.10",
            EraParts {
                era: LowBitCleared,
                buddy: 0xffff_ff7f,
                offline: Some(0xffff_feff),
                unaccepted: None,
                slab: Slab::PageType(0xffff_efff),
                compound_order: CompoundOrder::TailFlagsLowByte,
                hugetlb: Hugetlb::PageType(0xffff_f7ff),
                head: CompoundHead,
            },
        ),
        (
            "6.11",
            EraParts {
                era: HighBitCleared,
                buddy: 0xbfff_ffff,
                offline: Some(0xdfff_ffff),
                unaccepted: None,
                slab: Slab::PageType(0xfdff_ffff),
                compound_order: CompoundOrder::TailFlagsLowByte,
                hugetlb: Hugetlb::PageType(0xfbff_ffff),
                head: CompoundHead,
            },
        ),
        ("6.12", top_byte(None, CompoundHead)),
        (
            "6.12, values printed unsigned",
            top_byte(None, CompoundHead),
        ),
        (
            "6.16 with unaccepted memory",
            top_byte(Some(0xf700_0000), CompoundHead),
        ),
        ("7.1", top_byte(None, CompoundInfo)),
    ];
    assert_eq!(cases.len(), ERAS.len(), "every era has a row");
    for (name, expected) in cases {
        let layout = layout(&era(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let got = EraParts {
            era: layout.types.era,
            buddy: layout.types.buddy,
            offline: layout.types.offline,
            unaccepted: layout.types.unaccepted,
            slab: layout.slab,
            compound_order: layout.compound_order,
            hugetlb: layout.hugetlb,
            head: layout.fields.compound_head_name,
        };
        assert_eq!(&got, expected, "{name}");
        // What all eras share.
        assert_eq!(layout.size, 64, "{name}");
        assert_eq!(layout.fields.compound_head, 8, "{name}");
        assert_eq!(layout.flags.head_mask, 1 << 16, "{name}");
        assert_eq!(layout.nr_page_orders, 11, "{name}");
    }
}

/// The whole layout of the two real 6.1 kernels (Debian's cloud and
/// generic flavours, captured in QEMU by `cargo xtask qemu-test`).
#[test]
fn real_6_1_kernels() {
    let expected = |hwpoison| PageLayout {
        size: 64,
        fields: PageFields {
            flags: 0,
            mapping: 24,
            mapcount: 48,
            private: 40,
            compound_head: 8,
            compound_head_name: CompoundHeadName::CompoundHead,
            refcount: Some(52),
            lru: Some(8),
        },
        flags: PageFlags {
            lru: 4,
            private: 13,
            swapcache: 10,
            swapbacked: 19,
            hwpoison,
            head_mask: 1 << 16,
        },
        types: PageTypes {
            era: PageTypeEra::LowBitCleared,
            buddy: 0xffff_ff7f,
            offline: Some(0xffff_feff),
            unaccepted: None,
        },
        slab: Slab::Flag(9),
        compound_order: CompoundOrder::PageField { offset: 17 },
        hugetlb: Hugetlb::Dtor {
            offset: 16,
            value: 2,
        },
        nr_page_orders: 11,
    };
    // The cloud flavour is built without CONFIG_MEMORY_FAILURE.
    assert_eq!(layout(CLOUD_6_1).unwrap(), expected(None));
    assert_eq!(layout(GENERIC_6_1).unwrap(), expected(Some(23)));
}

/// Each case: the era edited, the edits, and the error's text, which
/// names the key concerned.
#[test]
fn bad_key_sets_are_errors_naming_the_key() {
    type Edits = &'static [(&'static str, Option<&'static str>)];
    let cases: &[(&str, Edits, &str)] = &[
        (
            "6.12",
            &[("PAGESIZE", None)],
            "VMCOREINFO has no PAGESIZE",
        ),
        (
            "6.12",
            &[("PAGESIZE", Some("65536"))],
            "PAGESIZE=65536: only 4096 byte pages are supported",
        ),
        (
            "6.12",
            &[("SIZE(page)", None)],
            "VMCOREINFO has no SIZE(page)",
        ),
        (
            "6.12",
            &[("SIZE(page)", Some("12"))],
            "SIZE(page)=12 is not the size of a struct page",
        ),
        (
            "6.12",
            &[("SIZE(page)", Some("4096"))],
            "SIZE(page)=4096 is not the size of a struct page",
        ),
        (
            "6.12",
            &[("SIZE(page)", Some("0"))],
            "SIZE(page)=0 is not the size of a struct page",
        ),
        (
            "6.12",
            &[("OFFSET(page.flags)", None)],
            "VMCOREINFO has no OFFSET(page.flags)",
        ),
        (
            "6.12",
            &[("OFFSET(page.mapping)", None)],
            "VMCOREINFO has no OFFSET(page.mapping)",
        ),
        (
            "6.12",
            &[("OFFSET(page._mapcount)", None)],
            "VMCOREINFO has no OFFSET(page._mapcount)",
        ),
        (
            "6.12",
            &[("OFFSET(page.private)", None)],
            "VMCOREINFO has no OFFSET(page.private)",
        ),
        (
            "6.12",
            &[("OFFSET(page.private)", Some("60"))],
            "OFFSET(page.private): 8 bytes at offset 60 do not fit in a 64 byte struct page",
        ),
        (
            "6.12",
            &[("OFFSET(page._mapcount)", Some("61"))],
            "OFFSET(page._mapcount): 4 bytes at offset 61 do not fit in a 64 byte struct page",
        ),
        (
            "6.12",
            &[("OFFSET(page.mapping)", Some("18446744073709551615"))],
            "OFFSET(page.mapping): 8 bytes at offset 18446744073709551615 do not fit in a 64 byte struct page",
        ),
        (
            "6.12",
            &[("OFFSET(page.lru)", Some("56"))],
            "OFFSET(page.lru): 16 bytes at offset 56 do not fit in a 64 byte struct page",
        ),
        (
            "6.12",
            &[("OFFSET(page.mapping)", Some("0x18"))],
            "VMCOREINFO OFFSET(page.mapping)=\"0x18\" is not a number",
        ),
        (
            "6.12",
            &[("OFFSET(page.compound_head)", None)],
            "VMCOREINFO has none of OFFSET(page.compound_head), OFFSET(page.compound_info)",
        ),
        (
            "7.1",
            &[("OFFSET(page.compound_head)", Some("8"))],
            "VMCOREINFO has both OFFSET(page.compound_head) and OFFSET(page.compound_info), which no known kernel exports together",
        ),
        (
            "6.12",
            &[("NUMBER(PG_head_mask)", None)],
            "VMCOREINFO has no NUMBER(PG_head_mask)",
        ),
        (
            "6.12",
            &[("NUMBER(PG_head_mask)", Some("3"))],
            "NUMBER(PG_head_mask)=3 is not a mask of one bit",
        ),
        (
            "6.12",
            &[("NUMBER(PG_head_mask)", Some("0"))],
            "NUMBER(PG_head_mask)=0 is not a mask of one bit",
        ),
        (
            "6.12",
            &[("NUMBER(PG_head_mask)", Some("-9223372036854775808"))],
            "NUMBER(PG_head_mask)=-9223372036854775808 is not a mask of one bit",
        ),
        (
            "6.12",
            &[("NUMBER(PG_lru)", Some("64"))],
            "NUMBER(PG_lru)=64 is not a bit of the 64-bit page.flags",
        ),
        (
            "6.12",
            &[("NUMBER(PG_private)", Some("-1"))],
            "NUMBER(PG_private)=-1 is not a bit of the 64-bit page.flags",
        ),
        (
            "6.12",
            &[("NUMBER(PG_hwpoison)", Some("99"))],
            "NUMBER(PG_hwpoison)=99 is not a bit of the 64-bit page.flags",
        ),
        (
            "6.12",
            &[("NUMBER(PG_swapbacked)", None)],
            "VMCOREINFO has no NUMBER(PG_swapbacked)",
        ),
        (
            "6.12",
            &[("NUMBER(PG_swapcache)", None)],
            "VMCOREINFO has no NUMBER(PG_swapcache)",
        ),
        (
            "6.12",
            &[("NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)", None)],
            "VMCOREINFO has no NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)",
        ),
        (
            "4.18",
            &[("NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)", Some("-128"))],
            "NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)=0xffffff80 has the shape of no known page-type encoding",
        ),
        (
            "6.12",
            &[("NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)", Some("4294967296"))],
            "NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)=4294967296 does not fit the 32-bit page._mapcount",
        ),
        (
            "6.12",
            &[("NUMBER(PAGE_HUGETLB_MAPCOUNT_VALUE)", Some("-2147483649"))],
            "NUMBER(PAGE_HUGETLB_MAPCOUNT_VALUE)=-2147483649 does not fit the 32-bit page._mapcount",
        ),
        (
            "6.12",
            &[("NUMBER(PAGE_OFFLINE_MAPCOUNT_VALUE)", Some("-257"))],
            "NUMBER(PAGE_OFFLINE_MAPCOUNT_VALUE) is a page type of kernels 4.18 to 6.10 but NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE) one of kernels 6.12 or later",
        ),
        (
            "6.11",
            &[("NUMBER(PAGE_SLAB_MAPCOUNT_VALUE)", Some("-4097"))],
            "NUMBER(PAGE_SLAB_MAPCOUNT_VALUE) is a page type of kernels 4.18 to 6.10 but NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE) one of kernels 6.11",
        ),
        (
            "6.12",
            &[("NUMBER(PAGE_UNACCEPTED_MAPCOUNT_VALUE)", Some("-1"))],
            "NUMBER(PAGE_UNACCEPTED_MAPCOUNT_VALUE)=0xffffffff has the shape of no known page-type encoding",
        ),
        (
            "6.12",
            &[("NUMBER(PAGE_SLAB_MAPCOUNT_VALUE)", Some("-16777216"))],
            "NUMBER(PAGE_SLAB_MAPCOUNT_VALUE)=0xff000000 has the shape of no known page-type encoding",
        ),
        (
            "6.10",
            &[("NUMBER(PAGE_SLAB_MAPCOUNT_VALUE)", Some("-129"))],
            "NUMBER(PAGE_SLAB_MAPCOUNT_VALUE) and NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE) are the same page type 0xffffff7f",
        ),
        (
            "6.9",
            &[("NUMBER(PG_slab)", None)],
            "VMCOREINFO has none of NUMBER(PG_slab), NUMBER(PAGE_SLAB_MAPCOUNT_VALUE)",
        ),
        (
            "6.9",
            &[("NUMBER(PAGE_SLAB_MAPCOUNT_VALUE)", Some("-4097"))],
            "VMCOREINFO has both NUMBER(PG_slab) and NUMBER(PAGE_SLAB_MAPCOUNT_VALUE), which no known kernel exports together",
        ),
        (
            "4.18",
            &[("OFFSET(page.compound_dtor)", None)],
            "VMCOREINFO has OFFSET(page.compound_order) but not OFFSET(page.compound_dtor), which every known kernel exports with it",
        ),
        (
            "6.3",
            &[("OFFSET(folio._folio_order)", None)],
            "VMCOREINFO has OFFSET(folio._folio_dtor) but not OFFSET(folio._folio_order), which every known kernel exports with it",
        ),
        (
            "4.18",
            &[
                ("OFFSET(folio._folio_dtor)", Some("80")),
                ("OFFSET(folio._folio_order)", Some("81")),
            ],
            "VMCOREINFO has both OFFSET(page.compound_order) and OFFSET(folio._folio_order), which no known kernel exports together",
        ),
        (
            "4.18",
            &[("NUMBER(PG_hugetlb)", Some("6"))],
            "VMCOREINFO has both NUMBER(HUGETLB_PAGE_DTOR) and NUMBER(PG_hugetlb), which no known kernel exports together",
        ),
        (
            "6.6",
            &[("NUMBER(PAGE_HUGETLB_MAPCOUNT_VALUE)", Some("-2049"))],
            "VMCOREINFO has both NUMBER(PG_hugetlb) and NUMBER(PAGE_HUGETLB_MAPCOUNT_VALUE), which no known kernel exports together",
        ),
        (
            "6.6 without hugetlbfs",
            &[("NUMBER(HUGETLB_PAGE_DTOR)", Some("2"))],
            "VMCOREINFO has NUMBER(HUGETLB_PAGE_DTOR) but not OFFSET(page.compound_dtor) or OFFSET(folio._folio_dtor), which every known kernel exports with it",
        ),
        (
            "6.9",
            &[
                ("OFFSET(page.compound_dtor)", Some("16")),
                ("OFFSET(page.compound_order)", Some("17")),
            ],
            "VMCOREINFO has both OFFSET(page.compound_order) and NUMBER(PAGE_HUGETLB_MAPCOUNT_VALUE), which no known kernel exports together",
        ),
        (
            "6.6",
            &[
                ("OFFSET(folio._folio_dtor)", Some("80")),
                ("OFFSET(folio._folio_order)", Some("81")),
            ],
            "VMCOREINFO has both OFFSET(folio._folio_order) and NUMBER(PG_hugetlb), which no known kernel exports together",
        ),
        (
            "4.18",
            &[("NUMBER(HUGETLB_PAGE_DTOR)", Some("300"))],
            "NUMBER(HUGETLB_PAGE_DTOR)=300 does not fit the one-byte compound destructor",
        ),
        (
            "4.18",
            &[("OFFSET(page.compound_order)", Some("64"))],
            "OFFSET(page.compound_order): 1 bytes at offset 64 do not fit in a 64 byte struct page",
        ),
        (
            "6.3",
            &[("OFFSET(folio._folio_order)", Some("17"))],
            "OFFSET(folio._folio_order): 1 bytes at offset 17 do not fit in a 64 byte struct page",
        ),
        (
            "6.3",
            &[("OFFSET(folio._folio_dtor)", Some("128"))],
            "OFFSET(folio._folio_dtor): 1 bytes at offset 64 do not fit in a 64 byte struct page",
        ),
        (
            "6.12",
            &[("LENGTH(zone.free_area)", None)],
            "VMCOREINFO has no LENGTH(zone.free_area)",
        ),
        (
            "6.12",
            &[("LENGTH(zone.free_area)", Some("0"))],
            "LENGTH(zone.free_area)=0 is not a number of buddy orders",
        ),
        (
            "6.12",
            &[("LENGTH(zone.free_area)", Some("65"))],
            "LENGTH(zone.free_area)=65 is not a number of buddy orders",
        ),
    ];
    for (era_name, edits, expected) in cases {
        let text = edit(&era(era_name), edits);
        match layout(&text) {
            Ok(layout) => panic!("{era_name} {edits:?}: accepted as {layout:?}"),
            Err(error) => assert_eq!(error.to_string(), *expected, "{era_name} {edits:?}"),
        }
    }
}

/// Keys the filter can do without only change what they describe.
#[test]
fn optional_keys() {
    let text = edit(
        &era("6.12"),
        &[
            ("OFFSET(page._refcount)", None),
            ("OFFSET(page.lru)", None),
            ("NUMBER(PG_hwpoison)", None),
            ("NUMBER(PAGE_OFFLINE_MAPCOUNT_VALUE)", None),
            ("NUMBER(PAGE_HUGETLB_MAPCOUNT_VALUE)", None),
        ],
    );
    let layout = layout(&text).unwrap();
    assert_eq!(layout.fields.refcount, None);
    assert_eq!(layout.fields.lru, None);
    assert_eq!(layout.flags.hwpoison, None);
    assert_eq!(layout.types.offline, None);
    assert_eq!(layout.hugetlb, Hugetlb::NotExported);
    assert_eq!(layout.types.era, PageTypeEra::TopByte);
}

/// Fields may sit anywhere VMCOREINFO says, as long as they fit.
#[test]
fn fields_follow_vmcoreinfo() {
    let text = edit(
        &era("6.3"),
        &[
            ("SIZE(page)", Some("80")),
            ("OFFSET(page.flags)", Some("8")),
            ("OFFSET(page.mapping)", Some("72")),
            ("OFFSET(page._mapcount)", Some("76")),
            ("OFFSET(folio._folio_dtor)", Some("80")),
            ("OFFSET(folio._folio_order)", Some("159")),
        ],
    );
    let layout = layout(&text).unwrap();
    assert_eq!(layout.size, 80);
    assert_eq!(layout.fields.flags, 8);
    assert_eq!(layout.fields.mapping, 72);
    assert_eq!(layout.fields.mapcount, 76);
    assert_eq!(
        layout.compound_order,
        CompoundOrder::FolioField { offset: 79 }
    );
    assert_eq!(
        layout.hugetlb,
        Hugetlb::Dtor {
            offset: 0,
            value: 2
        }
    );
}

/// The shapes of the module docs' table, and values between them.
#[test]
fn page_type_shapes() {
    use PageTypeEra::*;
    let cases: &[(u32, Option<PageTypeEra>)] = &[
        (0xffff_ff7f, Some(LowBitCleared)),
        (0xffff_feff, Some(LowBitCleared)),
        (0xffff_efff, Some(LowBitCleared)),
        (0xff7f_ffff, Some(LowBitCleared)),
        (0xfeff_ffff, Some(HighBitCleared)),
        (0xbfff_ffff, Some(HighBitCleared)),
        (0x7fff_ffff, None),
        (0xf000_0000, Some(TopByte)),
        (0xf700_0000, Some(TopByte)),
        (0xfe00_0000, Some(TopByte)),
        (0xff00_0000, None),
        (0xef00_0000, None),
        (0xf000_0001, None),
        (0xffff_ff80, None),
        (0xffff_ffff, None),
        (0, None),
    ];
    for (value, expected) in cases {
        assert_eq!(PageTypeEra::of(*value), *expected, "{value:#010x}");
    }
}

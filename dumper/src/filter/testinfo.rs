//! Synthetic VMCOREINFO dictionaries for the filter's tests, one per
//! encoding era of the `struct page` (see [`layout`](super::layout)), with
//! values that follow the kernel's definitions of the time (`~PG_buddy`
//! with `PG_buddy = 0x80` for 4.18 to 6.10, `~0x40000000` for 6.11,
//! `PGTY_buddy << 24` with `PGTY_buddy = 0xf0` from 6.12, and so on); and
//! the real VMCOREINFO of two 6.1 kernels captured by the QEMU tests.
//! [`StructPages`] lays out struct pages of any of them.

use super::layout::{CompoundOrder, Hugetlb, PageLayout, Slab};
use crate::vmcoreinfo::VmcoreInfo;

pub const CLOUD_6_1: &str = include_str!("../testdata/vmcoreinfo/6.1.0-57-cloud-amd64.txt");
pub const GENERIC_6_1: &str = include_str!("../testdata/vmcoreinfo/6.1.0-57-amd64.txt");

/// Keys every era has, with 6.1's values.
pub const COMMON: &str = "\
PAGESIZE=4096
SIZE(page)=64
OFFSET(page.flags)=0
OFFSET(page._refcount)=52
OFFSET(page.mapping)=24
OFFSET(page.lru)=8
OFFSET(page._mapcount)=48
OFFSET(page.private)=40
LENGTH(zone.free_area)=11
NUMBER(PG_lru)=4
NUMBER(PG_private)=13
NUMBER(PG_swapcache)=10
NUMBER(PG_swapbacked)=19
NUMBER(PG_hwpoison)=23
NUMBER(PG_head_mask)=65536
";

/// The era-dependent keys of each row of the layout module docs' tables.
/// `PG_hugetlb` is 8, as in 6.6 (`PG_active`): above the low byte of
/// `page[1].flags`, which holds the order.
pub const ERAS: &[(&str, &str)] = &[
    (
        "4.18",
        "OFFSET(page.compound_head)=8
OFFSET(page.compound_dtor)=16
OFFSET(page.compound_order)=17
NUMBER(PG_slab)=7
NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)=-129
NUMBER(HUGETLB_PAGE_DTOR)=2
",
    ),
    (
        "6.3",
        "OFFSET(page.compound_head)=8
OFFSET(folio._folio_dtor)=80
OFFSET(folio._folio_order)=81
NUMBER(PG_slab)=9
NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)=-129
NUMBER(HUGETLB_PAGE_DTOR)=2
NUMBER(PAGE_OFFLINE_MAPCOUNT_VALUE)=-257
",
    ),
    (
        "6.6",
        "OFFSET(page.compound_head)=8
NUMBER(PG_slab)=9
NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)=-129
NUMBER(PG_hugetlb)=8
NUMBER(PAGE_OFFLINE_MAPCOUNT_VALUE)=-257
",
    ),
    (
        "6.6 without hugetlbfs",
        "OFFSET(page.compound_head)=8
NUMBER(PG_slab)=9
NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)=-129
",
    ),
    (
        "6.9",
        "OFFSET(page.compound_head)=8
NUMBER(PG_slab)=9
NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)=-129
NUMBER(PAGE_HUGETLB_MAPCOUNT_VALUE)=-2049
NUMBER(PAGE_OFFLINE_MAPCOUNT_VALUE)=-257
",
    ),
    (
        "6.10",
        "OFFSET(page.compound_head)=8
NUMBER(PAGE_SLAB_MAPCOUNT_VALUE)=-4097
NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)=-129
NUMBER(PAGE_HUGETLB_MAPCOUNT_VALUE)=-2049
NUMBER(PAGE_OFFLINE_MAPCOUNT_VALUE)=-257
",
    ),
    (
        "6.11",
        "OFFSET(page.compound_head)=8
NUMBER(PAGE_SLAB_MAPCOUNT_VALUE)=-33554433
NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)=-1073741825
NUMBER(PAGE_HUGETLB_MAPCOUNT_VALUE)=-67108865
NUMBER(PAGE_OFFLINE_MAPCOUNT_VALUE)=-536870913
",
    ),
    (
        "6.12",
        "OFFSET(page.compound_head)=8
NUMBER(PAGE_SLAB_MAPCOUNT_VALUE)=-184549376
NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)=-268435456
NUMBER(PAGE_HUGETLB_MAPCOUNT_VALUE)=-201326592
NUMBER(PAGE_OFFLINE_MAPCOUNT_VALUE)=-251658240
",
    ),
    (
        "6.12, values printed unsigned",
        "OFFSET(page.compound_head)=8
NUMBER(PAGE_SLAB_MAPCOUNT_VALUE)=4110417920
NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)=4026531840
NUMBER(PAGE_HUGETLB_MAPCOUNT_VALUE)=4093640704
NUMBER(PAGE_OFFLINE_MAPCOUNT_VALUE)=4043309056
",
    ),
    (
        "6.16 with unaccepted memory",
        "OFFSET(page.compound_head)=8
NUMBER(PAGE_SLAB_MAPCOUNT_VALUE)=-184549376
NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)=-268435456
NUMBER(PAGE_HUGETLB_MAPCOUNT_VALUE)=-201326592
NUMBER(PAGE_OFFLINE_MAPCOUNT_VALUE)=-251658240
NUMBER(PAGE_UNACCEPTED_MAPCOUNT_VALUE)=-150994944
",
    ),
    (
        "7.1",
        "OFFSET(page.compound_info)=8
NUMBER(PAGE_SLAB_MAPCOUNT_VALUE)=-184549376
NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)=-268435456
NUMBER(PAGE_HUGETLB_MAPCOUNT_VALUE)=-201326592
NUMBER(PAGE_OFFLINE_MAPCOUNT_VALUE)=-251658240
",
    ),
];

pub fn era(name: &str) -> String {
    let (_, keys) = ERAS
        .iter()
        .find(|(era, _)| *era == name)
        .unwrap_or_else(|| panic!("no era {name}"));
    format!("{COMMON}{keys}")
}

/// `text` with each key removed (`None`) or set to a value.
pub fn edit(text: &str, edits: &[(&str, Option<&str>)]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for (key, value) in edits {
        let prefix = format!("{key}=");
        lines.retain(|line| !line.starts_with(&prefix));
        if let Some(value) = value {
            lines.push(format!("{key}={value}"));
        }
    }
    lines.join("\n")
}

/// The layout of `text`, which must be one of a kernel.
pub fn layout_of(text: &str) -> PageLayout {
    let info = VmcoreInfo::parse(text.as_bytes()).unwrap();
    PageLayout::from_vmcoreinfo(&info).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// The layout of the era `name` of [`ERAS`].
pub fn era_layout(name: &str) -> PageLayout {
    layout_of(&era(name))
}

/// `_mapcount` of a page nobody maps and of no type: -1.
pub const UNMAPPED: u32 = u32::MAX;

/// A `page.mapping` that points at an `address_space`: page cache.
pub const FILE_MAPPING: u64 = 0xffff_8881_0a3c_5e40;

/// A `page.mapping` that points at an `anon_vma`, plus 1: anonymous memory.
pub const ANON_MAPPING: u64 = 0xffff_8881_0b71_2c01;

/// Consecutive struct pages of one layout, written field by field; every
/// page starts unmapped, untyped and with no flags: a kernel page that
/// every level keeps.
pub struct StructPages {
    pub layout: PageLayout,
    pub bytes: Vec<u8>,
}

impl StructPages {
    pub fn new(layout: &PageLayout, count: u64) -> StructPages {
        let mut pages = StructPages {
            layout: layout.clone(),
            bytes: vec![0; (count * layout.size) as usize],
        };
        for index in 0..count {
            pages.set_mapcount(index, UNMAPPED);
        }
        pages
    }

    pub fn count(&self) -> u64 {
        self.bytes.len() as u64 / self.layout.size
    }

    /// The struct page at `index`.
    pub fn page(&self, index: u64) -> &[u8] {
        let size = self.layout.size as usize;
        let start = index as usize * size;
        &self.bytes[start..start + size]
    }

    fn write(&mut self, index: u64, offset: u64, value: &[u8]) {
        let at = (index * self.layout.size + offset) as usize;
        self.bytes[at..at + value.len()].copy_from_slice(value);
    }

    fn read_u64(&self, index: u64, offset: u64) -> u64 {
        let at = (index * self.layout.size + offset) as usize;
        u64::from_le_bytes(self.bytes[at..at + 8].try_into().unwrap())
    }

    pub fn set_flag(&mut self, index: u64, bit: u32) {
        let offset = self.layout.fields.flags;
        let flags = self.read_u64(index, offset) | 1 << bit;
        self.write(index, offset, &flags.to_le_bytes());
    }

    pub fn set_mapping(&mut self, index: u64, mapping: u64) {
        self.write(index, self.layout.fields.mapping, &mapping.to_le_bytes());
    }

    pub fn set_mapcount(&mut self, index: u64, mapcount: u32) {
        self.write(index, self.layout.fields.mapcount, &mapcount.to_le_bytes());
    }

    pub fn set_private(&mut self, index: u64, private: u64) {
        self.write(index, self.layout.fields.private, &private.to_le_bytes());
    }

    pub fn set_compound_head(&mut self, index: u64, value: u64) {
        let offset = self.layout.fields.compound_head;
        self.write(index, offset, &value.to_le_bytes());
    }

    /// Marks the page a slab page, as the era does.
    pub fn set_slab(&mut self, index: u64) {
        match self.layout.slab {
            Slab::Flag(bit) => self.set_flag(index, bit),
            Slab::PageType(value) => self.set_mapcount(index, value),
        }
    }

    /// A page-cache page: on the LRU, mapped by a file.
    pub fn set_cache(&mut self, index: u64) {
        self.set_flag(index, self.layout.flags.lru);
        self.set_mapping(index, FILE_MAPPING);
    }

    /// An anonymous page: on the LRU, swap-backed, mapped once.
    pub fn set_anon(&mut self, index: u64) {
        self.set_flag(index, self.layout.flags.lru);
        self.set_flag(index, self.layout.flags.swapbacked);
        self.set_mapping(index, ANON_MAPPING);
        self.set_mapcount(index, 0);
    }

    /// The head of a free block of `2^order` pages.
    pub fn set_buddy(&mut self, index: u64, order: u64) {
        self.set_mapcount(index, self.layout.types.buddy);
        self.set_private(index, order);
    }

    /// Makes the page at `index` the head of a compound page of
    /// `2^order` pages, a hugetlb folio if `hugetlb`: its head flag, and
    /// its order and hugetlb mark where the era keeps them; its tails
    /// within these struct pages point back at it with `tail_word`.
    pub fn set_compound(&mut self, index: u64, order: u8, hugetlb: bool, tail_word: u64) {
        let layout = self.layout.clone();
        let head_bit = layout.flags.head_mask.trailing_zeros();
        self.set_flag(index, head_bit);
        match layout.compound_order {
            CompoundOrder::PageField { offset } | CompoundOrder::FolioField { offset } => {
                self.write(index + 1, offset, &[order]);
            }
            CompoundOrder::TailFlagsLowByte => {
                let offset = layout.fields.flags;
                let flags = self.read_u64(index + 1, offset) & !0xff | u64::from(order);
                self.write(index + 1, offset, &flags.to_le_bytes());
            }
        }
        if hugetlb {
            match layout.hugetlb {
                Hugetlb::NotExported => panic!("this era cannot mark hugetlb folios"),
                Hugetlb::Dtor { offset, value } => self.write(index + 1, offset, &[value]),
                Hugetlb::TailFlag(bit) => self.set_flag(index + 1, bit),
                Hugetlb::PageType(value) => self.set_mapcount(index, value),
            }
        }
        let tails = 1u64.checked_shl(order.into()).unwrap_or(u64::MAX);
        let tails = tails.min(self.count() - index);
        for tail in index + 1..index + tails {
            self.set_compound_head(tail, tail_word);
        }
    }
}

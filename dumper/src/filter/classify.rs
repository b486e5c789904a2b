//! makedumpfile's decision for one page frame, as a pure function of the
//! frame's `struct page` (and, for a compound head, of the first tail page
//! after it, `page[1]`, where the order and the hugetlb mark are), the
//! [`PageLayout`] and the [`DumpLevel`].
//!
//! # Decision order
//!
//! The order is that of makedumpfile's `__exclude_unnecessary_pages`: the
//! first rule that applies decides, and a rule for a category the level
//! keeps does not apply, so the page goes on to the next one. That is why
//! an anonymous page that is also hardware-poisoned counts as user data at
//! level 8 and as hwpoison at level 0.
//!
//! 1. A tail page is decided by its head: on its own it is kept (the window
//!    classifier reads the head for tails it meets before their head).
//! 2. Free (level bit 16): a buddy page, `_mapcount` equal to the buddy
//!    page type, heads a free block of `2^private` frames.
//! 3. Unaccepted (bit 16, 6.16 on): the unaccepted page type heads a block
//!    of the largest buddy order, the only order the kernel puts on the
//!    unaccepted list; counted as free, as makedumpfile counts it.
//! 4. Cache without private data (bits 2 or 4): on an LRU list, or in the
//!    swap cache of swap-backed memory; not anonymous; `PG_private` clear.
//! 5. Cache with or without private data (bit 4): the same without the
//!    `PG_private` condition, counted as private cache when it is set.
//! 6. User data (bit 8): anonymous memory (`mapping` bit 0), or a hugetlb
//!    folio.
//! 7. Hardware-poisoned (`PG_hwpoison`), at every level.
//! 8. Logically offline (the offline page type), at every level.
//! 9. Everything else is kept.
//!
//! A slab page is never free, anonymous or offline, whatever its
//! `_mapcount` or `mapping` say: up to 6.9 slab kept its own data in
//! those words (the `PG_slab` flag marks it), and from 6.10 its page type
//! is the slab one. Page types are compared as whole 32-bit values (see
//! [`layout`](super::layout)).
//!
//! Rules 4 to 8 cover a whole compound page when they decide its head:
//! `2^order` frames, the order read from `page[1]` where the layout says.
//! An order of 64 or more, or one the head's pfn is not aligned to, is
//! taken as 0, as makedumpfile takes it: the head alone is decided and its
//! tails are kept.
//!
//! # Where this differs from makedumpfile, and why
//!
//! All but the last only in data no sane kernel leaves, and towards
//! keeping frames:
//!
//! - A compound order above [`MAX_COMPOUND_ORDER`] (1 GiB pages, the
//!   largest an x86_64 kernel makes) is taken as 0 too: a garbage order
//!   byte on a head at pfn 0 would otherwise drop all of memory.
//! - A free or unaccepted block whose pfn is not aligned to its order is
//!   [`Decision::Unclassifiable`]: the buddy allocator only makes aligned
//!   blocks, and excluding `2^order` frames from anywhere else could drop
//!   frames in use. makedumpfile excludes it. A free block whose order is
//!   not below `LENGTH(zone.free_area)` is unclassifiable too; makedumpfile
//!   keeps it with a warning.
//! - A compound head whose `page[1]` cannot be read is unclassifiable;
//!   makedumpfile never meets one, since it reads the memory map in
//!   aligned blocks.
//! - Flag bits are tested in all 64 bits of `page.flags`; makedumpfile's
//!   `test_bit` wraps bit numbers at 32, which no exported bit reaches.
//! - From 6.10 a slab page is recognised by its page type alone;
//!   makedumpfile also tests a bit derived from the unexported `PG_slab`.
//! - On kernels from 6.6 built without hugetlbfs the order is read from
//!   `page[1].flags`, as [`CompoundOrder::TailFlagsLowByte`] says it is.
//!   makedumpfile looks there only when a hugetlb key is exported, so it
//!   takes every compound page of such a kernel as order 0 and dumps the
//!   tails of a large folio whose head it leaves out; here they go with
//!   their head, as they do on the same kernel built with hugetlbfs.
//!
//! Zero pages (level bit 1) are not decided here: that needs the page's
//! contents, which the stream reads anyway.

use super::layout::{CompoundHeadName, CompoundOrder, Hugetlb, PageLayout, Slab};
use super::{DumpLevel, ExcludeCategory};

/// The largest compound order believed: 1 GiB pages, `PUD_ORDER`, the
/// largest folio an x86_64 kernel makes (hugetlbfs gigantic pages, device
/// DAX).
pub const MAX_COMPOUND_ORDER: u32 = 18;

/// Bit 0 of `page.mapping`: anonymous memory (`PAGE_MAPPING_ANON`).
const PAGE_MAPPING_ANON: u64 = 1;

/// Bit 0 of `page.compound_head` (`compound_info` from 7.1): a tail page.
const TAIL: u64 = 1;

/// What becomes of one page frame, and of the frames after it that the
/// decision covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Dumped.
    Keep,
    /// Left out, with the `pages` frames starting here (a power of two,
    /// aligned: a free block or a compound page).
    Exclude {
        category: ExcludeCategory,
        pages: u64,
    },
    /// Dumped, because its `struct page` could not be read or makes no
    /// sense; counted, so that a report can say how many.
    Unclassifiable,
}

impl Decision {
    /// The frames the decision covers from where it was made.
    pub const fn pages(self) -> u64 {
        match self {
            Decision::Exclude { pages, .. } => pages,
            Decision::Keep | Decision::Unclassifiable => 1,
        }
    }

    /// What this decision, made for the head at `head_pfn`, means for its
    /// tail at `tail_pfn`: excluded with the rest of the compound page if
    /// the head's exclusion reaches it, else kept as makedumpfile keeps
    /// tails; unclassifiable with an unclassifiable head.
    pub fn for_tail(self, head_pfn: u64, tail_pfn: u64) -> Decision {
        match self {
            Decision::Exclude { category, pages } => {
                let end = head_pfn.saturating_add(pages);
                if head_pfn < tail_pfn && tail_pfn < end {
                    Decision::Exclude {
                        category,
                        pages: end - tail_pfn,
                    }
                } else {
                    Decision::Keep
                }
            }
            Decision::Keep => Decision::Keep,
            Decision::Unclassifiable => Decision::Unclassifiable,
        }
    }
}

/// The fields of one `struct page` that the classifier reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StructPage {
    pub flags: u64,
    pub mapping: u64,
    /// `_mapcount`, or the page type of a typed page.
    pub mapcount: u32,
    pub private: u64,
    /// `compound_head`, or `compound_info` from 7.1.
    pub compound_head: u64,
}

impl StructPage {
    /// The fields of the struct page in `bytes`, or `None` if `bytes` is
    /// too short to hold them.
    pub fn parse(layout: &PageLayout, bytes: &[u8]) -> Option<StructPage> {
        let fields = &layout.fields;
        Some(StructPage {
            flags: u64_at(bytes, fields.flags)?,
            mapping: u64_at(bytes, fields.mapping)?,
            mapcount: u32_at(bytes, fields.mapcount)?,
            private: u64_at(bytes, fields.private)?,
            compound_head: u64_at(bytes, fields.compound_head)?,
        })
    }

    /// Whether this is a tail page of a compound page.
    pub const fn is_tail(&self) -> bool {
        self.compound_head & TAIL != 0
    }

    /// Whether this is the head page of a compound page.
    pub const fn is_head(&self, layout: &PageLayout) -> bool {
        self.flags & layout.flags.head_mask != 0
    }

    /// Whether `bit` of `page.flags` is set.
    const fn flag(&self, bit: u32) -> bool {
        bit < 64 && self.flags >> bit & 1 != 0
    }

    /// The virtual address of the head's `struct page`, if this page, whose
    /// own `struct page` is at `vaddr`, is a tail.
    ///
    /// Up to 7.0 the tail word is the head's address plus 1. From 7.1
    /// (`compound_info`) a kernel with hugetlb vmemmap optimisation and a
    /// power-of-two `struct page` stores instead a mask plus 1, all ones
    /// from the top down to the bit of the compound page's size in the
    /// memory map, and the head is the tail's own address under the mask.
    /// The shape tells the two apart: a memory-map address has it only
    /// as the struct page of pfn 0 at a vmemmap base so aligned, and then
    /// the tail's address under it is that same address.
    pub fn head(&self, layout: &PageLayout, vaddr: u64) -> Option<u64> {
        if !self.is_tail() {
            return None;
        }
        let info = self.compound_head & !TAIL;
        let masked = layout.fields.compound_head_name == CompoundHeadName::CompoundInfo
            && layout.size.is_power_of_two()
            && is_high_mask(info);
        Some(if masked { vaddr & info } else { info })
    }

    fn is_slab(&self, layout: &PageLayout) -> bool {
        match layout.slab {
            Slab::Flag(bit) => self.flag(bit),
            Slab::PageType(value) => self.mapcount == value,
        }
    }

    fn is_anon(&self, layout: &PageLayout) -> bool {
        self.mapping & PAGE_MAPPING_ANON != 0 && !self.is_slab(layout)
    }

    /// On an LRU list, or in the swap cache: `PG_swapcache` only means that
    /// with `PG_swapbacked` set, the bit being reused otherwise.
    fn is_cache(&self, layout: &PageLayout) -> bool {
        let flags = &layout.flags;
        self.flag(flags.lru) || (self.flag(flags.swapbacked) && self.flag(flags.swapcache))
    }

    fn is_hwpoison(&self, layout: &PageLayout) -> bool {
        layout.flags.hwpoison.is_some_and(|bit| self.flag(bit))
    }

    fn is_offline(&self, layout: &PageLayout) -> bool {
        layout.types.offline == Some(self.mapcount) && !self.is_slab(layout)
    }

    fn is_buddy(&self, layout: &PageLayout) -> bool {
        self.mapcount == layout.types.buddy && !self.is_slab(layout)
    }

    fn is_unaccepted(&self, layout: &PageLayout) -> bool {
        layout.types.unaccepted == Some(self.mapcount)
    }
}

/// `value` is all ones from bit 63 down to some bit, and zeros below.
fn is_high_mask(value: u64) -> bool {
    let low = !value;
    value != 0 && low & low.wrapping_add(1) == 0
}

/// What a compound head's `page[1]` says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Compound {
    /// The order as stored, before any sanity check.
    order: u64,
    hugetlb: bool,
}

impl Compound {
    /// The order and hugetlb mark of the head `head`, from its `page[1]`
    /// in `tail`; `None` if `tail` is too short for the fields.
    fn read(layout: &PageLayout, head: &StructPage, tail: &[u8]) -> Option<Compound> {
        let tail_flags = || u64_at(tail, layout.fields.flags);
        let order = match layout.compound_order {
            CompoundOrder::PageField { offset } | CompoundOrder::FolioField { offset } => {
                u64::from(byte_at(tail, offset)?)
            }
            CompoundOrder::TailFlagsLowByte => tail_flags()? & 0xff,
        };
        let hugetlb = match layout.hugetlb {
            Hugetlb::NotExported => false,
            Hugetlb::Dtor { offset, value } => byte_at(tail, offset)? == value,
            Hugetlb::TailFlag(bit) => bit < 64 && tail_flags()? >> bit & 1 != 0,
            Hugetlb::PageType(value) => head.mapcount == value,
        };
        Some(Compound { order, hugetlb })
    }

    /// The frames the compound page at `pfn` covers: `2^order`, or 1 when
    /// the order is above [`MAX_COMPOUND_ORDER`] (makedumpfile refuses 64
    /// and more) or `pfn` is not aligned to it, as makedumpfile checks.
    fn pages(self, pfn: u64) -> u64 {
        if self.order > u64::from(MAX_COMPOUND_ORDER) {
            return 1;
        }
        let pages = 1u64 << self.order;
        if pfn.is_multiple_of(pages) {
            pages
        } else {
            1
        }
    }
}

/// makedumpfile's decision for the frame `pfn`, whose `struct page` is
/// `page`, at `level`. For a compound head, `page1` is the next `struct
/// page` (its first tail); `None` when it could not be read.
///
/// A tail page is kept: its head decides it, and the caller, which knows
/// where struct pages are, reads the head ([`StructPage::head`]) and asks
/// [`Decision::for_tail`].
pub fn classify(
    layout: &PageLayout,
    level: DumpLevel,
    pfn: u64,
    page: &[u8],
    page1: Option<&[u8]>,
) -> Decision {
    let Some(page) = StructPage::parse(layout, page) else {
        return Decision::Unclassifiable;
    };
    if page.is_tail() {
        return Decision::Keep;
    }
    let compound = if page.is_head(layout) {
        match page1.and_then(|tail| Compound::read(layout, &page, tail)) {
            Some(compound) => compound,
            None => return Decision::Unclassifiable,
        }
    } else {
        Compound::default()
    };

    let excludes = |category| level.excludes(category);
    if excludes(ExcludeCategory::Free) && page.is_buddy(layout) {
        return free_block(layout, pfn, page.private);
    }
    if excludes(ExcludeCategory::Free) && page.is_unaccepted(layout) {
        return free_block(layout, pfn, u64::from(layout.nr_page_orders - 1));
    }

    let pages = compound.pages(pfn);
    let exclude = |category| Decision::Exclude { category, pages };
    let private = page.flag(layout.flags.private);
    let cache = page.is_cache(layout) && !page.is_anon(layout);
    if excludes(ExcludeCategory::Cache) && cache && !private {
        return exclude(ExcludeCategory::Cache);
    }
    if excludes(ExcludeCategory::CachePrivate) && cache {
        return exclude(if private {
            ExcludeCategory::CachePrivate
        } else {
            ExcludeCategory::Cache
        });
    }
    if excludes(ExcludeCategory::User) && (page.is_anon(layout) || compound.hugetlb) {
        return exclude(ExcludeCategory::User);
    }
    if page.is_hwpoison(layout) {
        return exclude(ExcludeCategory::Hwpoison);
    }
    if page.is_offline(layout) {
        return exclude(ExcludeCategory::Offline);
    }
    Decision::Keep
}

/// A free block of `2^order` frames at `pfn`, if the buddy allocator could
/// have made it: an order it has, and aligned to it.
fn free_block(layout: &PageLayout, pfn: u64, order: u64) -> Decision {
    if order >= u64::from(layout.nr_page_orders) || order >= 64 {
        return Decision::Unclassifiable;
    }
    let pages = 1u64 << order;
    if !pfn.is_multiple_of(pages) {
        return Decision::Unclassifiable;
    }
    Decision::Exclude {
        category: ExcludeCategory::Free,
        pages,
    }
}

fn byte_at(bytes: &[u8], offset: u64) -> Option<u8> {
    bytes.get(usize::try_from(offset).ok()?).copied()
}

fn u64_at(bytes: &[u8], offset: u64) -> Option<u64> {
    let at = usize::try_from(offset).ok()?;
    bytes
        .get(at..)?
        .first_chunk::<8>()
        .copied()
        .map(u64::from_le_bytes)
}

fn u32_at(bytes: &[u8], offset: u64) -> Option<u32> {
    let at = usize::try_from(offset).ok()?;
    bytes
        .get(at..)?
        .first_chunk::<4>()
        .copied()
        .map(u32::from_le_bytes)
}

#[cfg(test)]
mod tests;

//! The crashed kernel's `struct page` as VMCOREINFO describes it: where the
//! fields the filter reads sit, which bits of `page.flags` mean what, the
//! page-type values kept in `page._mapcount`, and where a compound page
//! keeps its order and its hugetlb mark.
//!
//! The kernel has changed all of these many times. Which encoding applies
//! is decided here from which VMCOREINFO keys are present and from the
//! shape of their values, never from the release string: distribution
//! kernels backport such changes, and a key the kernel does not export
//! cannot be read however new the release claims to be. A set of keys that
//! no known kernel exports is an error, as is a missing required key; the
//! error names the key.
//!
//! # Page types (`page._mapcount` of a typed page)
//!
//! A free (buddy), offline, slab, hugetlb or unaccepted page is recognised
//! by comparing the whole 32-bit `_mapcount` with the kernel's
//! `NUMBER(PAGE_*_MAPCOUNT_VALUE)`, as makedumpfile does since it stopped
//! deriving bit masks from these values (1.7.6 derived them and kept every
//! free page of 6.12 kernels). The values have three shapes, and all the
//! values one kernel exports share one:
//!
//! | kernels     | shape                                        | buddy        |
//! |-------------|----------------------------------------------|--------------|
//! | 4.18 – 6.10 | all ones but one bit below bit 24            | `0xffffff7f` |
//! | 6.11        | all ones but one bit of bits 24 to 30        | `0xbfffffff` |
//! | 6.12 –      | type in the top byte (`0xf0`…), low 24 bits zero | `0xf0000000` |
//!
//! Kernels before 4.18 mark free pages with `-128`, which fits none of
//! these, and are refused: before 4.16 their compound fields were 16 bits
//! wide, and VMCOREINFO does not say which width a kernel uses.
//!
//! # Slab pages
//!
//! Up to 6.9 a slab page has `NUMBER(PG_slab)` set in `page.flags`; from
//! 6.10 it is the page type `NUMBER(PAGE_SLAB_MAPCOUNT_VALUE)`.
//!
//! # Compound pages
//!
//! A tail page has bit 0 set in `page.compound_head`, renamed
//! `page.compound_info` in 7.1 with the same bit; a head page has
//! `NUMBER(PG_head_mask)` in its flags. Its order and hugetlb mark moved:
//!
//! | kernels   | order                                 | hugetlb                                   |
//! |-----------|---------------------------------------|-------------------------------------------|
//! | – 6.2     | `page[1]` byte at `OFFSET(page.compound_order)` | `page[1]` byte at `OFFSET(page.compound_dtor)` = `NUMBER(HUGETLB_PAGE_DTOR)` |
//! | 6.3 – 6.5 | `OFFSET(folio._folio_order)`, counted from the head | `OFFSET(folio._folio_dtor)` = `NUMBER(HUGETLB_PAGE_DTOR)` |
//! | 6.6 – 6.8 | low byte of `page[1].flags`            | `NUMBER(PG_hugetlb)` in `page[1].flags`    |
//! | 6.9 –     | low byte of `page[1].flags`            | head's `_mapcount` = `NUMBER(PAGE_HUGETLB_MAPCOUNT_VALUE)` |
//!
//! A kernel built without hugetlbfs exports no hugetlb key (and, up to 6.8,
//! no `PAGE_OFFLINE_MAPCOUNT_VALUE` either, which sits in the same
//! `#ifdef`). Its order fields still say where the order is up to 6.5;
//! when no key says anything, the order is in the flags byte, since only a
//! 6.6 to 6.8 kernel without hugetlbfs exports neither order fields nor a
//! hugetlb key.

use crate::vmcoreinfo::VmcoreInfo;

use super::keys::Keys;
use super::FilterError;

/// The only page size supported: x86_64's.
pub const PAGE_SIZE: u64 = 4096;

/// The largest `SIZE(page)` believed: production kernels have 64 bytes,
/// debugging options add a few words, and anything near a kilobyte is not
/// a `struct page` but a corrupt or hostile VMCOREINFO.
const MAX_STRUCT_PAGE_SIZE: u64 = 1024;

/// Everything the filter needs to read a `struct page`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageLayout {
    /// `SIZE(page)`: the stride of the memory map.
    pub size: u64,
    /// Byte offsets of the fields read.
    pub fields: PageFields,
    /// Bit numbers in `page.flags`.
    pub flags: PageFlags,
    /// Page-type values of `page._mapcount`.
    pub types: PageTypes,
    /// How slab pages are marked.
    pub slab: Slab,
    /// Where a compound head's order is.
    pub compound_order: CompoundOrder,
    /// How a hugetlb folio is marked.
    pub hugetlb: Hugetlb,
    /// `LENGTH(zone.free_area)`: the number of buddy orders, so a free block
    /// spans at most `2^(nr_page_orders - 1)` pages.
    pub nr_page_orders: u32,
}

/// Byte offsets of `struct page` fields, each checked to lie inside
/// `SIZE(page)` with its width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageFields {
    /// `OFFSET(page.flags)`, 8 bytes.
    pub flags: u64,
    /// `OFFSET(page.mapping)`, 8 bytes; bit 0 marks anonymous memory.
    pub mapping: u64,
    /// `OFFSET(page._mapcount)`, 4 bytes; holds the page type.
    pub mapcount: u64,
    /// `OFFSET(page.private)`, 8 bytes; a free block's order.
    pub private: u64,
    /// `OFFSET(page.compound_head)` or, from 7.1, `OFFSET(page.compound_info)`,
    /// 8 bytes; bit 0 marks a tail page.
    pub compound_head: u64,
    /// Which of the two names the kernel exported.
    pub compound_head_name: CompoundHeadName,
    /// `OFFSET(page._refcount)`, 4 bytes, when exported; the classifier
    /// does not need it.
    pub refcount: Option<u64>,
    /// `OFFSET(page.lru)`, 16 bytes, when exported; the classifier does not
    /// need it.
    pub lru: Option<u64>,
}

/// The name under which the kernel exports the tail-page word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompoundHeadName {
    /// `page.compound_head`, up to 7.0.
    CompoundHead,
    /// `page.compound_info`, from 7.1.
    CompoundInfo,
}

/// Bit numbers of `page.flags`, each below 64.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageFlags {
    /// `NUMBER(PG_lru)`.
    pub lru: u32,
    /// `NUMBER(PG_private)`.
    pub private: u32,
    /// `NUMBER(PG_swapcache)`.
    pub swapcache: u32,
    /// `NUMBER(PG_swapbacked)`; swapcache only counts with it set.
    pub swapbacked: u32,
    /// `NUMBER(PG_hwpoison)`, exported only by kernels built with
    /// CONFIG_MEMORY_FAILURE.
    pub hwpoison: Option<u32>,
    /// `NUMBER(PG_head_mask)`: the single bit marking a compound head.
    pub head_mask: u64,
}

/// Page-type values of `page._mapcount`, compared whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageTypes {
    /// The shape all of this kernel's values share.
    pub era: PageTypeEra,
    /// `NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)`: the head of a free block.
    pub buddy: u32,
    /// `NUMBER(PAGE_OFFLINE_MAPCOUNT_VALUE)`, from 5.0 when exported.
    pub offline: Option<u32>,
    /// `NUMBER(PAGE_UNACCEPTED_MAPCOUNT_VALUE)`, from 6.16 in kernels built
    /// with CONFIG_UNACCEPTED_MEMORY.
    pub unaccepted: Option<u32>,
}

/// The shape of a kernel's page-type values; see the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageTypeEra {
    /// 4.18 to 6.10: one bit cleared below bit 24.
    LowBitCleared,
    /// 6.11: one bit cleared among bits 24 to 30.
    HighBitCleared,
    /// 6.12 on: the type in the top byte, the low 24 bits zero.
    TopByte,
}

impl PageTypeEra {
    /// The era whose shape `value` has, if any.
    pub fn of(value: u32) -> Option<PageTypeEra> {
        if value & 0x00ff_ffff == 0 && (0xf0..=0xfe).contains(&(value >> 24)) {
            return Some(PageTypeEra::TopByte);
        }
        if value.count_zeros() != 1 {
            return None;
        }
        match value.trailing_ones() {
            0..=23 => Some(PageTypeEra::LowBitCleared),
            24..=30 => Some(PageTypeEra::HighBitCleared),
            _ => None,
        }
    }

    /// Kernel releases with this shape, for messages.
    pub const fn kernels(self) -> &'static str {
        match self {
            PageTypeEra::LowBitCleared => "4.18 to 6.10",
            PageTypeEra::HighBitCleared => "6.11",
            PageTypeEra::TopByte => "6.12 or later",
        }
    }
}

/// How a slab page is recognised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slab {
    /// Up to 6.9: this bit of `page.flags` (`NUMBER(PG_slab)`).
    Flag(u32),
    /// From 6.10: this page type (`NUMBER(PAGE_SLAB_MAPCOUNT_VALUE)`).
    PageType(u32),
}

/// Where a compound head's order is kept: always in its first tail page,
/// `page[1]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompoundOrder {
    /// Up to 6.2: the byte at this offset of `page[1]`
    /// (`OFFSET(page.compound_order)`).
    PageField { offset: u64 },
    /// 6.3 to 6.5: the byte at this offset of `page[1]`
    /// (`OFFSET(folio._folio_order)` minus `SIZE(page)`, since a folio
    /// starts at its head page).
    FolioField { offset: u64 },
    /// From 6.6: the low byte of `page[1].flags` (`folio._flags_1`).
    TailFlagsLowByte,
}

/// How a hugetlb folio is recognised from its head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hugetlb {
    /// The kernel exports no way to tell: it was built without hugetlbfs.
    NotExported,
    /// Up to 6.5: the byte at this offset of `page[1]` (the compound or
    /// folio destructor) equals `NUMBER(HUGETLB_PAGE_DTOR)`.
    Dtor { offset: u64, value: u8 },
    /// 6.6 to 6.8: this bit of `page[1].flags` (`NUMBER(PG_hugetlb)`).
    TailFlag(u32),
    /// From 6.9: the head's page type
    /// (`NUMBER(PAGE_HUGETLB_MAPCOUNT_VALUE)`).
    PageType(u32),
}

impl PageLayout {
    /// Reads the layout from VMCOREINFO, or says which key is missing or
    /// which combination no known kernel exports.
    pub fn from_vmcoreinfo(info: &VmcoreInfo) -> Result<PageLayout, FilterError> {
        let keys = Keys(info);

        let page_size = keys.require("PAGESIZE", |i| i.page_size())?;
        if page_size != PAGE_SIZE {
            return Err(FilterError::PageSize { size: page_size });
        }
        let size = keys.require("SIZE(page)", |i| i.size("page"))?;
        if size == 0 || size % 8 != 0 || size > MAX_STRUCT_PAGE_SIZE {
            return Err(FilterError::StructPageSize { size });
        }

        let fields = read_fields(&keys, size)?;
        let flags = read_flags(&keys)?;
        let (types, slab, hugetlb_type) = read_types(&keys)?;
        let (compound_order, hugetlb) = read_compound(&keys, size, hugetlb_type)?;

        let orders_key = "LENGTH(zone.free_area)";
        let nr_page_orders = keys.require(orders_key, |i| i.length("zone.free_area"))?;
        if !(1..=64).contains(&nr_page_orders) {
            return Err(FilterError::PageOrders {
                value: nr_page_orders,
            });
        }

        Ok(PageLayout {
            size,
            fields,
            flags,
            types,
            slab,
            compound_order,
            hugetlb,
            nr_page_orders: nr_page_orders as u32,
        })
    }
}

fn read_fields(keys: &Keys, size: u64) -> Result<PageFields, FilterError> {
    let field = |name: &str, width: u64| -> Result<Option<u64>, FilterError> {
        let key = format!("OFFSET(page.{name})");
        let Some(offset) = keys.get(&key, |i| i.offset(&format!("page.{name}")))? else {
            return Ok(None);
        };
        check_inside(key, offset, width, size)?;
        Ok(Some(offset))
    };
    let required = |name: &str, width: u64| -> Result<u64, FilterError> {
        field(name, width)?.ok_or_else(|| FilterError::MissingKey {
            key: format!("OFFSET(page.{name})"),
        })
    };

    let (compound_head, compound_head_name) =
        match (field("compound_head", 8)?, field("compound_info", 8)?) {
            (Some(offset), None) => (offset, CompoundHeadName::CompoundHead),
            (None, Some(offset)) => (offset, CompoundHeadName::CompoundInfo),
            (None, None) => {
                return Err(FilterError::MissingOneOf {
                    keys: &["OFFSET(page.compound_head)", "OFFSET(page.compound_info)"],
                })
            }
            (Some(_), Some(_)) => {
                return Err(FilterError::ConflictingKeys {
                    first: "OFFSET(page.compound_head)".into(),
                    second: "OFFSET(page.compound_info)".into(),
                })
            }
        };

    Ok(PageFields {
        flags: required("flags", 8)?,
        mapping: required("mapping", 8)?,
        mapcount: required("_mapcount", 4)?,
        private: required("private", 8)?,
        compound_head,
        compound_head_name,
        refcount: field("_refcount", 4)?,
        lru: field("lru", 16)?,
    })
}

fn read_flags(keys: &Keys) -> Result<PageFlags, FilterError> {
    let head_key = "NUMBER(PG_head_mask)";
    let head_mask = keys.require(head_key, |i| i.number("PG_head_mask"))?;
    if head_mask <= 0 || head_mask.count_ones() != 1 {
        return Err(FilterError::NotOneBit {
            key: head_key.into(),
            value: head_mask,
        });
    }
    Ok(PageFlags {
        lru: keys.required_flag_bit("PG_lru")?,
        private: keys.required_flag_bit("PG_private")?,
        swapcache: keys.required_flag_bit("PG_swapcache")?,
        swapbacked: keys.required_flag_bit("PG_swapbacked")?,
        hwpoison: keys.flag_bit("PG_hwpoison")?,
        head_mask: head_mask as u64,
    })
}

/// The page types, the slab marker and the hugetlb page type if exported,
/// with every exported page-type value checked to share one era.
fn read_types(keys: &Keys) -> Result<(PageTypes, Slab, Option<u32>), FilterError> {
    let buddy_key = "NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)";
    let buddy = keys
        .page_type("PAGE_BUDDY_MAPCOUNT_VALUE")?
        .ok_or_else(|| FilterError::MissingKey {
            key: buddy_key.into(),
        })?;
    let offline = keys.page_type("PAGE_OFFLINE_MAPCOUNT_VALUE")?;
    let slab_type = keys.page_type("PAGE_SLAB_MAPCOUNT_VALUE")?;
    let hugetlb_type = keys.page_type("PAGE_HUGETLB_MAPCOUNT_VALUE")?;
    let unaccepted = keys.page_type("PAGE_UNACCEPTED_MAPCOUNT_VALUE")?;

    let era = check_one_era(
        buddy,
        &[
            ("PAGE_OFFLINE_MAPCOUNT_VALUE", offline),
            ("PAGE_SLAB_MAPCOUNT_VALUE", slab_type),
            ("PAGE_HUGETLB_MAPCOUNT_VALUE", hugetlb_type),
            ("PAGE_UNACCEPTED_MAPCOUNT_VALUE", unaccepted),
        ],
    )?;

    let slab_flag = keys.flag_bit("PG_slab")?;
    let slab = match (slab_flag, slab_type) {
        (Some(bit), None) => Slab::Flag(bit),
        (None, Some(value)) => Slab::PageType(value),
        (None, None) => {
            return Err(FilterError::MissingOneOf {
                keys: &["NUMBER(PG_slab)", "NUMBER(PAGE_SLAB_MAPCOUNT_VALUE)"],
            })
        }
        (Some(_), Some(_)) => {
            return Err(FilterError::ConflictingKeys {
                first: "NUMBER(PG_slab)".into(),
                second: "NUMBER(PAGE_SLAB_MAPCOUNT_VALUE)".into(),
            })
        }
    };

    let types = PageTypes {
        era,
        buddy,
        offline,
        unaccepted,
    };
    Ok((types, slab, hugetlb_type))
}

/// The era of the buddy value, which every other exported page type must
/// share without repeating a value.
fn check_one_era(buddy: u32, others: &[(&str, Option<u32>)]) -> Result<PageTypeEra, FilterError> {
    let buddy_name = "PAGE_BUDDY_MAPCOUNT_VALUE";
    let exported: Vec<(&str, u32)> = std::iter::once((buddy_name, buddy))
        .chain(
            others
                .iter()
                .filter_map(|&(name, value)| Some((name, value?))),
        )
        .collect();
    let era_of = |name: &str, value: u32| {
        PageTypeEra::of(value).ok_or_else(|| FilterError::PageTypeEncoding {
            key: format!("NUMBER({name})"),
            value,
        })
    };
    let era = era_of(buddy_name, buddy)?;
    for (index, &(name, value)) in exported.iter().enumerate().skip(1) {
        let this = era_of(name, value)?;
        if this != era {
            return Err(FilterError::MixedPageTypeEras {
                key: format!("NUMBER({name})"),
                kernels: this.kernels(),
                first_key: format!("NUMBER({buddy_name})"),
                first_kernels: era.kernels(),
            });
        }
        if let Some(&(other, _)) = exported[..index].iter().find(|&&(_, v)| v == value) {
            return Err(FilterError::SamePageType {
                key: format!("NUMBER({name})"),
                other: format!("NUMBER({other})"),
                value,
            });
        }
    }
    Ok(era)
}

fn read_compound(
    keys: &Keys,
    size: u64,
    hugetlb_type: Option<u32>,
) -> Result<(CompoundOrder, Hugetlb), FilterError> {
    let page_fields = tail_fields(
        keys,
        size,
        "page.compound_order",
        "page.compound_dtor",
        false,
    )?;
    let folio_fields = tail_fields(keys, size, "folio._folio_order", "folio._folio_dtor", true)?;
    // The order's place, the destructor's when there is one, and the key
    // that told, for messages.
    let (order, dtor, order_key) = match (page_fields, folio_fields) {
        (Some(_), Some(_)) => {
            return Err(FilterError::ConflictingKeys {
                first: "OFFSET(page.compound_order)".into(),
                second: "OFFSET(folio._folio_order)".into(),
            })
        }
        (Some((offset, dtor)), None) => (
            CompoundOrder::PageField { offset },
            Some(dtor),
            Some("OFFSET(page.compound_order)"),
        ),
        (None, Some((offset, dtor))) => (
            CompoundOrder::FolioField { offset },
            Some(dtor),
            Some("OFFSET(folio._folio_order)"),
        ),
        (None, None) => (CompoundOrder::TailFlagsLowByte, None, None),
    };

    let dtor_key = "NUMBER(HUGETLB_PAGE_DTOR)";
    let flag_key = "NUMBER(PG_hugetlb)";
    let type_key = "NUMBER(PAGE_HUGETLB_MAPCOUNT_VALUE)";
    let hugetlb_dtor = keys.get(dtor_key, |i| i.number("HUGETLB_PAGE_DTOR"))?;
    let hugetlb_flag = keys.flag_bit("PG_hugetlb")?;
    let exported: Vec<&str> = [
        (dtor_key, hugetlb_dtor.is_some()),
        (flag_key, hugetlb_flag.is_some()),
        (type_key, hugetlb_type.is_some()),
    ]
    .into_iter()
    .filter_map(|(key, exported)| exported.then_some(key))
    .collect();
    if let [first, second, ..] = exported[..] {
        return Err(FilterError::ConflictingKeys {
            first: first.into(),
            second: second.into(),
        });
    }
    // At most one of the three is exported from here on.
    let (hugetlb, hugetlb_key) = match (hugetlb_dtor, hugetlb_flag, hugetlb_type) {
        (Some(value), _, _) => {
            let Some(offset) = dtor else {
                return Err(FilterError::KeyWithout {
                    key: dtor_key.into(),
                    needs: "OFFSET(page.compound_dtor) or OFFSET(folio._folio_dtor)".into(),
                });
            };
            let value = u8::try_from(value).map_err(|_| FilterError::NotAByte {
                key: dtor_key.into(),
                value,
            })?;
            (Hugetlb::Dtor { offset, value }, dtor_key)
        }
        (None, Some(bit), _) => (Hugetlb::TailFlag(bit), flag_key),
        (None, None, Some(value)) => (Hugetlb::PageType(value), type_key),
        (None, None, None) => (Hugetlb::NotExported, ""),
    };
    // The hugetlb flag of 6.6 to 6.8 and page type of 6.9 on came with the
    // order moving into page[1]'s flags; an order field next to them is a
    // combination no kernel exported.
    if let (Hugetlb::TailFlag(_) | Hugetlb::PageType(_), Some(order_key)) = (hugetlb, order_key) {
        return Err(FilterError::ConflictingKeys {
            first: order_key.into(),
            second: hugetlb_key.into(),
        });
    }
    Ok((order, hugetlb))
}

/// The offsets in `page[1]` of a compound page's order and destructor
/// bytes, exported as `OFFSET(order)` and `OFFSET(dtor)`; a folio's offsets
/// count from its head page (`from_head`), one struct page earlier.
fn tail_fields(
    keys: &Keys,
    size: u64,
    order: &str,
    dtor: &str,
    from_head: bool,
) -> Result<Option<(u64, u64)>, FilterError> {
    let tail_byte = |field: &str| -> Result<Option<u64>, FilterError> {
        let key = format!("OFFSET({field})");
        let Some(offset) = keys.get(&key, |i| i.offset(field))? else {
            return Ok(None);
        };
        let in_tail = if from_head {
            offset.checked_sub(size)
        } else {
            Some(offset)
        };
        let Some(in_tail) = in_tail else {
            return Err(FilterError::FieldOutsidePage {
                key,
                offset,
                width: 1,
                size,
            });
        };
        check_inside(key, in_tail, 1, size)?;
        Ok(Some(in_tail))
    };
    match (tail_byte(order)?, tail_byte(dtor)?) {
        (Some(order), Some(dtor)) => Ok(Some((order, dtor))),
        (None, None) => Ok(None),
        (Some(_), None) => Err(FilterError::KeyWithout {
            key: format!("OFFSET({order})"),
            needs: format!("OFFSET({dtor})"),
        }),
        (None, Some(_)) => Err(FilterError::KeyWithout {
            key: format!("OFFSET({dtor})"),
            needs: format!("OFFSET({order})"),
        }),
    }
}

fn check_inside(key: String, offset: u64, width: u64, size: u64) -> Result<(), FilterError> {
    if offset.checked_add(width).is_some_and(|end| end <= size) {
        Ok(())
    } else {
        Err(FilterError::FieldOutsidePage {
            key,
            offset,
            width,
            size,
        })
    }
}

#[cfg(test)]
mod tests;

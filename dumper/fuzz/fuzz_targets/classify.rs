//! Classifying any struct page, of any layout a VMCOREINFO can describe,
//! at any level, must never panic; and what it excludes must be a block
//! the level leaves out, aligned, no larger than a kernel makes.
//!
//! The input is VMCOREINFO text, a NUL byte, then the pfn (8 bytes, little
//! endian), the dump level (1 byte, taken modulo 32), the virtual address
//! of the struct page (8 bytes), and the struct page followed by the next
//! one, its `page[1]`, as far as the input goes.

#![no_main]

use dumper::filter::classify::{classify, Decision, StructPage, MAX_COMPOUND_ORDER};
use dumper::filter::layout::PageLayout;
use dumper::filter::{DumpLevel, ExcludeCategory};
use dumper::vmcoreinfo::VmcoreInfo;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(nul) = data.iter().position(|&b| b == 0) else {
        return;
    };
    let (text, rest) = data.split_at(nul);
    let Ok(info) = VmcoreInfo::parse(text) else {
        return;
    };
    let Ok(layout) = PageLayout::from_vmcoreinfo(&info) else {
        return;
    };
    let Some((head, pages)) = rest[1..].split_first_chunk::<17>() else {
        return;
    };
    let pfn = u64::from_le_bytes(head[..8].try_into().unwrap());
    let level = DumpLevel::new(head[8] % 32).expect("levels up to 31 exist");
    let vaddr = u64::from_le_bytes(head[9..].try_into().unwrap());
    let size = usize::try_from(layout.size).unwrap_or(usize::MAX);
    let (page, page1) = pages.split_at(size.min(pages.len()));

    for page1 in [Some(page1), None] {
        let decision = classify(&layout, level, pfn, page, page1);
        if let Decision::Exclude { category, pages } = decision {
            assert!(level.excludes(category), "{category:?} at level {level}");
            assert!(pages.is_power_of_two(), "{pages} pages");
            assert!(pfn.is_multiple_of(pages), "{pages} pages at pfn {pfn:#x}");
            let largest = match category {
                ExcludeCategory::Free => layout.nr_page_orders - 1,
                _ => MAX_COMPOUND_ORDER,
            };
            assert!(pages <= 1 << largest, "{pages} {category:?} pages");
            if level.get() == 0 {
                assert!(matches!(
                    category,
                    ExcludeCategory::Hwpoison | ExcludeCategory::Offline
                ));
            }
        }

        // What the decision means for a tail after it stays inside it.
        let tail = pfn.wrapping_add(u64::from(head[8]));
        match decision.for_tail(pfn, tail) {
            Decision::Exclude { pages, .. } => {
                assert!(pages >= 1);
                assert!(
                    tail > pfn
                        && tail.saturating_add(pages) <= pfn.saturating_add(decision.pages())
                );
            }
            Decision::Keep => {}
            Decision::Unclassifiable => assert_eq!(decision, Decision::Unclassifiable),
        }
    }

    if let Some(parsed) = StructPage::parse(&layout, page) {
        assert_eq!(parsed.head(&layout, vaddr).is_some(), parsed.is_tail());
        if parsed.is_tail() {
            assert_eq!(
                classify(&layout, level, pfn, page, Some(page1)),
                Decision::Keep
            );
        }
    } else {
        assert_eq!(
            classify(&layout, level, pfn, page, Some(page1)),
            Decision::Unclassifiable
        );
    }
});

//! The classifier over a range of page frames, one window at a time, in
//! step with the output stream and without a bitmap of all RAM.
//!
//! The stream asks, for each window of pfns it is about to write, which
//! frames to leave out; [`Classifier::classify`] answers with the excluded
//! runs of the window in pfn order, merged, the pages of each category, the
//! frames it could not classify (kept) and the struct-page bytes it read.
//!
//! A decision can reach past the window it is made in: an order-10 free
//! block, a 1 GiB hugetlb folio. The classifier carries that one pending
//! exclusion (its pfns and category) into the next windows, and reads no
//! struct page it already covers. A tail page met before its head, as when
//! the first window starts inside a folio, is decided by reading its head
//! through `compound_head`; the last head decided is remembered, so the
//! tails of a kept compound page cost no further read.
//!
//! # Reading the memory map
//!
//! The `struct page` array is 1.6% of RAM (64 bytes for every 4 KiB), so
//! it is read in large contiguous reads: a window's struct pages at once,
//! up to [`MAX_READ_BYTES`], split only where the vmemmap mapping changes
//! (usually every 2 MiB leaf, each the struct pages of 128 MiB). A part of
//! the memory map that is not mapped or not in the dump is skipped to the
//! end of the page-table entry or the 4 KiB page that says so, and its
//! frames are kept and counted as unclassifiable: never an error for the
//! window. Frames without a `struct page` (outside [`MemMap::present`])
//! are kept and not counted.
//!
//! # Memory
//!
//! Independent of the size of RAM: at most [`MAX_READ_BYTES`] plus one
//! `struct page` of struct-page buffer, one flag per struct page in it,
//! and the window's result, at most one excluded run per frame of the
//! window and usually a handful.

use std::ops::{AddAssign, Range};

use super::classify::{classify, Decision, StructPage, MAX_COMPOUND_ORDER};
use super::layout::{PageLayout, PAGE_SIZE};
use super::memmap::MemMap;
use super::x86_64::{Level, Paging, Translator};
use super::{DumpLevel, ExcludeCategory, FilterError, PhysRead};

/// The most struct-page bytes read at once: 2 MiB, one vmemmap leaf where
/// the kernel maps the memory map with 2 MiB pages, the struct pages of
/// 128 MiB of RAM.
pub const MAX_READ_BYTES: u64 = 2 << 20;

/// Frames left out of one window for one reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExcludedRun {
    pub pfns: Range<u64>,
    pub category: ExcludeCategory,
}

/// Pages left out, by category.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CategoryCounts([u64; ExcludeCategory::ALL.len()]);

impl CategoryCounts {
    /// Pages left out as `category`.
    pub fn get(&self, category: ExcludeCategory) -> u64 {
        self.0[category.index()]
    }

    /// Pages left out in all.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    fn add(&mut self, category: ExcludeCategory, pages: u64) {
        self.0[category.index()] += pages;
    }
}

impl AddAssign<&CategoryCounts> for CategoryCounts {
    fn add_assign(&mut self, other: &CategoryCounts) {
        for (mine, theirs) in self.0.iter_mut().zip(other.0) {
            *mine += theirs;
        }
    }
}

/// What the classifier found in one window.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Window {
    /// The frames to leave out, ascending; adjacent runs of one category
    /// are merged.
    pub excluded: Vec<ExcludedRun>,
    /// The pages of `excluded`, by category.
    pub counts: CategoryCounts,
    /// Frames kept because their `struct page` could not be read or made no
    /// sense.
    pub unclassifiable: u64,
    /// Bytes of struct pages read from the dump for this window.
    pub struct_page_bytes: u64,
}

impl Window {
    fn exclude(&mut self, pfns: Range<u64>, category: ExcludeCategory) {
        if pfns.is_empty() {
            return;
        }
        self.counts.add(category, pfns.end - pfns.start);
        match self.excluded.last_mut() {
            Some(last) if last.category == category && last.pfns.end == pfns.start => {
                last.pfns.end = pfns.end;
            }
            _ => self.excluded.push(ExcludedRun { pfns, category }),
        }
    }
}

/// The struct pages read for the frames being classified, and which of
/// them were read whole.
#[derive(Debug, Default)]
struct Chunk {
    first_pfn: u64,
    /// The frames decided from this chunk; it may hold one struct page
    /// more, for a head's `page[1]`.
    decide_end: u64,
    bytes: Vec<u8>,
    readable: Vec<bool>,
}

impl Chunk {
    fn clear(&mut self) {
        self.first_pfn = 0;
        self.decide_end = 0;
        self.readable.clear();
    }

    fn decides(&self, pfn: u64) -> bool {
        (self.first_pfn..self.decide_end).contains(&pfn)
    }

    /// The struct page of `pfn`, if the chunk holds it whole.
    fn page(&self, pfn: u64, size: u64) -> Option<&[u8]> {
        let index = usize::try_from(pfn.checked_sub(self.first_pfn)?).ok()?;
        if !*self.readable.get(index)? {
            return None;
        }
        let start = index * size as usize;
        self.bytes.get(start..start + size as usize)
    }
}

/// Classifies the frames of a dump window by window; see the module docs.
#[derive(Debug)]
pub struct Classifier {
    layout: PageLayout,
    memmap: MemMap,
    translator: Translator,
    level: DumpLevel,
    /// The last exclusion decided, which may run past the window it was
    /// decided in.
    pending: Option<ExcludedRun>,
    /// The last compound head decided: its pfn and decision.
    last_head: Option<(u64, Decision)>,
    chunk: Chunk,
}

impl Classifier {
    /// A classifier at `level` of the frames `memmap` describes with
    /// `layout`, reading the memory map through `translator`.
    pub fn new(
        layout: PageLayout,
        memmap: MemMap,
        translator: Translator,
        level: DumpLevel,
    ) -> Result<Classifier, FilterError> {
        if memmap.struct_page_size() != layout.size {
            return Err(FilterError::MemMapStride {
                memmap: memmap.struct_page_size(),
                layout: layout.size,
            });
        }
        Ok(Classifier {
            layout,
            memmap,
            translator,
            level,
            pending: None,
            last_head: None,
            chunk: Chunk::default(),
        })
    }

    pub fn level(&self) -> DumpLevel {
        self.level
    }

    /// The frames of `pfns` to leave out, reading struct pages from
    /// `memory`.
    ///
    /// Windows must come in ascending order, as the stream writes them,
    /// for a free block decided in one window to be left out whole in the
    /// next: only its first frame's struct page says it is free. Gaps
    /// between windows are fine. A compound page is found from whichever
    /// of its tails comes first.
    pub fn classify(&mut self, memory: &impl PhysRead, pfns: Range<u64>) -> Window {
        let mut window = Window::default();
        if pfns.is_empty() {
            return window;
        }
        let mut index = self
            .memmap
            .present()
            .partition_point(|run| run.end <= pfns.start);
        while let Some(run) = self.memmap.present().get(index).cloned() {
            if run.start >= pfns.end {
                break;
            }
            let start = run.start.max(pfns.start);
            let end = run.end.min(pfns.end);
            self.classify_present(memory, start..end, run.end, &mut window);
            index += 1;
        }
        window
    }

    /// Classifies `pfns`, which all have a struct page, as do those up to
    /// `run_end`.
    fn classify_present(
        &mut self,
        memory: &impl PhysRead,
        pfns: Range<u64>,
        run_end: u64,
        window: &mut Window,
    ) {
        let size = self.layout.size;
        let per_read = (MAX_READ_BYTES / size).max(1);
        let mut chunk = std::mem::take(&mut self.chunk);
        chunk.clear();
        let mut pfn = pfns.start;
        while pfn < pfns.end {
            if let Some(pending) = self.pending.as_ref().filter(|p| p.pfns.contains(&pfn)) {
                let end = pending.pfns.end.min(pfns.end);
                window.exclude(pfn..end, pending.category);
                pfn = end;
                continue;
            }
            if !chunk.decides(pfn) {
                let count = (pfns.end - pfn).min(per_read);
                // One struct page more, when there is one, for a head's
                // page[1].
                let extra = u64::from(pfn + count < run_end);
                self.read_struct_pages(memory, pfn, count + extra, &mut chunk, window);
                chunk.decide_end = pfn + count;
            }
            let decision = match chunk.page(pfn, size) {
                Some(bytes) => self.decide(memory, pfn, bytes, &chunk, window),
                None => Decision::Unclassifiable,
            };
            match decision {
                Decision::Keep => pfn += 1,
                Decision::Unclassifiable => {
                    window.unclassifiable += 1;
                    pfn += 1;
                }
                Decision::Exclude { category, pages } => {
                    // Emitted by the next turn of the loop, and by the
                    // next windows for what lies beyond this one.
                    self.pending = Some(ExcludedRun {
                        pfns: pfn..pfn.saturating_add(pages),
                        category,
                    });
                }
            }
        }
        self.chunk = chunk;
    }

    /// The decision for `pfn`, whose struct page is `bytes`.
    fn decide(
        &mut self,
        memory: &impl PhysRead,
        pfn: u64,
        bytes: &[u8],
        chunk: &Chunk,
        window: &mut Window,
    ) -> Decision {
        let Some(page) = StructPage::parse(&self.layout, bytes) else {
            return Decision::Unclassifiable;
        };
        if page.is_tail() {
            return self.decide_tail(memory, pfn, &page, chunk, window);
        }
        let page1 = chunk.page(pfn + 1, self.layout.size);
        let decision = classify(&self.layout, self.level, pfn, bytes, page1);
        if page.is_head(&self.layout) {
            self.last_head = Some((pfn, decision));
        }
        decision
    }

    /// The decision for the tail page `page` at `pfn`: its head's, read
    /// unless it is the last head decided.
    fn decide_tail(
        &mut self,
        memory: &impl PhysRead,
        pfn: u64,
        page: &StructPage,
        chunk: &Chunk,
        window: &mut Window,
    ) -> Decision {
        let head_pfn = self
            .memmap
            .struct_page(pfn)
            .and_then(|vaddr| page.head(&self.layout, vaddr))
            .and_then(|head| self.head_pfn(head, pfn));
        let Some(head_pfn) = head_pfn else {
            return Decision::Unclassifiable;
        };
        let decision = match self.last_head {
            Some((last, decision)) if last == head_pfn => decision,
            _ => {
                let decision = self.decide_head(memory, head_pfn, chunk, window);
                self.last_head = Some((head_pfn, decision));
                decision
            }
        };
        decision.for_tail(head_pfn, pfn)
    }

    /// The pfn of the struct page at `head`, if it can be the head of the
    /// tail at `tail_pfn`: a struct page of the memory map before it, no
    /// further than the largest compound page.
    fn head_pfn(&self, head: u64, tail_pfn: u64) -> Option<u64> {
        let size = self.layout.size;
        let offset = head.checked_sub(self.memmap.vmemmap())?;
        if offset % size != 0 {
            return None;
        }
        let head_pfn = offset / size;
        let near = head_pfn < tail_pfn && tail_pfn - head_pfn < 1 << MAX_COMPOUND_ORDER;
        (near && self.memmap.struct_page(head_pfn) == Some(head)).then_some(head_pfn)
    }

    /// The decision for the head at `head_pfn`, from the chunk if it holds
    /// the head and its page[1], else read.
    fn decide_head(
        &mut self,
        memory: &impl PhysRead,
        head_pfn: u64,
        chunk: &Chunk,
        window: &mut Window,
    ) -> Decision {
        let size = self.layout.size;
        if let (Some(head), Some(page1)) =
            (chunk.page(head_pfn, size), chunk.page(head_pfn + 1, size))
        {
            return classify(&self.layout, self.level, head_pfn, head, Some(page1));
        }
        let Some(vaddr) = self.memmap.struct_page(head_pfn) else {
            return Decision::Unclassifiable;
        };
        let mut pages = vec![0u8; 2 * size as usize];
        if self.translator.read(memory, vaddr, &mut pages).is_err() {
            return Decision::Unclassifiable;
        }
        window.struct_page_bytes += pages.len() as u64;
        let (head, page1) = pages.split_at(size as usize);
        classify(&self.layout, self.level, head_pfn, head, Some(page1))
    }

    /// Reads the struct pages of the `count` frames from `first_pfn` into
    /// `chunk`, in one read per mapping of the memory map, and notes which
    /// could be read whole.
    fn read_struct_pages(
        &mut self,
        memory: &impl PhysRead,
        first_pfn: u64,
        count: u64,
        chunk: &mut Chunk,
        window: &mut Window,
    ) {
        let size = self.layout.size;
        let len = count * size;
        chunk.first_pfn = first_pfn;
        chunk.bytes.resize(len as usize, 0);
        // Byte ranges of the chunk that could not be read, ascending.
        let mut unread: Vec<Range<u64>> = Vec::new();
        let start = first_pfn
            .checked_mul(size)
            .and_then(|offset| self.memmap.vmemmap().checked_add(offset))
            .filter(|start| start.checked_add(len).is_some());
        match start {
            None => unread.push(0..len),
            Some(start) => {
                let mut done = 0;
                while done < len {
                    let vaddr = start + done;
                    match self.translator.translate(memory, vaddr) {
                        Ok(mapping) => {
                            let n = mapping.len.min(len - done);
                            let buf = &mut chunk.bytes[done as usize..(done + n) as usize];
                            if memory.read_phys(mapping.paddr, buf).is_ok() {
                                window.struct_page_bytes += n;
                            } else {
                                read_by_page(memory, mapping.paddr, done, buf, &mut unread, window);
                            }
                            done += n;
                        }
                        Err(error) => {
                            let span = unmapped_span(&error, self.translator.paging());
                            let n = (span - vaddr % span).min(len - done);
                            unread.push(done..done + n);
                            done += n;
                        }
                    }
                }
            }
        }
        chunk.readable.clear();
        let mut unread = unread.iter().peekable();
        for index in 0..count {
            let page = index * size..(index + 1) * size;
            while unread.next_if(|gap| gap.end <= page.start).is_some() {}
            let whole = unread.peek().is_none_or(|gap| gap.start >= page.end);
            chunk.readable.push(whole);
        }
    }
}

/// Reads `buf` from `paddr` a physical page at a time, after a read of the
/// whole failed, noting the byte ranges (counted from `offset`, the place
/// of `buf` in its chunk) that are not in the dump.
fn read_by_page(
    memory: &impl PhysRead,
    paddr: u64,
    offset: u64,
    buf: &mut [u8],
    unread: &mut Vec<Range<u64>>,
    window: &mut Window,
) {
    let mut done = 0u64;
    let len = buf.len() as u64;
    while done < len {
        let at = paddr + done;
        let n = (PAGE_SIZE - at % PAGE_SIZE).min(len - done);
        let piece = &mut buf[done as usize..(done + n) as usize];
        if memory.read_phys(at, piece).is_ok() {
            window.struct_page_bytes += n;
        } else {
            let gap = offset + done..offset + done + n;
            match unread.last_mut() {
                Some(last) if last.end == gap.start => last.end = gap.end,
                _ => unread.push(gap),
            }
        }
        done += n;
    }
}

/// How much address space the translation failure `error` says nothing is
/// mapped in, from the failing address down to its alignment: the span of
/// the page-table entry that is not present, else one page.
fn unmapped_span(error: &FilterError, paging: Paging) -> u64 {
    let shift = match error {
        FilterError::NotPresent { level, .. } => match (level, paging) {
            (Level::Pte, _) => 12,
            (Level::Pmd, _) => 21,
            (Level::Pud, _) => 30,
            (Level::P4d, _) | (Level::Pgd, Paging::FourLevel) => 39,
            (Level::Pgd, Paging::FiveLevel) => 48,
        },
        _ => 12,
    };
    1 << shift
}

#[cfg(test)]
mod tests;

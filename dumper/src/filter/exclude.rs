//! The filter as the stream asks for it: the stream goes through the
//! vmcore's bytes in order, window by window, and this turns each window
//! into the page frames its PT_LOAD segments hold, asks the classifier
//! about them, and turns the frames to leave out back into byte runs.
//!
//! Only whole pages are ever left out: a page that the window, a segment's
//! start or a segment's end cuts is kept, as are the ELF headers and notes,
//! which no segment holds.

use std::ops::Range;

use crate::elf::LoadSegment;
use crate::seekable::exclusions::ExcludedRun;
use crate::stream::Exclude;

use super::layout::PAGE_SIZE;
use super::{DumpLevel, ExcludeCategory};

/// What the filter decides about a range of page frames.
pub trait FrameClassifier {
    /// Appends to `runs` the frames of `pfns` to leave out, in ascending
    /// order, with why. Ranges are asked for in ascending order, except
    /// when the vmcore's segments are not in physical order.
    fn classify(&mut self, pfns: Range<u64>, runs: &mut Vec<(Range<u64>, ExcludeCategory)>);
}

/// A vmcore's exclusions at a dump level, for [`crate::stream::compress_excluding`].
pub struct VmcoreExclusions<C> {
    loads: Vec<LoadSegment>,
    classifier: C,
    level: DumpLevel,
    /// The classifier's answer for the current window, reused.
    frames: Vec<(Range<u64>, ExcludeCategory)>,
}

impl<C: FrameClassifier> VmcoreExclusions<C> {
    /// The exclusions of a vmcore with `loads` (its PT_LOAD segments) at
    /// `level`, decided by `classifier`.
    pub fn new(loads: &[LoadSegment], classifier: C, level: DumpLevel) -> VmcoreExclusions<C> {
        let mut loads = loads.to_vec();
        loads.sort_by_key(|load| load.file_offset);
        VmcoreExclusions {
            loads,
            classifier,
            level,
            frames: Vec::new(),
        }
    }

    /// The classifier, for its figures once the stream is done.
    pub fn classifier(&self) -> &C {
        &self.classifier
    }
}

impl<C: FrameClassifier> Exclude for VmcoreExclusions<C> {
    fn exclude(&mut self, offset: u64, len: u64, runs: &mut Vec<ExcludedRun>) {
        let window_end = offset + len;
        for load in &self.loads {
            let load_end = load.file_offset + load.file_size;
            let from = offset.max(load.file_offset);
            let to = window_end.min(load_end);
            if from >= to {
                continue;
            }
            // Physical addresses of the part of the segment in the window,
            // narrowed to the whole pages in it.
            let paddr_from = load.paddr + (from - load.file_offset);
            let paddr_to = load.paddr + (to - load.file_offset);
            let first_pfn = paddr_from.div_ceil(PAGE_SIZE);
            let end_pfn = paddr_to / PAGE_SIZE;
            if first_pfn >= end_pfn {
                continue;
            }
            self.frames.clear();
            self.classifier
                .classify(first_pfn..end_pfn, &mut self.frames);
            for (pfns, category) in &self.frames {
                let start = pfns.start.max(first_pfn);
                let end = pfns.end.min(end_pfn);
                if start >= end || !self.level.excludes(*category) {
                    continue;
                }
                let file_start = load.file_offset + (start * PAGE_SIZE - load.paddr);
                let run = ExcludedRun {
                    start: file_start - offset,
                    len: (end - start) * PAGE_SIZE,
                    category: *category,
                };
                match runs.last_mut() {
                    Some(last) if last.end() == run.start && last.category == run.category => {
                        last.len += run.len;
                    }
                    Some(last) if last.end() > run.start => {}
                    _ => runs.push(run),
                }
            }
        }
    }

    fn zero_pages(&self) -> bool {
        self.level.excludes(ExcludeCategory::Zero)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ExcludeCategory::*;

    /// Leaves out every frame whose number is a multiple of `every`, as
    /// `category`, and remembers what it was asked.
    struct EveryNth {
        every: u64,
        category: ExcludeCategory,
        asked: Vec<Range<u64>>,
    }

    impl FrameClassifier for EveryNth {
        fn classify(&mut self, pfns: Range<u64>, runs: &mut Vec<(Range<u64>, ExcludeCategory)>) {
            self.asked.push(pfns.clone());
            for pfn in pfns {
                if pfn % self.every == 0 {
                    runs.push((pfn..pfn + 1, self.category));
                }
            }
        }
    }

    fn load(file_offset: u64, paddr: u64, size: u64) -> LoadSegment {
        LoadSegment {
            file_offset,
            vaddr: 0xffff_8880_0000_0000 + paddr,
            paddr,
            file_size: size,
            mem_size: size,
        }
    }

    fn runs_of(
        exclusions: &mut VmcoreExclusions<EveryNth>,
        offset: u64,
        len: u64,
    ) -> Vec<(u64, u64)> {
        let mut runs = Vec::new();
        exclusions.exclude(offset, len, &mut runs);
        runs.iter().map(|run| (run.start, run.len)).collect()
    }

    #[test]
    fn frames_become_byte_runs_of_their_segment() {
        let page = PAGE_SIZE;
        // Headers in the first page; a segment of 8 frames from pfn 16 at
        // file offset 4096, and one of 4 frames from pfn 64 right after.
        let loads = [
            load(page, 16 * page, 8 * page),
            load(9 * page, 64 * page, 4 * page),
        ];
        let classifier = EveryNth {
            every: 4,
            category: Free,
            asked: Vec::new(),
        };
        let mut exclusions = VmcoreExclusions::new(&loads, classifier, DumpLevel::MAX);
        // pfns 16 and 20 (file pages 1 and 5), then 64 (file page 9).
        assert_eq!(
            runs_of(&mut exclusions, 0, 16 * page),
            [(page, page), (5 * page, page), (9 * page, page)]
        );
        assert_eq!(exclusions.classifier().asked, [16..24, 64..68]);
        // A window that starts mid-page keeps the cut page.
        exclusions.classifier.asked.clear();
        assert_eq!(
            runs_of(&mut exclusions, 5 * page + 1, 5 * page),
            [(4 * page - 1, page)]
        );
        assert_eq!(exclusions.classifier().asked, [21..24, 64..65]);
        assert!(exclusions.zero_pages());
    }

    #[test]
    fn the_level_decides_which_categories_go() {
        let loads = [load(0, 0, 8 * PAGE_SIZE)];
        for (level, category, excluded) in [
            (0, Free, false),
            (16, Free, true),
            (8, Free, false),
            (8, User, true),
            (0, Hwpoison, true),
            (2, CachePrivate, false),
            (4, CachePrivate, true),
        ] {
            let classifier = EveryNth {
                every: 2,
                category,
                asked: Vec::new(),
            };
            let level = DumpLevel::new(level).unwrap();
            let mut exclusions = VmcoreExclusions::new(&loads, classifier, level);
            let runs = runs_of(&mut exclusions, 0, 8 * PAGE_SIZE);
            assert_eq!(!runs.is_empty(), excluded, "level {level} {category:?}");
            assert_eq!(exclusions.zero_pages(), level.get() & 1 == 1);
        }
    }
}

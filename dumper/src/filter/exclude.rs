//! The filter as the stream asks for it: the stream goes through the
//! vmcore's bytes in order, window by window, and this turns each window
//! into the page frames its PT_LOAD segments hold, asks the classifier
//! about them, and turns the frames to leave out back into byte runs.
//!
//! Only whole pages are ever left out: a page that the window, a segment's
//! start or a segment's end cuts is kept, as are the ELF headers and notes,
//! which no segment holds.
//!
//! On x86_64 the first PT_LOAD is the kernel image's mapping, which repeats
//! frames the direct map's segments hold too, and not only kernel data:
//! its freed init sections hold user pages and free pages like any other
//! memory. Its frames are left out as the level says, as everywhere, but
//! not counted there (see [`Exclude::repeated`]), and its zero pages are
//! neither counted nor recorded: makedumpfile counts each page frame once,
//! where the direct map holds it.

use std::ops::Range;

use crate::elf::{LoadSegment, ReadAt};
use crate::seekable::exclusions::ExcludedRun;
use crate::stream::Exclude;
use crate::vmcore::Vmcore;

use super::layout::{PageLayout, PAGE_SIZE};
use super::memmap::{end_pfn, MemSections};
use super::window::{CategoryCounts, Classifier};
use super::x86_64::Translator;
use super::{DumpLevel, ExcludeCategory, FilterError, PhysRead};

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
    /// For each of `loads`, whether another, larger segment holds all of
    /// its frames.
    repeats: Vec<bool>,
    classifier: C,
    level: DumpLevel,
    /// The classifier's answer for the current window, reused.
    frames: Vec<(Range<u64>, ExcludeCategory)>,
}

/// Whether another, larger segment of `loads` holds every frame of `load`,
/// as the direct map's holds those of x86_64's kernel-image segment.
pub fn repeats(load: &LoadSegment, loads: &[LoadSegment]) -> bool {
    loads.iter().any(|other| {
        other.file_size > load.file_size
            && other.paddr <= load.paddr
            && load.paddr + load.file_size <= other.paddr + other.file_size
    })
}

impl<C: FrameClassifier> VmcoreExclusions<C> {
    /// The exclusions of a vmcore with `loads` (its PT_LOAD segments) at
    /// `level`, decided by `classifier`.
    pub fn new(loads: &[LoadSegment], classifier: C, level: DumpLevel) -> VmcoreExclusions<C> {
        let mut loads = loads.to_vec();
        loads.sort_by_key(|load| load.file_offset);
        let repeats = loads.iter().map(|load| repeats(load, &loads)).collect();
        VmcoreExclusions {
            loads,
            repeats,
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

    fn repeated(&mut self, offset: u64, len: u64, parts: &mut Vec<Range<u64>>) {
        for (load, repeats) in self.loads.iter().zip(&self.repeats) {
            let from = offset.max(load.file_offset);
            let to = (offset + len).min(load.file_offset + load.file_size);
            if *repeats && from < to {
                parts.push(from - offset..to - offset);
            }
        }
    }
}

/// The classifier reading the crashed kernel's memory map out of the
/// vmcore, with the figures of what it did.
pub struct VmcoreClassifier<'a, M> {
    memory: &'a M,
    classifier: Classifier,
    /// Pages left out by category, as the classifier counted them.
    pub counts: CategoryCounts,
    /// Frames whose struct page could not be read or made sense of: kept.
    pub unclassifiable: u64,
    /// Bytes of struct pages read.
    pub struct_page_bytes: u64,
}

impl<M: PhysRead> FrameClassifier for VmcoreClassifier<'_, M> {
    fn classify(&mut self, pfns: Range<u64>, runs: &mut Vec<(Range<u64>, ExcludeCategory)>) {
        let window = self.classifier.classify(self.memory, pfns);
        self.counts += &window.counts;
        self.unclassifiable += window.unclassifiable;
        self.struct_page_bytes += window.struct_page_bytes;
        runs.extend(
            window
                .excluded
                .into_iter()
                .map(|run| (run.pfns, run.category)),
        );
    }
}

/// The exclusions of `vmcore` at `level`, from its VMCOREINFO and the
/// crashed kernel's memory map. An error means the filter cannot be set up
/// (no VMCOREINFO, a missing key, a memory map that makes no sense): the
/// caller then dumps with [`ZeroPagesOnly`] and records why.
pub fn vmcore_exclusions<R: ReadAt>(
    vmcore: &Vmcore<R>,
    level: DumpLevel,
) -> Result<VmcoreExclusions<VmcoreClassifier<'_, Vmcore<R>>>, FilterError> {
    let info = vmcore.vmcoreinfo().ok_or(FilterError::NoVmcoreInfo)?;
    let loads = &vmcore.headers().loads;
    let layout = PageLayout::from_vmcoreinfo(info)?;
    let mut translator = Translator::new(info, loads, vmcore)?;
    let memmap = MemSections::from_vmcoreinfo(info)?.read(
        layout.size,
        &mut translator,
        vmcore,
        end_pfn(loads),
    )?;
    let classifier = Classifier::new(layout, memmap, translator, level)?;
    let classifier = VmcoreClassifier {
        memory: vmcore,
        classifier,
        counts: CategoryCounts::default(),
        unclassifiable: 0,
        struct_page_bytes: 0,
    };
    Ok(VmcoreExclusions::new(loads, classifier, level))
}

/// A dump level as a stream applies it: the classifier when it could be
/// set up, else zero pages only, with the reason.
pub struct Filtering<'a, R> {
    classified: Option<VmcoreExclusions<VmcoreClassifier<'a, Vmcore<R>>>>,
    fallback: ZeroPagesOnly,
    /// Why the classifier could not be set up.
    pub error: Option<String>,
}

impl<'a, R: ReadAt> Filtering<'a, R> {
    /// The filtering of `vmcore` at `level`; `vmcore` is the reason it
    /// could not be opened, if it could not.
    pub fn new(vmcore: Result<&'a Vmcore<R>, String>, level: DumpLevel) -> Filtering<'a, R> {
        let (classified, error) = match vmcore {
            Err(reason) => (None, Some(reason)),
            Ok(vmcore) => match vmcore_exclusions(vmcore, level) {
                Ok(exclusions) => (Some(exclusions), None),
                Err(error) => (None, Some(crate::error_chain(&error))),
            },
        };
        Filtering {
            classified,
            fallback: ZeroPagesOnly(level),
            error,
        }
    }

    /// What the stream asks.
    pub fn exclude(&mut self) -> &mut dyn Exclude {
        match &mut self.classified {
            Some(exclusions) => exclusions,
            None => &mut self.fallback,
        }
    }

    /// What is left out when the classifier could not be set up, for the
    /// message that says so: `zero pages only`, or `nothing`.
    pub fn fallback(&self) -> &'static str {
        if self.fallback.zero_pages() {
            "zero pages only"
        } else {
            "nothing"
        }
    }

    /// Frames whose struct page could not be read or made sense of (kept),
    /// when the classifier ran.
    pub fn unclassifiable(&self) -> Option<u64> {
        self.classified
            .as_ref()
            .map(|exclusions| exclusions.classifier().unclassifiable)
    }

    /// Bytes of struct pages read, when the classifier ran.
    pub fn struct_page_bytes(&self) -> Option<u64> {
        self.classified
            .as_ref()
            .map(|exclusions| exclusions.classifier().struct_page_bytes)
    }
}

/// What a dump leaves out when the filter cannot be set up: nothing but
/// pages of zeros, and those only if the level asks for it.
pub struct ZeroPagesOnly(pub DumpLevel);

impl Exclude for ZeroPagesOnly {
    fn exclude(&mut self, _offset: u64, _len: u64, _runs: &mut Vec<ExcludedRun>) {}

    fn zero_pages(&self) -> bool {
        self.0.excludes(ExcludeCategory::Zero)
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

    /// The kernel image's segment repeats frames of the direct map's: its
    /// frames are left out all the same, and it is reported as repeated so
    /// that they are not counted twice.
    #[test]
    fn a_segment_repeating_another_is_left_out_and_reported() {
        let page = PAGE_SIZE;
        let loads = [
            load(page, 20 * page, 4 * page),
            load(5 * page, 16 * page, 16 * page),
        ];
        let classifier = EveryNth {
            every: 2,
            category: Free,
            asked: Vec::new(),
        };
        let mut exclusions = VmcoreExclusions::new(&loads, classifier, DumpLevel::MAX);
        let runs = runs_of(&mut exclusions, 0, 21 * page);
        assert_eq!(exclusions.classifier().asked, [20..24, 16..32]);
        // pfns 20 and 22 in the image's segment, then every other frame of
        // the direct map's from pfn 16.
        assert_eq!(runs[..2], [(page, page), (3 * page, page)]);
        assert_eq!(runs[2], (5 * page, page));
        let mut parts = Vec::new();
        exclusions.repeated(2 * page, 4 * page, &mut parts);
        assert_eq!(parts, vec![(0..3 * page)]);
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

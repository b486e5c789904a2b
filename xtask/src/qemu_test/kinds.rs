//! crashme's planted pages of every kind (`crashme::kinds`, and its
//! anonymous pages) in a dump of a given level: each page must be kept with
//! its content, or left out, with the category the dump's exclusion record
//! gives it, as the level says ([`expected`]).
//!
//! The one allowance: freed pages that a CPU's free list held at the crash
//! are not on the buddy allocator's lists, where a level finds free pages,
//! and the kernel may have reused some between the free and the crash;
//! they are counted as slack, which must stay within what crashme saw on
//! the per-CPU lists after freeing (plus one batch, what a list may take
//! from the buddy allocator at once afterwards).

use std::fs::File;
use std::path::Path;

use anyhow::{bail, Context as _, Result};
use crashme::kinds::{self, Kinds, PageKind};
use crashme::{Planted, PAGE_SIZE};
use dumper::elf::{read_core_headers, LoadSegment};
use dumper::filter::ExcludeCategory;
use dumper::seekable::reader::Dump;

use super::levels::direct_loads;

/// Problems listed per level before the rest are only counted.
const MAX_LISTED: usize = 6;

/// What crashme planted.
pub struct Planting<'a> {
    pub planted: &'a Planted,
    pub kinds: &'a Kinds,
}

/// A page's kind: crashme's original anonymous pages, or one of the kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Anonymous,
    Planted(PageKind),
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Anonymous => "anon",
            Kind::Planted(kind) => kind.name(),
        }
    }
}

/// What a dump at `level` does with a page of `kind`: keeps it (`None`),
/// or leaves it out as the category. makedumpfile's order decides where
/// two bits could: free first, then cache, then private cache, then user
/// data, and zeros only for what none of those left out.
///
/// - anonymous, THP, hugetlb mapped, and hugetlb free in the pool: user
///   data (8). A free hugetlb page is not a buddy page, so bit 16 keeps
///   it; its `page[1]` still carries the hugetlb mark, so bit 8 drops it,
///   as makedumpfile's `isHugetlb` test on the compound destructor does.
/// - file pages without buffer heads and shmem: cache (2, and 4, which
///   takes both kinds of cache); shmem is on the LRU and not anonymous.
/// - file pages with buffer heads: private cache (4 only).
/// - zero-filled file pages: cache at 2 or 4, zero at 1 otherwise.
/// - freed pages: free (16).
fn expected(kind: Kind, level: u8) -> Option<ExcludeCategory> {
    let bit = |mask: u8| level & mask != 0;
    match kind {
        Kind::Anonymous
        | Kind::Planted(PageKind::Thp | PageKind::Hugetlb | PageKind::HugetlbPool) => {
            bit(8).then_some(ExcludeCategory::User)
        }
        Kind::Planted(PageKind::Cache | PageKind::Shmem) => {
            bit(2 | 4).then_some(ExcludeCategory::Cache)
        }
        Kind::Planted(PageKind::CachePrivate) => bit(4).then_some(ExcludeCategory::CachePrivate),
        Kind::Planted(PageKind::ZeroFile) => {
            if bit(2 | 4) {
                Some(ExcludeCategory::Cache)
            } else {
                bit(1).then_some(ExcludeCategory::Zero)
            }
        }
        Kind::Planted(PageKind::Freed) => bit(16).then_some(ExcludeCategory::Free),
    }
}

/// One planted page and what the dump did with it.
struct Page {
    kind: Kind,
    index: u64,
    pfn: u64,
    /// Where it is in the vmcore.
    offset: u64,
    excluded: Option<ExcludeCategory>,
}

/// Checks every planted page in the dump at `path`, made at `level`;
/// returns a line of counts per kind.
pub fn check_dump(path: &Path, level: u8, planting: &Planting) -> Result<String> {
    let dump = Dump::open(File::open(path).with_context(|| format!("open {}", path.display()))?)
        .map_err(|error| anyhow::anyhow!("cannot open {}: {error}", path.display()))?;
    let headers = read_core_headers(&dump)
        .map_err(|error| anyhow::anyhow!("{}: ELF headers: {error}", path.display()))?;
    let loads = direct_loads(&headers.loads);
    let mut pages = pages_of(planting, &loads)?;
    pages.sort_by_key(|page| page.offset);
    mark_exclusions(&dump, &mut pages, path)?;

    let kinds: Vec<Kind> = std::iter::once(Kind::Anonymous)
        .chain(planting.kinds.kinds.iter().map(|k| Kind::Planted(k.kind)))
        .collect();
    let mut counts = vec![(0u64, 0u64); kinds.len()];
    let mut problems = Vec::new();
    let mut n_problems = 0;
    let mut slack = Vec::new();
    let mut expected_page = vec![0u8; PAGE_SIZE];
    let mut actual = vec![0u8; PAGE_SIZE];
    for page in &pages {
        let want = expected(page.kind, level);
        let kind_idx = kinds.iter().position(|k| *k == page.kind).expect("listed");
        let wrong = match (want, page.excluded) {
            (Some(want), Some(got)) if want == got => None,
            (Some(want), got) => Some(format!(
                "should be left out as {want:?}, {}",
                match got {
                    Some(got) => format!("is left out as {got:?}"),
                    None => "is kept".to_owned(),
                }
            )),
            (None, Some(got)) => Some(format!("should be kept, is left out as {got:?}")),
            (None, None) => {
                dump.read_at(page.offset, &mut actual)
                    .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?;
                match page.kind {
                    Kind::Anonymous => {
                        crashme::fill_page(planting.planted.seed, page.index, &mut expected_page)
                    }
                    Kind::Planted(kind) => kinds::fill_tagged(
                        planting.kinds.seed,
                        kind,
                        page.index,
                        &mut expected_page,
                    ),
                }
                (actual != expected_page).then(|| format!("is kept but holds {}", what(&actual)))
            }
        };
        match wrong {
            None => {
                let (kept, left_out) = &mut counts[kind_idx];
                *if want.is_some() { left_out } else { kept } += 1;
            }
            Some(wrong) if page.kind == Kind::Planted(PageKind::Freed) => {
                slack.push(format!("page {} (pfn {:#x}) {wrong}", page.index, page.pfn))
            }
            Some(wrong) => {
                n_problems += 1;
                if problems.len() < MAX_LISTED {
                    problems.push(format!(
                        "{} page {} (pfn {:#x}) {wrong}",
                        page.kind.name(),
                        page.index,
                        page.pfn
                    ));
                }
            }
        }
    }

    let bound = planting
        .kinds
        .per_cpu
        .map(|lists| lists.pages + lists.batch)
        .context("crashme printed no per-CPU list counts after freeing")?;
    let n_freed = planting
        .kinds
        .get(PageKind::Freed)
        .map_or(0, |pages| pages.n_pages);
    if bound * 2 > n_freed {
        bail!(
            "the per-CPU lists held {bound} pages, too many for the {n_freed} freed pages to \
             show that free pages are left out"
        );
    }
    let too_much_slack = slack.len() as u64 > bound;
    if too_much_slack {
        problems.push(format!(
            "{} freed pages are not as the level says, more than the {bound} the per-CPU lists \
             could hold: {}",
            slack.len(),
            slack
                .iter()
                .take(MAX_LISTED)
                .cloned()
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    if n_problems > 0 || too_much_slack {
        bail!(
            "level {level}: {n_problems} planted pages wrong: {}",
            problems.join("; ")
        );
    }
    let summary: Vec<String> = kinds
        .iter()
        .zip(&counts)
        .map(|(kind, (kept, left_out))| match expected(*kind, level) {
            Some(category) => format!("{} {left_out} {category:?}", kind.name()),
            None => format!("{} {kept} kept", kind.name()),
        })
        .collect();
    Ok(format!(
        "-d {level}: {}; freed slack {} (at most {bound})",
        summary.join(", "),
        slack.len()
    ))
}

/// Every planted page with its place in the vmcore.
fn pages_of(planting: &Planting, loads: &[LoadSegment]) -> Result<Vec<Page>> {
    let anonymous = planting.planted.runs.iter().flat_map(|run| {
        (0..run.n_pages).map(move |i| (Kind::Anonymous, run.page_idx + i, run.pfn + i))
    });
    let planted = planting.kinds.kinds.iter().flat_map(|pages| {
        pages
            .pages()
            .map(move |(index, pfn)| (Kind::Planted(pages.kind), index, pfn))
    });
    anonymous
        .chain(planted)
        .map(|(kind, index, pfn)| {
            let paddr = pfn * PAGE_SIZE as u64;
            let load = loads
                .iter()
                .find(|load| (load.paddr..load.paddr + load.file_size).contains(&paddr))
                .with_context(|| format!("{} pfn {pfn:#x} is in no PT_LOAD", kind.name()))?;
            Ok(Page {
                kind,
                index,
                pfn,
                offset: load.file_offset + (paddr - load.paddr),
                excluded: None,
            })
        })
        .collect()
}

/// Sets `excluded` of the pages (sorted by offset) that the dump's
/// exclusion records cover.
fn mark_exclusions(dump: &Dump<File>, pages: &mut [Page], path: &Path) -> Result<()> {
    for (index, frame) in dump.frames().iter().enumerate() {
        let runs = dump
            .exclusions(index)
            .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?;
        for run in runs {
            let start = frame.decompressed_offset + run.start;
            let end = start + run.len;
            let first = pages.partition_point(|page| page.offset < start);
            for page in pages[first..]
                .iter_mut()
                .take_while(|page| page.offset < end)
            {
                page.excluded = Some(run.category);
            }
        }
    }
    Ok(())
}

/// What a page that should have been planted content holds instead.
fn what(page: &[u8]) -> String {
    if page.iter().all(|&byte| byte == 0) {
        return "zeros".to_owned();
    }
    match kinds::read_tag(page) {
        Some((seed, Some(kind), index)) => format!("{} page {index} (seed {seed:#x})", kind.name()),
        Some((seed, None, index)) => format!("an unknown kind's page {index} (seed {seed:#x})"),
        None => "other data".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_leave_out_each_kind_as_makedumpfile_does() {
        use ExcludeCategory::*;
        let table: [(Kind, [Option<ExcludeCategory>; 7]); 9] = [
            (
                Kind::Anonymous,
                [None, None, None, None, Some(User), None, Some(User)],
            ),
            (
                Kind::Planted(PageKind::Thp),
                [None, None, None, None, Some(User), None, Some(User)],
            ),
            (
                Kind::Planted(PageKind::Hugetlb),
                [None, None, None, None, Some(User), None, Some(User)],
            ),
            (
                Kind::Planted(PageKind::HugetlbPool),
                [None, None, None, None, Some(User), None, Some(User)],
            ),
            (
                Kind::Planted(PageKind::Cache),
                [
                    None,
                    None,
                    Some(Cache),
                    Some(Cache),
                    None,
                    None,
                    Some(Cache),
                ],
            ),
            (
                Kind::Planted(PageKind::Shmem),
                [
                    None,
                    None,
                    Some(Cache),
                    Some(Cache),
                    None,
                    None,
                    Some(Cache),
                ],
            ),
            (
                Kind::Planted(PageKind::CachePrivate),
                [
                    None,
                    None,
                    None,
                    Some(CachePrivate),
                    None,
                    None,
                    Some(CachePrivate),
                ],
            ),
            (
                Kind::Planted(PageKind::ZeroFile),
                [
                    None,
                    Some(Zero),
                    Some(Cache),
                    Some(Cache),
                    None,
                    None,
                    Some(Cache),
                ],
            ),
            (
                Kind::Planted(PageKind::Freed),
                [None, None, None, None, None, Some(Free), Some(Free)],
            ),
        ];
        for (kind, row) in table {
            for (level, want) in [0u8, 1, 2, 4, 8, 16, 31].into_iter().zip(row) {
                assert_eq!(expected(kind, level), want, "{kind:?} at level {level}");
            }
        }
    }
}

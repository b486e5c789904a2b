//! Pages of each kind that makedumpfile's dump levels tell apart, planted by
//! crashme and checked by `cargo xtask qemu-test` in the dumps of every
//! level: what each page holds and the console report of where they are.
//!
//! Every tagged page starts with [`TAG_MAGIC`], the seed, the kind's code
//! and the page's index in its kind, so a page found anywhere says what it
//! is; a seeded xorshift stream fills the rest, so no two pages are alike.
//! Zero-filled file pages are the exception: zeros are their point.
//!
//! The report: [`KINDS_BEGIN`] with the seed, then per kind a
//! `crashme: kind <name> pages=<n>` line and its runs on
//! `crashme: kind-pfns <name> ...` lines (as the planted report's runs),
//! then [`KINDS_END`]. The freed pages are given back to the page
//! allocator last, just before the crash; crashme then prints how many
//! pages the per-CPU free lists held ([`PCP_LINE`]): those are not in the
//! buddy allocator's free lists, where makedumpfile and lifeboat find free
//! pages, and bound how many freed pages a dump may keep.

use std::fmt::Write as _;

use crate::{parse_u64, runs_of, splitmix64, strip_console_noise, Run, PREFIX};

/// First line of the report; followed by `seed=<hex>`.
pub const KINDS_BEGIN: &str = "crashme: kinds begin";
/// A kind's header: `<name> pages=<count>`.
const KIND_LINE: &str = "crashme: kind ";
/// A kind's runs: `<name>` then runs `<page_idx>:<pfn hex>+<count>`.
const KIND_RUNS: &str = "crashme: kind-pfns ";
/// Last line of the report.
pub const KINDS_END: &str = "crashme: kinds end";
/// Printed after the freed pages went back to the allocator:
/// `pages=<count> batch=<batch>`, summed and maxed over every zone and CPU
/// of /proc/zoneinfo.
pub const PCP_LINE: &str = "crashme: per-cpu free lists";

/// Kernel command-line parameter: plant the kinds (`crashme.kinds=1`).
pub const PARAM_KINDS: &str = "crashme.kinds";

/// Where the harness puts the modules crashme loads to see the test disk,
/// named so that sorting them gives the load order.
pub const MODULES_DIR: &str = "/modules";

/// The first eight bytes of every tagged page ("crashme!").
pub const TAG_MAGIC: u64 = u64::from_le_bytes(*b"crashme!");

const RUNS_PER_LINE: usize = 8;

/// A kind of page, by what the crashed kernel's `struct page` says of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PageKind {
    /// A file on the ext4 test disk, written, synced, dropped from the
    /// cache and read back through a mapping: on the LRU, no buffer heads.
    Cache,
    /// A file on the ext4 test disk written through write(2) and kept:
    /// ext4 attaches buffer heads to the pages it writes (`PG_private`).
    /// Reading the raw block device does not make such pages reliably: on
    /// 6.1, pread(2) of /dev/vda goes through readahead (`mpage`), which
    /// attaches none (measured: 1 of 16 pages had `PG_private`).
    CachePrivate,
    /// A memfd (shmem): on the LRU, swap-backed, not anonymous.
    Shmem,
    /// A file of zeros on the test disk, read back as the cache one.
    ZeroFile,
    /// Anonymous memory in transparent huge pages.
    Thp,
    /// hugetlbfs pages mapped by crashme.
    Hugetlb,
    /// hugetlbfs pages written, then unmapped: free pages of the hugetlb
    /// pool, not of the buddy allocator.
    HugetlbPool,
    /// Anonymous pages written, then unmapped just before the crash: free
    /// pages of the buddy allocator, but for those parked on per-CPU lists.
    Freed,
}

impl PageKind {
    pub const ALL: [PageKind; 8] = [
        PageKind::Cache,
        PageKind::CachePrivate,
        PageKind::Shmem,
        PageKind::ZeroFile,
        PageKind::Thp,
        PageKind::Hugetlb,
        PageKind::HugetlbPool,
        PageKind::Freed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PageKind::Cache => "cache",
            PageKind::CachePrivate => "cache-private",
            PageKind::Shmem => "shmem",
            PageKind::ZeroFile => "zero-file",
            PageKind::Thp => "thp",
            PageKind::Hugetlb => "hugetlb",
            PageKind::HugetlbPool => "hugetlb-pool",
            PageKind::Freed => "freed",
        }
    }

    pub fn from_name(name: &str) -> Option<PageKind> {
        PageKind::ALL.into_iter().find(|kind| kind.name() == name)
    }

    /// The code in a tagged page's header.
    fn code(self) -> u64 {
        PageKind::ALL
            .iter()
            .position(|kind| *kind == self)
            .expect("every kind is in ALL") as u64
            + 1
    }

    /// Whether the kind's pages hold zeros rather than tags.
    pub fn is_zero(self) -> bool {
        self == PageKind::ZeroFile
    }
}

/// Fills `page` with the content of page `page_idx` of `kind` under `seed`:
/// the tag header, then a stream of little-endian xorshift64 words; zeros
/// for a zero kind.
pub fn fill_tagged(seed: u64, kind: PageKind, page_idx: u64, page: &mut [u8]) {
    if kind.is_zero() {
        page.fill(0);
        return;
    }
    let header = [TAG_MAGIC, seed, kind.code(), page_idx];
    let (head, rest) = page.split_at_mut(header.len() * 8);
    for (word, value) in head.chunks_exact_mut(8).zip(header) {
        word.copy_from_slice(&value.to_le_bytes());
    }
    let mut state = splitmix64(seed ^ splitmix64(kind.code() << 48 ^ page_idx)) | 1;
    for word in rest.chunks_exact_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        word.copy_from_slice(&state.to_le_bytes());
    }
}

/// The tag at the start of `page`, if it has one: the seed, the kind (when
/// the code is known) and the index. Says what a wrong page holds instead.
pub fn read_tag(page: &[u8]) -> Option<(u64, Option<PageKind>, u64)> {
    let word = |at: usize| -> Option<u64> {
        Some(u64::from_le_bytes(page.get(at..at + 8)?.try_into().ok()?))
    };
    if word(0)? != TAG_MAGIC {
        return None;
    }
    let code = word(16)?;
    let kind = PageKind::ALL.into_iter().find(|kind| kind.code() == code);
    Some((word(8)?, kind, word(24)?))
}

/// The pages of one kind and where they are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KindPages {
    pub kind: PageKind,
    pub n_pages: u64,
    pub runs: Vec<Run>,
}

impl KindPages {
    pub fn from_pfns(kind: PageKind, pfns: &[u64]) -> KindPages {
        KindPages {
            kind,
            n_pages: pfns.len() as u64,
            runs: runs_of(pfns),
        }
    }

    /// Every page as (index in the kind, pfn).
    pub fn pages(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.runs
            .iter()
            .flat_map(|run| (0..run.n_pages).map(move |i| (run.page_idx + i, run.pfn + i)))
    }
}

/// The per-CPU free lists once the freed pages were given back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PerCpuLists {
    /// Pages on all of them, every zone and CPU.
    pub pages: u64,
    /// The largest batch, what a list takes from or gives back to the
    /// buddy allocator at once.
    pub batch: u64,
}

/// The whole report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kinds {
    pub seed: u64,
    pub kinds: Vec<KindPages>,
    /// `None` until crashme printed it (after the report).
    pub per_cpu: Option<PerCpuLists>,
}

impl Kinds {
    pub fn get(&self, kind: PageKind) -> Option<&KindPages> {
        self.kinds.iter().find(|pages| pages.kind == kind)
    }

    /// The report's console lines, begin and end markers included.
    pub fn to_lines(&self) -> Vec<String> {
        let mut lines = vec![format!("{KINDS_BEGIN} seed={:#x}", self.seed)];
        for pages in &self.kinds {
            let name = pages.kind.name();
            lines.push(format!("{KIND_LINE}{name} pages={}", pages.n_pages));
            for chunk in pages.runs.chunks(RUNS_PER_LINE) {
                let mut line = format!("{KIND_RUNS}{name}");
                for run in chunk {
                    // Writing to a String cannot fail.
                    let _ = write!(line, " {}:{:x}+{}", run.page_idx, run.pfn, run.n_pages);
                }
                lines.push(line);
            }
        }
        lines.push(KINDS_END.to_string());
        lines
    }

    pub fn per_cpu_line(per_cpu: PerCpuLists) -> String {
        format!("{PCP_LINE} pages={} batch={}", per_cpu.pages, per_cpu.batch)
    }

    /// Finds the report in a console log; every kind's runs must cover its
    /// pages once, in order.
    pub fn parse(log: &str) -> Result<Kinds, String> {
        let mut lines = log.lines().map(strip_console_noise);
        let header = lines
            .by_ref()
            .find_map(|line| line.strip_prefix(KINDS_BEGIN))
            .ok_or_else(|| format!("no `{KINDS_BEGIN}` line"))?;
        let seed = header
            .split_whitespace()
            .find_map(|field| field.strip_prefix("seed="))
            .and_then(parse_u64)
            .ok_or_else(|| format!("no seed in `{header}`"))?;
        let mut kinds: Vec<KindPages> = Vec::new();
        let mut ended = false;
        for line in lines.by_ref() {
            if line == KINDS_END {
                ended = true;
                break;
            }
            if let Some(rest) = line.strip_prefix(KIND_LINE) {
                let (name, count) = rest
                    .split_once(" pages=")
                    .ok_or_else(|| format!("bad kind line `{line}`"))?;
                let kind =
                    PageKind::from_name(name).ok_or_else(|| format!("unknown kind `{name}`"))?;
                if kinds.iter().any(|pages| pages.kind == kind) {
                    return Err(format!("kind `{name}` reported twice"));
                }
                kinds.push(KindPages {
                    kind,
                    n_pages: count
                        .parse()
                        .map_err(|_| format!("bad count in `{line}`"))?,
                    runs: Vec::new(),
                });
            } else if let Some(rest) = line.strip_prefix(KIND_RUNS) {
                let mut fields = rest.split_whitespace();
                let name = fields.next().unwrap_or_default();
                let pages = kinds
                    .last_mut()
                    .filter(|pages| pages.kind.name() == name)
                    .ok_or_else(|| format!("runs of `{name}` outside its kind: `{line}`"))?;
                for field in fields {
                    let run =
                        crate::parse_run(field).ok_or_else(|| format!("bad run `{field}`"))?;
                    let next = pages.runs.last().map_or(0, |r| r.page_idx + r.n_pages);
                    if run.page_idx != next || run.n_pages == 0 {
                        return Err(format!(
                            "{name}: run `{field}` does not start at page {next}"
                        ));
                    }
                    pages.runs.push(run);
                }
            }
        }
        if !ended {
            return Err(format!("no `{KINDS_END}` line"));
        }
        for pages in &kinds {
            let covered: u64 = pages.runs.iter().map(|run| run.n_pages).sum();
            if covered != pages.n_pages || covered == 0 {
                return Err(format!(
                    "{}: runs cover {covered} pages, the header says {}",
                    pages.kind.name(),
                    pages.n_pages
                ));
            }
        }
        let per_cpu = lines
            .find_map(|line| line.strip_prefix(PCP_LINE))
            .map(|rest| {
                let field = |name: &str| {
                    rest.split_whitespace()
                        .find_map(|field| field.strip_prefix(name)?.parse().ok())
                        .ok_or_else(|| format!("no {name} in `{PCP_LINE}{rest}`"))
                };
                Ok::<_, String>(PerCpuLists {
                    pages: field("pages=")?,
                    batch: field("batch=")?,
                })
            })
            .transpose()?;
        Ok(Kinds {
            seed,
            kinds,
            per_cpu,
        })
    }
}

/// A console line of crashme's about the kinds, to keep it apart from the
/// report's own.
pub fn note(text: &str) -> String {
    format!("{PREFIX}kinds: {text}")
}

/// The pages on the per-CPU free lists and the largest batch, from
/// /proc/zoneinfo's `pagesets` (`count:` and `batch:` of each CPU).
pub fn per_cpu_lists(zoneinfo: &str) -> Option<PerCpuLists> {
    let mut pages = 0;
    let mut batch = 0;
    let mut seen = false;
    for line in zoneinfo.lines() {
        let line = line.trim();
        if let Some(value) = line.strip_prefix("count:") {
            pages += value.trim().parse::<u64>().ok()?;
            seen = true;
        } else if let Some(value) = line.strip_prefix("batch:") {
            batch = batch.max(value.trim().parse::<u64>().ok()?);
        }
    }
    seen.then_some(PerCpuLists { pages, batch })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PAGE_SIZE;

    #[test]
    fn tagged_pages_say_what_they_are() {
        let mut page = vec![0u8; PAGE_SIZE];
        let mut other = vec![0u8; PAGE_SIZE];
        fill_tagged(9, PageKind::Shmem, 5, &mut page);
        fill_tagged(9, PageKind::Shmem, 6, &mut other);
        assert_ne!(page, other);
        assert_eq!(read_tag(&page), Some((9, Some(PageKind::Shmem), 5)));
        fill_tagged(9, PageKind::Thp, 5, &mut other);
        assert_ne!(page[32..], other[32..]);
        fill_tagged(9, PageKind::ZeroFile, 5, &mut page);
        assert!(page.iter().all(|&byte| byte == 0));
        assert_eq!(read_tag(&page), None);
    }

    #[test]
    fn report_round_trips_through_a_noisy_log() {
        let kinds = Kinds {
            seed: 0x77,
            kinds: vec![
                KindPages::from_pfns(PageKind::Cache, &[10, 11, 12, 40]),
                KindPages::from_pfns(PageKind::Freed, &(0..30).map(|i| 3 * i).collect::<Vec<_>>()),
            ],
            per_cpu: Some(PerCpuLists {
                pages: 12,
                batch: 63,
            }),
        };
        let mut log = String::from("[    0.1] boot\r\n");
        for line in kinds.to_lines() {
            log += &line;
            log += "\r\n[    2.0] random: crng init done\r\n";
        }
        log += &Kinds::per_cpu_line(kinds.per_cpu.unwrap());
        log += "\r\n";
        assert_eq!(Kinds::parse(&log), Ok(kinds.clone()));
        let pages: Vec<_> = kinds.kinds[0].pages().collect();
        assert_eq!(pages, [(0, 10), (1, 11), (2, 12), (3, 40)]);

        let cut = log.replace("kind-pfns cache 0:a+3 3:28+1", "kind-pfns cache 0:a+3");
        assert!(Kinds::parse(&cut).unwrap_err().contains("cover 3 pages"));
    }

    #[test]
    fn zoneinfo_gives_the_per_cpu_lists() {
        let zoneinfo = "Node 0, zone    DMA32\n  pagesets\n    cpu: 0\n              count: 200\n              high:  252\n              batch: 63\n  vm stats threshold: 24\n    cpu: 1\n              count: 5\n              high:  252\n              batch: 31\n";
        assert_eq!(
            per_cpu_lists(zoneinfo),
            Some(PerCpuLists {
                pages: 205,
                batch: 63
            })
        );
        assert_eq!(per_cpu_lists("nothing"), None);
    }
}

//! Planting pages of every kind the dump levels tell apart (see
//! `crashme::kinds`), on the production kernel, with the test disk mounted.
//!
//! Each kind is made the way a real system makes it, then checked with
//! /proc/kpageflags before it is reported, so that a kind that did not come
//! out as meant (a cache page that kept its buffer heads, an anonymous
//! region the kernel did not back with a huge page) fails here, on the
//! console, instead of passing the dump checks for the wrong reason.

use std::fs::{self, File};
use std::io::{self, Write as _};
use std::os::unix::fs::FileExt as _;
use std::time::{Duration, Instant};

use crashme::kinds::{self, KindPages, Kinds, PageKind, PerCpuLists, MODULES_DIR};
use crashme::PAGE_SIZE;

use crate::sys::{self, Mapping};
use crate::{read_pfns, say, Step};

/// Pages of each kind.
const CACHE_PAGES: usize = 256;
const SHMEM_PAGES: usize = 256;
const FREED_PAGES: usize = 4096;
/// x86_64's PMD-sized pages: transparent and hugetlbfs.
const HUGE_SIZE: usize = 2 << 20;
const HUGE_PAGES: usize = 2;

/// The test disk and where crashme mounts it.
const DISK: &str = "/dev/vda";
const MOUNT_POINT: &str = "/mnt";

/// /proc/kpageflags bits (Documentation/admin-guide/mm/pagemap.rst).
const KPF_LRU: u64 = 1 << 5;
const KPF_ANON: u64 = 1 << 12;
const KPF_SWAPBACKED: u64 = 1 << 14;
const KPF_COMPOUND_HEAD: u64 = 1 << 15;
const KPF_HUGE: u64 = 1 << 17;
const KPF_THP: u64 = 1 << 22;
/// `PG_private`: buffer heads, for a page cache page of a block filesystem.
const KPF_PRIVATE: u64 = 1 << 35;

/// The pcp lists' high mark is the zone's managed pages divided by this,
/// but never below four batches: the floor, so that few freed pages stay
/// off the buddy allocator's lists.
const PCP_HIGH_FRACTION: &str = "100000000";

/// What is planted, kept mapped until the crash; the freed pages are
/// still mapped until [`PlantedKinds::free_and_report`].
pub struct PlantedKinds {
    pub report: Kinds,
    /// The kinds whose pages crashme still maps, with their mapping.
    mapped: Vec<(PageKind, Mapping)>,
    freed: Mapping,
}

/// Shrinks the per-CPU free lists, so that pages given back reach the
/// buddy allocator's lists (where a dump level finds free pages) rather
/// than wait on a CPU's list. Done first, before any planting.
pub fn shrink_per_cpu_lists() -> Result<(), String> {
    fs::write(
        "/proc/sys/vm/percpu_pagelist_high_fraction",
        PCP_HIGH_FRACTION,
    )
    .step("write /proc/sys/vm/percpu_pagelist_high_fraction")
}

pub fn plant(seed: u64) -> Result<PlantedKinds, String> {
    let start = Instant::now();
    load_modules()?;
    wait_for(DISK, Duration::from_secs(10))?;
    fs::create_dir_all(MOUNT_POINT).step(&format!("mkdir {MOUNT_POINT}"))?;
    sys::mount_with(DISK, MOUNT_POINT, "ext4", 0, None)
        .step(&format!("mount {DISK} on {MOUNT_POINT}"))?;

    let mut mapped = Vec::new();
    for (kind, name, read_back) in [
        (PageKind::Cache, "crashme-cache", true),
        (PageKind::ZeroFile, "crashme-zero", true),
        (PageKind::CachePrivate, "crashme-private", false),
    ] {
        let path = format!("{MOUNT_POINT}/{name}");
        mapped.push((kind, file_pages(seed, kind, &path, read_back)?));
    }
    // Read-only from here: the files are on the disk and the filesystem
    // clean, as a crash of a machine with idle filesystems leaves it, and
    // the page cache keeps the pages.
    sys::mount_with(
        "none",
        MOUNT_POINT,
        "none",
        libc::MS_REMOUNT | libc::MS_RDONLY,
        None,
    )
    .step(&format!("remount {MOUNT_POINT} read-only"))?;
    mapped.push((PageKind::Shmem, shmem_pages(seed)?));
    mapped.push((PageKind::Thp, thp_pages(seed)?));
    let (hugetlb, pool_pfns) = hugetlb_pages(seed)?;
    mapped.push((PageKind::Hugetlb, hugetlb));
    let freed = anonymous_pages(seed, PageKind::Freed, FREED_PAGES)?;

    drain_lru_batches()?;
    let mut report = Kinds {
        seed,
        kinds: Vec::new(),
        per_cpu: None,
    };
    let all = mapped.iter().map(|(kind, mapping)| (*kind, mapping));
    for (kind, mapping) in all.chain([(PageKind::Freed, &freed)]) {
        let pfns = read_pfns(pages_of(kind, mapping)).step(kind.name())?;
        report.kinds.push(KindPages::from_pfns(kind, &pfns));
    }
    report
        .kinds
        .push(KindPages::from_pfns(PageKind::HugetlbPool, &pool_pfns));
    report.kinds.sort_by_key(|pages| pages.kind);
    check_flags(&report)?;
    say(&kinds::note(&format!(
        "planted in {:.1} s, flags checked with /proc/kpageflags",
        start.elapsed().as_secs_f64()
    )));
    Ok(PlantedKinds {
        report,
        mapped,
        freed,
    })
}

impl PlantedKinds {
    /// Right before the crash: the mapped kinds are still in the frames
    /// reported, with their content and flags.
    pub fn check(&self) -> Result<(), String> {
        for (kind, mapping) in &self.mapped {
            let pages = pages_of(*kind, mapping);
            let reported = self.report.get(*kind).expect("every kind is reported");
            let pfns: Vec<u64> = reported.pages().map(|(_, pfn)| pfn).collect();
            if read_pfns(pages)? != pfns {
                return Err(format!("{} pages moved after the report", kind.name()));
            }
            check_content(self.report.seed, *kind, pages)?;
        }
        check_flags(&self.report)
    }

    /// Gives the freed pages back to the kernel, last thing before the
    /// crash, and prints how many pages the per-CPU lists hold.
    pub fn free_and_report(self) -> Result<PerCpuLists, String> {
        self.freed.unmap().step("munmap the freed pages")?;
        let zoneinfo = fs::read_to_string("/proc/zoneinfo").step("read /proc/zoneinfo")?;
        let per_cpu =
            kinds::per_cpu_lists(&zoneinfo).ok_or("no per-CPU list counts in /proc/zoneinfo")?;
        say(&Kinds::per_cpu_line(per_cpu));
        // The other mappings stay until the crash.
        std::mem::forget(self.mapped);
        Ok(per_cpu)
    }
}

/// The pages of `kind` in its mapping: the THP mapping has an unaligned
/// margin in front of the huge pages.
fn pages_of(kind: PageKind, mapping: &Mapping) -> &[u8] {
    let bytes = mapping.bytes();
    match kind {
        PageKind::Thp => {
            let margin = huge_margin(bytes);
            &bytes[margin..margin + HUGE_PAGES * HUGE_SIZE]
        }
        _ => bytes,
    }
}

/// Bytes from the start of `bytes` to its first huge-page boundary.
fn huge_margin(bytes: &[u8]) -> usize {
    let address = bytes.as_ptr() as usize;
    address.next_multiple_of(HUGE_SIZE) - address
}

/// Loads the modules the harness put in [`MODULES_DIR`] (the virtio block
/// driver and what it needs, modules on Debian's kernels), in name order.
fn load_modules() -> Result<(), String> {
    let mut paths: Vec<_> = fs::read_dir(MODULES_DIR)
        .step(&format!("read {MODULES_DIR}"))?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<io::Result<_>>()
        .step(&format!("read {MODULES_DIR}"))?;
    paths.sort();
    for path in paths {
        let module = File::open(&path).step(&format!("open {}", path.display()))?;
        match sys::finit_module(&module) {
            Ok(()) => {}
            Err(error) if error.raw_os_error() == Some(libc::EEXIST) => {}
            Err(error) => return Err(format!("finit_module {}: {error}", path.display())),
        }
    }
    Ok(())
}

fn wait_for(path: &str, timeout: Duration) -> Result<(), String> {
    let start = Instant::now();
    while !std::path::Path::new(path).exists() {
        if start.elapsed() > timeout {
            return Err(format!("{path} did not appear within {timeout:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// A file of [`CACHE_PAGES`] pages of `kind` on the test disk, mapped and
/// locked. ext4 attaches buffer heads to the pages write(2) fills, and
/// keeps them after writeback: those pages are private cache. With
/// `read_back`, the written pages are dropped from the cache and read
/// again through the mapping, by readahead, which attaches none.
fn file_pages(seed: u64, kind: PageKind, path: &str, read_back: bool) -> Result<Mapping, String> {
    let mut file = File::create(path).step(&format!("create {path}"))?;
    let mut page = vec![0u8; PAGE_SIZE];
    for page_idx in 0..CACHE_PAGES as u64 {
        kinds::fill_tagged(seed, kind, page_idx, &mut page);
        file.write_all(&page).step(&format!("write {path}"))?;
    }
    file.sync_all().step(&format!("fsync {path}"))?;
    if read_back {
        sys::drop_from_cache(&file).step(&format!("drop {path} from the page cache"))?;
    }
    drop(file);
    let file = File::open(path).step(&format!("open {path}"))?;
    let mapping = Mapping::new(
        CACHE_PAGES * PAGE_SIZE,
        libc::PROT_READ,
        libc::MAP_SHARED,
        Some(&file),
    )
    .step(&format!("mmap {path}"))?;
    // Locking faults every page in; it also keeps compaction from moving
    // them (crashme turned compact_unevictable_allowed off).
    sys::lock(mapping.bytes()).step(&format!("mlock {path}"))?;
    check_content(seed, kind, mapping.bytes())?;
    Ok(mapping)
}

/// [`SHMEM_PAGES`] pages of a memfd, which is shmem.
fn shmem_pages(seed: u64) -> Result<Mapping, String> {
    let file = sys::memfd_create("crashme-shmem").step("memfd_create")?;
    let len = SHMEM_PAGES * PAGE_SIZE;
    file.set_len(len as u64).step("size the memfd")?;
    let mut mapping = Mapping::new(
        len,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_SHARED,
        Some(&file),
    )
    .step("mmap the memfd")?;
    fill(seed, PageKind::Shmem, mapping.bytes_mut());
    sys::lock(mapping.bytes()).step("mlock the memfd")?;
    Ok(mapping)
}

/// [`HUGE_PAGES`] transparent huge pages: an aligned anonymous region
/// advised `MADV_HUGEPAGE`, whose first touch faults in a huge page.
fn thp_pages(seed: u64) -> Result<Mapping, String> {
    let len = HUGE_PAGES * HUGE_SIZE;
    let mut mapping = Mapping::new(
        len + HUGE_SIZE,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
        None,
    )
    .step("mmap the THP region")?;
    let margin = huge_margin(mapping.bytes());
    mapping
        .advise(margin, len, libc::MADV_HUGEPAGE)
        .step("madvise(MADV_HUGEPAGE)")?;
    fill(
        seed,
        PageKind::Thp,
        &mut mapping.bytes_mut()[margin..margin + len],
    );
    sys::lock(pages_of(PageKind::Thp, &mapping)).step("mlock the THP region")?;
    Ok(mapping)
}

/// [`HUGE_PAGES`] hugetlbfs pages mapped, and as many written and unmapped,
/// which the pool keeps as free huge pages; returns the mapping and the
/// frames of the pool's pages.
fn hugetlb_pages(seed: u64) -> Result<(Mapping, Vec<u64>), String> {
    const NR_HUGEPAGES: &str = "/proc/sys/vm/nr_hugepages";
    let wanted = 2 * HUGE_PAGES;
    fs::write(NR_HUGEPAGES, wanted.to_string()).step(&format!("write {NR_HUGEPAGES}"))?;
    let got = fs::read_to_string(NR_HUGEPAGES).step(&format!("read {NR_HUGEPAGES}"))?;
    if got.trim() != wanted.to_string() {
        return Err(format!(
            "{NR_HUGEPAGES} is {} after writing {wanted}",
            got.trim()
        ));
    }
    let map = |kind: PageKind| -> Result<Mapping, String> {
        let mut mapping = Mapping::new(
            HUGE_PAGES * HUGE_SIZE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_HUGETLB,
            None,
        )
        .step("mmap hugetlb pages")?;
        fill(seed, kind, mapping.bytes_mut());
        Ok(mapping)
    };
    let mapped = map(PageKind::Hugetlb)?;
    sys::lock(mapped.bytes()).step("mlock the hugetlb pages")?;
    let pool = map(PageKind::HugetlbPool)?;
    let pool_pfns = read_pfns(pool.bytes()).step("hugetlb pool pages")?;
    pool.unmap().step("munmap hugetlb pages")?;
    let meminfo = fs::read_to_string("/proc/meminfo").step("read /proc/meminfo")?;
    let free = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("HugePages_Free:"))
        .map(str::trim);
    if free != Some(&HUGE_PAGES.to_string()) {
        return Err(format!(
            "HugePages_Free is {free:?} after unmapping {HUGE_PAGES} huge pages"
        ));
    }
    Ok((mapped, pool_pfns))
}

/// `n_pages` anonymous pages of `kind`, locked, in small pages.
fn anonymous_pages(seed: u64, kind: PageKind, n_pages: usize) -> Result<Mapping, String> {
    let len = n_pages * PAGE_SIZE;
    let mut mapping = Mapping::new(
        len,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
        None,
    )
    .step("mmap anonymous pages")?;
    mapping
        .advise(0, len, libc::MADV_NOHUGEPAGE)
        .step("madvise(MADV_NOHUGEPAGE)")?;
    fill(seed, kind, mapping.bytes_mut());
    sys::lock(mapping.bytes()).step("mlock anonymous pages")?;
    Ok(mapping)
}

/// Pages a CPU just added to the page cache or locked wait in its batches
/// before they are put on an LRU list (`PG_lru`, what makes a page cache
/// for the dump levels). munmap(2) drains the calling CPU's batches
/// (`lru_add_drain` in `unmap_region`); crashme runs on the only CPU the
/// scenarios with kinds give the VM.
fn drain_lru_batches() -> Result<(), String> {
    let mut page = Mapping::new(
        PAGE_SIZE,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
        None,
    )
    .step("mmap a page")?;
    page.bytes_mut()[0] = 1;
    page.unmap().step("munmap a page")
}

fn fill(seed: u64, kind: PageKind, bytes: &mut [u8]) {
    for (page_idx, page) in (0u64..).zip(bytes.chunks_exact_mut(PAGE_SIZE)) {
        kinds::fill_tagged(seed, kind, page_idx, page);
    }
}

fn check_content(seed: u64, kind: PageKind, bytes: &[u8]) -> Result<(), String> {
    let mut expected = vec![0u8; PAGE_SIZE];
    for (page_idx, page) in (0u64..).zip(bytes.chunks_exact(PAGE_SIZE)) {
        kinds::fill_tagged(seed, kind, page_idx, &mut expected);
        if page != expected.as_slice() {
            return Err(format!("{} page {page_idx} changed in memory", kind.name()));
        }
    }
    Ok(())
}

/// Every reported page has the flags of its kind in /proc/kpageflags.
fn check_flags(report: &Kinds) -> Result<(), String> {
    let kpageflags = File::open("/proc/kpageflags").step("open /proc/kpageflags")?;
    for pages in &report.kinds {
        let kind = pages.kind;
        // (must have, must not have)
        let (set, clear) = match kind {
            PageKind::Cache | PageKind::ZeroFile => {
                (KPF_LRU, KPF_ANON | KPF_SWAPBACKED | KPF_PRIVATE)
            }
            PageKind::CachePrivate => (KPF_LRU | KPF_PRIVATE, KPF_ANON | KPF_SWAPBACKED),
            PageKind::Shmem => (KPF_LRU | KPF_SWAPBACKED, KPF_ANON | KPF_PRIVATE),
            PageKind::Thp => (KPF_THP | KPF_ANON, 0),
            PageKind::Hugetlb | PageKind::HugetlbPool => (KPF_HUGE, 0),
            PageKind::Freed => (KPF_ANON, KPF_THP),
        };
        let mut wrong = Vec::new();
        let mut n_wrong = 0;
        for run in &pages.runs {
            let mut entries = vec![0u8; run.n_pages as usize * 8];
            kpageflags
                .read_exact_at(&mut entries, run.pfn * 8)
                .step("read /proc/kpageflags")?;
            for (i, entry) in (0u64..).zip(entries.chunks_exact(8)) {
                let flags = u64::from_le_bytes(entry.try_into().expect("8 bytes"));
                let pfn = run.pfn + i;
                let huge_head = matches!(kind, PageKind::Thp | PageKind::Hugetlb)
                    && (run.page_idx + i) % (HUGE_SIZE / PAGE_SIZE) as u64 == 0;
                let bad_head = huge_head
                    && (flags & KPF_COMPOUND_HEAD == 0
                        || !pfn.is_multiple_of((HUGE_SIZE / PAGE_SIZE) as u64));
                if flags & set != set || flags & clear != 0 || bad_head {
                    n_wrong += 1;
                    if wrong.len() < 4 {
                        wrong.push(format!("pfn {pfn:#x} flags {flags:#x}"));
                    }
                }
            }
        }
        if n_wrong > 0 {
            return Err(format!(
                "{n_wrong} of {} {} pages lack flags {set:#x} or have {clear:#x}: {}",
                pages.n_pages,
                kind.name(),
                wrong.join(", ")
            ));
        }
    }
    Ok(())
}

//! lifeboat's dump levels against makedumpfile's on the same vmcore: for
//! each level, `lifeboat save -d N` and `makedumpfile -l -d N`, then the
//! page frames each left out, frame by frame, from lifeboat's exclusion
//! records and makedumpfile's bitmaps and page descriptors, and the counts
//! of each category, from lifeboat's summary and makedumpfile's report.
//! The vmcore must be whole (captured at level 0).

use std::fs::File;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context as _, Result};
use dumper::elf::{read_core_headers, LoadSegment};
use dumper::filter::exclude::repeats;
use dumper::filter::ExcludeCategory;
use dumper::seekable::reader::Dump;

use super::analysis;
use super::kdump::{report_counts, KdumpPages};
use crate::bench::makedumpfile;
use crate::util;

/// The levels compared: each bit alone, and all of them.
const LEVELS: [u8; 6] = [1, 2, 4, 8, 16, 31];

const PAGE: u64 = 4096;

/// Frames listed at most per difference.
const MAX_LISTED: usize = 8;

/// What crash is asked of the level-31 dump and of the whole vmcore: the
/// kernel's own data, which no level leaves out, so the answers must be
/// the same.
const CRASH_COMMANDS: &[&str] = &[
    "set scroll off",
    "sys",
    "bt -a",
    "ps",
    "log",
    "kmem -s",
    "mod",
    "q",
];

/// Runs both tools (`makedumpfile` names the makedumpfile) at every level
/// of [`LEVELS`] on `vmcore` and compares; then crash reads the level-31
/// dump and the vmcore with `vmlinux` (`Err`: why crash is not run).
/// `each_dump` sees lifeboat's dump of each level before it is deleted.
pub fn check_levels(
    lifeboat: &Path,
    makedumpfile: &Path,
    vmcore: &Path,
    vmlinux: Result<&Path, &str>,
    dir: &Path,
    each_dump: &mut dyn FnMut(u8, &Path),
) -> Result<String> {
    let version = makedumpfile::version_of(makedumpfile)?;
    let headers = read_core_headers(&File::open(vmcore)?)
        .with_context(|| format!("cannot read the headers of {}", vmcore.display()))?;
    let loads = direct_loads(&headers.loads);
    let mut lines = Vec::new();
    let mut problems = Vec::new();
    for level in LEVELS {
        let ours = dir.join(format!("level-{level}.zst"));
        let theirs = dir.join(format!("level-{level}.kdump"));
        let _ = std::fs::remove_file(&ours);
        let _ = std::fs::remove_file(&theirs);
        let save = util::output_with_stderr(
            Command::new(lifeboat)
                .args(["save", "-t", "1", "-d", &level.to_string()])
                .arg(vmcore)
                .arg(&ours),
        )?;
        let report = util::output_with_stderr(
            Command::new(makedumpfile)
                .args(["-l", "-d", &level.to_string(), "--message-level", "31"])
                .arg(vmcore)
                .arg(&theirs),
        )?;
        each_dump(level, &ours);
        let our_counts = summary_counts(&save)
            .with_context(|| format!("no counts in lifeboat save's summary: {save}"))?;
        let their_counts = report_counts(&report);
        if their_counts.len() != ExcludeCategory::ALL.len() {
            bail!("level {level}: no counts in makedumpfile's report: {report}");
        }
        let counts_agree = our_counts
            .iter()
            .zip(&their_counts)
            .all(|(ours, (_, theirs))| ours == theirs);
        if !counts_agree {
            problems.push(format!(
                "level {level}: lifeboat counts {our_counts:?}, makedumpfile {their_counts:?}"
            ));
        }
        let frames = compare_frames(&ours, &theirs, level & 1 == 1, &loads)
            .with_context(|| format!("level {level}"))?;
        if !frames.is_empty() {
            problems.push(format!("level {level}: {}", frames.join("; ")));
        }
        lines.push(format!(
            "-d {level}: {} pages left out",
            our_counts.iter().sum::<u64>()
        ));
        if level != 31 {
            let _ = std::fs::remove_file(&ours);
        }
        let _ = std::fs::remove_file(&theirs);
    }
    if !problems.is_empty() {
        bail!(
            "lifeboat and makedumpfile {version} differ: {}",
            problems.join(" | ")
        );
    }
    let crash = match vmlinux {
        Ok(vmlinux) => crash_agrees(vmlinux, vmcore, &dir.join("level-31.zst"), dir)?,
        Err(reason) => format!("crash not run: {reason}"),
    };
    let _ = std::fs::remove_file(dir.join("level-31.zst"));
    Ok(format!(
        "the same frames and counts as makedumpfile {version}: {}; {crash}",
        lines.join(", ")
    ))
}

/// crash answers the same on the level-31 dump as on the whole vmcore.
fn crash_agrees(vmlinux: &Path, vmcore: &Path, dump: &Path, dir: &Path) -> Result<String> {
    let filtered = dir.join("level-31.vmcore");
    util::run(
        Command::new("zstd")
            .args(["-d", "-q", "-f", "-o"])
            .arg(&filtered)
            .arg(dump),
    )?;
    let whole = analysis::crash_answers(
        vmlinux,
        vmcore,
        CRASH_COMMANDS,
        &dir.join("crash-level-0.txt"),
    );
    let level31 = analysis::crash_answers(
        vmlinux,
        &filtered,
        CRASH_COMMANDS,
        &dir.join("crash-level-31.txt"),
    );
    let _ = std::fs::remove_file(&filtered);
    let (whole, level31) = (whole?, level31?);
    // The dump file's name is the one difference crash may print.
    let level31 = level31.replace(
        &filtered.display().to_string(),
        &vmcore.display().to_string(),
    );
    if whole != level31 {
        let first = whole
            .lines()
            .zip(level31.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(whole.lines().count().min(level31.lines().count()));
        let line = |text: &str| text.lines().nth(first).unwrap_or("").to_owned();
        bail!(
            "crash answers differently on the level-31 dump from line {}: {:?} against {:?} (crash-level-0.txt, crash-level-31.txt)",
            first + 1,
            line(&whole),
            line(&level31)
        );
    }
    Ok(format!(
        "crash answers `sys`, `bt -a`, `ps`, `log`, `kmem -s` and `mod` the same on the level-31 dump ({} lines)",
        whole.lines().count()
    ))
}

/// The segments that hold memory once: x86_64's kernel-image segment
/// repeats frames of the direct map's, where lifeboat decides them.
pub(super) fn direct_loads(loads: &[LoadSegment]) -> Vec<LoadSegment> {
    loads
        .iter()
        .filter(|load| !repeats(load, loads))
        .copied()
        .collect()
}

/// The page counts of `lifeboat save`'s summary line, in
/// [`ExcludeCategory::ALL`] order.
fn summary_counts(stderr: &str) -> Option<Vec<u64>> {
    let line = stderr.lines().find(|line| line.contains("left out"))?;
    let inside = line.split_once('(')?.1.split_once(')')?.0;
    let counts: Vec<u64> = inside
        .split(", ")
        .map(|part| part.rsplit(' ').next()?.parse().ok())
        .collect::<Option<_>>()?;
    (counts.len() == ExcludeCategory::ALL.len()).then_some(counts)
}

/// Frame by frame: what lifeboat left out (as zero pages, and for any
/// other reason) against what makedumpfile did. Returns the differences.
fn compare_frames(
    ours: &Path,
    theirs: &Path,
    zero_pages: bool,
    loads: &[LoadSegment],
) -> Result<Vec<String>> {
    let kdump = KdumpPages::read(theirs, zero_pages)?;
    let frames = kdump.in_memory.len();
    let mut our_zero = vec![false; frames];
    let mut our_excluded = vec![false; frames];
    let dump = Dump::open(File::open(ours)?)
        .map_err(|error| anyhow::anyhow!("cannot open {}: {error}", ours.display()))?;
    for (index, frame) in dump.frames().iter().enumerate() {
        let runs = dump
            .exclusions(index)
            .map_err(|error| anyhow::anyhow!("{}: {error}", ours.display()))?;
        for run in runs {
            let start = frame.decompressed_offset + run.start;
            for offset in (start..start + run.len).step_by(PAGE as usize) {
                let Some(load) = loads.iter().find(|load| {
                    (load.file_offset..load.file_offset + load.file_size).contains(&offset)
                }) else {
                    continue;
                };
                let pfn = ((load.paddr + (offset - load.file_offset)) / PAGE) as usize;
                if pfn >= frames {
                    bail!("lifeboat left out pfn {pfn:#x}, past makedumpfile's {frames} frames");
                }
                match run.category {
                    ExcludeCategory::Zero => our_zero[pfn] = true,
                    _ => our_excluded[pfn] = true,
                }
            }
        }
    }
    let mut differences = Vec::new();
    let mut list = |what: &str, pfns: Vec<usize>| {
        if !pfns.is_empty() {
            let shown: Vec<String> = pfns
                .iter()
                .take(MAX_LISTED)
                .map(|pfn| format!("{pfn:#x}"))
                .collect();
            differences.push(format!("{} frames {what}: {}", pfns.len(), shown.join(" ")));
        }
    };
    let theirs_excluded =
        |pfn: usize| kdump.in_memory[pfn] && !kdump.with_data[pfn] && !kdump.zero[pfn];
    list(
        "left out by lifeboat only",
        (0..frames)
            .filter(|&pfn| our_excluded[pfn] && !theirs_excluded(pfn))
            .collect(),
    );
    list(
        "left out by makedumpfile only",
        (0..frames)
            .filter(|&pfn| theirs_excluded(pfn) && !our_excluded[pfn])
            .collect(),
    );
    list(
        "zero for lifeboat only",
        (0..frames)
            .filter(|&pfn| our_zero[pfn] && !kdump.zero[pfn])
            .collect(),
    );
    list(
        "zero for makedumpfile only",
        (0..frames)
            .filter(|&pfn| kdump.zero[pfn] && !our_zero[pfn])
            .collect(),
    );
    Ok(differences)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_line_gives_the_counts() {
        let stderr = "lifeboat: saved x\nlifeboat: dump level 31: left out 473427 pages \
                      (zero 3625, cache 3719, cache_private 0, user 16394, free 449689, hwpoison 0, offline 0)\n";
        assert_eq!(
            summary_counts(stderr).unwrap(),
            [3625, 3719, 0, 16394, 449689, 0, 0]
        );
        assert!(summary_counts("lifeboat: saved x\n").is_none());
    }
}

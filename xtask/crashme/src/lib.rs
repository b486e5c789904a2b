//! What `crashme` (the production VM's /init) and `cargo xtask qemu-test`
//! agree on: the content of the planted pages and the console lines that
//! report them.
//!
//! The guest fills anonymous pages with a pattern that depends only on a seed
//! and the page's index, and prints where each page lives in physical memory.
//! After the capture the harness regenerates the same pattern and looks for it
//! at those physical addresses in the vmcore.

#![deny(unsafe_code)]

pub mod kinds;
pub mod mix;

use std::fmt::Write as _;

/// Size of a page on x86_64, which is the only architecture the VM tests run.
pub const PAGE_SIZE: usize = 4096;

/// Prefix of every line crashme prints, so the harness can tell them apart
/// from the kernel's.
pub const PREFIX: &str = "crashme: ";

/// First line of the planted-page report; followed by `seed=<hex>
/// pages=<count>`.
pub const PLANTED_BEGIN: &str = "crashme: planted begin";

/// One line of the report: runs of pages, each `<page_idx>:<pfn hex>+<count>`.
pub const PLANTED_RUNS: &str = "crashme: pfns";

/// Last line of the planted-page report.
pub const PLANTED_END: &str = "crashme: planted end";

/// Printed once the capture kernel is loaded and
/// `/sys/kernel/kexec_crash_loaded` reads 1.
pub const ARMED: &str = "crashme: kexec armed";

/// Printed just before crashme writes `c` to `/proc/sysrq-trigger`.
pub const CRASHING: &str = "crashme: crashing now";

/// Prefix of the line crashme prints when a step fails, before it powers off.
pub const FAILED: &str = "crashme: FAILED";

/// Kernel command-line parameter: how many MiB of memory to plant.
pub const PARAM_PLANT_MIB: &str = "crashme.plant_mib";

/// Kernel command-line parameter: the seed of the pattern, in hex.
pub const PARAM_SEED: &str = "crashme.seed";

/// How many runs go on one console line; short lines keep the serial log
/// readable and far from any line-length limit.
const RUNS_PER_LINE: usize = 8;

/// SplitMix64's output function: it turns consecutive integers into
/// well-mixed, never-repeating 64-bit values, which makes it a good seed for
/// xorshift (which must not start at zero).
pub(crate) fn splitmix64(mut value: u64) -> u64 {
    value = value.wrapping_add(0x9e37_79b9_7f4a_7c15);
    value = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    value ^ (value >> 31)
}

/// Fills `page` with the pattern of page `page_idx` under `seed`: a stream of
/// little-endian xorshift64 words. Every page differs from every other and
/// from the all-zero page, so a page missing from the dump or saved at the
/// wrong address cannot pass for the right one.
pub fn fill_page(seed: u64, page_idx: u64, page: &mut [u8]) {
    let mut state = splitmix64(seed ^ splitmix64(page_idx)) | 1;
    for word in page.chunks_exact_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        word.copy_from_slice(&state.to_le_bytes());
    }
}

/// A stretch of planted pages with consecutive indexes that sit in
/// consecutive physical page frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    pub page_idx: u64,
    pub pfn: u64,
    pub n_pages: u64,
}

/// Where the planted pages are, as reported on the console.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Planted {
    pub seed: u64,
    pub n_pages: u64,
    pub runs: Vec<Run>,
}

impl Planted {
    /// Builds the report from the page frame number of each page, in page
    /// order.
    pub fn from_pfns(seed: u64, pfns: &[u64]) -> Planted {
        Planted {
            seed,
            n_pages: pfns.len() as u64,
            runs: runs_of(pfns),
        }
    }

    /// The console lines of the report, begin and end markers included.
    pub fn to_lines(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "{PLANTED_BEGIN} seed={:#x} pages={}",
            self.seed, self.n_pages
        )];
        for chunk in self.runs.chunks(RUNS_PER_LINE) {
            let mut line = String::from(PLANTED_RUNS);
            for run in chunk {
                // Writing to a String cannot fail.
                let _ = write!(line, " {}:{:x}+{}", run.page_idx, run.pfn, run.n_pages);
            }
            lines.push(line);
        }
        lines.push(PLANTED_END.to_string());
        lines
    }

    /// Finds the report in a console log and checks that its runs cover
    /// every page exactly once, in order.
    pub fn parse(log: &str) -> Result<Planted, String> {
        let mut lines = log.lines().map(strip_console_noise);
        let header = lines
            .by_ref()
            .find_map(|line| line.strip_prefix(PLANTED_BEGIN))
            .ok_or_else(|| format!("no `{PLANTED_BEGIN}` line"))?;
        let mut seed = None;
        let mut n_pages = None;
        for field in header.split_whitespace() {
            if let Some(value) = field.strip_prefix("seed=") {
                seed = Some(parse_u64(value).ok_or_else(|| format!("bad seed `{value}`"))?);
            } else if let Some(value) = field.strip_prefix("pages=") {
                n_pages = Some(value.parse().map_err(|_| format!("bad count `{value}`"))?);
            }
        }
        let seed = seed.ok_or("no seed= in the planted header")?;
        let n_pages: u64 = n_pages.ok_or("no pages= in the planted header")?;

        let mut runs = Vec::new();
        let mut next_page_idx = 0;
        let mut ended = false;
        for line in lines {
            if line == PLANTED_END {
                ended = true;
                break;
            }
            let Some(fields) = line.strip_prefix(PLANTED_RUNS) else {
                // Kernel messages may interleave with the report.
                continue;
            };
            for field in fields.split_whitespace() {
                let run = parse_run(field).ok_or_else(|| format!("bad run `{field}`"))?;
                if run.page_idx != next_page_idx || run.n_pages == 0 {
                    return Err(format!(
                        "run `{field}` does not start at page {next_page_idx}"
                    ));
                }
                next_page_idx += run.n_pages;
                runs.push(run);
            }
        }
        if !ended {
            return Err(format!("no `{PLANTED_END}` line"));
        }
        if next_page_idx != n_pages {
            return Err(format!(
                "runs cover {next_page_idx} pages, the header says {n_pages}"
            ));
        }
        Ok(Planted {
            seed,
            n_pages,
            runs,
        })
    }
}

/// The runs of pages with consecutive indexes in consecutive frames, from
/// the frame of each page in page order.
pub(crate) fn runs_of(pfns: &[u64]) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    for (page_idx, &pfn) in (0u64..).zip(pfns) {
        match runs.last_mut() {
            Some(run) if run.pfn + run.n_pages == pfn => run.n_pages += 1,
            _ => runs.push(Run {
                page_idx,
                pfn,
                n_pages: 1,
            }),
        }
    }
    runs
}

/// A serial console line may carry a carriage return at its end.
pub(crate) fn strip_console_noise(line: &str) -> &str {
    line.trim_end_matches('\r')
}

pub(crate) fn parse_run(field: &str) -> Option<Run> {
    let (page_idx, rest) = field.split_once(':')?;
    let (pfn, n_pages) = rest.split_once('+')?;
    Some(Run {
        page_idx: page_idx.parse().ok()?,
        pfn: u64::from_str_radix(pfn, 16).ok()?,
        n_pages: n_pages.parse().ok()?,
    })
}

/// Parses `0x`-prefixed hex or plain decimal.
pub fn parse_u64(text: &str) -> Option<u64> {
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// The value of `name=value` in a kernel command line, if present.
pub fn cmdline_param<'a>(cmdline: &'a str, name: &str) -> Option<&'a str> {
    cmdline.split_whitespace().find_map(|word| {
        word.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('='))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_differ_from_each_other_and_from_zero() {
        let mut first = vec![0u8; PAGE_SIZE];
        let mut second = vec![0u8; PAGE_SIZE];
        fill_page(7, 0, &mut first);
        fill_page(7, 1, &mut second);
        assert_ne!(first, second);
        assert!(first.iter().any(|&byte| byte != 0));
        let mut again = vec![0u8; PAGE_SIZE];
        fill_page(7, 0, &mut again);
        assert_eq!(first, again);
    }

    #[test]
    fn report_round_trips_through_a_noisy_log() {
        let pfns: Vec<u64> = (0..40)
            .map(|i| if i < 20 { 100 + i } else { 7 * i })
            .collect();
        let planted = Planted::from_pfns(0xabc, &pfns);
        assert_eq!(
            planted.runs[0],
            Run {
                page_idx: 0,
                pfn: 100,
                n_pages: 20
            }
        );
        assert_eq!(planted.runs.len(), 21);
        let mut log = String::from("[    0.1] boot\r\n");
        for (line_idx, line) in planted.to_lines().iter().enumerate() {
            log.push_str(line);
            log.push_str("\r\n");
            if line_idx == 1 {
                log.push_str("[    1.0] random: crng init done\r\n");
            }
        }
        assert_eq!(Planted::parse(&log), Ok(planted));
    }

    #[test]
    fn report_with_a_hole_is_rejected() {
        let log = "crashme: planted begin seed=0x1 pages=4\n\
                   crashme: pfns 0:10+2 3:20+1\n\
                   crashme: planted end\n";
        assert!(Planted::parse(log)
            .unwrap_err()
            .contains("does not start at page 2"));
    }

    #[test]
    fn cmdline_params_are_found_by_exact_name() {
        let cmdline = "console=ttyS0 crashme.plant_mib=64 crashme.seed=0x2a\n";
        assert_eq!(cmdline_param(cmdline, PARAM_PLANT_MIB), Some("64"));
        assert_eq!(
            cmdline_param(cmdline, PARAM_SEED).and_then(parse_u64),
            Some(42)
        );
        assert_eq!(cmdline_param(cmdline, "crashme.plant"), None);
    }
}

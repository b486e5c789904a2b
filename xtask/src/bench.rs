//! `cargo xtask bench [--quick] [--runs N]`: how `lifeboat save` compares
//! with makedumpfile and zstd on realistic vmcores, in time, size and
//! memory.
//!
//! 1. Reference vmcores (`reference.rs`), made once and cached under
//!    `target/bench/`: a 2 GiB and an 8 GiB QEMU guest whose memory holds
//!    the same deterministic mix of text, machine code, random data and
//!    zero pages are crashed, captured by lifeboat as in `qemu-test`, and
//!    decompressed to `vmcore-2g` and `vmcore-8g`.
//! 2. Every compressor (`tools.rs`; makedumpfile as `makedumpfile.rs`
//!    finds one with zstd) runs on the same file, read from the
//!    page cache, single-threaded unless said otherwise, N rounds with the
//!    order rotated each round (`measure.rs`); the minimum time counts,
//!    since the machine is shared and noise only ever adds time.
//! 3. A table, then the ratios against the targets (`report.rs`). The bench
//!    reports a missed target; it does not fail on one.
//!
//! `--quick` measures only the 2 GiB vmcore, once. The bench is not part of
//! CI: it takes several minutes, and its figures depend on the machine.

pub(crate) mod makedumpfile;
mod measure;
mod reference;
mod report;
mod tools;

use std::fs;

use anyhow::{bail, Context as _, Result};

use crate::deps;
use crate::dist;
use crate::guest::kernel::{self, Flavour};
use crate::util::{self, target_dir};

/// Rounds when `--runs` is not given.
const DEFAULT_RUNS: usize = 3;

#[derive(Debug)]
struct Options {
    quick: bool,
    runs: usize,
}

/// `cargo xtask makedumpfile`: the makedumpfile the bench compares with,
/// fetched under `target/bench/` when the installed one has no zstd (see
/// `makedumpfile.rs`). It is also the one whose `--dump-dmesg` prints the
/// caller column that `lifeboat dmesg` matches by default, and the printk
/// tests of the dumper crate run it when it is there. Its path goes to
/// standard output, a note about the choice to standard error.
pub fn makedumpfile(args: &[String]) -> Result<()> {
    util::no_arguments("makedumpfile", args)?;
    let (found, note) = makedumpfile::find(&target_dir().join("bench"))?;
    if let Some(note) = note {
        eprintln!("note: {note}");
    }
    eprintln!(
        "makedumpfile {} {}",
        found.version,
        if found.zstd {
            "with zstd"
        } else {
            "without zstd"
        }
    );
    println!("{}", found.program.display());
    Ok(())
}

fn parse_options(args: &[String]) -> Result<Options> {
    let mut quick = false;
    let mut runs = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let runs_value = match arg.as_str() {
            "--quick" => {
                quick = true;
                continue;
            }
            "--runs" => args.next().context("--runs needs a number")?.as_str(),
            other => match other.strip_prefix("--runs=") {
                Some(value) => value,
                None => bail!(
                    "unknown argument `{other}`; usage: cargo xtask bench [--quick] [--runs N]"
                ),
            },
        };
        let n: usize = runs_value
            .parse()
            .ok()
            .filter(|&n| n > 0)
            .with_context(|| format!("--runs {runs_value}: not a positive number"))?;
        runs = Some(n);
    }
    Ok(Options {
        quick,
        // --quick is one run, unless --runs says otherwise.
        runs: runs.unwrap_or(if quick { 1 } else { DEFAULT_RUNS }),
    })
}

pub fn run(args: &[String]) -> Result<()> {
    let options = parse_options(args)?;
    deps::ensure(&[deps::BUILD, deps::QEMU_TEST, deps::BENCH])?;
    let kernel = kernel::fetch(Flavour::Cloud)?;
    println!("kernel: {} ({})", kernel.package, kernel.vmlinuz.display());
    let dist = dist::build()?;

    let specs: &[reference::Spec] = if options.quick {
        &reference::SPECS[..1]
    } else {
        &reference::SPECS
    };
    let mut vmcore_paths = Vec::new();
    for spec in specs {
        vmcore_paths.push(reference::ensure(spec, &dist, &kernel)?);
    }

    let found = tools::detect(&dist.lifeboat, &target_dir().join("bench"))?;
    println!(
        "makedumpfile: {} {} ({})",
        found.makedumpfile.version,
        if found.makedumpfile.zstd {
            "with zstd"
        } else {
            "without zstd"
        },
        found.makedumpfile.program.display()
    );
    for note in &found.notes {
        println!("note: {note}");
    }
    let out_dir = target_dir().join("bench").join("out");
    fs::create_dir_all(&out_dir).with_context(|| format!("cannot create {}", out_dir.display()))?;

    let mut results = Vec::new();
    for (spec, path) in specs.iter().zip(&vmcore_paths) {
        let rounds = match options.runs {
            1 => "1 round".to_string(),
            n => format!("{n} rounds"),
        };
        println!("\n=== measuring {} ({rounds})", path.display());
        // Reading the whole file once puts it in the page cache, and gives
        // the page counts for the report.
        let vmcore = reference::scan(spec.name, path)?;
        println!(
            "{}: {} pages, {} all-zero ({:.1}%)",
            vmcore.name,
            vmcore.n_pages,
            vmcore.n_zero_pages,
            vmcore.zero_percent()
        );
        println!("load average before: {}", load_average());
        let measured = measure::run(&vmcore, &found, options.runs, &out_dir);
        println!("load average after: {}", load_average());
        results.push((vmcore, measured));
    }

    println!();
    for (vmcore, measured) in &results {
        report::print_table(&found, vmcore, measured, options.runs);
        println!();
    }
    report::print_targets(&found, &results);
    Ok(())
}

/// The machine's 1, 5 and 15 minute load averages: on a shared machine
/// they say how much to trust the times.
fn load_average() -> String {
    match fs::read_to_string("/proc/loadavg") {
        Ok(text) => text
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        Err(error) => format!("unknown ({error})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options> {
        let args: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
        parse_options(&args)
    }

    #[test]
    fn options_default_to_three_runs_and_quick_to_one() {
        let options = parse(&[]).unwrap();
        assert!(!options.quick);
        assert_eq!(options.runs, 3);
        let options = parse(&["--quick"]).unwrap();
        assert!(options.quick);
        assert_eq!(options.runs, 1);
        assert_eq!(parse(&["--runs", "5", "--quick"]).unwrap().runs, 5);
        assert_eq!(parse(&["--runs=2"]).unwrap().runs, 2);
    }

    #[test]
    fn bad_options_are_rejected() {
        assert!(parse(&["--runs", "0"]).is_err());
        assert!(parse(&["--runs"]).is_err());
        assert!(parse(&["--fast"])
            .unwrap_err()
            .to_string()
            .contains("unknown argument `--fast`"));
    }
}

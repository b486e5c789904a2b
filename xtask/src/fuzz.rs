//! `cargo xtask fuzz [--secs N] [TARGET...]`: runs the fuzz targets of every
//! parser of untrusted bytes, one after another, each for a set time.
//!
//! New inputs go to a scratch corpus under `target/fuzz/<target>/`, seeded
//! from the small corpus checked in beside each fuzz crate, so the
//! repository's corpora stay small. A crash stops the run and names the
//! input that caused it.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context as _, Result};

use crate::util;

/// A fuzz target: the crate directory holding its cargo-fuzz project, and
/// its name there.
struct Target {
    crate_dir: &'static str,
    name: &'static str,
    what: &'static str,
}

const TARGETS: &[Target] = &[
    Target {
        crate_dir: "dumper",
        name: "elf_headers",
        what: "ELF core headers and notes of a vmcore",
    },
    Target {
        crate_dir: "dumper",
        name: "vmcoreinfo",
        what: "the VMCOREINFO note",
    },
    Target {
        crate_dir: "dumper",
        name: "printk",
        what: "the printk ring buffers (lockless and legacy) inside a vmcore",
    },
    Target {
        crate_dir: "dumper",
        name: "seekable",
        what: "dumps: zstd frames, the seek table, truncated dumps",
    },
    Target {
        crate_dir: "dumper",
        name: "classify",
        what: "struct pages of any layout VMCOREINFO describes, at any dump level",
    },
    Target {
        crate_dir: "blkid",
        name: "device",
        what: "block devices' first bytes: filesystem superblocks, GPT and DOS tables",
    },
    Target {
        crate_dir: "dhcp",
        name: "reply",
        what: "DHCP replies (OFFER, ACK, NAK) from the network",
    },
    Target {
        crate_dir: "initramfs",
        name: "cpio_reader",
        what: "newc cpio archives",
    },
    Target {
        crate_dir: "initramfs",
        name: "modinfo",
        what: "kernel modules' ELF section tables and .modinfo",
    },
];

pub fn run(args: &[String]) -> Result<()> {
    let mut secs = 600u64;
    let mut names = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--secs" => {
                let value = args.next().context("--secs needs a number of seconds")?;
                secs = value
                    .parse()
                    .with_context(|| format!("--secs {value}: not a number of seconds"))?;
            }
            "--list" => {
                for target in TARGETS {
                    println!(
                        "{:12} {}/fuzz  {}",
                        target.name, target.crate_dir, target.what
                    );
                }
                return Ok(());
            }
            name => names.push(name.to_owned()),
        }
    }
    let selected: Vec<&Target> = if names.is_empty() {
        TARGETS.iter().collect()
    } else {
        let mut selected = Vec::new();
        for name in &names {
            match TARGETS.iter().find(|t| t.name == name) {
                Some(target) => selected.push(target),
                None => bail!("no fuzz target `{name}`; `cargo xtask fuzz --list` names them"),
            }
        }
        selected
    };
    ensure_tools()?;
    for target in selected {
        eprintln!("\n=== fuzz {} for {secs} s: {}", target.name, target.what);
        let scratch = util::target_dir().join("fuzz").join(target.name);
        let corpus = scratch.join("corpus");
        let artifacts = scratch.join("artifacts");
        std::fs::create_dir_all(&corpus)?;
        std::fs::create_dir_all(&artifacts)?;
        let fuzz_dir = util::project_root().join(target.crate_dir);
        let seeds: PathBuf = fuzz_dir.join("fuzz/corpus").join(target.name);
        util::run(
            Command::new("cargo")
                .current_dir(&fuzz_dir)
                .args(["+nightly", "fuzz", "run", target.name])
                .arg(&corpus)
                .arg(&seeds)
                .arg("--")
                .arg(format!("-max_total_time={secs}"))
                .arg(format!("-artifact_prefix={}/", artifacts.display()))
                .arg("-print_final_stats=1"),
        )
        .with_context(|| {
            format!(
                "fuzz target {} failed; the input is in {}",
                target.name,
                artifacts.display()
            )
        })?;
    }
    Ok(())
}

/// cargo-fuzz needs a nightly toolchain and the `cargo fuzz` subcommand;
/// both come from the registries CI can reach.
fn ensure_tools() -> Result<()> {
    let nightly = Command::new("rustup")
        .args(["run", "nightly", "rustc", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !nightly {
        util::run(Command::new("rustup").args([
            "toolchain",
            "install",
            "nightly",
            "--profile",
            "minimal",
        ]))?;
    }
    let fuzz = Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !fuzz {
        util::run(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]))?;
    }
    Ok(())
}

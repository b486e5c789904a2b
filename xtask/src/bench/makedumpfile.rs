//! The makedumpfile the bench compares with: the installed one if it was
//! built with zstd (`-z`, the target of lifeboat's default level), else
//! Debian 13's (trixie) package, which is, unpacked under `target/bench/`.
//!
//! Debian 12's makedumpfile 1.7.2 is built without zstd, so `-z` silently
//! does not compress. Trixie's 1.7.6 is built with it and runs on Debian 12
//! with Debian 12's libraries (it needs glibc 2.34 and old libelf, libdw and
//! libzstd symbols only). It comes from the same Debian archive, through
//! apt with a private sources list, lists and cache, so the machine's apt
//! setup is left alone. When that fails (no network, an Ubuntu machine
//! without Debian's keyring), the bench says why and uses the installed
//! makedumpfile without `-z`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _, Result};

use super::tools::help_text;
use crate::util;

/// The suite whose makedumpfile is built with zstd.
const SUITE: &str = "trixie";
const ARCHIVE: &str = "http://deb.debian.org/debian";
const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// A makedumpfile to run.
#[derive(Clone, Debug)]
pub struct Makedumpfile {
    pub program: PathBuf,
    /// `makedumpfile -v`'s version, e.g. `1.7.6`.
    pub version: String,
    pub zstd: bool,
}

/// The makedumpfile to compare with, and, when it is not the installed
/// one or has no zstd, a note saying so.
pub fn find(bench_dir: &Path) -> Result<(Makedumpfile, Option<String>)> {
    let installed = probe(Path::new("makedumpfile"))?;
    if installed.zstd {
        return Ok((installed, None));
    }
    let dir = bench_dir.join(format!("makedumpfile-{SUITE}"));
    match fetch(&dir).and_then(|program| probe(&program)) {
        Ok(fetched) if fetched.zstd => {
            let note = format!(
                "the installed makedumpfile {} is built without zstd; all makedumpfile runs use \
                 Debian {SUITE}'s {} ({}), which has it",
                installed.version,
                fetched.version,
                fetched.program.display()
            );
            Ok((fetched, Some(note)))
        }
        Ok(fetched) => Ok((
            installed,
            Some(format!(
                "neither the installed makedumpfile nor Debian {SUITE}'s {} has zstd: -z is not \
                 measured, lifeboat's default is compared with -c (zlib) instead",
                fetched.version
            )),
        )),
        Err(error) => Ok((
            installed,
            Some(format!(
                "the installed makedumpfile has no zstd and Debian {SUITE}'s could not be \
                 fetched ({error:#}): -z is not measured, lifeboat's default is compared with \
                 -c (zlib) instead"
            )),
        )),
    }
}

/// What `program` is and whether it has zstd (its `--help` and `-v` exit
/// non-zero; their text is what counts).
fn probe(program: &Path) -> Result<Makedumpfile> {
    let help = help_text(Command::new(program).arg("--help"))?;
    let version = help_text(Command::new(program).arg("-v"))?;
    Ok(Makedumpfile {
        program: program.to_path_buf(),
        version: parse_version(&version).unwrap_or_else(|| "(unknown version)".into()),
        zstd: has_zstd(&help),
    })
}

/// Downloads and unpacks the suite's makedumpfile under `dir`, once.
fn fetch(dir: &Path) -> Result<PathBuf> {
    let program = dir.join("root/usr/bin/makedumpfile");
    if program.is_file() {
        return Ok(program);
    }
    if !Path::new(KEYRING).is_file() {
        bail!("{KEYRING} is missing (package debian-archive-keyring)");
    }
    if dir.exists() {
        fs::remove_dir_all(dir).with_context(|| format!("cannot clear {}", dir.display()))?;
    }
    let parts = dir.join("sources");
    let lists = dir.join("lists");
    let cache = dir.join("cache");
    for path in [
        &parts,
        &lists.join("partial"),
        &cache.join("archives/partial"),
    ] {
        fs::create_dir_all(path).with_context(|| format!("cannot create {}", path.display()))?;
    }
    fs::write(
        parts.join(format!("{SUITE}.sources")),
        format!(
            "Types: deb\nURIs: {ARCHIVE}\nSuites: {SUITE}\nComponents: main\nSigned-By: {KEYRING}\n"
        ),
    )?;
    let apt = |tool: &str| {
        let mut command = Command::new(tool);
        command
            .arg("-o")
            .arg("Dir::Etc::SourceList=/dev/null")
            .arg("-o")
            .arg(format!("Dir::Etc::SourceParts={}", parts.display()))
            .arg("-o")
            .arg(format!("Dir::State::Lists={}", lists.display()))
            .arg("-o")
            .arg(format!("Dir::Cache={}", cache.display()))
            .current_dir(dir);
        command
    };
    println!("fetching makedumpfile from Debian {SUITE} (the installed one has no zstd)");
    util::run(apt("apt-get").args(["-q", "update"]))?;
    util::run(apt("apt-get").args(["-q", "download", "makedumpfile"]))?;
    let deb = fs::read_dir(dir)?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .find(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("makedumpfile_") && name.ends_with(".deb"))
        })
        .context("apt-get download left no makedumpfile_*.deb")?;
    util::run(
        Command::new("dpkg-deb")
            .arg("-x")
            .arg(&deb)
            .arg(dir.join("root")),
    )?;
    if !program.is_file() {
        bail!("{} has no usr/bin/makedumpfile", deb.display());
    }
    Ok(program)
}

/// makedumpfile's help ends its first lines with `zstd support:` and then
/// `enabled` or `disabled (...)`.
pub fn has_zstd(help: &str) -> bool {
    let mut lines = help.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "zstd support:" {
            return lines
                .next()
                .is_some_and(|status| status.trim().starts_with("enabled"));
        }
    }
    false
}

/// The version in `makedumpfile: version 1.7.6 (released on ...)`.
fn parse_version(text: &str) -> Option<String> {
    let rest = text.split("version ").nth(1)?;
    let version = rest.split_whitespace().next()?;
    Some(version.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBIAN_12_HELP: &str = "\nLZO support:\n  enabled\nsnappy support:\n  \
        disabled ('-p' option will be ignored.)\nzstd support:\n  disabled ('-z' option will \
        be ignored.)\n\nUsage:\n";

    #[test]
    fn zstd_support_is_read_from_the_help() {
        assert!(!has_zstd(DEBIAN_12_HELP));
        let with_zstd = DEBIAN_12_HELP.replace(
            "zstd support:\n  disabled ('-z' option will be ignored.)",
            "zstd support:\n  enabled",
        );
        assert!(has_zstd(&with_zstd));
        assert!(!has_zstd("Usage: makedumpfile\n"));
    }

    #[test]
    fn the_version_is_read_from_dash_v() {
        let cases: &[(&str, Option<&str>)] = &[
            (
                "makedumpfile: version 1.7.2 (released on 20 Oct 2022)\nlzo\tenabled\n",
                Some("1.7.2"),
            ),
            ("makedumpfile: version 1.7.6\n", Some("1.7.6")),
            ("makedumpfile: unknown option\n", None),
        ];
        for &(text, expected) in cases {
            assert_eq!(parse_version(text).as_deref(), expected, "{text:?}");
        }
    }
}

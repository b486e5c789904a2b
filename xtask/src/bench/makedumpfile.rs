//! The makedumpfile the bench compares with: the installed one if it was
//! built with zstd (`-z`, the target of lifeboat's default level), else
//! Debian 13's (trixie) package, unpacked under `target/bench/`.
//!
//! Debian 12's makedumpfile 1.7.2 is built without zstd, so `-z` silently
//! does not compress. Trixie's 1.7.6 is built with it and runs on Debian 12
//! with Debian 12's libraries (it needs glibc 2.34 and old libelf, libdw and
//! libzstd symbols only). It is also the makedumpfile whose `--dump-dmesg`
//! prints the printk caller column, which `lifeboat dmesg` matches by
//! default (`cargo xtask makedumpfile` fetches it and prints its path).
//!
//! It comes from the archive the machine's apt already uses, with the
//! suite swapped for trixie (`crate::apt`). When that fails (no network,
//! an Ubuntu machine whose archive has no trixie), the bench says why and
//! uses the installed makedumpfile without `-z`.
//!
//! The dump levels of 6.12 kernels are compared with a later suite's
//! makedumpfile ([`fetch_knows_6_12`]).

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _, Result};

use super::tools::help_text;
use crate::apt::SuiteApt;
use crate::util;

/// The suite whose makedumpfile is built with zstd.
const SUITE: &str = "trixie";
/// The first suite whose makedumpfile knows 6.12 kernels' page types.
const SUITE_6_12: &str = "forky";

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
    match fetch(&suite_dir(bench_dir)).and_then(|program| probe(&program)) {
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

/// The suite's makedumpfile (current upstream, which prints the printk
/// caller column), fetched under `bench_dir` unless it already is.
pub fn fetch_current(bench_dir: &Path) -> Result<PathBuf> {
    fetch(&suite_dir(bench_dir))
}

/// The version `makedumpfile -v` of `program` prints, e.g. `1.7.2`.
pub fn version_of(program: &Path) -> Result<String> {
    let text = help_text(Command::new(program).arg("-v"))?;
    parse_version(&text).with_context(|| format!("`{} -v` prints no version", program.display()))
}

/// Whether makedumpfile `version` prints the printk caller column in
/// `--dump-dmesg`: 1.7.5 and later do, as `lifeboat dmesg` does by
/// default; earlier ones print what `lifeboat dmesg --no-caller` does.
pub fn prints_caller_column(version: &str) -> bool {
    // Development versions are `1.7.5++`: each part's leading digits count.
    let numbers: Vec<u32> = version
        .split('.')
        .map(|part| {
            let digits = part.len() - part.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            part[..digits].parse().unwrap_or(0)
        })
        .collect();
    numbers.as_slice() >= [1, 7, 5].as_slice()
}

/// The makedumpfile that recognises the page types of 6.12 and later
/// kernels, fetched under `bench_dir` unless it already is: Debian
/// forky's (1.7.8 when this was written), run by forky's own dynamic
/// loader with forky's C library (see [`fetch_with_own_libc`]).
///
/// Trixie's 1.7.6 reads the page type of a 6.12 kernel by masks it
/// derives from the `PAGE_*_MAPCOUNT_VALUE` numbers, which 6.12 no longer
/// allows: it sees no page as free (makedumpfile issue #16, fixed in
/// 1.7.7). No later makedumpfile is built for a suite whose C library a
/// Debian 12 machine has, and the archive proxy here serves no source
/// package of makedumpfile to build one from.
pub fn fetch_knows_6_12(bench_dir: &Path) -> Result<PathBuf> {
    fetch_with_own_libc(
        &bench_dir.join(format!("makedumpfile-{SUITE_6_12}")),
        SUITE_6_12,
    )
}

fn suite_dir(bench_dir: &Path) -> PathBuf {
    bench_dir.join(format!("makedumpfile-{SUITE}"))
}

fn unpacked_program(dir: &Path) -> PathBuf {
    dir.join("root/usr/bin/makedumpfile")
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

/// Downloads `packages` of `suite` and unpacks them into `dir/root`,
/// with the `.deb`s deleted after; an earlier, partial `dir` is cleared
/// first.
fn fetch_packages(dir: &Path, suite: &str, packages: &[&str]) -> Result<()> {
    if dir.exists() {
        fs::remove_dir_all(dir).with_context(|| format!("cannot clear {}", dir.display()))?;
    }
    let apt = SuiteApt::open(suite)?;
    for package in packages {
        println!("fetching {package} from Debian {}", apt.suite());
        let (_, deb) = apt.download(|_| Ok(package.to_string()), dir)?;
        util::run(
            Command::new("dpkg-deb")
                .arg("-x")
                .arg(&deb)
                .arg(dir.join("root")),
        )?;
        fs::remove_file(&deb).with_context(|| format!("cannot delete {}", deb.display()))?;
    }
    Ok(())
}

/// Downloads and unpacks the suite's makedumpfile under `dir`, once, and
/// returns its path. It runs with the machine's C library.
fn fetch(dir: &Path) -> Result<PathBuf> {
    let program = unpacked_program(dir);
    if program.is_file() {
        return Ok(program);
    }
    println!("fetching makedumpfile from Debian {SUITE} (the installed one has no zstd)");
    fetch_packages(dir, SUITE, &["makedumpfile"])?;
    if !program.is_file() {
        bail!("Debian {SUITE}'s makedumpfile package has no usr/bin/makedumpfile");
    }
    Ok(program)
}

/// The C library's directory in a Debian amd64 package, and its loader.
const LIBC_DIR: &str = "usr/lib/x86_64-linux-gnu";
const LOADER: &str = "ld-linux-x86-64.so.2";

/// Downloads and unpacks `suite`'s makedumpfile and C library (`libc6`)
/// under `dir`, once, and returns `dir/makedumpfile`: a script that runs
/// the unpacked program with the unpacked loader and C library, for a
/// makedumpfile built against a newer C library than the machine's. Its
/// other libraries (libdw, libelf, lzo, zstd, zlib) are the machine's:
/// their interfaces have not changed, and makedumpfile's package makes
/// Debian 12's versions of them installed.
fn fetch_with_own_libc(dir: &Path, suite: &str) -> Result<PathBuf> {
    let script = dir.join("makedumpfile");
    if script.is_file() {
        return Ok(script);
    }
    fetch_packages(dir, suite, &["makedumpfile", "libc6"])?;
    let root = dir.join("root");
    for path in [unpacked_program(dir), root.join(LIBC_DIR).join(LOADER)] {
        if !path.is_file() {
            bail!("Debian {suite}'s packages have no {}", path.display());
        }
    }
    let text = format!(
        "#!/bin/sh\n\
         # Debian {suite}'s makedumpfile, with {suite}'s C library.\n\
         root=\"$(dirname \"$0\")/root\"\n\
         exec \"$root/{LIBC_DIR}/{LOADER}\" --library-path \"$root/{LIBC_DIR}\" \
         \"$root/usr/bin/makedumpfile\" \"$@\"\n"
    );
    let partial = dir.join("makedumpfile.partial");
    fs::write(&partial, text).with_context(|| format!("cannot write {}", partial.display()))?;
    fs::set_permissions(&partial, fs::Permissions::from_mode(0o755))?;
    version_of(&partial).with_context(|| format!("Debian {suite}'s makedumpfile does not run"))?;
    fs::rename(&partial, &script)?;
    Ok(script)
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
    fn the_caller_column_comes_with_1_7_5() {
        let cases = [
            ("1.7.2", false),
            ("1.7.4", false),
            ("1.7.5", true),
            ("1.7.6", true),
            ("1.7.10", true),
            ("1.7.5++", true),
            ("1.7.4++", false),
            ("1.8", true),
            ("2.0.0", true),
            ("1.6.9", false),
            ("(unknown version)", false),
        ];
        for (version, expected) in cases {
            assert_eq!(prints_caller_column(version), expected, "{version}");
        }
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

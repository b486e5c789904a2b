//! Packages of another suite of the Debian archive than the one the machine
//! runs: Debian 13's (trixie) kernel and makedumpfile, or a later suite's
//! makedumpfile, on a Debian 12 machine.
//!
//! They come from the archive the machine's apt already uses: the `deb`
//! entry of its sources for the running suite (e.g. `bookworm`) with
//! component `main`, with the suite swapped and every option
//! (`Signed-By`, `Architectures`, ...) kept. A machine behind a mirror or a
//! proxy thus fetches through it, as it fetches everything else. apt runs
//! with a private sources list, state and cache under
//! `target/apt/<suite>/`, so the machine's apt setup is left alone. Only
//! binary packages are asked for: an archive proxy need not serve source
//! packages, and one that serves this machine does not serve all of them.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _, Result};

use crate::util::{self, target_dir};

/// apt for one other suite, with its own sources list, state and cache.
pub struct SuiteApt {
    suite: String,
    /// `target/apt/<suite>`: `apt.conf`, `sources/`, `state/`, `cache/`.
    dir: PathBuf,
}

impl SuiteApt {
    /// The private apt of `suite`, set up from the machine's sources; its
    /// package lists are fetched the first time (`apt-get update`), and
    /// kept: [`SuiteApt::download`] refreshes them when a package they
    /// name has left the archive.
    pub fn open(suite: &str) -> Result<SuiteApt> {
        let os_release =
            fs::read_to_string(OS_RELEASE).with_context(|| format!("cannot read {OS_RELEASE}"))?;
        let running = running_suite(&os_release)
            .with_context(|| format!("{OS_RELEASE} has no VERSION_CODENAME"))?;
        let sources = machine_sources()?;
        let archive = main_archive(&sources, &running).with_context(|| {
            format!(
                "no `deb` entry of the apt sources ({SOURCE_LIST}, {SOURCE_PARTS}/*.list, \
                 *.sources) has suite {running} and component main"
            )
        })?;
        let apt = SuiteApt {
            suite: suite.to_string(),
            dir: target_dir().join("apt").join(suite),
        };
        for path in [
            apt.dir.join("sources"),
            apt.dir.join("state/lists/partial"),
            apt.dir.join("cache/archives/partial"),
        ] {
            fs::create_dir_all(&path)
                .with_context(|| format!("cannot create {}", path.display()))?;
        }
        let list = apt.dir.join("sources").join(format!("{suite}.sources"));
        let derived = derived_source(archive, suite);
        let changed = fs::read_to_string(&list).ok().as_deref() != Some(derived.as_str());
        fs::write(&list, &derived).with_context(|| format!("cannot write {}", list.display()))?;
        let config = apt.dir.join("apt.conf");
        fs::write(&config, PRIVATE_APT_CONF)
            .with_context(|| format!("cannot write {}", config.display()))?;
        if changed || !apt.has_lists()? {
            println!(
                "apt for Debian {suite}: {} as the apt sources name it for {running}",
                archive.uris.join(" ")
            );
            apt.update()?;
        }
        Ok(apt)
    }

    pub fn suite(&self) -> &str {
        &self.suite
    }

    /// Whether an update left package lists (`..._Packages`, compressed
    /// as the machine's apt configuration says: `.lz4` on Debian's
    /// container images).
    fn has_lists(&self) -> Result<bool> {
        let lists = self.dir.join("state/lists");
        Ok(fs::read_dir(&lists)
            .with_context(|| format!("cannot list {}", lists.display()))?
            .filter_map(|entry| entry.ok())
            .any(|entry| entry.file_name().to_string_lossy().contains("_Packages")))
    }

    /// `apt-get` or `apt-cache` reading only the private sources, state
    /// and cache. Its configuration (proxies, keyrings in trusted.gpg.d)
    /// and dpkg's status, which `Dir::State::status` names by absolute
    /// path, stay the machine's; `update` and `download` write neither.
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command
            .arg("-q")
            .arg("-c")
            .arg(self.dir.join("apt.conf"))
            .arg("-o")
            .arg("Dir::Etc::SourceList=/dev/null")
            .arg("-o")
            .arg(format!(
                "Dir::Etc::SourceParts={}",
                self.dir.join("sources").display()
            ))
            .arg("-o")
            .arg(format!("Dir::State={}", self.dir.join("state").display()))
            .arg("-o")
            .arg(format!("Dir::Cache={}", self.dir.join("cache").display()));
        command
    }

    pub fn update(&self) -> Result<()> {
        util::run(self.command("apt-get").arg("update"))
    }

    /// `apt-cache depends PACKAGE`: the packages it depends on, the first
    /// of each alternative, in order.
    pub fn depends(&self, package: &str) -> Result<Vec<String>> {
        let text = util::output(self.command("apt-cache").args(["depends", package]))?;
        Ok(text
            .lines()
            .filter_map(|line| line.trim().strip_prefix("Depends:"))
            .map(|name| name.trim().to_string())
            .collect())
    }

    /// Downloads the package `resolve` names (the current package a
    /// metapackage depends on, or a fixed name) into `into`; returns its
    /// name and `.deb`. When the lists name a package the archive no
    /// longer has (the suite moved on since they were fetched), they are
    /// fetched again, the name resolved again and the download tried once
    /// more.
    pub fn download(
        &self,
        resolve: impl Fn(&SuiteApt) -> Result<String>,
        into: &Path,
    ) -> Result<(String, PathBuf)> {
        fs::create_dir_all(into).with_context(|| format!("cannot create {}", into.display()))?;
        let download = |package: &str| -> Result<PathBuf> {
            util::run(
                self.command("apt-get")
                    .args(["download", package])
                    .current_dir(into),
            )?;
            find_deb(into, package)
        };
        let package = resolve(self)?;
        match download(&package) {
            Ok(deb) => Ok((package, deb)),
            Err(error) => {
                println!(
                    "{error:#}; fetching Debian {}'s package lists again",
                    self.suite
                );
                self.update()?;
                let package = resolve(self)?;
                let deb = download(&package)?;
                Ok((package, deb))
            }
        }
    }
}

/// The `.deb` of `package` that `apt-get download` left in `dir`
/// (`<package>_<version>_<arch>.deb`).
pub fn find_deb(dir: &Path, package: &str) -> Result<PathBuf> {
    let prefix = format!("{package}_");
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.starts_with(&prefix) && name.ends_with(".deb") {
            return Ok(dir.join(name));
        }
    }
    bail!(
        "apt-get download left no {prefix}*.deb in {}",
        dir.display()
    )
}

/// Where apt reads its sources: the one-line list and the directory of
/// `*.list` (one-line) and `*.sources` (deb822) files.
const SOURCE_LIST: &str = "/etc/apt/sources.list";
const SOURCE_PARTS: &str = "/etc/apt/sources.list.d";
/// Names the running suite in VERSION_CODENAME.
const OS_RELEASE: &str = "/etc/os-release";

/// Read after the machine's apt configuration, which it otherwise keeps.
/// The hooks that follow an update refresh the machine's own caches
/// (AppStream, PackageKit) and have nothing to do with private lists; the
/// AppStream metadata that a desktop adds to every update and the
/// translated descriptions are megabytes no download here needs. Downloads go to a directory of the invoking user,
/// which apt's `_apt` sandbox user cannot write: apt would then warn and
/// download as that user, which this says outright.
const PRIVATE_APT_CONF: &str = "\
#clear APT::Update::Pre-Invoke;
#clear APT::Update::Post-Invoke;
#clear APT::Update::Post-Invoke-Success;
Acquire::IndexTargets::deb::DEP-11::DefaultEnabled \"false\";
Acquire::Languages \"none\";
APT::Sandbox::User \"\";
";

/// The running suite, VERSION_CODENAME of os-release(5), e.g. `bookworm`.
fn running_suite(os_release: &str) -> Option<String> {
    os_release.lines().find_map(|line| {
        let value = line.trim().strip_prefix("VERSION_CODENAME=")?;
        let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
        (!value.is_empty()).then(|| value.to_string())
    })
}

/// One `deb` entry of apt's sources: a line of a one-line `.list` file or
/// a stanza of a deb822 `.sources` file (sources.list(5)).
#[derive(Clone, Debug, PartialEq, Eq)]
struct AptSource {
    uris: Vec<String>,
    suites: Vec<String>,
    components: Vec<String>,
    /// Every other field, as deb822 names it (`Signed-By`,
    /// `Architectures`, ...) with its value in deb822 form, continuation
    /// lines included: the derived entry keeps them all, since the other
    /// suite comes from the same archive with the same keys and settings.
    options: Vec<(String, String)>,
}

/// The sources apt reads, in its order: the one-line list, then the files
/// of the parts directory sorted by name; other files there are ignored,
/// as apt ignores them.
fn machine_sources() -> Result<Vec<AptSource>> {
    let mut sources = Vec::new();
    match fs::read_to_string(SOURCE_LIST) {
        Ok(text) => sources.extend(parse_one_line(&text)),
        // A machine that has moved to deb822 has no sources.list at all.
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error).with_context(|| format!("cannot read {SOURCE_LIST}")),
    }
    let mut parts: Vec<PathBuf> = match fs::read_dir(SOURCE_PARTS) {
        Ok(entries) => entries
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .collect(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(error) => return Err(error).with_context(|| format!("cannot read {SOURCE_PARTS}")),
    };
    parts.sort();
    for path in parts {
        let parse = match path.extension().and_then(|ext| ext.to_str()) {
            Some("list") => parse_one_line,
            Some("sources") => parse_deb822,
            _ => continue,
        };
        let text =
            fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        sources.extend(parse(&text));
    }
    Ok(sources)
}

/// The `deb` lines of a one-line sources file:
/// `deb [opt=value ...] URI SUITE [COMPONENT...]`, `#` starting a comment
/// anywhere on a line. Options are renamed to their deb822 fields and
/// their comma-separated lists made space-separated; the `+=` and `-=`
/// forms, which adjust a default, have no deb822 form and are dropped.
fn parse_one_line(text: &str) -> Vec<AptSource> {
    let mut sources = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        let Some(rest) = line.strip_prefix("deb") else {
            continue;
        };
        // `deb-src` and the like are other types.
        if !rest.starts_with([' ', '\t', '[']) {
            continue;
        }
        let mut rest = rest.trim_start();
        let mut options = Vec::new();
        if let Some(bracketed) = rest.strip_prefix('[') {
            let Some((inside, after)) = bracketed.split_once(']') else {
                continue;
            };
            for option in inside.split_whitespace() {
                let Some((name, value)) = option.split_once('=') else {
                    continue;
                };
                if name.ends_with(['+', '-']) {
                    continue;
                }
                options.push((deb822_field(name), value.replace(',', " ")));
            }
            rest = after;
        }
        let mut words = rest.split_whitespace();
        let (Some(uri), Some(suite)) = (words.next(), words.next()) else {
            continue;
        };
        sources.push(AptSource {
            uris: vec![uri.to_string()],
            suites: vec![suite.to_string()],
            components: words.map(str::to_string).collect(),
            options,
        });
    }
    sources
}

/// The deb822 field a one-line option stands for: the option name with
/// each dash-separated word capitalised, except for the three whose names
/// differ.
fn deb822_field(option: &str) -> String {
    match option {
        "arch" => "Architectures".into(),
        "lang" => "Languages".into(),
        "target" => "Targets".into(),
        _ => option
            .split('-')
            .map(|word| {
                let mut chars = word.chars();
                match chars.next() {
                    Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                    None => String::new(),
                }
            })
            .collect::<Vec<_>>()
            .join("-"),
    }
}

/// The `deb` stanzas of a deb822 sources file: stanzas separated by blank
/// lines, `#` lines ignored, a line starting with white space continuing
/// the field before it, field names in any case. A stanza with
/// `Enabled: no` is skipped.
fn parse_deb822(text: &str) -> Vec<AptSource> {
    let mut sources = Vec::new();
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.lines().chain([""]) {
        if line.starts_with('#') {
            continue;
        }
        if line.trim().is_empty() {
            sources.extend(deb822_stanza(&fields));
            fields.clear();
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = fields.last_mut() {
                value.push('\n');
                value.push_str(line);
            }
        } else if let Some((name, value)) = line.split_once(':') {
            fields.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    sources
}

fn deb822_stanza(fields: &[(String, String)]) -> Option<AptSource> {
    let words = |name: &str| -> Vec<String> {
        fields
            .iter()
            .filter(|(field, _)| field.eq_ignore_ascii_case(name))
            .flat_map(|(_, value)| value.split_whitespace().map(str::to_string))
            .collect()
    };
    if !words("Types").iter().any(|kind| kind == "deb") {
        return None;
    }
    if words("Enabled")
        .first()
        .is_some_and(|enabled| enabled == "no")
    {
        return None;
    }
    const OWN: [&str; 5] = ["Types", "URIs", "Suites", "Components", "Enabled"];
    Some(AptSource {
        uris: words("URIs"),
        suites: words("Suites"),
        components: words("Components"),
        options: fields
            .iter()
            .filter(|(field, _)| !OWN.iter().any(|own| field.eq_ignore_ascii_case(own)))
            .cloned()
            .collect(),
    })
}

/// The entry of the running suite's main archive: `deb`, the running suite
/// itself among its suites (not `-security`, `-updates` or `-backports`,
/// which are other archives or only hold the newest fixes), component
/// `main`. Another vendor's repository may use the same suite name; the
/// Debian archive's path ends in `/debian` on every mirror and proxy, so
/// an entry whose URI does is preferred, else the first in apt's order.
fn main_archive<'a>(sources: &'a [AptSource], running: &str) -> Option<&'a AptSource> {
    let candidates: Vec<&AptSource> = sources
        .iter()
        .filter(|source| {
            !source.uris.is_empty()
                && source.suites.iter().any(|suite| suite == running)
                && source
                    .components
                    .iter()
                    .any(|component| component == "main")
        })
        .collect();
    let debian_path = |source: &&&AptSource| {
        source
            .uris
            .iter()
            .any(|uri| uri.trim_end_matches('/').ends_with("/debian"))
    };
    candidates
        .iter()
        .find(debian_path)
        .or(candidates.first())
        .copied()
}

/// The deb822 stanza of `archive` with `suite` as its only suite and
/// `main` as its only component.
fn derived_source(archive: &AptSource, suite: &str) -> String {
    let mut text = format!(
        "Types: deb\nURIs: {}\nSuites: {suite}\nComponents: main\n",
        archive.uris.join(" ")
    );
    for (name, value) in &archive.options {
        // A value that starts on the next line (an embedded key) leaves
        // the field's own line empty.
        let space = if value.starts_with('\n') { "" } else { " " };
        text.push_str(&format!("{name}:{space}{value}\n"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source as the tests spell it: URIs, suites, components, options.
    fn source(
        uris: &[&str],
        suites: &[&str],
        components: &[&str],
        options: &[(&str, &str)],
    ) -> AptSource {
        let strings = |items: &[&str]| items.iter().map(|item| item.to_string()).collect();
        AptSource {
            uris: strings(uris),
            suites: strings(suites),
            components: strings(components),
            options: options
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
        }
    }

    /// Files as a machine has them, in apt's order, and the entry that
    /// must be picked for bookworm (`None`: no usable entry).
    #[test]
    fn the_main_archive_is_found_in_the_apt_sources() {
        const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";
        const EMBEDDED_KEY: &str = "\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n \
            mQINBGPL0BUBEADmW5NdOOHwPIJlgPu6JDcKw/NZJPR8lsD3K87ZM18gzyQZJD+w\n \
            -----END PGP PUBLIC KEY BLOCK-----";
        type Files<'a> = &'a [(&'a str, &'a str)];
        let cases: Vec<(&str, Files, Option<AptSource>)> = vec![
            (
                "a Debian 12 container: deb822, a comment inside the stanza, updates beside \
                 the suite, security in its own stanza",
                &[(
                    "debian.sources",
                    "Types: deb\n\
                     # a snapshot of the archive\n\
                     URIs: http://mirror.example.org/debian\n\
                     Suites: bookworm bookworm-updates\n\
                     Components: main\n\
                     Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\
                     \n\
                     Types: deb\n\
                     URIs: http://mirror.example.org/debian-security\n\
                     Suites: bookworm-security\n\
                     Components: main\n\
                     Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n",
                )],
                Some(source(
                    &["http://mirror.example.org/debian"],
                    &["bookworm", "bookworm-updates"],
                    &["main"],
                    &[("Signed-By", KEYRING)],
                )),
            ),
            (
                "one-line: security and updates first, deb-src and a commented line skipped",
                &[(
                    "sources.list",
                    "# deb http://old.example.org/debian bookworm main\n\
                     deb http://mirror.example.org/debian-security bookworm-security main\n\
                     deb http://mirror.example.org/debian bookworm-updates main\n\
                     deb-src http://mirror.example.org/debian bookworm main\n\
                     deb http://mirror.example.org/debian/ bookworm main contrib non-free-firmware # the archive\n",
                )],
                Some(source(
                    &["http://mirror.example.org/debian/"],
                    &["bookworm"],
                    &["main", "contrib", "non-free-firmware"],
                    &[],
                )),
            ),
            (
                "one-line options, with and without spaces inside the brackets",
                &[(
                    "sources.list",
                    "deb [ arch=amd64,i386 trusted=yes ] http://proxy.example.org:3142/debian bookworm-backports main\n\
                     deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg arch=amd64 lang-=en] http://proxy.example.org:3142/debian bookworm main\n",
                )],
                Some(source(
                    &["http://proxy.example.org:3142/debian"],
                    &["bookworm"],
                    &["main"],
                    &[("Signed-By", KEYRING), ("Architectures", "amd64")],
                )),
            ),
            (
                "a vendor's repository with the same suite, earlier in apt's order",
                &[
                    (
                        "sources.list",
                        "deb [signed-by=/usr/share/keyrings/vendor.gpg] https://packages.example.com/debian/12/prod bookworm main\n",
                    ),
                    (
                        "debian.sources",
                        "Types: deb deb-src\nURIs: http://mirror.example.org/debian\nSuites: bookworm\nComponents: main contrib\n",
                    ),
                ],
                Some(source(
                    &["http://mirror.example.org/debian"],
                    &["bookworm"],
                    &["main", "contrib"],
                    &[],
                )),
            ),
            (
                "without a /debian path, the first entry of the suite",
                &[(
                    "sources.list",
                    "deb http://apt.example.org/bookworm-updates bookworm-updates main\n\
                     deb http://apt.example.org/archive bookworm contrib\n\
                     deb http://apt.example.org/archive bookworm main\n\
                     deb http://apt.example.org/other bookworm main\n",
                )],
                Some(source(&["http://apt.example.org/archive"], &["bookworm"], &["main"], &[])),
            ),
            (
                "deb822: a disabled stanza, a deb-src stanza, lower-case fields, two URIs, \
                 an embedded key",
                &[(
                    "debian.sources",
                    "Types: deb\nURIs: http://disabled.example.org/debian\nSuites: bookworm\n\
                     Components: main\nEnabled: no\n\
                     \n\
                     Types: deb-src\nURIs: http://src.example.org/debian\nSuites: bookworm\n\
                     Components: main\n\
                     \n\n\
                     types: deb\n\
                     uris: http://a.example.org/debian\n  http://b.example.org/debian\n\
                     suites: bookworm\n\
                     components: main\n\
                     Signed-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n \
                     mQINBGPL0BUBEADmW5NdOOHwPIJlgPu6JDcKw/NZJPR8lsD3K87ZM18gzyQZJD+w\n \
                     -----END PGP PUBLIC KEY BLOCK-----\n",
                )],
                Some(source(
                    &["http://a.example.org/debian", "http://b.example.org/debian"],
                    &["bookworm"],
                    &["main"],
                    &[("Signed-By", EMBEDDED_KEY)],
                )),
            ),
            (
                "only security, updates and other suites",
                &[(
                    "sources.list",
                    "deb http://mirror.example.org/debian-security bookworm-security main\n\
                     deb http://mirror.example.org/debian bookworm-updates main\n\
                     deb http://mirror.example.org/debian bullseye main\n\
                     deb http://mirror.example.org/debian stable main\n",
                )],
                None,
            ),
            ("no sources at all", &[], None),
        ];
        for (name, files, expected) in cases {
            let sources: Vec<AptSource> = files
                .iter()
                .flat_map(|(file, text)| {
                    if file.ends_with(".sources") {
                        parse_deb822(text)
                    } else {
                        parse_one_line(text)
                    }
                })
                .collect();
            assert_eq!(
                main_archive(&sources, "bookworm"),
                expected.as_ref(),
                "{name}"
            );
        }
    }

    #[test]
    fn the_derived_source_swaps_the_suite_and_keeps_the_options() {
        let archive = source(
            &["http://a.example.org/debian", "http://b.example.org/debian"],
            &["bookworm", "bookworm-updates"],
            &["main", "contrib"],
            &[
                ("Signed-By", "\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n ."),
                ("Architectures", "amd64 i386"),
            ],
        );
        assert_eq!(
            derived_source(&archive, "trixie"),
            "Types: deb\n\
             URIs: http://a.example.org/debian http://b.example.org/debian\n\
             Suites: trixie\n\
             Components: main\n\
             Signed-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n\
             Architectures: amd64 i386\n"
        );
        // What derived_source writes reads back as one source.
        let again = parse_deb822(&derived_source(&archive, "trixie"));
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].suites, ["trixie"]);
        assert_eq!(again[0].options, archive.options);
    }

    #[test]
    fn one_line_options_become_deb822_fields() {
        let cases = [
            ("signed-by", "Signed-By"),
            ("arch", "Architectures"),
            ("lang", "Languages"),
            ("target", "Targets"),
            ("trusted", "Trusted"),
            ("check-valid-until", "Check-Valid-Until"),
        ];
        for (option, field) in cases {
            assert_eq!(deb822_field(option), field);
        }
    }

    #[test]
    fn the_running_suite_is_read_from_os_release() {
        let cases: &[(&str, Option<&str>)] = &[
            (
                "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nID=debian\n",
                Some("bookworm"),
            ),
            ("VERSION_CODENAME=\"trixie\"\n", Some("trixie")),
            ("VERSION_CODENAME=\n", None),
            ("ID=debian\n", None),
        ];
        for &(text, expected) in cases {
            assert_eq!(running_suite(text).as_deref(), expected, "{text:?}");
        }
    }
}

//! The compressors the bench compares, as found on this machine: what
//! `lifeboat save` supports (it is asked through `--help`, since its options
//! are still growing), and which makedumpfile (`makedumpfile.rs`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result};

use super::makedumpfile::{self, Makedumpfile};

/// lifeboat's fast level, compared with makedumpfile -l (zstd's `--fast=7`).
/// Measured on vmcore-2g on a quiet machine: -3 is smaller than -l (556 MB
/// against 606) but 20% slower; -7 is both smaller (599 MB) and faster.
pub const FAST_LEVEL: i32 = -7;
/// A slower, smaller lifeboat level, for the table.
pub const HIGH_LEVEL: i32 = 3;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tool {
    /// `lifeboat save`; `None` leaves the option out (its default, or an
    /// option the build does not have).
    Lifeboat {
        level: Option<i32>,
        threads: Option<usize>,
    },
    /// Two runs of `lifeboat save --threads=1` at its default level, at the
    /// same time on the same input: how far this machine's two cores go in
    /// parallel, the ceiling for the 2-thread speedup. Both write a dump;
    /// the second goes to the output path with `.second` added.
    LifeboatPair,
    /// `makedumpfile -d 0` with one compression flag: `l`, `c` or `z`.
    Makedumpfile { flag: char },
    /// `zstd -1 -T1`, on the whole file.
    Zstd1,
}

/// What the bench found, for the measurements and the report.
pub struct Found {
    pub tools: Vec<Tool>,
    pub lifeboat: PathBuf,
    /// lifeboat save's options, if it has the command at all.
    pub save: Option<SaveHelp>,
    pub makedumpfile: Makedumpfile,
    /// What is missing or unusual, said before the measurements and in the
    /// report.
    pub notes: Vec<String>,
}

/// What `lifeboat save --help` offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaveHelp {
    pub has_level: bool,
    pub has_threads: bool,
    /// `[default: N]` of `--level`, when the help shows it.
    pub default_level: Option<i32>,
}

impl Tool {
    /// Short name for tables and file names.
    pub fn label(&self, save: Option<&SaveHelp>) -> String {
        match self {
            Tool::Lifeboat { level, threads } => {
                let level = match (level, save.and_then(|save| save.default_level)) {
                    (Some(level), _) => format!("level {level}"),
                    (None, Some(default)) => format!("default (level {default})"),
                    (None, None) => "default".to_string(),
                };
                match threads {
                    Some(threads) => format!(
                        "lifeboat save {level}, {threads} thread{}",
                        plural(*threads)
                    ),
                    None => format!("lifeboat save {level}"),
                }
            }
            Tool::LifeboatPair => "2 × lifeboat save default, 1 thread, at once".to_string(),
            Tool::Makedumpfile { flag } => format!("makedumpfile -d 0 -{flag}"),
            Tool::Zstd1 => "zstd -1 -T1".to_string(),
        }
    }

    /// A name for the output file, unique among the tools.
    pub fn slug(&self) -> String {
        match self {
            Tool::Lifeboat { level, threads } => format!(
                "lifeboat-l{}-t{}",
                level.map_or("default".to_string(), |level| level.to_string()),
                threads.unwrap_or(0)
            ),
            Tool::LifeboatPair => "lifeboat-pair".to_string(),
            Tool::Makedumpfile { flag } => format!("makedumpfile-{flag}"),
            Tool::Zstd1 => "zstd-1".to_string(),
        }
    }

    /// Whether the tool writes a lifeboat dump, whose round trip the bench
    /// checks once.
    pub fn is_lifeboat(&self) -> bool {
        matches!(self, Tool::Lifeboat { .. })
    }

    /// Files the tool writes besides `output`.
    pub fn extra_outputs(&self, output: &Path) -> Vec<PathBuf> {
        match self {
            Tool::LifeboatPair => vec![second_output(output)],
            _ => Vec::new(),
        }
    }

    /// The program and its arguments to compress `input` to `output`; when
    /// `writes_stdout`, the caller sends standard output to `output`.
    pub fn argv(
        &self,
        lifeboat: &Path,
        makedumpfile: &Path,
        input: &Path,
        output: &Path,
    ) -> (PathBuf, Vec<OsString>) {
        let mut args: Vec<OsString> = Vec::new();
        let program = match self {
            Tool::Lifeboat { level, threads } => {
                args.push("save".into());
                if let Some(level) = level {
                    // The `=` form: a separate "-3" would look like a flag.
                    args.push(format!("--level={level}").into());
                }
                if let Some(threads) = threads {
                    args.push(format!("--threads={threads}").into());
                }
                args.push(input.into());
                args.push(output.into());
                lifeboat.to_path_buf()
            }
            Tool::LifeboatPair => {
                // Both runs must succeed; the shell's status says so.
                let script = r#""$0" save --threads=1 "$1" "$2" & first=$!
"$0" save --threads=1 "$1" "$3"; second=$?
wait "$first" && exit "$second""#;
                for arg in ["-c", script] {
                    args.push(arg.into());
                }
                args.push(lifeboat.into());
                args.push(input.into());
                args.push(output.into());
                args.push(second_output(output).into());
                PathBuf::from("sh")
            }
            Tool::Makedumpfile { flag } => {
                // Message level 4: errors only, no progress indicator.
                for arg in ["--message-level", "4", "-d", "0", &format!("-{flag}")] {
                    args.push(arg.into());
                }
                args.push(input.into());
                args.push(output.into());
                makedumpfile.to_path_buf()
            }
            Tool::Zstd1 => {
                for arg in ["-q", "-1", "-T1", "-c"] {
                    args.push(arg.into());
                }
                args.push(input.into());
                PathBuf::from("zstd")
            }
        };
        (program, args)
    }

    pub fn writes_stdout(&self) -> bool {
        matches!(self, Tool::Zstd1)
    }
}

fn second_output(output: &Path) -> PathBuf {
    let mut name = output.as_os_str().to_owned();
    name.push(".second");
    PathBuf::from(name)
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Asks lifeboat and makedumpfile what they support; a makedumpfile with
/// zstd may be fetched into `bench_dir`.
pub fn detect(lifeboat: &Path, bench_dir: &Path) -> Result<Found> {
    let mut notes = Vec::new();
    let top_help = help_text(Command::new(lifeboat).arg("--help"))?;
    let save = if has_subcommand(&top_help, "save") {
        let help = help_text(Command::new(lifeboat).args(["save", "--help"]))?;
        Some(parse_save_help(&help))
    } else {
        notes.push(format!(
            "`{} --help` lists no `save` command: lifeboat is not measured",
            lifeboat.display()
        ));
        None
    };
    if let Some(save) = &save {
        if !save.has_level {
            notes.push("lifeboat save has no --level: only its default level is measured".into());
        }
        if !save.has_threads {
            notes.push(
                "lifeboat save has no --threads: no 2-thread run; its runs are as it defaults"
                    .into(),
            );
        }
    }

    let (makedumpfile, note) = makedumpfile::find(bench_dir)?;
    notes.extend(note);

    let mut tools = Vec::new();
    if let Some(save) = &save {
        tools.extend(lifeboat_tools(save));
    }
    tools.push(Tool::Makedumpfile { flag: 'l' });
    if makedumpfile.zstd {
        tools.push(Tool::Makedumpfile { flag: 'z' });
    }
    tools.push(Tool::Makedumpfile { flag: 'c' });
    tools.push(Tool::Zstd1);
    Ok(Found {
        tools,
        lifeboat: lifeboat.to_path_buf(),
        save,
        makedumpfile,
        notes,
    })
}

/// The lifeboat runs: the default level, the fast and a higher level, one
/// thread each, and the default with two threads, and two one-thread runs
/// at once for the machine's ceiling.
fn lifeboat_tools(save: &SaveHelp) -> Vec<Tool> {
    let threads = |n: usize| save.has_threads.then_some(n);
    let mut tools = vec![Tool::Lifeboat {
        level: None,
        threads: threads(1),
    }];
    if save.has_level {
        for level in [FAST_LEVEL, HIGH_LEVEL] {
            if save.default_level != Some(level) {
                tools.push(Tool::Lifeboat {
                    level: Some(level),
                    threads: threads(1),
                });
            }
        }
    }
    if save.has_threads {
        tools.push(Tool::Lifeboat {
            level: None,
            threads: Some(2),
        });
        tools.push(Tool::LifeboatPair);
    }
    tools
}

/// Standard output and error of a `--help`, whatever its exit status.
pub(super) fn help_text(command: &mut Command) -> Result<String> {
    let output = command
        .output()
        .with_context(|| format!("cannot run `{}`", crate::util::display(command)))?;
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    Ok(text)
}

/// Whether clap's help lists `name` under its commands.
fn has_subcommand(help: &str, name: &str) -> bool {
    help.lines()
        .any(|line| line.starts_with("  ") && line.split_whitespace().next() == Some(name))
}

fn parse_save_help(help: &str) -> SaveHelp {
    let has_level = help.contains("--level");
    let has_threads = help.contains("--threads");
    // The default is in the description of --level, before the next option.
    let default_level = help.find("--level").and_then(|start| {
        let rest = &help[start + "--level".len()..];
        let end = rest.find("\n  -").unwrap_or(rest.len());
        let description = &rest[..end];
        let value = description.split("[default: ").nth(1)?.split(']').next()?;
        value.trim().parse().ok()
    });
    SaveHelp {
        has_level,
        has_threads,
        default_level,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOP_HELP: &str = "Commands:\n  image         Build a capture initramfs\n  \
        check-config  Check a config\n  help          Print this message\n";

    #[test]
    fn the_save_command_is_found_in_the_command_list() {
        assert!(!has_subcommand(TOP_HELP, "save"));
        let with_save = TOP_HELP.replace("  help ", "  save          Save a vmcore\n  help ");
        assert!(has_subcommand(&with_save, "save"));
        // A mention in prose is not a command.
        assert!(!has_subcommand("Use it to save a vmcore\n", "save"));
    }

    #[test]
    fn save_options_and_default_level_are_read_from_its_help() {
        let help = "Usage: lifeboat save [OPTIONS] <INPUT> <OUTPUT>\n\nOptions:\n  \
            -l, --level <LEVEL>\n          zstd level; negative are fast levels\n          \
            \n          [default: 1]\n\n  -t, --threads <N>\n          Compression threads\n          \
            \n          [default: 0]\n";
        assert_eq!(
            parse_save_help(help),
            SaveHelp {
                has_level: true,
                has_threads: true,
                default_level: Some(1),
            }
        );
        let short = "Options:\n      --level <LEVEL>  zstd level [default: -1]\n  \
            -h, --help  Print help\n";
        assert_eq!(parse_save_help(short).default_level, Some(-1));
        assert!(!parse_save_help(short).has_threads);
        // The default of another option is not the level's.
        let no_default = "Options:\n      --level <LEVEL>  zstd level\n  \
            -t, --threads <N>  threads [default: 1]\n";
        assert_eq!(parse_save_help(no_default).default_level, None);
    }

    #[test]
    fn lifeboat_runs_follow_what_save_supports() {
        let full = SaveHelp {
            has_level: true,
            has_threads: true,
            default_level: Some(1),
        };
        let labels: Vec<String> = lifeboat_tools(&full)
            .iter()
            .map(|tool| tool.label(Some(&full)))
            .collect();
        assert_eq!(
            labels,
            [
                "lifeboat save default (level 1), 1 thread",
                "lifeboat save level -7, 1 thread",
                "lifeboat save level 3, 1 thread",
                "lifeboat save default (level 1), 2 threads",
                "2 × lifeboat save default, 1 thread, at once",
            ]
        );
        let bare = SaveHelp {
            has_level: false,
            has_threads: false,
            default_level: None,
        };
        assert_eq!(
            lifeboat_tools(&bare),
            [Tool::Lifeboat {
                level: None,
                threads: None
            }]
        );
    }

    #[test]
    fn lifeboat_levels_use_the_equals_form() {
        let tool = Tool::Lifeboat {
            level: Some(-3),
            threads: Some(1),
        };
        let (_, args) = tool.argv(
            Path::new("lifeboat"),
            Path::new("makedumpfile"),
            Path::new("in"),
            Path::new("out"),
        );
        assert_eq!(args, ["save", "--level=-3", "--threads=1", "in", "out"]);
    }
}

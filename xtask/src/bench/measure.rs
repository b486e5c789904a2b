//! Running each compressor on a vmcore, round after round, and recording
//! wall time, output size and peak RSS.
//!
//! The peak RSS is the child's `ru_maxrss`, which `/usr/bin/time -f %M`
//! reads from wait4(2) (xtask has no libc binding of its own), with the
//! child's CPU time (`%U`, `%S`): CPU time over wall time shows whether a
//! run had its cores to itself on a busy machine. Wall time is
//! measured from the start of the `time` process (its own fork and exec add
//! well under a millisecond) until the output is durable: `lifeboat save`
//! syncs its output before it exits, as a capture must, so the others'
//! outputs are synced (fdatasync) inside the timed span too.

use std::fs::{self, File};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};

use super::reference::Vmcore;
use super::tools::{Found, Tool};
use crate::util;

#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub wall: Duration,
    pub output_bytes: u64,
    pub max_rss_kib: u64,
    /// User plus system time of the child.
    pub cpu: Duration,
}

/// The runs of one tool on one vmcore.
pub struct Measured {
    pub tool: Tool,
    pub samples: Vec<Sample>,
    /// Why the tool stopped being run, if it failed.
    pub error: Option<String>,
}

impl Sample {
    /// CPU time over wall time: 100% is one core busy all along.
    pub fn cpu_percent(&self) -> f64 {
        100.0 * self.cpu.as_secs_f64() / self.wall.as_secs_f64().max(1e-9)
    }
}

impl Measured {
    pub fn max_wall(&self) -> Option<Duration> {
        self.samples.iter().map(|sample| sample.wall).max()
    }

    /// The largest output of the runs (they should all be the same).
    pub fn output_bytes(&self) -> Option<u64> {
        self.samples.iter().map(|sample| sample.output_bytes).max()
    }

    /// The highest peak of the runs: the memory a capture must budget for.
    pub fn max_rss_kib(&self) -> Option<u64> {
        self.samples.iter().map(|sample| sample.max_rss_kib).max()
    }

    /// The fastest run.
    pub fn best(&self) -> Option<&Sample> {
        self.samples.iter().min_by_key(|sample| sample.wall)
    }
}

/// Runs every tool `runs` times on `vmcore`, one tool after the other in
/// each round, starting one tool later each round, so that slow drifts of
/// the machine's load spread over all tools.
pub fn run(vmcore: &Vmcore, found: &Found, runs: usize, out_dir: &Path) -> Vec<Measured> {
    let tools = &found.tools;
    let mut measured: Vec<Measured> = tools
        .iter()
        .map(|tool| Measured {
            tool: tool.clone(),
            samples: Vec::new(),
            error: None,
        })
        .collect();
    let width = tools
        .iter()
        .map(|tool| tool.label(found.save.as_ref()).len())
        .max()
        .unwrap_or(0);
    for round in 0..runs {
        for position in 0..tools.len() {
            let entry = &mut measured[(position + round) % tools.len()];
            if entry.error.is_some() {
                continue;
            }
            let label = entry.tool.label(found.save.as_ref());
            // The first run of a lifeboat tool also checks its output: the
            // speed of a wrong dump means nothing.
            let verify = entry.tool.is_lifeboat() && entry.samples.is_empty();
            match run_once(&entry.tool, found, vmcore, out_dir, verify) {
                Ok(sample) => {
                    println!(
                        "  round {}/{runs}  {label:width$}  {:7.3} s  {:4.0}% CPU  {:9.1} MB  {:6.1} MiB{}",
                        round + 1,
                        sample.wall.as_secs_f64(),
                        sample.cpu_percent(),
                        sample.output_bytes as f64 / 1e6,
                        sample.max_rss_kib as f64 / 1024.0,
                        if verify { "  (round trip checked)" } else { "" }
                    );
                    entry.samples.push(sample);
                }
                Err(error) => {
                    println!(
                        "  round {}/{runs}  {label:width$}  FAILED: {error:#}",
                        round + 1
                    );
                    entry.error = Some(format!("{error:#}"));
                }
            }
        }
    }
    measured
}

fn run_once(
    tool: &Tool,
    found: &Found,
    vmcore: &Vmcore,
    out_dir: &Path,
    verify: bool,
) -> Result<Sample> {
    let output = out_dir.join(tool.slug());
    let time_report = out_dir.join("time.txt");
    let stderr_path = out_dir.join("stderr.txt");
    let extra_outputs = tool.extra_outputs(&output);
    for path in [&output, &time_report].into_iter().chain(&extra_outputs) {
        remove_if_present(path)?;
    }
    let (program, args) = tool.argv(
        &found.lifeboat,
        &found.makedumpfile.program,
        &vmcore.path,
        &output,
    );
    let mut command = Command::new("/usr/bin/time");
    command
        .args(["-f", "%M %U %S", "-o"])
        .arg(&time_report)
        .arg(&program)
        .args(&args)
        .stdin(Stdio::null())
        .stderr(File::create(&stderr_path)?);
    if tool.writes_stdout() {
        command.stdout(File::create(&output)?);
    } else {
        command.stdout(Stdio::null());
    }
    let start = Instant::now();
    let status = command
        .status()
        .with_context(|| format!("cannot start `{}`", util::display(&command)))?;
    let stderr = fs::read_to_string(&stderr_path).unwrap_or_default();
    if !status.success() {
        bail!(
            "`{}` failed: {status}: {}",
            util::display(&command),
            last_lines(&stderr, 5)
        );
    }
    // lifeboat makes its output durable before it exits, as a capture must;
    // the others leave it in the page cache. Syncing every output inside
    // the timed span compares the same work.
    File::open(&output)
        .and_then(|file| file.sync_data())
        .with_context(|| format!("cannot sync {}", output.display()))?;
    let wall = start.elapsed();
    let report = fs::read_to_string(&time_report)
        .with_context(|| format!("cannot read {}", time_report.display()))?;
    let (max_rss_kib, cpu) = parse_time_report(&report)?;
    let output_bytes = fs::metadata(&output)
        .with_context(|| format!("{} wrote no {}", tool.slug(), output.display()))?
        .len();
    if verify {
        check_round_trip(&output, &vmcore.path)?;
    }
    for path in std::iter::once(&output).chain(&extra_outputs) {
        remove_if_present(path)?;
    }
    Ok(Sample {
        wall,
        output_bytes,
        max_rss_kib,
        cpu,
    })
}

/// `zstd -d` of `output` must give back `input`, byte for byte.
fn check_round_trip(output: &Path, input: &Path) -> Result<()> {
    let status = Command::new("sh")
        .args(["-c", r#"zstd -d -q -c -- "$1" | cmp -s - "$2""#, "sh"])
        .arg(output)
        .arg(input)
        .status()
        .context("cannot run zstd -d | cmp")?;
    if !status.success() {
        bail!(
            "`zstd -d` of {} does not give back {}",
            output.display(),
            input.display()
        );
    }
    Ok(())
}

fn remove_if_present(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            Err(error).with_context(|| format!("cannot remove {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// `%M %U %S`: peak RSS in KiB, and user and system seconds, from the
/// last line of the report (`time` puts a "Command exited with non-zero
/// status" line before it when the child fails).
fn parse_time_report(report: &str) -> Result<(u64, Duration)> {
    let parse = |line: &str| -> Option<(u64, Duration)> {
        let mut fields = line.split_whitespace();
        let rss = fields.next()?.parse().ok()?;
        let user: f64 = fields.next()?.parse().ok()?;
        let system: f64 = fields.next()?.parse().ok()?;
        Some((rss, Duration::try_from_secs_f64(user + system).ok()?))
    };
    let last = report.lines().rev().find(|line| !line.trim().is_empty());
    last.and_then(parse).with_context(|| {
        format!("/usr/bin/time reported {report:?}, not `KiB user-seconds system-seconds`")
    })
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rss_is_the_last_line_of_times_report() {
        assert_eq!(
            parse_time_report("17004 2.50 0.25\n").unwrap(),
            (17004, Duration::from_millis(2750))
        );
        assert_eq!(
            parse_time_report("Command exited with non-zero status 1\n3120 0.00 0.01\n")
                .unwrap()
                .0,
            3120
        );
        assert!(parse_time_report("").is_err());
        assert!(parse_time_report("17004\n").is_err());
    }

    #[test]
    fn summaries_take_the_fastest_time_and_the_highest_peak() {
        let sample = |secs, rss| Sample {
            wall: Duration::from_secs(secs),
            output_bytes: 10,
            max_rss_kib: rss,
            cpu: Duration::from_secs(1),
        };
        let measured = Measured {
            tool: Tool::Zstd1,
            samples: vec![sample(3, 100), sample(2, 300), sample(4, 200)],
            error: None,
        };
        assert_eq!(measured.best().unwrap().wall, Duration::from_secs(2));
        assert_eq!(measured.max_wall(), Some(Duration::from_secs(4)));
        assert_eq!(measured.max_rss_kib(), Some(300));
    }
}

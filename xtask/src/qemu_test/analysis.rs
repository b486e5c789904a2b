//! The checks of a complete dump as someone investigating the crash uses
//! it: `crash` with the debug kernel, and lifeboat's own reading commands
//! (`dmesg`, `inspect`, `verify`, `decompress`) held against stock tools,
//! on the dump as saved and on a copy of it cut short.
//!
//! Every command runs under a deadline. What is worth reading after a run
//! stays in the scenario directory (`crash.txt`, `lifeboat-dmesg*.txt`);
//! large outputs (decompressed copies) are deleted once compared.

use std::fs::{self, File};
use std::io::{self, Read as _};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};

use dumper::record::Record;

use super::checks::{Report, SYSRQ_LINE};
use crate::bench::makedumpfile;
use crate::util;

/// crash opens a 2 GB vmcore and answers in ~8 s on an idle 2-core machine.
const CRASH_DEADLINE: Duration = Duration::from_secs(180);
/// Any lifeboat command, including decompressing 2 GB.
const CLI_DEADLINE: Duration = Duration::from_secs(300);
/// `lifeboat <command> --help`.
const PROBE_DEADLINE: Duration = Duration::from_secs(30);
/// What crash is asked; no shell pipes (`log | tail`), whose output would
/// land out of order in the file.
const CRASH_COMMANDS: &[&str] = &["set scroll off", "sys", "bt", "log", "q"];
/// What `sys` says after `PANIC:` for a sysrq crash, by kernel version: 6.1
/// panics with "sysrq triggered crash"; others with the console line.
const SYSRQ_PANICS: &[&str] = &["sysrq triggered crash", SYSRQ_LINE];
/// The frame `bt` must show: the sysrq `c` handler.
const SYSRQ_FRAME: &str = "sysrq_handle_crash";
/// Where the truncated copy is cut, as a fraction of the dump's size; the cut
/// then moves to the middle of the frame that holds that point.
const CUT_PERCENT: u64 = 60;
/// `lifeboat verify`'s exit status for a dump that is cut short.
const EXIT_INCOMPLETE: i32 = 3;

/// What the checks read.
pub struct Context<'a> {
    pub dir: &'a Path,
    /// The `.zst` dump as lifeboat saved it.
    pub dump: &'a Path,
    /// `zstd -d` of the dump.
    pub vmcore: &'a Path,
    /// lifeboat.json's text.
    /// lifeboat.json, read.
    pub record: &'a Record,
    /// The VMCOREINFO note of the vmcore, when it could be read.
    pub vmcoreinfo: Option<&'a str>,
    /// The installed makedumpfile's `--dump-dmesg` of the vmcore.
    pub reference_dmesg: &'a Path,
    /// The current makedumpfile (1.7.5 or later: with the caller column)
    /// and its log of the vmcore.
    pub current_makedumpfile: Option<&'a Path>,
    pub current_dmesg: &'a Path,
    pub lifeboat: &'a Path,
    /// The debug kernel, or why crash is not run on this dump.
    pub vmlinux: Result<&'a Path, &'a str>,
}

struct Check {
    name: &'static str,
    run: fn(&Context) -> Result<String>,
    /// Runs crash, and is skipped (said so) when crash is not run.
    runs_crash: bool,
}

/// The checks of the dump as saved, in order.
const CHECKS: &[Check] = &[
    Check {
        name: "build id",
        run: check_build_id,
        runs_crash: false,
    },
    Check {
        name: "crash",
        run: check_crash,
        runs_crash: true,
    },
    Check {
        name: "lifeboat dmesg",
        run: check_cli_dmesg,
        runs_crash: false,
    },
    Check {
        name: "lifeboat inspect",
        run: check_inspect,
        runs_crash: false,
    },
    Check {
        name: "lifeboat verify",
        run: check_verify,
        runs_crash: false,
    },
    Check {
        name: "lifeboat decompress",
        run: check_decompress,
        runs_crash: false,
    },
];

struct TruncatedCheck {
    name: &'static str,
    run: fn(&Context, &Cut) -> Result<String>,
}

/// The checks of the copy cut short, in order.
const TRUNCATED_CHECKS: &[TruncatedCheck] = &[
    TruncatedCheck {
        name: "lifeboat verify (truncated)",
        run: check_verify_truncated,
    },
    TruncatedCheck {
        name: "lifeboat decompress --recover",
        run: check_recover,
    },
];

/// Runs every check, recording each in `report`. The truncated copy is
/// deleted when its checks pass and kept for a rerun when one fails.
pub fn run(context: &Context, report: &mut Report) {
    for check in CHECKS {
        match context.vmlinux {
            Err(reason) if check.runs_crash => println!("  skip  {}: {reason}", check.name),
            _ => {
                report.record(check.name, (check.run)(context));
            }
        }
    }
    let cut = match cut_copy(context) {
        Ok(cut) => cut,
        Err(error) => {
            report.fail("truncated copy", error);
            return;
        }
    };
    report.ok("truncated copy", cut.describe());
    let mut passed = true;
    for check in TRUNCATED_CHECKS {
        passed &= report.record(check.name, (check.run)(context, &cut));
    }
    if passed {
        if let Err(error) = fs::remove_file(&cut.copy) {
            report.fail("truncated copy", error.into());
        }
    } else {
        println!("        (kept {} for a rerun)", cut.copy.display());
    }
}

/// The debug vmlinux must be the kernel that crashed: its Build-ID is the
/// one in the dump's VMCOREINFO, which is the one lifeboat.json records
/// (only the last two are compared when crash is not run).
fn check_build_id(context: &Context) -> Result<String> {
    let vmlinux_id = match context.vmlinux {
        Ok(vmlinux) => {
            let notes = util::output(Command::new("readelf").arg("-n").arg(vmlinux))?;
            let id = notes
                .lines()
                .find_map(|line| line.trim().strip_prefix("Build ID:"))
                .map(|id| id.trim().to_owned())
                .with_context(|| {
                    format!("readelf -n shows no Build ID in {}", vmlinux.display())
                })?;
            Some(id)
        }
        Err(_) => None,
    };
    let vmcoreinfo = context
        .vmcoreinfo
        .context("no VMCOREINFO to compare with")?;
    let vmcore_id = vmcoreinfo
        .lines()
        .find_map(|line| line.strip_prefix("BUILD-ID="))
        .context("VMCOREINFO has no BUILD-ID")?;
    let json_id = context
        .record
        .build_id
        .clone()
        .context("lifeboat.json has no build_id")?;
    let Some(vmlinux_id) = vmlinux_id else {
        if !vmcore_id.eq_ignore_ascii_case(&json_id) {
            bail!("VMCOREINFO BUILD-ID {vmcore_id}, lifeboat.json build_id {json_id}");
        }
        return Ok(format!(
            "{vmcore_id} (VMCOREINFO, lifeboat.json; no debug kernel)"
        ));
    };
    if !vmlinux_id.eq_ignore_ascii_case(vmcore_id) || !vmcore_id.eq_ignore_ascii_case(&json_id) {
        bail!(
            "vmlinux {vmlinux_id}, VMCOREINFO BUILD-ID {vmcore_id}, lifeboat.json build_id {json_id}"
        );
    }
    Ok(format!("{vmlinux_id} (vmlinux, VMCOREINFO, lifeboat.json)"))
}

/// crash must open the dump with the debug kernel and show the sysrq panic
/// and its backtrace. Its whole output goes to `crash.txt`, and into the
/// failure when it does not.
fn check_crash(context: &Context) -> Result<String> {
    let vmlinux = context
        .vmlinux
        .map_err(|reason| anyhow::anyhow!("crash is not run: {reason}"))?;
    let input = context.dir.join("crash-input.txt");
    fs::write(&input, CRASH_COMMANDS.join("\n") + "\n")?;
    let mut command = Command::new("crash");
    command
        .args(["-s", "--no_crashrc"])
        .arg(vmlinux)
        .arg(context.vmcore)
        .arg("-i")
        .arg(&input);
    let finished = run_until(&mut command, CRASH_DEADLINE)?;
    let text = format!(
        "$ {}\n{}{}",
        util::display(&command),
        finished.stdout_lossy(),
        String::from_utf8_lossy(&finished.stderr)
    );
    let transcript = context.dir.join("crash.txt");
    fs::write(&transcript, &text)?;
    crash_verdict(&finished, &text).map_err(|error| {
        anyhow::anyhow!(
            "{error:#}\n----- {} -----\n{text}\n----- end of crash output -----",
            transcript.display()
        )
    })
}

/// crash's answers to `commands` on `vmcore`, its transcript also written
/// to `transcript`; an error if crash fails.
pub fn crash_answers(
    vmlinux: &Path,
    vmcore: &Path,
    commands: &[&str],
    transcript: &Path,
) -> Result<String> {
    let input = transcript.with_extension("input");
    fs::write(&input, commands.join("\n") + "\n")?;
    let mut command = Command::new("crash");
    command
        .args(["-s", "--no_crashrc"])
        .arg(vmlinux)
        .arg(vmcore)
        .arg("-i")
        .arg(&input);
    let finished = run_until(&mut command, CRASH_DEADLINE)?;
    let text = finished.stdout_lossy() + &String::from_utf8_lossy(&finished.stderr);
    fs::write(transcript, &text)?;
    finished.expect_status(0)?;
    Ok(text)
}

fn crash_verdict(finished: &Finished, text: &str) -> Result<String> {
    finished.expect_status(0)?;
    let panic = text
        .lines()
        .find_map(|line| line.trim_start().strip_prefix("PANIC:"))
        .map(|panic| panic.trim().trim_matches('"'))
        .context("`sys` shows no PANIC line")?;
    if !SYSRQ_PANICS.iter().any(|expected| panic.contains(expected)) {
        bail!("`sys` shows PANIC: {panic:?}, expected one of {SYSRQ_PANICS:?}");
    }
    // Frames look like `#3 [ff42361540013a70] sysrq_handle_crash at ffffffffbbaa8a06`.
    let frames: Vec<&str> = text
        .lines()
        .filter(|line| line.trim_start().starts_with('#'))
        .filter_map(|line| line.split_whitespace().nth(2))
        .collect();
    let Some(crash_frame) = frames.iter().position(|frame| *frame == SYSRQ_FRAME) else {
        bail!("`bt` shows no {SYSRQ_FRAME} frame; frames: {frames:?}");
    };
    if !text.contains(SYSRQ_LINE) {
        bail!("`log` has no `{SYSRQ_LINE}`");
    }
    let path: Vec<&str> = frames[..=(crash_frame + 2).min(frames.len() - 1)].to_vec();
    Ok(format!(
        "{:.1} s; PANIC: {panic:?}; bt: {}",
        finished.elapsed.as_secs_f64(),
        path.join(" < ")
    ))
}

/// `lifeboat dmesg` of the compressed dump must print exactly what
/// makedumpfile extracts from the decompressed one: the installed
/// makedumpfile (Debian 12's 1.7.2, without the caller column, held
/// against `lifeboat dmesg --no-caller`), and Debian trixie's 1.7.6 (with
/// it, held against the default).
fn check_cli_dmesg(context: &Context) -> Result<String> {
    let installed = installed_reference(context)?;
    let fetched = fetched_reference(context, &installed.version)?;
    // Both forms have the same lines, the caller column aside.
    let lines = installed.text.iter().filter(|&&byte| byte == b'\n').count();
    let mut compared = Vec::new();
    for reference in std::iter::once(installed).chain(fetched) {
        let finished = lifeboat_dmesg(context, &reference, context.dump)?;
        let name = if reference.caller_column {
            "lifeboat-dmesg.txt"
        } else {
            "lifeboat-dmesg-no-caller.txt"
        };
        fs::write(context.dir.join(name), &finished.stdout)?;
        compare_logs(&finished.stdout, &reference.text)
            .with_context(|| format!("against makedumpfile {}", reference.version))?;
        compared.push(format!(
            "makedumpfile {}'s ({}{} bytes, {:.1} s)",
            reference.version,
            if reference.caller_column {
                ""
            } else {
                "--no-caller, "
            },
            reference.text.len(),
            finished.elapsed.as_secs_f64()
        ));
    }
    Ok(format!(
        "{lines} lines, identical to {}",
        compared.join(" and to ")
    ))
}

/// A makedumpfile's `--dump-dmesg` of the vmcore, which `lifeboat dmesg`
/// must reproduce.
struct DmesgReference {
    version: String,
    /// Whether it prints the caller column (1.7.5 and later); `lifeboat
    /// dmesg` is then run without `--no-caller`.
    caller_column: bool,
    text: Vec<u8>,
}

/// The installed makedumpfile's log of the vmcore, which checks.rs wrote.
fn installed_reference(context: &Context) -> Result<DmesgReference> {
    let version = makedumpfile::version_of(Path::new("makedumpfile"))?;
    let text = fs::read(context.reference_dmesg)
        .with_context(|| format!("cannot read {}", context.reference_dmesg.display()))?;
    Ok(DmesgReference {
        caller_column: makedumpfile::prints_caller_column(&version),
        version,
        text,
    })
}

/// The log of the vmcore by the current makedumpfile (Debian trixie's,
/// fetched for the run), which checks.rs wrote, unless it is the installed
/// version.
fn fetched_reference(context: &Context, installed: &str) -> Result<Option<DmesgReference>> {
    let Some(current) = context.current_makedumpfile else {
        return Ok(None);
    };
    let version = makedumpfile::version_of(current)?;
    if version == installed {
        return Ok(None);
    }
    let text = fs::read(context.current_dmesg)
        .with_context(|| format!("cannot read {}", context.current_dmesg.display()))?;
    Ok(Some(DmesgReference {
        caller_column: makedumpfile::prints_caller_column(&version),
        version,
        text,
    }))
}

/// `lifeboat dmesg` of `input` in the form `reference` prints, to its end.
fn lifeboat_dmesg(context: &Context, reference: &DmesgReference, input: &Path) -> Result<Finished> {
    let mut command = lifeboat(context, "dmesg")?;
    if !reference.caller_column {
        command.arg("--no-caller");
    }
    command.arg(input);
    let finished = run_until(&mut command, CLI_DEADLINE)?;
    finished.expect_status(0)?;
    Ok(finished)
}

/// Byte for byte; when they differ, the first line that does.
fn compare_logs(ours: &[u8], reference: &[u8]) -> Result<()> {
    if ours == reference {
        return Ok(());
    }
    let ours_lines: Vec<&[u8]> = ours.split(|&byte| byte == b'\n').collect();
    let reference_lines: Vec<&[u8]> = reference.split(|&byte| byte == b'\n').collect();
    let line_idx = ours_lines
        .iter()
        .zip(&reference_lines)
        .position(|(a, b)| a != b)
        .unwrap_or(ours_lines.len().min(reference_lines.len()));
    let show = |lines: &[&[u8]]| match lines.get(line_idx) {
        Some(line) => format!("{:?}", String::from_utf8_lossy(line)),
        None => "(end of output)".to_string(),
    };
    bail!(
        "lifeboat printed {} bytes, makedumpfile {}; first difference on line {}:\n  \
         lifeboat:     {}\n  makedumpfile: {}",
        ours.len(),
        reference.len(),
        line_idx + 1,
        show(&ours_lines),
        show(&reference_lines)
    )
}

/// `lifeboat inspect --json` must name the kernel lifeboat.json names and
/// call the dump complete.
fn check_inspect(context: &Context) -> Result<String> {
    let mut command = lifeboat(context, "inspect")?;
    command.arg("--json").arg(context.dump);
    let finished = run_until(&mut command, CLI_DEADLINE)?;
    finished.expect_status(0)?;
    let text = finished.stdout_lossy();
    let facts: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("the output is not JSON: {text}"))?;
    let mut problems = Vec::new();
    for (key, expected) in [
        ("kernel_release", &context.record.kernel_release),
        ("build_id", &context.record.build_id),
    ] {
        let actual = facts[key].as_str();
        if actual.is_none() || actual != expected.as_deref() {
            problems.push(format!(
                "{key} is {actual:?}, lifeboat.json has {expected:?}"
            ));
        }
    }
    if facts["complete"] != serde_json::Value::Bool(true) {
        problems.push("it does not say \"complete\": true".into());
    }
    if !problems.is_empty() {
        bail!("{}; output: {text}", problems.join("; "));
    }
    Ok(format!(
        "release {}, build id {}, complete",
        facts["kernel_release"].as_str().unwrap_or_default(),
        facts["build_id"].as_str().unwrap_or_default()
    ))
}

/// `lifeboat verify` must accept the dump as saved.
fn check_verify(context: &Context) -> Result<String> {
    let mut command = lifeboat(context, "verify")?;
    command.arg(context.dump);
    let finished = run_until(&mut command, CLI_DEADLINE)?;
    finished.expect_status(0)?;
    Ok(format!(
        "exit 0 ({:.1} s): {}",
        finished.elapsed.as_secs_f64(),
        finished.summary()
    ))
}

/// `lifeboat decompress` must give back what `zstd -d` does, byte for byte.
/// Its 2 GB output is deleted after the comparison.
fn check_decompress(context: &Context) -> Result<String> {
    let out = context.dir.join("lifeboat-decompressed");
    let mut command = lifeboat(context, "decompress")?;
    command.arg(context.dump).arg("-o").arg(&out);
    let result = run_until(&mut command, CLI_DEADLINE).and_then(|finished| {
        finished.expect_status(0)?;
        let size = fs::metadata(&out)
            .with_context(|| format!("no {}", out.display()))?
            .len();
        util::output(Command::new("cmp").arg(&out).arg(context.vmcore))?;
        Ok(format!(
            "{size} bytes, identical to zstd -d ({:.1} s)",
            finished.elapsed.as_secs_f64()
        ))
    });
    remove_if_there(&out)?;
    result
}

/// A copy of the dump cut in the middle of a frame.
struct Cut {
    copy: PathBuf,
    /// Bytes kept, of `total`.
    at: u64,
    total: u64,
    /// The frame cut in two, and how many data frames there are.
    frame_idx: usize,
    n_frames: usize,
    /// Where the frame cut in two starts: everything before is intact.
    intact_compressed: u64,
    /// What the intact frames decompress to, when their headers say.
    intact_bytes: Option<u64>,
}

impl Cut {
    fn describe(&self) -> String {
        let intact_bytes = match self.intact_bytes {
            Some(bytes) => format!("{bytes} bytes of vmcore"),
            None => "an undeclared size of vmcore".to_string(),
        };
        format!(
            "cut at byte {} of {} ({:.1}%), in the middle of frame {} of {}; the {} frames \
             before it intact ({} bytes, {intact_bytes})",
            self.at,
            self.total,
            self.at as f64 * 100.0 / self.total as f64,
            self.frame_idx + 1,
            self.n_frames,
            self.frame_idx,
            self.intact_compressed
        )
    }
}

/// Copies the dump up to the middle of the frame holding its
/// `CUT_PERCENT` point: never on a frame boundary, so the last frame is
/// torn, as when a target fills up or the machine dies mid-write.
fn cut_copy(context: &Context) -> Result<Cut> {
    let file = File::open(context.dump)?;
    let total = file.metadata()?.len();
    let frames = zstd_frames(&file, total)?;
    let target = total * CUT_PERCENT / 100;
    let frame_idx = frames
        .iter()
        .position(|frame| target < frame.offset + frame.len)
        .unwrap_or(frames.len().saturating_sub(1));
    let frame = frames
        .get(frame_idx)
        .context("the dump has no zstd frame")?;
    let at = frame.offset + frame.len / 2;
    let intact_bytes = frames[..frame_idx]
        .iter()
        .map(|frame| frame.content_size)
        .sum::<Option<u64>>();

    let copy = context.dir.join("truncated.zst");
    let mut out = File::create(&copy)?;
    io::copy(&mut (&file).take(at), &mut out)?;
    Ok(Cut {
        copy,
        at,
        total,
        frame_idx,
        n_frames: frames.len(),
        intact_compressed: frame.offset,
        intact_bytes,
    })
}

/// `lifeboat verify` must call the cut copy incomplete (exit 3) and say
/// how much of it is intact, in frames or bytes.
fn check_verify_truncated(context: &Context, cut: &Cut) -> Result<String> {
    let mut command = lifeboat(context, "verify")?;
    command.arg(&cut.copy);
    let finished = run_until(&mut command, CLI_DEADLINE)?;
    finished.expect_status(EXIT_INCOMPLETE)?;
    let said = finished.stdout_lossy() + &String::from_utf8_lossy(&finished.stderr);
    let mut figures = vec![cut.frame_idx.to_string(), cut.intact_compressed.to_string()];
    figures.extend(cut.intact_bytes.map(|bytes| bytes.to_string()));
    let numbers: Vec<&str> = said
        .split(|c: char| !c.is_ascii_digit())
        .filter(|word| !word.is_empty())
        .collect();
    if !figures
        .iter()
        .any(|figure| numbers.contains(&figure.as_str()))
    {
        bail!(
            "its output names none of the intact figures {figures:?} (frames, compressed \
             bytes, vmcore bytes): {}",
            said.trim_end()
        );
    }
    Ok(format!("exit {EXIT_INCOMPLETE}: {}", finished.summary()))
}

/// `lifeboat decompress --recover` of the cut copy must give an ELF core
/// that readelf reads, whose intact part is the vmcore's, and whose kernel
/// log is still all there: the log is in the kernel image, which the ELF
/// header maps first, at the start of the file, far below the cut (the
/// first 40 MB of a 2 GB vmcore; the cut keeps ~140 MB of it).
///
/// The log is read with `lifeboat dmesg` and held against makedumpfile's
/// log of the whole dump. makedumpfile itself cannot read a recovered dump:
/// even for `--dump-dmesg` it reads `mem_section`, which memblock put at the
/// top of RAM, the last page of the vmcore (seen with strace, 6.1 cloud
/// kernel, 2 GiB guest), so no cut short of the end leaves it intact.
/// The recovered file is deleted after.
fn check_recover(context: &Context, cut: &Cut) -> Result<String> {
    let out = context.dir.join("recovered");
    let mut command = lifeboat(context, "decompress")?;
    command.arg("--recover").arg(&cut.copy).arg("-o").arg(&out);
    let result = run_until(&mut command, CLI_DEADLINE).and_then(|finished| {
        finished.expect_status(0)?;
        check_recovered(context, cut, &out)
    });
    remove_if_there(&out)?;
    result
}

fn check_recovered(context: &Context, cut: &Cut, recovered: &Path) -> Result<String> {
    let size = fs::metadata(recovered)
        .with_context(|| format!("no {}", recovered.display()))?
        .len();
    let headers = util::output(Command::new("readelf").arg("-lW").arg(recovered))?;
    let n_loads = headers
        .lines()
        .filter(|line| line.trim_start().starts_with("LOAD"))
        .count();
    if n_loads == 0 {
        bail!("readelf -l shows no PT_LOAD:\n{headers}");
    }
    let mut prefix = String::new();
    if let Some(intact_bytes) = cut.intact_bytes {
        // Recovery rewrites the program headers in place (missing memory
        // leaves the PT_LOADs); every byte after them must be the vmcore's.
        let headers_end = program_headers_end(context.vmcore)?;
        util::output(
            Command::new("cmp")
                .arg("-i")
                .arg(headers_end.to_string())
                .arg("-n")
                .arg(intact_bytes.saturating_sub(headers_end).to_string())
                .arg(recovered)
                .arg(context.vmcore),
        )
        .context("the intact part differs from zstd -d of the whole dump")?;
        prefix = format!(
            ", bytes {headers_end}..{intact_bytes} (all after the program headers) identical to zstd -d"
        );
    }
    let reference = installed_reference(context)?;
    let finished = lifeboat_dmesg(context, &reference, recovered)?;
    compare_logs(&finished.stdout, &reference.text)
        .context("lifeboat dmesg of the recovered dump")?;
    Ok(format!(
        "exit 0, {size} bytes, readelf: {n_loads} PT_LOADs{prefix}; its log (lifeboat dmesg{}) \
         identical to makedumpfile {}'s of the whole dump",
        if reference.caller_column {
            ""
        } else {
            " --no-caller"
        },
        reference.version
    ))
}

/// Where the ELF program header table of `core` ends: e_phoff + e_phnum *
/// e_phentsize, from the ELF64 header.
fn program_headers_end(core: &Path) -> Result<u64> {
    let mut header = [0u8; 64];
    File::open(core)
        .and_then(|file| file.read_exact_at(&mut header, 0))
        .with_context(|| format!("cannot read the ELF header of {}", core.display()))?;
    let phoff = u64::from_le_bytes(header[32..40].try_into().expect("8 bytes"));
    let phentsize = u64::from(u16::from_le_bytes([header[54], header[55]]));
    let phnum = u64::from(u16::from_le_bytes([header[56], header[57]]));
    Ok(phoff + phentsize * phnum)
}

/// A zstd frame of the dump: where it is, and what its header says it
/// decompresses to.
#[derive(Debug, PartialEq, Eq)]
struct Frame {
    offset: u64,
    len: u64,
    content_size: Option<u64>,
}

const ZSTD_MAGIC: u32 = 0xFD2F_B528;
/// Skippable frames (the seek table) have magics 0x184D2A50..=0x184D2A5F.
const SKIPPABLE_MASK: u32 = 0xFFFF_FFF0;
const SKIPPABLE_MAGIC: u32 = 0x184D_2A50;

/// The data frames of a zstd file, found by walking frame and block
/// headers (RFC 8878) without decompressing; skippable frames are stepped
/// over and not listed. Independent of lifeboat's seek table on purpose.
fn zstd_frames(file: &File, total: u64) -> Result<Vec<Frame>> {
    let read = |offset: u64, buffer: &mut [u8]| -> Result<()> {
        if offset + buffer.len() as u64 > total {
            bail!("a frame runs past the end of the file at byte {offset}");
        }
        file.read_exact_at(buffer, offset)
            .with_context(|| format!("cannot read at byte {offset}"))
    };
    let mut frames = Vec::new();
    let mut offset = 0u64;
    while offset < total {
        let mut word = [0u8; 4];
        read(offset, &mut word)?;
        let magic = u32::from_le_bytes(word);
        if magic & SKIPPABLE_MASK == SKIPPABLE_MAGIC {
            read(offset + 4, &mut word)?;
            offset += 8 + u64::from(u32::from_le_bytes(word));
            continue;
        }
        if magic != ZSTD_MAGIC {
            bail!("no frame magic at byte {offset}: {magic:#010x}");
        }
        let mut descriptor = [0u8; 1];
        read(offset + 4, &mut descriptor)?;
        let descriptor = descriptor[0];
        let single_segment = descriptor & 0x20 != 0;
        let has_checksum = descriptor & 0x04 != 0;
        let dictionary_id_len = [0u64, 1, 2, 4][usize::from(descriptor & 0x03)];
        let content_size_len = match descriptor >> 6 {
            0 if single_segment => 1,
            0 => 0,
            1 => 2,
            2 => 4,
            _ => 8,
        };
        let mut position = offset + 5 + u64::from(!single_segment) + dictionary_id_len;
        let content_size = if content_size_len == 0 {
            None
        } else {
            let mut field = [0u8; 8];
            read(position, &mut field[..content_size_len])?;
            let value = u64::from_le_bytes(field);
            // The 2-byte form stores the size minus 256.
            Some(if content_size_len == 2 {
                value + 256
            } else {
                value
            })
        };
        position += content_size_len as u64;
        loop {
            let mut header = [0u8; 4];
            read(position, &mut header[..3])?;
            let header = u32::from_le_bytes(header);
            let last = header & 1 != 0;
            let size = u64::from(header >> 3);
            position += 3 + match (header >> 1) & 3 {
                // RLE: one byte, repeated `size` times.
                1 => 1,
                // Raw or compressed: `size` bytes.
                0 | 2 => size,
                _ => bail!("reserved block type at byte {position}"),
            };
            if last {
                break;
            }
        }
        if has_checksum {
            position += 4;
        }
        if position > total {
            bail!("the frame at byte {offset} runs past the end of the file");
        }
        frames.push(Frame {
            offset,
            len: position - offset,
            content_size,
        });
        offset = position;
    }
    Ok(frames)
}

/// `lifeboat verify` on a dump that did not finish (a fault scenario's
/// `.incomplete` file): it must say so with exit status 3.
pub(super) fn check_verify_unfinished(cli: &Path, dump: &Path) -> Result<String> {
    let mut command = lifeboat_at(cli, "verify")?;
    command.arg(dump);
    let finished = run_until(&mut command, CLI_DEADLINE)?;
    finished.expect_status(EXIT_INCOMPLETE)?;
    Ok(format!("exit {EXIT_INCOMPLETE}: {}", finished.summary()))
}

/// `lifeboat <subcommand>`, once `lifeboat <subcommand> --help` shows the
/// installed CLI has it.
fn lifeboat(context: &Context, subcommand: &str) -> Result<Command> {
    lifeboat_at(context.lifeboat, subcommand)
}

fn lifeboat_at(cli: &Path, subcommand: &str) -> Result<Command> {
    let mut probe = Command::new(cli);
    probe.args([subcommand, "--help"]);
    let finished = run_until(&mut probe, PROBE_DEADLINE)?;
    if finished.timed_out || !finished.status.success() {
        let said = String::from_utf8_lossy(&finished.stderr);
        bail!(
            "lifeboat {subcommand} not available (`{}`: {})",
            util::display(&probe),
            said.lines().next().unwrap_or("no message")
        );
    }
    let mut command = Command::new(cli);
    command.arg(subcommand);
    Ok(command)
}

/// A command that ran to its end, or was killed at its deadline.
struct Finished {
    display: String,
    status: ExitStatus,
    timed_out: bool,
    deadline: Duration,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    elapsed: Duration,
}

impl Finished {
    fn stdout_lossy(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// The first line of what the command said, for `ok` lines.
    fn summary(&self) -> String {
        let stdout = self.stdout_lossy();
        let stderr = String::from_utf8_lossy(&self.stderr);
        let mut lines = stdout.lines().chain(stderr.lines());
        lines
            .find(|line| !line.trim().is_empty())
            .unwrap_or("(no output)")
            .trim()
            .to_string()
    }

    /// Fails unless the command ended in time with exit status `code`,
    /// with everything it printed.
    fn expect_status(&self, code: i32) -> Result<()> {
        if self.timed_out {
            bail!(
                "`{}` was still running after {} s and was killed\n{}{}",
                self.display,
                self.deadline.as_secs(),
                self.stdout_lossy(),
                String::from_utf8_lossy(&self.stderr)
            );
        }
        if self.status.code() != Some(code) {
            bail!(
                "`{}` ended with {}, expected exit status {code}\n{}{}",
                self.display,
                self.status,
                self.stdout_lossy(),
                String::from_utf8_lossy(&self.stderr)
            );
        }
        Ok(())
    }
}

/// Runs `command` with no input, collecting what it prints, and kills it
/// when it is still running after `deadline`.
fn run_until(command: &mut Command, deadline: Duration) -> Result<Finished> {
    let display = util::display(command);
    let start = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start `{display}`"))?;
    let drain = |mut pipe: Box<dyn io::Read + Send>| {
        thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout is piped")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr is piped")));
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if start.elapsed() >= deadline {
            timed_out = true;
            // It may have exited just now; killing it then fails, which is
            // fine.
            let _ = child.kill();
            break child.wait()?;
        }
        thread::sleep(Duration::from_millis(50));
    };
    let elapsed = start.elapsed();
    Ok(Finished {
        display,
        status,
        timed_out,
        deadline,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
        elapsed,
    })
}

fn remove_if_there(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => {
            Err(error).with_context(|| format!("cannot delete {}", path.display()))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame of `blocks` (type, size, payload length), with an optional
    /// 4-byte content size and a checksum.
    fn frame(content_size: Option<u32>, blocks: &[(u32, u32, usize)]) -> Vec<u8> {
        let mut bytes = ZSTD_MAGIC.to_le_bytes().to_vec();
        let fcs_flag = if content_size.is_some() { 2u8 } else { 0 };
        bytes.push((fcs_flag << 6) | 0x04);
        bytes.push(7 << 3); // window descriptor
        if let Some(size) = content_size {
            bytes.extend_from_slice(&size.to_le_bytes());
        }
        for (block_idx, &(block_type, size, payload)) in blocks.iter().enumerate() {
            let last = u32::from(block_idx + 1 == blocks.len());
            let header = last | (block_type << 1) | (size << 3);
            bytes.extend_from_slice(&header.to_le_bytes()[..3]);
            bytes.resize(bytes.len() + payload, 0xab);
        }
        bytes.extend_from_slice(&[1, 2, 3, 4]); // checksum
        bytes
    }

    fn write_test_file(name: &str, bytes: &[u8]) -> File {
        let dir = crate::util::target_dir()
            .join("xtask-tests")
            .join("zstd-frames");
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        fs::write(&path, bytes).unwrap();
        File::open(path).unwrap()
    }

    #[test]
    fn frames_are_found_and_skippable_frames_stepped_over() {
        let first = frame(
            Some(300_000),
            &[(2, 1000, 1000), (1, 131_072, 1), (0, 10, 10)],
        );
        let second = frame(None, &[(1, 5, 1)]);
        let mut seek_table = (SKIPPABLE_MAGIC | 0xe).to_le_bytes().to_vec();
        seek_table.extend_from_slice(&5u32.to_le_bytes());
        seek_table.extend_from_slice(&[0; 5]);
        let bytes = [first.clone(), second.clone(), seek_table].concat();
        let file = write_test_file("ok", &bytes);
        let frames = zstd_frames(&file, bytes.len() as u64).unwrap();
        assert_eq!(
            frames,
            [
                Frame {
                    offset: 0,
                    len: first.len() as u64,
                    content_size: Some(300_000),
                },
                Frame {
                    offset: first.len() as u64,
                    len: second.len() as u64,
                    content_size: None,
                },
            ]
        );
    }

    #[test]
    fn a_torn_frame_is_an_error() {
        let bytes = frame(Some(1000), &[(2, 1000, 1000)]);
        let torn = &bytes[..bytes.len() / 2];
        let file = write_test_file("torn", torn);
        let error = zstd_frames(&file, torn.len() as u64)
            .unwrap_err()
            .to_string();
        assert!(error.contains("past the end"), "{error}");
    }

    #[test]
    fn logs_are_compared_byte_for_byte() {
        let reference = b"[    0.000000] a\n[    0.100000] b\n";
        compare_logs(reference, reference).unwrap();
        let error = compare_logs(b"[    0.000000] a\n[    0.100000] B\n", reference)
            .unwrap_err()
            .to_string();
        assert!(error.contains("first difference on line 2"), "{error}");
        let error = compare_logs(b"[    0.000000] a\n", reference)
            .unwrap_err()
            .to_string();
        assert!(error.contains("lifeboat:     \"\""), "{error}");
    }

    #[test]
    fn crash_output_is_judged_on_panic_frames_and_log() {
        let finished = |stdout: &str| Finished {
            display: "crash".into(),
            status: std::os::unix::process::ExitStatusExt::from_raw(0),
            timed_out: false,
            deadline: CRASH_DEADLINE,
            stdout: stdout.as_bytes().to_vec(),
            stderr: Vec::new(),
            elapsed: Duration::from_secs(1),
        };
        let good = "       PANIC: \"Kernel panic - not syncing: sysrq triggered crash\"\n\
            PID: 1        TASK: ff31e767811f0000  CPU: 0    COMMAND: \"init\"\n \
            #0 [ff423615400138d8] machine_kexec at ffffffffbb46c62f\n \
            #1 [ff42361540013930] __crash_kexec at ffffffffbb5646b7\n \
            #2 [ff423615400139f0] panic at ffffffffbbdcd06e\n \
            #3 [ff42361540013a70] sysrq_handle_crash at ffffffffbbaa8a06\n \
            #4 [ff42361540013a78] __handle_sysrq.cold at ffffffffbbdf4ac9\n\
            [   12.1] sysrq: Trigger a crash\n";
        let verdict = crash_verdict(&finished(good), good).unwrap();
        assert!(
            verdict.contains("bt: machine_kexec < __crash_kexec < panic < sysrq_handle_crash < __handle_sysrq.cold"),
            "{verdict}"
        );
        let no_frame = good.replace("sysrq_handle_crash", "other_function");
        let error = crash_verdict(&finished(&no_frame), &no_frame)
            .unwrap_err()
            .to_string();
        assert!(error.contains("no sysrq_handle_crash frame"), "{error}");
        let oops = good.replace("sysrq triggered crash", "Oops: 0002");
        let error = crash_verdict(&finished(&oops), &oops)
            .unwrap_err()
            .to_string();
        assert!(error.contains("expected one of"), "{error}");
    }
}

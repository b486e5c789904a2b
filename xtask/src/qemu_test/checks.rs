//! The checks of a finished capture, made with tools we did not write:
//! the filesystem's own tools check and read the disk, zstd decompresses, xxhsum
//! hashes, makedumpfile reads the printk ring, crash opens the dump with the
//! debug kernel (`analysis.rs`). Our own code only compares.

use std::fs::{self, File};
use std::os::unix::fs::FileExt as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _, Result};
use crashme::kinds::Kinds;
use crashme::{Planted, PAGE_SIZE};
use object::elf;
use object::read::elf::{FileHeader, ProgramHeader};
use object::{Endianness, ReadCache};

use dumper::output::INCOMPLETE_SUFFIX;
use dumper::record::{dmesg_file_name, dump_file_name, Record, Status, LOG_FILE, RECORD_FILE};

use super::analysis;
use super::kinds::{self, Planting};
use crate::guest::disk::Fs;
use crate::util;

/// What must be in the kernel log of a sysrq crash.
pub(super) const SYSRQ_LINE: &str = "sysrq: Trigger a crash";
/// How many differences of one kind a report lists before it only counts.
const MAX_LISTED: usize = 10;

/// A check that did not pass.
pub struct Failure {
    pub check: &'static str,
    pub detail: String,
}

/// What the checks need to know about the run.
pub struct Inputs<'a> {
    pub dir: &'a Path,
    /// Where the dump went.
    pub source: Source<'a>,
    /// The target's `directory`, where dump directories are made.
    pub crash_dir: &'a str,
    /// Before the stamp in the dump directory's name: the machine's name
    /// and a dash on a network target, nothing on a disk.
    pub dir_prefix: &'a str,
    pub planted: &'a Planted,
    pub expect_status: &'a str,
    /// What an incomplete dump's record must give as its error.
    pub expect_error: &'a str,
    /// The current makedumpfile, whose `--dump-dmesg` PID 1's log file
    /// must equal; without one, the installed one's, caller column aside.
    pub current_makedumpfile: Option<&'a Path>,
    /// The compression threads lifeboat.json must report: one per CPU.
    pub expect_threads: u32,
    /// For a network target: the protocol (`nfs 4.2`, `ssh`) and address
    /// method (`dhcp`, `static`) the record must name.
    pub expect_network: Option<(String, &'a str)>,
    /// The host CLI, whose reading commands are checked on the dump.
    pub lifeboat: &'a Path,
    /// The debug kernel for crash; needed when a complete dump is expected,
    /// unless `no_crash` says why crash is not run.
    pub vmlinux: Option<&'a Path>,
    pub no_crash: Option<&'a str>,
    /// The config's dump level: at a level that leaves out user data (8),
    /// crashme's planted pages, anonymous memory, must be zeros.
    pub dump_level: u8,
    /// The makedumpfile to compare lifeboat's dump levels with on this
    /// vmcore, if they are compared.
    pub compare_levels: Option<&'a Path>,
    /// The pages of every kind crashme planted, when it did: checked in
    /// the dump, and at every level compared.
    pub kinds: Option<&'a Kinds>,
}

/// The status of a dump that holds all of the vmcore: only such dumps get
/// the checks of `analysis.rs`.
pub const COMPLETE: &str = "complete";
/// The expectation of scenarios where no target can take a dump.
pub const NONE: &str = "none";

/// Where a scenario's dump went: a disk image, read with the filesystem's
/// own tools, or a directory of this machine that a test server (NFS, ssh)
/// wrote into.
pub enum Source<'a> {
    Disk { fs: Fs, disk: &'a Path },
    HostDir { root: &'a Path },
}

impl Source<'_> {
    /// What the first check is called.
    fn check_name(&self) -> &'static str {
        match self {
            Source::Disk { .. } => "fsck",
            Source::HostDir { .. } => "server directory",
        }
    }

    /// The filesystem check of a disk; that a server's directory is there.
    fn check(&self) -> Result<String> {
        match self {
            Source::Disk { fs, disk } => fs.check(disk),
            Source::HostDir { root } if root.is_dir() => Ok(root.display().to_string()),
            Source::HostDir { root } => bail!("{} does not exist", root.display()),
        }
    }

    /// Where `dir_on_target` can be read: a copy off the disk in `out`, or
    /// the server's directory itself; `None` when it does not exist.
    fn copy_dir(&self, dir_on_target: &str, out: &Path) -> Result<Option<PathBuf>> {
        match self {
            Source::Disk { fs, disk } => fs.copy_dir(disk, dir_on_target, out),
            Source::HostDir { root } => {
                let dir = root.join(dir_on_target.trim_start_matches('/'));
                Ok(dir.is_dir().then_some(dir))
            }
        }
    }

    /// The permission bits of `path_on_target`, whose readable copy is
    /// `copy`; `None` where the filesystem stores none.
    fn mode(&self, path_on_target: &str, copy: &Path) -> Result<Option<u32>> {
        match self {
            Source::Disk { fs, disk } => fs.mode(disk, path_on_target, copy),
            Source::HostDir { .. } => {
                let meta = fs::symlink_metadata(copy)
                    .with_context(|| format!("cannot stat {}", copy.display()))?;
                Ok(Some(meta.permissions().mode() & 0o7777))
            }
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Source::Disk { fs, .. } => fs.name(),
            Source::HostDir { .. } => "the server",
        }
    }
}

/// Runs every check that can run and prints each one that passes; a check
/// whose input is missing because an earlier one failed is skipped, the
/// others still run, so one VM run reports as much as it can.
pub fn run(inputs: &Inputs) -> Vec<Failure> {
    let mut report = Report::default();
    if !report.record(inputs.source.check_name(), inputs.source.check()) {
        return report.failures;
    }
    let mut failures = report.failures;
    failures.extend(match inputs.expect_status {
        COMPLETE => check_complete(inputs),
        NONE => check_no_dump(inputs),
        _ => check_unfinished(inputs),
    });
    failures
}

fn check_complete(inputs: &Inputs) -> Vec<Failure> {
    let mut report = Report::default();
    let dump = match extract(inputs) {
        Ok(dump) => dump,
        Err(error) => {
            report.fail("dump directory", error);
            return report.failures;
        }
    };
    report.ok(
        "dump directory",
        format!(
            "{}/{}: {}",
            inputs.crash_dir,
            dump.dir_name,
            dump.files.join(" ")
        ),
    );
    report.record("file modes", check_modes(inputs, &dump));
    if let Some((protocol, method)) = &inputs.expect_network {
        report.record(
            "network record",
            check_network_record(&dump, protocol, method),
        );
        if protocol == "ssh" {
            report.record("identity in the image", check_identity_mode(inputs));
        }
    }
    report.record("no secrets", check_no_secrets(inputs, &dump));
    let xxh64 = match check_json(&dump, inputs.expect_status, inputs.expect_threads) {
        Ok(xxh64) => {
            report.ok(
                "lifeboat.json",
                format!(
                    "status {}, {} thread(s), xxh64 {xxh64}",
                    inputs.expect_status, inputs.expect_threads
                ),
            );
            Some(xxh64)
        }
        Err(error) => {
            report.fail("lifeboat.json", error);
            None
        }
    };
    let vmcore = inputs.dir.join("vmcore");
    match decompress(&dump.dump, &vmcore) {
        Ok(size) => report.ok("zstd -d", format!("{size} bytes")),
        Err(error) => {
            report.fail("zstd -d", error);
            return report.failures;
        }
    }
    if let Some(xxh64) = xxh64 {
        match check_xxh64(&vmcore, &xxh64) {
            Ok(()) => report.ok("xxh64", "xxhsum -H64 agrees".into()),
            Err(error) => report.fail("xxh64", error),
        }
    }
    let mut vmcoreinfo = None;
    match check_elf(&vmcore) {
        Ok(core) => {
            report.ok(
                "ELF core",
                format!("ET_CORE, VMCOREINFO, {} PT_LOADs", core.loads.len()),
            );
            if inputs.dump_level & USER_DATA != 0 {
                report.record(
                    "planted pages",
                    check_planted_excluded(&vmcore, &core.loads, inputs.planted, &dump.json),
                );
            } else {
                match check_planted(&vmcore, &core.loads, inputs.planted) {
                    Ok(()) => report.ok(
                        "planted pages",
                        format!("{} pages intact", inputs.planted.n_pages),
                    ),
                    Err(error) => report.fail("planted pages", error),
                }
            }
            vmcoreinfo = Some(core.vmcoreinfo);
            let planting = inputs.kinds.map(|kinds| Planting {
                planted: inputs.planted,
                kinds,
            });
            // The captured dump at its level, then lifeboat's dump of each
            // level compared with makedumpfile's.
            let mut kinds_checked = Vec::new();
            if let Some(planting) = &planting {
                kinds_checked.push(kinds::check_dump(&dump.dump, inputs.dump_level, planting));
            }
            if let Some(makedumpfile) = inputs.compare_levels {
                let mut each_dump = |level: u8, path: &Path| {
                    if let Some(planting) = &planting {
                        kinds_checked.push(kinds::check_dump(path, level, planting));
                    }
                };
                report.record(
                    "dump levels",
                    super::levels::check_levels(
                        inputs.lifeboat,
                        makedumpfile,
                        &vmcore,
                        inputs
                            .vmlinux
                            .ok_or(inputs.no_crash.unwrap_or("no debug kernel")),
                        inputs.dir,
                        &mut each_dump,
                    ),
                );
            }
            if planting.is_some() {
                report.record("planted kinds", combine(kinds_checked));
            }
        }
        Err(error) => report.fail("ELF core", error),
    }
    let reference_dmesg = inputs.dir.join("makedumpfile-dmesg.txt");
    let current_dmesg = inputs.dir.join("makedumpfile-current-dmesg.txt");
    match check_dmesg(
        &vmcore,
        &dump.dmesg,
        &reference_dmesg,
        inputs.current_makedumpfile,
        &current_dmesg,
    ) {
        Ok(detail) => report.ok("dmesg", detail),
        Err(error) => report.fail("dmesg", error),
    }
    if inputs.expect_status != COMPLETE {
        return report.failures;
    }
    let vmlinux = match (inputs.vmlinux, inputs.no_crash) {
        (Some(vmlinux), _) => Ok(vmlinux),
        (None, Some(reason)) => Err(reason),
        (None, None) => {
            report.fail("crash", anyhow::anyhow!("no debug kernel was fetched"));
            return report.failures;
        }
    };
    let record = read_record(&dump.json).unwrap_or_default();
    let context = analysis::Context {
        dir: inputs.dir,
        dump: &dump.dump,
        vmcore: &vmcore,
        record: &record,
        vmcoreinfo: vmcoreinfo.as_deref(),
        reference_dmesg: &reference_dmesg,
        current_makedumpfile: inputs.current_makedumpfile,
        current_dmesg: &current_dmesg,
        lifeboat: inputs.lifeboat,
        vmlinux,
    };
    analysis::run(&context, &mut report);
    report.failures
}

/// A scenario where no target exists: the disk must hold no dump.
fn check_no_dump(inputs: &Inputs) -> Vec<Failure> {
    let mut report = Report::default();
    let crash_dir = inputs.crash_dir;
    let result = (|| -> Result<String> {
        let Some(crash) = copy_crash_dir(inputs)? else {
            return Ok(format!("{crash_dir} is not on the target, as expected"));
        };
        let entries = list(&crash)?;
        if !entries.is_empty() {
            bail!("expected no dump, found {crash_dir}: {entries:?}");
        }
        Ok(format!("{crash_dir} is empty, as expected"))
    })();
    report.record("no dump", result);
    report.failures
}

/// A scenario whose dump must not finish (full disk, deadline): the kernel
/// log was saved first, the dump keeps its `.incomplete` name, the record
/// says what happened, modes are private, and `lifeboat verify` calls the
/// dump incomplete.
fn check_unfinished(inputs: &Inputs) -> Vec<Failure> {
    let mut report = Report::default();
    let dump = match extract_unfinished(inputs) {
        Ok((dump, detail)) => {
            report.ok("unfinished dump", detail);
            dump
        }
        Err(error) => {
            report.fail("unfinished dump", error);
            return report.failures;
        }
    };
    report.record("file modes", check_modes(inputs, &dump));
    report.record(
        "lifeboat verify",
        analysis::check_verify_unfinished(inputs.lifeboat, &dump.dump),
    );
    report.failures
}

fn extract_unfinished(inputs: &Inputs) -> Result<(Dump, String)> {
    let crash_dir = inputs.crash_dir;
    let crash =
        copy_crash_dir(inputs)?.with_context(|| format!("{crash_dir} is not on the target"))?;
    let entries = list(&crash)?;
    let [dir_name] = entries.as_slice() else {
        bail!("expected one dump directory in {crash_dir}, found {entries:?}");
    };
    let stamp = dir_name.strip_prefix(inputs.dir_prefix).with_context(|| {
        format!(
            "{crash_dir}/{dir_name} does not start with {:?}",
            inputs.dir_prefix
        )
    })?;
    let dump_dir = crash.join(dir_name);
    let files = list(&dump_dir)?;
    let dump = Dump {
        dir_name: dir_name.clone(),
        dmesg: dump_dir.join(dmesg_file_name(stamp)),
        dump: dump_dir.join(dump_file_name(stamp) + INCOMPLETE_SUFFIX),
        json: dump_dir.join(RECORD_FILE),
        files,
    };
    if dump_dir.join(dump_file_name(stamp)).exists() {
        bail!("the dump was renamed as if complete: {:?}", dump.files);
    }
    for path in [&dump.dmesg, &dump.dump, &dump.json] {
        if !path.is_file() {
            bail!("{} is missing; found {:?}", path.display(), dump.files);
        }
    }
    let dmesg = fs::read_to_string(&dump.dmesg)?;
    if !dmesg.contains(SYSRQ_LINE) {
        bail!("dmesg.{stamp} was saved but lacks `{SYSRQ_LINE}`");
    }
    let record = read_record(&dump.json)?;
    let status = record.status.context("the record has no status")?;
    if status.as_str() != inputs.expect_status {
        bail!(
            "status is {:?}, expected {:?}: {record:?}",
            status.as_str(),
            inputs.expect_status
        );
    }
    let error = record.error.clone().unwrap_or_default();
    if status == Status::Incomplete && !error.contains(inputs.expect_error) {
        bail!(
            "an incomplete dump's record must say why ({:?}); it says {error:?}",
            inputs.expect_error
        );
    }
    if error.contains("deadline") {
        // A cut: where the capture was and how far the dump got.
        let (Some(stage), Some(done), Some(written)) =
            (&record.stage, record.vmcore_bytes_done, record.dump_bytes)
        else {
            bail!("a dump cut by the deadline must record its stage and bytes: {record:?}");
        };
        if !stage.starts_with("dumping to") || done == 0 || written == 0 {
            bail!("the cut was recorded at {stage:?} after {done} bytes read, {written} written");
        }
    }
    if !dump.dmesg.with_file_name(LOG_FILE).is_file() {
        bail!("{LOG_FILE} was not saved beside the unfinished dump");
    }
    let size = fs::metadata(&dump.dump)?.len();
    Ok((
        dump,
        format!(
            "dmesg saved, dump.{stamp}.zst.incomplete ({size} bytes), status {}, error: {error}",
            status.as_str()
        ),
    ))
}

/// The checks' verdicts so far; each is printed as it comes.
#[derive(Default)]
pub(super) struct Report {
    failures: Vec<Failure>,
}

impl Report {
    pub(super) fn ok(&mut self, check: &'static str, detail: String) {
        println!("  ok  {check}: {detail}");
    }

    pub(super) fn fail(&mut self, check: &'static str, error: anyhow::Error) {
        println!("  FAIL  {check}");
        self.failures.push(Failure {
            check,
            detail: format!("{error:#}"),
        });
    }

    /// `ok` or `fail` by the result; returns whether it passed.
    pub(super) fn record(&mut self, check: &'static str, result: Result<String>) -> bool {
        match result {
            Ok(detail) => {
                self.ok(check, detail);
                true
            }
            Err(error) => {
                self.fail(check, error);
                false
            }
        }
    }
}

/// The files of the one dump directory, copied off the disk.
struct Dump {
    /// `[<name>-]<YYYYmmddHHMM>`.
    dir_name: String,
    dmesg: PathBuf,
    dump: PathBuf,
    json: PathBuf,
    files: Vec<String>,
}

/// Copies the target's dump directory (`/var/crash`) off the disk into
/// `<dir>/extracted/`, or finds it in the server's directory; returns where
/// it is, or `None` when the target has none.
fn copy_crash_dir(inputs: &Inputs) -> Result<Option<PathBuf>> {
    inputs
        .source
        .copy_dir(inputs.crash_dir, &inputs.dir.join("extracted"))
}

fn extract(inputs: &Inputs) -> Result<Dump> {
    let crash_dir = inputs.crash_dir;
    let crash =
        copy_crash_dir(inputs)?.with_context(|| format!("{crash_dir} is not on the target"))?;

    let mut incomplete = Vec::new();
    find_incomplete(&crash, &mut incomplete)?;
    if !incomplete.is_empty() {
        bail!("left behind: {incomplete:?}");
    }
    let entries = list(&crash)?;
    let [dir_name] = entries.as_slice() else {
        bail!("expected one dump directory in {crash_dir}, found {entries:?}");
    };
    let prefix = inputs.dir_prefix;
    let stamp = dir_name.strip_prefix(prefix).unwrap_or_default();
    if stamp.len() != 12 || !stamp.bytes().all(|byte| byte.is_ascii_digit()) {
        bail!("dump directory {crash_dir}/{dir_name} is not named {prefix}YYYYmmddHHMM");
    }
    let dump_dir = crash.join(dir_name);
    let files = list(&dump_dir)?;
    let dump = Dump {
        dir_name: dir_name.clone(),
        dmesg: dump_dir.join(dmesg_file_name(stamp)),
        dump: dump_dir.join(dump_file_name(stamp)),
        json: dump_dir.join(RECORD_FILE),
        files,
    };
    let log = dump_dir.join(LOG_FILE);
    for path in [&dump.dmesg, &dump.dump, &dump.json, &log] {
        if !path.is_file() {
            bail!(
                "{crash_dir}/{dir_name} has no {}; it has {:?}",
                path.file_name().unwrap_or_default().to_string_lossy(),
                dump.files
            );
        }
    }
    Ok(dump)
}

fn find_incomplete(dir: &Path, found: &mut Vec<String>) -> Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if path.to_string_lossy().ends_with(INCOMPLETE_SUFFIX) {
            found.push(path.display().to_string());
        }
        if entry.file_type()?.is_dir() {
            find_incomplete(&path, found)?;
        }
    }
    Ok(())
}

fn list(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        names.push(entry?.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

/// A crash dump holds everything that was in memory, secrets included: only
/// root may read it. vfat stores no modes; there the check says so.
fn check_modes(inputs: &Inputs, dump: &Dump) -> Result<String> {
    let dump_dir = format!("{}/{}", inputs.crash_dir, dump.dir_name);
    let copy_dir = dump.dmesg.parent().context("the dump has no directory")?;
    let mut wrong = Vec::new();
    let mut checked = 0;
    let mut expect = |path: String, copy: PathBuf, mode: u32| -> Result<()> {
        if let Some(actual) = inputs.source.mode(&path, &copy)? {
            checked += 1;
            if actual != mode {
                wrong.push(format!("{path} is {actual:04o}, expected {mode:04o}"));
            }
        }
        Ok(())
    };
    expect(dump_dir.clone(), copy_dir.to_owned(), 0o700)?;
    for name in &dump.files {
        expect(format!("{dump_dir}/{name}"), copy_dir.join(name), 0o600)?;
    }
    if !wrong.is_empty() {
        bail!("{}", wrong.join("; "));
    }
    Ok(if checked == 0 {
        format!("{} stores no modes", inputs.source.name())
    } else {
        "directory 0700, files 0600".into()
    })
}

/// Reads `lifeboat.json` with the record's own reader.
fn read_record(path: &Path) -> Result<Record> {
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Record::read(&text).with_context(|| format!("{}: {text}", path.display()))
}

/// A network target's record says how the network came up and what it
/// reached: the address QEMU's network gives, the method, the protocol, and
/// for ssh the host key.
fn check_network_record(dump: &Dump, protocol: &str, method: &str) -> Result<String> {
    let record = read_record(&dump.json)?;
    let network = record
        .network
        .as_ref()
        .context("the record has no network")?;
    if network.address != "10.0.2.15/24" || network.method != method {
        bail!("network is {network:?}, expected 10.0.2.15/24 by {method}");
    }
    if record.target_protocol.as_deref() != Some(protocol) {
        bail!(
            "target_protocol is {:?}, expected {protocol:?}",
            record.target_protocol
        );
    }
    let server = record.target_server.as_deref().unwrap_or_default();
    if !server.starts_with("10.0.2.2") {
        bail!("target_server is {server:?}, expected 10.0.2.2");
    }
    let fingerprint = record.host_key_fingerprint.as_deref();
    match (protocol, fingerprint) {
        ("ssh", Some(key)) if key.starts_with("SHA256:") => {}
        ("ssh", other) => bail!("an ssh target's record needs the host key; it has {other:?}"),
        (_, None) => {}
        (_, Some(key)) => bail!("only ssh targets have host keys; the record has {key}"),
    }
    Ok(format!(
        "{} {} by {} in {:.2} s, {protocol} to {server}{}",
        network.interface,
        network.address,
        network.method,
        network.seconds,
        fingerprint
            .map(|key| format!(", host key {key}"))
            .unwrap_or_default()
    ))
}

/// The ssh identity is in the capture image readable by root alone, as
/// GNU cpio lists it.
fn check_identity_mode(inputs: &Inputs) -> Result<String> {
    let image = inputs.dir.join("lifeboat.img");
    let listing = util::output(Command::new("sh").arg("-c").arg(format!(
        "zstd -dc '{}' | cpio -itv --quiet",
        image.display()
    )))?;
    let line = listing
        .lines()
        .find(|line| line.ends_with("etc/lifeboat/ssh/identity0"))
        .with_context(|| format!("no etc/lifeboat/ssh/identity0 in {}", image.display()))?;
    if !line.starts_with("-rw------- ") {
        bail!("the identity is listed as {line:?}, not -rw-------");
    }
    let dir = listing
        .lines()
        .find(|line| line.ends_with(" etc/lifeboat/ssh"))
        .context("no etc/lifeboat/ssh directory in the image")?;
    if !dir.starts_with("drwx------ ") {
        bail!("the identity's directory is listed as {dir:?}, not drwx------");
    }
    Ok("etc/lifeboat/ssh/identity0 is -rw------- in drwx------".to_owned())
}

/// No private key reaches the console, the log or the record.
fn check_no_secrets(inputs: &Inputs, dump: &Dump) -> Result<String> {
    let log = dump.json.with_file_name(LOG_FILE);
    let files = [inputs.dir.join("serial.log"), log, dump.json.clone()];
    for file in &files {
        let text = fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        if text.windows(11).any(|window| window == b"PRIVATE KEY") {
            bail!("{} contains `PRIVATE KEY`", file.display());
        }
    }
    Ok("no `PRIVATE KEY` in serial.log, lifeboat.log or lifeboat.json".to_owned())
}

/// Checks the status and the thread count, and returns the recorded xxh64
/// as `xxhsum -H64` prints it.
fn check_json(dump: &Dump, expect_status: &str, expect_threads: u32) -> Result<String> {
    let record = read_record(&dump.json)?;
    let status = record.status.map(Status::as_str);
    if status != Some(expect_status) {
        bail!("status is {status:?}, expected {expect_status:?}: {record:?}");
    }
    let threads = record.threads.context("no thread count")?;
    if threads != expect_threads as usize {
        bail!("{threads} compression threads, expected {expect_threads} (one per CPU)");
    }
    let xxh64 = record.xxh64.context("no xxh64")?;
    Ok(format!("{xxh64:016x}"))
}

fn decompress(dump: &Path, vmcore: &Path) -> Result<u64> {
    util::output(
        Command::new("zstd")
            .args(["-d", "-q", "-f"])
            .arg(dump)
            .arg("-o")
            .arg(vmcore),
    )?;
    Ok(fs::metadata(vmcore)?.len())
}

fn check_xxh64(vmcore: &Path, recorded: &str) -> Result<()> {
    let output = util::output(Command::new("xxhsum").arg("-H64").arg(vmcore))?;
    let actual = output.split_whitespace().next().unwrap_or_default();
    if !actual.eq_ignore_ascii_case(recorded) {
        bail!("lifeboat.json says {recorded}, xxhsum -H64 of the decompressed dump says {actual}");
    }
    Ok(())
}

/// What the checks use of the vmcore's ELF headers.
struct Core {
    loads: Vec<Load>,
    /// The VMCOREINFO note's text.
    vmcoreinfo: String,
}

/// A PT_LOAD: physical memory at `paddr` is in the file at `offset`.
struct Load {
    paddr: u64,
    offset: u64,
    filesz: u64,
}

/// The dump must be what /proc/vmcore is: an ELF core with a VMCOREINFO note
/// and the memory in PT_LOADs.
fn check_elf(vmcore: &Path) -> Result<Core> {
    let file = File::open(vmcore)?;
    let data = ReadCache::new(file);
    let header = elf::FileHeader64::<Endianness>::parse(&data)?;
    let endian = header.endian()?;
    if header.e_type(endian) != elf::ET_CORE {
        bail!("e_type is {}, not ET_CORE", header.e_type(endian));
    }
    let mut loads = Vec::new();
    let mut vmcoreinfo = None;
    for segment in header.program_headers(endian, &data)? {
        match segment.p_type(endian) {
            elf::PT_LOAD => loads.push(Load {
                paddr: segment.p_paddr(endian),
                offset: segment.p_offset(endian),
                filesz: segment.p_filesz(endian),
            }),
            elf::PT_NOTE => {
                let mut notes = segment.notes(endian, &data)?.context("PT_NOTE")?;
                while let Some(note) = notes.next()? {
                    if note.name() == b"VMCOREINFO" {
                        vmcoreinfo = Some(String::from_utf8_lossy(note.desc()).into_owned());
                    }
                }
            }
            _ => {}
        }
    }
    let vmcoreinfo = vmcoreinfo.context("no VMCOREINFO note in the PT_NOTEs")?;
    if !vmcoreinfo.contains("OSRELEASE=") {
        bail!("the VMCOREINFO note has no OSRELEASE: {vmcoreinfo:?}");
    }
    if loads.is_empty() {
        bail!("no PT_LOAD");
    }
    Ok(Core { loads, vmcoreinfo })
}

/// One report line of several checks: each one's line, or every failure.
fn combine(results: Vec<Result<String>>) -> Result<String> {
    let (good, bad): (Vec<_>, Vec<_>) = results.into_iter().partition(Result::is_ok);
    if !bad.is_empty() {
        let errors: Vec<String> = bad
            .into_iter()
            .filter_map(Result::err)
            .map(|error| format!("{error:#}"))
            .collect();
        bail!("{}", errors.join(" | "));
    }
    Ok(good
        .into_iter()
        .filter_map(Result::ok)
        .collect::<Vec<_>>()
        .join("\n        "))
}

/// makedumpfile's dump level bit for user data.
const USER_DATA: u8 = 8;

/// At a level that leaves out user data, every page crashme planted (its
/// own anonymous memory) must be zeros in the dump, and the record must
/// count at least as many user pages left out.
fn check_planted_excluded(
    vmcore: &Path,
    loads: &[Load],
    planted: &Planted,
    json: &Path,
) -> Result<String> {
    let file = File::open(vmcore)?;
    let mut actual = vec![0u8; PAGE_SIZE];
    let mut kept = Vec::new();
    let mut n_kept = 0u64;
    for run in &planted.runs {
        for page in 0..run.n_pages {
            let pfn = run.pfn + page;
            let paddr = pfn * PAGE_SIZE as u64;
            let Some(load) = loads.iter().find(|load| {
                paddr >= load.paddr && paddr + PAGE_SIZE as u64 <= load.paddr + load.filesz
            }) else {
                bail!("planted pfn {pfn:#x} is in no PT_LOAD");
            };
            file.read_exact_at(&mut actual, load.offset + (paddr - load.paddr))?;
            if actual.iter().any(|&byte| byte != 0) {
                n_kept += 1;
                if kept.len() < MAX_LISTED {
                    kept.push(format!("pfn {pfn:#x}"));
                }
            }
        }
    }
    if n_kept > 0 {
        bail!(
            "{n_kept} of {} planted pages (user data) are still in the dump: {}",
            planted.n_pages,
            kept.join(", ")
        );
    }
    let record: serde_json::Value = serde_json::from_str(&fs::read_to_string(json)?)?;
    let user = record["excluded_pages"]["user"]
        .as_u64()
        .with_context(|| format!("lifeboat.json has no excluded_pages.user: {record}"))?;
    if user < planted.n_pages {
        bail!(
            "lifeboat.json counts {user} user pages left out, fewer than the {} planted",
            planted.n_pages
        );
    }
    Ok(format!(
        "{} planted pages left out as user data; the record counts {user} user pages, {}",
        planted.n_pages, record["excluded_pages"]
    ))
}

/// Every page crashme planted must be in the dump, at its physical address,
/// with its pattern.
fn check_planted(vmcore: &Path, loads: &[Load], planted: &Planted) -> Result<()> {
    let file = File::open(vmcore)?;
    let mut expected = vec![0u8; PAGE_SIZE];
    let mut actual = vec![0u8; PAGE_SIZE];
    let mut problems = Vec::new();
    let mut n_bad = 0u64;
    for run in &planted.runs {
        for page in 0..run.n_pages {
            let page_idx = run.page_idx + page;
            let pfn = run.pfn + page;
            let paddr = pfn * PAGE_SIZE as u64;
            let Some(load) = loads.iter().find(|load| {
                paddr >= load.paddr && paddr + PAGE_SIZE as u64 <= load.paddr + load.filesz
            }) else {
                n_bad += 1;
                if problems.len() < MAX_LISTED {
                    problems.push(format!("page {page_idx} (pfn {pfn:#x}): in no PT_LOAD"));
                }
                continue;
            };
            file.read_exact_at(&mut actual, load.offset + (paddr - load.paddr))?;
            crashme::fill_page(planted.seed, page_idx, &mut expected);
            if actual != expected {
                n_bad += 1;
                if problems.len() < MAX_LISTED {
                    let first = actual
                        .iter()
                        .zip(&expected)
                        .position(|(a, b)| a != b)
                        .unwrap_or_default();
                    let zero = if actual.iter().all(|&byte| byte == 0) {
                        ", the page is all zero"
                    } else {
                        ""
                    };
                    problems.push(format!(
                        "page {page_idx} (pfn {pfn:#x}): differs from byte {first}{zero}"
                    ));
                }
            }
        }
    }
    if n_bad > 0 {
        bail!(
            "{n_bad} of {} planted pages are wrong: {}",
            planted.n_pages,
            problems.join("; ")
        );
    }
    Ok(())
}

/// makedumpfile must read the kernel log from our dump and it must show the
/// crash; lifeboat's own `dmesg.<stamp>` must say exactly what the current
/// makedumpfile (1.7.5 and later, with the printk caller column) says, or,
/// without one, what the installed one says once the caller column is
/// taken out of ours. Both makedumpfiles' logs are left for analysis.rs:
/// the installed one's in `installed_out`, the current one's in
/// `current_out`.
fn check_dmesg(
    vmcore: &Path,
    ours: &Path,
    installed_out: &Path,
    current: Option<&Path>,
    current_out: &Path,
) -> Result<String> {
    let dump_dmesg = |program: &Path, out: &Path| -> Result<String> {
        if out.exists() {
            fs::remove_file(out)?;
        }
        util::output(
            Command::new(program)
                .arg("--dump-dmesg")
                .arg(vmcore)
                .arg(out),
        )?;
        let log = String::from_utf8_lossy(&fs::read(out)?).into_owned();
        if !log.contains(SYSRQ_LINE) {
            bail!(
                "{}'s log of the dump has no `{SYSRQ_LINE}`",
                program.display()
            );
        }
        Ok(log)
    };
    let installed = dump_dmesg(Path::new("makedumpfile"), installed_out)?;
    let ours = String::from_utf8_lossy(&fs::read(ours)?).into_owned();
    let Some(current) = current else {
        let without_callers: String = ours
            .lines()
            .map(|line| without_caller(line) + "\n")
            .collect();
        let n_records = compare_records(&without_callers, &installed)
            .context("against the installed makedumpfile, caller column aside")?;
        return Ok(format!(
            "{n_records} records, identical to the installed makedumpfile --dump-dmesg but \
             for the caller column"
        ));
    };
    let reference = dump_dmesg(current, current_out)?;
    let n_records = compare_records(&ours, &reference)
        .with_context(|| format!("against {}", current.display()))?;
    Ok(format!(
        "{n_records} records, identical to {} --dump-dmesg",
        current.display()
    ))
}

/// A log line without its caller column: `[    1.000000] [    T123] text`
/// becomes `[    1.000000] text`, as makedumpfile 1.7.4 and older print it.
fn without_caller(line: &str) -> String {
    let Some((stamp, rest)) = line.split_once("] ") else {
        return line.to_owned();
    };
    let caller = rest
        .strip_prefix('[')
        .and_then(|rest| rest.split_once("] "))
        .filter(|(id, _)| {
            let id = id.trim_start();
            id.len() >= 2
                && (id.starts_with('T') || id.starts_with('C'))
                && id[1..].bytes().all(|byte| byte.is_ascii_digit())
        });
    match caller {
        Some((_, text)) => format!("{stamp}] {text}"),
        None => line.to_owned(),
    }
}

/// A record line starts with the `[seconds.micros]` stamp; other lines of
/// lifeboat's file (a header, say) are not compared.
fn records(text: &str) -> Vec<&str> {
    text.lines().filter(|line| line.starts_with('[')).collect()
}

/// Returns the number of records when they are the same.
fn compare_records(ours: &str, reference: &str) -> Result<usize> {
    let ours = records(ours);
    let reference = records(reference);
    let mut differences = Vec::new();
    let mut n_different = 0;
    for (record_idx, (a, b)) in ours.iter().zip(&reference).enumerate() {
        if a != b {
            n_different += 1;
            if differences.len() < MAX_LISTED {
                differences.push(format!(
                    "record {record_idx}:\n  lifeboat:     {a:?}\n  makedumpfile: {b:?}"
                ));
            }
        }
    }
    if n_different == 0 && ours.len() == reference.len() {
        return Ok(ours.len());
    }
    let mut report = format!(
        "lifeboat has {} records, makedumpfile {}; {n_different} of the first {} differ",
        ours.len(),
        reference.len(),
        ours.len().min(reference.len())
    );
    for difference in differences {
        report.push('\n');
        report.push_str(&difference);
    }
    let common = ours.len().min(reference.len());
    if ours.len() > common {
        report.push_str(&format!(
            "\n  first extra lifeboat record: {:?}",
            ours[common]
        ));
    }
    if reference.len() > common {
        report.push_str(&format!(
            "\n  first record lifeboat lacks: {:?}",
            reference[common]
        ));
    }
    bail!("{report}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use dumper::elf::write;

    /// A minimal ELF core: one PT_NOTE holding a VMCOREINFO note, and one
    /// PT_LOAD mapping `memory` at physical address `paddr`.
    fn synthetic_core(paddr: u64, memory: &[u8]) -> Vec<u8> {
        let note = write::note(b"VMCOREINFO", 0, b"OSRELEASE=6.1.0-test\nPAGESIZE=4096\n");
        let load = write::Load {
            vaddr: paddr,
            paddr,
            data: memory,
            mem_size: memory.len() as u64,
        };
        write::core_file(&note, &[load], PAGE_SIZE as u64)
    }

    /// Physical memory of 8 pages at 1 MiB holding pages 0..3 of `seed` in
    /// frames 0x102, 0x103, 0x104 and page 3 in frame 0x100.
    fn planted_memory(seed: u64) -> (Vec<u8>, Planted) {
        let mut memory = vec![0u8; 8 * PAGE_SIZE];
        let frames = [0x102u64, 0x103, 0x104, 0x100];
        for (page_idx, pfn) in (0u64..).zip(frames) {
            let start = (pfn - 0x100) as usize * PAGE_SIZE;
            crashme::fill_page(seed, page_idx, &mut memory[start..start + PAGE_SIZE]);
        }
        (memory, Planted::from_pfns(seed, &frames))
    }

    #[test]
    fn planted_pages_are_found_at_their_physical_address() {
        let dir = test_dir("planted-ok");
        let (memory, planted) = planted_memory(42);
        let vmcore = dir.join("vmcore");
        fs::write(&vmcore, synthetic_core(0x100 * PAGE_SIZE as u64, &memory)).unwrap();
        let loads = check_elf(&vmcore).unwrap().loads;
        check_planted(&vmcore, &loads, &planted).unwrap();
    }

    #[test]
    fn a_wrong_missing_or_zero_page_fails_the_check() {
        let dir = test_dir("planted-bad");
        let (mut memory, planted) = planted_memory(42);
        // Page 3 (frame 0x100) zeroed, as a dump that skipped it would be.
        memory[..PAGE_SIZE].fill(0);
        let vmcore = dir.join("vmcore");
        fs::write(&vmcore, synthetic_core(0x100 * PAGE_SIZE as u64, &memory)).unwrap();
        let loads = check_elf(&vmcore).unwrap().loads;
        let error = check_planted(&vmcore, &loads, &planted)
            .unwrap_err()
            .to_string();
        assert!(error.contains("1 of 4 planted pages are wrong"), "{error}");
        assert!(error.contains("page 3 (pfn 0x100): differs from byte 0, the page is all zero"));

        // The same memory one page higher: nothing is where the report says.
        let (memory, planted) = planted_memory(42);
        fs::write(&vmcore, synthetic_core(0x101 * PAGE_SIZE as u64, &memory)).unwrap();
        let loads = check_elf(&vmcore).unwrap().loads;
        let error = check_planted(&vmcore, &loads, &planted)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("page 3 (pfn 0x100): in no PT_LOAD"),
            "{error}"
        );

        // Another seed's pattern does not pass for ours.
        let (memory, _) = planted_memory(43);
        fs::write(&vmcore, synthetic_core(0x100 * PAGE_SIZE as u64, &memory)).unwrap();
        let loads = check_elf(&vmcore).unwrap().loads;
        let error = check_planted(&vmcore, &loads, &planted)
            .unwrap_err()
            .to_string();
        assert!(error.contains("4 of 4 planted pages are wrong"), "{error}");
    }

    #[test]
    fn a_core_without_vmcoreinfo_is_rejected() {
        let dir = test_dir("no-vmcoreinfo");
        let mut core = synthetic_core(0, &[0; PAGE_SIZE]);
        let at = core.windows(10).position(|w| w == b"VMCOREINFO").unwrap();
        core[at..at + 10].copy_from_slice(b"NOTVMCORE!");
        let vmcore = dir.join("vmcore");
        fs::write(&vmcore, core).unwrap();
        let error = check_elf(&vmcore).err().unwrap().to_string();
        assert!(error.contains("no VMCOREINFO"), "{error}");
    }

    /// A fresh directory under the target dir for one test.
    fn test_dir(name: &str) -> PathBuf {
        let dir = crate::util::target_dir().join("xtask-tests").join(name);
        if dir.exists() {
            fs::remove_dir_all(&dir).unwrap();
        }
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn caller_columns_are_taken_out() {
        let cases = [
            (
                "[    0.000000] [      T0] Linux version 6.1.0",
                "[    0.000000] Linux version 6.1.0",
            ),
            ("[   12.5] [     C1] sysrq: x", "[   12.5] sysrq: x"),
            ("[    1.0] [not a caller] x", "[    1.0] [not a caller] x"),
            ("[    1.0] plain", "[    1.0] plain"),
            ("no stamp", "no stamp"),
        ];
        for (line, want) in cases {
            assert_eq!(without_caller(line), want, "{line}");
        }
    }

    #[test]
    fn record_differences_are_reported_by_index() {
        let reference = "[    0.000000] a\n[    0.100000] b\n[    0.200000] c\n";
        assert_eq!(
            compare_records(&format!("# header\n{reference}"), reference).unwrap(),
            3
        );
        let error = compare_records("[    0.000000] a\n[    0.100000] B\n", reference)
            .unwrap_err()
            .to_string();
        assert!(error.contains("record 1:"), "{error}");
        assert!(
            error.contains("first record lifeboat lacks: \"[    0.200000] c\""),
            "{error}"
        );
    }
}

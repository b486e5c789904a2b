//! The capture itself: read what the crashed kernel left, then for each
//! target in order, prepare it (`targets/`), and write the kernel log, the
//! dump, the result record and our own log into a private directory there
//! — stopping at the first target that takes a complete dump.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dumper::error_chain;
use dumper::filter::exclude::Filtering;
use dumper::filter::DumpLevel;
use dumper::output::{Artifact, Destination};
use dumper::plan::Plan;
use dumper::record::ExcludedPages;
use dumper::record::{
    dmesg_file_name, dump_file_name, NetworkRecord, Record, Status, LOG_FILE, RECORD_FILE,
};
use dumper::stream::{compress_excluding, Progress, StreamOptions, StreamSummary};
use dumper::vmcore::Vmcore;
use lifeboat_config::{Config, Target, TargetKind};

use crate::early::ModuleReport;
use crate::logger;
#[cfg(feature = "network")]
use crate::net;
use crate::stage::Stage;
use crate::system::System;
use crate::targets::{self, TargetError};

/// How much of the vmcore is read again to measure the plain read rate.
const READ_RATE_SAMPLE_BYTES: u64 = 1 << 30;
/// How much incompressible data is written to measure the plain write rate
/// of the target: enough to leave the page cache and a TCP window behind.
const WRITE_RATE_SAMPLE_BYTES: u64 = 64 << 20;

/// The paths PID 1 reads and writes, passed in so tests can point them at
/// a temporary tree.
pub struct Environment {
    /// Shared with the threads that run steps which may never return (an
    /// NFS mount against a hung server), which outlive any borrow.
    pub system: Arc<dyn System>,
    pub vmcore: PathBuf,
    pub sys_class_block: PathBuf,
    pub dev: PathBuf,
    /// Targets are mounted at `<mount_root>/target<N>`.
    pub mount_root: PathBuf,
    pub osrelease: PathBuf,
    pub proc_self_status: PathBuf,
    /// Brings network interfaces up, for network targets.
    #[cfg(feature = "network")]
    pub net: Arc<dyn net::NetSystem + Send + Sync>,
    #[cfg(feature = "network")]
    pub net_paths: net::NetPaths,
}

impl Environment {
    pub fn pid1(system: Arc<dyn System>) -> Environment {
        Environment {
            #[cfg(feature = "network")]
            net: Arc::new(net::Linux),
            #[cfg(feature = "network")]
            net_paths: net::NetPaths::pid1(),
            system,
            vmcore: "/proc/vmcore".into(),
            sys_class_block: "/sys/class/block".into(),
            dev: "/dev".into(),
            mount_root: "/mnt".into(),
            osrelease: "/proc/sys/kernel/osrelease".into(),
            proc_self_status: "/proc/self/status".into(),
        }
    }
}

/// What the crashed kernel left that we read before dumping.
#[derive(Default)]
pub struct CrashInfo {
    pub vmcore_bytes: u64,
    pub kernel_release: Option<String>,
    pub build_id: Option<String>,
    pub crash_time: Option<u64>,
    pub panic_message: Option<String>,
    pub dmesg: Option<Vec<u8>>,
    pub dmesg_records: Option<usize>,
    pub dmesg_error: Option<String>,
}

impl CrashInfo {
    /// Reads VMCOREINFO and the printk ring. Failures are recorded, not
    /// fatal: a damaged log must not stop the dump itself.
    pub fn read(vmcore: &File, vmcore_bytes: u64) -> CrashInfo {
        let mut info = CrashInfo {
            vmcore_bytes,
            ..CrashInfo::default()
        };
        let core = match dumper::vmcore::Vmcore::open(vmcore) {
            Ok(core) => core,
            Err(error) => {
                info.dmesg_error = Some(error_chain(&error));
                return info;
            }
        };
        if let Some(vmcoreinfo) = core.vmcoreinfo() {
            info.kernel_release = vmcoreinfo.os_release().map(str::to_owned);
            info.build_id = vmcoreinfo.build_id().map(str::to_owned);
            info.crash_time = vmcoreinfo.crash_time();
        }
        match dumper::printk::read_log(&core) {
            Ok(records) => {
                info.panic_message = dumper::printk::panic_message(&records);
                let mut text = Vec::new();
                // Writing to a Vec cannot fail.
                // As current makedumpfile prints it (with the caller
                // column), which is also `lifeboat dmesg`'s default.
                let _ = dumper::printk::write_dmesg_with_caller_ids(&records, &mut text);
                info.dmesg_records = Some(records.len());
                info.dmesg = Some(text);
            }
            Err(error) => info.dmesg_error = Some(error_chain(&error)),
        }
        info
    }
}

/// Everything `run` needs besides the environment.
pub struct Capture<'a> {
    pub config: &'a Config,
    pub version: &'a str,
    pub modules: &'a ModuleReport,
    pub started: Instant,
    /// Whether to measure the plain read rate of the vmcore after the dump.
    pub measure_read_rate: bool,
}

/// Runs the capture; returns whether a target took a complete dump.
pub fn run(env: &Environment, capture: &Capture, stage: &Stage) -> bool {
    stage.set("opening the vmcore");
    let vmcore = match File::open(&env.vmcore) {
        Ok(file) => file,
        Err(error) => {
            log::error!(
                "cannot open {}: {error}; this kernel was not booted to capture a crash",
                env.vmcore.display()
            );
            return false;
        }
    };
    let vmcore_bytes = match vmcore.metadata() {
        Ok(meta) => meta.len(),
        Err(error) => {
            log::error!("cannot stat {}: {error}", env.vmcore.display());
            return false;
        }
    };
    stage.set("reading the crashed kernel's log");
    let info = CrashInfo::read(&vmcore, vmcore_bytes);
    log::info!(
        "vmcore: {} MB of kernel {} (crashed {})",
        vmcore_bytes / 1_000_000,
        info.kernel_release.as_deref().unwrap_or("unknown"),
        info.crash_time
            .map(dumper::time::rfc3339)
            .unwrap_or_else(|| "at an unknown time".to_owned())
    );
    match (&info.panic_message, info.dmesg_records, &info.dmesg_error) {
        (_, _, Some(error)) => log::error!("cannot read the crashed kernel's log: {error}"),
        (panic, Some(records), None) => log::info!(
            "kernel log: {records} records; panic: {}",
            panic.as_deref().unwrap_or("(none found)")
        ),
        _ => {}
    }

    let mut network = Network::NotUp;
    for (index, target) in capture.config.targets.iter().enumerate() {
        stage.set(format!("target {index} ({target})"));
        log::info!("target {index}: {target}");
        let reached_by = match target.kind.is_network() {
            true => match network.bring_up(env, capture.config, stage) {
                Ok(report) => Some(report),
                Err(error) => {
                    log::error!("target {index} ({target}) failed: {error}");
                    continue;
                }
            },
            false => None,
        };
        let attempt =
            targets::prepare(env, stage, index, target, capture.config).and_then(|prepared| {
                let result = open_dump_dir(&prepared, &info, reached_by.as_ref())
                    .and_then(|dir| write_dump(env, capture, stage, target, dir, &info, &vmcore));
                match &result {
                    Err(TargetError::Stalled { .. }) => prepared.abandon(env),
                    _ => prepared.release(env),
                }
                result
            });
        match attempt {
            Ok(place) => {
                log::info!("dump complete in {place}");
                return true;
            }
            Err(error) => log::error!("target {index} ({target}) failed: {}", error_chain(&error)),
        }
    }
    log::error!("no target took a complete dump");
    false
}

/// The network, brought up once for the first network target and kept for
/// the others; a failure is not retried (each attempt costs its deadlines).
enum Network {
    NotUp,
    #[cfg(feature = "network")]
    Up(net::NetReport),
    Failed(String),
}

impl Network {
    /// Without network support, every network target fails with the
    /// reason: `lifeboat image` packs init-net or init-ssh for them.
    #[cfg(not(feature = "network"))]
    fn bring_up(
        &mut self,
        _env: &Environment,
        _config: &Config,
        _stage: &Stage,
    ) -> Result<NetworkRecord, String> {
        *self = Network::Failed(
            "this init was built without network support; `lifeboat image` packs init-net \
             or init-ssh for configs with network targets"
                .to_owned(),
        );
        match self {
            Network::Failed(error) => Err(format!("no network: {error}")),
            Network::NotUp => Err("no network".to_owned()),
        }
    }

    #[cfg(feature = "network")]
    fn bring_up(
        &mut self,
        env: &Environment,
        config: &Config,
        stage: &Stage,
    ) -> Result<NetworkRecord, String> {
        if let Network::NotUp = self {
            *self = match &config.network {
                // The config's own validation makes this impossible; a
                // damaged image must still not stop the other targets.
                None => Network::Failed("the config has no [network]".to_owned()),
                Some(network) => match net::bring_up(
                    env.net.as_ref(),
                    &env.net_paths,
                    network,
                    &config.deadlines,
                    stage,
                ) {
                    Ok(report) => Network::Up(report),
                    Err(error) => Network::Failed(error_chain(&error)),
                },
            };
        }
        match self {
            Network::Up(report) => Ok(NetworkRecord {
                interface: report.interface.clone(),
                mac: report.mac.clone(),
                address: format!("{}/{}", report.address, report.prefix_len),
                method: report.method.as_str().to_owned(),
                gateway: report.gateway.map(|gateway| gateway.to_string()),
                seconds: report.seconds,
            }),
            Network::Failed(error) => Err(format!("no network: {error}")),
            Network::NotUp => Err("no network".to_owned()),
        }
    }
}

/// Writes one dump into a new private directory of the prepared target:
/// the kernel log first, then the record saying the dump is in progress,
/// the dump, and at the end the final record and our log, whatever
/// happened. Returns where the complete dump is.
/// One dump's directory: where its artifacts go, and its name, which the
/// artifacts' names carry too.
struct DumpDir {
    destination: Arc<dyn Destination>,
    stamp: String,
    /// An ssh server's host key, for the record.
    host_key_fingerprint: Option<String>,
    /// How the network came up, for a network target.
    network: Option<NetworkRecord>,
}

/// This dump's directory on the prepared target, named after the crash
/// time (or now, when the crashed kernel did not say).
fn open_dump_dir(
    prepared: &targets::Prepared,
    info: &CrashInfo,
    network: Option<&NetworkRecord>,
) -> Result<DumpDir, TargetError> {
    let crash_time = info.crash_time.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    });
    let (destination, stamp) = prepared.open_dump_dir(&dumper::time::dump_stamp(crash_time))?;
    Ok(DumpDir {
        destination,
        stamp,
        host_key_fingerprint: prepared.host_key_fingerprint().map(str::to_owned),
        network: network.cloned(),
    })
}

fn write_dump(
    env: &Environment,
    capture: &Capture,
    stage: &Stage,
    target: &Target,
    dir: DumpDir,
    info: &CrashInfo,
    vmcore: &File,
) -> Result<String, TargetError> {
    let DumpDir {
        destination,
        stamp,
        host_key_fingerprint,
        network,
    } = dir;
    let stamp = stamp.as_str();
    let place = destination.describe();
    let dump_name = dump_file_name(stamp);
    let mut record = Record {
        lifeboat_version: capture.version.to_owned(),
        status: Some(Status::InProgress),
        kernel_release: info.kernel_release.clone(),
        build_id: info.build_id.clone(),
        crash_time: info.crash_time,
        panic_message: info.panic_message.clone(),
        capture_kernel_release: fs::read_to_string(&env.osrelease)
            .ok()
            .map(|s| s.trim().to_owned()),
        target: target.to_string(),
        target_server: target_server(target),
        target_protocol: target_protocol(target),
        host_key_fingerprint,
        network,
        dmesg_records: info.dmesg_records,
        dmesg_error: info.dmesg_error.clone(),
        vmcore_bytes: info.vmcore_bytes,
        dump_file: dump_name.clone(),
        compression_level: capture.config.compression_level,
        dump_level: Some(capture.config.dump_level),
        modules_loaded: capture.modules.loaded.clone(),
        modules_failed: capture.modules.failed.clone(),
        modules_unsupported: capture.modules.unsupported.clone(),
        ..Record::default()
    };

    // The kernel log first, durable before anything risky starts: it is the
    // most valuable part of a crash and the cheapest to save.
    if let Some(text) = &info.dmesg {
        let name = dmesg_file_name(stamp);
        destination.put(&name, text)?;
        record.dmesg_file = Some(name);
    }
    destination.put(RECORD_FILE, record.to_json().as_bytes())?;

    stage.set(format!("dumping to {place}"));
    let dump_bytes = Arc::new(AtomicU64::new(0));
    stage.dump_started(destination.clone(), &record, dump_bytes.clone());
    let options = stream_options(capture.config);
    // The config was validated: its level is one of makedumpfile's.
    let level = DumpLevel::new(capture.config.dump_level).unwrap_or(DumpLevel::MAX);
    let outcome = if target.kind.is_network() {
        let stall = Duration::from_secs(capture.config.deadlines.stall_secs.into());
        watch_stream(
            options,
            level,
            stage,
            destination.clone(),
            &dump_name,
            vmcore,
            info.vmcore_bytes,
            dump_bytes.clone(),
            stall,
        )
    } else {
        stream_dump(
            &options,
            level,
            stage,
            destination.as_ref(),
            &dump_name,
            vmcore,
            info.vmcore_bytes,
            dump_bytes.clone(),
        )
    };
    if let Err(error @ TargetError::Stalled { .. }) = outcome {
        // The target stopped answering: anything more written to it (the
        // record, our log) would block as the dump did. The watchdog must
        // not try either.
        stage.dump_ended();
        return Err(error);
    }
    if !stage.dump_ended() {
        // The watchdog cut this dump and wrote its record and our log; the
        // final action is under way.
        return Err(outcome.err().unwrap_or(TargetError::DeadlineCut));
    }
    record.capture_seconds = capture.started.elapsed().as_secs_f64();
    record.peak_memory_kib = peak_memory_kib(&env.proc_self_status);
    let result = match outcome {
        Ok(Dumped {
            summary,
            filter_error,
            unclassifiable,
        }) => {
            let excluded = ExcludedPages::from_counts(|category| summary.excluded.pages(category));
            record.excluded_pages = Some(excluded);
            record.unclassifiable_pages = unclassifiable;
            record.filter_error = filter_error;
            log::info!(
                "dump level {level}: left out {} pages ({})",
                excluded.total(),
                summary.excluded.describe_pages()
            );
            record.status = Some(Status::Complete);
            record.dump_bytes = Some(summary.output_bytes);
            record.xxh64 = Some(summary.xxh64);
            record.read_method = Some(summary.read_method.as_str().to_owned());
            record.dump_seconds = Some(summary.elapsed.as_secs_f64());
            record.frames = Some(summary.frames);
            record.zero_frames = Some(summary.zero_frames);
            record.frame_bytes = Some(summary.frame_bytes);
            record.threads = Some(summary.threads);
            log::info!(
                "wrote {dump_name}: {} MB from {} MB in {:.1} s ({:.0} MB/s, {} frames, {} of them zero, {} thread(s)), peak memory {} KiB",
                summary.output_bytes / 1_000_000,
                summary.input_bytes / 1_000_000,
                summary.elapsed.as_secs_f64(),
                summary.input_bytes as f64 / summary.elapsed.as_secs_f64().max(1e-3) / 1e6,
                summary.frames,
                summary.zero_frames,
                summary.threads,
                record.peak_memory_kib.unwrap_or(0)
            );
            if capture.measure_read_rate {
                measure_read_rate(vmcore, info.vmcore_bytes, &mut record);
                measure_write_rate(destination.as_ref(), &mut record);
            }
            Ok(place)
        }
        Err(error) => {
            record.status = Some(Status::Incomplete);
            record.error = Some(error_chain(&error));
            record.dump_bytes = Some(dump_bytes.load(Ordering::Relaxed));
            Err(error)
        }
    };
    // The record and our log are written whatever happened: they explain
    // an incomplete dump to whoever finds it.
    destination.put(RECORD_FILE, record.to_json().as_bytes())?;
    destination.put(LOG_FILE, logger::memory_log().as_bytes())?;
    result
}

/// A network target's server as the record names it.
fn target_server(target: &Target) -> Option<String> {
    match &target.kind {
        TargetKind::Disk(_) => None,
        TargetKind::Nfs(nfs) => Some(match nfs.port {
            Some(port) => format!("{}:{port}", nfs.server),
            None => nfs.server.to_string(),
        }),
        TargetKind::Ssh(ssh) => Some(format!("{}:{}", ssh.server, ssh.port)),
    }
}

/// A network target's protocol and version: `nfs 4.2`, `ssh`.
fn target_protocol(target: &Target) -> Option<String> {
    match &target.kind {
        TargetKind::Disk(_) => None,
        TargetKind::Nfs(nfs) => Some(format!("nfs {}", nfs.version.as_str())),
        TargetKind::Ssh(_) => Some("ssh".to_owned()),
    }
}

/// The plain read rate of the same input, after the dump so as not to delay
/// it: how close the dump came to the read limit. Off by default: it reads
/// up to another GiB of the old kernel's memory and delays the reboot.
fn measure_read_rate(vmcore: &File, vmcore_bytes: u64, record: &mut Record) {
    match dumper::stream::measure_read(vmcore, vmcore_bytes, READ_RATE_SAMPLE_BYTES) {
        Ok((bytes, elapsed)) => {
            let rate = bytes as f64 / elapsed.as_secs_f64().max(1e-6) / 1e6;
            log::info!(
                "plain mmap read of {} MB: {rate:.0} MB/s",
                bytes / 1_000_000
            );
            record.read_rate_mb_per_s = Some(rate);
            record.read_rate_sample_bytes = Some(bytes);
        }
        Err(error) => log::warn!("cannot measure the read rate: {}", error_chain(&error)),
    }
}

/// The plain write rate of the target, after the dump: how close the dump
/// came to what the disk or the link can take.
fn measure_write_rate(destination: &dyn Destination, record: &mut Record) {
    match destination.measure_write_rate(WRITE_RATE_SAMPLE_BYTES) {
        Ok(elapsed) => {
            let rate = WRITE_RATE_SAMPLE_BYTES as f64 / elapsed.as_secs_f64().max(1e-6) / 1e6;
            log::info!(
                "plain write of {} MB to {}: {rate:.0} MB/s",
                WRITE_RATE_SAMPLE_BYTES / 1_000_000,
                destination.describe()
            );
            record.write_rate_mb_per_s = Some(rate);
            record.write_rate_sample_bytes = Some(WRITE_RATE_SAMPLE_BYTES);
        }
        Err(error) => log::warn!("cannot measure the write rate: {}", error_chain(&error)),
    }
}

/// How often a watched dump's progress is looked at.
const STALL_POLL: Duration = Duration::from_millis(100);

/// Runs [`stream_dump`] on a worker thread and watches the bytes it writes:
/// when none is taken for `stall`, the target is given up and the worker
/// abandoned. A network target that stops answering blocks its writer in
/// the kernel (NFS) or on a window that never opens (ssh), where nothing
/// can interrupt it; only the thread that waits can be let go.
#[allow(clippy::too_many_arguments)]
fn watch_stream(
    options: StreamOptions,
    level: DumpLevel,
    stage: &Stage,
    destination: Arc<dyn Destination>,
    name: &str,
    vmcore: &File,
    vmcore_bytes: u64,
    written: Arc<AtomicU64>,
    stall: Duration,
) -> Result<Dumped, TargetError> {
    let place = destination.describe();
    let vmcore = vmcore.try_clone().map_err(|source| TargetError::Thread {
        what: "the dump (duplicating the vmcore's descriptor)",
        source,
    })?;
    let (done, outcome) = std::sync::mpsc::channel();
    let worker = {
        let (stage, written, name) = (stage.clone(), written.clone(), name.to_owned());
        move || {
            let result = stream_dump(
                &options,
                level,
                &stage,
                destination.as_ref(),
                &name,
                &vmcore,
                vmcore_bytes,
                written,
            );
            // The capture may have given up on this dump and gone on.
            let _ = done.send(result);
        }
    };
    std::thread::Builder::new()
        .name("dump".to_owned())
        .spawn(worker)
        .map_err(|source| TargetError::Thread {
            what: "the dump",
            source,
        })?;
    let mut seen = written.load(Ordering::Relaxed);
    let mut moved = Instant::now();
    loop {
        match outcome.recv_timeout(STALL_POLL) {
            Ok(result) => return result,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Err(TargetError::DumpThreadLost)
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
        }
        let now = written.load(Ordering::Relaxed);
        if now != seen {
            (seen, moved) = (now, Instant::now());
        } else if moved.elapsed() >= stall {
            log::error!(
                "{place} took nothing for {} s after {now} bytes: giving the target up",
                stall.as_secs()
            );
            return Err(TargetError::Stalled {
                place,
                waited_secs: stall.as_secs(),
                bytes: now,
            });
        }
    }
}

/// The stream's settings from the config.
fn stream_options(config: &Config) -> StreamOptions {
    let threads = match config.compression_threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n as usize,
    };
    StreamOptions {
        level: config.compression_level,
        threads,
        frame_bytes: None,
    }
}

/// A finished stream, with what the dump level's filter said.
struct Dumped {
    summary: StreamSummary,
    /// Why the pages could not be classified (the dump then left out zero
    /// pages only, if the level asked for that).
    filter_error: Option<String>,
    unclassifiable: Option<u64>,
}

/// Streams the vmcore into the artifact `name`, which becomes visible under
/// that name only once it is whole and durable, leaving out what `level`
/// says.
#[allow(clippy::too_many_arguments)]
fn stream_dump(
    options: &StreamOptions,
    level: DumpLevel,
    stage: &Stage,
    destination: &dyn Destination,
    name: &str,
    vmcore: &File,
    vmcore_bytes: u64,
    written: Arc<AtomicU64>,
) -> Result<Dumped, TargetError> {
    let view = Vmcore::open(vmcore).map_err(|error| {
        format!(
            "cannot read the vmcore's headers: {}",
            dumper::error_chain(&error)
        )
    });
    let mut filtering = Filtering::new(view.as_ref().map_err(Clone::clone), level);
    if let Some(error) = &filtering.error {
        log::warn!(
            "dump level {level}: cannot classify pages ({error}); leaving out {}",
            filtering.fallback()
        );
    }
    let artifact = destination.create(name)?;
    let described = artifact.describe();
    let mut reporter = ProgressReporter::new();
    let counted = Counted {
        inner: artifact,
        written,
    };
    let (summary, counted) = compress_excluding(
        vmcore,
        &Plan::whole(vmcore_bytes),
        counted,
        options,
        filtering.exclude(),
        |p| {
            stage.dump_progress(p.bytes_done);
            reporter.report(p)
        },
    )
    .map_err(|source| TargetError::Stream {
        artifact: described,
        source,
    })?;
    counted.inner.commit()?;
    Ok(Dumped {
        summary,
        unclassifiable: filtering.unclassifiable(),
        filter_error: filtering.error,
    })
}

/// An artifact that counts what was written into it, for the watchdog's
/// record of a dump it cuts.
struct Counted {
    inner: Box<dyn Artifact>,
    written: Arc<AtomicU64>,
}

impl Write for Counted {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Prints progress every couple of seconds: often enough that a person at a
/// serial console sees it move, rarely enough not to slow a 115200-baud line.
struct ProgressReporter {
    last: Option<Instant>,
}

impl ProgressReporter {
    const INTERVAL: Duration = Duration::from_secs(2);

    fn new() -> Self {
        ProgressReporter { last: None }
    }

    fn report(&mut self, progress: &Progress) {
        let done = progress.bytes_done == progress.bytes_total;
        if !done
            && self
                .last
                .is_some_and(|last| last.elapsed() < Self::INTERVAL)
        {
            return;
        }
        self.last = Some(Instant::now());
        let secs = progress.elapsed.as_secs_f64().max(1e-3);
        let percent = progress.bytes_done * 100 / progress.bytes_total.max(1);
        log::info!(
            target: logger::PROGRESS,
            "dump {percent:3}% {}/{} MB {:.0} MB/s",
            progress.bytes_done / 1_000_000,
            progress.bytes_total / 1_000_000,
            progress.bytes_done as f64 / secs / 1e6
        );
    }
}

/// `VmHWM` of `/proc/self/status`, in KiB.
fn peak_memory_kib(status: &Path) -> Option<u64> {
    let text = fs::read_to_string(status).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::{Call, Recorder};
    use lifeboat_config::DeviceSpec;
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;

    const UUID: &str = "5c1e0b8e-3f7a-4d2b-9a61-0c2d4e6f8a10";

    /// A tree standing in for /proc, /sys and /dev: one block device `vdb`
    /// whose "device node" is a real ext4 image with [`UUID`].
    struct FakeMachine {
        root: tempfile::TempDir,
        vmcore: Vec<u8>,
    }

    impl FakeMachine {
        fn new() -> FakeMachine {
            let root = tempfile::tempdir().unwrap();
            let class = root.path().join("sys/class/block/vdb");
            fs::create_dir_all(&class).unwrap();
            fs::write(class.join("dev"), "254:16\n").unwrap();
            fs::write(class.join("size"), "65536\n").unwrap();
            fs::create_dir_all(root.path().join("dev")).unwrap();
            let image = root.path().join("dev/vdb");
            File::create(&image).unwrap().set_len(32 << 20).unwrap();
            let status = Command::new("mkfs.ext4")
                .args(["-q", "-F", "-U", UUID])
                .arg(&image)
                .status()
                .expect("mkfs.ext4 (Debian package e2fsprogs) must be installed");
            assert!(status.success());
            // Not an ELF file: the capture must still dump it, and say the
            // log could not be read.
            let vmcore: Vec<u8> = (0..3_000_000u32).map(|i| (i % 7919) as u8).collect();
            fs::write(root.path().join("vmcore"), &vmcore).unwrap();
            fs::write(root.path().join("osrelease"), "6.1.0-test\n").unwrap();
            fs::write(
                root.path().join("status"),
                "Name:\tinit\nVmHWM:\t    1234 kB\n",
            )
            .unwrap();
            fs::create_dir_all(root.path().join("mnt")).unwrap();
            FakeMachine { root, vmcore }
        }

        fn environment(&self, system: Arc<Recorder>) -> Environment {
            let path = |p: &str| self.root.path().join(p);
            Environment {
                system,
                vmcore: path("vmcore"),
                sys_class_block: path("sys/class/block"),
                dev: path("dev"),
                mount_root: path("mnt"),
                osrelease: path("osrelease"),
                proc_self_status: path("status"),
                // No test here has a network target; the fake tree has no
                // interfaces for it to find.
                #[cfg(feature = "network")]
                net: Arc::new(net::Linux),
                #[cfg(feature = "network")]
                net_paths: net::NetPaths {
                    sys_class_net: path("sys/class/net"),
                    urandom: "/dev/urandom".into(),
                },
            }
        }
    }

    fn config(device: &str, device_wait_secs: u32) -> Config {
        let text = format!(
            "[deadlines]\ndevice_wait = {device_wait_secs}\n\
             [[target]]\ntype = \"disk\"\ndevice = \"{device}\"\n"
        );
        lifeboat_config::user::parse("test.toml", &text).unwrap()
    }

    fn run_with(machine: &FakeMachine, system: &Arc<Recorder>, config: &Config) -> bool {
        run_measuring(machine, system, config, false)
    }

    fn run_measuring(
        machine: &FakeMachine,
        system: &Arc<Recorder>,
        config: &Config,
        measure_read_rate: bool,
    ) -> bool {
        let modules = ModuleReport::default();
        let capture = Capture {
            config,
            version: "test",
            modules: &modules,
            started: Instant::now(),
            measure_read_rate,
        };
        run(
            &machine.environment(system.clone()),
            &capture,
            &Stage::new(),
        )
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn a_capture_writes_a_complete_private_dump_and_unmounts() {
        let machine = FakeMachine::new();
        let system = Arc::new(Recorder::default());
        assert!(run_measuring(
            &machine,
            &system,
            &config(&format!("UUID={UUID}"), 5),
            true
        ));

        // The fake mount does nothing, so the files land in the mount point.
        let mount_point = machine.root.path().join("mnt/target0");
        let crash_dir = mount_point.join("var/crash");
        let entries: Vec<PathBuf> = fs::read_dir(&crash_dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(entries.len(), 1, "{entries:?}");
        let dir = &entries[0];
        let stamp = dir.file_name().unwrap().to_str().unwrap();
        assert_eq!(stamp.len(), 12, "YYYYmmddHHMM: {stamp}");
        assert_eq!(mode(dir), 0o700);
        assert_eq!(mode(&crash_dir), 0o700);

        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                format!("dump.{stamp}.zst"),
                "lifeboat.json".into(),
                "lifeboat.log".into()
            ]
        );
        for name in &names {
            assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
        }
        let dump = fs::read(dir.join(format!("dump.{stamp}.zst"))).unwrap();
        assert!(zstd::decode_all(&dump[..]).unwrap() == machine.vmcore);

        let record: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(dir.join("lifeboat.json")).unwrap()).unwrap();
        assert_eq!(record["status"], "complete");
        assert_eq!(record["vmcore_bytes"], machine.vmcore.len());
        assert_eq!(record["dump_bytes"], dump.len());
        assert_eq!(
            record["xxh64"],
            format!("{:016x}", xxhash_rust::xxh64::xxh64(&machine.vmcore, 0))
        );
        assert_eq!(record["capture_kernel_release"], "6.1.0-test");
        assert_eq!(record["peak_memory_kib"], 1234);
        assert_eq!(record["read_method"], "mmap");
        // 3 MB in 1 MiB frames, none of them zero.
        assert_eq!(record["frames"], 3);
        assert_eq!(record["zero_frames"], 0);
        assert!(record["read_rate_mb_per_s"].as_f64().unwrap() > 0.0);
        assert!(
            record["dmesg_error"].as_str().unwrap().contains("ELF"),
            "{record}"
        );
        assert_eq!(record["dmesg_file"], serde_json::Value::Null);

        let calls = system.calls();
        let device = machine.root.path().join("dev/vdb").display().to_string();
        assert_eq!(
            *calls,
            [
                Call::Mount {
                    source: device,
                    target: mount_point.display().to_string(),
                    fstype: "ext4".into()
                },
                Call::Sync,
                Call::Unmount(mount_point.display().to_string()),
            ]
        );
    }

    /// 10.0.2.2:/export over NFSv4.2.
    fn nfs_export() -> TargetKind {
        TargetKind::Nfs(lifeboat_config::NfsTarget {
            server: std::net::Ipv4Addr::new(10, 0, 2, 2),
            export: "/export".into(),
            version: lifeboat_config::NfsVersion::V4_2,
            port: None,
            mount_port: None,
            mount_options: String::new(),
        })
    }

    /// Two NFS targets the network cannot reach (the fake machine has no
    /// NIC), then the disk: the network is tried once, both NFS targets
    /// fail saying why, and the disk takes the dump.
    #[test]
    fn without_a_network_network_targets_fail_once_and_the_next_target_is_tried() {
        let machine = FakeMachine::new();
        let system = Arc::new(Recorder::default());
        let mut config = config(&format!("UUID={UUID}"), 5);
        config.deadlines.link_secs = 1;
        config.network = Some(lifeboat_config::Network {
            interface: lifeboat_config::InterfaceSpec::Auto,
            address: lifeboat_config::AddressSpec::Dhcp,
            name: "web-17".into(),
        });
        let nfs = lifeboat_config::Target {
            kind: nfs_export(),
            directory: "/crash".into(),
        };
        config.targets.insert(0, nfs.clone());
        config.targets.insert(1, nfs);
        let started = Instant::now();
        assert!(run_with(&machine, &system, &config));
        // One wait for an interface, not one per target.
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        // Nothing was mounted for them: the first call is the disk's mount.
        assert!(matches!(&system.calls()[0], Call::Mount { fstype, .. } if fstype == "ext4"));
        // What each of them logs as its failure.
        let env = machine.environment(system.clone());
        let mut network = Network::NotUp;
        let error = network.bring_up(&env, &config, &Stage::new()).unwrap_err();
        assert!(error.starts_with("no network: "), "{error}");
        #[cfg(feature = "network")]
        assert!(error.contains("within 1 s"), "{error}");
        #[cfg(not(feature = "network"))]
        assert!(error.contains("without network support"), "{error}");
        assert!(matches!(network, Network::Failed(_)));
    }

    #[test]
    fn a_missing_device_fails_the_target_naming_what_was_seen() {
        let machine = FakeMachine::new();
        let system = Arc::new(Recorder::default());
        let env = machine.environment(system.clone());
        let nope = config("LABEL=NOPE", 1);
        let error = targets::prepare(&env, &Stage::new(), 0, &nope.targets[0], &nope)
            .err()
            .unwrap();
        let text = error.to_string();
        assert!(text.contains("LABEL=NOPE"), "{text}");
        assert!(text.contains(&format!("vdb (ext4 UUID={UUID}")), "{text}");
        assert!(!run_with(&machine, &system, &config("LABEL=NOPE", 1)));
        assert!(system.calls().is_empty(), "nothing mounted");
    }

    #[test]
    fn a_failed_mount_moves_on_to_the_next_target() {
        let machine = FakeMachine::new();
        let first = machine
            .root
            .path()
            .join("mnt/target0")
            .display()
            .to_string();
        let system = Arc::new(Recorder {
            failing_mounts: vec![(first, nix::Error::EIO)],
            ..Recorder::default()
        });
        let text = format!(
            "[[target]]\ntype = \"disk\"\ndevice = \"UUID={UUID}\"\n\
             [[target]]\ntype = \"disk\"\ndevice = \"/dev/vdb\"\ndirectory = \"/spare\"\n"
        );
        let mut config = lifeboat_config::user::parse("test.toml", &text).unwrap();
        // `/dev/vdb` means the fake tree's dev directory here.
        let fake_dev = machine.root.path().join("dev/vdb").display().to_string();
        let TargetKind::Disk(disk) = &mut config.targets[1].kind else {
            panic!("a disk target");
        };
        disk.device = DeviceSpec::Path(fake_dev);
        assert!(run_with(&machine, &system, &config));
        let spare = machine.root.path().join("mnt/target1/spare");
        let dirs: Vec<PathBuf> = fs::read_dir(spare)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(dirs.len(), 1);
        // The read rate is measured only when asked for.
        let record: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(dirs[0].join("lifeboat.json")).unwrap())
                .unwrap();
        assert_eq!(record["status"], "complete");
        assert_eq!(record["read_rate_mb_per_s"], serde_json::Value::Null);
    }

    /// A destination that records what is done to it, in order, and keeps
    /// what was written; its dump artifact fails with ENOSPC after
    /// `fail_after` bytes when told to.
    #[derive(Default)]
    struct FakeDestination {
        shared: Arc<FakeShared>,
        fail_after: Option<usize>,
        /// A write past this many bytes never returns, as on a server that
        /// stopped answering.
        hang_after: Option<usize>,
    }

    #[derive(Default)]
    struct FakeShared {
        events: std::sync::Mutex<Vec<String>>,
        files: std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>,
    }

    impl FakeShared {
        fn event(&self, event: String) {
            self.events.lock().unwrap().push(event);
        }
    }

    struct FakeArtifact {
        shared: Arc<FakeShared>,
        name: String,
        bytes: Vec<u8>,
        fail_after: Option<usize>,
        hang_after: Option<usize>,
    }

    impl Write for FakeArtifact {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self
                .hang_after
                .is_some_and(|limit| self.bytes.len() + buf.len() > limit)
            {
                self.shared.event(format!("{} hangs", self.name));
                loop {
                    std::thread::park();
                }
            }
            if self
                .fail_after
                .is_some_and(|limit| self.bytes.len() + buf.len() > limit)
            {
                return Err(io::Error::from_raw_os_error(libc::ENOSPC));
            }
            self.bytes.extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Artifact for FakeArtifact {
        fn commit(self: Box<Self>) -> Result<u64, dumper::output::OutputError> {
            self.shared.event(format!("commit {}", self.name));
            let len = self.bytes.len() as u64;
            self.shared
                .files
                .lock()
                .unwrap()
                .insert(self.name, self.bytes);
            Ok(len)
        }

        fn describe(&self) -> String {
            format!("fake:{}.incomplete", self.name)
        }
    }

    impl Destination for FakeDestination {
        fn create(&self, name: &str) -> Result<Box<dyn Artifact>, dumper::output::OutputError> {
            self.shared.event(format!("create {name}"));
            Ok(Box::new(FakeArtifact {
                shared: self.shared.clone(),
                name: name.to_owned(),
                bytes: Vec::new(),
                fail_after: self.fail_after,
                hang_after: self.hang_after,
            }))
        }

        fn put(&self, name: &str, bytes: &[u8]) -> Result<(), dumper::output::OutputError> {
            let record = if name == RECORD_FILE {
                let record = Record::read(std::str::from_utf8(bytes).unwrap()).unwrap();
                format!(" ({})", record.status.unwrap().as_str())
            } else {
                String::new()
            };
            self.shared.event(format!("put {name}{record}"));
            self.shared
                .files
                .lock()
                .unwrap()
                .insert(name.to_owned(), bytes.to_vec());
            Ok(())
        }

        fn describe(&self) -> String {
            "fake".to_owned()
        }

        fn measure_write_rate(&self, _bytes: u64) -> Result<Duration, dumper::output::OutputError> {
            self.shared.event("measure write rate".to_owned());
            Ok(Duration::from_millis(1))
        }
    }

    /// Writes one dump to `destination` with the fake machine's vmcore and
    /// a crashed kernel's log; returns the outcome and the events.
    fn dump_to(destination: FakeDestination) -> (Result<String, TargetError>, Vec<String>, Record) {
        dump_to_with(destination, |_| {})
    }

    /// [`dump_to`] with the config changed by `adjust`; the dump goes to
    /// its first target.
    fn dump_to_with(
        destination: FakeDestination,
        adjust: impl FnOnce(&mut Config),
    ) -> (Result<String, TargetError>, Vec<String>, Record) {
        let machine = FakeMachine::new();
        let system = Arc::new(Recorder::default());
        let env = machine.environment(system.clone());
        let mut config = config(&format!("UUID={UUID}"), 1);
        adjust(&mut config);
        let modules = ModuleReport::default();
        let capture = Capture {
            config: &config,
            version: "test",
            modules: &modules,
            started: Instant::now(),
            measure_read_rate: false,
        };
        let vmcore = File::open(&env.vmcore).unwrap();
        let info = CrashInfo {
            vmcore_bytes: machine.vmcore.len() as u64,
            dmesg: Some(b"[    0.000000] Linux version 6.1.0\n".to_vec()),
            dmesg_records: Some(1),
            ..CrashInfo::default()
        };
        let shared = destination.shared.clone();
        let dir = DumpDir {
            destination: Arc::new(destination),
            stamp: "202612031100".to_owned(),
            host_key_fingerprint: None,
            network: None,
        };
        let stage = Stage::new();
        let result = write_dump(
            &env,
            &capture,
            &stage,
            &config.targets[0],
            dir,
            &info,
            &vmcore,
        );
        let events = shared.events.lock().unwrap().clone();
        let files = shared.files.lock().unwrap();
        let record = Record::read(std::str::from_utf8(&files[RECORD_FILE]).unwrap()).unwrap();
        (result, events, record)
    }

    /// A network target whose writes stop being taken is given up at the
    /// stall deadline; nothing more is written to it, the record it has
    /// still says the dump was in progress, and the watchdog has no dump to
    /// cut any more.
    #[test]
    fn a_network_dump_that_stalls_is_given_up_at_the_stall_deadline() {
        let destination = FakeDestination {
            hang_after: Some(64),
            ..FakeDestination::default()
        };
        let started = Instant::now();
        let (result, events, record) = dump_to_with(destination, |config| {
            config.deadlines.stall_secs = 1;
            config.targets[0].kind = nfs_export();
        });
        let elapsed = started.elapsed();
        assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
        let error = result.unwrap_err();
        let text = error.to_string();
        assert!(matches!(error, TargetError::Stalled { .. }), "{text}");
        assert!(
            text.contains("took no byte for 1 s (deadlines.stall)"),
            "{text}"
        );
        assert_eq!(
            events,
            [
                "put dmesg.202612031100",
                "put lifeboat.json (in-progress)",
                "create dump.202612031100.zst",
                "dump.202612031100.zst hangs",
            ]
        );
        assert_eq!(record.status, Some(Status::InProgress));
    }

    #[test]
    fn a_dump_writes_the_log_first_and_the_record_around_the_stream() {
        let (result, events, record) = dump_to(FakeDestination::default());
        assert_eq!(result.unwrap(), "fake");
        assert_eq!(
            events,
            [
                "put dmesg.202612031100",
                "put lifeboat.json (in-progress)",
                "create dump.202612031100.zst",
                "commit dump.202612031100.zst",
                "put lifeboat.json (complete)",
                "put lifeboat.log",
            ]
        );
        assert_eq!(record.dmesg_file.as_deref(), Some("dmesg.202612031100"));
        assert_eq!(record.dump_file, "dump.202612031100.zst");
    }

    #[test]
    fn a_failing_stream_leaves_the_record_saying_why() {
        let (result, events, record) = dump_to(FakeDestination {
            fail_after: Some(1000),
            ..FakeDestination::default()
        });
        let error = error_chain(&result.unwrap_err());
        assert!(error.contains("No space left on device"), "{error}");
        assert_eq!(
            events,
            [
                "put dmesg.202612031100",
                "put lifeboat.json (in-progress)",
                "create dump.202612031100.zst",
                "put lifeboat.json (incomplete)",
                "put lifeboat.log",
            ]
        );
        assert_eq!(record.status, Some(Status::Incomplete));
        let said = record.error.unwrap();
        assert!(
            said.contains("fake:dump.202612031100.zst.incomplete"),
            "{said}"
        );
        assert!(said.contains("No space left on device"), "{said}");
        assert!(record.dump_bytes.unwrap() <= 1000);
    }
}

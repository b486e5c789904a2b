//! lifeboat's PID 1: the whole userspace of a kdump capture kernel.
//!
//! Its life has no early exit: mount the API filesystems, read the baked
//! configuration and the kernel command line, start the deadline watchdog,
//! load the image's modules, capture, and take the final action. Every path,
//! a panic included, ends in that final action.

#![deny(unsafe_code)]

mod capture;
mod early;
mod kmsg;
mod logger;
// Not called yet: the capture will bring the network up for network
// targets, and until it does, nothing outside the module's tests uses it.
#[cfg(feature = "network")]
mod net;
mod stage;
mod system;
mod targets;

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dumper::record::{LOG_FILE, RECORD_FILE};
use lifeboat_config::{Config, FinalAction, LogLevel};
use log::LevelFilter;

use crate::stage::Stage;
use crate::system::{Linux, System};

/// The version, with the git commit, baked in by build.rs.
pub const VERSION: &str = env!("LIFEBOAT_VERSION");

/// The configuration compiled into this binary (from `init/default.toml`),
/// used when the image carries none or a damaged one.
const DEFAULT_CONFIG: &str = include_str!(concat!(env!("OUT_DIR"), "/default-config"));

fn main() {
    if std::process::id() != 1 {
        // Run by hand on a normal system, this binary would reboot it.
        eprintln!(
            "lifeboat init {VERSION}: this is PID 1 of a kdump capture image and \
             only runs as PID 1 (build an image with `lifeboat image`)"
        );
        std::process::exit(2);
    }
    let started = Instant::now();
    let system: Arc<dyn System> = Arc::new(Linux);
    // Before anything can panic: the compiled-in default's final action
    // until the config says otherwise.
    install_panic_hook(system.clone(), default_config().final_action);
    // Every file PID 1 creates is private unless it says otherwise.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let mount_errors = early::mount_api_filesystems(system.as_ref(), Path::new("/"));
    logger::init(LevelFilter::Info);
    // Our lines on /dev/kmsg would otherwise be rate-limited to a few.
    let _ = std::fs::write("/proc/sys/kernel/printk_devkmsg", "on\n");
    log::info!("lifeboat {VERSION} starting");
    for error in &mount_errors {
        log::error!("{error}");
    }

    let config = load_config(
        Path::new(lifeboat_config::layout::BAKED_PATH),
        Path::new("/proc/cmdline"),
    );
    logger::set_level(level_filter(config.log_level));
    let final_action = config.final_action;
    install_panic_hook(system.clone(), final_action);
    let stage = Stage::new();
    start_watchdog(
        system.clone(),
        stage.clone(),
        Duration::from_secs(config.deadlines.total_secs.into()),
        final_action,
    );

    stage.set("loading kernel modules");
    let modules = early::load_modules(
        system.as_ref(),
        Path::new(lifeboat_config::layout::MODULES_LIST_PATH),
    );
    if !modules.loaded.is_empty() {
        log::info!("loaded modules: {}", modules.loaded.join(" "));
    }

    let env = capture::Environment::pid1(system.clone());
    let capture = capture::Capture {
        config: &config,
        version: VERSION,
        modules: &modules,
        started,
        measure_read_rate: config.measure_read_rate,
    };
    let complete = capture::run(&env, &capture, &stage);
    log::info!(
        "capture {} after {:.1} s",
        if complete { "complete" } else { "FAILED" },
        started.elapsed().as_secs_f64()
    );
    finish(&system, final_action);
}

/// The baked config, or the compiled-in default if it is missing or damaged,
/// with the kernel command line's `lifeboat.*` overrides applied.
fn load_config(baked: &Path, cmdline: &Path) -> Config {
    let mut config = match std::fs::read_to_string(baked) {
        Ok(text) => Config::decode(&text).unwrap_or_else(|error| {
            log::error!("{}: {error}; using the built-in default", baked.display());
            default_config()
        }),
        Err(error) => {
            log::warn!(
                "no config at {} ({error}); using the built-in default",
                baked.display()
            );
            default_config()
        }
    };
    match std::fs::read_to_string(cmdline) {
        Ok(text) => {
            for problem in config.apply_cmdline(&text) {
                log::warn!("kernel command line: {problem}");
            }
        }
        Err(error) => log::warn!("cannot read {}: {error}", cmdline.display()),
    }
    config
}

fn default_config() -> Config {
    // build.rs validated and encoded it, so it always decodes; the fallback
    // is there so that even a bug here cannot stop a capture.
    Config::decode(DEFAULT_CONFIG).unwrap_or_else(|_| Config::fallback())
}

fn level_filter(level: LogLevel) -> LevelFilter {
    match level {
        LogLevel::Error => LevelFilter::Error,
        LogLevel::Warn => LevelFilter::Warn,
        LogLevel::Info => LevelFilter::Info,
        LogLevel::Debug => LevelFilter::Debug,
        LogLevel::Trace => LevelFilter::Trace,
    }
}

/// Makes every panic, of any thread, end in `action`: with `panic =
/// "abort"` the process would otherwise die, and PID 1 dying panics the
/// kernel, which leaves the machine to its panic= setting.
fn install_panic_hook(system: Arc<dyn System>, action: FinalAction) {
    std::panic::set_hook(Box::new(move |info| {
        after_panic(&system, action, &info.to_string())
    }));
}

fn after_panic(system: &Arc<dyn System>, action: FinalAction, what: &str) -> ! {
    if log::max_level() == LevelFilter::Off {
        // No logger yet (a panic before it was set up): straight to the
        // console, which is our stderr. A failed write must not panic again.
        let _ = writeln!(std::io::stderr(), "lifeboat: PID 1 panicked: {what}");
    }
    log::error!("PID 1 panicked: {what}");
    finish(system, action)
}

/// Takes the final action once `total` has passed, whatever the main
/// thread is stuck in (a hung disk, an endless NFS retry).
fn start_watchdog(system: Arc<dyn System>, stage: Stage, total: Duration, action: FinalAction) {
    let spawned = std::thread::Builder::new()
        .name("watchdog".into())
        // The watchdog does little; a small stack saves capture-kernel RAM.
        .stack_size(64 << 10)
        .spawn(move || {
            std::thread::sleep(total);
            on_deadline(&system, &stage, total, action)
        });
    if let Err(error) = spawned {
        log::error!("cannot start the deadline watchdog: {error}");
    }
}

/// Longest wait for the record and log of a dump the deadline cut: the
/// target may be what hangs.
const CUT_RECORD_DEADLINE: Duration = Duration::from_secs(10);

/// The capture deadline passed: say where the capture was, record the dump
/// it cut off (if a dump was being written) as incomplete, with the stage
/// and the bytes done, beside it, and save our log there too, all within
/// [`CUT_RECORD_DEADLINE`]; then the final action. The dump keeps its
/// `.incomplete` name: nothing is passed off as complete.
fn on_deadline(system: &Arc<dyn System>, stage: &Stage, total: Duration, action: FinalAction) -> ! {
    let doing = stage.doing();
    let reason = format!(
        "the capture deadline of {} s passed while {doing}",
        total.as_secs()
    );
    log::error!(
        "deadline of {} s passed while {doing}; giving up",
        total.as_secs()
    );
    if let Some(cut) = stage.cut(&reason) {
        let (saved, done) = std::sync::mpsc::channel();
        let writer = std::thread::Builder::new()
            .name("cut-record".into())
            .stack_size(256 << 10)
            .spawn(move || {
                let result = cut
                    .destination
                    .put(RECORD_FILE, cut.record.to_json().as_bytes())
                    .and_then(|()| {
                        cut.destination
                            .put(LOG_FILE, logger::memory_log().as_bytes())
                    });
                let _ = saved.send(result);
            });
        match writer.map(|_| done.recv_timeout(CUT_RECORD_DEADLINE)) {
            Ok(Ok(Ok(()))) => log::info!("recorded the cut dump as incomplete"),
            Ok(Ok(Err(error))) => log::error!(
                "cannot record the cut dump: {}",
                dumper::error_chain(&error)
            ),
            Ok(Err(_)) => log::error!(
                "the record of the cut dump was not written within {} s",
                CUT_RECORD_DEADLINE.as_secs()
            ),
            Err(error) => log::error!("cannot start writing the cut dump's record: {error}"),
        }
    }
    finish(system, action)
}

/// Longest wait for `sync` before the final action: a dead disk or server
/// can block it forever, and PID 1 must end in the final action regardless.
const SYNC_DEADLINE: Duration = Duration::from_secs(20);

/// Syncs (within [`SYNC_DEADLINE`]) and takes the final action. Never
/// returns: if the kernel refuses, retry, and as a last resort wait forever
/// rather than exit (PID 1 exiting panics the kernel).
fn finish(system: &Arc<dyn System>, action: FinalAction) -> ! {
    let mut errno = final_attempt(system, action, SYNC_DEADLINE);
    loop {
        log::error!("{} failed: {errno}; retrying in 10 s", action.as_str());
        std::thread::sleep(Duration::from_secs(10));
        errno = system.final_action(action);
    }
}

/// Syncs, waiting at most `sync_deadline`, then takes the final action;
/// returns only if the kernel refused it.
fn final_attempt(
    system: &Arc<dyn System>,
    action: FinalAction,
    sync_deadline: Duration,
) -> nix::Error {
    log::info!("{}", action.as_str());
    let (synced, done) = std::sync::mpsc::channel();
    let syncing = system.clone();
    let syncer = std::thread::Builder::new()
        .name("sync".into())
        .stack_size(64 << 10)
        .spawn(move || {
            syncing.sync();
            let _ = synced.send(());
        });
    match syncer {
        Ok(_) => {
            if done.recv_timeout(sync_deadline).is_err() {
                log::error!(
                    "sync did not finish within {} s; going on without it",
                    sync_deadline.as_secs()
                );
            }
        }
        // Without a thread, sync here: blocking is better than not syncing.
        Err(_) => system.sync(),
    }
    system.final_action(action)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::{Call, Recorder};
    use dumper::output::{Destination, DirDestination};
    use dumper::record::{Record, Status};
    use std::sync::atomic::AtomicU64;

    const SOON: Duration = Duration::from_secs(5);

    /// Runs `end` (which never returns) on a thread of its own, as the
    /// lifecycle's last steps run, with a recorder whose final action
    /// blocks like a real reboot.
    fn ending(
        recorder: Recorder,
        end: impl FnOnce(Arc<dyn System>) + Send + 'static,
    ) -> Arc<Recorder> {
        let recorder = Arc::new(Recorder {
            final_action_hangs: true,
            ..recorder
        });
        let system: Arc<dyn System> = recorder.clone();
        std::thread::spawn(move || end(system));
        recorder
    }

    #[test]
    fn a_panic_ends_in_the_final_action() {
        let recorder = ending(Recorder::default(), |system| {
            after_panic(&system, FinalAction::Poweroff, "boom")
        });
        assert!(recorder.wait_for(&Call::FinalAction(FinalAction::Poweroff), SOON));
        assert_eq!(
            recorder.calls(),
            [Call::Sync, Call::FinalAction(FinalAction::Poweroff)]
        );
    }

    #[test]
    fn a_hung_sync_still_ends_in_the_final_action() {
        let recorder = ending(
            Recorder {
                sync_hangs: true,
                ..Recorder::default()
            },
            |system| {
                final_attempt(&system, FinalAction::Halt, Duration::from_millis(50));
            },
        );
        assert!(recorder.wait_for(&Call::FinalAction(FinalAction::Halt), SOON));
    }

    #[test]
    fn the_watchdog_records_the_cut_dump_and_takes_the_final_action() {
        let dir = tempfile::tempdir().unwrap();
        let stage = Stage::new();
        let destination: Arc<dyn Destination> = Arc::new(DirDestination::at(dir.path()));
        let record = Record {
            status: Some(Status::InProgress),
            vmcore_bytes: 4096,
            ..Record::default()
        };
        stage.dump_started(destination, &record, Arc::new(AtomicU64::new(77)));
        stage.set("dumping to a slow disk");
        stage.dump_progress(2048);
        let watched = stage.clone();
        let recorder = ending(Recorder::default(), move |system| {
            start_watchdog(
                system,
                watched,
                Duration::from_millis(20),
                FinalAction::Reboot,
            )
        });
        assert!(recorder.wait_for(&Call::FinalAction(FinalAction::Reboot), SOON));
        let text = std::fs::read_to_string(dir.path().join(RECORD_FILE)).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["status"], "incomplete");
        assert_eq!(
            json["error"],
            "the capture deadline of 0 s passed while dumping to a slow disk"
        );
        assert_eq!(json["stage"], "dumping to a slow disk");
        assert_eq!(json["vmcore_bytes_done"], 2048);
        assert_eq!(json["dump_bytes"], 77);
        assert!(dir.path().join(LOG_FILE).is_file());
        // The capture's own end of the dump must not overwrite that record.
        assert!(!stage.dump_ended());
    }

    #[test]
    fn default_config_is_baked_and_decodes() {
        let config = Config::decode(DEFAULT_CONFIG).unwrap();
        assert_eq!(
            config.targets[0].to_string(),
            "disk LABEL=LIFEBOAT:/var/crash"
        );
    }

    #[test]
    fn config_falls_back_to_the_default_and_applies_the_cmdline() {
        let dir = tempfile::tempdir().unwrap();
        let cmdline = dir.path().join("cmdline");
        std::fs::write(
            &cmdline,
            "console=ttyS0 lifeboat.final_action=halt lifeboat.oops\n",
        )
        .unwrap();

        let missing = load_config(&dir.path().join("missing"), &cmdline);
        assert_eq!(missing.final_action, FinalAction::Halt);
        assert_eq!(missing.targets, default_config().targets);

        let damaged = dir.path().join("damaged");
        std::fs::write(&damaged, "lifeboat-config 1\nlog_level=shout\n").unwrap();
        assert_eq!(
            load_config(&damaged, &cmdline).targets,
            default_config().targets
        );

        let baked = dir.path().join("baked");
        let mut custom = Config::fallback();
        custom.compression_level = 7;
        std::fs::write(&baked, custom.encode()).unwrap();
        let loaded = load_config(&baked, &cmdline);
        assert_eq!(loaded.compression_level, 7);
        assert_eq!(loaded.final_action, FinalAction::Halt);
    }
}

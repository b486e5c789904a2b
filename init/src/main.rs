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
mod system;

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lifeboat_config::{Config, FinalAction, LogLevel};
use log::LevelFilter;

use crate::system::{Linux, System};

/// The version, with the git commit, baked in by build.rs.
pub const VERSION: &str = env!("LIFEBOAT_VERSION");

/// The configuration compiled into this binary (from `init/default.toml`),
/// used when the image carries none or a damaged one.
const DEFAULT_CONFIG: &str = include_str!(concat!(env!("OUT_DIR"), "/default-config"));

/// The module load order written by the image builder.
const MODULE_LIST: &str = "/etc/lifeboat/modules";

/// What PID 1 is doing, for the watchdog's message when a deadline passes.
static STAGE: Mutex<String> = Mutex::new(String::new());

pub fn set_stage(stage: &str) {
    let mut current = STAGE.lock().unwrap_or_else(|p| p.into_inner());
    current.clear();
    current.push_str(stage);
}

fn stage() -> String {
    STAGE.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

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
    // Every file PID 1 creates is private unless it says otherwise.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let system = Linux;
    let mount_errors = early::mount_api_filesystems(&system, Path::new("/"));
    logger::init(LevelFilter::Info);
    // Our lines on /dev/kmsg would otherwise be rate-limited to a few.
    let _ = std::fs::write("/proc/sys/kernel/printk_devkmsg", "on\n");
    log::info!("lifeboat {VERSION} starting");
    for error in &mount_errors {
        log::error!("{error}");
    }

    let config = load_config(
        Path::new(lifeboat_config::BAKED_PATH),
        Path::new("/proc/cmdline"),
    );
    logger::set_level(level_filter(config.log_level));
    let final_action = config.final_action;
    std::panic::set_hook(Box::new(move |info| {
        log::error!("PID 1 panicked: {info}");
        finish(&Linux, final_action);
    }));
    start_watchdog(config.deadlines.total_secs, final_action);

    set_stage("loading kernel modules");
    let modules = early::load_modules(&system, Path::new(MODULE_LIST));
    if !modules.loaded.is_empty() {
        log::info!("loaded modules: {}", modules.loaded.join(" "));
    }

    let env = capture::Environment::pid1(&system);
    let capture = capture::Capture {
        config: &config,
        version: VERSION,
        modules: &modules,
        started,
    };
    let complete = capture::run(&env, &capture);
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

/// Takes the final action once `total_secs` have passed, whatever the main
/// thread is stuck in (a hung disk, an endless NFS retry). The dump file
/// then keeps its `.incomplete` suffix and the result record says
/// `in-progress`: nothing is passed off as complete.
fn start_watchdog(total_secs: u32, action: FinalAction) {
    let spawned = std::thread::Builder::new()
        .name("watchdog".into())
        // The watchdog does little; a small stack saves capture-kernel RAM.
        .stack_size(64 << 10)
        .spawn(move || {
            std::thread::sleep(Duration::from_secs(total_secs.into()));
            log::error!(
                "deadline of {total_secs} s passed while {}; giving up",
                stage()
            );
            finish(&Linux, action);
        });
    if let Err(error) = spawned {
        log::error!("cannot start the deadline watchdog: {error}");
    }
}

/// Longest wait for `sync` before the final action: a dead disk or server
/// can block it forever, and PID 1 must end in the final action regardless.
const SYNC_DEADLINE: Duration = Duration::from_secs(20);

/// Syncs (within [`SYNC_DEADLINE`]) and takes the final action. Never
/// returns: if the kernel refuses, retry, and as a last resort wait forever
/// rather than exit (PID 1 exiting panics the kernel).
fn finish(system: &dyn System, action: FinalAction) -> ! {
    log::info!("{}", action.as_str());
    let (synced, done) = std::sync::mpsc::channel();
    let syncer = std::thread::Builder::new()
        .name("sync".into())
        .stack_size(64 << 10)
        .spawn(move || {
            Linux.sync();
            let _ = synced.send(());
        });
    match syncer {
        Ok(_) => {
            if done.recv_timeout(SYNC_DEADLINE).is_err() {
                log::error!(
                    "sync did not finish within {} s; going on without it",
                    SYNC_DEADLINE.as_secs()
                );
            }
        }
        // Without a thread, sync here: blocking is better than not syncing.
        Err(_) => system.sync(),
    }
    loop {
        let errno = system.final_action(action);
        log::error!("{} failed: {errno}; retrying in 10 s", action.as_str());
        std::thread::sleep(Duration::from_secs(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

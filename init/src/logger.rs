//! PID 1's logger, behind the `log` facade.
//!
//! Every message goes three ways:
//! - the console (`/dev/console` is PID 1's stderr), for the person or test
//!   harness watching the serial line;
//! - `/dev/kmsg`, so the capture kernel's own log shows what its userspace
//!   did. Those copies are written at the kernel's debug level, which the
//!   console does not print by default, so the console shows each line once;
//! - a bounded buffer in memory, written out as `lifeboat.log` beside the
//!   dump once a target is mounted.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::Mutex;
use std::time::Instant;

use log::{Level, LevelFilter, Log, Metadata, Record};

/// Most bytes of log kept in memory for `lifeboat.log`; later lines are
/// counted and dropped, so a pathological stream of messages cannot eat the
/// capture kernel's memory.
pub const MEMORY_LOG_BYTES: usize = 256 << 10;

/// Log target of progress lines: shown on the console, kept out of the
/// memory log (a long dump would otherwise fill it with percentages).
pub const PROGRESS: &str = "progress";

struct Sinks {
    console: Option<File>,
    kmsg: Option<File>,
    memory: String,
    dropped_lines: u64,
}

pub struct Logger {
    start: Instant,
    sinks: Mutex<Sinks>,
}

static LOGGER: std::sync::OnceLock<Logger> = std::sync::OnceLock::new();

/// Installs the logger. The console is our stderr; `/dev/kmsg` is opened if
/// it exists (devtmpfs must be mounted first).
pub fn init(level: LevelFilter) {
    let console = std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/self/fd/2")
        .ok();
    let kmsg = OpenOptions::new().write(true).open("/dev/kmsg").ok();
    let logger = LOGGER.get_or_init(|| Logger {
        start: Instant::now(),
        sinks: Mutex::new(Sinks {
            console,
            kmsg,
            memory: String::new(),
            dropped_lines: 0,
        }),
    });
    if log::set_logger(logger).is_ok() {
        log::set_max_level(level);
    }
}

/// Changes the level once the configuration is known.
pub fn set_level(level: LevelFilter) {
    log::set_max_level(level);
}

/// A copy of everything logged so far, for `lifeboat.log`.
pub fn memory_log() -> String {
    let Some(logger) = LOGGER.get() else {
        return String::new();
    };
    let sinks = lock(&logger.sinks);
    let mut text = sinks.memory.clone();
    if sinks.dropped_lines > 0 {
        let _ = writeln!(
            text,
            "[lifeboat.log is full: {} later lines were dropped]",
            sinks.dropped_lines
        );
    }
    text
}

fn lock(sinks: &Mutex<Sinks>) -> std::sync::MutexGuard<'_, Sinks> {
    // A panic while logging must not silence the panic hook's own message.
    sinks
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn level_word(level: Level) -> &'static str {
    match level {
        Level::Error => "error: ",
        Level::Warn => "warning: ",
        Level::Info => "",
        Level::Debug => "debug: ",
        Level::Trace => "trace: ",
    }
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let elapsed = self.start.elapsed();
        let line = format!(
            "lifeboat: {}{}\n",
            level_word(record.level()),
            record.args()
        );
        let mut sinks = lock(&self.sinks);
        if let Some(console) = sinks.console.as_mut() {
            let _ = console.write_all(line.as_bytes());
        }
        if let Some(kmsg) = sinks.kmsg.as_mut() {
            // <15> is facility "user", level "debug": see the module docs.
            let _ = kmsg.write_all(format!("<15>{line}").as_bytes());
        }
        if record.target() != PROGRESS {
            let stamped = format!(
                "[{:5}.{:03}] {line}",
                elapsed.as_secs(),
                elapsed.subsec_millis()
            );
            if sinks.memory.len() + stamped.len() <= MEMORY_LOG_BYTES {
                sinks.memory.push_str(&stamped);
            } else {
                sinks.dropped_lines += 1;
            }
        }
    }

    fn flush(&self) {}
}

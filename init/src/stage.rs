//! What PID 1 is doing, shared by the capture (which says it) and the
//! watchdog (which, when the deadline passes, says where the capture was
//! and writes the record of the dump it cut off).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use dumper::output::Destination;
use dumper::record::{Record, Status};

/// A handle on the current stage; clones share it.
#[derive(Clone, Default)]
pub struct Stage {
    shared: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    doing: String,
    dump: Option<DumpInProgress>,
}

/// The dump being written, as the watchdog needs it to record a cut.
struct DumpInProgress {
    destination: Arc<dyn Destination>,
    record: Record,
    vmcore_bytes_done: u64,
    dump_bytes: Arc<AtomicU64>,
}

/// What the watchdog writes for a dump it cut off.
pub struct CutDump {
    pub destination: Arc<dyn Destination>,
    pub record: Record,
}

impl Stage {
    pub fn new() -> Stage {
        Stage::default()
    }

    /// The lock is only ever held for a few field updates, never across
    /// I/O, so the watchdog cannot be kept waiting by a hung target; a
    /// panic while holding it leaves plain data behind, still usable.
    fn state(&self) -> MutexGuard<'_, State> {
        self.shared
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Says what PID 1 is doing now ("waiting for UUID=…", "dumping to …").
    pub fn set(&self, doing: impl Into<String>) {
        self.state().doing = doing.into();
    }

    pub fn doing(&self) -> String {
        self.state().doing.clone()
    }

    /// A dump starts: `record` is what lifeboat.json says so far, and
    /// `dump_bytes` counts the bytes written to the dump file.
    pub fn dump_started(
        &self,
        destination: Arc<dyn Destination>,
        record: &Record,
        dump_bytes: Arc<AtomicU64>,
    ) {
        self.state().dump = Some(DumpInProgress {
            destination,
            record: record.clone(),
            vmcore_bytes_done: 0,
            dump_bytes,
        });
    }

    pub fn dump_progress(&self, vmcore_bytes_done: u64) {
        if let Some(dump) = self.state().dump.as_mut() {
            dump.vmcore_bytes_done = vmcore_bytes_done;
        }
    }

    /// The dump ended (whole or not); returns `false` when the watchdog
    /// took it first, in which case its record is the watchdog's to write.
    pub fn dump_ended(&self) -> bool {
        self.state().dump.take().is_some()
    }

    /// For the watchdog: takes the dump in progress, if any, with its
    /// record marked incomplete because `reason`.
    pub fn cut(&self, reason: &str) -> Option<CutDump> {
        let mut state = self.state();
        let doing = state.doing.clone();
        let dump = state.dump.take()?;
        let mut record = dump.record;
        record.status = Some(Status::Incomplete);
        record.error = Some(reason.to_owned());
        record.stage = Some(doing);
        record.vmcore_bytes_done = Some(dump.vmcore_bytes_done);
        record.dump_bytes = Some(dump.dump_bytes.load(Ordering::Relaxed));
        Some(CutDump {
            destination: dump.destination,
            record,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dumper::output::DirDestination;

    #[test]
    fn a_cut_takes_the_dump_with_its_progress() {
        let stage = Stage::new();
        stage.set("waiting for LABEL=X");
        assert!(stage.cut("deadline").is_none(), "no dump yet");
        assert_eq!(stage.doing(), "waiting for LABEL=X");

        let dir = tempfile::tempdir().unwrap();
        let destination: Arc<dyn Destination> = Arc::new(DirDestination::at(dir.path()));
        let record = Record {
            status: Some(Status::InProgress),
            vmcore_bytes: 1000,
            ..Record::default()
        };
        let written = Arc::new(AtomicU64::new(0));
        stage.dump_started(destination, &record, written.clone());
        stage.set("dumping to somewhere");
        stage.dump_progress(600);
        written.store(42, Ordering::Relaxed);
        let cut = stage.cut("the capture deadline of 9 s passed").unwrap();
        assert_eq!(cut.record.status, Some(Status::Incomplete));
        assert_eq!(
            cut.record.error.as_deref(),
            Some("the capture deadline of 9 s passed")
        );
        assert_eq!(cut.record.stage.as_deref(), Some("dumping to somewhere"));
        assert_eq!(cut.record.vmcore_bytes_done, Some(600));
        assert_eq!(cut.record.dump_bytes, Some(42));
        // The capture learns that its record is no longer its own.
        assert!(!stage.dump_ended());
    }

    #[test]
    fn a_dump_that_ended_cannot_be_cut() {
        let stage = Stage::new();
        let dir = tempfile::tempdir().unwrap();
        stage.dump_started(
            Arc::new(DirDestination::at(dir.path())),
            &Record::default(),
            Arc::default(),
        );
        assert!(stage.dump_ended());
        assert!(stage.cut("late").is_none());
    }
}

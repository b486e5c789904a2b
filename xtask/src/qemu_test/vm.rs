//! Running QEMU under a deadline while watching its serial console for
//! expected lines, in order, with the time each one appeared.

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use crate::util;

/// A console line (or part of one) that must appear after the previous
/// marker.
pub struct Marker {
    /// What reaching it means, for reports ("capture kernel boots").
    pub name: &'static str,
    pub text: &'static str,
}

pub enum Outcome {
    /// QEMU ended by itself: the guest powered off or rebooted
    /// (`-no-reboot`).
    Exited(ExitStatus),
    /// The deadline passed and QEMU was killed.
    TimedOut,
}

pub struct VmRun {
    /// Everything the guest printed, lossily decoded.
    pub serial: String,
    /// When each marker appeared, counted from QEMU's start, for the markers
    /// that did, in order.
    pub seen: Vec<Duration>,
    pub outcome: Outcome,
    pub elapsed: Duration,
}

/// Runs `qemu` (whose serial console must be on its stdout), copying the
/// console to `serial_log` as it comes.
pub fn run(
    mut qemu: Command,
    serial_log: &Path,
    markers: &[Marker],
    deadline: Duration,
) -> Result<VmRun> {
    let start = Instant::now();
    let mut log_file = File::create(serial_log)
        .with_context(|| format!("cannot create {}", serial_log.display()))?;
    let mut child = qemu
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot start `{}`", util::display(&qemu)))?;
    let mut stdout = child.stdout.take().expect("stdout is piped");

    // A thread reads the console so that the deadline can be enforced
    // without depending on the guest printing anything.
    let (sender, receiver) = mpsc::channel::<Vec<u8>>();
    let reader = thread::spawn(move || {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            match stdout.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if sender.send(buffer[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });

    let mut console = Vec::new();
    let mut seen = Vec::new();
    let mut search_from = 0;
    let timed_out = loop {
        let remaining = deadline.saturating_sub(start.elapsed());
        match receiver.recv_timeout(remaining) {
            Ok(chunk) => {
                log_file.write_all(&chunk)?;
                console.extend_from_slice(&chunk);
                while let Some(marker) = markers.get(seen.len()) {
                    let needle = marker.text.as_bytes();
                    match find(&console[search_from..], needle) {
                        Some(position) => {
                            seen.push(start.elapsed());
                            search_from += position + needle.len();
                        }
                        None => break,
                    }
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break false,
            Err(mpsc::RecvTimeoutError::Timeout) => break true,
        }
    };
    let outcome = if timed_out {
        // The child may have exited just now; killing it then fails, which
        // is fine.
        let _ = child.kill();
        child.wait()?;
        Outcome::TimedOut
    } else {
        Outcome::Exited(child.wait()?)
    };
    // The pipe closes when QEMU dies, which ends the reader.
    let _ = reader.join();
    log_file.flush()?;
    Ok(VmRun {
        serial: String::from_utf8_lossy(&console).into_owned(),
        seen,
        outcome,
        elapsed: start.elapsed(),
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

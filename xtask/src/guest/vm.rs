//! Booting a production VM under TCG and running QEMU under a deadline
//! while watching its serial console for expected lines, in order, with
//! the time each one appeared; the console markers of a crash and capture,
//! and the signs of a capture that went wrong.

use std::fs::{self, File};
use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use super::kernel::Kernel;
use crate::util;

/// kexec_file_load puts `elfcorehdr=` first on the capture kernel's command
/// line, which the kernel echoes early; no other boot has it.
pub const CAPTURE_BOOT: &str = "Kernel command line: elfcorehdr=";

/// What a production VM boots: a Debian kernel with crashme's initramfs
/// and one virtio disk.
pub struct BootSpec<'a> {
    pub memory_mib: u32,
    pub cpus: u32,
    pub kernel: &'a Kernel,
    pub initrd: &'a Path,
    pub cmdline: &'a str,
    pub disk: &'a Path,
    /// A virtio NIC on QEMU's user network (the guest gets 10.0.2.15 by
    /// DHCP and reaches the host's loopback at 10.0.2.2); none otherwise.
    pub network: bool,
    /// Where `qemu-command.txt` and `serial.log` go.
    pub dir: &'a Path,
}

/// Boots the VM under TCG and watches its console for `markers` until it
/// exits or `deadline` passes; the command goes to `qemu-command.txt`.
pub fn boot(spec: &BootSpec, markers: &[Marker], deadline: Duration) -> Result<VmRun> {
    let mut qemu = Command::new("qemu-system-x86_64");
    // TCG only: KVM guests hang on these machines.
    qemu.args(["-machine", "q35", "-cpu", "max"])
        .args(["-smp", &spec.cpus.to_string()])
        .args(["-m", &spec.memory_mib.to_string()])
        .args(["-nographic", "-monitor", "none", "-serial", "stdio"])
        .args(network_args(spec.network))
        .arg("-no-reboot")
        .arg("-kernel")
        .arg(&spec.kernel.vmlinuz)
        .arg("-initrd")
        .arg(spec.initrd)
        .args(["-append", spec.cmdline])
        .arg("-drive")
        .arg(format!("file={},format=raw,if=virtio", spec.disk.display()));
    fs::write(
        spec.dir.join("qemu-command.txt"),
        util::display(&qemu) + "\n",
    )?;
    println!("booting: {}", util::display(&qemu));
    run(qemu, &spec.dir.join("serial.log"), markers, deadline)
}

/// The NIC arguments: one virtio NIC on user networking, or none.
fn network_args(network: bool) -> &'static [&'static str] {
    if network {
        &[
            "-netdev",
            "user,id=n0",
            "-device",
            "virtio-net-pci,netdev=n0,id=nic0",
        ]
    } else {
        &["-nic", "none"]
    }
}

/// The markers of a crash and capture, after `prepared`: what crashme
/// prints once the production kernel's memory is ready.
pub fn capture_markers(prepared: Marker) -> Vec<Marker> {
    let marker = |name, text| Marker { name, text };
    vec![
        prepared,
        marker("crashme armed the capture kernel", crashme::ARMED),
        marker("the production kernel crashes", "sysrq: Trigger a crash"),
        marker("the capture kernel boots", CAPTURE_BOOT),
        marker("the capture kernel runs /init", "Run /init as init process"),
        marker("lifeboat logs", "lifeboat: "),
        // Printed by the kernel when PID 1 calls reboot(2), not on a panic.
        marker("PID 1 reboots", "reboot: Restarting system"),
    ]
}

/// What went wrong in a run that should have ended in PID 1's reboot:
/// QEMU killed at the deadline or failing, a marker that never appeared,
/// and the console's own signs of trouble.
pub fn problems(vm_run: &VmRun, markers: &[Marker], deadline: Duration) -> Vec<String> {
    let mut problems = Vec::new();
    match vm_run.outcome {
        Outcome::TimedOut => problems.push(format!(
            "QEMU was still running after the {} s deadline and was killed",
            deadline.as_secs()
        )),
        Outcome::Exited(status) if !status.success() => {
            problems.push(format!("QEMU failed: {status}"))
        }
        Outcome::Exited(_) => {}
    }
    if let Some(missing) = markers.get(vm_run.seen.len()) {
        let after = match vm_run.seen.len() {
            0 => "QEMU started".to_string(),
            n => format!("`{}`", markers[n - 1].text),
        };
        problems.push(format!(
            "console: {} (`{}`) never appeared after {after}",
            missing.name, missing.text
        ));
    }
    problems.extend(bad_signs(&vm_run.serial));
    problems
}

/// Console lines that explain a failure better than a missing marker does:
/// crashme's own failure, and a panic or an OOM of the capture kernel (the
/// production kernel's panic is the point of the test).
fn bad_signs(serial: &str) -> Vec<String> {
    let mut found: Vec<String> = serial
        .lines()
        .filter(|line| line.contains(crashme::FAILED))
        .map(|line| format!("console: {}", line.trim_end()))
        .collect();
    if let Some(capture_start) = serial.find(CAPTURE_BOOT) {
        found.extend(
            serial[capture_start..]
                .lines()
                .filter(|line| {
                    ["Kernel panic", "Out of memory", "deadlocked on memory"]
                        .iter()
                        .any(|sign| line.contains(sign))
                })
                .map(|line| format!("capture kernel: {}", line.trim_end())),
        );
    }
    found
}

/// Prints when each marker appeared.
pub fn print_timeline(markers: &[Marker], vm_run: &VmRun) {
    println!("timeline (seconds since QEMU started):");
    for (marker, at) in markers.iter().zip(&vm_run.seen) {
        println!("  {:7.1}  {}", at.as_secs_f64(), marker.name);
    }
    println!("  {:7.1}  QEMU exited", vm_run.elapsed.as_secs_f64());
}

/// Prints `dir/serial.log` whole, for a run that failed.
pub fn print_serial_log(dir: &Path) {
    let log = dir.join("serial.log");
    match fs::read(&log) {
        Ok(bytes) => {
            println!("----- {} -----", log.display());
            println!("{}", String::from_utf8_lossy(&bytes));
            println!("----- end of serial log -----");
        }
        Err(error) => println!("(no serial log: {}: {error})", log.display()),
    }
}

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

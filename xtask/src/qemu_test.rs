//! `cargo xtask qemu-test [--list] [NAME...]`: crash a QEMU guest for real
//! and check the dump lifeboat saved of it.
//!
//! For each scenario (see `scenarios.rs`): build the capture image with the
//! `lifeboat` CLI exactly as a user would; boot Debian's cloud kernel with
//! `crashme` as /init, which plants known pages, arms the capture kernel with
//! kexec_file_load and crashes through sysrq; watch the serial console for
//! each stage under a deadline; then read the dump off the disk image and
//! check it with stock tools, with crash and the debug kernel, and with
//! lifeboat's own reading commands. What a run made stays in
//! `target/qemu-test/<scenario>/`, except large temporary copies.

mod analysis;
mod checks;
pub(crate) mod kernel;
pub(crate) mod scenarios;
pub(crate) mod vm;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use crashme::Planted;
use initramfs::cpio::Archive;

use self::kernel::Kernel;
use self::scenarios::{Scenario, SCENARIOS};
use self::vm::{Marker, Outcome, VmRun};
use crate::deps;
use crate::dist::{self, Dist};
use crate::util::{self, target_dir};

/// Label of the test disk. The configs name the disk by UUID; a label other
/// than lifeboat's default (`LIFEBOAT`) makes sure the UUID is what found it.
const DISK_LABEL: &str = "crashtest";
/// kexec_file_load puts `elfcorehdr=` first on the capture kernel's command
/// line, which the kernel echoes early; no other boot has it.
const CAPTURE_BOOT: &str = "Kernel command line: elfcorehdr=";

pub fn run(args: &[String]) -> Result<()> {
    let mut list = false;
    let mut names = Vec::new();
    for arg in args {
        match arg.as_str() {
            "--list" => list = true,
            flag if flag.starts_with('-') => bail!("unknown flag `{flag}`"),
            name => names.push(name),
        }
    }
    if list {
        for scenario in SCENARIOS {
            let mut line = format!(
                "{:16} {} MiB guest, crashkernel={}, {} MiB planted",
                scenario.name, scenario.memory_mib, scenario.crashkernel, scenario.plant_mib
            );
            if !scenario.image_args.is_empty() {
                line += &format!(", lifeboat image {}", scenario.image_args.join(" "));
            }
            println!("{line}");
        }
        return Ok(());
    }
    let selected = select(&names)?;

    deps::ensure(&[deps::BUILD, deps::QEMU_TEST])?;
    let kernel = kernel::fetch()?;
    println!("kernel: {} ({})", kernel.package, kernel.vmlinuz.display());
    // Only complete dumps are opened with crash.
    let vmlinux: Option<PathBuf> = if selected
        .iter()
        .any(|scenario| scenario.expect_status == checks::COMPLETE)
    {
        Some(kernel::fetch_debug_vmlinux(&kernel)?)
    } else {
        None
    };
    let dist = dist::build()?;

    let mut results = Vec::new();
    for scenario in selected {
        println!("\n=== {}", scenario.name);
        let start = Instant::now();
        let passed = run_scenario(scenario, &dist, &kernel, vmlinux.as_deref());
        results.push((scenario.name, passed, start.elapsed()));
    }

    println!("\n=== summary");
    for (name, passed, elapsed) in &results {
        let verdict = if *passed { "pass" } else { "FAIL" };
        println!("{name:16} {verdict}  {:.1} s", elapsed.as_secs_f64());
    }
    let n_failed = results.iter().filter(|(_, passed, _)| !passed).count();
    if n_failed > 0 {
        bail!("{n_failed} of {} scenarios failed", results.len());
    }
    Ok(())
}

fn select(names: &[&str]) -> Result<Vec<&'static Scenario>> {
    if names.is_empty() {
        return Ok(SCENARIOS.iter().collect());
    }
    names
        .iter()
        .map(|name| {
            SCENARIOS
                .iter()
                .find(|scenario| scenario.name == *name)
                .with_context(|| {
                    let known: Vec<&str> = SCENARIOS.iter().map(|s| s.name).collect();
                    format!("no scenario `{name}`; known: {}", known.join(", "))
                })
        })
        .collect()
}

/// Runs one scenario and prints its report; returns whether it passed.
fn run_scenario(scenario: &Scenario, dist: &Dist, kernel: &Kernel, vmlinux: Option<&Path>) -> bool {
    let dir = target_dir().join("qemu-test").join(scenario.name);
    let vm_run = match prepare_and_boot(scenario, dist, kernel, &dir) {
        Ok(vm_run) => vm_run,
        Err(error) => {
            print_serial_log(&dir);
            println!("FAILED {}: {error:#}", scenario.name);
            return false;
        }
    };

    let markers = markers();
    print_timeline(&markers, &vm_run);
    let mut failures = Vec::new();
    match vm_run.outcome {
        Outcome::TimedOut => failures.push(format!(
            "QEMU was still running after the {} s deadline and was killed",
            scenario.deadline_secs
        )),
        Outcome::Exited(status) if !status.success() => {
            failures.push(format!("QEMU failed: {status}"))
        }
        Outcome::Exited(_) => {}
    }
    if let Some(missing) = markers.get(vm_run.seen.len()) {
        let after = match vm_run.seen.len() {
            0 => "QEMU started".to_string(),
            n => format!("`{}`", markers[n - 1].text),
        };
        failures.push(format!(
            "console: {} (`{}`) never appeared after {after}",
            missing.name, missing.text
        ));
    }

    failures.extend(bad_signs(&vm_run.serial));
    if !scenario.expect_console.is_empty() && !vm_run.serial.contains(scenario.expect_console) {
        failures.push(format!(
            "console: lifeboat never printed `{}`",
            scenario.expect_console
        ));
    }

    match Planted::parse(&vm_run.serial) {
        Ok(planted) => {
            let pages: String = planted.to_lines().join("\n") + "\n";
            if let Err(error) = fs::write(dir.join("pages.txt"), pages) {
                failures.push(format!("cannot write pages.txt: {error}"));
            }
            let inputs = checks::Inputs {
                dir: &dir,
                disk: &dir.join("disk.img"),
                planted: &planted,
                expect_status: scenario.expect_status,
                expect_threads: scenario.cpus,
                lifeboat: &dist.lifeboat,
                vmlinux,
            };
            for failure in checks::run(&inputs) {
                failures.push(format!("{}: {}", failure.check, failure.detail));
            }
        }
        Err(error) => failures.push(format!("planted-page report: {error}")),
    }

    if failures.is_empty() {
        println!("{}: all checks passed ({})", scenario.name, dir.display());
        return true;
    }
    print_serial_log(&dir);
    println!("FAILED {} ({}):", scenario.name, dir.display());
    for failure in failures {
        println!("- {failure}");
    }
    false
}

/// What the console must show, in this order: crashme's report and arming
/// on the production kernel, the crash, then the capture kernel booting our
/// image, lifeboat logging, and PID 1 rebooting (which ends QEMU).
fn markers() -> Vec<Marker> {
    capture_markers(Marker {
        name: "crashme planted its pages",
        text: crashme::PLANTED_END,
    })
}

/// The markers of a crash and capture, after `prepared`: what crashme
/// prints once the production kernel's memory is ready.
pub(crate) fn capture_markers(prepared: Marker) -> Vec<Marker> {
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

/// Console lines that explain a failure better than a missing marker does:
/// crashme's own failure, and a panic or an OOM of the capture kernel (the
/// production kernel's panic is the point of the test).
pub(crate) fn bad_signs(serial: &str) -> Vec<String> {
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

fn print_timeline(markers: &[Marker], vm_run: &VmRun) {
    println!("timeline (seconds since QEMU started):");
    for (marker, at) in markers.iter().zip(&vm_run.seen) {
        println!("  {:7.1}  {}", at.as_secs_f64(), marker.name);
    }
    println!("  {:7.1}  QEMU exited", vm_run.elapsed.as_secs_f64());
}

pub(crate) fn print_serial_log(dir: &Path) {
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

/// Builds the disk and both initramfs images, then boots the VM.
fn prepare_and_boot(
    scenario: &Scenario,
    dist: &Dist,
    kernel: &Kernel,
    dir: &Path,
) -> Result<VmRun> {
    if dir.exists() {
        fs::remove_dir_all(dir).with_context(|| format!("cannot clear {}", dir.display()))?;
    }
    fs::create_dir_all(dir)?;

    let disk = dir.join("disk.img");
    make_disk(&disk, scenario.disk_uuid, DISK_LABEL, scenario.disk_mib)?;

    let capture_image = build_capture_image(
        dist,
        kernel,
        dir,
        &scenario.config_toml(),
        scenario.image_args,
    )?;
    let production_image = dir.join("production.cpio");
    write_archive(
        &production_image,
        production_archive(dist, kernel, &capture_image, &scenario.capture_cmdline())?,
    )?;

    let cmdline = format!(
        "console=ttyS0 crashkernel={} panic=-1 {}={} {}={:#x}",
        scenario.crashkernel,
        crashme::PARAM_PLANT_MIB,
        scenario.plant_mib,
        crashme::PARAM_SEED,
        scenario.seed()
    );
    boot(
        &BootSpec {
            memory_mib: scenario.memory_mib,
            cpus: scenario.cpus,
            kernel,
            initrd: &production_image,
            cmdline: &cmdline,
            disk: &disk,
            dir,
        },
        &markers(),
        Duration::from_secs(scenario.deadline_secs),
    )
}

/// What a production VM boots: the Debian kernel with crashme's initramfs
/// and one virtio disk.
pub(crate) struct BootSpec<'a> {
    pub memory_mib: u32,
    pub cpus: u32,
    pub kernel: &'a Kernel,
    pub initrd: &'a Path,
    pub cmdline: &'a str,
    pub disk: &'a Path,
    /// Where `qemu-command.txt` and `serial.log` go.
    pub dir: &'a Path,
}

/// Boots the VM under TCG and watches its console for `markers` until it
/// exits or `deadline` passes; the command goes to `qemu-command.txt`.
pub(crate) fn boot(spec: &BootSpec, markers: &[Marker], deadline: Duration) -> Result<VmRun> {
    let mut qemu = Command::new("qemu-system-x86_64");
    // TCG only: KVM guests hang on these machines (FACTS.md).
    qemu.args(["-machine", "q35", "-cpu", "max"])
        .args(["-smp", &spec.cpus.to_string()])
        .args(["-m", &spec.memory_mib.to_string()])
        .args(["-nographic", "-monitor", "none", "-serial", "stdio"])
        .args(["-nic", "none", "-no-reboot"])
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
    vm::run(qemu, &spec.dir.join("serial.log"), markers, deadline)
}

/// Makes an ext4 test disk, sparse, so that it costs only what is written.
pub(crate) fn make_disk(disk: &Path, uuid: &str, label: &str, mib: u64) -> Result<()> {
    let file = fs::File::create(disk)?;
    file.set_len(mib << 20)?;
    drop(file);
    util::run(
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-U", uuid, "-L", label])
            .arg(disk),
    )
}

/// Writes `config_toml` to `dir/lifeboat.toml` and builds
/// `dir/lifeboat.img` from it with `lifeboat image`, as a user would.
pub(crate) fn build_capture_image(
    dist: &Dist,
    kernel: &Kernel,
    dir: &Path,
    config_toml: &str,
    extra_args: &[&str],
) -> Result<PathBuf> {
    let config = dir.join("lifeboat.toml");
    fs::write(&config, config_toml)?;
    let capture_image = dir.join("lifeboat.img");
    util::run(
        Command::new(&dist.lifeboat)
            .arg("image")
            .arg("--config")
            .arg(&config)
            .arg("--kernel-modules")
            .arg(&kernel.modules)
            .args(extra_args)
            .arg("-o")
            .arg(&capture_image),
    )?;
    Ok(capture_image)
}

/// crashme's initramfs: crashme as /init, and what it loads as the capture
/// kernel; the bench adds its own files.
pub(crate) fn production_archive(
    dist: &Dist,
    kernel: &Kernel,
    capture_image: &Path,
    capture_cmdline: &str,
) -> Result<Archive> {
    let read =
        |path: &Path| fs::read(path).with_context(|| format!("cannot read {}", path.display()));
    let mut archive = Archive::new();
    archive.add_char_device("/dev/console", 0o600, 5, 1)?;
    archive.add_file("/init", 0o755, read(&dist.crashme)?)?;
    archive.add_file("/vmlinuz", 0o644, read(&kernel.vmlinuz)?)?;
    archive.add_file("/lifeboat.img", 0o644, read(capture_image)?)?;
    archive.add_file(
        "/capture-cmdline",
        0o644,
        format!("{capture_cmdline}\n").into_bytes(),
    )?;
    Ok(archive)
}

pub(crate) fn write_archive(out: &Path, archive: Archive) -> Result<()> {
    fs::write(out, archive.to_bytes()).with_context(|| format!("cannot write {}", out.display()))
}

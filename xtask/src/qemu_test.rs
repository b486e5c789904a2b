//! `cargo xtask qemu-test [--list] [NAME...]`: crash a QEMU guest for real
//! and check the dump lifeboat saved of it.
//!
//! For each scenario (see `scenarios.rs`): build the capture image with the
//! `lifeboat` CLI exactly as a user would; boot Debian's cloud or generic
//! kernel, or Debian 13's cloud kernel, with `crashme` as /init, which
//! plants known pages, arms the capture kernel with kexec_file_load and
//! crashes through sysrq; watch the serial console for
//! each stage under a deadline; then read the dump off the disk image and
//! check it with stock tools, with crash and the debug kernel, and with
//! lifeboat's own reading commands. What a run made stays in
//! `target/qemu-test/<scenario>/`, except large temporary copies.

mod analysis;
mod checks;
mod kdump;
mod kinds;
mod levels;
mod scenarios;
mod servers;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use crashme::kinds::{Kinds, PARAM_KINDS};
use crashme::Planted;

use self::scenarios::{Scenario, Serve, ServerPlaces, SCENARIOS};
use self::servers::{NfsServer, SshServer};
use crate::bench::makedumpfile;
use crate::deps;
use crate::dist::{self, Dist};
use crate::guest::image::{
    add_disk_modules, build_capture_image, production_archive, write_archive,
};
use crate::guest::kernel::{self, Flavour, Kernel};
use crate::guest::vm::{self, BootSpec, Marker, VmRun};
use crate::util::target_dir;

/// Label of the test disk. The configs name the disk by UUID; a label other
/// than lifeboat's default (`LIFEBOAT`) makes sure the UUID is what found it.
const DISK_LABEL: &str = "crashtest";

/// The scenarios whose vmcore (whole: captured at level 0) is saved again
/// at each dump level by lifeboat and makedumpfile, and the two compared
/// frame by frame: one of each kernel flavour, each with a makedumpfile
/// that knows its kernel.
const LEVEL_COMPARISONS: &[(&str, LevelReference)] = &[
    ("disk-ext4", LevelReference::Installed),
    ("generic-ext4", LevelReference::Installed),
    ("trixie-ext4", LevelReference::Knows6_12),
];

/// The makedumpfile a scenario's dump levels are compared with.
#[derive(Clone, Copy)]
enum LevelReference {
    /// The machine's (Debian 12: 1.7.2, which knows 6.1 kernels).
    Installed,
    /// One that knows the page types of 6.12 kernels: trixie's own 1.7.6
    /// sees no free page there (`makedumpfile::fetch_knows_6_12`).
    Knows6_12,
}

impl LevelReference {
    fn of(scenario: &Scenario) -> Option<LevelReference> {
        LEVEL_COMPARISONS
            .iter()
            .find(|(name, _)| *name == scenario.name)
            .map(|&(_, reference)| reference)
    }

    fn program(self) -> Result<PathBuf> {
        match self {
            LevelReference::Installed => Ok(PathBuf::from("makedumpfile")),
            LevelReference::Knows6_12 => {
                makedumpfile::fetch_knows_6_12(&target_dir().join("bench"))
            }
        }
    }
}

/// The scenarios where crashme also plants pages of every kind the dump
/// levels tell apart (page cache on the test disk, which it mounts, so a
/// cloud kernel with ext4 built in; shmem, THP, hugetlb, freed pages),
/// checked in the captured dump and, where levels are compared, in every
/// level's.
const PLANT_KINDS: &[&str] = &["disk-ext4", "disk-ext4-d31"];

pub fn run(args: &[String]) -> Result<()> {
    let mut list = false;
    let mut crashkernel = None;
    let mut names = Vec::new();
    for arg in args {
        match arg.as_str() {
            "--list" => list = true,
            flag if flag.starts_with("--crashkernel=") => {
                crashkernel = Some(flag["--crashkernel=".len()..].to_owned())
            }
            flag if flag.starts_with('-') => bail!("unknown flag `{flag}`"),
            name => names.push(name),
        }
    }
    if list {
        for scenario in SCENARIOS {
            let mut line = format!(
                "{:16} {} kernel, {} disk, {} MiB guest, crashkernel={}, {} MiB planted",
                scenario.name,
                scenario.kernel.name(),
                scenario.fs.name(),
                scenario.memory_mib,
                scenario.crashkernel,
                scenario.plant_mib
            );
            if !scenario.image_args.is_empty() {
                line += &format!(", lifeboat image {}", scenario.image_args.join(" "));
            }
            if LevelReference::of(scenario).is_some() {
                line += ", dump levels against makedumpfile";
            }
            if scenario.no_crash.is_some() {
                line += ", no crash";
            }
            println!("{line}");
        }
        return Ok(());
    }
    let selected = select(&names)?;

    deps::ensure(&[deps::BUILD, deps::QEMU_TEST, deps::SERVERS])?;
    // Each flavour the selection boots, fetched once; only complete dumps
    // are opened with crash, so only their kernels need the debug twin.
    let mut kernels: BTreeMap<&str, (Kernel, Option<PathBuf>)> = BTreeMap::new();
    for flavour in [Flavour::Cloud, Flavour::Generic, Flavour::TrixieCloud] {
        let of_flavour = || selected.iter().filter(|s| s.kernel == flavour);
        if of_flavour().next().is_none() {
            continue;
        }
        let kernel = kernel::fetch(flavour)?;
        println!("kernel: {} ({})", kernel.package, kernel.vmlinuz.display());
        let vmlinux =
            if of_flavour().any(|s| s.expect_status == checks::COMPLETE && s.no_crash.is_none()) {
                Some(kernel::fetch_debug_vmlinux(&kernel)?)
            } else {
                None
            };
        kernels.insert(flavour.name(), (kernel, vmlinux));
    }
    let dist = dist::build()?;
    let current_makedumpfile = current_makedumpfile()?;
    // The makedumpfile of each level comparison selected, fetched once.
    let mut level_references = BTreeMap::new();
    for scenario in &selected {
        if let Some(reference) = LevelReference::of(scenario) {
            let program = reference.program()?;
            println!(
                "{}: dump levels compared with makedumpfile {} ({})",
                scenario.name,
                makedumpfile::version_of(&program)?,
                program.display()
            );
            level_references.insert(scenario.name, program);
        }
    }

    let mut results = Vec::new();
    for scenario in selected {
        let (kernel, vmlinux) = &kernels[scenario.kernel.name()];
        let crashkernel = crashkernel.as_deref().unwrap_or(scenario.crashkernel);
        println!("\n=== {} (crashkernel={crashkernel})", scenario.name);
        let start = Instant::now();
        let passed = run_scenario(
            scenario,
            crashkernel,
            &dist,
            kernel,
            vmlinux.as_deref(),
            current_makedumpfile.as_deref(),
            level_references.get(scenario.name).map(PathBuf::as_path),
        );
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

/// A makedumpfile that prints the printk caller column (1.7.5 and later),
/// as PID 1 and `lifeboat dmesg` write the log: the installed one when it
/// is recent enough, else Debian trixie's, fetched through the machine's
/// apt sources. `None` when neither is to be had (an older distribution
/// without trixie in its sources): the logs are then compared with the
/// caller column taken out.
fn current_makedumpfile() -> Result<Option<PathBuf>> {
    let installed = makedumpfile::version_of(Path::new("makedumpfile"))?;
    if makedumpfile::prints_caller_column(&installed) {
        return Ok(Some(PathBuf::from("makedumpfile")));
    }
    match makedumpfile::fetch_current(&target_dir().join("bench")) {
        Ok(program) => {
            println!("current makedumpfile: {}", program.display());
            Ok(Some(program))
        }
        Err(error) => {
            println!(
                "warning: the installed makedumpfile {installed} prints no caller column and a \
                 current one could not be fetched ({error:#}); logs are compared without it"
            );
            Ok(None)
        }
    }
}

/// Runs one scenario and prints its report; returns whether it passed.
fn run_scenario(
    scenario: &Scenario,
    crashkernel: &str,
    dist: &Dist,
    kernel: &Kernel,
    vmlinux: Option<&Path>,
    current_makedumpfile: Option<&Path>,
    level_reference: Option<&Path>,
) -> bool {
    let dir = target_dir().join("qemu-test").join(scenario.name);
    if dir.exists() {
        if let Err(error) = fs::remove_dir_all(&dir) {
            println!(
                "FAILED {}: cannot clear {}: {error}",
                scenario.name,
                dir.display()
            );
            return false;
        }
    }
    // Held until the checks are done, and stopped when dropped, pass or fail.
    let server = match start_server(scenario, &dir) {
        Ok(server) => server,
        Err(error) => {
            println!("FAILED {}: {error:#}", scenario.name);
            return false;
        }
    };
    let places = match &server {
        Some(TestServer::Nfs(nfs)) => ServerPlaces::of_nfs(nfs),
        Some(TestServer::Ssh(ssh)) => ServerPlaces::of_ssh(ssh),
        None => ServerPlaces::default(),
    };
    let vm_run = match prepare_and_boot(scenario, crashkernel, dist, kernel, &dir, &places) {
        Ok(vm_run) => vm_run,
        Err(error) => {
            vm::print_serial_log(&dir);
            println!("FAILED {}: {error:#}", scenario.name);
            return false;
        }
    };

    let markers = markers(scenario);
    vm::print_timeline(&markers, &vm_run);
    let mut failures = vm::problems(
        &vm_run,
        &markers,
        Duration::from_secs(scenario.deadline_secs),
    );
    if !scenario.expect_console.is_empty() && !vm_run.serial.contains(scenario.expect_console) {
        failures.push(format!(
            "console: lifeboat never printed `{}`",
            scenario.expect_console
        ));
    }

    let kinds = if PLANT_KINDS.contains(&scenario.name) {
        match Kinds::parse(&vm_run.serial) {
            Ok(kinds) => {
                let mut report = kinds.to_lines().join("\n") + "\n";
                if let Some(per_cpu) = kinds.per_cpu {
                    report += &(Kinds::per_cpu_line(per_cpu) + "\n");
                }
                if let Err(error) = fs::write(dir.join("kinds.txt"), report) {
                    failures.push(format!("cannot write kinds.txt: {error}"));
                }
                Some(kinds)
            }
            Err(error) => {
                failures.push(format!("planted kinds report: {error}"));
                None
            }
        }
    } else {
        None
    };
    match Planted::parse(&vm_run.serial) {
        Ok(planted) => {
            let pages: String = planted.to_lines().join("\n") + "\n";
            if let Err(error) = fs::write(dir.join("pages.txt"), pages) {
                failures.push(format!("cannot write pages.txt: {error}"));
            }
            let disk = dir.join("disk.img");
            let source = match &server {
                Some(TestServer::Nfs(nfs)) => checks::Source::HostDir {
                    root: &nfs.export_dir,
                },
                Some(TestServer::Ssh(ssh)) => checks::Source::HostDir {
                    root: &ssh.dump_root,
                },
                None => checks::Source::Disk {
                    fs: scenario.fs,
                    disk: &disk,
                },
            };
            let inputs = checks::Inputs {
                dir: &dir,
                source,
                crash_dir: scenario.crash_dir(),
                dir_prefix: scenario.dir_prefix(),
                planted: &planted,
                expect_status: scenario.expect_status,
                expect_error: scenario.expect_error,
                current_makedumpfile,
                expect_threads: scenario.cpus,
                expect_network: scenario.serve.expected(),
                lifeboat: &dist.lifeboat,
                vmlinux,
                dump_level: scenario.dump_level(),
                compare_levels: level_reference,
                kinds: kinds.as_ref(),
                no_crash: scenario.no_crash,
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
    vm::print_serial_log(&dir);
    println!("FAILED {} ({}):", scenario.name, dir.display());
    for failure in failures {
        println!("- {failure}");
    }
    false
}

/// What the console must show, in this order: crashme's report and arming
/// on the production kernel, the crash, then the capture kernel booting our
/// image, lifeboat logging, and PID 1 rebooting (which ends QEMU).
fn markers(scenario: &Scenario) -> Vec<Marker> {
    let mut markers = vm::capture_markers(Marker {
        name: "crashme planted its pages",
        text: crashme::PLANTED_END,
    });
    // A network target's steps, before the reboot: when the address was
    // set (a line only the address's own report prints) and when the
    // server was reached.
    if let Some(reached) = scenario.serve.reached_marker() {
        let reboot = markers.len() - 1;
        markers.insert(
            reboot,
            Marker {
                name: "lifeboat reached the server",
                text: reached,
            },
        );
        markers.insert(
            reboot,
            Marker {
                name: "lifeboat has its address",
                text: "52:54:00:12:34:56: 10.0.2.15/24",
            },
        );
    }
    markers
}

/// A running dump server, stopped when dropped.
enum TestServer {
    Nfs(NfsServer),
    Ssh(SshServer),
}

/// Starts the scenario's dump server, if it has one.
fn start_server(scenario: &Scenario, dir: &Path) -> Result<Option<TestServer>> {
    match scenario.serve {
        Serve::Nothing => Ok(None),
        Serve::Nfs { .. } => NfsServer::start(dir).map(|nfs| Some(TestServer::Nfs(nfs))),
        Serve::Ssh { .. } => SshServer::start(dir).map(|ssh| Some(TestServer::Ssh(ssh))),
    }
}

/// Builds the disk and both initramfs images, then boots the VM.
fn prepare_and_boot(
    scenario: &Scenario,
    crashkernel: &str,
    dist: &Dist,
    kernel: &Kernel,
    dir: &Path,
    places: &ServerPlaces,
) -> Result<VmRun> {
    fs::create_dir_all(dir)?;

    let disk = dir.join("disk.img");
    scenario
        .fs
        .make(&disk, scenario.disk_uuid, DISK_LABEL, scenario.disk_mib)?;

    let capture_image = build_capture_image(
        dist,
        kernel,
        dir,
        &scenario.config_toml(places),
        scenario.image_args,
    )?;
    let production_image = dir.join("production.cpio");
    let mut archive =
        production_archive(dist, kernel, &capture_image, &scenario.capture_cmdline())?;
    let plant_kinds = PLANT_KINDS.contains(&scenario.name);
    if plant_kinds {
        add_disk_modules(&mut archive, kernel)?;
    }
    write_archive(&production_image, archive)?;

    let mut cmdline = format!(
        "console=ttyS0 crashkernel={crashkernel} panic=-1 {}={} {}={:#x}",
        crashme::PARAM_PLANT_MIB,
        scenario.plant_mib,
        crashme::PARAM_SEED,
        scenario.seed()
    );
    if plant_kinds {
        cmdline += &format!(" {PARAM_KINDS}=1");
    }
    vm::boot(
        &BootSpec {
            memory_mib: scenario.memory_mib,
            cpus: scenario.cpus,
            kernel,
            initrd: &production_image,
            cmdline: &cmdline,
            disk: &disk,
            network: scenario.serve != Serve::Nothing,
            dir,
        },
        &markers(scenario),
        Duration::from_secs(scenario.deadline_secs),
    )
}

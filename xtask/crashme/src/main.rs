//! `/init` of the production VM in `cargo xtask qemu-test`.
//!
//! It plays the machine that crashes: it plants pages of known content in
//! memory and reports their physical frames, loads lifeboat's capture image
//! as the crash kernel with `kexec_file_load`, then crashes the kernel through
//! sysrq. Whatever goes wrong, it prints a `crashme: FAILED` line and powers
//! off, so QEMU exits instead of hanging until the harness's deadline.
//!
//! With `crashme.kinds=1` it also plants pages of every kind the dump
//! levels tell apart (`plant_kinds`, `crashme::kinds`): page cache with and
//! without buffer heads and zero-filled on the test disk, which it mounts,
//! shmem, transparent and hugetlbfs huge pages, free hugetlb pages, and
//! pages it frees just before the crash.
//!
//! In bench mode (a `/bench-mix` file in the initramfs, see
//! `crashme::mix`) it fills memory with a realistic mix of pages instead of
//! planting, for `cargo xtask bench`'s reference vmcores.

#![deny(unsafe_code)]

mod plant_kinds;
mod sys;

use std::ffi::CString;
use std::fmt::Display;
use std::fs::{self, File};
use std::io::{self, Write as _};
use std::os::unix::fs::FileExt as _;
use std::time::Instant;

use crashme::kinds::PARAM_KINDS;
use crashme::mix::{self, Kind, Mix, TextGenerator, Xorshift};
use crashme::{Planted, ARMED, CRASHING, FAILED, PAGE_SIZE, PARAM_PLANT_MIB, PARAM_SEED};

/// Planted memory when the command line does not say.
const DEFAULT_PLANT_MIB: usize = 64;
/// Pattern seed when the command line does not say ("lifeboat" in ASCII).
const DEFAULT_SEED: u64 = 0x6c69_6665_626f_6174;

/// The capture kernel and image, and its command line, as the harness puts
/// them in crashme's initramfs.
const CAPTURE_KERNEL: &str = "/vmlinuz";
const CAPTURE_INITRD: &str = "/lifeboat.img";
const CAPTURE_CMDLINE: &str = "/capture-cmdline";

/// Bits of a `/proc/self/pagemap` entry (Documentation/admin-guide/mm/pagemap.rst).
const PAGEMAP_PRESENT: u64 = 1 << 63;
const PAGEMAP_PFN_MASK: u64 = (1 << 55) - 1;

fn main() {
    match run() {
        Err(error) => say(&format!("{FAILED} {error}")),
        Ok(()) => say(&format!("{FAILED} still running after the sysrq crash")),
    }
    sys::power_off()
}

/// Prints one console line and flushes it, since the next thing may be a
/// crash or a power-off.
fn say(line: &str) {
    let mut stdout = io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

/// Names the step that failed in front of the error.
trait Step<T> {
    fn step(self, what: &str) -> Result<T, String>;
}

impl<T, E: Display> Step<T> for Result<T, E> {
    fn step(self, what: &str) -> Result<T, String> {
        self.map_err(|error| format!("{what}: {error}"))
    }
}

fn run() -> Result<(), String> {
    for (source, target, fstype) in [
        ("proc", "/proc", "proc"),
        ("sysfs", "/sys", "sysfs"),
        ("devtmpfs", "/dev", "devtmpfs"),
    ] {
        fs::create_dir_all(target).step(&format!("mkdir {target}"))?;
        sys::mount(source, target, fstype).step(&format!("mount {fstype} on {target}"))?;
    }

    let cmdline = fs::read_to_string("/proc/cmdline").step("read /proc/cmdline")?;
    let plant_mib = match crashme::cmdline_param(&cmdline, PARAM_PLANT_MIB) {
        Some(value) => value
            .parse::<usize>()
            .step(&format!("parse {PARAM_PLANT_MIB}={value}"))?,
        None => DEFAULT_PLANT_MIB,
    };
    let seed = match crashme::cmdline_param(&cmdline, PARAM_SEED) {
        Some(value) => {
            crashme::parse_u64(value).ok_or(format!("parse {PARAM_SEED}={value}: not a number"))?
        }
        None => DEFAULT_SEED,
    };

    let plant_kinds = crashme::cmdline_param(&cmdline, PARAM_KINDS) == Some("1");

    let crash_size = read_trimmed("/sys/kernel/kexec_crash_size")?;
    say(&format!(
        "crashme: crashkernel reservation {crash_size} bytes"
    ));
    if crash_size == "0" {
        return Err("no crashkernel reservation: is crashkernel= on the command line?".into());
    }

    // Compaction may migrate even mlocked pages to other frames; the report
    // would then point at stale frames. Best effort: the PFNs are checked
    // again right before the crash anyway.
    if let Err(error) = fs::write("/proc/sys/vm/compact_unevictable_allowed", "0") {
        say(&format!(
            "crashme: cannot disable compaction of locked pages: {error}"
        ));
    }

    if plant_kinds {
        plant_kinds::shrink_per_cpu_lists()?;
    }
    // Bench mode (`cargo xtask bench`) fills memory with a realistic mix
    // instead of planting checkable pages.
    let planted = match read_mix()? {
        Some(mix) => {
            fill_mix(&mix)?;
            None
        }
        None => Some(plant(seed, plant_mib)?),
    };
    let kinds = if plant_kinds {
        let kinds = plant_kinds::plant(seed)?;
        for line in kinds.report.to_lines() {
            say(&line);
        }
        Some(kinds)
    } else {
        None
    };

    let capture_cmdline = read_trimmed(CAPTURE_CMDLINE)?;
    let kernel = File::open(CAPTURE_KERNEL).step(&format!("open {CAPTURE_KERNEL}"))?;
    let initrd = File::open(CAPTURE_INITRD).step(&format!("open {CAPTURE_INITRD}"))?;
    let capture_cmdline_c = CString::new(capture_cmdline.as_str()).step("capture cmdline")?;
    sys::kexec_file_load_on_crash(&kernel, &initrd, &capture_cmdline_c)
        .step("kexec_file_load(KEXEC_FILE_ON_CRASH)")?;
    let loaded = read_trimmed("/sys/kernel/kexec_crash_loaded")?;
    if loaded != "1" {
        return Err(format!(
            "/sys/kernel/kexec_crash_loaded is {loaded} after kexec_file_load"
        ));
    }
    say(&format!("{ARMED} cmdline=\"{capture_cmdline}\""));

    if let Some((memory, pfns)) = planted {
        check_planted(seed, memory, &pfns)?;
    }
    if let Some(kinds) = kinds {
        kinds.check()?;
        kinds.free_and_report()?;
    }

    say(CRASHING);
    fs::write("/proc/sysrq-trigger", "c").step("write c to /proc/sysrq-trigger")?;
    Ok(())
}

/// Fills `plant_mib` of locked memory with the pattern of `seed` and prints
/// the report of where its pages are; returns the memory and its frames.
fn plant(seed: u64, plant_mib: usize) -> Result<(&'static [u8], Vec<u64>), String> {
    let n_pages = plant_mib * 1024 * 1024 / PAGE_SIZE;
    let memory = sys::map_anonymous(n_pages * PAGE_SIZE).step("mmap planted memory")?;
    for (page_idx, page) in (0u64..).zip(memory.chunks_exact_mut(PAGE_SIZE)) {
        crashme::fill_page(seed, page_idx, page);
    }
    sys::lock(memory).step("mlock planted memory")?;
    let pfns = read_pfns(memory)?;
    for line in Planted::from_pfns(seed, &pfns).to_lines() {
        say(&line);
    }
    Ok((memory, pfns))
}

/// The pages must still be where the report says, with their content, at
/// the moment of the crash.
fn check_planted(seed: u64, memory: &[u8], pfns: &[u64]) -> Result<(), String> {
    if read_pfns(memory)? != pfns {
        return Err("planted pages moved to other frames after the report".into());
    }
    let mut expected = vec![0u8; PAGE_SIZE];
    for (page_idx, page) in (0u64..).zip(memory.chunks_exact(PAGE_SIZE)) {
        crashme::fill_page(seed, page_idx, &mut expected);
        if page != expected.as_slice() {
            return Err(format!("planted page {page_idx} changed in memory"));
        }
    }
    Ok(())
}

/// The bench mix, if the initramfs has one.
fn read_mix() -> Result<Option<Mix>, String> {
    match fs::read_to_string(mix::MIX_FILE) {
        Ok(text) => Mix::parse(&text)
            .map(Some)
            .step(&format!("parse {}", mix::MIX_FILE)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(format!("read {}: {error}", mix::MIX_FILE)),
    }
}

/// Bench mode: fills locked anonymous memory with `mix`, chunk by chunk.
/// The memory stays mapped and locked until the crash.
fn fill_mix(mix: &Mix) -> Result<(), String> {
    let start = Instant::now();
    say(&format!(
        "{} text={} code={} random={} zero={} MiB chunk={} KiB seed={:#x}",
        mix::MIX_BEGIN,
        mix.text_mib,
        mix.code_mib,
        mix.random_mib,
        mix.zero_mib,
        mix.chunk_kib,
        mix.seed
    ));
    let code = File::open(mix::CODE_FILE).step(&format!("open {}", mix::CODE_FILE))?;
    let code_len = code.metadata().step("stat the code corpus")?.len();
    if code_len == 0 {
        return Err(format!("{} is empty", mix::CODE_FILE));
    }
    let memory = sys::map_anonymous(mix.total_bytes()).step("mmap the bench mix")?;
    // Locking first faults every page in, the zero chunks too.
    sys::lock(memory).step("mlock the bench mix")?;
    let mut text = TextGenerator::new(mix.seed);
    let mut random = Xorshift::new(mix.seed);
    let mut code_offset = 0u64;
    for (chunk, kind) in memory
        .chunks_exact_mut(mix.chunk_bytes())
        .zip(mix.chunk_kinds())
    {
        match kind {
            Kind::Text => text.fill(chunk),
            Kind::Random => random.fill(chunk),
            Kind::Zero => {}
            Kind::Code => {
                // Walk the corpus in order, wrapping at its end.
                let mut filled = 0;
                while filled < chunk.len() {
                    let n = (chunk.len() - filled).min((code_len - code_offset) as usize);
                    code.read_exact_at(&mut chunk[filled..filled + n], code_offset)
                        .step(&format!("read {}", mix::CODE_FILE))?;
                    filled += n;
                    code_offset = (code_offset + n as u64) % code_len;
                }
            }
        }
    }
    say(&format!(
        "{} in {:.1} s",
        mix::MIX_FILLED,
        start.elapsed().as_secs_f64()
    ));
    Ok(())
}

fn read_trimmed(path: &str) -> Result<String, String> {
    let text = fs::read_to_string(path).step(&format!("read {path}"))?;
    Ok(text.trim().to_string())
}

/// The page frame number of every page of `memory`, from
/// `/proc/self/pagemap` (which shows PFNs only to a privileged reader, as PID
/// 1 is).
fn read_pfns(memory: &[u8]) -> Result<Vec<u64>, String> {
    let pagemap = File::open("/proc/self/pagemap").step("open /proc/self/pagemap")?;
    let n_pages = memory.len() / PAGE_SIZE;
    let first_vpn = memory.as_ptr() as usize / PAGE_SIZE;
    let mut entries = vec![0u8; n_pages * 8];
    pagemap
        .read_exact_at(&mut entries, (first_vpn * 8) as u64)
        .step("read /proc/self/pagemap")?;
    let mut pfns = Vec::with_capacity(n_pages);
    for (page_idx, entry) in entries.chunks_exact(8).enumerate() {
        let entry = u64::from_le_bytes(entry.try_into().expect("chunks of 8 bytes"));
        let pfn = entry & PAGEMAP_PFN_MASK;
        if entry & PAGEMAP_PRESENT == 0 || pfn == 0 {
            return Err(format!(
                "pagemap entry {entry:#x} of planted page {page_idx}: not present, or PFN hidden"
            ));
        }
        pfns.push(pfn);
    }
    Ok(pfns)
}

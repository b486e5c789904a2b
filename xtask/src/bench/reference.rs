//! The reference vmcores: real crashes of QEMU guests whose memory holds a
//! known mix of page kinds, captured by lifeboat and decompressed to plain
//! ELF vmcores under `target/bench/`.
//!
//! crashme's bench mode (`crashme::mix`) fills the memory; the harness
//! gives it the mix and a corpus of real machine code, the `.text` of the
//! kernel's modules. The rest of the guest's memory is what a freshly
//! booted kernel leaves: its own image and data, the unpacked initramfs,
//! and never-touched zero pages. The mix is sized so that the 2 GiB vmcore
//! has about the zero fraction of a real machine's (277,513 of 468,749
//! pages, 59%, in FACTS.md); the 8 GiB guest holds the same mix and more
//! zero pages.
//!
//! A vmcore is rebuilt only when its recipe (kernel, guest, mix, corpus
//! size) changes: the capture takes minutes under TCG.

use std::fs::{self, File};
use std::io::Read as _;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use crashme::mix::{self, Mix};
use object::elf;
use object::read::elf::{FileHeader, ProgramHeader, SectionHeader};
use object::Endianness;

use crate::dist::Dist;
use crate::guest::disk::Fs;
use crate::guest::image::{
    build_capture_image, production_archive, write_archive, CAPTURE_CMDLINE_BASE, DISK_CONFIG,
};
use crate::guest::kernel::Kernel;
use crate::guest::vm::{self, BootSpec, Marker};
use crate::util::{self, target_dir};

/// One reference guest.
pub struct Spec {
    /// `2g` makes `target/bench/vmcore-2g`.
    pub name: &'static str,
    memory_mib: u32,
    /// The test disk, sparse: it must hold the compressed dump.
    disk_mib: u64,
    deadline_secs: u64,
}

pub const SPECS: [Spec; 2] = [
    Spec {
        name: "2g",
        memory_mib: 2048,
        disk_mib: 4096,
        deadline_secs: 900,
    },
    Spec {
        name: "8g",
        memory_mib: 8192,
        disk_mib: 4096,
        deadline_secs: 1800,
    },
];

/// What crashme fills, in both guests: 608 MiB of data and 32 MiB of
/// zero pages in between. With what the kernel itself holds (about 200 MiB
/// with this initramfs) that leaves about 59% of the 2 GiB vmcore zero.
pub const MIX: Mix = Mix {
    text_mib: 224,
    code_mib: 192,
    random_mib: 192,
    zero_mib: 32,
    chunk_kib: 64,
    // "benchmix" in ASCII.
    seed: 0x6265_6e63_686d_6978,
};

/// The capture reservation. 96M is what the qemu-test scenarios use; it
/// also works for the 8 GiB guest.
const CRASHKERNEL: &str = "96M";

const DISK_UUID: &str = "6c1f0b7e-2a3d-4c5e-8f90-1a2b3c4d5eb0";
const DISK_LABEL: &str = "lifeboatbench";

/// Where lifeboat puts its dumps on a disk target.
const CRASH_DIR: &str = "/var/crash";

/// The corpus of machine code is at most this big; the modules of a Debian
/// cloud kernel have about 16 MiB of `.text`, more than any compressor
/// window we compare.
const MAX_CODE_BYTES: usize = 64 << 20;

const PAGE_SIZE: usize = crashme::PAGE_SIZE;

/// A vmcore, read once: its page counts.
pub struct Vmcore {
    /// `vmcore-2g`.
    pub name: String,
    pub path: PathBuf,
    pub bytes: u64,
    /// Pages in PT_LOAD segments.
    pub n_pages: u64,
    pub n_zero_pages: u64,
}

impl Vmcore {
    pub fn zero_percent(&self) -> f64 {
        100.0 * self.n_zero_pages as f64 / self.n_pages.max(1) as f64
    }
}

fn bench_dir() -> PathBuf {
    target_dir().join("bench")
}

/// The vmcore of `spec`, built unless the cached one has the same recipe.
pub fn ensure(spec: &Spec, dist: &Dist, kernel: &Kernel) -> Result<PathBuf> {
    let bench_dir = bench_dir();
    fs::create_dir_all(&bench_dir)?;
    let vmcore = bench_dir.join(format!("vmcore-{}", spec.name));
    let recipe_path = bench_dir.join(format!("vmcore-{}.recipe", spec.name));
    let recipe = recipe(spec, kernel);
    if vmcore.is_file() && fs::read_to_string(&recipe_path).ok().as_deref() == Some(&recipe) {
        println!("reference vmcore: {} (cached)", vmcore.display());
        return Ok(vmcore);
    }
    println!("\n=== building reference vmcore-{}", spec.name);
    // A stale recipe must not survive a failed build.
    let _ = fs::remove_file(&recipe_path);
    build(spec, dist, kernel, &vmcore)?;
    fs::write(&recipe_path, recipe)?;
    Ok(vmcore)
}

fn recipe(spec: &Spec, kernel: &Kernel) -> String {
    format!(
        "kernel={}\nmemory_mib={}\ncrashkernel={CRASHKERNEL}\ncode=module .text, at most {MAX_CODE_BYTES} bytes\n{}",
        kernel.package,
        spec.memory_mib,
        MIX.to_text()
    )
}

/// Boots the guest, crashes it, and decompresses lifeboat's dump to
/// `vmcore`.
fn build(spec: &Spec, dist: &Dist, kernel: &Kernel, vmcore: &Path) -> Result<()> {
    let dir = bench_dir().join(format!("build-{}", spec.name));
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("cannot clear {}", dir.display()))?;
    }
    fs::create_dir_all(&dir)?;

    let code = code_corpus(&kernel.modules)?;
    println!(
        "code corpus: {} bytes of module .text from {}",
        code.len(),
        kernel.modules.display()
    );

    let capture_image = build_capture_image(
        dist,
        kernel,
        &dir,
        &DISK_CONFIG.replace("{uuid}", DISK_UUID),
        &[],
    )?;
    let production_image = dir.join("production.cpio");
    write_production_image(&production_image, dist, kernel, &capture_image, code)?;

    let disk = dir.join("disk.img");
    Fs::Ext4.make(&disk, DISK_UUID, DISK_LABEL, spec.disk_mib)?;

    let cmdline = format!("console=ttyS0 crashkernel={CRASHKERNEL} panic=-1");
    let markers = markers();
    let deadline = Duration::from_secs(spec.deadline_secs);
    let vm_run = vm::boot(
        &BootSpec {
            memory_mib: spec.memory_mib,
            cpus: 1,
            kernel,
            initrd: &production_image,
            cmdline: &cmdline,
            disk: &disk,
            network: false,
            dir: &dir,
        },
        &markers,
        deadline,
    )?;
    vm::print_timeline(&markers, &vm_run);
    let problems = vm::problems(&vm_run, &markers, deadline);
    if !problems.is_empty() {
        vm::print_serial_log(&dir);
        bail!(
            "the capture of the {} guest failed ({}):\n- {}",
            spec.name,
            dir.display(),
            problems.join("\n- ")
        );
    }

    let extracted = Fs::Ext4
        .copy_dir(&disk, CRASH_DIR, &dir.join("extracted"))?
        .with_context(|| format!("{CRASH_DIR} is not on the disk"))?;
    let dump = find_dump(&extracted)?;
    println!(
        "dump: {} ({} bytes)",
        dump.display(),
        fs::metadata(&dump)?.len()
    );
    let partial = vmcore.with_extension("partial");
    util::output(
        Command::new("zstd")
            .args(["-d", "-q", "-f"])
            .arg(&dump)
            .arg("-o")
            .arg(&partial),
    )?;
    let scanned = scan(spec.name, &partial)
        .with_context(|| format!("lifeboat's dump {} is not a vmcore", dump.display()))?;
    fs::rename(&partial, vmcore)?;
    println!(
        "reference vmcore: {} ({} bytes, {} pages, {:.1}% zero)",
        vmcore.display(),
        scanned.bytes,
        scanned.n_pages,
        scanned.zero_percent()
    );
    // The big files are not needed any more; the logs stay.
    fs::remove_file(&disk)?;
    fs::remove_file(&dump)?;
    fs::remove_file(&production_image)?;
    Ok(())
}

/// What the console must show, in order, for a capture in bench mode.
fn markers() -> Vec<Marker> {
    vm::capture_markers(Marker {
        name: "crashme filled the bench mix",
        text: mix::MIX_FILLED,
    })
}

/// crashme's initramfs in bench mode: the files of qemu-test's, plus the
/// mix and the code corpus.
fn write_production_image(
    out: &Path,
    dist: &Dist,
    kernel: &Kernel,
    capture_image: &Path,
    code: Vec<u8>,
) -> Result<()> {
    let capture_cmdline = format!("{CAPTURE_CMDLINE_BASE} nr_cpus=1");
    let mut archive = production_archive(dist, kernel, capture_image, &capture_cmdline)?;
    archive.add_file(mix::MIX_FILE, 0o644, MIX.to_text().into_bytes())?;
    archive.add_file(mix::CODE_FILE, 0o644, code)?;
    write_archive(out, archive)
}

/// The executable sections of every module under `modules`, in path order,
/// concatenated: real x86-64 machine code (unrelocated, as in the `.ko`).
fn code_corpus(modules: &Path) -> Result<Vec<u8>> {
    let mut paths = Vec::new();
    find_modules(modules, &mut paths)?;
    paths.sort();
    let mut corpus = Vec::new();
    for path in &paths {
        let data = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        append_code(&data, &mut corpus)
            .with_context(|| format!("cannot read the sections of {}", path.display()))?;
        if corpus.len() >= MAX_CODE_BYTES {
            corpus.truncate(MAX_CODE_BYTES);
            break;
        }
    }
    if corpus.len() < 1 << 20 {
        bail!(
            "only {} bytes of module code under {}",
            corpus.len(),
            modules.display()
        );
    }
    Ok(corpus)
}

fn find_modules(dir: &Path, found: &mut Vec<PathBuf>) -> Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            find_modules(&path, found)?;
        } else if path.extension().is_some_and(|extension| extension == "ko") {
            found.push(path);
        }
    }
    Ok(())
}

/// Appends the content of the ELF's executable PROGBITS sections to `out`.
fn append_code(data: &[u8], out: &mut Vec<u8>) -> Result<()> {
    let header = elf::FileHeader64::<Endianness>::parse(data)?;
    let endian = header.endian()?;
    for section in header.sections(endian, data)?.iter() {
        let executable = section.sh_flags(endian) & u64::from(elf::SHF_EXECINSTR) != 0;
        if executable && section.sh_type(endian) == elf::SHT_PROGBITS {
            out.extend_from_slice(section.data(endian, data)?);
        }
    }
    Ok(())
}

/// The one `dump.*.zst` under `dir`.
fn find_dump(dir: &Path) -> Result<PathBuf> {
    let mut dumps = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type()?.is_dir() {
                pending.push(entry.path());
            } else if name.starts_with("dump.") && name.ends_with(".zst") {
                dumps.push(entry.path());
            }
        }
    }
    match dumps.as_slice() {
        [dump] => Ok(dump.clone()),
        _ => bail!("expected one dump.*.zst under {CRASH_DIR} on the disk, found {dumps:?}"),
    }
}

/// Reads the whole vmcore (which also puts it in the page cache) and counts
/// its all-zero pages; fails unless it is an ELF core whose PT_LOAD
/// segments lie within the file.
pub fn scan(name: &str, path: &Path) -> Result<Vmcore> {
    let mut file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let bytes = file.metadata()?.len();
    let mut head = Vec::new();
    file.by_ref().take(1 << 20).read_to_end(&mut head)?;
    let loads = loads(&head).with_context(|| format!("{}: not an ELF vmcore", path.display()))?;

    let zero_page = [0u8; PAGE_SIZE];
    let mut buffer = vec![0u8; 4 << 20];
    let mut n_pages = 0;
    let mut n_zero_pages = 0;
    for (offset, size) in loads {
        if offset.checked_add(size).is_none_or(|end| end > bytes) {
            bail!(
                "{}: PT_LOAD at {offset:#x}+{size:#x} is beyond the end of the file ({bytes} bytes)",
                path.display()
            );
        }
        let mut done = 0;
        while done < size {
            let n = (size - done).min(buffer.len() as u64) as usize;
            file.read_exact_at(&mut buffer[..n], offset + done)?;
            for page in buffer[..n].chunks(PAGE_SIZE) {
                n_pages += 1;
                // Slice comparison is a memcmp: fast even in xtask's
                // unoptimised build.
                if page == &zero_page[..page.len()] {
                    n_zero_pages += 1;
                }
            }
            done += n as u64;
        }
    }
    Ok(Vmcore {
        name: format!("vmcore-{name}"),
        path: path.to_path_buf(),
        bytes,
        n_pages,
        n_zero_pages,
    })
}

/// File offset and size of each PT_LOAD of the ELF core whose start is
/// `head`.
fn loads(head: &[u8]) -> Result<Vec<(u64, u64)>> {
    let header = elf::FileHeader64::<Endianness>::parse(head)?;
    let endian = header.endian()?;
    if header.e_type(endian) != elf::ET_CORE {
        bail!("ELF type {} is not ET_CORE", header.e_type(endian));
    }
    let segments = header.program_headers(endian, head)?;
    if !segments
        .iter()
        .any(|segment| segment.p_type(endian) == elf::PT_NOTE)
    {
        bail!("no PT_NOTE");
    }
    let loads: Vec<(u64, u64)> = segments
        .iter()
        .filter(|segment| segment.p_type(endian) == elf::PT_LOAD)
        .map(|segment| (segment.p_offset(endian), segment.p_filesz(endian)))
        .collect();
    if loads.is_empty() {
        bail!("no PT_LOAD");
    }
    Ok(loads)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_is_valid_and_a_few_hundred_mib_of_each_kind() {
        assert_eq!(Mix::parse(&MIX.to_text()), Ok(MIX));
        for mib in [MIX.text_mib, MIX.code_mib, MIX.random_mib] {
            assert!((128..=512).contains(&mib));
        }
    }

    #[test]
    fn scan_counts_zero_pages_of_the_loads_only() {
        // An ELF core header with one PT_NOTE and one PT_LOAD of 3 pages at
        // offset 4096: page 1 non-zero, pages 0 and 2 zero.
        let mut core = vec![0u8; 4 * PAGE_SIZE];
        core[..4].copy_from_slice(b"\x7fELF");
        core[4] = 2; // 64-bit
        core[5] = 1; // little-endian
        core[6] = 1; // version
        core[16..18].copy_from_slice(&elf::ET_CORE.to_le_bytes());
        core[18..20].copy_from_slice(&elf::EM_X86_64.to_le_bytes());
        core[20..24].copy_from_slice(&1u32.to_le_bytes());
        core[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
        core[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
        core[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
        core[56..58].copy_from_slice(&2u16.to_le_bytes()); // e_phnum
        let mut phdr = |index: usize, p_type: u32, offset: u64, size: u64| {
            let at = 64 + 56 * index;
            core[at..at + 4].copy_from_slice(&p_type.to_le_bytes());
            core[at + 8..at + 16].copy_from_slice(&offset.to_le_bytes());
            core[at + 32..at + 40].copy_from_slice(&size.to_le_bytes());
            core[at + 40..at + 48].copy_from_slice(&size.to_le_bytes());
        };
        phdr(0, elf::PT_NOTE, 176, 0);
        phdr(1, elf::PT_LOAD, PAGE_SIZE as u64, 3 * PAGE_SIZE as u64);
        core[2 * PAGE_SIZE + 17] = 1;
        let dir = target_dir().join("xtask-tests").join("bench-scan");
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("core");
        fs::write(&path, &core).unwrap();
        let vmcore = scan("test", &path).unwrap();
        assert_eq!((vmcore.n_pages, vmcore.n_zero_pages), (3, 2));

        fs::write(&path, &core[..3 * PAGE_SIZE]).unwrap();
        let error = format!("{:#}", scan("test", &path).err().unwrap());
        assert!(error.contains("beyond the end of the file"), "{error}");
    }
}

//! `lifeboat save`: a vmcore to a dump, by the same code PID 1 runs in the
//! capture kernel, so that a dump saved by kdump-utils with lifeboat as its
//! core collector is the same as one lifeboat's own capture makes.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use dumper::elf::read_core_headers;
use dumper::filter::exclude::Filtering;
use dumper::filter::DumpLevel;
use dumper::output::{Destination as _, DirDestination};
use dumper::plan::Plan;
use dumper::stream::{compress_excluding, Exclude, StreamOptions, StreamSummary};
use dumper::vmcore::Vmcore;

use crate::input::{human, percent};
use crate::{progress, Exit, EXIT_STATUS};

/// Save a vmcore as a dump, as PID 1 does in the capture kernel.
///
/// Reads INPUT (/proc/vmcore in a capture kernel, or any ELF vmcore file)
/// through read-only mappings and compresses it into a dump in the zstd
/// seekable format: one frame per chunk of the vmcore (1 MiB, more for
/// vmcores over 128 GiB), all-zero chunks stored without the compressor,
/// the seek table last. The dump is written to OUTPUT.incomplete (mode
/// 0600), made durable, and only then renamed to OUTPUT: a file without
/// the suffix is always a whole dump. A dump cut short (the machine reset,
/// the disk filled) is recoverable up to its last whole frame with
/// `lifeboat decompress --recover`.
///
/// Without OUTPUT, or with `-`, the dump goes to standard output, which
/// must not be a terminal.
///
/// It can be the core collector of kdump-utils (Fedora, RHEL, CentOS):
/// `core_collector lifeboat save` in /etc/kdump.conf. kdump-utils then runs `lifeboat save /proc/vmcore DIR/vmcore-incomplete`
/// and renames the result to `vmcore` when the exit status is 0 (any other
/// status counts as a failed dump); for ssh and raw targets it runs
/// `lifeboat save /proc/vmcore` and sends standard output on. The dump is
/// not in makedumpfile's format: read it with lifeboat, or `zstd -d` it
/// back into the ELF vmcore that crash and drgn open.
///
/// With `--dump-level` (`-d`), pages are left out as makedumpfile's `-d`
/// leaves them out, decided from the vmcore's VMCOREINFO and the crashed
/// kernel's memory map: they come out as zeros at their place, and each
/// frame's exclusion record says which and why. Hardware-poisoned and
/// offline pages are left out at every level. When the pages cannot be
/// classified (no VMCOREINFO, a memory map that makes no sense), the save
/// still happens, leaving out zero pages only, and says why.
///
/// The summary goes to standard error: sizes, time, rate, frames, pages
/// left out, and the XXH64 of what the dump decompresses to, as `xxhsum
/// -H64` prints it.
#[derive(clap::Args)]
#[command(after_long_help = EXIT_STATUS)]
pub struct Args {
    /// zstd compression level; negative levels are zstd's fast levels.
    #[arg(long, short = 'l', default_value_t = 1, allow_negative_numbers = true,
          value_parser = clap::value_parser!(i32).range(-131_072..=22))]
    level: i32,
    /// Compression threads [default: the number of CPUs].
    #[arg(long, short = 't', value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    threads: Option<u16>,
    /// Bytes of vmcore per frame, a multiple of 4096 up to 64 MiB: smaller
    /// frames make a dump cut short lose less, and compress worse
    /// [default: 1 MiB, or what keeps a dump under 131072 frames].
    #[arg(long, value_name = "BYTES")]
    frame_size: Option<u64>,
    /// makedumpfile's dump level: 0 keeps every page; add 1 for zero pages,
    /// 2 page cache, 4 page cache with private data, 8 user data, 16 free
    /// pages (31: all of them, as distributions' kdump does).
    #[arg(long, short = 'd', value_name = "N", default_value_t = 0,
          value_parser = clap::value_parser!(u8).range(0..=31))]
    dump_level: u8,
    /// The vmcore: /proc/vmcore, or an ELF vmcore file.
    input: PathBuf,
    /// Where to write the dump; `-` or nothing for standard output.
    output: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<Exit> {
    let input =
        File::open(&args.input).with_context(|| format!("cannot open {}", args.input.display()))?;
    // /proc/vmcore reports its real size in st_size.
    let size = input
        .metadata()
        .with_context(|| format!("cannot stat {}", args.input.display()))?
        .len();
    if size == 0 {
        bail!("{} is empty", args.input.display());
    }
    // The save must not depend on the ELF parser (a vmcore of another
    // architecture, or a slightly odd one, is still worth keeping), so a
    // failure here is only a warning.
    if let Err(error) = read_core_headers(&input) {
        eprintln!(
            "lifeboat: warning: {} does not look like an x86_64 ELF vmcore ({error}); saving it anyway",
            args.input.display()
        );
    }
    let threads = match args.threads {
        Some(n) => usize::from(n),
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let options = StreamOptions {
        level: args.level,
        threads,
        frame_bytes: args.frame_size,
    };
    let level = DumpLevel::new(args.dump_level)?;
    let view = Vmcore::open(&input)
        .map_err(|error| format!("cannot read its headers: {}", dumper::error_chain(&error)));
    let mut filtering = Filtering::new(view.as_ref().map_err(Clone::clone), level);
    if let Some(error) = &filtering.error {
        eprintln!(
            "lifeboat: warning: dump level {level}: cannot classify the pages of {} ({error}); leaving out {}",
            args.input.display(),
            filtering.fallback()
        );
    }
    let (summary, destination) = match args.output.as_deref() {
        Some(output) if output != Path::new("-") => (
            save_to_file(&input, size, &options, filtering.exclude(), output)?,
            output.display().to_string(),
        ),
        _ => (
            save_to_stdout(&input, size, &options, filtering.exclude())?,
            "standard output".to_owned(),
        ),
    };
    print_summary(&args.input, &destination, &summary);
    print_exclusions(level, &summary, filtering.unclassifiable());
    Ok(Exit::Success)
}

fn save_to_stdout(
    input: &File,
    size: u64,
    options: &StreamOptions,
    exclude: &mut dyn Exclude,
) -> Result<StreamSummary> {
    let stdout = io::stdout();
    if stdout.is_terminal() {
        bail!("refusing to write a dump to a terminal: give OUTPUT or redirect standard output");
    }
    let bar = progress::bytes(size, "saving");
    let out = BufWriter::with_capacity(1 << 20, stdout.lock());
    let (summary, mut out) =
        compress_excluding(input, &Plan::whole(size), out, options, exclude, |p| {
            bar.set_position(p.bytes_done)
        })
        .context("cannot save the dump to standard output")?;
    out.flush()
        .context("cannot write the dump to standard output")?;
    bar.finish_and_clear();
    Ok(summary)
}

/// Streams into `<output>.incomplete`, makes it durable, then renames it,
/// through the same destination as PID 1's: only whole dumps have the
/// final name.
fn save_to_file(
    input: &File,
    size: u64,
    options: &StreamOptions,
    exclude: &mut dyn Exclude,
    output: &Path,
) -> Result<StreamSummary> {
    let Some(name) = output.file_name().and_then(|name| name.to_str()) else {
        bail!("{} does not name a file", output.display());
    };
    let dir = match output.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let artifact = DirDestination::at(dir).create(name)?;
    let partial = artifact.describe();
    let bar = progress::bytes(size, "saving");
    let (summary, artifact) =
        compress_excluding(input, &Plan::whole(size), artifact, options, exclude, |p| {
            bar.set_position(p.bytes_done)
        })
    .with_context(|| {
        format!(
            "saving stopped; what was written is in {partial} (`lifeboat decompress --recover` reads it)"
        )
    })?;
    bar.finish_and_clear();
    artifact.commit()?;
    Ok(summary)
}

fn print_summary(input: &Path, destination: &str, summary: &StreamSummary) {
    let secs = summary.elapsed.as_secs_f64().max(1e-6);
    eprintln!(
        "lifeboat: saved {} ({} bytes, {}) to {destination}: {} bytes ({}, {:.1}%)",
        input.display(),
        summary.input_bytes,
        human(summary.input_bytes),
        summary.output_bytes,
        human(summary.output_bytes),
        percent(summary.output_bytes, summary.input_bytes),
    );
    eprintln!(
        "lifeboat: {:.2} s, {:.0} MB/s; {} frames of {} ({} all zero); {} thread{}; read by {}; xxh64 {:016x}",
        secs,
        summary.input_bytes as f64 / secs / 1e6,
        summary.frames,
        human(summary.frame_bytes),
        summary.zero_frames,
        summary.threads,
        if summary.threads == 1 { "" } else { "s" },
        summary.read_method.as_str(),
        summary.xxh64,
    );
}

/// What the dump level left out, by category, as pages of 4 KiB.
fn print_exclusions(level: DumpLevel, summary: &StreamSummary, unclassifiable: Option<u64>) {
    let unclassifiable = match unclassifiable {
        Some(pages) if pages > 0 => {
            format!("; {pages} pages could not be classified and were kept")
        }
        _ => String::new(),
    };
    eprintln!(
        "lifeboat: dump level {level}: left out {} pages ({}){unclassifiable}",
        summary.excluded.total_bytes() / 4096,
        summary.excluded.describe_pages()
    );
}

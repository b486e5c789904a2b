//! `lifeboat decompress`: a dump back into an ELF vmcore, sparse, and with
//! `--recover` the intact part of a dump cut short as a valid core.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use dumper::elf::read_core_headers;
use dumper::elf::salvage::{salvage_core, Salvage, SegmentFate};
use dumper::output;
use dumper::stream::is_zero;

use crate::input::{self, expected_size, human, percent};
use crate::{progress, Exit, EXIT_STATUS};

/// Blocks of this size that hold only zeroes are skipped, left as holes.
const SPARSE_BLOCK: u64 = 4096;

/// Turn a dump back into an ELF vmcore.
///
/// Writes VMCORE as a sparse file (mode 0600): blocks of zeroes are not
/// written but left as holes, so the file takes little more disk space
/// than the memory that was in use. The result is byte for byte the
/// vmcore that was saved, for crash, drgn or makedumpfile. It is written
/// to VMCORE.incomplete first and renamed when complete.
///
/// A dump that is incomplete (cut short) or corrupt is refused, with exit
/// status 3, unless --recover is given. Then everything before the first
/// missing or corrupt frame is kept, and the program headers are rewritten in place so
/// that the file is a valid core describing only the memory that was
/// saved: the memory segments beyond the end are removed, the one cut in
/// the middle shrinks (its file and memory sizes both, so that no reader
/// mistakes the missing memory for zeroes), and the notes (VMCOREINFO,
/// the CPUs' registers) stay. What was lost is printed: segments, physical
/// address ranges and bytes. The exit status is then 0 when a valid
/// vmcore was written, whole or not, and 3 when nothing could be
/// recovered (the frames holding the ELF headers are lost).
#[derive(clap::Args)]
#[command(after_long_help = EXIT_STATUS)]
pub struct Args {
    /// A lifeboat dump.
    #[arg(value_name = "DUMP")]
    input: PathBuf,
    /// Where to write the vmcore.
    #[arg(long, short = 'o', value_name = "VMCORE")]
    output: PathBuf,
    /// Salvage the intact part of an incomplete or corrupt dump as a valid
    /// vmcore, instead of refusing it.
    #[arg(long)]
    recover: bool,
    /// Replace VMCORE if it exists.
    #[arg(long, short = 'f')]
    force: bool,
}

pub fn run(args: Args) -> Result<Exit> {
    let dump = input::open_dump(&args.input)?;
    let headers = match read_core_headers(&dump) {
        Ok(headers) => headers,
        Err(error) => {
            eprintln!(
                "lifeboat: the dump's ELF headers are unreadable, so there is no vmcore to \
                 write{}: {:#}",
                if args.recover { " or recover" } else { "" },
                anyhow::Error::new(error)
            );
            return Ok(Exit::Incomplete);
        }
    };
    let expected = expected_size(&headers);
    let intact = dump.decompressed_size();
    if intact < expected && !args.recover {
        eprintln!(
            "lifeboat: the dump is incomplete: its frames hold {intact} of the vmcore's {expected} \
             bytes ({:.1}%); use --recover to write the intact part as a valid vmcore",
            percent(intact, expected)
        );
        return Ok(Exit::Incomplete);
    }
    if !args.force && fs::symlink_metadata(&args.output).is_ok() {
        bail!(
            "{} exists; remove it or pass --force",
            args.output.display()
        );
    }

    let partial = output::incomplete_path(&args.output);
    let file = output::create_private_file(&partial)?;
    let bar = progress::bytes(intact, "decompressing");
    let mut sparse = SparseWriter { file: &file };
    let report = dump.decompress_to(
        |offset, data| sparse.write(offset, data),
        |done, _| bar.set_position(done),
    );
    bar.finish_and_clear();
    let report = match report {
        Ok(report) => report,
        Err(error) => {
            // A half-written vmcore is of no use, and may be large.
            let _ = fs::remove_file(&partial);
            return Err(error).with_context(|| format!("cannot write {}", partial.display()));
        }
    };

    let good = report.good_bytes;
    if let Some(error) = &report.first_bad {
        if !args.recover {
            let _ = fs::remove_file(&partial);
            eprintln!(
                "lifeboat: the dump is corrupt: {error}; use --recover to write the {good} bytes \
                 before it as a valid vmcore"
            );
            return Ok(Exit::Incomplete);
        }
        eprintln!("lifeboat: {error}; keeping the {good} bytes before it");
    }
    // Sets the size past the last hole, and drops what a failed frame may
    // have written beyond the good part.
    file.set_len(good)
        .with_context(|| format!("cannot set the size of {}", partial.display()))?;
    if good < expected {
        let salvage = match salvage_core(&file) {
            Ok(salvage) => salvage,
            Err(error) => {
                let _ = fs::remove_file(&partial);
                eprintln!(
                    "lifeboat: nothing to recover: {:#}",
                    anyhow::Error::new(error)
                );
                return Ok(Exit::Incomplete);
            }
        };
        for patch in &salvage.patches {
            file.write_all_at(&patch.bytes, patch.offset)
                .with_context(|| format!("cannot rewrite the headers of {}", partial.display()))?;
        }
        print_losses(&salvage, expected);
    }
    file.sync_all()
        .with_context(|| format!("cannot make {} durable", partial.display()))?;
    drop(file);
    output::publish(&partial, &args.output)?;
    eprintln!(
        "lifeboat: wrote {} ({good} bytes, {}{})",
        args.output.display(),
        human(good),
        if good < expected {
            format!(", {:.1}% of the vmcore", percent(good, expected))
        } else {
            String::new()
        }
    );
    Ok(Exit::Success)
}

/// Writes at offsets, leaving holes for blocks of zeroes: blocks aligned
/// to [`SPARSE_BLOCK`] in the file, and runs of other blocks in one write.
struct SparseWriter<'f> {
    file: &'f File,
}

impl SparseWriter<'_> {
    fn write(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut run_start: Option<usize> = None;
        let mut at = 0usize;
        while at < data.len() {
            let file_at = offset + at as u64;
            let block_end = (file_at / SPARSE_BLOCK + 1) * SPARSE_BLOCK;
            let end = ((block_end - offset) as usize).min(data.len());
            if is_zero(&data[at..end]) {
                if let Some(start) = run_start.take() {
                    self.file
                        .write_all_at(&data[start..at], offset + start as u64)?;
                }
            } else if run_start.is_none() {
                run_start = Some(at);
            }
            at = end;
        }
        if let Some(start) = run_start {
            self.file
                .write_all_at(&data[start..], offset + start as u64)?;
        }
        Ok(())
    }
}

fn print_losses(salvage: &Salvage, expected: u64) {
    let mut lost_bytes = 0u64;
    for segment in &salvage.segments {
        let Some((start, len)) = segment.lost_range() else {
            continue;
        };
        lost_bytes += segment.lost_file_bytes();
        let what = match segment.fate {
            SegmentFate::Shrunk { new_size } => format!("cut to {new_size:#x} bytes"),
            _ => "removed".to_owned(),
        };
        eprintln!(
            "lifeboat: lost: segment {} (physical {:#x}-{:#x}) {what}: physical {start:#x}-{:#x} missing ({})",
            segment.index,
            segment.paddr,
            segment.paddr + segment.mem_size,
            start + len,
            human(len)
        );
    }
    let kept = salvage
        .segments
        .iter()
        .filter(|s| s.fate != SegmentFate::Dropped)
        .count();
    eprintln!(
        "lifeboat: recovered {} of {} bytes ({:.1}%): {kept} of {} memory segments kept, {} of \
         segment data lost",
        salvage.intact_len,
        expected,
        percent(salvage.intact_len, expected),
        salvage.segments.len(),
        human(lost_bytes)
    );
}

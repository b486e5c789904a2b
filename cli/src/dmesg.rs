//! `lifeboat dmesg`: the crashed kernel's log, from a dump or a vmcore.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use dumper::elf::ReadAt;
use dumper::printk::{read_log, write_dmesg};
use dumper::vmcore::Vmcore;

use crate::input::{self, expected_size, human, Input};
use crate::{Exit, EXIT_STATUS};

/// Print the crashed kernel's log.
///
/// Reads the printk buffer (the lockless ring of Linux 5.10 and later, or
/// the record buffer of 3.5 to 5.9) out of DUMP, a lifeboat dump, or out
/// of an ELF vmcore such as /proc/vmcore, following the layout VMCOREINFO
/// describes: no debug symbols are needed. The output is byte for byte
/// what `makedumpfile --dump-dmesg` writes.
///
/// A dump is read in place: only the frames holding the log are
/// decompressed. A dump cut short still gives the log when the frames
/// holding it were saved; a note on standard error says the dump is
/// incomplete.
#[derive(clap::Args)]
#[command(after_long_help = EXIT_STATUS)]
pub struct Args {
    /// A lifeboat dump, or an ELF vmcore.
    #[arg(value_name = "DUMP|VMCORE")]
    input: PathBuf,
    /// Write the log to FILE (mode 0600) instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<Exit> {
    let path = &args.input;
    match input::open(path)? {
        Input::Vmcore(file) => {
            let core = Vmcore::open(file)
                .with_context(|| format!("cannot read the vmcore {}", path.display()))?;
            print_log(&core, args.output.as_deref())?;
        }
        Input::Dump(dump) => {
            let intact = dump.decompressed_size();
            let core = Vmcore::open(*dump)
                .with_context(|| format!("cannot read the vmcore in {}", path.display()))?;
            let expected = expected_size(core.headers());
            let short = (intact < expected).then(|| {
                format!(
                    "the dump is incomplete: its frames hold {} of the vmcore's {}",
                    human(intact),
                    human(expected)
                )
            });
            let result = print_log(&core, args.output.as_deref());
            match (result, short) {
                (Ok(()), None) => {}
                (Ok(()), Some(short)) => eprintln!("lifeboat: note: {short}"),
                (Err(error), None) => return Err(error),
                (Err(error), Some(short)) => return Err(error.context(short)),
            }
        }
    }
    Ok(Exit::Success)
}

fn print_log<R: ReadAt>(core: &Vmcore<R>, output: Option<&Path>) -> Result<()> {
    let records = read_log(core).context("cannot read the kernel log")?;
    match output {
        None => {
            let stdout = io::stdout();
            let mut out = BufWriter::new(stdout.lock());
            match write_dmesg(&records, &mut out).and_then(|()| out.flush()) {
                // A reader that went away (`lifeboat dmesg DUMP | head`)
                // has what it wanted.
                Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(()),
                result => result.context("cannot write the log to standard output"),
            }
        }
        Some(path) => {
            let file = create_private(path)?;
            let mut out = BufWriter::new(file);
            write_dmesg(&records, &mut out)
                .and_then(|()| out.flush())
                .with_context(|| format!("cannot write {}", path.display()))
        }
    }
}

fn create_private(path: &Path) -> Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))
}

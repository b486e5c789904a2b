//! `lifeboat dmesg`: the crashed kernel's log, from a dump or a vmcore.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use dumper::elf::ReadAt;
use dumper::printk::{read_log, write_dmesg, write_dmesg_with_caller_ids, Record};
use dumper::vmcore::Vmcore;

use crate::input::{self, expected_size, human, Input};
use crate::{Exit, EXIT_STATUS};

/// Print the crashed kernel's log.
///
/// Reads the printk buffer (the lockless ring of Linux 5.10 and later, or
/// the record buffer of 3.5 to 5.9) out of DUMP, a lifeboat dump, or out
/// of an ELF vmcore such as /proc/vmcore, following the layout VMCOREINFO
/// describes: no debug symbols are needed. The output is byte for byte
/// what `makedumpfile --dump-dmesg` 1.7.5 and later write (Debian 13's
/// 1.7.6): after each timestamp, the caller column of the task (`T<pid>`)
/// or, outside task context, the CPU (`C<cpu>`) that logged the line, as
/// in `[    0.000000] [      T0] Linux version ...`. With --no-caller it
/// is what makedumpfile 1.7.4 and earlier write (Debian 12's 1.7.2): the
/// same lines without that column. Kernels older than 5.10 built without
/// CONFIG_PRINTK_CALLER record no caller, and both forms are the same.
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
    /// Leave out the caller column (`[    T123] `, `[      C0] `), as
    /// makedumpfile 1.7.4 and earlier do (Debian 12's 1.7.2).
    #[arg(long)]
    no_caller: bool,
}

pub fn run(args: Args) -> Result<Exit> {
    let path = &args.input;
    match input::open(path)? {
        Input::Vmcore(file) => {
            let core = Vmcore::open(file)
                .with_context(|| format!("cannot read the vmcore {}", path.display()))?;
            print_log(&core, &args)?;
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
            let result = print_log(&core, &args);
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

fn print_log<R: ReadAt>(core: &Vmcore<R>, args: &Args) -> Result<()> {
    let records = read_log(core).context("cannot read the kernel log")?;
    let write = |out: &mut dyn Write| -> io::Result<()> {
        let mut out = BufWriter::new(out);
        write_records(&records, args.no_caller, &mut out)?;
        out.flush()
    };
    match &args.output {
        None => match write(&mut io::stdout().lock()) {
            // A reader that went away (`lifeboat dmesg DUMP | head`) has
            // what it wanted.
            Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(()),
            result => result.context("cannot write the log to standard output"),
        },
        Some(path) => {
            let mut file = create_private(path)?;
            write(&mut file).with_context(|| format!("cannot write {}", path.display()))
        }
    }
}

fn write_records(records: &[Record], no_caller: bool, out: &mut impl Write) -> io::Result<()> {
    if no_caller {
        write_dmesg(records, out)
    } else {
        write_dmesg_with_caller_ids(records, out)
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

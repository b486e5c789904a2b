//! `lifeboat verify`: every frame of a dump, and the vmcore they form.

use std::path::PathBuf;

use anyhow::Result;
use dumper::elf::read_core_headers;

use crate::input::{self, describe_table, expected_size, human, percent};
use crate::report::Report;
use crate::{progress, Exit, EXIT_STATUS};

/// Check a dump: every frame, and the ELF structure of the vmcore.
///
/// Decompresses every frame, checking zstd's content checksum and the
/// seek table's, then reads the ELF headers of the vmcore the frames form
/// and checks that the frames cover every memory segment they describe.
///
/// Exits with 0 when the dump is whole: every frame checks out, the
/// frames cover the vmcore, and the seek table the writer puts last is
/// there. Otherwise says what is wrong and how much is intact (bytes,
/// frames, and share of the vmcore) and exits with 3. A dump cut short
/// keeps its frames up to the cut, and `lifeboat decompress --recover`
/// turns them into a valid vmcore; a dump missing only its seek table
/// (cut inside it, or written by `zstd` or an older lifeboat) still holds
/// the whole vmcore, which `lifeboat decompress` writes out as it is.
#[derive(clap::Args)]
#[command(after_long_help = EXIT_STATUS)]
pub struct Args {
    /// A lifeboat dump.
    #[arg(value_name = "DUMP")]
    input: PathBuf,
}

pub fn run(args: Args) -> Result<Exit> {
    let dump = input::open_dump(&args.input)?;
    let bar = progress::bytes(dump.decompressed_size(), "verifying");
    let report = dump.verify(|done, _| bar.set_position(done));
    bar.finish_and_clear();

    let frames = dump.frames().len();
    let mut out = Report::default();
    out.line(
        "frames",
        format!(
            "{} of {frames} good, {} bytes ({})",
            report.good_frames,
            report.good_bytes,
            human(report.good_bytes)
        ),
    );
    out.line("seek table", describe_table(&dump));
    let mut whole = report.is_ok();
    if let Some(error) = &report.first_bad {
        out.line("bad frame", error);
    }
    if let Some(damage) = dump.damage() {
        out.line("damage", damage);
    }
    let expected = match read_core_headers(&dump) {
        Ok(headers) => {
            let expected = expected_size(&headers);
            out.line(
                "vmcore",
                format!(
                    "{expected} bytes ({}): headers {} bytes, {} memory segments, VMCOREINFO {}",
                    human(expected),
                    headers.header_size,
                    headers.loads.len(),
                    if headers.find_note(b"VMCOREINFO").is_some() {
                        "present"
                    } else {
                        "missing"
                    }
                ),
            );
            Some(expected)
        }
        Err(error) => {
            out.line(
                "vmcore",
                format!(
                    "the ELF headers are unreadable: {:#}",
                    anyhow::Error::new(error)
                ),
            );
            whole = false;
            None
        }
    };
    let intact = report.good_bytes;
    if let Some(expected) = expected {
        whole &= intact >= expected;
        out.line(
            "intact",
            format!(
                "{intact} of {expected} bytes ({:.1}%), {} of {frames} frames",
                percent(intact.min(expected), expected),
                report.good_frames
            ),
        );
    }
    if whole && !dump.is_complete() {
        out.line(
            "result",
            format!(
                "the dump was not finished (seek table {}: cut short, or written by zstd or \
                 an older lifeboat), but its frames hold the whole vmcore: `lifeboat \
                 decompress` writes it out",
                describe_table(&dump)
            ),
        );
        out.print()?;
        Ok(Exit::Incomplete)
    } else if whole {
        out.line(
            "result",
            "the dump is whole: every frame checks out and covers the vmcore",
        );
        out.print()?;
        Ok(Exit::Success)
    } else {
        out.line(
            "result",
            format!(
                "the dump is incomplete or corrupt; recover the intact part with \
                 `lifeboat decompress --recover {} -o VMCORE`",
                args.input.display()
            ),
        );
        out.print()?;
        Ok(Exit::Incomplete)
    }
}

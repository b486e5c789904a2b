//! `lifeboat inspect`: what crashed, and what the dump holds of it, without
//! decompressing more than the headers and the log.

use std::fs::File;
use std::path::PathBuf;

use anyhow::Result;
use dumper::elf::ReadAt;
use dumper::printk::{panic_message, read_log};
use dumper::seekable::reader::{Dump, TableStatus};
use dumper::vmcore::Vmcore;
use serde_json::{json, Value};

use crate::input::{self, expected_size, human, percent, Input};
use crate::report::Report;
use crate::{Exit, EXIT_STATUS};

/// Summarize a dump: what crashed, and what was saved.
///
/// Prints the kernel release, build ID and crash time (from VMCOREINFO),
/// the panic message (from the kernel log), the dump's compressed and
/// decompressed sizes, its frames (those holding only zeroes counted
/// apart, told by their checksum), the state of its seek table, and
/// whether it is complete: whether its frames cover the whole vmcore its
/// ELF headers describe (the end of the last memory segment). Only the
/// headers and the log are decompressed: `lifeboat verify` checks every
/// frame.
///
/// DUMP may also be an uncompressed ELF vmcore.
///
/// The exit status is 0 whenever the dump could be read, complete or not:
/// scripts that need a whole dump check it with `lifeboat verify`.
///
/// With --json, the same facts as one JSON object: `kernel` (`release`,
/// `build_id`, `crash_time` in seconds since the epoch, `crash_time_utc`,
/// `page_size`), `panic`, `log_error`, `vmcore` (`expected_bytes`,
/// `header_bytes`, `segments`, `memory_bytes`), `elf_error`, `dump`
/// (`compressed_bytes`, `decompressed_bytes`, `frames`, `zero_frames`,
/// `data_frames`, `frame_bytes`, `seek_table` one of "consistent",
/// "missing", "inconsistent", `seek_table_problem`, `damage`),
/// `intact_percent` and `complete`; a fact that cannot be known is null.
#[derive(clap::Args)]
#[command(after_long_help = EXIT_STATUS)]
pub struct Args {
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// A lifeboat dump (or an ELF vmcore).
    #[arg(value_name = "DUMP")]
    input: PathBuf,
}

pub fn run(args: Args) -> Result<Exit> {
    let facts = match input::open(&args.input)? {
        Input::Vmcore(file) => {
            let size = file.size();
            vmcore_facts(file, size, json!(null))
        }
        Input::Dump(dump) => {
            let dump_facts = dump_facts(&dump);
            let size = dump.decompressed_size();
            vmcore_facts(*dump, size, dump_facts)
        }
    };
    let mut facts = facts;
    facts["path"] = json!(args.input.display().to_string());
    if args.json {
        let mut json = serde_json::to_string_pretty(&facts)?;
        json.push('\n');
        Report::raw(json).print()?;
    } else {
        print_text(&facts)?;
    }
    Ok(Exit::Success)
}

fn dump_facts(dump: &Dump<File>) -> Value {
    let frames = dump.frames();
    let zero_frames = dump.zero_frame_count();
    let (table, problem) = match dump.table_status() {
        TableStatus::Consistent => ("consistent", None),
        TableStatus::Missing => ("missing", None),
        TableStatus::Inconsistent(problem) => ("inconsistent", Some(problem.to_string())),
    };
    json!({
        "compressed_bytes": dump.compressed_size(),
        "decompressed_bytes": dump.decompressed_size(),
        "frames": frames.len(),
        "zero_frames": zero_frames,
        "data_frames": frames.len() - zero_frames,
        "frame_bytes": frames.first().map(|f| f.decompressed_size),
        "seek_table": table,
        "seek_table_problem": problem,
        "damage": dump.damage().map(|d| d.to_string()),
    })
}

/// The facts read from the vmcore, whose reader has `size` intact bytes.
fn vmcore_facts<R: ReadAt>(reader: R, size: u64, dump: Value) -> Value {
    let mut facts = json!({
        "format": if dump.is_null() { "vmcore" } else { "dump" },
        "dump": dump,
        "kernel": null,
        "panic": null,
        "log_error": null,
        "vmcore": null,
        "elf_error": null,
        "intact_percent": null,
        "complete": false,
    });
    let core = match Vmcore::open(reader) {
        Ok(core) => core,
        Err(error) => {
            facts["elf_error"] = json!(format!("{:#}", anyhow::Error::new(error)));
            return facts;
        }
    };
    let headers = core.headers();
    let expected = expected_size(headers);
    facts["vmcore"] = json!({
        "expected_bytes": expected,
        "header_bytes": headers.header_size,
        "segments": headers.loads.len(),
        "memory_bytes": headers.loads.iter().map(|l| l.mem_size).sum::<u64>(),
    });
    facts["intact_percent"] = json!((percent(size.min(expected), expected) * 10.0).round() / 10.0);
    let damaged = facts["dump"]["damage"].is_string();
    facts["complete"] = json!(size >= expected && !damaged);
    if let Some(info) = core.vmcoreinfo() {
        facts["kernel"] = json!({
            "release": info.os_release(),
            "build_id": info.build_id(),
            "crash_time": info.crash_time(),
            "crash_time_utc": info.crash_time().map(utc),
            "page_size": info.page_size(),
        });
    }
    match read_log(&core) {
        Ok(records) => facts["panic"] = json!(panic_message(&records)),
        Err(error) => facts["log_error"] = json!(format!("{:#}", anyhow::Error::new(error))),
    }
    facts
}

fn print_text(facts: &Value) -> Result<()> {
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let mut out = Report::default();
    let mut line = |label: &str, value: String| out.line(label, value);
    let is_dump = facts["format"] == "dump";
    line(
        if is_dump { "dump" } else { "vmcore file" },
        text(&facts["path"]).unwrap_or_default(),
    );
    let kernel = &facts["kernel"];
    let unknown = || "unknown".to_owned();
    line("kernel", text(&kernel["release"]).unwrap_or_else(unknown));
    line(
        "build id",
        text(&kernel["build_id"]).unwrap_or_else(unknown),
    );
    line(
        "crashed at",
        match (
            text(&kernel["crash_time_utc"]),
            kernel["crash_time"].as_u64(),
        ) {
            (Some(utc), Some(secs)) => format!("{utc} ({secs})"),
            _ => unknown(),
        },
    );
    match (text(&facts["panic"]), text(&facts["log_error"])) {
        (Some(panic), _) => line("panic", panic),
        (None, Some(error)) => line("panic", format!("unknown: {error}")),
        (None, None) => line("panic", "none in the log".to_owned()),
    }
    let vmcore = &facts["vmcore"];
    let expected = vmcore["expected_bytes"].as_u64();
    if let Some(expected) = expected {
        line(
            "vmcore",
            format!(
                "{expected} bytes ({}): headers {} bytes, {} memory segments, {} of memory",
                human(expected),
                vmcore["header_bytes"],
                vmcore["segments"],
                human(vmcore["memory_bytes"].as_u64().unwrap_or(0)),
            ),
        );
    }
    if let Some(error) = text(&facts["elf_error"]) {
        line("ELF headers", format!("unreadable: {error}"));
    }
    let dump = &facts["dump"];
    if is_dump {
        let compressed = dump["compressed_bytes"].as_u64().unwrap_or(0);
        let decompressed = dump["decompressed_bytes"].as_u64().unwrap_or(0);
        let ratio = expected.map_or(String::new(), |e| {
            format!(", {:.1}% of the vmcore", percent(compressed, e))
        });
        line(
            "compressed",
            format!("{compressed} bytes ({}){ratio}", human(compressed)),
        );
        line(
            "decompressed",
            format!("{decompressed} bytes ({})", human(decompressed)),
        );
        let frame_size = dump["frame_bytes"]
            .as_u64()
            .map_or(String::new(), |b| format!(", the first of {}", human(b)));
        line(
            "frames",
            format!(
                "{} ({} all zero, {} with data){frame_size}",
                dump["frames"], dump["zero_frames"], dump["data_frames"]
            ),
        );
        let table = match (
            dump["seek_table"].as_str(),
            text(&dump["seek_table_problem"]),
        ) {
            (Some("consistent"), _) => "present and consistent".to_owned(),
            (_, Some(problem)) => format!("ignored: {problem}"),
            _ => "missing".to_owned(),
        };
        line("seek table", table);
        if let Some(damage) = text(&dump["damage"]) {
            line("damage", damage);
        }
    }
    let complete = facts["complete"].as_bool().unwrap_or(false);
    line(
        "complete",
        if complete {
            "yes".to_owned()
        } else {
            match facts["intact_percent"].as_f64() {
                Some(percent) => format!("no: {percent:.1}% of the vmcore is intact"),
                None => "no".to_owned(),
            }
        },
    );
    out.print()
}

/// Seconds since the epoch as an ISO 8601 UTC time, e.g.
/// "2026-11-27T19:44:03Z"; the date from Howard Hinnant's days-to-civil
/// algorithm.
fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rest = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::utc;

    #[test]
    fn utc_times() {
        let cases = [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_700_000_000, "2023-11-14T22:13:20Z"),
            (4_107_542_399, "2100-02-28T23:59:59Z"),
            (4_107_542_400, "2100-03-01T00:00:00Z"),
        ];
        for (secs, expected) in cases {
            assert_eq!(utc(secs), expected, "{secs}");
        }
    }
}

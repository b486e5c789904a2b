//! `lifeboat inspect`: what crashed, and what the dump holds of it, without
//! decompressing more than the headers and the log.

use std::fs::File;
use std::path::PathBuf;

use anyhow::Result;
use dumper::elf::ReadAt;
use dumper::filter::ExcludeCategory;
use dumper::printk::{panic_message, read_log};
use dumper::record::{Record, Status, RECORD_FILE};
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
/// whether it is complete: whether the writer finished it (its seek table
/// is there) and its frames cover the whole vmcore its ELF headers
/// describe (up to the end of the last memory segment). Only the
/// headers and the log are decompressed: `lifeboat verify` checks every
/// frame.
///
/// DUMP may also be an uncompressed ELF vmcore.
///
/// The exit status is 0 whenever the dump could be read, complete or not:
/// scripts that need a whole dump check it with `lifeboat verify`.
///
/// With --json, the same facts as one flat JSON object, named as in the
/// lifeboat.json record of a capture: `format` ("dump" or "vmcore"),
/// `kernel_release`, `build_id`, `crash_time` (seconds since the epoch),
/// `crash_time_utc`, `page_size`, `panic_message`, `log_error`,
/// `vmcore_bytes` (the size the ELF headers describe), `header_bytes`,
/// `segments`, `memory_bytes`, `elf_error`; for a dump `dump_bytes`,
/// `decompressed_bytes`, `frames`, `zero_frames`, `data_frames`,
/// `frame_bytes`, `seek_table` ("consistent", "missing" or
/// "inconsistent"), `seek_table_problem`, `damage`, `excluded_pages`
/// (pages a dump level left out, by category, from the dump's exclusion
/// records: `zero`, `cache`, `cache_private`, `user`, `free`, `hwpoison`,
/// `offline`), `exclusion_error`; `intact_percent` and `complete`; and
/// from the lifeboat.json beside the dump, if there is one,
/// `record_status`, `record_error` (what the capture said became of it: a
/// deadline that cut it, a full disk), `dump_level` and `filter_error`. A
/// fact that cannot be known is null.
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
    let mut facts = json!({
        "path": args.input.display().to_string(),
        "format": null,
        "kernel_release": null,
        "build_id": null,
        "crash_time": null,
        "crash_time_utc": null,
        "page_size": null,
        "panic_message": null,
        "log_error": null,
        "vmcore_bytes": null,
        "header_bytes": null,
        "segments": null,
        "memory_bytes": null,
        "elf_error": null,
        "intact_percent": null,
        "complete": false,
        "record_status": null,
        "record_error": null,
    });
    add_record_facts(&mut facts, &args.input);
    match input::open(&args.input)? {
        Input::Vmcore(file) => {
            facts["format"] = json!("vmcore");
            let size = file.size();
            add_vmcore_facts(&mut facts, file, size);
        }
        Input::Dump(dump) => {
            facts["format"] = json!("dump");
            add_dump_facts(&mut facts, &dump);
            let size = dump.decompressed_size();
            add_vmcore_facts(&mut facts, *dump, size);
        }
    }
    if args.json {
        let mut json = serde_json::to_string_pretty(&facts)?;
        json.push('\n');
        Report::raw(json).print()?;
    } else {
        print_text(&facts)?;
    }
    Ok(Exit::Success)
}

/// What the capture recorded in the lifeboat.json beside the dump, when
/// there is one: a dump and its record travel together.
fn add_record_facts(facts: &mut Value, input: &std::path::Path) {
    let path = input.with_file_name(RECORD_FILE);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return;
    };
    match Record::read(&text) {
        Ok(record) => {
            facts["record_status"] = json!(record.status.map(Status::as_str));
            facts["record_error"] = json!(record.error);
            facts["dump_level"] = json!(record.dump_level);
            facts["filter_error"] = json!(record.filter_error);
        }
        Err(error) => facts["record_error"] = json!(format!("{}: {error}", path.display())),
    }
}

fn add_dump_facts(facts: &mut Value, dump: &Dump<File>) {
    let frames = dump.frames();
    let zero_frames = dump.zero_frame_count();
    let (table, problem) = match dump.table_status() {
        TableStatus::Consistent => ("consistent", None),
        TableStatus::Missing => ("missing", None),
        TableStatus::Inconsistent(problem) => ("inconsistent", Some(problem.to_string())),
    };
    facts["dump_bytes"] = json!(dump.compressed_size());
    facts["decompressed_bytes"] = json!(dump.decompressed_size());
    facts["frames"] = json!(frames.len());
    facts["zero_frames"] = json!(zero_frames);
    facts["data_frames"] = json!(frames.len() - zero_frames);
    facts["frame_bytes"] = json!(frames.first().map(|f| f.decompressed_size));
    facts["seek_table"] = json!(table);
    facts["seek_table_problem"] = json!(problem);
    facts["damage"] = json!(dump.damage().map(|d| d.to_string()));
    let mut pages = [0u64; ExcludeCategory::ALL.len()];
    for index in 0..frames.len() {
        match dump.exclusions(index) {
            Ok(runs) => {
                for run in runs {
                    pages[run.category.index()] += run.len / 4096;
                }
            }
            Err(error) => {
                facts["exclusion_error"] = json!(error.to_string());
                break;
            }
        }
    }
    let mut excluded = serde_json::Map::new();
    for (category, count) in ExcludeCategory::ALL.iter().zip(pages) {
        excluded.insert(category.name().to_owned(), json!(count));
    }
    facts["excluded_pages"] = Value::Object(excluded);
}

/// The facts read from the vmcore, whose reader has `size` intact bytes.
fn add_vmcore_facts<R: ReadAt>(facts: &mut Value, reader: R, size: u64) {
    let core = match Vmcore::open(reader) {
        Ok(core) => core,
        Err(error) => {
            facts["elf_error"] = json!(format!("{:#}", anyhow::Error::new(error)));
            return;
        }
    };
    let headers = core.headers();
    let expected = expected_size(headers);
    facts["vmcore_bytes"] = json!(expected);
    facts["header_bytes"] = json!(headers.header_size);
    facts["segments"] = json!(headers.loads.len());
    facts["memory_bytes"] = json!(headers.loads.iter().map(|l| l.mem_size).sum::<u64>());
    facts["intact_percent"] = json!((percent(size.min(expected), expected) * 10.0).round() / 10.0);
    // Complete as `verify` has it, short of decompressing: the writer
    // finished (its seek table is there) and the frames cover the vmcore.
    let finished = facts["format"] == "vmcore" || facts["seek_table"] == "consistent";
    facts["complete"] = json!(finished && size >= expected);
    if let Some(info) = core.vmcoreinfo() {
        facts["kernel_release"] = json!(info.os_release());
        facts["build_id"] = json!(info.build_id());
        facts["crash_time"] = json!(info.crash_time());
        facts["crash_time_utc"] = json!(info.crash_time().map(dumper::time::rfc3339));
        facts["page_size"] = json!(info.page_size());
    }
    match read_log(&core) {
        Ok(records) => facts["panic_message"] = json!(panic_message(&records)),
        Err(error) => facts["log_error"] = json!(format!("{:#}", anyhow::Error::new(error))),
    }
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
    let unknown = || "unknown".to_owned();
    line(
        "kernel",
        text(&facts["kernel_release"]).unwrap_or_else(unknown),
    );
    line("build id", text(&facts["build_id"]).unwrap_or_else(unknown));
    line(
        "crashed at",
        match (text(&facts["crash_time_utc"]), facts["crash_time"].as_u64()) {
            (Some(utc), Some(secs)) => format!("{utc} ({secs})"),
            _ => unknown(),
        },
    );
    match (text(&facts["panic_message"]), text(&facts["log_error"])) {
        (Some(panic), _) => line("panic", panic),
        (None, Some(error)) => line("panic", format!("unknown: {error}")),
        (None, None) => line("panic", "none in the log".to_owned()),
    }
    let expected = facts["vmcore_bytes"].as_u64();
    if let Some(expected) = expected {
        line(
            "vmcore",
            format!(
                "{expected} bytes ({}): headers {} bytes, {} memory segments, {} of memory",
                human(expected),
                facts["header_bytes"],
                facts["segments"],
                human(facts["memory_bytes"].as_u64().unwrap_or(0)),
            ),
        );
    }
    if let Some(error) = text(&facts["elf_error"]) {
        line("ELF headers", format!("unreadable: {error}"));
    }
    if is_dump {
        let compressed = facts["dump_bytes"].as_u64().unwrap_or(0);
        let decompressed = facts["decompressed_bytes"].as_u64().unwrap_or(0);
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
        let frame_size = facts["frame_bytes"]
            .as_u64()
            .map_or(String::new(), |b| format!(", the first of {}", human(b)));
        line(
            "frames",
            format!(
                "{} ({} all zero, {} with data){frame_size}",
                facts["frames"], facts["zero_frames"], facts["data_frames"]
            ),
        );
        let table = match (
            facts["seek_table"].as_str(),
            text(&facts["seek_table_problem"]),
        ) {
            (Some("consistent"), _) => "present and consistent".to_owned(),
            (_, Some(problem)) => format!("ignored: {problem}"),
            _ => "missing".to_owned(),
        };
        line("seek table", table);
        if let Some(damage) = text(&facts["damage"]) {
            line("damage", damage);
        }
        let excluded: Vec<(&str, u64)> = ExcludeCategory::ALL
            .iter()
            .map(|category| {
                let name = category.name();
                (name, facts["excluded_pages"][name].as_u64().unwrap_or(0))
            })
            .collect();
        let total: u64 = excluded.iter().map(|(_, count)| count).sum();
        let level = facts["dump_level"]
            .as_u64()
            .map_or(String::new(), |level| format!("dump level {level}: "));
        line(
            "left out",
            if total == 0 {
                format!("{level}nothing: every page is in the dump")
            } else {
                let parts: Vec<String> = excluded
                    .iter()
                    .filter(|(_, count)| *count > 0)
                    .map(|(name, count)| format!("{name} {count}"))
                    .collect();
                format!("{level}{total} pages, as zeros ({})", parts.join(", "))
            },
        );
        if let Some(error) = text(&facts["exclusion_error"]) {
            line("exclusions", format!("unreadable: {error}"));
        }
        if let Some(error) = text(&facts["filter_error"]) {
            line("page filter", format!("not set up: {error}"));
        }
    }
    match (text(&facts["record_status"]), text(&facts["record_error"])) {
        (Some(status), Some(error)) => line("capture record", format!("{status}: {error}")),
        (Some(status), None) => line("capture record", status),
        (None, Some(error)) => line("capture record", format!("unreadable: {error}")),
        (None, None) => {}
    }
    let complete = facts["complete"].as_bool().unwrap_or(false);
    line(
        "complete",
        if complete {
            "yes".to_owned()
        } else {
            match facts["intact_percent"].as_f64() {
                Some(percent) if percent >= 100.0 => {
                    "no: the seek table is missing, but the frames hold the whole vmcore".to_owned()
                }
                Some(percent) => format!("no: {percent:.1}% of the vmcore is intact"),
                None => "no".to_owned(),
            }
        },
    );
    out.print()
}

//! Opening what the reading commands are given: a lifeboat dump, or (for
//! the commands that can use one) a plain ELF vmcore, told apart by their
//! first bytes.

use std::fs::File;
use std::path::Path;

use anyhow::{bail, Context, Result};
use dumper::elf::{CoreHeaders, ReadAt};
use dumper::seekable::reader::{Dump, TableStatus};
use dumper::seekable::{SKIPPABLE_MAGIC, ZSTD_MAGIC};

pub enum Input {
    /// An uncompressed ELF vmcore, such as /proc/vmcore.
    Vmcore(File),
    /// Boxed: a dump carries its frame list and cache state.
    Dump(Box<Dump<File>>),
}

/// Opens `path` as a vmcore or a dump.
pub fn open(path: &Path) -> Result<Input> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut magic = [0u8; 4];
    if file.size() >= 4 {
        file.read_exact_at(&mut magic, 0)
            .with_context(|| format!("cannot read {}", path.display()))?;
    }
    if magic == *b"\x7fELF" {
        return Ok(Input::Vmcore(file));
    }
    let number = u32::from_le_bytes(magic);
    if number == ZSTD_MAGIC || number & 0xFFFF_FFF0 == SKIPPABLE_MAGIC & 0xFFFF_FFF0 {
        let dump =
            Dump::open(file).with_context(|| format!("cannot read the dump {}", path.display()))?;
        return Ok(Input::Dump(Box::new(dump)));
    }
    bail!(
        "{} is neither an ELF vmcore nor a zstd dump (it starts with {magic:02x?})",
        path.display()
    )
}

/// Opens `path` as a dump, for the commands that only make sense on one.
pub fn open_dump(path: &Path) -> Result<Dump<File>> {
    match open(path)? {
        Input::Dump(dump) => Ok(*dump),
        Input::Vmcore(_) => bail!(
            "{} is an uncompressed ELF vmcore, not a dump",
            path.display()
        ),
    }
}

/// The size of the vmcore the headers describe: the end of the last
/// segment in the file, or of the headers themselves.
pub fn expected_size(headers: &CoreHeaders) -> u64 {
    headers
        .loads
        .iter()
        .map(|load| load.file_offset + load.file_size)
        .fold(headers.header_size, u64::max)
}

/// One line on the state of a dump's seek table.
pub fn describe_table(dump: &Dump<File>) -> String {
    match dump.table_status() {
        TableStatus::Consistent => "present and consistent".to_owned(),
        TableStatus::Missing => "missing".to_owned(),
        TableStatus::Inconsistent(problem) => format!("ignored: {problem}"),
    }
}

/// `part` as a percentage of `whole`, with one decimal; 100.0 for an empty
/// whole.
pub fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        100.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// Bytes in binary units, e.g. "1.94 GiB".
pub fn human(bytes: u64) -> String {
    indicatif::HumanBytes(bytes).to_string()
}

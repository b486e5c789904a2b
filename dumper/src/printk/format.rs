//! The log as text, written as `makedumpfile --dump-dmesg` writes it: the
//! form of makedumpfile 1.7.4 and earlier, and that of 1.7.5 and later,
//! which adds a caller column.

use std::io::{self, Write};

use super::Record;

/// Writes the records as `makedumpfile --dump-dmesg` 1.7.4 and earlier
/// (Debian 12's 1.7.2) does: `[%5lld.%06ld] ` and the text, each newline
/// in it followed by spaces as wide as that prefix, bytes other than
/// printable ASCII and whitespace as `\xNN`, and a newline after each
/// record.
pub fn write_dmesg(records: &[Record], out: &mut impl Write) -> io::Result<()> {
    write_records(records, false, out)
}

/// Writes the records as `makedumpfile --dump-dmesg` 1.7.5 and later
/// (Debian 13's 1.7.6) does: as [`write_dmesg`], plus a caller column
/// after the timestamp, `[%*s] ` of `T<pid>` or `C<cpu>` (bit 31 of the
/// caller id set) right-aligned in 8 characters and never cut, whenever
/// VMCOREINFO has the caller_id offset, that is when the records have a
/// caller id; the continuation lines of a record are indented past it.
/// Linux 5.10 and later always export that offset, so every line of
/// their log has the column. Checked byte for byte against makedumpfile
/// 1.7.6 (the references under `testdata/makedumpfile-1.7.6/`).
pub fn write_dmesg_with_caller_ids(records: &[Record], out: &mut impl Write) -> io::Result<()> {
    write_records(records, true, out)
}

/// The caller column's width, makedumpfile's PID_CHARS_DEFAULT.
const CALLER_WIDTH: usize = 8;

fn write_records(records: &[Record], caller_ids: bool, out: &mut impl Write) -> io::Result<()> {
    let mut line = Vec::new();
    for record in records {
        line.clear();
        let secs = record.ts_nsec / 1_000_000_000;
        let usecs = record.ts_nsec % 1_000_000_000 / 1000;
        write!(line, "[{secs:5}.{usecs:06}] ")?;
        if let (true, Some(id)) = (caller_ids, record.caller_id) {
            let kind = if id & 0x8000_0000 != 0 { 'C' } else { 'T' };
            let caller = format!("{kind}{}", id & !0x8000_0000);
            write!(line, "[{caller:>CALLER_WIDTH$}] ")?;
        }
        let indent = line.len();
        for &byte in &record.text {
            match byte {
                b'\n' => {
                    line.push(b'\n');
                    line.resize(line.len() + indent, b' ');
                }
                // isprint() or isspace() in the C locale.
                0x20..=0x7e | b'\t' | 0x0b | 0x0c | b'\r' => line.push(byte),
                // makedumpfile passes a (signed) char to "%02x", so bytes
                // from 0x80 print sign-extended to 32 bits.
                0x80..=0xff => write!(line, "\\x{:08x}", 0xffff_ff00 | u32::from(byte))?,
                _ => write!(line, "\\x{byte:02x}")?,
            }
        }
        line.push(b'\n');
        out.write_all(&line)?;
    }
    Ok(())
}

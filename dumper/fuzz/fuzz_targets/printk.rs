//! Reading the log from any vmcore must never panic, loop forever or
//! allocate without bound, and whatever it reads must be writable.

#![no_main]

use dumper::printk::{panic_message, read_log, write_dmesg, write_dmesg_with_caller_ids};
use dumper::vmcore::Vmcore;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(core) = Vmcore::open(data) else {
        return;
    };
    let Ok(records) = read_log(&core) else {
        return;
    };
    let mut out = Vec::new();
    write_dmesg(&records, &mut out).expect("writing to a Vec cannot fail");
    let lines = out.iter().filter(|&&b| b == b'\n').count();
    assert!(lines >= records.len());
    out.clear();
    write_dmesg_with_caller_ids(&records, &mut out).expect("writing to a Vec cannot fail");
    let _ = panic_message(&records);
});

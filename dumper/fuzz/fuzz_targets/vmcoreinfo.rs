//! Parsing any VMCOREINFO text must never panic, and every entry it keeps
//! must be found again by its key.

#![no_main]

use dumper::vmcoreinfo::VmcoreInfo;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(info) = VmcoreInfo::parse(data) else {
        return;
    };
    for (key, _) in info.entries() {
        assert!(info.get(key).is_some());
        // The typed accessors only interpret the same values.
        if let Some(name) = key
            .strip_prefix("SYMBOL(")
            .and_then(|k| k.strip_suffix(')'))
        {
            let _ = info.symbol(name);
        }
        if let Some(name) = key
            .strip_prefix("OFFSET(")
            .and_then(|k| k.strip_suffix(')'))
        {
            let _ = info.offset(name);
        }
        if let Some(name) = key
            .strip_prefix("NUMBER(")
            .and_then(|k| k.strip_suffix(')'))
        {
            let _ = info.number(name);
        }
    }
    let _ = (info.page_size(), info.crash_time(), info.kernel_offset());
});

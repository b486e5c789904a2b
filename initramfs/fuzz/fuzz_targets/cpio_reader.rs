//! The cpio reader must never panic, and whatever it reads must survive being
//! written by our writer and read again unchanged.

#![no_main]

use initramfs::cpio::{read_archive, Archive};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(entries) = read_archive(data) else {
        return;
    };
    let mut archive = Archive::new();
    for entry in entries {
        // Archives from elsewhere may hold what ours refuse (duplicates,
        // `.`, `..`); those are simply not round-tripped.
        if archive.add(entry).is_err() {
            return;
        }
    }
    let bytes = archive.to_bytes();
    assert_eq!(bytes.len() % initramfs::cpio::BLOCK, 0);
    let again = read_archive(&bytes).expect("our own archive reads");
    let written: Vec<_> = archive.entries().cloned().collect();
    assert_eq!(again, written);
    assert_eq!(Archive::to_bytes(&archive), bytes);
});

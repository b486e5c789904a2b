//! The ELF section reader must never panic on a damaged module file.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = initramfs::modules::modinfo(data);
});

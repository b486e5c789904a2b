//! A block device's first bytes, as a damaged or hostile disk may hold
//! them: the superblock probes and the partition table readers must answer
//! "nothing here" or an error, never panic.

#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = blkid::probe_filesystem(&mut Cursor::new(data));
    for sector_size in [512, 4096] {
        let _ = blkid::read_partitions(&mut Cursor::new(data), sector_size);
    }
});

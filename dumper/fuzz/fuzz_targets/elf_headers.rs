//! Reading the headers of any file must never panic, and what it accepts
//! must describe only what is inside the file.

#![no_main]

use dumper::elf::{read_core_headers, MAX_NOTES_BYTES, MAX_PROGRAM_HEADERS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(headers) = read_core_headers(data) else {
        return;
    };
    let size = data.len() as u64;
    assert!(headers.header_size <= size);
    assert!(headers.phdr_count <= MAX_PROGRAM_HEADERS);
    assert!(headers.loads.len() as u64 <= headers.phdr_count);
    for load in &headers.loads {
        assert!(load.file_size <= load.mem_size);
        assert!(load.file_offset.checked_add(load.file_size).is_some());
        assert!(load.vaddr.checked_add(load.mem_size).is_some());
        assert!(load.paddr.checked_add(load.mem_size).is_some());
    }
    let notes: usize = headers
        .notes
        .iter()
        .map(|n| n.name.len() + n.desc.len())
        .sum();
    assert!(notes as u64 <= MAX_NOTES_BYTES);
    for segment in &headers.note_segments {
        assert!(segment.file_offset + segment.file_size <= headers.header_size);
    }
});

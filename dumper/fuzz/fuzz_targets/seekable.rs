//! Opening any file as a dump, verifying it, reading from it, reading its
//! exclusion records and planning the salvage of its content must never
//! panic, loop forever or allocate without bound; and what it reports must
//! be consistent.

#![no_main]

use dumper::elf::ReadAt;
use dumper::elf::salvage::{salvage_core, SegmentFate};
use dumper::seekable::reader::Dump;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(dump) = Dump::open(data) else {
        return;
    };
    let size = dump.decompressed_size();
    let mut expected_offset = 0u64;
    let mut compressed_end = 0u64;
    for frame in dump.frames() {
        assert_eq!(frame.decompressed_offset, expected_offset);
        assert!(frame.compressed_offset >= compressed_end);
        compressed_end = frame.compressed_offset + frame.compressed_size;
        assert!(compressed_end <= data.len() as u64);
        expected_offset += frame.decompressed_size;
    }
    assert_eq!(expected_offset, size);

    // Each frame's exclusion record, if it reads, describes runs in order
    // inside the frame.
    for (index, frame) in dump.frames().iter().enumerate() {
        if let Ok(runs) = dump.exclusions(index) {
            let mut at = 0u64;
            for run in runs {
                assert!(run.len > 0 && run.start >= at);
                at = run.start + run.len;
                assert!(at <= frame.decompressed_size);
            }
        }
    }

    let mut done = 0u64;
    let report = dump.verify(|now, total| {
        assert!(now >= done && now <= total);
        done = now;
    });
    assert!(report.good_frames <= report.frames);
    assert!(report.good_bytes <= size);

    // A few reads: the start, around the middle and the end; whatever the
    // outcome, a read that succeeds must agree with verification.
    let mut buf = [0u8; 100];
    for offset in [0, size / 2, size.saturating_sub(50), size, u64::MAX - 10] {
        let len = (size.saturating_sub(offset)).min(buf.len() as u64 - 1) as usize;
        let _ = dump.read_at(offset, &mut buf[..len]);
        if offset
            .checked_add(len as u64 + 1)
            .is_some_and(|end| end > size)
        {
            assert!(dump.read_at(offset, &mut buf[..len + 1]).is_err());
        }
    }
    if report.is_ok() && size > 0 {
        let mut last = [0u8; 1];
        dump.read_at(size - 1, &mut last)
            .expect("verified dumps read");
    }

    // The recovery plan of a decompressed prefix keeps inside it.
    if let Ok(salvage) = salvage_core(&dump) {
        assert_eq!(salvage.intact_len, dump.size());
        for patch in &salvage.patches {
            assert!(patch.offset + patch.bytes.len() as u64 <= salvage.intact_len);
        }
        for segment in &salvage.segments {
            if let SegmentFate::Shrunk { new_size } = segment.fate {
                assert!(segment.file_offset + new_size == salvage.intact_len);
                assert!(new_size < segment.file_size);
            }
        }
    }
});

//! Tests of the dump reader: frames, tables, truncation and damage.

use super::*;
use crate::elf::read_core_headers;
use crate::elf::salvage::{apply, salvage_core, SegmentFate};
use crate::elf::synth::{Memory, Msg, PrbLayout, Ring};
use crate::seekable::{zero_frame, FrameEntry, SeekTable};
use std::path::Path;
use zstd::zstd_safe::{CCtx, CParameter};

/// Compresses `data` into one frame with content size and checksum,
/// as the writer does.
fn frame_of(data: &[u8]) -> Vec<u8> {
    let mut context = CCtx::create();
    context
        .set_parameter(CParameter::ChecksumFlag(true))
        .unwrap();
    context
        .set_parameter(CParameter::ContentSizeFlag(true))
        .unwrap();
    context
        .set_parameter(CParameter::CompressionLevel(1))
        .unwrap();
    let mut out = Vec::with_capacity(zstd_safe::compress_bound(data.len()));
    context.compress2(&mut out, data).unwrap();
    out
}

fn checksum(data: &[u8]) -> u32 {
    xxhash_rust::xxh64::xxh64(data, 0) as u32
}

/// A dump of `data` in frames of `frame_bytes`, zero chunks as zero
/// frames, and its seek table; also the table's offset.
fn dump_of(data: &[u8], frame_bytes: usize) -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    let mut table = SeekTable::default();
    for chunk in data.chunks(frame_bytes) {
        let frame = if chunk.iter().all(|&b| b == 0) {
            zero_frame(chunk.len() as u64, zero_checksum(chunk.len() as u64))
        } else {
            frame_of(chunk)
        };
        table.entries.push(FrameEntry {
            compressed_size: frame.len() as u32,
            decompressed_size: chunk.len() as u32,
            checksum: checksum(chunk),
        });
        out.extend_from_slice(&frame);
    }
    let table_at = out.len();
    table.write_to(&mut out).unwrap();
    (out, table_at)
}

/// Text-like data with zero stretches, so that some chunks are zero.
fn sample(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..len)
        .map(|i| {
            if (i / 5000) % 3 == 1 {
                0
            } else {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                b' ' + (state % 64) as u8
            }
        })
        .collect()
}

fn read_all<R: ReadAt>(dump: &Dump<R>) -> Vec<u8> {
    let mut out = vec![0u8; dump.decompressed_size() as usize];
    dump.read_at(0, &mut out).unwrap();
    out
}

#[test]
fn frame_headers() {
    type Expected = Result<(usize, Option<u64>, bool), FrameHeaderProblem>;
    let magic = ZSTD_MAGIC.to_le_bytes();
    let with = |rest: &[u8]| [&magic[..], rest].concat();
    let cases: Vec<(&str, Vec<u8>, Expected)> = vec![
        ("empty", vec![], Err(FrameHeaderProblem::Truncated)),
        ("magic only", with(&[]), Err(FrameHeaderProblem::Truncated)),
        (
            "skippable magic",
            [&SKIPPABLE_MAGIC.to_le_bytes()[..], &[0]].concat(),
            Err(FrameHeaderProblem::BadMagic {
                magic: SKIPPABLE_MAGIC,
            }),
        ),
        // Window descriptor, no content size.
        ("no content size", with(&[0x00, 0x50]), Ok((6, None, false))),
        // Single segment: a 1-byte content size, no window descriptor.
        (
            "single segment",
            with(&[0x20, 200]),
            Ok((6, Some(200), false)),
        ),
        (
            "single segment cut",
            with(&[0x20]),
            Err(FrameHeaderProblem::Truncated),
        ),
        // The 2-byte form adds 256.
        (
            "two-byte size",
            with(&[0x60, 0x00, 0x01]),
            Ok((7, Some(512), false)),
        ),
        (
            "four-byte size and checksum",
            with(&[0x84, 0x58, 1, 2, 3, 4]),
            Ok((10, Some(0x0403_0201), true)),
        ),
        (
            "eight-byte size",
            with(&[0xc4, 0x58, 1, 0, 0, 0, 1, 0, 0, 0]),
            Ok((14, Some(0x1_0000_0001), true)),
        ),
        (
            "eight-byte size cut",
            with(&[0xc4, 0x58, 1, 0, 0, 0, 1, 0, 0]),
            Err(FrameHeaderProblem::Truncated),
        ),
        (
            "reserved bit",
            with(&[0x28, 200]),
            Err(FrameHeaderProblem::ReservedBit),
        ),
        (
            "dictionary",
            with(&[0x21, 7, 200]),
            Err(FrameHeaderProblem::Dictionary { dictionary_id: 7 }),
        ),
        // A dictionary id of zero means none.
        (
            "zero dictionary id",
            with(&[0x22, 0, 0, 200]),
            Ok((8, Some(200), false)),
        ),
    ];
    for (name, bytes, expected) in cases {
        let got =
            parse_frame_header(&bytes).map(|h| (h.header_len, h.content_size, h.has_checksum));
        assert_eq!(got, expected, "{name}");
    }
    // The longest header (window byte, 4-byte dictionary id of zero,
    // 8-byte content size) cut at every length.
    let longest = with(&[0xc7, 0x58, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0]);
    assert_eq!(longest.len(), FRAME_HEADER_MAX);
    for len in 0..longest.len() {
        assert_eq!(
            parse_frame_header(&longest[..len]),
            Err(FrameHeaderProblem::Truncated),
            "cut at {len}"
        );
    }
    assert_eq!(
        parse_frame_header(&longest).map(|h| (h.header_len, h.content_size)),
        Ok((FRAME_HEADER_MAX, Some(0x1_0000_0001)))
    );
    // What the writer produces parses as itself.
    for frame in [frame_of(b"hello"), zero_frame(5 << 20, 0)] {
        let header = parse_frame_header(&frame).unwrap();
        assert!(header.has_checksum);
        assert_eq!(
            header.content_size,
            zstd_safe::get_frame_content_size(&frame).unwrap()
        );
    }
}

#[test]
fn block_headers() {
    let header = |last: u32, kind: u32, size: u32| {
        let v = last | kind << 1 | size << 3;
        [v as u8, (v >> 8) as u8, (v >> 16) as u8]
    };
    let cases = [
        ("raw", header(0, 0, 100), Some((false, 100, 100, 100))),
        ("last raw", header(1, 0, 0), Some((true, 0, 0, 0))),
        (
            "rle",
            header(1, 1, 131_072),
            Some((true, 1, 131_072, 131_072)),
        ),
        (
            "compressed",
            header(0, 2, 4000),
            Some((false, 4000, 0, BLOCK_MAX)),
        ),
        ("reserved type", header(0, 3, 10), None),
        ("oversized", header(0, 0, 131_073), None),
    ];
    for (name, bytes, expected) in cases {
        assert_eq!(parse_block_header(bytes), expected, "{name}");
    }
}

#[test]
fn table_dump_reads_back() {
    let data = sample(100_000);
    let (bytes, _) = dump_of(&data, 4096);
    let dump = Dump::open(bytes.as_slice()).unwrap();
    assert!(dump.is_complete());
    assert_eq!(dump.damage(), None);
    assert_eq!(dump.frames().len(), data.len().div_ceil(4096));
    assert_eq!(dump.decompressed_size(), data.len() as u64);
    assert_eq!(read_all(&dump), data);
    let zero_frames = data
        .chunks(4096)
        .filter(|c| c.iter().all(|&b| b == 0))
        .count();
    assert!(zero_frames > 0);
    assert_eq!(dump.zero_frame_count(), zero_frames);
    let mut calls = 0;
    let report = dump.verify(|done, total| {
        calls += 1;
        assert!(done <= total);
    });
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.good_bytes, data.len() as u64);
    assert_eq!(calls, dump.frames().len());
    // Stock zstd decodes the same bytes.
    assert_eq!(zstd::decode_all(&bytes[..]).unwrap(), data);
}

#[test]
fn random_reads_cross_frames() {
    let data = sample(50_000);
    let (bytes, _) = dump_of(&data, 3000);
    let dump = Dump::open(bytes).unwrap();
    for (offset, len) in [(0, 1), (2999, 2), (2990, 7000), (49_999, 1), (0, 50_000)] {
        let mut buf = vec![0u8; len];
        dump.read_at(offset, &mut buf).unwrap();
        assert_eq!(buf, &data[offset as usize..offset as usize + len]);
    }
    let mut buf = [0u8; 2];
    let err = dump.read_at(49_999, &mut buf).unwrap_err();
    assert!(matches!(err, SeekableError::OutOfRange { .. }), "{err}");
    let err = dump.read_at(u64::MAX, &mut buf).unwrap_err();
    assert!(matches!(err, SeekableError::OutOfRange { .. }), "{err}");
    dump.read_at(50_000, &mut []).unwrap();
}

#[test]
fn plain_single_frame_file_is_a_dump_without_table() {
    let data = sample(300_000);
    let bytes = frame_of(&data);
    let dump = Dump::open(bytes.as_slice()).unwrap();
    assert!(!dump.is_complete());
    assert_eq!(dump.table_status(), &TableStatus::Missing);
    assert_eq!(dump.damage(), None);
    assert_eq!(dump.frames().len(), 1);
    assert_eq!(dump.frames()[0].checksum, Some(checksum(&data)));
    assert_eq!(read_all(&dump), data);
    assert!(dump.verify(|_, _| {}).is_ok());
}

#[test]
fn large_frames_are_read_lazily() {
    // A frame over WHOLE_FRAME_BYTES, like the single frame older
    // writers made of a whole vmcore: pieces decode on demand.
    let len = WHOLE_FRAME_BYTES as usize + 3 * PIECE_BYTES + 17;
    let mut data = vec![0u8; len];
    for (i, b) in data.iter_mut().enumerate().step_by(4099) {
        *b = (i % 251) as u8 + 1;
    }
    let bytes = frame_of(&data);
    let dump = Dump::open(bytes.as_slice()).unwrap();
    assert_eq!(dump.frames().len(), 1);
    for offset in [len - 5, 10, PIECE_BYTES * 40 + 3, PIECE_BYTES * 41, 0] {
        let mut buf = [0u8; 5];
        dump.read_at(offset as u64, &mut buf).unwrap();
        assert_eq!(buf, data[offset..offset + 5], "at {offset}");
    }
    let report = dump.verify(|_, _| {});
    assert!(report.is_ok(), "{report:?}");
}

#[test]
fn truncation_at_every_byte_keeps_the_whole_frames() {
    let data = sample(10_000);
    let (bytes, table_at) = dump_of(&data, 4096);
    let ends: Vec<usize> = {
        let dump = Dump::open(bytes.as_slice()).unwrap();
        dump.frames()
            .iter()
            .map(|f| (f.compressed_offset + f.compressed_size) as usize)
            .collect()
    };
    for cut in 0..bytes.len() {
        let dump = Dump::open(&bytes[..cut]).unwrap();
        assert!(!dump.is_complete(), "cut at {cut}");
        let whole = ends.iter().filter(|&&end| end <= cut).count();
        assert_eq!(dump.frames().len(), whole, "cut at {cut}");
        let size = (whole * 4096).min(data.len());
        assert_eq!(dump.decompressed_size(), size as u64, "cut at {cut}");
        if cut < table_at && !ends.contains(&cut) && cut > 0 {
            assert_eq!(
                dump.damage().map(|d| d.kind),
                Some(DamageKind::Truncated),
                "cut at {cut}"
            );
        }
        if cut >= table_at + 4 {
            assert_eq!(
                dump.damage().map(|d| d.kind),
                Some(DamageKind::SkippableTruncated),
                "cut at {cut}"
            );
        }
        let report = dump.verify(|_, _| {});
        assert!(report.is_ok(), "cut at {cut}: {report:?}");
        assert_eq!(read_all(&dump), &data[..size], "cut at {cut}");
    }
}

#[test]
fn corrupt_bytes_are_caught() {
    let data = sample(10_000);
    let (bytes, table_at) = dump_of(&data, 4096);
    // Flip every byte of the frames in turn: either the dump no longer
    // opens to the same frames, or reading and verifying fail, or (in
    // bytes zstd ignores, like an unused window mantissa) the content
    // is still right. Never a panic, never wrong bytes unnoticed.
    for at in 0..table_at {
        let mut corrupt = bytes.clone();
        corrupt[at] ^= 0x40;
        let dump = Dump::open(corrupt.as_slice()).unwrap();
        let report = dump.verify(|_, _| {});
        let mut content = vec![0u8; dump.decompressed_size() as usize];
        let read = dump.read_at(0, &mut content);
        if report.is_ok() {
            assert!(read.is_ok(), "byte {at}");
            assert_eq!(content, &data[..content.len()], "byte {at}");
        } else {
            assert!(read.is_err(), "byte {at}: verify failed, read did not");
        }
    }
}

#[test]
fn checksum_mismatches_are_named() {
    let data = sample(10_000);
    let (mut bytes, table_at) = dump_of(&data, 4096);
    // The table's checksum of frame 1, after 8 bytes of table header and
    // one 12-byte entry, and its 8 bytes of sizes.
    let at = table_at + 8 + ENTRY_BYTES + 8;
    bytes[at] ^= 1;
    let dump = Dump::open(bytes.as_slice()).unwrap();
    assert!(dump.is_complete());
    let report = dump.verify(|_, _| {});
    assert_eq!(report.good_frames, 1);
    assert_eq!(report.good_bytes, 4096);
    let error = report.first_bad.unwrap();
    assert!(
        matches!(error, SeekableError::ChecksumMismatch { frame: 1, .. }),
        "{error}"
    );
    let mut buf = [0u8; 1];
    dump.read_at(0, &mut buf).unwrap();
    for _ in 0..2 {
        let error = dump.read_at(4096, &mut buf).unwrap_err();
        assert!(
            matches!(error, SeekableError::ChecksumMismatch { frame: 1, .. }),
            "{error}"
        );
    }

    // zstd's own checksum, at the end of frame 0.
    let (mut bytes, _) = dump_of(&data, 4096);
    let frame0 = Dump::open(bytes.as_slice()).unwrap().frames()[0];
    bytes[(frame0.compressed_end() - 1) as usize] ^= 1;
    let dump = Dump::open(bytes.as_slice()).unwrap();
    let error = dump.verify(|_, _| {}).first_bad.unwrap();
    assert!(
        matches!(error, SeekableError::Decompress { frame: 0, .. }),
        "{error}"
    );
}

#[test]
fn inconsistent_tables_fall_back_to_walking() {
    let data = sample(20_000);
    let (bytes, table_at) = dump_of(&data, 4096);
    let footer_at = bytes.len() - FOOTER_BYTES;
    type Patch = (usize, Vec<u8>);
    type Check = fn(&TableStatus) -> bool;
    let cases: Vec<(&str, Vec<Patch>, Check)> = vec![
        (
            "compressed size off by one",
            vec![(table_at + 8, {
                let size =
                    u32::from_le_bytes(bytes[table_at + 8..table_at + 12].try_into().unwrap());
                (size + 1).to_le_bytes().to_vec()
            })],
            |s| {
                matches!(
                    s,
                    TableStatus::Inconsistent(TableProblem::SizeMismatch { .. })
                )
            },
        ),
        (
            "count too large for the file",
            vec![(footer_at, 1000u32.to_le_bytes().to_vec())],
            |s| {
                matches!(
                    s,
                    TableStatus::Inconsistent(TableProblem::LargerThanFile { .. })
                )
            },
        ),
        (
            "count one less",
            vec![(footer_at, 4u32.to_le_bytes().to_vec())],
            |s| {
                matches!(
                    s,
                    TableStatus::Inconsistent(TableProblem::BadFrameHeader { .. })
                )
            },
        ),
        (
            "count beyond the format",
            vec![(footer_at, u32::MAX.to_le_bytes().to_vec())],
            |s| {
                matches!(
                    s,
                    TableStatus::Inconsistent(TableProblem::TooManyFrames { .. })
                )
            },
        ),
        (
            "reserved descriptor bits",
            vec![(footer_at + 4, vec![0x84])],
            |s| {
                matches!(
                    s,
                    TableStatus::Inconsistent(TableProblem::ReservedBits { .. })
                )
            },
        ),
        (
            "frame larger than 1 GiB",
            vec![(
                table_at + 12,
                (MAX_FRAME_BYTES as u32 + 1).to_le_bytes().to_vec(),
            )],
            |s| {
                matches!(
                    s,
                    TableStatus::Inconsistent(TableProblem::BadEntry { index: 0, .. })
                )
            },
        ),
        (
            "wrong skippable magic",
            vec![(table_at, 0x184D_2A50u32.to_le_bytes().to_vec())],
            |s| {
                matches!(
                    s,
                    TableStatus::Inconsistent(TableProblem::BadFrameHeader { .. })
                )
            },
        ),
        (
            "no footer magic",
            vec![(footer_at + 5, vec![0, 0, 0, 0])],
            |s| *s == TableStatus::Missing,
        ),
    ];
    for (name, patches, check) in cases {
        let mut corrupt = bytes.clone();
        for (at, patch) in patches {
            corrupt[at..at + patch.len()].copy_from_slice(&patch);
        }
        let dump = Dump::open(corrupt.as_slice()).unwrap();
        assert!(
            check(dump.table_status()),
            "{name}: {:?}",
            dump.table_status()
        );
        assert!(!dump.is_complete(), "{name}");
        // The frames are all there, found by walking them; the table
        // frame is skipped (or, without its magic, ends the walk).
        assert_eq!(dump.frames().len(), 5, "{name}");
        assert_eq!(read_all(&dump), data, "{name}");
    }
}

#[test]
fn table_sizes_disagreeing_with_frames_are_decode_errors() {
    let data = sample(12_288);
    let (mut bytes, table_at) = dump_of(&data, 4096);
    // Swap the decompressed sizes of frames 0 and 1 in the table: the
    // sums still match, the frame headers do not.
    let entry = |i: usize| table_at + 8 + i * ENTRY_BYTES + 4;
    bytes[entry(0)..entry(0) + 4].copy_from_slice(&4000u32.to_le_bytes());
    bytes[entry(1)..entry(1) + 4].copy_from_slice(&4192u32.to_le_bytes());
    let dump = Dump::open(bytes.as_slice()).unwrap();
    assert!(dump.is_complete());
    let error = dump.verify(|_, _| {}).first_bad.unwrap();
    assert!(
        matches!(
            error,
            SeekableError::FrameHeader {
                frame: 0,
                problem: FrameHeaderProblem::ContentSizeMismatch { .. },
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn walking_stops_at_damage() {
    let data = sample(8192);
    let first = frame_of(&data[..4096]);
    let second = frame_of(&data[4096..]);
    let skippable = [
        &0x184D_2A53u32.to_le_bytes()[..],
        &3u32.to_le_bytes(),
        b"abc",
    ]
    .concat();
    let no_size = {
        // A frame without content size: streaming with an unknown size.
        let mut out = Vec::new();
        let mut encoder = zstd::stream::write::Encoder::new(&mut out, 1).unwrap();
        std::io::Write::write_all(&mut encoder, &data[..100]).unwrap();
        encoder.finish().unwrap();
        out
    };
    let cases: Vec<(&str, Vec<u8>, usize, Option<DamageKind>)> = vec![
        ("two frames", [&first[..], &second].concat(), 2, None),
        (
            "skippable frame between",
            [&first[..], &skippable, &second].concat(),
            2,
            None,
        ),
        (
            "garbage after",
            [&first[..], b"garbage!"].concat(),
            1,
            Some(DamageKind::NotAFrame {
                magic: u32::from_le_bytes(*b"garb"),
            }),
        ),
        (
            "no content size",
            [&first[..], &no_size].concat(),
            1,
            Some(DamageKind::NoContentSize),
        ),
        (
            "skippable frame cut",
            [&first[..], &skippable[..9]].concat(),
            1,
            Some(DamageKind::SkippableTruncated),
        ),
        (
            "skippable header cut",
            [&first[..], &skippable[..6]].concat(),
            1,
            Some(DamageKind::SkippableTruncated),
        ),
        ("empty file", vec![], 0, None),
    ];
    for (name, bytes, frames, damage) in cases {
        let dump = Dump::open(bytes.as_slice()).unwrap();
        assert_eq!(dump.frames().len(), frames, "{name}");
        assert_eq!(dump.damage().map(|d| d.kind), damage, "{name}");
        if let Some(damage) = dump.damage() {
            assert_eq!(damage.offset, first.len() as u64, "{name}");
        }
    }
}

#[test]
fn impossible_content_sizes_end_the_walk() {
    // A zero frame whose header claims more than its RLE blocks hold.
    let mut frame = zero_frame(4096, zero_checksum(4096));
    frame[6..10].copy_from_slice(&100_000u32.to_le_bytes());
    let dump = Dump::open(frame.as_slice()).unwrap();
    assert_eq!(dump.frames().len(), 0);
    assert!(matches!(
        dump.damage().map(|d| d.kind),
        Some(DamageKind::ImpossibleContentSize {
            content_size: 100_000
        })
    ));
}

#[test]
fn vmcore_log_reads_through_a_dump() {
    let mut ring = Ring::new(4, 10);
    for i in 0..20u64 {
        ring.push(&Msg::new(i * 1_000_000, format!("message {i}").as_bytes()));
    }
    ring.push(&Msg::new(
        99_000_000,
        b"Kernel panic - not syncing: sysrq triggered crash",
    ));
    let mut memory = Memory::new();
    ring.write(&mut memory, &PrbLayout::linux_6_1());
    let core = memory.build();
    let (bytes, _) = dump_of(&core, 4096);
    let plain = crate::vmcore::Vmcore::open(core.as_slice()).unwrap();
    let packed = crate::vmcore::Vmcore::open(Dump::open(bytes.as_slice()).unwrap()).unwrap();
    let expected = crate::printk::read_log(&plain).unwrap();
    let records = crate::printk::read_log(&packed).unwrap();
    assert_eq!(records, expected);
    assert_eq!(
        crate::printk::panic_message(&records).as_deref(),
        Some("sysrq triggered crash")
    );
}

/// A dump cut inside the memory after the log, salvaged: the result is
/// a core that readelf and makedumpfile accept, whose log is whole.
#[test]
fn salvaged_cores_satisfy_readelf_and_makedumpfile() {
    let mut ring = Ring::new(4, 10);
    for i in 0..20u64 {
        ring.push(&Msg::new(i * 1_000_000, format!("message {i}").as_bytes()));
    }
    let mut memory = Memory::new();
    ring.write(&mut memory, &PrbLayout::linux_6_1());
    let tail = memory.alloc_ram(64 << 10);
    memory.write(tail, &[0x5a; 64 << 10]);
    let core = memory.build();
    let ram = read_core_headers(core.as_slice()).unwrap().loads[1];
    assert_eq!(ram.file_offset + ram.file_size, core.len() as u64);

    let (bytes, _) = dump_of(&core, 4096);
    let whole = Dump::open(bytes.as_slice()).unwrap();
    let cut_in = ram.file_offset + ram.file_size - (32 << 10);
    let frame = whole
        .frames()
        .iter()
        .find(|f| f.decompressed_end() > cut_in)
        .unwrap();
    let dump = Dump::open(&bytes[..frame.compressed_offset as usize + 5]).unwrap();
    let mut prefix = vec![0u8; dump.decompressed_size() as usize];
    let report = dump
        .decompress_to(
            |offset, data| {
                prefix[offset as usize..][..data.len()].copy_from_slice(data);
                Ok::<(), ()>(())
            },
            |_, _| {},
        )
        .unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(prefix.len() as u64, frame.decompressed_offset);

    let salvage = salvage_core(prefix.as_slice()).unwrap();
    let fates: Vec<SegmentFate> = salvage.segments.iter().map(|s| s.fate).collect();
    let new_size = frame.decompressed_offset - ram.file_offset;
    assert_eq!(fates, [SegmentFate::Kept, SegmentFate::Shrunk { new_size }]);
    let fixed = apply(&prefix, &salvage);
    let plain = crate::vmcore::Vmcore::open(core.as_slice()).unwrap();
    let salvaged = crate::vmcore::Vmcore::open(fixed.as_slice()).unwrap();
    assert_eq!(
        crate::printk::read_log(&salvaged).unwrap(),
        crate::printk::read_log(&plain).unwrap()
    );

    let dir = tempfile::tempdir().unwrap();
    let (original, recovered) = (dir.path().join("vmcore"), dir.path().join("salvaged"));
    std::fs::write(&original, &core).unwrap();
    std::fs::write(&recovered, &fixed).unwrap();
    match std::process::Command::new("readelf")
        .arg("-lW")
        .arg(&recovered)
        .output()
    {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            eprintln!("readelf is not installed: not checking with it");
        }
        Err(e) => panic!("cannot run readelf: {e}"),
        Ok(output) => {
            assert!(output.status.success());
            assert!(output.stderr.is_empty(), "{:?}", output.stderr);
            let listing = String::from_utf8_lossy(&output.stdout).into_owned();
            assert_eq!(listing.matches("  LOAD ").count(), 2, "{listing}");
            assert!(
                listing.contains(&format!("{new_size:#08x} {new_size:#08x}")),
                "{listing}"
            );
        }
    }
    let dmesg = |vmcore: &Path| {
        let out = vmcore.with_extension("dmesg");
        std::process::Command::new("makedumpfile")
            .arg("--dump-dmesg")
            .arg(vmcore)
            .arg(&out)
            .output()
            .map(|_| std::fs::read(&out).unwrap_or_default())
    };
    match (dmesg(&original), dmesg(&recovered)) {
        (Err(e), _) if e.kind() == io::ErrorKind::NotFound => {
            eprintln!("makedumpfile is not installed: not checking with it");
        }
        (Ok(expected), Ok(got)) => {
            assert!(!expected.is_empty(), "makedumpfile reads the original");
            assert_eq!(got, expected, "makedumpfile reads the salvaged core alike");
        }
        (a, b) => panic!("cannot run makedumpfile: {a:?} {b:?}"),
    }
}

//! Tests of the stream: dumps of synthetic inputs and of plans of pieces
//! decompress to their input with stock zstd and have a consistent seek
//! table, threads write the same bytes as one thread, an input that cannot
//! be mapped is read with pread, and bad frame sizes and failed writes are
//! reported.

use super::*;
use crate::plan::Piece;
use crate::seekable::{FOOTER_BYTES, SEEKABLE_MAGIC};

/// Like a vmcore: zero chunks, text, and zero pages inside data.
fn sample_input(len: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    (0..len)
        .map(|i| {
            let page = i / 4096;
            if page % 3 == 0 || (300..600).contains(&page) {
                0
            } else {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                b'a' + (state % 26) as u8
            }
        })
        .collect()
}

fn compress(data: &[u8], options: &StreamOptions) -> (StreamSummary, Vec<u8>) {
    let mut file = tempfile::tempfile().unwrap();
    file.write_all(data).unwrap();
    compress_file(&file, data.len() as u64, Vec::new(), options, |_| {}).unwrap()
}

/// The seek table's entries, read back by hand from the end.
fn table_entries(dump: &[u8]) -> Vec<(u32, u32, u32)> {
    let footer = &dump[dump.len() - FOOTER_BYTES..];
    assert_eq!(&footer[5..], &SEEKABLE_MAGIC.to_le_bytes());
    let count = u32::from_le_bytes(footer[..4].try_into().unwrap()) as usize;
    let start = dump.len() - FOOTER_BYTES - count * 12;
    dump[start..dump.len() - FOOTER_BYTES]
        .chunks_exact(12)
        .map(|e| {
            let word = |i: usize| u32::from_le_bytes(e[i..i + 4].try_into().unwrap());
            (word(0), word(4), word(8))
        })
        .collect()
}

#[test]
fn frame_sizes_keep_the_table_bounded() {
    let cases: &[(u64, u64)] = &[
        (0, 1 << 20),
        (4096, 1 << 20),
        (2 << 30, 1 << 20),
        (128 << 30, 1 << 20),
        ((128 << 30) + 1, 2 << 20),
        (1 << 40, 8 << 20),
        (64 << 40, 64 << 20),
    ];
    for &(size, frame) in cases {
        assert_eq!(frame_bytes_for(size), frame, "size {size}");
        assert!(size.div_ceil(frame) <= MAX_FRAMES || frame == MAX_FRAME_BYTES);
    }
}

#[test]
fn dumps_are_standard_zstd_with_a_consistent_seek_table() {
    let frame = 64 << 10;
    for len in [0usize, 1, 4096, frame, frame + 17, 3 << 20] {
        let data = sample_input(len);
        for threads in [1, 2, 3] {
            let options = StreamOptions {
                level: 1,
                threads,
                frame_bytes: Some(frame as u64),
            };
            let (summary, dump) = compress(&data, &options);
            assert_eq!(summary.output_bytes, dump.len() as u64);
            assert_eq!(summary.xxh64, xxhash_rust::xxh64::xxh64(&data, 0));
            assert_eq!(summary.read_method, ReadMethod::Mmap);
            assert!(zstd::decode_all(&dump[..]).unwrap() == data, "len {len}");

            let entries = table_entries(&dump);
            assert_eq!(entries.len() as u64, summary.frames);
            assert_eq!(entries.len(), len.div_ceil(frame));
            let mut compressed_offset = 0usize;
            for (index, &(compressed, decompressed, checksum)) in entries.iter().enumerate() {
                let chunk = &data[index * frame..][..decompressed as usize];
                let frame_bytes = &dump[compressed_offset..][..compressed as usize];
                assert_eq!(zstd::decode_all(frame_bytes).unwrap(), chunk);
                assert_eq!(checksum, xxhash_rust::xxh64::xxh64(chunk, 0) as u32);
                compressed_offset += compressed as usize;
            }
            let zero_chunks = data.chunks(frame).filter(|c| is_zero(c)).count();
            assert_eq!(summary.zero_frames, zero_chunks as u64);
        }
    }
}

#[test]
fn threads_write_the_same_frames_as_one() {
    // Frames of a whole window and frames several to a window; zero
    // chunks, which threads finish at once, between frames of data, so
    // that results come back out of order.
    let mut data = sample_input(9 << 20);
    data[(6 << 20)..(8 << 20)].fill(0);
    for frame_bytes in [1 << 20, 256 << 10] {
        let options = |threads| StreamOptions {
            level: 3,
            threads,
            frame_bytes: Some(frame_bytes),
        };
        let (single_summary, single) = compress(&data, &options(1));
        for threads in [2, 3, 4] {
            let (summary, parallel) = compress(&data, &options(threads));
            assert_eq!(summary.threads, threads);
            assert_eq!(summary.xxh64, single_summary.xxh64);
            assert_eq!(summary.zero_frames, single_summary.zero_frames);
            // Frames are compressed the same way on any thread.
            assert!(
                single == parallel,
                "{threads} threads, frames of {frame_bytes}"
            );
            assert!(zstd::decode_all(&parallel[..]).unwrap() == data);
        }
    }
}

#[test]
fn plans_of_pieces_compress_to_their_content() {
    let data = sample_input(5 << 20);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("input");
    std::fs::write(&path, &data).unwrap();
    let file = File::open(&path).unwrap();
    // New headers, a page-aligned range (mapped), a range that is not
    // page-aligned (read), a run of zeros across frame boundaries, and
    // a range again: frames made of several pieces and of one.
    let header: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
    let plan = Plan::new(vec![
        Piece::Bytes(header.clone()),
        Piece::Copy {
            offset: 1 << 20,
            len: 2 << 20,
        },
        Piece::Copy {
            offset: 12345,
            len: 300_000,
        },
        Piece::Zeros(3 << 20),
        Piece::Copy {
            offset: 0,
            len: 1 << 20,
        },
    ]);
    let mut expected = header;
    expected.extend_from_slice(&data[1 << 20..3 << 20]);
    expected.extend_from_slice(&data[12345..12345 + 300_000]);
    expected.resize(expected.len() + (3 << 20), 0);
    expected.extend_from_slice(&data[..1 << 20]);
    assert_eq!(plan.size(), expected.len() as u64);
    let mut outputs = Vec::new();
    for threads in [1, 2, 3] {
        let options = StreamOptions {
            threads,
            frame_bytes: Some(256 << 10),
            ..StreamOptions::default()
        };
        let (summary, dump) = super::compress(&file, &plan, Vec::new(), &options, |_| {}).unwrap();
        assert!(
            zstd::decode_all(&dump[..]).unwrap() == expected,
            "{threads}"
        );
        assert_eq!(summary.input_bytes, expected.len() as u64);
        assert_eq!(summary.xxh64, xxhash_rust::xxh64::xxh64(&expected, 0));
        // The 3 MiB of zeros hold at least 11 whole 256 KiB frames.
        assert!(summary.zero_frames >= 11, "{}", summary.zero_frames);
        outputs.push(dump);
    }
    assert!(outputs.windows(2).all(|pair| pair[0] == pair[1]));
    // The whole plan is what compress_file writes.
    let options = StreamOptions::default();
    let (_, whole) = super::compress(
        &file,
        &Plan::whole(data.len() as u64),
        Vec::new(),
        &options,
        |_| {},
    )
    .unwrap();
    let (_, by_file) =
        compress_file(&file, data.len() as u64, Vec::new(), &options, |_| {}).unwrap();
    assert!(whole == by_file);
}

#[test]
fn zero_detection() {
    let cases: &[(&[u8], bool)] = &[
        (&[], true),
        (&[0; 63], true),
        (&[0; 4096], true),
        (&[1], false),
    ];
    for &(bytes, zero) in cases {
        assert_eq!(is_zero(bytes), zero, "{bytes:?}");
    }
    for position in [0, 7, 63, 64, 4095, 4100] {
        let mut bytes = vec![0u8; 4101];
        bytes[position] = 0x80;
        assert!(!is_zero(&bytes), "nonzero at {position}");
    }
}

#[test]
fn unmappable_input_falls_back_to_pread() {
    // procfs files cannot be mapped but can be read at an offset, like
    // the odd filesystem a host user might keep a vmcore on.
    let expected = std::fs::read("/proc/version").unwrap();
    let file = File::open("/proc/version").unwrap();
    for threads in [1, 2] {
        let options = StreamOptions {
            threads,
            ..StreamOptions::default()
        };
        let (summary, out) =
            compress_file(&file, expected.len() as u64, Vec::new(), &options, |_| {}).unwrap();
        assert_eq!(summary.read_method, ReadMethod::Pread);
        assert_eq!(zstd::decode_all(&out[..]).unwrap(), expected);
    }
}

#[test]
fn write_failures_report_how_far_they_got() {
    #[derive(Debug)]
    struct Full(usize);
    impl Write for Full {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.0 == 0 {
                return Err(io::Error::from_raw_os_error(28));
            }
            let n = buf.len().min(self.0);
            self.0 -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let data = sample_input(2 << 20);
    let mut file = tempfile::tempfile().unwrap();
    file.write_all(&data).unwrap();
    for threads in [1, 2] {
        let options = StreamOptions {
            level: 1,
            threads,
            frame_bytes: Some(64 << 10),
        };
        let error = compress_file(&file, data.len() as u64, Full(100_000), &options, |_| {})
            .expect_err("the sink is full");
        let StreamError::Write { written, source } = error else {
            panic!("expected a write error, got {error:?}");
        };
        assert!(written <= 100_000 && written > 50_000, "{written}");
        assert_eq!(source.raw_os_error(), Some(28));
    }
}

#[test]
fn bad_frame_sizes_are_refused() {
    let file = tempfile::tempfile().unwrap();
    for frame_bytes in [0, 1000, 4097, MAX_FRAME_BYTES + 4096] {
        let options = StreamOptions {
            frame_bytes: Some(frame_bytes),
            ..StreamOptions::default()
        };
        assert!(matches!(
            compress_file(&file, 0, Vec::new(), &options, |_| {}),
            Err(StreamError::FrameSize { .. })
        ));
    }
}

/// Leaves out fixed runs of the output, given in output offsets; the
/// `repeated` parts repeat memory held elsewhere.
struct FixedRuns {
    runs: Vec<ExcludedRun>,
    zero_pages: bool,
    repeated: Vec<std::ops::Range<u64>>,
}

impl Exclude for FixedRuns {
    fn exclude(&mut self, offset: u64, len: u64, runs: &mut Vec<ExcludedRun>) {
        for run in &self.runs {
            let from = run.start.max(offset);
            let to = run.end().min(offset + len);
            if from < to {
                runs.push(ExcludedRun {
                    start: from - offset,
                    len: to - from,
                    category: run.category,
                });
            }
        }
    }

    fn zero_pages(&self) -> bool {
        self.zero_pages
    }

    fn repeated(&mut self, offset: u64, len: u64, parts: &mut Vec<std::ops::Range<u64>>) {
        for part in &self.repeated {
            let from = part.start.max(offset);
            let to = part.end.min(offset + len);
            if from < to {
                parts.push(from - offset..to - offset);
            }
        }
    }
}

fn run(start: u64, len: u64, category: ExcludeCategory) -> ExcludedRun {
    ExcludedRun {
        start,
        len,
        category,
    }
}

/// Excluded bytes come out as zeros at their place, stock zstd reads the
/// dump, the hash is of what it gives, every frame's record says what was
/// left out of it, and threads write the same bytes as one thread.
#[test]
fn excluded_runs_are_zeros_recorded_after_their_frames() {
    use crate::seekable::reader::Dump;
    use ExcludeCategory::*;
    let page = 4096u64;
    let frame = 64 << 10;
    let data = sample_input(3 << 20);
    let runs = vec![
        // Part of a frame, across a frame boundary, and a whole frame.
        run(5 * page, 3 * page, Cache),
        run(frame - page, 2 * page, Free),
        run(4 * frame, frame, User),
        // Pages whose data is zero anyway, and a whole window of them.
        run(300 * page, 20 * page, Hwpoison),
    ];
    for zero_pages in [false, true] {
        let mut dumps = Vec::new();
        for threads in [1, 2, 3] {
            let options = StreamOptions {
                level: 1,
                threads,
                frame_bytes: Some(frame),
            };
            let mut file = tempfile::tempfile().unwrap();
            file.write_all(&data).unwrap();
            let mut exclude = FixedRuns {
                runs: runs.clone(),
                zero_pages,
                repeated: Vec::new(),
            };
            let (summary, dump) = compress_excluding(
                &file,
                &Plan::whole(data.len() as u64),
                Vec::new(),
                &options,
                &mut exclude,
                |_| {},
            )
            .unwrap();
            let mut expected = data.clone();
            for run in &runs {
                expected[run.start as usize..run.end() as usize].fill(0);
            }
            let decoded = zstd::decode_all(&dump[..]).unwrap();
            assert!(decoded == expected, "threads {threads}");
            assert_eq!(summary.xxh64, xxhash_rust::xxh64::xxh64(&expected, 0));
            assert_eq!(summary.excluded.pages(Cache), 3);
            assert_eq!(summary.excluded.pages(Free), 2);
            assert_eq!(summary.excluded.pages(User), 16);
            assert_eq!(summary.excluded.pages(Hwpoison), 20);
            let zero_pages_kept = expected
                .chunks(page as usize)
                .enumerate()
                .filter(|(index, bytes)| {
                    let at = *index as u64 * page;
                    !runs.iter().any(|r| (r.start..r.end()).contains(&at))
                        && bytes.iter().all(|&b| b == 0)
                })
                .count() as u64;
            assert_eq!(
                summary.excluded.pages(Zero),
                if zero_pages { zero_pages_kept } else { 0 }
            );

            // The reader finds each frame's record, and the runs of all
            // records are those asked for, with the zero pages.
            let reader = Dump::open(dump.clone()).unwrap();
            assert!(reader.verify(|_, _| {}).is_ok());
            let mut found = Vec::new();
            for (index, info) in reader.frames().iter().enumerate() {
                for r in reader.exclusions(index).unwrap() {
                    found.push(run(info.decompressed_offset + r.start, r.len, r.category));
                }
            }
            let not_zero: Vec<ExcludedRun> = found
                .iter()
                .copied()
                .filter(|r| r.category != Zero)
                .collect();
            let mut asked = runs.clone();
            asked.sort_by_key(|r| r.start);
            let mut merged: Vec<ExcludedRun> = Vec::new();
            for r in not_zero {
                match merged.last_mut() {
                    Some(last) if last.end() == r.start && last.category == r.category => {
                        last.len += r.len
                    }
                    _ => merged.push(r),
                }
            }
            assert_eq!(merged, asked);
            let zero_found: u64 = found
                .iter()
                .filter(|r| r.category == Zero)
                .map(|r| r.len / page)
                .sum();
            assert_eq!(zero_found, summary.excluded.pages(Zero));
            dumps.push(dump);
        }
        assert!(dumps.iter().all(|dump| *dump == dumps[0]));
    }
}

/// Bytes left out are never read: here they lie past the end of the
/// file, where touching the mapping would kill the test with SIGBUS.
#[test]
fn excluded_bytes_are_never_read() {
    let page = 4096u64;
    let frame = 64 << 10;
    let data = sample_input(4 * frame as usize);
    let mut file = tempfile::tempfile().unwrap();
    file.write_all(&data).unwrap();
    // The plan claims 3 frames and 2 pages more than the file has.
    let claimed = data.len() as u64 + 3 * frame + 2 * page;
    let options = StreamOptions {
        level: 1,
        threads: 1,
        frame_bytes: Some(frame),
    };
    for threads in [1, 2] {
        let mut exclude = FixedRuns {
            runs: vec![run(
                data.len() as u64,
                claimed - data.len() as u64,
                ExcludeCategory::Hwpoison,
            )],
            zero_pages: false,
            repeated: Vec::new(),
        };
        let (summary, dump) = compress_excluding(
            &file,
            &Plan::whole(claimed),
            Vec::new(),
            &StreamOptions { threads, ..options },
            &mut exclude,
            |_| {},
        )
        .unwrap();
        let decoded = zstd::decode_all(&dump[..]).unwrap();
        assert_eq!(decoded.len() as u64, claimed);
        assert!(decoded[..data.len()] == data[..]);
        assert_eq!(
            summary.excluded.pages(ExcludeCategory::Hwpoison),
            3 * 16 + 2
        );
    }
}

/// Runs in a repeated part are left out (zeros) but not counted: the frame
/// counts where the memory is held the other time.
#[test]
fn runs_in_repeated_parts_are_left_out_uncounted() {
    let page = 4096u64;
    let frame = 64 << 10;
    let data = sample_input(4 * frame as usize);
    let mut file = tempfile::tempfile().unwrap();
    file.write_all(&data).unwrap();
    for threads in [1, 2] {
        let mut exclude = FixedRuns {
            runs: vec![run(page, 4 * page, ExcludeCategory::User)],
            zero_pages: false,
            repeated: std::iter::once(0..3 * page).collect(),
        };
        let (summary, dump) = compress_excluding(
            &file,
            &Plan::whole(data.len() as u64),
            Vec::new(),
            &StreamOptions {
                level: 1,
                threads,
                frame_bytes: Some(frame),
            },
            &mut exclude,
            |_| {},
        )
        .unwrap();
        let decoded = zstd::decode_all(&dump[..]).unwrap();
        assert!(decoded[page as usize..5 * page as usize]
            .iter()
            .all(|&b| b == 0));
        assert_eq!(
            summary.excluded.pages(ExcludeCategory::User),
            2,
            "threads {threads}"
        );
    }
}

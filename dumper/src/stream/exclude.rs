//! Leaving parts of the input out of a dump: the dump level's excluded
//! pages, written as zeros at their place without being read, and pages of
//! zeros, counted and recorded when the level says so.

use std::ops::Range;

use crate::filter::ExcludeCategory;
use crate::seekable::exclusions::ExcludedRun;

use super::is_zero;

/// The page size that zero pages are counted in: x86_64's.
const PAGE_BYTES: u64 = 4096;

/// What a stream leaves out, asked window by window in output order.
pub trait Exclude {
    /// Appends to `runs` the parts of the output's `len` bytes at `offset`
    /// to leave out, in order and counted from `offset`.
    fn exclude(&mut self, offset: u64, len: u64, runs: &mut Vec<ExcludedRun>);

    /// Whether pages of zeros count as left out (dump level bit 1). They
    /// are zeros in the dump either way; this decides whether they are
    /// counted and recorded as [`ExcludeCategory::Zero`].
    fn zero_pages(&self) -> bool;

    /// Appends to `parts` the parts of the output's `len` bytes at `offset`
    /// (counted from `offset`) that repeat memory the output holds
    /// elsewhere too, whose zero pages are neither counted nor recorded
    /// there: a page frame counts once, as in makedumpfile's figures.
    fn repeated(&mut self, _offset: u64, _len: u64, _parts: &mut Vec<Range<u64>>) {}
}

/// Leaves nothing out: the whole input, byte for byte.
pub struct KeepAll;

impl Exclude for KeepAll {
    fn exclude(&mut self, _offset: u64, _len: u64, _runs: &mut Vec<ExcludedRun>) {}

    fn zero_pages(&self) -> bool {
        false
    }
}

/// The runs of `window_runs` (counted from the window's start) that fall
/// in the chunk of `len` bytes at `start` of the window, counted from the
/// chunk's start. Runs that overlap an earlier one or reach past the
/// window are cut to fit: a wrong run must not cost the dump.
pub(super) fn runs_in_chunk(window_runs: &[ExcludedRun], start: u64, len: u64) -> Vec<ExcludedRun> {
    let end = start + len;
    let mut runs: Vec<ExcludedRun> = Vec::new();
    for run in window_runs {
        let from = run
            .start
            .max(start)
            .max(runs.last().map_or(0, |r| r.end() + start));
        let to = run.end().min(end);
        if from < to {
            runs.push(ExcludedRun {
                start: from - start,
                len: to - from,
                category: run.category,
            });
        }
    }
    runs
}

/// Whether a chunk is left out whole.
pub(super) fn covers(runs: &[ExcludedRun], len: u64) -> bool {
    runs.iter().map(|run| run.len).sum::<u64>() == len
}

/// The kept parts of a chunk of `len` bytes from which `runs` are left out.
pub(super) fn kept(runs: &[ExcludedRun], len: u64) -> impl Iterator<Item = (u64, u64)> + '_ {
    let mut at = 0;
    runs.iter()
        .map(|run| (run.start, run.end()))
        .chain(std::iter::once((len, len)))
        .filter_map(move |(start, end)| {
            let part = (at, start);
            at = end;
            (part.0 < part.1).then_some(part)
        })
}

/// The parts of `window_parts` (counted from the window's start) in the
/// chunk of `len` bytes at `start`, counted from the chunk's start.
pub(super) fn parts_in_chunk(window_parts: &[Range<u64>], start: u64, len: u64) -> Vec<Range<u64>> {
    window_parts
        .iter()
        .filter_map(|part| {
            let from = part.start.max(start);
            let to = part.end.min(start + len);
            (from < to).then(|| from - start..to - start)
        })
        .collect()
}

/// Adds to `runs` (those of `chunk`, which starts at a page boundary) the
/// whole kept pages of `chunk` that are all zero, outside the `repeated`
/// parts, merged with their neighbours of the same category. Returns
/// whether every kept byte is zero.
pub(super) fn add_zero_pages(
    chunk: &[u8],
    runs: &mut Vec<ExcludedRun>,
    record: bool,
    repeated: &[Range<u64>],
) -> bool {
    let len = chunk.len() as u64;
    let kept_parts: Vec<(u64, u64)> = kept(runs, len).collect();
    let all_zero = kept_parts
        .iter()
        .all(|&(from, to)| is_zero(&chunk[from as usize..to as usize]));
    if !record {
        return all_zero;
    }
    let mut zeros = Vec::new();
    for (from, to) in kept_parts {
        let mut page = from.next_multiple_of(PAGE_BYTES);
        while page + PAGE_BYTES <= to {
            let counted = !repeated
                .iter()
                .any(|part| part.start < page + PAGE_BYTES && page < part.end);
            if counted && (all_zero || is_zero(&chunk[page as usize..(page + PAGE_BYTES) as usize]))
            {
                push_merged(&mut zeros, page, PAGE_BYTES, ExcludeCategory::Zero);
            }
            page += PAGE_BYTES;
        }
    }
    if !zeros.is_empty() {
        let mut merged = Vec::with_capacity(runs.len() + zeros.len());
        let mut theirs = runs.iter().peekable();
        let mut ours = zeros.iter().peekable();
        loop {
            let next = match (theirs.peek(), ours.peek()) {
                (Some(a), Some(b)) if a.start <= b.start => theirs.next(),
                (Some(_), Some(_)) | (None, Some(_)) => ours.next(),
                (Some(_), None) => theirs.next(),
                (None, None) => break,
            };
            let run = *next.expect("one side had a run");
            push_merged(&mut merged, run.start, run.len, run.category);
        }
        *runs = merged;
    }
    all_zero
}

/// Appends a run, or lengthens the last one if it ends where this starts
/// and has its category.
fn push_merged(runs: &mut Vec<ExcludedRun>, start: u64, len: u64, category: ExcludeCategory) {
    if let Some(last) = runs.last_mut() {
        if last.end() == start && last.category == category {
            last.len += len;
            return;
        }
    }
    runs.push(ExcludedRun {
        start,
        len,
        category,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use ExcludeCategory::*;

    fn run(start: u64, len: u64, category: ExcludeCategory) -> ExcludedRun {
        ExcludedRun {
            start,
            len,
            category,
        }
    }

    #[test]
    fn window_runs_are_cut_at_chunks() {
        let window = [
            run(0, 100, Free),
            run(4000, 200, User),
            run(4150, 10, Cache),
        ];
        let cases: &[(u64, u64, &[ExcludedRun])] = &[
            (0, 4096, &[run(0, 100, Free), run(4000, 96, User)]),
            (4096, 4096, &[run(0, 104, User)]),
            (8192, 4096, &[]),
        ];
        for (start, len, expected) in cases {
            assert_eq!(runs_in_chunk(&window, *start, *len), *expected, "{start}");
        }
    }

    #[test]
    fn kept_parts_are_what_runs_leave() {
        let runs = [run(0, 10, Free), run(20, 5, User), run(30, 70, Cache)];
        assert_eq!(kept(&runs, 100).collect::<Vec<_>>(), [(10, 20), (25, 30)]);
        assert_eq!(kept(&[], 7).collect::<Vec<_>>(), [(0, 7)]);
        assert!(covers(&runs[2..], 70) && !covers(&runs, 100));
    }

    #[test]
    fn zero_pages_join_the_runs_in_order() {
        let mut chunk = vec![0u8; 5 * 4096];
        chunk[4096 + 7] = 1;
        chunk[4 * 4096] = 1;
        let mut runs = vec![run(2 * 4096, 4096, User)];
        assert!(!add_zero_pages(&chunk, &mut runs, true, &[]));
        assert_eq!(
            runs,
            [
                run(0, 4096, Zero),
                run(8192, 4096, User),
                run(12288, 4096, Zero)
            ]
        );
        let mut runs = vec![run(4096, 4096, Free), run(4 * 4096, 4096, Free)];
        assert!(add_zero_pages(&chunk, &mut runs, false, &[]));
        assert_eq!(runs.len(), 2);
        let mut repeated_runs = runs.clone();
        assert!(add_zero_pages(
            &chunk,
            &mut repeated_runs,
            true,
            std::slice::from_ref(&(2 * 4096 + 5..4 * 4096))
        ));
        assert_eq!(
            repeated_runs,
            [
                run(0, 4096, Zero),
                run(4096, 4096, Free),
                run(16384, 4096, Free)
            ]
        );
        let in_chunk = parts_in_chunk(&[10..20, 4000..5000], 4096, 4096);
        assert_eq!(in_chunk.len(), 1);
        assert_eq!(in_chunk[0], 0..904);
        assert!(add_zero_pages(&chunk, &mut runs, true, &[]));
        assert_eq!(
            runs,
            [
                run(0, 4096, Zero),
                run(4096, 4096, Free),
                run(8192, 8192, Zero),
                run(16384, 4096, Free)
            ]
        );
    }
}

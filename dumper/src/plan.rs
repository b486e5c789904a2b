//! What a dump holds, as a list of pieces of its uncompressed content: bytes
//! made by lifeboat (new ELF headers), ranges copied from the vmcore, and
//! runs of zeros (pages a dump level leaves out). The stream compresses
//! whatever a plan describes; [`Plan::whole`] is the vmcore as it is, and
//! dump levels make other plans.

/// One piece of a dump's uncompressed content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    /// Bytes to emit as they are.
    Bytes(Vec<u8>),
    /// `len` bytes of the input from `offset`.
    Copy { offset: u64, len: u64 },
    /// `len` zero bytes.
    Zeros(u64),
}

impl Piece {
    pub fn len(&self) -> u64 {
        match self {
            Piece::Bytes(bytes) => bytes.len() as u64,
            Piece::Copy { len, .. } | Piece::Zeros(len) => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The pieces of a dump, in order, with where each starts in the output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pieces: Vec<Piece>,
    /// The output offset of each piece; one more entry, the total size.
    starts: Vec<u64>,
}

/// A range of the output that lies within one piece.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span<'a> {
    pub piece: &'a Piece,
    /// Where the range starts, counted from the piece's start.
    pub offset_in_piece: u64,
    pub len: u64,
}

impl Plan {
    /// A plan of `pieces`; empty pieces are dropped.
    pub fn new(pieces: Vec<Piece>) -> Plan {
        let pieces: Vec<Piece> = pieces.into_iter().filter(|p| !p.is_empty()).collect();
        let mut starts = Vec::with_capacity(pieces.len() + 1);
        let mut at = 0u64;
        for piece in &pieces {
            starts.push(at);
            at += piece.len();
        }
        starts.push(at);
        Plan { pieces, starts }
    }

    /// The whole input of `size` bytes, as it is.
    pub fn whole(size: u64) -> Plan {
        Plan::new(vec![Piece::Copy {
            offset: 0,
            len: size,
        }])
    }

    /// The size of the output.
    pub fn size(&self) -> u64 {
        *self.starts.last().expect("starts has the total")
    }

    pub fn pieces(&self) -> &[Piece] {
        &self.pieces
    }

    /// The spans of pieces that make up `len` bytes of output from
    /// `offset`, in order; shorter than asked at the end of the plan.
    pub fn spans(&self, offset: u64, len: u64) -> impl Iterator<Item = Span<'_>> + '_ {
        let end = offset.saturating_add(len).min(self.size());
        // The piece holding `offset`: the last one starting at or before it.
        let first = self.starts[..self.pieces.len()].partition_point(|&start| start <= offset);
        let first = first.saturating_sub(1);
        self.pieces[first..]
            .iter()
            .zip(&self.starts[first..])
            .take_while(move |(_, &start)| start < end)
            .filter_map(move |(piece, &start)| {
                let from = offset.max(start);
                let to = end.min(start + piece.len());
                (from < to).then(|| Span {
                    piece,
                    offset_in_piece: from - start,
                    len: to - from,
                })
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan::new(vec![
            Piece::Bytes(vec![1, 2, 3]),
            Piece::Zeros(0),
            Piece::Copy {
                offset: 4096,
                len: 10,
            },
            Piece::Zeros(5),
        ])
    }

    #[test]
    fn a_plan_knows_its_size_and_drops_empty_pieces() {
        assert_eq!(plan().size(), 18);
        assert_eq!(plan().pieces().len(), 3);
        assert_eq!(Plan::whole(1 << 30).size(), 1 << 30);
        assert_eq!(Plan::whole(0).size(), 0);
        assert!(Plan::whole(0).pieces().is_empty());
    }

    /// (piece index, offset in piece, len)
    type SpanOf = (usize, u64, u64);

    #[test]
    fn spans_cover_exactly_the_range_asked() {
        let plan = plan();
        // (offset, len, expected spans)
        let cases: &[(u64, u64, &[SpanOf])] = &[
            (0, 18, &[(0, 0, 3), (1, 0, 10), (2, 0, 5)]),
            (0, 2, &[(0, 0, 2)]),
            (2, 3, &[(0, 2, 1), (1, 0, 2)]),
            (3, 10, &[(1, 0, 10)]),
            (5, 100, &[(1, 2, 8), (2, 0, 5)]),
            (17, 1, &[(2, 4, 1)]),
            (18, 5, &[]),
            (40, 5, &[]),
            (4, 0, &[]),
        ];
        for (offset, len, want) in cases {
            let got: Vec<SpanOf> = plan
                .spans(*offset, *len)
                .map(|span| {
                    let index = plan
                        .pieces()
                        .iter()
                        .position(|p| std::ptr::eq(p, span.piece))
                        .unwrap();
                    (index, span.offset_in_piece, span.len)
                })
                .collect();
            assert_eq!(got, *want, "{offset}+{len}");
        }
    }
}

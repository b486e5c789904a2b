//! The one way lifeboat reads fields out of byte buffers: a checked reader
//! whose every read either returns the field or says that it does not fit.
//!
//! The buffers come from a crashed kernel's memory, from a vmcore's headers,
//! from a dump that may be cut short, or from whatever disks the machine
//! has. PID 1 is built with `panic = "abort"`, so one slice index past the
//! end of such a buffer would end the capture for every target; here a bad
//! offset is an [`OutOfBounds`] error, which each parser turns into its own
//! error (or, for a device probe, into "not this filesystem").
//!
//! Offsets and widths are checked with checked arithmetic, so an offset
//! near `usize::MAX` is an error too, never an overflow.

use thiserror::Error;

/// A read that does not fit in its buffer: `width` bytes at `offset` of a
/// buffer of `len` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error("{width} bytes at offset {offset:#x} do not fit in a buffer of {len} bytes")]
pub struct OutOfBounds {
    pub offset: usize,
    pub width: usize,
    pub len: usize,
}

/// A byte buffer read by offset: little-endian (and one big-endian) integer
/// fields, fixed-size arrays and sub-slices, each checked against the
/// buffer's length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bytes<'a> {
    buf: &'a [u8],
}

impl<'a> From<&'a [u8]> for Bytes<'a> {
    fn from(buf: &'a [u8]) -> Self {
        Bytes::new(buf)
    }
}

impl<'a> Bytes<'a> {
    pub const fn new(buf: &'a [u8]) -> Self {
        Bytes { buf }
    }

    pub const fn len(&self) -> usize {
        self.buf.len()
    }

    pub const fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The whole buffer.
    pub const fn as_slice(&self) -> &'a [u8] {
        self.buf
    }

    fn out_of_bounds(&self, offset: usize, width: usize) -> OutOfBounds {
        OutOfBounds {
            offset,
            width,
            len: self.buf.len(),
        }
    }

    /// The `len` bytes at `at`.
    pub fn slice(&self, at: usize, len: usize) -> Result<&'a [u8], OutOfBounds> {
        at.checked_add(len)
            .and_then(|end| self.buf.get(at..end))
            .ok_or_else(|| self.out_of_bounds(at, len))
    }

    /// The `len` bytes at `at`, as a reader of their own (offsets relative
    /// to `at`).
    pub fn sub(&self, at: usize, len: usize) -> Result<Bytes<'a>, OutOfBounds> {
        self.slice(at, len).map(Bytes::new)
    }

    /// Everything from `at` to the end, as a reader of its own; empty when
    /// `at` is the length.
    pub fn tail(&self, at: usize) -> Result<Bytes<'a>, OutOfBounds> {
        self.buf
            .get(at..)
            .map(Bytes::new)
            .ok_or_else(|| self.out_of_bounds(at, 0))
    }

    /// A copy of the `N` bytes at `at`.
    pub fn array<const N: usize>(&self, at: usize) -> Result<[u8; N], OutOfBounds> {
        self.buf
            .get(at..)
            .and_then(<[u8]>::first_chunk::<N>)
            .copied()
            .ok_or_else(|| self.out_of_bounds(at, N))
    }

    pub fn u8(&self, at: usize) -> Result<u8, OutOfBounds> {
        self.array::<1>(at).map(|[byte]| byte)
    }

    pub fn u16_le(&self, at: usize) -> Result<u16, OutOfBounds> {
        self.array(at).map(u16::from_le_bytes)
    }

    pub fn u32_le(&self, at: usize) -> Result<u32, OutOfBounds> {
        self.array(at).map(u32::from_le_bytes)
    }

    pub fn u64_le(&self, at: usize) -> Result<u64, OutOfBounds> {
        self.array(at).map(u64::from_le_bytes)
    }

    /// xfs is the one big-endian format read.
    pub fn u32_be(&self, at: usize) -> Result<u32, OutOfBounds> {
        self.array(at).map(u32::from_be_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATA: [u8; 10] = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a];

    /// Each read at offsets from 0 past the end of a 10-byte buffer: the
    /// value where the field fits, else the error naming offset, width and
    /// length.
    #[test]
    fn reads_fit_or_fail_with_their_bounds() {
        type Read = fn(&Bytes, usize) -> Result<u64, OutOfBounds>;
        let reads: &[(&str, usize, Read)] = &[
            ("u8", 1, |b, at| b.u8(at).map(u64::from)),
            ("u16_le", 2, |b, at| b.u16_le(at).map(u64::from)),
            ("u32_le", 4, |b, at| b.u32_le(at).map(u64::from)),
            ("u32_be", 4, |b, at| b.u32_be(at).map(u64::from)),
            ("u64_le", 8, |b, at| b.u64_le(at)),
            ("array::<3>", 3, |b, at| {
                b.array::<3>(at)
                    .map(|a| u64::from(a[0]) << 16 | u64::from(a[1]) << 8 | u64::from(a[2]))
            }),
            ("slice(at, 2)", 2, |b, at| {
                b.slice(at, 2)
                    .map(|s| u64::from(s[0]) << 8 | u64::from(s[1]))
            }),
        ];
        let bytes = Bytes::new(&DATA);
        for (name, width, read) in reads {
            for at in 0..DATA.len() + 3 {
                let got = read(&bytes, at);
                if at + width <= DATA.len() {
                    let field = &DATA[at..at + width];
                    let expected = match *name {
                        "u16_le" | "u32_le" | "u64_le" => field
                            .iter()
                            .rev()
                            .fold(0u64, |acc, &b| acc << 8 | u64::from(b)),
                        _ => field.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b)),
                    };
                    assert_eq!(got, Ok(expected), "{name} at {at}");
                } else {
                    let error = OutOfBounds {
                        offset: at,
                        width: *width,
                        len: DATA.len(),
                    };
                    assert_eq!(got, Err(error), "{name} at {at}");
                }
            }
        }
    }

    #[test]
    fn huge_offsets_are_errors_not_overflows() {
        let bytes = Bytes::new(&DATA);
        for at in [usize::MAX, usize::MAX - 1, usize::MAX - 7] {
            assert!(bytes.u64_le(at).is_err());
            assert!(bytes.u8(at).is_err());
            assert!(bytes.slice(at, 8).is_err());
            assert!(bytes.tail(at).is_err());
        }
        assert!(bytes.slice(1, usize::MAX).is_err());
    }

    #[test]
    fn sub_readers_count_from_their_start() {
        let bytes = Bytes::new(&DATA);
        let sub = bytes.sub(4, 4).unwrap();
        assert_eq!(sub.as_slice(), &DATA[4..8]);
        assert_eq!(sub.u16_le(2), Ok(0x0807));
        assert_eq!(
            sub.u16_le(3),
            Err(OutOfBounds {
                offset: 3,
                width: 2,
                len: 4
            })
        );
        assert_eq!(bytes.tail(8).unwrap().as_slice(), &DATA[8..]);
        assert!(bytes.tail(10).unwrap().is_empty());
        assert_eq!(
            bytes.tail(11),
            Err(OutOfBounds {
                offset: 11,
                width: 0,
                len: 10
            })
        );
        // An empty slice at the very end fits; one past it does not.
        assert_eq!(bytes.slice(10, 0), Ok(&[][..]));
        assert!(bytes.slice(11, 0).is_err());
    }

    #[test]
    fn the_error_says_where_and_how_much() {
        let error = Bytes::new(&DATA).u64_le(0x28).unwrap_err();
        assert_eq!(
            error.to_string(),
            "8 bytes at offset 0x28 do not fit in a buffer of 10 bytes"
        );
    }
}

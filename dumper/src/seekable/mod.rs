//! The zstd seekable format (facebook/zstd `contrib/seekable_format`), as
//! lifeboat writes dumps in it.
//!
//! A dump is a sequence of independent, ordinary zstd frames, each holding
//! one chunk of the vmcore, followed by one skippable frame holding the seek
//! table. Stock `zstd -d` decompresses the frames one after another and
//! skips the table, so it gives back the vmcore byte for byte; a reader that
//! knows the table can jump to any offset, and a dump cut short is
//! recoverable up to its last complete frame.
//!
//! Layout of the seek table frame (all integers little-endian):
//!
//! ```text
//! u32 SKIPPABLE_MAGIC (0x184D2A5E)   u32 size of what follows
//! per frame: u32 compressed size, u32 decompressed size, u32 checksum
//!            (the low 32 bits of XXH64, seed 0, of the decompressed frame)
//! footer:    u32 number of frames, u8 descriptor (bit 7: checksums present),
//!            u32 SEEKABLE_MAGIC (0x8F92EAB1)
//! ```
//!
//! lifeboat always writes checksums. Frames of all-zero chunks are written
//! directly, without the compressor: a frame header, RLE blocks of zero
//! bytes, and the checksum (see [`zero_frame`]).

use std::io::{self, Write};

pub mod exclusions;
pub mod reader;

/// Magic number of an ordinary zstd frame.
pub const ZSTD_MAGIC: u32 = 0xFD2F_B528;
/// Magic number of the skippable frame holding the seek table.
pub const SKIPPABLE_MAGIC: u32 = 0x184D_2A5E;
/// Magic number ending the seek table footer.
pub const SEEKABLE_MAGIC: u32 = 0x8F92_EAB1;
/// Size of the footer: frame count, descriptor, magic.
pub const FOOTER_BYTES: usize = 9;
/// Size of one seek table entry with a checksum.
pub const ENTRY_BYTES: usize = 12;
/// Descriptor bit saying every entry carries a checksum.
pub const CHECKSUM_FLAG: u8 = 0x80;
/// The format's limits: at most 2^27 frames, each at most 1 GiB.
pub const MAX_FRAMES: u64 = 1 << 27;
pub const MAX_FRAME_BYTES: u64 = 1 << 30;

/// One entry of the seek table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameEntry {
    pub compressed_size: u32,
    pub decompressed_size: u32,
    pub checksum: u32,
}

/// The seek table as written: one entry per frame, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeekTable {
    pub entries: Vec<FrameEntry>,
}

impl SeekTable {
    /// Size of the whole skippable frame holding this table.
    pub fn encoded_len(&self) -> usize {
        8 + self.entries.len() * ENTRY_BYTES + FOOTER_BYTES
    }

    /// Writes the table as a skippable frame.
    pub fn write_to(&self, out: &mut impl Write) -> io::Result<()> {
        let body = self.entries.len() * ENTRY_BYTES + FOOTER_BYTES;
        let body = u32::try_from(body)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "seek table too large"))?;
        let count = u32::try_from(self.entries.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "too many frames"))?;
        let mut buffer = Vec::with_capacity(64 << 10);
        buffer.extend_from_slice(&SKIPPABLE_MAGIC.to_le_bytes());
        buffer.extend_from_slice(&body.to_le_bytes());
        for entry in &self.entries {
            buffer.extend_from_slice(&entry.compressed_size.to_le_bytes());
            buffer.extend_from_slice(&entry.decompressed_size.to_le_bytes());
            buffer.extend_from_slice(&entry.checksum.to_le_bytes());
            if buffer.len() >= 60 << 10 {
                out.write_all(&buffer)?;
                buffer.clear();
            }
        }
        buffer.extend_from_slice(&count.to_le_bytes());
        buffer.push(CHECKSUM_FLAG);
        buffer.extend_from_slice(&SEEKABLE_MAGIC.to_le_bytes());
        out.write_all(&buffer)
    }
}

/// Largest block zstd allows (and the window of our zero frames).
const BLOCK_MAX: u64 = 128 << 10;

/// A complete zstd frame that decompresses to `len` zero bytes, with content
/// size and checksum, made of RLE blocks: decoders need no more than a
/// 128 KiB window for it, and writing it costs nothing. `checksum` is the
/// low 32 bits of XXH64 of `len` zero bytes (see [`zero_checksum`]).
pub fn zero_frame(len: u64, checksum: u32) -> Vec<u8> {
    let mut frame = Vec::with_capacity(18 + 4 * len.div_ceil(BLOCK_MAX) as usize);
    frame.extend_from_slice(&ZSTD_MAGIC.to_le_bytes());
    // Frame header descriptor: content size field of 8 bytes (flag 3) or 4
    // bytes (flag 2), not single-segment (so a window descriptor follows),
    // content checksum present.
    let (fcs_flag, fcs_len) = if len > u64::from(u32::MAX) {
        (3u8, 8)
    } else {
        (2u8, 4)
    };
    frame.push((fcs_flag << 6) | 0x04);
    // Window descriptor: exponent 7 → 2^(10+7) = 128 KiB, mantissa 0.
    frame.push(7 << 3);
    frame.extend_from_slice(&len.to_le_bytes()[..fcs_len]);
    let mut left = len;
    loop {
        let block = left.min(BLOCK_MAX);
        left -= block;
        let last = u32::from(left == 0);
        // Block header: bit 0 last block, bits 1-2 type (1 = RLE), bits 3-23
        // the regenerated size; the block's content is the one byte repeated.
        let header = last | (1 << 1) | ((block as u32) << 3);
        frame.extend_from_slice(&header.to_le_bytes()[..3]);
        frame.push(0);
        if left == 0 {
            break;
        }
    }
    frame.extend_from_slice(&checksum.to_le_bytes());
    frame
}

/// The low 32 bits of XXH64 (seed 0) of `len` zero bytes.
pub fn zero_checksum(len: u64) -> u32 {
    let mut hasher = crate::xxh64::Xxh64::new(0);
    hasher.update_zeros(len);
    hasher.digest() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_frames_decompress_to_zeros_with_stock_zstd_rules() {
        for len in [0u64, 1, 4096, 128 << 10, (128 << 10) + 1, 1 << 20, 3 << 20] {
            let frame = zero_frame(len, zero_checksum(len));
            let decoded = zstd::decode_all(&frame[..]).unwrap();
            assert_eq!(decoded.len() as u64, len);
            assert!(decoded.iter().all(|&b| b == 0));
            assert!(matches!(
                zstd::zstd_safe::get_frame_content_size(&frame),
                Ok(Some(size)) if size == len
            ));
        }
        // A wrong checksum must be caught by a standard decoder.
        let frame = zero_frame(4096, 0xdead_beef);
        assert!(zstd::decode_all(&frame[..]).is_err());
    }

    #[test]
    fn seek_table_layout() {
        let table = SeekTable {
            entries: vec![
                FrameEntry {
                    compressed_size: 10,
                    decompressed_size: 20,
                    checksum: 0x0403_0201,
                },
                FrameEntry {
                    compressed_size: 1,
                    decompressed_size: 2,
                    checksum: 3,
                },
            ],
        };
        let mut bytes = Vec::new();
        table.write_to(&mut bytes).unwrap();
        assert_eq!(bytes.len(), table.encoded_len());
        assert_eq!(&bytes[..4], &SKIPPABLE_MAGIC.to_le_bytes());
        assert_eq!(
            u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize,
            bytes.len() - 8
        );
        assert_eq!(&bytes[8..12], &10u32.to_le_bytes());
        assert_eq!(&bytes[16..20], &[1, 2, 3, 4]);
        let footer = &bytes[bytes.len() - FOOTER_BYTES..];
        assert_eq!(&footer[..4], &2u32.to_le_bytes());
        assert_eq!(footer[4], CHECKSUM_FLAG);
        assert_eq!(&footer[5..], &SEEKABLE_MAGIC.to_le_bytes());
        // Stock zstd skips it: decoding a table alone gives nothing.
        assert_eq!(zstd::decode_all(&bytes[..]).unwrap(), Vec::<u8>::new());
    }
}

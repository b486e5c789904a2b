//! XXH64, streaming, with a fast path for runs of zero bytes.
//!
//! A capture hashes the whole vmcore in order (the digest that
//! `xxhsum -H64` checks), and that one pass cannot be split between
//! threads: it is the serial part of a parallel capture. Most of a vmcore
//! is zero pages, which the capture has already found to be zero; hashing
//! them from the known value skips the memory reads and half the
//! multiplications, since a round of zero input is `rotl(acc, 31) * P1`.
//!
//! The algorithm is XXH64 as specified in xxHash's `doc/xxhash_spec.md`;
//! the tests check it against the `xxhash-rust` crate.

const PRIME_1: u64 = 0x9E37_79B1_85EB_CA87;
const PRIME_2: u64 = 0xC2B2_AE3D_27D4_EB4F;
const PRIME_3: u64 = 0x1656_67B1_9E37_79F9;
const PRIME_4: u64 = 0x85EB_CA77_C2B2_AE63;
const PRIME_5: u64 = 0x27D4_EB2F_1656_67C5;

/// Bytes consumed by one round of the four accumulators.
const STRIPE: usize = 32;

fn round(accumulator: u64, lane: u64) -> u64 {
    accumulator
        .wrapping_add(lane.wrapping_mul(PRIME_2))
        .rotate_left(31)
        .wrapping_mul(PRIME_1)
}

/// `round(accumulator, 0)`, without the multiplication by zero.
fn zero_round(accumulator: u64) -> u64 {
    accumulator.rotate_left(31).wrapping_mul(PRIME_1)
}

fn merge_round(hash: u64, accumulator: u64) -> u64 {
    (hash ^ round(0, accumulator))
        .wrapping_mul(PRIME_1)
        .wrapping_add(PRIME_4)
}

fn read_u64(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"))
}

/// The running state of an XXH64 over bytes fed in pieces.
#[derive(Clone, Debug)]
pub struct Xxh64 {
    seed: u64,
    accumulators: [u64; 4],
    total_len: u64,
    /// The start of a stripe not yet complete.
    buffer: [u8; STRIPE],
    buffered: usize,
}

impl Xxh64 {
    pub fn new(seed: u64) -> Xxh64 {
        Xxh64 {
            seed,
            accumulators: [
                seed.wrapping_add(PRIME_1).wrapping_add(PRIME_2),
                seed.wrapping_add(PRIME_2),
                seed,
                seed.wrapping_sub(PRIME_1),
            ],
            total_len: 0,
            buffer: [0; STRIPE],
            buffered: 0,
        }
    }

    fn stripe(&mut self, stripe: &[u8]) {
        for (index, accumulator) in self.accumulators.iter_mut().enumerate() {
            *accumulator = round(*accumulator, read_u64(&stripe[index * 8..]));
        }
    }

    /// Feeds `bytes`.
    pub fn update(&mut self, mut bytes: &[u8]) {
        self.total_len += bytes.len() as u64;
        if self.buffered > 0 {
            let take = (STRIPE - self.buffered).min(bytes.len());
            self.buffer[self.buffered..self.buffered + take].copy_from_slice(&bytes[..take]);
            self.buffered += take;
            bytes = &bytes[take..];
            if self.buffered < STRIPE {
                return;
            }
            let stripe = self.buffer;
            self.stripe(&stripe);
            self.buffered = 0;
        }
        let mut stripes = bytes.chunks_exact(STRIPE);
        // Four independent chains, kept in locals so that they stay in
        // registers and the multiplications of the lanes overlap.
        let [mut a, mut b, mut c, mut d] = self.accumulators;
        for stripe in stripes.by_ref() {
            a = round(a, read_u64(&stripe[0..]));
            b = round(b, read_u64(&stripe[8..]));
            c = round(c, read_u64(&stripe[16..]));
            d = round(d, read_u64(&stripe[24..]));
        }
        self.accumulators = [a, b, c, d];
        let rest = stripes.remainder();
        self.buffer[..rest.len()].copy_from_slice(rest);
        self.buffered = rest.len();
    }

    /// Feeds `len` zero bytes: the same as `update(&vec![0; len])`, without
    /// reading memory for the whole stripes.
    pub fn update_zeros(&mut self, len: u64) {
        const ZEROS: [u8; STRIPE] = [0; STRIPE];
        // The partial stripe in the buffer, and the tail after the whole
        // stripes, go through `update`, which keeps the buffer.
        let head = if self.buffered > 0 {
            ((STRIPE - self.buffered) as u64).min(len)
        } else {
            0
        };
        self.update(&ZEROS[..head as usize]);
        let rest = len - head;
        self.total_len += rest - rest % STRIPE as u64;
        let [mut a, mut b, mut c, mut d] = self.accumulators;
        for _ in 0..rest / STRIPE as u64 {
            a = zero_round(a);
            b = zero_round(b);
            c = zero_round(c);
            d = zero_round(d);
        }
        self.accumulators = [a, b, c, d];
        self.update(&ZEROS[..(rest % STRIPE as u64) as usize]);
    }

    /// The hash of everything fed so far; the state can go on being fed.
    pub fn digest(&self) -> u64 {
        let [a, b, c, d] = self.accumulators;
        let mut hash = if self.total_len >= STRIPE as u64 {
            let hash = a
                .rotate_left(1)
                .wrapping_add(b.rotate_left(7))
                .wrapping_add(c.rotate_left(12))
                .wrapping_add(d.rotate_left(18));
            [a, b, c, d].into_iter().fold(hash, merge_round)
        } else {
            self.seed.wrapping_add(PRIME_5)
        };
        hash = hash.wrapping_add(self.total_len);
        let mut rest = &self.buffer[..self.buffered];
        while rest.len() >= 8 {
            hash ^= round(0, read_u64(rest));
            hash = hash
                .rotate_left(27)
                .wrapping_mul(PRIME_1)
                .wrapping_add(PRIME_4);
            rest = &rest[8..];
        }
        if rest.len() >= 4 {
            let word = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes"));
            hash ^= u64::from(word).wrapping_mul(PRIME_1);
            hash = hash
                .rotate_left(23)
                .wrapping_mul(PRIME_2)
                .wrapping_add(PRIME_3);
            rest = &rest[4..];
        }
        for &byte in rest {
            hash ^= u64::from(byte).wrapping_mul(PRIME_5);
            hash = hash.rotate_left(11).wrapping_mul(PRIME_1);
        }
        hash ^= hash >> 33;
        hash = hash.wrapping_mul(PRIME_2);
        hash ^= hash >> 29;
        hash = hash.wrapping_mul(PRIME_3);
        hash ^ (hash >> 32)
    }
}

/// XXH64 of `bytes` in one go.
pub fn xxh64(bytes: &[u8], seed: u64) -> u64 {
    let mut hasher = Xxh64::new(seed);
    hasher.update(bytes);
    hasher.digest()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic bytes with runs of zeros in them.
    fn sample(len: usize) -> Vec<u8> {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        (0..len)
            .map(|i| {
                if (i / 97) % 3 == 0 {
                    return 0;
                }
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    }

    #[test]
    fn known_values() {
        // From xxHash's own test vectors and `xxhsum -H64`.
        let cases: &[(&[u8], u64, u64)] = &[
            (b"", 0, 0xEF46_DB37_51D8_E999),
            (b"a", 0, 0xD24E_C4F1_A98C_6E5B),
            (b"abc", 0, 0x44BC_2CF5_AD77_0999),
        ];
        for &(bytes, seed, expected) in cases {
            assert_eq!(xxh64(bytes, seed), expected, "{bytes:?}");
        }
    }

    #[test]
    fn agrees_with_the_reference_crate_for_every_length_and_seed() {
        let data = sample(600);
        for seed in [0, 1, PRIME_1, u64::MAX] {
            for len in 0..data.len() {
                assert_eq!(
                    xxh64(&data[..len], seed),
                    xxhash_rust::xxh64::xxh64(&data[..len], seed),
                    "len {len} seed {seed}"
                );
            }
        }
    }

    #[test]
    fn pieces_of_any_size_give_the_same_hash() {
        let data = sample(5000);
        let expected = xxhash_rust::xxh64::xxh64(&data, 7);
        for piece in [1, 3, 8, 31, 32, 33, 64, 100, 4096] {
            let mut hasher = Xxh64::new(7);
            for chunk in data.chunks(piece) {
                hasher.update(chunk);
            }
            assert_eq!(hasher.digest(), expected, "pieces of {piece}");
        }
    }

    #[test]
    fn zero_runs_hash_like_zero_bytes() {
        // Zero runs of every alignment against the buffered stripe, between
        // ordinary pieces.
        let head = sample(45);
        for lead in [0, 1, 13, 31, 32, 33] {
            for zeros in [0u64, 1, 5, 19, 32, 64, 100, 4096, 1 << 20] {
                let mut fast = Xxh64::new(0);
                fast.update(&head[..lead]);
                fast.update_zeros(zeros);
                fast.update(&head[lead..]);
                let mut bytes = head[..lead].to_vec();
                bytes.resize(lead + zeros as usize, 0);
                bytes.extend_from_slice(&head[lead..]);
                assert_eq!(
                    fast.digest(),
                    xxhash_rust::xxh64::xxh64(&bytes, 0),
                    "lead {lead} zeros {zeros}"
                );
            }
        }
    }
}

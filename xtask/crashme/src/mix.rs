//! The bench mode of crashme: instead of planting checkable pages, fill
//! memory with a deterministic mix of the kinds of pages a real machine
//! holds (text, machine code, incompressible data, zero), so that the dump
//! of the crash is a realistic input for compressor benchmarks (`cargo
//! xtask bench`).
//!
//! The harness puts the mix, as `key=value` lines, in [`MIX_FILE`] of the
//! production initramfs, and a corpus of real machine code (the `.text` of
//! the kernel's modules) in [`CODE_FILE`]. The memory is cut into chunks;
//! each chunk gets one kind, in an order shuffled by the seed, so the kinds
//! are spread over physical memory instead of lying in three blocks.
//! Text and random chunks continue one stream each, and code chunks walk
//! the corpus in order, so no chunk repeats another one within a
//! compressor's window (the corpus is larger than any window we use).

use std::fmt::Write as _;

/// The mix, in the production initramfs. Its presence selects bench mode.
pub const MIX_FILE: &str = "/bench-mix";

/// The machine-code corpus, in the production initramfs.
pub const CODE_FILE: &str = "/bench-code";

/// Console line crashme prints when it starts filling; the mix follows.
pub const MIX_BEGIN: &str = "crashme: bench mix";

/// Console line crashme prints once the memory is filled and locked.
pub const MIX_FILLED: &str = "crashme: bench mix filled";

const MIB: usize = 1 << 20;

/// How much memory of each kind crashme fills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mix {
    /// English-like text (see [`TextGenerator`]).
    pub text_mib: usize,
    /// Copies of the code corpus.
    pub code_mib: usize,
    /// xorshift output: what encrypted or compressed data looks like.
    pub random_mib: usize,
    /// Locked pages that are never written: zero pages inside used memory,
    /// as in a real machine's never-written allocations. Most zero pages of
    /// the dump are the memory nothing touched at all.
    pub zero_mib: usize,
    /// Size of one chunk of a single kind.
    pub chunk_kib: usize,
    pub seed: u64,
}

/// What one chunk is filled with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Text,
    Code,
    Random,
    Zero,
}

impl Mix {
    /// The file's text: one `key=value` a line.
    pub fn to_text(&self) -> String {
        let mut text = String::new();
        for (key, value) in [
            ("text_mib", self.text_mib as u64),
            ("code_mib", self.code_mib as u64),
            ("random_mib", self.random_mib as u64),
            ("zero_mib", self.zero_mib as u64),
            ("chunk_kib", self.chunk_kib as u64),
        ] {
            // Writing to a String cannot fail.
            let _ = writeln!(text, "{key}={value}");
        }
        let _ = writeln!(text, "seed={:#x}", self.seed);
        text
    }

    /// Parses [`Mix::to_text`]'s form; every key must be present, once.
    pub fn parse(text: &str) -> Result<Mix, String> {
        let mut values: [Option<u64>; 6] = [None; 6];
        const KEYS: [&str; 6] = [
            "text_mib",
            "code_mib",
            "random_mib",
            "zero_mib",
            "chunk_kib",
            "seed",
        ];
        for line in text.lines().map(str::trim).filter(|line| !line.is_empty()) {
            let (key, value) = line
                .split_once('=')
                .ok_or_else(|| format!("line `{line}` is not key=value"))?;
            let key_idx = KEYS
                .iter()
                .position(|known| *known == key)
                .ok_or_else(|| format!("unknown key `{key}`"))?;
            if values[key_idx].is_some() {
                return Err(format!("key `{key}` given twice"));
            }
            values[key_idx] =
                Some(crate::parse_u64(value).ok_or_else(|| format!("bad value `{line}`"))?);
        }
        let get = |key_idx: usize| values[key_idx].ok_or_else(|| format!("no `{}`", KEYS[key_idx]));
        let mix = Mix {
            text_mib: get(0)? as usize,
            code_mib: get(1)? as usize,
            random_mib: get(2)? as usize,
            zero_mib: get(3)? as usize,
            chunk_kib: get(4)? as usize,
            seed: get(5)?,
        };
        let chunk_bytes = mix.chunk_kib * 1024;
        if chunk_bytes == 0
            || !chunk_bytes.is_multiple_of(crate::PAGE_SIZE)
            || !MIB.is_multiple_of(chunk_bytes)
        {
            return Err(format!(
                "chunk_kib={} must be a whole number of pages dividing 1 MiB",
                mix.chunk_kib
            ));
        }
        if mix.total_bytes() == 0 {
            return Err("the mix is empty".into());
        }
        Ok(mix)
    }

    pub fn total_bytes(&self) -> usize {
        (self.text_mib + self.code_mib + self.random_mib + self.zero_mib) * MIB
    }

    pub fn chunk_bytes(&self) -> usize {
        self.chunk_kib * 1024
    }

    /// The kind of every chunk, in memory order: the exact amounts, shuffled
    /// (Fisher-Yates) by the seed.
    pub fn chunk_kinds(&self) -> Vec<Kind> {
        let chunks_per_mib = MIB / self.chunk_bytes();
        let mut kinds = Vec::with_capacity(self.total_bytes() / self.chunk_bytes());
        for (kind, mib) in [
            (Kind::Text, self.text_mib),
            (Kind::Code, self.code_mib),
            (Kind::Random, self.random_mib),
            (Kind::Zero, self.zero_mib),
        ] {
            kinds.extend(std::iter::repeat_n(kind, mib * chunks_per_mib));
        }
        let mut random = Xorshift::new(self.seed ^ 0x5348_5546_464c_4521);
        for chunk_idx in (1..kinds.len()).rev() {
            let other = (random.next_u64() % (chunk_idx as u64 + 1)) as usize;
            kinds.swap(chunk_idx, other);
        }
        kinds
    }
}

/// xorshift64, seeded through SplitMix64 (it must not start at zero).
pub struct Xorshift {
    state: u64,
}

impl Xorshift {
    pub fn new(seed: u64) -> Xorshift {
        Xorshift {
            state: crate::splitmix64(seed) | 1,
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state
    }

    /// Fills `out` with the stream, little-endian words.
    pub fn fill(&mut self, out: &mut [u8]) {
        let mut words = out.chunks_exact_mut(8);
        for word in words.by_ref() {
            word.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let tail = words.into_remainder();
        let last = self.next_u64().to_le_bytes();
        tail.copy_from_slice(&last[..tail.len()]);
    }
}

/// Common English words, most frequent first. They are the top of the
/// vocabulary; made-up words from [`SYLLABLES`] follow them, so that the
/// text has the long tail of rare words real text has (a few hundred words
/// alone compress far better than prose does).
#[rustfmt::skip]
const WORDS: &[&str] = &[
    "the", "of", "and", "to", "a", "in", "is", "that", "for", "it", "as", "was", "with", "be",
    "by", "on", "not", "he", "this", "are", "or", "his", "from", "at", "which", "but", "have",
    "an", "had", "they", "you", "were", "their", "one", "all", "we", "can", "her", "has", "there",
    "been", "if", "more", "when", "will", "would", "who", "so", "no", "she", "other", "its", "may",
    "these", "what", "them", "than", "some", "him", "time", "into", "only", "do", "could", "new",
    "about", "two", "then", "first", "also", "any", "like", "our", "should", "out", "such", "over",
    "up", "made", "after", "most", "between", "many", "those", "must", "well", "through", "before",
    "where", "each", "system", "under", "being", "same", "way", "because", "while", "people",
    "state", "memory", "kernel", "process", "file", "data", "number", "during", "used", "work",
    "without", "might", "own", "found", "general", "world", "part", "since", "however", "against",
    "three", "still", "year", "both", "given", "case", "small", "large", "page", "point", "group",
    "order", "value", "result", "different", "following", "second", "several", "use", "set",
    "right", "whole", "public", "form", "information", "example", "device", "called", "known",
    "important", "possible", "support", "within", "level", "line", "change", "problem", "question",
    "every", "great", "little", "long", "never", "another", "power", "until", "control", "program",
    "network", "service", "user", "error", "return", "address", "table", "function", "structure",
    "interest", "development", "country", "history", "government", "early", "local", "common",
    "report", "single", "thought", "water", "place", "house", "night", "morning", "children",
    "family", "business", "though",
];

/// Syllables the made-up words are built from.
#[rustfmt::skip]
const SYLLABLES: &[&str] = &[
    "ab", "ac", "al", "an", "ar", "at", "ba", "be", "bi", "bo", "ca", "ce", "ci", "co", "con",
    "da", "de", "di", "do", "dis", "el", "en", "er", "es", "ex", "fa", "fi", "fo", "ga", "ge",
    "go", "ha", "he", "hi", "ho", "ic", "il", "im", "in", "ing", "ion", "is", "it", "ka", "la",
    "le", "li", "lo", "ly", "ma", "me", "mi", "mo", "na", "ne", "ni", "no", "ob", "of", "ol", "om",
    "on", "or", "ous", "pa", "pe", "per", "pi", "po", "pre", "pro", "ra", "re", "ri", "ro", "sa",
    "se", "si", "so", "st", "ta", "te", "ter", "ti", "tion", "to", "tra", "tu", "un", "ur", "us",
    "va", "ve", "vi", "wa", "we",
];

/// Vocabulary size: the common words, then made-up ones.
const VOCABULARY: usize = 4096;

/// Stock phrases of two to four words, which real text repeats and LZ
/// compressors find: one token in [`PHRASE_ONE_IN`] is a phrase.
const PHRASES: usize = 1024;
const PHRASE_ONE_IN: u64 = 4;

/// Word ranks are drawn from a Zipf distribution (weight 1/rank, as in
/// natural language) through a table of this many equally likely slots.
const ZIPF_SLOTS: usize = 1 << 16;

/// Generates English-like prose: Zipf-distributed words, sentences with
/// capitals, commas and full stops, lines wrapped at 72 columns, and
/// paragraphs. It compresses about as well as real prose (zstd -1 ~35%).
pub struct TextGenerator {
    random: Xorshift,
    vocabulary: Vec<String>,
    phrases: Vec<String>,
    /// Rank of the word for each slot.
    zipf: Vec<u16>,
    /// Text made but not handed out yet.
    pending: Vec<u8>,
    pending_pos: usize,
    column: usize,
}

impl TextGenerator {
    pub fn new(seed: u64) -> TextGenerator {
        let mut random = Xorshift::new(seed ^ 0x5445_5854);
        let mut vocabulary: Vec<String> = WORDS.iter().map(|word| word.to_string()).collect();
        while vocabulary.len() < VOCABULARY {
            let n_syllables = 1 + (random.next_u64() % 4) as usize;
            let word: String = (0..n_syllables)
                .map(|_| SYLLABLES[(random.next_u64() % SYLLABLES.len() as u64) as usize])
                .collect();
            vocabulary.push(word);
        }
        let weights: Vec<f64> = (1..=VOCABULARY).map(|rank| 1.0 / rank as f64).collect();
        let total: f64 = weights.iter().sum();
        let mut zipf = Vec::with_capacity(ZIPF_SLOTS);
        let mut cumulative = 0.0;
        for (rank, weight) in weights.iter().enumerate() {
            cumulative += weight / total;
            let end = ((cumulative * ZIPF_SLOTS as f64).round() as usize).min(ZIPF_SLOTS);
            while zipf.len() < end {
                zipf.push(rank as u16);
            }
        }
        zipf.resize(ZIPF_SLOTS, (VOCABULARY - 1) as u16);
        let mut generator = TextGenerator {
            random,
            vocabulary,
            phrases: Vec::new(),
            zipf,
            pending: Vec::new(),
            pending_pos: 0,
            column: 0,
        };
        for _ in 0..PHRASES {
            let n_words = 2 + generator.random.next_u64() % 3;
            let ranks: Vec<usize> = (0..n_words).map(|_| generator.word()).collect();
            let words: Vec<&str> = ranks
                .iter()
                .map(|&rank| generator.vocabulary[rank].as_str())
                .collect();
            let phrase = words.join(" ");
            generator.phrases.push(phrase);
        }
        generator
    }

    /// Fills `out` with the next bytes of the text.
    pub fn fill(&mut self, out: &mut [u8]) {
        let mut filled = 0;
        while filled < out.len() {
            if self.pending_pos == self.pending.len() {
                self.pending.clear();
                self.pending_pos = 0;
                self.paragraph();
            }
            let n = (out.len() - filled).min(self.pending.len() - self.pending_pos);
            out[filled..filled + n]
                .copy_from_slice(&self.pending[self.pending_pos..self.pending_pos + n]);
            filled += n;
            self.pending_pos += n;
        }
    }

    fn word(&mut self) -> usize {
        let slot = (self.random.next_u64() % ZIPF_SLOTS as u64) as usize;
        usize::from(self.zipf[slot])
    }

    /// Appends one paragraph of 2 to 7 sentences to `pending`.
    fn paragraph(&mut self) {
        let n_sentences = 2 + self.random.next_u64() % 6;
        for _ in 0..n_sentences {
            let n_words = 4 + self.random.next_u64() % 16;
            for word_idx in 0..n_words {
                let roll = self.random.next_u64();
                let mut word = if roll.is_multiple_of(80) {
                    // Numbers: years, counts, sizes.
                    (self.random.next_u64() % 2100).to_string()
                } else if roll % PHRASE_ONE_IN == 1 {
                    let rank = self.word() % PHRASES;
                    self.phrases[rank].clone()
                } else {
                    let rank = self.word();
                    self.vocabulary[rank].clone()
                };
                if word_idx == 0 {
                    word[..1].make_ascii_uppercase();
                }
                if word_idx + 1 == n_words {
                    word.push(if roll % 13 == 1 { '?' } else { '.' });
                } else if roll % 9 == 2 {
                    word.push(',');
                }
                self.push_word(&word);
            }
        }
        self.pending.extend_from_slice(b"\n\n");
        self.column = 0;
    }

    fn push_word(&mut self, word: &str) {
        if self.column > 0 && self.column + 1 + word.len() > 72 {
            self.pending.push(b'\n');
            self.column = 0;
        } else if self.column > 0 {
            self.pending.push(b' ');
            self.column += 1;
        }
        self.pending.extend_from_slice(word.as_bytes());
        self.column += word.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> Mix {
        Mix {
            text_mib: 3,
            code_mib: 2,
            random_mib: 1,
            zero_mib: 1,
            chunk_kib: 64,
            seed: 0x1234,
        }
    }

    #[test]
    fn mix_round_trips_through_its_text() {
        let mix = example();
        assert_eq!(Mix::parse(&mix.to_text()), Ok(mix));
    }

    #[test]
    fn bad_mixes_are_rejected() {
        let text = example().to_text();
        assert!(Mix::parse(&text.replace("chunk_kib=64", "chunk_kib=6"))
            .unwrap_err()
            .contains("chunk_kib=6"));
        assert!(Mix::parse(&format!("{text}seed=1\n"))
            .unwrap_err()
            .contains("twice"));
        assert!(Mix::parse("text_mib=1\n")
            .unwrap_err()
            .contains("no `code_mib`"));
        assert!(Mix::parse(&format!("{text}colour=red\n"))
            .unwrap_err()
            .contains("unknown key `colour`"));
    }

    #[test]
    fn chunk_kinds_have_the_exact_amounts_and_are_shuffled() {
        let kinds = example().chunk_kinds();
        let count = |kind| kinds.iter().filter(|&&k| k == kind).count();
        assert_eq!(count(Kind::Text), 3 * 16);
        assert_eq!(count(Kind::Code), 2 * 16);
        assert_eq!(count(Kind::Random), 16);
        assert_eq!(count(Kind::Zero), 16);
        assert_ne!(kinds[..48], [Kind::Text; 48]);
        assert_eq!(kinds, example().chunk_kinds());
    }

    #[test]
    fn text_is_deterministic_printable_and_continuous() {
        let mut whole = vec![0u8; 100_000];
        TextGenerator::new(7).fill(&mut whole);
        let mut pieces = vec![0u8; 100_000];
        let mut generator = TextGenerator::new(7);
        for piece in pieces.chunks_mut(4096) {
            generator.fill(piece);
        }
        assert_eq!(whole, pieces);
        assert!(whole
            .iter()
            .all(|&byte| byte == b'\n' || (b' '..=b'~').contains(&byte)));
        let text = String::from_utf8(whole).unwrap();
        assert!(text
            .lines()
            .all(|line| line.len() <= 72 || !line.contains(' ')));
        assert!(text.contains(" the "));
    }
}

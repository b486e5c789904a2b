//! Making the intact prefix of a vmcore cut short a valid ELF core, by
//! rewriting its headers (with [`super::write`]), so that what was saved
//! before a capture was cut off can still be opened by crash or
//! makedumpfile.

use std::io;

use thiserror::Error;

use super::{
    parse_elf_header, parse_program_header, read_core_headers, ElfError, ElfHeader, ProgramHeader,
    ReadAt, ELF_HEADER_SIZE, PHDR_SIZE, PN_XNUM, PT_LOAD,
};

/// What salvaging did to one PT_LOAD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentFate {
    /// All of its file data is in the intact prefix.
    Kept,
    /// Cut where the prefix ends: `p_filesz` and `p_memsz` are now
    /// `new_size`.
    Shrunk { new_size: u64 },
    /// None of its file data is in the prefix; its header is gone.
    Dropped,
}

/// One PT_LOAD of the original core and what salvaging did to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SalvagedSegment {
    /// Index in the original program header table.
    pub index: usize,
    pub paddr: u64,
    pub vaddr: u64,
    pub file_offset: u64,
    pub file_size: u64,
    pub mem_size: u64,
    pub fate: SegmentFate,
}

impl SalvagedSegment {
    /// The physical range no longer described, as (start, length).
    pub fn lost_range(&self) -> Option<(u64, u64)> {
        match self.fate {
            SegmentFate::Kept => None,
            SegmentFate::Shrunk { new_size } => {
                Some((self.paddr + new_size, self.mem_size - new_size))
            }
            SegmentFate::Dropped => Some((self.paddr, self.mem_size)),
        }
    }

    /// Bytes of the segment's file data that are missing.
    pub fn lost_file_bytes(&self) -> u64 {
        match self.fate {
            SegmentFate::Kept => 0,
            SegmentFate::Shrunk { new_size } => self.file_size - new_size,
            SegmentFate::Dropped => self.file_size,
        }
    }
}

/// Bytes to write over a core to make its intact prefix a valid core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Patch {
    pub offset: u64,
    pub bytes: Vec<u8>,
}

/// How to turn a vmcore prefix into a valid ELF core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Salvage {
    /// The length of the prefix the patched core keeps.
    pub intact_len: u64,
    /// Writes over the ELF header and the program header table, in place:
    /// the headers keep their size.
    pub patches: Vec<Patch>,
    pub segments: Vec<SalvagedSegment>,
}

impl Salvage {
    /// Whether nothing was lost: every PT_LOAD is whole.
    pub fn is_whole(&self) -> bool {
        self.segments.iter().all(|s| s.fate == SegmentFate::Kept)
    }
}

/// Why a vmcore prefix cannot be made into a valid core.
#[derive(Debug, Error)]
pub enum SalvageError {
    #[error("the headers of the saved part are not a usable ELF core")]
    Headers(#[source] ElfError),
    #[error("cannot read the {what} at offset {offset:#x}")]
    Read {
        what: &'static str,
        offset: u64,
        #[source]
        source: io::Error,
    },
}

/// Plans how to make the vmcore prefix `core` (everything that is left of
/// a vmcore cut short) a valid ELF core: PT_LOADs whose file data lies
/// beyond the prefix are removed, the one cut in the middle shrinks
/// (`p_filesz` and `p_memsz`, so that no reader takes the missing memory
/// for zeroes), and every other header (PT_NOTE included) stays as it is.
/// The program header table keeps its place and size: removed entries are
/// dropped from the count and their slots zeroed.
pub fn salvage_core<R: ReadAt + ?Sized>(core: &R) -> Result<Salvage, SalvageError> {
    let intact_len = core.size();
    let headers = read_core_headers(core).map_err(SalvageError::Headers)?;
    let read = |what, offset, buf: &mut [u8]| {
        core.read_exact_at(buf, offset)
            .map_err(|source| SalvageError::Read {
                what,
                offset,
                source,
            })
    };
    let mut ehdr = [0u8; ELF_HEADER_SIZE];
    read("ELF header", 0, &mut ehdr)?;
    // read_core_headers() checked that the table lies in the file and its
    // count is capped, so this allocation is bounded by both.
    let mut table = vec![0u8; headers.phdr_count as usize * PHDR_SIZE];
    read("program header table", headers.phdr_offset, &mut table)?;

    let mut kept = Vec::with_capacity(table.len());
    let mut kept_count = 0u64;
    let mut segments = Vec::new();
    for (index, bytes) in table.chunks_exact(PHDR_SIZE).enumerate() {
        let phdr = parse_program_header(bytes).map_err(SalvageError::Headers)?;
        if phdr.p_type != PT_LOAD {
            kept.extend_from_slice(&phdr.to_bytes());
            kept_count += 1;
            continue;
        }
        let ProgramHeader {
            file_offset,
            vaddr,
            paddr,
            file_size,
            mem_size,
            ..
        } = phdr;
        // read_core_headers() checked that offset + size does not overflow.
        let fate = if file_size == 0 || file_offset + file_size <= intact_len {
            SegmentFate::Kept
        } else if file_offset >= intact_len {
            SegmentFate::Dropped
        } else {
            SegmentFate::Shrunk {
                new_size: intact_len - file_offset,
            }
        };
        match fate {
            SegmentFate::Kept => {
                kept.extend_from_slice(&phdr.to_bytes());
                kept_count += 1;
            }
            SegmentFate::Shrunk { new_size } => {
                let shrunk = ProgramHeader {
                    file_size: new_size,
                    mem_size: new_size,
                    ..phdr
                };
                kept.extend_from_slice(&shrunk.to_bytes());
                kept_count += 1;
            }
            SegmentFate::Dropped => {}
        }
        segments.push(SalvagedSegment {
            index,
            paddr,
            vaddr,
            file_offset,
            file_size,
            mem_size,
            fate,
        });
    }
    kept.resize(table.len(), 0);

    let mut patches = Vec::new();
    let elf_header = parse_elf_header(&ehdr).map_err(SalvageError::Headers)?;
    if elf_header.e_phnum == PN_XNUM {
        // The real count lives in sh_info of section header 0, which
        // read_core_headers() has read, so it is inside the prefix.
        patches.push(Patch {
            offset: elf_header.shdr_offset + 44,
            bytes: (kept_count as u32).to_le_bytes().to_vec(),
        });
    } else {
        let counted = ElfHeader {
            e_phnum: kept_count as u16,
            ..elf_header
        };
        patches.push(Patch {
            offset: 0,
            bytes: counted.to_bytes().to_vec(),
        });
    }
    patches.push(Patch {
        offset: headers.phdr_offset,
        bytes: kept,
    });
    Ok(Salvage {
        intact_len,
        patches,
        segments,
    })
}

/// `prefix` with the patches of `salvage` written over it, as `lifeboat
/// decompress --recover` writes them over its output file.
#[cfg(test)]
pub(crate) fn apply(prefix: &[u8], salvage: &Salvage) -> Vec<u8> {
    let mut out = prefix[..salvage.intact_len as usize].to_vec();
    for patch in &salvage.patches {
        let at = patch.offset as usize;
        out[at..at + patch.bytes.len()].copy_from_slice(&patch.bytes);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elf::synth::CoreBuilder;

    fn two_load_core() -> Vec<u8> {
        let mut core = CoreBuilder::new();
        core.note(b"VMCOREINFO", 0, b"OSRELEASE=6.1.0\n");
        core.load(0xffff_8880_0000_0000, 0, vec![0x11; 4096]);
        core.load_with_mem_size(0xffff_8880_0010_0000, 0x10_0000, vec![0x22; 8192], 16384);
        core.build()
    }

    #[test]
    fn salvage_shrinks_and_drops_segments() {
        let core = two_load_core();
        let headers = read_core_headers(core.as_slice()).unwrap();
        let (first, second) = (headers.loads[0], headers.loads[1]);
        type Check = fn(&[SegmentFate]) -> bool;
        let cases: Vec<(&str, u64, Check)> = vec![
            ("whole", core.len() as u64, |f| {
                f == [SegmentFate::Kept, SegmentFate::Kept]
            }),
            ("second cut", second.file_offset + 100, |f| {
                f == [SegmentFate::Kept, SegmentFate::Shrunk { new_size: 100 }]
            }),
            ("second gone", second.file_offset, |f| {
                f == [SegmentFate::Kept, SegmentFate::Dropped]
            }),
            ("first cut", first.file_offset + 1, |f| {
                f == [SegmentFate::Shrunk { new_size: 1 }, SegmentFate::Dropped]
            }),
            ("only headers", headers.header_size, |f| {
                f == [SegmentFate::Dropped, SegmentFate::Dropped]
            }),
        ];
        for (name, cut, check) in cases {
            let prefix = &core[..cut as usize];
            let salvage = salvage_core(prefix).unwrap();
            let fates: Vec<SegmentFate> = salvage.segments.iter().map(|s| s.fate).collect();
            assert!(check(&fates), "{name}: {fates:?}");
            let fixed = apply(&core, &salvage);
            let new = read_core_headers(fixed.as_slice()).unwrap();
            assert_eq!(new.notes, headers.notes, "{name}");
            for load in &new.loads {
                assert!(load.file_offset + load.file_size <= cut, "{name}");
                assert_eq!(load.file_size, load.mem_size.min(load.file_size), "{name}");
            }
            let kept = fates.iter().filter(|f| **f != SegmentFate::Dropped).count();
            assert_eq!(new.loads.len(), kept, "{name}");
            assert_eq!(new.phdr_count, kept as u64 + 1, "{name}");
            // A shrunk segment has no memory beyond its file data.
            for (segment, load) in salvage
                .segments
                .iter()
                .filter(|s| s.fate != SegmentFate::Dropped)
                .zip(&new.loads)
            {
                if let SegmentFate::Shrunk { new_size } = segment.fate {
                    assert_eq!((load.file_size, load.mem_size), (new_size, new_size));
                    let (start, len) = segment.lost_range().unwrap();
                    assert_eq!(start + len, segment.paddr + segment.mem_size);
                }
            }
            assert_eq!(salvage.is_whole(), name == "whole");
        }
        let second_lost = SalvagedSegment {
            index: 2,
            paddr: 0x10_0000,
            vaddr: 0,
            file_offset: second.file_offset,
            file_size: 8192,
            mem_size: 16384,
            fate: SegmentFate::Shrunk { new_size: 100 },
        };
        assert_eq!(second_lost.lost_file_bytes(), 8092);
        assert_eq!(second_lost.lost_range(), Some((0x10_0000 + 100, 16284)));
    }

    #[test]
    fn salvage_needs_whole_headers() {
        let core = two_load_core();
        let headers = read_core_headers(core.as_slice()).unwrap();
        for cut in [0, 63, 100, headers.header_size - 1] {
            let error = salvage_core(&core[..cut as usize]).unwrap_err();
            assert!(matches!(error, SalvageError::Headers(_)), "{cut}: {error}");
        }
    }
}

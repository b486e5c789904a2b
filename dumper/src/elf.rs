//! The ELF side of a vmcore: random-access reads, the program headers
//! (PT_LOAD segments that map the crashed kernel's memory, PT_NOTE segments)
//! and the notes (per-CPU PRSTATUS, VMCOREINFO).
//!
//! A vmcore may be corrupt, so every header field is checked before it is
//! used: offsets and sizes go through checked arithmetic, tables must lie
//! inside the file, and counts and sizes are capped before anything is
//! allocated for them.

use std::io;

use thiserror::Error;

use crate::bytes::{Bytes, OutOfBounds};

pub mod salvage;
pub mod write;

/// Random-access reads of a vmcore: a `File` (pread), a byte slice, later an
/// mmap of `/proc/vmcore`.
pub trait ReadAt {
    /// Fills `buf` from `offset`, or fails; a short read is an error.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;

    /// The number of readable bytes.
    fn size(&self) -> u64;
}

impl ReadAt for std::fs::File {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(self, buf, offset)
    }

    /// `/proc/vmcore` reports its real size in `st_size`. A failing `fstat`
    /// reports 0 so that every bounds check against the size fails closed.
    fn size(&self) -> u64 {
        self.metadata().map(|m| m.len()).unwrap_or(0)
    }
}

impl ReadAt for [u8] {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let found = usize::try_from(offset)
            .ok()
            .and_then(|start| Bytes::new(self).slice(start, buf.len()).ok());
        match found {
            Some(bytes) => {
                buf.copy_from_slice(bytes);
                Ok(())
            }
            None => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "read past the end of the buffer",
            )),
        }
    }

    fn size(&self) -> u64 {
        self.len() as u64
    }
}

impl ReadAt for Vec<u8> {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.as_slice().read_exact_at(buf, offset)
    }

    fn size(&self) -> u64 {
        self.as_slice().size()
    }
}

impl<T: ReadAt + ?Sized> ReadAt for &T {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        (**self).read_exact_at(buf, offset)
    }

    fn size(&self) -> u64 {
        (**self).size()
    }
}

/// `e_machine` of x86_64, the only architecture whose vmcores are read.
pub const EM_X86_64: u16 = 62;
/// `p_type` of a loadable segment: in a vmcore, a range of memory.
pub const PT_LOAD: u32 = 1;
/// `p_type` of a note segment.
pub const PT_NOTE: u32 = 4;

pub const ELF_HEADER_SIZE: usize = 64;
pub const PHDR_SIZE: usize = 56;
const SHDR_SIZE: usize = 64;
const ET_CORE: u16 = 4;
/// `e_phnum` value saying that the real count is in section header 0.
pub(crate) const PN_XNUM: u16 = 0xffff;

/// Enough program headers for a machine with tens of thousands of memory
/// ranges; a larger count means a corrupt header, not a bigger machine.
pub const MAX_PROGRAM_HEADERS: u64 = 65_536;
/// Cap on the notes read into memory: 8192 CPUs' PRSTATUS notes and the
/// VMCOREINFO text take under 4 MiB.
pub const MAX_NOTES_BYTES: u64 = 16 << 20;

/// One PT_LOAD: a range of the crashed kernel's memory and where it is in
/// the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadSegment {
    pub file_offset: u64,
    pub vaddr: u64,
    pub paddr: u64,
    pub file_size: u64,
    pub mem_size: u64,
}

/// One PT_NOTE segment's place in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoteSegment {
    pub file_offset: u64,
    pub file_size: u64,
}

/// One ELF note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The name without its NUL terminator, e.g. `b"VMCOREINFO"` or `b"CORE"`.
    pub name: Vec<u8>,
    pub note_type: u32,
    pub desc: Vec<u8>,
}

/// Everything in a vmcore that is not memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreHeaders {
    pub e_machine: u16,
    /// Where the program header table starts.
    pub phdr_offset: u64,
    /// How many program headers the table holds (all types).
    pub phdr_count: u64,
    /// The end of the ELF header, the program header table and every
    /// PT_NOTE segment, whichever is furthest into the file: the part of the
    /// file that is headers rather than memory.
    pub header_size: u64,
    pub loads: Vec<LoadSegment>,
    pub note_segments: Vec<NoteSegment>,
    pub notes: Vec<Note>,
}

impl CoreHeaders {
    /// The first note with this name (without NUL), e.g. `b"VMCOREINFO"`.
    pub fn find_note(&self, name: &[u8]) -> Option<&Note> {
        self.notes.iter().find(|note| note.name == name)
    }
}

/// Why the headers of a vmcore could not be read.
#[derive(Debug, Error)]
pub enum ElfError {
    #[error("cannot read the {what} at offset {offset:#x}")]
    Read {
        what: &'static str,
        offset: u64,
        #[source]
        source: io::Error,
    },
    #[error("file of {size} bytes is too small for an ELF header")]
    TooSmall { size: u64 },
    #[error("not an ELF file: magic is {found:02x?}")]
    BadMagic { found: [u8; 4] },
    #[error("ELF class {class} is not ELFCLASS64")]
    NotElf64 { class: u8 },
    #[error("ELF data encoding {data} is not little-endian")]
    NotLittleEndian { data: u8 },
    #[error("ELF version {version} is not EV_CURRENT")]
    BadVersion { version: u8 },
    #[error("ELF type {e_type} is not ET_CORE")]
    NotCore { e_type: u16 },
    #[error("machine {e_machine} is not supported (only x86_64, {EM_X86_64})")]
    UnsupportedMachine { e_machine: u16 },
    #[error("program header entry size {phentsize} is not {PHDR_SIZE}")]
    BadPhentsize { phentsize: u16 },
    #[error("{count} program headers exceed the limit of {MAX_PROGRAM_HEADERS}")]
    TooManyProgramHeaders { count: u64 },
    #[error("program header table at {offset:#x} ({count} entries) does not fit in a file of {file_size} bytes")]
    ProgramHeadersOutOfFile {
        offset: u64,
        count: u64,
        file_size: u64,
    },
    #[error(
        "section header 0 at {offset:#x} (holding the program header count) is outside the file"
    )]
    SectionHeaderOutOfFile { offset: u64 },
    #[error("program header {index}: {field} overflows")]
    SegmentOverflow { index: u64, field: &'static str },
    #[error("program header {index}: file size {file_size:#x} exceeds memory size {mem_size:#x}")]
    FileSizeExceedsMemSize {
        index: u64,
        file_size: u64,
        mem_size: u64,
    },
    #[error("note segment {index} at {offset:#x} ({size} bytes) does not fit in a file of {file_size} bytes")]
    NoteSegmentOutOfFile {
        index: u64,
        offset: u64,
        size: u64,
        file_size: u64,
    },
    #[error("note segments total more than {MAX_NOTES_BYTES} bytes (note segment {index} ends at {total})")]
    NotesTooLarge { index: u64, total: u64 },
    #[error("note at file offset {offset:#x} runs past the end of its segment")]
    NoteTruncated { offset: u64 },
    #[error("the {what} is cut short")]
    Truncated {
        what: &'static str,
        #[source]
        source: OutOfBounds,
    },
}

/// An ELF header, checked to describe an x86_64 ELF64 little-endian core:
/// the fields that are not fixed by that, so that it can be written back
/// as it was read ([`ElfHeader::to_bytes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElfHeader {
    /// `e_ident[7..16]`: the OS ABI, its version and padding.
    pub e_ident_rest: [u8; 9],
    pub e_machine: u16,
    pub e_entry: u64,
    pub phdr_offset: u64,
    pub shdr_offset: u64,
    pub e_flags: u32,
    /// The count of program headers, or `PN_XNUM` when section header 0
    /// holds it.
    pub e_phnum: u16,
    pub e_shentsize: u16,
    pub e_shnum: u16,
    pub e_shstrndx: u16,
}

/// Parses and checks the 64-byte ELF header at the start of `bytes`.
pub fn parse_elf_header(bytes: &[u8]) -> Result<ElfHeader, ElfError> {
    let truncated = |source| ElfError::Truncated {
        what: "ELF header",
        source,
    };
    // The whole header or nothing: a file cut inside it is not a core, even
    // where the fields read here happen to be whole.
    let ehdr = Bytes::new(bytes)
        .sub(0, ELF_HEADER_SIZE)
        .map_err(truncated)?;
    let magic = ehdr.array::<4>(0).map_err(truncated)?;
    if magic != *b"\x7fELF" {
        return Err(ElfError::BadMagic { found: magic });
    }
    let class = ehdr.u8(4).map_err(truncated)?;
    if class != 2 {
        return Err(ElfError::NotElf64 { class });
    }
    let data = ehdr.u8(5).map_err(truncated)?;
    if data != 1 {
        return Err(ElfError::NotLittleEndian { data });
    }
    let version = ehdr.u8(6).map_err(truncated)?;
    if version != 1 {
        return Err(ElfError::BadVersion { version });
    }
    let e_type = ehdr.u16_le(16).map_err(truncated)?;
    if e_type != ET_CORE {
        return Err(ElfError::NotCore { e_type });
    }
    let e_machine = ehdr.u16_le(18).map_err(truncated)?;
    if e_machine != EM_X86_64 {
        return Err(ElfError::UnsupportedMachine { e_machine });
    }
    let phentsize = ehdr.u16_le(54).map_err(truncated)?;
    if phentsize as usize != PHDR_SIZE {
        return Err(ElfError::BadPhentsize { phentsize });
    }
    Ok(ElfHeader {
        e_ident_rest: ehdr.array::<9>(7).map_err(truncated)?,
        e_machine,
        e_entry: ehdr.u64_le(24).map_err(truncated)?,
        phdr_offset: ehdr.u64_le(32).map_err(truncated)?,
        shdr_offset: ehdr.u64_le(40).map_err(truncated)?,
        e_flags: ehdr.u32_le(48).map_err(truncated)?,
        e_phnum: ehdr.u16_le(56).map_err(truncated)?,
        e_shentsize: ehdr.u16_le(58).map_err(truncated)?,
        e_shnum: ehdr.u16_le(60).map_err(truncated)?,
        e_shstrndx: ehdr.u16_le(62).map_err(truncated)?,
    })
}

/// The fields of one program header, as they are in the file: nothing is
/// checked but that the 56 bytes are there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgramHeader {
    pub p_type: u32,
    pub p_flags: u32,
    pub file_offset: u64,
    pub vaddr: u64,
    pub paddr: u64,
    pub file_size: u64,
    pub mem_size: u64,
    pub align: u64,
}

/// Parses the 56-byte program header at the start of `bytes`.
pub fn parse_program_header(bytes: &[u8]) -> Result<ProgramHeader, ElfError> {
    let truncated = |source| ElfError::Truncated {
        what: "program header",
        source,
    };
    let phdr = Bytes::new(bytes).sub(0, PHDR_SIZE).map_err(truncated)?;
    Ok(ProgramHeader {
        p_type: phdr.u32_le(0).map_err(truncated)?,
        p_flags: phdr.u32_le(4).map_err(truncated)?,
        file_offset: phdr.u64_le(8).map_err(truncated)?,
        vaddr: phdr.u64_le(16).map_err(truncated)?,
        paddr: phdr.u64_le(24).map_err(truncated)?,
        file_size: phdr.u64_le(32).map_err(truncated)?,
        mem_size: phdr.u64_le(40).map_err(truncated)?,
        align: phdr.u64_le(48).map_err(truncated)?,
    })
}

/// Reads and checks the ELF header, the program header table and the notes
/// of a vmcore (ELF64, little-endian, ET_CORE, x86_64).
pub fn read_core_headers<R: ReadAt + ?Sized>(r: &R) -> Result<CoreHeaders, ElfError> {
    let file_size = r.size();
    if file_size < ELF_HEADER_SIZE as u64 {
        return Err(ElfError::TooSmall { size: file_size });
    }
    let mut ehdr = [0u8; ELF_HEADER_SIZE];
    r.read_exact_at(&mut ehdr, 0)
        .map_err(|source| ElfError::Read {
            what: "ELF header",
            offset: 0,
            source,
        })?;
    let ElfHeader {
        e_machine,
        phdr_offset,
        shdr_offset,
        e_phnum,
        ..
    } = parse_elf_header(&ehdr)?;

    let phdr_count = if e_phnum == PN_XNUM {
        // With more than 0xfffe program headers, the real count is in the
        // sh_info field of section header 0.
        let mut shdr = [0u8; SHDR_SIZE];
        r.read_exact_at(&mut shdr, shdr_offset)
            .map_err(|_| ElfError::SectionHeaderOutOfFile {
                offset: shdr_offset,
            })?;
        let sh_info = Bytes::new(&shdr)
            .u32_le(44)
            .map_err(|source| ElfError::Truncated {
                what: "section header 0",
                source,
            })?;
        u64::from(sh_info)
    } else {
        u64::from(e_phnum)
    };
    if phdr_count > MAX_PROGRAM_HEADERS {
        return Err(ElfError::TooManyProgramHeaders { count: phdr_count });
    }
    let table_end = phdr_count
        .checked_mul(PHDR_SIZE as u64)
        .and_then(|len| phdr_offset.checked_add(len))
        .filter(|&end| end <= file_size)
        .ok_or(ElfError::ProgramHeadersOutOfFile {
            offset: phdr_offset,
            count: phdr_count,
            file_size,
        })?;
    // The count is capped and the table is inside the file, so this
    // allocation is bounded by both.
    let mut table = vec![0u8; (table_end - phdr_offset) as usize];
    r.read_exact_at(&mut table, phdr_offset)
        .map_err(|source| ElfError::Read {
            what: "program header table",
            offset: phdr_offset,
            source,
        })?;

    let mut headers = CoreHeaders {
        e_machine,
        phdr_offset,
        phdr_count,
        header_size: table_end.max(ELF_HEADER_SIZE as u64),
        loads: Vec::new(),
        note_segments: Vec::new(),
        notes: Vec::new(),
    };
    let mut notes_total: u64 = 0;
    for (index, phdr) in table.chunks_exact(PHDR_SIZE).enumerate() {
        let index = index as u64;
        let ProgramHeader {
            p_type,
            file_offset,
            vaddr,
            paddr,
            file_size,
            mem_size,
            ..
        } = parse_program_header(phdr)?;
        match p_type {
            PT_LOAD => {
                let segment = LoadSegment {
                    file_offset,
                    vaddr,
                    paddr,
                    file_size,
                    mem_size,
                };
                check_load(index, &segment)?;
                headers.loads.push(segment);
            }
            PT_NOTE => {
                let end = file_offset
                    .checked_add(file_size)
                    .filter(|&end| end <= r.size())
                    .ok_or(ElfError::NoteSegmentOutOfFile {
                        index,
                        offset: file_offset,
                        size: file_size,
                        file_size: r.size(),
                    })?;
                notes_total = notes_total.saturating_add(file_size);
                if notes_total > MAX_NOTES_BYTES {
                    return Err(ElfError::NotesTooLarge {
                        index,
                        total: notes_total,
                    });
                }
                let mut data = vec![0u8; file_size as usize];
                r.read_exact_at(&mut data, file_offset)
                    .map_err(|source| ElfError::Read {
                        what: "note segment",
                        offset: file_offset,
                        source,
                    })?;
                parse_notes(&data, file_offset, &mut headers.notes)?;
                headers.note_segments.push(NoteSegment {
                    file_offset,
                    file_size,
                });
                headers.header_size = headers.header_size.max(end);
            }
            _ => {}
        }
    }
    Ok(headers)
}

/// Rejects a PT_LOAD whose ranges wrap around the address space, so that
/// address arithmetic on it later cannot overflow.
fn check_load(index: u64, segment: &LoadSegment) -> Result<(), ElfError> {
    if segment.file_size > segment.mem_size {
        return Err(ElfError::FileSizeExceedsMemSize {
            index,
            file_size: segment.file_size,
            mem_size: segment.mem_size,
        });
    }
    let checks = [
        (
            "p_offset + p_filesz",
            segment.file_offset,
            segment.file_size,
        ),
        ("p_vaddr + p_memsz", segment.vaddr, segment.mem_size),
        ("p_paddr + p_memsz", segment.paddr, segment.mem_size),
    ];
    for (field, start, len) in checks {
        if start.checked_add(len).is_none() {
            return Err(ElfError::SegmentOverflow { index, field });
        }
    }
    Ok(())
}

/// Bytes of a note header: namesz, descsz and type, 4 bytes each.
const NOTE_HEADER_SIZE: usize = 12;

/// Splits a note segment into notes. Each note is a 12-byte header (namesz,
/// descsz, type), the name and the descriptor, each padded to 4 bytes. Like
/// the kernel's vmcore code, a note with an empty name ends the segment:
/// older producers pad note segments with zeroes. So does a tail too short
/// for a note header, which is padding rather than a note: the notes before
/// it are whole, and VMCOREINFO among them is worth keeping.
fn parse_notes(data: &[u8], segment_offset: u64, notes: &mut Vec<Note>) -> Result<(), ElfError> {
    let data = Bytes::new(data);
    let mut pos = 0usize;
    while let Ok(header) = data.sub(pos, NOTE_HEADER_SIZE) {
        let note_offset = segment_offset + pos as u64;
        let truncated = |_| ElfError::NoteTruncated {
            offset: note_offset,
        };
        let namesz = header.u32_le(0).map_err(truncated)? as usize;
        let descsz = header.u32_le(4).map_err(truncated)? as usize;
        let note_type = header.u32_le(8).map_err(truncated)?;
        if namesz == 0 {
            break;
        }
        let name_start = pos + NOTE_HEADER_SIZE;
        let name = data.slice(name_start, namesz).map_err(truncated)?;
        // name_start + namesz fits: the slice above is inside the data.
        let desc_start = align4(name_start + namesz).ok_or(ElfError::NoteTruncated {
            offset: note_offset,
        })?;
        let desc = data.slice(desc_start, descsz).map_err(truncated)?;
        // The name without its NUL terminator (and any further NULs).
        let mut name = name;
        while let [rest @ .., 0] = name {
            name = rest;
        }
        notes.push(Note {
            name: name.to_vec(),
            note_type,
            desc: desc.to_vec(),
        });
        // The last note's descriptor padding may be missing.
        let desc_end = desc_start + descsz;
        pos = align4(desc_end).map_or(data.len(), |next| next.min(data.len()));
    }
    Ok(())
}

fn align4(n: usize) -> Option<usize> {
    Some(n.checked_add(3)? & !3)
}

#[cfg(test)]
#[path = "testdata/synth.rs"]
pub(crate) mod synth;

#[cfg(test)]
mod tests {
    use super::synth::CoreBuilder;
    use super::*;

    fn minimal_core() -> Vec<u8> {
        let mut core = CoreBuilder::new();
        core.note(b"CORE", 1, &[0xaa; 20]);
        core.note(b"VMCOREINFO", 0, b"OSRELEASE=6.1.0\n");
        core.load(0xffff_8880_0000_0000, 0, vec![1, 2, 3, 4]);
        core.build()
    }

    #[test]
    fn reads_loads_and_notes() {
        let bytes = minimal_core();
        let headers = read_core_headers(bytes.as_slice()).unwrap();
        assert_eq!(headers.e_machine, EM_X86_64);
        assert_eq!(headers.loads.len(), 1);
        let load = headers.loads[0];
        assert_eq!(load.vaddr, 0xffff_8880_0000_0000);
        assert_eq!(load.paddr, 0);
        assert_eq!(load.file_size, 4);
        assert_eq!(load.mem_size, 4);
        let mut data = [0u8; 4];
        bytes.read_exact_at(&mut data, load.file_offset).unwrap();
        assert_eq!(data, [1, 2, 3, 4]);
        assert_eq!(headers.notes.len(), 2);
        assert_eq!(headers.notes[0].name, b"CORE");
        assert_eq!(headers.notes[0].note_type, 1);
        assert_eq!(headers.notes[0].desc, [0xaa; 20]);
        let info = headers.find_note(b"VMCOREINFO").unwrap();
        assert_eq!(info.desc, b"OSRELEASE=6.1.0\n");
        // The headers end where the first load starts: the builder packs
        // the note segment right after the program header table.
        assert_eq!(headers.header_size, load.file_offset);
    }

    #[test]
    fn zero_padding_ends_a_note_segment() {
        let mut core = CoreBuilder::new();
        core.note(b"CORE", 1, &[1; 8]);
        core.note_padding(64);
        let bytes = core.build();
        let headers = read_core_headers(bytes.as_slice()).unwrap();
        assert_eq!(headers.notes.len(), 1);
    }

    /// Byte patches applied to a valid core, and the error each must cause.
    #[test]
    fn header_errors() {
        type Check = fn(&ElfError) -> bool;
        type Patches<'a> = &'a [(usize, &'a [u8])];
        let cases: &[(&str, Patches, Check)] = &[
            (
                "bad magic",
                &[(0, b"\x7fELG")],
                |e| matches!(e, ElfError::BadMagic { found } if found == b"\x7fELG"),
            ),
            ("ELF32", &[(4, &[1])], |e| {
                matches!(e, ElfError::NotElf64 { class: 1 })
            }),
            ("big-endian", &[(5, &[2])], |e| {
                matches!(e, ElfError::NotLittleEndian { data: 2 })
            }),
            ("bad version", &[(6, &[0])], |e| {
                matches!(e, ElfError::BadVersion { version: 0 })
            }),
            ("executable", &[(16, &[2, 0])], |e| {
                matches!(e, ElfError::NotCore { e_type: 2 })
            }),
            ("aarch64", &[(18, &[183, 0])], |e| {
                matches!(e, ElfError::UnsupportedMachine { e_machine: 183 })
            }),
            ("phentsize", &[(54, &[32, 0])], |e| {
                matches!(e, ElfError::BadPhentsize { phentsize: 32 })
            }),
            (
                "phdrs past the end",
                &[(32, &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f])],
                |e| matches!(e, ElfError::ProgramHeadersOutOfFile { .. }),
            ),
            ("phnum 0xfffe", &[(56, &[0xfe, 0xff])], |e| {
                matches!(e, ElfError::ProgramHeadersOutOfFile { count: 0xfffe, .. })
            }),
            (
                "PN_XNUM without section header",
                &[(56, &[0xff, 0xff]), (40, &[0xff; 8])],
                |e| matches!(e, ElfError::SectionHeaderOutOfFile { .. }),
            ),
            // Program header 0 is the PT_NOTE, header 1 the PT_LOAD.
            (
                "note past the end",
                &[(64 + 32, &[0xff, 0xff, 0xff, 0, 0, 0, 0, 0])],
                |e| matches!(e, ElfError::NoteSegmentOutOfFile { index: 0, .. }),
            ),
            (
                "load filesz > memsz",
                &[(64 + 56 + 40, &[1, 0, 0, 0, 0, 0, 0, 0])],
                |e| matches!(e, ElfError::FileSizeExceedsMemSize { index: 1, .. }),
            ),
            ("load vaddr wraps", &[(64 + 56 + 16, &[0xff; 8])], |e| {
                matches!(
                    e,
                    ElfError::SegmentOverflow {
                        index: 1,
                        field: "p_vaddr + p_memsz"
                    }
                )
            }),
            ("load offset wraps", &[(64 + 56 + 8, &[0xff; 8])], |e| {
                matches!(
                    e,
                    ElfError::SegmentOverflow {
                        index: 1,
                        field: "p_offset + p_filesz"
                    }
                )
            }),
            // The first note's descsz (at the start of the note segment).
            (
                "note desc too long",
                &[(64 + 2 * 56 + 4, &[0xff, 0, 0, 0])],
                |e| matches!(e, ElfError::NoteTruncated { offset } if *offset == 64 + 2 * 56),
            ),
            (
                "note namesz huge",
                &[(64 + 2 * 56, &[0xfd, 0xff, 0xff, 0xff])],
                |e| matches!(e, ElfError::NoteTruncated { .. }),
            ),
        ];
        for (name, patches, check) in cases {
            let mut bytes = minimal_core();
            for (at, patch) in *patches {
                bytes[*at..*at + patch.len()].copy_from_slice(patch);
            }
            match read_core_headers(bytes.as_slice()) {
                Err(e) => assert!(check(&e), "{name}: unexpected error {e:?}"),
                Ok(h) => panic!("{name}: accepted: {h:?}"),
            }
        }
    }

    #[test]
    fn short_files_are_rejected() {
        for len in [0, 1, 63] {
            let bytes = minimal_core();
            let err = read_core_headers(&bytes[..len]).unwrap_err();
            assert!(matches!(err, ElfError::TooSmall { .. }), "{len}: {err:?}");
        }
        // A file cut inside the program header table.
        let bytes = minimal_core();
        let err = read_core_headers(&bytes[..100]).unwrap_err();
        assert!(
            matches!(err, ElfError::ProgramHeadersOutOfFile { .. }),
            "{err:?}"
        );
    }

    /// Every prefix of a structure shorter than the whole is an error,
    /// never a panic, and the whole structure parses.
    #[test]
    fn truncated_structures_are_errors() {
        type Parse = fn(&[u8]) -> Result<(), ElfError>;
        type Check = fn(&ElfError) -> bool;
        let core = minimal_core();
        let headers = read_core_headers(core.as_slice()).unwrap();
        let header_size = headers.header_size as usize;
        let cases: &[(&str, &[u8], Parse, Check)] = &[
            (
                "ELF header",
                &core[..ELF_HEADER_SIZE],
                |bytes| parse_elf_header(bytes).map(drop),
                |e| {
                    matches!(
                        e,
                        ElfError::Truncated {
                            what: "ELF header",
                            ..
                        }
                    )
                },
            ),
            (
                "program header",
                &core[ELF_HEADER_SIZE..ELF_HEADER_SIZE + PHDR_SIZE],
                |bytes| parse_program_header(bytes).map(drop),
                |e| {
                    matches!(
                        e,
                        ElfError::Truncated {
                            what: "program header",
                            ..
                        }
                    )
                },
            ),
            // The ELF header, the program header table and the notes, as a
            // file cut short: each cut is in one of them.
            (
                "core headers",
                &core[..header_size],
                |bytes| read_core_headers(bytes).map(drop),
                |e| {
                    matches!(
                        e,
                        ElfError::TooSmall { .. }
                            | ElfError::ProgramHeadersOutOfFile { .. }
                            | ElfError::NoteSegmentOutOfFile { .. }
                    )
                },
            ),
        ];
        for (what, whole, parse, check) in cases {
            for len in 0..whole.len() {
                match parse(&whole[..len]) {
                    Err(e) => assert!(check(&e), "{what} cut at {len}: unexpected error {e:?}"),
                    Ok(()) => panic!("{what} cut at {len}: accepted"),
                }
            }
            parse(whole).unwrap_or_else(|e| panic!("{what}: {e:?}"));
        }
    }

    /// A note segment cut at every length: a cut inside a note whose header
    /// is whole is that note's truncation; a cut at a note's end or in the
    /// next one's header keeps the whole notes before it.
    #[test]
    fn truncated_note_segments() {
        let notes: &[(&[u8], u32, &[u8])] = &[
            (b"CORE", 1, &[0xaa; 20]),
            (b"VMCOREINFO", 0, b"OSRELEASE=6.1.0\nPAGESIZE=4096\n"),
            // A name and a descriptor that need padding.
            (b"LINUX", 0x202, &[1, 2, 3, 4, 5, 6, 7]),
        ];
        let mut core = CoreBuilder::new();
        // Where each note starts and where its descriptor ends, in the
        // segment, as the builder lays them out.
        let mut bounds = Vec::new();
        let mut at = 0usize;
        for (name, note_type, desc) in notes {
            core.note(name, *note_type, desc);
            let desc_start = (at + 12 + name.len() + 1).next_multiple_of(4);
            bounds.push((at, desc_start + desc.len()));
            at = (desc_start + desc.len()).next_multiple_of(4);
        }
        let bytes = core.build();
        let segment_offset = ELF_HEADER_SIZE + PHDR_SIZE;
        let segment = &bytes[segment_offset..segment_offset + at];
        let expected: Vec<Note> = notes
            .iter()
            .map(|(name, note_type, desc)| Note {
                name: name.to_vec(),
                note_type: *note_type,
                desc: desc.to_vec(),
            })
            .collect();

        for len in 0..=segment.len() {
            let whole = bounds.iter().filter(|(_, end)| *end <= len).count();
            let next_start = match whole {
                0 => 0,
                n => bounds[n - 1].1.next_multiple_of(4).min(len),
            };
            let cut_inside = whole < notes.len() && len - next_start >= 12;
            let mut got = Vec::new();
            let result = parse_notes(&segment[..len], segment_offset as u64, &mut got);
            if cut_inside {
                let offset = (segment_offset + bounds[whole].0) as u64;
                assert!(
                    matches!(result, Err(ElfError::NoteTruncated { offset: o }) if o == offset),
                    "cut at {len}: {result:?}"
                );
            } else {
                assert!(result.is_ok(), "cut at {len}: {result:?}");
                assert_eq!(got, expected[..whole], "cut at {len}");
            }
        }
    }

    #[test]
    fn slice_reads_are_bounds_checked() {
        let data = [1u8, 2, 3];
        let mut buf = [0u8; 2];
        assert!(data[..].read_exact_at(&mut buf, 1).is_ok());
        assert_eq!(buf, [2, 3]);
        assert!(data[..].read_exact_at(&mut buf, 2).is_err());
        assert!(data[..].read_exact_at(&mut buf, u64::MAX).is_err());
        assert!(data[..].read_exact_at(&mut [], 3).is_ok());
    }
}

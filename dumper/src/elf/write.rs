//! Writing ELF core headers: the one encoder of the layouts that
//! [`super::read_core_headers`] decodes. Salvaging a cut dump rewrites its
//! headers with it, the test builders make their vmcores with it, and dump
//! levels will write the headers of the cores they filter.

use super::{
    ElfHeader, ProgramHeader, ELF_HEADER_SIZE, EM_X86_64, ET_CORE, PHDR_SIZE, PT_LOAD, PT_NOTE,
};

/// `PF_R | PF_W | PF_X`, what the kernel gives every segment of a vmcore.
pub const PF_RWX: u32 = 7;

impl ElfHeader {
    /// The header of an x86_64 core whose `count` program headers follow
    /// it, with no section headers.
    pub fn core(count: u16) -> ElfHeader {
        ElfHeader {
            e_ident_rest: [0; 9],
            e_machine: EM_X86_64,
            e_entry: 0,
            phdr_offset: ELF_HEADER_SIZE as u64,
            shdr_offset: 0,
            e_flags: 0,
            e_phnum: count,
            e_shentsize: 64,
            e_shnum: 0,
            e_shstrndx: 0,
        }
    }

    /// The 64 bytes of the header: ELF64, little-endian, version 1, ET_CORE.
    pub fn to_bytes(&self) -> [u8; ELF_HEADER_SIZE] {
        let mut out = Out::<ELF_HEADER_SIZE>::default();
        out.bytes(b"\x7fELF\x02\x01\x01");
        out.bytes(&self.e_ident_rest);
        out.u16(ET_CORE);
        out.u16(self.e_machine);
        out.u32(1);
        out.u64(self.e_entry);
        out.u64(self.phdr_offset);
        out.u64(self.shdr_offset);
        out.u32(self.e_flags);
        out.u16(ELF_HEADER_SIZE as u16);
        out.u16(PHDR_SIZE as u16);
        out.u16(self.e_phnum);
        out.u16(self.e_shentsize);
        out.u16(self.e_shnum);
        out.u16(self.e_shstrndx);
        out.finish()
    }
}

impl ProgramHeader {
    /// A PT_LOAD of `file_size` bytes at `file_offset` mapping `mem_size`
    /// bytes of memory at `vaddr` (virtual) and `paddr` (physical).
    pub fn load(file_offset: u64, vaddr: u64, paddr: u64, file_size: u64, mem_size: u64) -> Self {
        ProgramHeader {
            p_type: PT_LOAD,
            p_flags: PF_RWX,
            file_offset,
            vaddr,
            paddr,
            file_size,
            mem_size,
            align: 0,
        }
    }

    /// A PT_NOTE of `size` bytes of notes at `file_offset`.
    pub fn note(file_offset: u64, size: u64) -> Self {
        ProgramHeader {
            p_type: PT_NOTE,
            p_flags: 0,
            file_offset,
            vaddr: 0,
            paddr: 0,
            file_size: size,
            mem_size: size,
            align: 0,
        }
    }

    /// The 56 bytes of the header.
    pub fn to_bytes(&self) -> [u8; PHDR_SIZE] {
        let mut out = Out::<PHDR_SIZE>::default();
        out.u32(self.p_type);
        out.u32(self.p_flags);
        out.u64(self.file_offset);
        out.u64(self.vaddr);
        out.u64(self.paddr);
        out.u64(self.file_size);
        out.u64(self.mem_size);
        out.u64(self.align);
        out.finish()
    }
}

/// One note as it is in a note segment: the 12-byte header (name size
/// with the NUL, descriptor size, type), the NUL-terminated name and the
/// descriptor, each padded to 4 bytes.
pub fn note(name: &[u8], note_type: u32, desc: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 + name.len() + desc.len() + 8);
    out.extend_from_slice(&(name.len() as u32 + 1).to_le_bytes());
    out.extend_from_slice(&(desc.len() as u32).to_le_bytes());
    out.extend_from_slice(&note_type.to_le_bytes());
    out.extend_from_slice(name);
    out.push(0);
    out.resize(out.len().next_multiple_of(4), 0);
    out.extend_from_slice(desc);
    out.resize(out.len().next_multiple_of(4), 0);
    out
}

/// One PT_LOAD of a core being built: where its memory is, and its data
/// (the first `data.len()` bytes of `mem_size`; the rest reads as zeros).
#[derive(Clone, Copy, Debug)]
pub struct Load<'a> {
    pub vaddr: u64,
    pub paddr: u64,
    pub data: &'a [u8],
    pub mem_size: u64,
}

/// A whole core file: the ELF header, a PT_NOTE holding `notes` (when there
/// are any) and a PT_LOAD per load, in that order; then the notes right
/// after the program headers, then each load's data at the next multiple
/// of `data_align` (a power of two: 4096 puts memory on page boundaries,
/// as /proc/vmcore does).
pub fn core_file(notes: &[u8], loads: &[Load], data_align: u64) -> Vec<u8> {
    let count = loads.len() + usize::from(!notes.is_empty());
    let mut offset = (ELF_HEADER_SIZE + PHDR_SIZE * count) as u64;
    let mut headers = Vec::with_capacity(count);
    if !notes.is_empty() {
        headers.push(ProgramHeader::note(offset, notes.len() as u64));
        offset += notes.len() as u64;
    }
    let mut placed = Vec::with_capacity(loads.len());
    for load in loads {
        offset = offset.next_multiple_of(data_align);
        let size = load.data.len() as u64;
        headers.push(ProgramHeader::load(
            offset,
            load.vaddr,
            load.paddr,
            size,
            load.mem_size,
        ));
        placed.push(offset);
        offset += size;
    }
    let mut out = Vec::with_capacity(offset as usize);
    out.extend_from_slice(&ElfHeader::core(count as u16).to_bytes());
    for header in &headers {
        out.extend_from_slice(&header.to_bytes());
    }
    out.extend_from_slice(notes);
    for (load, at) in loads.iter().zip(placed) {
        out.resize(at as usize, 0);
        out.extend_from_slice(load.data);
    }
    out
}

/// Little-endian fields into a fixed-size buffer, in order.
struct Out<const N: usize> {
    buf: [u8; N],
    at: usize,
}

impl<const N: usize> Default for Out<N> {
    fn default() -> Self {
        Out { buf: [0; N], at: 0 }
    }
}

impl<const N: usize> Out<N> {
    fn bytes(&mut self, bytes: &[u8]) {
        self.buf[self.at..self.at + bytes.len()].copy_from_slice(bytes);
        self.at += bytes.len();
    }

    fn u16(&mut self, value: u16) {
        self.bytes(&value.to_le_bytes());
    }

    fn u32(&mut self, value: u32) {
        self.bytes(&value.to_le_bytes());
    }

    fn u64(&mut self, value: u64) {
        self.bytes(&value.to_le_bytes());
    }

    /// The buffer, which the fields must have filled exactly.
    fn finish(self) -> [u8; N] {
        debug_assert_eq!(self.at, N, "the fields fill the header");
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::super::{parse_elf_header, parse_program_header, read_core_headers, LoadSegment};
    use super::*;

    #[test]
    fn headers_read_back_as_written() {
        let header = ElfHeader {
            e_ident_rest: [3, 0, 0, 0, 0, 0, 0, 0, 0],
            e_entry: 0x1234,
            shdr_offset: 0x4000,
            e_flags: 9,
            e_shnum: 1,
            e_shstrndx: 0,
            ..ElfHeader::core(0xffff)
        };
        assert_eq!(parse_elf_header(&header.to_bytes()).unwrap(), header);
        let program = ProgramHeader {
            align: 4096,
            ..ProgramHeader::load(0x2000, 0xffff_8880_0000_0000, 0x10_0000, 100, 4096)
        };
        assert_eq!(parse_program_header(&program.to_bytes()).unwrap(), program);
        let note_header = ProgramHeader::note(120, 48);
        assert_eq!(
            parse_program_header(&note_header.to_bytes()).unwrap(),
            note_header
        );
    }

    #[test]
    fn notes_are_padded_and_named_with_a_nul() {
        let bytes = note(b"CORE", 1, &[0xaa; 5]);
        assert_eq!(bytes.len(), 12 + 8 + 8);
        assert_eq!(&bytes[..12], &[5, 0, 0, 0, 5, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(&bytes[12..20], b"CORE\0\0\0\0");
        assert_eq!(&bytes[20..25], &[0xaa; 5]);
    }

    #[test]
    fn a_core_file_reads_back_with_its_notes_and_memory() {
        let notes = [
            note(b"CORE", 1, &[7; 20]),
            note(b"VMCOREINFO", 0, b"PAGESIZE=4096\n"),
        ]
        .concat();
        let first = vec![1u8; 5000];
        let second = vec![2u8; 100];
        let loads = [
            Load {
                vaddr: 0xffff_8880_0000_0000,
                paddr: 0,
                data: &first,
                mem_size: 8192,
            },
            Load {
                vaddr: 0xffff_8880_0010_0000,
                paddr: 0x10_0000,
                data: &second,
                mem_size: 100,
            },
        ];
        let core = core_file(&notes, &loads, 4096);
        let headers = read_core_headers(core.as_slice()).unwrap();
        assert_eq!(headers.phdr_count, 3);
        assert_eq!(headers.notes.len(), 2);
        assert_eq!(
            headers.find_note(b"VMCOREINFO").unwrap().desc,
            b"PAGESIZE=4096\n"
        );
        assert_eq!(
            headers.loads,
            [
                LoadSegment {
                    file_offset: 4096,
                    vaddr: 0xffff_8880_0000_0000,
                    paddr: 0,
                    file_size: 5000,
                    mem_size: 8192,
                },
                LoadSegment {
                    file_offset: 12288,
                    vaddr: 0xffff_8880_0010_0000,
                    paddr: 0x10_0000,
                    file_size: 100,
                    mem_size: 100,
                },
            ]
        );
        assert_eq!(&core[4096..9096], first.as_slice());
        assert_eq!(&core[12288..], second.as_slice());
        // No notes: no PT_NOTE.
        let bare = core_file(&[], &loads[1..], 16);
        assert_eq!(read_core_headers(bare.as_slice()).unwrap().phdr_count, 1);
    }
}

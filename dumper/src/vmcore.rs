//! A vmcore opened for reading the crashed kernel's memory by physical or
//! kernel virtual address.
//!
//! Virtual addresses are translated through the PT_LOAD segments, not
//! through page tables: kexec (kexec_file_load and kexec-tools alike) gives
//! every PT_LOAD a `p_vaddr`, the kernel image's segment in the
//! `__START_KERNEL_map` range and each RAM segment at the direct-map address
//! of its `p_paddr`. That covers the kernel's static variables and memory
//! from the page and slab allocators, which is all the printk ring needs;
//! vmalloc and module addresses are not reachable this way.

use std::io;

use thiserror::Error;

use crate::elf::{read_core_headers, CoreHeaders, ElfError, LoadSegment, ReadAt};
use crate::vmcoreinfo::{VmcoreInfo, VmcoreInfoError};

/// Why a vmcore could not be opened or read.
#[derive(Debug, Error)]
pub enum VmcoreError {
    #[error("cannot read the vmcore headers")]
    Headers(#[from] ElfError),
    #[error("physical address {paddr:#x} is in no PT_LOAD segment")]
    UnmappedPhysical { paddr: u64 },
    #[error("kernel virtual address {vaddr:#x} is in no PT_LOAD segment")]
    UnmappedVirtual { vaddr: u64 },
    #[error("cannot read {len} bytes of the vmcore at file offset {offset:#x}")]
    Read {
        offset: u64,
        len: usize,
        #[source]
        source: io::Error,
    },
}

/// A vmcore: its headers, its VMCOREINFO and random access to its memory.
pub struct Vmcore<R> {
    reader: R,
    headers: CoreHeaders,
    vmcoreinfo: Option<VmcoreInfo>,
    vmcoreinfo_error: Option<VmcoreInfoError>,
}

/// Which address a PT_LOAD lookup matches.
#[derive(Clone, Copy)]
enum Space {
    Physical,
    Virtual,
}

impl<R: ReadAt> Vmcore<R> {
    /// Reads the headers and the VMCOREINFO note. A missing or unparsable
    /// VMCOREINFO is not an error: the memory can still be saved, only the
    /// log cannot be read; [`Vmcore::vmcoreinfo_error`] says why it is
    /// missing.
    pub fn open(reader: R) -> Result<Self, VmcoreError> {
        let headers = read_core_headers(&reader)?;
        let (vmcoreinfo, vmcoreinfo_error) = match headers.find_note(b"VMCOREINFO") {
            None => (None, None),
            Some(note) => match VmcoreInfo::parse(&note.desc) {
                Ok(info) => (Some(info), None),
                Err(e) => {
                    log::warn!("ignoring VMCOREINFO: {e}");
                    (None, Some(e))
                }
            },
        };
        Ok(Vmcore {
            reader,
            headers,
            vmcoreinfo,
            vmcoreinfo_error,
        })
    }

    pub fn headers(&self) -> &CoreHeaders {
        &self.headers
    }

    pub fn vmcoreinfo(&self) -> Option<&VmcoreInfo> {
        self.vmcoreinfo.as_ref()
    }

    /// Why the VMCOREINFO note was present but unusable.
    pub fn vmcoreinfo_error(&self) -> Option<&VmcoreInfoError> {
        self.vmcoreinfo_error.as_ref()
    }

    pub fn reader(&self) -> &R {
        &self.reader
    }

    pub fn into_reader(self) -> R {
        self.reader
    }

    /// Reads physical memory; the range may span adjacent segments.
    pub fn read_phys(&self, paddr: u64, buf: &mut [u8]) -> Result<(), VmcoreError> {
        self.read_mapped(Space::Physical, paddr, buf)
    }

    /// Reads kernel virtual memory (kernel image or direct map); the range
    /// may span adjacent segments.
    pub fn read_virt(&self, vaddr: u64, buf: &mut [u8]) -> Result<(), VmcoreError> {
        self.read_mapped(Space::Virtual, vaddr, buf)
    }

    /// Reads a little-endian u64 at a kernel virtual address.
    pub fn read_virt_u64(&self, vaddr: u64) -> Result<u64, VmcoreError> {
        let mut bytes = [0u8; 8];
        self.read_virt(vaddr, &mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    /// Reads a little-endian u32 at a kernel virtual address.
    pub fn read_virt_u32(&self, vaddr: u64) -> Result<u32, VmcoreError> {
        let mut bytes = [0u8; 4];
        self.read_virt(vaddr, &mut bytes)?;
        Ok(u32::from_le_bytes(bytes))
    }

    fn read_mapped(&self, space: Space, addr: u64, buf: &mut [u8]) -> Result<(), VmcoreError> {
        let unmapped = |at: u64| match space {
            Space::Physical => VmcoreError::UnmappedPhysical { paddr: at },
            Space::Virtual => VmcoreError::UnmappedVirtual { vaddr: at },
        };
        let mut done = 0usize;
        while done < buf.len() {
            let at = addr
                .checked_add(done as u64)
                .ok_or_else(|| unmapped(u64::MAX))?;
            let segment = self.segment_for(space, at).ok_or_else(|| unmapped(at))?;
            let start = match space {
                Space::Physical => segment.paddr,
                Space::Virtual => segment.vaddr,
            };
            // The segment contains `at`, and read_core_headers() checked
            // that none of its ranges overflow.
            let in_segment = at - start;
            let chunk = (segment.mem_size - in_segment).min((buf.len() - done) as u64) as usize;
            let out = &mut buf[done..done + chunk];
            // Bytes past p_filesz are not in the file and read as zeroes.
            let in_file = segment
                .file_size
                .saturating_sub(in_segment)
                .min(chunk as u64) as usize;
            let (file_part, zero_part) = out.split_at_mut(in_file);
            if !file_part.is_empty() {
                let offset = segment.file_offset + in_segment;
                self.reader
                    .read_exact_at(file_part, offset)
                    .map_err(|source| VmcoreError::Read {
                        offset,
                        len: in_file,
                        source,
                    })?;
            }
            zero_part.fill(0);
            done += chunk;
        }
        Ok(())
    }

    /// The first PT_LOAD containing `addr`, in header order, as makedumpfile
    /// picks it when segments overlap.
    fn segment_for(&self, space: Space, addr: u64) -> Option<&LoadSegment> {
        self.headers.loads.iter().find(|s| {
            let start = match space {
                Space::Physical => s.paddr,
                Space::Virtual => s.vaddr,
            };
            addr >= start && addr - start < s.mem_size
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elf::synth::{CoreBuilder, Memory, KERNEL_VADDR, PAGE_OFFSET, RAM_PADDR};

    fn two_adjacent_segments() -> Vec<u8> {
        let mut core = CoreBuilder::new();
        core.note(b"VMCOREINFO", 0, b"OSRELEASE=6.1.0\nPAGESIZE=4096\n");
        core.load(PAGE_OFFSET + 0x1000, 0x1000, vec![0x11; 16]);
        core.load(PAGE_OFFSET + 0x1010, 0x1010, vec![0x22; 16]);
        // Memory size beyond file size reads as zeroes.
        core.load_with_mem_size(PAGE_OFFSET + 0x1020, 0x1020, vec![0x33; 4], 12);
        core.build()
    }

    #[test]
    fn reads_span_segments() {
        let bytes = two_adjacent_segments();
        let core = Vmcore::open(bytes.as_slice()).unwrap();
        assert_eq!(core.vmcoreinfo().unwrap().page_size(), Some(4096));

        let mut buf = [0u8; 8];
        core.read_phys(0x100c, &mut buf).unwrap();
        assert_eq!(buf, [0x11, 0x11, 0x11, 0x11, 0x22, 0x22, 0x22, 0x22]);
        core.read_virt(PAGE_OFFSET + 0x100c, &mut buf).unwrap();
        assert_eq!(buf, [0x11, 0x11, 0x11, 0x11, 0x22, 0x22, 0x22, 0x22]);

        let mut buf = [0xffu8; 12];
        core.read_phys(0x101e, &mut buf).unwrap();
        assert_eq!(buf, [0x22, 0x22, 0x33, 0x33, 0x33, 0x33, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn unmapped_addresses_are_named() {
        let bytes = two_adjacent_segments();
        let core = Vmcore::open(bytes.as_slice()).unwrap();
        let mut buf = [0u8; 8];
        let err = core.read_phys(0xfff, &mut buf).unwrap_err();
        assert!(
            matches!(err, VmcoreError::UnmappedPhysical { paddr: 0xfff }),
            "{err}"
        );
        // The read starts inside, and runs off the end of the last segment.
        let err = core.read_phys(0x102a, &mut buf).unwrap_err();
        assert!(
            matches!(err, VmcoreError::UnmappedPhysical { paddr: 0x102c }),
            "{err}"
        );
        let err = core.read_virt(KERNEL_VADDR, &mut buf).unwrap_err();
        assert_eq!(
            err.to_string(),
            "kernel virtual address 0xffffffff81000000 is in no PT_LOAD segment"
        );
        let err = core.read_virt(u64::MAX - 2, &mut buf).unwrap_err();
        assert!(matches!(err, VmcoreError::UnmappedVirtual { .. }), "{err}");
        // An empty read needs no mapping.
        core.read_virt(0, &mut []).unwrap();
    }

    #[test]
    fn kernel_image_and_direct_map() {
        let mut memory = Memory::new();
        let var = memory.alloc_kernel(8);
        memory.write_u64(var, 0x0123_4567_89ab_cdef);
        let obj = memory.alloc_ram(4);
        memory.write_u32(obj, 0xfeed_f00d);
        let bytes = memory.build();
        let core = Vmcore::open(bytes.as_slice()).unwrap();
        assert_eq!(core.read_virt_u64(var).unwrap(), 0x0123_4567_89ab_cdef);
        assert_eq!(core.read_virt_u32(obj).unwrap(), 0xfeed_f00d);
        let mut buf = [0u8; 4];
        core.read_phys(obj - PAGE_OFFSET, &mut buf).unwrap();
        assert_eq!(u32::from_le_bytes(buf), 0xfeed_f00d);
        assert!(obj - PAGE_OFFSET >= RAM_PADDR);
        let info = core.vmcoreinfo().unwrap();
        assert_eq!(info.os_release(), Some("6.1.0-synthetic"));
    }

    #[test]
    fn bad_vmcoreinfo_does_not_stop_open() {
        let mut core = CoreBuilder::new();
        core.note(b"VMCOREINFO", 0, b"no separator here\n");
        core.load(PAGE_OFFSET, 0, vec![0; 8]);
        let bytes = core.build();
        let core = Vmcore::open(bytes).unwrap();
        assert!(core.vmcoreinfo().is_none());
        assert!(matches!(
            core.vmcoreinfo_error(),
            Some(VmcoreInfoError::MissingSeparator { line: 1, .. })
        ));
        let mut buf = [1u8; 8];
        core.read_phys(0, &mut buf).unwrap();
        assert_eq!(buf, [0; 8]);
    }

    #[test]
    fn file_reader() {
        let bytes = two_adjacent_segments();
        let mut file = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut file, &bytes).unwrap();
        let core = Vmcore::open(file).unwrap();
        let mut buf = [0u8; 2];
        core.read_phys(0x100f, &mut buf).unwrap();
        assert_eq!(buf, [0x11, 0x22]);
        assert_eq!(core.reader().size(), bytes.len() as u64);
    }
}

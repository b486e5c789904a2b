//! `.modinfo` and other sections of module ELF objects, read without an
//! ELF library: bounds are checked on every field, since a damaged module
//! file must fail the image build with its path, not crash it.

/// The `key=value` strings of an ELF object's `.modinfo` section, in order;
/// empty when it has none. Strings that are not UTF-8 are skipped.
pub fn modinfo(elf: &[u8]) -> Result<Vec<(&str, &str)>, &'static str> {
    let Some(section) = elf_section(elf, ".modinfo")? else {
        return Ok(Vec::new());
    };
    Ok(section
        .split(|&byte| byte == 0)
        .filter_map(|entry| std::str::from_utf8(entry).ok()?.split_once('='))
        .collect())
}

/// The contents of the named section of an ELF object (32 or 64 bits,
/// either byte order), read from the section header table.
pub fn elf_section<'a>(elf: &'a [u8], wanted: &str) -> Result<Option<&'a [u8]>, &'static str> {
    if elf.get(..4) != Some(b"\x7fELF") {
        return Err("no ELF magic");
    }
    let wide = match elf.get(4) {
        Some(1) => false,
        Some(2) => true,
        _ => return Err("unknown ELF class"),
    };
    let big_endian = match elf.get(5) {
        Some(1) => false,
        Some(2) => true,
        _ => return Err("unknown ELF byte order"),
    };
    let reader = ElfReader {
        bytes: elf,
        big_endian,
    };
    let truncated = "truncated ELF header";
    let (section_table, entry_size, count, names_index) = if wide {
        (
            reader.u64(0x28).ok_or(truncated)?,
            reader.u16(0x3a).ok_or(truncated)?,
            reader.u16(0x3c).ok_or(truncated)?,
            reader.u16(0x3e).ok_or(truncated)?,
        )
    } else {
        (
            reader.u32(0x20).ok_or(truncated)? as u64,
            reader.u16(0x2e).ok_or(truncated)?,
            reader.u16(0x30).ok_or(truncated)?,
            reader.u16(0x32).ok_or(truncated)?,
        )
    };
    if section_table == 0 {
        return Ok(None);
    }
    let minimum_entry_size = if wide { 64 } else { 40 };
    if (entry_size as usize) < minimum_entry_size {
        return Err("section header entries are too small");
    }
    let section = |index: u64| -> Result<Section, &'static str> {
        let start = index
            .checked_mul(entry_size as u64)
            .and_then(|offset| offset.checked_add(section_table))
            .ok_or("section header table out of range")?;
        reader
            .section(start, wide)
            .ok_or("section header table out of range")
    };
    // With 0xff00 sections or more, the real count and the index of the
    // names section live in section 0 (ELF's extended numbering).
    let first = section(0)?;
    let count = if count == 0 { first.size } else { count as u64 };
    let names_index = if names_index == 0xffff {
        first.link as u64
    } else {
        names_index as u64
    };
    let table_end = count
        .checked_mul(entry_size as u64)
        .and_then(|size| size.checked_add(section_table));
    if !matches!(table_end, Some(end) if end <= elf.len() as u64) {
        return Err("section header table out of range");
    }
    if names_index >= count {
        return Err("section names index out of range");
    }
    let names = reader
        .contents(&section(names_index)?)
        .ok_or("section names out of range")?;
    for index in 0..count {
        let header = section(index)?;
        let name = names
            .get(header.name as usize..)
            .and_then(|rest| rest.split(|&b| b == 0).next())
            .ok_or("section name out of range")?;
        if name == wanted.as_bytes() {
            return reader
                .contents(&header)
                .map(Some)
                .ok_or("section contents out of range");
        }
    }
    Ok(None)
}

struct Section {
    name: u32,
    kind: u32,
    offset: u64,
    size: u64,
    link: u32,
}

struct ElfReader<'a> {
    bytes: &'a [u8],
    big_endian: bool,
}

impl<'a> ElfReader<'a> {
    fn array<const N: usize>(&self, offset: u64) -> Option<[u8; N]> {
        let start = usize::try_from(offset).ok()?;
        self.bytes
            .get(start..start.checked_add(N)?)?
            .try_into()
            .ok()
    }

    fn u16(&self, offset: u64) -> Option<u16> {
        let bytes = self.array(offset)?;
        Some(if self.big_endian {
            u16::from_be_bytes(bytes)
        } else {
            u16::from_le_bytes(bytes)
        })
    }

    fn u32(&self, offset: u64) -> Option<u32> {
        let bytes = self.array(offset)?;
        Some(if self.big_endian {
            u32::from_be_bytes(bytes)
        } else {
            u32::from_le_bytes(bytes)
        })
    }

    fn u64(&self, offset: u64) -> Option<u64> {
        let bytes = self.array(offset)?;
        Some(if self.big_endian {
            u64::from_be_bytes(bytes)
        } else {
            u64::from_le_bytes(bytes)
        })
    }

    fn section(&self, start: u64, wide: bool) -> Option<Section> {
        let at = |delta: u64| start.checked_add(delta);
        if wide {
            Some(Section {
                name: self.u32(start)?,
                kind: self.u32(at(4)?)?,
                offset: self.u64(at(24)?)?,
                size: self.u64(at(32)?)?,
                link: self.u32(at(40)?)?,
            })
        } else {
            Some(Section {
                name: self.u32(start)?,
                kind: self.u32(at(4)?)?,
                offset: self.u32(at(16)?)? as u64,
                size: self.u32(at(20)?)? as u64,
                link: self.u32(at(24)?)?,
            })
        }
    }

    fn contents(&self, section: &Section) -> Option<&'a [u8]> {
        const SHT_NOBITS: u32 = 8;
        if section.kind == SHT_NOBITS {
            return Some(&[]);
        }
        let start = usize::try_from(section.offset).ok()?;
        let end = start.checked_add(usize::try_from(section.size).ok()?)?;
        self.bytes.get(start..end)
    }
}

/// Building small ELF objects for tests: only a section table and the
/// sections' bytes, which is all `.modinfo` readers and depmod look at.
#[cfg(test)]
pub(crate) mod test_elf {
    /// A relocatable ELF64 little-endian object with the given sections
    /// (name, type, contents); a section name table is added.
    pub fn object(sections: &[(&str, u32, Vec<u8>)]) -> Vec<u8> {
        object_with_order(sections, false)
    }

    /// The same, in either byte order.
    pub fn object_with_order(sections: &[(&str, u32, Vec<u8>)], big_endian: bool) -> Vec<u8> {
        let u16_bytes = |v: u16| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let u32_bytes = |v: u32| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let u64_bytes = |v: u64| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let shstrtab = (".shstrtab", 3, Vec::new());
        let mut names = vec![0u8];
        let mut name_offsets = Vec::new();
        for (name, _, _) in sections.iter().chain([&shstrtab]) {
            name_offsets.push(names.len() as u32);
            names.extend_from_slice(name.as_bytes());
            names.push(0);
        }
        let all: Vec<(u32, &[u8])> = sections
            .iter()
            .map(|(_, kind, data)| (*kind, data.as_slice()))
            .chain([(3, names.as_slice())])
            .collect();
        let mut out = vec![0u8; 64];
        let mut placed = Vec::new();
        for (_, data) in &all {
            out.resize(out.len().next_multiple_of(8), 0);
            placed.push(out.len() as u64);
            out.extend_from_slice(data);
        }
        out.resize(out.len().next_multiple_of(8), 0);
        let table = out.len() as u64;
        // Section 0 is the null section; ours follow, so `all[i]` is
        // section i + 1.
        out.extend_from_slice(&[0u8; 64]);
        let strtab_index = sections.iter().position(|(name, _, _)| *name == ".strtab");
        for (index, (kind, data)) in all.iter().enumerate() {
            let mut header = [0u8; 64];
            header[0..4].copy_from_slice(&u32_bytes(name_offsets[index]));
            header[4..8].copy_from_slice(&u32_bytes(*kind));
            header[24..32].copy_from_slice(&u64_bytes(placed[index]));
            header[32..40].copy_from_slice(&u64_bytes(data.len() as u64));
            header[48..56].copy_from_slice(&u64_bytes(1));
            if *kind == 2 {
                // A symbol table links to its string table; its entries are
                // 24 bytes, the first one being the null symbol.
                let link = strtab_index.map_or(0, |i| i as u32 + 1);
                header[40..44].copy_from_slice(&u32_bytes(link));
                header[44..48].copy_from_slice(&u32_bytes(1));
                header[56..64].copy_from_slice(&u64_bytes(24));
            }
            out.extend_from_slice(&header);
        }
        let count = all.len() as u16 + 1;
        out[..4].copy_from_slice(b"\x7fELF");
        out[4] = 2; // ELFCLASS64
        out[5] = if big_endian { 2 } else { 1 };
        out[6] = 1; // EV_CURRENT
        out[16..18].copy_from_slice(&u16_bytes(1)); // ET_REL
        out[18..20].copy_from_slice(&u16_bytes(62)); // EM_X86_64
        out[20..24].copy_from_slice(&u32_bytes(1));
        out[0x28..0x30].copy_from_slice(&u64_bytes(table));
        out[0x34..0x36].copy_from_slice(&u16_bytes(64));
        out[0x3a..0x3c].copy_from_slice(&u16_bytes(64));
        out[0x3c..0x3e].copy_from_slice(&u16_bytes(count));
        out[0x3e..0x40].copy_from_slice(&u16_bytes(count - 1));
        out
    }

    /// A `.modinfo` section's contents.
    pub fn modinfo_section(pairs: &[&str]) -> Vec<u8> {
        pairs
            .iter()
            .flat_map(|pair| pair.bytes().chain([0]))
            .collect()
    }

    /// A module that exports `exports` and uses `uses`, with the given
    /// `.modinfo` strings: enough for both our `.modinfo` reader and depmod,
    /// which matches undefined symbols against other modules' exports.
    pub fn module(modinfo: &[&str], exports: &[&str], uses: &[&str]) -> Vec<u8> {
        let mut strtab = vec![0u8];
        let mut symtab = vec![0u8; 24];
        for symbol in uses {
            let name = strtab.len() as u32;
            strtab.extend_from_slice(symbol.as_bytes());
            strtab.push(0);
            let mut entry = [0u8; 24];
            entry[0..4].copy_from_slice(&name.to_le_bytes());
            entry[4] = 0x10; // STB_GLOBAL, STT_NOTYPE; st_shndx 0 is SHN_UNDEF.
            symtab.extend_from_slice(&entry);
        }
        let ksymtab_strings: Vec<u8> = exports.iter().flat_map(|s| s.bytes().chain([0])).collect();
        let mut sections = vec![(".modinfo", 1, modinfo_section(modinfo))];
        if !exports.is_empty() {
            sections.push(("__ksymtab_strings", 1, ksymtab_strings));
        }
        sections.push((".symtab", 2, symtab));
        sections.push((".strtab", 3, strtab));
        object(&sections)
    }
}

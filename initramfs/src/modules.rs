//! Kernel modules: which files a set of module names needs, in load order.
//!
//! The capture kernel has no modprobe: PID 1 loads the files listed in the
//! image one by one with finit_module(2), so the image builder must do
//! modprobe's work here, on the host. Dependencies come from `modules.dep`
//! when the tree has one; Debian's kernel packages ship none (the postinst
//! runs depmod), so otherwise they come from each module's `.modinfo`
//! `depends=`, which is what depmod would have written anyway for in-tree
//! modules. Modules listed in `modules.builtin` are part of the kernel image
//! and need no file.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Failures while reading a module tree or resolving names in it.
#[derive(Debug, Error)]
pub enum ModuleError {
    #[error("cannot read directory {path}")]
    ReadDir { path: PathBuf, source: io::Error },
    #[error("cannot read module index {path}")]
    ReadIndex { path: PathBuf, source: io::Error },
    #[error("cannot read module {path}")]
    ReadModule { path: PathBuf, source: io::Error },
    #[error("cannot decompress module {path}")]
    Decompress { path: PathBuf, source: io::Error },
    #[error(
        "module {path} is compressed in a format lifeboat cannot read (use .ko, .ko.xz or .ko.zst)"
    )]
    UnsupportedCompression { path: PathBuf },
    #[error("module {path} is not a valid ELF file: {reason}")]
    BadElf { path: PathBuf, reason: &'static str },
    #[error("module `{name}`{} is neither a file nor built in, in {modules_dir}", needed_by_text(.needed_by))]
    NotFound {
        name: String,
        needed_by: Option<String>,
        modules_dir: PathBuf,
    },
    #[error("modules depend on each other in a cycle: {}", .chain.join(" -> "))]
    Cycle { chain: Vec<String> },
}

fn needed_by_text(needed_by: &Option<String>) -> String {
    match needed_by {
        Some(user) => format!(" (needed by `{user}`)"),
        None => String::new(),
    }
}

/// A module file to put in the image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Module {
    /// The canonical name, with `_` for `-`: `virtio_blk`.
    pub name: String,
    /// Where the file was found.
    pub source: PathBuf,
    /// The ELF object, decompressed: finit_module(2) in the capture kernel
    /// only decompresses when the kernel was built with
    /// CONFIG_MODULE_DECOMPRESS, which Debian's is not.
    pub contents: Vec<u8>,
}

/// Module names compare with `-` and `_` equivalent, as in modprobe; this is
/// the form used for comparing and in the image.
pub fn canonical_name(name: &str) -> String {
    name.replace('-', "_")
}

/// The module name of a file name (`virtio-rng.ko.xz` → `virtio_rng`), or
/// `None` when it is not a module file.
fn module_name_of_file(file_name: &str) -> Option<String> {
    const SUFFIXES: &[&str] = &[".ko", ".ko.xz", ".ko.zst", ".ko.gz"];
    SUFFIXES
        .iter()
        .find_map(|suffix| file_name.strip_suffix(suffix))
        .filter(|stem| !stem.is_empty())
        .map(canonical_name)
}

/// Modules that a module needs although neither `modules.dep` nor its
/// `.modinfo` says so: on a normal system the kernel asks modprobe for them
/// at run time (request_module()) or udev loads them by device alias, and in
/// the capture kernel neither runs. Like softdeps, they are taken only when
/// the tree has them. Both were checked by booting Debian's cloud kernel.
fn implicit_softdeps(name: &str, depends: &[String]) -> &'static [&'static str] {
    // The modules that provide a virtio bus to drivers on; they use the
    // virtio core themselves.
    const VIRTIO_TRANSPORTS: &[&str] = &["virtio_pci", "virtio_mmio", "virtio_vdpa"];
    match name {
        // A vfat mount loads the default codepage (437) and I/O charset
        // (Debian: "ascii"; elsewhere often "utf8") as NLS modules and fails
        // without them.
        "vfat" => &["nls_cp437", "nls_ascii", "nls_utf8"],
        // A virtio driver has no symbol dependency on a transport, but sees
        // no device until one is loaded. PCI is the transport of QEMU's and
        // the clouds' x86 machines; virtio_mmio (microVMs) can be named in
        // the config's modules.
        _ if depends.iter().any(|dep| dep == "virtio") && !VIRTIO_TRANSPORTS.contains(&name) => {
            &["virtio_pci"]
        }
        _ => &[],
    }
}

/// A `/lib/modules/<release>` tree, indexed.
#[derive(Debug)]
pub struct ModuleTree {
    dir: PathBuf,
    /// Canonical name → file, relative to `dir` (or absolute, as an old
    /// depmod wrote in `modules.dep`).
    files: BTreeMap<String, PathBuf>,
    builtin: BTreeSet<String>,
    /// Canonical name → the names of its dependencies, from `modules.dep`;
    /// `None` when the tree has no `modules.dep`.
    dep_index: Option<BTreeMap<String, Vec<String>>>,
    /// Canonical name → `pre:` softdeps, from `modules.softdep`.
    softdep_index: BTreeMap<String, Vec<String>>,
}

impl ModuleTree {
    /// Indexes a tree: `modules.dep` when present, else every module file
    /// under the directory.
    pub fn open(dir: &Path) -> Result<ModuleTree, ModuleError> {
        let builtin = match read_index(&dir.join("modules.builtin"))? {
            Some(text) => parse_builtin(&text),
            None => BTreeSet::new(),
        };
        let softdep_index = match read_index(&dir.join("modules.softdep"))? {
            Some(text) => parse_softdep_file(&text),
            None => BTreeMap::new(),
        };
        let (files, dep_index) = match read_index(&dir.join("modules.dep"))? {
            Some(text) => {
                let (files, deps) = parse_modules_dep(&text);
                (files, Some(deps))
            }
            None => (walk(dir)?, None),
        };
        Ok(ModuleTree {
            dir: dir.to_owned(),
            files,
            builtin,
            dep_index,
            softdep_index,
        })
    }

    /// Whether the tree has a file for the module.
    pub fn has_file(&self, name: &str) -> bool {
        self.files.contains_key(&canonical_name(name))
    }

    /// Whether the module is part of the kernel image.
    pub fn is_builtin(&self, name: &str) -> bool {
        self.builtin.contains(&canonical_name(name))
    }

    /// Whether dependencies come from `modules.dep` (else from `.modinfo`).
    pub fn has_modules_dep(&self) -> bool {
        self.dep_index.is_some()
    }

    /// The files the requested modules need, dependencies first, each once.
    /// Built-in modules need no file and are left out.
    pub fn resolve(&self, requested: &[String]) -> Result<Vec<Module>, ModuleError> {
        let mut resolver = Resolver {
            tree: self,
            states: HashMap::new(),
            stack: Vec::new(),
            order: Vec::new(),
        };
        for name in requested {
            resolver.visit(&canonical_name(name), Edge::Requested)?;
        }
        Ok(resolver.order)
    }

    fn load(&self, name: &str, relative: &Path) -> Result<LoadedModule, ModuleError> {
        let path = self.dir.join(relative);
        let contents = read_module(&path)?;
        let info = modinfo(&contents).map_err(|reason| ModuleError::BadElf {
            path: path.clone(),
            reason,
        })?;
        let mut depends: Vec<String> = match &self.dep_index {
            Some(index) => index.get(name).cloned().unwrap_or_default(),
            None => info
                .iter()
                .filter(|(key, _)| *key == "depends")
                .flat_map(|(_, value)| value.split(','))
                .filter(|dep| !dep.is_empty())
                .map(canonical_name)
                .collect(),
        };
        depends.dedup();
        let mut softdeps: Vec<String> = info
            .iter()
            .filter(|(key, _)| *key == "softdep")
            .flat_map(|(_, value)| parse_softdep_pre(value))
            .collect();
        softdeps.extend(self.softdep_index.get(name).into_iter().flatten().cloned());
        softdeps.extend(
            implicit_softdeps(name, &depends)
                .iter()
                .map(|dep| (*dep).to_owned()),
        );
        Ok(LoadedModule {
            module: Module {
                name: name.to_owned(),
                source: path,
                contents,
            },
            depends,
            softdeps,
        })
    }
}

struct LoadedModule {
    module: Module,
    depends: Vec<String>,
    softdeps: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Visiting,
    Done,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Edge {
    Requested,
    Depends,
    Softdep,
}

/// A depth-first walk that emits each module after everything it needs.
struct Resolver<'a> {
    tree: &'a ModuleTree,
    states: HashMap<String, State>,
    stack: Vec<String>,
    order: Vec<Module>,
}

impl Resolver<'_> {
    fn visit(&mut self, name: &str, edge: Edge) -> Result<(), ModuleError> {
        match self.states.get(name) {
            Some(State::Done) => return Ok(()),
            Some(State::Visiting) if edge == Edge::Softdep => {
                // modprobe also breaks softdep loops: the module is already
                // on its way in.
                log::debug!("softdep loop through `{name}` ignored");
                return Ok(());
            }
            Some(State::Visiting) => {
                let start = self.stack.iter().position(|n| n == name).unwrap_or(0);
                let mut chain = self.stack[start..].to_vec();
                chain.push(name.to_owned());
                return Err(ModuleError::Cycle { chain });
            }
            None => {}
        }
        if self.tree.builtin.contains(name) {
            self.states.insert(name.to_owned(), State::Done);
            return Ok(());
        }
        let Some(relative) = self.tree.files.get(name) else {
            if edge == Edge::Softdep {
                // Softdeps often name aliases (`crc32c`, `crypto-crc32c`) or
                // optional helpers; only modules that exist are taken.
                log::debug!("softdep `{name}` is not a module of the tree, skipped");
                return Ok(());
            }
            return Err(ModuleError::NotFound {
                name: name.to_owned(),
                needed_by: self.stack.last().cloned(),
                modules_dir: self.tree.dir.clone(),
            });
        };
        self.states.insert(name.to_owned(), State::Visiting);
        self.stack.push(name.to_owned());
        let loaded = self.tree.load(name, relative)?;
        // As modprobe does, `pre:` softdeps go in before the module's own
        // dependencies.
        for dep in &loaded.softdeps {
            self.visit(dep, Edge::Softdep)?;
        }
        for dep in &loaded.depends {
            self.visit(dep, Edge::Depends)?;
        }
        self.stack.pop();
        self.states.insert(name.to_owned(), State::Done);
        self.order.push(loaded.module);
        Ok(())
    }
}

/// Reads an index file of the tree; `None` when it does not exist.
fn read_index(path: &Path) -> Result<Option<String>, ModuleError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ModuleError::ReadIndex {
            path: path.to_owned(),
            source,
        }),
    }
}

/// `modules.builtin`: one path per line (`kernel/fs/ext4/ext4.ko`).
fn parse_builtin(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| module_name_of_file(line.trim().rsplit('/').next()?))
        .collect()
}

/// `modules.dep`: `path: dep-path dep-path…` per module, dependencies being
/// the whole closure, nearest first.
fn parse_modules_dep(text: &str) -> (BTreeMap<String, PathBuf>, BTreeMap<String, Vec<String>>) {
    let mut files = BTreeMap::new();
    let mut deps = BTreeMap::new();
    let name_of = |path: &str| module_name_of_file(path.rsplit('/').next().unwrap_or(path));
    for line in text.lines() {
        let Some((path, dep_paths)) = line.split_once(':') else {
            continue;
        };
        let Some(name) = name_of(path.trim()) else {
            continue;
        };
        let dep_names = dep_paths.split_whitespace().filter_map(name_of).collect();
        // The first line for a name wins, as in modprobe: depmod lists the
        // module it prefers (`updates/` before `kernel/`) first.
        if !files.contains_key(&name) {
            files.insert(name.clone(), PathBuf::from(path.trim()));
            deps.insert(name, dep_names);
        }
    }
    (files, deps)
}

/// The module names after `pre:` in a softdep value
/// (`pre: crc32c post: foo`).
fn parse_softdep_pre(value: &str) -> Vec<String> {
    softdep_pre_words(value.split_whitespace())
}

fn softdep_pre_words<'a>(words: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut pre = Vec::new();
    let mut in_pre = false;
    for word in words {
        match word {
            "pre:" => in_pre = true,
            "post:" => in_pre = false,
            _ if in_pre => pre.push(canonical_name(word)),
            _ => {}
        }
    }
    pre
}

/// `modules.softdep`: `softdep <module> pre: … post: …` lines.
fn parse_softdep_file(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut index: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if let (Some("softdep"), Some(module)) = (words.next(), words.next()) {
            index
                .entry(canonical_name(module))
                .or_default()
                .extend(softdep_pre_words(words));
        }
    }
    index
}

/// Finds every module file under `dir`, without following symbolic links
/// (`build` and `source` point to whole kernel source trees).
fn walk(dir: &Path) -> Result<BTreeMap<String, PathBuf>, ModuleError> {
    let mut found = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        let path = dir.join(&relative);
        let read_dir_error = |source| ModuleError::ReadDir {
            path: path.clone(),
            source,
        };
        for entry in fs::read_dir(&path).map_err(read_dir_error)? {
            let entry = entry.map_err(read_dir_error)?;
            let file_type = entry.file_type().map_err(read_dir_error)?;
            let child = relative.join(entry.file_name());
            if file_type.is_dir() {
                pending.push(child);
            } else if file_type.is_file() {
                if let Some(name) = entry.file_name().to_str().and_then(module_name_of_file) {
                    found.push((name, child));
                }
            }
        }
    }
    // When a name exists twice, the copy under `updates/` wins, as with
    // depmod's default search order; otherwise the first path in byte order.
    found.sort_by(|(_, a), (_, b)| {
        let rank = |path: &Path| !path.starts_with("updates");
        (rank(a), a).cmp(&(rank(b), b))
    });
    let mut files = BTreeMap::new();
    for (name, path) in found {
        if let Some(kept) = files.get(&name) {
            log::warn!("module `{name}`: using {kept:?}, ignoring {path:?}");
        } else {
            files.insert(name, path);
        }
    }
    Ok(files)
}

/// Reads a module file, decompressing `.ko.xz` and `.ko.zst`.
pub fn read_module(path: &Path) -> Result<Vec<u8>, ModuleError> {
    let raw = fs::read(path).map_err(|source| ModuleError::ReadModule {
        path: path.to_owned(),
        source,
    })?;
    let decompress_error = |source| ModuleError::Decompress {
        path: path.to_owned(),
        source,
    };
    let name = path.to_string_lossy();
    if name.ends_with(".ko.xz") {
        let mut out = Vec::new();
        lzma_rs::xz_decompress(&mut raw.as_slice(), &mut out).map_err(|error| {
            decompress_error(io::Error::new(
                io::ErrorKind::InvalidData,
                error.to_string(),
            ))
        })?;
        Ok(out)
    } else if name.ends_with(".ko.zst") {
        zstd::stream::decode_all(raw.as_slice()).map_err(decompress_error)
    } else if name.ends_with(".ko") {
        Ok(raw)
    } else {
        Err(ModuleError::UnsupportedCompression {
            path: path.to_owned(),
        })
    }
}

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

#[cfg(test)]
mod tests {
    use super::test_elf::{self, module, object};
    use super::*;
    use std::process::Command;

    /// A synthetic module: file path under the tree, `depends=`, other
    /// `.modinfo` strings.
    type Spec = (&'static str, &'static str, &'static [&'static str]);

    /// A small tree shaped like Debian's virtio and xfs modules.
    const TREE: &[Spec] = &[
        ("kernel/drivers/virtio/virtio_ring.ko", "", &[]),
        ("kernel/drivers/virtio/virtio.ko", "virtio_ring", &[]),
        ("kernel/drivers/virtio/virtio_pci_modern_dev.ko", "", &[]),
        ("kernel/drivers/virtio/virtio_pci_legacy_dev.ko", "", &[]),
        (
            "kernel/drivers/virtio/virtio_pci.ko",
            "virtio_ring,virtio_pci_modern_dev,virtio_pci_legacy_dev,virtio",
            &[],
        ),
        (
            "kernel/drivers/block/virtio_blk.ko",
            "virtio,virtio_ring",
            &[],
        ),
        (
            "kernel/drivers/char/hw_random/virtio-rng.ko",
            "virtio,virtio_ring",
            &[],
        ),
        ("kernel/lib/libcrc32c.ko", "", &["softdep=pre: crc32c"]),
        ("kernel/fs/xfs/xfs.ko", "libcrc32c", &[]),
        ("kernel/fs/fat/fat.ko", "", &[]),
        ("kernel/fs/fat/vfat.ko", "fat", &[]),
        ("kernel/fs/nls/nls_cp437.ko", "", &[]),
        ("kernel/fs/nls/nls_ascii.ko", "", &[]),
        ("kernel/fs/nls/nls_utf8.ko", "", &[]),
        (
            "kernel/crypto/sha256_ssse3.ko",
            "",
            &["softdep=pre: sha256_generic"],
        ),
        ("kernel/crypto/sha256_generic.ko", "", &[]),
        ("kernel/lib/helper.ko", "", &[]),
        (
            "kernel/fs/pre_user.ko",
            "",
            &["softdep=pre: helper post: missing_one"],
        ),
    ];

    /// Modules whose `.modinfo` is broken in ways depmod would not write
    /// into modules.dep.
    const BROKEN: &[Spec] = &[
        ("kernel/loop/loop_a.ko", "loop_b", &[]),
        ("kernel/loop/loop_b.ko", "loop_a", &[]),
        ("kernel/lib/needs_ghost.ko", "ghost", &[]),
    ];

    fn stem(path: &str) -> String {
        canonical_name(path.rsplit('/').next().unwrap().trim_end_matches(".ko"))
    }

    /// Writes the tree; each module exports `sym_<name>` and uses the symbol
    /// of each dependency, so depmod derives the same dependencies.
    fn write_tree(dir: &Path, specs: &[Spec]) {
        for (path, depends, extra) in specs {
            let name = stem(path);
            let mut info = vec![format!("name={name}"), format!("depends={depends}")];
            info.extend(extra.iter().map(|s| s.to_string()));
            let info: Vec<&str> = info.iter().map(String::as_str).collect();
            let export = format!("sym_{name}");
            let uses: Vec<String> = depends
                .split(',')
                .filter(|d| !d.is_empty())
                .map(|d| format!("sym_{d}"))
                .collect();
            let uses: Vec<&str> = uses.iter().map(String::as_str).collect();
            let file = dir.join(path);
            fs::create_dir_all(file.parent().unwrap()).unwrap();
            fs::write(file, module(&info, &[&export], &uses)).unwrap();
        }
        fs::write(
            dir.join("modules.builtin"),
            "kernel/fs/ext4/ext4.ko\nkernel/crypto/crc32c_generic.ko\n",
        )
        .unwrap();
    }

    fn names(modules: &[Module]) -> Vec<&str> {
        modules.iter().map(|m| m.name.as_str()).collect()
    }

    /// Checks that `order` puts every module after its dependencies.
    fn assert_topological(tree: &ModuleTree, order: &[Module]) {
        let position: HashMap<&str, usize> = order
            .iter()
            .enumerate()
            .map(|(i, m)| (m.name.as_str(), i))
            .collect();
        for (index, module) in order.iter().enumerate() {
            let loaded = tree
                .load(&module.name, tree.files.get(&module.name).unwrap())
                .unwrap();
            for dep in loaded.depends.iter().chain(&loaded.softdeps) {
                if let Some(&dep_index) = position.get(dep.as_str()) {
                    assert!(dep_index < index, "{dep} after {}", module.name);
                }
            }
        }
    }

    /// (requested, expected load order or the error's text). The order is
    /// the one the `.modinfo` path gives; with modules.dep, depmod's order of
    /// dependencies may give another valid order.
    type Case = (
        &'static [&'static str],
        Result<&'static [&'static str], &'static str>,
    );

    const CASES: &[Case] = &[
        (
            &["virtio_blk"],
            Ok(&[
                "virtio_ring",
                "virtio_pci_modern_dev",
                "virtio_pci_legacy_dev",
                "virtio",
                "virtio_pci",
                "virtio_blk",
            ]),
        ),
        (&["xfs"], Ok(&["libcrc32c", "xfs"])),
        (
            &["vfat"],
            Ok(&["nls_cp437", "nls_ascii", "nls_utf8", "fat", "vfat"]),
        ),
        (&["ext4"], Ok(&[])),
        (&["sha256-ssse3"], Ok(&["sha256_generic", "sha256_ssse3"])),
        (&["pre_user"], Ok(&["helper", "pre_user"])),
        (
            &["virtio-rng", "virtio_blk"],
            Ok(&[
                "virtio_ring",
                "virtio_pci_modern_dev",
                "virtio_pci_legacy_dev",
                "virtio",
                "virtio_pci",
                "virtio_rng",
                "virtio_blk",
            ]),
        ),
        (
            &["nosuch"],
            Err("module `nosuch` is neither a file nor built in, in "),
        ),
    ];

    const BROKEN_CASES: &[Case] = &[
        (
            &["needs_ghost"],
            Err("module `ghost` (needed by `needs_ghost`) is neither"),
        ),
        (&["loop_a"], Err("cycle: loop_a -> loop_b -> loop_a")),
    ];

    fn check_cases(tree: &ModuleTree, cases: &[Case], exact_order: bool) {
        for (requested, expected) in cases {
            let requested: Vec<String> = requested.iter().map(|s| s.to_string()).collect();
            match (tree.resolve(&requested), expected) {
                (Ok(order), Ok(want)) => {
                    let mut got = names(&order);
                    let mut want = want.to_vec();
                    if !exact_order {
                        got.sort_unstable();
                        want.sort_unstable();
                    }
                    assert_eq!(got, want, "{requested:?}");
                    assert_topological(tree, &order);
                }
                (Err(error), Err(needle)) => {
                    assert!(error.to_string().contains(needle), "{requested:?}: {error}")
                }
                (got, want) => panic!("{requested:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn closures_from_modinfo() {
        let dir = tempfile::tempdir().unwrap();
        write_tree(dir.path(), TREE);
        let tree = ModuleTree::open(dir.path()).unwrap();
        assert!(!tree.has_modules_dep());
        assert!(tree.is_builtin("ext4") && tree.has_file("virtio_rng"));
        check_cases(&tree, CASES, true);
        write_tree(dir.path(), BROKEN);
        let tree = ModuleTree::open(dir.path()).unwrap();
        check_cases(&tree, BROKEN_CASES, true);
    }

    #[test]
    fn closures_from_depmod_output() {
        let dir = tempfile::tempdir().unwrap();
        let release = "6.1.0-lifeboat-test";
        let modules_dir = dir.path().join("lib/modules").join(release);
        write_tree(&modules_dir, TREE);
        let status = Command::new("depmod")
            .arg("-b")
            .arg(dir.path())
            .arg(release)
            .status()
            .or_else(|_| {
                Command::new("/sbin/depmod")
                    .arg("-b")
                    .arg(dir.path())
                    .arg(release)
                    .status()
            })
            .expect("depmod (Debian package kmod) must be installed");
        assert!(status.success());
        let dep = fs::read_to_string(modules_dir.join("modules.dep")).unwrap();
        assert!(
            dep.contains("kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko"),
            "depmod did not see the symbols: {dep}"
        );
        // Without .modinfo `depends=`, the dependencies must come from
        // modules.dep alone: blank them out of every module.
        for (path, _, _) in TREE {
            let file = modules_dir.join(path);
            let name = stem(path);
            let export = format!("sym_{name}");
            let extra: Vec<&str> = TREE.iter().find(|(p, _, _)| p == path).unwrap().2.to_vec();
            let mut info = vec![format!("name={name}")];
            info.extend(extra.iter().map(|s| s.to_string()));
            let info: Vec<&str> = info.iter().map(String::as_str).collect();
            fs::write(file, module(&info, &[&export], &[])).unwrap();
        }
        let tree = ModuleTree::open(&modules_dir).unwrap();
        assert!(tree.has_modules_dep());
        check_cases(&tree, CASES, false);
    }

    #[test]
    fn compressed_modules_are_decompressed() {
        let dir = tempfile::tempdir().unwrap();
        write_tree(dir.path(), TREE);
        let original = fs::read(dir.path().join("kernel/fs/xfs/xfs.ko")).unwrap();
        // The kernel's own build compresses with these options.
        let tools: &[(&str, &[&str], &str)] = &[
            ("xz", &["--check=crc32", "--lzma2=dict=1MiB"], "xz-utils"),
            ("xz", &[], "xz-utils"),
            ("zstd", &["-q", "-19", "--rm"], "zstd"),
        ];
        for (tool, args, package) in tools {
            for path in ["kernel/fs/xfs/xfs.ko", "kernel/lib/libcrc32c.ko"] {
                let file = dir.path().join(path);
                let status = Command::new(tool)
                    .args(*args)
                    .arg("-f")
                    .arg(&file)
                    .status()
                    .unwrap_or_else(|e| panic!("{tool} (Debian package {package}): {e}"));
                assert!(status.success());
            }
            let tree = ModuleTree::open(dir.path()).unwrap();
            let order = tree.resolve(&["xfs".to_owned()]).unwrap();
            assert_eq!(names(&order), ["libcrc32c", "xfs"], "{tool} {args:?}");
            assert_eq!(order[1].contents, original);
            assert!(order[1]
                .source
                .to_string_lossy()
                .ends_with(if *tool == "xz" { ".xz" } else { ".zst" }));
            // Back to plain files for the next tool.
            for path in ["kernel/fs/xfs/xfs.ko", "kernel/lib/libcrc32c.ko"] {
                let compressed = order
                    .iter()
                    .find(|m| path.ends_with(&format!("{}.ko", m.name)))
                    .unwrap();
                fs::write(dir.path().join(path), &compressed.contents).unwrap();
                fs::remove_file(&compressed.source).unwrap();
            }
        }
    }

    #[test]
    fn damaged_compressed_module_names_its_path() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("bad.ko.xz"), b"not xz").unwrap();
        fs::write(dir.path().join("old.ko.gz"), b"").unwrap();
        let tree = ModuleTree::open(dir.path()).unwrap();
        let error = tree.resolve(&["bad".to_owned()]).unwrap_err();
        assert!(
            matches!(&error, ModuleError::Decompress { path, .. } if path.ends_with("bad.ko.xz")),
            "{error}"
        );
        let error = tree.resolve(&["old".to_owned()]).unwrap_err();
        assert!(
            matches!(error, ModuleError::UnsupportedCompression { .. }),
            "{error}"
        );
    }

    #[test]
    fn index_files_parse() {
        let dep = "kernel/a.ko: kernel/b.ko.xz kernel/c-d.ko\nkernel/b.ko.xz:\nupdates/a.ko:\n\nnot a line\n";
        let (files, deps) = parse_modules_dep(dep);
        assert_eq!(files["a"], Path::new("kernel/a.ko"));
        assert_eq!(files["b"], Path::new("kernel/b.ko.xz"));
        assert_eq!(deps["a"], ["b", "c_d"]);
        assert_eq!(deps["b"], Vec::<String>::new());

        let softdep = "# comment\nsoftdep libcrc32c pre: crc32c post: x\nsoftdep  a-b pre: c d\n";
        let index = parse_softdep_file(softdep);
        assert_eq!(index["libcrc32c"], ["crc32c"]);
        assert_eq!(index["a_b"], ["c", "d"]);

        let builtin =
            parse_builtin("kernel/fs/ext4/ext4.ko\nkernel/arch/x86/events/amd/amd-uncore.ko\n\n");
        assert_eq!(
            builtin.into_iter().collect::<Vec<_>>(),
            ["amd_uncore", "ext4"]
        );

        let cases: &[(&str, &[&str])] = &[
            ("pre: a b", &["a", "b"]),
            ("post: a pre: b", &["b"]),
            ("pre: a-b post: c pre: d", &["a_b", "d"]),
            ("", &[]),
        ];
        for (value, want) in cases {
            assert_eq!(parse_softdep_pre(value), *want, "{value}");
        }
    }

    #[test]
    fn elf_sections_are_found_or_rejected() {
        let good = object(&[
            (".text", 1, vec![0x90; 5]),
            (".modinfo", 1, b"a=b\0c=d=e\0".to_vec()),
        ]);
        assert_eq!(modinfo(&good).unwrap(), [("a", "b"), ("c", "d=e")]);
        assert_eq!(elf_section(&good, ".text").unwrap(), Some(&[0x90u8; 5][..]));
        assert_eq!(elf_section(&good, ".nothing").unwrap(), None);
        let without = object(&[(".text", 1, vec![1])]);
        assert_eq!(modinfo(&without).unwrap(), []);
        let big_endian = test_elf::object_with_order(&[(".modinfo", 1, b"a=b\0".to_vec())], true);
        assert_eq!(modinfo(&big_endian).unwrap(), [("a", "b")]);

        let mut bad_class = good.clone();
        bad_class[4] = 9;
        let mut table_out_of_range = good.clone();
        table_out_of_range[0x28..0x30].copy_from_slice(&u64::MAX.to_le_bytes());
        let mut names_out_of_range = good.clone();
        names_out_of_range[0x3e] = 200;
        let cases: &[(&str, &[u8], &str)] = &[
            ("empty", b"", "magic"),
            ("text", b"hello world", "magic"),
            ("class", &bad_class, "class"),
            ("cut header", &good[..40], "truncated"),
            ("table", &table_out_of_range, "out of range"),
            ("names", &names_out_of_range, "out of range"),
            ("cut body", &good[..good.len() - 10], "out of range"),
        ];
        for (what, bytes, needle) in cases {
            let error = modinfo(bytes).expect_err(what);
            assert!(error.contains(needle), "{what}: {error}");
        }
    }

    #[test]
    fn elf_objects_made_by_gcc_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("m.c");
        fs::write(
            &source,
            "__attribute__((section(\".modinfo\"), used)) static const char a[] = \"depends=x,y\";\n\
             __attribute__((section(\".modinfo\"), used)) static const char b[] = \"name=m\";\n",
        )
        .unwrap();
        let object = dir.path().join("m.o");
        let output = Command::new("gcc")
            .arg("-c")
            .arg(&source)
            .arg("-o")
            .arg(&object)
            .output()
            .expect("gcc (Debian package gcc)");
        assert!(output.status.success(), "{output:?}");
        // The same object as ELF32, for 32-bit kernels.
        let object32 = dir.path().join("m32.o");
        let output = Command::new("objcopy")
            .args(["-O", "elf32-i386"])
            .arg(&object)
            .arg(&object32)
            .output()
            .expect("objcopy (Debian package binutils)");
        assert!(output.status.success(), "{output:?}");
        for object in [object, object32] {
            let bytes = fs::read(&object).unwrap();
            let info = modinfo(&bytes).unwrap();
            assert!(
                info.contains(&("depends", "x,y")) && info.contains(&("name", "m")),
                "{info:?}"
            );
        }
    }
}

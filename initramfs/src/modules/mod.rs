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
//!
//! A name that is not a module (a softdep's `crypto-crc32c`, a user's
//! `crc32c`, a filesystem's `fs-xfs`) is an alias, looked up as modprobe
//! does: in `modules.alias` (or every module's `.modinfo` `alias=` when the
//! tree has no index), after the aliases of built-in modules
//! (`modules.builtin.modinfo`), which need nothing.

mod index;
mod modinfo;
mod read;
mod resolve;
#[cfg(test)]
mod tests;

use std::cell::OnceCell;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

use self::index::{
    alias_matches, parse_alias_file, parse_builtin, parse_builtin_aliases, parse_modules_dep,
    parse_softdep_file, parse_softdep_pre, read_binary_index, read_index, walk, Alias,
};
#[cfg(test)]
pub(crate) use self::modinfo::test_elf;
pub use self::modinfo::{elf_section, modinfo};
pub use self::read::read_module;
use self::resolve::Resolver;

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
    #[error("module `{name}`{} is neither a module file, built in, nor an alias of either, in {modules_dir}", needed_by_text(.needed_by))]
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
    /// Aliases of built-in modules, from `modules.builtin.modinfo`.
    builtin_aliases: Vec<Alias>,
    /// Aliases of module files: `modules.alias`, or, in a tree without
    /// one, every module's `.modinfo`, read the first time an alias is
    /// looked up (it means reading every module of the tree).
    aliases: OnceCell<Vec<Alias>>,
}

/// What a name stands for in a tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// A module file of the tree, by its canonical name.
    File(String),
    /// Part of the kernel image: a built-in module by its name, or an
    /// alias of one.
    Builtin(String),
    /// An alias of module files: every match, the generic implementation
    /// first.
    Alias(Vec<String>),
    /// Nothing of this kernel.
    Missing,
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
        // Kernels since 5.2 ship `modules.builtin.modinfo`; depmod's text
        // `modules.builtin.alias` is derived from it and not always written.
        let builtin_aliases = match read_binary_index(&dir.join("modules.builtin.modinfo"))? {
            Some(bytes) => parse_builtin_aliases(&bytes),
            None => match read_index(&dir.join("modules.builtin.alias"))? {
                Some(text) => parse_alias_file(&text),
                None => Vec::new(),
            },
        };
        let aliases = OnceCell::new();
        if let Some(text) = read_index(&dir.join("modules.alias"))? {
            let _ = aliases.set(parse_alias_file(&text));
        }
        Ok(ModuleTree {
            dir: dir.to_owned(),
            files,
            builtin,
            dep_index,
            softdep_index,
            builtin_aliases,
            aliases,
        })
    }

    /// Whether dependencies come from `modules.dep` (else from `.modinfo`).
    pub fn has_modules_dep(&self) -> bool {
        self.dep_index.is_some()
    }

    /// The files the requested modules need, dependencies first, each once.
    /// Built-in modules need no file and are left out. A name may be an
    /// alias (see [`ModuleTree::lookup`]).
    pub fn resolve(&self, requested: &[String]) -> Result<Vec<Module>, ModuleError> {
        let mut resolver = Resolver::new(self);
        for name in requested {
            resolver.request(&canonical_name(name))?;
        }
        Ok(resolver.into_order())
    }

    /// What `name` stands for, as modprobe would look it up: a module file,
    /// a built-in module, or an alias. Unlike modprobe, an alias that a
    /// built-in module provides is taken to be satisfied before module
    /// files are considered: the kernel finds built-in code (a crypto
    /// algorithm, a filesystem) without asking for a module, and the image
    /// stays small.
    pub fn lookup(&self, name: &str) -> Result<Lookup, ModuleError> {
        let name = canonical_name(name);
        if self.files.contains_key(&name) {
            return Ok(Lookup::File(name));
        }
        if self.builtin.contains(&name) {
            return Ok(Lookup::Builtin(name));
        }
        if let Some(module) = alias_matches(&self.builtin_aliases, &name).next() {
            return Ok(Lookup::Builtin(module.to_owned()));
        }
        let mut matches: Vec<String> = Vec::new();
        for module in alias_matches(self.aliases()?, &name) {
            // A stale index may name a module whose file is gone.
            if self.files.contains_key(module) && !matches.iter().any(|m| m == module) {
                matches.push(module.to_owned());
            }
        }
        if matches.is_empty() {
            return Ok(Lookup::Missing);
        }
        // The portable C implementation works on every CPU; accelerated
        // ones (crc32c_intel) refuse to load where the CPU lacks their
        // instructions, so the generic one goes first.
        matches.sort_by_key(|module| !module.ends_with("_generic"));
        Ok(Lookup::Alias(matches))
    }

    fn aliases(&self) -> Result<&[Alias], ModuleError> {
        if let Some(aliases) = self.aliases.get() {
            return Ok(aliases);
        }
        let mut aliases = Vec::new();
        for (name, relative) in &self.files {
            let path = self.dir.join(relative);
            let contents = read_module(&path)?;
            let info = module_info(&path, &contents)?;
            for (_, pattern) in info.iter().filter(|(key, _)| *key == "alias") {
                aliases.push(Alias::new(pattern, name));
            }
        }
        Ok(self.aliases.get_or_init(|| aliases))
    }

    /// The size of a module's file as stored (compressed or not).
    fn file_size(&self, name: &str) -> Option<u64> {
        let relative = self.files.get(name)?;
        std::fs::metadata(self.dir.join(relative))
            .ok()
            .map(|meta| meta.len())
    }

    fn load(&self, name: &str, relative: &Path) -> Result<LoadedModule, ModuleError> {
        let path = self.dir.join(relative);
        let contents = read_module(&path)?;
        let info = module_info(&path, &contents)?;
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

/// The `.modinfo` of the module file at `path`, whose decompressed
/// `contents` these are.
fn module_info<'c>(
    path: &Path,
    contents: &'c [u8],
) -> Result<Vec<(&'c str, &'c str)>, ModuleError> {
    modinfo(contents).map_err(|reason| ModuleError::BadElf {
        path: path.to_owned(),
        reason,
    })
}

struct LoadedModule {
    module: Module,
    depends: Vec<String>,
    softdeps: Vec<String>,
}

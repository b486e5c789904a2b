//! The index files of a module tree (`modules.dep`, `modules.softdep`,
//! `modules.builtin`, the alias lists) and the walk that stands in for
//! `modules.dep` when a tree has none.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::{canonical_name, module_name_of_file, ModuleError};

/// Reads a text index file of the tree; `None` when it does not exist.
pub(super) fn read_index(path: &Path) -> Result<Option<String>, ModuleError> {
    let Some(bytes) = read_binary_index(path)? else {
        return Ok(None);
    };
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|error| ModuleError::ReadIndex {
            path: path.to_owned(),
            source: io::Error::new(io::ErrorKind::InvalidData, error),
        })
}

/// Reads a binary index file of the tree; `None` when it does not exist.
pub(super) fn read_binary_index(path: &Path) -> Result<Option<Vec<u8>>, ModuleError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ModuleError::ReadIndex {
            path: path.to_owned(),
            source,
        }),
    }
}

/// One alias: a pattern (which may hold `*`, `?` and `[…]`, as device
/// aliases do) and the module that provides it, both canonical.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Alias {
    pattern: String,
    module: String,
}

impl Alias {
    pub(super) fn new(pattern: &str, module: &str) -> Alias {
        Alias {
            pattern: canonical_alias(pattern),
            module: canonical_name(module),
        }
    }
}

/// An alias with `-` read as `_`, as modprobe normalises them, except
/// inside a bracket expression, where `-` is a range.
fn canonical_alias(alias: &str) -> String {
    let mut in_brackets = false;
    alias
        .chars()
        .map(|c| match c {
            '[' => {
                in_brackets = true;
                c
            }
            ']' => {
                in_brackets = false;
                c
            }
            '-' if !in_brackets => '_',
            _ => c,
        })
        .collect()
}

/// The modules whose alias patterns match `name` (canonical), in index
/// order.
pub(super) fn alias_matches<'a>(
    aliases: &'a [Alias],
    name: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    aliases
        .iter()
        .filter(move |alias| glob_matches(alias.pattern.as_bytes(), name.as_bytes()))
        .map(|alias| alias.module.as_str())
}

/// fnmatch(3) without flags, as modprobe matches aliases: `*`, `?`, and
/// bracket expressions with ranges and `!` or `^` negation.
pub(super) fn glob_matches(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|skip| glob_matches(rest, &text[skip..])),
        Some((b'?', rest)) => !text.is_empty() && glob_matches(rest, &text[1..]),
        Some((b'[', rest)) => {
            let Some((&first, text_rest)) = text.split_first() else {
                return false;
            };
            match bracket_matches(rest, first) {
                Some((matched, after)) => matched && glob_matches(after, text_rest),
                // An unclosed bracket is an ordinary character.
                None => first == b'[' && glob_matches(rest, text_rest),
            }
        }
        Some((&literal, rest)) => text.first() == Some(&literal) && glob_matches(rest, &text[1..]),
    }
}

/// Whether `byte` is in the bracket expression that starts `pattern` (just
/// after its `[`), and the pattern after its `]`; `None` when it has no `]`.
fn bracket_matches(pattern: &[u8], byte: u8) -> Option<(bool, &[u8])> {
    let (negated, mut rest) = match pattern.first() {
        Some(b'!' | b'^') => (true, &pattern[1..]),
        _ => (false, pattern),
    };
    let mut matched = false;
    let mut first = true;
    loop {
        match rest {
            [] => return None,
            // A `]` first in the set is a member, not the end.
            [b']', after @ ..] if !first => return Some((matched != negated, after)),
            [low, b'-', high, after @ ..] if *high != b']' => {
                matched |= (*low..=*high).contains(&byte);
                rest = after;
            }
            [member, after @ ..] => {
                matched |= *member == byte;
                rest = after;
            }
        }
        first = false;
    }
}

/// `modules.alias` (and depmod's `modules.builtin.alias`): `alias PATTERN
/// MODULE` lines.
pub(super) fn parse_alias_file(text: &str) -> Vec<Alias> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            match (words.next(), words.next(), words.next()) {
                (Some("alias"), Some(pattern), Some(module)) => Some(Alias::new(pattern, module)),
                _ => None,
            }
        })
        .collect()
}

/// The aliases in `modules.builtin.modinfo`: the `.modinfo` strings of
/// every built-in module, each `module.key=value` and NUL-terminated.
pub(super) fn parse_builtin_aliases(bytes: &[u8]) -> Vec<Alias> {
    bytes
        .split(|&byte| byte == 0)
        .filter_map(|entry| {
            let entry = std::str::from_utf8(entry).ok()?;
            let (module, pattern) = entry.split_once(".alias=")?;
            // A module name has no dot, so a dot before `.alias=` means
            // the key was something else (`x.y.alias=` is not ours).
            (!module.contains('.')).then(|| Alias::new(pattern, module))
        })
        .collect()
}

/// `modules.builtin`: one path per line (`kernel/fs/ext4/ext4.ko`).
pub(super) fn parse_builtin(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| module_name_of_file(line.trim().rsplit('/').next()?))
        .collect()
}

/// `modules.dep`: `path: dep-path dep-path…` per module, dependencies being
/// the whole closure, nearest first.
pub(super) fn parse_modules_dep(
    text: &str,
) -> (BTreeMap<String, PathBuf>, BTreeMap<String, Vec<String>>) {
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
pub(super) fn parse_softdep_pre(value: &str) -> Vec<String> {
    softdep_pre_words(value.split_whitespace())
}

pub(super) fn softdep_pre_words<'a>(words: impl Iterator<Item = &'a str>) -> Vec<String> {
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
pub(super) fn parse_softdep_file(text: &str) -> BTreeMap<String, Vec<String>> {
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
pub(super) fn walk(dir: &Path) -> Result<BTreeMap<String, PathBuf>, ModuleError> {
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

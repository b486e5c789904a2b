//! The newc cpio format ("070701"), the one the kernel unpacks into its
//! initial rootfs.
//!
//! [`Archive`] writes reproducible archives: entries are sorted by path,
//! mtimes and owners are zero and inode numbers follow the sorted order, so
//! the same inputs always give the same bytes. [`Reader`] and
//! [`read_archive`] read newc archives back, for tests, for `lifeboat`'s own
//! inspection commands and for fuzzing; they never panic and never allocate
//! more than the input holds.

use std::collections::BTreeMap;
use std::io::{self, Write};

use thiserror::Error;

/// The magic number of newc headers without checksums.
pub const MAGIC: &[u8; 6] = b"070701";
/// The magic number of newc headers with checksums ("crc" format), which the
/// reader accepts and ignores the checksum of.
pub const MAGIC_CRC: &[u8; 6] = b"070702";
/// The name of the last record of every archive.
pub const TRAILER: &str = "TRAILER!!!";
/// Length of a newc header: the magic and 13 eight-digit hex fields.
pub const HEADER_LEN: usize = 110;
/// The kernel and bootloaders read archives in 512-byte blocks, so the whole
/// archive is padded to a multiple of this, as GNU cpio does.
pub const BLOCK: usize = 512;

const S_IFMT: u32 = 0o170_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFCHR: u32 = 0o020_000;
const S_IFBLK: u32 = 0o060_000;
const PERMISSION_BITS: u32 = 0o7777;

/// What an entry is, with its contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Directory,
    File(Vec<u8>),
    /// A symbolic link and its target.
    Symlink(String),
    CharDevice {
        major: u32,
        minor: u32,
    },
    BlockDevice {
        major: u32,
        minor: u32,
    },
}

impl Kind {
    fn type_bits(&self) -> u32 {
        match self {
            Kind::Directory => S_IFDIR,
            Kind::File(_) => S_IFREG,
            Kind::Symlink(_) => S_IFLNK,
            Kind::CharDevice { .. } => S_IFCHR,
            Kind::BlockDevice { .. } => S_IFBLK,
        }
    }

    fn data(&self) -> &[u8] {
        match self {
            Kind::File(data) => data,
            Kind::Symlink(target) => target.as_bytes(),
            _ => &[],
        }
    }

    fn rdev(&self) -> (u32, u32) {
        match self {
            Kind::CharDevice { major, minor } | Kind::BlockDevice { major, minor } => {
                (*major, *minor)
            }
            _ => (0, 0),
        }
    }
}

/// One file of an archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The path inside the archive, relative (`etc/lifeboat/config`): GNU
    /// cpio refuses to extract absolute names, and the kernel takes both.
    pub path: String,
    /// Permission bits (`0o755`); the file type comes from [`Kind`].
    pub mode: u32,
    pub kind: Kind,
}

/// An entry that cannot be added to an [`Archive`].
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ArchiveError {
    #[error("cpio path `{path}` is not valid: {reason}")]
    BadPath { path: String, reason: &'static str },
    #[error("cpio path `{path}` is added twice")]
    Duplicate { path: String },
    #[error("cpio path `{path}` needs `{parent}` to be a directory")]
    ParentNotDirectory { path: String, parent: String },
    #[error("cpio entry `{path}` has {len} bytes, more than newc's 32-bit size field holds")]
    TooLarge { path: String, len: usize },
}

/// A set of entries, written sorted by path.
#[derive(Clone, Debug, Default)]
pub struct Archive {
    entries: BTreeMap<String, Entry>,
}

impl Archive {
    pub fn new() -> Archive {
        Archive::default()
    }

    /// Adds an entry. A leading `/` is dropped. Missing parent directories
    /// are added with mode 0755, because the kernel's unpacker does not
    /// create them and fails to create a file whose directory is missing.
    /// Adding a directory that exists (explicitly or implicitly) sets its mode.
    pub fn add(&mut self, mut entry: Entry) -> Result<(), ArchiveError> {
        let path = normalize_path(&entry.path)?;
        let len = entry.kind.data().len();
        if u32::try_from(len).is_err() {
            return Err(ArchiveError::TooLarge { path, len });
        }
        let mut end = 0;
        while let Some(slash) = path[end..].find('/') {
            let parent = &path[..end + slash];
            match self.entries.get(parent) {
                Some(Entry {
                    kind: Kind::Directory,
                    ..
                }) => {}
                Some(_) => {
                    return Err(ArchiveError::ParentNotDirectory {
                        path: path.clone(),
                        parent: parent.to_owned(),
                    })
                }
                None => {
                    self.entries.insert(
                        parent.to_owned(),
                        Entry {
                            path: parent.to_owned(),
                            mode: 0o755,
                            kind: Kind::Directory,
                        },
                    );
                }
            }
            end += slash + 1;
        }
        entry.mode &= PERMISSION_BITS;
        entry.path.clone_from(&path);
        match self.entries.get_mut(&path) {
            Some(existing) if existing.kind == Kind::Directory && entry.kind == Kind::Directory => {
                existing.mode = entry.mode;
                Ok(())
            }
            Some(_) => Err(ArchiveError::Duplicate { path }),
            None => {
                self.entries.insert(path, entry);
                Ok(())
            }
        }
    }

    pub fn add_directory(&mut self, path: &str, mode: u32) -> Result<(), ArchiveError> {
        self.add(Entry {
            path: path.to_owned(),
            mode,
            kind: Kind::Directory,
        })
    }

    pub fn add_file(&mut self, path: &str, mode: u32, data: Vec<u8>) -> Result<(), ArchiveError> {
        self.add(Entry {
            path: path.to_owned(),
            mode,
            kind: Kind::File(data),
        })
    }

    pub fn add_symlink(&mut self, path: &str, target: &str) -> Result<(), ArchiveError> {
        self.add(Entry {
            path: path.to_owned(),
            mode: 0o777,
            kind: Kind::Symlink(target.to_owned()),
        })
    }

    pub fn add_char_device(
        &mut self,
        path: &str,
        mode: u32,
        major: u32,
        minor: u32,
    ) -> Result<(), ArchiveError> {
        self.add(Entry {
            path: path.to_owned(),
            mode,
            kind: Kind::CharDevice { major, minor },
        })
    }

    /// The entries in the order they are written.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// Writes the archive and returns its length, a multiple of [`BLOCK`].
    pub fn write_to<W: Write>(&self, out: &mut W) -> io::Result<u64> {
        let mut written = 0u64;
        // A directory's link count is 2 (its name and its `.`) plus one for
        // each subdirectory's `..`; find(1) and du(1) rely on it.
        let mut subdirectories: BTreeMap<&str, u32> = BTreeMap::new();
        for entry in self.entries.values() {
            if entry.kind == Kind::Directory {
                if let Some((parent, _)) = entry.path.rsplit_once('/') {
                    *subdirectories.entry(parent).or_default() += 1;
                }
            }
        }
        for (index, entry) in self.entries.values().enumerate() {
            let nlink = match entry.kind {
                Kind::Directory => {
                    2 + subdirectories
                        .get(entry.path.as_str())
                        .copied()
                        .unwrap_or(0)
                }
                _ => 1,
            };
            let (rdev_major, rdev_minor) = entry.kind.rdev();
            let header = Header {
                // Inode numbers only need to differ between entries (the
                // kernel uses them to find hard links, among files with
                // nlink > 1); the sorted position is stable and unique.
                ino: index as u32 + 1,
                mode: entry.kind.type_bits() | entry.mode,
                nlink,
                rdev_major,
                rdev_minor,
                ..Header::default()
            };
            written += write_record(out, written, &header, &entry.path, entry.kind.data())?;
        }
        let trailer = Header {
            nlink: 1,
            ..Header::default()
        };
        written += write_record(out, written, &trailer, TRAILER, &[])?;
        let padding = padding_to(written, BLOCK as u64);
        out.write_all(&[0; BLOCK][..padding])?;
        Ok(written + padding as u64)
    }

    /// The archive as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        self.write_to(&mut bytes)
            .expect("writing to a Vec cannot fail");
        bytes
    }
}

/// Checks an archive path and drops a leading `/`.
fn normalize_path(path: &str) -> Result<String, ArchiveError> {
    let bad = |reason| ArchiveError::BadPath {
        path: path.to_owned(),
        reason,
    };
    let relative = path.strip_prefix('/').unwrap_or(path);
    if relative.is_empty() {
        return Err(bad("it is empty"));
    }
    if relative.contains('\0') {
        return Err(bad("it contains a NUL byte"));
    }
    for component in relative.split('/') {
        match component {
            "" => return Err(bad("it has an empty component")),
            "." | ".." => return Err(bad("it has a `.` or `..` component")),
            _ => {}
        }
    }
    if relative == TRAILER {
        return Err(bad("it is the name of the trailer record"));
    }
    Ok(relative.to_owned())
}

fn padding_to(offset: u64, alignment: u64) -> usize {
    ((alignment - offset % alignment) % alignment) as usize
}

/// The numeric fields of a newc header. `filesize` and `namesize` are not
/// here: they follow from the name and the data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Header {
    pub ino: u32,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub mtime: u32,
    pub dev_major: u32,
    pub dev_minor: u32,
    pub rdev_major: u32,
    pub rdev_minor: u32,
}

/// Writes one record at archive offset `offset`; returns its padded length.
fn write_record<W: Write>(
    out: &mut W,
    offset: u64,
    header: &Header,
    name: &str,
    data: &[u8],
) -> io::Result<u64> {
    let name_size = name.len() + 1;
    let fields = [
        header.ino,
        header.mode,
        header.uid,
        header.gid,
        header.nlink,
        header.mtime,
        data.len() as u32,
        header.dev_major,
        header.dev_minor,
        header.rdev_major,
        header.rdev_minor,
        name_size as u32,
        0,
    ];
    let mut text = Vec::with_capacity(HEADER_LEN + name_size + 3);
    text.extend_from_slice(MAGIC);
    for field in fields {
        write!(text, "{field:08x}")?;
    }
    text.extend_from_slice(name.as_bytes());
    text.push(0);
    // The name is padded so that the data starts 4-byte aligned, and the data
    // so that the next header does, counting from the archive's start.
    text.resize(text.len() + padding_to(offset + text.len() as u64, 4), 0);
    out.write_all(&text)?;
    out.write_all(data)?;
    let data_end = offset + text.len() as u64 + data.len() as u64;
    let data_padding = padding_to(data_end, 4);
    out.write_all(&[0; 3][..data_padding])?;
    Ok(data_end + data_padding as u64 - offset)
}

/// An archive that does not read as newc.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ReadError {
    #[error("cpio record at offset {offset} is truncated")]
    Truncated { offset: usize },
    #[error("cpio record at offset {offset} has no newc magic (070701 or 070702)")]
    BadMagic { offset: usize },
    #[error("cpio record at offset {offset}: field `{field}` is not 8 hex digits")]
    BadField { offset: usize, field: &'static str },
    #[error("cpio record at offset {offset}: the name is not NUL-terminated UTF-8")]
    BadName { offset: usize },
    #[error("cpio record `{path}` at offset {offset}: the symlink target is not UTF-8")]
    BadSymlink { offset: usize, path: String },
    #[error("cpio record `{path}` at offset {offset}: unsupported file type in mode {mode:o}")]
    UnsupportedType {
        offset: usize,
        path: String,
        mode: u32,
    },
    #[error("cpio archive ends without a {TRAILER} record")]
    MissingTrailer,
}

/// One record as stored, borrowing from the archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// Where the record's header starts.
    pub offset: usize,
    pub header: Header,
    pub name: &'a str,
    pub data: &'a [u8],
}

impl Record<'_> {
    /// The record as an [`Entry`], its path as stored.
    pub fn to_entry(&self) -> Result<Entry, ReadError> {
        let kind = match self.header.mode & S_IFMT {
            S_IFDIR => Kind::Directory,
            S_IFREG => Kind::File(self.data.to_vec()),
            S_IFLNK => Kind::Symlink(
                std::str::from_utf8(self.data)
                    .map_err(|_| ReadError::BadSymlink {
                        offset: self.offset,
                        path: self.name.to_owned(),
                    })?
                    .to_owned(),
            ),
            S_IFCHR => Kind::CharDevice {
                major: self.header.rdev_major,
                minor: self.header.rdev_minor,
            },
            S_IFBLK => Kind::BlockDevice {
                major: self.header.rdev_major,
                minor: self.header.rdev_minor,
            },
            _ => {
                return Err(ReadError::UnsupportedType {
                    offset: self.offset,
                    path: self.name.to_owned(),
                    mode: self.header.mode,
                })
            }
        };
        Ok(Entry {
            path: self.name.to_owned(),
            mode: self.header.mode & PERMISSION_BITS,
            kind,
        })
    }
}

/// Iterates over the records of an archive up to its trailer.
pub struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
    done: bool,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader {
            bytes,
            position: 0,
            done: false,
        }
    }

    /// Where the trailer record ends (unpadded), once the iterator is done.
    pub fn position(&self) -> usize {
        self.position
    }

    fn next_record(&mut self) -> Result<Option<Record<'a>>, ReadError> {
        let offset = self.position;
        let truncated = ReadError::Truncated { offset };
        let header_bytes = self
            .bytes
            .get(offset..)
            .and_then(|rest| rest.get(..HEADER_LEN))
            .ok_or(if offset == self.bytes.len() {
                ReadError::MissingTrailer
            } else {
                truncated.clone()
            })?;
        let magic = &header_bytes[..6];
        if magic != MAGIC && magic != MAGIC_CRC {
            return Err(ReadError::BadMagic { offset });
        }
        const NAMES: [&str; 13] = [
            "ino",
            "mode",
            "uid",
            "gid",
            "nlink",
            "mtime",
            "filesize",
            "devmajor",
            "devminor",
            "rdevmajor",
            "rdevminor",
            "namesize",
            "check",
        ];
        let mut fields = [0u32; 13];
        for (index, field) in fields.iter_mut().enumerate() {
            let start = 6 + 8 * index;
            *field = parse_hex(&header_bytes[start..start + 8]).ok_or(ReadError::BadField {
                offset,
                field: NAMES[index],
            })?;
        }
        let header = Header {
            ino: fields[0],
            mode: fields[1],
            uid: fields[2],
            gid: fields[3],
            nlink: fields[4],
            mtime: fields[5],
            dev_major: fields[7],
            dev_minor: fields[8],
            rdev_major: fields[9],
            rdev_minor: fields[10],
        };
        let file_size = fields[6] as usize;
        let name_size = fields[11] as usize;
        let name_start = offset + HEADER_LEN;
        let name_bytes = name_start
            .checked_add(name_size)
            .and_then(|end| self.bytes.get(name_start..end))
            .ok_or(truncated.clone())?;
        let name = match name_bytes.split_last() {
            Some((0, name)) if !name.contains(&0) => {
                std::str::from_utf8(name).map_err(|_| ReadError::BadName { offset })?
            }
            _ => return Err(ReadError::BadName { offset }),
        };
        let data_start = align4(name_start + name_size);
        let data = data_start
            .checked_add(file_size)
            .and_then(|end| self.bytes.get(data_start..end))
            .ok_or(truncated)?;
        if name == TRAILER {
            self.position = data_start + file_size;
            self.done = true;
            return Ok(None);
        }
        self.position = align4(data_start + file_size);
        Ok(Some(Record {
            offset,
            header,
            name,
            data,
        }))
    }
}

impl<'a> Iterator for Reader<'a> {
    type Item = Result<Record<'a>, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let result = self.next_record();
        if result.is_err() {
            self.done = true;
        }
        result.transpose()
    }
}

fn align4(offset: usize) -> usize {
    offset.saturating_add(3) & !3
}

/// Parses exactly eight hex digits; `u32::from_str_radix` would also take a
/// sign, which newc does not have.
fn parse_hex(digits: &[u8]) -> Option<u32> {
    digits.iter().try_fold(0u32, |value, &digit| {
        let nibble = (digit as char).to_digit(16)?;
        Some(value << 4 | nibble)
    })
}

/// Reads every entry of an archive up to its trailer.
pub fn read_archive(bytes: &[u8]) -> Result<Vec<Entry>, ReadError> {
    Reader::new(bytes)
        .map(|record| record?.to_entry())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    fn sample() -> Archive {
        let mut archive = Archive::new();
        archive
            .add_file("/init", 0o755, b"#!/bin/true\n".to_vec())
            .unwrap();
        archive.add_directory("/dev", 0o755).unwrap();
        archive
            .add_char_device("/dev/console", 0o600, 5, 1)
            .unwrap();
        archive.add_directory("/tmp", 0o1777).unwrap();
        archive
            .add_file("/etc/lifeboat/config", 0o644, b"x=1\n".to_vec())
            .unwrap();
        archive.add_symlink("/bin", "usr/bin").unwrap();
        archive
            .add_file("/usr/bin/empty", 0o644, Vec::new())
            .unwrap();
        archive
            .add_file("/lib/a-name-of-odd-length", 0o644, vec![7; 1001])
            .unwrap();
        archive
    }

    fn run(command: &mut Command, stdin: &[u8]) -> String {
        use std::io::Write as _;
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{command:?}: {e} (install the Debian package cpio)"));
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{command:?}: {output:?}");
        String::from_utf8(output.stdout).unwrap() + &String::from_utf8(output.stderr).unwrap()
    }

    #[test]
    fn gnu_cpio_lists_what_we_wrote() {
        let bytes = sample().to_bytes();
        assert_eq!(bytes.len() % BLOCK, 0);
        let listing = run(Command::new("cpio").args(["-it", "--quiet"]), &bytes);
        let names: Vec<&str> = listing.lines().collect();
        assert_eq!(
            names,
            [
                "bin",
                "dev",
                "dev/console",
                "etc",
                "etc/lifeboat",
                "etc/lifeboat/config",
                "init",
                "lib",
                "lib/a-name-of-odd-length",
                "tmp",
                "usr",
                "usr/bin",
                "usr/bin/empty",
            ]
        );
        let verbose = run(Command::new("cpio").args(["-itv", "--quiet"]), &bytes);
        // `ls -l` columns: mode, links, owner, group, size (or major, minor),
        // month, day, year, name.
        let line = |name: &str| {
            verbose
                .lines()
                .map(|line| line.split_whitespace().collect::<Vec<_>>())
                .find(|words| {
                    // The name, not a symlink's target.
                    let at = words.iter().position(|w| *w == name).unwrap_or(0);
                    at >= 8 && words[at - 1] != "->"
                })
                .unwrap_or_else(|| panic!("{name} not in {verbose}"))
        };
        // Mode, link count, owner and group as GNU cpio reports them.
        assert_eq!(line("usr")[..4], ["drwxr-xr-x", "3", "root", "root"]);
        assert_eq!(line("usr/bin")[..2], ["drwxr-xr-x", "2"]);
        assert_eq!(line("tmp")[..1], ["drwxrwxrwt"]);
        assert_eq!(line("init")[..1], ["-rwxr-xr-x"]);
        assert_eq!(line("dev/console")[..1], ["crw-------"]);
        assert_eq!(line("dev/console")[4..6], ["5,", "1"]);
        assert!(line("bin").ends_with(&["bin", "->", "usr/bin"]));
    }

    #[test]
    fn gnu_cpio_extracts_what_we_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let mut archive = sample();
        // Device nodes need root to extract; everything else is checked here.
        archive.entries.remove("dev/console");
        run(
            Command::new("cpio")
                .args(["-idv", "--quiet", "--no-absolute-filenames"])
                .current_dir(dir.path()),
            &archive.to_bytes(),
        );
        let read = |path: &str| std::fs::read(dir.path().join(path)).unwrap();
        assert_eq!(read("init"), b"#!/bin/true\n");
        assert_eq!(read("etc/lifeboat/config"), b"x=1\n");
        assert_eq!(read("lib/a-name-of-odd-length"), vec![7; 1001]);
        assert_eq!(read("usr/bin/empty"), b"");
        assert_eq!(
            std::fs::read_link(dir.path().join("bin")).unwrap(),
            std::path::Path::new("usr/bin")
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("init"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
    }

    #[test]
    fn we_read_what_gnu_cpio_wrote() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        std::fs::write(dir.path().join("d/f"), b"hello").unwrap();
        std::os::unix::fs::symlink("d/f", dir.path().join("l")).unwrap();
        let bytes = {
            let output = Command::new("cpio")
                .args(["-o", "-H", "newc", "--quiet"])
                .current_dir(dir.path())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .and_then(|mut child| {
                    use std::io::Write as _;
                    child.stdin.take().unwrap().write_all(b"d\nd/f\nl\n")?;
                    child.wait_with_output()
                })
                .unwrap();
            assert!(output.status.success());
            output.stdout
        };
        let entries = read_archive(&bytes).unwrap();
        let summary: Vec<(&str, &Kind)> =
            entries.iter().map(|e| (e.path.as_str(), &e.kind)).collect();
        assert_eq!(
            summary,
            [
                ("d", &Kind::Directory),
                ("d/f", &Kind::File(b"hello".to_vec())),
                ("l", &Kind::Symlink("d/f".into())),
            ]
        );
    }

    #[test]
    fn same_inputs_give_identical_bytes_whatever_the_order() {
        let mut reversed = Archive::new();
        let entries: Vec<Entry> = sample().entries().cloned().collect();
        for entry in entries.into_iter().rev() {
            reversed.add(entry).unwrap();
        }
        assert_eq!(sample().to_bytes(), sample().to_bytes());
        assert_eq!(reversed.to_bytes(), sample().to_bytes());
    }

    #[test]
    fn reading_back_gives_the_entries() {
        let archive = sample();
        let bytes = archive.to_bytes();
        let read = read_archive(&bytes).unwrap();
        let written: Vec<Entry> = archive.entries().cloned().collect();
        assert_eq!(read, written);
        let records: Vec<Record> = Reader::new(&bytes).collect::<Result<_, _>>().unwrap();
        for (index, record) in records.iter().enumerate() {
            assert_eq!(record.header.ino, index as u32 + 1);
            assert_eq!(record.offset % 4, 0);
            assert_eq!(
                (record.header.uid, record.header.gid, record.header.mtime),
                (0, 0, 0)
            );
        }
    }

    #[test]
    fn bad_paths_are_rejected() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("/", "empty"),
            ("a//b", "empty component"),
            ("a/", "empty component"),
            ("a/../b", "`..`"),
            ("./a", "`.`"),
            ("a\0b", "NUL"),
            ("TRAILER!!!", "trailer"),
        ];
        for (path, needle) in cases {
            let error = Archive::new()
                .add_file(path, 0o644, Vec::new())
                .expect_err(path);
            assert!(error.to_string().contains(needle), "{path:?}: {error}");
        }
    }

    #[test]
    fn conflicting_entries_are_rejected() {
        let mut archive = Archive::new();
        archive.add_file("a/b", 0o644, Vec::new()).unwrap();
        assert_eq!(
            archive.add_file("a/b", 0o644, Vec::new()),
            Err(ArchiveError::Duplicate { path: "a/b".into() })
        );
        assert_eq!(
            archive.add_file("a/b/c", 0o644, Vec::new()),
            Err(ArchiveError::ParentNotDirectory {
                path: "a/b/c".into(),
                parent: "a/b".into()
            })
        );
        // An implicit parent can be given its mode afterwards.
        archive.add_directory("a", 0o700).unwrap();
        assert_eq!(archive.entries().next().unwrap().mode, 0o700);
    }

    #[test]
    fn damaged_archives_are_reported() {
        let good = sample().to_bytes();
        let mut bad_magic = good.clone();
        bad_magic[5] = b'7';
        let mut bad_field = good.clone();
        bad_field[6] = b'+';
        let mut unterminated_name = good.clone();
        // The first record is `bin`: namesize 4, name at 110..114.
        unterminated_name[113] = b'x';
        let cases: Vec<(&str, &[u8], ReadError)> = vec![
            ("empty", b"", ReadError::MissingTrailer),
            (
                "header cut",
                &good[..50],
                ReadError::Truncated { offset: 0 },
            ),
            ("name cut", &good[..112], ReadError::Truncated { offset: 0 }),
            ("magic", &bad_magic, ReadError::BadMagic { offset: 0 }),
            (
                "field",
                &bad_field,
                ReadError::BadField {
                    offset: 0,
                    field: "ino",
                },
            ),
            ("name", &unterminated_name, ReadError::BadName { offset: 0 }),
        ];
        for (what, bytes, expected) in cases {
            assert_eq!(read_archive(bytes), Err(expected), "{what}");
        }
        // Cut anywhere before the trailer's end, an archive reads as damaged.
        let trailer_end = {
            let mut reader = Reader::new(&good);
            reader.by_ref().for_each(drop);
            reader.position()
        };
        for len in 0..trailer_end {
            assert!(read_archive(&good[..len]).is_err(), "cut at {len}");
        }
        assert!(read_archive(&good[..trailer_end]).is_ok());
    }
}

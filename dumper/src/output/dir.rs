//! A private directory on a mounted filesystem: the destination of disk
//! and NFS targets and of `lifeboat save`.
//!
//! An artifact is written as `<name>.incomplete` (mode 0600: a vmcore holds
//! every secret its machine had), fsynced, renamed to `<name>`, and the
//! directory fsynced: a file without the suffix is always whole, on any
//! filesystem and after any crash.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{Artifact, Destination, FileSink, OutputError};

/// The suffix of an artifact that is not whole yet.
pub const INCOMPLETE_SUFFIX: &str = ".incomplete";

/// A directory that artifacts are written into.
#[derive(Clone, Debug)]
pub struct DirDestination {
    dir: PathBuf,
}

impl DirDestination {
    /// An existing directory, as given (`lifeboat save`'s output's).
    pub fn at(dir: &Path) -> DirDestination {
        DirDestination {
            dir: dir.to_owned(),
        }
    }

    /// Creates `<base>/<stamp>` with mode 0700, and `base` with its missing
    /// parents, also 0700; when a dump of the same minute is already there,
    /// `<stamp>-1`, `<stamp>-2`…: a second crash never overwrites the first.
    /// Returns the destination and the directory's name.
    pub fn create_stamped(
        base: &Path,
        stamp: &str,
    ) -> Result<(DirDestination, String), OutputError> {
        Self::create_named(base, "", stamp)
    }

    /// As [`create_stamped`](Self::create_stamped), with `prefix` before the
    /// stamp in the directory's name: `<prefix><stamp>[-N]`, as on a target
    /// many machines share (`web-17-202612031530`). Returns the destination
    /// and the stamp the directory got (`<stamp>[-N]`), which names the
    /// files in it.
    pub fn create_named(
        base: &Path,
        prefix: &str,
        stamp: &str,
    ) -> Result<(DirDestination, String), OutputError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(base)
            .map_err(|source| OutputError::CreateDir {
                path: base.to_owned(),
                source,
            })?;
        for attempt in 0..1000 {
            let name = if attempt == 0 {
                stamp.to_owned()
            } else {
                format!("{stamp}-{attempt}")
            };
            let dir = base.join(format!("{prefix}{name}"));
            match fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => return Ok((DirDestination { dir }, name)),
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(source) => return Err(OutputError::CreateDir { path: dir, source }),
            }
        }
        Err(OutputError::CreateDir {
            path: base.join(format!("{prefix}{stamp}")),
            source: io::Error::new(io::ErrorKind::AlreadyExists, "1000 dumps in one minute"),
        })
    }
}

impl Destination for DirDestination {
    fn create(&self, name: &str) -> Result<Box<dyn Artifact>, OutputError> {
        let path = self.dir.join(name);
        let partial = incomplete_path(&path);
        let file = create_private_file(&partial)?;
        Ok(Box::new(FileArtifact {
            sink: FileSink::new(file),
            partial,
            path,
        }))
    }

    fn put(&self, name: &str, bytes: &[u8]) -> Result<(), OutputError> {
        let path = self.dir.join(name);
        let mut file = create_private_file(&path)?;
        file.write_all(bytes).map_err(|source| OutputError::Write {
            path: path.clone(),
            source,
        })?;
        file.sync_all().map_err(|source| OutputError::Sync {
            path: path.clone(),
            source,
        })?;
        sync_dir(&self.dir)
    }

    fn describe(&self) -> String {
        self.dir.display().to_string()
    }

    fn measure_write_rate(&self, bytes: u64) -> Result<Duration, OutputError> {
        let path = self.dir.join(super::WRITE_RATE_SCRATCH);
        let file = create_private_file(&path)?;
        let block = super::incompressible_block();
        let started = Instant::now();
        let mut sink = FileSink::new(file);
        let mut left = bytes;
        let written = (|| {
            while left > 0 {
                let n = left.min(block.len() as u64) as usize;
                sink.write_all(&block[..n])?;
                left -= n as u64;
            }
            sink.finish().map(drop)
        })();
        let elapsed = started.elapsed();
        let removed = fs::remove_file(&path);
        written.map_err(|source| OutputError::Write {
            path: path.clone(),
            source,
        })?;
        removed.map_err(|source| OutputError::Write { path, source })?;
        Ok(elapsed)
    }
}

/// `<name>.incomplete` beside `path`.
pub fn incomplete_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(INCOMPLETE_SUFFIX);
    path.with_file_name(name)
}

/// A file being streamed into, with bounded page-cache use.
struct FileArtifact {
    sink: FileSink,
    partial: PathBuf,
    path: PathBuf,
}

impl Write for FileArtifact {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sink.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.sink.flush()
    }
}

impl Artifact for FileArtifact {
    fn commit(self: Box<Self>) -> Result<u64, OutputError> {
        let written = self.sink.written();
        self.sink.finish().map_err(|source| OutputError::Sync {
            path: self.partial.clone(),
            source,
        })?;
        publish(&self.partial, &self.path)?;
        Ok(written)
    }

    fn describe(&self) -> String {
        self.partial.display().to_string()
    }
}

/// Creates (or truncates) `path` with mode 0600, open for reading and
/// writing.
pub fn create_private_file(path: &Path) -> Result<File, OutputError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| OutputError::Create {
            path: path.to_owned(),
            source,
        })
}

/// Renames the durable `partial` to `path` and makes the rename durable:
/// the last step of every artifact, whoever wrote its bytes.
pub fn publish(partial: &Path, path: &Path) -> Result<(), OutputError> {
    fs::rename(partial, path).map_err(|source| OutputError::Rename {
        from: partial.to_owned(),
        to: path.to_owned(),
        source,
    })?;
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    sync_dir(parent)
}

/// Makes new entries and renames in `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), OutputError> {
    File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(|source| OutputError::Sync {
            path: dir.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn artifacts_appear_only_when_committed_and_are_private() {
        let base = tempfile::tempdir().unwrap();
        let crash = base.path().join("var/crash");
        let (destination, name) = DirDestination::create_stamped(&crash, "202612030915").unwrap();
        assert_eq!(name, "202612030915");
        let dir = crash.join(&name);
        assert_eq!(destination.describe(), dir.display().to_string());
        assert_eq!(mode(&crash), 0o700);
        assert_eq!(mode(&dir), 0o700);

        let mut artifact = destination.create("dump.zst").unwrap();
        artifact.write_all(b"frames").unwrap();
        assert!(dir.join("dump.zst.incomplete").is_file());
        assert!(!dir.join("dump.zst").exists());
        assert_eq!(
            artifact.describe(),
            dir.join("dump.zst.incomplete").display().to_string()
        );
        assert_eq!(artifact.commit().unwrap(), 6);
        assert!(!dir.join("dump.zst.incomplete").exists());
        assert_eq!(fs::read(dir.join("dump.zst")).unwrap(), b"frames");
        assert_eq!(mode(&dir.join("dump.zst")), 0o600);

        destination.put("lifeboat.json", b"{}").unwrap();
        destination.put("lifeboat.json", b"{\"a\":1}").unwrap();
        assert_eq!(fs::read(dir.join("lifeboat.json")).unwrap(), b"{\"a\":1}");
        assert_eq!(mode(&dir.join("lifeboat.json")), 0o600);

        // The write rate is measured on a scratch file that does not stay.
        assert!(destination.measure_write_rate(3 << 20).unwrap() > Duration::ZERO);
        assert!(!dir.join(crate::output::WRITE_RATE_SCRATCH).exists());

        // An artifact never committed keeps its suffix.
        let mut cut = destination.create("other.zst").unwrap();
        cut.write_all(b"half").unwrap();
        drop(cut);
        assert_eq!(fs::read(dir.join("other.zst.incomplete")).unwrap(), b"half");
        assert!(!dir.join("other.zst").exists());
    }

    #[test]
    fn dumps_of_the_same_minute_get_distinct_directories() {
        let base = tempfile::tempdir().unwrap();
        let names: Vec<String> = (0..3)
            .map(|_| {
                DirDestination::create_stamped(base.path(), "202611271930")
                    .unwrap()
                    .1
            })
            .collect();
        assert_eq!(names, ["202611271930", "202611271930-1", "202611271930-2"]);
        // On a shared target the directories carry the machine's name; the
        // stamps that name the files do not.
        let stamps: Vec<String> = (0..2)
            .map(|_| {
                DirDestination::create_named(base.path(), "web-17-", "202611271930")
                    .unwrap()
                    .1
            })
            .collect();
        assert_eq!(stamps, ["202611271930", "202611271930-1"]);
        assert!(base.path().join("web-17-202611271930-1").is_dir());
    }

    #[test]
    fn failures_name_the_path() {
        let base = tempfile::tempdir().unwrap();
        let file = base.path().join("file");
        fs::write(&file, b"").unwrap();
        let error = DirDestination::create_stamped(&file, "x").unwrap_err();
        assert!(
            error.to_string().contains(&file.display().to_string()),
            "{error}"
        );
        let error = DirDestination::at(&base.path().join("gone"))
            .measure_write_rate(1 << 20)
            .unwrap_err();
        assert!(
            error.to_string().contains("gone/.lifeboat-write-rate"),
            "{error}"
        );
        let missing = DirDestination::at(&base.path().join("gone"));
        let error = missing.create("dump.zst").err().unwrap();
        assert!(
            error.to_string().contains("gone/dump.zst.incomplete"),
            "{error}"
        );
    }
}

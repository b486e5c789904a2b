//! The system calls whose order matters to PID 1 (mounts, module loading,
//! the final action), behind a narrow trait so that the order is unit-tested
//! with a recording fake and no root.

use std::fs::File;
use std::path::{Path, PathBuf};

use lifeboat_config::FinalAction;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::reboot::{reboot, RebootMode};

use crate::kmsg::KernelLogCursor;

/// A failed system call, with what it was acting on.
#[derive(Debug, thiserror::Error)]
pub enum SysError {
    #[error("cannot mount {source_name} ({fstype}) on {target}: {errno}{}", mount_reason(*.errno, .fstype, .kernel_lines))]
    Mount {
        source_name: String,
        fstype: String,
        target: PathBuf,
        errno: nix::Error,
        /// What the kernel logged during the attempt: the reason, which the
        /// errno alone does not tell.
        kernel_lines: Vec<String>,
    },
    #[error("cannot unmount {target}: {errno}")]
    Unmount { target: PathBuf, errno: nix::Error },
    #[error("cannot open module {path}: {error}")]
    OpenModule {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("cannot load module {path}: {errno}")]
    LoadModule { path: PathBuf, errno: nix::Error },
    #[error("cannot decompress module {path}: {reason}")]
    DecompressModule { path: PathBuf, reason: String },
}

/// Why a mount failed, beyond its errno: what the kernel logged, or for
/// ENODEV, about which the kernel logs nothing, what it means.
fn mount_reason(errno: nix::Error, fstype: &str, kernel_lines: &[String]) -> String {
    if !kernel_lines.is_empty() {
        format!(" (kernel: {})", kernel_lines.join(" | "))
    } else if errno == nix::Error::ENODEV {
        format!(
            " (this kernel has no {fstype} filesystem: it is not built in and its module is \
             not in the image)"
        )
    } else {
        String::new()
    }
}

impl SysError {
    /// The errno of a failed call, for callers that tolerate some of them.
    pub fn errno(&self) -> Option<nix::Error> {
        match self {
            SysError::Mount { errno, .. }
            | SysError::Unmount { errno, .. }
            | SysError::LoadModule { errno, .. } => Some(*errno),
            SysError::OpenModule { .. } | SysError::DecompressModule { .. } => None,
        }
    }
}

/// Shared by PID 1's threads: the watchdog and the panic hook end the
/// lifecycle with the same system calls as the main thread.
pub trait System: Send + Sync {
    fn mount(
        &self,
        source: &str,
        target: &Path,
        fstype: &str,
        flags: MsFlags,
        data: &str,
    ) -> Result<(), SysError>;
    fn unmount(&self, target: &Path) -> Result<(), SysError>;
    /// Detaches a mount at once (`MNT_DETACH`): it no longer blocks anything
    /// even when its server hangs; the kernel drops it when its last user
    /// goes.
    fn detach(&self, target: &Path) -> Result<(), SysError>;
    /// Forces a mount off (`MNT_FORCE`): an NFS client then fails the calls
    /// blocked on its server. May itself block until the server answers.
    fn force_unmount(&self, target: &Path) -> Result<(), SysError>;
    /// Loads a module file: a plain `.ko`, or a `.ko.zst` as images store
    /// them (see [`lifeboat_config::layout::module_path`]). A compressed
    /// file is deleted as soon as it is read, before the kernel gets the
    /// decompressed module, so that the two are never in RAM together.
    fn load_module(&self, path: &Path) -> Result<(), SysError>;
    fn sync(&self);
    /// Reboots, powers off or halts. Only returns if the kernel refused.
    fn final_action(&self, action: FinalAction) -> nix::Error;
}

/// The real thing.
pub struct Linux;

impl System for Linux {
    fn mount(
        &self,
        source: &str,
        target: &Path,
        fstype: &str,
        flags: MsFlags,
        data: &str,
    ) -> Result<(), SysError> {
        let data = (!data.is_empty()).then_some(data);
        let mut kernel_log = KernelLogCursor::at_end(Path::new("/dev/kmsg"));
        mount(Some(source), target, Some(fstype), flags, data).map_err(|errno| SysError::Mount {
            source_name: source.to_owned(),
            fstype: fstype.to_owned(),
            target: target.to_owned(),
            errno,
            kernel_lines: kernel_log
                .as_mut()
                .map(KernelLogCursor::kernel_lines)
                .unwrap_or_default(),
        })
    }

    fn unmount(&self, target: &Path) -> Result<(), SysError> {
        umount2(target, MntFlags::empty()).map_err(|errno| SysError::Unmount {
            target: target.to_owned(),
            errno,
        })
    }

    fn force_unmount(&self, target: &Path) -> Result<(), SysError> {
        umount2(target, MntFlags::MNT_FORCE).map_err(|errno| SysError::Unmount {
            target: target.to_owned(),
            errno,
        })
    }

    fn detach(&self, target: &Path) -> Result<(), SysError> {
        umount2(target, MntFlags::MNT_DETACH).map_err(|errno| SysError::Unmount {
            target: target.to_owned(),
            errno,
        })
    }

    fn load_module(&self, path: &Path) -> Result<(), SysError> {
        if path.extension().is_some_and(|extension| extension == "zst") {
            let module = read_compressed_module(path)?;
            return nix::kmod::init_module(&module, c"").map_err(|errno| SysError::LoadModule {
                path: path.to_owned(),
                errno,
            });
        }
        let file = File::open(path).map_err(|error| SysError::OpenModule {
            path: path.to_owned(),
            error,
        })?;
        nix::kmod::finit_module(&file, c"", nix::kmod::ModuleInitFlags::empty()).map_err(|errno| {
            SysError::LoadModule {
                path: path.to_owned(),
                errno,
            }
        })
    }

    fn sync(&self) {
        nix::unistd::sync();
    }

    fn final_action(&self, action: FinalAction) -> nix::Error {
        let mode = match action {
            FinalAction::Reboot => RebootMode::RB_AUTOBOOT,
            FinalAction::Poweroff => RebootMode::RB_POWER_OFF,
            FinalAction::Halt => RebootMode::RB_HALT_SYSTEM,
        };
        match reboot(mode) {
            Err(errno) => errno,
            Ok(never) => match never {},
        }
    }
}

/// The largest module PID 1 decompresses. The biggest modules of a distro
/// kernel (GPU drivers, with their BTF) are tens of MiB; a frame that claims
/// more than this is damaged, and asking for it would only fail later.
const MAX_MODULE_BYTES: u64 = 256 << 20;

/// Reads a `.ko.zst` file, deletes it, and decompresses it. Memory is asked
/// for with `try_reserve`, so that a module too big for the capture kernel's
/// RAM is an error about that module rather than an abort of PID 1.
fn read_compressed_module(path: &Path) -> Result<Vec<u8>, SysError> {
    let open_error = |error| SysError::OpenModule {
        path: path.to_owned(),
        error,
    };
    let decompress_error = |reason: String| SysError::DecompressModule {
        path: path.to_owned(),
        reason,
    };
    let mut file = File::open(path).map_err(open_error)?;
    let length = file.metadata().map_err(open_error)?.len();
    let mut compressed = Vec::new();
    compressed
        .try_reserve_exact(usize::try_from(length).unwrap_or(usize::MAX))
        .map_err(|_| decompress_error(format!("no memory for its {length} bytes")))?;
    std::io::Read::read_to_end(&mut file, &mut compressed).map_err(open_error)?;
    drop(file);
    // The image holds no other copy, and nothing reads the file again.
    let _ = std::fs::remove_file(path);

    let size = match zstd::zstd_safe::get_frame_content_size(&compressed) {
        Ok(Some(size)) if size <= MAX_MODULE_BYTES => size,
        Ok(Some(size)) => {
            return Err(decompress_error(format!(
                "its frame claims {size} bytes, more than the {MAX_MODULE_BYTES} a module may have"
            )))
        }
        Ok(None) => return Err(decompress_error("its frame does not give its size".into())),
        Err(_) => return Err(decompress_error("it is not a zstd frame".into())),
    };
    let mut module = Vec::new();
    module
        .try_reserve_exact(size as usize)
        .map_err(|_| decompress_error(format!("no memory for its {size} bytes")))?;
    let mut decompressor = zstd::bulk::Decompressor::new()
        .map_err(|error| decompress_error(format!("no decompression context: {error}")))?;
    let written = decompressor
        .decompress_to_buffer(&compressed, &mut module)
        .map_err(|error| decompress_error(error.to_string()))?;
    if written as u64 != size {
        return Err(decompress_error(format!(
            "it decompressed to {written} bytes, not the {size} its frame gives"
        )));
    }
    Ok(module)
}

/// One recorded call of [`Recorder`].
#[cfg(test)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Mount {
        source: String,
        target: String,
        fstype: String,
    },
    Unmount(String),
    Detach(String),
    ForceUnmount(String),
    LoadModule(String),
    Sync,
    FinalAction(FinalAction),
}

/// A fake that records calls and fails the ones it is told to.
#[cfg(test)]
#[derive(Default)]
pub struct Recorder {
    pub calls: std::sync::Mutex<Vec<Call>>,
    /// `sync` never returns, as on a dead disk or server.
    pub sync_hangs: bool,
    /// The final action never returns, as a real reboot does not; otherwise
    /// it fails with EPERM.
    pub final_action_hangs: bool,
    /// Mount targets whose mount fails with this errno.
    pub failing_mounts: Vec<(String, nix::Error)>,
    /// Mount targets whose mount never returns, as against a hung server.
    pub hanging_mounts: Vec<String>,
    /// A forced unmount never returns, as against a hung NFS server.
    pub force_unmount_hangs: bool,
    /// Module paths whose loading fails with this errno.
    pub failing_modules: Vec<(String, nix::Error)>,
}

#[cfg(test)]
impl Recorder {
    /// The calls so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    fn record(&self, call: Call) {
        self.calls.lock().unwrap().push(call);
    }

    /// Waits up to `limit` for `call` to be recorded.
    pub fn wait_for(&self, call: &Call, limit: std::time::Duration) -> bool {
        let start = std::time::Instant::now();
        while start.elapsed() < limit {
            if self.calls().contains(call) {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        false
    }
}

/// Blocks the calling thread for good, as a call stuck in the kernel does.
#[cfg(test)]
fn hang() -> ! {
    loop {
        std::thread::park();
    }
}

#[cfg(test)]
impl System for Recorder {
    fn mount(
        &self,
        source: &str,
        target: &Path,
        fstype: &str,
        _flags: MsFlags,
        _data: &str,
    ) -> Result<(), SysError> {
        let target_text = target.display().to_string();
        self.record(Call::Mount {
            source: source.to_owned(),
            target: target_text.clone(),
            fstype: fstype.to_owned(),
        });
        if self.hanging_mounts.contains(&target_text) {
            hang();
        }
        match self.failing_mounts.iter().find(|(t, _)| *t == target_text) {
            Some((_, errno)) => Err(SysError::Mount {
                source_name: source.to_owned(),
                fstype: fstype.to_owned(),
                target: target.to_owned(),
                errno: *errno,
                kernel_lines: vec!["EXT4-fs (vda): Cannot load crc32c driver.".to_owned()],
            }),
            None => Ok(()),
        }
    }

    fn unmount(&self, target: &Path) -> Result<(), SysError> {
        self.record(Call::Unmount(target.display().to_string()));
        Ok(())
    }

    fn detach(&self, target: &Path) -> Result<(), SysError> {
        self.record(Call::Detach(target.display().to_string()));
        Ok(())
    }

    fn force_unmount(&self, target: &Path) -> Result<(), SysError> {
        self.record(Call::ForceUnmount(target.display().to_string()));
        if self.force_unmount_hangs {
            hang();
        }
        Ok(())
    }

    fn load_module(&self, path: &Path) -> Result<(), SysError> {
        let text = path.display().to_string();
        self.record(Call::LoadModule(text.clone()));
        match self.failing_modules.iter().find(|(p, _)| *p == text) {
            Some((_, errno)) => Err(SysError::LoadModule {
                path: path.to_owned(),
                errno: *errno,
            }),
            None => Ok(()),
        }
    }

    fn sync(&self) {
        self.record(Call::Sync);
        if self.sync_hangs {
            hang();
        }
    }

    fn final_action(&self, action: FinalAction) -> nix::Error {
        self.record(Call::FinalAction(action));
        if self.final_action_hangs {
            hang();
        }
        nix::Error::EPERM
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_mount_says_what_the_kernel_said() {
        let error = |kernel_lines: &[&str]| SysError::Mount {
            source_name: "/dev/vda".into(),
            fstype: "ext4".into(),
            target: "/mnt/target0".into(),
            errno: nix::Error::ENOENT,
            kernel_lines: kernel_lines.iter().map(|line| line.to_string()).collect(),
        };
        assert_eq!(
            error(&[]).to_string(),
            "cannot mount /dev/vda (ext4) on /mnt/target0: ENOENT: No such file or directory"
        );
        let unknown = SysError::Mount {
            source_name: "/dev/vda".into(),
            fstype: "ext4".into(),
            target: "/mnt/target0".into(),
            errno: nix::Error::ENODEV,
            kernel_lines: Vec::new(),
        };
        assert!(
            unknown
                .to_string()
                .ends_with("(this kernel has no ext4 filesystem: it is not built in and its module is not in the image)"),
            "{unknown}"
        );
        assert_eq!(
            error(&["EXT4-fs (vda): Cannot load crc32c driver.", "second"]).to_string(),
            "cannot mount /dev/vda (ext4) on /mnt/target0: ENOENT: No such file or directory \
             (kernel: EXT4-fs (vda): Cannot load crc32c driver. | second)"
        );
    }

    /// A table of module files: what reading each gives. The file is gone
    /// afterwards in every case, as PID 1 never reads it twice.
    #[test]
    fn compressed_modules_are_read_whole_or_refused_by_name() {
        let module: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let framed = |size_known: bool, checksum: bool| {
            let mut compressor = zstd::bulk::Compressor::new(3).unwrap();
            compressor.include_contentsize(size_known).unwrap();
            compressor.include_checksum(checksum).unwrap();
            compressor.compress(&module).unwrap()
        };
        let mut corrupt = framed(true, true);
        let middle = corrupt.len() / 2;
        corrupt[middle] ^= 0x55;
        // A frame header alone: magic, then a descriptor for a single
        // segment with an 8-byte content size, then that size.
        let mut huge = vec![0x28, 0xb5, 0x2f, 0xfd, 0xe0];
        huge.extend_from_slice(&(MAX_MODULE_BYTES + 1).to_le_bytes());
        let cases: [(&str, Vec<u8>, Result<(), &str>); 5] = [
            ("whole", framed(true, true), Ok(())),
            (
                "unsized",
                framed(false, true),
                Err("does not give its size"),
            ),
            ("corrupt", corrupt, Err("cannot decompress module")),
            (
                "not-zstd",
                b"\x7fELF plain".to_vec(),
                Err("not a zstd frame"),
            ),
            ("huge", huge, Err("more than the")),
        ];
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes, expected) in cases {
            let path = dir.path().join(format!("{name}.ko.zst"));
            std::fs::write(&path, &bytes).unwrap();
            let result = read_compressed_module(&path);
            match (&result, expected) {
                (Ok(read), Ok(())) => assert!(*read == module, "{name}"),
                (Err(error), Err(words)) => {
                    let text = error.to_string();
                    assert!(text.contains(words), "{name}: {text}");
                    assert!(text.contains(&path.display().to_string()), "{name}: {text}");
                }
                _ => panic!("{name}: {:?}", result.map(|read| read.len())),
            }
            assert!(!path.exists(), "{name} was deleted");
        }
        let missing = read_compressed_module(&dir.path().join("missing.ko.zst"));
        assert!(matches!(missing, Err(SysError::OpenModule { .. })));
    }
}

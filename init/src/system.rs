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
    #[error("cannot mount {source_name} ({fstype}) on {target}: {errno}{}", kernel_said(.kernel_lines))]
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
}

fn kernel_said(lines: &[String]) -> String {
    if lines.is_empty() {
        String::new()
    } else {
        format!(" (kernel: {})", lines.join(" | "))
    }
}

impl SysError {
    /// The errno of a failed call, for callers that tolerate some of them.
    pub fn errno(&self) -> Option<nix::Error> {
        match self {
            SysError::Mount { errno, .. }
            | SysError::Unmount { errno, .. }
            | SysError::LoadModule { errno, .. } => Some(*errno),
            SysError::OpenModule { .. } => None,
        }
    }
}

pub trait System {
    fn mount(
        &self,
        source: &str,
        target: &Path,
        fstype: &str,
        flags: MsFlags,
        data: &str,
    ) -> Result<(), SysError>;
    fn unmount(&self, target: &Path) -> Result<(), SysError>;
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

    fn load_module(&self, path: &Path) -> Result<(), SysError> {
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
    LoadModule(String),
    Sync,
    FinalAction(FinalAction),
}

/// A fake that records calls and fails the ones it is told to.
#[cfg(test)]
#[derive(Default)]
pub struct Recorder {
    pub calls: std::cell::RefCell<Vec<Call>>,
    /// Mount targets whose mount fails with this errno.
    pub failing_mounts: Vec<(String, nix::Error)>,
    /// Module paths whose loading fails with this errno.
    pub failing_modules: Vec<(String, nix::Error)>,
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
        self.calls.borrow_mut().push(Call::Mount {
            source: source.to_owned(),
            target: target_text.clone(),
            fstype: fstype.to_owned(),
        });
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
        self.calls
            .borrow_mut()
            .push(Call::Unmount(target.display().to_string()));
        Ok(())
    }

    fn load_module(&self, path: &Path) -> Result<(), SysError> {
        let text = path.display().to_string();
        self.calls.borrow_mut().push(Call::LoadModule(text.clone()));
        match self.failing_modules.iter().find(|(p, _)| *p == text) {
            Some((_, errno)) => Err(SysError::LoadModule {
                path: path.to_owned(),
                errno: *errno,
            }),
            None => Ok(()),
        }
    }

    fn sync(&self) {
        self.calls.borrow_mut().push(Call::Sync);
    }

    fn final_action(&self, action: FinalAction) -> nix::Error {
        self.calls.borrow_mut().push(Call::FinalAction(action));
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
        assert_eq!(
            error(&["EXT4-fs (vda): Cannot load crc32c driver.", "second"]).to_string(),
            "cannot mount /dev/vda (ext4) on /mnt/target0: ENOENT: No such file or directory \
             (kernel: EXT4-fs (vda): Cannot load crc32c driver. | second)"
        );
    }
}

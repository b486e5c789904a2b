//! What PID 1 does before it knows anything: the API filesystems, and the
//! kernel modules the image carries.

use std::path::Path;

use nix::mount::MsFlags;

use crate::system::{SysError, System};

/// One filesystem mounted at start: source, mount point, type, flags, data.
pub struct EarlyMount {
    pub source: &'static str,
    pub target: &'static str,
    pub fstype: &'static str,
    pub flags: MsFlags,
    pub data: &'static str,
}

/// In this order: devtmpfs needs nothing, sysfs and proc neither, but the
/// logger wants `/dev/kmsg` and module loading wants `/proc` and `/sys`.
pub const EARLY_MOUNTS: &[EarlyMount] = &[
    EarlyMount {
        source: "devtmpfs",
        target: "/dev",
        fstype: "devtmpfs",
        flags: MsFlags::MS_NOSUID,
        data: "mode=0755",
    },
    EarlyMount {
        source: "proc",
        target: "/proc",
        fstype: "proc",
        flags: MsFlags::MS_NOSUID
            .union(MsFlags::MS_NODEV)
            .union(MsFlags::MS_NOEXEC),
        data: "",
    },
    EarlyMount {
        source: "sysfs",
        target: "/sys",
        fstype: "sysfs",
        flags: MsFlags::MS_NOSUID
            .union(MsFlags::MS_NODEV)
            .union(MsFlags::MS_NOEXEC),
        data: "",
    },
    EarlyMount {
        source: "tmpfs",
        target: "/run",
        fstype: "tmpfs",
        flags: MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV),
        // Small on purpose: nothing big belongs in RAM in a capture kernel.
        data: "mode=0755,size=4m",
    },
];

/// Mounts [`EARLY_MOUNTS`] under `root` (`/` in PID 1). A filesystem that is
/// already mounted (EBUSY: the kernel's devtmpfs automount) is fine; other
/// failures are returned, and the rest is still attempted.
pub fn mount_api_filesystems(system: &dyn System, root: &Path) -> Vec<SysError> {
    let mut errors = Vec::new();
    for entry in EARLY_MOUNTS {
        let target = root.join(entry.target.trim_start_matches('/'));
        let _ = std::fs::create_dir_all(&target);
        match system.mount(entry.source, &target, entry.fstype, entry.flags, entry.data) {
            Ok(()) => {}
            Err(error) if error.errno() == Some(nix::Error::EBUSY) => {}
            Err(error) => errors.push(error),
        }
    }
    errors
}

/// What happened to the image's modules.
#[derive(Debug, Default)]
pub struct ModuleReport {
    pub loaded: Vec<String>,
    pub failed: Vec<String>,
    /// Modules the kernel refused with ENODEV: their device or CPU feature
    /// is not there. The image carries accelerated implementations next to
    /// generic ones (crc32c_intel beside crc32c_generic), so this is normal.
    pub unsupported: Vec<String>,
}

/// Loads the modules listed (one path per line, in load order) in
/// `list_path`. A module already loaded (EEXIST) counts as loaded. Each file
/// is deleted once the kernel has it: the initramfs lives in RAM, and a
/// capture kernel has little to spare. A failed module is reported and the
/// rest are still tried: the target may not need it.
pub fn load_modules(system: &dyn System, list_path: &Path) -> ModuleReport {
    let mut report = ModuleReport::default();
    let list = match std::fs::read_to_string(list_path) {
        Ok(list) => list,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return report,
        Err(error) => {
            log::error!("cannot read module list {}: {error}", list_path.display());
            return report;
        }
    };
    for line in list.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let path = Path::new(line);
        let name = lifeboat_config::layout::module_name(line).to_owned();
        match system.load_module(path) {
            Ok(()) => {
                log::debug!("loaded module {name}");
                report.loaded.push(name);
            }
            Err(error) if error.errno() == Some(nix::Error::EEXIST) => report.loaded.push(name),
            Err(error) if error.errno() == Some(nix::Error::ENODEV) => {
                log::info!("module {name} does not apply to this machine (ENODEV)");
                report.unsupported.push(name);
            }
            Err(error) => {
                log::error!("{error}");
                report.failed.push(name);
            }
        }
        let _ = std::fs::remove_file(path);
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::{Call, Recorder};

    #[test]
    fn api_filesystems_are_mounted_in_order_and_ebusy_is_fine() {
        let root = tempfile::tempdir().unwrap();
        let recorder = Recorder {
            failing_mounts: vec![
                (
                    root.path().join("dev").display().to_string(),
                    nix::Error::EBUSY,
                ),
                (
                    root.path().join("run").display().to_string(),
                    nix::Error::ENOMEM,
                ),
            ],
            ..Recorder::default()
        };
        let errors = mount_api_filesystems(&recorder, root.path());
        let fstypes: Vec<String> = recorder
            .calls()
            .iter()
            .map(|call| match call {
                Call::Mount { fstype, target, .. } => {
                    assert!(Path::new(target).is_dir(), "{target} was created first");
                    fstype.clone()
                }
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(fstypes, ["devtmpfs", "proc", "sysfs", "tmpfs"]);
        assert_eq!(errors.len(), 1);
        assert!(errors[0].to_string().contains("run"), "{}", errors[0]);
    }

    #[test]
    fn modules_load_in_list_order_and_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let names = ["virtio_ring", "virtio", "virtio_pci", "virtio_blk"];
        let paths: Vec<String> = names
            .iter()
            .map(|n| {
                let path = dir.path().join(format!("{n}.ko"));
                std::fs::write(&path, b"\x7fELF").unwrap();
                path.display().to_string()
            })
            .collect();
        let list = dir.path().join("modules");
        std::fs::write(&list, paths.join("\n") + "\n\n").unwrap();
        let recorder = Recorder {
            failing_modules: vec![
                (paths[1].clone(), nix::Error::EEXIST),
                (paths[2].clone(), nix::Error::ENOEXEC),
                (paths[3].clone(), nix::Error::ENODEV),
            ],
            ..Recorder::default()
        };
        let report = load_modules(&recorder, &list);
        let calls: Vec<Call> = paths.iter().cloned().map(Call::LoadModule).collect();
        assert_eq!(recorder.calls(), calls);
        assert_eq!(report.loaded, ["virtio_ring", "virtio"]);
        assert_eq!(report.failed, ["virtio_pci"]);
        assert_eq!(report.unsupported, ["virtio_blk"]);
        assert!(paths.iter().all(|p| !Path::new(p).exists()));
    }

    #[test]
    fn a_missing_module_list_means_no_modules() {
        let recorder = Recorder::default();
        let report = load_modules(&recorder, Path::new("/nonexistent/modules"));
        assert!(report.loaded.is_empty() && report.failed.is_empty());
        assert!(recorder.calls().is_empty());
    }
}

//! The two initramfs images of a crash test: lifeboat's capture image,
//! built with the `lifeboat image` command exactly as a user would, and
//! crashme's production image, which carries the capture kernel and image
//! that crashme arms with kexec_file_load.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result};
use initramfs::cpio::Archive;
use initramfs::modules::ModuleTree;

use super::kernel::Kernel;
use crate::dist::Dist;
use crate::util;

/// Every capture kernel command line starts with this, and `nr_cpus=`
/// follows. irqpoll and reset_devices let drivers cope with devices the
/// crashed kernel left mid-operation; `panic=-1` reboots at once if the
/// capture kernel itself panics, which ends QEMU.
pub const CAPTURE_CMDLINE_BASE: &str = "console=ttyS0 irqpoll reset_devices panic=-1";

/// One disk target, the test disk (`{uuid}`); the bench's reference
/// vmcores are captured with it too. Only the block driver is named: the
/// filesystem's modules come from the target's type, as a user relies on.
/// The read rate (off by default) is logged, for the bench's figures. Dump
/// level 0 keeps every page: the tests check crashme's planted pages,
/// which are user data, and the bench's reference vmcores are whole.
pub const DISK_CONFIG: &str = r#"
final_action = "reboot"
dump_level = 0
measure_read_rate = true
modules = ["virtio_pci", "virtio_blk"]
[deadlines]
device_wait = 30
[[target]]
type = "disk"
device = "UUID={uuid}"
"#;

/// Writes `config_toml` to `dir/lifeboat.toml` and builds
/// `dir/lifeboat.img` from it with `lifeboat image`, as a user would.
pub fn build_capture_image(
    dist: &Dist,
    kernel: &Kernel,
    dir: &Path,
    config_toml: &str,
    extra_args: &[&str],
) -> Result<PathBuf> {
    let config = dir.join("lifeboat.toml");
    fs::write(&config, config_toml)?;
    let capture_image = dir.join("lifeboat.img");
    util::run(
        Command::new(&dist.lifeboat)
            .arg("image")
            .arg("--config")
            .arg(&config)
            .arg("--kernel-modules")
            .arg(&kernel.modules)
            .args(extra_args)
            .arg("-o")
            .arg(&capture_image),
    )?;
    Ok(capture_image)
}

/// crashme's initramfs: crashme as /init, and what it loads as the capture
/// kernel; the bench adds its own files.
pub fn production_archive(
    dist: &Dist,
    kernel: &Kernel,
    capture_image: &Path,
    capture_cmdline: &str,
) -> Result<Archive> {
    let read =
        |path: &Path| fs::read(path).with_context(|| format!("cannot read {}", path.display()));
    let mut archive = Archive::new();
    archive.add_char_device("/dev/console", 0o600, 5, 1)?;
    archive.add_file("/init", 0o755, read(&dist.crashme)?)?;
    archive.add_file("/vmlinuz", 0o644, read(&kernel.vmlinuz)?)?;
    archive.add_file("/lifeboat.img", 0o644, read(capture_image)?)?;
    archive.add_file(
        "/capture-cmdline",
        0o644,
        format!("{capture_cmdline}\n").into_bytes(),
    )?;
    Ok(archive)
}

/// Adds the modules crashme needs to mount the test disk on the production
/// kernel (the virtio block driver and its closure, in load order) under
/// `crashme::kinds::MODULES_DIR`, numbered so that name order is load
/// order. The filesystem, ext4, is built into the cloud kernel only.
pub fn add_disk_modules(archive: &mut Archive, kernel: &Kernel) -> Result<Vec<String>> {
    let tree = ModuleTree::open(&kernel.modules)
        .with_context(|| format!("cannot index {}", kernel.modules.display()))?;
    let modules = tree
        .resolve(&["virtio_blk".to_owned()])
        .context("cannot resolve virtio_blk")?;
    let mut names = Vec::new();
    for (index, module) in modules.into_iter().enumerate() {
        archive.add_file(
            &format!(
                "{}/{index:02}-{}.ko",
                crashme::kinds::MODULES_DIR,
                module.name
            ),
            0o644,
            module.contents,
        )?;
        names.push(module.name);
    }
    Ok(names)
}

pub fn write_archive(out: &Path, archive: Archive) -> Result<()> {
    fs::write(out, archive.to_bytes()).with_context(|| format!("cannot write {}", out.display()))
}

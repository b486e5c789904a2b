//! Test disks: a raw image with a filesystem made by its own mkfs with the
//! mkfs's defaults (as a user would make a dump disk), checked after the
//! run by its own fsck, and read back with tools we did not write.
//!
//! ext4 and vfat are read without mounting (debugfs, mtools). xfs has no
//! such reader in Debian 12, so xfs and btrfs images are mounted read-only
//! through a loop device, which takes root, as CI runs.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _, Result};

use crate::util;

/// The filesystems lifeboat supports on a disk target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fs {
    Ext4,
    Xfs,
    Btrfs,
    Vfat,
}

impl Fs {
    /// The name in a config's `fstype` and in mount(2).
    pub fn name(self) -> &'static str {
        match self {
            Fs::Ext4 => "ext4",
            Fs::Xfs => "xfs",
            Fs::Btrfs => "btrfs",
            Fs::Vfat => "vfat",
        }
    }

    /// Makes a sparse image of `mib` MiB, so that it costs only what is
    /// written, with the given UUID (for vfat, a volume serial `ABCD-1234`)
    /// and label, and otherwise the mkfs's defaults.
    pub fn make(self, disk: &Path, uuid: &str, label: &str, mib: u64) -> Result<()> {
        let file = fs::File::create(disk)?;
        file.set_len(mib << 20)?;
        drop(file);
        let mut mkfs = match self {
            Fs::Ext4 => {
                let mut mkfs = Command::new("mkfs.ext4");
                mkfs.args(["-q", "-F", "-U", uuid, "-L", label]);
                mkfs
            }
            Fs::Xfs => {
                let mut mkfs = Command::new("mkfs.xfs");
                mkfs.args(["-q", "-f", "-L", label, "-m"])
                    .arg(format!("uuid={uuid}"));
                mkfs
            }
            Fs::Btrfs => {
                let mut mkfs = Command::new("mkfs.btrfs");
                mkfs.args(["-q", "-f", "-U", uuid, "-L", label]);
                mkfs
            }
            Fs::Vfat => {
                let mut mkfs = Command::new("mkfs.vfat");
                mkfs.args(["-i", &uuid.replace('-', ""), "-n", &label.to_uppercase()]);
                mkfs
            }
        };
        util::output(mkfs.arg(disk)).map(drop)
    }

    /// Checks the filesystem as the next boot would find it, with the
    /// filesystem's own checker; returns what it concluded.
    pub fn check(self, disk: &Path) -> Result<String> {
        match self {
            Fs::Ext4 => e2fsck(disk),
            Fs::Xfs => clean(Command::new("xfs_repair").args(["-n", "-f"]).arg(disk)),
            Fs::Btrfs => clean(
                Command::new("btrfs")
                    .args(["check", "--readonly"])
                    .arg(disk),
            ),
            Fs::Vfat => clean(Command::new("fsck.vfat").arg("-n").arg(disk)),
        }
    }

    /// Copies the directory `dir_on_disk` (absolute) off the image into
    /// `out`, which is emptied first; returns the copy, or `None` when the
    /// image has no such directory.
    pub fn copy_dir(self, disk: &Path, dir_on_disk: &str, out: &Path) -> Result<Option<PathBuf>> {
        if out.exists() {
            fs::remove_dir_all(out)?;
        }
        fs::create_dir_all(out)?;
        let name = Path::new(dir_on_disk)
            .file_name()
            .context("the directory to copy has no name")?;
        let copy = out.join(name);
        match self {
            Fs::Ext4 => {
                // rdump restores each file's mode, owner and times.
                debugfs(disk, &format!("rdump {dir_on_disk} {}", out.display()))?;
            }
            Fs::Vfat => {
                let image = format!("::{dir_on_disk}");
                let listed = Command::new("mdir")
                    .args(["-b", "-i"])
                    .arg(disk)
                    .arg(&image)
                    .env("MTOOLS_SKIP_CHECK", "1")
                    .output()
                    .context("cannot run mdir (Debian package mtools)")?;
                if listed.status.success() {
                    util::output(
                        Command::new("mcopy")
                            .args(["-s", "-n", "-i"])
                            .arg(disk)
                            .arg(&image)
                            .arg(out)
                            .env("MTOOLS_SKIP_CHECK", "1"),
                    )?;
                }
            }
            Fs::Xfs | Fs::Btrfs => {
                let mounted = LoopMount::read_only(disk, self, &out.with_extension("mnt"))?;
                let source = mounted.point.join(dir_on_disk.trim_start_matches('/'));
                if source.is_dir() {
                    util::output(Command::new("cp").arg("-a").arg(&source).arg(out))?;
                }
            }
        }
        Ok(copy.is_dir().then_some(copy))
    }

    /// The permission bits of `path_on_disk`, whose copy `copy_dir` made at
    /// `copy`; `None` on vfat, which stores none (its mount options decide).
    pub fn mode(self, disk: &Path, path_on_disk: &str, copy: &Path) -> Result<Option<u32>> {
        match self {
            // Read from the image itself, not from rdump's copy.
            Fs::Ext4 => ext4_mode(disk, path_on_disk).map(Some),
            Fs::Xfs | Fs::Btrfs => {
                let meta = fs::symlink_metadata(copy)
                    .with_context(|| format!("cannot stat {}", copy.display()))?;
                Ok(Some(meta.permissions().mode() & 0o7777))
            }
            Fs::Vfat => Ok(None),
        }
    }
}

/// Runs a checker that exits with 0 only when it found nothing to repair.
fn clean(command: &mut Command) -> Result<String> {
    let output = command
        .output()
        .with_context(|| format!("cannot run `{}`", util::display(command)))?;
    if !output.status.success() {
        bail!(
            "`{}` found damage ({}):\n{}{}",
            util::display(command),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok("clean".into())
}

/// e2fsck replays the journal (debugfs reads the disk as it is, without
/// it: a dump cut off by the deadline is durable in the journal, which the
/// next mount replays) and must find nothing to repair.
fn e2fsck(disk: &Path) -> Result<String> {
    let output = Command::new("e2fsck")
        .args(["-f", "-y"])
        .arg(disk)
        .output()
        .context("cannot run e2fsck (Debian package e2fsprogs)")?;
    let said = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    let replayed = said.contains("recovering journal");
    // After an unclean stop (the deadline scenario reboots with the target
    // mounted), ext4's free-block and free-inode summaries are stale: they
    // are not journaled, and every fsck recomputes them. Any other repair
    // is damage.
    let lines: Vec<&str> = said.lines().collect();
    let repairs: Vec<&str> = lines
        .windows(2)
        .filter(|pair| pair[1].starts_with("Fix? yes"))
        .map(|pair| pair[0])
        .filter(|problem| {
            !(problem.starts_with("Free blocks count wrong")
                || problem.starts_with("Free inodes count wrong"))
        })
        .collect();
    // Exit 0: clean; 1: repaired, which replaying the journal alone reports.
    match output.status.code() {
        Some(0) => Ok("clean".into()),
        Some(1) if repairs.is_empty() => Ok(if replayed {
            "clean after replaying the journal".into()
        } else {
            "clean but for the free counts".into()
        }),
        _ => bail!("e2fsck found damage ({}):\n{said}", output.status),
    }
}

/// Runs one debugfs request on the (unmounted) ext4 image. debugfs exits
/// with 0 even when a request fails, so callers check what it produced.
fn debugfs(disk: &Path, request: &str) -> Result<String> {
    util::output(
        Command::new("debugfs")
            .env("DEBUGFS_PAGER", "__none__")
            .arg("-R")
            .arg(request)
            .arg(disk),
    )
}

/// The permission bits from debugfs `stat` ("Mode:  0600").
fn ext4_mode(disk: &Path, path: &str) -> Result<u32> {
    let stat = debugfs(disk, &format!("stat {path}"))?;
    let mode = stat
        .split("Mode:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .with_context(|| format!("debugfs stat {path} shows no mode: {stat}"))?;
    u32::from_str_radix(mode, 8).with_context(|| format!("bad mode `{mode}` of {path}"))
}

/// An image mounted read-only on a loop device, unmounted when dropped.
struct LoopMount {
    point: PathBuf,
}

impl LoopMount {
    fn read_only(disk: &Path, fs: Fs, point: &Path) -> Result<LoopMount> {
        fs::create_dir_all(point)?;
        util::output(
            Command::new("mount")
                .args(["-t", fs.name(), "-o", "ro,loop"])
                .arg(disk)
                .arg(point),
        )
        .context("cannot mount the test disk read-only (this needs root and loop devices)")?;
        Ok(LoopMount {
            point: point.to_owned(),
        })
    }
}

impl Drop for LoopMount {
    fn drop(&mut self) {
        // The loop device goes with the mount (mount -o loop sets it to
        // clear itself).
        if let Err(error) = util::output(Command::new("umount").arg(&self.point)) {
            eprintln!("warning: {error:#}");
        }
        let _ = fs::remove_dir(&self.point);
    }
}

//! `lifeboat image` and `lifeboat check-config`: capture images from a
//! config.
//!
//! `image` validates the config (an invalid one fails here, with file, line
//! and key, never at crash time), bakes it, and packs PID 1 and the kernel
//! modules the targets need. It needs no Rust toolchain: PID 1 is the
//! prebuilt static `init` installed beside this command.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use initramfs::{build_image, Compression, ImageSpec};
use lifeboat_config::user::{self, Parsed};

use crate::nic;

/// Prints the config in the form PID 1 will read, after the warnings
/// about it. An ssh target's identity is shown where it is on this
/// machine; `image` stores it elsewhere in the image.
pub fn check_config(config: &Path) -> Result<()> {
    let parsed = read_config(config)?;
    print!("{}", parsed.config.encode());
    Ok(())
}

/// Reads and checks a config on this machine, and prints its warnings.
fn read_config(path: &Path) -> Result<Parsed> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let parsed = user::parse_with(&path.display().to_string(), &text, &user::SystemHost)?;
    for warning in &parsed.warnings {
        eprintln!("lifeboat: warning: {warning}");
    }
    Ok(parsed)
}

pub fn image(
    config_path: &Path,
    kernel_modules: Option<PathBuf>,
    init: Option<PathBuf>,
    no_compress: bool,
    output: &Path,
) -> Result<()> {
    let Parsed {
        config, identities, ..
    } = read_config(config_path)?;
    let init = match init {
        Some(path) => path,
        None => find_init(init_for(&config))?,
    };
    let modules_dir = match kernel_modules {
        Some(dir) => dir,
        None => {
            let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .context("cannot read the running kernel's release")?;
            Path::new("/lib/modules").join(release.trim())
        }
    };
    let mut found_filesystems = Vec::new();
    for target in probe_auto_targets(&config, Path::new(SYS_CLASS_BLOCK), Path::new("/dev")) {
        match target.found {
            Some((fstype, dev_path)) => {
                eprintln!(
                    "lifeboat: target {} ({}) has fstype = \"auto\" and is {fstype} on {} here: \
                     its filesystem module goes in the image",
                    target.index + 1,
                    target.device,
                    dev_path.display()
                );
                found_filesystems.push(fstype.to_owned());
            }
            None => eprintln!(
                "lifeboat: warning: target {} ({}) has fstype = \"auto\" and is not on this \
                 machine, or cannot be read: its filesystem will only be known at crash time. \
                 Name its fstype, or list its module in `modules`, unless the capture kernel \
                 has the filesystem built in.",
                target.index + 1,
                target.device
            ),
        }
    }
    let nic = config.network.as_ref().map(|network| {
        nic::find(
            &network.interface,
            Path::new(SYS),
            Path::new(PROC_NET_ROUTE),
        )
    });
    let mut found_drivers = Vec::new();
    match &nic {
        None => {}
        Some(Ok(nic)) => {
            eprintln!(
                "lifeboat: the network targets go through {} here, driver {}: its module and \
                 its buses' go in the image unless the kernel has them built in",
                nic.interface, nic.driver
            );
            found_drivers.extend(nic.bus_drivers.iter().cloned());
            found_drivers.push(nic.driver.clone());
        }
        Some(Err(why)) => eprintln!(
            "lifeboat: warning: the network targets' interface: {why}. The image cannot know \
             its driver: add its driver to `modules`, unless the capture kernel has it built in."
        ),
    }
    let spec = ImageSpec {
        init: &init,
        config: &config,
        modules_dir: Some(&modules_dir),
        found_filesystems: &found_filesystems,
        found_drivers: &found_drivers,
        identities: &identities,
        compression: if no_compress {
            Compression::None
        } else {
            Compression::Zstd { level: 19 }
        },
    };
    let image = build_image(&spec)?;
    // A bus driver the kernel lacks is built into it under another name,
    // or not needed there; the interface's own driver is.
    if let Some(Ok(nic)) = &nic {
        if image.absent_drivers.contains(&nic.driver) {
            eprintln!(
                "lifeboat: warning: {}'s driver here, {}, is neither a module nor built into \
                 the kernel of {}: add its driver to `modules`, or the capture may have no \
                 network",
                nic.interface,
                nic.driver,
                modules_dir.display()
            );
        }
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(output)
        .with_context(|| format!("cannot create {}", output.display()))?;
    file.write_all(&image.bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", output.display()))?;
    eprintln!(
        "lifeboat: wrote {} ({} bytes, cpio {} bytes; modules: {})",
        output.display(),
        image.bytes.len(),
        image.cpio_size,
        if image.modules.is_empty() {
            "none".to_owned()
        } else {
            image.modules.join(" ")
        }
    );
    Ok(())
}

const SYS_CLASS_BLOCK: &str = "/sys/class/block";
const SYS: &str = "/sys";
const PROC_NET_ROUTE: &str = "/proc/net/route";

/// A disk target with `fstype = auto`, looked for on this machine.
struct AutoTarget {
    /// Its place in the config's target list, from 0.
    index: usize,
    device: String,
    /// Its filesystem type and device node, if this machine has it.
    found: Option<(&'static str, PathBuf)>,
}

/// Looks for the disk targets with `fstype = auto` among the block devices
/// of this machine, as PID 1 will at crash time, so that the image carries
/// their filesystem's module: the image is normally built on the machine
/// whose disk takes the dump. Devices are scanned only if such a target
/// exists (reading them takes root).
fn probe_auto_targets(
    config: &lifeboat_config::Config,
    sys_class_block: &Path,
    dev_root: &Path,
) -> Vec<AutoTarget> {
    let auto: Vec<(usize, &lifeboat_config::DeviceSpec)> = config
        .targets
        .iter()
        .enumerate()
        .filter_map(|(index, target)| match &target.kind {
            lifeboat_config::TargetKind::Disk(disk) if disk.fstype.is_none() => {
                Some((index, &disk.device))
            }
            _ => None,
        })
        .collect();
    if auto.is_empty() {
        return Vec::new();
    }
    let devices = blkid::scan(sys_class_block, dev_root);
    auto.into_iter()
        .map(|(index, spec)| AutoTarget {
            index,
            device: spec.to_string(),
            found: blkid::find(&devices, spec).and_then(|device| {
                let fs = device.fs.as_ref()?;
                Some((fs.fstype, device.dev_path.clone()))
            }),
        })
        .collect()
}

/// The installed PID 1: beside this command in an unpacked release
/// (`bin/lifeboat`, `lib/lifeboat/init`), else the system location.
/// Which build of init the image needs: the network code costs 140 KB and
/// the ssh client 1.6 MB of the capture kernel's memory, which the smallest
/// reservations cannot spare, so only images that use them carry them.
fn init_for(config: &lifeboat_config::Config) -> &'static str {
    use lifeboat_config::TargetKind;
    let kinds = || config.targets.iter().map(|target| &target.kind);
    if kinds().any(|kind| matches!(kind, TargetKind::Ssh(_))) {
        "init-ssh"
    } else if kinds().any(TargetKind::is_network) {
        "init-net"
    } else {
        "init"
    }
}

fn find_init(name: &str) -> Result<PathBuf> {
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        if let Some(prefix) = exe.parent().and_then(Path::parent) {
            candidates.push(prefix.join("lib/lifeboat").join(name));
        }
    }
    candidates.push(Path::new("/usr/lib/lifeboat").join(name));
    if let Some(found) = candidates.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    let tried: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
    bail!(
        "cannot find lifeboat's {name} (tried {}); pass --init",
        tried.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::process::Command;

    /// A config with these disk targets: (device, fstype).
    fn config_with(targets: &[(&str, Option<&str>)]) -> lifeboat_config::Config {
        let mut text = String::new();
        for (device, fstype) in targets {
            text.push_str(&format!(
                "[[target]]\ntype = \"disk\"\ndevice = \"{device}\"\n"
            ));
            if let Some(fstype) = fstype {
                text.push_str(&format!("fstype = \"{fstype}\"\n"));
            }
        }
        lifeboat_config::user::parse("test.toml", &text).unwrap()
    }

    /// Disks get the smallest init; NFS the one with network targets; ssh
    /// the one with the ssh client, whatever else is configured.
    #[test]
    fn images_carry_the_smallest_init_their_targets_need() {
        use lifeboat_config::{NfsTarget, NfsVersion, SshTarget, Target, TargetKind};
        let nfs = Target {
            kind: TargetKind::Nfs(NfsTarget {
                server: std::net::Ipv4Addr::new(192, 0, 2, 1),
                export: "/export".into(),
                version: NfsVersion::V4_2,
                port: None,
                mount_port: None,
                mount_options: String::new(),
            }),
            directory: "/crash".into(),
        };
        let ssh = Target {
            kind: TargetKind::Ssh(SshTarget {
                server: std::net::Ipv4Addr::new(192, 0, 2, 1),
                port: 22,
                user: "root".into(),
                identity: "/etc/lifeboat/ssh/identity1".into(),
                host_keys: vec!["ssh-ed25519 AAAA".into()],
            }),
            directory: "/crash".into(),
        };
        let disks = config_with(&[("LABEL=A", None)]);
        assert_eq!(init_for(&disks), "init");
        let mut with_nfs = disks.clone();
        with_nfs.targets.insert(0, nfs);
        assert_eq!(init_for(&with_nfs), "init-net");
        let mut with_ssh = with_nfs.clone();
        with_ssh.targets.push(ssh);
        assert_eq!(init_for(&with_ssh), "init-ssh");
    }

    #[test]
    fn auto_targets_are_looked_for_on_this_machine() {
        // A sysfs tree and a /dev whose "device" is a real btrfs image.
        let root = tempfile::tempdir().unwrap();
        let class = root.path().join("sys/class/block");
        let dev = root.path().join("dev");
        fs::create_dir_all(class.join("vdb")).unwrap();
        fs::create_dir_all(&dev).unwrap();
        fs::write(class.join("vdb/dev"), "254:16\n").unwrap();
        fs::write(class.join("vdb/size"), "262144\n").unwrap();
        let image = fs::File::create(dev.join("vdb")).unwrap();
        image.set_len(128 << 20).unwrap();
        let status = Command::new("mkfs.btrfs")
            .args([
                "-q",
                "-U",
                "7f3c9a10-5b2e-4d6f-8a1c-0e9b8d7c6a51",
                "-L",
                "CRASH",
            ])
            .arg(dev.join("vdb"))
            .status()
            .expect("mkfs.btrfs (package btrfs-progs) runs");
        assert!(status.success());

        let config = config_with(&[
            ("UUID=7f3c9a10-5b2e-4d6f-8a1c-0e9b8d7c6a51", None),
            ("LABEL=CRASH", Some("btrfs")),
            ("LABEL=ELSEWHERE", None),
            ("LABEL=CRASH", None),
        ]);
        let found = probe_auto_targets(&config, &class, &dev);
        let summary: Vec<(usize, String, Option<&str>)> = found
            .iter()
            .map(|target| {
                (
                    target.index,
                    target.device.clone(),
                    target.found.as_ref().map(|(fstype, _)| *fstype),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (
                    0,
                    "UUID=7f3c9a10-5b2e-4d6f-8a1c-0e9b8d7c6a51".to_string(),
                    Some("btrfs")
                ),
                (2, "LABEL=ELSEWHERE".to_string(), None),
                (3, "LABEL=CRASH".to_string(), Some("btrfs")),
            ]
        );
        assert_eq!(found[0].found.as_ref().unwrap().1, dev.join("vdb"));
        // With no auto target, nothing is scanned or reported.
        assert!(
            probe_auto_targets(&config_with(&[("LABEL=CRASH", Some("xfs"))]), &class, &dev)
                .is_empty()
        );
    }
}

//! The whole image: PID 1, the baked config, the kernel modules and the
//! few directories and device nodes the kernel and PID 1 need.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use lifeboat_config::layout::{
    module_path, ssh_identity_path, BAKED_PATH, MODULES_LIST_PATH, SSH_DIR,
};
use lifeboat_config::user::Identity;
use lifeboat_config::{Config, NfsVersion, TargetKind};
use thiserror::Error;

use crate::cpio::{Archive, ArchiveError};
use crate::modules::{Lookup, ModuleError, ModuleTree};

/// The zstd window: 2^17 = 128 KiB. The kernel's initramfs unpacker allocates
/// a decompression workspace the size of the frame's window, and the capture
/// kernel runs in crashkernel=72–96M, where every MiB counts. Measured with
/// the Debian cloud kernel: at 72M the boot runs out of memory with a 1 MiB
/// window and completes with 128 KiB. Left to itself, zstd at level 19 uses
/// an 8 MiB window; the small one costs a few percent of ratio on an image
/// of about a MiB.
pub const ZSTD_WINDOW_LOG: u32 = 17;

/// How the cpio archive is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    /// One standard zstd frame, as the kernel's RD_ZSTD unpacker and
    /// `zstd -d` read.
    Zstd {
        level: i32,
    },
}

impl Compression {
    /// What images are built with unless told otherwise: building is rare
    /// and unpacking happens at crash time, so level 19.
    pub const DEFAULT: Compression = Compression::Zstd { level: 19 };
}

/// What goes into an image.
#[derive(Clone, Copy, Debug)]
pub struct ImageSpec<'a> {
    /// The static PID 1 binary; it becomes `/init`, mode 0755.
    pub init: &'a Path,
    /// The configuration, already validated; stored in its baked form.
    pub config: &'a Config,
    /// A `/lib/modules/<release>` tree; `None` includes no modules.
    pub modules_dir: Option<&'a Path>,
    /// Filesystem types that the disk targets with `fstype = auto` were
    /// found to have on the machine building the image: their modules go
    /// in like those of a named `fstype`.
    pub found_filesystems: &'a [String],
    /// Drivers found on the machine building the image (the network
    /// interface's and its buses'): those the kernel has as modules go in,
    /// with what they need; those it has neither as a module nor built in
    /// are listed in [`Image::absent_drivers`], as the building machine's
    /// hardware need not be the capture's.
    pub found_drivers: &'a [String],
    /// The private key of each ssh target (see [`lifeboat_config::user::parse_with`]),
    /// stored 0600 at [`ssh_identity_path`]; the baked config names that
    /// path.
    pub identities: &'a [Identity],
    pub compression: Compression,
}

/// A built image.
#[derive(Clone, Debug)]
pub struct Image {
    /// The image file's contents (compressed, unless asked not to be).
    pub bytes: Vec<u8>,
    /// The module names, in load order.
    pub modules: Vec<String>,
    /// The length of the uncompressed cpio archive.
    pub cpio_size: u64,
    /// Those of [`ImageSpec::found_drivers`] that the kernel has neither as
    /// a module nor built in.
    pub absent_drivers: Vec<String>,
}

#[derive(Debug, Error)]
pub enum ImageError {
    #[error("cannot read the init binary {path}")]
    ReadInit { path: PathBuf, source: io::Error },
    #[error("the config asks for modules ({}) but no module tree was given", .modules.join(", "))]
    NoModuleTree { modules: Vec<String> },
    #[error(transparent)]
    Modules(#[from] ModuleError),
    #[error(
        "filesystem {fstype} (a dump target's) is neither built into this kernel nor a module \
         of {modules_dir}: a capture kernel could not mount it"
    )]
    FilesystemMissing {
        fstype: String,
        modules_dir: PathBuf,
    },
    #[error(
        "NFS version {version} (a dump target's) needs {module}, which is neither built into \
         this kernel nor a module of {modules_dir}: a capture kernel could not mount it"
    )]
    NfsMissing {
        version: &'static str,
        module: &'static str,
        modules_dir: PathBuf,
    },
    #[error("target {index} is an ssh target, but the image was given no identity for it")]
    IdentityMissing { index: usize },
    #[error("cannot lay out the image")]
    Archive(#[from] ArchiveError),
    #[error("cannot compress the image with zstd level {level}")]
    Compress { level: i32, source: io::Error },
    #[error("cannot compress module {name} with zstd")]
    CompressModule { name: String, source: io::Error },
}

/// Directories that exist in every image: mount points for the kernel
/// filesystems PID 1 mounts (/dev, /proc, /sys, /run, /tmp), for targets
/// (/mnt), and the parents of what the builder stores (/etc, /lib).
const DIRECTORIES: &[(&str, u32)] = &[
    ("/dev", 0o755),
    ("/proc", 0o555),
    ("/sys", 0o555),
    ("/run", 0o755),
    ("/mnt", 0o755),
    // Sticky and world-writable like every /tmp, for tools that check it.
    ("/tmp", 0o1777),
    ("/etc", 0o755),
    ("/lib", 0o755),
];

/// Builds an image.
pub fn build_image(spec: &ImageSpec) -> Result<Image, ImageError> {
    let init = fs::read(spec.init).map_err(|source| ImageError::ReadInit {
        path: spec.init.to_owned(),
        source,
    })?;
    let mut absent_drivers = Vec::new();
    let modules = match spec.modules_dir {
        Some(dir) => {
            let tree = ModuleTree::open(dir)?;
            let mut wanted = wanted_modules(spec.config, spec.found_filesystems, &tree, dir)?;
            for driver in spec.found_drivers {
                match tree.lookup(driver)? {
                    Lookup::Missing => absent_drivers.push(driver.clone()),
                    Lookup::Builtin(_) => {}
                    Lookup::File(name) => {
                        if !wanted.contains(&name) {
                            wanted.push(name);
                        }
                    }
                    Lookup::Alias(_) => {
                        if !wanted.contains(driver) {
                            wanted.push(driver.clone());
                        }
                    }
                }
            }
            tree.resolve(&wanted)?
        }
        None if spec.config.modules.is_empty() => Vec::new(),
        None => {
            return Err(ImageError::NoModuleTree {
                modules: spec.config.modules.clone(),
            })
        }
    };

    let mut archive = Archive::new();
    for (path, mode) in DIRECTORIES {
        archive.add_directory(path, *mode)?;
    }
    // The kernel opens /dev/console for PID 1's stdio before anything is
    // mounted; without the node PID 1 starts with no output at all.
    archive.add_char_device("/dev/console", 0o600, 5, 1)?;
    archive.add_file("/init", 0o755, init)?;
    // Each ssh target's key goes in on its own, readable by root only, and
    // the baked config names it where it is in the image.
    let mut config = spec.config.clone();
    for (index, target) in config.targets.iter_mut().enumerate() {
        let TargetKind::Ssh(ssh) = &mut target.kind else {
            continue;
        };
        // Adding a directory again only sets its mode.
        archive.add_directory(SSH_DIR, 0o700)?;
        let identity = spec
            .identities
            .iter()
            .find(|identity| identity.target == index)
            .ok_or(ImageError::IdentityMissing { index })?;
        ssh.identity = ssh_identity_path(index);
        archive.add_file(&ssh.identity, 0o600, identity.key.clone())?;
    }
    archive.add_file(BAKED_PATH, 0o644, config.encode().into_bytes())?;
    let mut list = String::new();
    let mut names = Vec::new();
    for module in modules {
        let path = module_path(&module.name);
        list.push_str(&path);
        list.push('\n');
        let compressed =
            compress_module(&module.contents).map_err(|source| ImageError::CompressModule {
                name: module.name.clone(),
                source,
            })?;
        archive.add_file(&path, 0o644, compressed)?;
        names.push(module.name);
    }
    archive.add_file(MODULES_LIST_PATH, 0o644, list.into_bytes())?;

    let cpio = archive.to_bytes();
    let cpio_size = cpio.len() as u64;
    let bytes = match spec.compression {
        Compression::None => cpio,
        Compression::Zstd { level } => {
            compress(&cpio, level).map_err(|source| ImageError::Compress { level, source })?
        }
    };
    Ok(Image {
        bytes,
        modules: names,
        cpio_size,
        absent_drivers,
    })
}

/// The config's modules, then the modules of the disk targets' filesystem
/// types (named, or found on this machine for `fstype = auto`), then the
/// NFS client of nfs targets. A mount asks the kernel for `fs-<type>`,
/// which modules declare as an alias, so that is the name looked up first;
/// the NFS client asks for `nfsv<N>`. What is built in needs nothing, and
/// what this kernel does not have at all fails the image now rather than
/// the capture later.
fn wanted_modules(
    config: &Config,
    found_filesystems: &[String],
    tree: &ModuleTree,
    modules_dir: &Path,
) -> Result<Vec<String>, ImageError> {
    let mut wanted = config.modules.clone();
    let named = config
        .targets
        .iter()
        .filter_map(|target| match &target.kind {
            TargetKind::Disk(disk) => disk.fstype.as_ref(),
            _ => None,
        });
    for fstype in named.chain(found_filesystems) {
        let mut provider = None;
        for name in [format!("fs-{fstype}"), fstype.clone()] {
            match tree.lookup(&name)? {
                Lookup::Missing => continue,
                Lookup::Builtin(_) => provider = Some(None),
                Lookup::File(_) | Lookup::Alias(_) => provider = Some(Some(name)),
            }
            break;
        }
        match provider {
            None => {
                return Err(ImageError::FilesystemMissing {
                    fstype: fstype.clone(),
                    modules_dir: modules_dir.to_owned(),
                })
            }
            Some(Some(name)) if !wanted.contains(&name) => wanted.push(name),
            Some(_) => {}
        }
    }
    for target in &config.targets {
        let TargetKind::Nfs(nfs) = &target.kind else {
            continue;
        };
        // Every 4.x minor version is in the one NFSv4 module.
        let module = match nfs.version {
            NfsVersion::V3 => "nfsv3",
            NfsVersion::V4_0 | NfsVersion::V4_1 | NfsVersion::V4_2 => "nfsv4",
        };
        match tree.lookup(module)? {
            Lookup::Missing => {
                return Err(ImageError::NfsMissing {
                    version: nfs.version.as_str(),
                    module,
                    modules_dir: modules_dir.to_owned(),
                })
            }
            Lookup::Builtin(_) => {}
            Lookup::File(_) | Lookup::Alias(_) => {
                if !wanted.iter().any(|name| name == module) {
                    wanted.push(module.to_owned());
                }
            }
        }
    }
    Ok(wanted)
}

/// One zstd frame with the content size and a checksum, which the kernel's
/// unpacker verifies.
/// The zstd level of each module file. PID 1 decompresses a module in one
/// call into a buffer of the size the frame gives, so the frame's window
/// costs nothing at load time and is left to zstd.
const MODULE_LEVEL: i32 = 19;

/// One module as the image stores it (see [`lifeboat_config::layout::MODULES_DIR`]).
fn compress_module(module: &[u8]) -> io::Result<Vec<u8>> {
    let mut compressor = zstd::bulk::Compressor::new(MODULE_LEVEL)?;
    compressor.include_checksum(true)?;
    compressor.include_contentsize(true)?;
    compressor.compress(module)
}

fn compress(data: &[u8], level: i32) -> io::Result<Vec<u8>> {
    let mut compressor = zstd::bulk::Compressor::new(level)?;
    compressor.window_log(ZSTD_WINDOW_LOG)?;
    compressor.include_checksum(true)?;
    compressor.include_contentsize(true)?;
    compressor.compress(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpio::{read_archive, Entry, Kind};
    use crate::modules::test_elf;
    use lifeboat_config::{
        AddressSpec, DeviceSpec, DiskTarget, InterfaceSpec, Network, NfsTarget, SshTarget, Target,
    };
    use std::net::Ipv4Addr;
    use std::process::Command;

    fn config(modules: &[&str], fstype: Option<&str>) -> Config {
        let mut config = Config::fallback();
        config.modules = modules.iter().map(|m| m.to_string()).collect();
        config.targets = vec![Target {
            kind: TargetKind::Disk(DiskTarget {
                device: DeviceSpec::Label("DUMPS".into()),
                fstype: fstype.map(str::to_owned),
                mount_options: String::new(),
            }),
            directory: "/var/crash".into(),
        }];
        config
    }

    /// A module tree: (path, depends).
    fn tree(dir: &Path, modules: &[(&str, &str)]) {
        for (path, depends) in modules {
            let file = dir.join(path);
            fs::create_dir_all(file.parent().unwrap()).unwrap();
            let depends = format!("depends={depends}");
            fs::write(file, test_elf::module(&[&depends], &[], &[])).unwrap();
        }
        fs::write(dir.join("modules.builtin"), "kernel/fs/ext4/ext4.ko\n").unwrap();
    }

    fn entry<'a>(entries: &'a [Entry], path: &str) -> &'a Entry {
        entries
            .iter()
            .find(|e| e.path == path)
            .unwrap_or_else(|| panic!("{path} not in the image"))
    }

    fn file(entries: &[Entry], path: &str) -> Vec<u8> {
        match &entry(entries, path).kind {
            Kind::File(data) => data.clone(),
            other => panic!("{path} is {other:?}"),
        }
    }

    #[test]
    fn image_holds_init_config_modules_and_nodes() {
        let dir = tempfile::tempdir().unwrap();
        let init = dir.path().join("init");
        fs::write(&init, b"\x7fELF pretend").unwrap();
        let modules_dir = dir.path().join("modules");
        tree(
            &modules_dir,
            &[
                ("kernel/lib/libcrc32c.ko", ""),
                ("kernel/fs/xfs/xfs.ko", "libcrc32c"),
                ("kernel/drivers/virtio/virtio_ring.ko", ""),
                ("kernel/drivers/virtio/virtio.ko", "virtio_ring"),
            ],
        );
        // xz-compressed in the tree, stored as one zstd frame in the image.
        let status = Command::new("xz")
            .arg(modules_dir.join("kernel/fs/xfs/xfs.ko"))
            .status()
            .expect("xz (Debian package xz-utils)");
        assert!(status.success());
        let config = config(&["virtio"], Some("xfs"));
        let image = build_image(&ImageSpec {
            init: &init,
            config: &config,
            modules_dir: Some(&modules_dir),
            found_filesystems: &[],
            found_drivers: &[],
            identities: &[],
            compression: Compression::None,
        })
        .unwrap();
        assert_eq!(image.modules, ["virtio_ring", "virtio", "libcrc32c", "xfs"]);
        assert_eq!(image.cpio_size, image.bytes.len() as u64);
        let entries = read_archive(&image.bytes).unwrap();
        assert_eq!(file(&entries, "init"), b"\x7fELF pretend");
        assert_eq!(entry(&entries, "init").mode, 0o755);
        assert_eq!(
            file(&entries, "etc/lifeboat/config"),
            config.encode().as_bytes()
        );
        assert_eq!(entry(&entries, "etc/lifeboat/config").mode, 0o644);
        assert_eq!(
            String::from_utf8(file(&entries, "etc/lifeboat/modules")).unwrap(),
            "/lib/modules/virtio_ring.ko.zst\n/lib/modules/virtio.ko.zst\n\
             /lib/modules/libcrc32c.ko.zst\n/lib/modules/xfs.ko.zst\n"
        );
        let xfs = file(&entries, "lib/modules/xfs.ko.zst");
        // PID 1 sizes its buffer from the frame, so the frame must say.
        let size = zstd::zstd_safe::get_frame_content_size(&xfs).unwrap();
        let xfs = zstd::bulk::decompress(&xfs, 1 << 20).unwrap();
        assert_eq!(size, Some(xfs.len() as u64));
        assert_eq!(
            crate::modules::modinfo(&xfs).unwrap(),
            [("depends", "libcrc32c")]
        );
        let console = entry(&entries, "dev/console");
        assert_eq!(console.kind, Kind::CharDevice { major: 5, minor: 1 });
        assert_eq!(console.mode, 0o600);
        for (path, _) in DIRECTORIES {
            assert_eq!(entry(&entries, &path[1..]).kind, Kind::Directory);
        }
    }

    #[test]
    fn filesystem_modules_come_only_from_the_tree() {
        let dir = tempfile::tempdir().unwrap();
        let init = dir.path().join("init");
        fs::write(&init, b"").unwrap();
        tree(dir.path(), &[("kernel/fs/btrfs/btrfs.ko", "")]);
        // vfat as the generic kernel has it: a module file whose name is
        // not the filesystem's, found through its `fs-` alias.
        let vfat = test_elf::module(&["depends=", "alias=fs-vfat"], &[], &[]);
        fs::create_dir_all(dir.path().join("kernel/fs/fat")).unwrap();
        fs::write(dir.path().join("kernel/fs/fat/fat_modern.ko"), vfat).unwrap();
        // (named fstype, fstype found on this machine for auto, modules)
        let cases: &[(Option<&str>, Option<&str>, &[&str])] = &[
            (Some("btrfs"), None, &["btrfs"]),
            // Built in: no file.
            (Some("ext4"), None, &[]),
            (Some("vfat"), None, &["fat_modern"]),
            (None, None, &[]),
            // `auto`, and the device was found here with btrfs on it.
            (None, Some("btrfs"), &["btrfs"]),
            (None, Some("ext4"), &[]),
            // Named and found: once.
            (Some("btrfs"), Some("btrfs"), &["btrfs"]),
        ];
        for (fstype, found, want) in cases {
            let config = config(&[], *fstype);
            let found: Vec<String> = found.iter().map(|name| name.to_string()).collect();
            let image = build_image(&ImageSpec {
                init: &init,
                config: &config,
                modules_dir: Some(dir.path()),
                found_filesystems: &found,
                found_drivers: &[],
                identities: &[],
                compression: Compression::None,
            })
            .unwrap();
            assert_eq!(image.modules, *want, "{fstype:?} {found:?}");
        }
        // A filesystem this kernel does not have fails the image, whether
        // named or found on this machine.
        for (fstype, found) in [(Some("xfs"), vec![]), (None, vec!["xfs".to_owned()])] {
            let error = build_image(&ImageSpec {
                init: &init,
                config: &config(&[], fstype),
                modules_dir: Some(dir.path()),
                found_filesystems: &found,
                found_drivers: &[],
                identities: &[],
                compression: Compression::None,
            })
            .unwrap_err();
            assert!(
                matches!(&error, ImageError::FilesystemMissing { fstype, .. } if fstype == "xfs"),
                "{error}"
            );
            assert!(error.to_string().contains("filesystem xfs"), "{error}");
        }
    }

    /// A config whose only target is `kind`, with the network it needs.
    fn network_config(kind: TargetKind) -> Config {
        let mut config = config(&[], None);
        config.network = Some(Network {
            interface: InterfaceSpec::Auto,
            address: AddressSpec::Dhcp,
            name: "web-17".into(),
        });
        config.targets = vec![
            config.targets[0].clone(),
            Target {
                kind,
                directory: "/var/crash".into(),
            },
        ];
        config
    }

    fn nfs(version: NfsVersion) -> TargetKind {
        TargetKind::Nfs(NfsTarget {
            server: Ipv4Addr::new(10, 0, 2, 2),
            export: "/export".into(),
            version,
            port: None,
            mount_port: None,
            mount_options: String::new(),
        })
    }

    #[test]
    fn nfs_targets_bring_the_kernels_nfs_client() {
        let dir = tempfile::tempdir().unwrap();
        let init = dir.path().join("init");
        fs::write(&init, b"").unwrap();
        let full = dir.path().join("full");
        tree(
            &full,
            &[
                ("kernel/net/sunrpc/sunrpc.ko", ""),
                ("kernel/fs/nfs/nfs.ko", "sunrpc"),
                ("kernel/fs/nfs/nfsv4.ko", "nfs,sunrpc"),
                ("kernel/fs/lockd/lockd.ko", "sunrpc"),
                ("kernel/fs/nfs/nfsv3.ko", "nfs,lockd,sunrpc"),
            ],
        );
        // NFSv4 built in, v3 not there at all.
        let builtin = dir.path().join("builtin");
        fs::create_dir(&builtin).unwrap();
        tree(&builtin, &[]);
        fs::write(
            builtin.join("modules.builtin"),
            "kernel/net/sunrpc/sunrpc.ko\nkernel/fs/nfs/nfs.ko\nkernel/fs/nfs/nfsv4.ko\n",
        )
        .unwrap();
        let build = |version, modules_dir: &Path| {
            build_image(&ImageSpec {
                init: &init,
                config: &network_config(nfs(version)),
                modules_dir: Some(modules_dir),
                found_filesystems: &[],
                found_drivers: &[],
                identities: &[],
                compression: Compression::None,
            })
        };
        // (version, tree, modules or the module missing)
        type Case<'a> = (NfsVersion, &'a Path, Result<&'a [&'a str], &'a str>);
        let cases: &[Case] = &[
            (NfsVersion::V4_2, &full, Ok(&["sunrpc", "nfs", "nfsv4"])),
            (NfsVersion::V4_0, &full, Ok(&["sunrpc", "nfs", "nfsv4"])),
            (
                NfsVersion::V3,
                &full,
                Ok(&["sunrpc", "nfs", "lockd", "nfsv3"]),
            ),
            (NfsVersion::V4_1, &builtin, Ok(&[])),
            (NfsVersion::V3, &builtin, Err("nfsv3")),
        ];
        for (version, modules_dir, want) in cases {
            match (build(*version, modules_dir), want) {
                (Ok(image), Ok(want)) => assert_eq!(image.modules, *want, "{version:?}"),
                (Err(error), Err(module)) => {
                    assert!(
                        matches!(&error, ImageError::NfsMissing { module: m, .. } if m == module),
                        "{error}"
                    );
                    assert_eq!(
                        error.to_string(),
                        format!(
                            "NFS version 3 (a dump target's) needs nfsv3, which is neither \
                             built into this kernel nor a module of {}: a capture kernel could \
                             not mount it",
                            modules_dir.display()
                        )
                    );
                }
                (got, want) => panic!("{version:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn found_drivers_go_in_when_the_kernel_has_them_as_modules() {
        let dir = tempfile::tempdir().unwrap();
        let init = dir.path().join("init");
        fs::write(&init, b"").unwrap();
        tree(
            dir.path(),
            &[
                ("kernel/drivers/net/net_failover.ko", ""),
                ("kernel/drivers/net/virtio_net.ko", "net_failover"),
            ],
        );
        fs::write(
            dir.path().join("modules.builtin"),
            "kernel/drivers/virtio/virtio_pci.ko\n",
        )
        .unwrap();
        let drivers: Vec<String> = ["virtio_pci", "virtio-net", "e1000e", "virtio_net"]
            .iter()
            .map(|name| name.to_string())
            .collect();
        let image = build_image(&ImageSpec {
            init: &init,
            config: &network_config(nfs(NfsVersion::V4_2)),
            modules_dir: None,
            found_filesystems: &[],
            found_drivers: &drivers,
            identities: &[],
            compression: Compression::None,
        });
        // Without a module tree, nothing is looked up: the NFS client too.
        assert!(image.unwrap().modules.is_empty());
        let mut config = network_config(nfs(NfsVersion::V4_2));
        config.targets.truncate(1);
        config.network = None;
        let image = build_image(&ImageSpec {
            init: &init,
            config: &config,
            modules_dir: Some(dir.path()),
            found_filesystems: &[],
            found_drivers: &drivers,
            identities: &[],
            compression: Compression::None,
        })
        .unwrap();
        assert_eq!(image.modules, ["net_failover", "virtio_net"]);
        assert_eq!(image.absent_drivers, ["e1000e"]);
    }

    #[test]
    fn ssh_identities_are_stored_for_root_alone() {
        let dir = tempfile::tempdir().unwrap();
        let init = dir.path().join("init");
        fs::write(&init, b"").unwrap();
        let ssh = |identity: &str| {
            TargetKind::Ssh(SshTarget {
                server: Ipv4Addr::new(10, 0, 2, 2),
                port: 22,
                user: "root".into(),
                identity: identity.into(),
                host_keys: vec!["ssh-ed25519 AAAA".into()],
            })
        };
        let mut config = network_config(ssh("/home/me/.ssh/id_ed25519"));
        config.targets.push(Target {
            kind: ssh("/etc/lifeboat/id_backup"),
            directory: "/srv/dumps".into(),
        });
        let key = |n: u8| format!("-----BEGIN OPENSSH PRIVATE KEY-----\nsecret{n}\n").into_bytes();
        let identities = [
            Identity {
                target: 2,
                key: key(2),
            },
            Identity {
                target: 1,
                key: key(1),
            },
        ];
        let spec = ImageSpec {
            init: &init,
            config: &config,
            modules_dir: None,
            found_filesystems: &[],
            found_drivers: &[],
            identities: &identities,
            compression: Compression::None,
        };
        let image = build_image(&spec).unwrap();
        let entries = read_archive(&image.bytes).unwrap();
        assert_eq!(entry(&entries, "etc/lifeboat/ssh").kind, Kind::Directory);
        assert_eq!(entry(&entries, "etc/lifeboat/ssh").mode, 0o700);
        for n in [1, 2] {
            let path = format!("etc/lifeboat/ssh/identity{n}");
            assert_eq!(file(&entries, &path), key(n));
            assert_eq!(entry(&entries, &path).mode, 0o600);
        }
        let baked = String::from_utf8(file(&entries, "etc/lifeboat/config")).unwrap();
        let decoded = Config::decode(&baked).unwrap();
        let paths: Vec<&str> = decoded
            .targets
            .iter()
            .filter_map(|target| match &target.kind {
                TargetKind::Ssh(ssh) => Some(ssh.identity.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(
            paths,
            ["/etc/lifeboat/ssh/identity1", "/etc/lifeboat/ssh/identity2"]
        );
        assert!(!baked.contains("secret"), "{baked}");
        assert!(!baked.contains("/home/me"), "{baked}");

        // GNU cpio lists it as ssh would have it.
        let archive = dir.path().join("image.cpio");
        fs::write(&archive, &image.bytes).unwrap();
        let listing = Command::new("cpio")
            .args(["-itv", "--quiet", "-F"])
            .arg(&archive)
            .output()
            .expect("cpio (Debian package cpio)");
        assert!(listing.status.success(), "{listing:?}");
        let listing = String::from_utf8(listing.stdout).unwrap();
        for n in [1, 2] {
            let line = listing
                .lines()
                .find(|line| line.ends_with(&format!("etc/lifeboat/ssh/identity{n}")))
                .unwrap_or_else(|| panic!("identity{n} not in\n{listing}"));
            assert!(line.starts_with("-rw------- "), "{line}");
        }
        let line = listing
            .lines()
            .find(|line| line.ends_with("etc/lifeboat/ssh"))
            .unwrap();
        assert!(line.starts_with("drwx------ "), "{line}");

        // An ssh target without its key cannot be packed.
        let error = build_image(&ImageSpec {
            identities: &identities[..1],
            ..spec
        })
        .unwrap_err();
        assert!(
            matches!(error, ImageError::IdentityMissing { index: 1 }),
            "{error}"
        );
        assert_eq!(
            error.to_string(),
            "target 1 is an ssh target, but the image was given no identity for it"
        );
    }

    #[test]
    fn failures_name_what_failed() {
        let dir = tempfile::tempdir().unwrap();
        let init = dir.path().join("init");
        fs::write(&init, b"").unwrap();
        let missing = dir.path().join("no-init");
        let with_module = config(&["virtio_blk"], None);
        let plain = config(&[], None);
        let cases: Vec<(&Path, &Config, Option<&Path>, String)> = vec![
            (
                &missing,
                &plain,
                None,
                format!("cannot read the init binary {}", missing.display()),
            ),
            (
                &init,
                &with_module,
                None,
                "asks for modules (virtio_blk) but no module tree".into(),
            ),
            (
                &init,
                &with_module,
                Some(dir.path()),
                format!(
                    "module `virtio_blk` is neither a module file, built in, nor an alias of either, in {}",
                    dir.path().display()
                ),
            ),
        ];
        for (init, config, modules_dir, needle) in cases {
            let error = build_image(&ImageSpec {
                init,
                config,
                modules_dir,
                found_filesystems: &[],
                found_drivers: &[],
                identities: &[],
                compression: Compression::None,
            })
            .unwrap_err();
            assert!(
                error.to_string().contains(&needle),
                "{error} does not contain {needle}"
            );
        }
    }

    #[test]
    fn images_are_reproducible_and_zstd_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        let init = dir.path().join("init");
        // Incompressible data larger than the window, so the frame header
        // must carry the window rather than the content size.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let noise: Vec<u8> = (0..3 << 20)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        fs::write(&init, &noise).unwrap();
        let config = config(&[], None);
        let build = || {
            build_image(&ImageSpec {
                init: &init,
                config: &config,
                modules_dir: None,
                found_filesystems: &[],
                found_drivers: &[],
                identities: &[],
                compression: Compression::Zstd { level: 3 },
            })
            .unwrap()
        };
        let first = build();
        assert_eq!(first.bytes, build().bytes);
        let compressed = dir.path().join("image.zst");
        fs::write(&compressed, &first.bytes).unwrap();
        // `--memory=128KiB` makes zstd refuse frames that need a larger
        // window, as the capture kernel would run short of memory for.
        let output = Command::new("zstd")
            .args(["-d", "-c", "--memory=128KiB"])
            .arg(&compressed)
            .output()
            .expect("zstd (Debian package zstd)");
        assert!(output.status.success(), "{output:?}");
        assert_eq!(output.stdout.len() as u64, first.cpio_size);
        assert_eq!(file(&read_archive(&output.stdout).unwrap(), "init"), noise);
        // The frame header says so too, and carries a checksum the kernel's
        // unpacker verifies.
        let listing = Command::new("zstd")
            .args(["-lv"])
            .arg(&compressed)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&listing.stdout);
        assert!(text.contains("Window Size: 128 KiB (131072 B)"), "{text}");
        assert!(text.contains("Check: XXH64"), "{text}");
    }
}

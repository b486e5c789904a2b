//! The Debian packages the builds and tests need, installed with apt-get
//! when missing: CI starts from a clean machine, and a missing tool should
//! fail before a five-minute VM run, not in the middle of it.

use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::process::Command;

use anyhow::{bail, Context as _, Result};

use crate::util;

pub struct Package {
    pub name: &'static str,
    /// What we use from it, for the message when it cannot be installed.
    pub why: &'static str,
}

/// What `cargo xtask dist` needs beyond the Rust toolchain.
pub const BUILD: &[Package] = &[Package {
    name: "musl-tools",
    why: "musl-gcc, which compiles zstd-sys's C for the musl target",
}];

/// What `cargo xtask qemu-test` needs beyond `BUILD`.
pub const QEMU_TEST: &[Package] = &[
    Package {
        name: "qemu-system-x86",
        why: "qemu-system-x86_64, the test VM (TCG)",
    },
    Package {
        name: "e2fsprogs",
        why: "mkfs.ext4 for the test disk and debugfs to read it back unmounted",
    },
    Package {
        name: "xfsprogs",
        why: "mkfs.xfs and xfs_repair for the xfs test disk",
    },
    Package {
        name: "btrfs-progs",
        why: "mkfs.btrfs and btrfs check for the btrfs test disk",
    },
    Package {
        name: "dosfstools",
        why: "mkfs.vfat and fsck.vfat for the vfat test disk",
    },
    Package {
        name: "mtools",
        why: "mcopy, to read the vfat test disk back unmounted",
    },
    Package {
        name: "zstd",
        why: "zstd -d, to decompress the dump with a tool we did not write",
    },
    Package {
        name: "xxhash",
        why: "xxhsum -H64, to check the dump's recorded checksum",
    },
    Package {
        name: "makedumpfile",
        why: "makedumpfile --dump-dmesg, the reference reader of the printk ring",
    },
    Package {
        name: "kmod",
        why: "depmod, for the unpacked Debian kernel's modules.dep",
    },
    Package {
        name: "crash",
        why: "crash with the debug vmlinux, to open the dump as a kernel debugger does",
    },
    Package {
        name: "binutils",
        why: "readelf, for the debug vmlinux's Build-ID and recovered dumps' headers",
    },
    Package {
        name: "diffutils",
        why: "cmp, to check lifeboat decompress against zstd -d",
    },
];

/// What `cargo xtask bench` needs beyond `BUILD` and `QEMU_TEST` (which
/// bring zstd and makedumpfile, two of the compressors it compares).
pub const BENCH: &[Package] = &[
    Package {
        name: "time",
        why: "/usr/bin/time, for the peak RSS of each compressor run",
    },
    Package {
        name: "debian-archive-keyring",
        why:
            "to fetch Debian trixie's makedumpfile, built with zstd, when the installed one is not",
    },
    Package {
        name: "diffutils",
        why: "cmp, to check that a compressed vmcore decompresses to the input",
    },
];

/// What the unit tests need: they run the real tools whose output our
/// parsers read (mkfs for every filesystem we recognise, partitioners, cpio,
/// the compressors of kernel modules, makedumpfile as the printk reference).
pub const UNIT_TEST: &[Package] = &[
    Package {
        name: "xfsprogs",
        why: "mkfs.xfs, for the superblock probe tests",
    },
    Package {
        name: "btrfs-progs",
        why: "mkfs.btrfs, for the superblock probe tests",
    },
    Package {
        name: "dosfstools",
        why: "mkfs.vfat and fatlabel, for the superblock probe tests",
    },
    Package {
        name: "fdisk",
        why: "sfdisk, for the GPT and DOS partition table tests",
    },
    Package {
        name: "cpio",
        why: "GNU cpio, which must read the images we write",
    },
    Package {
        name: "xz-utils",
        why: "xz, for the .ko.xz module tests",
    },
    Package {
        name: "openssh-client",
        why: "ssh-keygen, for the ssh identity and hashed known_hosts tests",
    },
];

/// The dump servers of network scenarios, started by the tests on
/// loopback; the harness's own unit test starts them too.
pub const SERVERS: &[Package] = &[
    Package {
        name: "nfs-ganesha",
        why: "ganesha.nfsd, a userspace NFS server (the host kernel may have no nfsd)",
    },
    Package {
        name: "nfs-ganesha-vfs",
        why: "ganesha's VFS backend, which exports a directory",
    },
    Package {
        name: "rpcbind",
        why: "rpcbind, where ganesha registers its NFSv3 services",
    },
    Package {
        name: "openssh-server",
        why: "sshd, the ssh target's server",
    },
    Package {
        name: "openssh-client",
        why: "ssh and ssh-keygen, for the test keys",
    },
];

/// `cargo xtask deps`: installs everything.
pub fn run() -> Result<()> {
    ensure(&[BUILD, QEMU_TEST, UNIT_TEST, SERVERS])
}

/// Installs the packages of `lists` that are not installed yet.
pub fn ensure(lists: &[&[Package]]) -> Result<()> {
    let mut missing = Vec::new();
    for package in lists.iter().flat_map(|list| list.iter()) {
        if !is_installed(package.name)? {
            missing.push(package);
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = missing.iter().map(|package| package.name).collect();
    let why: Vec<String> = missing
        .iter()
        .map(|package| format!("  {}: {}", package.name, package.why))
        .collect();
    let why = why.join("\n");
    let is_root = fs::metadata("/proc/self").map(|meta| meta.uid() == 0)?;
    if !is_root {
        bail!(
            "missing Debian packages; install them with\n  sudo apt-get install {}\n{why}",
            names.join(" ")
        );
    }
    eprintln!("installing {}", names.join(" "));
    util::run(Command::new("apt-get").args(["update", "-q"]))?;
    util::run(
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&names)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
    .with_context(|| format!("cannot install the packages we need:\n{why}"))
}

/// Adds the Rust standard library for `target` when rustup lacks it.
///
/// rust-toolchain.toml names the target, but rustup adds a toolchain's
/// `targets` only when it installs the toolchain itself: a toolchain that
/// was already there (and every one with `RUSTUP_AUTO_INSTALL=0`) builds
/// for the musl target with ``can't find crate for `core` ``.
pub fn ensure_rust_target(target: &str) -> Result<()> {
    let installed = util::output(
        Command::new("rustup")
            .args(["target", "list", "--installed"])
            .current_dir(util::project_root()),
    )
    .context("cannot ask rustup which targets are installed")?;
    if lists_target(&installed, target) {
        return Ok(());
    }
    eprintln!("installing the Rust target {target} (rustup target add {target})");
    util::run(
        Command::new("rustup")
            .args(["target", "add", target])
            .current_dir(util::project_root()),
    )
    .with_context(|| format!("cannot add the Rust target {target}, which init is built for"))
}

/// Whether `rustup target list --installed` printed `target` on a line.
fn lists_target(installed: &str, target: &str) -> bool {
    installed.lines().any(|line| line.trim() == target)
}

fn is_installed(name: &str) -> Result<bool> {
    let output = Command::new("dpkg-query")
        .args(["--show", "--showformat=${db:Status-Status}", name])
        .output()
        .context("cannot run dpkg-query: the tests need a Debian-like system")?;
    Ok(output.status.success() && output.stdout == b"installed")
}

#[cfg(test)]
mod tests {
    use super::lists_target;

    #[test]
    fn installed_targets_are_matched_by_whole_line() {
        let cases = [
            ("x86_64-unknown-linux-gnu\n", false),
            (
                "x86_64-unknown-linux-gnu\nx86_64-unknown-linux-musl\n",
                true,
            ),
            ("x86_64-unknown-linux-musl", true),
            ("x86_64-unknown-linux-muslx32\n", false),
            ("", false),
        ];
        for (installed, expected) in cases {
            assert_eq!(
                lists_target(installed, "x86_64-unknown-linux-musl"),
                expected,
                "{installed:?}"
            );
        }
    }
}

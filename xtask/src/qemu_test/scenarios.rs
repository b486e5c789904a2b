//! The crash scenarios, as data: one row per VM run.

use crate::guest::disk::Fs;
use crate::guest::image::{CAPTURE_CMDLINE_BASE, DISK_CONFIG};
use crate::guest::kernel::Flavour;
use crate::qemu_test::servers::{NfsServer, SshServer};

/// The server a network scenario dumps to, started by the test.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Serve {
    /// No network: the dump goes to the test disk.
    Nothing,
    /// nfs-ganesha, NFSv3 and v4; the record must name this protocol
    /// version and address method (`dhcp` or `static`).
    Nfs {
        version: &'static str,
        method: &'static str,
    },
    /// OpenSSH's sshd.
    Ssh { method: &'static str },
}

impl Serve {
    /// The console line that says the server was reached: mounted, or
    /// connected with the host key checked and the key accepted.
    pub fn reached_marker(self) -> Option<&'static str> {
        match self {
            Serve::Nothing => None,
            Serve::Nfs { .. } => Some("lifeboat: mounted 10.0.2.2:/export"),
            Serve::Ssh { .. } => Some("lifeboat: ssh: connected to"),
        }
    }

    /// What the record must say of a network target: its protocol and how
    /// the address came.
    pub fn expected(self) -> Option<(String, &'static str)> {
        match self {
            Serve::Nothing => None,
            Serve::Nfs { version, method } => Some((format!("nfs {version}"), method)),
            Serve::Ssh { method } => Some(("ssh".to_owned(), method)),
        }
    }
}

/// Where a scenario's config finds its server, filled in once the server
/// runs (its ports are picked free at run time).
#[derive(Default)]
pub struct ServerPlaces {
    pub nfs_port: u16,
    pub mount_port: u16,
    pub ssh_port: u16,
    /// The client key, the server's known_hosts line and the directory the
    /// server's dumps go under, as absolute host paths.
    pub identity: String,
    pub known_hosts: String,
    pub dump_root: String,
}

impl ServerPlaces {
    pub fn of_nfs(server: &NfsServer) -> ServerPlaces {
        ServerPlaces {
            nfs_port: server.nfs_port,
            mount_port: server.mount_port,
            ..ServerPlaces::default()
        }
    }

    pub fn of_ssh(server: &SshServer) -> ServerPlaces {
        ServerPlaces {
            ssh_port: server.port,
            identity: server.identity.display().to_string(),
            known_hosts: server.known_hosts.display().to_string(),
            dump_root: server.dump_root.display().to_string(),
            ..ServerPlaces::default()
        }
    }
}

pub struct Scenario {
    pub name: &'static str,
    /// The kernel of both the production VM and the capture.
    pub kernel: Flavour,
    /// The test disk's filesystem, made with its mkfs's defaults.
    pub fs: Fs,
    /// RAM of the production VM.
    pub memory_mib: u32,
    /// `crashkernel=` of the production kernel: the capture kernel's memory.
    pub crashkernel: &'static str,
    /// CPUs of the VM, and `nr_cpus=` of the capture kernel: lifeboat
    /// compresses on this many threads.
    pub cpus: u32,
    /// lifeboat.toml for `lifeboat image`; `{uuid}` is replaced by
    /// `disk_uuid`, `{fstype}` by the disk's filesystem. The configs keep
    /// every page (`dump_level = 0`) where the checks look for crashme's
    /// planted pages, which are user data that level 31 rightly leaves out.
    pub config: &'static str,
    /// Extra arguments of `lifeboat image`.
    pub image_args: &'static [&'static str],
    /// UUID of the test disk, fixed so that runs are comparable (for vfat,
    /// a volume serial such as `6C1F-0B08`).
    pub disk_uuid: &'static str,
    /// Appended to `CAPTURE_CMDLINE_BASE`.
    pub capture_cmdline_extra: &'static str,
    /// How much memory crashme fills with the pattern.
    pub plant_mib: u32,
    /// QEMU is killed after this many seconds.
    pub deadline_secs: u64,
    /// The `status` lifeboat.json must report: `complete`, `incomplete`
    /// (the dump failed, or the deadline cut it off, and the record says
    /// why), or `none` (no dump directory may exist on the disk).
    pub expect_status: &'static str,
    /// A line lifeboat must print on the console (empty: none), e.g. the
    /// error a fault scenario provokes.
    pub expect_console: &'static str,
    /// What the record of an incomplete dump must give as its error.
    pub expect_error: &'static str,
    /// Size of the test disk.
    pub disk_mib: u64,
    /// The dump server the test starts; with one, the VM has a NIC on
    /// QEMU's user network, where the host is 10.0.2.2.
    pub serve: Serve,
    /// Why crash does not open this scenario's dumps, when it does not:
    /// the checks then say so instead of running it, and its debug kernel
    /// is not fetched.
    pub no_crash: Option<&'static str>,
}

/// The test disk at the distributions' dump level, 31: zero, cache, user
/// and free pages left out.
const LEVEL31_CONFIG: &str = r#"
dump_level = 31
final_action = "reboot"
modules = ["virtio_pci", "virtio_blk"]
[deadlines]
device_wait = 30
[[target]]
type = "disk"
device = "UUID={uuid}"
"#;

/// Two targets: the first names a disk that does not exist.
const FALLBACK_CONFIG: &str = r#"
dump_level = 0
final_action = "reboot"
modules = ["virtio_pci", "virtio_blk"]
[deadlines]
device_wait = 3
[[target]]
type = "disk"
device = "UUID=00000000-dead-4bad-8bad-000000000000"
[[target]]
type = "disk"
device = "UUID={uuid}"
directory = "/var/crash"
"#;

/// One target, which does not exist.
const MISSING_CONFIG: &str = r#"
dump_level = 0
final_action = "reboot"
modules = ["virtio_pci", "virtio_blk"]
[deadlines]
device_wait = 3
[[target]]
type = "disk"
device = "LABEL=NOSUCHDISK"
"#;

/// The test disk, with its filesystem named, as a user must name it when
/// building the image elsewhere than on the machine with the disk: on the
/// generic kernel even ext4 is a module.
const NAMED_FSTYPE_CONFIG: &str = r#"
dump_level = 0
final_action = "reboot"
modules = ["virtio_pci", "virtio_blk"]
[deadlines]
device_wait = 30
[[target]]
type = "disk"
device = "UUID={uuid}"
fstype = "{fstype}"
"#;

/// The test disk, said to be xfs.
const XFS_CONFIG: &str = r#"
dump_level = 0
final_action = "reboot"
modules = ["virtio_pci", "virtio_blk"]
[deadlines]
device_wait = 10
[[target]]
type = "disk"
device = "UUID={uuid}"
fstype = "xfs"
"#;

/// The `directory` of the network targets below.
const NETWORK_DIRECTORY: &str = "/crash";

/// NFSv4.2 from an address QEMU's DHCP server gives. The NIC's driver is
/// named: the image builder takes the building machine's, which need not
/// be the VM's.
const NFS4_CONFIG: &str = r#"
dump_level = 0
final_action = "reboot"
measure_read_rate = true
modules = ["virtio_pci", "virtio_net"]
[network]
interface = "eth0"
address = "dhcp"
name = "crashtest"
[deadlines]
connect = 20
[[target]]
type = "nfs"
server = "10.0.2.2"
export = "/export"
version = "4.2"
port = {nfs_port}
directory = "/crash"
"#;

/// NFSv3 with both ports named (the guest cannot reach the host's rpcbind)
/// from a static address.
const NFS3_CONFIG: &str = r#"
dump_level = 0
final_action = "reboot"
measure_read_rate = true
modules = ["virtio_pci", "virtio_net"]
[network]
interface = "eth0"
address = "10.0.2.15/24"
gateway = "10.0.2.2"
name = "crashtest"
[deadlines]
connect = 20
[[target]]
type = "nfs"
server = "10.0.2.2"
export = "/export"
version = "3"
port = {nfs_port}
mount_port = {mount_port}
directory = "/crash"
"#;

/// ssh with ed25519 host and client keys, the host key pinned from the
/// test's known_hosts. The directory is a path on the server: the test's
/// export directory on this machine.
const SSH_CONFIG: &str = r#"
dump_level = 0
final_action = "reboot"
measure_read_rate = true
modules = ["virtio_pci", "virtio_net"]
[network]
interface = "eth0"
address = "dhcp"
name = "crashtest"
[deadlines]
connect = 20
[[target]]
type = "ssh"
server = "10.0.2.2"
port = {ssh_port}
user = "root"
identity = "{identity}"
known_hosts = "{known_hosts}"
directory = "{dump_root}/crash"
"#;

/// Why crash does not open the dumps of Debian 13's 6.12 kernel: the
/// machine's crash (Debian 12's 8.0.2) cannot read that kernel. Measured
/// 2026-12-03 on a trixie-ext4 vmcore with the matching debug kernel
/// (`linux-image-6.12.117+deb13-cloud-amd64-dbg`, 320 MB): crash 8.0.2
/// reads an empty utsname and stops with "vmlinux and vmcore do not
/// match!", while trixie's crash 8.0.6 opens the same vmcore, shows the
/// sysrq panic and answers `sys`, `bt -a`, `ps`, `log`, `kmem -s` and
/// `mod` the same on lifeboat's level-31 dump of it. So the debug kernel
/// is not fetched for it.
const CRASH_BEFORE_6_12: &str = "Debian 12's crash 8.0.2 cannot read 6.12 kernels (with the \
    matching debug kernel it stops with \"vmlinux and vmcore do not match!\"); trixie's crash \
    8.0.6 reads these dumps";

pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "disk-ext4",
        kernel: Flavour::Cloud,
        fs: Fs::Ext4,
        memory_mib: 2048,
        crashkernel: "96M",
        cpus: 1,
        config: DISK_CONFIG,
        image_args: &[],
        disk_uuid: "6c1f0b7e-2a3d-4c5e-8f90-1a2b3c4d5e01",
        capture_cmdline_extra: "",
        plant_mib: 64,
        deadline_secs: 300,
        expect_status: "complete",
        expect_console: "",
        expect_error: "",
        disk_mib: 512,
        serve: Serve::Nothing,
        no_crash: None,
    },
    // The same capture in the smallest reservation that works: at 70M and
    // below this kernel runs out of memory during its own boot, before
    // /init, whatever the image (measured 2026-11-27: 64M, 68M, 70M fail).
    // The distributions' dump level in the smallest reservation: the
    // classifier reads the crashed kernel's memory map inside the capture
    // kernel, crashme's planted pages (user data) must be gone, and crash
    // must still read the kernel's own data.
    Scenario {
        name: "disk-ext4-d31",
        kernel: Flavour::Cloud,
        fs: Fs::Ext4,
        memory_mib: 2048,
        crashkernel: "72M",
        cpus: 1,
        config: LEVEL31_CONFIG,
        image_args: &[],
        disk_uuid: "6c1f0b7e-2a3d-4c5e-8f90-1a2b3c4d5e1f",
        capture_cmdline_extra: "",
        plant_mib: 64,
        deadline_secs: 300,
        expect_status: "complete",
        expect_console: "",
        expect_error: "",
        disk_mib: 512,
        serve: Serve::Nothing,
        no_crash: None,
    },
    Scenario {
        name: "disk-ext4-72m",
        kernel: Flavour::Cloud,
        fs: Fs::Ext4,
        memory_mib: 2048,
        crashkernel: "72M",
        cpus: 1,
        config: DISK_CONFIG,
        image_args: &[],
        disk_uuid: "6c1f0b7e-2a3d-4c5e-8f90-1a2b3c4d5e02",
        capture_cmdline_extra: "",
        plant_mib: 64,
        deadline_secs: 300,
        expect_status: "complete",
        expect_console: "",
        expect_error: "",
        disk_mib: 512,
        serve: Serve::Nothing,
        no_crash: None,
    },
    // A capture kernel with two CPUs compresses on two threads (the
    // default, `compression_threads = 0`, is one per CPU).
    Scenario {
        name: "disk-ext4-2cpus",
        kernel: Flavour::Cloud,
        fs: Fs::Ext4,
        memory_mib: 2048,
        crashkernel: "96M",
        cpus: 2,
        config: DISK_CONFIG,
        image_args: &[],
        disk_uuid: "6c1f0b7e-2a3d-4c5e-8f90-1a2b3c4d5e07",
        capture_cmdline_extra: "",
        plant_mib: 64,
        deadline_secs: 300,
        expect_status: "complete",
        expect_console: "",
        expect_error: "",
        disk_mib: 512,
        serve: Serve::Nothing,
        no_crash: None,
    },
    // The first target never appears; lifeboat must give up on it at the
    // device deadline and dump to the second.
    Scenario {
        name: "fallback-target",
        kernel: Flavour::Cloud,
        fs: Fs::Ext4,
        memory_mib: 2048,
        crashkernel: "96M",
        cpus: 1,
        config: FALLBACK_CONFIG,
        image_args: &[],
        disk_uuid: "6c1f0b7e-2a3d-4c5e-8f90-1a2b3c4d5e03",
        capture_cmdline_extra: "",
        plant_mib: 16,
        deadline_secs: 300,
        expect_status: "complete",
        expect_console: "did not appear within 3 s",
        expect_error: "",
        disk_mib: 512,
        serve: Serve::Nothing,
        no_crash: None,
    },
    // No target at all: PID 1 must still reboot, after the device deadline,
    // and say why.
    Scenario {
        name: "missing-disk",
        kernel: Flavour::Cloud,
        fs: Fs::Ext4,
        memory_mib: 2048,
        crashkernel: "96M",
        cpus: 1,
        config: MISSING_CONFIG,
        image_args: &[],
        disk_uuid: "6c1f0b7e-2a3d-4c5e-8f90-1a2b3c4d5e04",
        capture_cmdline_extra: "",
        plant_mib: 16,
        deadline_secs: 300,
        expect_status: "none",
        expect_console: "no target took a complete dump",
        expect_error: "",
        disk_mib: 64,
        serve: Serve::Nothing,
        no_crash: None,
    },
    // The disk is smaller than the (incompressible) planted memory: the dump
    // fails with ENOSPC, stays `.incomplete`, and lifeboat.json says so.
    Scenario {
        name: "disk-full",
        kernel: Flavour::Cloud,
        fs: Fs::Ext4,
        memory_mib: 2048,
        crashkernel: "96M",
        cpus: 1,
        config: DISK_CONFIG,
        image_args: &[],
        disk_uuid: "6c1f0b7e-2a3d-4c5e-8f90-1a2b3c4d5e05",
        capture_cmdline_extra: "",
        plant_mib: 256,
        deadline_secs: 300,
        expect_status: "incomplete",
        expect_console: "No space left on device",
        expect_error: "No space left on device",
        disk_mib: 128,
        serve: Serve::Nothing,
        no_crash: None,
    },
    // The whole-capture deadline (from the kernel command line) passes in
    // the middle of the dump: the watchdog must record the cut (stage,
    // bytes) beside the dump, save the log, take the final action, and
    // leave the dump marked incomplete. Level 9 makes the dump slow enough
    // (minutes under TCG) that the deadline always falls inside it, however
    // fast or loaded the machine; 12 s leaves room for a slow boot.
    Scenario {
        name: "deadline",
        kernel: Flavour::Cloud,
        fs: Fs::Ext4,
        memory_mib: 2048,
        crashkernel: "96M",
        cpus: 1,
        config: DISK_CONFIG,
        image_args: &[],
        disk_uuid: "6c1f0b7e-2a3d-4c5e-8f90-1a2b3c4d5e06",
        capture_cmdline_extra: "lifeboat.deadline.total=12 lifeboat.compression_level=9",
        plant_mib: 256,
        deadline_secs: 300,
        expect_status: "incomplete",
        expect_console: "deadline of 12 s passed while dumping",
        expect_error:
            "the capture deadline of 12 s passed while dumping to /mnt/target0/var/crash/",
        disk_mib: 512,
        serve: Serve::Nothing,
        no_crash: None,
    },
    // Debian's generic kernel, where ext4, jbd2, mbcache, crc16, crc32c
    // and virtio are all modules, and mkfs.ext4's default metadata_csum
    // needs crc32c at mount time: found only through ext4's softdep on the
    // alias `crypto-crc32c`.
    Scenario {
        name: "generic-ext4",
        kernel: Flavour::Generic,
        fs: Fs::Ext4,
        memory_mib: 2048,
        crashkernel: "96M",
        cpus: 1,
        config: NAMED_FSTYPE_CONFIG,
        image_args: &[],
        disk_uuid: "6c1f0b7e-2a3d-4c5e-8f90-1a2b3c4d5e08",
        capture_cmdline_extra: "",
        plant_mib: 64,
        deadline_secs: 300,
        expect_status: "complete",
        expect_console: "",
        expect_error: "",
        disk_mib: 512,
        serve: Serve::Nothing,
        no_crash: None,
    },
    // The generic kernel's ext4 capture in the smallest reservation that
    // works: 80M runs out of memory while the image unpacks (measured
    // 2026-12-03: 72M and 80M fail, 88M works; xfs and btrfs need 96M).
    Scenario {
        name: "generic-ext4-88m",
        kernel: Flavour::Generic,
        fs: Fs::Ext4,
        memory_mib: 2048,
        crashkernel: "88M",
        cpus: 1,
        config: NAMED_FSTYPE_CONFIG,
        image_args: &[],
        disk_uuid: "6c1f0b7e-2a3d-4c5e-8f90-1a2b3c4d5e0d",
        capture_cmdline_extra: "",
        plant_mib: 64,
        deadline_secs: 300,
        expect_status: "complete",
        expect_console: "",
        expect_error: "",
        disk_mib: 512,
        serve: Serve::Nothing,
        no_crash: None,
    },
    // xfs needs libcrc32c, whose softdep names the alias `crc32c`.
    Scenario {
        name: "generic-xfs",
        kernel: Flavour::Generic,
        fs: Fs::Xfs,
        memory_mib: 2048,
        crashkernel: "96M",
        cpus: 1,
        config: NAMED_FSTYPE_CONFIG,
        image_args: &[],
        disk_uuid: "6c1f0b7e-2a3d-4c5e-8f90-1a2b3c4d5e09",
        capture_cmdline_extra: "",
        plant_mib: 64,
        deadline_secs: 300,
        expect_status: "complete",
        expect_console: "",
        expect_error: "",
        disk_mib: 512,
        serve: Serve::Nothing,
        no_crash: None,
    },
    // btrfs softdeps on blake2b-256, sha256, xxhash64 and crypto-crc32c.
    Scenario {
        name: "generic-btrfs",
        kernel: Flavour::Generic,
        fs: Fs::Btrfs,
        memory_mib: 2048,
        crashkernel: "96M",
        cpus: 1,
        config: NAMED_FSTYPE_CONFIG,
        image_args: &[],
        disk_uuid: "6c1f0b7e-2a3d-4c5e-8f90-1a2b3c4d5e0a",
        capture_cmdline_extra: "",
        plant_mib: 64,
        deadline_secs: 300,
        expect_status: "complete",
        expect_console: "",
        expect_error: "",
        disk_mib: 512,
        serve: Serve::Nothing,
        no_crash: None,
    },
    // vfat needs its codepage and charset modules (nls_cp437, nls_ascii).
    Scenario {
        name: "generic-vfat",
        kernel: Flavour::Generic,
        fs: Fs::Vfat,
        memory_mib: 2048,
        crashkernel: "96M",
        cpus: 1,
        config: NAMED_FSTYPE_CONFIG,
        image_args: &[],
        disk_uuid: "6C1F-0B0B",
        capture_cmdline_extra: "",
        plant_mib: 64,
        deadline_secs: 300,
        expect_status: "complete",
        expect_console: "",
        expect_error: "",
        disk_mib: 512,
        serve: Serve::Nothing,
        no_crash: None,
    },
    // Debian 13's 6.12 cloud kernel as production and capture kernel: the
    // page types of 6.12 (in the top byte of `_mapcount`) are what dump
    // levels read, compared with makedumpfile's on this vmcore. 96M as the
    // 6.1 comparison; this kernel captures at 72M too, and runs out of
    // memory in its own boot, before /init, at 68M and 64M (measured
    // 2026-12-03).
    Scenario {
        name: "trixie-ext4",
        kernel: Flavour::TrixieCloud,
        fs: Fs::Ext4,
        memory_mib: 2048,
        crashkernel: "96M",
        cpus: 1,
        config: DISK_CONFIG,
        image_args: &[],
        disk_uuid: "6c1f0b7e-2a3d-4c5e-8f90-1a2b3c4d5e14",
        capture_cmdline_extra: "",
        plant_mib: 64,
        deadline_secs: 300,
        expect_status: "complete",
        expect_console: "",
        expect_error: "",
        disk_mib: 512,
        serve: Serve::Nothing,
        no_crash: Some(CRASH_BEFORE_6_12),
    },
    // The target's fstype says xfs but the disk is ext4: the mount fails,
    // and lifeboat must say why in the kernel's words, not only EINVAL.
    Scenario {
        name: "wrong-fstype",
        kernel: Flavour::Cloud,
        fs: Fs::Ext4,
        memory_mib: 2048,
        crashkernel: "96M",
        cpus: 1,
        config: XFS_CONFIG,
        image_args: &[],
        disk_uuid: "6c1f0b7e-2a3d-4c5e-8f90-1a2b3c4d5e0c",
        capture_cmdline_extra: "",
        plant_mib: 16,
        deadline_secs: 300,
        expect_status: "none",
        expect_console: "(kernel: XFS (vda): Invalid superblock magic number",
        expect_error: "",
        disk_mib: 64,
        serve: Serve::Nothing,
        no_crash: None,
    },
    Scenario {
        name: "nfs4",
        kernel: Flavour::Cloud,
        fs: Fs::Ext4,
        memory_mib: 2048,
        crashkernel: "96M",
        cpus: 1,
        config: NFS4_CONFIG,
        image_args: &[],
        disk_uuid: "6c1f0b7e-2a3d-4c5e-8f90-1a2b3c4d5e11",
        capture_cmdline_extra: "",
        plant_mib: 64,
        deadline_secs: 300,
        expect_status: "complete",
        expect_console: "by DHCP from 10.0.2.2",
        expect_error: "",
        disk_mib: 16,
        serve: Serve::Nfs {
            version: "4.2",
            method: "dhcp",
        },
        no_crash: None,
    },
    Scenario {
        name: "nfs3",
        kernel: Flavour::Cloud,
        fs: Fs::Ext4,
        memory_mib: 2048,
        crashkernel: "96M",
        cpus: 1,
        config: NFS3_CONFIG,
        image_args: &[],
        disk_uuid: "6c1f0b7e-2a3d-4c5e-8f90-1a2b3c4d5e12",
        capture_cmdline_extra: "",
        plant_mib: 64,
        deadline_secs: 300,
        expect_status: "complete",
        expect_console: "10.0.2.15/24 static",
        expect_error: "",
        disk_mib: 16,
        serve: Serve::Nfs {
            version: "3",
            method: "static",
        },
        no_crash: None,
    },
    Scenario {
        name: "ssh",
        kernel: Flavour::Cloud,
        fs: Fs::Ext4,
        memory_mib: 2048,
        crashkernel: "96M",
        cpus: 1,
        config: SSH_CONFIG,
        image_args: &[],
        disk_uuid: "6c1f0b7e-2a3d-4c5e-8f90-1a2b3c4d5e13",
        capture_cmdline_extra: "",
        plant_mib: 64,
        deadline_secs: 300,
        expect_status: "complete",
        expect_console: "ssh: connected to root@10.0.2.2",
        expect_error: "",
        disk_mib: 16,
        serve: Serve::Ssh { method: "dhcp" },
        no_crash: None,
    },
];

impl Scenario {
    /// The config's `dump_level`, or lifeboat's default when it has none.
    pub fn dump_level(&self) -> u8 {
        self.config
            .lines()
            .find_map(|line| line.strip_prefix("dump_level = "))
            .and_then(|level| level.trim().parse().ok())
            // lifeboat's default (DEFAULT_DUMP_LEVEL of its config crate).
            .unwrap_or(31)
    }

    pub fn config_toml(&self, places: &ServerPlaces) -> String {
        self.config
            .replace("{uuid}", self.disk_uuid)
            .replace("{fstype}", self.fs.name())
            .replace("{nfs_port}", &places.nfs_port.to_string())
            .replace("{mount_port}", &places.mount_port.to_string())
            .replace("{ssh_port}", &places.ssh_port.to_string())
            .replace("{identity}", &places.identity)
            .replace("{known_hosts}", &places.known_hosts)
            .replace("{dump_root}", &places.dump_root)
    }

    /// The target's `directory`, where the checks look for the dump.
    pub fn crash_dir(&self) -> &'static str {
        match self.serve {
            Serve::Nothing => "/var/crash",
            Serve::Nfs { .. } | Serve::Ssh { .. } => NETWORK_DIRECTORY,
        }
    }

    /// What the dump directory's name starts with: `<network.name>-` on a
    /// network target.
    pub fn dir_prefix(&self) -> &'static str {
        match self.serve {
            Serve::Nothing => "",
            Serve::Nfs { .. } | Serve::Ssh { .. } => "crashtest-",
        }
    }

    pub fn capture_cmdline(&self) -> String {
        // One CPU is all a capture needs and saves memory; more compress
        // in parallel.
        let mut cmdline = format!("{CAPTURE_CMDLINE_BASE} nr_cpus={}", self.cpus);
        if !self.capture_cmdline_extra.is_empty() {
            cmdline.push(' ');
            cmdline.push_str(self.capture_cmdline_extra);
        }
        cmdline
    }

    /// A seed per scenario, so that a dump of one scenario cannot pass the
    /// page check of another.
    pub fn seed(&self) -> u64 {
        self.name
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325, |hash: u64, byte| {
                (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
            })
    }
}

//! lifeboat's configuration.
//!
//! A user writes TOML (`lifeboat.toml`); the image builder parses and
//! validates it on the host (feature `toml`, see [`user`]) and stores the
//! result in the image in the *baked* form defined here: one `key=value` per
//! line, already validated, so that PID 1 decodes it with a few string splits
//! and no allocation-heavy parsing at crash time. The baked form stays
//! readable (`lsinitramfs`/`cpio -t` and `cat`) because people debug crashed
//! captures with whatever tools they have at hand.
//!
//! Dump targets are an ordered list: PID 1 tries them in order and stops at
//! the first that takes a complete dump. Network targets add variants to
//! [`TargetKind`] without reshaping the rest.

#![deny(unsafe_code)]

use std::fmt;
use std::net::Ipv4Addr;

pub mod layout;
mod network;
#[cfg(feature = "toml")]
pub mod user;

pub use network::{
    check_dump_name, check_host_address, check_interface_name, check_unicast, AddressSpec,
    InterfaceSpec, Network,
};

/// First line of every baked config; the number changes when the format does.
pub const BAKED_HEADER: &str = "lifeboat-config 1";

/// Prefix of kernel command-line overrides (`lifeboat.final_action=halt`).
pub const CMDLINE_PREFIX: &str = "lifeboat.";

/// How verbose PID 1 is on the console and in its own log file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub const NAMES: &'static [&'static str] = &["error", "warn", "info", "debug", "trace"];

    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "error" => Some(Self::Error),
            "warn" => Some(Self::Warn),
            "info" => Some(Self::Info),
            "debug" => Some(Self::Debug),
            "trace" => Some(Self::Trace),
            _ => None,
        }
    }
}

/// What PID 1 does once the capture is over, whatever its outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinalAction {
    Reboot,
    Poweroff,
    Halt,
}

impl FinalAction {
    pub const NAMES: &'static [&'static str] = &["reboot", "poweroff", "halt"];

    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "reboot" => Some(Self::Reboot),
            "poweroff" => Some(Self::Poweroff),
            "halt" => Some(Self::Halt),
            _ => None,
        }
    }
}

/// How a block device is named: the forms of `/etc/fstab`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceSpec {
    /// Filesystem UUID, compared case-insensitively.
    Uuid(String),
    /// Filesystem label, compared exactly.
    Label(String),
    /// GPT partition UUID, compared case-insensitively.
    PartUuid(String),
    /// A device node such as `/dev/vdb1`.
    Path(String),
}

impl DeviceSpec {
    /// Parses `UUID=…`, `LABEL=…`, `PARTUUID=…` or `/dev/…`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (kind, value) = match text.split_once('=') {
            Some((kind, value)) => (kind, value),
            None if text.starts_with("/dev/") && text.len() > 5 => {
                return Ok(Self::Path(text.to_owned()))
            }
            None => {
                return Err(format!(
                    "`{text}` is not a device: use UUID=…, LABEL=…, PARTUUID=… or a /dev/… path"
                ))
            }
        };
        if value.is_empty() {
            return Err(format!("`{text}` names no {kind}"));
        }
        match kind {
            "UUID" => {
                check_uuid_like(value)?;
                Ok(Self::Uuid(value.to_ascii_lowercase()))
            }
            "PARTUUID" => {
                check_uuid_like(value)?;
                Ok(Self::PartUuid(value.to_ascii_lowercase()))
            }
            "LABEL" => Ok(Self::Label(value.to_owned())),
            _ => Err(format!(
                "unknown device kind `{kind}`: use UUID=, LABEL=, PARTUUID= or a /dev/… path"
            )),
        }
    }
}

/// UUIDs are hex digits and dashes; vfat "UUIDs" are the `ABCD-1234` serial.
fn check_uuid_like(value: &str) -> Result<(), String> {
    if value.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        Ok(())
    } else {
        Err(format!(
            "`{value}` is not a UUID (hex digits and dashes expected)"
        ))
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Uuid(v) => write!(f, "UUID={v}"),
            Self::Label(v) => write!(f, "LABEL={v}"),
            Self::PartUuid(v) => write!(f, "PARTUUID={v}"),
            Self::Path(v) => f.write_str(v),
        }
    }
}

/// Filesystem types lifeboat can recognise on a device by its superblock.
pub const KNOWN_FILESYSTEMS: &[&str] = &["ext4", "ext3", "ext2", "xfs", "btrfs", "vfat"];

/// Filesystem types a disk target may name in `fstype` (besides `auto`). Each
/// is also the name of the kernel module the image needs for it, which is why
/// ext2 and ext3 are not among them: the ext4 driver mounts those, as `ext4`.
pub const FSTYPES: &[&str] = &["ext4", "xfs", "btrfs", "vfat"];

/// A local block device holding a filesystem to write the dump on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskTarget {
    pub device: DeviceSpec,
    /// `None` means: use the type found in the superblock.
    pub fstype: Option<String>,
    /// Extra mount(8)-style data options, passed to mount(2) as they are.
    pub mount_options: String,
}

/// The NFS protocol version a target is mounted with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NfsVersion {
    V3,
    V4_0,
    V4_1,
    V4_2,
}

impl NfsVersion {
    /// As the user writes them, and as `vers=` takes them.
    pub const NAMES: &'static [&'static str] = &["3", "4.0", "4.1", "4.2"];
    pub const DEFAULT: NfsVersion = NfsVersion::V4_2;

    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "3" => Some(Self::V3),
            "4.0" => Some(Self::V4_0),
            "4.1" => Some(Self::V4_1),
            "4.2" => Some(Self::V4_2),
            _ => None,
        }
    }
}

/// An NFS export the kernel's own client mounts (no mount.nfs, rpcbind or
/// statd in the image).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NfsTarget {
    /// Resolved when the image is built: PID 1 does no DNS.
    pub server: Ipv4Addr,
    /// The exported path, as the server names it (`/export`).
    pub export: String,
    pub version: NfsVersion,
    /// The NFS port; `None` lets the kernel ask the server's rpcbind (v3)
    /// or use 2049 (v4).
    pub port: Option<u16>,
    /// v3 only: the MOUNT protocol's port; `None` asks rpcbind.
    pub mount_port: Option<u16>,
    /// Appended to the options lifeboat builds.
    pub mount_options: String,
}

/// Default port of ssh targets.
pub const DEFAULT_SSH_PORT: u16 = 22;
/// Default user of ssh targets.
pub const DEFAULT_SSH_USER: &str = "root";

/// An ssh server the dump is streamed to, by lifeboat's own client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshTarget {
    /// Resolved when the image is built: PID 1 does no DNS.
    pub server: Ipv4Addr,
    pub port: u16,
    pub user: String,
    /// The private key's path: on the building machine in a user's config,
    /// inside the image once baked (the image builder copies it there, 0600).
    pub identity: String,
    /// The server's accepted host keys, one `<algorithm> <base64>` line each,
    /// taken from `known_hosts` when the image is built: never trust on
    /// first use.
    pub host_keys: Vec<String>,
}

/// Where a dump can go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetKind {
    Disk(DiskTarget),
    Nfs(NfsTarget),
    Ssh(SshTarget),
}

impl TargetKind {
    pub fn kind_name(&self) -> &'static str {
        match self {
            Self::Disk(_) => "disk",
            Self::Nfs(_) => "nfs",
            Self::Ssh(_) => "ssh",
        }
    }

    /// `a disk`, `an nfs`, `an ssh`: the kind in a sentence.
    pub fn a_kind(&self) -> &'static str {
        match self {
            Self::Disk(_) => "a disk",
            Self::Nfs(_) => "an nfs",
            Self::Ssh(_) => "an ssh",
        }
    }

    /// Whether the target is reached over the network (and so needs
    /// `[network]`).
    pub fn is_network(&self) -> bool {
        !matches!(self, Self::Disk(_))
    }
}

/// One entry of the ordered target list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub kind: TargetKind,
    /// Directory on the target under which `<YYYYmmddHHMM>/` is created.
    pub directory: String,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            TargetKind::Disk(disk) => write!(f, "disk {}:{}", disk.device, self.directory),
            TargetKind::Nfs(nfs) => write!(
                f,
                "nfs {}:{} (v{}):{}",
                nfs.server,
                nfs.export,
                nfs.version.as_str(),
                self.directory
            ),
            TargetKind::Ssh(ssh) => write!(
                f,
                "ssh {}@{}:{}:{}",
                ssh.user, ssh.server, ssh.port, self.directory
            ),
        }
    }
}

/// Time limits, in seconds. Every wait PID 1 does is bounded by one of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadlines {
    /// How long to wait for a target's device to appear.
    pub device_wait_secs: u32,
    /// How long the whole capture may take before PID 1 gives up and takes
    /// the final action, leaving the dump marked incomplete.
    pub total_secs: u32,
    /// Carrier after the link is set up.
    pub link_secs: u32,
    /// An address: all DHCP discovers and requests together.
    pub address_secs: u32,
    /// One NFS mount, or one ssh connect with host key check and
    /// authentication.
    pub connect_secs: u32,
    /// No byte of progress on a network target for this long gives it up.
    pub stall_secs: u32,
}

/// A validated configuration, as PID 1 uses it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub log_level: LogLevel,
    pub final_action: FinalAction,
    /// zstd level of the dump stream.
    pub compression_level: i32,
    /// makedumpfile's dump level, 0 to 31: which pages the dump leaves out
    /// (1 zero, 2 cache, 4 cache with private data, 8 user data, 16 free).
    pub dump_level: u8,
    /// Threads compressing frames; 0 means one per online CPU (capture
    /// kernels usually boot with `nr_cpus=1`).
    pub compression_threads: u32,
    /// Modules to load in addition to those the targets need.
    pub modules: Vec<String>,
    /// After the dump, read up to 1 GiB of the vmcore again to log the plain
    /// read rate, which tells how close the dump came to the read limit. Off
    /// by default: it delays every reboot (0.5 s under TCG, longer on big
    /// machines); tests and benchmarks turn it on.
    pub measure_read_rate: bool,
    pub deadlines: Deadlines,
    /// Present when a target is reached over the network.
    pub network: Option<Network>,
    /// Tried in order; never empty.
    pub targets: Vec<Target>,
}

pub const DEFAULT_DIRECTORY: &str = "/var/crash";
pub const DEFAULT_COMPRESSION_LEVEL: i32 = 1;
/// zstd levels: 1 (fast) to 19 (small), and zstd's fast levels -1 to -10
/// (`zstd --fast=N`), faster still. Level 0, zstd's "default", is not a
/// level of its own and is refused to avoid surprises.
pub const COMPRESSION_LEVELS: std::ops::RangeInclusive<i32> = -10..=19;

/// Checks a compression level (see [`COMPRESSION_LEVELS`]).
pub fn check_compression_level(level: i64) -> Result<i32, String> {
    match i32::try_from(level) {
        Ok(level) if level != 0 && COMPRESSION_LEVELS.contains(&level) => Ok(level),
        _ => Err(format!(
            "compression level {level} is out of range; expected {}..=-1 or 1..={}",
            COMPRESSION_LEVELS.start(),
            COMPRESSION_LEVELS.end()
        )),
    }
}

/// The dump level of distributions' kdump: leave out zero, cache, user and
/// free pages, which keeps about a tenth of a typical machine's RAM.
pub const DEFAULT_DUMP_LEVEL: u8 = 31;
/// The highest dump level: every bit of makedumpfile's `-d`.
pub const MAX_DUMP_LEVEL: u8 = 31;

/// Checks a dump level (0 to [`MAX_DUMP_LEVEL`]).
pub fn check_dump_level(level: i64) -> Result<u8, String> {
    match u8::try_from(level) {
        Ok(level) if level <= MAX_DUMP_LEVEL => Ok(level),
        _ => Err(format!(
            "dump level {level} is out of range; expected 0 (keep every page) to {MAX_DUMP_LEVEL} \
             (leave out zero, cache, user and free pages)"
        )),
    }
}

/// Most compression threads a config may ask for.
pub const MAX_COMPRESSION_THREADS: u32 = 256;
pub const DEFAULT_DEVICE_WAIT_SECS: u32 = 30;
pub const DEFAULT_TOTAL_SECS: u32 = 3600;
pub const DEFAULT_LINK_SECS: u32 = 10;
pub const DEFAULT_ADDRESS_SECS: u32 = 20;
pub const DEFAULT_CONNECT_SECS: u32 = 15;
pub const DEFAULT_STALL_SECS: u32 = 60;

impl Deadlines {
    pub const DEFAULT: Deadlines = Deadlines {
        device_wait_secs: DEFAULT_DEVICE_WAIT_SECS,
        total_secs: DEFAULT_TOTAL_SECS,
        link_secs: DEFAULT_LINK_SECS,
        address_secs: DEFAULT_ADDRESS_SECS,
        connect_secs: DEFAULT_CONNECT_SECS,
        stall_secs: DEFAULT_STALL_SECS,
    };
}

/// A baked config that does not decode: the image is damaged or was built by
/// an incompatible version of lifeboat.
#[derive(Debug, PartialEq, Eq)]
pub struct BakedError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for BakedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "baked config line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for BakedError {}

/// Checks a value that goes on one line of the baked form.
fn single_line(value: &str) -> Result<(), String> {
    if value.contains(['\n', '\r', '\0']) {
        Err("must not contain line breaks or NUL bytes".to_owned())
    } else {
        Ok(())
    }
}

/// Checks a directory on a target: absolute, no `..`, one line.
pub fn check_directory(dir: &str) -> Result<(), String> {
    check_path(dir)
}

/// Checks a path that goes in the baked form (a directory, an NFS export,
/// a file in the image) or is read when the image is built: absolute, so
/// that it does not depend on where a command runs, with no `..`, on one
/// line.
pub fn check_path(path: &str) -> Result<(), String> {
    single_line(path)?;
    if !path.starts_with('/') {
        return Err(format!("`{path}` is not an absolute path"));
    }
    if path.split('/').any(|part| part == "..") {
        return Err(format!("`{path}` must not contain `..`"));
    }
    Ok(())
}

/// Checks a kernel module name (as `modprobe` takes it).
pub fn check_module_name(name: &str) -> Result<(), String> {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a module name (letters, digits, `_` and `-`)"
        ))
    }
}

/// Checks a filesystem type named by the user (see [`FSTYPES`]); `auto` is
/// handled by the callers, as it names none.
pub fn check_fstype(name: &str) -> Result<(), String> {
    if FSTYPES.contains(&name) {
        return Ok(());
    }
    let hint = match name {
        "ext2" | "ext3" => " (ext2 and ext3 filesystems are mounted as ext4)",
        _ => "",
    };
    let names: Vec<&str> = FSTYPES.iter().copied().chain(["auto"]).collect();
    Err(format!(
        "`{name}` is not a filesystem type lifeboat supports; expected {}{hint}",
        quoted(&names)
    ))
}

/// Checks the mount options of a disk target, which go on one line of the
/// baked form.
pub fn check_mount_options(options: &str) -> Result<(), String> {
    single_line(options)
}

/// Whether `name` is 1 to `max_len` letters, digits, `.`, `_` and `-` (the
/// POSIX portable file name set), not starting with `bad_first`.
pub(crate) fn is_portable_name(name: &str, max_len: usize, bad_first: char) -> bool {
    !name.is_empty()
        && name.len() <= max_len
        && !name.starts_with(bad_first)
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Checks a user name as POSIX's portable set has them: 1 to 32 letters,
/// digits, `.`, `_` and `-`, not starting with `-`.
pub fn check_user_name(name: &str) -> Result<(), String> {
    if is_portable_name(name, 32, '-') {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a user name (1 to 32 letters, digits, `.`, `_` and `-`, \
             not starting with `-`)"
        ))
    }
}

/// Checks one accepted host key of an ssh target, `<algorithm> <base64>`.
pub fn check_host_key(key: &str) -> Result<(), String> {
    let fine = match key.split_once(' ') {
        Some((algorithm, blob)) => {
            !algorithm.is_empty()
                && algorithm
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '@' | '.' | '_' | '-'))
                && !blob.is_empty()
                && blob
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '='))
        }
        None => false,
    };
    if fine {
        Ok(())
    } else {
        Err(format!(
            "`{key}` is not a host key; expected `<algorithm> <base64>`"
        ))
    }
}

/// `a, b or c`: the choices of an error message.
pub(crate) fn one_of(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [name] => name.clone(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

/// `"a", "b" or "c"`: choices that are strings in TOML.
pub(crate) fn quoted(names: &[&str]) -> String {
    let names: Vec<String> = names.iter().map(|name| format!("\"{name}\"")).collect();
    one_of(&names)
}

impl Config {
    /// The configuration used when the image carries none: dump to the
    /// filesystem labelled `LIFEBOAT`, the convention documented in the README.
    pub fn fallback() -> Config {
        Config {
            log_level: LogLevel::Info,
            final_action: FinalAction::Reboot,
            compression_level: DEFAULT_COMPRESSION_LEVEL,
            dump_level: DEFAULT_DUMP_LEVEL,
            compression_threads: 0,
            modules: Vec::new(),
            measure_read_rate: false,
            deadlines: Deadlines::DEFAULT,
            network: None,
            targets: vec![Target {
                kind: TargetKind::Disk(DiskTarget {
                    device: DeviceSpec::Label("LIFEBOAT".to_owned()),
                    fstype: None,
                    mount_options: String::new(),
                }),
                directory: DEFAULT_DIRECTORY.to_owned(),
            }],
        }
    }

    /// Writes the baked form. The config must be valid (it is, when it comes
    /// from [`user::parse`] or [`Config::decode`]).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let mut line = |key: &str, value: &dyn fmt::Display| {
            out.push_str(key);
            out.push('=');
            out.push_str(&value.to_string());
            out.push('\n');
        };
        line("log_level", &self.log_level.as_str());
        line("final_action", &self.final_action.as_str());
        line("compression_level", &self.compression_level);
        line("dump_level", &self.dump_level);
        line("compression_threads", &self.compression_threads);
        line("measure_read_rate", &self.measure_read_rate);
        line("deadline.device_wait", &self.deadlines.device_wait_secs);
        line("deadline.total", &self.deadlines.total_secs);
        line("deadline.link", &self.deadlines.link_secs);
        line("deadline.address", &self.deadlines.address_secs);
        line("deadline.connect", &self.deadlines.connect_secs);
        line("deadline.stall", &self.deadlines.stall_secs);
        for module in &self.modules {
            line("module", module);
        }
        if let Some(network) = &self.network {
            line("network.interface", &network.interface);
            line("network.address", &network.address);
            if let AddressSpec::Static {
                gateway: Some(gateway),
                ..
            } = &network.address
            {
                line("network.gateway", gateway);
            }
            line("network.name", &network.name);
        }
        for target in &self.targets {
            line("target", &target.kind.kind_name());
            line("target.directory", &target.directory);
            match &target.kind {
                TargetKind::Disk(disk) => {
                    line("target.device", &disk.device);
                    line("target.fstype", &disk.fstype.as_deref().unwrap_or("auto"));
                    if !disk.mount_options.is_empty() {
                        line("target.mount_options", &disk.mount_options);
                    }
                }
                TargetKind::Nfs(nfs) => {
                    line("target.server", &nfs.server);
                    line("target.export", &nfs.export);
                    line("target.version", &nfs.version.as_str());
                    if let Some(port) = nfs.port {
                        line("target.port", &port);
                    }
                    if let Some(port) = nfs.mount_port {
                        line("target.mount_port", &port);
                    }
                    if !nfs.mount_options.is_empty() {
                        line("target.mount_options", &nfs.mount_options);
                    }
                }
                TargetKind::Ssh(ssh) => {
                    line("target.server", &ssh.server);
                    line("target.port", &ssh.port);
                    line("target.user", &ssh.user);
                    line("target.identity", &ssh.identity);
                    for key in &ssh.host_keys {
                        line("target.host_key", key);
                    }
                }
            }
        }
        format!("{BAKED_HEADER}\n{out}")
    }

    /// Reads the baked form written by [`Config::encode`].
    pub fn decode(text: &str) -> Result<Config, BakedError> {
        let mut lines = text.lines().enumerate();
        match lines.next() {
            Some((_, BAKED_HEADER)) => {}
            _ => {
                return Err(BakedError {
                    line: 1,
                    message: format!("expected `{BAKED_HEADER}`"),
                })
            }
        }
        let mut config = Config {
            targets: Vec::new(),
            ..Config::fallback()
        };
        // The line of each `target=`, to report what a target lacks.
        let mut target_lines = Vec::new();
        let mut network_line = 0;
        for (index, line) in lines {
            let fail = |message: String| BakedError {
                line: index + 1,
                message,
            };
            if line.is_empty() {
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .ok_or_else(|| fail(format!("`{line}` is not key=value")))?;
            if key.starts_with("target.") {
                let target = config
                    .targets
                    .last_mut()
                    .ok_or_else(|| fail(format!("`{key}` before any `target`")))?;
                apply_target_key(target, key, value).map_err(fail)?;
            } else if key == "target" {
                config
                    .targets
                    .push(new_target(value, DEFAULT_DIRECTORY).map_err(fail)?);
                target_lines.push(index + 1);
            } else if let Some(key) = key.strip_prefix("network.") {
                if config.network.is_none() {
                    network_line = index + 1;
                }
                let network = config.network.get_or_insert_with(|| Network {
                    interface: InterfaceSpec::Auto,
                    address: AddressSpec::Dhcp,
                    name: String::new(),
                });
                apply_network_key(network, key, value).map_err(fail)?;
            } else {
                config.apply_key(key, value).map_err(fail)?;
            }
        }
        if config.targets.is_empty() {
            return Err(BakedError {
                line: text.lines().count(),
                message: "no target".to_owned(),
            });
        }
        if config.network.as_ref().is_some_and(|n| n.name.is_empty()) {
            return Err(BakedError {
                line: network_line,
                message: "the network has no network.name".to_owned(),
            });
        }
        for (target, line) in config.targets.iter().zip(target_lines) {
            check_complete(target, config.network.is_some())
                .map_err(|message| BakedError { line, message })?;
        }
        Ok(config)
    }

    /// Applies one global key, shared by the baked form and the kernel
    /// command line.
    fn apply_key(&mut self, key: &str, value: &str) -> Result<(), String> {
        match key {
            "log_level" => {
                self.log_level = LogLevel::parse(value).ok_or_else(|| {
                    format!("log_level `{value}`: expected one of {:?}", LogLevel::NAMES)
                })?
            }
            "final_action" => {
                self.final_action = FinalAction::parse(value).ok_or_else(|| {
                    format!(
                        "final_action `{value}`: expected one of {:?}",
                        FinalAction::NAMES
                    )
                })?
            }
            "compression_level" => self.compression_level = parse_level(value)?,
            "dump_level" => {
                let level = value
                    .parse::<i64>()
                    .map_err(|_| format!("dump_level `{value}` is not a number"))?;
                self.dump_level = check_dump_level(level)?;
            }
            "compression_threads" => self.compression_threads = parse_threads(value)?,
            "measure_read_rate" => self.measure_read_rate = parse_switch(key, value)?,
            "deadline.device_wait" => self.deadlines.device_wait_secs = parse_secs(value)?,
            "deadline.total" => self.deadlines.total_secs = parse_secs(value)?,
            "deadline.link" => self.deadlines.link_secs = parse_secs(value)?,
            "deadline.address" => self.deadlines.address_secs = parse_secs(value)?,
            "deadline.connect" => self.deadlines.connect_secs = parse_secs(value)?,
            "deadline.stall" => self.deadlines.stall_secs = parse_secs(value)?,
            "module" => {
                check_module_name(value)?;
                self.modules.push(value.to_owned());
            }
            _ => return Err(format!("unknown key `{key}`")),
        }
        Ok(())
    }

    /// Applies `lifeboat.<key>=<value>` words of the kernel command line.
    ///
    /// Keys: `log_level`, `final_action`, `compression_level`, `dump_level`,
    /// `compression_threads`, `measure_read_rate` (`1` or `0`),
    /// `deadline.device_wait`, `deadline.total`, `deadline.link`,
    /// `deadline.address`, `deadline.connect`, `deadline.stall`, and
    /// `target`, whose value is a device (`UUID=…`, `LABEL=…`, `PARTUUID=…`,
    /// `/dev/…`) that replaces the target list with one disk target in the
    /// first target's directory. The network (`network.*`) is not among
    /// them: its keys depend on each other (a gateway on the address's
    /// subnet), and a half-changed network fails where the baked one works.
    /// Returns one message per word that was not applied: a field engineer's
    /// typo must not stop a capture, so bad words are reported and skipped.
    pub fn apply_cmdline(&mut self, cmdline: &str) -> Vec<String> {
        let mut problems = Vec::new();
        for word in cmdline.split_ascii_whitespace() {
            let Some(setting) = word.strip_prefix(CMDLINE_PREFIX) else {
                continue;
            };
            let Some((key, value)) = setting.split_once('=') else {
                problems.push(format!("`{word}`: expected {CMDLINE_PREFIX}<key>=<value>"));
                continue;
            };
            let result = match key {
                "target" => DeviceSpec::parse(value).map(|device| {
                    let directory = self
                        .targets
                        .first()
                        .map(|t| t.directory.clone())
                        .unwrap_or_else(|| DEFAULT_DIRECTORY.to_owned());
                    self.targets = vec![Target {
                        kind: TargetKind::Disk(DiskTarget {
                            device,
                            fstype: None,
                            mount_options: String::new(),
                        }),
                        directory,
                    }];
                }),
                "module" => Err("modules can only be chosen when the image is built".to_owned()),
                _ => self.apply_key(key, value),
            };
            if let Err(message) = result {
                problems.push(format!("`{word}`: {message}"));
            }
        }
        problems
    }
}

/// A target of `kind` whose keys are still to come; those without a
/// default hold a placeholder that [`check_complete`] refuses.
fn new_target(kind: &str, directory: &str) -> Result<Target, String> {
    let kind = match kind {
        "disk" => TargetKind::Disk(DiskTarget {
            device: DeviceSpec::Path(String::new()),
            fstype: None,
            mount_options: String::new(),
        }),
        "nfs" => TargetKind::Nfs(NfsTarget {
            server: Ipv4Addr::UNSPECIFIED,
            export: String::new(),
            version: NfsVersion::DEFAULT,
            port: None,
            mount_port: None,
            mount_options: String::new(),
        }),
        "ssh" => TargetKind::Ssh(SshTarget {
            server: Ipv4Addr::UNSPECIFIED,
            port: DEFAULT_SSH_PORT,
            user: DEFAULT_SSH_USER.to_owned(),
            identity: String::new(),
            host_keys: Vec::new(),
        }),
        _ => return Err(format!("unknown target kind `{kind}`")),
    };
    Ok(Target {
        kind,
        directory: directory.to_owned(),
    })
}

/// Checks that a decoded target got every key it cannot do without, and
/// what holds between its keys.
fn check_complete(target: &Target, has_network: bool) -> Result<(), String> {
    let kind = target.kind.kind_name();
    if target.kind.is_network() && !has_network {
        return Err(format!(
            "{} target needs the network, and there is no network.* key",
            target.kind.a_kind()
        ));
    }
    let lacks = |key: &str| Err(format!("the {kind} target has no target.{key}"));
    match &target.kind {
        TargetKind::Disk(disk) => {
            if disk.device == DeviceSpec::Path(String::new()) {
                return lacks("device");
            }
        }
        TargetKind::Nfs(nfs) => {
            if nfs.server.is_unspecified() {
                return lacks("server");
            }
            if nfs.export.is_empty() {
                return lacks("export");
            }
            if nfs.mount_port.is_some() && nfs.version != NfsVersion::V3 {
                return Err(format!(
                    "target.mount_port is for NFS version 3, not {}",
                    nfs.version.as_str()
                ));
            }
        }
        TargetKind::Ssh(ssh) => {
            if ssh.server.is_unspecified() {
                return lacks("server");
            }
            if ssh.identity.is_empty() {
                return lacks("identity");
            }
            if ssh.host_keys.is_empty() {
                return lacks("host_key");
            }
        }
    }
    Ok(())
}

fn apply_network_key(network: &mut Network, key: &str, value: &str) -> Result<(), String> {
    match key {
        "interface" => network.interface = InterfaceSpec::parse(value)?,
        "address" => network.address = AddressSpec::parse(value)?,
        "gateway" => {
            let gateway = parse_ipv4(value)?;
            network.address = network.address.clone().with_gateway(gateway)?;
        }
        "name" => {
            check_dump_name(value)?;
            network.name = value.to_owned();
        }
        _ => return Err(format!("unknown key `network.{key}`")),
    }
    Ok(())
}

fn parse_ipv4(value: &str) -> Result<Ipv4Addr, String> {
    value
        .parse()
        .map_err(|_| format!("`{value}` is not an IPv4 address"))
}

fn parse_server(value: &str) -> Result<Ipv4Addr, String> {
    let server = parse_ipv4(value)?;
    check_unicast(server)?;
    Ok(server)
}

fn parse_port(value: &str) -> Result<u16, String> {
    match value.parse::<u16>() {
        Ok(port) if port > 0 && !value.starts_with('+') => Ok(port),
        _ => Err(format!("`{value}` is not a port (1 to 65535)")),
    }
}

fn apply_target_key(target: &mut Target, key: &str, value: &str) -> Result<(), String> {
    match (key, &mut target.kind) {
        ("target.directory", _) => {
            check_directory(value)?;
            target.directory = value.to_owned();
        }
        ("target.server", TargetKind::Nfs(nfs)) => nfs.server = parse_server(value)?,
        ("target.server", TargetKind::Ssh(ssh)) => ssh.server = parse_server(value)?,
        ("target.port", TargetKind::Nfs(nfs)) => nfs.port = Some(parse_port(value)?),
        ("target.port", TargetKind::Ssh(ssh)) => ssh.port = parse_port(value)?,
        ("target.export", TargetKind::Nfs(nfs)) => {
            check_path(value)?;
            nfs.export = value.to_owned();
        }
        ("target.version", TargetKind::Nfs(nfs)) => {
            nfs.version = NfsVersion::parse(value).ok_or_else(|| {
                format!(
                    "`{value}` is not an NFS version; expected one of {:?}",
                    NfsVersion::NAMES
                )
            })?
        }
        ("target.mount_port", TargetKind::Nfs(nfs)) => nfs.mount_port = Some(parse_port(value)?),
        ("target.mount_options", TargetKind::Nfs(nfs)) => {
            check_mount_options(value)?;
            nfs.mount_options = value.to_owned();
        }
        ("target.user", TargetKind::Ssh(ssh)) => {
            check_user_name(value)?;
            ssh.user = value.to_owned();
        }
        ("target.identity", TargetKind::Ssh(ssh)) => {
            check_path(value)?;
            ssh.identity = value.to_owned();
        }
        ("target.host_key", TargetKind::Ssh(ssh)) => {
            check_host_key(value)?;
            ssh.host_keys.push(value.to_owned());
        }
        ("target.device", TargetKind::Disk(disk)) => disk.device = DeviceSpec::parse(value)?,
        ("target.fstype", TargetKind::Disk(disk)) => {
            disk.fstype = if value == "auto" {
                None
            } else {
                check_fstype(value)?;
                Some(value.to_owned())
            }
        }
        ("target.mount_options", TargetKind::Disk(disk)) => {
            check_mount_options(value)?;
            disk.mount_options = value.to_owned();
        }
        _ => {
            return Err(format!(
                "unknown key `{key}` for {} target",
                target.kind.a_kind()
            ))
        }
    }
    Ok(())
}

fn parse_level(value: &str) -> Result<i32, String> {
    let level = value
        .parse::<i64>()
        .map_err(|_| format!("compression_level `{value}` is not a number"))?;
    check_compression_level(level)
}

fn parse_threads(value: &str) -> Result<u32, String> {
    match value.parse::<u32>() {
        Ok(threads) if threads <= MAX_COMPRESSION_THREADS => Ok(threads),
        _ => Err(format!(
            "compression_threads `{value}`: expected 0 (one per CPU) to {MAX_COMPRESSION_THREADS}"
        )),
    }
}

/// A yes/no setting: `1`, `true`, `yes`, `on` or `0`, `false`, `no`, `off`,
/// as people write them on a kernel command line.
fn parse_switch(key: &str, value: &str) -> Result<bool, String> {
    match value {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!("{key} `{value}`: expected 1 or 0")),
    }
}

fn parse_secs(value: &str) -> Result<u32, String> {
    match value.parse::<u32>() {
        Ok(secs) if secs > 0 => Ok(secs),
        _ => Err(format!("`{value}` is not a positive number of seconds")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Config {
        Config {
            log_level: LogLevel::Debug,
            final_action: FinalAction::Poweroff,
            compression_level: 3,
            dump_level: 17,
            compression_threads: 2,
            modules: vec!["virtio_blk".into(), "xfs".into()],
            measure_read_rate: true,
            deadlines: Deadlines {
                device_wait_secs: 10,
                total_secs: 600,
                link_secs: 5,
                address_secs: 7,
                connect_secs: 9,
                stall_secs: 30,
            },
            network: Some(Network {
                interface: InterfaceSpec::Mac([0x52, 0x54, 0, 0x12, 0x34, 0xab]),
                address: AddressSpec::Static {
                    address: Ipv4Addr::new(192, 0, 2, 10),
                    prefix_len: 24,
                    gateway: Some(Ipv4Addr::new(192, 0, 2, 1)),
                },
                name: "web-17".into(),
            }),
            targets: vec![
                Target {
                    kind: TargetKind::Disk(DiskTarget {
                        device: DeviceSpec::Uuid("0bd3a2c6-8d7e-4f1c-9a55-2c1f3c0e9a11".into()),
                        fstype: Some("ext4".into()),
                        mount_options: "data=ordered".into(),
                    }),
                    directory: "/var/crash".into(),
                },
                Target {
                    kind: TargetKind::Disk(DiskTarget {
                        device: DeviceSpec::Label("SPARE".into()),
                        fstype: None,
                        mount_options: String::new(),
                    }),
                    directory: "/dumps".into(),
                },
                Target {
                    kind: TargetKind::Nfs(NfsTarget {
                        server: Ipv4Addr::new(10, 0, 2, 2),
                        export: "/export".into(),
                        version: NfsVersion::V3,
                        port: Some(2049),
                        mount_port: Some(20048),
                        mount_options: "nconnect=2".into(),
                    }),
                    directory: "/crash".into(),
                },
                Target {
                    kind: TargetKind::Nfs(NfsTarget {
                        server: Ipv4Addr::new(10, 0, 2, 3),
                        export: "/".into(),
                        version: NfsVersion::V4_1,
                        port: None,
                        mount_port: None,
                        mount_options: String::new(),
                    }),
                    directory: "/".into(),
                },
                Target {
                    kind: TargetKind::Ssh(SshTarget {
                        server: Ipv4Addr::new(10, 0, 2, 2),
                        port: 2222,
                        user: "dumps".into(),
                        identity: "/etc/lifeboat/ssh/identity4".into(),
                        host_keys: vec![
                            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE1hZGUgdXAgZm9yIGEgdGVzdA=="
                                .into(),
                            "ecdsa-sha2-nistp256 AAAAE2VjZHNh".into(),
                        ],
                    }),
                    directory: "/var/crash".into(),
                },
            ],
        }
    }

    /// Every network shape round-trips, not only the sample's.
    #[test]
    fn networks_round_trip() {
        let networks = [
            (InterfaceSpec::Auto, AddressSpec::Dhcp),
            (InterfaceSpec::Name("eth0".into()), AddressSpec::Dhcp),
            // An interface that is called `auto` stays one.
            (InterfaceSpec::Name("auto".into()), AddressSpec::Dhcp),
            (
                InterfaceSpec::Name("enp0s3".into()),
                AddressSpec::Static {
                    address: Ipv4Addr::new(10, 1, 2, 3),
                    prefix_len: 32,
                    gateway: None,
                },
            ),
        ];
        for (interface, address) in networks {
            let mut config = sample();
            config.network = Some(Network {
                interface,
                address,
                name: "h".into(),
            });
            assert_eq!(Config::decode(&config.encode()), Ok(config));
        }
    }

    #[test]
    fn the_baked_form_reads_as_documented() {
        let text = sample().encode();
        for line in [
            "deadline.link=5",
            "deadline.stall=30",
            "network.interface=mac:52:54:00:12:34:ab",
            "network.address=192.0.2.10/24",
            "network.gateway=192.0.2.1",
            "network.name=web-17",
            "target=nfs\ntarget.directory=/crash\ntarget.server=10.0.2.2\n\
             target.export=/export\ntarget.version=3\ntarget.port=2049\n\
             target.mount_port=20048\ntarget.mount_options=nconnect=2\n",
            "target=ssh\ntarget.directory=/var/crash\ntarget.server=10.0.2.2\n\
             target.port=2222\ntarget.user=dumps\ntarget.identity=/etc/lifeboat/ssh/identity4\n\
             target.host_key=ssh-ed25519 AAAA",
        ] {
            assert!(text.contains(line), "{line:?} not in:\n{text}");
        }
    }

    #[test]
    fn baked_form_round_trips() {
        let config = sample();
        assert_eq!(Config::decode(&config.encode()), Ok(config));
        let fallback = Config::fallback();
        assert_eq!(Config::decode(&fallback.encode()), Ok(fallback));
    }

    #[test]
    fn bad_baked_forms_are_rejected_with_their_line() {
        let cases: &[(&str, usize, &str)] = &[
            ("", 1, "expected"),
            ("lifeboat-config 2\n", 1, "expected"),
            ("lifeboat-config 1\nlog_level=loud\n", 2, "log_level"),
            (
                "lifeboat-config 1\ntarget.device=/dev/vda\n",
                2,
                "before any",
            ),
            ("lifeboat-config 1\ntarget=tape\n", 2, "unknown target kind"),
            ("lifeboat-config 1\nlog_level=info\n", 2, "no target"),
            ("lifeboat-config 1\nnonsense\n", 2, "key=value"),
            (
                "lifeboat-config 1\ncompression_level=0\n",
                2,
                "compression level",
            ),
            (
                "lifeboat-config 1\ncompression_level=x\n",
                2,
                "not a number",
            ),
            (
                "lifeboat-config 1\ncompression_threads=999\n",
                2,
                "compression_threads",
            ),
            (
                "lifeboat-config 1\ntarget=disk\ntarget.directory=var\n",
                3,
                "absolute",
            ),
            (
                "lifeboat-config 1\ntarget=disk\ntarget.fstype=ext5\n",
                3,
                "not a filesystem type",
            ),
            ("lifeboat-config 1\ntarget=disk\n", 2, "no target.device"),
            (
                "lifeboat-config 1\ntarget=disk\ntarget.device=/dev/vda\ntarget.server=10.0.2.2\n",
                4,
                "unknown key `target.server` for a disk target",
            ),
            (
                "lifeboat-config 1\ntarget=disk\ntarget.device=/dev/vda\ndeadline.stall=0\n",
                4,
                "positive",
            ),
            (
                "lifeboat-config 1\nnetwork.name=h\ntarget=nfs\ntarget.export=/e\n",
                3,
                "no target.server",
            ),
            (
                "lifeboat-config 1\nnetwork.name=h\ntarget=nfs\ntarget.server=10.0.2.2\n",
                3,
                "no target.export",
            ),
            (
                "lifeboat-config 1\ntarget=nfs\ntarget.server=10.0.2.2\ntarget.export=/e\n",
                2,
                "an nfs target needs the network",
            ),
            (
                "lifeboat-config 1\nnetwork.name=h\ntarget=nfs\ntarget.server=10.0.2.2\n\
                 target.export=/e\ntarget.mount_port=635\n",
                3,
                "for NFS version 3, not 4.2",
            ),
            (
                "lifeboat-config 1\nnetwork.name=h\ntarget=nfs\ntarget.server=10.0.2.2\n\
                 target.export=/e\ntarget.version=4\n",
                6,
                "not an NFS version",
            ),
            (
                "lifeboat-config 1\ntarget=nfs\ntarget.server=0.0.0.0\n",
                3,
                "unspecified",
            ),
            (
                "lifeboat-config 1\ntarget=nfs\ntarget.server=nfs.example\n",
                3,
                "not an IPv4 address",
            ),
            (
                "lifeboat-config 1\ntarget=nfs\ntarget.port=0\n",
                3,
                "not a port",
            ),
            (
                "lifeboat-config 1\ntarget=nfs\ntarget.export=export\n",
                3,
                "absolute",
            ),
            (
                "lifeboat-config 1\nnetwork.name=h\ntarget=ssh\ntarget.server=10.0.2.2\n\
                 target.identity=/etc/lifeboat/ssh/identity0\n",
                3,
                "no target.host_key",
            ),
            (
                "lifeboat-config 1\nnetwork.name=h\ntarget=ssh\ntarget.server=10.0.2.2\n\
                 target.host_key=ssh-ed25519 AAAA\n",
                3,
                "no target.identity",
            ),
            (
                "lifeboat-config 1\ntarget=ssh\ntarget.host_key=ssh-ed25519\n",
                3,
                "not a host key",
            ),
            (
                "lifeboat-config 1\ntarget=ssh\ntarget.user=-x\n",
                3,
                "not a user name",
            ),
            (
                "lifeboat-config 1\ntarget=ssh\ntarget.export=/e\n",
                3,
                "unknown key `target.export` for an ssh target",
            ),
            (
                "lifeboat-config 1\nnetwork.interface=auto\ntarget=disk\ntarget.device=/dev/vda\n",
                2,
                "no network.name",
            ),
            (
                "lifeboat-config 1\nnetwork.gateway=10.0.0.1\n",
                2,
                "only with a static address",
            ),
            (
                "lifeboat-config 1\nnetwork.address=10.0.0.5/24\nnetwork.gateway=10.0.1.1\n",
                3,
                "outside 10.0.0.0/24",
            ),
            (
                "lifeboat-config 1\nnetwork.interface=eth0:1\n",
                2,
                "not an interface name",
            ),
            (
                "lifeboat-config 1\nnetwork.name=.hidden\n",
                2,
                "cannot name a dump directory",
            ),
            ("lifeboat-config 1\nnetwork.mtu=9000\n", 2, "network.mtu"),
        ];
        for (text, line, needle) in cases {
            let error = Config::decode(text).expect_err(text);
            assert_eq!(error.line, *line, "{text:?}: {error}");
            assert!(error.message.contains(needle), "{text:?}: {error}");
        }
    }

    #[test]
    fn device_specs_parse() {
        let cases: &[(&str, Result<DeviceSpec, &str>)] = &[
            ("UUID=ABCD-1234", Ok(DeviceSpec::Uuid("abcd-1234".into()))),
            ("LABEL=My Disk", Ok(DeviceSpec::Label("My Disk".into()))),
            (
                "PARTUUID=5E0A7C2B-01",
                Ok(DeviceSpec::PartUuid("5e0a7c2b-01".into())),
            ),
            ("/dev/vdb1", Ok(DeviceSpec::Path("/dev/vdb1".into()))),
            ("vdb1", Err("is not a device")),
            ("/dev/", Err("is not a device")),
            ("UUID=", Err("names no UUID")),
            ("UUID=xyz", Err("is not a UUID")),
            ("SERIAL=1", Err("unknown device kind")),
        ];
        for (text, expected) in cases {
            match (DeviceSpec::parse(text), expected) {
                (Ok(got), Ok(want)) => assert_eq!(&got, want, "{text}"),
                (Err(got), Err(needle)) => assert!(got.contains(needle), "{text}: {got}"),
                (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn names_and_host_keys_are_checked() {
        // (check, text, whether it passes)
        type Check = fn(&str) -> Result<(), String>;
        let cases: &[(Check, &str, bool)] = &[
            (check_dump_name, "web-17", true),
            (check_dump_name, "web-17.example.com", true),
            (check_dump_name, "a_b", true),
            (check_dump_name, "", false),
            (check_dump_name, ".hidden", false),
            (check_dump_name, "a/b", false),
            (check_dump_name, "a b", false),
            (check_dump_name, "..", false),
            (check_dump_name, &"x".repeat(65), false),
            (check_user_name, "root", true),
            (check_user_name, "dump.er_1-x", true),
            (check_user_name, "", false),
            (check_user_name, "-oProxyCommand", false),
            (check_user_name, "a@b", false),
            (check_user_name, &"u".repeat(33), false),
            (check_host_key, "ssh-ed25519 AAAAC3Nza+/=", true),
            (check_host_key, "sk-ssh-ed25519@openssh.com AAAA", true),
            (check_host_key, "ssh-ed25519", false),
            (check_host_key, "ssh-ed25519 ", false),
            (check_host_key, " AAAA", false),
            (check_host_key, "ssh-ed25519 AAAA comment", false),
            (check_host_key, "ssh-ed25519 AA\nAA", false),
        ];
        for (check, text, passes) in cases {
            assert_eq!(check(text).is_ok(), *passes, "{text:?}: {:?}", check(text));
        }
    }

    #[test]
    fn cmdline_overrides_apply_and_report_bad_words() {
        let mut config = sample();
        let problems = config.apply_cmdline(
            "console=ttyS0 lifeboat.log_level=trace lifeboat.final_action=halt \
             lifeboat.target=LABEL=FIELD lifeboat.compression_level=99 lifeboat.bogus \
             lifeboat.module=nfs lifeboat.deadline.total=30 lifeboat.measure_read_rate=0 \
             lifeboat.measure_read_rate=maybe lifeboat.deadline.link=3 \
             lifeboat.deadline.address=4 lifeboat.deadline.connect=5 lifeboat.deadline.stall=6 \
             lifeboat.dump_level=8 lifeboat.dump_level=32 lifeboat.dump_level=x",
        );
        assert_eq!(config.dump_level, 8);
        assert_eq!(
            (
                config.deadlines.link_secs,
                config.deadlines.address_secs,
                config.deadlines.connect_secs,
                config.deadlines.stall_secs
            ),
            (3, 4, 5, 6)
        );
        assert!(!config.measure_read_rate);
        assert_eq!(config.log_level, LogLevel::Trace);
        assert_eq!(config.final_action, FinalAction::Halt);
        assert_eq!(config.compression_level, 3);
        assert_eq!(config.deadlines.total_secs, 30);
        assert_eq!(config.targets.len(), 1);
        assert_eq!(config.targets[0].to_string(), "disk LABEL=FIELD:/var/crash");
        assert_eq!(problems.len(), 6, "{problems:?}");
        assert!(problems[0].contains("compression_level=99"));
        assert!(problems[1].contains("lifeboat.bogus"));
        assert!(problems[2].contains("when the image is built"));
        assert!(problems[3].contains("measure_read_rate `maybe`: expected 1 or 0"));
        assert!(problems[4].contains("dump level 32 is out of range"));
        assert!(problems[5].contains("dump_level `x` is not a number"));
    }
}

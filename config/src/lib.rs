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
#[cfg(feature = "toml")]
pub mod user;

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

    /// Whether the target is reached over the network (and so needs
    /// `[network]`).
    pub fn is_network(&self) -> bool {
        !matches!(self, Self::Disk(_))
    }
}

/// Which network interface carries the network targets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InterfaceSpec {
    /// The first interface with carrier.
    Auto,
    /// An interface by its kernel name (`eth0`): without udev, the capture
    /// kernel names interfaces in probe order, not predictably.
    Name(String),
    /// The interface with this MAC address.
    Mac([u8; 6]),
}

/// How the interface gets its IPv4 address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddressSpec {
    Dhcp,
    Static {
        address: Ipv4Addr,
        prefix_len: u8,
        gateway: Option<Ipv4Addr>,
    },
}

/// How PID 1 brings up the network for network targets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Network {
    pub interface: InterfaceSpec,
    pub address: AddressSpec,
    /// Names the dump directory on shared targets (`<name>-<stamp>`).
    pub name: String,
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
    single_line(dir)?;
    if !dir.starts_with('/') {
        return Err(format!("`{dir}` is not an absolute path"));
    }
    if dir.split('/').any(|part| part == "..") {
        return Err(format!("`{dir}` must not contain `..`"));
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
        line("compression_threads", &self.compression_threads);
        line("measure_read_rate", &self.measure_read_rate);
        line("deadline.device_wait", &self.deadlines.device_wait_secs);
        line("deadline.total", &self.deadlines.total_secs);
        for module in &self.modules {
            line("module", module);
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
                // Filled in with the network keys of the baked form.
                TargetKind::Nfs(_) | TargetKind::Ssh(_) => {}
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
            "compression_threads" => self.compression_threads = parse_threads(value)?,
            "measure_read_rate" => self.measure_read_rate = parse_switch(key, value)?,
            "deadline.device_wait" => self.deadlines.device_wait_secs = parse_secs(value)?,
            "deadline.total" => self.deadlines.total_secs = parse_secs(value)?,
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
    /// Keys: `log_level`, `final_action`, `compression_level`,
    /// `compression_threads`, `measure_read_rate` (`1` or `0`),
    /// `deadline.device_wait`, `deadline.total`, and `target`, whose value is
    /// a device (`UUID=…`, `LABEL=…`, `PARTUUID=…`, `/dev/…`) that replaces the
    /// target list with one disk target in the first target's directory.
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

fn new_target(kind: &str, directory: &str) -> Result<Target, String> {
    match kind {
        "disk" => Ok(Target {
            kind: TargetKind::Disk(DiskTarget {
                device: DeviceSpec::Path(String::new()),
                fstype: None,
                mount_options: String::new(),
            }),
            directory: directory.to_owned(),
        }),
        _ => Err(format!("unknown target kind `{kind}`")),
    }
}

fn apply_target_key(target: &mut Target, key: &str, value: &str) -> Result<(), String> {
    match (key, &mut target.kind) {
        ("target.directory", _) => {
            check_directory(value)?;
            target.directory = value.to_owned();
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
        _ => return Err(format!("unknown key `{key}`")),
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
            compression_threads: 2,
            modules: vec!["virtio_blk".into(), "xfs".into()],
            measure_read_rate: true,
            deadlines: Deadlines {
                device_wait_secs: 10,
                total_secs: 600,
                ..Deadlines::DEFAULT
            },
            network: None,
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
            ],
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
    fn cmdline_overrides_apply_and_report_bad_words() {
        let mut config = sample();
        let problems = config.apply_cmdline(
            "console=ttyS0 lifeboat.log_level=trace lifeboat.final_action=halt \
             lifeboat.target=LABEL=FIELD lifeboat.compression_level=99 lifeboat.bogus \
             lifeboat.module=nfs lifeboat.deadline.total=30 lifeboat.measure_read_rate=0 \
             lifeboat.measure_read_rate=maybe",
        );
        assert!(!config.measure_read_rate);
        assert_eq!(config.log_level, LogLevel::Trace);
        assert_eq!(config.final_action, FinalAction::Halt);
        assert_eq!(config.compression_level, 3);
        assert_eq!(config.deadlines.total_secs, 30);
        assert_eq!(config.targets.len(), 1);
        assert_eq!(config.targets[0].to_string(), "disk LABEL=FIELD:/var/crash");
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[0].contains("compression_level=99"));
        assert!(problems[1].contains("lifeboat.bogus"));
        assert!(problems[2].contains("when the image is built"));
        assert!(problems[3].contains("measure_read_rate `maybe`: expected 1 or 0"));
    }
}

//! The TOML checks: every key's type, value and place, and what each
//! error says and where.

use super::*;
use crate::{NfsVersion, TargetKind};
use std::net::Ipv4Addr;

const GOOD: &str = r#"
log_level = "debug"
final_action = "poweroff"
compression_level = -3
compression_threads = 2
modules = ["virtio_blk", "xfs"]

[deadlines]
device_wait = 10
total = 600

[[target]]
type = "disk"
device = "UUID=0BD3A2C6-8D7E-4F1C-9A55-2C1F3C0E9A11"
fstype = "ext4"

[[target]]
type = "disk"
device = "LABEL=SPARE"
directory = "/dumps"
"#;

#[test]
fn a_full_config_parses() {
    let config = parse("lifeboat.toml", GOOD).unwrap();
    assert_eq!(config.log_level, LogLevel::Debug);
    assert_eq!(config.final_action, FinalAction::Poweroff);
    assert_eq!(config.compression_level, -3);
    assert_eq!(config.compression_threads, 2);
    assert_eq!(config.modules, ["virtio_blk", "xfs"]);
    assert_eq!(config.deadlines.device_wait_secs, 10);
    assert_eq!(config.deadlines.total_secs, 600);
    assert_eq!(
        config.targets[0].to_string(),
        "disk UUID=0bd3a2c6-8d7e-4f1c-9a55-2c1f3c0e9a11:/var/crash"
    );
    assert_eq!(config.targets[1].to_string(), "disk LABEL=SPARE:/dumps");
    assert_eq!(Config::decode(&config.encode()), Ok(config));
}

#[test]
fn errors_name_line_column_and_key() {
    let target = "[[target]]\ntype = \"disk\"\ndevice = \"LABEL=X\"\n";
    let cases: Vec<(String, usize, &str, &str)> = vec![
        (
            "log_level = \"loud\"\n".to_owned() + target,
            1,
            "log_level",
            "not a log level",
        ),
        (
            format!("{target}fstype = \"ext 4\"\n"),
            4,
            "target[0].fstype",
            "not a filesystem",
        ),
        (
            format!("{target}directory = \"crash\"\n"),
            4,
            "target[0].directory",
            "absolute",
        ),
        (
            "[[target]]\ntype = \"disk\"\ndevice = \"sdb\"\n".to_owned(),
            3,
            "target[0].device",
            "not a device",
        ),
        (
            "[[target]]\ntype = \"tape\"\n".to_owned(),
            2,
            "target[0].type",
            "unknown target type",
        ),
        (
            "[[target]]\ntype = \"disk\"\n".to_owned(),
            1,
            "target[0].device",
            "needs a device",
        ),
        (
            format!("compression_level = 42\n{target}"),
            1,
            "compression_level",
            "out of range",
        ),
        (
            format!("compression_level = 0\n{target}"),
            1,
            "compression_level",
            "out of range",
        ),
        (
            format!("dump_level = 32\n{target}"),
            1,
            "dump_level",
            "out of range",
        ),
        (
            format!("dump_level = -1\n{target}"),
            1,
            "dump_level",
            "out of range",
        ),
        (
            format!("compression_threads = -1\n{target}"),
            1,
            "compression_threads",
            "out of range",
        ),
        (
            format!("modules = [\"a b\"]\n{target}"),
            1,
            "modules[0]",
            "not a module name",
        ),
        (
            format!("colour = \"red\"\n{target}"),
            1,
            "colour",
            "unknown field",
        ),
        (
            format!("\n[deadlines]\ntotal = 0\n{target}"),
            3,
            "deadlines.total",
            "positive",
        ),
        ("log_level = \n".to_owned(), 1, "", ""),
        (
            "log_level = \"info\"\n".to_owned(),
            1,
            "target",
            "no [[target]]",
        ),
    ];
    for (text, line, key, needle) in cases {
        let error = parse("x.toml", &text).expect_err(&text);
        assert_eq!(error.line, line, "{text}: {error}");
        assert_eq!(error.key, key, "{text}: {error}");
        assert!(error.message.contains(needle), "{text}: {error}");
        assert!(error.to_string().starts_with(&format!("x.toml:{line}:")));
    }
}

/// Where a case's text goes in [`document`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum At {
    Root,
    Deadlines,
    /// The `[network]` section, with a disk target only.
    Network,
    /// The second target, so that paths show the index is counted.
    Target,
    /// The second target, an nfs one, with `[network]`.
    Nfs,
    /// The second target, an ssh one, with `[network]`.
    Ssh,
}

const EVERY_AT: [At; 6] = [
    At::Root,
    At::Deadlines,
    At::Network,
    At::Target,
    At::Nfs,
    At::Ssh,
];

/// A valid config with `text` added at `at`. Sections and target keys
/// that `text` writes itself are left out, so that no key is given twice.
fn document(at: At, text: &str) -> String {
    let (root, deadlines, network, target) = match at {
        At::Root => (text, "", "", ""),
        At::Deadlines => ("", text, "", ""),
        At::Network => ("", "", text, ""),
        At::Target | At::Nfs | At::Ssh => ("", "", "", text),
    };
    // Whether `text` writes `key`, as a key or in a table header.
    let writes = |text: &str, key: &str| {
        text.lines()
            .any(|line| line.trim_start_matches('[').starts_with(key))
    };
    let mut doc = format!("{root}\n");
    if !writes(root, "deadlines") {
        doc.push_str(&format!("[deadlines]\n{deadlines}\n"));
    }
    if matches!(at, At::Network | At::Nfs | At::Ssh) && !writes(root, "network") {
        doc.push_str(&format!("[network]\n{network}\n"));
    }
    if !writes(root, "target") {
        doc.push_str("[[target]]\ntype = \"disk\"\ndevice = \"LABEL=A\"\n\n[[target]]\n");
        let defaults: &[(&str, &str)] = match at {
            At::Nfs => &[
                ("type", "\"nfs\""),
                ("server", "\"10.0.2.2\""),
                ("export", "\"/export\""),
            ],
            At::Ssh => &[
                ("type", "\"ssh\""),
                ("server", "\"10.0.2.2\""),
                ("identity", "\"/keys/id\""),
                ("known_hosts", "\"/keys/known_hosts\""),
            ],
            _ => &[("type", "\"disk\""), ("device", "\"LABEL=B\"")],
        };
        for (key, value) in defaults {
            if !writes(target, key) && !writes(target, &format!("target.{key}")) {
                doc.push_str(&format!("{key} = {value}\n"));
            }
        }
        doc.push_str(&format!("{target}\n"));
    }
    doc
}

/// The machine the tests build on: a few names, files and a host name.
struct FakeHost;

/// Files of [`FakeHost`].
const IDENTITY: &str = "/keys/id";
const KNOWN_HOSTS: &str = "/keys/known_hosts";

/// The host key of each server of [`FakeHost`]'s known_hosts.
fn host_key(fill: u8) -> String {
    format!(
        "ssh-ed25519 {}",
        crate::user::openssh::tests::key("ssh-ed25519", fill)
    )
}

impl BuildHost for FakeHost {
    fn resolve(&self, name: &str) -> Result<Vec<Ipv4Addr>, String> {
        let ip = |text: &str| text.parse::<Ipv4Addr>().unwrap();
        match name {
            "nfs.example" => Ok(vec![ip("192.0.2.7")]),
            "multi.example" => Ok(vec![ip("192.0.2.7"), ip("192.0.2.8"), ip("192.0.2.9")]),
            "v6only.example" => Ok(vec![]),
            "web-17" => Ok(vec![ip("127.0.1.1")]),
            _ => Err("Name or service not known".to_owned()),
        }
    }

    fn read(&self, path: &str) -> Result<Vec<u8>, String> {
        use crate::user::openssh::tests::openssh;
        match path {
            IDENTITY | "/etc/lifeboat/id_ed25519" => {
                Ok(openssh("none", 1, "ssh-ed25519", usize::MAX))
            }
            "/keys/id_encrypted" => Ok(openssh("aes256-ctr", 1, "ssh-ed25519", usize::MAX)),
            "/keys/id.pub" => Ok(format!("{} me@web-17\n", host_key(9)).into_bytes()),
            KNOWN_HOSTS | "/etc/lifeboat/known_hosts" => Ok(format!(
                "10.0.2.2 {}\nnfs.example {}\n[10.0.2.2]:2222 {}\n",
                host_key(0),
                host_key(1),
                host_key(2)
            )
            .into_bytes()),
            "/keys/empty" => Ok(Vec::new()),
            _ => Err("No such file or directory (os error 2)".to_owned()),
        }
    }

    fn hostname(&self) -> String {
        "web 17".to_owned()
    }
}

fn parse_fake(text: &str) -> Result<Parsed, ConfigError> {
    parse_with("x.toml", text, &FakeHost)
}

/// Checks that `text` at `at` fails at `key`, on the line `line` lines
/// into `text`, with a message containing `needle`.
fn assert_fails(at: At, text: &str, line: usize, key: &str, needle: &str) {
    let doc = document(at, text);
    let first = text.lines().next().unwrap();
    let start = doc.lines().position(|l| l == first).unwrap();
    let error = parse_fake(&doc).expect_err(&doc);
    let context = format!("{at:?} {text:?}: {error}");
    assert_eq!(error.key, key, "{context}");
    assert_eq!(error.line, start + 1 + line, "{context}");
    assert!(error.message.contains(needle), "{context}");
    assert!(!error.message.ends_with('.'), "{context}");
    let prefix = format!("x.toml:{}:{}: key `{key}`: ", error.line, error.column);
    assert!(error.to_string().starts_with(&prefix), "{context}");
}

#[test]
fn the_documents_of_the_cases_are_valid() {
    for at in EVERY_AT {
        let doc = document(at, "");
        let parsed = parse_fake(&doc).unwrap_or_else(|e| panic!("{at:?}: {e}\n{doc}"));
        // Only [network] alone says something: no target uses it.
        assert_eq!(
            parsed.warnings.len(),
            usize::from(at == At::Network),
            "{at:?}"
        );
    }
}

#[test]
fn every_key_with_a_wrong_type_is_named_with_what_was_expected() {
    use At::*;
    let log_level = "expected a log level (\"error\", \"warn\", \"info\", \"debug\" or \"trace\")";
    let final_action = "expected a final action (\"reboot\", \"poweroff\" or \"halt\")";
    let level = "expected an integer zstd level (-10..=-1 or 1..=19)";
    let threads = "expected an integer number of threads from 0 (one per CPU) to 256";
    let switch = "expected a boolean (true or false)";
    let modules = "expected an array of module names (strings)";
    let module = "expected a module name (a string)";
    let deadlines = "expected a table ([deadlines])";
    let seconds = "expected an integer number of seconds";
    let targets = "expected an array of tables (a [[target]] header per target)";
    let target = "expected a table of target settings";
    let kind = "expected a target type (\"disk\", \"nfs\" or \"ssh\")";
    let directory = "expected an absolute path (a string)";
    let device = "expected a device (a string: UUID=…, LABEL=…, PARTUUID=… or /dev/…)";
    let fstype = "expected a filesystem type (\"ext4\", \"xfs\", \"btrfs\", \"vfat\" or \"auto\")";
    let mount_options = "expected mount options (a string)";
    // (where, text, line of the error in the text, key, expected, found)
    let cases: &[(At, &str, usize, &str, &str, &str)] = &[
        (
            Root,
            "log_level = 1",
            0,
            "log_level",
            log_level,
            "an integer",
        ),
        (
            Root,
            "log_level = [\"info\"]",
            0,
            "log_level",
            log_level,
            "an array",
        ),
        (
            Root,
            "final_action = 1",
            0,
            "final_action",
            final_action,
            "an integer",
        ),
        (
            Root,
            "final_action = true",
            0,
            "final_action",
            final_action,
            "a boolean",
        ),
        (
            Root,
            "compression_level = \"3\"",
            0,
            "compression_level",
            level,
            "a string",
        ),
        (
            Root,
            "compression_level = 3.5",
            0,
            "compression_level",
            level,
            "a float",
        ),
        (
            Root,
            "compression_threads = \"two\"",
            0,
            "compression_threads",
            threads,
            "a string",
        ),
        (
            Root,
            "measure_read_rate = \"yes\"",
            0,
            "measure_read_rate",
            switch,
            "a string",
        ),
        (
            Root,
            "measure_read_rate = 1",
            0,
            "measure_read_rate",
            switch,
            "an integer",
        ),
        (
            Root,
            "compression_threads = {}",
            0,
            "compression_threads",
            threads,
            "an inline table",
        ),
        (
            Root,
            "modules = \"virtio_blk\"",
            0,
            "modules",
            modules,
            "a string",
        ),
        (
            Root,
            "modules = { virtio_blk = true }",
            0,
            "modules",
            modules,
            "an inline table",
        ),
        (
            Root,
            "modules = [\"virtio_blk\", 7]",
            0,
            "modules[1]",
            module,
            "an integer",
        ),
        (
            Root,
            "modules = [\n  \"virtio_blk\",\n  { name = \"xfs\" },\n]",
            2,
            "modules[1]",
            module,
            "an inline table",
        ),
        (
            Root,
            "[[modules]]\nname = \"xfs\"",
            0,
            "modules[0]",
            module,
            "a table",
        ),
        (
            Root,
            "deadlines = 30",
            0,
            "deadlines",
            deadlines,
            "an integer",
        ),
        (
            Root,
            "[[deadlines]]\ntotal = 30",
            0,
            "deadlines",
            deadlines,
            "an array of tables",
        ),
        (
            Root,
            "deadlines.total = \"1h\"",
            0,
            "deadlines.total",
            seconds,
            "a string",
        ),
        (
            Deadlines,
            "device_wait = \"30s\"",
            0,
            "deadlines.device_wait",
            seconds,
            "a string",
        ),
        (
            Deadlines,
            "device_wait = 1.5",
            0,
            "deadlines.device_wait",
            seconds,
            "a float",
        ),
        (
            Deadlines,
            "device_wait = false",
            0,
            "deadlines.device_wait",
            seconds,
            "a boolean",
        ),
        (
            Deadlines,
            "[deadlines.device_wait]",
            0,
            "deadlines.device_wait",
            seconds,
            "a table",
        ),
        (
            Deadlines,
            "total = 2024-01-01T00:00:00Z",
            0,
            "deadlines.total",
            seconds,
            "a date-time",
        ),
        (
            Deadlines,
            "total = [3600]",
            0,
            "deadlines.total",
            seconds,
            "an array",
        ),
        (
            Root,
            "target = \"LABEL=X\"",
            0,
            "target",
            targets,
            "a string",
        ),
        (
            Root,
            "[target]\ntype = \"disk\"\ndevice = \"LABEL=X\"",
            0,
            "target",
            targets,
            "a table",
        ),
        (
            Root,
            "target = { type = \"disk\", device = \"LABEL=X\" }",
            0,
            "target",
            targets,
            "an inline table",
        ),
        (
            Root,
            "target = [\"LABEL=X\"]",
            0,
            "target[0]",
            target,
            "a string",
        ),
        (Target, "type = 1", 0, "target[1].type", kind, "an integer"),
        (
            Target,
            "type = [\"disk\"]",
            0,
            "target[1].type",
            kind,
            "an array",
        ),
        (
            Target,
            "directory = 7",
            0,
            "target[1].directory",
            directory,
            "an integer",
        ),
        (
            Target,
            "directory = [\"/a\"]",
            0,
            "target[1].directory",
            directory,
            "an array",
        ),
        (
            Target,
            "device = 42",
            0,
            "target[1].device",
            device,
            "an integer",
        ),
        (
            Target,
            "device = [\"LABEL=A\"]",
            0,
            "target[1].device",
            device,
            "an array",
        ),
        (
            Target,
            "[target.device]\nuuid = \"0bd3a2c6\"",
            0,
            "target[1].device",
            device,
            "a table",
        ),
        (
            Target,
            "fstype = 4",
            0,
            "target[1].fstype",
            fstype,
            "an integer",
        ),
        (
            Target,
            "fstype = { name = \"xfs\" }",
            0,
            "target[1].fstype",
            fstype,
            "an inline table",
        ),
        (
            Target,
            "mount_options = [\"ro\"]",
            0,
            "target[1].mount_options",
            mount_options,
            "an array",
        ),
        (
            Target,
            "mount_options = false",
            0,
            "target[1].mount_options",
            mount_options,
            "a boolean",
        ),
    ];
    for (at, text, line, key, expected, found) in cases {
        let needle = format!("{expected}, found {found}");
        assert_fails(*at, text, *line, key, &needle);
    }
}

#[test]
fn unknown_keys_are_named_with_their_path_and_the_known_ones() {
    use At::*;
    let root = "expected one of `log_level`, `final_action`, `compression_level`, \
                `dump_level`, `compression_threads`, `measure_read_rate`, `modules`, `network`, `deadlines` \
                or `target`";
    let deadlines = "expected one of `device_wait`, `total`, `link`, `address`, `connect` or \
                     `stall`";
    let target = "expected one of `type`, `directory`, `device`, `fstype` or `mount_options`";
    // (where, text, line of the error in the text, key, its name, expected)
    let cases: &[(At, &str, usize, &str, &str, &str)] = &[
        (Root, "colour = \"red\"", 0, "colour", "colour", root),
        (
            Root,
            "\"log level\" = 1",
            0,
            "\"log level\"",
            "log level",
            root,
        ),
        (Root, "[extra]\nsize = 1", 0, "extra", "extra", root),
        (
            Deadlines,
            "wait = 3",
            0,
            "deadlines.wait",
            "wait",
            deadlines,
        ),
        (
            Target,
            "label = \"X\"",
            0,
            "target[1].label",
            "label",
            target,
        ),
        (
            Target,
            "[target.options]",
            0,
            "target[1].options",
            "options",
            target,
        ),
        (
            Root,
            "target = [\n  { type = \"disk\", device = \"LABEL=X\", size = 1 },\n]",
            1,
            "target[0].size",
            "size",
            target,
        ),
    ];
    for (at, text, line, key, name, expected) in cases {
        let needle = format!("unknown field `{name}`; {expected}");
        assert_fails(*at, text, *line, key, &needle);
    }
}

#[test]
fn fstypes_are_checked_when_the_config_is_parsed() {
    let supported = "expected \"ext4\", \"xfs\", \"btrfs\", \"vfat\" or \"auto\"";
    for (fstype, needle) in [
        ("ext5", supported),
        ("ntfs", supported),
        ("ext3", "mounted as ext4"),
        ("", supported),
    ] {
        let text = format!("fstype = \"{fstype}\"");
        assert_fails(At::Target, &text, 0, "target[1].fstype", needle);
    }
    for fstype in ["ext4", "xfs", "btrfs", "vfat", "auto"] {
        let text = document(At::Target, &format!("fstype = \"{fstype}\""));
        let config = parse("x.toml", &text).unwrap();
        let TargetKind::Disk(disk) = &config.targets[1].kind else {
            panic!("a disk target");
        };
        let want = (fstype != "auto").then_some(fstype);
        assert_eq!(disk.fstype.as_deref(), want);
    }
}

#[test]
fn errors_read_as_file_line_column_key_and_message() {
    let target = "[[target]]\ntype = \"disk\"\ndevice = \"LABEL=X\"\n";
    let cases = [
        (
            format!("final_action = 1\n{target}"),
            "x.toml:1:16: key `final_action`: expected a final action \
             (\"reboot\", \"poweroff\" or \"halt\"), found an integer",
        ),
        (
            format!("{target}directory = 7\n"),
            "x.toml:4:13: key `target[0].directory`: \
             expected an absolute path (a string), found an integer",
        ),
        (
            format!("[deadlines]\ndevice_wait = \"30s\"\n{target}"),
            "x.toml:2:15: key `deadlines.device_wait`: \
             expected an integer number of seconds, found a string",
        ),
        (
            format!("modules = \"virtio_blk\"\n{target}"),
            "x.toml:1:11: key `modules`: \
             expected an array of module names (strings), found a string",
        ),
        (
            format!("compression_threads = \"two\"\n{target}"),
            "x.toml:1:23: key `compression_threads`: expected an integer number of \
             threads from 0 (one per CPU) to 256, found a string",
        ),
        (
            "[target]\ntype = \"disk\"\ndevice = \"LABEL=X\"\n".to_owned(),
            "x.toml:1:1: key `target`: expected an array of tables \
             (a [[target]] header per target), found a table",
        ),
        (
            format!("{target}fstype = \"ext5\"\n"),
            "x.toml:4:10: key `target[0].fstype`: `ext5` is not a filesystem type \
             lifeboat supports; expected \"ext4\", \"xfs\", \"btrfs\", \"vfat\" or \"auto\"",
        ),
        (
            "log_level = \n".to_owned(),
            "x.toml:1:13: invalid string; expected `\"`, `'`",
        ),
    ];
    for (text, want) in cases {
        let error = parse("x.toml", &text).expect_err(&text);
        assert_eq!(error.to_string(), want, "{text}");
    }
}

const NETWORKED: &str = r#"
[network]
interface = "mac:52:54:00:12:34:56"
address = "192.0.2.10/24"
gateway = "192.0.2.1"

[deadlines]
link = 5
address = 6
connect = 7
stall = 8

[[target]]
type = "nfs"
server = "nfs.example"
export = "/export"
version = "3"
port = 2049
mount_port = 20048
mount_options = "nconnect=2"
directory = "/crash"

[[target]]
type = "ssh"
server = "10.0.2.2"
port = 2222
user = "dumps"
identity = "/keys/id"
known_hosts = "/keys/known_hosts"

[[target]]
type = "nfs"
server = "10.0.2.2"
export = "/"
"#;

#[test]
fn network_targets_parse() {
    let parsed = parse_fake(NETWORKED).unwrap();
    let config = &parsed.config;
    let network = config.network.as_ref().unwrap();
    assert_eq!(
        network.interface,
        InterfaceSpec::Mac([0x52, 0x54, 0, 0x12, 0x34, 0x56])
    );
    assert_eq!(
        network.address,
        AddressSpec::Static {
            address: Ipv4Addr::new(192, 0, 2, 10),
            prefix_len: 24,
            gateway: Some(Ipv4Addr::new(192, 0, 2, 1)),
        }
    );
    // The fake machine's host name, `web 17`, made into a name.
    assert_eq!(network.name, "web-17");
    let deadlines = config.deadlines;
    assert_eq!(
        (
            deadlines.link_secs,
            deadlines.address_secs,
            deadlines.connect_secs,
            deadlines.stall_secs
        ),
        (5, 6, 7, 8)
    );
    let TargetKind::Nfs(nfs) = &config.targets[0].kind else {
        panic!("an nfs target");
    };
    assert_eq!(nfs.server, Ipv4Addr::new(192, 0, 2, 7));
    assert_eq!(nfs.export, "/export");
    assert_eq!(nfs.version, NfsVersion::V3);
    assert_eq!((nfs.port, nfs.mount_port), (Some(2049), Some(20048)));
    assert_eq!(nfs.mount_options, "nconnect=2");
    assert_eq!(config.targets[0].directory, "/crash");
    let TargetKind::Ssh(ssh) = &config.targets[1].kind else {
        panic!("an ssh target");
    };
    assert_eq!(ssh.server, Ipv4Addr::new(10, 0, 2, 2));
    assert_eq!((ssh.port, ssh.user.as_str()), (2222, "dumps"));
    assert_eq!(ssh.identity, IDENTITY);
    // Only the key known for [10.0.2.2]:2222.
    assert_eq!(ssh.host_keys, [host_key(2)]);
    assert_eq!(config.targets[1].directory, "/var/crash");
    let TargetKind::Nfs(plain) = &config.targets[2].kind else {
        panic!("an nfs target");
    };
    assert_eq!(plain.version, NfsVersion::V4_2);
    assert_eq!((plain.port, plain.mount_port), (None, None));
    assert_eq!(
        config.targets[2].to_string(),
        "nfs 10.0.2.2:/ (v4.2):/var/crash"
    );

    assert_eq!(parsed.identities.len(), 1);
    assert_eq!(parsed.identities[0].target, 1);
    assert_eq!(parsed.identities[0].key, FakeHost.read(IDENTITY).unwrap());
    let debug = format!("{:?}", parsed.identities[0]);
    assert!(debug.starts_with("Identity { target: 1, key: <"), "{debug}");

    assert_eq!(
        parsed.warnings,
        [
            "x.toml:15:10: key `target[0].server`: `nfs.example` resolved to 192.0.2.7 at image \
          build; the capture uses that address"
        ]
    );
    assert_eq!(Config::decode(&config.encode()).as_ref(), Ok(config));
}

#[test]
fn network_defaults_and_warnings() {
    let ssh = "[[target]]\ntype = \"ssh\"\nidentity = \"/keys/id\"\n\
               known_hosts = \"/keys/known_hosts\"\n";
    // (document, interface, address, name, warnings that contain these)
    type Case<'a> = (String, InterfaceSpec, AddressSpec, &'a str, &'a [&'a str]);
    let cases: Vec<Case> = vec![
        (
            format!("[network]\n{ssh}server = \"10.0.2.2\"\n"),
            InterfaceSpec::Auto,
            AddressSpec::Dhcp,
            "web-17",
            &[],
        ),
        (
            format!(
                "[network]\ninterface = \"eth1\"\nname = \"db.7\"\n{ssh}server = \"10.0.2.2\"\n"
            ),
            InterfaceSpec::Name("eth1".into()),
            AddressSpec::Dhcp,
            "db.7",
            &[],
        ),
        // A name known to known_hosts by its name, and resolved to one of
        // several addresses.
        (
            format!("[network]\n{ssh}server = \"nfs.example\"\n"),
            InterfaceSpec::Auto,
            AddressSpec::Dhcp,
            "web-17",
            &["x.toml:6:10: key `target[0].server`: `nfs.example` resolved to 192.0.2.7"],
        ),
        (
            "[network]\n[[target]]\ntype = \"nfs\"\nserver = \"multi.example\"\nexport = \"/e\"\n"
                .to_owned(),
            InterfaceSpec::Auto,
            AddressSpec::Dhcp,
            "web-17",
            &[
                "resolved to 192.0.2.7 at image build; the capture uses that address \
               (and not 192.0.2.8 or 192.0.2.9)",
            ],
        ),
        // A server on the subnet needs no gateway.
        (
            format!("[network]\naddress = \"10.0.2.15/24\"\n{ssh}server = \"10.0.2.2\"\n"),
            InterfaceSpec::Auto,
            AddressSpec::Static {
                address: Ipv4Addr::new(10, 0, 2, 15),
                prefix_len: 24,
                gateway: None,
            },
            "web-17",
            &[],
        ),
    ];
    for (text, interface, address, name, warnings) in cases {
        let parsed = parse_fake(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let network = parsed.config.network.unwrap();
        assert_eq!(network.interface, interface, "{text}");
        assert_eq!(network.address, address, "{text}");
        assert_eq!(network.name, name, "{text}");
        assert_eq!(
            parsed.warnings.len(),
            warnings.len(),
            "{text}: {:?}",
            parsed.warnings
        );
        for (got, want) in parsed.warnings.iter().zip(warnings) {
            assert!(got.contains(want), "{text}: {got}");
        }
    }
    // [network] with no target to use it is dropped, and said so.
    let text = "[network]\naddress = \"dhcp\"\n[[target]]\ntype = \"disk\"\ndevice = \"LABEL=A\"\n";
    let parsed = parse_fake(text).unwrap();
    assert_eq!(parsed.config.network, None);
    assert_eq!(
        parsed.warnings,
        ["x.toml:1:1: key `network`: no target is nfs or ssh, so the capture ignores [network]"]
    );
}

#[test]
fn every_network_key_is_checked() {
    use At::*;
    // (where, text, line of the error in the text, key, what the message says)
    let cases: &[(At, &str, usize, &str, &str)] = &[
        (
            Root,
            "network = \"dhcp\"",
            0,
            "network",
            "expected a table ([network]), found a string",
        ),
        (
            Network,
            "interface = 1",
            0,
            "network.interface",
            "expected an interface (\"auto\", a name such as \"eth0\", or \
             \"mac:52:54:00:12:34:56\"), found an integer",
        ),
        (
            Network,
            "interface = \"eth0:1\"",
            0,
            "network.interface",
            "not an interface name",
        ),
        (
            Network,
            "interface = \"\"",
            0,
            "network.interface",
            "not an interface name",
        ),
        (
            Network,
            "interface = \"mac:52:54:00\"",
            0,
            "network.interface",
            "not a MAC address",
        ),
        (
            Network,
            "address = \"192.0.2.10\"",
            0,
            "network.address",
            "has no prefix length",
        ),
        (
            Network,
            "address = \"192.0.2.10/33\"",
            0,
            "network.address",
            "not a prefix length",
        ),
        (
            Network,
            "address = \"192.0.2.0/24\"",
            0,
            "network.address",
            "network address",
        ),
        (
            Network,
            "address = \"192.0.2.255/24\"",
            0,
            "network.address",
            "broadcast address",
        ),
        (
            Network,
            "address = \"static\"",
            0,
            "network.address",
            "expected \"dhcp\"",
        ),
        (
            Network,
            "address = [\"dhcp\"]",
            0,
            "network.address",
            "expected an address",
        ),
        (
            Network,
            "gateway = \"192.0.2.1\"",
            0,
            "network.gateway",
            "a gateway goes only with a static address: DHCP brings its own",
        ),
        (
            Network,
            "address = \"192.0.2.10/24\"\ngateway = \"192.0.3.1\"",
            1,
            "network.gateway",
            "gateway 192.0.3.1 is outside 192.0.2.0/24, the subnet of 192.0.2.10",
        ),
        (
            Network,
            "address = \"192.0.2.10/24\"\ngateway = \"router\"",
            1,
            "network.gateway",
            "`router` is not an IPv4 address",
        ),
        (
            Network,
            "name = \".hidden\"",
            0,
            "network.name",
            "cannot name a dump directory",
        ),
        (
            Network,
            "name = \"a/b\"",
            0,
            "network.name",
            "cannot name a dump directory",
        ),
        (
            Network,
            "name = \"\"",
            0,
            "network.name",
            "cannot name a dump directory",
        ),
        (
            Network,
            "name = 17",
            0,
            "network.name",
            "expected a name for the dumps (a string)",
        ),
        (
            Network,
            "mtu = 9000",
            0,
            "network.mtu",
            "unknown field `mtu`; expected one of `interface`, `address`, `gateway` or `name`",
        ),
        (
            Deadlines,
            "link = 0",
            0,
            "deadlines.link",
            "not a positive number",
        ),
        (
            Deadlines,
            "address = -1",
            0,
            "deadlines.address",
            "not a positive number",
        ),
        (
            Deadlines,
            "connect = \"15s\"",
            0,
            "deadlines.connect",
            "expected an integer",
        ),
        (
            Deadlines,
            "stall = 1.5",
            0,
            "deadlines.stall",
            "expected an integer",
        ),
    ];
    for (at, text, line, key, needle) in cases {
        assert_fails(*at, text, *line, key, needle);
    }
}

#[test]
fn every_network_target_key_is_checked() {
    use At::*;
    let server = "expected a server (an IPv4 address or a host name, a string)";
    let port = "expected a port (an integer from 1 to 65535)";
    // (where, text, line of the error in the text, key, what the message says)
    let cases: &[(At, &str, usize, &str, &str)] = &[
        // Keys of other kinds.
        (
            Target,
            "export = \"/e\"",
            0,
            "target[1].export",
            "`export` is not a key of disk targets (it is one of nfs targets); expected one of \
             `type`, `directory`, `device`, `fstype` or `mount_options`",
        ),
        (
            Target,
            "port = 22",
            0,
            "target[1].port",
            "`port` is not a key of disk targets (it is one of nfs or ssh targets)",
        ),
        (
            Target,
            "identity = \"/keys/id\"",
            0,
            "target[1].identity",
            "`identity` is not a key of disk targets (it is one of ssh targets)",
        ),
        (
            Nfs,
            "device = \"LABEL=X\"",
            0,
            "target[1].device",
            "`device` is not a key of nfs targets (it is one of disk targets); expected one of \
             `type`, `directory`, `server`, `export`, `version`, `port`, `mount_port` or \
             `mount_options`",
        ),
        (
            Nfs,
            "user = \"root\"",
            0,
            "target[1].user",
            "`user` is not a key of nfs targets (it is one of ssh targets)",
        ),
        (
            Ssh,
            "mount_options = \"\"",
            0,
            "target[1].mount_options",
            "`mount_options` is not a key of ssh targets (it is one of disk or nfs targets); \
             expected one of `type`, `directory`, `server`, `port`, `user`, `identity` or \
             `known_hosts`",
        ),
        (Ssh, "colour = 1", 0, "target[1].colour", "unknown field `colour`; expected one of"),
        (Nfs, "type = \"tape\"", 0, "target[1].type", "unknown target type `tape`; expected \"disk\", \"nfs\" or \"ssh\""),
        // Servers.
        (Nfs, "server = 10", 0, "target[1].server", server),
        (Ssh, "server = [\"10.0.2.2\"]", 0, "target[1].server", server),
        (Nfs, "server = \"0.0.0.0\"", 0, "target[1].server", "the unspecified address"),
        (Nfs, "server = \"127.0.0.1\"", 0, "target[1].server", "a loopback address"),
        (Nfs, "server = \"224.0.0.1\"", 0, "target[1].server", "a multicast address"),
        (Nfs, "server = \"::1\"", 0, "target[1].server", "`::1` is an IPv6 address; network targets are IPv4 only"),
        (Nfs, "server = \"nfs server\"", 0, "target[1].server", "neither an IPv4 address nor a host name"),
        (Nfs, "server = \"10.0.2\"", 0, "target[1].server", "neither an IPv4 address nor a host name"),
        (
            Nfs,
            "server = \"nowhere.example\"",
            0,
            "target[1].server",
            "cannot resolve `nowhere.example` on this machine (Name or service not known); the \
             capture does no DNS, so a server's name must resolve when the image is built",
        ),
        (Ssh, "server = \"v6only.example\"", 0, "target[1].server", "`v6only.example` has no IPv4 address on this machine"),
        (
            Ssh,
            "server = \"web-17\"",
            0,
            "target[1].server",
            "`web-17` resolves to 127.0.1.1 on this machine, which cannot be a server: \
             127.0.1.1 is a loopback address",
        ),
        // nfs.
        (Nfs, "export = \"export\"", 0, "target[1].export", "`export` is not an absolute path"),
        (Nfs, "export = \"/a/../b\"", 0, "target[1].export", "must not contain `..`"),
        (Nfs, "export = 2", 0, "target[1].export", "expected an absolute path (a string)"),
        (Nfs, "version = \"4\"", 0, "target[1].version", "`4` is not an NFS version lifeboat mounts; expected one of \"3\", \"4.0\", \"4.1\" or \"4.2\""),
        (
            Nfs,
            "version = 4.2",
            0,
            "target[1].version",
            "expected an NFS version as a string (\"3\", \"4.0\", \"4.1\" or \"4.2\"), found a \
             float: write it as a string: version = \"4.2\"",
        ),
        (Nfs, "version = 4.0", 0, "target[1].version", "write it as a string: version = \"4.0\""),
        (Nfs, "version = 3", 0, "target[1].version", "found an integer: write it as a string: version = \"3\""),
        (Nfs, "version = 4", 0, "target[1].version", "write it as a string, one of \"3\", \"4.0\""),
        (Nfs, "version = true", 0, "target[1].version", "expected an NFS version (\"3\""),
        (Nfs, "port = 0", 0, "target[1].port", "0 is not a port; expected 1 to 65535"),
        (Nfs, "port = 65536", 0, "target[1].port", "65536 is not a port"),
        (Nfs, "port = \"2049\"", 0, "target[1].port", port),
        (
            Nfs,
            "mount_port = 635",
            0,
            "target[1].mount_port",
            "mount_port is only for version = \"3\", and this target's is \"4.2\": NFSv4 has no \
             MOUNT protocol",
        ),
        (Nfs, "version = \"3\"\nmount_port = -1", 1, "target[1].mount_port", "-1 is not a port"),
        (Nfs, "mount_options = \"a\\nb\"", 0, "target[1].mount_options", "line breaks"),
        (Nfs, "directory = \"crash\"", 0, "target[1].directory", "not an absolute path"),
        // ssh.
        (Ssh, "port = 0", 0, "target[1].port", "not a port"),
        (Ssh, "port = 2.5", 0, "target[1].port", port),
        (Ssh, "user = \"-oProxyCommand=x\"", 0, "target[1].user", "not a user name"),
        (Ssh, "user = 0", 0, "target[1].user", "expected a user name (a string)"),
        (Ssh, "identity = \"id\"", 0, "target[1].identity", "`id` is not an absolute path"),
        (
            Ssh,
            "identity = \"/keys/missing\"",
            0,
            "target[1].identity",
            "cannot read `/keys/missing`: No such file or directory (os error 2)",
        ),
        (
            Ssh,
            "identity = \"/keys/id_encrypted\"",
            0,
            "target[1].identity",
            "`/keys/id_encrypted`: it is passphrase-protected, and lifeboat cannot ask for a \
             passphrase at crash time: copy it and remove the copy's passphrase with \
             `ssh-keygen -p -N '' -f COPY`",
        ),
        (Ssh, "identity = \"/keys/id.pub\"", 0, "target[1].identity", "`/keys/id.pub`: it is a public key"),
        (Ssh, "identity = \"/keys/known_hosts\"", 0, "target[1].identity", "it is not a private key lifeboat reads"),
        (Ssh, "known_hosts = \"~/.ssh/known_hosts\"", 0, "target[1].known_hosts", "not an absolute path"),
        (Ssh, "known_hosts = \"/keys/missing\"", 0, "target[1].known_hosts", "cannot read `/keys/missing`"),
        (
            Ssh,
            "known_hosts = \"/keys/empty\"",
            0,
            "target[1].known_hosts",
            "`/keys/empty`: it has no key for `10.0.2.2`: add the server's host key as a line \
             `10.0.2.2 <key type> <base64>`",
        ),
        (
            Ssh,
            "known_hosts = \"/keys/known_hosts\"\nport = 2200",
            0,
            "target[1].known_hosts",
            "it has no key for `[10.0.2.2]:2200`",
        ),
        (
            Ssh,
            "known_hosts = \"/keys/known_hosts\"\nserver = \"multi.example\"",
            0,
            "target[1].known_hosts",
            "it has no key for `multi.example` or `192.0.2.7`",
        ),
    ];
    for (at, text, line, key, needle) in cases {
        assert_fails(*at, text, *line, key, needle);
    }
}

#[test]
fn what_a_target_lacks_is_named_at_the_target() {
    let network = "[network]\naddress = \"dhcp\"\n";
    let ssh = "[[target]]\ntype = \"ssh\"\nserver = \"10.0.2.2\"\n";
    // (document, line, key, what the message says)
    let cases: Vec<(String, usize, &str, &str)> = vec![
        (
            "[[target]]\ndevice = \"LABEL=X\"\n".to_owned(),
            1,
            "target[0].type",
            "a target needs a type; expected \"disk\", \"nfs\" or \"ssh\"",
        ),
        (
            format!("{network}[[target]]\ntype = \"nfs\"\nexport = \"/e\"\n"),
            3,
            "target[0].server",
            "an nfs target needs a server (an IPv4 address or a host name)",
        ),
        (
            format!("{network}[[target]]\ntype = \"nfs\"\nserver = \"10.0.2.2\"\n"),
            3,
            "target[0].export",
            "an nfs target needs an export, the path the server exports (\"/export\")",
        ),
        (
            format!("{network}[[target]]\ntype = \"ssh\"\n"),
            3,
            "target[0].server",
            "an ssh target needs a server",
        ),
        (
            format!("{network}{ssh}known_hosts = \"/keys/known_hosts\"\n"),
            3,
            "target[0].identity",
            "an ssh target needs an identity, the private key it logs in with (an absolute \
             path on this machine)",
        ),
        (
            format!("{network}{ssh}identity = \"/keys/id\"\n"),
            3,
            "target[0].known_hosts",
            "an ssh target needs known_hosts, a file that holds the server's host key: \
             lifeboat never trusts a key on first use",
        ),
        // No network for a network target: said where the kind is.
        (
            "[[target]]\ntype = \"disk\"\ndevice = \"LABEL=X\"\n\n[[target]]\n\
             type = \"nfs\"\nserver = \"10.0.2.2\"\nexport = \"/e\"\n"
                .to_owned(),
            6,
            "network",
            "target[1] is an nfs target, which needs [network]: add a [network] section \
             (address = \"dhcp\" takes DHCP on the first network card)",
        ),
        (
            format!("{ssh}identity = \"/keys/id\"\n"),
            2,
            "network",
            "target[0] is an ssh target, which needs [network]",
        ),
        // A server that a static address without a gateway cannot reach.
        (
            format!("[network]\naddress = \"198.51.100.10/24\"\n{ssh}"),
            5,
            "target[0].server",
            "10.0.2.2 is outside the subnet of network.address 198.51.100.10/24, and [network] \
             has no gateway: the capture could not reach it",
        ),
        (
            "[network]\naddress = \"198.51.100.10/24\"\n[[target]]\ntype = \"nfs\"\n\
             server = \"nfs.example\"\nexport = \"/e\"\n"
                .to_owned(),
            5,
            "target[0].server",
            "192.0.2.7 is outside",
        ),
    ];
    for (text, line, key, needle) in cases {
        let error = parse_fake(&text).expect_err(&text);
        assert_eq!(error.line, line, "{text}: {error}");
        assert_eq!(error.key, key, "{text}: {error}");
        assert!(error.message.contains(needle), "{text}: {error}");
    }
}

/// The TOML block that follows a line starting with "```toml", up to the
/// closing fence, with `prefix` taken off each line.
fn toml_block(text: &str, prefix: &str) -> String {
    let mut block = String::new();
    let mut inside = false;
    for line in text.lines() {
        let line = line.strip_prefix(prefix).unwrap_or(line);
        let line = line.strip_prefix(' ').unwrap_or(line);
        if inside && line.starts_with("```") {
            return block;
        }
        if inside {
            block.push_str(line);
            block.push('\n');
        }
        inside |= line.starts_with("```toml");
    }
    panic!("no ```toml block");
}

#[test]
fn the_documented_examples_are_valid_configs() {
    let readme = toml_block(include_str!("../../../README.md"), "");
    let module = toml_block(include_str!("../user.rs"), "//!");
    for (name, text) in [("README.md", &readme), ("user.rs", &module)] {
        let parsed = parse_with(name, text, &FakeHost).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let kinds: Vec<&str> = parsed
            .config
            .targets
            .iter()
            .map(|target| target.kind.kind_name())
            .collect();
        assert_eq!(kinds, ["disk", "nfs", "ssh"], "{name}");
        assert!(parsed.config.network.is_some(), "{name}");
    }
    // The module docs show every key the README does, with the same values
    // (the README's modules are those of its own VM).
    let settings = |text: &str| -> Vec<String> {
        text.lines()
            .map(|line| line.split('#').next().unwrap().trim().to_owned())
            .filter(|line| line.contains('=') && !line.starts_with("modules"))
            .collect()
    };
    assert_eq!(settings(&module), settings(&readme));
}

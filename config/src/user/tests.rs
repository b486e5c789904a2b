//! The TOML checks: every key's type, value and place, and what each
//! error says and where.

use super::*;

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
#[derive(Clone, Copy, Debug)]
enum At {
    Root,
    Deadlines,
    /// The second target, so that paths show the index is counted.
    Target,
}

/// A valid config with `text` added at `at`. Sections and target keys
/// that `text` writes itself are left out, so that no key is given twice.
fn document(at: At, text: &str) -> String {
    let (root, deadlines, target) = match at {
        At::Root => (text, "", ""),
        At::Deadlines => ("", text, ""),
        At::Target => ("", "", text),
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
    if !writes(root, "target") {
        doc.push_str("[[target]]\ntype = \"disk\"\ndevice = \"LABEL=A\"\n\n[[target]]\n");
        if !writes(target, "type") && !writes(target, "target.type") {
            doc.push_str("type = \"disk\"\n");
        }
        if !writes(target, "device") && !writes(target, "target.device") {
            doc.push_str("device = \"LABEL=B\"\n");
        }
        doc.push_str(&format!("{target}\n"));
    }
    doc
}

/// Checks that `text` at `at` fails at `key`, on the line `line` lines
/// into `text`, with a message containing `needle`.
fn assert_fails(at: At, text: &str, line: usize, key: &str, needle: &str) {
    let doc = document(at, text);
    let first = text.lines().next().unwrap();
    let start = doc.lines().position(|l| l == first).unwrap();
    let error = parse("x.toml", &doc).expect_err(&doc);
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
    for at in [At::Root, At::Deadlines, At::Target] {
        parse("x.toml", &document(at, "")).unwrap();
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
    let kind = "expected a target type (\"disk\")";
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
                `compression_threads`, `measure_read_rate`, `modules`, `deadlines` or `target`";
    let deadlines = "expected one of `device_wait` or `total`";
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

//! The TOML a user writes, parsed and validated into a [`Config`].
//!
//! ```toml
//! log_level = "info"            # error, warn, info, debug, trace
//! final_action = "reboot"       # reboot, poweroff, halt
//! compression_level = 1         # zstd level: -10..=-1 (fastest) or 1..=19 (smallest)
//! compression_threads = 0       # 0: one per online CPU
//! modules = ["virtio_blk"]      # kernel modules the targets need
//!
//! [deadlines]
//! device_wait = 30              # seconds to wait for a target device
//! total = 3600                  # seconds for the whole capture
//!
//! [[target]]                    # tried in order
//! type = "disk"
//! device = "UUID=0bd3a2c6-8d7e-4f1c-9a55-2c1f3c0e9a11"
//! fstype = "auto"
//! directory = "/var/crash"
//! mount_options = ""
//! ```
//!
//! Every error names the file, the line and column, and the key.

use std::fmt;
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use crate::{
    check_compression_level, check_directory, check_fstype, check_module_name, Config, Deadlines,
    DeviceSpec, DiskTarget, FinalAction, LogLevel, Target, TargetKind, DEFAULT_COMPRESSION_LEVEL,
    DEFAULT_DIRECTORY, MAX_COMPRESSION_THREADS,
};

/// A config file that is not valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// The offending key as a dotted path (`target[1].device`), or empty
    /// when the file does not parse as TOML at all.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if !self.key.is_empty() {
            write!(f, "key `{}`: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    log_level: Option<Spanned<String>>,
    final_action: Option<Spanned<String>>,
    compression_level: Option<Spanned<i64>>,
    compression_threads: Option<Spanned<i64>>,
    #[serde(default)]
    modules: Vec<Spanned<String>>,
    deadlines: Option<RawDeadlines>,
    #[serde(default)]
    target: Vec<Spanned<RawTarget>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeadlines {
    device_wait: Option<Spanned<i64>>,
    total: Option<Spanned<i64>>,
}

/// The fields of every target kind; [`validate_target`] rejects those that
/// do not belong to the kind given by `type`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    #[serde(rename = "type")]
    kind: Spanned<String>,
    directory: Option<Spanned<String>>,
    device: Option<Spanned<String>>,
    fstype: Option<Spanned<String>>,
    mount_options: Option<Spanned<String>>,
}

/// Parses and validates `text`, the contents of `file`.
pub fn parse(file: &str, text: &str) -> Result<Config, ConfigError> {
    let at = |span: Range<usize>, key: &str, message: String| {
        let (line, column) = line_column(text, span.start);
        ConfigError {
            file: file.to_owned(),
            line,
            column,
            key: key.to_owned(),
            message,
        }
    };
    let raw: RawConfig = toml::from_str(text).map_err(|error| {
        let span = error.span().unwrap_or(0..0);
        let key = key_at(text, span.start);
        at(span, &key, error.message().to_owned())
    })?;

    let fallback = Config::fallback();
    let log_level = match raw.log_level {
        None => fallback.log_level,
        Some(value) => LogLevel::parse(value.get_ref()).ok_or_else(|| {
            at(
                value.span(),
                "log_level",
                format!(
                    "`{}` is not a log level; expected one of {:?}",
                    value.get_ref(),
                    LogLevel::NAMES
                ),
            )
        })?,
    };
    let final_action = match raw.final_action {
        None => fallback.final_action,
        Some(value) => FinalAction::parse(value.get_ref()).ok_or_else(|| {
            at(
                value.span(),
                "final_action",
                format!(
                    "`{}` is not a final action; expected one of {:?}",
                    value.get_ref(),
                    FinalAction::NAMES
                ),
            )
        })?,
    };
    let compression_level = match raw.compression_level {
        None => DEFAULT_COMPRESSION_LEVEL,
        Some(value) => check_compression_level(*value.get_ref())
            .map_err(|message| at(value.span(), "compression_level", message))?,
    };
    let compression_threads = match raw.compression_threads {
        None => 0,
        Some(value) => match u32::try_from(*value.get_ref()) {
            Ok(threads) if threads <= MAX_COMPRESSION_THREADS => threads,
            _ => {
                return Err(at(
                    value.span(),
                    "compression_threads",
                    format!(
                        "{} is out of range; expected 0 (one per CPU) to {MAX_COMPRESSION_THREADS}",
                        value.get_ref()
                    ),
                ))
            }
        },
    };
    let mut modules = Vec::new();
    for (index, module) in raw.modules.iter().enumerate() {
        check_module_name(module.get_ref())
            .map_err(|message| at(module.span(), &format!("modules[{index}]"), message))?;
        modules.push(module.get_ref().clone());
    }
    let mut deadlines = Deadlines::DEFAULT;
    if let Some(raw_deadlines) = raw.deadlines {
        let seconds = |value: &Spanned<i64>, key: &str| match u32::try_from(*value.get_ref()) {
            Ok(secs) if secs > 0 => Ok(secs),
            _ => Err(at(
                value.span(),
                key,
                format!("{} is not a positive number of seconds", value.get_ref()),
            )),
        };
        if let Some(value) = &raw_deadlines.device_wait {
            deadlines.device_wait_secs = seconds(value, "deadlines.device_wait")?;
        }
        if let Some(value) = &raw_deadlines.total {
            deadlines.total_secs = seconds(value, "deadlines.total")?;
        }
    }
    if raw.target.is_empty() {
        return Err(at(
            0..0,
            "target",
            "no [[target]]: say where dumps go, e.g. type = \"disk\", device = \"LABEL=…\""
                .to_owned(),
        ));
    }
    let mut targets = Vec::new();
    for (index, target) in raw.target.iter().enumerate() {
        targets.push(validate_target(target, &format!("target[{index}]"), &at)?);
    }
    Ok(Config {
        log_level,
        final_action,
        compression_level,
        compression_threads,
        modules,
        deadlines,
        targets,
    })
}

fn validate_target(
    raw: &Spanned<RawTarget>,
    key: &str,
    at: &impl Fn(Range<usize>, &str, String) -> ConfigError,
) -> Result<Target, ConfigError> {
    let target = raw.get_ref();
    let string = |value: &Spanned<String>,
                  field: &str,
                  check: fn(&str) -> Result<(), String>|
     -> Result<String, ConfigError> {
        check(value.get_ref())
            .map_err(|message| at(value.span(), &format!("{key}.{field}"), message))?;
        Ok(value.get_ref().clone())
    };
    let directory = match &target.directory {
        Some(value) => string(value, "directory", check_directory)?,
        None => DEFAULT_DIRECTORY.to_owned(),
    };
    let kind = match target.kind.get_ref().as_str() {
        "disk" => {
            let device = target.device.as_ref().ok_or_else(|| {
                at(
                    raw.span(),
                    &format!("{key}.device"),
                    "a disk target needs a device (UUID=…, LABEL=…, PARTUUID=… or /dev/…)"
                        .to_owned(),
                )
            })?;
            let device = DeviceSpec::parse(device.get_ref())
                .map_err(|message| at(device.span(), &format!("{key}.device"), message))?;
            let fstype = match &target.fstype {
                Some(value) if value.get_ref() == "auto" => None,
                Some(value) => Some(string(value, "fstype", check_fstype)?),
                None => None,
            };
            let mount_options = match &target.mount_options {
                Some(value) => string(value, "mount_options", |v| {
                    if v.contains(['\n', '\r', '\0']) {
                        Err("must not contain line breaks or NUL bytes".to_owned())
                    } else {
                        Ok(())
                    }
                })?,
                None => String::new(),
            };
            TargetKind::Disk(DiskTarget {
                device,
                fstype,
                mount_options,
            })
        }
        other => {
            return Err(at(
                target.kind.span(),
                &format!("{key}.type"),
                format!("unknown target type `{other}`; expected \"disk\""),
            ))
        }
    };
    Ok(Target { kind, directory })
}

/// 1-based line and column of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

/// The bare key starting at `offset`, when a TOML error points at one.
fn key_at(text: &str, offset: usize) -> String {
    let rest = &text[offset.min(text.len())..];
    let key: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-' || *c == '.')
        .collect();
    key
}

#[cfg(test)]
mod tests {
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
}

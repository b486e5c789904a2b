//! `lifeboat.json`, the result record written beside every dump: its
//! schema, written by PID 1 and read by the host.
//!
//! Written by hand rather than with serde: PID 1 stays small, and the
//! record is a flat object whose every field is listed here. Read with
//! serde (the `serde` feature), by the `lifeboat` command and the tests.

use std::fmt::Write as _;

/// The record's file name in a dump directory.
pub const RECORD_FILE: &str = "lifeboat.json";
/// PID 1's own log's file name in a dump directory.
pub const LOG_FILE: &str = "lifeboat.log";

/// The dump's file name in the dump directory named `stamp`
/// (`YYYYmmddHHMM`, with `-N` for a second dump of the same minute).
pub fn dump_file_name(stamp: &str) -> String {
    format!("dump.{stamp}.zst")
}

/// The crashed kernel's log's file name in the dump directory `stamp`.
pub fn dmesg_file_name(stamp: &str) -> String {
    format!("dmesg.{stamp}")
}

/// What became of a capture on one target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(rename_all = "kebab-case")
)]
pub enum Status {
    /// Written before the dump starts: if the record still says this, the
    /// capture was cut off (deadline, power loss) before it could say more.
    InProgress,
    Complete,
    /// The dump started but did not finish; `error` says why (a failure,
    /// or the capture deadline, which also fills `stage`).
    Incomplete,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::InProgress => "in-progress",
            Status::Complete => "complete",
            Status::Incomplete => "incomplete",
        }
    }
}

/// How the network came up for a network target.
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
pub struct NetworkRecord {
    pub interface: String,
    pub mac: String,
    /// `10.0.2.15/24`.
    pub address: String,
    /// `dhcp` or `static`.
    pub method: String,
    pub gateway: Option<String>,
    /// From the start of the bring-up to the address being set.
    pub seconds: f64,
}

impl NetworkRecord {
    fn to_json(&self) -> JsonObject {
        let mut json = JsonObject::compact();
        json.string("interface", Some(&self.interface));
        json.string("mac", Some(&self.mac));
        json.string("address", Some(&self.address));
        json.string("method", Some(&self.method));
        json.string("gateway", self.gateway.as_deref());
        json.decimal("seconds", Some(self.seconds));
        json
    }
}

/// Pages a dump level left out, by category, with makedumpfile's meanings
/// (see [`crate::filter::ExcludeCategory`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
pub struct ExcludedPages {
    pub zero: u64,
    pub cache: u64,
    pub cache_private: u64,
    pub user: u64,
    pub free: u64,
    pub hwpoison: u64,
    pub offline: u64,
}

impl ExcludedPages {
    /// The counts `pages` gives for each category.
    pub fn from_counts(pages: impl Fn(crate::filter::ExcludeCategory) -> u64) -> ExcludedPages {
        use crate::filter::ExcludeCategory::*;
        ExcludedPages {
            zero: pages(Zero),
            cache: pages(Cache),
            cache_private: pages(CachePrivate),
            user: pages(User),
            free: pages(Free),
            hwpoison: pages(Hwpoison),
            offline: pages(Offline),
        }
    }

    /// All categories together.
    pub fn total(&self) -> u64 {
        self.zero
            + self.cache
            + self.cache_private
            + self.user
            + self.free
            + self.hwpoison
            + self.offline
    }

    fn to_json(self) -> JsonObject {
        let mut json = JsonObject::compact();
        json.number("zero", Some(self.zero));
        json.number("cache", Some(self.cache));
        json.number("cache_private", Some(self.cache_private));
        json.number("user", Some(self.user));
        json.number("free", Some(self.free));
        json.number("hwpoison", Some(self.hwpoison));
        json.number("offline", Some(self.offline));
        json
    }
}

/// The fields of `lifeboat.json`. Sizes are bytes, durations seconds.
/// Fields derived from others when written (`crash_time_utc`,
/// `dump_rate_mb_per_s`) are not kept when read.
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
pub struct Record {
    pub lifeboat_version: String,
    pub status: Option<Status>,
    /// Where the capture stopped and why, when it did not complete.
    pub error: Option<String>,
    /// What PID 1 was doing when the capture deadline cut it off.
    #[cfg_attr(feature = "serde", serde(default))]
    pub stage: Option<String>,
    /// How much of the vmcore had been read when the dump stopped.
    #[cfg_attr(feature = "serde", serde(default))]
    pub vmcore_bytes_done: Option<u64>,
    pub kernel_release: Option<String>,
    pub build_id: Option<String>,
    pub crash_time: Option<u64>,
    pub panic_message: Option<String>,
    pub capture_kernel_release: Option<String>,
    pub target: String,
    /// A network target's server, `10.0.2.2` or `10.0.2.2:2222`.
    #[cfg_attr(feature = "serde", serde(default))]
    pub target_server: Option<String>,
    /// A network target's protocol and version: `nfs 4.2`, `nfs 3`, `ssh`.
    #[cfg_attr(feature = "serde", serde(default))]
    pub target_protocol: Option<String>,
    /// An ssh target's host key, as `ssh-keygen -l` prints its fingerprint.
    #[cfg_attr(feature = "serde", serde(default))]
    pub host_key_fingerprint: Option<String>,
    /// How the network came up, for a network target.
    #[cfg_attr(feature = "serde", serde(default))]
    pub network: Option<NetworkRecord>,
    pub dmesg_file: Option<String>,
    pub dmesg_records: Option<usize>,
    pub dmesg_error: Option<String>,
    pub vmcore_bytes: u64,
    pub dump_file: String,
    pub dump_bytes: Option<u64>,
    pub compression_level: i32,
    /// makedumpfile's dump level the capture was asked for.
    pub dump_level: Option<u8>,
    /// Pages the dump level left out (zeros in the dump), by category.
    pub excluded_pages: Option<ExcludedPages>,
    /// Pages whose `struct page` could not be read or made sense of: kept.
    pub unclassifiable_pages: Option<u64>,
    /// Why the filter could not be set up: the dump then left out zero
    /// pages only (if the level asked for that), and is still complete.
    pub filter_error: Option<String>,
    #[cfg_attr(feature = "serde", serde(deserialize_with = "read::hex_u64"))]
    pub xxh64: Option<u64>,
    pub read_method: Option<String>,
    pub dump_seconds: Option<f64>,
    pub frames: Option<u64>,
    pub zero_frames: Option<u64>,
    pub frame_bytes: Option<u64>,
    pub threads: Option<usize>,
    /// Plain mmap read rate of the vmcore, measured after the dump.
    pub read_rate_mb_per_s: Option<f64>,
    pub read_rate_sample_bytes: Option<u64>,
    /// Plain write rate of incompressible data to the same destination,
    /// measured after the dump.
    #[cfg_attr(feature = "serde", serde(default))]
    pub write_rate_mb_per_s: Option<f64>,
    #[cfg_attr(feature = "serde", serde(default))]
    pub write_rate_sample_bytes: Option<u64>,
    pub capture_seconds: f64,
    pub peak_memory_kib: Option<u64>,
    pub modules_loaded: Vec<String>,
    pub modules_failed: Vec<String>,
    /// Refused with ENODEV: no device or CPU feature for them here.
    #[cfg_attr(feature = "serde", serde(default))]
    pub modules_unsupported: Vec<String>,
}

impl Record {
    pub fn to_json(&self) -> String {
        let mut json = JsonObject::default();
        json.string("lifeboat_version", Some(&self.lifeboat_version));
        json.string("status", self.status.map(Status::as_str));
        json.string("error", self.error.as_deref());
        json.string("stage", self.stage.as_deref());
        json.number("vmcore_bytes_done", self.vmcore_bytes_done);
        json.string("kernel_release", self.kernel_release.as_deref());
        json.string("build_id", self.build_id.as_deref());
        json.number("crash_time", self.crash_time);
        json.string(
            "crash_time_utc",
            self.crash_time.map(crate::time::rfc3339).as_deref(),
        );
        json.string("panic_message", self.panic_message.as_deref());
        json.string(
            "capture_kernel_release",
            self.capture_kernel_release.as_deref(),
        );
        json.string("target", Some(&self.target));
        json.string("target_server", self.target_server.as_deref());
        json.string("target_protocol", self.target_protocol.as_deref());
        json.string("host_key_fingerprint", self.host_key_fingerprint.as_deref());
        json.object("network", self.network.as_ref().map(NetworkRecord::to_json));
        json.string("dmesg_file", self.dmesg_file.as_deref());
        json.number("dmesg_records", self.dmesg_records);
        json.string("dmesg_error", self.dmesg_error.as_deref());
        json.number("vmcore_bytes", Some(self.vmcore_bytes));
        json.string("dump_file", Some(&self.dump_file));
        json.number("dump_bytes", self.dump_bytes);
        json.number("compression_level", Some(self.compression_level));
        json.number("dump_level", self.dump_level);
        json.object(
            "excluded_pages",
            self.excluded_pages.map(ExcludedPages::to_json),
        );
        json.number("unclassifiable_pages", self.unclassifiable_pages);
        json.string("filter_error", self.filter_error.as_deref());
        json.string("xxh64", self.xxh64.map(|h| format!("{h:016x}")).as_deref());
        json.string("read_method", self.read_method.as_deref());
        json.decimal("dump_seconds", self.dump_seconds);
        let rate = match (self.dump_seconds, self.status) {
            (Some(secs), Some(Status::Complete)) if secs > 0.0 => {
                Some(self.vmcore_bytes as f64 / secs / 1e6)
            }
            _ => None,
        };
        json.decimal("dump_rate_mb_per_s", rate);
        json.decimal("read_rate_mb_per_s", self.read_rate_mb_per_s);
        json.number("read_rate_sample_bytes", self.read_rate_sample_bytes);
        json.decimal("write_rate_mb_per_s", self.write_rate_mb_per_s);
        json.number("write_rate_sample_bytes", self.write_rate_sample_bytes);
        json.number("frames", self.frames);
        json.number("zero_frames", self.zero_frames);
        json.number("frame_bytes", self.frame_bytes);
        json.number("threads", self.threads);
        json.decimal("capture_seconds", Some(self.capture_seconds));
        json.number("peak_memory_kib", self.peak_memory_kib);
        json.strings("modules_loaded", &self.modules_loaded);
        json.strings("modules_failed", &self.modules_failed);
        json.strings("modules_unsupported", &self.modules_unsupported);
        json.finish()
    }
}

/// A JSON object written one member per line, or on one line when it is
/// a member of another.
#[derive(Default)]
struct JsonObject {
    text: String,
    compact: bool,
}

impl JsonObject {
    fn compact() -> JsonObject {
        JsonObject {
            text: String::new(),
            compact: true,
        }
    }

    fn key(&mut self, key: &str) {
        self.text
            .push_str(match (self.text.is_empty(), self.compact) {
                (true, false) => "{\n  ",
                (false, false) => ",\n  ",
                (true, true) => "{",
                (false, true) => ", ",
            });
        push_json_string(&mut self.text, key);
        self.text.push_str(": ");
    }

    fn object(&mut self, key: &str, value: Option<JsonObject>) {
        self.key(key);
        match value {
            Some(value) => {
                let text = value.finish();
                self.text.push_str(text.trim_end());
            }
            None => self.text.push_str("null"),
        }
    }

    fn string(&mut self, key: &str, value: Option<&str>) {
        self.key(key);
        match value {
            Some(value) => push_json_string(&mut self.text, value),
            None => self.text.push_str("null"),
        }
    }

    fn number(&mut self, key: &str, value: Option<impl std::fmt::Display>) {
        self.key(key);
        match value {
            Some(value) => {
                let _ = write!(self.text, "{value}");
            }
            None => self.text.push_str("null"),
        }
    }

    fn decimal(&mut self, key: &str, value: Option<f64>) {
        self.key(key);
        match value {
            Some(value) if value.is_finite() => {
                let _ = write!(self.text, "{value:.3}");
            }
            _ => self.text.push_str("null"),
        }
    }

    fn strings(&mut self, key: &str, values: &[String]) {
        self.key(key);
        self.text.push('[');
        for (index, value) in values.iter().enumerate() {
            if index > 0 {
                self.text.push_str(", ");
            }
            push_json_string(&mut self.text, value);
        }
        self.text.push(']');
    }

    fn finish(mut self) -> String {
        match (self.text.is_empty(), self.compact) {
            (true, _) => self.text.push_str("{}"),
            (false, true) => self.text.push('}'),
            (false, false) => self.text.push_str("\n}\n"),
        }
        self.text
    }
}

/// Appends `value` as a JSON string literal (RFC 8259 escaping).
fn push_json_string(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Reading a record back.
#[cfg(feature = "serde")]
mod read {
    use serde::{Deserialize, Deserializer};

    use super::Record;

    /// A record that cannot be read, with what is wrong with it.
    #[derive(Debug, thiserror::Error)]
    #[error("not a lifeboat.json record: {0}")]
    pub struct RecordError(#[from] serde_json::Error);

    impl Record {
        /// Parses `lifeboat.json`. Unknown fields (of a newer lifeboat) are
        /// ignored; a missing or mistyped known one is an error.
        pub fn read(text: &str) -> Result<Record, RecordError> {
            Ok(serde_json::from_str(text)?)
        }
    }

    /// The checksum, written as 16 hex digits (as `xxhsum -H64` prints it).
    pub(super) fn hex_u64<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<u64>, D::Error> {
        let Some(text) = Option::<String>::deserialize(deserializer)? else {
            return Ok(None);
        };
        u64::from_str_radix(&text, 16)
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("xxh64 `{text}` is not hex")))
    }
}

#[cfg(feature = "serde")]
pub use read::RecordError;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_is_valid_json_with_escaped_strings() {
        let record = Record {
            lifeboat_version: "0.1.0 (abc)".into(),
            status: Some(Status::Complete),
            panic_message: Some("sysrq \"triggered\"\tcrash\n\u{1}".into()),
            crash_time: Some(1_798_416_000),
            vmcore_bytes: 2_000_000,
            dump_seconds: Some(2.0),
            xxh64: Some(0xabc),
            modules_loaded: vec!["virtio_blk".into()],
            ..Record::default()
        };
        let json = record.to_json();
        let value: serde_json::Value = serde_json::from_str(&json).expect(&json);
        assert_eq!(value["status"], "complete");
        assert_eq!(value["panic_message"], "sysrq \"triggered\"\tcrash\n\u{1}");
        assert_eq!(value["crash_time_utc"], "2026-12-28T00:00:00Z");
        assert_eq!(value["xxh64"], "0000000000000abc");
        assert_eq!(value["dump_rate_mb_per_s"], 1.0);
        assert_eq!(value["error"], serde_json::Value::Null);
        assert_eq!(value["modules_loaded"][0], "virtio_blk");
        assert_eq!(value["modules_failed"], serde_json::json!([]));
    }

    #[cfg(feature = "serde")]
    #[test]
    fn records_read_back_as_written() {
        let record = Record {
            lifeboat_version: "0.1.0".into(),
            status: Some(Status::Incomplete),
            error: Some("the capture deadline of 12 s passed".into()),
            stage: Some("dumping to /mnt/target0/var/crash/202612030915".into()),
            vmcore_bytes_done: Some(123 << 20),
            crash_time: Some(1_798_416_000),
            target: "disk LABEL=X:/var/crash".into(),
            vmcore_bytes: 2_000_000,
            dump_file: "dump.202612030915.zst".into(),
            dump_bytes: Some(4096),
            compression_level: -3,
            dump_level: Some(31),
            excluded_pages: Some(ExcludedPages {
                zero: 1,
                cache: 2,
                cache_private: 3,
                user: 4,
                free: 5,
                hwpoison: 6,
                offline: 7,
            }),
            unclassifiable_pages: Some(8),
            filter_error: Some("VMCOREINFO has no SIZE(page)".into()),
            xxh64: Some(0x0123_4567_89ab_cdef),
            read_method: Some("mmap".into()),
            dump_seconds: Some(2.5),
            threads: Some(2),
            capture_seconds: 12.25,
            modules_loaded: vec!["virtio_blk".into()],
            modules_unsupported: vec!["crc32c_intel".into()],
            target_server: Some("10.0.2.2".into()),
            target_protocol: Some("nfs 4.2".into()),
            network: Some(NetworkRecord {
                interface: "eth0".into(),
                mac: "52:54:00:12:34:56".into(),
                address: "10.0.2.15/24".into(),
                method: "dhcp".into(),
                gateway: Some("10.0.2.2".into()),
                seconds: 0.125,
            }),
            ..Record::default()
        };
        assert_eq!(Record::read(&record.to_json()).unwrap(), record);
        for status in [Status::InProgress, Status::Complete, Status::Incomplete] {
            let written = Record {
                status: Some(status),
                ..Record::default()
            };
            assert_eq!(
                Record::read(&written.to_json()).unwrap().status,
                Some(status)
            );
        }
        let cases = [
            ("{", "EOF"),
            ("{\"status\": \"done\"}", "unknown variant"),
            ("[]", "expected struct Record"),
        ];
        for (text, needle) in cases {
            let error = Record::read(text).unwrap_err().to_string();
            assert!(error.contains(needle), "{text}: {error}");
        }
        let bad_hash = Record::default()
            .to_json()
            .replace("\"xxh64\": null", "\"xxh64\": \"xyz\"");
        assert!(Record::read(&bad_hash)
            .unwrap_err()
            .to_string()
            .contains("not hex"));
    }
}

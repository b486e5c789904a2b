//! `lifeboat.json`, the result record written beside every dump.
//!
//! Written by hand rather than with serde: PID 1 stays small, and the
//! record is a flat object whose every field is listed here.

use std::fmt::Write as _;

/// What became of a capture on one target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Written before the dump starts: if the record still says this, the
    /// capture was cut off (deadline, power loss) before it could say more.
    InProgress,
    Complete,
    /// The dump started but did not finish; `error` says why.
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

/// The fields of `lifeboat.json`. Sizes are bytes, durations seconds.
#[derive(Clone, Debug, Default)]
pub struct ResultRecord {
    pub lifeboat_version: String,
    pub status: Option<Status>,
    /// Where the capture stopped and why, when it did not complete.
    pub error: Option<String>,
    pub kernel_release: Option<String>,
    pub build_id: Option<String>,
    pub crash_time: Option<u64>,
    pub panic_message: Option<String>,
    pub capture_kernel_release: Option<String>,
    pub target: String,
    pub dmesg_file: Option<String>,
    pub dmesg_records: Option<usize>,
    pub dmesg_error: Option<String>,
    pub vmcore_bytes: u64,
    pub dump_file: String,
    pub dump_bytes: Option<u64>,
    pub compression_level: i32,
    pub xxh64: Option<u64>,
    pub read_method: Option<&'static str>,
    pub dump_seconds: Option<f64>,
    pub frames: Option<u64>,
    pub zero_frames: Option<u64>,
    pub frame_bytes: Option<u64>,
    pub threads: Option<usize>,
    /// Plain mmap read rate of the vmcore, measured after the dump.
    pub read_rate_mb_per_s: Option<f64>,
    pub read_rate_sample_bytes: Option<u64>,
    pub capture_seconds: f64,
    pub peak_memory_kib: Option<u64>,
    pub modules_loaded: Vec<String>,
    pub modules_failed: Vec<String>,
    /// Refused with ENODEV: no device or CPU feature for them here.
    pub modules_unsupported: Vec<String>,
}

impl ResultRecord {
    pub fn to_json(&self) -> String {
        let mut json = JsonObject::default();
        json.string("lifeboat_version", Some(&self.lifeboat_version));
        json.string("status", self.status.map(Status::as_str));
        json.string("error", self.error.as_deref());
        json.string("kernel_release", self.kernel_release.as_deref());
        json.string("build_id", self.build_id.as_deref());
        json.number("crash_time", self.crash_time);
        json.string(
            "crash_time_utc",
            self.crash_time.map(dumper::time::rfc3339).as_deref(),
        );
        json.string("panic_message", self.panic_message.as_deref());
        json.string(
            "capture_kernel_release",
            self.capture_kernel_release.as_deref(),
        );
        json.string("target", Some(&self.target));
        json.string("dmesg_file", self.dmesg_file.as_deref());
        json.number("dmesg_records", self.dmesg_records);
        json.string("dmesg_error", self.dmesg_error.as_deref());
        json.number("vmcore_bytes", Some(self.vmcore_bytes));
        json.string("dump_file", Some(&self.dump_file));
        json.number("dump_bytes", self.dump_bytes);
        json.number("compression_level", Some(self.compression_level));
        json.string("xxh64", self.xxh64.map(|h| format!("{h:016x}")).as_deref());
        json.string("read_method", self.read_method);
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

/// A JSON object written one member per line.
#[derive(Default)]
struct JsonObject {
    text: String,
}

impl JsonObject {
    fn key(&mut self, key: &str) {
        self.text.push_str(if self.text.is_empty() {
            "{\n  "
        } else {
            ",\n  "
        });
        push_json_string(&mut self.text, key);
        self.text.push_str(": ");
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
        self.text.push_str("\n}\n");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_is_valid_json_with_escaped_strings() {
        let record = ResultRecord {
            lifeboat_version: "0.1.0 (abc)".into(),
            status: Some(Status::Complete),
            panic_message: Some("sysrq \"triggered\"\tcrash\n\u{1}".into()),
            crash_time: Some(1_798_416_000),
            vmcore_bytes: 2_000_000,
            dump_seconds: Some(2.0),
            xxh64: Some(0xabc),
            modules_loaded: vec!["virtio_blk".into()],
            ..ResultRecord::default()
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
}

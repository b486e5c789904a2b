//! VMCOREINFO: the `KEY=VALUE` lines the crashed kernel leaves in a note so
//! that dump tools can find its symbols and structure layouts without a
//! vmlinux (kernel/crash_core.c, kernel/printk/printk.c).
//!
//! The kernel writes `SYMBOL(name)` and `KERNELOFFSET` in hex without `0x`,
//! `SIZE`, `OFFSET`, `LENGTH`, `PAGESIZE` and `CRASHTIME` in decimal, and
//! `NUMBER` in decimal (possibly negative) except for a few architectures'
//! values printed as `0x...`; the typed accessors accept exactly that.

use std::collections::HashMap;

use thiserror::Error;

/// The kernel keeps VMCOREINFO in one page; anything far larger is not
/// VMCOREINFO.
pub const MAX_VMCOREINFO_BYTES: usize = 1 << 20;

/// Why a VMCOREINFO note could not be parsed.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum VmcoreInfoError {
    #[error("VMCOREINFO of {len} bytes exceeds the limit of {MAX_VMCOREINFO_BYTES}")]
    TooLarge { len: usize },
    #[error("VMCOREINFO line {line} is not UTF-8")]
    NotUtf8 { line: usize },
    #[error("VMCOREINFO line {line} has no '=': {text:?}")]
    MissingSeparator { line: usize, text: String },
    #[error("VMCOREINFO line {line} has an empty key")]
    EmptyKey { line: usize },
}

/// Parsed VMCOREINFO.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VmcoreInfo {
    /// Entries in note order.
    entries: Vec<(String, String)>,
    /// Key to index in `entries`; the first of duplicate keys wins, as in
    /// makedumpfile, which stops at the first matching line.
    index: HashMap<String, usize>,
}

impl VmcoreInfo {
    /// Parses the note text. Lines end with `\n`; trailing NULs (note
    /// padding) and empty lines are ignored.
    pub fn parse(text: &[u8]) -> Result<Self, VmcoreInfoError> {
        if text.len() > MAX_VMCOREINFO_BYTES {
            return Err(VmcoreInfoError::TooLarge { len: text.len() });
        }
        let end = text.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        let mut info = VmcoreInfo::default();
        for (line_idx, raw) in text[..end].split(|&b| b == b'\n').enumerate() {
            let line = line_idx + 1;
            if raw.is_empty() {
                continue;
            }
            let text = std::str::from_utf8(raw).map_err(|_| VmcoreInfoError::NotUtf8 { line })?;
            let (key, value) =
                text.split_once('=')
                    .ok_or_else(|| VmcoreInfoError::MissingSeparator {
                        line,
                        text: text.to_string(),
                    })?;
            if key.is_empty() {
                return Err(VmcoreInfoError::EmptyKey { line });
            }
            info.index
                .entry(key.to_string())
                .or_insert(info.entries.len());
            info.entries.push((key.to_string(), value.to_string()));
        }
        Ok(info)
    }

    /// The raw value of `key`, e.g. `get("SYMBOL(prb)")`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.index.get(key).map(|&i| self.entries[i].1.as_str())
    }

    /// All entries in note order, duplicates included.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// `SYMBOL(name)`: a kernel virtual address, already relocated by KASLR.
    pub fn symbol(&self, name: &str) -> Option<u64> {
        parse_hex(self.get(&format!("SYMBOL({name})"))?)
    }

    /// `OFFSET(type.field)`, e.g. `offset("printk_info.seq")`.
    pub fn offset(&self, type_dot_field: &str) -> Option<u64> {
        parse_dec(self.get(&format!("OFFSET({type_dot_field})"))?)
    }

    /// `SIZE(name)`.
    pub fn size(&self, name: &str) -> Option<u64> {
        parse_dec(self.get(&format!("SIZE({name})"))?)
    }

    /// `NUMBER(name)`.
    pub fn number(&self, name: &str) -> Option<i64> {
        parse_signed(self.get(&format!("NUMBER({name})"))?)
    }

    /// `NUMBER(name)` as the 32-bit pattern the kernel compares it with:
    /// page-type values such as `PAGE_BUDDY_MAPCOUNT_VALUE` are `int` or
    /// `unsigned int` expressions printed through `(long)`, so the same
    /// bits arrive as `-268435456` or `4026531840` depending on the
    /// expression's C type. Values outside both 32-bit ranges are not such
    /// a pattern and give `None`.
    pub fn number_u32(&self, name: &str) -> Option<u32> {
        let value = self.number(name)?;
        if (i64::from(i32::MIN)..=i64::from(u32::MAX)).contains(&value) {
            Some(value as u32)
        } else {
            None
        }
    }

    /// `LENGTH(name)`.
    pub fn length(&self, name: &str) -> Option<u64> {
        parse_dec(self.get(&format!("LENGTH({name})"))?)
    }

    /// `OSRELEASE`: the crashed kernel's `uname -r`.
    pub fn os_release(&self) -> Option<&str> {
        self.get("OSRELEASE")
    }

    /// `CRASHTIME`: seconds since the epoch when the kernel crashed.
    pub fn crash_time(&self) -> Option<u64> {
        parse_dec(self.get("CRASHTIME")?)
    }

    /// `BUILD-ID`: the hex build id of the crashed kernel's vmlinux.
    pub fn build_id(&self) -> Option<&str> {
        self.get("BUILD-ID")
    }

    /// `PAGESIZE`.
    pub fn page_size(&self) -> Option<u64> {
        parse_dec(self.get("PAGESIZE")?)
    }

    /// `KERNELOFFSET`: the KASLR displacement of the kernel image.
    pub fn kernel_offset(&self) -> Option<u64> {
        parse_hex(self.get("KERNELOFFSET")?)
    }
}

fn parse_hex(value: &str) -> Option<u64> {
    let digits = value
        .strip_prefix("0x")
        .or_else(|| value.strip_prefix("0X"))
        .unwrap_or(value);
    u64::from_str_radix(digits, 16).ok()
}

fn parse_dec(value: &str) -> Option<u64> {
    value.parse().ok()
}

/// Decimal with an optional sign, or `0x` hex for the values some
/// architectures print that way (e.g. arm64's `NUMBER(kimage_voffset)`);
/// hex values are bit patterns and may exceed `i64::MAX`.
fn parse_signed(value: &str) -> Option<i64> {
    if value.starts_with("0x") || value.starts_with("0X") {
        return parse_hex(value).map(|v| v as i64);
    }
    value.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An excerpt of a 6.1 kernel's VMCOREINFO.
    const LINUX_6_1: &str = "OSRELEASE=6.1.0-18-cloud-amd64\n\
        BUILD-ID=a6d3b6a4c3f6e4f8d1c2b3a4f5e6d7c8b9a0f1e2\n\
        PAGESIZE=4096\n\
        SYMBOL(init_uts_ns)=ffffffff9a613a40\n\
        OFFSET(uts_namespace.name)=4\n\
        SYMBOL(prb)=ffffffff9a4a2e18\n\
        SIZE(printk_ringbuffer)=88\n\
        OFFSET(printk_info.caller_id)=20\n\
        LENGTH(printk_info_device)=48\n\
        NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)=-129\n\
        NUMBER(phys_base)=18446744073675997184\n\
        OFFSET(atomic_long_t.counter)=0\n\
        KERNELOFFSET=18200000\n\
        CRASHTIME=1700000123\n";

    #[test]
    fn typed_accessors() {
        let info = VmcoreInfo::parse(LINUX_6_1.as_bytes()).unwrap();
        assert_eq!(info.os_release(), Some("6.1.0-18-cloud-amd64"));
        assert_eq!(
            info.build_id(),
            Some("a6d3b6a4c3f6e4f8d1c2b3a4f5e6d7c8b9a0f1e2")
        );
        assert_eq!(info.page_size(), Some(4096));
        assert_eq!(info.crash_time(), Some(1_700_000_123));
        assert_eq!(info.kernel_offset(), Some(0x1820_0000));
        assert_eq!(info.symbol("prb"), Some(0xffff_ffff_9a4a_2e18));
        assert_eq!(info.size("printk_ringbuffer"), Some(88));
        assert_eq!(info.offset("printk_info.caller_id"), Some(20));
        assert_eq!(info.offset("atomic_long_t.counter"), Some(0));
        assert_eq!(info.length("printk_info_device"), Some(48));
        assert_eq!(info.number("PAGE_BUDDY_MAPCOUNT_VALUE"), Some(-129));
        // Out of i64 range in decimal: not a number the kernel can print
        // with %ld, so it is rejected rather than wrapped.
        assert_eq!(info.number("phys_base"), None);
        assert_eq!(info.symbol("log_buf"), None);
        assert_eq!(info.get("SYMBOL(init_uts_ns)"), Some("ffffffff9a613a40"));
        assert_eq!(info.entries().count(), 14);
    }

    /// Each case: the text, then the key looked up and the expected raw
    /// value, or the expected error.
    #[test]
    fn parse_table() {
        type Expect = Result<&'static [(&'static str, Option<&'static str>)], VmcoreInfoError>;
        let cases: &[(&str, &[u8], Expect)] = &[
            ("empty", b"", Ok(&[("OSRELEASE", None)])),
            ("only NULs", b"\0\0\0", Ok(&[("OSRELEASE", None)])),
            (
                "NUL padding",
                b"PAGESIZE=4096\n\0\0\0\0",
                Ok(&[("PAGESIZE", Some("4096"))]),
            ),
            (
                "no final newline",
                b"A=1\nB=2",
                Ok(&[("A", Some("1")), ("B", Some("2"))]),
            ),
            ("empty lines", b"\n\nA=1\n\n", Ok(&[("A", Some("1"))])),
            ("empty value", b"A=\n", Ok(&[("A", Some(""))])),
            ("'=' in value", b"A=b=c\n", Ok(&[("A", Some("b=c"))])),
            (
                "first duplicate wins",
                b"A=1\nA=2\n",
                Ok(&[("A", Some("1"))]),
            ),
            (
                "CONFIG lines",
                b"CONFIG_X86_PAE=y\n",
                Ok(&[("CONFIG_X86_PAE", Some("y"))]),
            ),
            (
                "no separator",
                b"A=1\nGARBAGE\n",
                Err(VmcoreInfoError::MissingSeparator {
                    line: 2,
                    text: "GARBAGE".into(),
                }),
            ),
            (
                "empty key",
                b"=1\n",
                Err(VmcoreInfoError::EmptyKey { line: 1 }),
            ),
            (
                "not UTF-8",
                b"A=1\nB=\xff\n",
                Err(VmcoreInfoError::NotUtf8 { line: 2 }),
            ),
            (
                "NUL inside",
                b"A=1\0\nB=2\n",
                Ok(&[("A", Some("1\0")), ("B", Some("2"))]),
            ),
        ];
        for (name, text, expect) in cases {
            let got = VmcoreInfo::parse(text);
            match (got, expect) {
                (Ok(info), Ok(lookups)) => {
                    for (key, value) in *lookups {
                        assert_eq!(info.get(key), *value, "{name}: {key}");
                    }
                }
                (Err(e), Err(want)) => assert_eq!(&e, want, "{name}"),
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn typed_value_table() {
        type Get = fn(&VmcoreInfo) -> Option<i128>;
        let cases: &[(&str, Get, Option<i128>)] = &[
            (
                "SYMBOL(x)=ffffffff81000000",
                |i| i.symbol("x").map(i128::from),
                Some(0xffff_ffff_8100_0000),
            ),
            (
                "SYMBOL(x)=0xff",
                |i| i.symbol("x").map(i128::from),
                Some(0xff),
            ),
            ("SYMBOL(x)=", |i| i.symbol("x").map(i128::from), None),
            ("SYMBOL(x)=zz", |i| i.symbol("x").map(i128::from), None),
            (
                "SYMBOL(x)=1ffffffffffffffff",
                |i| i.symbol("x").map(i128::from),
                None,
            ),
            (
                "OFFSET(a.b)=24",
                |i| i.offset("a.b").map(i128::from),
                Some(24),
            ),
            ("OFFSET(a.b)=-1", |i| i.offset("a.b").map(i128::from), None),
            (
                "OFFSET(a.b)=0x10",
                |i| i.offset("a.b").map(i128::from),
                None,
            ),
            (
                "SIZE(page)=64",
                |i| i.size("page").map(i128::from),
                Some(64),
            ),
            ("LENGTH(a)=16", |i| i.length("a").map(i128::from), Some(16)),
            (
                "NUMBER(n)=-129",
                |i| i.number("n").map(i128::from),
                Some(-129),
            ),
            ("NUMBER(n)=5", |i| i.number("n").map(i128::from), Some(5)),
            (
                "NUMBER(n)=0xffffffc000000000",
                |i| i.number("n").map(i128::from),
                Some(0xffff_ffc0_0000_0000u64 as i64 as i128),
            ),
            ("NUMBER(n)=1.5", |i| i.number("n").map(i128::from), None),
            (
                "NUMBER(n)=-129",
                |i| i.number_u32("n").map(i128::from),
                Some(0xffff_ff7f),
            ),
            (
                "NUMBER(n)=-268435456",
                |i| i.number_u32("n").map(i128::from),
                Some(0xf000_0000),
            ),
            (
                "NUMBER(n)=4026531840",
                |i| i.number_u32("n").map(i128::from),
                Some(0xf000_0000),
            ),
            (
                "NUMBER(n)=-2147483648",
                |i| i.number_u32("n").map(i128::from),
                Some(0x8000_0000),
            ),
            (
                "NUMBER(n)=-2147483649",
                |i| i.number_u32("n").map(i128::from),
                None,
            ),
            (
                "NUMBER(n)=4294967296",
                |i| i.number_u32("n").map(i128::from),
                None,
            ),
            (
                "PAGESIZE=65536",
                |i| i.page_size().map(i128::from),
                Some(65536),
            ),
            ("CRASHTIME=abc", |i| i.crash_time().map(i128::from), None),
        ];
        for (text, get, want) in cases {
            let info = VmcoreInfo::parse(text.as_bytes()).unwrap();
            assert_eq!(get(&info), *want, "{text}");
        }
    }

    #[test]
    fn too_large() {
        let text = vec![b'a'; MAX_VMCOREINFO_BYTES + 1];
        assert_eq!(
            VmcoreInfo::parse(&text),
            Err(VmcoreInfoError::TooLarge {
                len: MAX_VMCOREINFO_BYTES + 1
            })
        );
    }
}

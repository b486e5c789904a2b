//! VMCOREINFO lookups for the filter, which tell a missing key (often
//! meaningful: the kernel predates or lacks a feature) from a key whose
//! value does not parse (always an error naming the key).

use crate::vmcoreinfo::VmcoreInfo;

use super::FilterError;

/// Typed lookups that tell a missing key from one whose value does not
/// parse.
pub(super) struct Keys<'a>(pub &'a VmcoreInfo);

impl Keys<'_> {
    /// The value of `key` parsed by `parse`; `None` when the key is absent,
    /// an error when it is present but unparsable.
    pub fn get<T>(
        &self,
        key: &str,
        parse: impl FnOnce(&VmcoreInfo) -> Option<T>,
    ) -> Result<Option<T>, FilterError> {
        let Some(raw) = self.0.get(key) else {
            return Ok(None);
        };
        parse(self.0)
            .map(Some)
            .ok_or_else(|| FilterError::Unparsable {
                key: key.into(),
                value: raw.into(),
            })
    }

    pub fn require<T>(
        &self,
        key: &str,
        parse: impl FnOnce(&VmcoreInfo) -> Option<T>,
    ) -> Result<T, FilterError> {
        self.get(key, parse)?
            .ok_or_else(|| FilterError::MissingKey { key: key.into() })
    }

    /// `NUMBER(name)`, if exported.
    pub fn number(&self, name: &str) -> Result<Option<i64>, FilterError> {
        self.get(&format!("NUMBER({name})"), |i| i.number(name))
    }

    /// `SYMBOL(name)`, if exported.
    pub fn symbol(&self, name: &str) -> Result<Option<u64>, FilterError> {
        self.get(&format!("SYMBOL({name})"), |i| i.symbol(name))
    }

    /// `NUMBER(name)` as a bit number of the 64-bit `page.flags`.
    pub fn flag_bit(&self, name: &str) -> Result<Option<u32>, FilterError> {
        let key = format!("NUMBER({name})");
        let Some(value) = self.get(&key, |i| i.number(name))? else {
            return Ok(None);
        };
        match u32::try_from(value) {
            Ok(bit) if bit < 64 => Ok(Some(bit)),
            _ => Err(FilterError::FlagBit { key, value }),
        }
    }

    pub fn required_flag_bit(&self, name: &str) -> Result<u32, FilterError> {
        self.flag_bit(name)?.ok_or_else(|| FilterError::MissingKey {
            key: format!("NUMBER({name})"),
        })
    }

    /// `NUMBER(name)` as the 32-bit value `page._mapcount` is compared
    /// with.
    pub fn page_type(&self, name: &str) -> Result<Option<u32>, FilterError> {
        let key = format!("NUMBER({name})");
        let Some(value) = self.get(&key, |i| i.number(name))? else {
            return Ok(None);
        };
        self.0
            .number_u32(name)
            .map(Some)
            .ok_or(FilterError::NotA32BitValue { key, value })
    }
}

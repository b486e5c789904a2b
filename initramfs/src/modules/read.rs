//! Module files as the capture kernel needs them: decompressed, since
//! finit_module(2) decompresses only in kernels built to.

use std::fs;
use std::io;
use std::path::Path;

use super::ModuleError;

/// Reads a module file, decompressing `.ko.xz` and `.ko.zst`.
pub fn read_module(path: &Path) -> Result<Vec<u8>, ModuleError> {
    let raw = fs::read(path).map_err(|source| ModuleError::ReadModule {
        path: path.to_owned(),
        source,
    })?;
    let decompress_error = |source| ModuleError::Decompress {
        path: path.to_owned(),
        source,
    };
    let name = path.to_string_lossy();
    if name.ends_with(".ko.xz") {
        let mut out = Vec::new();
        lzma_rs::xz_decompress(&mut raw.as_slice(), &mut out).map_err(|error| {
            decompress_error(io::Error::new(
                io::ErrorKind::InvalidData,
                error.to_string(),
            ))
        })?;
        Ok(out)
    } else if name.ends_with(".ko.zst") {
        zstd::stream::decode_all(raw.as_slice()).map_err(decompress_error)
    } else if name.ends_with(".ko") {
        Ok(raw)
    } else {
        Err(ModuleError::UnsupportedCompression {
            path: path.to_owned(),
        })
    }
}

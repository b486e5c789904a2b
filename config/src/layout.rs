//! Where things are in a capture image: what the image builder writes and
//! PID 1 reads, named once for both.

/// The baked config (see [`crate::Config::encode`]).
pub const BAKED_PATH: &str = "/etc/lifeboat/config";

/// The modules to load, one absolute image path per line, in load order.
pub const MODULES_LIST_PATH: &str = "/etc/lifeboat/modules";

/// Where module files are, each as `<name>.ko.zst`: one zstd frame that
/// gives its content size. Stored compressed rather than plain so that
/// the kernel's unpacking of the image, which happens while the capture
/// kernel's memory is at its tightest, writes half as many bytes to RAM;
/// PID 1 decompresses one module at a time as it loads it.
pub const MODULES_DIR: &str = "/lib/modules";

/// The image path of module `name`.
pub fn module_path(name: &str) -> String {
    format!("{MODULES_DIR}/{name}.ko.zst")
}

/// The module name of an image path made by [`module_path`] (or of a
/// plain `.ko`).
pub fn module_name(path: &str) -> &str {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.strip_suffix(".ko.zst")
        .or_else(|| file.strip_suffix(".ko"))
        .unwrap_or(file)
}

/// Where ssh targets' private keys are: a directory of mode 0700 whose
/// files are 0600, as ssh insists on for keys.
pub const SSH_DIR: &str = "/etc/lifeboat/ssh";

/// The image path of the private key of the ssh target at `index` of the
/// target list.
pub fn ssh_identity_path(index: usize) -> String {
    format!("{SSH_DIR}/identity{index}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names_come_back_from_their_paths() {
        for (path, name) in [
            (module_path("ext4"), "ext4"),
            ("/lib/modules/virtio_blk.ko".to_owned(), "virtio_blk"),
            ("crc32c_generic.ko.zst".to_owned(), "crc32c_generic"),
            ("/lib/modules/odd".to_owned(), "odd"),
        ] {
            assert_eq!(module_name(&path), name, "{path}");
        }
    }
}

//! Where things are in a capture image: what the image builder writes and
//! PID 1 reads, named once for both.

/// The baked config (see [`crate::Config::encode`]).
pub const BAKED_PATH: &str = "/etc/lifeboat/config";

/// The modules to load, one absolute image path per line, in load order.
pub const MODULES_LIST_PATH: &str = "/etc/lifeboat/modules";

/// Where module files are, each as `<name>.ko`, decompressed.
pub const MODULES_DIR: &str = "/lib/modules";

/// The image path of module `name`.
pub fn module_path(name: &str) -> String {
    format!("{MODULES_DIR}/{name}.ko")
}

/// Where ssh targets' private keys are: a directory of mode 0700 whose
/// files are 0600, as ssh insists on for keys.
pub const SSH_DIR: &str = "/etc/lifeboat/ssh";

/// The image path of the private key of the ssh target at `index` of the
/// target list.
pub fn ssh_identity_path(index: usize) -> String {
    format!("{SSH_DIR}/identity{index}")
}

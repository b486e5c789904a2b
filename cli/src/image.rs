//! `lifeboat image` and `lifeboat check-config`: capture images from a
//! config.
//!
//! `image` validates the config (an invalid one fails here, with file, line
//! and key, never at crash time), bakes it, and packs PID 1 and the kernel
//! modules the targets need. It needs no Rust toolchain: PID 1 is the
//! prebuilt static `init` installed beside this command.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use initramfs::{build_image, Compression, ImageSpec};

/// Prints the config in the form PID 1 will read.
pub fn check_config(config: &Path) -> Result<()> {
    let parsed = read_config(config)?;
    print!("{}", parsed.encode());
    Ok(())
}

fn read_config(path: &Path) -> Result<lifeboat_config::Config> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(lifeboat_config::user::parse(
        &path.display().to_string(),
        &text,
    )?)
}

pub fn image(
    config_path: &Path,
    kernel_modules: Option<PathBuf>,
    init: Option<PathBuf>,
    no_compress: bool,
    output: &Path,
) -> Result<()> {
    let config = read_config(config_path)?;
    let init = match init {
        Some(path) => path,
        None => find_init()?,
    };
    let modules_dir = match kernel_modules {
        Some(dir) => dir,
        None => {
            let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .context("cannot read the running kernel's release")?;
            Path::new("/lib/modules").join(release.trim())
        }
    };
    let spec = ImageSpec {
        init: &init,
        config: &config,
        modules_dir: Some(&modules_dir),
        compression: if no_compress {
            Compression::None
        } else {
            Compression::Zstd { level: 19 }
        },
    };
    let image = build_image(&spec)?;
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(output)
        .with_context(|| format!("cannot create {}", output.display()))?;
    file.write_all(&image.bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", output.display()))?;
    eprintln!(
        "lifeboat: wrote {} ({} bytes, cpio {} bytes; modules: {})",
        output.display(),
        image.bytes.len(),
        image.cpio_size,
        if image.modules.is_empty() {
            "none".to_owned()
        } else {
            image.modules.join(" ")
        }
    );
    Ok(())
}

/// The installed PID 1: beside this command in an unpacked release
/// (`bin/lifeboat`, `lib/lifeboat/init`), else the system location.
fn find_init() -> Result<PathBuf> {
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        if let Some(prefix) = exe.parent().and_then(Path::parent) {
            candidates.push(prefix.join("lib/lifeboat/init"));
        }
    }
    candidates.push(PathBuf::from("/usr/lib/lifeboat/init"));
    if let Some(found) = candidates.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    let tried: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
    bail!(
        "cannot find lifeboat's init (tried {}); pass --init",
        tried.join(", ")
    )
}

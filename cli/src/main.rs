//! `lifeboat`, the host command.
//!
//! `lifeboat image` builds the capture initramfs from a `lifeboat.toml`:
//! it validates the config (an invalid one fails here, with file, line and
//! key, never at crash time), bakes it, and packs PID 1 and the kernel
//! modules the targets need. It needs no Rust toolchain: PID 1 is the
//! prebuilt static `init` installed beside this command.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use initramfs::{build_image, Compression, ImageSpec};

/// Save the memory of a crashed Linux kernel, fast and within deadlines.
///
/// lifeboat is the userspace of a kdump capture kernel: one static PID 1
/// that saves /proc/vmcore (kernel log first, then a zstd-compressed dump)
/// to the targets of its config, records what happened, and reboots.
/// This command prepares capture images on the normal system.
///
/// Exit status: 0 on success, 1 when the command failed (the message says
/// why), 2 on a usage error.
#[derive(Parser)]
#[command(name = "lifeboat", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build a capture initramfs from a config.
    ///
    /// The image holds /init (lifeboat's PID 1), the validated config, and
    /// the kernel modules its targets need with their dependencies, in load
    /// order. It is reproducible: the same inputs give the same bytes.
    /// Load it with `kexec -p` or `kexec_file_load` as the initrd of the
    /// capture kernel.
    Image {
        /// The config, a lifeboat.toml.
        #[arg(long, short = 'c', value_name = "FILE")]
        config: PathBuf,
        /// The capture kernel's module tree [default: /lib/modules/$(uname -r)].
        #[arg(long, value_name = "DIR")]
        kernel_modules: Option<PathBuf>,
        /// PID 1 to pack [default: ../lib/lifeboat/init beside this command,
        /// then /usr/lib/lifeboat/init].
        #[arg(long, value_name = "FILE")]
        init: Option<PathBuf>,
        /// Store the cpio uncompressed instead of zstd-compressed.
        #[arg(long)]
        no_compress: bool,
        /// Where to write the image (mode 0600).
        #[arg(long, short = 'o', value_name = "FILE")]
        output: PathBuf,
    },
    /// Check a config and print it in the form PID 1 will read.
    CheckConfig {
        /// The config, a lifeboat.toml.
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("lifeboat: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<()> {
    match command {
        Command::Image {
            config,
            kernel_modules,
            init,
            no_compress,
            output,
        } => image(&config, kernel_modules, init, no_compress, &output),
        Command::CheckConfig { config } => {
            let parsed = read_config(&config)?;
            print!("{}", parsed.encode());
            Ok(())
        }
    }
}

fn read_config(path: &Path) -> Result<lifeboat_config::Config> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(lifeboat_config::user::parse(
        &path.display().to_string(),
        &text,
    )?)
}

fn image(
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

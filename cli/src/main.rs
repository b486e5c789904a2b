//! `lifeboat`, the host command: capture images, saving a vmcore, and
//! reading dumps. `main` only parses and dispatches; each command lives in
//! its own module with a `run`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod decompress;
mod dmesg;
mod image;
mod input;
mod inspect;
mod nic;
mod progress;
mod report;
mod save;
mod verify;

/// What the command's exit status tells a script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    /// The command failed; the message says why.
    Failure = 1,
    // 2, bad options or arguments, is clap's own exit status.
    /// The dump is incomplete or corrupt.
    Incomplete = 3,
}

/// The EXIT STATUS section of every command's --help.
const EXIT_STATUS: &str = "\
Exit status:
  0  success
  1  the command failed; the message says why
  2  usage error: unknown option, missing or invalid argument
  3  the dump is incomplete or corrupt (verify; decompress without
     --recover; see each command)";

/// Save the memory of a crashed Linux kernel, fast and within deadlines.
///
/// lifeboat is the userspace of a kdump capture kernel: one static PID 1
/// that saves /proc/vmcore (kernel log first, then a zstd-compressed dump)
/// to the targets of its config, records what happened, and reboots.
///
/// This command prepares capture images on the normal system, saves a
/// vmcore as a dump from any userspace (it can be the core collector of
/// kdump-utils), and reads dumps: the crashed kernel's log, a summary, a
/// full check, and the vmcore back.
///
/// A dump is a zstd file in the seekable format: independent frames, each
/// a chunk of the vmcore, then a seek table. `zstd -d` turns it back into
/// the vmcore; lifeboat also reads it in place, and salvages what a dump
/// cut short still holds.
#[derive(Parser)]
#[command(name = "lifeboat", version, about, long_about, after_long_help = EXIT_STATUS)]
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
    #[command(after_long_help = EXIT_STATUS)]
    Image {
        /// The config, a lifeboat.toml.
        #[arg(long, short = 'c', value_name = "FILE")]
        config: PathBuf,
        /// The capture kernel's module tree [default: /lib/modules/$(uname -r)].
        #[arg(long, value_name = "DIR")]
        kernel_modules: Option<PathBuf>,
        /// PID 1 to pack [default: ../lib/lifeboat/init beside this command,
        /// then /usr/lib/lifeboat/init; init-net there for NFS targets,
        /// init-ssh for ssh targets].
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
    #[command(after_long_help = EXIT_STATUS)]
    CheckConfig {
        /// The config, a lifeboat.toml.
        config: PathBuf,
    },
    Save(save::Args),
    Dmesg(dmesg::Args),
    Inspect(inspect::Args),
    Verify(verify::Args),
    Decompress(decompress::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Image {
            config,
            kernel_modules,
            init,
            no_compress,
            output,
        } => image::image(&config, kernel_modules, init, no_compress, &output)
            .map(|()| Exit::Success),
        Command::CheckConfig { config } => image::check_config(&config).map(|()| Exit::Success),
        Command::Save(args) => save::run(args),
        Command::Dmesg(args) => dmesg::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Decompress(args) => decompress::run(args),
    };
    match result {
        Ok(exit) => ExitCode::from(exit as u8),
        Err(error) => {
            eprintln!("lifeboat: error: {error:#}");
            ExitCode::from(Exit::Failure as u8)
        }
    }
}

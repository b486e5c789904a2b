//! `cargo xtask dist`: the release build of everything lifeboat ships, laid
//! out as it is installed.
//!
//! ```text
//! target/dist/bin/lifeboat           the host CLI
//! target/dist/lib/lifeboat/init      PID 1 of the capture image (static musl), disks only
//! target/dist/lib/lifeboat/init-net  the same with network targets (NFS)
//! target/dist/lib/lifeboat/init-ssh  the same with the ssh target's client too
//! ```
//!
//! An installed `lifeboat` finds `init` at `<exe>/../lib/lifeboat/init`, and
//! `init-net` and `init-ssh` beside it for configs with network targets:
//! the network code costs 140 KB and the ssh client 1.6 MB of the capture
//! kernel's memory, more than the smallest reservations have to spare.
//! `crashme`, the test VM's /init, stays at its cargo path.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use object::elf;
use object::read::elf::{FileHeader, ProgramHeader};
use object::Endianness;

use crate::deps;
use crate::util::{self, project_root, target_dir};

/// The guest binaries run with no dynamic loader and no libc in the image,
/// so they are built static against musl.
pub const GUEST_TARGET: &str = "x86_64-unknown-linux-musl";

/// Paths of the built artifacts.
pub struct Dist {
    pub lifeboat: PathBuf,
    pub init: PathBuf,
    pub init_net: PathBuf,
    pub init_ssh: PathBuf,
    pub crashme: PathBuf,
}

pub fn run() -> Result<()> {
    let dist = build()?;
    for path in [
        &dist.lifeboat,
        &dist.init,
        &dist.init_net,
        &dist.init_ssh,
        &dist.crashme,
    ] {
        println!("{}", path.display());
    }
    Ok(())
}

/// Builds and checks everything; `qemu-test` starts with this too.
pub fn build() -> Result<Dist> {
    deps::ensure(&[deps::BUILD])?;
    deps::ensure_rust_target(GUEST_TARGET)?;

    let guest_dir = target_dir().join(GUEST_TARGET).join("release");
    let init = guest_dir.join("init");
    let crashme = guest_dir.join("crashme");
    let dist_dir = target_dir().join("dist");
    let dist = Dist {
        lifeboat: dist_dir.join("bin/lifeboat"),
        init: dist_dir.join("lib/lifeboat/init"),
        init_net: dist_dir.join("lib/lifeboat/init-net"),
        init_ssh: dist_dir.join("lib/lifeboat/init-ssh"),
        crashme: crashme.clone(),
    };
    // One flavour at a time: cargo builds one feature set of a package per
    // invocation, and each lands at the same path.
    for (features, installed) in [
        (&["--no-default-features"][..], &dist.init),
        (
            &["--no-default-features", "--features", "network"][..],
            &dist.init_net,
        ),
        (&[][..], &dist.init_ssh),
    ] {
        util::run(
            util::cargo()
                .args(["build", "--release", "--target", GUEST_TARGET])
                .args(["--package", "init", "--bin", "init"])
                .args(features)
                .env(
                    "CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS",
                    remap_flags(),
                ),
        )?;
        check_guest_binary(&init)?;
        install(&init, installed)?;
    }
    util::run(
        util::cargo()
            .args(["build", "--release", "--target", GUEST_TARGET])
            .args(["--package", "crashme", "--bin", "crashme"])
            .env(
                "CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS",
                remap_flags(),
            ),
    )?;
    check_guest_binary(&crashme)?;
    util::run(util::cargo().args(["build", "--release"]).args([
        "--package",
        "lifeboat",
        "--bin",
        "lifeboat",
    ]))?;
    install(&target_dir().join("release/lifeboat"), &dist.lifeboat)?;

    for (name, path) in [
        ("init", &dist.init),
        ("init-net", &dist.init_net),
        ("init-ssh", &dist.init_ssh),
    ] {
        let size = fs::metadata(path)?.len();
        println!(
            "{name}: {size} bytes ({:.1} KiB), {}",
            size as f64 / 1024.0,
            path.display()
        );
    }
    Ok(dist)
}

/// rustc records source paths (panic locations, mostly) in the binary; these
/// remappings keep the build machine's home and checkout out of it, which
/// makes the guest binaries reproducible across machines. They are passed
/// for the musl target only, so host builds keep their cache. When several
/// prefixes match, rustc applies the last one.
fn remap_flags() -> String {
    let mut flags = Vec::new();
    if let Some(home) = home_dir() {
        flags.push(format!("--remap-path-prefix={}=/home", home.display()));
    }
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| home_dir().map(|home| home.join(".cargo")));
    if let Some(cargo_home) = cargo_home {
        flags.push(format!(
            "--remap-path-prefix={}=/cargo",
            cargo_home.display()
        ));
    }
    flags.push(format!(
        "--remap-path-prefix={}=/lifeboat",
        project_root().display()
    ));
    flags.join(" ")
}

/// `$HOME`, unless it is unset or so short ("/") that any path matches it.
fn home_dir() -> Option<PathBuf> {
    let home = PathBuf::from(std::env::var_os("HOME")?);
    (home.as_os_str().len() > 1).then_some(home)
}

fn install(from: &Path, to: &Path) -> Result<()> {
    let dir = to.parent().expect("install paths have a parent");
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // Copy beside it, then rename over it: overwriting a binary that is
    // running (a benchmark, another test) fails with ETXTBSY, replacing its
    // directory entry does not.
    let partial = to.with_extension("partial");
    fs::copy(from, &partial)
        .with_context(|| format!("cannot copy {} to {}", from.display(), partial.display()))?;
    fs::rename(&partial, to)
        .with_context(|| format!("cannot rename {} to {}", partial.display(), to.display()))?;
    Ok(())
}

/// A guest binary must run where there is no dynamic loader and no shared
/// library, and must not carry the build machine's home directory.
fn check_guest_binary(path: &Path) -> Result<()> {
    let data = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    check_static(&data).with_context(|| format!("{} is not static", path.display()))?;
    if let Some(home) = home_dir() {
        let home = home.as_os_str().as_encoded_bytes();
        if let Some(offset) = data.windows(home.len()).position(|window| window == home) {
            let context = &data[offset..data.len().min(offset + 80)];
            let context = context.split(|&byte| byte == 0).next().unwrap_or_default();
            bail!(
                "{} embeds $HOME at offset {offset:#x}: {:?}",
                path.display(),
                String::from_utf8_lossy(context)
            );
        }
    }
    Ok(())
}

/// Fails if the ELF asks for an interpreter (PT_INTERP) or a shared library
/// (DT_NEEDED). A static-pie binary has a dynamic section, for its own
/// relocations, but no DT_NEEDED.
fn check_static(data: &[u8]) -> Result<()> {
    let header = elf::FileHeader64::<Endianness>::parse(data)?;
    let endian = header.endian()?;
    for segment in header.program_headers(endian, data)? {
        if segment.p_type(endian) == elf::PT_INTERP {
            let interpreter = segment.interpreter(endian, data)?.unwrap_or_default();
            bail!(
                "PT_INTERP {}",
                String::from_utf8_lossy(interpreter).trim_end_matches('\0')
            );
        }
        if let Some(dynamic) = segment.dynamic(endian, data)? {
            for entry in dynamic {
                if entry.d_tag.get(endian) == u64::from(elf::DT_NEEDED) {
                    bail!("it has a DT_NEEDED entry");
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_xtask_binary_itself_is_dynamic() {
        // Host test binaries are built for glibc, dynamically linked: the
        // check must reject them.
        let exe = std::env::current_exe().unwrap();
        let data = fs::read(exe).unwrap();
        assert!(check_static(&data).is_err());
    }
}

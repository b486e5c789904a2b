//! The kernels the test VMs boot: Debian's current cloud or generic kernel,
//! or Debian 13's (trixie) cloud kernel, fetched with apt and unpacked
//! under `target/kernel/<package>/`, once; and its debug twin, whose
//! vmlinux lets `crash` read the dumps.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context as _, Result};

use crate::apt::{find_deb, SuiteApt};
use crate::util::{self, target_dir};

/// Which of Debian's amd64 kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    /// `linux-image-cloud-amd64`: ext4 and crc32c built in, virtio and the
    /// other filesystems modular, as on a cloud VM.
    Cloud,
    /// `linux-image-amd64`: what a Debian server or desktop runs, with
    /// ext4, crc32c and virtio all modules; its image is bigger.
    Generic,
    /// Debian 13's (trixie) `linux-image-cloud-amd64`, a 6.12 kernel,
    /// fetched from the machine's archive with the suite swapped
    /// (`crate::apt`): 6.12 keeps the page type of a free, offline or slab
    /// page in the top byte of `_mapcount`, which dump levels must read.
    /// ext4, crc32c, virtio and virtio_pci are built in, virtio_blk is a
    /// module; its modules are `.ko.xz` under `usr/lib/modules`.
    TrixieCloud,
}

impl Flavour {
    pub fn name(self) -> &'static str {
        match self {
            Flavour::Cloud => "cloud",
            Flavour::Generic => "generic",
            Flavour::TrixieCloud => "trixie-cloud",
        }
    }

    /// The metapackage that depends on the flavour's current kernel.
    fn metapackage(self) -> &'static str {
        match self {
            Flavour::Cloud | Flavour::TrixieCloud => "linux-image-cloud-amd64",
            Flavour::Generic => "linux-image-amd64",
        }
    }

    /// The Debian suite the kernel comes from when it is not the running
    /// one.
    fn suite(self) -> Option<&'static str> {
        match self {
            Flavour::Cloud | Flavour::Generic => None,
            Flavour::TrixieCloud => Some("trixie"),
        }
    }
}

pub struct Kernel {
    pub flavour: Flavour,
    /// The package, e.g. `linux-image-6.1.0-56-cloud-amd64`.
    pub package: String,
    /// `uname -r` of the kernel, e.g. `6.1.0-56-cloud-amd64`.
    pub release: String,
    pub vmlinuz: PathBuf,
    /// `lib/modules/<release>` (or `usr/lib/modules/<release>`), as on an
    /// installed system (with modules.dep).
    pub modules: PathBuf,
}

pub fn fetch(flavour: Flavour) -> Result<Kernel> {
    let kernel_dir = target_dir().join("kernel");
    let suite_apt = flavour.suite().map(SuiteApt::open).transpose()?;
    let package = match &suite_apt {
        Some(apt) => suite_package(apt, flavour.metapackage())?,
        None => current_package(flavour.metapackage())?,
    };
    let unpacked = kernel_dir.join(&package);
    if let Some(kernel) = find_unpacked(flavour, &package, &unpacked)? {
        return Ok(kernel);
    }

    fs::create_dir_all(&kernel_dir)?;
    let (package, deb) = match &suite_apt {
        Some(apt) => {
            println!("fetching {package} from Debian {}", apt.suite());
            apt.download(|apt| suite_package(apt, flavour.metapackage()), &kernel_dir)?
        }
        None => {
            println!("fetching {package}");
            util::run(
                Command::new("apt-get")
                    .args(["download", "-q", &package])
                    .current_dir(&kernel_dir),
            )?;
            let deb = find_deb(&kernel_dir, &package)?;
            (package, deb)
        }
    };
    let unpacked = kernel_dir.join(&package);
    // Unpack next to the final place and rename, so that an interrupted
    // unpack is never mistaken for the cache.
    let partial = kernel_dir.join(format!("{package}.partial"));
    if partial.exists() {
        fs::remove_dir_all(&partial)?;
    }
    util::run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&partial))?;
    let (base, release) = module_release(&partial)?;
    // The package ships no modules.dep; an installed system has one, made
    // by depmod in the package's postinst. `-b` names the directory that
    // holds `lib/modules`.
    util::run(Command::new("depmod").arg("-b").arg(&base).arg(&release))?;
    if unpacked.exists() {
        fs::remove_dir_all(&unpacked)?;
    }
    fs::rename(&partial, &unpacked)?;
    fs::remove_file(&deb)?;
    find_unpacked(flavour, &package, &unpacked)?
        .context("the unpacked kernel has no vmlinuz or modules")
}

/// The debug vmlinux of `kernel` (with DWARF and the same Build-ID), from
/// `linux-image-<release>-dbg`, fetched once into
/// `target/kernel/<that package>/usr/lib/debug/boot/vmlinux-<release>`.
///
/// The package is 283 MB and unpacks to 1.7 GB, mostly module debug info we
/// do not need: only the vmlinux (590 MB) is taken out of it, and tar stops
/// reading the archive once it has it (it is the archive's tenth member),
/// which also saves most of the decompression. The .deb is deleted after.
pub fn fetch_debug_vmlinux(kernel: &Kernel) -> Result<PathBuf> {
    let package = format!("linux-image-{}-dbg", kernel.release);
    let member = format!("usr/lib/debug/boot/vmlinux-{}", kernel.release);
    let kernel_dir = target_dir().join("kernel");
    let unpacked = kernel_dir.join(&package);
    let vmlinux = unpacked.join(&member);
    if vmlinux.is_file() {
        println!("debug kernel: {} (cached)", vmlinux.display());
        return Ok(vmlinux);
    }

    println!("fetching {package}");
    fs::create_dir_all(&kernel_dir)?;
    let start = Instant::now();
    let deb = match kernel.flavour.suite() {
        Some(suite) => {
            SuiteApt::open(suite)?
                .download(|_| Ok(package.clone()), &kernel_dir)?
                .1
        }
        None => {
            util::run(
                Command::new("apt-get")
                    .args(["download", "-q", &package])
                    .current_dir(&kernel_dir),
            )?;
            find_deb(&kernel_dir, &package)?
        }
    };
    let downloaded = start.elapsed();
    let partial = kernel_dir.join(format!("{package}.partial"));
    if partial.exists() {
        fs::remove_dir_all(&partial)?;
    }
    fs::create_dir_all(&partial)?;
    extract_member(&deb, &format!("./{member}"), &partial)?;
    if !partial.join(&member).is_file() {
        bail!("{} has no {member}", deb.display());
    }
    if unpacked.exists() {
        fs::remove_dir_all(&unpacked)?;
    }
    fs::rename(&partial, &unpacked)?;
    fs::remove_file(&deb)?;
    println!(
        "debug kernel: {} (download {:.1} s, unpack {:.1} s)",
        vmlinux.display(),
        downloaded.as_secs_f64(),
        (start.elapsed() - downloaded).as_secs_f64()
    );
    Ok(vmlinux)
}

/// `dpkg-deb --fsys-tarfile DEB | tar -x --occurrence=1 MEMBER`: tar exits
/// as soon as it has the member, and dpkg-deb then dies of the broken pipe,
/// so its status and its complaint about that say nothing unless tar failed.
fn extract_member(deb: &Path, member: &str, out: &Path) -> Result<()> {
    let mut dpkg_deb = Command::new("dpkg-deb");
    dpkg_deb.arg("--fsys-tarfile").arg(deb);
    let mut dpkg_deb_child = dpkg_deb
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start `{}`", util::display(&dpkg_deb)))?;
    let archive = dpkg_deb_child.stdout.take().expect("stdout is piped");
    let tar_result = util::run(
        Command::new("tar")
            .args(["-x", "--occurrence=1", "-C"])
            .arg(out)
            .arg(member)
            .stdin(archive),
    );
    // Already gone, or about to go on its next write; either way it must
    // not outlive us.
    let _ = dpkg_deb_child.kill();
    let dpkg_deb_output = dpkg_deb_child.wait_with_output()?;
    tar_result.with_context(|| {
        format!(
            "`{}` said: {}",
            util::display(&dpkg_deb),
            String::from_utf8_lossy(&dpkg_deb_output.stderr).trim_end()
        )
    })
}

/// The kernel package `metapackage` of the other suite depends on.
fn suite_package(apt: &SuiteApt, metapackage: &str) -> Result<String> {
    apt.depends(metapackage)?
        .into_iter()
        .find(|name| name.starts_with("linux-image-"))
        .with_context(|| {
            format!(
                "Debian {}'s {metapackage} depends on no linux-image package",
                apt.suite()
            )
        })
}

/// Asks apt which package the metapackage currently depends on, so that the
/// tests follow Debian's kernel updates without a pinned version.
fn current_package(metapackage: &str) -> Result<String> {
    let depends = || -> Result<Option<String>> {
        let text = util::output(Command::new("apt-cache").args(["depends", metapackage]))?;
        Ok(text.lines().find_map(|line| {
            let name = line.trim().strip_prefix("Depends:")?.trim();
            name.starts_with("linux-image-").then(|| name.to_string())
        }))
    };
    if let Ok(Some(package)) = depends() {
        return Ok(package);
    }
    // A machine that never ran `apt-get update` does not know the package.
    util::run(Command::new("apt-get").args(["update", "-q"]))?;
    depends()?.with_context(|| format!("`apt-cache depends {metapackage}` names no kernel"))
}

fn find_unpacked(flavour: Flavour, package: &str, dir: &Path) -> Result<Option<Kernel>> {
    if !dir.is_dir() {
        return Ok(None);
    }
    let Ok((base, release)) = module_release(dir) else {
        return Ok(None);
    };
    let vmlinuz = dir.join("boot").join(format!("vmlinuz-{release}"));
    let modules = base.join("lib/modules").join(&release);
    if !vmlinuz.is_file() || !modules.join("modules.dep").is_file() {
        return Ok(None);
    }
    Ok(Some(Kernel {
        flavour,
        package: package.to_string(),
        release,
        vmlinuz,
        modules,
    }))
}

/// Where the unpacked package keeps `lib/modules`: `dir` itself, or
/// `dir/usr` in a package built for a merged /usr (Debian 13 on); and the
/// one directory name under it, the kernel's release.
fn module_release(dir: &Path) -> Result<(PathBuf, String)> {
    let base = [dir.join("usr"), dir.to_path_buf()]
        .into_iter()
        .find(|base| base.join("lib/modules").is_dir())
        .with_context(|| format!("{} has no lib/modules or usr/lib/modules", dir.display()))?;
    let modules = base.join("lib/modules");
    let mut releases = Vec::new();
    for entry in
        fs::read_dir(&modules).with_context(|| format!("cannot list {}", modules.display()))?
    {
        releases.push(entry?.file_name().to_string_lossy().into_owned());
    }
    match releases.as_slice() {
        [release] => Ok((base, release.clone())),
        _ => bail!(
            "expected one release in {}, found {releases:?}",
            modules.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Debian 12's packages keep modules under `lib/modules`, Debian 13's
    /// (merged /usr) under `usr/lib/modules`; depmod's `-b` is the
    /// directory above `lib`.
    #[test]
    fn the_modules_are_found_in_either_layout() {
        let dir = target_dir().join("xtask-tests/kernel-layout");
        let _ = fs::remove_dir_all(&dir);
        for (package, base) in [("bookworm", ""), ("trixie", "usr")] {
            let root = dir.join(package);
            fs::create_dir_all(root.join(base).join("lib/modules/6.1.0-1-amd64")).unwrap();
            let (found, release) = module_release(&root).unwrap();
            assert_eq!(found, root.join(base), "{package}");
            assert_eq!(release, "6.1.0-1-amd64");
        }
        let empty = dir.join("empty");
        fs::create_dir_all(&empty).unwrap();
        assert!(module_release(&empty).is_err());
        fs::create_dir_all(empty.join("lib/modules/a")).unwrap();
        fs::create_dir_all(empty.join("lib/modules/b")).unwrap();
        assert!(module_release(&empty).is_err());
        let _ = fs::remove_dir_all(&dir);
    }
}

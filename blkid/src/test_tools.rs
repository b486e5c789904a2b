//! Helpers shared by the tests: disk images made by the real tools
//! (mkfs.*, sfdisk, fdisk), which must be installed.

use std::ffi::OsStr;
use std::fs::File;
use std::path::Path;
use std::process::Command;

use crate::Partition;

/// Runs a tool that must be installed; a missing one fails the test
/// with the Debian package to install.
pub(crate) fn run(program: &str, args: &[&str], package: &str) {
    let output = Command::new(program)
        .args(args)
        .output()
        .or_else(|_| Command::new(format!("/sbin/{program}")).args(args).output())
        .unwrap_or_else(|error| panic!("{program} is needed (Debian package {package}): {error}"));
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

pub(crate) fn sparse_file(path: &Path, size: u64) {
    File::create(path).unwrap().set_len(size).unwrap();
}

/// A 32 MiB sparse disk image at `disk`, partitioned by sfdisk with
/// `script`.
pub(crate) fn partitioned_disk(disk: &Path, script: &str) {
    sparse_file(disk, 32 << 20);
    let mut args: Vec<&OsStr> = ["--quiet", "--no-reread", "--no-tell-kernel"]
        .iter()
        .map(OsStr::new)
        .collect();
    args.push(disk.as_os_str());
    run_with_stdin("sfdisk", &args, script);
}

/// Runs `program` (from the PATH, else /sbin, where Debian keeps the
/// fdisk package's tools) with `script` on its standard input, and
/// returns its standard output.
pub(crate) fn run_with_stdin(program: &str, args: &[&OsStr], script: &str) -> String {
    use std::io::Write;
    let spawn = |path: &str| {
        Command::new(path)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
    };
    let mut child = spawn(program)
        .or_else(|_| spawn(&format!("/sbin/{program}")))
        .unwrap_or_else(|_| panic!("{program} is needed (Debian package fdisk)"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{program}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

pub(crate) const GPT_SCRIPT: &str = "label: gpt\n\
    label-id: 9A3B1C2D-0000-4000-8000-00000000D15C\n\
    start=2048, size=4096, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=6A1F0E0C-1B2D-4E3F-8A4B-5C6D7E8F9001\n\
    start=8192, size=8192, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=7b2a1f1d-2c3e-4f40-9b5c-6d7e8f90a112\n\
    disk.img4: start=20480, size=2048, uuid=8C3B2A2E-3D4F-4051-AC6D-7E8F90A1B223\n";

pub(crate) fn gpt_expected() -> Vec<Partition> {
    partition_rows(&[
        (1, "6a1f0e0c-1b2d-4e3f-8a4b-5c6d7e8f9001", 2048, 6143),
        (2, "7b2a1f1d-2c3e-4f40-9b5c-6d7e8f90a112", 8192, 16383),
        (4, "8c3b2a2e-3d4f-4051-ac6d-7e8f90a1b223", 20480, 22527),
    ])
}

/// Partitions from rows of (number, PARTUUID, first LBA, last LBA).
pub(crate) fn partition_rows(rows: &[(u32, &str, u64, u64)]) -> Vec<Partition> {
    rows.iter()
        .map(|&(number, partuuid, first_lba, last_lba)| Partition {
            number,
            partuuid: partuuid.to_owned(),
            first_lba,
            last_lba,
        })
        .collect()
}

pub(crate) const DOS_SCRIPT: &str = "label: dos\n\
    label-id: 0x5E0A7C2B\n\
    start=2048, size=4096, type=83\n\
    start=8192, size=16384, type=5\n\
    start=10240, size=2048, type=83\n\
    start=14336, size=4096, type=c\n";

pub(crate) fn dos_expected() -> Vec<Partition> {
    partition_rows(&[
        (1, "5e0a7c2b-01", 2048, 6143),
        (2, "5e0a7c2b-02", 8192, 24575),
        (5, "5e0a7c2b-05", 10240, 12287),
        (6, "5e0a7c2b-06", 14336, 18431),
    ])
}

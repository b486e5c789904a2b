//! Walking `/sys/class/block`: every device with a size, probed for its
//! filesystem and, for a partition, its PARTUUID from the parent disk's
//! table; and finding the device a [`DeviceSpec`] names.

use std::collections::HashMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use lifeboat_config::DeviceSpec;

use crate::{probe_filesystem, read_partitions, BlkidError, BlockDevice, Partition};

/// Opens the device node at `path` and runs `read` on it; the error, of
/// either, as text for the debug log.
fn with_device<T>(
    path: &Path,
    read: impl FnOnce(&mut File) -> Result<T, BlkidError>,
) -> Result<T, String> {
    let mut file = File::open(path).map_err(|error| format!("cannot open it: {error}"))?;
    read(&mut file).map_err(|error| dumper::error_chain(&error))
}

fn read_number(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The sysfs directory of the disk a partition belongs to: its parent in
/// `/sys/devices` (class entries are symbolic links there), else the
/// partition name without its number (`vdb1` → `vdb`, `nvme0n1p2` →
/// `nvme0n1`) for trees where the links are flat.
fn parent_disk(sys_class_block: &Path, name: &str) -> Option<(String, PathBuf)> {
    let real = fs::canonicalize(sys_class_block.join(name)).ok()?;
    if let Some(parent) = real.parent() {
        if parent.join("dev").is_file() {
            let parent_name = parent.file_name()?.to_str()?.to_owned();
            return Some((parent_name, parent.to_owned()));
        }
    }
    let without_number = name.trim_end_matches(|c: char| c.is_ascii_digit());
    let disk = match without_number.strip_suffix('p') {
        Some(disk) if disk.ends_with(|c: char| c.is_ascii_digit()) => disk,
        _ => without_number,
    };
    let dir = sys_class_block.join(disk);
    (disk != name && dir.join("dev").is_file()).then(|| (disk.to_owned(), dir))
}

/// Lists the block devices of `sys_class_block` (`/sys/class/block`) and
/// probes each device node under `dev_root` (`/dev`). Devices of size 0
/// (unused loop and ram devices, empty drives) are left out, and so are
/// devices that cannot be opened or read: one broken disk must not stop a
/// capture that another disk can take.
pub fn scan(sys_class_block: &Path, dev_root: &Path) -> Vec<BlockDevice> {
    let mut names: Vec<String> = match fs::read_dir(sys_class_block) {
        Ok(entries) => entries
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .collect(),
        Err(error) => {
            log::debug!("cannot list {}: {error}", sys_class_block.display());
            return Vec::new();
        }
    };
    names.sort();
    // Partition tables by disk name, read once per disk.
    let mut tables: HashMap<String, Vec<Partition>> = HashMap::new();
    let mut devices = Vec::new();
    for name in names {
        let sys_dir = sys_class_block.join(&name);
        if read_number(&sys_dir.join("size")) == Some(0) {
            continue;
        }
        let dev_path = dev_root.join(&name);
        let fs = match with_device(&dev_path, probe_filesystem) {
            Ok(fs) => fs,
            Err(error) => {
                log::debug!("skipping {}: {error}", dev_path.display());
                continue;
            }
        };
        let partuuid = read_number(&sys_dir.join("partition")).and_then(|number| {
            let (disk, disk_sys_dir) = parent_disk(sys_class_block, &name)?;
            let table = tables.entry(disk.clone()).or_insert_with(|| {
                let sector_size = read_number(&disk_sys_dir.join("queue/logical_block_size"))
                    .filter(|size| size.is_power_of_two() && *size >= 512)
                    .unwrap_or(512);
                let disk_path = dev_root.join(&disk);
                with_device(&disk_path, |file| read_partitions(file, sector_size)).unwrap_or_else(
                    |error| {
                        log::debug!(
                            "cannot read the partition table of {}: {error}",
                            disk_path.display()
                        );
                        Vec::new()
                    },
                )
            });
            let partition = table.iter().find(|p| u64::from(p.number) == number)?;
            Some(partition.partuuid.clone())
        });
        devices.push(BlockDevice {
            name,
            dev_path,
            partuuid,
            fs,
        });
    }
    devices
}

/// The first device that `spec` names.
pub fn find<'a>(devices: &'a [BlockDevice], spec: &DeviceSpec) -> Option<&'a BlockDevice> {
    devices.iter().find(|device| match spec {
        DeviceSpec::Uuid(uuid) => device
            .fs
            .as_ref()
            .and_then(|fs| fs.uuid.as_deref())
            .is_some_and(|found| found.eq_ignore_ascii_case(uuid)),
        DeviceSpec::Label(label) => device
            .fs
            .as_ref()
            .and_then(|fs| fs.label.as_deref())
            .is_some_and(|found| found == label),
        DeviceSpec::PartUuid(partuuid) => device
            .partuuid
            .as_deref()
            .is_some_and(|found| found.eq_ignore_ascii_case(partuuid)),
        DeviceSpec::Path(path) => {
            Path::new(path) == device.dev_path
                || path.strip_prefix("/dev/") == Some(device.name.as_str())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_tools::*;

    /// Writes a sysfs entry: `dev`, `size` (in 512-byte sectors) and, for a
    /// partition, `partition`.
    fn sys_entry(dir: &Path, size_sectors: u64, partition: Option<u32>) {
        fs::create_dir_all(dir).unwrap();
        fs::write(dir.join("dev"), "254:0\n").unwrap();
        fs::write(dir.join("size"), format!("{size_sectors}\n")).unwrap();
        if let Some(number) = partition {
            fs::write(dir.join("partition"), format!("{number}\n")).unwrap();
        }
    }

    #[test]
    fn scan_finds_devices_by_every_kind_of_name() {
        let root = tempfile::tempdir().unwrap();
        let sys = root.path().join("sys");
        let class = sys.join("class/block");
        let devices = sys.join("devices/virtual/block");
        let dev = root.path().join("dev");
        fs::create_dir_all(&class).unwrap();
        fs::create_dir_all(&dev).unwrap();

        // vda: a GPT disk laid out like real sysfs, partitions under the disk
        // and class entries as symbolic links.
        partitioned_disk(&dev.join("vda"), GPT_SCRIPT);
        sys_entry(&devices.join("vda"), 65536, None);
        sys_entry(&devices.join("vda/vda2"), 8192, Some(2));
        sys_entry(&devices.join("vda/vda4"), 2048, Some(4));
        std::os::unix::fs::symlink(devices.join("vda"), class.join("vda")).unwrap();
        std::os::unix::fs::symlink(devices.join("vda/vda2"), class.join("vda2")).unwrap();
        std::os::unix::fs::symlink(devices.join("vda/vda4"), class.join("vda4")).unwrap();
        sparse_file(&dev.join("vda2"), 16 << 20);
        run(
            "mkfs.ext4",
            &[
                "-q",
                "-F",
                "-U",
                "0bd3a2c6-8d7e-4f1c-9a55-2c1f3c0e9a11",
                "-L",
                "DUMPS",
                dev.join("vda2").to_str().unwrap(),
            ],
            "e2fsprogs",
        );
        sparse_file(&dev.join("vda4"), 1 << 20);

        // nvme0n1: a DOS disk in a flat tree (no links), so the disk is found
        // by name.
        partitioned_disk(&dev.join("nvme0n1"), DOS_SCRIPT);
        sys_entry(&class.join("nvme0n1"), 65536, None);
        sys_entry(&class.join("nvme0n1p5"), 2048, Some(5));
        sparse_file(&dev.join("nvme0n1p5"), 8 << 20);
        run(
            "mkfs.vfat",
            &[
                "-i",
                "5e0a7c2b",
                "-n",
                "LIFEBOAT",
                dev.join("nvme0n1p5").to_str().unwrap(),
            ],
            "dosfstools",
        );

        // Devices to leave out: empty loop and ram devices, and one whose
        // node is missing.
        sys_entry(&class.join("loop0"), 0, None);
        sys_entry(&class.join("ram0"), 0, None);
        sparse_file(&dev.join("loop0"), 0);
        sys_entry(&class.join("vdz"), 2048, None);

        let found = scan(&class, &dev);
        let summary: Vec<(&str, Option<&str>, Option<&str>)> = found
            .iter()
            .map(|d| {
                (
                    d.name.as_str(),
                    d.partuuid.as_deref(),
                    d.fs.as_ref().map(|f| f.fstype),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("nvme0n1", None, None),
                ("nvme0n1p5", Some("5e0a7c2b-05"), Some("vfat")),
                ("vda", None, None),
                (
                    "vda2",
                    Some("7b2a1f1d-2c3e-4f40-9b5c-6d7e8f90a112"),
                    Some("ext4")
                ),
                ("vda4", Some("8c3b2a2e-3d4f-4051-ac6d-7e8f90a1b223"), None),
            ]
        );
        assert_eq!(found[3].dev_path, dev.join("vda2"));

        let dev_path = |name: &str| dev.join(name).to_str().unwrap().to_owned();
        let cases: Vec<(DeviceSpec, Option<&str>)> = vec![
            (
                DeviceSpec::Uuid("0BD3A2C6-8D7E-4F1C-9A55-2C1F3C0E9A11".into()),
                Some("vda2"),
            ),
            (DeviceSpec::Uuid("5e0a-7c2b".into()), Some("nvme0n1p5")),
            (
                DeviceSpec::Uuid("00000000-0000-0000-0000-000000000000".into()),
                None,
            ),
            (DeviceSpec::Label("LIFEBOAT".into()), Some("nvme0n1p5")),
            (DeviceSpec::Label("lifeboat".into()), None),
            (DeviceSpec::Label("DUMPS".into()), Some("vda2")),
            (
                DeviceSpec::PartUuid("8C3B2A2E-3D4F-4051-AC6D-7E8F90A1B223".into()),
                Some("vda4"),
            ),
            (
                DeviceSpec::PartUuid("5e0a7c2b-05".into()),
                Some("nvme0n1p5"),
            ),
            (DeviceSpec::PartUuid("5e0a7c2b-01".into()), None),
            (DeviceSpec::Path("/dev/vda4".into()), Some("vda4")),
            (DeviceSpec::Path(dev_path("vda2")), Some("vda2")),
            (DeviceSpec::Path("/dev/loop0".into()), None),
        ];
        for (spec, expected) in cases {
            assert_eq!(
                find(&found, &spec).map(|d| d.name.as_str()),
                expected,
                "{spec}"
            );
        }
    }

    #[test]
    fn scan_of_a_missing_tree_is_empty() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(scan(&root.path().join("nothing"), root.path()), []);
    }
}

//! Disk targets: a block device found by UUID, LABEL, PARTUUID or path
//! without udev (it appears as its driver probes it), mounted with its
//! configured or recognised filesystem.

use std::path::Path;
use std::time::{Duration, Instant};

use blkid::BlockDevice;
use lifeboat_config::{DeviceSpec, DiskTarget};
use nix::mount::MsFlags;

use super::TargetError;
use crate::capture::Environment;
use crate::stage::Stage;

/// Waits for the disk and mounts it on `mount_point`.
pub(super) fn mount(
    env: &Environment,
    stage: &Stage,
    disk: &DiskTarget,
    device_wait: Duration,
    mount_point: &Path,
) -> Result<(), TargetError> {
    stage.set(format!("waiting for {}", disk.device));
    let device = wait_for_device(env, &disk.device, device_wait)?;
    let fstype = match (&disk.fstype, &device.fs) {
        (Some(fstype), _) => fstype.clone(),
        (None, Some(fs)) => fs.fstype.to_owned(),
        (None, None) => {
            return Err(TargetError::UnknownFilesystem {
                device: device.dev_path.clone(),
            })
        }
    };
    std::fs::create_dir_all(mount_point).map_err(|source| TargetError::MountPoint {
        path: mount_point.to_owned(),
        source,
    })?;
    let source = device.dev_path.display().to_string();
    stage.set(format!("mounting {source} ({fstype})"));
    log::info!("mounting {source} ({fstype}) on {}", mount_point.display());
    env.system
        .mount(
            &source,
            mount_point,
            &fstype,
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            &disk.mount_options,
        )
        .map_err(TargetError::Mount)
}

/// Polls sysfs for `spec` until `wait` has passed: without udev, devices
/// appear as their drivers probe them, which on a slow controller takes
/// seconds after the module loaded.
fn wait_for_device(
    env: &Environment,
    spec: &DeviceSpec,
    wait: Duration,
) -> Result<BlockDevice, TargetError> {
    let start = Instant::now();
    let mut delay = Duration::from_millis(20);
    let mut announced = false;
    loop {
        let devices = blkid::scan(&env.sys_class_block, &env.dev);
        if let Some(device) = blkid::find(&devices, spec) {
            log::info!("found {spec} at {}", device.dev_path.display());
            return Ok(device.clone());
        }
        let waited = start.elapsed();
        if waited >= wait {
            return Err(TargetError::DeviceNotFound {
                spec: spec.to_string(),
                waited_secs: waited.as_secs(),
                seen: describe_devices(&devices),
            });
        }
        if !announced {
            log::info!("waiting up to {} s for {spec}", wait.as_secs());
            announced = true;
        }
        std::thread::sleep(delay.min(wait - waited));
        delay = (delay * 2).min(Duration::from_millis(500));
    }
}

fn describe_devices(devices: &[BlockDevice]) -> String {
    if devices.is_empty() {
        return "none".to_owned();
    }
    let described: Vec<String> = devices
        .iter()
        .map(|device| match &device.fs {
            Some(fs) => format!(
                "{} ({} UUID={} LABEL={})",
                device.name,
                fs.fstype,
                fs.uuid.as_deref().unwrap_or("-"),
                fs.label.as_deref().unwrap_or("-")
            ),
            None => format!("{} (no filesystem)", device.name),
        })
        .collect();
    described.join(", ")
}

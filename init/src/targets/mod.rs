//! Dump targets, one module per kind: each prepares its target (waits for
//! it, mounts it, connects to it) and hands back where dump directories go
//! and what to release afterwards. The capture itself (`capture.rs`) does
//! the same for every kind.

mod disk;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use dumper::output::{Destination, DirDestination, OutputError};
use lifeboat_config::{Target, TargetKind};

use crate::capture::Environment;
use crate::stage::Stage;
use crate::system::SysError;

/// Why one target did not take a complete dump.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("device {spec} did not appear within {waited_secs} s (block devices seen: {seen})")]
    DeviceNotFound {
        spec: String,
        waited_secs: u64,
        seen: String,
    },
    #[error("no filesystem recognised on {device} and none configured")]
    UnknownFilesystem { device: PathBuf },
    #[error("cannot create mount point {path}")]
    MountPoint {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Mount(SysError),
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error("{kind} targets are not supported by this build of lifeboat")]
    Unsupported { kind: &'static str },
    #[error("the capture deadline cut the dump off")]
    DeadlineCut,
    #[error("dump to {artifact} stopped")]
    Stream {
        artifact: String,
        #[source]
        source: dumper::stream::StreamError,
    },
}

/// A target made ready: where its dump directories go, and how to let it
/// go again.
pub struct Prepared {
    /// The directory dump directories are created in (`<mount>/var/crash`).
    dumps_dir: PathBuf,
    /// What `release` unmounts.
    mount_point: PathBuf,
}

impl Prepared {
    /// Creates this dump's private directory, `<dumps_dir>/<stamp>` (or
    /// `<stamp>-N` when a dump of the same minute is there).
    pub fn open_dump_dir(
        &self,
        stamp: &str,
    ) -> Result<(Arc<dyn Destination>, String), TargetError> {
        let (destination, name) = DirDestination::create_stamped(&self.dumps_dir, stamp)?;
        Ok((Arc::new(destination), name))
    }

    /// Syncs and unmounts. A failure is only logged: the dump is already
    /// durable (every artifact was fsynced), and the next target or the
    /// final action comes next either way.
    pub fn release(self, env: &Environment) {
        env.system.sync();
        if let Err(error) = env.system.unmount(&self.mount_point) {
            log::warn!("{error}");
        }
    }
}

/// Prepares target `index` of the config.
pub fn prepare(
    env: &Environment,
    stage: &Stage,
    index: usize,
    target: &Target,
    device_wait: Duration,
) -> Result<Prepared, TargetError> {
    let mount_point = env.mount_root.join(format!("target{index}"));
    match &target.kind {
        TargetKind::Disk(disk) => disk::mount(env, stage, disk, device_wait, &mount_point)?,
        TargetKind::Nfs(_) | TargetKind::Ssh(_) => {
            return Err(TargetError::Unsupported {
                kind: target.kind.kind_name(),
            })
        }
    }
    Ok(Prepared {
        dumps_dir: below(&mount_point, &target.directory),
        mount_point,
    })
}

/// `directory` (absolute on the target) under the target's mount point.
fn below(mount_point: &Path, directory: &str) -> PathBuf {
    mount_point.join(directory.trim_start_matches('/'))
}

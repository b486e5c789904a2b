//! Dump targets, one module per kind: each prepares its target (waits for
//! it, mounts it, connects to it) and hands back where dump directories go
//! and what to release afterwards. The capture itself (`capture.rs`) does
//! the same for every kind.

mod disk;
mod nfs;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use dumper::output::{Destination, DirDestination, OutputError};
use lifeboat_config::{Config, Target, TargetKind};

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
    #[error("NFS mount of {source_name} with options {options} failed")]
    NfsMount {
        source_name: String,
        options: String,
        #[source]
        error: Box<SysError>,
    },
    #[error(
        "NFS mount of {source_name} with options {options} did not finish within {waited_secs} s \
         (deadlines.connect); the server does not answer"
    )]
    NfsMountTimedOut {
        source_name: String,
        options: String,
        waited_secs: u64,
    },
    #[error("cannot start a thread for {what}")]
    Thread {
        what: &'static str,
        #[source]
        source: io::Error,
    },
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
    /// Put before the stamp in the dump directory's name on a target many
    /// machines share (`web-17-`); empty on a disk of this machine.
    dir_prefix: String,
    /// What `release` unmounts.
    mount_point: PathBuf,
    /// Whether the mount is remote: `sync(2)` then waits on a server that
    /// may not answer (measured: blocked > 10 s with a hung NFS server), so
    /// `release` skips it and detaches the mount.
    remote: bool,
}

impl Prepared {
    /// Creates this dump's private directory, `<dumps_dir>/<prefix><stamp>`
    /// (or `…<stamp>-N` when a dump of the same minute is there); returns
    /// it and the stamp that names the files in it.
    pub fn open_dump_dir(
        &self,
        stamp: &str,
    ) -> Result<(Arc<dyn Destination>, String), TargetError> {
        let (destination, name) =
            DirDestination::create_named(&self.dumps_dir, &self.dir_prefix, stamp)?;
        Ok((Arc::new(destination), name))
    }

    /// Syncs and unmounts. A failure is only logged: the dump is already
    /// durable (every artifact was fsynced), and the next target or the
    /// final action comes next either way.
    pub fn release(self, env: &Environment) {
        let result = if self.remote {
            env.system.detach(&self.mount_point)
        } else {
            env.system.sync();
            env.system.unmount(&self.mount_point)
        };
        if let Err(error) = result {
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
    config: &Config,
) -> Result<Prepared, TargetError> {
    let mount_point = env.mount_root.join(format!("target{index}"));
    let seconds = |secs: u32| Duration::from_secs(secs.into());
    match &target.kind {
        TargetKind::Disk(disk) => disk::mount(
            env,
            stage,
            disk,
            seconds(config.deadlines.device_wait_secs),
            &mount_point,
        )?,
        TargetKind::Nfs(nfs) => nfs::mount(
            env,
            stage,
            nfs,
            seconds(config.deadlines.connect_secs),
            &mount_point,
        )?,
        TargetKind::Ssh(_) => {
            return Err(TargetError::Unsupported {
                kind: target.kind.kind_name(),
            })
        }
    }
    let dir_prefix = match (&config.network, target.kind.is_network()) {
        (Some(network), true) => format!("{}-", network.name),
        _ => String::new(),
    };
    Ok(Prepared {
        dumps_dir: below(&mount_point, &target.directory),
        dir_prefix,
        mount_point,
        remote: target.kind.is_network(),
    })
}

/// `directory` (absolute on the target) under the target's mount point.
fn below(mount_point: &Path, directory: &str) -> PathBuf {
    mount_point.join(directory.trim_start_matches('/'))
}

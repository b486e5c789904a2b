//! Dump targets, one module per kind: each prepares its target (waits for
//! it, mounts it, connects to it) and hands back where dump directories go
//! and what to release afterwards. The capture itself (`capture.rs`) does
//! the same for every kind.

mod disk;
#[cfg(feature = "network")]
mod nfs;
#[cfg(feature = "ssh")]
mod ssh;

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
    #[cfg(feature = "network")]
    #[error("NFS mount of {source_name} with options {options} failed")]
    NfsMount {
        source_name: String,
        options: String,
        #[source]
        error: Box<SysError>,
    },
    #[cfg(feature = "network")]
    #[error(
        "NFS mount of {source_name} with options {options} did not finish within {waited_secs} s \
         (deadlines.connect); the server does not answer"
    )]
    NfsMountTimedOut {
        source_name: String,
        options: String,
        waited_secs: u64,
    },
    #[cfg(feature = "ssh")]
    #[error(transparent)]
    Ssh(#[from] ssh::SshError),
    #[cfg(not(feature = "network"))]
    #[error(
        "this init was built without network support; `lifeboat image` packs init-net or \
         init-ssh for configs with network targets"
    )]
    NetworkNotBuiltIn,
    #[cfg(not(feature = "ssh"))]
    #[error(
        "this init was built without the ssh client; `lifeboat image` packs init-ssh for \
         configs with ssh targets"
    )]
    SshNotBuiltIn,
    #[error("cannot start a thread for {what}")]
    Thread {
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error(
        "{place} took no byte for {waited_secs} s (deadlines.stall) after {bytes} bytes; \
         the target was given up"
    )]
    Stalled {
        place: String,
        waited_secs: u64,
        bytes: u64,
    },
    #[error("the dump thread ended without a result")]
    DumpThreadLost,
    #[error("the capture deadline cut the dump off")]
    DeadlineCut,
    #[error("dump to {artifact} stopped")]
    Stream {
        artifact: String,
        #[source]
        source: dumper::stream::StreamError,
    },
}

/// How long giving up a target waits for its forced unmount before
/// detaching it: the call returns at once when the server answers, and
/// blocks until it does otherwise (measured: 30 to 90 s).
const FORCED_UNMOUNT_WAIT: Duration = Duration::from_secs(1);

/// A target made ready: where its dump directories go, and how to let it
/// go again.
pub struct Prepared {
    place: Place,
    /// Put before the stamp in the dump directory's name on a target many
    /// machines share (`web-17-`); empty on a disk of this machine.
    dir_prefix: String,
}

/// Where a prepared target's dump directories are made.
enum Place {
    /// A mounted filesystem.
    Mounted {
        /// The directory dump directories are created in
        /// (`<mount>/var/crash`).
        dumps_dir: PathBuf,
        /// What `release` unmounts.
        mount_point: PathBuf,
        /// Whether the mount is remote: `sync(2)` then waits on a server
        /// that may not answer (measured: blocked > 10 s with a hung NFS
        /// server), so `release` skips it and detaches the mount.
        remote: bool,
    },
    /// A directory on an ssh server.
    #[cfg(feature = "ssh")]
    Ssh {
        connection: Arc<ssh::SshConnection>,
        directory: String,
    },
}

impl Prepared {
    /// Creates this dump's private directory, `<dumps_dir>/<prefix><stamp>`
    /// (or `…<stamp>-N` when a dump of the same minute is there); returns
    /// it and the stamp that names the files in it.
    pub fn open_dump_dir(
        &self,
        stamp: &str,
    ) -> Result<(Arc<dyn Destination>, String), TargetError> {
        match &self.place {
            Place::Mounted { dumps_dir, .. } => {
                let (destination, name) =
                    DirDestination::create_named(dumps_dir, &self.dir_prefix, stamp)?;
                Ok((Arc::new(destination), name))
            }
            #[cfg(feature = "ssh")]
            Place::Ssh {
                connection,
                directory,
            } => {
                let (destination, name) =
                    connection.create_dump_dir(directory, &self.dir_prefix, stamp)?;
                Ok((Arc::new(destination), name))
            }
        }
    }

    /// Lets go of a target that stopped answering, without waiting on it:
    /// an NFS mount is forced off from a thread of its own (which makes the
    /// abandoned writer's blocked call return, but itself blocks until the
    /// server answers, measured) and detached at once; an ssh session is
    /// dropped.
    pub fn abandon(self, env: &Environment) {
        match self.place {
            Place::Mounted {
                mount_point,
                remote: true,
                ..
            } => {
                let system = env.system.clone();
                let point = mount_point.clone();
                let (done, forced) = std::sync::mpsc::channel();
                let spawned = std::thread::Builder::new()
                    .name("force-unmount".to_owned())
                    .spawn(move || {
                        let _ = done.send(system.force_unmount(&point));
                    });
                if let Err(error) = spawned {
                    log::warn!("cannot start a thread to force the unmount: {error}");
                }
                // A forced unmount that succeeds at once leaves nothing to
                // detach; one that blocks is left to the kernel.
                match forced.recv_timeout(FORCED_UNMOUNT_WAIT) {
                    Ok(Ok(())) => {
                        log::info!("forced {} off", mount_point.display());
                        return;
                    }
                    Ok(Err(error)) => log::warn!("{error}"),
                    Err(_) => log::info!(
                        "forcing {} off did not return within {} s; detaching it",
                        mount_point.display(),
                        FORCED_UNMOUNT_WAIT.as_secs()
                    ),
                }
                match env.system.detach(&mount_point) {
                    Ok(()) => log::info!("detached {}", mount_point.display()),
                    Err(error) => log::warn!("{error}"),
                }
            }
            // A local disk is not given up this way (its dumps are not
            // watched); releasing it is all there is to do.
            Place::Mounted { .. } => self.release(env),
            #[cfg(feature = "ssh")]
            Place::Ssh { connection, .. } => connection.close(),
        }
    }

    /// The ssh server's host key fingerprint, for the record.
    pub fn host_key_fingerprint(&self) -> Option<&str> {
        match &self.place {
            #[cfg(feature = "ssh")]
            Place::Ssh { connection, .. } => Some(&connection.host_key_fingerprint),
            Place::Mounted { .. } => None,
        }
    }

    /// Syncs and unmounts, or ends the ssh session. A failure is only
    /// logged: the dump is already durable (every artifact was fsynced),
    /// and the next target or the final action comes next either way.
    pub fn release(self, env: &Environment) {
        let result = match self.place {
            Place::Mounted {
                mount_point,
                remote: true,
                ..
            } => env.system.detach(&mount_point),
            Place::Mounted {
                mount_point,
                remote: false,
                ..
            } => {
                env.system.sync();
                env.system.unmount(&mount_point)
            }
            #[cfg(feature = "ssh")]
            Place::Ssh { connection, .. } => {
                connection.close();
                Ok(())
            }
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
    let dir_prefix = match (&config.network, target.kind.is_network()) {
        (Some(network), true) => format!("{}-", network.name),
        _ => String::new(),
    };
    match &target.kind {
        TargetKind::Disk(disk) => disk::mount(
            env,
            stage,
            disk,
            seconds(config.deadlines.device_wait_secs),
            &mount_point,
        )?,
        #[cfg(not(feature = "network"))]
        TargetKind::Nfs(_) => return Err(TargetError::NetworkNotBuiltIn),
        #[cfg(feature = "network")]
        TargetKind::Nfs(nfs) => nfs::mount(
            env,
            stage,
            nfs,
            seconds(config.deadlines.connect_secs),
            &mount_point,
        )?,
        #[cfg(not(feature = "ssh"))]
        TargetKind::Ssh(_) => return Err(TargetError::SshNotBuiltIn),
        #[cfg(feature = "ssh")]
        TargetKind::Ssh(ssh) => {
            stage.set(format!("connecting to {}:{}", ssh.server, ssh.port));
            let connection = ssh::connect(
                ssh,
                seconds(config.deadlines.connect_secs),
                seconds(config.deadlines.stall_secs),
            )?;
            return Ok(Prepared {
                place: Place::Ssh {
                    connection: Arc::new(connection),
                    directory: target.directory.clone(),
                },
                dir_prefix,
            });
        }
    }
    Ok(Prepared {
        place: Place::Mounted {
            dumps_dir: below(&mount_point, &target.directory),
            mount_point,
            remote: target.kind.is_network(),
        },
        dir_prefix,
    })
}

/// `directory` (absolute on the target) under the target's mount point.
fn below(mount_point: &Path, directory: &str) -> PathBuf {
    mount_point.join(directory.trim_start_matches('/'))
}

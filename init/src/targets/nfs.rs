//! NFS targets: the kernel's own client, mounted with mount(2) and nothing
//! else — no mount.nfs, rpcbind, statd or idmapd in the image.
//!
//! Without mount.nfs the kernel must be given what it would have worked out:
//! the server's address (`addr=`, else EINVAL: "mount program didn't pass
//! remote address"), and for v3 the transport of both protocols and `nolock`
//! (no statd to lock with). A v3 mount asks the server's rpcbind for the
//! ports unless `port`/`mount_port` name them.
//!
//! A mount against a hung server can block in the kernel for good, whatever
//! `soft` and `timeo` say (measured: NFSv4 over TCP does not time out an RPC
//! while the connection is up), so it runs on a thread of its own that the
//! capture waits for only until the `connect` deadline, and abandons then.

use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use lifeboat_config::{NfsTarget, NfsVersion};
use nix::mount::MsFlags;

use super::TargetError;
use crate::capture::Environment;
use crate::stage::Stage;

/// What mount(2) is given for an NFS target.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct MountRequest {
    pub source: String,
    pub fstype: &'static str,
    pub options: String,
}

/// The mount(2) arguments for `nfs`. `soft` makes an unanswered RPC fail
/// with EIO (after `timeo` tenths of a second and `retrans` retries, on v3)
/// instead of blocking the dump for good; the capture's own stall deadline
/// covers what `soft` does not (v4 over a live connection).
pub(super) fn mount_request(nfs: &NfsTarget) -> MountRequest {
    let server = nfs.server;
    let mut options = vec![format!("vers={}", nfs.version.as_str())];
    let fstype = match nfs.version {
        NfsVersion::V3 => {
            options.extend(["proto=tcp", "mountproto=tcp", "nolock"].map(str::to_owned));
            "nfs"
        }
        NfsVersion::V4_0 | NfsVersion::V4_1 | NfsVersion::V4_2 => "nfs4",
    };
    options.push(format!("addr={server}"));
    if let Some(port) = nfs.port {
        options.push(format!("port={port}"));
    }
    if let Some(port) = nfs.mount_port {
        options.push(format!("mountport={port}"));
    }
    options.extend(["soft", "timeo=100", "retrans=2"].map(str::to_owned));
    if !nfs.mount_options.is_empty() {
        options.push(nfs.mount_options.clone());
    }
    MountRequest {
        source: format!("{server}:{}", nfs.export),
        fstype,
        options: options.join(","),
    }
}

/// Mounts the export on `mount_point`, giving up after `connect`.
pub(super) fn mount(
    env: &Environment,
    stage: &Stage,
    nfs: &NfsTarget,
    connect: Duration,
    mount_point: &Path,
) -> Result<(), TargetError> {
    std::fs::create_dir_all(mount_point).map_err(|source| TargetError::MountPoint {
        path: mount_point.to_owned(),
        source,
    })?;
    let request = mount_request(nfs);
    stage.set(format!(
        "mounting {} (NFS v{})",
        request.source,
        nfs.version.as_str()
    ));
    log::info!(
        "mounting {} ({}, {}) on {}",
        request.source,
        request.fstype,
        request.options,
        mount_point.display()
    );
    let started = Instant::now();
    let (done, outcome) = mpsc::channel();
    let system = env.system.clone();
    let point = mount_point.to_owned();
    let MountRequest {
        source,
        fstype,
        options,
    } = request;
    let (source_arg, options_arg) = (source.clone(), options.clone());
    let spawned = std::thread::Builder::new()
        .name("nfs-mount".to_owned())
        .spawn(move || {
            let result = system.mount(
                &source_arg,
                &point,
                fstype,
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                &options_arg,
            );
            // The capture may have given up and gone: nobody to tell then.
            let _ = done.send(result);
        });
    if let Err(error) = spawned {
        return Err(TargetError::Thread {
            what: "the NFS mount",
            source: error,
        });
    }
    match outcome.recv_timeout(connect) {
        Ok(Ok(())) => {
            log::info!(
                "mounted {source} (NFS v{}) in {:.1} s",
                nfs.version.as_str(),
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Ok(Err(error)) => Err(TargetError::NfsMount {
            source_name: source,
            options,
            error: Box::new(error),
        }),
        // The thread is left where it is: it may sit in the kernel until
        // the server answers, and nothing here can end that.
        Err(_) => Err(TargetError::NfsMountTimedOut {
            source_name: source,
            options,
            waited_secs: connect.as_secs(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::{Call, Recorder};
    use std::net::Ipv4Addr;
    use std::sync::Arc;

    fn environment(root: &Path, system: Arc<Recorder>) -> Environment {
        Environment {
            system,
            vmcore: root.join("vmcore"),
            sys_class_block: root.join("sys/class/block"),
            dev: root.join("dev"),
            mount_root: root.join("mnt"),
            osrelease: root.join("osrelease"),
            proc_self_status: root.join("status"),
            net: Arc::new(crate::net::Linux),
            net_paths: crate::net::NetPaths {
                sys_class_net: root.join("sys/class/net"),
                urandom: "/dev/urandom".into(),
            },
        }
    }

    #[test]
    fn a_mount_that_never_returns_is_given_up_at_the_connect_deadline() {
        let root = tempfile::tempdir().unwrap();
        let point = root.path().join("mnt/target0");
        let system = Arc::new(Recorder {
            hanging_mounts: vec![point.display().to_string()],
            ..Recorder::default()
        });
        let env = environment(root.path(), system.clone());
        let nfs = target(NfsVersion::V4_2, None, None);
        let started = Instant::now();
        let error = mount(
            &env,
            &Stage::new(),
            &nfs,
            Duration::from_millis(200),
            &point,
        )
        .expect_err("a hung server cannot be mounted");
        assert!(started.elapsed() < Duration::from_secs(2));
        let text = error.to_string();
        assert!(
            matches!(error, TargetError::NfsMountTimedOut { .. }),
            "{text}"
        );
        assert!(
            text.contains("10.0.2.2:/export with options vers=4.2,addr=10.0.2.2"),
            "{text}"
        );
        assert!(text.contains("within 0 s (deadlines.connect)"), "{text}");
        assert!(system
            .calls()
            .iter()
            .any(|call| matches!(call, Call::Mount { fstype, .. } if fstype == "nfs4")));
    }

    /// A stalled NFS target is forced off from a thread of its own and
    /// detached; it is never synced (sync(2) blocks on a hung server).
    #[test]
    fn an_abandoned_export_is_forced_off_and_detached_without_a_sync() {
        for hangs in [false, true] {
            abandon_export(hangs);
        }
    }

    fn abandon_export(force_unmount_hangs: bool) {
        let root = tempfile::tempdir().unwrap();
        let system = Arc::new(Recorder {
            force_unmount_hangs,
            ..Recorder::default()
        });
        let env = environment(root.path(), system.clone());
        let mut config = lifeboat_config::Config::fallback();
        config.network = Some(lifeboat_config::Network {
            interface: lifeboat_config::InterfaceSpec::Auto,
            address: lifeboat_config::AddressSpec::Dhcp,
            name: "web-17".into(),
        });
        config.targets = vec![lifeboat_config::Target {
            kind: lifeboat_config::TargetKind::Nfs(target(NfsVersion::V4_2, None, None)),
            directory: "/crash".into(),
        }];
        let prepared =
            crate::targets::prepare(&env, &Stage::new(), 0, &config.targets[0], &config).unwrap();
        let (_, stamp) = prepared.open_dump_dir("202612031200").unwrap();
        assert_eq!(stamp, "202612031200");
        assert!(root
            .path()
            .join("mnt/target0/crash/web-17-202612031200")
            .is_dir());
        let started = Instant::now();
        prepared.abandon(&env);
        assert!(started.elapsed() < Duration::from_secs(3));
        let point = root.path().join("mnt/target0").display().to_string();
        let calls = system.calls();
        // A forced unmount that returns leaves nothing to detach; one that
        // hangs is left behind, and the mount detached.
        let mut expected = vec![Call::ForceUnmount(point.clone())];
        if force_unmount_hangs {
            expected.push(Call::Detach(point));
        }
        assert_eq!(calls[calls.len() - expected.len()..], expected[..]);
        assert!(!calls.contains(&Call::Sync));
    }

    #[test]
    fn a_refused_mount_names_the_options_and_the_errno() {
        let root = tempfile::tempdir().unwrap();
        let point = root.path().join("mnt/target0");
        let system = Arc::new(Recorder {
            failing_mounts: vec![(point.display().to_string(), nix::Error::ECONNREFUSED)],
            ..Recorder::default()
        });
        let env = environment(root.path(), system);
        let nfs = target(NfsVersion::V3, None, None);
        let error = mount(&env, &Stage::new(), &nfs, Duration::from_secs(5), &point).unwrap_err();
        let chain = dumper::error_chain(&error);
        assert!(chain.contains("with options vers=3,proto=tcp"), "{chain}");
        assert!(chain.contains("ECONNREFUSED"), "{chain}");
    }

    fn target(version: NfsVersion, port: Option<u16>, mount_port: Option<u16>) -> NfsTarget {
        NfsTarget {
            server: Ipv4Addr::new(10, 0, 2, 2),
            export: "/export".into(),
            version,
            port,
            mount_port,
            mount_options: String::new(),
        }
    }

    #[test]
    fn mount_requests_carry_what_mount_nfs_would_have_worked_out() {
        let cases: &[(NfsTarget, &str, &str)] = &[
            (
                target(NfsVersion::V4_2, None, None),
                "nfs4",
                "vers=4.2,addr=10.0.2.2,soft,timeo=100,retrans=2",
            ),
            (
                target(NfsVersion::V4_0, Some(2050), None),
                "nfs4",
                "vers=4.0,addr=10.0.2.2,port=2050,soft,timeo=100,retrans=2",
            ),
            (
                target(NfsVersion::V3, None, None),
                "nfs",
                "vers=3,proto=tcp,mountproto=tcp,nolock,addr=10.0.2.2,soft,timeo=100,retrans=2",
            ),
            (
                target(NfsVersion::V3, Some(2049), Some(20048)),
                "nfs",
                "vers=3,proto=tcp,mountproto=tcp,nolock,addr=10.0.2.2,port=2049,\
                 mountport=20048,soft,timeo=100,retrans=2",
            ),
            (
                NfsTarget {
                    mount_options: "rsize=65536,wsize=65536".into(),
                    ..target(NfsVersion::V4_1, None, None)
                },
                "nfs4",
                "vers=4.1,addr=10.0.2.2,soft,timeo=100,retrans=2,rsize=65536,wsize=65536",
            ),
        ];
        for (nfs, fstype, options) in cases {
            let request = mount_request(nfs);
            assert_eq!(request.source, "10.0.2.2:/export");
            assert_eq!(request.fstype, *fstype, "{nfs:?}");
            assert_eq!(request.options, *options, "{nfs:?}");
        }
    }
}

//! The dump servers network scenarios write to, started by the test on
//! loopback: nfs-ganesha (NFSv4 and v3, userspace: the host kernel has no
//! nfsd), rpcbind for ganesha's v3 registration, and OpenSSH's sshd. The
//! guest reaches them at 10.0.2.2 through QEMU's user networking, which
//! forwards to the host's 127.0.0.1.
//!
//! Ports are picked free at run time, never fixed, so runs do not collide
//! with each other or with a server the machine already has. Every server
//! is started with absolute paths under the scenario's directory (so
//! `pgrep -f "$PWD/target/qemu-test"` finds any that escaped) and held by a
//! [`Server`] guard that stops it when dropped, also when a scenario fails.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// How long a server may take to start listening.
const START_DEADLINE: Duration = Duration::from_secs(30);
/// How long a server may take to exit after SIGTERM before it is killed:
/// ganesha takes about 3 s.
const STOP_DEADLINE: Duration = Duration::from_secs(5);
/// Where rpcbind listens for local registrations.
const RPCBIND_SOCKET: &str = "/run/rpcbind.sock";

/// A server process of the test, stopped when dropped: SIGCONT (a fault
/// test may have stopped it), SIGTERM, then SIGKILL once [`STOP_DEADLINE`]
/// has passed.
pub struct Server {
    name: &'static str,
    child: Child,
}

impl Server {
    fn spawn(name: &'static str, command: &mut Command, log: &Path) -> Result<Server> {
        let log_file =
            fs::File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("cannot start {name}: {}", crate::util::display(command)))?;
        Ok(Server { name, child })
    }

    /// Fails when the server has already exited.
    fn check_running(&mut self, log: &Path) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            let text = fs::read_to_string(log).unwrap_or_default();
            bail!(
                "{} exited at start ({status}); its log {}:\n{}",
                self.name,
                log.display(),
                tail(&text, 40)
            );
        }
        Ok(())
    }

    /// The process ID, for fault tests that stop or kill the server.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let pid = Pid::from_raw(self.child.id() as i32);
        let _ = kill(pid, Signal::SIGCONT);
        let _ = kill(pid, Signal::SIGTERM);
        let start = Instant::now();
        while start.elapsed() < STOP_DEADLINE {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        eprintln!(
            "{} did not exit within {} s of SIGTERM; killing it",
            self.name,
            STOP_DEADLINE.as_secs()
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An NFS export served by ganesha for one scenario.
pub struct NfsServer {
    /// The host directory behind the export: what the guest wrote is here.
    pub export_dir: PathBuf,
    pub nfs_port: u16,
    pub mount_port: u16,
    // Dropped after ganesha, which registered with it.
    _servers: Vec<Server>,
}

impl NfsServer {
    /// Starts ganesha exporting `<dir>/export` as `/export` (NFSv3 and
    /// v4.0–4.2, TCP only, root not squashed, AUTH_SYS), with rpcbind when
    /// none answers: ganesha registers its v3 services there at start.
    pub fn start(dir: &Path) -> Result<NfsServer> {
        let dir = absolute(dir)?;
        let export_dir = dir.join("export");
        let recovery = dir.join("ganesha-recovery");
        for path in [&export_dir, &recovery] {
            fs::create_dir_all(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
        }
        let mut servers = Vec::new();
        if !rpcbind_answers() {
            servers.push(start_rpcbind(&dir)?);
        }
        let nfs_port = free_port()?;
        let mount_port = free_port()?;
        let config = dir.join("ganesha.conf");
        fs::write(
            &config,
            ganesha_config(&export_dir, &recovery, nfs_port, mount_port),
        )?;
        let log = dir.join("ganesha.log");
        let stdout = dir.join("ganesha.out");
        let mut ganesha = Server::spawn(
            "ganesha.nfsd",
            Command::new("/usr/bin/ganesha.nfsd")
                .arg("-F")
                .arg("-f")
                .arg(&config)
                .arg("-L")
                .arg(&log)
                .arg("-p")
                .arg(dir.join("ganesha.pid")),
            &stdout,
        )?;
        wait_listening("ganesha.nfsd", &mut ganesha, &log, nfs_port)?;
        wait_listening("ganesha.nfsd (MOUNT)", &mut ganesha, &log, mount_port)?;
        servers.insert(0, ganesha);
        println!(
            "nfs server: ganesha on 127.0.0.1:{nfs_port} (MOUNT {mount_port}), /export is {}",
            export_dir.display()
        );
        Ok(NfsServer {
            export_dir,
            nfs_port,
            mount_port,
            _servers: servers,
        })
    }
}

/// The ganesha configuration measured to work here. The attribute-cache
/// settings matter: without them, files deleted on the host while ganesha
/// runs made later guest writes vanish.
fn ganesha_config(export_dir: &Path, recovery: &Path, nfs_port: u16, mount_port: u16) -> String {
    format!(
        "NFS_CORE_PARAM {{
    Bind_addr = 127.0.0.1;
    NFS_Port = {nfs_port};
    MNT_Port = {mount_port};
    Protocols = 3, 4;
    Enable_NLM = false;
    Enable_RQUOTA = false;
    Enable_UDP = false;
    # v3 clients mount the pseudo path (/export), as v4 clients do.
    Mount_Path_Pseudo = true;
}}
NFSV4 {{
    Graceless = true;
    RecoveryBackend = fs;
    RecoveryRoot = {recovery};
    Minor_Versions = 0, 1, 2;
    Only_Numeric_Owners = true;
}}
EXPORT {{
    Export_Id = 1;
    Path = {export};
    Pseudo = /export;
    Protocols = 3, 4;
    Transports = TCP;
    Access_Type = RW;
    Squash = No_Root_Squash;
    SecType = sys;
    Attr_Expiration_Time = 0;
    FSAL {{ Name = VFS; }}
}}
MDCACHE {{
    Dir_Chunk = 0;
    Use_Getattr_Directory_Invalidation = true;
}}
",
        recovery = recovery.display(),
        export = export_dir.display(),
    )
}

/// Whether an rpcbind is already listening for local registrations (the
/// machine's own, or one a previous run left).
fn rpcbind_answers() -> bool {
    UnixStream::connect(RPCBIND_SOCKET).is_ok()
}

/// rpcbind in a network namespace of its own: it then listens on no
/// network port of the host (`-h 127.0.0.1` crashes it), and still takes
/// registrations through its socket file.
fn start_rpcbind(dir: &Path) -> Result<Server> {
    fs::create_dir_all("/run/rpcbind").ok();
    let log = dir.join("rpcbind.log");
    let mut rpcbind = Server::spawn(
        "rpcbind",
        Command::new("/usr/bin/unshare").args(["-n", "/usr/sbin/rpcbind", "-f"]),
        &log,
    )?;
    let start = Instant::now();
    while !rpcbind_answers() {
        rpcbind.check_running(&log)?;
        if start.elapsed() > START_DEADLINE {
            bail!("rpcbind did not open {RPCBIND_SOCKET} within {START_DEADLINE:?}");
        }
        thread::sleep(Duration::from_millis(50));
    }
    Ok(rpcbind)
}

/// An sshd for one scenario, with its own host key and the client key the
/// capture logs in with.
pub struct SshServer {
    pub port: u16,
    /// The client's private key (unencrypted ed25519), for the image.
    pub identity: PathBuf,
    /// `[10.0.2.2]:<port> <host key>`: the server as the guest reaches it.
    pub known_hosts: PathBuf,
    /// The host directory the scenario's dumps go to (its `directory`).
    pub dump_root: PathBuf,
    _server: Server,
}

impl SshServer {
    /// Starts sshd on a free loopback port, accepting only the generated
    /// client key, for root.
    pub fn start(dir: &Path) -> Result<SshServer> {
        let dir = absolute(dir)?;
        let keys = dir.join("ssh");
        fs::create_dir_all(&keys)?;
        fs::set_permissions(&keys, fs::Permissions::from_mode(0o700))?;
        let host_key = keys.join("host_ed25519");
        let identity = keys.join("id_ed25519");
        for key in [&host_key, &identity] {
            let _ = fs::remove_file(key);
            let _ = fs::remove_file(key.with_extension("pub"));
            crate::util::output(
                Command::new("ssh-keygen")
                    .args(["-q", "-t", "ed25519", "-N", "", "-C", "lifeboat-test", "-f"])
                    .arg(key),
            )?;
        }
        let authorized = keys.join("authorized_keys");
        fs::copy(identity.with_extension("pub"), &authorized)?;
        let port = free_port()?;
        let host_public = fs::read_to_string(host_key.with_extension("pub"))?;
        let mut fields = host_public.split_whitespace();
        let (Some(algorithm), Some(key)) = (fields.next(), fields.next()) else {
            bail!("cannot read the generated host key {host_public:?}");
        };
        let known_hosts = keys.join("known_hosts");
        fs::write(
            &known_hosts,
            format!("[10.0.2.2]:{port} {algorithm} {key}\n"),
        )?;
        let dump_root = dir.join("export");
        fs::create_dir_all(&dump_root)?;
        let config = keys.join("sshd_config");
        fs::write(
            &config,
            format!(
                "Port {port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile {pid}
AuthorizedKeysFile {authorized}
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
",
                host_key = host_key.display(),
                pid = keys.join("sshd.pid").display(),
                authorized = authorized.display(),
            ),
        )?;
        // Privilege separation needs this directory; a machine without a
        // running sshd lacks it.
        fs::create_dir_all("/run/sshd")?;
        let log = dir.join("sshd.log");
        let mut sshd = Server::spawn(
            "sshd",
            Command::new("/usr/sbin/sshd")
                .args(["-D", "-e", "-f"])
                .arg(&config),
            &log,
        )?;
        wait_listening("sshd", &mut sshd, &log, port)?;
        println!(
            "ssh server: sshd on 127.0.0.1:{port}, dumps under {}",
            dump_root.display()
        );
        Ok(SshServer {
            port,
            identity,
            known_hosts,
            dump_root,
            _server: sshd,
        })
    }
}

/// A port no one listens on now. The server is told to bind it a moment
/// later; another process taking it in between is unlikely and fails the
/// start loudly.
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Waits until `port` accepts connections, or fails with the server's log.
fn wait_listening(name: &str, server: &mut Server, log: &Path, port: u16) -> Result<()> {
    let start = Instant::now();
    loop {
        server.check_running(log)?;
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if start.elapsed() > START_DEADLINE {
            let text = fs::read_to_string(log).unwrap_or_default();
            bail!(
                "{name} did not listen on 127.0.0.1:{port} within {} s; its log:\n{}",
                START_DEADLINE.as_secs(),
                tail(&text, 40)
            );
        }
        thread::sleep(Duration::from_millis(100));
    }
}

fn absolute(dir: &Path) -> Result<PathBuf> {
    fs::create_dir_all(dir)?;
    dir.canonicalize()
        .with_context(|| format!("cannot resolve {}", dir.display()))
}

/// The last `lines` lines of a log.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether a process with this ID exists (a zombie counts: it is not
    /// reaped yet).
    fn exists(pid: u32) -> bool {
        Path::new(&format!("/proc/{pid}")).exists()
    }

    /// The servers start on free ports, take what a client sends, and are
    /// gone once dropped.
    #[test]
    fn servers_serve_and_stop_when_dropped() {
        let dir = crate::util::target_dir().join("xtask-tests/servers");
        let _ = fs::remove_dir_all(&dir);
        let nfs = NfsServer::start(&dir.join("nfs")).unwrap();
        let ssh = SshServer::start(&dir.join("ssh")).unwrap();
        assert_ne!(nfs.nfs_port, nfs.mount_port);
        assert!(nfs.export_dir.is_dir());

        // The known_hosts entry names the server as the guest reaches it;
        // a client on this machine reaches it at 127.0.0.1.
        let known = fs::read_to_string(&ssh.known_hosts).unwrap();
        let prefix = format!("[10.0.2.2]:{} ssh-ed25519 ", ssh.port);
        assert!(known.starts_with(&prefix), "{known}");
        let local_known = dir.join("ssh/known_hosts.local");
        fs::write(&local_known, known.replace("[10.0.2.2]", "[127.0.0.1]")).unwrap();
        let file = ssh.dump_root.join("hello");
        let output = Command::new("ssh")
            .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", local_known.display()))
            .arg("-i")
            .arg(&ssh.identity)
            .args(["-p", &ssh.port.to_string(), "root@127.0.0.1"])
            .arg(format!("echo hello > {}", file.display()))
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        assert_eq!(fs::read_to_string(&file).unwrap(), "hello\n");

        let pids: Vec<u32> = nfs
            ._servers
            .iter()
            .chain([&ssh._server])
            .map(Server::pid)
            .collect();
        assert!(pids.iter().all(|pid| exists(*pid)));
        drop(nfs);
        drop(ssh);
        for pid in pids {
            assert!(!exists(pid), "process {pid} still runs");
        }
    }
}

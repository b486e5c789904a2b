//! ssh targets: the dump streamed to a server over ssh by lifeboat's own
//! client (russh), with the server's host key pinned when the image was
//! built and the identity the image carries.
//!
//! An external client costs what the capture kernel's memory cannot give
//! (OpenSSH's `ssh` with its libraries is 10 MB unpacked into RAM; a 72M
//! reservation leaves about 11 MB free), so the client runs in-process on a
//! thread of its own with a single-threaded async runtime. Everything the
//! rest of PID 1 asks of it goes through a queue of requests answered on
//! one-shot channels, each awaited with a deadline: a dead server or link
//! can make the ssh thread wait, never PID 1's main thread.
//!
//! The server needs only a POSIX shell with `cat`, `mkdir`, `mv` and `wc`:
//! each artifact is `cat > <name>.incomplete`, and is renamed only once the
//! server's byte count equals what was sent. The remote command's exit
//! status and the first KiB of its standard error explain any failure (a
//! full disk: `cat: write error: No space left on device`).

use std::cell::RefCell;
use std::io;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use dumper::output::{Artifact, Destination, OutputError, INCOMPLETE_SUFFIX};
use lifeboat_config::SshTarget;
use russh::client::{self, Handle};
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKey};
use russh::{ChannelMsg, Disconnect};
use tokio::sync::mpsc;

/// How much of a remote command's standard error is kept for messages.
const STDERR_KEPT: usize = 1024;
/// Chunks queued between the dump stream and the ssh thread, and their
/// largest size: together they bound the memory in flight.
const QUEUED_CHUNKS: usize = 2;
const CHUNK_BYTES: usize = 128 << 10;

/// Why an ssh step failed.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error("cannot read the identity {path}")]
    ReadIdentity {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("the identity {path} is not a usable private key: {reason}")]
    ParseIdentity { path: String, reason: String },
    #[error("the pinned host key `{line}` cannot be read: {reason}")]
    PinnedKey { line: String, reason: String },
    #[error("cannot connect to {server}: {reason}")]
    Connect { server: String, reason: String },
    #[error(
        "{server} offered host key {offered}, which is not the pinned one ({expected}); \
         refused before authenticating"
    )]
    HostKeyMismatch {
        server: String,
        offered: String,
        expected: String,
    },
    #[error("{server} refused public key {fingerprint} for user {user}")]
    AuthRefused {
        server: String,
        user: String,
        fingerprint: String,
    },
    #[error("no answer from {server} within {secs} s (deadlines.connect)")]
    ConnectTimedOut { server: String, secs: u64 },
    #[error("ssh session to {server} failed: {reason}")]
    Session { server: String, reason: String },
    #[error("`{command}` on {server} {outcome}{}", stderr_suffix(.stderr))]
    Remote {
        server: String,
        command: String,
        outcome: String,
        stderr: String,
    },
    #[error("{server} acknowledged nothing for {secs} s (deadlines.stall)")]
    Stalled { server: String, secs: u64 },
    #[error("the ssh thread for {server} is gone")]
    ThreadGone { server: String },
    #[error("cannot start the ssh thread")]
    Thread(#[source] io::Error),
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!("; it said: {stderr}")
    }
}

/// What a remote command did.
#[derive(Debug, Default)]
struct Output {
    exit_status: Option<u32>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl Output {
    fn stderr_text(&self) -> String {
        let kept = &self.stderr[..self.stderr.len().min(STDERR_KEPT)];
        String::from_utf8_lossy(kept).trim().to_owned()
    }
}

/// A request to the ssh thread. Each runs as a command on a channel of its
/// own, so a record can be written while the dump streams.
enum Request {
    /// Runs `command` with `stdin` as its input.
    Run {
        command: String,
        stdin: Vec<u8>,
        reply: std_mpsc::Sender<Result<Output, SshError>>,
    },
    /// Runs `command` with the chunks as its input, until the sender of
    /// `chunks` is dropped.
    Stream {
        command: String,
        chunks: mpsc::Receiver<Vec<u8>>,
        reply: std_mpsc::Sender<Result<Output, SshError>>,
    },
}

/// A connected, authenticated ssh session, served by its own thread.
pub struct SshConnection {
    requests: mpsc::Sender<Request>,
    /// `root@10.0.2.2:22`, for messages.
    server: String,
    /// The server's host key, as `ssh-keygen -l` prints it.
    pub host_key_fingerprint: String,
    stall: Duration,
}

/// Connects to `ssh`'s server, checks its host key against the pinned ones
/// and authenticates, all within `connect`. Each later step must see
/// progress within `stall`.
pub(super) fn connect(
    ssh: &SshTarget,
    connect: Duration,
    stall: Duration,
) -> Result<SshConnection, SshError> {
    let server = format!("{}@{}:{}", ssh.user, ssh.server, ssh.port);
    let text = std::fs::read_to_string(&ssh.identity).map_err(|source| SshError::ReadIdentity {
        path: ssh.identity.clone(),
        source,
    })?;
    let identity =
        russh::keys::decode_secret_key(&text, None).map_err(|error| SshError::ParseIdentity {
            path: ssh.identity.clone(),
            reason: error.to_string(),
        })?;
    let pinned = ssh
        .host_keys
        .iter()
        .map(|line| {
            PublicKey::from_openssh(line).map_err(|error| SshError::PinnedKey {
                line: line.clone(),
                reason: error.to_string(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    // Only the public half is ever named: the private key is a secret of
    // every machine that trusts it.
    log::info!(
        "ssh: connecting to {server} as {} with key {}",
        ssh.user,
        identity.public_key().fingerprint(HashAlg::Sha256)
    );
    let started = Instant::now();
    let (requests, queue) = mpsc::channel(8);
    let (ready, connected) = std_mpsc::channel();
    let session = Session {
        address: (ssh.server, ssh.port),
        user: ssh.user.clone(),
        server: server.clone(),
        identity: Arc::new(identity),
        pinned,
        connect,
        stall,
    };
    std::thread::Builder::new()
        .name("ssh".to_owned())
        .spawn(move || session.serve(queue, ready))
        .map_err(SshError::Thread)?;
    // The thread bounds the connection by `connect` itself; the margin
    // covers a thread that cannot even start its runtime.
    match connected.recv_timeout(connect + Duration::from_secs(2)) {
        Ok(Ok(host_key_fingerprint)) => {
            log::info!(
                "ssh: connected to {server} in {:.1} s, host key {host_key_fingerprint}",
                started.elapsed().as_secs_f64()
            );
            Ok(SshConnection {
                requests,
                server,
                host_key_fingerprint,
                stall,
            })
        }
        Ok(Err(error)) => Err(error),
        Err(_) => Err(SshError::ConnectTimedOut {
            server,
            secs: connect.as_secs(),
        }),
    }
}

impl SshConnection {
    /// Runs `command` with `stdin` and waits up to the stall deadline for it
    /// to finish; a non-zero exit is an error carrying its stderr.
    fn run(&self, command: String, stdin: Vec<u8>) -> Result<Output, SshError> {
        let (reply, answer) = std_mpsc::channel();
        self.send(Request::Run {
            command: command.clone(),
            stdin,
            reply,
        })?;
        let output = self.wait(&answer)?;
        self.check_exit(&command, output)
    }

    fn send(&self, request: Request) -> Result<(), SshError> {
        self.requests
            .blocking_send(request)
            .map_err(|_| SshError::ThreadGone {
                server: self.server.clone(),
            })
    }

    /// Waits for a request's answer. The ssh thread answers every request
    /// within the stall deadline, or fails it; the margin covers a thread
    /// that died.
    fn wait(
        &self,
        answer: &std_mpsc::Receiver<Result<Output, SshError>>,
    ) -> Result<Output, SshError> {
        match answer.recv_timeout(self.stall + Duration::from_secs(2)) {
            Ok(result) => result,
            Err(std_mpsc::RecvTimeoutError::Timeout) => Err(SshError::Stalled {
                server: self.server.clone(),
                secs: self.stall.as_secs(),
            }),
            Err(std_mpsc::RecvTimeoutError::Disconnected) => Err(SshError::ThreadGone {
                server: self.server.clone(),
            }),
        }
    }

    fn check_exit(&self, command: &str, output: Output) -> Result<Output, SshError> {
        match output.exit_status {
            Some(0) => Ok(output),
            status => Err(SshError::Remote {
                server: self.server.clone(),
                command: command.to_owned(),
                outcome: match status {
                    Some(code) => format!("exited with status {code}"),
                    None => "ended without an exit status".to_owned(),
                },
                stderr: output.stderr_text(),
            }),
        }
    }

    /// Creates this dump's private directory `<directory>/<prefix><stamp>`
    /// (or `…-N` when one of the same minute is there) on the server;
    /// returns the destination and the stamp the directory got.
    pub fn create_dump_dir(
        self: &Arc<Self>,
        directory: &str,
        prefix: &str,
        stamp: &str,
    ) -> Result<(SshDestination, String), SshError> {
        let base = quote(directory);
        let name = quote(&format!("{prefix}{stamp}"));
        let stamp_quoted = quote(stamp);
        // The umask makes every directory the command creates private,
        // parents included, and every file later written into them.
        let command = format!(
            "umask 077; mkdir -p -- {base} || exit 1; n=0; \
             while [ $n -lt 1000 ]; do \
             if [ $n -eq 0 ]; then s=''; else s=-$n; fi; \
             if [ ! -e {base}/{name}\"$s\" ]; then \
             mkdir -- {base}/{name}\"$s\" || exit 1; printf '%s\\n' {stamp_quoted}\"$s\"; exit 0; \
             fi; n=$((n+1)); done; echo 'already 1000 dumps of this minute' >&2; exit 1"
        );
        let output = self.run(command, Vec::new())?;
        let got = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        let dir = format!(
            "{}/{prefix}{got}",
            directory.trim_end_matches('/').to_owned()
        );
        Ok((
            SshDestination {
                connection: self.clone(),
                dir,
            },
            got,
        ))
    }

    /// Ends the session. The ssh thread exits once every request sender is
    /// gone; this only says so in the log.
    pub fn close(self: Arc<Self>) {
        log::info!("ssh: closing the session to {}", self.server);
    }
}

/// A dump directory on an ssh server.
pub struct SshDestination {
    connection: Arc<SshConnection>,
    /// The directory's path on the server.
    dir: String,
}

impl SshDestination {
    fn remote_path(&self, name: &str) -> String {
        format!("{}/{name}", self.dir)
    }

    /// `ssh://root@10.0.2.2:22/var/crash/…/<name>`, for messages.
    fn url(&self, path: &str) -> PathBuf {
        PathBuf::from(format!("ssh://{}{path}", self.connection.server))
    }
}

/// An ssh failure as the I/O error of an artifact; the artifact's error
/// names the remote path, this says what happened there.
fn output_error(error: SshError) -> io::Error {
    io::Error::other(dumper::error_chain(&error))
}

impl Destination for SshDestination {
    fn create(&self, name: &str) -> Result<Box<dyn Artifact>, OutputError> {
        let path = self.remote_path(name);
        let partial = format!("{path}{INCOMPLETE_SUFFIX}");
        let (chunks, queue) = mpsc::channel(QUEUED_CHUNKS);
        let (reply, answer) = std_mpsc::channel();
        let command = format!("umask 077; cat > {}", quote(&partial));
        self.connection
            .send(Request::Stream {
                command: command.clone(),
                chunks: queue,
                reply,
            })
            .map_err(|error| OutputError::Create {
                path: self.url(&partial),
                source: output_error(error),
            })?;
        Ok(Box::new(SshArtifact {
            connection: self.connection.clone(),
            chunks: Some(chunks),
            answer,
            command,
            partial_url: self.url(&partial),
            partial,
            path,
            sent: 0,
        }))
    }

    fn put(&self, name: &str, bytes: &[u8]) -> Result<(), OutputError> {
        let path = self.remote_path(name);
        let partial = format!("{path}{INCOMPLETE_SUFFIX}");
        let command = format!(
            "umask 077; cat > {partial} && mv -f -- {partial} {path}",
            partial = quote(&partial),
            path = quote(&path)
        );
        self.connection
            .run(command, bytes.to_vec())
            .map(drop)
            .map_err(|error| OutputError::Write {
                path: self.url(&path),
                source: output_error(error),
            })
    }

    fn describe(&self) -> String {
        format!("ssh://{}{}", self.connection.server, self.dir)
    }

    /// Over ssh the scratch artifact is `cat > /dev/null`: the link and
    /// the session's ciphers are what is measured, not the server's disk.
    fn measure_write_rate(&self, bytes: u64) -> Result<Duration, OutputError> {
        let url = self.url("/dev/null");
        let error = |error| OutputError::Write {
            path: url.clone(),
            source: output_error(error),
        };
        let (chunks, queue) = mpsc::channel(QUEUED_CHUNKS);
        let (reply, answer) = std_mpsc::channel();
        let command = "cat > /dev/null".to_owned();
        let started = Instant::now();
        self.connection
            .send(Request::Stream {
                command: command.clone(),
                chunks: queue,
                reply,
            })
            .map_err(error)?;
        let block = dumper::output::incompressible_block();
        let mut left = bytes;
        while left > 0 {
            let n = left.min(CHUNK_BYTES as u64) as usize;
            let at = (bytes - left) as usize % block.len();
            let n = n.min(block.len() - at);
            if chunks.blocking_send(block[at..at + n].to_vec()).is_err() {
                break;
            }
            left -= n as u64;
        }
        drop(chunks);
        let output = self.connection.wait(&answer).map_err(error)?;
        self.connection
            .check_exit(&command, output)
            .map_err(error)?;
        if left > 0 {
            return Err(error(SshError::Session {
                server: self.connection.server.clone(),
                reason: format!("`{command}` took {} of {bytes} bytes", bytes - left),
            }));
        }
        Ok(started.elapsed())
    }
}

/// A remote file being streamed into by `cat`.
struct SshArtifact {
    connection: Arc<SshConnection>,
    /// Dropped to end the remote command's input.
    chunks: Option<mpsc::Sender<Vec<u8>>>,
    answer: std_mpsc::Receiver<Result<Output, SshError>>,
    command: String,
    partial: String,
    partial_url: PathBuf,
    path: String,
    sent: u64,
}

impl SshArtifact {
    /// Why the stream ended early: the ssh thread's answer.
    fn failure(&mut self) -> io::Error {
        self.chunks = None;
        let error = match self.connection.wait(&self.answer) {
            Ok(output) => match self.connection.check_exit(&self.command, output) {
                Ok(_) => SshError::Session {
                    server: self.connection.server.clone(),
                    reason: "the remote command ended before its input did".to_owned(),
                },
                Err(error) => error,
            },
            Err(error) => error,
        };
        output_error(error)
    }
}

impl io::Write for SshArtifact {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some(chunks) = &self.chunks else {
            return Err(io::Error::other("the remote file was already closed"));
        };
        // The ssh thread takes a chunk within the stall deadline or fails
        // the stream, which drops the queue and ends this wait.
        let taken = &buf[..buf.len().min(CHUNK_BYTES)];
        if chunks.blocking_send(taken.to_vec()).is_err() {
            return Err(self.failure());
        }
        self.sent += taken.len() as u64;
        Ok(taken.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Artifact for SshArtifact {
    fn commit(mut self: Box<Self>) -> Result<u64, OutputError> {
        // End of input: `cat` finishes, and its exit status says whether
        // the server wrote everything.
        self.chunks = None;
        let url = self.partial_url.clone();
        let sync_error = |error| OutputError::Sync {
            path: url.clone(),
            source: output_error(error),
        };
        let output = self.connection.wait(&self.answer).map_err(sync_error)?;
        self.connection
            .check_exit(&self.command, output)
            .map_err(sync_error)?;
        // Renamed only when the server holds every byte sent.
        let command = format!(
            "n=$(wc -c < {partial}) || exit 1; \
             if [ \"$n\" -ne {sent} ]; then echo \"the server holds $n bytes of {sent}\" >&2; exit 3; fi; \
             mv -f -- {partial} {path}",
            partial = quote(&self.partial),
            path = quote(&self.path),
            sent = self.sent
        );
        self.connection
            .run(command, Vec::new())
            .map_err(|error| OutputError::Rename {
                from: self.partial_url.clone(),
                to: PathBuf::from(&self.path),
                source: output_error(error),
            })?;
        Ok(self.sent)
    }

    fn describe(&self) -> String {
        self.partial_url.display().to_string()
    }
}

/// `text` as one word of a POSIX shell command.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// The ssh thread's state.
struct Session {
    address: (std::net::Ipv4Addr, u16),
    user: String,
    server: String,
    identity: Arc<PrivateKey>,
    pinned: Vec<PublicKey>,
    connect: Duration,
    stall: Duration,
}

/// Checks the server's host key against the pinned ones, and remembers
/// what was offered for the message when it is refused.
struct PinnedHostKey {
    pinned: Vec<PublicKey>,
    offered: Arc<Mutex<Option<String>>>,
}

impl client::Handler for PinnedHostKey {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        offered: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } = offered else {
            // Host certificates are not pinned keys; they are refused.
            return Ok(false);
        };
        if let Ok(mut slot) = self.offered.lock() {
            *slot = Some(key.fingerprint(HashAlg::Sha256).to_string());
        }
        Ok(self
            .pinned
            .iter()
            .any(|pinned| pinned.key_data() == key.key_data()))
    }
}

impl Session {
    /// The thread's life: connect, answer `ready`, then serve requests
    /// until every sender is gone.
    fn serve(
        self,
        queue: mpsc::Receiver<Request>,
        ready: std_mpsc::Sender<Result<String, SshError>>,
    ) {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
        {
            Ok(runtime) => runtime,
            Err(error) => {
                let _ = ready.send(Err(SshError::Connect {
                    server: self.server.clone(),
                    reason: format!("cannot start the async runtime: {error}"),
                }));
                return;
            }
        };
        let local = tokio::task::LocalSet::new();
        local.block_on(&runtime, async move {
            let handle = match tokio::time::timeout(self.connect, self.open()).await {
                Ok(Ok((handle, fingerprint))) => {
                    let _ = ready.send(Ok(fingerprint));
                    handle
                }
                Ok(Err(error)) => {
                    let _ = ready.send(Err(error));
                    return;
                }
                Err(_) => {
                    let _ = ready.send(Err(SshError::ConnectTimedOut {
                        server: self.server.clone(),
                        secs: self.connect.as_secs(),
                    }));
                    return;
                }
            };
            let handle = Rc::new(handle);
            let session = Rc::new(self);
            let mut queue = queue;
            let running = Rc::new(RefCell::new(Vec::new()));
            while let Some(request) = queue.recv().await {
                let task =
                    tokio::task::spawn_local(session.clone().answer(handle.clone(), request));
                running.borrow_mut().push(task);
            }
            // Every sender is gone: let running commands finish (each
            // bounded by the stall deadline), then say goodbye.
            let tasks: Vec<_> = running.borrow_mut().drain(..).collect();
            for task in tasks {
                let _ = task.await;
            }
            let _ = tokio::time::timeout(
                Duration::from_secs(2),
                handle.disconnect(Disconnect::ByApplication, "dump saved", "en"),
            )
            .await;
        });
    }

    /// Connects, checks the host key and authenticates.
    async fn open(&self) -> Result<(Handle<PinnedHostKey>, String), SshError> {
        let config = client::Config {
            // A silent peer is noticed without waiting for TCP to give up.
            keepalive_interval: Some((self.stall / 4).max(Duration::from_secs(1))),
            keepalive_max: 4,
            inactivity_timeout: None,
            ..client::Config::default()
        };
        let offered = Arc::new(Mutex::new(None));
        let handler = PinnedHostKey {
            pinned: self.pinned.clone(),
            offered: offered.clone(),
        };
        let connected = client::connect(Arc::new(config), self.address, handler).await;
        let offered_fingerprint = offered.lock().ok().and_then(|slot| slot.clone());
        let mut handle = match connected {
            Ok(handle) => handle,
            Err(russh::Error::UnknownKey) => {
                return Err(SshError::HostKeyMismatch {
                    server: self.server.clone(),
                    offered: offered_fingerprint.unwrap_or_else(|| "a certificate".to_owned()),
                    expected: self
                        .pinned
                        .iter()
                        .map(|key| key.fingerprint(HashAlg::Sha256).to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                })
            }
            Err(error) => {
                return Err(SshError::Connect {
                    server: self.server.clone(),
                    reason: error.to_string(),
                })
            }
        };
        let session_error = |error: russh::Error| SshError::Session {
            server: self.server.clone(),
            reason: error.to_string(),
        };
        let hash = if self.identity.algorithm().is_rsa() {
            handle
                .best_supported_rsa_hash()
                .await
                .map_err(session_error)?
                .flatten()
        } else {
            None
        };
        let key = PrivateKeyWithHashAlg::new(self.identity.clone(), hash);
        let auth = handle
            .authenticate_publickey(self.user.clone(), key)
            .await
            .map_err(session_error)?;
        if !auth.success() {
            return Err(SshError::AuthRefused {
                server: self.server.clone(),
                user: self.user.clone(),
                fingerprint: self
                    .identity
                    .public_key()
                    .fingerprint(HashAlg::Sha256)
                    .to_string(),
            });
        }
        Ok((handle, offered_fingerprint.unwrap_or_default()))
    }

    /// Runs one request and sends its answer.
    async fn answer(self: Rc<Self>, handle: Rc<Handle<PinnedHostKey>>, request: Request) {
        match request {
            Request::Run {
                command,
                stdin,
                reply,
            } => {
                let (chunks, queue) = mpsc::channel(1);
                // The queue holds one chunk: this cannot fail or wait.
                let _ = chunks.try_send(stdin);
                drop(chunks);
                let _ = reply.send(self.execute(&handle, &command, queue).await);
            }
            Request::Stream {
                command,
                chunks,
                reply,
            } => {
                let _ = reply.send(self.execute(&handle, &command, chunks).await);
            }
        }
    }

    /// Runs `command`, feeding it `input` while listening to what the
    /// server says: a remote command that dies (a full disk) or a session
    /// that closes ends the feeding at once instead of leaving a send
    /// waiting for a window that never opens.
    async fn execute(
        &self,
        handle: &Handle<PinnedHostKey>,
        command: &str,
        mut input: mpsc::Receiver<Vec<u8>>,
    ) -> Result<Output, SshError> {
        let stalled = || SshError::Stalled {
            server: self.server.clone(),
            secs: self.stall.as_secs(),
        };
        let session_error = |error: russh::Error| SshError::Session {
            server: self.server.clone(),
            reason: error.to_string(),
        };
        let channel = tokio::time::timeout(self.stall, handle.channel_open_session())
            .await
            .map_err(|_| stalled())?
            .map_err(session_error)?;
        tokio::time::timeout(self.stall, channel.exec(true, command))
            .await
            .map_err(|_| stalled())?
            .map_err(session_error)?;
        let (mut events, writer) = channel.split();
        let output = Rc::new(RefCell::new(Output::default()));
        // What the server says is gathered on a task of its own, which
        // ends when the channel closes.
        let (closed_tx, mut closed) = tokio::sync::oneshot::channel::<()>();
        let gathered = output.clone();
        let listener = tokio::task::spawn_local(async move {
            while let Some(message) = events.wait().await {
                let mut output = gathered.borrow_mut();
                match message {
                    ChannelMsg::Data { data } => output.stdout.extend_from_slice(&data),
                    ChannelMsg::ExtendedData { data, .. } if output.stderr.len() < STDERR_KEPT => {
                        output.stderr.extend_from_slice(&data)
                    }
                    ChannelMsg::ExitStatus { exit_status } => {
                        output.exit_status = Some(exit_status)
                    }
                    _ => {}
                }
            }
            let _ = closed_tx.send(());
        });
        let mut ended_early = false;
        loop {
            let chunk = tokio::select! {
                chunk = input.recv() => chunk,
                _ = &mut closed => { ended_early = true; break; }
            };
            let Some(chunk) = chunk else { break };
            tokio::select! {
                sent = tokio::time::timeout(self.stall, writer.data_bytes(chunk)) => {
                    sent.map_err(|_| stalled())?.map_err(session_error)?;
                }
                _ = &mut closed => { ended_early = true; break; }
            }
        }
        // Nothing more goes in: a stream that failed drops its queue here,
        // which ends the dump writer's wait.
        drop(input);
        if !ended_early {
            tokio::time::timeout(self.stall, writer.eof())
                .await
                .map_err(|_| stalled())?
                .map_err(session_error)?;
            tokio::time::timeout(self.stall, &mut closed)
                .await
                .map_err(|_| stalled())?
                .ok();
        }
        listener.abort();
        let output = std::mem::take(&mut *output.borrow_mut());
        Ok(output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;
    use std::net::{Ipv4Addr, TcpListener, TcpStream};
    use std::os::unix::fs::PermissionsExt as _;
    use std::path::Path;
    use std::process::{Child, Command, Stdio};

    /// A real sshd on a free loopback port, accepting one generated key
    /// for root; killed when dropped.
    struct Sshd {
        child: Child,
        port: u16,
        dir: tempfile::TempDir,
    }

    impl Drop for Sshd {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    fn keygen(path: &Path) -> String {
        keygen_of(path, &["-t", "ed25519"])
    }

    /// A key of the type `kind` (ssh-keygen's `-t`/`-b` arguments) at
    /// `path`; returns its public half as a known_hosts key.
    fn keygen_of(path: &Path, kind: &[&str]) -> String {
        let status = Command::new("ssh-keygen")
            .args(["-q", "-N", ""])
            .args(kind)
            .arg("-f")
            .arg(path)
            .status()
            .expect("ssh-keygen (Debian package openssh-client) must be installed");
        assert!(status.success());
        let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
        public
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    }

    impl Sshd {
        fn start() -> Sshd {
            Sshd::start_with_host_key(&["-t", "ed25519"])
        }

        fn start_with_host_key(kind: &[&str]) -> Sshd {
            let dir = tempfile::tempdir().unwrap();
            let path = |name: &str| dir.path().join(name);
            keygen_of(&path("host"), kind);
            keygen(&path("id"));
            std::fs::copy(path("id.pub"), path("authorized_keys")).unwrap();
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let config = format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile {}\n\
                 AuthorizedKeysFile {}\nPermitRootLogin prohibit-password\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
                 StrictModes no\n",
                path("host").display(),
                path("sshd.pid").display(),
                path("authorized_keys").display()
            );
            std::fs::write(path("sshd_config"), config).unwrap();
            std::fs::create_dir_all("/run/sshd").unwrap();
            let child = Command::new("/usr/sbin/sshd")
                .args(["-D", "-e", "-f"])
                .arg(path("sshd_config"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("sshd (Debian package openssh-server) must be installed");
            let started = Instant::now();
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(
                    started.elapsed() < Duration::from_secs(20),
                    "sshd did not start"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
            Sshd { child, port, dir }
        }

        fn target(&self) -> SshTarget {
            let host = std::fs::read_to_string(self.dir.path().join("host.pub")).unwrap();
            SshTarget {
                server: Ipv4Addr::LOCALHOST,
                port: self.port,
                user: "root".into(),
                identity: self.dir.path().join("id").display().to_string(),
                host_keys: vec![host
                    .split_whitespace()
                    .take(2)
                    .collect::<Vec<_>>()
                    .join(" ")],
            }
        }
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn artifacts_reach_the_server_privately_and_only_whole() {
        let sshd = Sshd::start();
        let ssh = sshd.target();
        let connection =
            Arc::new(connect(&ssh, Duration::from_secs(20), Duration::from_secs(20)).unwrap());
        assert!(connection.host_key_fingerprint.starts_with("SHA256:"));
        let base = sshd.dir.path().join("dumps/crash");
        let directory = base.display().to_string();
        let (destination, stamp) = connection
            .create_dump_dir(&directory, "web-17-", "202612031200")
            .unwrap();
        assert_eq!(stamp, "202612031200");
        let (_, second) = connection
            .create_dump_dir(&directory, "web-17-", "202612031200")
            .unwrap();
        assert_eq!(second, "202612031200-1");
        let dir = base.join("web-17-202612031200");
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&sshd.dir.path().join("dumps")), 0o700);

        destination
            .put("dmesg.202612031200", b"kernel log\n")
            .unwrap();
        assert_eq!(
            std::fs::read(dir.join("dmesg.202612031200")).unwrap(),
            b"kernel log\n"
        );
        assert_eq!(mode(&dir.join("dmesg.202612031200")), 0o600);

        let payload: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut artifact = destination.create("dump.202612031200.zst").unwrap();
        for chunk in payload.chunks(700_000) {
            artifact.write_all(chunk).unwrap();
        }
        assert!(dir.join("dump.202612031200.zst.incomplete").exists());
        assert!(!dir.join("dump.202612031200.zst").exists());
        assert_eq!(artifact.commit().unwrap(), payload.len() as u64);
        assert_eq!(
            std::fs::read(dir.join("dump.202612031200.zst")).unwrap(),
            payload
        );
        assert_eq!(mode(&dir.join("dump.202612031200.zst")), 0o600);
        assert!(destination.measure_write_rate(3 << 20).unwrap() > Duration::ZERO);
        assert!(!dir.join("dump.202612031200.zst.incomplete").exists());

        // A remote command that fails says why, in the server's words.
        let error = connection
            .run("echo 'no room' >&2; exit 4".into(), Vec::new())
            .unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains("exited with status 4; it said: no room"),
            "{text}"
        );
        connection.close();
    }

    /// Every key type `lifeboat image` accepts, as identity and as the
    /// server's host key, works with the client.
    #[test]
    fn every_accepted_key_type_authenticates_and_is_pinned() {
        let kinds: [&[&str]; 5] = [
            &["-t", "ed25519"],
            &["-t", "ecdsa", "-b", "256"],
            &["-t", "ecdsa", "-b", "384"],
            &["-t", "ecdsa", "-b", "521"],
            &["-t", "rsa", "-b", "3072"],
        ];
        for kind in kinds {
            let sshd = Sshd::start_with_host_key(kind);
            let mut ssh = sshd.target();
            let identity = sshd.dir.path().join("other-id");
            keygen_of(&identity, kind);
            let mut authorized = std::fs::OpenOptions::new()
                .append(true)
                .open(sshd.dir.path().join("authorized_keys"))
                .unwrap();
            authorized
                .write_all(&std::fs::read(identity.with_extension("pub")).unwrap())
                .unwrap();
            ssh.identity = identity.display().to_string();
            let connection = connect(&ssh, Duration::from_secs(20), Duration::from_secs(20))
                .unwrap_or_else(|error| panic!("{kind:?}: {}", dumper::error_chain(&error)));
            let output = connection.run("echo ok".into(), Vec::new()).unwrap();
            assert_eq!(output.stdout, b"ok\n", "{kind:?}");
        }
    }

    #[test]
    fn a_server_with_another_host_key_is_refused_before_authenticating() {
        let sshd = Sshd::start();
        let mut ssh = sshd.target();
        let other = tempfile::tempdir().unwrap();
        ssh.host_keys = vec![keygen(&other.path().join("other"))];
        let error = connect(&ssh, Duration::from_secs(20), Duration::from_secs(20))
            .err()
            .unwrap();
        let text = error.to_string();
        assert!(matches!(error, SshError::HostKeyMismatch { .. }), "{text}");
        assert!(text.contains("offered host key SHA256:"), "{text}");
    }

    #[test]
    fn a_key_the_server_does_not_accept_is_reported_with_its_fingerprint() {
        let sshd = Sshd::start();
        let mut ssh = sshd.target();
        let other = tempfile::tempdir().unwrap();
        keygen(&other.path().join("stranger"));
        ssh.identity = other.path().join("stranger").display().to_string();
        let error = connect(&ssh, Duration::from_secs(20), Duration::from_secs(20))
            .err()
            .unwrap();
        let text = error.to_string();
        assert!(matches!(error, SshError::AuthRefused { .. }), "{text}");
        assert!(text.contains("refused public key SHA256:"), "{text}");
        // The key itself never appears.
        let secret = std::fs::read_to_string(other.path().join("stranger")).unwrap();
        assert!(!text.contains("PRIVATE KEY") && !text.contains(&secret[40..80]));
    }

    #[test]
    fn nobody_listening_is_a_connect_error() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let sshd = Sshd::start();
        let mut ssh = sshd.target();
        ssh.port = port;
        let error = connect(&ssh, Duration::from_secs(5), Duration::from_secs(5))
            .err()
            .unwrap();
        assert!(matches!(error, SshError::Connect { .. }), "{error}");
    }

    #[test]
    fn words_are_quoted_for_a_posix_shell() {
        let cases = [
            ("/var/crash", "'/var/crash'"),
            ("it's", "'it'\\''s'"),
            ("a b$c`d`", "'a b$c`d`'"),
        ];
        for (text, quoted) in cases {
            assert_eq!(quote(text), quoted);
        }
    }
}

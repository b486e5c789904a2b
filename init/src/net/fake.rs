//! Test doubles for bringing the network up: a `/sys/class/net` tree in a
//! temporary directory, a DHCP server that answers like QEMU's user-mode
//! network (or not at all), and a [`NetSystem`] that records its calls.

use std::collections::VecDeque;
use std::io;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dhcp::fixtures::{slirp_ack, slirp_nak, slirp_offer};

use super::client::Transport;
use super::NetSystem;

/// A `/sys/class/net` of plain directories and files; clones share it.
#[derive(Clone)]
pub struct SysClassNet {
    dir: Arc<tempfile::TempDir>,
}

impl SysClassNet {
    pub fn new() -> SysClassNet {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("net")).unwrap();
        SysClassNet { dir: Arc::new(dir) }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("net")
    }

    /// Where files are made before they are moved into the tree, outside
    /// it so that a concurrent listing never sees them half made.
    fn staging(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Adds an interface; `device` gives it the `device` link of a NIC.
    /// Its files are written before its directory gets its name, as the
    /// kernel shows an interface whole.
    pub fn add(&self, name: &str, ifindex: u32, address: &str, device: bool) {
        let building = self.staging(name);
        std::fs::create_dir(&building).unwrap();
        std::fs::write(building.join("ifindex"), format!("{ifindex}\n")).unwrap();
        std::fs::write(building.join("address"), format!("{address}\n")).unwrap();
        let kind = if name == "lo" { 772 } else { 1 };
        std::fs::write(building.join("type"), format!("{kind}\n")).unwrap();
        if device {
            std::fs::create_dir(building.join("device")).unwrap();
        }
        std::fs::rename(&building, self.root().join(name)).unwrap();
    }

    /// Replaces the `carrier` file whole, so a reader never sees it half
    /// written.
    pub fn set_carrier(&self, name: &str, text: &str) {
        let temporary = self.staging(&format!("carrier-{name}"));
        std::fs::write(&temporary, text).unwrap();
        std::fs::rename(&temporary, self.root().join(name).join("carrier")).unwrap();
    }
}

/// A message the client sent, as the fake server understood it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sent {
    Discover {
        xid: u32,
    },
    Request {
        xid: u32,
        requested: Ipv4Addr,
        server_id: Ipv4Addr,
    },
}

impl Sent {
    pub fn kind(&self) -> &'static str {
        match self {
            Sent::Discover { .. } => "discover",
            Sent::Request { .. } => "request",
        }
    }

    fn parse(packet: &[u8]) -> Sent {
        let options = dhcp::parse_options(packet).unwrap();
        let xid = u32::from_be_bytes(packet[4..8].try_into().unwrap());
        let address = |code: u8| -> Ipv4Addr {
            <[u8; 4]>::try_from(options[&code].as_slice())
                .unwrap()
                .into()
        };
        match options[&53][..] {
            [1] => Sent::Discover { xid },
            [3] => Sent::Request {
                xid,
                requested: address(50),
                server_id: address(54),
            },
            ref other => panic!("the client sent message type {other:?}"),
        }
    }
}

/// How the fake server answers one REQUEST.
#[derive(Clone, Copy, Debug)]
pub enum Answer {
    Ack,
    Nak,
    Silence,
}

/// A DHCP server on the other end of a [`Transport`]: it offers `offer` to
/// every DISCOVER and answers REQUESTs as `answers` says (then ACKs), each
/// reply carrying the client's xid. `noise` comes before the first offer.
pub struct FakeServer {
    pub offer: Vec<u8>,
    pub ack: Vec<u8>,
    pub nak: Vec<u8>,
    pub answers: VecDeque<Answer>,
    pub noise: Vec<Vec<u8>>,
    /// Never answers.
    pub silent: bool,
    /// Every send fails so.
    pub send_error: Option<io::ErrorKind>,
    sent: Vec<Sent>,
    waiting: VecDeque<Vec<u8>>,
}

impl FakeServer {
    /// Answers as QEMU's user-mode network does.
    pub fn slirp() -> FakeServer {
        FakeServer {
            offer: slirp_offer(0),
            ack: slirp_ack(0),
            nak: slirp_nak(0),
            answers: VecDeque::new(),
            noise: Vec::new(),
            silent: false,
            send_error: None,
            sent: Vec::new(),
            waiting: VecDeque::new(),
        }
    }

    pub fn sent(&self) -> Vec<Sent> {
        self.sent.clone()
    }

    fn reply(&mut self, template: &[u8], xid: u32) {
        let mut reply = template.to_vec();
        reply[4..8].copy_from_slice(&xid.to_be_bytes());
        self.waiting.push_back(reply);
    }
}

impl Transport for FakeServer {
    fn send(&mut self, packet: &[u8]) -> io::Result<()> {
        if let Some(kind) = self.send_error {
            return Err(kind.into());
        }
        let sent = Sent::parse(packet);
        self.sent.push(sent.clone());
        if self.silent {
            return Ok(());
        }
        match sent {
            Sent::Discover { xid } => {
                let noise = std::mem::take(&mut self.noise);
                self.waiting.extend(noise);
                let offer = self.offer.clone();
                self.reply(&offer, xid);
            }
            Sent::Request { xid, .. } => {
                let template = match self.answers.pop_front().unwrap_or(Answer::Ack) {
                    Answer::Ack => self.ack.clone(),
                    Answer::Nak => self.nak.clone(),
                    Answer::Silence => return Ok(()),
                };
                self.reply(&template, xid);
            }
        }
        Ok(())
    }

    fn recv(&mut self, buffer: &mut [u8], timeout: Duration) -> io::Result<Option<usize>> {
        match self.waiting.pop_front() {
            Some(packet) => {
                let len = packet.len().min(buffer.len());
                buffer[..len].copy_from_slice(&packet[..len]);
                Ok(Some(len))
            }
            None => {
                std::thread::sleep(timeout);
                Ok(None)
            }
        }
    }
}

/// One call to [`FakeNet`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetCall {
    SetUp(String),
    SetAddress(String, Ipv4Addr),
    SetNetmask(String, Ipv4Addr),
    AddDefaultRoute(String, Ipv4Addr),
    DhcpTransport(String),
}

/// Records calls; the DHCP transport it opens is a slirp [`FakeServer`].
#[derive(Default)]
pub struct FakeNet {
    pub calls: Mutex<Vec<NetCall>>,
    /// The call that fails with EPERM: "set_up <interface>", or the name
    /// of another method.
    pub failing: Option<&'static str>,
    /// The DHCP server never answers.
    pub silent_dhcp: bool,
    /// Adding the default route fails with EEXIST.
    pub route_exists: bool,
}

impl FakeNet {
    pub fn failing(call: &'static str) -> FakeNet {
        FakeNet {
            failing: Some(call),
            ..FakeNet::default()
        }
    }

    pub fn calls(&self) -> Vec<NetCall> {
        self.calls.lock().unwrap().clone()
    }

    fn record(&self, name: &str, call: NetCall) -> io::Result<()> {
        self.calls.lock().unwrap().push(call);
        match self.failing {
            Some(failing) if failing == name => Err(io::Error::from_raw_os_error(libc::EPERM)),
            _ => Ok(()),
        }
    }
}

impl NetSystem for FakeNet {
    fn set_up(&self, interface: &str) -> io::Result<()> {
        self.record(
            &format!("set_up {interface}"),
            NetCall::SetUp(interface.to_owned()),
        )
    }

    fn set_address(&self, interface: &str, address: Ipv4Addr) -> io::Result<()> {
        self.record(
            "set_address",
            NetCall::SetAddress(interface.to_owned(), address),
        )
    }

    fn set_netmask(&self, interface: &str, netmask: Ipv4Addr) -> io::Result<()> {
        self.record(
            "set_netmask",
            NetCall::SetNetmask(interface.to_owned(), netmask),
        )
    }

    fn add_default_route(&self, interface: &str, gateway: Ipv4Addr) -> io::Result<()> {
        self.record(
            "add_default_route",
            NetCall::AddDefaultRoute(interface.to_owned(), gateway),
        )?;
        if self.route_exists {
            return Err(io::Error::from_raw_os_error(libc::EEXIST));
        }
        Ok(())
    }

    fn dhcp_transport(&self, interface: &str) -> io::Result<Box<dyn Transport>> {
        self.record(
            "dhcp_transport",
            NetCall::DhcpTransport(interface.to_owned()),
        )?;
        let mut server = FakeServer::slirp();
        server.silent = self.silent_dhcp;
        Ok(Box::new(server))
    }
}

//! The real [`NetSystem`]: interface ioctls through `sys.rs`, and DHCP over
//! a UDP socket on port 68 bound to the interface.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::Duration;

use dhcp::{CLIENT_PORT, SERVER_PORT};

use super::client::Transport;
use super::sys::{self, ControlSocket};
use super::NetSystem;

/// The kernel's own interfaces and routes.
pub struct Linux;

impl NetSystem for Linux {
    fn set_up(&self, interface: &str) -> io::Result<()> {
        let socket = ControlSocket::open()?;
        let flags = socket.flags(interface)?;
        let up = libc::IFF_UP as libc::c_short;
        if flags & up == 0 {
            socket.set_flags(interface, flags | up)?;
        }
        Ok(())
    }

    fn set_address(&self, interface: &str, address: Ipv4Addr) -> io::Result<()> {
        ControlSocket::open()?.set_address(interface, address)
    }

    fn set_netmask(&self, interface: &str, netmask: Ipv4Addr) -> io::Result<()> {
        ControlSocket::open()?.set_netmask(interface, netmask)
    }

    fn add_default_route(&self, interface: &str, gateway: Ipv4Addr) -> io::Result<()> {
        ControlSocket::open()?.add_default_route(interface, gateway)
    }

    /// A socket on 0.0.0.0:68, bound to the interface, allowed to
    /// broadcast. An interface without an address receives the servers'
    /// broadcast replies on it: no packet socket is needed, because the
    /// client sets the broadcast flag.
    ///
    /// No SO_REUSEADDR: nothing else in PID 1 listens on port 68, and a UDP
    /// port is free again as soon as its socket closes, so a second bring-up
    /// binds it as well as the first.
    fn dhcp_transport(&self, interface: &str) -> io::Result<Box<dyn Transport>> {
        let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, CLIENT_PORT))
            .map_err(context("binding port 68"))?;
        sys::bind_to_device(&socket, interface).map_err(context("SO_BINDTODEVICE"))?;
        socket
            .set_broadcast(true)
            .map_err(context("SO_BROADCAST"))?;
        Ok(Box::new(UdpTransport { socket }))
    }
}

/// Says which step of opening the DHCP socket failed.
fn context(what: &'static str) -> impl Fn(io::Error) -> io::Error {
    move |error| io::Error::new(error.kind(), format!("{what}: {error}"))
}

struct UdpTransport {
    socket: UdpSocket,
}

impl Transport for UdpTransport {
    fn send(&mut self, packet: &[u8]) -> io::Result<()> {
        let servers = SocketAddrV4::new(Ipv4Addr::BROADCAST, SERVER_PORT);
        self.socket.send_to(packet, servers).map(drop)
    }

    fn recv(&mut self, buffer: &mut [u8], timeout: Duration) -> io::Result<Option<usize>> {
        // A zero timeout would mean "block forever".
        self.socket
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))?;
        match self.socket.recv(buffer) {
            Ok(len) => Ok(Some(len)),
            // The timeout passed, or a signal came: the caller checks its
            // deadline and calls again if time is left.
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }
}

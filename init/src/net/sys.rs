//! The system calls of bringing an interface up that need `unsafe`: the
//! interface ioctls (flags, address, netmask, route) and SO_BINDTODEVICE.
//! Each is a safe function returning `io::Result`; the `unsafe` stays here.

#![allow(unsafe_code)]

use std::io;
use std::net::{Ipv4Addr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// An interface name as the kernel takes it: at most `IFNAMSIZ - 1` bytes,
/// NUL-terminated in an `IFNAMSIZ` array.
type IfName = [libc::c_char; libc::IFNAMSIZ];

fn interface_name(name: &str) -> io::Result<IfName> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not a valid interface name"),
        ));
    }
    let mut array: IfName = [0; libc::IFNAMSIZ];
    for (slot, &byte) in array.iter_mut().zip(bytes) {
        *slot = byte as libc::c_char;
    }
    Ok(array)
}

/// An AF_INET `sockaddr` for `address`, port 0: the bytes of a
/// `sockaddr_in` (family, port, address, zero padding), built field by
/// field so that no cast between the two structs is needed.
fn sockaddr_in(address: Ipv4Addr) -> libc::sockaddr {
    // After the family come sin_port (two bytes, zero here) and sin_addr in
    // network order; the rest is sin_zero.
    let mut data = [0; 14];
    for (slot, byte) in data[2..6].iter_mut().zip(address.octets()) {
        *slot = byte as libc::c_char;
    }
    libc::sockaddr {
        sa_family: libc::AF_INET as libc::sa_family_t,
        sa_data: data,
    }
}

/// An AF_INET datagram socket, which the interface ioctls go through; it
/// sends nothing.
pub(super) struct ControlSocket(OwnedFd);

impl ControlSocket {
    pub(super) fn open() -> io::Result<ControlSocket> {
        // SAFETY: socket() takes no pointers; it returns a new descriptor
        // or -1.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by socket(), is open, and nothing
        // else owns it, so OwnedFd may close it (once, when dropped).
        Ok(ControlSocket(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// An `ifreq` naming `interface`, its union zeroed.
    fn request(interface: &str) -> io::Result<libc::ifreq> {
        let name = interface_name(interface)?;
        // SAFETY: ifreq is a C struct of a char array and a union of
        // sockaddrs, integers, a char array and a pointer; all-zero bytes
        // are a valid value of each (the pointer being null).
        let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
        request.ifr_name = name;
        Ok(request)
    }

    /// Issues one of the SIOC?IF* ioctls, each of which reads (and for the
    /// getters, writes) exactly one `ifreq`.
    fn ioctl(&self, code: libc::c_ulong, request: &mut libc::ifreq) -> io::Result<()> {
        // SAFETY: the callers pass only SIOCGIFFLAGS, SIOCSIFFLAGS,
        // SIOCSIFADDR and SIOCSIFNETMASK, whose argument is a pointer to
        // one struct ifreq; `request` is a live, initialised ifreq borrowed
        // mutably for the duration of the call, with a NUL-terminated name.
        let rc = unsafe { libc::ioctl(self.0.as_raw_fd(), code as _, request as *mut libc::ifreq) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// The interface's flags (IFF_*).
    pub(super) fn flags(&self, interface: &str) -> io::Result<libc::c_short> {
        let mut request = Self::request(interface)?;
        self.ioctl(libc::SIOCGIFFLAGS, &mut request)?;
        // SAFETY: SIOCGIFFLAGS stored the flags in `ifru_flags`; the union
        // was zeroed before, so its bytes are initialised whatever the
        // kernel wrote, and any bit pattern is a valid c_short.
        Ok(unsafe { request.ifr_ifru.ifru_flags })
    }

    pub(super) fn set_flags(&self, interface: &str, flags: libc::c_short) -> io::Result<()> {
        let mut request = Self::request(interface)?;
        request.ifr_ifru.ifru_flags = flags;
        self.ioctl(libc::SIOCSIFFLAGS, &mut request)
    }

    pub(super) fn set_address(&self, interface: &str, address: Ipv4Addr) -> io::Result<()> {
        let mut request = Self::request(interface)?;
        request.ifr_ifru.ifru_addr = sockaddr_in(address);
        self.ioctl(libc::SIOCSIFADDR, &mut request)
    }

    pub(super) fn set_netmask(&self, interface: &str, netmask: Ipv4Addr) -> io::Result<()> {
        let mut request = Self::request(interface)?;
        request.ifr_ifru.ifru_netmask = sockaddr_in(netmask);
        self.ioctl(libc::SIOCSIFNETMASK, &mut request)
    }

    /// Adds the route to 0.0.0.0/0 via `gateway` out of `interface`.
    pub(super) fn add_default_route(&self, interface: &str, gateway: Ipv4Addr) -> io::Result<()> {
        let mut device = interface_name(interface)?;
        // SAFETY: rtentry is a C struct of integers, sockaddrs and one
        // pointer; all-zero bytes are a valid value of each (the pointer
        // being null until set below).
        let mut route: libc::rtentry = unsafe { std::mem::zeroed() };
        route.rt_dst = sockaddr_in(Ipv4Addr::UNSPECIFIED);
        route.rt_genmask = sockaddr_in(Ipv4Addr::UNSPECIFIED);
        route.rt_gateway = sockaddr_in(gateway);
        route.rt_flags = libc::RTF_UP | libc::RTF_GATEWAY;
        route.rt_dev = device.as_mut_ptr();
        // SAFETY: SIOCADDRT reads one struct rtentry, and `route` is live
        // and initialised for the call. Through rt_dev the kernel copies
        // IFNAMSIZ - 1 bytes whatever the name's length (see
        // rtentry_to_fib_config in net/ipv4/fib_frontend.c), so rt_dev
        // points at the whole IFNAMSIZ array `device`, NUL-terminated, which
        // outlives the call.
        let rc = unsafe {
            libc::ioctl(
                self.0.as_raw_fd(),
                libc::SIOCADDRT as _,
                &mut route as *mut libc::rtentry,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// Makes `socket` send and receive only through `interface`
/// (SO_BINDTODEVICE): DHCP must go out of the interface being configured,
/// which has no address or route yet.
pub(super) fn bind_to_device(socket: &UdpSocket, interface: &str) -> io::Result<()> {
    let name = interface_name(interface)?;
    let len = interface.len() + 1;
    // SAFETY: setsockopt reads `len` bytes at the option pointer: `name`
    // holds the interface name and its NUL (len <= IFNAMSIZ, checked by
    // interface_name) and lives until after the call; the descriptor is
    // the open socket `socket` borrows.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_BINDTODEVICE,
            name.as_ptr().cast(),
            len as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_before_any_call() {
        let cases = [
            ("eth0", true),
            ("enp0s31f6", true),
            ("fifteen-chars-x", true),
            ("sixteen-chars-xx", false),
            ("", false),
            ("eth\0", false),
        ];
        for (name, valid) in cases {
            assert_eq!(interface_name(name).is_ok(), valid, "{name:?}");
        }
        let array = interface_name("eth0").unwrap();
        assert_eq!(
            array[..5],
            [b'e' as libc::c_char, b't' as _, b'h' as _, b'0' as _, 0]
        );
    }

    /// The hand-built sockaddr has the bytes the C struct sockaddr_in would.
    #[test]
    fn sockaddr_in_is_laid_out_as_in_c() {
        let address = Ipv4Addr::new(10, 0, 2, 15);
        let expected = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from_ne_bytes(address.octets()),
            },
            sin_zero: [0; 8],
        };
        let built = sockaddr_in(address);
        assert_eq!(
            std::mem::size_of::<libc::sockaddr>(),
            std::mem::size_of::<libc::sockaddr_in>()
        );
        // SAFETY: both are 16-byte C structs without padding (a u16 and 14
        // bytes; a u16, a u16, a u32 and 8 bytes), fully initialised above,
        // so all their bytes may be read for as long as they live.
        let (built, expected) = unsafe {
            (
                std::slice::from_raw_parts((&built as *const libc::sockaddr).cast::<u8>(), 16),
                std::slice::from_raw_parts(
                    (&expected as *const libc::sockaddr_in).cast::<u8>(),
                    16,
                ),
            )
        };
        assert_eq!(built, expected);
    }

    /// The interface ioctls reach the kernel and report its errors: asking
    /// for the flags of an interface that does not exist is ENODEV, for
    /// anyone, without privileges.
    #[test]
    fn ioctls_report_the_kernel_s_errors() {
        let socket = ControlSocket::open().unwrap();
        let error = socket.flags("nonexistent0").unwrap_err();
        assert_eq!(error.raw_os_error(), Some(libc::ENODEV), "{error}");
        let lo = socket.flags("lo").unwrap();
        assert_ne!(lo & libc::IFF_LOOPBACK as libc::c_short, 0);
    }
}

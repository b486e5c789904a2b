//! The network that carries network targets: which interface, which IPv4
//! address, and the checks both forms of the config share (a MAC address, a
//! subnet's host addresses, a gateway on the subnet).

use std::fmt;
use std::net::Ipv4Addr;

/// Which network interface carries the network targets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InterfaceSpec {
    /// The capture kernel's first network card (lowest ifindex, loopback
    /// and virtual interfaces aside), whose carrier PID 1 then waits for.
    Auto,
    /// An interface by its kernel name (`eth0`): without udev, the capture
    /// kernel names interfaces in probe order, not predictably.
    Name(String),
    /// The interface with this MAC address.
    Mac([u8; 6]),
}

impl InterfaceSpec {
    /// Parses `auto`, `mac:52:54:00:12:34:56`, `name:eth0` or a bare
    /// interface name (`eth0`). The `name:` form, which the baked form
    /// writes, names an interface that happens to be called `auto`; the
    /// kernel allows no `:` in interface names, so neither form is ambiguous.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text == "auto" {
            return Ok(Self::Auto);
        }
        if let Some(mac) = text.strip_prefix("mac:") {
            return parse_mac(mac).map(Self::Mac);
        }
        let name = text.strip_prefix("name:").unwrap_or(text);
        check_interface_name(name)?;
        Ok(Self::Name(name.to_owned()))
    }
}

impl fmt::Display for InterfaceSpec {
    /// The baked form: `auto`, `name:eth0` or `mac:52:54:00:12:34:56`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Name(name) => write!(f, "name:{name}"),
            Self::Mac(mac) => {
                f.write_str("mac:")?;
                for (index, byte) in mac.iter().enumerate() {
                    if index > 0 {
                        f.write_str(":")?;
                    }
                    write!(f, "{byte:02x}")?;
                }
                Ok(())
            }
        }
    }
}

/// Checks a kernel interface name as the kernel's own `dev_valid_name`
/// does: 1 to 15 bytes (IFNAMSIZ less the NUL), no `/`, `:` or white
/// space, and neither `.` nor `..`.
pub fn check_interface_name(name: &str) -> Result<(), String> {
    let fine = !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control());
    if fine {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not an interface name (1 to 15 characters, no `/`, `:` or spaces); \
             expected \"auto\", a name such as \"eth0\", or \"mac:52:54:00:12:34:56\""
        ))
    }
}

/// Six hex bytes separated by colons, either case.
fn parse_mac(text: &str) -> Result<[u8; 6], String> {
    let bad = || {
        format!("`{text}` is not a MAC address; expected six hex bytes such as 52:54:00:12:34:56")
    };
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        let part = parts.next().ok_or_else(bad)?;
        // from_str_radix takes a sign, which a MAC address has not.
        if part.len() != 2 || !part.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad());
        }
        *byte = u8::from_str_radix(part, 16).map_err(|_| bad())?;
    }
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok(mac)
}

/// How the interface gets its IPv4 address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddressSpec {
    Dhcp,
    Static {
        address: Ipv4Addr,
        prefix_len: u8,
        gateway: Option<Ipv4Addr>,
    },
}

impl AddressSpec {
    /// Parses `dhcp` or `a.b.c.d/N` (N from 1 to 32), with no gateway: a
    /// gateway is set apart, with [`AddressSpec::with_gateway`].
    pub fn parse(text: &str) -> Result<Self, String> {
        if text == "dhcp" {
            return Ok(Self::Dhcp);
        }
        let expected = "expected \"dhcp\" or an address with its prefix length, \
                        such as \"192.0.2.10/24\"";
        let Some((address, prefix)) = text.split_once('/') else {
            return Err(format!("`{text}` has no prefix length; {expected}"));
        };
        let address: Ipv4Addr = address
            .parse()
            .map_err(|_| format!("`{address}` is not an IPv4 address; {expected}"))?;
        let prefix_len = match prefix.parse::<u8>() {
            Ok(len) if (1..=32).contains(&len) && !prefix.starts_with('+') => len,
            _ => return Err(format!("`/{prefix}` is not a prefix length from 1 to 32")),
        };
        check_host_address(address, prefix_len)?;
        Ok(Self::Static {
            address,
            prefix_len,
            gateway: None,
        })
    }

    /// The static address with `gateway`, which must be another host of its
    /// subnet: the capture kernel has no other route to a gateway.
    pub fn with_gateway(self, gateway: Ipv4Addr) -> Result<Self, String> {
        let Self::Static {
            address,
            prefix_len,
            ..
        } = self
        else {
            return Err(
                "a gateway goes only with a static address: DHCP brings its own".to_owned(),
            );
        };
        if !same_subnet(address, gateway, prefix_len) {
            let network = Ipv4Addr::from(u32::from(address) & netmask(prefix_len));
            return Err(format!(
                "gateway {gateway} is outside {network}/{prefix_len}, the subnet of {address}"
            ));
        }
        if gateway == address {
            return Err(format!("gateway {gateway} is the address itself"));
        }
        check_host_address(gateway, prefix_len).map_err(|message| format!("gateway: {message}"))?;
        Ok(Self::Static {
            address,
            prefix_len,
            gateway: Some(gateway),
        })
    }

    /// Whether `server` is reachable from this address without a route the
    /// config does not give: always with DHCP (it brings a router) or a
    /// gateway, else only inside the subnet.
    pub fn reaches(&self, server: Ipv4Addr) -> bool {
        match self {
            Self::Dhcp
            | Self::Static {
                gateway: Some(_), ..
            } => true,
            Self::Static {
                address,
                prefix_len,
                gateway: None,
            } => same_subnet(*address, server, *prefix_len),
        }
    }
}

impl fmt::Display for AddressSpec {
    /// `dhcp` or `a.b.c.d/N`; the gateway is not part of it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dhcp => f.write_str("dhcp"),
            Self::Static {
                address,
                prefix_len,
                ..
            } => write!(f, "{address}/{prefix_len}"),
        }
    }
}

/// The netmask of a prefix length from 0 to 32, as a number.
fn netmask(prefix_len: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(prefix_len.min(32)))
        .unwrap_or(0)
}

fn same_subnet(a: Ipv4Addr, b: Ipv4Addr, prefix_len: u8) -> bool {
    let mask = netmask(prefix_len);
    u32::from(a) & mask == u32::from(b) & mask
}

/// Checks that `address` can be a host's own address in a subnet of
/// `prefix_len`: a unicast address that is not the subnet's network or
/// broadcast address (subnets of /31 and /32 have neither).
pub fn check_host_address(address: Ipv4Addr, prefix_len: u8) -> Result<(), String> {
    check_unicast(address)?;
    if prefix_len < 31 {
        let host = u32::from(address) & !netmask(prefix_len);
        if host == 0 {
            return Err(format!(
                "{address} is the network address of {address}/{prefix_len}, not a host's"
            ));
        }
        if host == !netmask(prefix_len) {
            return Err(format!(
                "{address} is the broadcast address of {address}/{prefix_len}, not a host's"
            ));
        }
    }
    Ok(())
}

/// Checks the address of a server, or of the capture kernel itself: one
/// host of a network, so not 0.0.0.0, a loopback, multicast or the limited
/// broadcast address.
pub fn check_unicast(address: Ipv4Addr) -> Result<(), String> {
    let what = if address.is_unspecified() {
        "the unspecified address"
    } else if address.is_loopback() {
        "a loopback address"
    } else if address.is_multicast() {
        "a multicast address"
    } else if address.is_broadcast() {
        "the broadcast address"
    } else {
        return Ok(());
    };
    Err(format!("{address} is {what}, not a host on the network"))
}

/// Checks the name a machine gives its dumps on shared targets: a file name
/// component of letters, digits, `.`, `_` and `-`, not starting with `.`,
/// at most 64 characters (a host name's limit).
pub fn check_dump_name(name: &str) -> Result<(), String> {
    if crate::is_portable_name(name, 64, '.') {
        Ok(())
    } else {
        Err(format!(
            "`{name}` cannot name a dump directory: use 1 to 64 letters, digits, `.`, `_` \
             and `-`, not starting with `.`"
        ))
    }
}

/// How PID 1 brings up the network for network targets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Network {
    pub interface: InterfaceSpec,
    pub address: AddressSpec,
    /// Names the dump directory on shared targets (`<name>-<stamp>`).
    pub name: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interfaces_parse() {
        let cases: &[(&str, Result<InterfaceSpec, &str>)] = &[
            ("auto", Ok(InterfaceSpec::Auto)),
            ("eth0", Ok(InterfaceSpec::Name("eth0".into()))),
            ("name:eth0", Ok(InterfaceSpec::Name("eth0".into()))),
            ("name:auto", Ok(InterfaceSpec::Name("auto".into()))),
            ("enp0s31f6", Ok(InterfaceSpec::Name("enp0s31f6".into()))),
            (
                "a23456789012345",
                Ok(InterfaceSpec::Name("a23456789012345".into())),
            ),
            (
                "mac:52:54:00:12:34:56",
                Ok(InterfaceSpec::Mac([0x52, 0x54, 0, 0x12, 0x34, 0x56])),
            ),
            (
                "mac:AA:bb:CC:dd:EE:ff",
                Ok(InterfaceSpec::Mac([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff])),
            ),
            ("", Err("not an interface name")),
            ("a234567890123456", Err("not an interface name")),
            ("eth0:1", Err("not an interface name")),
            ("eth 0", Err("not an interface name")),
            ("a/b", Err("not an interface name")),
            ("..", Err("not an interface name")),
            ("name:", Err("not an interface name")),
            ("mac:52:54:00:12:34", Err("not a MAC address")),
            ("mac:52:54:00:12:34:56:78", Err("not a MAC address")),
            ("mac:52:54:00:12:34:5", Err("not a MAC address")),
            ("mac:52:54:00:12:34:5g", Err("not a MAC address")),
            ("mac:525400123456", Err("not a MAC address")),
            ("mac:+1:54:00:12:34:56", Err("not a MAC address")),
        ];
        for (text, expected) in cases {
            match (InterfaceSpec::parse(text), expected) {
                (Ok(got), Ok(want)) => {
                    assert_eq!(&got, want, "{text}");
                    assert_eq!(InterfaceSpec::parse(&got.to_string()), Ok(got));
                }
                (Err(got), Err(needle)) => assert!(got.contains(needle), "{text}: {got}"),
                (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn addresses_and_gateways_parse() {
        let ip = |text: &str| text.parse::<Ipv4Addr>().unwrap();
        let fixed = |address: &str, prefix_len, gateway: Option<&str>| AddressSpec::Static {
            address: ip(address),
            prefix_len,
            gateway: gateway.map(ip),
        };
        // (address, gateway, result)
        let cases: &[(&str, Option<&str>, Result<AddressSpec, &str>)] = &[
            ("dhcp", None, Ok(AddressSpec::Dhcp)),
            ("192.0.2.10/24", None, Ok(fixed("192.0.2.10", 24, None))),
            (
                "192.0.2.10/24",
                Some("192.0.2.1"),
                Ok(fixed("192.0.2.10", 24, Some("192.0.2.1"))),
            ),
            (
                "10.0.0.1/8",
                Some("10.255.0.1"),
                Ok(fixed("10.0.0.1", 8, Some("10.255.0.1"))),
            ),
            // /31 and /32 have no network or broadcast address.
            ("192.0.2.0/31", None, Ok(fixed("192.0.2.0", 31, None))),
            (
                "192.0.2.1/31",
                Some("192.0.2.0"),
                Ok(fixed("192.0.2.1", 31, Some("192.0.2.0"))),
            ),
            ("192.0.2.255/32", None, Ok(fixed("192.0.2.255", 32, None))),
            ("DHCP", None, Err("has no prefix length")),
            ("192.0.2.10", None, Err("has no prefix length")),
            ("192.0.2/24", None, Err("not an IPv4 address")),
            ("192.0.2.10/0", None, Err("not a prefix length")),
            ("192.0.2.10/33", None, Err("not a prefix length")),
            ("192.0.2.10/+24", None, Err("not a prefix length")),
            ("192.0.2.10/", None, Err("not a prefix length")),
            ("192.0.2.0/24", None, Err("network address")),
            ("192.0.2.255/24", None, Err("broadcast address of")),
            ("127.0.0.2/8", None, Err("loopback")),
            ("224.0.0.1/4", None, Err("multicast")),
            ("0.0.0.0/32", None, Err("unspecified")),
            ("dhcp", Some("192.0.2.1"), Err("only with a static address")),
            (
                "192.0.2.10/24",
                Some("192.0.3.1"),
                Err("outside 192.0.2.0/24"),
            ),
            (
                "192.0.2.10/24",
                Some("192.0.2.10"),
                Err("the address itself"),
            ),
            (
                "192.0.2.10/24",
                Some("192.0.2.255"),
                Err("gateway: 192.0.2.255 is the broadcast"),
            ),
            (
                "192.0.2.10/24",
                Some("192.0.2.0"),
                Err("gateway: 192.0.2.0 is the network"),
            ),
        ];
        for (address, gateway, expected) in cases {
            let got = AddressSpec::parse(address).and_then(|spec| match gateway {
                Some(gateway) => spec.with_gateway(ip(gateway)),
                None => Ok(spec),
            });
            match (got, expected) {
                (Ok(got), Ok(want)) => assert_eq!(&got, want, "{address} {gateway:?}"),
                (Err(got), Err(needle)) => {
                    assert!(got.contains(needle), "{address} {gateway:?}: {got}")
                }
                (got, want) => panic!("{address} {gateway:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn addresses_know_what_they_reach() {
        let ip = |text: &str| text.parse::<Ipv4Addr>().unwrap();
        let lan = AddressSpec::parse("192.0.2.10/24").unwrap();
        assert!(lan.reaches(ip("192.0.2.200")));
        assert!(!lan.reaches(ip("198.51.100.1")));
        let routed = lan.with_gateway(ip("192.0.2.1")).unwrap();
        assert!(routed.reaches(ip("198.51.100.1")));
        assert!(AddressSpec::Dhcp.reaches(ip("198.51.100.1")));
    }
}

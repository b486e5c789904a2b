//! Network interfaces as `/sys/class/net` shows them: which one the config
//! means, and whether its link has carrier. Without udev, interfaces appear
//! as their drivers probe them, after the module loaded, so both are polled
//! for within a deadline.

use std::fmt;
use std::fs;
use std::path::Path;
use std::time::Duration;

use lifeboat_config::InterfaceSpec;

use super::{poll, NetError};

/// `type` of a loopback device (ARPHRD_LOOPBACK in linux/if_arp.h).
const ARPHRD_LOOPBACK: u32 = 772;

/// One entry of `/sys/class/net`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    /// Missing or unreadable counts as last.
    pub ifindex: u32,
    /// The `address` file as the kernel wrote it (`52:54:00:12:34:56`), or
    /// "unknown".
    pub address: String,
    /// The address as an Ethernet MAC, when it is one.
    pub mac: Option<[u8; 6]>,
    /// Whether a `device` link leads to the hardware (or virtual device)
    /// behind it: real NICs have one; lo, bridges and tunnels do not.
    pub has_device: bool,
    pub loopback: bool,
}

impl Interface {
    fn read(dir: &Path, name: String) -> Interface {
        let text = |file: &str| {
            fs::read_to_string(dir.join(file))
                .ok()
                .map(|text| text.trim().to_owned())
        };
        let address = text("address").filter(|text| !text.is_empty());
        Interface {
            ifindex: text("ifindex")
                .and_then(|text| text.parse().ok())
                .unwrap_or(u32::MAX),
            mac: address.as_deref().and_then(parse_mac),
            address: address.unwrap_or_else(|| "unknown".to_owned()),
            has_device: dir.join("device").symlink_metadata().is_ok(),
            loopback: name == "lo"
                || text("type").and_then(|text| text.parse().ok()) == Some(ARPHRD_LOOPBACK),
            name,
        }
    }

    /// Whether `Auto` may choose it: a real NIC.
    fn is_nic(&self) -> bool {
        !self.loopback && self.has_device
    }
}

/// Every interface under `root`, by ifindex (the kernel's probe order).
pub fn list(root: &Path) -> Vec<Interface> {
    let Ok(entries) = fs::read_dir(root) else {
        return Vec::new();
    };
    let mut interfaces: Vec<Interface> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            Some(Interface::read(&entry.path(), name))
        })
        .collect();
    interfaces.sort_by(|a, b| (a.ifindex, &a.name).cmp(&(b.ifindex, &b.name)));
    interfaces
}

/// The interface `spec` means among `interfaces` (sorted by ifindex).
pub fn choose<'a>(interfaces: &'a [Interface], spec: &InterfaceSpec) -> Option<&'a Interface> {
    interfaces.iter().find(|interface| match spec {
        InterfaceSpec::Auto => interface.is_nic(),
        InterfaceSpec::Name(name) => interface.name == *name,
        InterfaceSpec::Mac(mac) => interface.mac == Some(*mac),
    })
}

/// Polls `root` for the interface `spec` means until `within` has passed.
pub fn wait_for_interface(
    root: &Path,
    spec: &InterfaceSpec,
    within: Duration,
) -> Result<(Interface, Duration), NetError> {
    let mut seen = Vec::new();
    poll(within, || {
        seen = list(root);
        choose(&seen, spec).cloned()
    })
    .map_err(|_| NetError::InterfaceNotFound {
        spec: Spec(spec).to_string(),
        within,
        seen: describe(&seen),
    })
}

/// Polls the interface's `carrier` until it reads 1 or `within` has passed.
pub fn wait_for_carrier(root: &Path, name: &str, within: Duration) -> Result<Duration, NetError> {
    let path = root.join(name).join("carrier");
    poll(within, || has_carrier(&path).then_some(()))
        .map(|((), waited)| waited)
        .map_err(|_| NetError::NoCarrier {
            interface: name.to_owned(),
            within,
        })
}

/// Reading `carrier` fails with EINVAL while the interface is down, and
/// right after it went up; that counts as no carrier yet.
fn has_carrier(path: &Path) -> bool {
    fs::read_to_string(path).is_ok_and(|text| text.trim() == "1")
}

/// "eth0 52:54:00:12:34:56, lo 00:00:00:00:00:00 (loopback)", or "none".
fn describe(interfaces: &[Interface]) -> String {
    if interfaces.is_empty() {
        return "none".to_owned();
    }
    let described: Vec<String> = interfaces
        .iter()
        .map(|interface| {
            let why_not_auto = if interface.loopback {
                " (loopback)"
            } else if !interface.has_device {
                " (virtual)"
            } else {
                ""
            };
            format!("{} {}{why_not_auto}", interface.name, interface.address)
        })
        .collect();
    described.join(", ")
}

/// An interface spec as a person reads it in a log line.
pub struct Spec<'a>(pub &'a InterfaceSpec);

impl fmt::Display for Spec<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            InterfaceSpec::Auto => f.write_str("auto (the first NIC)"),
            InterfaceSpec::Name(name) => f.write_str(name),
            InterfaceSpec::Mac(mac) => write!(f, "with MAC {}", format_mac(*mac)),
        }
    }
}

/// `52:54:00:12:34:56` (either case) as bytes.
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        let part = parts.next()?;
        // from_str_radix alone would take a sign ("+5").
        if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

pub fn format_mac(mac: [u8; 6]) -> String {
    let parts: Vec<String> = mac.iter().map(|byte| format!("{byte:02x}")).collect();
    parts.join(":")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::fake::SysClassNet;

    #[test]
    fn macs_parse() {
        let cases: [(&str, Option<[u8; 6]>); 7] = [
            ("52:54:00:12:34:56", Some([0x52, 0x54, 0, 0x12, 0x34, 0x56])),
            (
                "AA:bb:CC:dd:EE:ff",
                Some([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]),
            ),
            ("52:54:00:12:34", None),
            ("52:54:00:12:34:56:78", None),
            ("52:54:00:12:34:5", None),
            ("52:54:00:12:34:+5", None),
            // A 20-byte InfiniBand address is no Ethernet MAC.
            (
                "00:00:01:07:fe:80:00:00:00:00:00:00:52:54:00:ff:fe:12:34:56",
                None,
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_mac(text), expected, "{text}");
        }
        assert_eq!(
            format_mac([0x52, 0x54, 0, 0x12, 0x34, 0xab]),
            "52:54:00:12:34:ab"
        );
    }

    /// A tree like a QEMU guest's with two NICs, a dummy and lo, listed in
    /// an order other than their ifindex.
    fn tree() -> SysClassNet {
        let net = SysClassNet::new();
        net.add("eth1", 3, "52:54:00:00:00:02", true);
        net.add("dummy0", 4, "ee:c0:ff:ee:00:01", false);
        net.add("lo", 1, "00:00:00:00:00:00", false);
        net.add("eth0", 2, "52:54:00:00:00:01", true);
        net
    }

    #[test]
    fn interfaces_are_chosen_by_spec() {
        let net = tree();
        let interfaces = list(&net.root());
        let names: Vec<&str> = interfaces.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["lo", "eth0", "eth1", "dummy0"]);
        assert!(interfaces[0].loopback);
        let cases: [(InterfaceSpec, Option<&str>); 7] = [
            (InterfaceSpec::Auto, Some("eth0")),
            (InterfaceSpec::Name("eth1".into()), Some("eth1")),
            (InterfaceSpec::Name("dummy0".into()), Some("dummy0")),
            (InterfaceSpec::Name("eth9".into()), None),
            (InterfaceSpec::Mac([0x52, 0x54, 0, 0, 0, 2]), Some("eth1")),
            (
                InterfaceSpec::Mac([0xee, 0xc0, 0xff, 0xee, 0, 1]),
                Some("dummy0"),
            ),
            (InterfaceSpec::Mac([0x52, 0x54, 0, 0, 0, 9]), None),
        ];
        for (spec, expected) in cases {
            let chosen = choose(&interfaces, &spec).map(|i| i.name.as_str());
            assert_eq!(chosen, expected, "{spec:?}");
        }
    }

    #[test]
    fn auto_skips_loopback_and_virtual_interfaces() {
        let net = SysClassNet::new();
        net.add("lo", 1, "00:00:00:00:00:00", true);
        net.add("br0", 2, "52:54:00:00:00:01", false);
        let interfaces = list(&net.root());
        assert_eq!(choose(&interfaces, &InterfaceSpec::Auto), None);
        let error =
            wait_for_interface(&net.root(), &InterfaceSpec::Auto, Duration::ZERO).unwrap_err();
        assert_eq!(
            error.to_string(),
            "no network interface auto (the first NIC) within 0 s (interfaces seen: \
             lo 00:00:00:00:00:00 (loopback), br0 52:54:00:00:00:01 (virtual))"
        );
    }

    #[test]
    fn an_interface_probed_late_is_waited_for() {
        let net = SysClassNet::new();
        net.add("lo", 1, "00:00:00:00:00:00", false);
        let later = net.clone();
        let adder = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(60));
            later.add("eth0", 2, "52:54:00:12:34:56", true);
        });
        let (found, _) =
            wait_for_interface(&net.root(), &InterfaceSpec::Auto, Duration::from_secs(5)).unwrap();
        adder.join().unwrap();
        assert_eq!(found.name, "eth0");
        assert_eq!(found.mac, Some([0x52, 0x54, 0, 0x12, 0x34, 0x56]));
    }

    #[test]
    fn a_missing_interface_is_an_error_listing_those_seen() {
        let net = tree();
        let spec = InterfaceSpec::Mac([0x52, 0x54, 0, 0, 0, 9]);
        let error = wait_for_interface(&net.root(), &spec, Duration::from_millis(100)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "no network interface with MAC 52:54:00:00:00:09 within 0.1 s (interfaces seen: \
             lo 00:00:00:00:00:00 (loopback), eth0 52:54:00:00:00:01, \
             eth1 52:54:00:00:00:02, dummy0 ee:c0:ff:ee:00:01 (virtual))"
        );
        let empty = tempfile::tempdir().unwrap();
        let error = wait_for_interface(
            &empty.path().join("missing"),
            &InterfaceSpec::Name("eth0".into()),
            Duration::ZERO,
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "no network interface eth0 within 0 s (interfaces seen: none)"
        );
    }

    #[test]
    fn carrier_is_polled_for() {
        let net = tree();
        // No carrier file reads as EINVAL does: not yet.
        let error = wait_for_carrier(&net.root(), "eth0", Duration::from_millis(100)).unwrap_err();
        assert_eq!(error.to_string(), "no carrier on eth0 within 0.1 s");
        net.set_carrier("eth0", "0\n");
        assert!(wait_for_carrier(&net.root(), "eth0", Duration::ZERO).is_err());

        let later = net.clone();
        let setter = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(60));
            later.set_carrier("eth0", "1\n");
        });
        wait_for_carrier(&net.root(), "eth0", Duration::from_secs(5)).unwrap();
        setter.join().unwrap();
    }
}

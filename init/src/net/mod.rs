//! Brings the network up inside PID 1 for network targets, with no shell,
//! no busybox and no `ip=` kernel parameter (distribution kernels such as
//! Debian's cloud kernel are built without `CONFIG_IP_PNP`): choose the
//! interface, set it up, wait for carrier, get an address (static, or from
//! our own DHCP client) and set it with the default route.
//!
//! Every step is bounded by a deadline of the config and says in one log
//! line what it did. The privileged steps go through [`NetSystem`], so
//! that tests run all the logic against a fake sysfs tree and a fake DHCP
//! server, without root or a NIC; [`Linux`] is the real thing.

mod client;
mod linux;
mod sys;
mod sysfs;

#[cfg(test)]
mod fake;

use std::io::{self, Read as _};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lifeboat_config::{AddressSpec, Deadlines, Network};

use crate::stage::Stage;

pub use client::{Backoff, LeaseError, Transport};
pub use linux::Linux;

/// The privileged operations of bringing an interface up. Interface names
/// are those of `/sys/class/net`.
pub trait NetSystem {
    /// Sets the interface administratively up (IFF_UP), if it is not.
    fn set_up(&self, interface: &str) -> io::Result<()>;
    /// Sets the interface's IPv4 address (its primary one).
    fn set_address(&self, interface: &str, address: Ipv4Addr) -> io::Result<()>;
    /// Sets the netmask of that address; the kernel derives the broadcast
    /// address and the subnet's route from it.
    fn set_netmask(&self, interface: &str, netmask: Ipv4Addr) -> io::Result<()>;
    /// Adds the default route via `gateway` on the interface.
    fn add_default_route(&self, interface: &str, gateway: Ipv4Addr) -> io::Result<()>;
    /// Opens a DHCP client socket bound to the interface.
    fn dhcp_transport(&self, interface: &str) -> io::Result<Box<dyn Transport>>;
}

/// The files bringing the network up reads, passed in so that tests can
/// point them at a temporary tree.
pub struct NetPaths {
    /// `/sys/class/net`.
    pub sys_class_net: PathBuf,
    /// `/dev/urandom`, for the DHCP transaction id.
    pub urandom: PathBuf,
}

impl NetPaths {
    pub fn pid1() -> NetPaths {
        NetPaths {
            sys_class_net: "/sys/class/net".into(),
            urandom: "/dev/urandom".into(),
        }
    }
}

/// How the interface got its address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Dhcp,
    Static,
}

impl Method {
    /// As the record and the log say it.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Dhcp => "dhcp",
            Method::Static => "static",
        }
    }
}

/// What was brought up, for the log and the record.
#[derive(Clone, Debug, PartialEq)]
pub struct NetReport {
    pub interface: String,
    /// As `/sys/class/net/<interface>/address` says (`52:54:00:12:34:56`).
    pub mac: String,
    pub address: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Option<Ipv4Addr>,
    pub method: Method,
    /// The DHCP server that granted the lease.
    pub dhcp_server: Option<Ipv4Addr>,
    /// The lease's length, when the server said.
    pub lease_secs: Option<u32>,
    /// From the start of the wait for the interface to the route being set.
    pub seconds: f64,
}

/// Why the network did not come up.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("no network interface {spec} within {} (interfaces seen: {seen})", seconds(*.within))]
    InterfaceNotFound {
        spec: String,
        within: Duration,
        seen: String,
    },
    #[error("cannot bring {interface} up")]
    InterfaceUp {
        interface: String,
        #[source]
        source: io::Error,
    },
    #[error("no carrier on {interface} within {}", seconds(*.within))]
    NoCarrier { interface: String, within: Duration },
    #[error(
        "{interface} has no Ethernet MAC address (its address is {address}), which DHCP needs"
    )]
    NotEthernet { interface: String, address: String },
    #[error("cannot open a DHCP socket on {interface}")]
    DhcpSocket {
        interface: String,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Dhcp(#[from] LeaseError),
    #[error("cannot set address {address} on {interface}")]
    SetAddress {
        interface: String,
        address: Ipv4Addr,
        #[source]
        source: io::Error,
    },
    #[error("cannot set netmask {netmask} on {interface}")]
    SetNetmask {
        interface: String,
        netmask: Ipv4Addr,
        #[source]
        source: io::Error,
    },
    #[error("cannot add the default route via {gateway} on {interface}")]
    AddRoute {
        interface: String,
        gateway: Ipv4Addr,
        #[source]
        source: io::Error,
    },
}

/// The deadlines of the steps, and how fast DHCP retransmits. Tests shrink
/// them all; [`bring_up`] takes them from the config.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// For the interface to appear, and then again for carrier.
    pub link: Duration,
    /// For an address: all DHCP discovers and requests together.
    pub address: Duration,
    pub backoff: Backoff,
}

impl Limits {
    pub fn from_deadlines(deadlines: &Deadlines) -> Limits {
        Limits {
            link: Duration::from_secs(deadlines.link_secs.into()),
            address: Duration::from_secs(deadlines.address_secs.into()),
            backoff: Backoff::DHCP,
        }
    }
}

/// Brings up the network `network` describes within the config's
/// deadlines, saying on `stage` what it waits for.
pub fn bring_up(
    system: &dyn NetSystem,
    paths: &NetPaths,
    network: &Network,
    deadlines: &Deadlines,
    stage: &Stage,
) -> Result<NetReport, NetError> {
    let report = bring_up_within(
        system,
        paths,
        network,
        &Limits::from_deadlines(deadlines),
        stage,
    )?;
    if let Some(lease) = report.lease_secs {
        if lease < deadlines.total_secs {
            // Nothing renews it: the server may give the address away
            // before a long capture ends.
            log::warn!(
                "the DHCP lease of {lease} s is shorter than the capture deadline of {} s, \
                 and lifeboat does not renew it",
                deadlines.total_secs
            );
        }
    }
    Ok(report)
}

/// [`bring_up`] with explicit limits.
pub fn bring_up_within(
    system: &dyn NetSystem,
    paths: &NetPaths,
    network: &Network,
    limits: &Limits,
    stage: &Stage,
) -> Result<NetReport, NetError> {
    let started = Instant::now();
    let spec = sysfs::Spec(&network.interface);
    stage.set(format!("waiting for network interface {spec}"));
    let (interface, waited) =
        sysfs::wait_for_interface(&paths.sys_class_net, &network.interface, limits.link)?;
    let name = interface.name.as_str();
    log::info!(
        "{name} {}: network interface found after {:.1} s (configured: {spec})",
        interface.address,
        waited.as_secs_f64()
    );

    // Nothing needs loopback yet, so a failure only costs a warning; but
    // anything that later talks to itself expects it up.
    if let Err(error) = system.set_up("lo") {
        log::warn!("cannot bring lo up: {error}");
    }
    system
        .set_up(name)
        .map_err(|source| NetError::InterfaceUp {
            interface: name.to_owned(),
            source,
        })?;
    stage.set(format!("waiting for carrier on {name}"));
    let waited = sysfs::wait_for_carrier(&paths.sys_class_net, name, limits.link)?;
    log::info!("{name}: up, carrier after {:.1} s", waited.as_secs_f64());

    let configured = match &network.address {
        AddressSpec::Static {
            address,
            prefix_len,
            gateway,
        } => Configured {
            address: *address,
            prefix_len: *prefix_len,
            gateway: *gateway,
            method: Method::Static,
            dhcp_server: None,
            lease_secs: None,
        },
        AddressSpec::Dhcp => {
            let mac = interface.mac.ok_or_else(|| NetError::NotEthernet {
                interface: name.to_owned(),
                address: interface.address.clone(),
            })?;
            stage.set(format!("asking DHCP for an address on {name}"));
            let mut transport =
                system
                    .dhcp_transport(name)
                    .map_err(|source| NetError::DhcpSocket {
                        interface: name.to_owned(),
                        source,
                    })?;
            let seed = random_seed(paths, mac);
            let lease = client::acquire(
                transport.as_mut(),
                name,
                mac,
                seed,
                limits.address,
                limits.backoff,
            )?;
            log::info!(
                "{name}: DHCP lease of {}/{} from {} after {} discover(s), for {}",
                lease.address,
                lease.prefix_len,
                lease.server,
                lease.discovers,
                lease
                    .lease_secs
                    .map_or_else(|| "an unknown time".to_owned(), |secs| format!("{secs} s"))
            );
            Configured {
                address: lease.address,
                prefix_len: lease.prefix_len,
                gateway: lease.router,
                method: Method::Dhcp,
                dhcp_server: Some(lease.server),
                lease_secs: lease.lease_secs,
            }
        }
    };

    stage.set(format!("configuring {name}"));
    configure(system, name, &configured)?;
    let report = NetReport {
        interface: name.to_owned(),
        mac: interface.address.clone(),
        address: configured.address,
        prefix_len: configured.prefix_len,
        gateway: configured.gateway,
        method: configured.method,
        dhcp_server: configured.dhcp_server,
        lease_secs: configured.lease_secs,
        seconds: started.elapsed().as_secs_f64(),
    };
    log::info!("{}", summary(&report));
    Ok(report)
}

/// The address to set, wherever it came from.
struct Configured {
    address: Ipv4Addr,
    prefix_len: u8,
    gateway: Option<Ipv4Addr>,
    method: Method,
    dhcp_server: Option<Ipv4Addr>,
    lease_secs: Option<u32>,
}

/// Sets the address, then its netmask (setting an address gives it the
/// netmask of its class, which the second call corrects), then the default
/// route, which needs the gateway reachable through that subnet.
fn configure(system: &dyn NetSystem, name: &str, configured: &Configured) -> Result<(), NetError> {
    system
        .set_address(name, configured.address)
        .map_err(|source| NetError::SetAddress {
            interface: name.to_owned(),
            address: configured.address,
            source,
        })?;
    let netmask = dhcp::netmask(configured.prefix_len);
    system
        .set_netmask(name, netmask)
        .map_err(|source| NetError::SetNetmask {
            interface: name.to_owned(),
            netmask,
            source,
        })?;
    if let Some(gateway) = configured.gateway {
        match system.add_default_route(name, gateway) {
            Ok(()) => {}
            // Already there: this network was brought up before (for an
            // earlier target), the same way.
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
            Err(source) => {
                return Err(NetError::AddRoute {
                    interface: name.to_owned(),
                    gateway,
                    source,
                })
            }
        }
    }
    Ok(())
}

/// "eth0 52:54:00:12:34:56: 10.0.2.15/24 by DHCP from 10.0.2.2 in 0.1 s,
/// gateway 10.0.2.2".
fn summary(report: &NetReport) -> String {
    let how = match (report.method, report.dhcp_server) {
        (Method::Dhcp, Some(server)) => format!("by DHCP from {server}"),
        (Method::Dhcp, None) => "by DHCP".to_owned(),
        (Method::Static, _) => "static".to_owned(),
    };
    let gateway = match report.gateway {
        Some(gateway) => format!("gateway {gateway}"),
        None => "no gateway".to_owned(),
    };
    format!(
        "{} {}: {}/{} {how} in {:.1} s, {gateway}",
        report.interface, report.mac, report.address, report.prefix_len, report.seconds
    )
}

/// Randomness for the DHCP transaction id and jitter. The kernel's
/// `/dev/urandom` never blocks, unlike `getrandom` early in boot; if it
/// cannot be read, the clock and the MAC still tell apart machines that
/// boot together, which is all a transaction id needs.
fn random_seed(paths: &NetPaths, mac: [u8; 6]) -> u64 {
    let mut bytes = [0; 8];
    match std::fs::File::open(&paths.urandom).and_then(|mut file| file.read_exact(&mut bytes)) {
        Ok(()) => u64::from_ne_bytes(bytes),
        Err(error) => {
            log::warn!(
                "cannot read {}: {error}; deriving the DHCP transaction id from the clock",
                paths.urandom.display()
            );
            let mut mac_bits = [0; 8];
            mac_bits[..6].copy_from_slice(&mac);
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |since| since.as_nanos() as u64);
            nanos.rotate_left(32) ^ u64::from_le_bytes(mac_bits)
        }
    }
}

/// Calls `probe` until it gives a value or `within` has passed, sleeping
/// 20 ms, then doubling up to 500 ms between calls; it is called at least
/// once. Returns the value and how long it took, or how long was waited.
fn poll<T>(
    within: Duration,
    mut probe: impl FnMut() -> Option<T>,
) -> Result<(T, Duration), Duration> {
    let start = Instant::now();
    let mut delay = Duration::from_millis(20);
    loop {
        if let Some(value) = probe() {
            return Ok((value, start.elapsed()));
        }
        let waited = start.elapsed();
        if waited >= within {
            return Err(waited);
        }
        std::thread::sleep(delay.min(within - waited));
        delay = (delay * 2).min(Duration::from_millis(500));
    }
}

/// A deadline for messages: "10 s", or "0.3 s" for the short ones of
/// tests.
fn seconds(duration: Duration) -> String {
    if duration.subsec_nanos() == 0 {
        format!("{} s", duration.as_secs())
    } else {
        format!("{:.1} s", duration.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::fake::{FakeNet, NetCall, SysClassNet};
    use lifeboat_config::InterfaceSpec;

    const MAC: &str = "52:54:00:12:34:56";

    fn limits() -> Limits {
        Limits {
            link: Duration::from_millis(300),
            address: Duration::from_millis(300),
            backoff: Backoff {
                first: Duration::from_millis(20),
                max: Duration::from_millis(80),
            },
        }
    }

    /// A QEMU guest's tree: lo, and eth0 with carrier.
    fn qemu_guest() -> (SysClassNet, NetPaths) {
        let net = SysClassNet::new();
        net.add("lo", 1, "00:00:00:00:00:00", false);
        net.add("eth0", 2, MAC, true);
        net.set_carrier("eth0", "1\n");
        let paths = NetPaths {
            sys_class_net: net.root(),
            urandom: "/dev/urandom".into(),
        };
        (net, paths)
    }

    fn network(interface: InterfaceSpec, address: AddressSpec) -> Network {
        Network {
            interface,
            address,
            name: "guest".into(),
        }
    }

    fn up_calls() -> Vec<NetCall> {
        vec![NetCall::SetUp("lo".into()), NetCall::SetUp("eth0".into())]
    }

    #[test]
    fn dhcp_brings_up_the_slirp_network() {
        let (_net, paths) = qemu_guest();
        let system = FakeNet::default();
        let stage = Stage::new();
        let report = bring_up_within(
            &system,
            &paths,
            &network(InterfaceSpec::Auto, AddressSpec::Dhcp),
            &limits(),
            &stage,
        )
        .unwrap();
        assert_eq!(
            report,
            NetReport {
                interface: "eth0".into(),
                mac: MAC.into(),
                address: Ipv4Addr::new(10, 0, 2, 15),
                prefix_len: 24,
                gateway: Some(Ipv4Addr::new(10, 0, 2, 2)),
                method: Method::Dhcp,
                dhcp_server: Some(Ipv4Addr::new(10, 0, 2, 2)),
                lease_secs: Some(86400),
                seconds: report.seconds,
            }
        );
        assert!(report.seconds < 1.0, "{}", report.seconds);
        let mut expected = up_calls();
        expected.extend([
            NetCall::DhcpTransport("eth0".into()),
            NetCall::SetAddress("eth0".into(), Ipv4Addr::new(10, 0, 2, 15)),
            NetCall::SetNetmask("eth0".into(), Ipv4Addr::new(255, 255, 255, 0)),
            NetCall::AddDefaultRoute("eth0".into(), Ipv4Addr::new(10, 0, 2, 2)),
        ]);
        assert_eq!(system.calls(), expected);
        assert_eq!(stage.doing(), "configuring eth0");
        let timed = NetReport {
            seconds: 0.14,
            ..report
        };
        assert_eq!(
            summary(&timed),
            "eth0 52:54:00:12:34:56: 10.0.2.15/24 by DHCP from 10.0.2.2 in 0.1 s, \
             gateway 10.0.2.2"
        );
    }

    /// The config's deadlines are long, but a network that is there at
    /// once is up at once.
    #[test]
    fn bring_up_takes_the_config_s_deadlines() {
        let (_net, paths) = qemu_guest();
        let system = FakeNet::default();
        let started = Instant::now();
        let report = bring_up(
            &system,
            &paths,
            &network(InterfaceSpec::Name("eth0".into()), AddressSpec::Dhcp),
            &Deadlines::DEFAULT,
            &Stage::new(),
        )
        .unwrap();
        assert_eq!(report.address, Ipv4Addr::new(10, 0, 2, 15));
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn static_addresses_are_set_with_their_route_if_any() {
        let cases = [(Some(Ipv4Addr::new(192, 168, 1, 1)), true), (None, false)];
        for (gateway, routed) in cases {
            let (_net, paths) = qemu_guest();
            let system = FakeNet::default();
            let address = AddressSpec::Static {
                address: Ipv4Addr::new(192, 168, 1, 20),
                prefix_len: 20,
                gateway,
            };
            let report = bring_up_within(
                &system,
                &paths,
                &network(
                    InterfaceSpec::Mac([0x52, 0x54, 0, 0x12, 0x34, 0x56]),
                    address,
                ),
                &limits(),
                &Stage::new(),
            )
            .unwrap();
            assert_eq!(report.method, Method::Static);
            assert_eq!(report.gateway, gateway);
            assert_eq!(report.dhcp_server, None);
            let mut expected = up_calls();
            expected.extend([
                NetCall::SetAddress("eth0".into(), Ipv4Addr::new(192, 168, 1, 20)),
                NetCall::SetNetmask("eth0".into(), Ipv4Addr::new(255, 255, 240, 0)),
            ]);
            if routed {
                expected.push(NetCall::AddDefaultRoute(
                    "eth0".into(),
                    Ipv4Addr::new(192, 168, 1, 1),
                ));
            }
            assert_eq!(system.calls(), expected, "{gateway:?}");
            let timed = NetReport {
                seconds: 0.04,
                ..report
            };
            assert_eq!(
                summary(&timed),
                match gateway {
                    Some(_) =>
                        "eth0 52:54:00:12:34:56: 192.168.1.20/20 static in 0.0 s, \
                                gateway 192.168.1.1",
                    None => "eth0 52:54:00:12:34:56: 192.168.1.20/20 static in 0.0 s, no gateway",
                },
            );
        }
    }

    #[test]
    fn failures_name_the_step_and_the_interface() {
        let dhcp = || network(InterfaceSpec::Name("eth0".into()), AddressSpec::Dhcp);
        let cases: Vec<(FakeNet, &str)> = vec![
            (
                FakeNet::failing("set_up eth0"),
                "cannot bring eth0 up: Operation not permitted (os error 1)",
            ),
            (
                FakeNet::failing("dhcp_transport"),
                "cannot open a DHCP socket on eth0: Operation not permitted (os error 1)",
            ),
            (
                FakeNet::failing("set_address"),
                "cannot set address 10.0.2.15 on eth0: Operation not permitted (os error 1)",
            ),
            (
                FakeNet::failing("set_netmask"),
                "cannot set netmask 255.255.255.0 on eth0: Operation not permitted (os error 1)",
            ),
            (
                FakeNet::failing("add_default_route"),
                "cannot add the default route via 10.0.2.2 on eth0: Operation not permitted (os error 1)",
            ),
            (
                FakeNet {
                    silent_dhcp: true,
                    ..FakeNet::default()
                },
                "no DHCP offer within 0.3 s (N discovers sent on eth0)",
            ),
        ];
        for (system, expected) in cases {
            let (_net, paths) = qemu_guest();
            let error =
                bring_up_within(&system, &paths, &dhcp(), &limits(), &Stage::new()).unwrap_err();
            let mut message = dumper::error_chain(&error);
            if let NetError::Dhcp(LeaseError::NoOffer { discovers, .. }) = &error {
                message = message.replace(&format!("({discovers} "), "(N ");
            }
            assert_eq!(message, expected);
        }
    }

    #[test]
    fn lo_failing_to_come_up_is_only_a_warning() {
        let (_net, paths) = qemu_guest();
        let system = FakeNet::failing("set_up lo");
        let address = AddressSpec::Static {
            address: Ipv4Addr::new(10, 0, 0, 2),
            prefix_len: 8,
            gateway: None,
        };
        let report = bring_up_within(
            &system,
            &paths,
            &network(InterfaceSpec::Auto, address),
            &limits(),
            &Stage::new(),
        )
        .unwrap();
        assert_eq!(report.address, Ipv4Addr::new(10, 0, 0, 2));
    }

    #[test]
    fn an_existing_default_route_is_fine() {
        let (_net, paths) = qemu_guest();
        let system = FakeNet {
            route_exists: true,
            ..FakeNet::default()
        };
        let address = AddressSpec::Static {
            address: Ipv4Addr::new(10, 0, 0, 2),
            prefix_len: 8,
            gateway: Some(Ipv4Addr::new(10, 0, 0, 1)),
        };
        assert!(bring_up_within(
            &system,
            &paths,
            &network(InterfaceSpec::Auto, address),
            &limits(),
            &Stage::new()
        )
        .is_ok());
    }

    #[test]
    fn no_carrier_stops_before_any_address() {
        let (net, paths) = qemu_guest();
        net.set_carrier("eth0", "0\n");
        let system = FakeNet::default();
        let stage = Stage::new();
        let error = bring_up_within(
            &system,
            &paths,
            &network(InterfaceSpec::Auto, AddressSpec::Dhcp),
            &limits(),
            &stage,
        )
        .unwrap_err();
        assert_eq!(error.to_string(), "no carrier on eth0 within 0.3 s");
        assert_eq!(system.calls(), up_calls());
        assert_eq!(stage.doing(), "waiting for carrier on eth0");
    }

    #[test]
    fn dhcp_needs_an_ethernet_mac() {
        let net = SysClassNet::new();
        net.add(
            "ib0",
            2,
            "00:00:01:07:fe:80:00:00:00:00:00:00:52:54:00:ff:fe:12:34:56",
            true,
        );
        net.set_carrier("ib0", "1\n");
        let paths = NetPaths {
            sys_class_net: net.root(),
            urandom: net.root().join("no-urandom"),
        };
        let error = bring_up_within(
            &FakeNet::default(),
            &paths,
            &network(InterfaceSpec::Auto, AddressSpec::Dhcp),
            &limits(),
            &Stage::new(),
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "ib0 has no Ethernet MAC address (its address is \
             00:00:01:07:fe:80:00:00:00:00:00:00:52:54:00:ff:fe:12:34:56), which DHCP needs"
        );
    }

    #[test]
    fn the_seed_comes_from_urandom_or_else_the_clock() {
        let dir = tempfile::tempdir().unwrap();
        let urandom = dir.path().join("urandom");
        std::fs::write(&urandom, 0x0102_0304_0506_0708u64.to_ne_bytes()).unwrap();
        let mut paths = NetPaths {
            sys_class_net: dir.path().into(),
            urandom,
        };
        assert_eq!(random_seed(&paths, [0; 6]), 0x0102_0304_0506_0708);
        paths.urandom = dir.path().join("missing");
        assert_ne!(random_seed(&paths, [1; 6]), random_seed(&paths, [2; 6]));
    }

    #[test]
    fn deadlines_read_as_people_write_them() {
        let cases = [
            (Duration::from_secs(10), "10 s"),
            (Duration::ZERO, "0 s"),
            (Duration::from_millis(300), "0.3 s"),
            (Duration::from_millis(1500), "1.5 s"),
        ];
        for (duration, text) in cases {
            assert_eq!(seconds(duration), text);
        }
        let limits = Limits::from_deadlines(&Deadlines::DEFAULT);
        assert_eq!(limits.link, Duration::from_secs(10));
        assert_eq!(limits.address, Duration::from_secs(20));
        assert_eq!(Method::Dhcp.as_str(), "dhcp");
        assert_eq!(Method::Static.as_str(), "static");
    }
}

//! The network interface that network targets go through, found on the
//! machine running `lifeboat image`, and the drivers it takes: its own and
//! those of the buses above it (a virtio NIC also needs virtio_pci). The
//! capture kernel loads only what the image carries, so the image must
//! carry these unless that kernel has them built in. sysfs and
//! `/proc/net/route` are parameters, so that tests use trees of their own.

use std::fs;
use std::path::{Path, PathBuf};

use lifeboat_config::InterfaceSpec;

/// An interface of this machine and the drivers of its device.
#[derive(Debug, PartialEq, Eq)]
pub struct Nic {
    pub interface: String,
    /// The driver of the interface's own device, as a module name.
    pub driver: String,
    /// The drivers of the devices above it, outermost first.
    pub bus_drivers: Vec<String>,
}

/// Finds the interface `spec` names on this machine, whose sysfs is `sys`
/// and routing table `proc_net_route`, and the drivers of its device. The
/// error says why it cannot be known here, in words that follow "the
/// network targets' interface".
pub fn find(spec: &InterfaceSpec, sys: &Path, proc_net_route: &Path) -> Result<Nic, String> {
    let class = sys.join("class/net");
    let interface = match spec {
        InterfaceSpec::Name(name) => {
            if !class.join(name).exists() {
                return Err(format!("{name} is not an interface of this machine"));
            }
            name.clone()
        }
        InterfaceSpec::Mac(mac) => {
            let wanted = InterfaceSpec::Mac(*mac).to_string();
            let wanted = wanted.trim_start_matches("mac:");
            interfaces(&class)
                .into_iter()
                .find(|name| {
                    fs::read_to_string(class.join(name).join("address"))
                        .is_ok_and(|address| address.trim().eq_ignore_ascii_case(wanted))
                })
                .ok_or_else(|| format!("no interface of this machine has MAC address {wanted}"))?
        }
        InterfaceSpec::Auto => auto(&class, proc_net_route)?,
    };
    let device = class.join(&interface).join("device");
    if !device.exists() {
        return Err(format!(
            "{interface} is a virtual interface here (it has no device), so its driver says \
             nothing of the capture's"
        ));
    }
    let driver = driver_of(&device)
        .ok_or_else(|| format!("{interface}'s device has no driver bound here"))?;
    let mut bus_drivers = Vec::new();
    // The devices above, up to sysfs' own devices directory.
    let top = fs::canonicalize(sys.join("devices")).map_err(|e| e.to_string())?;
    let mut above = fs::canonicalize(&device).map_err(|e| e.to_string())?;
    while above.pop() && above.starts_with(&top) && above != top {
        if let Some(name) = driver_of(&above) {
            if name != driver && !bus_drivers.contains(&name) {
                bus_drivers.push(name);
            }
        }
    }
    bus_drivers.reverse();
    Ok(Nic {
        interface,
        driver,
        bus_drivers,
    })
}

/// `auto`: what the capture will take is the first interface with
/// carrier, which on the building machine is most likely the one of the
/// default route; without one (or when it is virtual, a bridge say), the
/// first interface with a device and carrier.
fn auto(class: &Path, proc_net_route: &Path) -> Result<String, String> {
    let default_route = fs::read_to_string(proc_net_route)
        .ok()
        .and_then(|table| default_route(&table));
    if let Some(name) = default_route {
        if class.join(&name).join("device").exists() {
            return Ok(name);
        }
    }
    interfaces(class)
        .into_iter()
        .find(|name| {
            let dir = class.join(name);
            dir.join("device").exists()
                && fs::read_to_string(dir.join("carrier")).is_ok_and(|c| c.trim() == "1")
        })
        .ok_or_else(|| "no interface of this machine has a device and carrier".to_owned())
}

/// The interface of the first default route (destination 0.0.0.0) of
/// `/proc/net/route`.
fn default_route(table: &str) -> Option<String> {
    table.lines().skip(1).find_map(|line| {
        let mut fields = line.split_ascii_whitespace();
        let interface = fields.next()?;
        (fields.next()? == "00000000").then(|| interface.to_owned())
    })
}

/// The interfaces of `/sys/class/net`, sorted by name.
fn interfaces(class: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(class)
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

/// The module name of the driver bound to `device`: that of its `module`
/// link when the driver is a module, else the driver's own name (a driver
/// built in here may be a module in the capture kernel), with `-` made `_`
/// as module names are compared.
fn driver_of(device: &Path) -> Option<String> {
    let driver = device.join("driver");
    let module = driver.join("module");
    let named: PathBuf = if module.exists() {
        fs::canonicalize(module).ok()?
    } else {
        fs::canonicalize(driver).ok()?
    };
    let name = named.file_name()?.to_str()?;
    Some(name.replace('-', "_"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A sysfs tree of devices with their drivers, and interfaces linked to
    /// them as the kernel links them.
    struct Sys {
        root: tempfile::TempDir,
    }

    impl Sys {
        fn new() -> Sys {
            let sys = Sys {
                root: tempfile::tempdir().unwrap(),
            };
            fs::create_dir_all(sys.path().join("class/net")).unwrap();
            fs::create_dir_all(sys.path().join("devices/virtual/net")).unwrap();
            sys
        }

        fn path(&self) -> PathBuf {
            self.root.path().to_owned()
        }

        /// A device at `devices/<path>` bound to `driver` of `bus`, which
        /// is a module when `module` is.
        fn device(&self, path: &str, bus: &str, driver: &str, module: Option<&str>) {
            let device = self.path().join("devices").join(path);
            fs::create_dir_all(&device).unwrap();
            let driver_dir = self
                .path()
                .join("bus")
                .join(bus)
                .join("drivers")
                .join(driver);
            fs::create_dir_all(&driver_dir).unwrap();
            if let Some(module) = module {
                let module_dir = self.path().join("module").join(module);
                fs::create_dir_all(&module_dir).unwrap();
                let _ = symlink(&module_dir, driver_dir.join("module"));
            }
            symlink(&driver_dir, device.join("driver")).unwrap();
        }

        /// Interface `name` of the device at `devices/<device>` (`None`: a
        /// virtual one), with its MAC address and carrier.
        fn interface(&self, name: &str, device: Option<&str>, mac: &str, carrier: bool) {
            let dir = match device {
                Some(device) => self
                    .path()
                    .join("devices")
                    .join(device)
                    .join("net")
                    .join(name),
                None => self.path().join("devices/virtual/net").join(name),
            };
            fs::create_dir_all(&dir).unwrap();
            if let Some(device) = device {
                symlink(self.path().join("devices").join(device), dir.join("device")).unwrap();
            }
            fs::write(dir.join("address"), format!("{mac}\n")).unwrap();
            fs::write(dir.join("carrier"), if carrier { "1\n" } else { "0\n" }).unwrap();
            symlink(&dir, self.path().join("class/net").join(name)).unwrap();
        }
    }

    fn route(dir: &Path, default: Option<&str>) -> PathBuf {
        let mut table =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\n".to_owned();
        table.push_str("eth1\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\n");
        if let Some(interface) = default {
            table.push_str(&format!(
                "{interface}\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\n"
            ));
        }
        let path = dir.join(format!("route-{}", default.unwrap_or("none")));
        fs::write(&path, table).unwrap();
        path
    }

    #[test]
    fn interfaces_and_their_drivers_are_found() {
        let sys = Sys::new();
        // A virtio NIC behind virtio-pci (built in), as in QEMU; its
        // driver a module.
        sys.device("pci0000:00", "pci", "pcieport", None);
        sys.device("pci0000:00/0000:00:03.0", "pci", "virtio-pci", None);
        sys.device(
            "pci0000:00/0000:00:03.0/virtio2",
            "virtio",
            "virtio_net",
            Some("virtio_net"),
        );
        sys.interface(
            "eth0",
            Some("pci0000:00/0000:00:03.0/virtio2"),
            "52:54:00:12:34:56",
            true,
        );
        // An Intel NIC whose driver is built in here, without carrier.
        sys.device("pci0000:00/0000:00:1f.6", "pci", "e1000e", None);
        sys.interface(
            "eth1",
            Some("pci0000:00/0000:00:1f.6"),
            "8c:16:45:00:00:01",
            false,
        );
        // A bridge, and a USB NIC with carrier.
        sys.interface("br0", None, "52:54:00:00:00:99", true);
        sys.device(
            "pci0000:00/0000:00:14.0",
            "pci",
            "xhci_hcd",
            Some("xhci_pci"),
        );
        sys.device(
            "pci0000:00/0000:00:14.0/usb1/1-1",
            "usb",
            "usb",
            Some("usbcore"),
        );
        sys.device(
            "pci0000:00/0000:00:14.0/usb1/1-1/1-1:1.0",
            "usb",
            "cdc_ether",
            Some("cdc_ether"),
        );
        sys.interface(
            "usb0",
            Some("pci0000:00/0000:00:14.0/usb1/1-1/1-1:1.0"),
            "02:00:00:00:00:01",
            true,
        );
        let virtio = Nic {
            interface: "eth0".into(),
            driver: "virtio_net".into(),
            bus_drivers: vec!["pcieport".into(), "virtio_pci".into()],
        };
        let dir = sys.path();
        let mac = |text: &str| InterfaceSpec::parse(text).unwrap();
        // (interface, default route, result)
        let cases: Vec<(InterfaceSpec, Option<&str>, Result<Nic, &str>)> = vec![
            (InterfaceSpec::Name("eth0".into()), None, Ok(virtio)),
            (
                InterfaceSpec::Name("eth1".into()),
                Some("eth0"),
                Ok(Nic {
                    interface: "eth1".into(),
                    driver: "e1000e".into(),
                    bus_drivers: vec!["pcieport".into()],
                }),
            ),
            (
                mac("mac:8C:16:45:00:00:01"),
                None,
                Ok(Nic {
                    interface: "eth1".into(),
                    driver: "e1000e".into(),
                    bus_drivers: vec!["pcieport".into()],
                }),
            ),
            (
                InterfaceSpec::Auto,
                Some("eth1"),
                Ok(Nic {
                    interface: "eth1".into(),
                    driver: "e1000e".into(),
                    bus_drivers: vec!["pcieport".into()],
                }),
            ),
            // Without a default route, or with a virtual one, the first
            // with a device and carrier.
            (
                InterfaceSpec::Auto,
                None,
                Ok(Nic {
                    interface: "eth0".into(),
                    driver: "virtio_net".into(),
                    bus_drivers: vec!["pcieport".into(), "virtio_pci".into()],
                }),
            ),
            (
                InterfaceSpec::Auto,
                Some("br0"),
                Ok(Nic {
                    interface: "eth0".into(),
                    driver: "virtio_net".into(),
                    bus_drivers: vec!["pcieport".into(), "virtio_pci".into()],
                }),
            ),
            (
                InterfaceSpec::Name("usb0".into()),
                None,
                Ok(Nic {
                    interface: "usb0".into(),
                    driver: "cdc_ether".into(),
                    bus_drivers: vec!["pcieport".into(), "xhci_pci".into(), "usbcore".into()],
                }),
            ),
            (
                InterfaceSpec::Name("br0".into()),
                None,
                Err("br0 is a virtual interface here (it has no device)"),
            ),
            (
                InterfaceSpec::Name("eth9".into()),
                None,
                Err("eth9 is not an interface of this machine"),
            ),
            (
                mac("mac:00:00:00:00:00:01"),
                None,
                Err("no interface of this machine has MAC address 00:00:00:00:00:01"),
            ),
        ];
        for (spec, default, want) in cases {
            let got = find(&spec, &dir, &route(&dir, default));
            match (&got, &want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{spec:?} {default:?}"),
                (Err(got), Err(needle)) => assert!(got.contains(needle), "{spec:?}: {got}"),
                _ => panic!("{spec:?} {default:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn auto_needs_an_interface_with_carrier() {
        let sys = Sys::new();
        sys.device("pci0000:00/0000:00:03.0", "pci", "e1000", Some("e1000"));
        sys.interface(
            "eth0",
            Some("pci0000:00/0000:00:03.0"),
            "52:54:00:12:34:56",
            false,
        );
        sys.interface("lo", None, "00:00:00:00:00:00", true);
        let error = find(&InterfaceSpec::Auto, &sys.path(), &route(&sys.path(), None)).unwrap_err();
        assert_eq!(
            error,
            "no interface of this machine has a device and carrier"
        );
        // The routing table need not be readable.
        let error = find(&InterfaceSpec::Auto, &sys.path(), Path::new("/nonexistent")).unwrap_err();
        assert_eq!(
            error,
            "no interface of this machine has a device and carrier"
        );
    }

    #[test]
    fn default_routes_are_read_from_the_routing_table() {
        let cases = [
            ("Iface\tDestination\n", None),
            (
                "Iface\tDestination\neth0\t00000000\t0102A8C0\n",
                Some("eth0"),
            ),
            (
                "Iface\tDestination\neth1\t0002A8C0\neth0\t00000000\n",
                Some("eth0"),
            ),
            ("Iface\tDestination\nbad\n", None),
            ("", None),
        ];
        for (table, want) in cases {
            assert_eq!(default_route(table).as_deref(), want, "{table:?}");
        }
    }
}

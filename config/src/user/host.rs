//! The machine `lifeboat image` runs on, as the config's checks see it:
//! host names resolved there, files read there, and its host name. They go
//! through [`BuildHost`] so that tests do not depend on the machine they
//! run on.

use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs};

/// What the config's checks ask of the machine building the image.
pub trait BuildHost {
    /// The IPv4 addresses of a host name, in the resolver's order.
    fn resolve(&self, name: &str) -> Result<Vec<Ipv4Addr>, String>;
    /// A file's contents.
    fn read(&self, path: &str) -> Result<Vec<u8>, String>;
    /// The machine's host name, as the kernel has it.
    fn hostname(&self) -> String;
}

/// The machine this process runs on.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemHost;

/// Where the host name is read, in order; the first that holds one wins.
const HOSTNAME_FILES: [&str; 2] = ["/proc/sys/kernel/hostname", "/etc/hostname"];

/// The dump name of a machine whose host name cannot be had.
pub const FALLBACK_NAME: &str = "lifeboat";

impl BuildHost for SystemHost {
    fn resolve(&self, name: &str) -> Result<Vec<Ipv4Addr>, String> {
        let addresses = (name, 0).to_socket_addrs().map_err(|e| e.to_string())?;
        let mut found = Vec::new();
        for address in addresses {
            if let SocketAddr::V4(v4) = address {
                if !found.contains(v4.ip()) {
                    found.push(*v4.ip());
                }
            }
        }
        Ok(found)
    }

    fn read(&self, path: &str) -> Result<Vec<u8>, String> {
        std::fs::read(path).map_err(|e| e.to_string())
    }

    fn hostname(&self) -> String {
        HOSTNAME_FILES
            .iter()
            .filter_map(|path| std::fs::read_to_string(path).ok())
            .map(|text| text.trim().to_owned())
            .find(|name| !name.is_empty())
            .unwrap_or_else(|| FALLBACK_NAME.to_owned())
    }
}

/// A host name made into a dump name (see [`crate::check_dump_name`]): any
/// other character becomes `-`, leading dots go, and at most 64 characters
/// stay; nothing left gives [`FALLBACK_NAME`].
pub fn dump_name(hostname: &str) -> String {
    let name: String = hostname
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .skip_while(|c| *c == '.')
        .take(64)
        .collect();
    if name.is_empty() {
        FALLBACK_NAME.to_owned()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_become_dump_names() {
        let cases = [
            ("web-17", "web-17"),
            ("web-17.example.com\n", "web-17.example.com"),
            ("..hidden", "hidden"),
            ("a b/c", "a-b-c"),
            ("héte", "h-te"),
            ("", FALLBACK_NAME),
            ("...", FALLBACK_NAME),
        ];
        for (hostname, want) in cases {
            let name = dump_name(hostname);
            assert_eq!(name, want, "{hostname:?}");
            assert_eq!(crate::check_dump_name(&name), Ok(()), "{hostname:?}");
        }
        assert_eq!(dump_name(&"x".repeat(100)).len(), 64);
    }

    #[test]
    fn this_machine_answers() {
        let host = SystemHost;
        assert!(!host.hostname().is_empty());
        assert_eq!(
            host.resolve("127.0.0.1"),
            Ok(vec![Ipv4Addr::LOCALHOST]),
            "a literal resolves without a resolver"
        );
        assert!(host.read("/nonexistent/lifeboat").is_err());
    }
}

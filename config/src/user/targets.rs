//! The `[[target]]` tables. A target's `type` is read first, and the rest
//! of its table is checked against that kind's own keys, so that a key of
//! another kind (`export` on a disk target) is named as such. Network
//! targets' servers are resolved, and ssh targets' key files read, on the
//! machine building the image.

use std::net::{Ipv4Addr, Ipv6Addr};

use toml_edit::Value;

use super::openssh::{check_identity, host_forms, host_keys};
use super::{BuildHost, ConfigError, Field, Identity, Node, Source};
use crate::{
    check_directory, check_fstype, check_mount_options, check_path, check_unicast, check_user_name,
    one_of, quoted, DeviceSpec, DiskTarget, Network, NfsTarget, NfsVersion, SshTarget, Target,
    TargetKind, DEFAULT_DIRECTORY, DEFAULT_SSH_PORT, DEFAULT_SSH_USER, FSTYPES,
};

/// The keys of each kind of target; `type` and `directory` are every
/// kind's.
const DISK_KEYS: [&str; 5] = ["type", "directory", "device", "fstype", "mount_options"];
const NFS_KEYS: [&str; 8] = [
    "type",
    "directory",
    "server",
    "export",
    "version",
    "port",
    "mount_port",
    "mount_options",
];
const SSH_KEYS: [&str; 7] = [
    "type",
    "directory",
    "server",
    "port",
    "user",
    "identity",
    "known_hosts",
];

/// Every kind, with its keys.
const KINDS: [(&str, &[&str]); 3] = [("disk", &DISK_KEYS), ("nfs", &NFS_KEYS), ("ssh", &SSH_KEYS)];

const KIND_NAMES: &str = "\"disk\", \"nfs\" or \"ssh\"";

const SERVER: &str = "a server (an IPv4 address or a host name, a string)";
const PATH: &str = "an absolute path (a string)";

/// What checking the targets needs, and what it finds besides them.
pub(super) struct Checks<'a, 't> {
    pub source: &'a Source<'t>,
    pub host: &'a dyn BuildHost,
    /// The config's `[network]`, already checked.
    pub network: Option<&'a Network>,
    pub warnings: Vec<String>,
    pub identities: Vec<Identity>,
}

/// A checked `server`: the address the capture uses and the name as
/// written, which is how known_hosts may know it.
struct Server<'d> {
    address: Ipv4Addr,
    written: &'d str,
}

impl Checks<'_, '_> {
    /// Checks the target at `index` of the list.
    pub fn target(&mut self, index: usize, field: &Field) -> Result<Target, ConfigError> {
        let source = self.source;
        let table = source.table(field, "a table of target settings")?;
        let kind_field = table
            .get("type")
            .and_then(|item| super::field(table, &field.path, "type", item))
            .ok_or_else(|| {
                self.missing(
                    field,
                    "type",
                    &format!("a target needs a type; expected {KIND_NAMES}"),
                )
            })?;
        let kind = source.string(&kind_field, &format!("a target type ({KIND_NAMES})"))?;
        let Some((kind, _)) = KINDS.iter().find(|(name, _)| *name == kind) else {
            return Err(source.invalid(
                &kind_field,
                format!("unknown target type `{kind}`; expected {KIND_NAMES}"),
            ));
        };
        if *kind != "disk" && self.network.is_none() {
            // Reported where the target says what it is: that is what asks
            // for the network.
            return Err(source.error(
                kind_field.span.clone(),
                "network",
                format!(
                    "{} is an {kind} target, which needs [network]: add a [network] section \
                     (address = \"dhcp\" takes DHCP on the first network card)",
                    field.path
                ),
            ));
        }
        let unknown = |name: &str| {
            let others: Vec<String> = KINDS
                .iter()
                .filter(|(other, keys)| other != kind && keys.contains(&name))
                .map(|(other, _)| (*other).to_owned())
                .collect();
            if others.is_empty() {
                format!("unknown field `{name}`")
            } else {
                format!(
                    "`{name}` is not a key of {kind} targets (it is one of {} targets)",
                    one_of(&others)
                )
            }
        };
        let (directory, kind) = match *kind {
            "disk" => {
                let [_, directory, device, fstype, mount_options] =
                    source.fields_hinted(table, &field.path, &DISK_KEYS, unknown)?;
                let disk = self.disk(field, device, fstype, mount_options)?;
                (directory, TargetKind::Disk(disk))
            }
            "nfs" => {
                let [_, directory, server, export, version, port, mount_port, mount_options] =
                    source.fields_hinted(table, &field.path, &NFS_KEYS, unknown)?;
                let nfs = self.nfs(
                    field,
                    [server, export, version, port, mount_port, mount_options],
                )?;
                (directory, TargetKind::Nfs(nfs))
            }
            _ => {
                let [_, directory, server, port, user, identity, known_hosts] =
                    source.fields_hinted(table, &field.path, &SSH_KEYS, unknown)?;
                let ssh = self.ssh(index, field, [server, port, user, identity, known_hosts])?;
                (directory, TargetKind::Ssh(ssh))
            }
        };
        let directory = match &directory {
            Some(field) => self.checked_string(field, PATH, check_directory)?,
            None => DEFAULT_DIRECTORY.to_owned(),
        };
        Ok(Target { kind, directory })
    }

    fn disk(
        &self,
        field: &Field,
        device: Option<Field>,
        fstype: Option<Field>,
        mount_options: Option<Field>,
    ) -> Result<DiskTarget, ConfigError> {
        let source = self.source;
        let device = device.ok_or_else(|| {
            self.missing(
                field,
                "device",
                "a disk target needs a device (UUID=…, LABEL=…, PARTUUID=… or /dev/…)",
            )
        })?;
        let spec = source.string(
            &device,
            "a device (a string: UUID=…, LABEL=…, PARTUUID=… or /dev/…)",
        )?;
        let device = DeviceSpec::parse(spec).map_err(|message| source.invalid(&device, message))?;
        let fstype = match &fstype {
            Some(field) => {
                let names: Vec<&str> = FSTYPES.iter().copied().chain(["auto"]).collect();
                let expected = format!("a filesystem type ({})", quoted(&names));
                match source.string(field, &expected)? {
                    "auto" => None,
                    name => {
                        check_fstype(name).map_err(|message| source.invalid(field, message))?;
                        Some(name.to_owned())
                    }
                }
            }
            None => None,
        };
        Ok(DiskTarget {
            device,
            fstype,
            mount_options: self.mount_options(mount_options.as_ref())?,
        })
    }

    fn nfs(&mut self, field: &Field, keys: [Option<Field>; 6]) -> Result<NfsTarget, ConfigError> {
        let [server, export, version, port, mount_port, mount_options] = keys;
        let source = self.source;
        let server = server.ok_or_else(|| {
            self.missing(
                field,
                "server",
                "an nfs target needs a server (an IPv4 address or a host name)",
            )
        })?;
        let server = self.server(&server)?.address;
        let export = export.ok_or_else(|| {
            self.missing(
                field,
                "export",
                "an nfs target needs an export, the path the server exports (\"/export\")",
            )
        })?;
        let export = self.checked_string(&export, PATH, check_path)?;
        let version = match &version {
            Some(field) => nfs_version(source, field)?,
            None => NfsVersion::DEFAULT,
        };
        let port = port.as_ref().map(|field| self.port(field)).transpose()?;
        let mount_port = match &mount_port {
            Some(field) if version != NfsVersion::V3 => {
                return Err(source.invalid(
                    field,
                    format!(
                        "mount_port is only for version = \"3\", and this target's is \"{}\": \
                         NFSv4 has no MOUNT protocol",
                        version.as_str()
                    ),
                ))
            }
            Some(field) => Some(self.port(field)?),
            None => None,
        };
        Ok(NfsTarget {
            server,
            export,
            version,
            port,
            mount_port,
            mount_options: self.mount_options(mount_options.as_ref())?,
        })
    }

    fn ssh(
        &mut self,
        index: usize,
        field: &Field,
        keys: [Option<Field>; 5],
    ) -> Result<SshTarget, ConfigError> {
        let [server, port, user, identity, known_hosts] = keys;
        let source = self.source;
        let server = server.ok_or_else(|| {
            self.missing(
                field,
                "server",
                "an ssh target needs a server (an IPv4 address or a host name)",
            )
        })?;
        let server = self.server(&server)?;
        let port = match &port {
            Some(field) => self.port(field)?,
            None => DEFAULT_SSH_PORT,
        };
        let user = match &user {
            Some(field) => self.checked_string(field, "a user name (a string)", check_user_name)?,
            None => DEFAULT_SSH_USER.to_owned(),
        };
        let identity_field = identity.ok_or_else(|| {
            self.missing(
                field,
                "identity",
                "an ssh target needs an identity, the private key it logs in with \
                 (an absolute path on this machine)",
            )
        })?;
        let identity = self.checked_string(&identity_field, PATH, check_path)?;
        let key = self.read(&identity_field, &identity)?;
        check_identity(&key)
            .map_err(|error| source.invalid(&identity_field, format!("`{identity}`: {error}")))?;
        let known_hosts = known_hosts.ok_or_else(|| {
            self.missing(
                field,
                "known_hosts",
                "an ssh target needs known_hosts, a file that holds the server's host key: \
                 lifeboat never trusts a key on first use",
            )
        })?;
        let path = self.checked_string(&known_hosts, PATH, check_path)?;
        let text = self.read(&known_hosts, &path)?;
        let hosts = host_forms(server.written, server.address, port);
        let host_keys = host_keys(&String::from_utf8_lossy(&text), &hosts)
            .map_err(|error| source.invalid(&known_hosts, format!("`{path}`: {error}")))?;
        self.identities.push(Identity { target: index, key });
        Ok(SshTarget {
            server: server.address,
            port,
            user,
            identity,
            host_keys,
        })
    }

    /// A server as written: an IPv4 address, or a host name resolved on
    /// this machine now, as the capture kernel does no DNS.
    fn server<'d>(&mut self, field: &Field<'d>) -> Result<Server<'d>, ConfigError> {
        let source = self.source;
        let written = source.string(field, SERVER)?;
        let fail = |message: String| source.invalid(field, message);
        if let Ok(address) = written.parse::<Ipv4Addr>() {
            check_unicast(address).map_err(fail)?;
            self.check_reach(field, address)?;
            return Ok(Server { address, written });
        }
        if written.parse::<Ipv6Addr>().is_ok() {
            return Err(fail(format!(
                "`{written}` is an IPv6 address; network targets are IPv4 only"
            )));
        }
        if !is_host_name(written) {
            return Err(fail(format!(
                "`{written}` is neither an IPv4 address nor a host name"
            )));
        }
        let addresses = self.host.resolve(written).map_err(|error| {
            fail(format!(
                "cannot resolve `{written}` on this machine ({error}); the capture does no DNS, \
                 so a server's name must resolve when the image is built"
            ))
        })?;
        let Some(&address) = addresses.first() else {
            return Err(fail(format!(
                "`{written}` has no IPv4 address on this machine; network targets are IPv4 only"
            )));
        };
        check_unicast(address).map_err(|message| {
            fail(format!(
                "`{written}` resolves to {address} on this machine, which cannot be a server: \
                 {message}"
            ))
        })?;
        self.check_reach(field, address)?;
        let mut warning = format!(
            "`{written}` resolved to {address} at image build; the capture uses that address"
        );
        if addresses.len() > 1 {
            let others: Vec<String> = addresses[1..].iter().map(|a| a.to_string()).collect();
            warning.push_str(&format!(" (and not {})", one_of(&others)));
        }
        self.warnings
            .push(source.invalid(field, warning).to_string());
        Ok(Server { address, written })
    }

    /// A server that a static address without a gateway cannot reach is an
    /// error now rather than a failed capture.
    fn check_reach(&self, field: &Field, server: Ipv4Addr) -> Result<(), ConfigError> {
        match self.network.map(|network| &network.address) {
            Some(address) if !address.reaches(server) => Err(self.source.invalid(
                field,
                format!(
                    "{server} is outside the subnet of network.address {address}, and [network] \
                     has no gateway: the capture could not reach it"
                ),
            )),
            _ => Ok(()),
        }
    }

    /// A file on this machine, read for the image.
    fn read(&self, field: &Field, path: &str) -> Result<Vec<u8>, ConfigError> {
        self.host.read(path).map_err(|error| {
            self.source
                .invalid(field, format!("cannot read `{path}`: {error}"))
        })
    }

    fn port(&self, field: &Field) -> Result<u16, ConfigError> {
        let port = self
            .source
            .integer(field, "a port (an integer from 1 to 65535)")?;
        match u16::try_from(port) {
            Ok(port) if port > 0 => Ok(port),
            _ => Err(self
                .source
                .invalid(field, format!("{port} is not a port; expected 1 to 65535"))),
        }
    }

    fn mount_options(&self, field: Option<&Field>) -> Result<String, ConfigError> {
        match field {
            Some(field) => {
                self.checked_string(field, "mount options (a string)", check_mount_options)
            }
            None => Ok(String::new()),
        }
    }

    /// A string that `check` accepts.
    fn checked_string(
        &self,
        field: &Field,
        expected: &str,
        check: fn(&str) -> Result<(), String>,
    ) -> Result<String, ConfigError> {
        let value = self.source.string(field, expected)?;
        check(value).map_err(|message| self.source.invalid(field, message))?;
        Ok(value.to_owned())
    }

    /// A key that is not there, reported at the target's own table.
    fn missing(&self, field: &Field, key: &str, message: &str) -> ConfigError {
        self.source.error(
            field.span.clone(),
            &super::join(&field.path, key),
            message.to_owned(),
        )
    }
}

/// An NFS version is a string: TOML would read `4.0` as the float 4, and
/// `4.1` as a float that is not quite 4.1. A number gets a hint that says
/// how to write it.
fn nfs_version(source: &Source, field: &Field) -> Result<NfsVersion, ConfigError> {
    let names = quoted(NfsVersion::NAMES);
    if let Node::Value(Value::Float(_) | Value::Integer(_)) = field.node {
        // The number as written, which the hint repeats in quotes.
        let repr = source.text.get(field.span.clone()).unwrap_or("").trim();
        let hint = match NfsVersion::parse(repr) {
            Some(_) => format!("write it as a string: version = \"{repr}\""),
            None => format!("write it as a string, one of {names}"),
        };
        let found = field.node.type_name();
        return Err(source.invalid(
            field,
            format!("expected an NFS version as a string ({names}), found {found}: {hint}"),
        ));
    }
    let text = source.string(field, &format!("an NFS version ({names})"))?;
    NfsVersion::parse(text).ok_or_else(|| {
        source.invalid(
            field,
            format!("`{text}` is not an NFS version lifeboat mounts; expected one of {names}"),
        )
    })
}

/// A DNS name: dot-separated labels of letters, digits, `-` and `_`, each
/// 1 to 63 characters and not starting with `-`, 253 in all. The last label
/// is not all digits (RFC 1123): the resolver would read `10.0.2` as the
/// address 10.0.0.2.
fn is_host_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    let numeric = name
        .rsplit('.')
        .next()
        .is_some_and(|last| last.chars().all(|c| c.is_ascii_digit()));
    !name.is_empty()
        && !numeric
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_are_told_from_the_rest() {
        let cases = [
            ("nfs", true),
            ("nfs.example", true),
            ("nfs.example.", true),
            ("a-b_c.example", true),
            ("nfs1.example2", true),
            ("10.0.2", false),
            ("1.2.3.4.5", false),
            ("1e100", true),
            ("", false),
            (".", false),
            ("a..b", false),
            ("-a.example", false),
            ("a b", false),
            ("host:22", false),
            ("user@host", false),
        ];
        for (name, want) in cases {
            assert_eq!(is_host_name(name), want, "{name}");
        }
        assert!(is_host_name(&"a".repeat(63)));
        assert!(!is_host_name(&"a".repeat(64)));
    }
}

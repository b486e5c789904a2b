//! The TOML a user writes, parsed and validated into a [`Config`].
//!
//! ```toml
//! log_level = "info"            # error, warn, info, debug, trace
//! final_action = "reboot"       # reboot, poweroff, halt
//! compression_level = 1         # zstd level: -10..=-1 (fastest) or 1..=19 (smallest)
//! dump_level = 31               # makedumpfile's -d: 0 keeps every page; add 1 zero, 2 cache,
//!                               # 4 cache with private data, 8 user data, 16 free pages
//! compression_threads = 0       # 0: one per online CPU
//! measure_read_rate = false     # after the dump, log the plain read rate (delays the reboot)
//! modules = ["virtio_blk"]      # kernel modules the targets need
//!
//! [network]                     # needed only when a target is nfs or ssh
//! interface = "auto"            # "auto" (the first network card), "eth0", or "mac:52:54:00:12:34:56"
//! address = "dhcp"              # or "192.0.2.10/24"
//! # gateway = "192.0.2.1"       # static addresses only; optional
//! name = "web-17"               # names the dump directory on shared targets;
//!                               # default: the host name of the building machine
//!
//! [deadlines]
//! device_wait = 30              # seconds to wait for a target device
//! total = 3600                  # seconds for the whole capture
//! link = 10                     # carrier after link up
//! address = 20                  # DHCP: all discovers and requests together
//! connect = 15                  # one NFS mount, or one ssh connect + host key + authentication
//! stall = 60                    # no byte of progress on a network target this long: give it up
//!
//! [[target]]                    # tried in order
//! type = "disk"
//! device = "UUID=0bd3a2c6-8d7e-4f1c-9a55-2c1f3c0e9a11"
//! fstype = "auto"               # or ext4, xfs, btrfs, vfat
//! directory = "/var/crash"
//! mount_options = ""
//!
//! [[target]]
//! type = "nfs"
//! server = "10.0.2.2"           # IPv4 address, or a host name resolved when the image is built
//! export = "/export"
//! version = "4.2"               # "4.2" (default), "4.1", "4.0" or "3"
//! port = 2049                   # optional; v3 also `mount_port` (else the server's rpcbind)
//! mount_options = ""            # appended to the options lifeboat builds
//! directory = "/crash"
//!
//! [[target]]
//! type = "ssh"
//! server = "10.0.2.2"
//! port = 22
//! user = "root"
//! identity = "/etc/lifeboat/id_ed25519"     # read when the image is built, stored 0600 in it
//! known_hosts = "/etc/lifeboat/known_hosts" # must hold the server's key: no trust on first use
//! directory = "/var/crash"
//! ```
//!
//! A target's `type` is read first, and its table is then checked against
//! the keys of that kind. Network targets need `[network]`; what they name
//! on the building machine (host names, the ssh identity and known_hosts)
//! is looked up through [`BuildHost`] by [`parse_with`], which also returns
//! warnings and the identities' bytes for the image.
//!
//! Every error names the file, the line and column, and the key as a dotted
//! path (`deadlines.total`, `modules[1]`, `target[0].device`). The text is
//! first parsed into a document that keeps the span of every key and value,
//! and each key is then checked here against what it may hold: a deserializer
//! would report a value of the wrong type at the value, with no key, in its
//! own words.

use std::fmt;
use std::ops::Range;

pub mod host;
pub mod openssh;

pub use host::{BuildHost, SystemHost};

use toml_edit::{ArrayOfTables, ImDocument, Item, Key, Table, TableLike, Value};

use crate::{
    check_compression_level, check_dump_level, check_dump_name, check_module_name, one_of, quoted,
    AddressSpec, Config, Deadlines, FinalAction, InterfaceSpec, LogLevel, Network,
    COMPRESSION_LEVELS, DEFAULT_COMPRESSION_LEVEL, DEFAULT_DUMP_LEVEL, MAX_COMPRESSION_THREADS,
};

mod targets;

/// A config file that is not valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// The offending key as a dotted path (`target[1].device`), or empty
    /// when the file does not parse as TOML at all.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if !self.key.is_empty() {
            write!(f, "key `{}`: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// The keys of the top-level table, in the order they are checked.
const ROOT_KEYS: [&str; 10] = [
    "log_level",
    "final_action",
    "compression_level",
    "dump_level",
    "compression_threads",
    "measure_read_rate",
    "modules",
    "network",
    "deadlines",
    "target",
];

const DEADLINE_KEYS: [&str; 6] = [
    "device_wait",
    "total",
    "link",
    "address",
    "connect",
    "stall",
];

const NETWORK_KEYS: [&str; 4] = ["interface", "address", "gateway", "name"];

const NO_TARGET: &str =
    "no [[target]]: say where dumps go, e.g. type = \"disk\", device = \"LABEL=…\"";

/// A valid config, with what the checks found worth telling and what they
/// read for the image.
#[derive(Debug)]
pub struct Parsed {
    pub config: Config,
    /// What does not make the config invalid but should be known, each
    /// written as errors are (file, line, column, key, message).
    pub warnings: Vec<String>,
    /// The private key of each ssh target, as read and checked; the image
    /// builder stores these bytes, not the file as it is by then.
    pub identities: Vec<Identity>,
}

/// The private key of an ssh target. Its `Debug` form does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Identity {
    /// The target's index in [`Config::targets`].
    pub target: usize,
    pub key: Vec<u8>,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("target", &self.target)
            .field("key", &format_args!("<{} bytes>", self.key.len()))
            .finish()
    }
}

/// Parses and validates `text`, the contents of `file`, asking this machine
/// what a config with network targets needs to know (see [`parse_with`]);
/// warnings are dropped.
pub fn parse(file: &str, text: &str) -> Result<Config, ConfigError> {
    parse_with(file, text, &SystemHost).map(|parsed| parsed.config)
}

/// Parses and validates `text`, the contents of `file`. `host` is the
/// machine building the image: network targets' host names are resolved
/// there (the capture does no DNS), ssh targets' identity and known_hosts
/// files are read there, and its host name names the dumps unless
/// `network.name` does.
pub fn parse_with(file: &str, text: &str, host: &dyn BuildHost) -> Result<Parsed, ConfigError> {
    let source = Source { file, text };
    let document = ImDocument::parse(text).map_err(|error| {
        // The parser says what is wrong and what it expected on lines of
        // their own; the error is reported on one line.
        let message = error.message().trim_end().replace('\n', "; ");
        source.error(error.span().unwrap_or(0..0), "", message)
    })?;
    let [log_level, final_action, compression_level, dump_level, compression_threads, measure_read_rate, modules, network_field, deadlines, target] =
        source.fields(document.as_table(), "", &ROOT_KEYS)?;

    let fallback = Config::fallback();
    let log_level = match log_level {
        None => fallback.log_level,
        Some(field) => {
            let names = quoted(LogLevel::NAMES);
            let name = source.string(&field, &format!("a log level ({names})"))?;
            LogLevel::parse(name).ok_or_else(|| {
                source.invalid(
                    &field,
                    format!("`{name}` is not a log level; expected one of {names}"),
                )
            })?
        }
    };
    let final_action = match final_action {
        None => fallback.final_action,
        Some(field) => {
            let names = quoted(FinalAction::NAMES);
            let name = source.string(&field, &format!("a final action ({names})"))?;
            FinalAction::parse(name).ok_or_else(|| {
                source.invalid(
                    &field,
                    format!("`{name}` is not a final action; expected one of {names}"),
                )
            })?
        }
    };
    let compression_level = match compression_level {
        None => DEFAULT_COMPRESSION_LEVEL,
        Some(field) => {
            let expected = format!(
                "an integer zstd level ({}..=-1 or 1..={})",
                COMPRESSION_LEVELS.start(),
                COMPRESSION_LEVELS.end()
            );
            let level = source.integer(&field, &expected)?;
            check_compression_level(level).map_err(|message| source.invalid(&field, message))?
        }
    };
    let dump_level = match dump_level {
        None => DEFAULT_DUMP_LEVEL,
        Some(field) => {
            let level = source.integer(&field, "an integer dump level from 0 to 31")?;
            check_dump_level(level).map_err(|message| source.invalid(&field, message))?
        }
    };
    let compression_threads = match compression_threads {
        None => 0,
        Some(field) => {
            let range = format!("0 (one per CPU) to {MAX_COMPRESSION_THREADS}");
            let threads = source.integer(
                &field,
                &format!("an integer number of threads from {range}"),
            )?;
            match u32::try_from(threads) {
                Ok(threads) if threads <= MAX_COMPRESSION_THREADS => threads,
                _ => {
                    return Err(source.invalid(
                        &field,
                        format!("{threads} is out of range; expected {range}"),
                    ))
                }
            }
        }
    };
    let measure_read_rate = match measure_read_rate {
        None => fallback.measure_read_rate,
        Some(field) => source.boolean(&field, "a boolean (true or false)")?,
    };
    let modules = match modules {
        None => Vec::new(),
        Some(field) => source
            .array(&field, "an array of module names (strings)")?
            .iter()
            .map(|module| {
                let name = source.string(module, "a module name (a string)")?;
                check_module_name(name).map_err(|message| source.invalid(module, message))?;
                Ok(name.to_owned())
            })
            .collect::<Result<_, _>>()?,
    };
    let deadlines = match deadlines {
        None => Deadlines::DEFAULT,
        Some(field) => validate_deadlines(&source, &field)?,
    };
    let mut network = match &network_field {
        None => None,
        Some(field) => Some(validate_network(&source, field, host)?),
    };
    let mut checks = targets::Checks {
        source: &source,
        host,
        network: network.as_ref(),
        warnings: Vec::new(),
        identities: Vec::new(),
    };
    let targets = match target {
        None => return Err(source.error(0..0, "target", NO_TARGET.to_owned())),
        Some(field) => {
            let expected = "an array of tables (a [[target]] header per target)";
            let elements = source.array(&field, expected)?;
            if elements.is_empty() {
                return Err(source.invalid(&field, NO_TARGET.to_owned()));
            }
            elements
                .iter()
                .enumerate()
                .map(|(index, element)| checks.target(index, element))
                .collect::<Result<Vec<_>, _>>()?
        }
    };
    let targets::Checks {
        mut warnings,
        identities,
        ..
    } = checks;
    if let Some(field) = &network_field {
        if !targets.iter().any(|target| target.kind.is_network()) {
            // Bringing up a network nothing uses would only spend the
            // capture's time, and could fail it.
            network = None;
            warnings.push(
                source
                    .invalid(
                        field,
                        "no target is nfs or ssh, so the capture ignores [network]".to_owned(),
                    )
                    .to_string(),
            );
        }
    }
    Ok(Parsed {
        config: Config {
            log_level,
            final_action,
            compression_level,
            dump_level,
            compression_threads,
            modules,
            measure_read_rate,
            deadlines,
            network,
            targets,
        },
        warnings,
        identities,
    })
}

fn validate_network(
    source: &Source,
    field: &Field,
    host: &dyn BuildHost,
) -> Result<Network, ConfigError> {
    let table = source.table(field, "a table ([network])")?;
    let [interface, address, gateway, name] = source.fields(table, &field.path, &NETWORK_KEYS)?;
    let interface = match &interface {
        None => InterfaceSpec::Auto,
        Some(field) => {
            let expected = "an interface (\"auto\", a name such as \"eth0\", \
                            or \"mac:52:54:00:12:34:56\")";
            let text = source.string(field, expected)?;
            InterfaceSpec::parse(text).map_err(|message| source.invalid(field, message))?
        }
    };
    let mut address = match &address {
        None => AddressSpec::Dhcp,
        Some(field) => {
            let expected = "an address (\"dhcp\" or a string such as \"192.0.2.10/24\")";
            let text = source.string(field, expected)?;
            AddressSpec::parse(text).map_err(|message| source.invalid(field, message))?
        }
    };
    if let Some(field) = &gateway {
        let text = source.string(field, "a gateway (an IPv4 address, a string)")?;
        let gateway = text
            .parse()
            .map_err(|_| source.invalid(field, format!("`{text}` is not an IPv4 address")))?;
        address = address
            .with_gateway(gateway)
            .map_err(|message| source.invalid(field, message))?;
    }
    let name = match &name {
        None => host::dump_name(&host.hostname()),
        Some(field) => {
            let text = source.string(field, "a name for the dumps (a string)")?;
            check_dump_name(text).map_err(|message| source.invalid(field, message))?;
            text.to_owned()
        }
    };
    Ok(Network {
        interface,
        address,
        name,
    })
}

fn validate_deadlines(source: &Source, field: &Field) -> Result<Deadlines, ConfigError> {
    let table = source.table(field, "a table ([deadlines])")?;
    let [device_wait, total, link, address, connect, stall] =
        source.fields(table, &field.path, &DEADLINE_KEYS)?;
    let seconds = |field: &Field| {
        let secs = source.integer(field, "an integer number of seconds")?;
        match u32::try_from(secs) {
            Ok(secs) if secs > 0 => Ok(secs),
            _ => Err(source.invalid(
                field,
                format!(
                    "{secs} is not a positive number of seconds; expected 1 to {}",
                    u32::MAX
                ),
            )),
        }
    };
    let mut deadlines = Deadlines::DEFAULT;
    let slots = [
        (device_wait, &mut deadlines.device_wait_secs),
        (total, &mut deadlines.total_secs),
        (link, &mut deadlines.link_secs),
        (address, &mut deadlines.address_secs),
        (connect, &mut deadlines.connect_secs),
        (stall, &mut deadlines.stall_secs),
    ];
    for (field, slot) in slots {
        if let Some(field) = field {
            *slot = seconds(&field)?;
        }
    }
    Ok(deadlines)
}

/// The text being parsed, to turn spans into errors.
struct Source<'t> {
    file: &'t str,
    text: &'t str,
}

/// A value in the document, with where it is and the dotted path of its key.
struct Field<'d> {
    path: String,
    /// The value's span, or its key's when the value has none (a table made
    /// of dotted keys is written nowhere as a whole).
    span: Range<usize>,
    node: Node<'d>,
}

/// What a key holds. The document keeps tables and arrays of tables written
/// with headers apart from values; to the checks they are two more types.
#[derive(Clone, Copy)]
enum Node<'d> {
    Value(&'d Value),
    Table(&'d Table),
    ArrayOfTables(&'d ArrayOfTables),
}

impl<'d> Node<'d> {
    fn of(item: &'d Item) -> Option<Self> {
        match item {
            Item::None => None,
            Item::Value(value) => Some(Self::Value(value)),
            Item::Table(table) => Some(Self::Table(table)),
            Item::ArrayOfTables(tables) => Some(Self::ArrayOfTables(tables)),
        }
    }

    fn span(self) -> Option<Range<usize>> {
        match self {
            Self::Value(value) => value.span(),
            Self::Table(table) => table.span(),
            Self::ArrayOfTables(tables) => tables.span(),
        }
    }

    /// The type, for "found …" in error messages.
    fn type_name(self) -> &'static str {
        match self {
            Self::Value(Value::String(_)) => "a string",
            Self::Value(Value::Integer(_)) => "an integer",
            Self::Value(Value::Float(_)) => "a float",
            Self::Value(Value::Boolean(_)) => "a boolean",
            Self::Value(Value::Datetime(_)) => "a date-time",
            Self::Value(Value::Array(_)) => "an array",
            Self::Value(Value::InlineTable(_)) => "an inline table",
            Self::Table(_) => "a table",
            Self::ArrayOfTables(_) => "an array of tables",
        }
    }

    /// The elements of an array, or of an array of tables, which is the same
    /// thing written with headers.
    fn elements(self) -> Option<Vec<Node<'d>>> {
        match self {
            Self::Value(Value::Array(array)) => Some(array.iter().map(Self::Value).collect()),
            Self::ArrayOfTables(tables) => Some(tables.iter().map(Self::Table).collect()),
            _ => None,
        }
    }

    /// A table, written with a header or inline.
    fn table(self) -> Option<&'d dyn TableLike> {
        match self {
            Self::Value(Value::InlineTable(table)) => Some(table),
            Self::Table(table) => Some(table),
            _ => None,
        }
    }
}

impl Source<'_> {
    fn error(&self, span: Range<usize>, key: &str, message: String) -> ConfigError {
        let (line, column) = line_column(self.text, span.start);
        ConfigError {
            file: self.file.to_owned(),
            line,
            column,
            key: key.to_owned(),
            message,
        }
    }

    /// An error about the value of `field`.
    fn invalid(&self, field: &Field, message: String) -> ConfigError {
        self.error(field.span.clone(), &field.path, message)
    }

    fn wrong_type(&self, field: &Field, expected: &str) -> ConfigError {
        let found = field.node.type_name();
        self.invalid(field, format!("expected {expected}, found {found}"))
    }

    /// The values of the known `keys` of `table`, whose path is `path`, in
    /// the order of `keys`; a key that is not among them is an error.
    fn fields<'d, const N: usize>(
        &self,
        table: &'d dyn TableLike,
        path: &str,
        keys: &[&str; N],
    ) -> Result<[Option<Field<'d>>; N], ConfigError> {
        self.fields_hinted(table, path, keys, |name| format!("unknown field `{name}`"))
    }

    /// [`Source::fields`], where `unknown` says what a key that is not
    /// among `keys` is (unknown, or one of another kind of table).
    fn fields_hinted<'d, const N: usize>(
        &self,
        table: &'d dyn TableLike,
        path: &str,
        keys: &[&str; N],
        unknown: impl Fn(&str) -> String,
    ) -> Result<[Option<Field<'d>>; N], ConfigError> {
        let mut fields = [const { None }; N];
        for (name, item) in table.iter() {
            let Some(field) = field(table, path, name, item) else {
                continue;
            };
            let Some(index) = keys.iter().position(|key| *key == name) else {
                let keys: Vec<String> = keys.iter().map(|key| format!("`{key}`")).collect();
                let key_span = table.key(name).and_then(Key::span).unwrap_or(0..0);
                return Err(self.error(
                    key_span,
                    &field.path,
                    format!("{}; expected one of {}", unknown(name), one_of(&keys)),
                ));
            };
            fields[index] = Some(field);
        }
        Ok(fields)
    }

    fn string<'d>(&self, field: &Field<'d>, expected: &str) -> Result<&'d str, ConfigError> {
        match field.node {
            Node::Value(Value::String(value)) => Ok(value.value()),
            _ => Err(self.wrong_type(field, expected)),
        }
    }

    fn boolean(&self, field: &Field, expected: &str) -> Result<bool, ConfigError> {
        match field.node {
            Node::Value(Value::Boolean(value)) => Ok(*value.value()),
            _ => Err(self.wrong_type(field, expected)),
        }
    }

    fn integer(&self, field: &Field, expected: &str) -> Result<i64, ConfigError> {
        match field.node {
            Node::Value(Value::Integer(value)) => Ok(*value.value()),
            _ => Err(self.wrong_type(field, expected)),
        }
    }

    fn table<'d>(
        &self,
        field: &Field<'d>,
        expected: &str,
    ) -> Result<&'d dyn TableLike, ConfigError> {
        field
            .node
            .table()
            .ok_or_else(|| self.wrong_type(field, expected))
    }

    /// The elements of the array `field`, each with its index in its path.
    fn array<'d>(&self, field: &Field<'d>, expected: &str) -> Result<Vec<Field<'d>>, ConfigError> {
        let elements = field
            .node
            .elements()
            .ok_or_else(|| self.wrong_type(field, expected))?;
        Ok(elements
            .into_iter()
            .enumerate()
            .map(|(index, node)| Field {
                path: format!("{}[{index}]", field.path),
                span: node.span().unwrap_or_else(|| field.span.clone()),
                node,
            })
            .collect())
    }
}

/// The value of `name` in `table`, whose path is `path`; `None` for an
/// item that holds nothing.
fn field<'d>(
    table: &'d dyn TableLike,
    path: &str,
    name: &str,
    item: &'d Item,
) -> Option<Field<'d>> {
    let node = Node::of(item)?;
    let key_span = table.key(name).and_then(Key::span).unwrap_or(0..0);
    Some(Field {
        path: join(path, name),
        span: node.span().unwrap_or(key_span),
        node,
    })
}

/// The dotted path of `key` in the table at `path`. A key that is not bare
/// is quoted, as it would have to be in the file.
fn join(path: &str, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let key = if bare {
        key.to_owned()
    } else {
        format!("{key:?}")
    };
    if path.is_empty() {
        key
    } else {
        format!("{path}.{key}")
    }
}

/// 1-based line and column of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

#[cfg(test)]
mod tests;

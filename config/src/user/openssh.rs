//! The two OpenSSH files an ssh target names, checked when the image is
//! built: the private key the capture authenticates with (it must be usable
//! without a passphrase, as nobody is there to type one at crash time), and
//! the `known_hosts` file the server's host keys are taken from (the capture
//! never trusts a key on first use).
//!
//! Only the headers of a private key are read: its format, cipher and key
//! type. No error or message carries any of its bytes.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use thiserror::Error;

/// The key types lifeboat's ssh client authenticates with.
pub const IDENTITY_TYPES: [&str; 5] = [
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
];

/// An identity file lifeboat cannot use.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum IdentityError {
    #[error("it is a public key; `identity` takes the private key (the file without .pub)")]
    PublicKey,
    #[error(
        "it is not a private key lifeboat reads; expected an OpenSSH private key \
         (-----BEGIN OPENSSH PRIVATE KEY-----) or a PEM RSA or EC one"
    )]
    NotAKey,
    #[error(
        "it is passphrase-protected, and lifeboat cannot ask for a passphrase at crash time: \
         copy it and remove the copy's passphrase with `ssh-keygen -p -N '' -f COPY`"
    )]
    Encrypted,
    #[error("it is damaged: {0}")]
    Damaged(&'static str),
    #[error("it holds {0} keys; lifeboat takes a file with one")]
    KeyCount(u32),
    #[error(
        "its key type {0} is not one lifeboat's ssh client uses; expected ssh-ed25519, \
         ecdsa-sha2-nistp256, ecdsa-sha2-nistp384, ecdsa-sha2-nistp521 or ssh-rsa"
    )]
    KeyType(String),
}

const OPENSSH_BEGIN: &str = "-----BEGIN OPENSSH PRIVATE KEY-----";
const OPENSSH_END: &str = "-----END OPENSSH PRIVATE KEY-----";
const OPENSSH_MAGIC: &[u8] = b"openssh-key-v1\0";

/// PEM private keys ssh reads, by their type, and the key type each is.
const PEM_KEYS: [(&str, &str); 3] = [
    ("RSA PRIVATE KEY", "ssh-rsa"),
    ("EC PRIVATE KEY", "ecdsa"),
    ("DSA PRIVATE KEY", "ssh-dss"),
];

/// Checks that `bytes` hold one private key lifeboat's ssh client can use
/// without a passphrase, and returns its key type (`ecdsa` for a PEM EC
/// key, whose curve is inside its DER).
pub fn check_identity(bytes: &[u8]) -> Result<&'static str, IdentityError> {
    let text = std::str::from_utf8(bytes).map_err(|_| IdentityError::NotAKey)?;
    let first = text.lines().map(str::trim).find(|line| !line.is_empty());
    let Some(first) = first else {
        return Err(IdentityError::NotAKey);
    };
    if first == OPENSSH_BEGIN {
        return check_openssh(text);
    }
    for (label, key_type) in PEM_KEYS {
        if first == format!("-----BEGIN {label}-----") {
            if !text.contains(&format!("-----END {label}-----")) {
                return Err(IdentityError::Damaged("it has no END line"));
            }
            // RFC 1421 headers: an encrypted PEM key says so before its
            // base64.
            let encrypted = text
                .lines()
                .any(|line| line.starts_with("Proc-Type:") && line.contains("ENCRYPTED"));
            if encrypted {
                return Err(IdentityError::Encrypted);
            }
            return match key_type {
                "ssh-dss" => Err(IdentityError::KeyType(key_type.to_owned())),
                _ => Ok(key_type),
            };
        }
    }
    if first == "-----BEGIN ENCRYPTED PRIVATE KEY-----" {
        return Err(IdentityError::Encrypted);
    }
    let public = first.split_ascii_whitespace().next().is_some_and(|word| {
        IDENTITY_TYPES.contains(&word) || word == "ssh-dss" || word.starts_with("sk-")
    }) || first.starts_with("---- BEGIN SSH2 PUBLIC KEY ----");
    if public {
        return Err(IdentityError::PublicKey);
    }
    Err(IdentityError::NotAKey)
}

/// The openssh-key-v1 format (PROTOCOL.key in OpenSSH's sources): the
/// magic, the cipher and KDF that protect the private part, the number of
/// keys, and the public keys in the clear.
fn check_openssh(text: &str) -> Result<&'static str, IdentityError> {
    let mut base64 = String::new();
    let mut ended = false;
    for line in text
        .lines()
        .map(str::trim)
        .skip_while(|l| *l != OPENSSH_BEGIN)
        .skip(1)
    {
        if line == OPENSSH_END {
            ended = true;
            break;
        }
        base64.push_str(line);
    }
    if !ended {
        return Err(IdentityError::Damaged("it has no END line"));
    }
    let blob = BASE64
        .decode(base64.as_bytes())
        .map_err(|_| IdentityError::Damaged("its body is not base64"))?;
    let mut reader = blob
        .strip_prefix(OPENSSH_MAGIC)
        .map(Reader)
        .ok_or(IdentityError::Damaged("it has no openssh-key-v1 header"))?;
    let short = IdentityError::Damaged("its header is cut short");
    let cipher = reader.string().ok_or(short.clone())?;
    let _kdf = reader.string().ok_or(short.clone())?;
    let _kdf_options = reader.string().ok_or(short.clone())?;
    let count = reader.u32().ok_or(short.clone())?;
    if cipher != b"none" {
        return Err(IdentityError::Encrypted);
    }
    if count != 1 {
        return Err(IdentityError::KeyCount(count));
    }
    let public = reader.string().ok_or(short.clone())?;
    let key_type = Reader(public).string().ok_or(short)?;
    IDENTITY_TYPES
        .iter()
        .find(|name| name.as_bytes() == key_type)
        .copied()
        .ok_or_else(|| IdentityError::KeyType(printable(key_type)))
}

/// A key type read from a file, made safe to print: at most 64 printable
/// ASCII characters, in backquotes.
fn printable(bytes: &[u8]) -> String {
    let text: String = bytes
        .iter()
        .take(64)
        .map(|&b| if b.is_ascii_graphic() { b as char } else { '?' })
        .collect();
    format!("`{text}`")
}

/// SSH wire format: big-endian u32s and strings prefixed by their length.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn u32(&mut self) -> Option<u32> {
        let (head, rest) = self.0.split_first_chunk::<4>()?;
        self.0 = rest;
        Some(u32::from_be_bytes(*head))
    }

    fn string(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.u32()?).ok()?;
        if len > self.0.len() {
            return None;
        }
        let (string, rest) = self.0.split_at(len);
        self.0 = rest;
        Some(string)
    }
}

/// A known_hosts file that gives no usable key for the server.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum KnownHostsError {
    #[error(
        "it has no key for {looked_for}: add the server's host key as a line \
         `{example} <key type> <base64>` (from the server's /etc/ssh/ssh_host_*_key.pub); \
         lifeboat never trusts a key on first use"
    )]
    NoKey { looked_for: String, example: String },
    #[error("its line {line}, which names the server, has a damaged key: {reason}")]
    BadKey { line: usize, reason: &'static str },
    #[error("its line {line} marks the key of line {key_line} (for the server) @revoked")]
    Revoked { line: usize, key_line: usize },
}

/// The names known_hosts may know a server by: `server` as written and the
/// address it resolved to (the same, for an address), bare for port 22 and
/// as `[host]:port` for any other, as ssh writes them.
pub fn host_forms(written: &str, address: std::net::Ipv4Addr, port: u16) -> Vec<String> {
    let mut hosts = vec![written.to_ascii_lowercase()];
    let address = address.to_string();
    if !hosts.contains(&address) {
        hosts.push(address);
    }
    if port != 22 {
        for host in &mut hosts {
            *host = format!("[{host}]:{port}");
        }
    }
    hosts
}

/// The keys `text`, a known_hosts file, accepts for any of `hosts` (see
/// [`host_forms`]), each as `<algorithm> <base64>`, in file order and each
/// once. Lines are read as ssh does: comma-separated patterns with `*`
/// and `?` and `!` negation, compared without case; hashed `|1|salt|hash`
/// entries; `@cert-authority` lines are not host keys and are skipped, and
/// a `@revoked` line that revokes one of the keys found is an error.
/// Lines that do not name the server are not checked further.
pub fn host_keys(text: &str, hosts: &[String]) -> Result<Vec<String>, KnownHostsError> {
    // (line, algorithm, key blob) of the keys for the server, and of the
    // revoked keys that apply to it.
    let mut found: Vec<(usize, &str, Vec<u8>, &str)> = Vec::new();
    let mut revoked: Vec<(usize, Vec<u8>)> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_ascii_whitespace();
        let (marker, Some(patterns)) = (match words.next() {
            Some(word) if word.starts_with('@') => (Some(word), words.next()),
            word => (None, word),
        }) else {
            continue;
        };
        if marker.is_some_and(|m| m != "@revoked") {
            continue;
        }
        if !hosts.iter().any(|host| host_matches(patterns, host)) {
            continue;
        }
        let bad = |reason| KnownHostsError::BadKey {
            line: number,
            reason,
        };
        let (Some(algorithm), Some(base64)) = (words.next(), words.next()) else {
            return Err(bad("it has no key after the host"));
        };
        let blob = BASE64
            .decode(base64.as_bytes())
            .map_err(|_| bad("the key is not base64"))?;
        if Reader(&blob).string() != Some(algorithm.as_bytes()) {
            return Err(bad("the key is not of the type the line names"));
        }
        // What the baked form would refuse must fail the build, not the
        // capture.
        if crate::check_host_key(&format!("{algorithm} {base64}")).is_err() {
            return Err(bad("its key type is not one ssh writes"));
        }
        if marker.is_some() {
            revoked.push((number, blob));
        } else if !found.iter().any(|(_, _, known, _)| *known == blob) {
            found.push((number, algorithm, blob, base64));
        }
    }
    for (line, blob) in &revoked {
        if let Some((key_line, ..)) = found.iter().find(|(_, _, known, _)| known == blob) {
            return Err(KnownHostsError::Revoked {
                line: *line,
                key_line: *key_line,
            });
        }
    }
    if found.is_empty() {
        let quoted: Vec<String> = hosts.iter().map(|host| format!("`{host}`")).collect();
        return Err(KnownHostsError::NoKey {
            looked_for: crate::one_of(&quoted),
            example: hosts.first().cloned().unwrap_or_default(),
        });
    }
    Ok(found
        .into_iter()
        .map(|(_, algorithm, _, base64)| format!("{algorithm} {base64}"))
        .collect())
}

/// Whether the host field of a known_hosts line names `host`.
fn host_matches(patterns: &str, host: &str) -> bool {
    if let Some(hashed) = patterns.strip_prefix("|1|") {
        return hashed_matches(hashed, host);
    }
    let mut matched = false;
    for pattern in patterns.split(',') {
        let (negated, pattern) = match pattern.strip_prefix('!') {
            Some(pattern) => (true, pattern),
            None => (false, pattern),
        };
        if glob(pattern.to_ascii_lowercase().as_bytes(), host.as_bytes()) {
            if negated {
                return false;
            }
            matched = true;
        }
    }
    matched
}

/// `salt|hash` of a hashed entry: HMAC-SHA1 of the host keyed with the
/// salt, both base64.
fn hashed_matches(hashed: &str, host: &str) -> bool {
    let Some((salt, hash)) = hashed.split_once('|') else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (BASE64.decode(salt), BASE64.decode(hash)) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(&salt) else {
        return false;
    };
    mac.update(host.as_bytes());
    mac.verify_slice(&hash).is_ok()
}

/// ssh's wildcards: `*` any run of characters, `?` any one. Backtracking
/// only to the last `*` keeps this linear in practice, whatever a line's
/// patterns.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was, and where in the text its run ends so far.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    star = Some((star_p, star_t + 1));
                    p = star_p + 1;
                    t = star_t + 1;
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
pub(crate) mod tests;

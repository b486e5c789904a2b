//! DHCPv4 messages (RFC 2131, with the options of RFC 2132), built and parsed
//! by hand: PID 1's client (`init/src/net/client.rs`) sends only DISCOVER
//! and REQUEST and reads only OFFER, ACK and NAK, which is far less than a
//! DHCP library.
//!
//! Replies are untrusted bytes from the network. The parser checks every
//! length before it reads, so a truncated or hostile packet is an error,
//! never a panic; a fuzz-style test in `tests.rs` and the `reply` fuzz
//! target (`dhcp/fuzz/`) hold it to that. The codec is a crate of its own,
//! rather than a module of `init`, so that a fuzz target can link it.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// The port DHCP servers listen on.
pub const SERVER_PORT: u16 = 67;
/// The port DHCP clients listen on.
pub const CLIENT_PORT: u16 = 68;

/// BOOTP's `op` of a request (client to server) and of a reply.
const BOOTREQUEST: u8 = 1;
const BOOTREPLY: u8 = 2;
/// `htype` of Ethernet, and the length of its addresses.
const HTYPE_ETHERNET: u8 = 1;
const HLEN_ETHERNET: u8 = 6;
/// Asks the server to broadcast its replies: until it is configured, the
/// interface has no address that a unicast reply could reach.
const FLAG_BROADCAST: u16 = 0x8000;
/// Marks the options of a DHCP message, after BOOTP's fixed fields.
const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];

/// Offsets of the fixed fields (RFC 2131 §2, figure 1).
const XID: usize = 4;
const SECS: usize = 8;
const FLAGS: usize = 10;
const YIADDR: usize = 16;
const SIADDR: usize = 20;
const CHADDR: usize = 28;
const SNAME: std::ops::Range<usize> = 44..108;
const FILE: std::ops::Range<usize> = 108..236;
const COOKIE: std::ops::Range<usize> = 236..240;
const OPTIONS: usize = 240;

/// BOOTP relays and some servers drop messages shorter than BOOTP's 300
/// bytes (RFC 1542 §2.1), so requests are padded to that.
const MIN_MESSAGE_LEN: usize = 300;

/// Option codes used here (RFC 2132).
const OPT_PAD: u8 = 0;
const OPT_SUBNET_MASK: u8 = 1;
const OPT_ROUTER: u8 = 3;
const OPT_REQUESTED_ADDRESS: u8 = 50;
const OPT_LEASE_TIME: u8 = 51;
const OPT_OVERLOAD: u8 = 52;
const OPT_MESSAGE_TYPE: u8 = 53;
const OPT_SERVER_ID: u8 = 54;
const OPT_PARAMETER_REQUEST_LIST: u8 = 55;
const OPT_MESSAGE: u8 = 56;
const OPT_CLIENT_ID: u8 = 61;
const OPT_END: u8 = 255;

/// What the client asks the server for: subnet mask, router, lease time,
/// server identifier. No DNS: PID 1 resolves no names, targets are
/// addresses resolved when the image was built.
const PARAMETERS: [u8; 4] = [OPT_SUBNET_MASK, OPT_ROUTER, OPT_LEASE_TIME, OPT_SERVER_ID];

/// DHCP message types (option 53).
const DHCPDISCOVER: u8 = 1;
const DHCPOFFER: u8 = 2;
const DHCPREQUEST: u8 = 3;
const DHCPACK: u8 = 5;
const DHCPNAK: u8 = 6;

/// Longest server message (option 56) kept for the log: it is untrusted
/// text, and a line of log is enough to say why a server refused.
pub const MAX_MESSAGE_CHARS: usize = 200;

/// The kind of a server's reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageType {
    Offer,
    Ack,
    Nak,
    /// Any other type (a client's message, an INFORM answer…), which the
    /// client ignores; never that of an offer, an ACK or a NAK.
    Other(u8),
}

/// What the client needs of a server's reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub kind: MessageType,
    pub xid: u32,
    /// The client hardware address the reply is for.
    pub client_mac: [u8; 6],
    /// `yiaddr`: the address offered or acknowledged.
    pub your_address: Ipv4Addr,
    /// `siaddr`, which some servers fill instead of option 54.
    pub server_address: Ipv4Addr,
    /// Option 54, which the client echoes in its REQUEST.
    pub server_id: Option<Ipv4Addr>,
    /// Option 1, as a prefix length of at most 32 (non-contiguous masks are
    /// refused).
    pub prefix_len: Option<u8>,
    /// The first router of option 3.
    pub router: Option<Ipv4Addr>,
    /// Option 51.
    pub lease_secs: Option<u32>,
    /// Option 56, the server's reason for a NAK, made printable: at most
    /// [`MAX_MESSAGE_CHARS`] characters, none of them a control character.
    pub message: Option<String>,
}

/// Why a packet is not a usable DHCP reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DhcpError {
    #[error("{len} bytes are shorter than the {OPTIONS} bytes of a DHCP header")]
    Truncated { len: usize },
    #[error("op {op} is not a BOOTP reply")]
    NotAReply { op: u8 },
    #[error("hardware type {htype} with {hlen}-byte addresses is not Ethernet")]
    NotEthernet { htype: u8, hlen: u8 },
    #[error("no DHCP magic cookie (found {found:02x?})")]
    NoMagicCookie { found: [u8; 4] },
    #[error("option {code} runs past the end of the {field} field")]
    OptionOverrun { code: u8, field: &'static str },
    #[error("option {code} has {len} bytes, which is not a valid length for it")]
    OptionLength { code: u8, len: usize },
    #[error("option overload {value} is not 1 (file), 2 (sname) or 3 (both)")]
    Overload { value: u8 },
    #[error("no DHCP message type (option 53): a BOOTP reply")]
    NoMessageType,
    #[error("subnet mask {mask} is not contiguous")]
    SubnetMask { mask: Ipv4Addr },
}

/// A DHCPDISCOVER from `mac`, `secs` seconds after the client started.
pub fn encode_discover(xid: u32, mac: [u8; 6], secs: u16) -> Vec<u8> {
    let mut packet = header(xid, mac, secs);
    put_option(&mut packet, OPT_MESSAGE_TYPE, &[DHCPDISCOVER]);
    put_client_id(&mut packet, mac);
    put_option(&mut packet, OPT_PARAMETER_REQUEST_LIST, &PARAMETERS);
    finish(packet)
}

/// A DHCPREQUEST in the SELECTING state (RFC 2131 §4.3.2): it accepts
/// `requested` from the server whose option 54 was `server_id`, and (by
/// naming that server) declines every other offer.
pub fn encode_request(
    xid: u32,
    mac: [u8; 6],
    secs: u16,
    requested: Ipv4Addr,
    server_id: Ipv4Addr,
) -> Vec<u8> {
    let mut packet = header(xid, mac, secs);
    put_option(&mut packet, OPT_MESSAGE_TYPE, &[DHCPREQUEST]);
    put_client_id(&mut packet, mac);
    put_option(&mut packet, OPT_REQUESTED_ADDRESS, &requested.octets());
    put_option(&mut packet, OPT_SERVER_ID, &server_id.octets());
    put_option(&mut packet, OPT_PARAMETER_REQUEST_LIST, &PARAMETERS);
    finish(packet)
}

/// The fixed fields and the magic cookie of a client message; `ciaddr`,
/// `yiaddr`, `siaddr`, `giaddr`, `sname` and `file` stay zero.
fn header(xid: u32, mac: [u8; 6], secs: u16) -> Vec<u8> {
    let mut packet = vec![0; OPTIONS];
    packet[0] = BOOTREQUEST;
    packet[1] = HTYPE_ETHERNET;
    packet[2] = HLEN_ETHERNET;
    packet[XID..XID + 4].copy_from_slice(&xid.to_be_bytes());
    packet[SECS..SECS + 2].copy_from_slice(&secs.to_be_bytes());
    packet[FLAGS..FLAGS + 2].copy_from_slice(&FLAG_BROADCAST.to_be_bytes());
    packet[CHADDR..CHADDR + 6].copy_from_slice(&mac);
    packet[COOKIE].copy_from_slice(&MAGIC_COOKIE);
    packet
}

/// The client identifier is the hardware type and the MAC (RFC 2132 §9.14),
/// as most clients send it, so that servers keyed on it see the same client
/// as the one that booted from this interface.
fn put_client_id(packet: &mut Vec<u8>, mac: [u8; 6]) {
    let mut id = [HTYPE_ETHERNET; 7];
    id[1..].copy_from_slice(&mac);
    put_option(packet, OPT_CLIENT_ID, &id);
}

/// Appends one option; every value given here is far shorter than 255.
fn put_option(packet: &mut Vec<u8>, code: u8, value: &[u8]) {
    debug_assert!(value.len() <= usize::from(u8::MAX));
    packet.push(code);
    packet.push(value.len() as u8);
    packet.extend_from_slice(value);
}

fn finish(mut packet: Vec<u8>) -> Vec<u8> {
    packet.push(OPT_END);
    if packet.len() < MIN_MESSAGE_LEN {
        packet.resize(MIN_MESSAGE_LEN, OPT_PAD);
    }
    packet
}

/// Parses a server's reply. Only the fields the client uses are read;
/// unknown options are skipped, and a packet ending without the end option
/// is taken as ending there (as ISC's client does) rather than refused.
pub fn parse_reply(packet: &[u8]) -> Result<Reply, DhcpError> {
    if packet.len() < OPTIONS {
        return Err(DhcpError::Truncated { len: packet.len() });
    }
    if packet[0] != BOOTREPLY {
        return Err(DhcpError::NotAReply { op: packet[0] });
    }
    if packet[1] != HTYPE_ETHERNET || packet[2] != HLEN_ETHERNET {
        return Err(DhcpError::NotEthernet {
            htype: packet[1],
            hlen: packet[2],
        });
    }
    let found = array::<4>(&packet[COOKIE]);
    if found != MAGIC_COOKIE {
        return Err(DhcpError::NoMagicCookie { found });
    }
    let options = parse_options(packet)?;

    let kind = match exact::<1>(&options, OPT_MESSAGE_TYPE)? {
        None => return Err(DhcpError::NoMessageType),
        Some([DHCPOFFER]) => MessageType::Offer,
        Some([DHCPACK]) => MessageType::Ack,
        Some([DHCPNAK]) => MessageType::Nak,
        Some([other]) => MessageType::Other(other),
    };
    let prefix_len = match exact::<4>(&options, OPT_SUBNET_MASK)? {
        None => None,
        Some(octets) => {
            let mask = Ipv4Addr::from(octets);
            Some(prefix_len(mask).ok_or(DhcpError::SubnetMask { mask })?)
        }
    };
    let router = match options.get(&OPT_ROUTER) {
        None => None,
        Some(value) if !value.is_empty() && value.len().is_multiple_of(4) => {
            Some(Ipv4Addr::from(array::<4>(&value[..4])))
        }
        Some(value) => {
            return Err(DhcpError::OptionLength {
                code: OPT_ROUTER,
                len: value.len(),
            })
        }
    };
    let message = options.get(&OPT_MESSAGE).map(|text| {
        String::from_utf8_lossy(text)
            .chars()
            .take(MAX_MESSAGE_CHARS)
            .map(|c| if c.is_control() { '?' } else { c })
            .collect()
    });
    let mut client_mac = [0; 6];
    client_mac.copy_from_slice(&packet[CHADDR..CHADDR + 6]);
    Ok(Reply {
        kind,
        xid: u32::from_be_bytes(array(&packet[XID..XID + 4])),
        client_mac,
        your_address: Ipv4Addr::from(array::<4>(&packet[YIADDR..YIADDR + 4])),
        server_address: Ipv4Addr::from(array::<4>(&packet[SIADDR..SIADDR + 4])),
        server_id: exact::<4>(&options, OPT_SERVER_ID)?.map(Ipv4Addr::from),
        prefix_len,
        router,
        lease_secs: exact::<4>(&options, OPT_LEASE_TIME)?.map(u32::from_be_bytes),
        message,
    })
}

/// The options of a message at least [`OPTIONS`] bytes long, by code: those
/// of the options field, then, if option 52 says so, those that overflowed
/// into `file` and `sname` (RFC 2131 §4.1 gives that order). An option given
/// more than once is the concatenation of its parts (RFC 3396).
///
/// Public for the test server of PID 1's client, which reads the client's
/// own DISCOVERs and REQUESTs with it; the client itself needs only
/// [`parse_reply`].
pub fn parse_options(packet: &[u8]) -> Result<BTreeMap<u8, Vec<u8>>, DhcpError> {
    let mut options = BTreeMap::new();
    collect_options(&packet[OPTIONS..], "options", &mut options)?;
    // Read before the overloaded fields are collected: they must not carry
    // option 52 again, and if they do it only lengthens the value here.
    let overload = exact::<1>(&options, OPT_OVERLOAD)?;
    let (file, sname) = match overload {
        None => (false, false),
        Some([1]) => (true, false),
        Some([2]) => (false, true),
        Some([3]) => (true, true),
        Some([value]) => return Err(DhcpError::Overload { value }),
    };
    if file {
        collect_options(&packet[FILE], "file", &mut options)?;
    }
    if sname {
        collect_options(&packet[SNAME], "sname", &mut options)?;
    }
    Ok(options)
}

/// Adds the options of one area to `options`. Pad bytes are skipped; the
/// end option or the end of the area ends it.
fn collect_options(
    area: &[u8],
    field: &'static str,
    options: &mut BTreeMap<u8, Vec<u8>>,
) -> Result<(), DhcpError> {
    let mut at = 0;
    while let Some(&code) = area.get(at) {
        match code {
            OPT_PAD => at += 1,
            OPT_END => break,
            _ => {
                let overrun = DhcpError::OptionOverrun { code, field };
                let len = usize::from(*area.get(at + 1).ok_or(overrun.clone())?);
                let value = area.get(at + 2..at + 2 + len).ok_or(overrun)?;
                options.entry(code).or_default().extend_from_slice(value);
                at += 2 + len;
            }
        }
    }
    Ok(())
}

/// Option `code`, which must be exactly `N` bytes long when present.
fn exact<const N: usize>(
    options: &BTreeMap<u8, Vec<u8>>,
    code: u8,
) -> Result<Option<[u8; N]>, DhcpError> {
    match options.get(&code) {
        None => Ok(None),
        Some(value) => <[u8; N]>::try_from(value.as_slice())
            .map(Some)
            .map_err(|_| DhcpError::OptionLength {
                code,
                len: value.len(),
            }),
    }
}

/// The first `N` bytes of `bytes` as an array; callers slice exactly `N`.
fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut array = [0; N];
    array.copy_from_slice(&bytes[..N]);
    array
}

/// The prefix length of a contiguous netmask (`255.255.255.0` is 24).
pub fn prefix_len(mask: Ipv4Addr) -> Option<u8> {
    let bits = u32::from(mask);
    let ones = bits.leading_ones();
    (bits == netmask_bits(ones as u8)).then_some(ones as u8)
}

/// The netmask of a prefix length (24 is `255.255.255.0`); lengths past 32
/// count as 32.
pub fn netmask(prefix_len: u8) -> Ipv4Addr {
    Ipv4Addr::from(netmask_bits(prefix_len))
}

fn netmask_bits(prefix_len: u8) -> u32 {
    match prefix_len {
        0 => 0,
        len => u32::MAX << (32 - u32::from(len.min(32))),
    }
}

/// The netmask a reply without option 1 implies: the class of the address
/// (RFC 2131 §4.3.1 leaves it to the client; this is what BOOTP clients
/// and the kernel's own autoconfiguration assume).
pub fn classful_prefix_len(address: Ipv4Addr) -> u8 {
    match address.octets()[0] {
        0..=127 => 8,
        128..=191 => 16,
        _ => 24,
    }
}

/// Packets as QEMU's user-mode network sends them, for the tests here, for
/// the tests of PID 1's client (the `fixtures` feature) and for the fuzz
/// seeds.
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;

#[cfg(test)]
mod tests;

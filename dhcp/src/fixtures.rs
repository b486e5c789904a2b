//! Test packets: replies laid out as QEMU's user-mode network (slirp) sends
//! them, and a hex reader for writing packets field by field. Built only
//! for tests, here and in `init` (through the `fixtures` feature).

use super::*;

/// Bytes from hex, ignoring whitespace and `|` separators (which mark
/// field boundaries in the fixtures).
pub fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text
        .bytes()
        .filter(|b| b.is_ascii_hexdigit())
        .map(|b| (b as char).to_digit(16).unwrap() as u8)
        .collect();
    assert!(digits.len().is_multiple_of(2), "odd number of hex digits");
    digits
        .chunks(2)
        .map(|pair| pair[0] << 4 | pair[1])
        .collect()
}

/// QEMU's default MAC for a guest's first NIC, as the client's.
pub const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
/// The transaction id of the fixtures' replies.
pub const TEST_XID: u32 = 0x1a2b_3c4d;

/// A reply laid out as QEMU's user-mode network (slirp's bootp.c)
/// sends it: op 2, the client's xid and chaddr, yiaddr, siaddr set to
/// the server, flags zero, then the cookie and `options` (hex) in a
/// 312-byte vendor area, so 548 bytes in all. `file` goes in the file
/// field (slirp puts the boot file name there).
pub fn slirp_reply(xid: u32, yiaddr: [u8; 4], options: &str, file: &[u8]) -> Vec<u8> {
    let mut packet = vec![0; 548];
    packet[..4].copy_from_slice(&[BOOTREPLY, 1, 6, 0]);
    packet[XID..XID + 4].copy_from_slice(&xid.to_be_bytes());
    packet[YIADDR..YIADDR + 4].copy_from_slice(&yiaddr);
    packet[SIADDR..SIADDR + 4].copy_from_slice(&[10, 0, 2, 2]);
    packet[CHADDR..CHADDR + 6].copy_from_slice(&MAC);
    packet[FILE][..file.len()].copy_from_slice(file);
    packet[COOKIE].copy_from_slice(&MAGIC_COOKIE);
    let options = hex(options);
    packet[OPTIONS..OPTIONS + options.len()].copy_from_slice(&options);
    packet
}

/// slirp's OFFER and ACK options, in slirp's order: message type,
/// server id 10.0.2.2, mask /24, router 10.0.2.2, DNS 10.0.2.3, lease
/// 86400 s, end.
pub fn slirp_options(kind: u8) -> String {
    format!(
        "35 01 {kind:02x} | 36 04 0a000202 | 01 04 ffffff00 | 03 04 0a000202 | \
         06 04 0a000203 | 33 04 00015180 | ff"
    )
}

pub fn slirp_offer(xid: u32) -> Vec<u8> {
    slirp_reply(xid, [10, 0, 2, 15], &slirp_options(DHCPOFFER), b"")
}

pub fn slirp_ack(xid: u32) -> Vec<u8> {
    slirp_reply(xid, [10, 0, 2, 15], &slirp_options(DHCPACK), b"")
}

/// slirp's NAK: no server id, the reason in option 56.
pub fn slirp_nak(xid: u32) -> Vec<u8> {
    let reason: String = b"requested address not available"
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    slirp_reply(xid, [0; 4], &format!("35 01 06 | 38 1f {reason} | ff"), b"")
}

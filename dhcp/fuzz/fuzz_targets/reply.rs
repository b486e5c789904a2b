//! A DHCP server's reply, as a hostile or broken host on the capture
//! kernel's network may send it: the parser must answer a reply or an
//! error, never panic, and every reply must keep the promises of `Reply`.

#![no_main]

use std::net::Ipv4Addr;

use dhcp::{parse_reply, MessageType, Reply, MAX_MESSAGE_CHARS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parsed = parse_reply(data);
    // The parser keeps no state: the same bytes give the same answer.
    assert_eq!(parse_reply(data), parsed);
    match parsed {
        Ok(reply) => check_reply(data, &reply),
        // Every error must describe itself without panicking, since the
        // client logs the ones it skips.
        Err(error) => assert!(!error.to_string().is_empty()),
    }
});

fn check_reply(data: &[u8], reply: &Reply) {
    // Only a whole BOOTP reply over Ethernet with the DHCP cookie parses
    // (RFC 2131 §2: op, htype, hlen, then the cookie at 236).
    assert!(data.len() >= 240);
    assert_eq!(data[..3], [2, 1, 6]);
    assert_eq!(data[236..240], [99, 130, 83, 99]);

    // The fixed fields are the packet's own bytes: xid at 4, yiaddr at 16,
    // siaddr at 20, chaddr at 28.
    assert_eq!(reply.xid.to_be_bytes(), data[4..8]);
    assert_eq!(reply.your_address.octets(), data[16..20]);
    assert_eq!(reply.server_address.octets(), data[20..24]);
    assert_eq!(reply.client_mac, data[28..34]);

    // The kinds the client acts on are never hidden in `Other`.
    if let MessageType::Other(kind) = reply.kind {
        assert!(![2, 5, 6].contains(&kind), "type {kind} parsed as Other");
    }

    // A prefix length comes only from a contiguous mask, so it turns back
    // into that mask and the mask into it.
    if let Some(len) = reply.prefix_len {
        assert!(len <= 32);
        let mask: Ipv4Addr = dhcp::netmask(len);
        assert_eq!(dhcp::prefix_len(mask), Some(len));
    }

    // The server's message goes to the log: short, and no control
    // character that could forge a line or move the terminal's cursor.
    if let Some(message) = &reply.message {
        assert!(message.chars().count() <= MAX_MESSAGE_CHARS);
        assert!(!message.chars().any(char::is_control));
    }

    // A reply that parsed read its options to the end option or to the end
    // of the packet, so the padding servers add (zeros to BOOTP's 300
    // bytes, RFC 1542) or an end option after the last byte changes
    // nothing.
    for tail in [&[0u8; 60][..], &[255]] {
        let longer = [data, tail].concat();
        assert_eq!(parse_reply(&longer).as_ref(), Ok(reply), "with {tail:?}");
    }
}

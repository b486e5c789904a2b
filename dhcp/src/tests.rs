//! Table tests of the codec against hand-laid packets, and a fuzz-style
//! test that no truncated or damaged reply makes the parser panic.

use super::fixtures::*;
use super::*;

/// The reply QEMU's slirp gives every client.
fn slirp_lease(kind: MessageType) -> Reply {
    Reply {
        kind,
        xid: TEST_XID,
        client_mac: MAC,
        your_address: Ipv4Addr::new(10, 0, 2, 15),
        server_address: Ipv4Addr::new(10, 0, 2, 2),
        server_id: Some(Ipv4Addr::new(10, 0, 2, 2)),
        prefix_len: Some(24),
        router: Some(Ipv4Addr::new(10, 0, 2, 2)),
        lease_secs: Some(86400),
        message: None,
    }
}

#[test]
fn discover_is_byte_for_byte_what_rfc_2131_asks() {
    let expected = hex(
        "01 01 06 00 | 1a2b3c4d | 0007 | 8000 | 00000000 | 00000000 | 00000000 | 00000000 |
         525400123456 00000000000000000000",
    );
    let packet = encode_discover(TEST_XID, MAC, 7);
    assert_eq!(packet.len(), MIN_MESSAGE_LEN);
    assert_eq!(packet[..44], expected[..]);
    assert!(packet[SNAME].iter().all(|&b| b == 0));
    assert!(packet[FILE].iter().all(|&b| b == 0));
    let options = hex("63825363 | 35 01 01 | 3d 07 01 525400123456 | 37 04 01 03 33 36 | ff");
    assert_eq!(
        packet[COOKIE.start..COOKIE.start + options.len()],
        options[..]
    );
    assert!(packet[COOKIE.start + options.len()..]
        .iter()
        .all(|&b| b == 0));
}

#[test]
fn request_names_the_address_and_the_server() {
    let packet = encode_request(
        TEST_XID,
        MAC,
        0,
        Ipv4Addr::new(10, 0, 2, 15),
        Ipv4Addr::new(10, 0, 2, 2),
    );
    assert_eq!(packet.len(), MIN_MESSAGE_LEN);
    assert_eq!(packet[..12], hex("01 01 06 00 1a2b3c4d 0000 8000")[..]);
    let options = hex(
        "63825363 | 35 01 03 | 3d 07 01 525400123456 | 32 04 0a00020f | 36 04 0a000202 |
         37 04 01 03 33 36 | ff",
    );
    assert_eq!(
        packet[COOKIE.start..COOKIE.start + options.len()],
        options[..]
    );
}

/// Our own messages parse with our own option parser, which the test
/// server of `init/src/net/fake.rs` relies on.
#[test]
fn requests_parse_back() {
    let packet = encode_request(
        TEST_XID,
        MAC,
        0,
        Ipv4Addr::new(1, 2, 3, 4),
        Ipv4Addr::new(5, 6, 7, 8),
    );
    let options = parse_options(&packet).unwrap();
    assert_eq!(options[&OPT_MESSAGE_TYPE], [DHCPREQUEST]);
    assert_eq!(options[&OPT_REQUESTED_ADDRESS], [1, 2, 3, 4]);
    assert_eq!(options[&OPT_SERVER_ID], [5, 6, 7, 8]);
}

#[test]
fn replies_parse() {
    let offer = slirp_lease(MessageType::Offer);
    let cases: Vec<(&str, Vec<u8>, Result<Reply, DhcpError>)> = vec![
        ("slirp offer", slirp_offer(TEST_XID), Ok(offer.clone())),
        (
            "slirp ack",
            slirp_ack(TEST_XID),
            Ok(slirp_lease(MessageType::Ack)),
        ),
        (
            "slirp nak",
            slirp_nak(TEST_XID),
            Ok(Reply {
                kind: MessageType::Nak,
                your_address: Ipv4Addr::UNSPECIFIED,
                server_id: None,
                prefix_len: None,
                router: None,
                lease_secs: None,
                message: Some("requested address not available".into()),
                ..offer.clone()
            }),
        ),
        (
            // Exactly the header and the options, as most servers send.
            "no padding after end",
            slirp_offer(TEST_XID)[..OPTIONS + 34].to_vec(),
            Ok(offer.clone()),
        ),
        (
            "pads between options, and a second router",
            slirp_reply(
                TEST_XID,
                [10, 0, 2, 15],
                "00 00 35 01 02 00 36 04 0a000202 01 04 ffffff00 00 03 08 0a000202 0a000203 \
                 33 04 00015180 ff",
                b"",
            ),
            Ok(offer.clone()),
        ),
        (
            "no end option: the area ends the options",
            slirp_offer(TEST_XID)[..OPTIONS + 33].to_vec(),
            Ok(offer.clone()),
        ),
        (
            "what follows end is ignored",
            slirp_reply(
                TEST_XID,
                [10, 0, 2, 15],
                &format!("{} 01 09", slirp_options(2)),
                b"",
            ),
            Ok(offer.clone()),
        ),
        (
            "an option split in two is joined (RFC 3396)",
            slirp_reply(
                TEST_XID,
                [10, 0, 2, 15],
                "35 01 02 36 04 0a000202 01 02 ffff 01 02 ff00 03 04 0a000202 \
                 33 04 00015180 ff",
                b"",
            ),
            Ok(offer.clone()),
        ),
        (
            "overloaded file field",
            slirp_reply(
                TEST_XID,
                [10, 0, 2, 15],
                "35 01 02 34 01 01 36 04 0a000202 ff",
                &hex("01 04 ffffff00 03 04 0a000202 33 04 00015180 ff"),
            ),
            Ok(offer.clone()),
        ),
        (
            "no mask, no router, no lease, no server id",
            slirp_reply(TEST_XID, [192, 168, 1, 9], "35 01 05 ff", b""),
            Ok(Reply {
                kind: MessageType::Ack,
                your_address: Ipv4Addr::new(192, 168, 1, 9),
                server_id: None,
                prefix_len: None,
                router: None,
                lease_secs: None,
                ..offer.clone()
            }),
        ),
        (
            "another message type",
            slirp_reply(TEST_XID, [0; 4], "35 01 08 ff", b""),
            Ok(Reply {
                kind: MessageType::Other(8),
                your_address: Ipv4Addr::UNSPECIFIED,
                server_id: None,
                prefix_len: None,
                router: None,
                lease_secs: None,
                ..offer.clone()
            }),
        ),
        (
            "a hostile message is made printable and short",
            slirp_reply(
                TEST_XID,
                [0; 4],
                &format!("35 01 06 38 ff {} ff", "1b".repeat(255)),
                b"",
            ),
            Ok(Reply {
                kind: MessageType::Nak,
                your_address: Ipv4Addr::UNSPECIFIED,
                server_id: None,
                prefix_len: None,
                router: None,
                lease_secs: None,
                message: Some("?".repeat(MAX_MESSAGE_CHARS)),
                ..offer.clone()
            }),
        ),
        ("empty", Vec::new(), Err(DhcpError::Truncated { len: 0 })),
        (
            "header cut short",
            slirp_offer(TEST_XID)[..239].to_vec(),
            Err(DhcpError::Truncated { len: 239 }),
        ),
        (
            "a request, not a reply",
            encode_discover(TEST_XID, MAC, 0),
            Err(DhcpError::NotAReply { op: 1 }),
        ),
        (
            "not ethernet",
            {
                let mut packet = slirp_offer(TEST_XID);
                packet[1] = 6;
                packet
            },
            Err(DhcpError::NotEthernet { htype: 6, hlen: 6 }),
        ),
        (
            "no cookie (plain BOOTP vendor area)",
            {
                let mut packet = slirp_offer(TEST_XID);
                packet[COOKIE].fill(0);
                packet
            },
            Err(DhcpError::NoMagicCookie { found: [0; 4] }),
        ),
        (
            "option cut in its value",
            slirp_offer(TEST_XID)[..OPTIONS + 5].to_vec(),
            Err(DhcpError::OptionOverrun {
                code: OPT_SERVER_ID,
                field: "options",
            }),
        ),
        (
            "option cut before its length",
            slirp_offer(TEST_XID)[..OPTIONS + 4].to_vec(),
            Err(DhcpError::OptionOverrun {
                code: OPT_SERVER_ID,
                field: "options",
            }),
        ),
        (
            "file overrun",
            slirp_reply(
                TEST_XID,
                [0; 4],
                "35 01 02 34 01 01 ff",
                &[[0; 126].as_slice(), &[3, 4]].concat(),
            ),
            Err(DhcpError::OptionOverrun {
                code: OPT_ROUTER,
                field: "file",
            }),
        ),
        (
            "sname overrun",
            {
                let mut packet = slirp_reply(TEST_XID, [0; 4], "35 01 02 34 01 02 ff", b"");
                packet[SNAME.end - 2] = OPT_ROUTER;
                packet[SNAME.end - 1] = 4;
                packet
            },
            Err(DhcpError::OptionOverrun {
                code: OPT_ROUTER,
                field: "sname",
            }),
        ),
        (
            "bad overload",
            slirp_reply(TEST_XID, [0; 4], "35 01 02 34 01 04 ff", b""),
            Err(DhcpError::Overload { value: 4 }),
        ),
        (
            "no message type",
            slirp_reply(TEST_XID, [0; 4], "36 04 0a000202 ff", b""),
            Err(DhcpError::NoMessageType),
        ),
        (
            "empty message type",
            slirp_reply(TEST_XID, [0; 4], "35 00 ff", b""),
            Err(DhcpError::OptionLength { code: 53, len: 0 }),
        ),
        (
            "short server id",
            slirp_reply(TEST_XID, [0; 4], "35 01 02 36 03 0a0002 ff", b""),
            Err(DhcpError::OptionLength { code: 54, len: 3 }),
        ),
        (
            "router of 6 bytes",
            slirp_reply(TEST_XID, [0; 4], "35 01 02 03 06 0a0002020a00 ff", b""),
            Err(DhcpError::OptionLength { code: 3, len: 6 }),
        ),
        (
            "non-contiguous mask",
            slirp_reply(TEST_XID, [0; 4], "35 01 02 01 04 ff00ff00 ff", b""),
            Err(DhcpError::SubnetMask {
                mask: Ipv4Addr::new(255, 0, 255, 0),
            }),
        ),
    ];
    for (name, packet, expected) in cases {
        assert_eq!(parse_reply(&packet), expected, "{name}");
    }
}

#[test]
fn netmasks_and_prefixes() {
    let cases = [
        (0, [0, 0, 0, 0]),
        (1, [128, 0, 0, 0]),
        (8, [255, 0, 0, 0]),
        (20, [255, 255, 240, 0]),
        (24, [255, 255, 255, 0]),
        (31, [255, 255, 255, 254]),
        (32, [255, 255, 255, 255]),
    ];
    for (len, mask) in cases {
        assert_eq!(netmask(len), Ipv4Addr::from(mask), "/{len}");
        assert_eq!(prefix_len(Ipv4Addr::from(mask)), Some(len), "{mask:?}");
    }
    assert_eq!(netmask(40), Ipv4Addr::BROADCAST);
    for bad in [[255, 0, 255, 0], [0, 0, 0, 1], [255, 255, 255, 253]] {
        assert_eq!(prefix_len(Ipv4Addr::from(bad)), None, "{bad:?}");
    }
    for (address, len) in [
        ([10, 0, 2, 15], 8),
        ([172, 16, 0, 1], 16),
        ([192, 168, 1, 2], 24),
    ] {
        assert_eq!(classful_prefix_len(Ipv4Addr::from(address)), len);
    }
}

/// A tiny deterministic generator, so the test needs no crate and its
/// failures reproduce.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Every prefix of real replies, and many damaged and random ones,
/// parse to a reply or an error: never a panic.
#[test]
fn truncated_and_hostile_packets_never_panic() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let seeds = [
        slirp_offer(TEST_XID),
        slirp_nak(TEST_XID),
        slirp_reply(
            TEST_XID,
            [1, 2, 3, 4],
            "35 01 02 34 01 03 ff",
            &hex("01 04 ffffff00 03 08 0a000202 0a000203 ff"),
        ),
    ];
    for seed in &seeds {
        for len in 0..=seed.len() {
            let _ = parse_reply(&seed[..len]);
        }
        for _ in 0..20_000 {
            let mut packet = seed.clone();
            let flips = rng.next() % 8 + 1;
            for _ in 0..flips {
                let at = (rng.next() % packet.len() as u64) as usize;
                packet[at] = rng.next() as u8;
            }
            let len = OPTIONS + (rng.next() % (packet.len() - OPTIONS + 1) as u64) as usize;
            let _ = parse_reply(&packet[..len]);
        }
    }
    for _ in 0..20_000 {
        let len = (rng.next() % 700) as usize;
        let mut packet: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if packet.len() >= OPTIONS {
            // Past the early checks, into the option parser.
            packet[..3].copy_from_slice(&[BOOTREPLY, 1, 6]);
            packet[COOKIE].copy_from_slice(&MAGIC_COOKIE);
        }
        let _ = parse_reply(&packet);
    }
}

/// The fuzz seed corpus of the `reply` target is these replies: QEMU's
/// OFFER, ACK and NAK, and an OFFER whose options overflow into `file` and
/// `sname`, so that the fuzzer starts inside every branch of the option
/// parser. This test fails when they are stale;
/// `UPDATE_FUZZ_SEEDS=1 cargo test -p dhcp fuzz_seeds` rewrites them.
#[test]
fn fuzz_seeds_are_current() {
    let overloaded = {
        let mut packet = slirp_reply(
            TEST_XID,
            [10, 0, 2, 15],
            "35 01 02 34 01 03 36 04 0a000202 ff",
            &hex("01 04 ffffff00 03 04 0a000202 ff"),
        );
        let sname = hex("33 04 00015180 38 05 68656c6c6f ff");
        packet[SNAME][..sname.len()].copy_from_slice(&sname);
        packet
    };
    assert_eq!(
        parse_reply(&overloaded),
        Ok(Reply {
            message: Some("hello".into()),
            ..slirp_lease(MessageType::Offer)
        })
    );
    let seeds: Vec<(&str, Vec<u8>)> = vec![
        ("reply/slirp-offer", slirp_offer(TEST_XID)),
        ("reply/slirp-ack", slirp_ack(TEST_XID)),
        ("reply/slirp-nak", slirp_nak(TEST_XID)),
        ("reply/overloaded-offer", overloaded),
    ];
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let update = std::env::var_os("UPDATE_FUZZ_SEEDS").is_some();
    for (name, bytes) in seeds {
        // Every seed is a reply the client would act on, so the fuzzer
        // starts from packets that get past every check.
        let reply = parse_reply(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            matches!(
                reply.kind,
                MessageType::Offer | MessageType::Ack | MessageType::Nak
            ),
            "{name}: {reply:?}"
        );
        let path = corpus.join(name);
        if update {
            std::fs::write(&path, &bytes).unwrap();
        } else {
            let current = std::fs::read(&path).unwrap_or_default();
            assert!(
                current == bytes,
                "{} is stale: run UPDATE_FUZZ_SEEDS=1 cargo test -p dhcp fuzz_seeds",
                path.display()
            );
        }
    }
}

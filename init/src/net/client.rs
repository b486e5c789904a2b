//! The DHCPv4 client: DISCOVER until an OFFER comes, REQUEST it until an
//! ACK (or a NAK, which starts over), all within one deadline. It only ever
//! acquires a lease, never renews one: a capture lasts minutes and leases
//! last hours, and the capture kernel is gone long before renewal time.
//!
//! It speaks through a [`Transport`], so that tests drive it with canned
//! replies and silences, without a network or root.

use std::io;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use dhcp::{MessageType, Reply};

use super::seconds;

/// How DHCP messages leave and arrive: a UDP socket on port 68 of the
/// interface, broadcasting to port 67.
pub trait Transport {
    /// Broadcasts `packet` to the DHCP servers.
    fn send(&mut self, packet: &[u8]) -> io::Result<()>;
    /// Waits at most `timeout` for a datagram and copies it into `buffer`;
    /// `Ok(None)` when none came in time.
    fn recv(&mut self, buffer: &mut [u8], timeout: Duration) -> io::Result<Option<usize>>;
}

/// The waits between retransmissions: `first`, doubling up to `max`, each
/// lengthened by a random eighth so that machines rebooted together do not
/// keep asking in step (RFC 2131 §4.1 asks for randomisation).
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

impl Backoff {
    /// 1 s, 2 s, 4 s, 4 s…: RFC 2131 suggests 4 s doubling to 64 s, but a
    /// capture kernel has one job and a deadline, and a lost first DISCOVER
    /// (a switch port still coming up) is the usual case to recover from.
    pub const DHCP: Backoff = Backoff {
        first: Duration::from_secs(1),
        max: Duration::from_secs(4),
    };

    /// The wait after the `attempt`th transmission (0-based), before jitter.
    fn interval(&self, attempt: u32) -> Duration {
        self.first
            .saturating_mul(1 << attempt.min(16))
            .min(self.max)
    }
}

/// REQUESTs sent for one OFFER before starting over with a DISCOVER.
const REQUEST_ATTEMPTS: u32 = 3;

/// Large enough for any reply to a client that does not raise the 576-byte
/// limit with option 57 (this one does not): a longer datagram is cut, and
/// then fails to parse and is ignored.
const RECEIVE_BUFFER: usize = 1500;

/// An acquired lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub address: Ipv4Addr,
    pub prefix_len: u8,
    pub router: Option<Ipv4Addr>,
    /// The server that acknowledged (its option 54, else `siaddr`).
    pub server: Ipv4Addr,
    pub lease_secs: Option<u32>,
    /// DISCOVERs sent to get it.
    pub discovers: u32,
}

/// Why no lease was acquired.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("no DHCP offer within {} ({discovers} discovers sent on {interface})", seconds(*.within))]
    NoOffer {
        interface: String,
        within: Duration,
        discovers: u32,
    },
    #[error(
        "no DHCP lease within {} on {interface}: {offers} offers came for {discovers} discovers, \
         but no acknowledgement{}",
        seconds(*.within),
        nak_summary(*.naks, .last_nak.as_deref())
    )]
    NoAck {
        interface: String,
        within: Duration,
        discovers: u32,
        offers: u32,
        naks: u32,
        last_nak: Option<String>,
    },
    #[error("cannot send a DHCP message on {interface}")]
    Send {
        interface: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot receive DHCP replies on {interface}")]
    Receive {
        interface: String,
        #[source]
        source: io::Error,
    },
}

fn nak_summary(naks: u32, last: Option<&str>) -> String {
    match (naks, last) {
        (0, _) => String::new(),
        (n, Some(text)) => format!(" ({n} NAKs, the last saying \"{text}\")"),
        (n, None) => format!(" ({n} NAKs)"),
    }
}

/// Acquires a lease for `mac` on `interface` within `within`. `seed` gives
/// the transaction id and the jitter: it should be random, so that two
/// clients never share a transaction.
pub fn acquire(
    transport: &mut dyn Transport,
    interface: &str,
    mac: [u8; 6],
    seed: u64,
    within: Duration,
    backoff: Backoff,
) -> Result<Lease, LeaseError> {
    let started = Instant::now();
    let mut client = Client {
        transport,
        interface,
        mac,
        xid: seed as u32,
        jitter: Jitter::new(seed >> 32),
        backoff,
        started,
        deadline: started + within,
        within,
        discovers: 0,
        offers: 0,
        naks: 0,
        last_nak: None,
    };
    client.run()
}

struct Client<'a> {
    transport: &'a mut dyn Transport,
    interface: &'a str,
    mac: [u8; 6],
    /// One transaction id for the whole exchange: the REQUEST must carry
    /// the DISCOVER's, and a reply to any earlier DISCOVER is as good.
    xid: u32,
    jitter: Jitter,
    backoff: Backoff,
    started: Instant,
    deadline: Instant,
    within: Duration,
    discovers: u32,
    offers: u32,
    naks: u32,
    last_nak: Option<String>,
}

/// What came of requesting an offer.
enum Requested {
    Ack(Lease),
    Nak,
    Silence,
}

impl Client<'_> {
    fn run(&mut self) -> Result<Lease, LeaseError> {
        loop {
            let Some(offer) = self.select()? else {
                return Err(self.timed_out());
            };
            match self.request(&offer)? {
                Requested::Ack(lease) => return Ok(lease),
                // The server changed its mind, or the address is taken:
                // start over, after a pause so that a server which NAKs
                // everything is not asked in a tight loop.
                Requested::Nak => std::thread::sleep(self.backoff.first.min(self.remaining())),
                Requested::Silence => log::info!(
                    "{}: no answer to the DHCP request for {}; discovering again",
                    self.interface,
                    offer.your_address
                ),
            }
        }
    }

    /// Broadcasts DISCOVERs until an OFFER comes; `None` at the deadline.
    fn select(&mut self) -> Result<Option<Reply>, LeaseError> {
        let mut attempt = 0;
        while !self.remaining().is_zero() {
            let packet = dhcp::encode_discover(self.xid, self.mac, self.secs());
            self.send(&packet)?;
            self.discovers += 1;
            let until = self.next_retransmission(attempt);
            if let Some(offer) = self.await_reply(until, |reply| {
                reply.kind == MessageType::Offer
                    && !reply.your_address.is_unspecified()
                    && server_of(reply).is_some()
            })? {
                self.offers += 1;
                log::debug!(
                    "{}: DHCP offer of {} from {}",
                    self.interface,
                    offer.your_address,
                    server_of(&offer).unwrap_or(Ipv4Addr::UNSPECIFIED)
                );
                return Ok(Some(offer));
            }
            attempt += 1;
        }
        Ok(None)
    }

    /// Requests `offer` from its server until it answers, a few times.
    fn request(&mut self, offer: &Reply) -> Result<Requested, LeaseError> {
        // `select` only returns offers with a server.
        let server = server_of(offer).unwrap_or(Ipv4Addr::UNSPECIFIED);
        let from_server = |reply: &Reply| reply.server_id.is_none_or(|id| id == server);
        for attempt in 0..REQUEST_ATTEMPTS {
            if self.remaining().is_zero() {
                break;
            }
            let packet =
                dhcp::encode_request(self.xid, self.mac, self.secs(), offer.your_address, server);
            self.send(&packet)?;
            let until = self.next_retransmission(attempt);
            let answer = self.await_reply(until, |reply| {
                from_server(reply)
                    && match reply.kind {
                        MessageType::Ack => !reply.your_address.is_unspecified(),
                        MessageType::Nak => true,
                        _ => false,
                    }
            })?;
            let Some(answer) = answer else { continue };
            if answer.kind == MessageType::Nak {
                self.naks += 1;
                log::warn!(
                    "{}: DHCP server {server} refused {}: {}",
                    self.interface,
                    offer.your_address,
                    answer.message.as_deref().unwrap_or("(no reason given)")
                );
                self.last_nak = answer.message;
                return Ok(Requested::Nak);
            }
            // The ACK is authoritative; the offer fills what it leaves out.
            let address = answer.your_address;
            return Ok(Requested::Ack(Lease {
                address,
                prefix_len: answer
                    .prefix_len
                    .or(offer.prefix_len)
                    .unwrap_or_else(|| dhcp::classful_prefix_len(address)),
                router: answer.router.or(offer.router),
                server,
                lease_secs: answer.lease_secs.or(offer.lease_secs),
                discovers: self.discovers,
            }));
        }
        Ok(Requested::Silence)
    }

    /// Receives until `until`, returning the first reply to this client
    /// that `wanted` accepts. Everything else is ignored: replies to other
    /// clients (servers broadcast them all), stale replies, and datagrams
    /// that are not DHCP replies at all.
    fn await_reply(
        &mut self,
        until: Instant,
        wanted: impl Fn(&Reply) -> bool,
    ) -> Result<Option<Reply>, LeaseError> {
        let mut buffer = [0; RECEIVE_BUFFER];
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let len = match self.transport.recv(&mut buffer, left) {
                Ok(Some(len)) => len.min(buffer.len()),
                Ok(None) => continue,
                Err(source) => {
                    return Err(LeaseError::Receive {
                        interface: self.interface.to_owned(),
                        source,
                    })
                }
            };
            match dhcp::parse_reply(&buffer[..len]) {
                Ok(reply) if reply.xid == self.xid && reply.client_mac == self.mac => {
                    if wanted(&reply) {
                        return Ok(Some(reply));
                    }
                    log::debug!("{}: ignoring a DHCP {:?} now", self.interface, reply.kind);
                }
                Ok(_) => {}
                Err(error) => log::debug!(
                    "{}: ignoring a datagram that is no DHCP reply: {error}",
                    self.interface
                ),
            }
        }
    }

    fn send(&mut self, packet: &[u8]) -> Result<(), LeaseError> {
        self.transport
            .send(packet)
            .map_err(|source| LeaseError::Send {
                interface: self.interface.to_owned(),
                source,
            })
    }

    /// When to send again after the `attempt`th transmission, never past
    /// the deadline.
    fn next_retransmission(&mut self, attempt: u32) -> Instant {
        let interval = self.backoff.interval(attempt);
        let wait = interval + self.jitter.up_to(interval / 8);
        (Instant::now() + wait).min(self.deadline)
    }

    fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// The `secs` field: seconds since the client began (RFC 2131 §2).
    fn secs(&self) -> u16 {
        u16::try_from(self.started.elapsed().as_secs()).unwrap_or(u16::MAX)
    }

    fn timed_out(&self) -> LeaseError {
        if self.offers == 0 {
            LeaseError::NoOffer {
                interface: self.interface.to_owned(),
                within: self.within,
                discovers: self.discovers,
            }
        } else {
            LeaseError::NoAck {
                interface: self.interface.to_owned(),
                within: self.within,
                discovers: self.discovers,
                offers: self.offers,
                naks: self.naks,
                last_nak: self.last_nak.clone(),
            }
        }
    }
}

/// The server to request an offer from: its option 54, which RFC 2131
/// requires, else `siaddr`, which old servers fill instead.
fn server_of(reply: &Reply) -> Option<Ipv4Addr> {
    reply
        .server_id
        .or((!reply.server_address.is_unspecified()).then_some(reply.server_address))
}

/// Jitter for retransmissions: xorshift, seeded at random. Not for
/// anything secret; it only keeps clients from retrying in step.
struct Jitter(u64);

impl Jitter {
    fn new(seed: u64) -> Jitter {
        // Xorshift stays at zero forever from a zero state.
        Jitter(seed | 1)
    }

    fn up_to(&mut self, limit: Duration) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        let nanos = u64::try_from(limit.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(self.0 % nanos.saturating_add(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::fake::{Answer, FakeServer, Sent};
    use dhcp::fixtures::{hex, slirp_ack, slirp_offer, slirp_reply, MAC};

    /// Small enough that the silent cases take a fraction of a second.
    const FAST: Backoff = Backoff {
        first: Duration::from_millis(20),
        max: Duration::from_millis(80),
    };
    const SHORT: Duration = Duration::from_millis(300);

    fn acquire_from(server: &mut FakeServer, within: Duration) -> Result<Lease, LeaseError> {
        acquire(server, "eth0", MAC, 0x0123_4567_89ab_cdef, within, FAST)
    }

    fn slirp_lease(discovers: u32) -> Lease {
        Lease {
            address: Ipv4Addr::new(10, 0, 2, 15),
            prefix_len: 24,
            router: Some(Ipv4Addr::new(10, 0, 2, 2)),
            server: Ipv4Addr::new(10, 0, 2, 2),
            lease_secs: Some(86400),
            discovers,
        }
    }

    #[test]
    fn offer_then_ack_is_a_lease() {
        let mut server = FakeServer::slirp();
        let lease = acquire_from(&mut server, Duration::from_secs(5)).unwrap();
        assert_eq!(lease, slirp_lease(1));
        let sent = server.sent();
        assert_eq!(
            sent,
            [
                Sent::Discover { xid: 0x89ab_cdef },
                Sent::Request {
                    xid: 0x89ab_cdef,
                    requested: Ipv4Addr::new(10, 0, 2, 15),
                    server_id: Ipv4Addr::new(10, 0, 2, 2),
                }
            ]
        );
    }

    #[test]
    fn replies_for_others_and_garbage_are_ignored() {
        let xid = 0x89ab_cdef;
        let mut other_client = slirp_offer(xid);
        other_client[28 + 5] ^= 0xff;
        let mut server = FakeServer::slirp();
        server.noise = vec![
            slirp_offer(xid ^ 1),
            other_client,
            // An ACK before any request: stale, or for another client.
            slirp_ack(xid),
            hex("deadbeef"),
            // Another client's DISCOVER, as a broadcast echo would bring it.
            dhcp::encode_discover(xid, MAC, 0),
        ];
        let lease = acquire_from(&mut server, Duration::from_secs(5)).unwrap();
        assert_eq!(lease, slirp_lease(1));
    }

    #[test]
    fn a_nak_starts_over_from_discover() {
        let mut server = FakeServer::slirp();
        server.answers = vec![Answer::Nak, Answer::Ack].into();
        let lease = acquire_from(&mut server, Duration::from_secs(5)).unwrap();
        assert_eq!(lease, slirp_lease(2));
        let kinds: Vec<&str> = server.sent().iter().map(Sent::kind).collect();
        assert_eq!(kinds, ["discover", "request", "discover", "request"]);
    }

    #[test]
    fn an_unanswered_request_is_sent_again_then_discover_again() {
        let mut server = FakeServer::slirp();
        server.answers = vec![Answer::Silence; REQUEST_ATTEMPTS as usize].into();
        let lease = acquire_from(&mut server, Duration::from_secs(5)).unwrap();
        assert_eq!(lease, slirp_lease(2));
        let kinds: Vec<&str> = server.sent().iter().map(Sent::kind).collect();
        assert_eq!(
            kinds,
            ["discover", "request", "request", "request", "discover", "request"]
        );
    }

    #[test]
    fn an_ack_fills_in_from_the_offer_and_the_address_class() {
        let xid = 0x89ab_cdef;
        let mut server = FakeServer::slirp();
        // An old server: no option 54 (siaddr names it), and a bare ACK.
        server.offer = slirp_reply(xid, [192, 168, 7, 20], "35 01 02 03 04 c0a80701 ff", b"");
        server.ack = slirp_reply(xid, [192, 168, 7, 20], "35 01 05 ff", b"");
        let lease = acquire_from(&mut server, Duration::from_secs(5)).unwrap();
        assert_eq!(
            lease,
            Lease {
                address: Ipv4Addr::new(192, 168, 7, 20),
                prefix_len: 24,
                router: Some(Ipv4Addr::new(192, 168, 7, 1)),
                server: Ipv4Addr::new(10, 0, 2, 2),
                lease_secs: None,
                discovers: 1,
            }
        );
    }

    #[test]
    fn silence_is_an_error_counting_the_discovers() {
        let mut server = FakeServer::slirp();
        server.silent = true;
        let started = Instant::now();
        let error = acquire_from(&mut server, SHORT).unwrap_err();
        let waited = started.elapsed();
        assert!(waited >= SHORT && waited < SHORT * 3, "{waited:?}");
        let discovers = server.sent().len();
        // 20, 40, 80, 80… ms (plus jitter) fit at least 4 times in 300 ms.
        assert!(discovers >= 4, "{discovers}");
        assert_eq!(
            error.to_string(),
            format!("no DHCP offer within 0.3 s ({discovers} discovers sent on eth0)")
        );
    }

    #[test]
    fn offers_without_an_ack_say_so() {
        let mut server = FakeServer::slirp();
        server.answers = vec![Answer::Nak; 1000].into();
        let error = acquire_from(&mut server, SHORT).unwrap_err();
        let LeaseError::NoAck {
            discovers,
            offers,
            naks,
            ..
        } = &error
        else {
            panic!("{error}");
        };
        assert!(*offers >= 2 && *naks == *offers && *discovers == *offers);
        assert_eq!(
            error.to_string(),
            format!(
                "no DHCP lease within 0.3 s on eth0: {offers} offers came for {discovers} \
                 discovers, but no acknowledgement ({naks} NAKs, the last saying \
                 \"requested address not available\")"
            )
        );
    }

    #[test]
    fn a_failed_send_is_an_error() {
        let mut server = FakeServer::slirp();
        server.send_error = Some(io::ErrorKind::NetworkDown);
        let error = acquire_from(&mut server, SHORT).unwrap_err();
        assert!(matches!(error, LeaseError::Send { .. }));
        assert_eq!(error.to_string(), "cannot send a DHCP message on eth0");
    }

    #[test]
    fn backoff_doubles_up_to_its_maximum() {
        let intervals: Vec<u64> = (0..6)
            .map(|attempt| Backoff::DHCP.interval(attempt).as_secs())
            .collect();
        assert_eq!(intervals, [1, 2, 4, 4, 4, 4]);
        assert_eq!(Backoff::DHCP.interval(u32::MAX), Duration::from_secs(4));
        let mut jitter = Jitter::new(0);
        for _ in 0..100 {
            assert!(jitter.up_to(Duration::from_millis(500)) <= Duration::from_millis(500));
        }
        assert_eq!(jitter.up_to(Duration::ZERO), Duration::ZERO);
    }
}

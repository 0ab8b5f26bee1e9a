//! A TCP proxy between a client and a broker, for network faults the
//! broker cannot make: `cut` closes every connection through it at once
//! (the broker keeps its sessions, unlike a restart without persistence),
//! and `swallow_upstream` drops what the client sends from then on, so a
//! PUBLISH is written by the client but never reaches the broker.
//! `blackhole` stops forwarding without closing anything, in both
//! directions, for the current connections and for new ones until
//! `forward_again`: a dead path (a cable pulled behind a NAT) that neither
//! side hears about, so only a keep-alive can find it.
//! Standard library only: a thread per direction per connection.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

/// What a blackholed connection does with the bytes it reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hole {
    /// Reads nothing more: the bytes wait in the sockets (the sender's
    /// buffer fills and its writes block, like a path that lost the peer).
    Hold,
    /// Reads and drops: the sender's bytes are taken (acknowledged by
    /// TCP) and go nowhere, like a middlebox whose far side died.
    Drop,
}

const FORWARD: u8 = 0;
const HOLD: u8 = 1;
const DROP: u8 = 2;

fn hole_code(hole: Option<Hole>) -> u8 {
    match hole {
        None => FORWARD,
        Some(Hole::Hold) => HOLD,
        Some(Hole::Drop) => DROP,
    }
}

/// One client connection through the proxy: both sockets, and whether
/// the client's bytes are dropped.
struct Link {
    client: TcpStream,
    broker: TcpStream,
    swallow: Arc<AtomicBool>,
    /// FORWARD, HOLD or DROP (see `Hole`); a blackholed link stays so.
    hole: Arc<AtomicU8>,
}

#[derive(Default)]
struct Shared {
    links: Mutex<Vec<Link>>,
    stopped: AtomicBool,
    /// Bytes of the clients dropped by `swallow_upstream` so far.
    swallowed: Arc<AtomicUsize>,
    /// The blackhole new connections get (FORWARD: none).
    hole: AtomicU8,
    /// Connections accepted so far.
    accepted: AtomicUsize,
    /// Bytes read and not forwarded by blackholed links, both directions.
    held_or_dropped: AtomicUsize,
    /// Wakes held pumps when the proxy stops.
    stop_lock: Mutex<()>,
    stop_wake: Condvar,
}

pub struct Proxy {
    port: u16,
    shared: Arc<Shared>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards each connection to
    /// 127.0.0.1:`target`.
    pub fn start(target: u16) -> Proxy {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind the proxy");
        let port = listener.local_addr().expect("local_addr").port();
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        std::thread::spawn(move || accept_loop(listener, target, s));
        Proxy { port, shared }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// How many bytes of the clients were dropped so far: a test waits for
    /// it to grow to know that a packet was written and went nowhere.
    pub fn swallowed(&self) -> usize {
        self.shared.swallowed.load(Ordering::SeqCst)
    }

    /// Drops what the clients of the current connections send from now on.
    pub fn swallow_upstream(&self) {
        for l in self.shared.links.lock().unwrap().iter() {
            l.swallow.store(true, Ordering::SeqCst);
        }
    }

    /// Stops forwarding in both directions on every current connection,
    /// and on every connection made until `forward_again`, without closing
    /// anything: a close (or EOF) from either side is not passed on either.
    pub fn blackhole(&self, hole: Hole) {
        let code = hole_code(Some(hole));
        self.shared.hole.store(code, Ordering::SeqCst);
        for l in self.shared.links.lock().unwrap().iter() {
            l.hole.store(code, Ordering::SeqCst);
        }
    }

    /// New connections are forwarded again; those made while the
    /// blackhole lasted stay in it (kept open, forwarding nothing).
    pub fn forward_again(&self) {
        self.shared.hole.store(FORWARD, Ordering::SeqCst);
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Bytes that blackholed links read and did not forward.
    pub fn held_or_dropped(&self) -> usize {
        self.shared.held_or_dropped.load(Ordering::SeqCst)
    }

    /// Closes every current connection on both sides, like a network
    /// fault; later connections go through as usual.
    pub fn cut(&self) {
        for l in self.shared.links.lock().unwrap().drain(..) {
            let _ = l.client.shutdown(Shutdown::Both);
            let _ = l.broker.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        {
            let _g = self.shared.stop_lock.lock().unwrap();
            self.shared.stopped.store(true, Ordering::SeqCst);
            self.shared.stop_wake.notify_all();
        }
        self.cut();
        // Wakes the accept loop, which then sees `stopped`.
        let _ = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port));
    }
}

fn accept_loop(listener: TcpListener, target: u16, shared: Arc<Shared>) {
    for client in listener.incoming() {
        if shared.stopped.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        let Ok(broker) = TcpStream::connect((Ipv4Addr::LOCALHOST, target)) else {
            continue;
        };
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        let swallow = Arc::new(AtomicBool::new(false));
        let hole = Arc::new(AtomicU8::new(shared.hole.load(Ordering::SeqCst)));
        let (Ok(c2), Ok(b2), Ok(c3), Ok(b3)) = (
            client.try_clone(),
            broker.try_clone(),
            client.try_clone(),
            broker.try_clone(),
        ) else {
            continue;
        };
        let up = Pump {
            swallow: Some((swallow.clone(), shared.swallowed.clone())),
            hole: hole.clone(),
            shared: shared.clone(),
        };
        let down = Pump {
            swallow: None,
            hole: hole.clone(),
            shared: shared.clone(),
        };
        std::thread::spawn(move || up.run(c2, b2));
        std::thread::spawn(move || down.run(b3, c3));
        shared.links.lock().unwrap().push(Link {
            client,
            broker,
            swallow,
            hole,
        });
    }
}

/// One direction of one connection.
struct Pump {
    /// Upstream only: drop the bytes while set (and count them).
    swallow: Option<(Arc<AtomicBool>, Arc<AtomicUsize>)>,
    hole: Arc<AtomicU8>,
    shared: Arc<Shared>,
}

impl Pump {
    /// Copies `from` to `to` until either ends, then ends both sockets as a
    /// closed link would; unless the link is blackholed, which forwards
    /// nothing and closes nothing (see `Proxy::blackhole`).
    fn run(self, mut from: TcpStream, mut to: TcpStream) {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            match self.hole.load(Ordering::SeqCst) {
                FORWARD => {}
                DROP => {
                    self.shared.held_or_dropped.fetch_add(n, Ordering::SeqCst);
                    continue;
                }
                _ => {
                    self.shared.held_or_dropped.fetch_add(n, Ordering::SeqCst);
                    break;
                }
            }
            if let Some((on, count)) = &self.swallow {
                if on.load(Ordering::SeqCst) {
                    count.fetch_add(n, Ordering::SeqCst);
                    continue;
                }
            }
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        if self.hole.load(Ordering::SeqCst) != FORWARD {
            // Holds the sockets open, reading nothing, until the proxy goes.
            let mut g = self.shared.stop_lock.lock().unwrap();
            while !self.shared.stopped.load(Ordering::SeqCst) {
                g = self.shared.stop_wake.wait(g).unwrap();
            }
        }
        let _ = from.shutdown(Shutdown::Both);
        let _ = to.shutdown(Shutdown::Both);
    }
}

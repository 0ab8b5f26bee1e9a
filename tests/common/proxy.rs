//! A TCP proxy between a client and a broker, for network faults the
//! broker cannot make: `cut` closes every connection through it at once
//! (the broker keeps its sessions, unlike a restart without persistence),
//! and `swallow_upstream` drops what the client sends from then on, so a
//! PUBLISH is written by the client but never reaches the broker.
//! Standard library only: a thread per direction per connection.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// One client connection through the proxy: both sockets, and whether
/// the client's bytes are dropped.
struct Link {
    client: TcpStream,
    broker: TcpStream,
    swallow: Arc<AtomicBool>,
}

#[derive(Default)]
struct Shared {
    links: Mutex<Vec<Link>>,
    stopped: AtomicBool,
    /// Bytes of the clients dropped by `swallow_upstream` so far.
    swallowed: Arc<AtomicUsize>,
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
        self.shared.stopped.store(true, Ordering::SeqCst);
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
        let swallow = Arc::new(AtomicBool::new(false));
        let (Ok(c2), Ok(b2), Ok(c3), Ok(b3)) = (
            client.try_clone(),
            broker.try_clone(),
            client.try_clone(),
            broker.try_clone(),
        ) else {
            continue;
        };
        let up = (swallow.clone(), shared.swallowed.clone());
        std::thread::spawn(move || pump(c2, b2, Some(up)));
        std::thread::spawn(move || pump(b3, c3, None));
        shared.links.lock().unwrap().push(Link {
            client,
            broker,
            swallow,
        });
    }
}

/// Copies `from` to `to` until either ends; drops the bytes while
/// `swallow` is set (and counts them). Ends both sockets when done, as a
/// closed link would.
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    swallow: Option<(Arc<AtomicBool>, Arc<AtomicUsize>)>,
) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some((on, count)) = &swallow {
            if on.load(Ordering::SeqCst) {
                count.fetch_add(n, Ordering::SeqCst);
                continue;
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

//! Test support shared by the integration tests: a private mosquitto broker
//! per test, on a free loopback port, with its own config, log and temp dir.
//!
//! Never touches the shared broker on 1883. The broker part uses the
//! standard library only; certs.rs makes TLS certificates (rcgen),
//! ws_bridge.rs puts a WebSocket server in front of a broker, and proxy.rs
//! a TCP proxy that can cut connections.
#![allow(dead_code)]

pub mod certs;
pub mod child;
pub mod cprog;
pub mod events;
pub mod nats;
pub mod proxy;
pub mod restart;
pub mod tunnel;
pub mod ws_bridge;

use std::fs;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a broker gets to start accepting connections.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a start is retried when the port we picked was taken in between.
const START_ATTEMPTS: usize = 3;

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(prefix: &str) -> io::Result<TempDir> {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!("{prefix}-{}-{n}", std::process::id()));
            match fs::create_dir(&path) {
                Ok(()) => return Ok(TempDir { path }),
                // Left over from an earlier process that had our pid.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// The mosquitto executable: `$MOSQUITTO`, else `mosquitto` on PATH, else
/// Debian's /usr/sbin/mosquitto (not on a non-root PATH).
pub fn mosquitto_path() -> PathBuf {
    if let Some(p) = std::env::var_os("MOSQUITTO") {
        return PathBuf::from(p);
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let candidate = dir.join("mosquitto");
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    PathBuf::from("/usr/sbin/mosquitto")
}

/// A free TCP port on 127.0.0.1 (free when we looked; see `Broker::start_with`).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

/// A mosquitto process of our own. Killed, reaped and cleaned up on drop.
pub struct Broker {
    child: Child,
    port: u16,
    log_path: PathBuf,
    conf_path: PathBuf,
    // Declared last so the directory outlives the process that writes into it.
    dir: TempDir,
}

impl Broker {
    /// A broker with the default test configuration.
    pub fn start() -> Broker {
        Broker::start_with("")
    }

    /// A broker whose configuration ends with `extra_conf` (mosquitto.conf
    /// lines, e.g. "max_packet_size 2000\n").
    pub fn start_with(extra_conf: &str) -> Broker {
        Broker::start_conf(extra_conf, false)
    }

    /// A broker with `persistence true`, its database in the broker's temp
    /// dir: sessions and queued messages survive `restart` (mosquitto
    /// writes the database when `stop` ends it with SIGTERM).
    pub fn start_persistent(extra_conf: &str) -> Broker {
        Broker::start_conf(extra_conf, true)
    }

    fn start_conf(extra_conf: &str, persistence: bool) -> Broker {
        let mut failures = String::new();
        for attempt in 1..=START_ATTEMPTS {
            match Broker::try_start(extra_conf, persistence) {
                Ok(broker) => return broker,
                Err(e) => failures.push_str(&format!("--- attempt {attempt}: {e}\n")),
            }
        }
        panic!("mosquitto did not start ({START_ATTEMPTS} attempts):\n{failures}");
    }

    fn try_start(extra_conf: &str, persistence: bool) -> Result<Broker, String> {
        let dir = TempDir::new("mqtt5c-broker").map_err(|e| format!("temp dir: {e}"))?;
        let port = free_port();
        let log_path = dir.path().join("mosquitto.log");
        let conf_path = dir.path().join("mosquitto.conf");
        let conf = format!(
            "# written by tests/common/mod.rs\n\
             listener {port} 127.0.0.1\n\
             allow_anonymous true\n\
             persistence {persistence}\n\
             persistence_location {dir}/\n\
             # when run as root mosquitto would switch to user mosquitto and\n\
             # then could not write its log into our temp dir\n\
             user root\n\
             log_dest file {log}\n\
             log_type error\n\
             log_type warning\n\
             log_type notice\n\
             log_type information\n\
             connection_messages true\n\
             log_timestamp true\n\
             {extra_conf}\n",
            log = log_path.display(),
            dir = dir.path().display(),
        );
        fs::write(&conf_path, conf).map_err(|e| format!("write {}: {e}", conf_path.display()))?;

        let stderr_path = dir.path().join("mosquitto.stderr");
        let child = spawn_mosquitto(&conf_path, &stderr_path)?;

        let mut broker = Broker {
            child,
            port,
            log_path,
            conf_path,
            dir,
        };
        // A fresh log: no earlier run to count.
        match broker.wait_ready(0) {
            Ok(()) => Ok(broker),
            Err(why) => {
                let stderr = fs::read_to_string(&stderr_path).unwrap_or_default();
                Err(format!(
                    "{why}\nmosquitto stderr:\n{stderr}\nmosquitto log:\n{}",
                    broker.log()
                ))
                // `broker` drops here: killed and cleaned up.
            }
        }
    }

    /// Waits until the port accepts a TCP connection, or the process died,
    /// or START_TIMEOUT passed.
    /// How many times the log says a broker was running: `wait_ready`
    /// waits for one more than before the process was spawned.
    fn runs_logged(&self) -> usize {
        self.log().matches(" running").count()
    }

    /// Ready means: this process logged "running" (all listeners are open
    /// by then, the Unix socket and TLS ones included, not only the first
    /// TCP port), and the port accepts. A port that accepts alone could be
    /// another process's that took it between free_port() and our bind.
    /// `runs_before` is `runs_logged()` from before the spawn.
    fn wait_ready(&mut self, runs_before: usize) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let mut backoff = Duration::from_millis(5);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("mosquitto exited during start-up: {status}"));
            }
            if self.runs_logged() > runs_before
                && TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "mosquitto did not log 'running' with port {} accepting within {START_TIMEOUT:?}",
                    self.port
                ));
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_millis(200));
        }
    }

    /// Stops the broker with SIGTERM (a persistent broker then writes its
    /// database) and waits for it to exit. Port and directory stay ours:
    /// `start_again` brings it back.
    pub fn stop(&mut self) {
        // SAFETY: kill(2) on our own child's pid, which is not reaped yet
        // (so not reused) until the wait below.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.child.wait();
    }

    /// Starts the broker again after `stop`, on the same port with the
    /// same configuration, and waits until it accepts connections.
    pub fn start_again(&mut self) {
        let stderr_path = self.dir.path().join("mosquitto.stderr");
        let runs_before = self.runs_logged();
        self.child = spawn_mosquitto(&self.conf_path, &stderr_path)
            .unwrap_or_else(|e| panic!("restarting mosquitto: {e}"));
        if let Err(why) = self.wait_ready(runs_before) {
            panic!(
                "mosquitto did not restart: {why}\nstderr:\n{}\nlog:\n{}",
                fs::read_to_string(&stderr_path).unwrap_or_default(),
                self.log()
            );
        }
    }

    /// `stop` then `start_again`.
    pub fn restart(&mut self) {
        self.stop();
        self.start_again();
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The broker's process id, for tests that stop it (SIGSTOP) to make
    /// it silent. Dropping the broker kills it, stopped or not.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// "mqtt://127.0.0.1:PORT"
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// The broker's log so far (empty if it has not written one yet).
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn conf_path(&self) -> &Path {
        &self.conf_path
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// Starts mosquitto with `conf`, its stderr appended to `stderr_path`.
fn spawn_mosquitto(conf: &Path, stderr_path: &Path) -> Result<Child, String> {
    let stderr = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(stderr_path)
        .map_err(|e| format!("stderr file: {e}"))?;
    Command::new(mosquitto_path())
        .arg("-c")
        .arg(conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", mosquitto_path().display()))
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // self.dir (TempDir) removes the directory when it drops after this.
    }
}

/// Minimal raw MQTT v5 helpers for tests that must not depend on the library.
pub mod raw {
    use super::*;

    /// Encodes a variable byte integer.
    pub fn varint(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let mut byte = (n % 128) as u8;
            n /= 128;
            if n > 0 {
                byte |= 0x80;
            }
            out.push(byte);
            if n == 0 {
                break;
            }
        }
    }

    /// A v5 CONNECT packet: clean start, keep alive 60 s, no properties.
    pub fn connect_packet(client_id: &str) -> Vec<u8> {
        let mut body = vec![
            0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x02, 0x00, 0x3c, 0x00,
        ];
        body.extend_from_slice(&(client_id.len() as u16).to_be_bytes());
        body.extend_from_slice(client_id.as_bytes());
        let mut packet = vec![0x10];
        varint(body.len(), &mut packet);
        packet.extend_from_slice(&body);
        packet
    }

    /// Reads one packet: (first byte, body).
    pub fn read_packet(stream: &mut TcpStream) -> io::Result<(u8, Vec<u8>)> {
        let mut first = [0u8; 1];
        stream.read_exact(&mut first)?;
        let mut len = 0usize;
        let mut shift = 0;
        loop {
            let mut b = [0u8; 1];
            stream.read_exact(&mut b)?;
            len |= ((b[0] & 0x7f) as usize) << shift;
            if b[0] & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 21 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "bad remaining length",
                ));
            }
        }
        let mut body = vec![0u8; len];
        stream.read_exact(&mut body)?;
        Ok((first[0], body))
    }

    /// Connects, sends CONNECT, returns the stream and the CONNACK body.
    pub fn connect(port: u16, client_id: &str) -> io::Result<(TcpStream, Vec<u8>)> {
        let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(&connect_packet(client_id))?;
        let (first, body) = read_packet(&mut stream)?;
        if first != 0x20 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("expected CONNACK (0x20), got 0x{first:02x}"),
            ));
        }
        Ok((stream, body))
    }

    /// Finds a four-byte-integer property (such as 0x27 Maximum Packet Size)
    /// in a CONNACK body. Only understands the property types CONNACK uses.
    pub fn connack_u32_property(body: &[u8], id: u8) -> Option<u32> {
        let mut i = 2; // flags, reason code
        let mut len = 0usize;
        let mut shift = 0;
        loop {
            let b = *body.get(i)?;
            i += 1;
            len |= ((b & 0x7f) as usize) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        let end = i + len;
        while i < end {
            let pid = body[i];
            i += 1;
            let be16 = |at: usize| -> Option<usize> {
                Some(u16::from_be_bytes([*body.get(at)?, *body.get(at + 1)?]) as usize)
            };
            match pid {
                // byte
                0x24 | 0x25 | 0x28 | 0x29 | 0x2a => i += 1,
                // two byte integer
                0x13 | 0x21 | 0x22 => i += 2,
                // four byte integer
                0x11 | 0x27 => {
                    let v = u32::from_be_bytes(body.get(i..i + 4)?.try_into().ok()?);
                    if pid == id {
                        return Some(v);
                    }
                    i += 4;
                }
                // UTF-8 string / binary data
                0x12 | 0x15 | 0x16 | 0x1a | 0x1c | 0x1f => i += 2 + be16(i)?,
                // string pair
                0x26 => {
                    let k = be16(i)?;
                    i += 2 + k;
                    i += 2 + be16(i)?;
                }
                _ => return None,
            }
        }
        None
    }
}

//! A nats-server of our own with its MQTT gateway (MQTT 3.1.1 only; it
//! refuses v5): JetStream (the gateway keeps sessions and retained
//! messages there) in a temp dir, client and MQTT ports free on loopback.
//! Killed, reaped and cleaned up on drop.

use super::{free_port, TempDir};
use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const START_TIMEOUT: Duration = Duration::from_secs(30);
const START_ATTEMPTS: u32 = 3;

pub fn nats_server_path() -> PathBuf {
    [
        "/usr/sbin/nats-server",
        "/usr/bin/nats-server",
        "/usr/local/bin/nats-server",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .unwrap_or_else(|| PathBuf::from("nats-server"))
}

pub struct Nats {
    child: Child,
    mqtt_port: u16,
    log_path: PathBuf,
    conf_path: PathBuf,
    // Declared last so the directory outlives the process writing into it.
    _dir: TempDir,
}

impl Nats {
    pub fn start() -> Nats {
        let mut failures = String::new();
        for attempt in 1..=START_ATTEMPTS {
            match Nats::try_start() {
                Ok(n) => return n,
                Err(e) => failures.push_str(&format!("--- attempt {attempt}: {e}\n")),
            }
        }
        panic!("nats-server did not start ({START_ATTEMPTS} attempts):\n{failures}");
    }

    fn try_start() -> Result<Nats, String> {
        let dir = TempDir::new("mqtt5c-nats").map_err(|e| format!("temp dir: {e}"))?;
        let (port, mqtt_port) = (free_port(), free_port());
        let log_path = dir.path().join("nats.log");
        let conf_path = dir.path().join("nats.conf");
        let conf = format!(
            "# written by tests/common/nats.rs\n\
             server_name: \"mqtt5c-test-{mqtt_port}\"\n\
             listen: \"127.0.0.1:{port}\"\n\
             http: 0\n\
             jetstream {{ store_dir: \"{js}\" }}\n\
             mqtt {{ listen: \"127.0.0.1:{mqtt_port}\" }}\n",
            js = dir.path().join("js").display(),
        );
        fs::write(&conf_path, conf).map_err(|e| format!("write conf: {e}"))?;
        let child = spawn(&conf_path, &log_path)?;
        let mut nats = Nats {
            child,
            mqtt_port,
            log_path,
            conf_path,
            _dir: dir,
        };
        nats.wait_ready()?;
        Ok(nats)
    }

    /// Ready: this process logged its MQTT listener on our port (not
    /// another process that took it) and "Server is ready", and the port
    /// accepts.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.mqtt_port));
        let mut backoff = Duration::from_millis(5);
        let listening = format!(
            "Listening for MQTT clients on mqtt://127.0.0.1:{}",
            self.mqtt_port
        );
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("nats-server exited: {status}\n{}", self.log()));
            }
            let log = self.log();
            if log.contains(&listening)
                && log.contains("Server is ready")
                && TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("not ready within {START_TIMEOUT:?}\n{log}"));
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_millis(200));
        }
    }

    /// Stops the server gracefully (SIGTERM), as an operator restarting
    /// it does; JetStream (sessions, retained and queued messages) stays
    /// on disk for `start_again`.
    pub fn stop(&mut self) {
        // SAFETY: kill(2) on our own child, not reaped yet (so its pid is
        // not reused) until the wait below.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.child.wait();
    }

    /// Starts the server again after `stop`: same ports, same JetStream
    /// store. Panics when it does not come up.
    pub fn start_again(&mut self) {
        // A fresh log, so that `wait_ready` reads this run's lines.
        let _ = fs::remove_file(&self.log_path);
        self.child = spawn(&self.conf_path, &self.log_path).unwrap_or_else(|e| panic!("{e}"));
        if let Err(e) = self.wait_ready() {
            panic!("nats-server did not start again: {e}");
        }
    }

    /// "mqtt://127.0.0.1:PORT" of the MQTT gateway.
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.mqtt_port)
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

fn spawn(conf_path: &Path, log_path: &Path) -> Result<Child, String> {
    Command::new(nats_server_path())
        .arg("-c")
        .arg(conf_path)
        .arg("-l")
        .arg(log_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", nats_server_path().display()))
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! Diagnostic lines: what the client did and why (connection attempts and
//! their results, the cause of each disconnect, reconnection scheduling,
//! flow-control drops, persistence errors, protocol errors with their
//! reason codes).
//!
//! Each line goes two ways, and costs nothing when neither wants it:
//! - to the `log` facade (target `mqtt5c`), for Rust programs: checked
//!   against `log::max_level()`, one relaxed atomic load;
//! - to the client's handler (`Handler::on_log`, the C log callback),
//!   when its level (`MqttClient::set_log_level`) takes the line: one
//!   more relaxed load.
//!
//! **Never a secret, never a payload.** No line formats a password,
//! authentication data, a WebSocket header or a message's payload; a URL
//! is shown through `redact::url` (no user information, no query), and
//! text from the peer through `redact::peer` (no control characters).
//!
//! **Threads.** A line is made wherever the event happens, the reader
//! task included; the handler is never called there. Lines for the
//! handler are queued on the client's delivery queue (see `delivery`) and
//! run by the callback pool like the other callbacks: one at a time per
//! client, in order with the messages and connection events, passing the
//! callback gate (so no log callback runs after `close` returned, and a
//! setter can wait for the old one). Queuing never waits: log lines do not
//! count against the queue's bound (a slow log callback never stops the
//! reader), and at most [`QUEUED_MAX`] lines wait at once; beyond that a
//! line is dropped and counted (`Stats::log_dropped`).

use super::Inner;
use std::fmt;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

/// How much a line matters; the C constants `MQTT5C_LOG_*` have these
/// numbers. A level filter takes a level and every more severe one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Level {
    /// Something failed that the application should know about: a
    /// persistence write, a protocol error of the server (the connection
    /// ends).
    Error = 1,
    /// Something went wrong and the client carries on: a lost connection,
    /// a failed connection attempt, a dropped message, a broker beyond our
    /// Receive Maximum.
    Warning = 2,
    /// The connection's life: attempts, successes, disconnects,
    /// reconnection scheduling, redirections.
    Info = 3,
    /// Details: resends, the offline queue going out.
    Debug = 4,
}

impl Level {
    /// The level numbered `n` (1 to 4).
    pub fn from_u8(n: u8) -> Option<Level> {
        match n {
            1 => Some(Level::Error),
            2 => Some(Level::Warning),
            3 => Some(Level::Info),
            4 => Some(Level::Debug),
            _ => None,
        }
    }

    fn facade(self) -> log::Level {
        match self {
            Level::Error => log::Level::Error,
            Level::Warning => log::Level::Warn,
            Level::Info => log::Level::Info,
            Level::Debug => log::Level::Debug,
        }
    }
}

/// The most lines waiting for the handler at once (see the module docs).
pub const QUEUED_MAX: usize = 256;
/// A line for the handler is cut to this many bytes (a server's reason
/// string may be long).
const LINE_MAX: usize = 1024;
/// Lines made before the client existed (opening its persistence store),
/// kept for the first handler level set.
const EARLY_MAX: usize = 16;

/// The log of one client; see the module docs. Made before the client
/// (the persistence store logs while it opens), and told the client once
/// it exists.
#[derive(Default)]
pub struct Logger {
    /// The handler's level filter (a `Level` number), 0 for none.
    level: AtomicU8,
    client: OnceLock<Weak<Inner>>,
    /// Lines made before the client existed, for the handler.
    early: Mutex<Vec<(Level, String)>>,
    /// Lines queued for the handler and not yet taken.
    queued: AtomicUsize,
}

impl Logger {
    /// Writes one line (see the module docs).
    pub fn log(&self, level: Level, args: fmt::Arguments<'_>) {
        let facade = level.facade() <= log::max_level();
        // Before the client exists (opening its store) every line is kept
        // for the handler level set later.
        let handler =
            level as u8 <= self.level.load(Ordering::Relaxed) || self.client.get().is_none();
        if !facade && !handler {
            return;
        }
        // One line per message, whatever a server put in it.
        let line = crate::redact::peer(&args.to_string());
        if facade {
            log::log!(target: "mqtt5c", level.facade(), "{line}");
        }
        if handler {
            self.to_handler(level, line);
        }
    }

    fn to_handler(&self, level: Level, mut line: String) {
        if line.len() > LINE_MAX {
            let mut end = LINE_MAX;
            while !line.is_char_boundary(end) {
                end -= 1;
            }
            line.truncate(end);
            line.push_str("...");
        }
        match self.client.get().and_then(Weak::upgrade) {
            Some(inner) => self.queue(&inner, level, line),
            None => {
                let mut early = super::lock(&self.early);
                if early.len() < EARLY_MAX {
                    early.push((level, line));
                }
            }
        }
    }

    fn queue(&self, inner: &Arc<Inner>, level: Level, line: String) {
        if self.queued.fetch_add(1, Ordering::Relaxed) >= QUEUED_MAX {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            inner.stats.count_log_dropped();
            return;
        }
        inner
            .delivery
            .push(inner, super::delivery::Event::Log(level, line));
    }

    /// The drain job took a queued line.
    pub(super) fn taken(&self) {
        self.queued.fetch_sub(1, Ordering::Relaxed);
    }

    /// Ties the logger to its client, once.
    pub(super) fn attach(&self, inner: &Arc<Inner>) {
        let _ = self.client.set(Arc::downgrade(inner));
    }

    /// Lines at `level` and more severe go to the handler from now on;
    /// `None`: none. The first time, the lines made before the client
    /// existed that it takes are queued first.
    pub(super) fn set_level(&self, level: Option<Level>) {
        self.level
            .store(level.map_or(0, |l| l as u8), Ordering::Relaxed);
        let Some(level) = level else { return };
        let early = std::mem::take(&mut *super::lock(&self.early));
        if let Some(inner) = self.client.get().and_then(Weak::upgrade) {
            for (l, line) in early.into_iter().filter(|(l, _)| *l <= level) {
                self.queue(&inner, l, line);
            }
        }
    }
}

impl Inner {
    /// Writes one diagnostic line (see the module docs).
    pub(super) fn log(&self, level: Level, args: fmt::Arguments<'_>) {
        self.logger.log(level, args);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_ordered_by_verbosity_and_numbered_as_in_c() {
        assert!(Level::Error < Level::Warning && Level::Info < Level::Debug);
        for n in 1..=4 {
            assert_eq!(Level::from_u8(n).map(|l| l as u8), Some(n));
        }
        assert_eq!(Level::from_u8(0), None);
        assert_eq!(Level::from_u8(5), None);
    }

    #[test]
    fn lines_before_the_client_are_kept_within_a_bound() {
        let l = Logger::default();
        for i in 0..EARLY_MAX + 3 {
            l.log(Level::Debug, format_args!("early {i}"));
        }
        let early = super::super::lock(&l.early);
        assert_eq!(early.len(), EARLY_MAX);
        assert_eq!(early[0], (Level::Debug, "early 0".to_string()));
    }
}

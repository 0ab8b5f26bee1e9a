//! One event-recording handler for the Rust tests: `Events` implements
//! `Handler`, keeps what the client delivers (messages and connection
//! events) in order, and lets the test wait for them on a condition
//! variable. A test takes events off the queue (`next`, `wait_for` and the
//! shorthands built on it) or, without taking anything, waits on running
//! counts and log lines (`wait_tally`). It can also hold a chosen
//! message's callback (`hold`/`release`), hold each CONNECTED callback
//! (`hold_connected`/`unhold_connected`), or slow every callback down
//! (`with_pause`).
//!
//! Waiting blocks the calling thread; on a multi-thread Tokio runtime it
//! does so in `block_in_place`, so the helpers work from `#[test]` and
//! from `#[tokio::test(flavor = "multi_thread")]` alike.

use bytes::Bytes;
use mqtt5c::client::{ClientOptions, ConnectionEvent, DisconnectCause, Handler, Level, MqttClient};
use mqtt5c::packet::Publish;
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long the waiting helpers wait: generous, since CI is slow and
/// shared; a test that passes never waits that long.
pub const WAIT: Duration = Duration::from_secs(30);

/// What the client delivered.
#[derive(Clone, Debug)]
pub enum Event {
    Msg(Publish),
    Conn(ConnectionEvent),
}

impl Event {
    /// One line for matching by prefix and for failure messages:
    /// "msg TOPIC", "connected", "connected session", "disconnected server
    /// 0x8B", "disconnected client 0x00", "disconnected protocol 0x95",
    /// "disconnected keepalive", "disconnected closed", "disconnected io
    /// TEXT", "reconnecting N", "resubscribe failed FILTER".
    pub fn describe(&self) -> String {
        match self {
            Event::Msg(m) => format!("msg {}", m.topic.as_str()),
            Event::Conn(ConnectionEvent::Connected {
                session_present, ..
            }) => if *session_present {
                "connected session"
            } else {
                "connected"
            }
            .to_string(),
            Event::Conn(ConnectionEvent::Disconnected(cause)) => match cause {
                DisconnectCause::Server(d) => {
                    format!("disconnected server 0x{:02X}", d.reason as u8)
                }
                DisconnectCause::Client(r) => format!("disconnected client 0x{:02X}", *r as u8),
                DisconnectCause::Protocol(r, _) => {
                    format!("disconnected protocol 0x{:02X}", *r as u8)
                }
                DisconnectCause::KeepAliveTimeout => "disconnected keepalive".to_string(),
                DisconnectCause::Closed => "disconnected closed".to_string(),
                DisconnectCause::Io(e) => format!("disconnected io {e}"),
            },
            Event::Conn(ConnectionEvent::Reconnecting { attempt }) => {
                format!("reconnecting {attempt}")
            }
            Event::Conn(ConnectionEvent::ResubscribeFailed { filter, .. }) => {
                format!("resubscribe failed {filter}")
            }
        }
    }
}

/// Running counts, never taken off (see `Events::wait_tally`).
#[derive(Clone, Debug, Default)]
pub struct Tally {
    /// Message callbacks that started.
    pub started: usize,
    /// Message callbacks that returned.
    pub returned: usize,
    /// Payloads whose callbacks returned, in order (kept only with
    /// `keep_payloads`, so that a flood costs no memory).
    pub returned_payloads: Vec<Bytes>,
    pub connected: usize,
    pub disconnected: usize,
    /// Diagnostic lines (`Handler::on_log`, after `set_log_level`).
    pub log_lines: Vec<(Level, String)>,
}

#[derive(Default)]
struct State {
    /// Events not taken yet, with the moment the handler saw each.
    queue: VecDeque<(Instant, Event)>,
    tally: Tally,
    /// A payload whose callback waits until `release`.
    held: Option<Bytes>,
    /// Set by `hold_connected`: CONNECTED callbacks wait until
    /// `unhold_connected`.
    hold_connected: bool,
    /// CONNECTED callbacks waiting so.
    connected_held: usize,
}

/// The recording handler; share it as `Arc<Events>` (see `client`).
#[derive(Default)]
pub struct Events {
    state: Mutex<State>,
    changed: Condvar,
    /// Slept in each message callback: a slow application.
    pause: Duration,
    keep_payloads: bool,
}

/// A client on the current Tokio runtime that records into a new `Events`.
pub fn client(opts: ClientOptions) -> (MqttClient, Arc<Events>) {
    client_on(opts, &tokio::runtime::Handle::current())
}

/// `client` on the runtime of `handle` (a test driving its own runtime).
pub fn client_on(
    opts: ClientOptions,
    handle: &tokio::runtime::Handle,
) -> (MqttClient, Arc<Events>) {
    let events = Events::new();
    let c = MqttClient::new(opts, events.clone(), handle.clone());
    (c, events)
}

/// Blocks in `f`, inside `block_in_place` on a multi-thread runtime's
/// worker (a current-thread runtime cannot: there `f` simply blocks).
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

impl Events {
    pub fn new() -> Arc<Events> {
        Arc::new(Events::default())
    }

    /// Each message callback sleeps `pause` first: a slow application.
    pub fn with_pause(pause: Duration) -> Arc<Events> {
        Arc::new(Events {
            pause,
            ..Default::default()
        })
    }

    /// Records the payload of every returned callback in
    /// `Tally::returned_payloads`.
    pub fn keeping_payloads() -> Arc<Events> {
        Arc::new(Events {
            keep_payloads: true,
            ..Default::default()
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, s: &mut State, e: Event) {
        s.queue.push_back((Instant::now(), e));
        self.changed.notify_all();
    }

    /// Waits until `ready` gives a value, for at most `within`.
    fn wait_state<T>(
        &self,
        within: Duration,
        mut ready: impl FnMut(&mut State) -> Option<T>,
    ) -> Option<T> {
        blocking(|| {
            let deadline = Instant::now() + within;
            let mut s = self.lock();
            loop {
                if let Some(v) = ready(&mut s) {
                    return Some(v);
                }
                let left = deadline.checked_duration_since(Instant::now())?;
                s = self
                    .changed
                    .wait_timeout(s, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        })
    }

    // ------------------------------------------------ taking events in order

    /// The next event and when the handler saw it, or None after `within`.
    pub fn next_at(&self, within: Duration) -> Option<(Event, Instant)> {
        self.wait_state(within, |s| s.queue.pop_front().map(|(at, e)| (e, at)))
    }

    /// The next event, or None after `within`.
    pub fn next(&self, within: Duration) -> Option<Event> {
        self.next_at(within).map(|(e, _)| e)
    }

    /// The events that arrived and were not taken yet, taken now, without
    /// waiting.
    pub fn pending(&self) -> Vec<Event> {
        self.lock().queue.drain(..).map(|(_, e)| e).collect()
    }

    /// Takes events until one that `want` accepts, which it returns with
    /// the moment the handler saw it; the events before it are dropped.
    /// Panics after `WAIT`, naming `what` and the events it dropped.
    pub fn wait_for_at(
        &self,
        what: &str,
        mut want: impl FnMut(&Event) -> bool,
    ) -> (Event, Instant) {
        let mut skipped = Vec::new();
        let found = self.wait_state(WAIT, |s| {
            while let Some((at, e)) = s.queue.pop_front() {
                if want(&e) {
                    return Some((e, at));
                }
                skipped.push(e.describe());
            }
            None
        });
        found.unwrap_or_else(|| panic!("no {what} within {WAIT:?}; saw instead: {skipped:?}"))
    }

    /// `wait_for_at` without the moment.
    pub fn wait_for(&self, what: &str, want: impl FnMut(&Event) -> bool) -> Event {
        self.wait_for_at(what, want).0
    }

    /// The next event whose `describe()` starts with `prefix`, described.
    pub fn expect(&self, prefix: &str) -> String {
        self.wait_for(&format!("event '{prefix}'"), |e| {
            e.describe().starts_with(prefix)
        })
        .describe()
    }

    /// The next message, skipping connection events.
    pub fn msg(&self) -> Publish {
        match self.wait_for("message", |e| matches!(e, Event::Msg(_))) {
            Event::Msg(m) => m,
            Event::Conn(_) => unreachable!(),
        }
    }

    /// The next message, skipping connection events, or None after
    /// `within` (for a test that says itself what was missing).
    pub fn msg_within(&self, within: Duration) -> Option<Publish> {
        self.wait_state(within, |s| {
            while let Some((_, e)) = s.queue.pop_front() {
                if let Event::Msg(m) = e {
                    return Some(m);
                }
            }
            None
        })
    }

    /// The next message to `topic`, skipping everything else.
    pub fn msg_to(&self, topic: &str) -> Publish {
        let what = format!("message to {topic}");
        match self.wait_for(
            &what,
            |e| matches!(e, Event::Msg(m) if m.topic.as_str() == topic),
        ) {
            Event::Msg(m) => m,
            Event::Conn(_) => unreachable!(),
        }
    }

    /// The next connection event that `want` accepts, skipping the rest.
    pub fn wait_conn(&self, want: impl Fn(&ConnectionEvent) -> bool) -> ConnectionEvent {
        self.wait_conn_at(want).0
    }

    /// `wait_conn` with the moment the handler saw the event.
    pub fn wait_conn_at(
        &self,
        want: impl Fn(&ConnectionEvent) -> bool,
    ) -> (ConnectionEvent, Instant) {
        let found = self.wait_for_at(
            "such connection event",
            |e| matches!(e, Event::Conn(c) if want(c)),
        );
        match found {
            (Event::Conn(c), at) => (c, at),
            (Event::Msg(_), _) => unreachable!(),
        }
    }

    /// The next connection event other than `Reconnecting` (which comes
    /// before each attempt), skipping messages.
    pub fn conn(&self) -> ConnectionEvent {
        self.wait_conn(|c| !matches!(c, ConnectionEvent::Reconnecting { .. }))
    }

    /// Expects `conn()` to be `Connected`; returns its session present flag.
    pub fn connected(&self) -> bool {
        match self.conn() {
            ConnectionEvent::Connected {
                session_present, ..
            } => session_present,
            other => panic!("expected Connected, got {other:?}"),
        }
    }

    /// Expects `conn()` to be `Disconnected`; returns its cause.
    pub fn disconnected(&self) -> DisconnectCause {
        match self.conn() {
            ConnectionEvent::Disconnected(cause) => cause,
            other => panic!("expected Disconnected, got {other:?}"),
        }
    }

    // ---------------------------------------------- counts, never taken off

    /// The counts so far.
    pub fn tally(&self) -> Tally {
        self.lock().tally.clone()
    }

    /// Waits until `done` holds for the counts; panics after `WAIT`,
    /// naming `what`.
    pub fn wait_tally(&self, what: &str, done: impl Fn(&Tally) -> bool) -> Tally {
        self.wait_state(WAIT, |s| done(&s.tally).then(|| s.tally.clone()))
            .unwrap_or_else(|| panic!("not within {WAIT:?}: {what} ({:?})", self.tally()))
    }

    /// Waits until `n` message callbacks have returned.
    pub fn wait_returned(&self, n: usize) -> Tally {
        self.wait_tally(&format!("{n} messages"), |t| t.returned >= n)
    }

    // ------------------------------------------------------ holding a callback

    /// The callback of the message with this payload waits in the handler
    /// until `release` (a slow or stuck application).
    pub fn hold(&self, payload: &[u8]) {
        self.lock().held = Some(Bytes::copy_from_slice(payload));
    }

    pub fn release(&self) {
        self.lock().held = None;
        self.changed.notify_all();
    }

    /// From now on each CONNECTED callback, once recorded (`Tally::connected`
    /// counts it), waits until `unhold_connected`: the events queued after
    /// it stay in the client's delivery queue meanwhile, where
    /// `MqttClient::delivery_queue_len` sees them.
    pub fn hold_connected(&self) {
        self.lock().hold_connected = true;
    }

    /// Waits until a CONNECTED callback is held (panics after `WAIT`).
    pub fn wait_connected_held(&self) {
        self.wait_state(WAIT, |s| (s.connected_held > 0).then_some(()))
            .unwrap_or_else(|| panic!("no CONNECTED callback held within {WAIT:?}"));
    }

    /// Ends `hold_connected`: the held CONNECTED callbacks return, and the
    /// next ones do not wait.
    pub fn unhold_connected(&self) {
        self.lock().hold_connected = false;
        self.changed.notify_all();
    }
}

impl Handler for Events {
    fn on_message(&self, m: Publish) {
        let payload = m.payload.clone();
        {
            let mut s = self.lock();
            s.tally.started += 1;
            self.push(&mut s, Event::Msg(m));
        }
        if !self.pause.is_zero() {
            std::thread::sleep(self.pause);
        }
        let mut s = self.lock();
        while s.held.as_ref() == Some(&payload) {
            s = self.changed.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        s.tally.returned += 1;
        if self.keep_payloads {
            s.tally.returned_payloads.push(payload);
        }
        self.changed.notify_all();
    }

    fn on_connection(&self, e: &ConnectionEvent) {
        let mut s = self.lock();
        match e {
            ConnectionEvent::Connected { .. } => s.tally.connected += 1,
            ConnectionEvent::Disconnected(_) => s.tally.disconnected += 1,
            _ => {}
        }
        self.push(&mut s, Event::Conn(e.clone()));
        if matches!(e, ConnectionEvent::Connected { .. }) && s.hold_connected {
            s.connected_held += 1;
            self.changed.notify_all();
            while s.hold_connected {
                s = self.changed.wait(s).unwrap_or_else(|e| e.into_inner());
            }
            s.connected_held -= 1;
        }
    }

    fn on_log(&self, level: Level, line: &str) {
        self.lock().tally.log_lines.push((level, line.to_string()));
        self.changed.notify_all();
    }
}

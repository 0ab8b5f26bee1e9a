//! The callback pool is one per process, but its starvation check (the
//! timer that adds a thread when every pool thread is inside a callback
//! that waits for another callback, see src/client/pool.rs) runs as a task
//! on the runtime of the client that armed it. A Rust program (or a test
//! binary: each `#[tokio::test]` has its own runtime) that drops that
//! runtime while the check is armed must not leave the pool unable to
//! grow for the clients of every other runtime.
//!
//! One test in this binary: the pool's state is process-wide.

use mqtt5c::client::{ClientOptions, ConnectionEvent, Handler, MqttClient};
use mqtt5c::packet::Publish;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

mod common;

/// More callbacks that wait for each other than the pool has threads
/// before it grows (4).
const MEET: usize = 7;

/// Each CONNECTED callback waits here until `MEET` of them arrived (or
/// the deadline passed).
struct Meeting {
    arrived: Mutex<usize>,
    all: Condvar,
}

impl Meeting {
    fn arrive(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut n = self.arrived.lock().unwrap();
        *n += 1;
        self.all.notify_all();
        while *n < MEET {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            n = self.all.wait_timeout(n, left).unwrap().0;
        }
    }
}

struct Meets(Arc<Meeting>);

impl Handler for Meets {
    fn on_message(&self, _: Publish) {}
    fn on_connection(&self, e: &ConnectionEvent) {
        if let ConnectionEvent::Connected { .. } = e {
            self.0.arrive();
        }
    }
}

struct Quiet;

impl Handler for Quiet {
    fn on_message(&self, _: Publish) {}
    fn on_connection(&self, _: &ConnectionEvent) {}
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_dropped_runtime_leaves_the_pool_able_to_grow() {
    let broker = common::Broker::start();
    // A client whose CONNECTED event arms the starvation check on its
    // runtime, dropped at once (well within the check's 100 ms).
    {
        let rt = runtime();
        let c = MqttClient::new(
            ClientOptions::default(),
            Arc::new(Quiet),
            rt.handle().clone(),
        );
        rt.block_on(c.connect(&broker.url())).unwrap();
        drop(c);
        drop(rt);
    }
    // Clients of another runtime whose callbacks wait for each other:
    // they all meet only if the pool grows past its 4 threads.
    let rt = runtime();
    let meeting = Arc::new(Meeting {
        arrived: Mutex::new(0),
        all: Condvar::new(),
    });
    let clients: Vec<MqttClient> = (0..MEET)
        .map(|_| {
            let c = MqttClient::new(
                ClientOptions::default(),
                Arc::new(Meets(meeting.clone())),
                rt.handle().clone(),
            );
            rt.block_on(c.connect(&broker.url())).unwrap();
            c
        })
        .collect();
    // Growing by one thread per 100 ms, they meet well within this; a
    // pool that cannot grow keeps 4 of them waiting (for their 20 s).
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut all = meeting.arrived.lock().unwrap();
    while *all < MEET && Instant::now() < deadline {
        all = meeting
            .all
            .wait_timeout(all, Duration::from_millis(100))
            .unwrap()
            .0;
    }
    let n = *all;
    drop(all);
    assert_eq!(
        n, MEET,
        "only {n} of {MEET} callbacks ran: the pool did not grow"
    );
    for c in clients {
        let _ = rt.block_on(c.disconnect(mqtt5c::packet::ReasonCode::Success, Default::default()));
    }
}

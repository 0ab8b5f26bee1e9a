//! The callback pool's starvation check runs on the runtime of the client
//! that armed it and serves every runtime's clients (6c54e57). When that
//! runtime is dropped while clients of another runtime are already
//! waiting in the pool's list, no new client may ever be scheduled to arm
//! a check again: those clients are all scheduled already, and the pool
//! threads are inside callbacks that wait for them. The check must then
//! go on elsewhere, or the pool never grows and they wait for good.
//!
//! One test in this binary: the pool's state is process-wide.

use mqtt5c::client::{ClientOptions, ConnectionEvent, Handler, MqttClient};
use mqtt5c::packet::Publish;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

mod common;

/// Callbacks that wait for each other: one of the first runtime's
/// client, the rest of the second's; more than the pool's 4 threads.
const MEET: usize = 8;

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

    /// Waits until `n` arrived or `within` passed; how many did.
    fn wait_for(&self, n: usize, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        let mut all = self.arrived.lock().unwrap();
        while *all < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            all = self.all.wait_timeout(all, left).unwrap().0;
        }
        *all
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

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_runtime_dropped_while_other_runtimes_clients_wait_leaves_the_pool_growing() {
    let broker = common::Broker::start();
    let meeting = Arc::new(Meeting {
        arrived: Mutex::new(0),
        all: Condvar::new(),
    });
    let client = |rt: &tokio::runtime::Runtime| {
        MqttClient::new(
            ClientOptions::default(),
            Arc::new(Meets(meeting.clone())),
            rt.handle().clone(),
        )
    };
    // The first runtime's client arms the check (its CONNECTED is the
    // first event scheduled) ...
    let rt1 = runtime();
    let first = client(&rt1);
    rt1.block_on(first.connect(&broker.url())).unwrap();
    // ... then the second runtime's clients, all at once, well within the
    // check's first 100 ms: every one is scheduled while it is armed.
    let rt2 = runtime();
    let others: Vec<MqttClient> = (1..MEET).map(|_| client(&rt2)).collect();
    let url = broker.url();
    rt2.block_on(async {
        let connects = others.iter().map(|c| c.connect(&url));
        for r in futures_util::future::join_all(connects).await {
            r.unwrap();
        }
    });
    // Every pool thread is inside a waiting callback, the rest wait in
    // the list. The check's runtime goes.
    assert_eq!(meeting.wait_for(4, Duration::from_secs(10)), 4);
    drop(rt1);
    // Growing by one thread per 100 ms, they meet well within this; a
    // pool whose check is gone keeps 4 waiting (for their 20 s).
    let n = meeting.wait_for(MEET, Duration::from_secs(8));
    assert_eq!(
        n, MEET,
        "only {n} of {MEET} callbacks ran: the pool did not grow"
    );
    for c in others {
        let _ = rt2.block_on(c.disconnect(mqtt5c::packet::ReasonCode::Success, Default::default()));
    }
    drop(first);
}

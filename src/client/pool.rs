//! The callback pool: a few threads, shared by every client of the
//! process, that run the clients' callbacks (see `delivery`).
//!
//! **Order.** A client with queued events is in the pool's ready list at
//! most once (its `draining` flag), and one thread at a time runs its
//! events, in order; after [`BATCH`] events it goes to the back of the
//! list if other clients wait, so a busy client cannot starve the rest.
//!
//! **Threads.** Up to [`SIZE`] threads are started as clients need them;
//! a thread with nothing to do for [`IDLE_EXIT`] exits, so idle clients
//! cost no thread. 1,000 busy clients share these few threads instead of
//! taking a blocking-pool thread each.
//!
//! **Wake-ups.** A client already in the list or being run gets its new
//! events without any wake-up; a thread that runs out of work looks for
//! more for [`SPIN`] (yielding) before it parks, and a client scheduled
//! meanwhile is found without a futex wake. A parked thread is woken only
//! when no thread is looking.
//!
//! **Why a callback may block, even on another client's callback.** A
//! callback may make any blocking call: one that waits on the broker
//! needs only the runtime's workers, never a pool thread. But it may also
//! wait for something only another callback does (a request answered by a
//! responder in the same process, a condition variable of the
//! application): if every pool thread waited so, the callback they wait
//! for could never run. So the pool grows: when every pool thread is
//! busy, clients wait, and no callback has returned for [`STARVED`], one
//! more thread is started, and so on every [`STARVED`] while that lasts
//! (precisely: clients wait, and in the last [`STARVED`] no callback
//! returned and no waiting client was taken by a thread).
//! What worked with a thread per busy client still works, after at most
//! [`STARVED`] per missing thread. The extra threads exit as soon as no
//! client waits. The check is a timer on the runtime, armed when a client
//! is scheduled and ended by the first look that finds none waiting.
//!
//! **Stopping.** The threads are joined, never detached: a thread that
//! leaves after [`IDLE_EXIT`] joins the ones that left before it, and
//! [`stop`] (for `mqtt_global_cleanup`, once every client is freed) wakes
//! the parked threads, lets them finish what is queued and joins them all,
//! so that when it returns no pool thread runs any code of the library (a
//! host may then unload it).

use super::delivery;
use super::Inner;
use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The threads the pool starts on demand (more only when starved).
const SIZE: usize = 4;
/// How long a thread out of work looks for more before it parks.
const SPIN: Duration = Duration::from_micros(30);
/// How long a parked thread waits for work before it exits.
const IDLE_EXIT: Duration = Duration::from_secs(1);
/// Every thread busy, clients waiting and no callback returned for this
/// long: the pool grows by one thread (see the module docs).
const STARVED: Duration = Duration::from_millis(100);
/// Events of one client run before others waiting get their turn.
const BATCH: usize = 64;

struct Pool {
    state: Mutex<State>,
    /// Signalled when a client is ready and a thread is parked.
    work: Condvar,
    /// `state.ready.len()`, read without the lock by spinning threads.
    ready_len: AtomicUsize,
    /// Callbacks that returned, for the starvation check.
    returned: AtomicU64,
}

struct State {
    ready: VecDeque<Arc<Inner>>,
    threads: usize,
    /// Threads parked on `work`.
    parked: usize,
    /// Wake-ups sent to parked threads that they may not have taken yet:
    /// a client scheduled meanwhile wakes another thread only if one is
    /// left (approximate, as a thread that timed out may count one).
    notified: usize,
    /// Clients taken from `ready`, for the starvation check.
    taken: u64,
    /// Threads looking for work before they park.
    spinning: usize,
    /// A starvation check is armed.
    watching: bool,
    /// Numbers the checks armed, so that one dropped late (see [`Armed`])
    /// does not clear a newer one's `watching`.
    watch_gen: u64,
    /// Every thread started and not joined yet (see "Stopping").
    handles: Vec<JoinHandle<()>>,
    /// `stop` runs: threads leave as soon as nothing is ready.
    stopping: bool,
}

thread_local! {
    /// This thread is a pool thread (see [`on_pool_thread`]).
    static POOL_THREAD: Cell<bool> = const { Cell::new(false) };
}

static POOL: Pool = Pool {
    state: Mutex::new(State {
        ready: VecDeque::new(),
        threads: 0,
        parked: 0,
        notified: 0,
        taken: 0,
        spinning: 0,
        watching: false,
        watch_gen: 0,
        handles: Vec::new(),
        stopping: false,
    }),
    work: Condvar::new(),
    ready_len: AtomicUsize::new(0),
    returned: AtomicU64::new(0),
};

/// Whether the calling thread is a pool thread: one that runs callbacks,
/// which `stop` would have to join.
pub(crate) fn on_pool_thread() -> bool {
    POOL_THREAD.with(Cell::get)
}

/// Stops the pool: every thread finishes what is queued, leaves, and is
/// joined before this returns; later work starts threads again. For
/// `mqtt_global_cleanup`, once every client is freed, so what is still
/// queued belongs to freed clients and runs no callback, except a
/// callback that freed its own client, which this waits for. Never called
/// from a pool thread (it would wait for itself).
pub(crate) fn stop() {
    let p = &POOL;
    debug_assert!(!on_pool_thread());
    p.lock().stopping = true;
    p.work.notify_all();
    // A thread started meanwhile (by a starvation check still running on
    // the runtime) leaves at once, but is joined too.
    loop {
        let handles = std::mem::take(&mut p.lock().handles);
        if handles.is_empty() {
            break;
        }
        for h in handles {
            // A panic would be a bug of ours; the thread is gone either way.
            let _ = h.join();
        }
    }
    let mut s = p.lock();
    s.stopping = false;
    // Only a client of the Rust API (not counted by mqtt_global_cleanup)
    // may have been scheduled meanwhile, and then a thread was started
    // for it: its state stays as it is.
    if s.threads == 0 && s.ready.is_empty() {
        // The starvation check was a task of the runtime being shut
        // down: the next client scheduled arms a new one.
        s.watching = false;
        s.notified = 0;
        // The list's buffer is freed too: a library unloaded next would
        // leak it.
        s.ready = VecDeque::new();
    }
}

/// Counts a callback that returned (see [`STARVED`]).
pub(super) fn returned() {
    POOL.returned.fetch_add(1, Ordering::Relaxed);
}

/// Runs `inner`'s queued events on the pool; the caller has just set its
/// `draining` flag (so it is not in the list yet).
pub(super) fn schedule(inner: Arc<Inner>) {
    let p = &POOL;
    let mut s = p.lock();
    let runtime = inner.runtime.clone();
    p.push(&mut s, inner);
    if s.spinning == 0 {
        if s.parked > s.notified {
            s.notified += 1;
            p.work.notify_one();
        } else if s.threads < SIZE {
            p.start(&mut s);
        }
    }
    // Whatever the counts say, a client left waiting is seen to.
    if !s.watching {
        s.watching = true;
        s.watch_gen += 1;
        let armed = Armed(Some(s.watch_gen), 0);
        let seen = p.progress(&s);
        // Spawned unlocked: on a runtime shut down already, the check is
        // dropped inside `spawn`, and `Armed` takes the lock.
        drop(s);
        runtime.spawn(watch(armed, seen));
    }
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while the state changes; poisoning is ignored.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, s: &mut State, inner: Arc<Inner>) {
        s.ready.push_back(inner);
        self.ready_len.store(s.ready.len(), Ordering::Release);
    }

    /// Starts a thread; on failure (a resource limit) the starvation check
    /// tries again later.
    fn start(&self, s: &mut State) {
        s.threads += 1;
        let started = std::thread::Builder::new()
            .name("mqtt5c-cb".into())
            .spawn(work);
        match started {
            Ok(h) => s.handles.push(h),
            Err(_) => s.threads -= 1,
        }
    }

    /// The next client to run; `None` when this thread is to exit.
    fn next(&self) -> Option<Arc<Inner>> {
        let mut s = self.lock();
        loop {
            if let Some(inner) = s.ready.pop_front() {
                s.taken += 1;
                self.ready_len.store(s.ready.len(), Ordering::Release);
                return Some(inner);
            }
            if s.threads > SIZE || s.stopping {
                // An extra thread is not kept once no client waits, and
                // none is once the pool stops.
                s.threads -= 1;
                return None;
            }
            s.spinning += 1;
            drop(s);
            let start = Instant::now();
            while self.ready_len.load(Ordering::Acquire) == 0 && start.elapsed() < SPIN {
                std::thread::yield_now();
            }
            s = self.lock();
            s.spinning -= 1;
            if !s.ready.is_empty() || s.stopping {
                continue;
            }
            s.parked += 1;
            let (g, waited) = self
                .work
                .wait_timeout(s, IDLE_EXIT)
                .unwrap_or_else(|e| e.into_inner());
            s = g;
            s.parked -= 1;
            s.notified = s.notified.saturating_sub(1);
            if waited.timed_out() && s.ready.is_empty() {
                s.threads -= 1;
                return None;
            }
            // Woken by `stop`: the top of the loop takes what is ready,
            // then leaves.
        }
    }

    /// Callbacks returned and clients taken so far.
    fn progress(&self, s: &State) -> (u64, u64) {
        (self.returned.load(Ordering::Relaxed), s.taken)
    }

    /// The starvation check (see the module docs): while clients wait,
    /// starts a thread if no callback returned and no client was taken
    /// since the last look; `Some` to look again.
    fn check(&self, seen: (u64, u64)) -> Option<(u64, u64)> {
        let mut s = self.lock();
        if s.ready.is_empty() {
            s.watching = false;
            return None;
        }
        let now = self.progress(&s);
        if now == seen {
            self.start(&mut s);
        }
        Some(now)
    }
}

/// A pool thread: runs ready clients until there is none for a while.
fn work() {
    POOL_THREAD.with(|t| t.set(true));
    while let Some(inner) = POOL.next() {
        loop {
            if !delivery::run(&inner, BATCH) {
                break;
            }
            if POOL.ready_len.load(Ordering::Acquire) > 0 {
                // Others wait: this client goes to the back of the list.
                let mut s = POOL.lock();
                POOL.push(&mut s, inner);
                break;
            }
        }
    }
    // Joins the threads that left before this one (ours is joined by the
    // next to leave, or by `stop`), outside the lock: joining waits for
    // their thread-local destructors.
    let left: Vec<JoinHandle<()>> = {
        let mut s = POOL.lock();
        let (left, running) = std::mem::take(&mut s.handles)
            .into_iter()
            .partition(|h| h.is_finished());
        s.handles = running;
        left
    };
    for h in left {
        let _ = h.join();
    }
}

/// Grows the pool while it is starved (see the module docs).
async fn watch(mut armed: Armed, mut seen: (u64, u64)) {
    // A deadline, not a poll: armed when a client is scheduled, it ends at
    // the first look that finds no client waiting.
    loop {
        tokio::time::sleep(STARVED).await;
        match POOL.check(seen) {
            Some(now) => seen = now,
            None => {
                // `check` cleared `watching` (a newer check may be armed).
                armed.0 = None;
                return;
            }
        }
    }
}

/// The starvation check runs on the runtime of the client that armed it,
/// but serves the clients of every runtime: dropped before it ended
/// (that runtime shut down), it must not leave `watching` set, or no check
/// would be armed again and the pool could never grow. Unless a newer
/// check is armed: when no client waits, clears it (the next client
/// scheduled arms one); when clients wait, arms the next check itself, on
/// a waiting client's runtime, since those clients are scheduled already
/// and nothing else would arm one while the pool threads wait for them.
/// The second number is how many checks were re-armed so in a row: one
/// spawned on a runtime shut down too is dropped at once and tries the
/// next waiting client's, at most [`REARM`] of them.
struct Armed(Option<u64>, usize);

/// The most runtimes a dropped check tries in a row (see [`Armed`]).
const REARM: usize = 8;

impl Drop for Armed {
    fn drop(&mut self) {
        let Some(generation) = self.0 else {
            return;
        };
        let mut s = POOL.lock();
        if s.watch_gen != generation || !s.watching {
            return;
        }
        let next = match self.1 < REARM {
            true => s.ready.get(self.1).map(|c| c.runtime.clone()),
            false => None,
        };
        let Some(runtime) = next else {
            s.watching = false;
            return;
        };
        s.watch_gen += 1;
        let armed = Armed(Some(s.watch_gen), self.1 + 1);
        let seen = POOL.progress(&s);
        // Unlocked, as in `schedule`.
        drop(s);
        runtime.spawn(watch(armed, seen));
    }
}

//! The process-wide Tokio runtime shared by all clients.
//!
//! All clients share its worker threads, so idle clients cost no thread.
//! Callbacks run on the client's callback pool (`client::pool`), whose
//! threads exist only while there is something to deliver (and linger a
//! second after); auth and pre-connect callbacks on the runtime's blocking
//! pool.
//!
//! **Lifetime.** The runtime starts with the first `mqtt_client_new` and
//! runs until `mqtt_global_cleanup`, which, once every client is freed,
//! joins the callback pool's threads and shuts the runtime down, waiting
//! for its threads to exit: the library then runs no code on any thread,
//! and a host may `dlclose` it. The next `mqtt_client_new` starts a new
//! runtime. These are every thread the library starts: the runtime's
//! workers and blocking threads (host name lookups, persistence jobs,
//! auth and pre-connect callbacks) and the callback pool.
//! Each client holds a [`Registration`], so the count of live clients
//! that `mqtt_global_cleanup` checks cannot miss one, even a client whose
//! creation failed halfway.

use super::error::{
    set_last_error, MQTT5C_ERR_BAD_STATE, MQTT5C_ERR_INVALID_ARGUMENT, MQTT5C_ERR_TIMEOUT,
    MQTT5C_OK,
};
use crate::client::{BlockingGuard, Error, MqttClient};
use std::future::Future;
use std::os::raw::{c_int, c_uint};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::runtime::{Handle, Runtime};

/// The runtime and what `mqtt_global_init` chose for the next one.
struct Global {
    runtime: Option<Runtime>,
    /// The process that started `runtime`: a child of `fork()` has a copy
    /// of it without its threads, sharing the parent's epoll instance, so
    /// a socket registered by the child wakes the parent's driver with the
    /// child's pointers (the parent crashes). See [`forked`].
    runtime_pid: u32,
    /// Worker threads of the next runtime (`None`: the default).
    workers: Option<usize>,
    /// `mqtt_global_cleanup` is stopping the threads (without the lock,
    /// which the threads' last work may need): no runtime starts meanwhile.
    stopping: bool,
}

static GLOBAL: Mutex<Global> = Mutex::new(Global {
    runtime: None,
    runtime_pid: 0,
    workers: None,
    stopping: false,
});
/// Signalled when `mqtt_global_cleanup` is done stopping.
static STOPPED: Condvar = Condvar::new();
/// Clients made and not freed: their [`Registration`]s.
static CLIENTS: AtomicUsize = AtomicUsize::new(0);
/// Runtime threads still running, of every runtime started: a thread of
/// a runtime whose shutdown timed out (a host name lookup) outlives it,
/// and a later `mqtt_global_cleanup` must not report the library stopped
/// while it runs. Counted by the runtime's thread start and stop hooks.
static RUNTIME_THREADS: Mutex<usize> = Mutex::new(0);
/// Signalled when `RUNTIME_THREADS` drops to 0.
static RUNTIME_THREADS_GONE: Condvar = Condvar::new();

/// How long `mqtt_global_cleanup` waits for the runtime's threads: a
/// blocking job cannot be cancelled, and a host name lookup started by a
/// freed client's connect may take the resolver's whole timeout.
/// `MQTT5C_CLEANUP_TIMEOUT_MS` sets another limit (the tests use it).
fn shutdown_limit() -> Duration {
    std::env::var("MQTT5C_CLEANUP_TIMEOUT_MS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(Duration::from_secs(30), Duration::from_millis)
}

fn runtime_thread_started() {
    *RUNTIME_THREADS.lock().unwrap_or_else(|e| e.into_inner()) += 1;
}

fn runtime_thread_stopped() {
    let mut n = RUNTIME_THREADS.lock().unwrap_or_else(|e| e.into_inner());
    *n -= 1;
    if *n == 0 {
        RUNTIME_THREADS_GONE.notify_all();
    }
}

/// Waits until no runtime thread runs (of any runtime, old ones too), or
/// `deadline`; whether none runs.
fn runtime_threads_gone(deadline: Instant) -> bool {
    let mut n = RUNTIME_THREADS.lock().unwrap_or_else(|e| e.into_inner());
    while *n > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        n = RUNTIME_THREADS_GONE
            .wait_timeout(n, left)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
    true
}

/// Default worker count: small, and never above the core count.
fn default_workers() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if let Some(n) = std::env::var("MQTT5C_WORKER_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
    {
        return n;
    }
    cores.min(2)
}

fn start_runtime(workers: Option<usize>) -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers.unwrap_or_else(default_workers))
        .thread_name("mqtt5c")
        // Threads of the blocking pool (auth and pre-connect callbacks,
        // persistence) exit after a second without work, so idle
        // clients hold no thread for long.
        .thread_keep_alive(Duration::from_secs(1))
        .on_thread_start(runtime_thread_started)
        .on_thread_stop(runtime_thread_stopped)
        .enable_all()
        .build()
        // Failing to start threads at all leaves nothing to fall back
        // on; the panic is caught by the calling function's guard.
        .expect("mqtt5c: cannot start the Tokio runtime")
}

/// Whether the calling thread is one `mqtt_global_cleanup` would join: a
/// runtime thread (a worker, a blocking thread running an auth or
/// pre-connect callback), a callback pool thread, or any thread inside a
/// blocking call of the library.
fn on_library_thread() -> bool {
    Handle::try_current().is_ok() || crate::client::on_pool_thread()
}

/// The global state once no `mqtt_global_cleanup` is stopping threads;
/// `Err` with the last error set when the caller is one of the threads it
/// stops (a callback of a freed client creating a client, say), which
/// must not wait for its own end.
fn lock_settled(what: &str) -> Result<MutexGuard<'static, Global>, c_int> {
    // Nothing panics while the lock is held; poisoning is ignored.
    let mut g = GLOBAL.lock().unwrap_or_else(|e| e.into_inner());
    while g.stopping {
        if on_library_thread() {
            set_last_error(format!(
                "{what}: mqtt_global_cleanup is stopping the library's threads, this one included"
            ));
            return Err(MQTT5C_ERR_BAD_STATE);
        }
        g = STOPPED.wait(g).unwrap_or_else(|e| e.into_inner());
    }
    Ok(g)
}

/// `Err` with the last error set when the runtime was started by the
/// parent of this process (`fork()` while the library's threads ran):
/// nothing of it may be used or stopped here.
fn forked(g: &Global, what: &str) -> Result<(), c_int> {
    if g.runtime.is_some() && g.runtime_pid != std::process::id() {
        set_last_error(format!(
            "{what}: this process is a child of fork() from a process whose library threads \
             ran; the library cannot be used here (call mqtt_global_cleanup before fork())"
        ));
        return Err(MQTT5C_ERR_BAD_STATE);
    }
    Ok(())
}

/// A live client's claim on the runtime: counted from `mqtt_client_new`
/// until dropped with the client (`mqtt_client_free`), so that
/// `mqtt_global_cleanup` refuses while it exists.
pub(crate) struct Registration {
    handle: Handle,
}

impl Registration {
    /// Registers a new client, starting the runtime if none runs.
    /// `Err` (last error set) while `mqtt_global_cleanup` stops the
    /// threads and the caller is one of them.
    pub(crate) fn new() -> Result<Registration, c_int> {
        let mut g = lock_settled("mqtt_client_new")?;
        forked(&g, "mqtt_client_new")?;
        if g.runtime.is_none() {
            g.runtime_pid = std::process::id();
        }
        let workers = g.workers;
        let handle = g
            .runtime
            .get_or_insert_with(|| start_runtime(workers))
            .handle()
            .clone();
        // Under the lock: mqtt_global_cleanup counts under it too.
        CLIENTS.fetch_add(1, Ordering::SeqCst);
        Ok(Registration { handle })
    }

    /// The runtime the client's tasks run on.
    pub(crate) fn handle(&self) -> &Handle {
        &self.handle
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        CLIENTS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Runs one async client call to completion on the calling thread. Inside
/// a callback this also keeps the reader reading while it waits (see
/// `client::delivery`), which is what makes blocking calls from callbacks
/// safe.
///
/// The future is boxed first: a client call's state machine is several
/// KiB, and the runtime moves the future it is given a few times before
/// it pins it, so unboxed, those copies cost more CPU than the rest of a
/// QoS 0 publish (see docs/performance.md).
fn block_on<F: Future>(runtime: &Handle, f: F) -> F::Output {
    let _waiting = BlockingGuard::enter();
    runtime.block_on(Box::pin(f))
}

/// `block_on` of a call on `client` that returns `Error::Closed` as soon
/// as the client is being freed, whatever it waits for (see
/// `MqttClient::unless_closed`): `mqtt_client_free` waits for the calls
/// inside, so they must all return promptly.
pub(crate) fn block_on_client<T>(
    client: &MqttClient,
    call: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    // Boxed before it is wrapped: `unless_closed` would otherwise hold
    // (and copy) the call's state machine twice.
    block_on(client.runtime(), client.unless_closed(Box::pin(call)))
}

/// Sets the number of runtime worker threads of the runtime that the next
/// `mqtt_client_new` starts: before the first client, or after
/// `mqtt_global_cleanup`. The count stays chosen across
/// `mqtt_global_cleanup` until set again.
///
/// Optional: the default is min(cores, 2), or the environment variable
/// `MQTT5C_WORKER_THREADS`. `worker_threads` 0 means the default.
///
/// Returns: `MQTT5C_OK`; `MQTT5C_ERR_BAD_STATE` when the runtime already runs
/// (a client was created and `mqtt_global_cleanup` has not stopped it since);
/// `MQTT5C_ERR_INVALID_ARGUMENT` above 1024.
/// Blocks: no; only while another thread is inside `mqtt_global_cleanup`.
/// Threads: any (not from a callback while `mqtt_global_cleanup` runs:
/// `MQTT5C_ERR_BAD_STATE`); before the first client, or after
/// `mqtt_global_cleanup`.
#[no_mangle]
pub extern "C" fn mqtt_global_init(worker_threads: c_uint) -> c_int {
    ffi_guard!({
        if worker_threads > 1024 {
            set_last_error("worker_threads must be at most 1024");
            return MQTT5C_ERR_INVALID_ARGUMENT;
        }
        let mut g = match lock_settled("mqtt_global_init") {
            Ok(g) => g,
            Err(code) => return code,
        };
        if g.runtime.is_some() {
            set_last_error(
                "mqtt_global_init must be called before the first client is created \
                 (or after mqtt_global_cleanup)",
            );
            return MQTT5C_ERR_BAD_STATE;
        }
        g.workers = (worker_threads > 0).then_some(worker_threads as usize);
        MQTT5C_OK
    })
}

/// Ends a stop of `mqtt_global_cleanup` when dropped, a panic's unwinding
/// included (the guard turns it into MQTT5C_ERR_INTERNAL): until then every
/// other global call waits in `lock_settled`, for ever if it never ended.
struct StopEnds;

impl Drop for StopEnds {
    fn drop(&mut self) {
        GLOBAL.lock().unwrap_or_else(|e| e.into_inner()).stopping = false;
        STOPPED.notify_all();
    }
}

/// Stops every thread of the library once every client is freed, and waits
/// until they have exited: the callback threads and the runtime's worker and
/// blocking threads. Afterwards the library runs no code on any thread, so a
/// host may `dlclose` it and a runtime such as Mono that waits for native
/// threads sees none. The next `mqtt_client_new` starts the runtime again
/// (with the worker count of the last `mqtt_global_init`, which may be called
/// again in between); nothing needs re-initialising. Calling it again, or
/// before any client was created, does nothing and returns `MQTT5C_OK`, but
/// for a thread that an earlier call left running when it timed out: that
/// one is waited for again.
///
/// `fork()`: a child may use the library when the parent forked before its
/// first client or after this returned `MQTT5C_OK` (no library thread ran);
/// in a child forked while the library's threads ran, `mqtt_client_new` and
/// this return NULL / `MQTT5C_ERR_BAD_STATE`, and the parent's clients must not
/// be used (only `exec`).
///
/// On glibc, a thread that called into the library holds thread-local data
/// of it whose destructors are the library's code: `dlclose` then leaves the
/// library mapped until that thread exits (the next `dlopen` finds the same
/// copy). No library thread is left either way.
///
/// Ownership: none.
/// Returns: `MQTT5C_OK` (no library thread runs any more);
/// `MQTT5C_ERR_BAD_STATE` when a client is not freed yet (the text gives how
/// many; nothing is stopped) or when called from a library thread (a callback,
/// which would wait for itself) or in a child of `fork()` (above);
/// `MQTT5C_ERR_TIMEOUT` when a runtime thread was
/// still busy after 30 s (a host name lookup of a freed client, say): the
/// library is stopped, but that thread may still run, so do not unload it; a
/// later call waits for it again and returns `MQTT5C_OK` only once it is done.
/// Blocks: until the threads have exited: a callback that freed its own client
/// and is still running is waited for; the runtime's threads up to 30 s (or
/// the milliseconds in the environment variable `MQTT5C_CLEANUP_TIMEOUT_MS`). An
/// `mqtt_client_new` or `mqtt_global_init` on another thread meanwhile waits
/// until this returns.
/// Threads: any thread but the library's own (not from a callback).
#[no_mangle]
pub extern "C" fn mqtt_global_cleanup() -> c_int {
    ffi_guard!({
        if on_library_thread() {
            set_last_error(
                "mqtt_global_cleanup cannot be called from a callback or a library thread: \
                 it waits for those threads to exit",
            );
            return MQTT5C_ERR_BAD_STATE;
        }
        let mut g = match lock_settled("mqtt_global_cleanup") {
            Ok(g) => g,
            Err(code) => return code,
        };
        if let Err(code) = forked(&g, "mqtt_global_cleanup") {
            return code;
        }
        let live = CLIENTS.load(Ordering::SeqCst);
        if live > 0 {
            set_last_error(format!(
                "mqtt_global_cleanup: {live} client(s) not freed yet; \
                 free every client with mqtt_client_free first"
            ));
            return MQTT5C_ERR_BAD_STATE;
        }
        let runtime = g.runtime.take();
        g.stopping = true;
        drop(g);
        let _ends = StopEnds;
        // The pool first: a callback still running after freeing its own
        // client may use the runtime until it returns.
        crate::client::stop_callback_pool();
        let limit = shutdown_limit();
        let deadline = Instant::now() + limit;
        if let Some(rt) = runtime {
            // Drops every task left (those of freed clients, stopped) and
            // joins the threads.
            rt.shutdown_timeout(deadline.saturating_duration_since(Instant::now()));
        }
        // Also a thread of an earlier runtime whose shutdown timed out:
        // "no library thread runs" must hold for it too.
        let timed_out = !runtime_threads_gone(deadline);
        // Dropping those tasks may have scheduled a freed client's last
        // (callback-less) drain on the pool.
        crate::client::stop_callback_pool();
        drop(_ends);
        if timed_out {
            set_last_error(format!(
                "mqtt_global_cleanup: a runtime thread was still busy after {} ms \
                 (a host name lookup or persistence write, maybe of a client freed \
                 before an earlier mqtt_global_cleanup timed out); do not unload the library",
                limit.as_millis()
            ));
            return MQTT5C_ERR_TIMEOUT;
        }
        MQTT5C_OK
    })
}

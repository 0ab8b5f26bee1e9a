//! The process-wide Tokio runtime shared by all clients.
//!
//! All clients share its worker threads, so idle clients cost no thread.
//! Callbacks run on the client's callback pool (`client::pool`), whose
//! threads exist only while there is something to deliver (and linger a
//! second after); auth and pre-connect callbacks on the runtime's blocking
//! pool.

use super::error::{set_last_error, MQTT5C_ERR_BAD_STATE, MQTT5C_ERR_INVALID_ARGUMENT, MQTT5C_OK};
use crate::client::{BlockingGuard, Error, MqttClient};
use once_cell::sync::OnceCell;
use std::future::Future;
use std::os::raw::{c_int, c_uint};
use std::sync::Mutex;
use tokio::runtime::Runtime;

static RUNTIME: OnceCell<Runtime> = OnceCell::new();
static WORKERS: Mutex<Option<usize>> = Mutex::new(None);

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

pub(crate) fn runtime() -> &'static Runtime {
    RUNTIME.get_or_init(|| {
        let workers = WORKERS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .unwrap_or_else(default_workers);
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name("mqtt5c")
            // Threads of the blocking pool (auth and pre-connect callbacks,
            // persistence) exit after a second without work, so idle
            // clients hold no thread for long.
            .thread_keep_alive(std::time::Duration::from_secs(1))
            .enable_all()
            .build()
            // Failing to start threads at all leaves nothing to fall back
            // on; the panic is caught by the calling function's guard.
            .expect("mqtt5c: cannot start the Tokio runtime")
    })
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
pub(crate) fn block_on<F: Future>(f: F) -> F::Output {
    let _waiting = BlockingGuard::enter();
    runtime().block_on(Box::pin(f))
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
    block_on(client.unless_closed(Box::pin(call)))
}

/// Sets the number of runtime worker threads, before first use.
///
/// Optional: the default is min(cores, 2), or the environment variable
/// `MQTT5C_WORKER_THREADS`. `worker_threads` 0 means the default.
///
/// Returns: `MQTT5C_OK`; `MQTT5C_ERR_BAD_STATE` when the runtime already runs
/// (any client was created); `MQTT5C_ERR_INVALID_ARGUMENT` above 1024.
/// Blocks: no.
/// Threads: any, but call it once, before anything else.
#[no_mangle]
pub extern "C" fn mqtt_global_init(worker_threads: c_uint) -> c_int {
    ffi_guard!({
        if worker_threads > 1024 {
            set_last_error("worker_threads must be at most 1024");
            return MQTT5C_ERR_INVALID_ARGUMENT;
        }
        let mut w = WORKERS.lock().unwrap_or_else(|e| e.into_inner());
        if RUNTIME.get().is_some() {
            set_last_error("mqtt_global_init must be called before the first client is created");
            return MQTT5C_ERR_BAD_STATE;
        }
        *w = (worker_threads > 0).then_some(worker_threads as usize);
        MQTT5C_OK
    })
}

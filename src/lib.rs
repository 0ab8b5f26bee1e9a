//! mqtt5c: an MQTT v5.0 client library with a C ABI.
//!
//! Layers, with dependencies pointing one way (`ffi -> client -> {transport, packet}`):
//! - [`packet`]: the wire format, no I/O.
//! - [`transport`]: byte streams split into packet reader and writer halves.
//! - [`client`]: the async client, its session state and background tasks.
//! - `ffi`: the C API over a process-wide Tokio runtime.
//!
//! `redact` (used by all but `packet`) makes text fit for error messages
//! and logs: URLs without credentials or query, the peer's text escaped.

pub mod client;
pub mod ffi;
/// The fuzz targets' checks, for fuzz/ and tests/fuzz_corpus.rs; not API.
#[doc(hidden)]
pub mod fuzzing;
pub mod packet;
pub(crate) mod redact;
pub mod transport;

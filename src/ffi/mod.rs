//! The C API. Rules that hold for every function (stated once here and in
//! the README):
//! - Every function catches panics; a caught panic returns
//!   `MQTT5C_ERR_INTERNAL` (or NULL / false / 0) and never unwinds into C.
//! - Every pointer is checked: NULL where not allowed gives
//!   `MQTT5C_ERR_INVALID_ARGUMENT` with the argument named in
//!   `mqtt_last_error()`. Strings must be NUL-terminated UTF-8.
//! - `const` arguments are never modified; output arguments are written
//!   only on success. Objects are freed exactly once; `*_free(NULL)` is a
//!   no-op.
//! - Threads: a client may be used from any number of threads at once and
//!   from inside its callbacks (blocking calls included); an options or
//!   properties object from one thread at a time (the header states the
//!   contract once, from cbindgen.toml).
//! - `mqtt_client_free` may run while other threads are inside calls on
//!   the client: they return promptly with an error and it waits for them
//!   (`calls`). When it returns, no callback of the client runs any more.
//! - A function that replaces or ends a callback returns once no call of
//!   the old one runs on another thread (`client::gate`), so its
//!   `user_data` may then be freed.
//! - `mqtt_last_error()` is per OS thread.

#![allow(non_camel_case_types)]
// Exported functions take raw pointers from C by design; each checks them
// (NULL) and documents what it requires, which is all `unsafe fn` would add.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

#[macro_use]
mod guard;
mod ack;
mod auth;
mod calls;
mod client;
mod error;
mod failover;
mod flow;
mod logging;
mod message;
mod options;
mod persistence;
mod properties;
mod protocol;
mod request;
mod runtime;
mod session;
mod subscribe;
mod tls;
mod version;

pub use ack::*;
pub use auth::*;
pub use client::*;
pub use error::*;
pub use failover::*;
pub use flow::*;
pub use logging::*;
pub use message::*;
pub use options::*;
pub use persistence::*;
pub use properties::*;
pub use protocol::*;
pub use request::*;
pub use runtime::*;
pub use session::*;
pub use subscribe::*;
pub use tls::*;
pub use version::*;

//! mqtt5c: an MQTT v5.0 client library with a C ABI.
pub mod packet;

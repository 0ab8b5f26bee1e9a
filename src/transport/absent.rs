//! What a build without the `tls` or `websocket` Cargo feature has in
//! place of those transports: the same option types, whose setters fail
//! with a text saying the feature is left out, so that the C API (one
//! header for every build) links and answers plainly. URLs that need a
//! missing transport are refused when parsed (see `url.rs`).

/// The error text of a TLS URL or setting in a build without TLS.
pub const TLS_LEFT_OUT: &str = "this build of libmqtt5c leaves TLS out (built without the \
     Cargo feature \"tls\"): mqtts://, ssl://, tls://, wss:// and the TLS options are not \
     available";

/// The error text of a WebSocket URL or header in a build without it.
pub const WEBSOCKET_LEFT_OUT: &str = "this build of libmqtt5c leaves WebSocket out (built \
     without the Cargo feature \"websocket\"): ws://, wss:// and WebSocket headers are not \
     available";

#[cfg(not(feature = "tls"))]
pub mod tls {
    use super::TLS_LEFT_OUT;

    /// Stands in for the TLS settings; holds nothing, every setter fails.
    #[derive(Clone, Debug, Default)]
    pub struct TlsOptions {
        _nothing: (),
    }

    impl TlsOptions {
        pub fn set_ca_file(&mut self, _: Option<&str>) -> Result<(), String> {
            Err(TLS_LEFT_OUT.into())
        }
        pub fn set_client_cert(&mut self, _: Option<(&str, &str)>) -> Result<(), String> {
            Err(TLS_LEFT_OUT.into())
        }
        pub fn set_ca_pem(&mut self, _: Option<&[u8]>) -> Result<(), String> {
            Err(TLS_LEFT_OUT.into())
        }
        pub fn set_client_cert_pem(&mut self, _: Option<(&[u8], &[u8])>) -> Result<(), String> {
            Err(TLS_LEFT_OUT.into())
        }
        pub fn set_client_signer(
            &mut self,
            _: &[u8],
            _: crate::transport::signer::KeyType,
            _: std::sync::Arc<dyn crate::transport::signer::ExternalSigner>,
        ) -> Result<(), String> {
            Err(TLS_LEFT_OUT.into())
        }
        pub fn set_server_name(&mut self, _: Option<&str>) -> Result<(), String> {
            Err(TLS_LEFT_OUT.into())
        }
        pub fn set_alpn(&mut self, _: Vec<Vec<u8>>) -> Result<(), String> {
            Err(TLS_LEFT_OUT.into())
        }
        pub fn set_insecure_skip_verify(&mut self, _: bool) -> Result<(), String> {
            Err(TLS_LEFT_OUT.into())
        }
        /// No signer without TLS.
        pub fn with_signer_wrapped(
            &self,
            _: impl FnOnce(
                std::sync::Arc<dyn crate::transport::signer::ExternalSigner>,
            ) -> std::sync::Arc<dyn crate::transport::signer::ExternalSigner>,
        ) -> Option<TlsOptions> {
            None
        }
        /// Nothing to verify without TLS.
        pub fn skips_verification(&self) -> bool {
            false
        }
    }

    /// Without TLS no I/O error carries a TLS error.
    pub fn describe_io(_: &std::io::Error) -> Option<String> {
        None
    }
}

#[cfg(not(feature = "websocket"))]
pub mod ws {
    use super::WEBSOCKET_LEFT_OUT;

    /// Stands in for a WebSocket header; none can be made.
    #[derive(Clone, Debug)]
    pub struct WsHeader(std::convert::Infallible);

    impl WsHeader {
        pub fn new(_: &str, _: &str) -> Result<WsHeader, String> {
            Err(WEBSOCKET_LEFT_OUT.into())
        }
        pub fn value(&self) -> &str {
            match self.0 {}
        }
    }
}

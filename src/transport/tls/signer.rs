//! The rustls side of an external signer (see `transport::signer`).
//!
//! rustls asks for the signature synchronously, inside the poll of the
//! TLS stream, that is on whatever thread runs the connect: a runtime
//! worker (reconnection, a connect made from a task) or the thread of a
//! blocking C call (`block_on`). The callback may block for as long as
//! the hardware takes, so on a worker it runs inside
//! `tokio::task::block_in_place`: the worker's other tasks (other
//! clients' readers, keep-alives, timers, this connect's own timeout
//! aside) move to another thread first, so a slow or blocking signer
//! holds up only its own handshake and no runtime thread is lost to it,
//! even with every worker inside a signer. (Outside a worker, on a
//! `block_on` caller's thread or a current-thread runtime, it is simply
//! called: nothing else runs on that thread then.) The handshake has no
//! lock of ours held while signing, so a signer that calls into the
//! library for another client does not deadlock on us; one that waits on
//! the connect it is signing for would wait for ever (documented in the
//! header).

use crate::transport::signer::{ExternalSigner, KeyType};
use std::sync::Arc;
use tokio_rustls::rustls::sign::{Signer, SigningKey};
use tokio_rustls::rustls::{self, SignatureAlgorithm, SignatureScheme};

#[derive(Clone)]
pub(super) struct CallbackKey {
    pub key_type: KeyType,
    pub signer: Arc<dyn ExternalSigner>,
}

impl std::fmt::Debug for CallbackKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CallbackKey({})", self.key_type.name())
    }
}

impl SigningKey for CallbackKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        let scheme = self
            .key_type
            .schemes()
            .iter()
            .map(|&s| SignatureScheme::from(s))
            .find(|s| offered.contains(s))?;
        Some(Box::new(CallbackSigner {
            key: self.clone(),
            scheme,
        }))
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        match self.key_type {
            KeyType::EcdsaP256 | KeyType::EcdsaP384 => SignatureAlgorithm::ECDSA,
            KeyType::Rsa => SignatureAlgorithm::RSA,
            KeyType::Ed25519 => SignatureAlgorithm::ED25519,
        }
    }
}

#[derive(Debug)]
struct CallbackSigner {
    key: CallbackKey,
    scheme: SignatureScheme,
}

impl Signer for CallbackSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        let code = u16::from(self.scheme);
        let call = || self.key.signer.sign(code, message);
        let on_worker = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        let signed = if on_worker {
            // Outside a worker (a block_on caller's thread) this just
            // calls `call`.
            tokio::task::block_in_place(call)
        } else {
            call()
        };
        signed.map_err(|why| {
            rustls::Error::General(format!(
                "the client signer callback failed to sign with {:?} ({code:#06x}): {why}",
                self.scheme
            ))
        })
    }

    fn scheme(&self) -> SignatureScheme {
        self.scheme
    }
}

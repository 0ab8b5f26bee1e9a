//! Secrets and their copies: the password, Authentication Data (of
//! CONNECT, of the answers to the server's challenges, of a
//! re-authentication), WebSocket header values (a bearer token) and the
//! proxy's credentials.
//!
//! Every copy we make is wiped when dropped: [`Secret`] (a wiped `Vec`),
//! [`secret_bytes`] and [`wiped`] (`Bytes` whose buffer is wiped when the
//! last clone goes, for data that travels in packets). Two rules keep the
//! number of copies down:
//! - Authentication Data never goes into a long-lived `Properties`: a
//!   property list copies what it is given into buffers of its own, which
//!   nobody wipes. [`with_auth_data`] builds the list of the one packet
//!   that carries it, in a wiped buffer.
//! - A client keeps its secrets in [`Secrets`], apart from its options,
//!   and `close` empties them: its background tasks may hold the client a
//!   moment longer (the runtime drops stopped tasks on its own threads),
//!   the secrets do not.

use super::options::ClientOptions;
use super::Error;
use crate::packet::{self, MqttStr, PacketType, Properties, PropertyContext, PropertyId};
use crate::transport::{ProxySettings, WsHeader};
use bytes::{BufMut, Bytes, BytesMut};
use std::fmt;
use zeroize::{Zeroize, Zeroizing};

/// Bytes that are wiped from memory when dropped and never printed: the
/// password, Authentication Data. Each copy wipes its own bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    pub fn new(bytes: &[u8]) -> Secret {
        Secret(Zeroizing::new(bytes.to_vec()))
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A copy of `data` as `Bytes` whose buffer is wiped when the last clone
/// is dropped.
pub fn secret_bytes(data: &[u8]) -> Bytes {
    wiped(BytesMut::from(data))
}

/// `buf` as `Bytes` that zero the buffer when the last clone is dropped:
/// an encoded CONNECT or AUTH is wiped wherever the write sending it ends
/// (completed, failed, or finished by a task after its caller left).
pub fn wiped(buf: BytesMut) -> Bytes {
    Bytes::from_owner(WipeOnDrop(buf))
}

struct WipeOnDrop(BytesMut);

impl AsRef<[u8]> for WipeOnDrop {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for WipeOnDrop {
    fn drop(&mut self) {
        self.0.as_mut().zeroize();
    }
}

/// `props` with Authentication Data `data` (replacing any), as a list
/// whose bytes are one buffer, wiped when the last view of it is dropped.
pub(super) fn with_auth_data(
    props: &Properties,
    data: &[u8],
    packet: PacketType,
) -> Result<Properties, Error> {
    let mut others = props.clone();
    others.remove(PropertyId::AuthenticationData);
    let data_len = u16::try_from(data.len()).map_err(|_| {
        Error::InvalidArgument("authentication data is longer than 65535 bytes".into())
    })?;
    let mut rest = BytesMut::new();
    others.encode(&mut rest)?;
    // `rest` is the other properties' length prefix, then the properties.
    let (_, prefix) = packet::decode_varint(&rest)
        .ok()
        .flatten()
        .ok_or(Error::Internal("a property list without its length"))?;
    let len = rest.len() - prefix + 3 + data.len();
    let len32 = u32::try_from(len).map_err(|_| Error::PacketTooLarge {
        size: len,
        max: 268_435_455,
    })?;
    let mut buf = BytesMut::with_capacity(packet::varint_len(len32) + len);
    packet::encode_varint(len32, &mut buf);
    buf.put_u8(PropertyId::AuthenticationData as u8);
    buf.put_u16(data_len);
    buf.put_slice(data);
    buf.put_slice(&rest[prefix..]);
    let mut bytes = wiped(buf);
    Properties::decode(&mut bytes, PropertyContext::Packet(packet)).map_err(Error::from)
}

/// The client's copies of its secrets, taken out of its options when it is
/// made; emptied (so wiped) by `close`. With them, what a pre-connect
/// hook may change for the next attempts (see `attempt`): the user name
/// and the CONNECT properties (the Authentication Method among them).
#[derive(Default)]
pub(super) struct Secrets {
    pub password: Option<Secret>,
    pub auth_data: Option<Secret>,
    pub ws_headers: Vec<WsHeader>,
    pub proxy: ProxySettings,
    pub username: Option<MqttStr>,
    /// The options' connect properties, as a pre-connect hook left them.
    pub connect_properties: Properties,
}

/// CONNECT properties that set limits the client was made with (its
/// delivery queue, its alias table, its checks of incoming packets): a
/// pre-connect hook does not change them.
const FIXED: [PropertyId; 4] = [
    PropertyId::ReceiveMaximum,
    PropertyId::TopicAliasMaximum,
    PropertyId::MaximumPacketSize,
    PropertyId::RequestResponseInformation,
];

impl Secrets {
    /// Moves the secrets out of `o`; copies its user name and connect
    /// properties.
    pub fn take(o: &mut ClientOptions) -> Secrets {
        Secrets {
            password: o.password.take(),
            auth_data: o.auth_data.take(),
            ws_headers: std::mem::take(&mut o.ws_headers),
            proxy: std::mem::take(&mut o.proxy),
            username: o.username.clone(),
            connect_properties: o.connect_properties.clone(),
        }
    }

    /// A copy of the options `o` (the client's own, without secrets) with
    /// these credentials and connect properties, for a pre-connect hook.
    /// WebSocket headers and the proxy are left out: the hook does not
    /// change them.
    pub fn settings(&self, o: &ClientOptions) -> ClientOptions {
        let mut s = o.clone();
        s.username = self.username.clone();
        s.password = self.password.clone();
        s.auth_data = self.auth_data.clone();
        s.connect_properties = self.connect_properties.clone();
        s
    }

    /// Takes from `s` (a copy from `settings`, changed by the hook) the
    /// user name, password, Authentication Data and connect properties,
    /// except the limits in `FIXED`, which stay as in `made_with`.
    pub fn update(&mut self, mut s: ClientOptions, made_with: &ClientOptions) {
        self.username = s.username.take();
        self.password = s.password.take();
        self.auth_data = s.auth_data.take();
        let mut props = std::mem::take(&mut s.connect_properties);
        for id in FIXED {
            props.remove(id);
            if let Some(p) = made_with.connect_properties.get(id) {
                props.set(p);
            }
        }
        self.connect_properties = props;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::Property;

    #[test]
    fn auth_data_joins_the_other_properties() {
        let mut p = Properties::new();
        p.set(Property::AuthenticationMethod(
            packet::MqttStr::new("SCRAM").unwrap(),
        ));
        p.set(Property::AuthenticationData(Bytes::from_static(b"old")));
        let q = with_auth_data(&p, b"s3cret", PacketType::Connect).unwrap();
        assert_eq!(
            q.get_binary(PropertyId::AuthenticationData).as_deref(),
            Some(&b"s3cret"[..])
        );
        assert_eq!(q.count(PropertyId::AuthenticationData), 1);
        assert_eq!(
            q.get_str(PropertyId::AuthenticationMethod)
                .unwrap()
                .as_str(),
            "SCRAM"
        );
        assert!(with_auth_data(&p, &[0; 70_000], PacketType::Auth).is_err());
    }
}

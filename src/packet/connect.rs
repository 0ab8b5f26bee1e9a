//! CONNECT (spec section 3.1).

use super::codec::{
    check_binary, expect_end, put_binary, put_str, read_binary, read_str, read_u16, read_u8, sum,
};
use super::topic::is_valid_topic_name;
use super::{
    DecodeError, EncodeError, MqttStr, PacketType, Properties, PropertyContext, PropertyId, QoS,
};
use bytes::{BufMut, Bytes, BytesMut};

#[derive(Clone, PartialEq, Eq, Default)]
pub struct Connect {
    pub clean_start: bool,
    pub keep_alive: u16,
    pub properties: Properties,
    /// May be empty: the server then assigns one.
    pub client_id: MqttStr,
    pub will: Option<LastWill>,
    pub username: Option<MqttStr>,
    pub password: Option<Bytes>,
}

impl std::fmt::Debug for Connect {
    // The password is never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connect")
            .field("clean_start", &self.clean_start)
            .field("keep_alive", &self.keep_alive)
            .field("properties", &self.properties)
            .field("client_id", &self.client_id)
            .field("will", &self.will)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct LastWill {
    pub topic: MqttStr,
    pub payload: Bytes,
    pub qos: QoS,
    pub retain: bool,
    /// Will properties (will delay interval, payload format, expiry, ...).
    pub properties: Properties,
}

/// Protocol name and level of MQTT v5.0 (spec 3.1.2.1-2).
const PROTOCOL_NAME: &[u8] = b"MQTT";
const PROTOCOL_LEVEL: u8 = 5;

// Connect Flags bits (spec 3.1.2.3).
const RESERVED: u8 = 0x01;
const CLEAN_START: u8 = 0x02;
const WILL_FLAG: u8 = 0x04;
const WILL_QOS_SHIFT: u8 = 3;
const WILL_RETAIN: u8 = 0x20;
const PASSWORD: u8 = 0x40;
const USERNAME: u8 = 0x80;

const CTX: PropertyContext = PropertyContext::Packet(PacketType::Connect);

impl Connect {
    /// Validates and returns the remaining length.
    pub(super) fn body_len(&self) -> Result<usize, EncodeError> {
        self.properties.validate(CTX)?;
        if self
            .properties
            .get(PropertyId::AuthenticationData)
            .is_some()
            && self
                .properties
                .get(PropertyId::AuthenticationMethod)
                .is_none()
        {
            return Err(EncodeError::Invalid(
                "Authentication Data without Authentication Method",
            ));
        }
        // Name, level, flags, keep alive, properties, client id.
        let mut len = sum([
            2 + PROTOCOL_NAME.len() + 1 + 1 + 2,
            self.properties.block_len(),
            2 + self.client_id.len(),
        ]);
        if let Some(will) = &self.will {
            will.properties.validate(PropertyContext::Will)?;
            if !is_valid_topic_name(&will.topic) {
                return Err(EncodeError::InvalidTopicName);
            }
            check_binary(&will.payload)?;
            len = sum([
                len,
                will.properties.block_len(),
                2 + will.topic.len(),
                2 + will.payload.len(),
            ]);
        }
        if let Some(username) = &self.username {
            len = sum([len, 2 + username.len()]);
        }
        if let Some(password) = &self.password {
            check_binary(password)?;
            len = sum([len, 2 + password.len()]);
        }
        Ok(len)
    }

    fn flags(&self) -> u8 {
        let mut flags = 0;
        if self.clean_start {
            flags |= CLEAN_START;
        }
        if let Some(will) = &self.will {
            flags |= WILL_FLAG | ((will.qos as u8) << WILL_QOS_SHIFT);
            if will.retain {
                flags |= WILL_RETAIN;
            }
        }
        if self.username.is_some() {
            flags |= USERNAME;
        }
        if self.password.is_some() {
            flags |= PASSWORD;
        }
        flags
    }

    pub(super) fn encode_body(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        put_binary(out, PROTOCOL_NAME)?;
        out.put_u8(PROTOCOL_LEVEL);
        out.put_u8(self.flags());
        out.put_u16(self.keep_alive);
        self.properties.write(out)?;
        put_str(out, &self.client_id)?;
        if let Some(will) = &self.will {
            will.properties.write(out)?;
            put_str(out, &will.topic)?;
            put_binary(out, &will.payload)?;
        }
        if let Some(username) = &self.username {
            put_str(out, username)?;
        }
        if let Some(password) = &self.password {
            put_binary(out, password)?;
        }
        Ok(())
    }

    pub(super) fn decode_body(mut body: Bytes) -> Result<Self, DecodeError> {
        if read_binary(&mut body)? != PROTOCOL_NAME {
            return Err(DecodeError::ProtocolError("protocol name is not MQTT"));
        }
        if read_u8(&mut body)? != PROTOCOL_LEVEL {
            return Err(DecodeError::ProtocolError("protocol level is not 5"));
        }
        let flags = read_u8(&mut body)?;
        if flags & RESERVED != 0 {
            return Err(DecodeError::Malformed("reserved CONNECT flag set"));
        }
        let will_qos_bits = (flags >> WILL_QOS_SHIFT) & 0x03;
        let will_flag = flags & WILL_FLAG != 0;
        if !will_flag && (will_qos_bits != 0 || flags & WILL_RETAIN != 0) {
            return Err(DecodeError::Malformed(
                "will QoS or retain without will flag",
            ));
        }
        let will_qos = QoS::from_u8(will_qos_bits).ok_or(DecodeError::InvalidQoS(will_qos_bits))?;
        let keep_alive = read_u16(&mut body)?;
        let properties = Properties::decode(&mut body, CTX)?;
        if properties.get(PropertyId::AuthenticationData).is_some()
            && properties.get(PropertyId::AuthenticationMethod).is_none()
        {
            return Err(DecodeError::ProtocolError(
                "Authentication Data without Authentication Method",
            ));
        }
        let client_id = read_str(&mut body)?;
        let will = if will_flag {
            let properties = Properties::decode(&mut body, PropertyContext::Will)?;
            let topic = read_str(&mut body)?;
            if !is_valid_topic_name(&topic) {
                return Err(DecodeError::InvalidTopicName);
            }
            let payload = read_binary(&mut body)?;
            Some(LastWill {
                topic,
                payload,
                qos: will_qos,
                retain: flags & WILL_RETAIN != 0,
                properties,
            })
        } else {
            None
        };
        // v5 allows a password without a user name (spec 3.1.2.9).
        let username = if flags & USERNAME != 0 {
            Some(read_str(&mut body)?)
        } else {
            None
        };
        let password = if flags & PASSWORD != 0 {
            Some(read_binary(&mut body)?)
        } else {
            None
        };
        expect_end(&body)?;
        Ok(Connect {
            clean_start: flags & CLEAN_START != 0,
            keep_alive,
            properties,
            client_id,
            will,
            username,
            password,
        })
    }
}

//! SUBSCRIBE (spec section 3.8).

use super::codec::{check_packet_id, put_str, read_packet_id, read_str, read_u8, sum};
use super::topic::is_valid_topic_filter;
use super::{DecodeError, EncodeError, MqttStr, PacketType, Properties, PropertyContext, QoS};
use bytes::{BufMut, Bytes, BytesMut};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum RetainHandling {
    /// Send retained messages at the time of the subscribe.
    #[default]
    SendAtSubscribe = 0,
    /// Send them only if the subscription did not exist yet.
    SendIfNew = 1,
    /// Do not send them.
    DoNotSend = 2,
}

/// The subscription options byte; its bits are also the C API's
/// `MQTT5C_SUB_*` flags (`options = qos | flags`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SubscriptionOptions {
    pub qos: QoS,
    pub no_local: bool,
    pub retain_as_published: bool,
    pub retain_handling: RetainHandling,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscribeFilter {
    pub filter: MqttStr,
    pub options: SubscriptionOptions,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscribe {
    pub packet_id: u16,
    pub properties: Properties,
    /// At least one.
    pub filters: Vec<SubscribeFilter>,
}

impl RetainHandling {
    /// Values 0-2; 3 is a Protocol Error on the wire.
    pub fn from_u8(v: u8) -> Option<RetainHandling> {
        match v {
            0 => Some(RetainHandling::SendAtSubscribe),
            1 => Some(RetainHandling::SendIfNew),
            2 => Some(RetainHandling::DoNotSend),
            _ => None,
        }
    }
}

// Subscription Options bits (spec 3.8.3.1).
const QOS_MASK: u8 = 0x03;
const NO_LOCAL: u8 = 0x04;
const RETAIN_AS_PUBLISHED: u8 = 0x08;
const RETAIN_HANDLING_SHIFT: u8 = 4;
const RESERVED: u8 = 0xC0;

impl SubscriptionOptions {
    /// QoS in bits 0-1, No Local bit 2, Retain As Published bit 3,
    /// Retain Handling bits 4-5; bits 6-7 are reserved (zero).
    pub fn to_byte(self) -> u8 {
        let mut b = self.qos as u8;
        if self.no_local {
            b |= NO_LOCAL;
        }
        if self.retain_as_published {
            b |= RETAIN_AS_PUBLISHED;
        }
        b | ((self.retain_handling as u8) << RETAIN_HANDLING_SHIFT)
    }

    /// Reserved bits set is Malformed, QoS 3 is [`DecodeError::InvalidQoS`],
    /// Retain Handling 3 is a Protocol Error.
    pub fn from_byte(b: u8) -> Result<Self, DecodeError> {
        if b & RESERVED != 0 {
            return Err(DecodeError::Malformed(
                "reserved subscription option bits set",
            ));
        }
        let qos = QoS::from_u8(b & QOS_MASK).ok_or(DecodeError::InvalidQoS(b & QOS_MASK))?;
        let rh = (b >> RETAIN_HANDLING_SHIFT) & 0x03;
        let retain_handling =
            RetainHandling::from_u8(rh).ok_or(DecodeError::ProtocolError("Retain Handling 3"))?;
        Ok(SubscriptionOptions {
            qos,
            no_local: b & NO_LOCAL != 0,
            retain_as_published: b & RETAIN_AS_PUBLISHED != 0,
            retain_handling,
        })
    }
}

const CTX: PropertyContext = PropertyContext::Packet(PacketType::Subscribe);

/// No Local on a shared subscription is a Protocol Error (spec 3.8.3.1).
fn no_local_on_shared(f: &SubscribeFilter) -> bool {
    f.options.no_local && f.filter.starts_with("$share/")
}

impl Subscribe {
    /// Validates and returns the remaining length.
    pub(super) fn body_len(&self) -> Result<usize, EncodeError> {
        check_packet_id(self.packet_id)?;
        if self.filters.is_empty() {
            return Err(EncodeError::Invalid("SUBSCRIBE without topic filters"));
        }
        self.properties.validate(CTX)?;
        let mut len = sum([2, self.properties.block_len()]);
        for f in &self.filters {
            if !is_valid_topic_filter(&f.filter) {
                return Err(EncodeError::InvalidTopicFilter);
            }
            if no_local_on_shared(f) {
                return Err(EncodeError::Invalid("No Local on a shared subscription"));
            }
            len = sum([len, 2 + f.filter.len() + 1]);
        }
        Ok(len)
    }

    pub(super) fn encode_body(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_u16(self.packet_id);
        self.properties.write(out)?;
        for f in &self.filters {
            put_str(out, &f.filter)?;
            out.put_u8(f.options.to_byte());
        }
        Ok(())
    }

    pub(super) fn decode_body(mut body: Bytes) -> Result<Self, DecodeError> {
        let packet_id = read_packet_id(&mut body)?;
        let properties = Properties::decode(&mut body, CTX)?;
        let mut filters = Vec::new();
        while !body.is_empty() {
            let filter = read_str(&mut body)?;
            if !is_valid_topic_filter(&filter) {
                return Err(DecodeError::InvalidTopicFilter);
            }
            let options = SubscriptionOptions::from_byte(read_u8(&mut body)?)?;
            let f = SubscribeFilter { filter, options };
            if no_local_on_shared(&f) {
                return Err(DecodeError::ProtocolError(
                    "No Local on a shared subscription",
                ));
            }
            filters.push(f);
        }
        if filters.is_empty() {
            return Err(DecodeError::Malformed("SUBSCRIBE without topic filters"));
        }
        Ok(Subscribe {
            packet_id,
            properties,
            filters,
        })
    }
}

//! One network connection: its writer, limits the server set in CONNACK,
//! and the handles of the tasks that serve it.

use super::session::PendingKind;
use super::{
    connect_packet, keepalive, lock, reader, ConnectInfo, ConnectionEvent, Error, Event, Inner,
};
use crate::packet::{self, Packet, Property, PropertyId, ReasonCode};
use crate::transport::{self, BrokerUrl, PacketWriter};
use bytes::BytesMut;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::AbortHandle;
use zeroize::Zeroize;

pub struct Connection {
    writer: tokio::sync::Mutex<PacketWriter>,
    /// Shuts the socket down from any thread, waking blocked I/O.
    control: Option<transport::Control>,
    alive: AtomicBool,
    /// One permit per QoS 1/2 publish the server's Receive Maximum allows.
    send_quota: Arc<Semaphore>,
    server_max_packet_size: usize,
    pub(super) keep_alive: Duration,
    epoch: Instant,
    last_sent_ms: AtomicU64,
    pub(super) pingresps: AtomicU64,
    pub(super) pingresp_notify: tokio::sync::Notify,
    tasks: Mutex<Vec<AbortHandle>>,
    /// Set by `disconnect` before it sends DISCONNECT, so that the reader
    /// seeing the socket close first still reports our reason.
    pub(super) closing: Mutex<Option<ReasonCode>>,
}

impl Connection {
    pub(super) fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    /// Returns true the first time only.
    pub(super) fn mark_dead(&self) -> bool {
        self.alive.swap(false, Ordering::AcqRel)
    }

    pub(super) fn check_size(&self, size: usize) -> Result<(), Error> {
        if size > self.server_max_packet_size {
            return Err(Error::PacketTooLarge {
                size,
                max: self.server_max_packet_size,
            });
        }
        Ok(())
    }

    /// Waits for a free slot of the server's Receive Maximum.
    pub(super) async fn acquire_send_slot(&self) -> Result<OwnedSemaphorePermit, Error> {
        self.send_quota
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::ConnectionLost)
    }

    /// Writes one or more whole encoded packets under the writer lock.
    pub(super) async fn write(&self, bytes: &[u8]) -> Result<(), Error> {
        if !self.is_alive() {
            return Err(Error::ConnectionLost);
        }
        let mut w = self.writer.lock().await;
        w.write_packet(bytes).await?;
        self.last_sent_ms
            .store(self.epoch.elapsed().as_millis() as u64, Ordering::Release);
        Ok(())
    }

    /// Time since we last sent anything.
    pub(super) fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_sent_ms.load(Ordering::Acquire));
        self.epoch.elapsed().saturating_sub(last)
    }

    /// Sends FIN after what was written, so DISCONNECT reaches the server.
    pub(super) async fn flush_and_close(&self) {
        let mut w = self.writer.lock().await;
        let _ = w.shutdown().await;
    }

    /// Closes the socket and stops the tasks and anything waiting on them.
    pub(super) fn shutdown(&self) {
        self.send_quota.close();
        if let Some(c) = &self.control {
            c.shutdown();
        }
        for t in lock(&self.tasks).drain(..) {
            t.abort();
        }
    }

    fn add_task(&self, handle: AbortHandle) {
        lock(&self.tasks).push(handle);
        // The connection may have ended before the task was registered.
        if !self.is_alive() {
            self.shutdown();
        }
    }
}

/// Opens the transport, exchanges CONNECT/CONNACK and starts the tasks.
pub(super) async fn establish(inner: &Arc<Inner>, url: &BrokerUrl) -> Result<ConnectInfo, Error> {
    let o = &inner.options;
    let cfg = transport::ConnectConfig {
        tcp: &o.tcp,
        tls: &o.tls,
        ws_headers: &o.ws_headers,
        max_packet_size: o.max_packet_size as usize,
    };
    let mut t = transport::connect(url, &cfg).await?;
    let mut buf = BytesMut::new();
    let mut connect = Packet::Connect(Box::new(connect_packet(o)));
    let encoded = packet::encode(&connect, &mut buf);
    // The password must not outlive the write in our copies.
    if let Packet::Connect(c) = &mut connect {
        wipe(c.password.take());
    }
    let written = match encoded {
        Ok(()) => t.writer.write_packet(&buf).await.map_err(Error::from),
        Err(e) => Err(e.into()),
    };
    buf.as_mut().zeroize();
    written?;
    let connack = match t.reader.read_packet().await {
        Ok(Packet::ConnAck(c)) => c,
        Ok(Packet::Auth(_)) => {
            return Err(Error::Protocol(
                "server started enhanced authentication, which is not configured".into(),
            ))
        }
        Ok(other) => {
            return Err(Error::Protocol(format!(
                "expected CONNACK, got {:?}",
                other.packet_type()
            )))
        }
        Err(transport::ReadError::Closed) => return Err(Error::ConnectionLost),
        Err(transport::ReadError::Io(e)) => return Err(e.into()),
        Err(transport::ReadError::Decode(e)) => return Err(e.into()),
    };
    *lock(&inner.last_connack) = Some(connack.clone());
    if connack.reason.is_error() {
        return Err(Error::Refused {
            reason: connack.reason,
            reason_string: super::reason_string(&connack.properties),
        });
    }
    let props = &connack.properties;
    if let Some(Property::AssignedClientIdentifier(id)) =
        props.get(PropertyId::AssignedClientIdentifier)
    {
        *lock(&inner.client_id) = id.as_str().to_string();
    }
    let receive_max = props.get_int(PropertyId::ReceiveMaximum).unwrap_or(65_535) as usize;
    let server_max = props
        .get_int(PropertyId::MaximumPacketSize)
        .map_or(268_435_460, |v| v as usize);
    let keep_alive = props
        .get_int(PropertyId::ServerKeepAlive)
        .unwrap_or(o.keep_alive as u32);
    let conn = Arc::new(Connection {
        writer: tokio::sync::Mutex::new(t.writer),
        control: t.control,
        alive: AtomicBool::new(true),
        send_quota: Arc::new(Semaphore::new(receive_max.max(1))),
        server_max_packet_size: server_max,
        keep_alive: Duration::from_secs(keep_alive as u64),
        epoch: Instant::now(),
        last_sent_ms: AtomicU64::new(0),
        pingresps: AtomicU64::new(0),
        pingresp_notify: tokio::sync::Notify::new(),
        tasks: Mutex::new(Vec::new()),
        closing: Mutex::new(None),
    });

    // Resume or reset the session, then collect what must be resent.
    let resend = {
        let mut s = lock(&inner.session);
        if !connack.session_present {
            s.clear();
            Vec::new()
        } else {
            let mut out = Vec::new();
            let mut ids: Vec<u16> = s.pending.keys().copied().collect();
            ids.sort_unstable();
            for id in ids {
                let Some(p) = s.pending.get_mut(&id) else {
                    continue;
                };
                if let PendingKind::Publish { packet, released } = &p.kind {
                    p.permit = conn.send_quota.clone().try_acquire_owned().ok();
                    if *released {
                        let mut b = BytesMut::new();
                        packet::encode(
                            &Packet::PubRel(packet::PubResp {
                                packet_id: id,
                                reason: ReasonCode::Success,
                                properties: Default::default(),
                            }),
                            &mut b,
                        )?;
                        out.push(b.freeze());
                    } else if !packet.is_empty() {
                        // Set DUP (bit 3 of the first byte) on the copy we resend.
                        let mut b = BytesMut::from(&packet[..]);
                        b[0] |= 0x08;
                        out.push(b.freeze());
                    }
                }
            }
            out
        }
    };

    *inner.connection.write().unwrap_or_else(|e| e.into_inner()) = Some(conn.clone());
    // Queued before the reader starts, so that a DISCONNECT right after
    // CONNACK is reported after CONNECTED, not before.
    inner.delivery.push(
        inner,
        Event::Connection(ConnectionEvent::Connected {
            session_present: connack.session_present,
        }),
    );
    let r = inner
        .runtime
        .spawn(reader::run(inner.clone(), conn.clone(), t.reader));
    conn.add_task(r.abort_handle());
    if !conn.keep_alive.is_zero() {
        let k = inner
            .runtime
            .spawn(keepalive::run(inner.clone(), conn.clone()));
        conn.add_task(k.abort_handle());
    }
    for b in resend {
        inner.send(&conn, &b).await?;
    }
    Ok(ConnectInfo {
        session_present: connack.session_present,
        reason: connack.reason,
        properties: connack.properties,
    })
}

/// Zeroes the bytes of a password copy (the CONNECT packet's), which only
/// this function holds.
fn wipe(password: Option<bytes::Bytes>) {
    if let Some(p) = password {
        if let Ok(mut m) = p.try_into_mut() {
            m.as_mut().zeroize();
        }
    }
}

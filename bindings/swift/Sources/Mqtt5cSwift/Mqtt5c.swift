// A small Swift layer over the C API of libmqtt5c (module `mqtt5c`).
//
// Not compiled on the project's machines (no Swift toolchain): see
// ../../README.md. Everything the C API offers stays reachable: this file
// re-exports the module, so `import Mqtt5cSwift` also gives every
// `mqtt_*` function and `MQTT5C_*` constant.

@_exported import mqtt5c

/// A failed call: `code` is a negative `MQTT5C_ERR_*` or a broker reason
/// code >= 0x80 (`MQTT5C_RC_*`), `detail` the text of `mqtt_last_error()`
/// read on the calling thread right after the call.
public struct MQTT5CError: Error, CustomStringConvertible {
    public let code: Int32
    public let detail: String

    public var description: String {
        "\(String(cString: mqtt_strerror(code))): \(detail)"
    }
}

/// Returns `rc` when it means success (`mqtt_succeeded`: 0, or a reason
/// code below 0x80 such as a granted QoS or 0x10), else throws.
@discardableResult
func check(_ rc: Int32) throws -> Int32 {
    if mqtt_succeeded(rc) {
        return rc
    }
    throw MQTT5CError(code: rc, detail: String(cString: mqtt_last_error()))
}

/// A received message, copied out of the library's buffer (the C message
/// lives only during its callback).
public struct Message {
    public let topic: String
    public let payload: [UInt8]
    public let qos: Int32
    public let retain: Bool

    init(copying m: OpaquePointer) {
        topic = String(cString: mqtt_message_topic(m))
        var len = 0
        if let p = mqtt_message_payload(m, &len), len > 0 {
            payload = Array(UnsafeRawBufferPointer(start: p, count: len))
        } else {
            payload = []
        }
        qos = mqtt_message_qos(m)
        retain = mqtt_message_retain(m)
    }
}

/// Connection settings (`mqtt_options`), copied by `Client.init`. Use from
/// one thread at a time.
public final class Options {
    let handle: OpaquePointer

    public init() {
        handle = mqtt_options_new()
    }

    deinit {
        mqtt_options_free(handle)
    }

    /// The C handle, for the setters this layer does not wrap
    /// (`mqtt_options_set_tls_ca_pem`, `mqtt_options_set_proxy`, ...).
    /// Valid while these options live.
    public var cHandle: OpaquePointer {
        handle
    }

    public func clientID(_ id: String) throws {
        try check(mqtt_options_set_client_id(handle, id))
    }

    public func keepAlive(seconds: UInt16) throws {
        try check(mqtt_options_set_keep_alive(handle, seconds))
    }

    /// `cleanStart` false with a `sessionExpiry` above 0 resumes sessions.
    public func session(cleanStart: Bool, expirySeconds: UInt32) throws {
        try check(mqtt_options_set_clean_start(handle, cleanStart))
        try check(mqtt_options_set_session_expiry(handle, expirySeconds))
    }

    public func credentials(user: String, password: String) throws {
        let bytes = Array(password.utf8)
        _ = try bytes.withUnsafeBytes { buf in
            try check(mqtt_options_set_credentials(handle, user, buf.baseAddress, buf.count))
        }
    }

    public func autoReconnect(minDelayMs: UInt32, maxDelayMs: UInt32) throws {
        try check(mqtt_options_set_auto_reconnect(handle, minDelayMs, maxDelayMs))
    }

    /// `MQTT_PROTOCOL_V5` (default), `MQTT_PROTOCOL_V311` or `MQTT_PROTOCOL_AUTO`.
    public func protocolVersion(_ version: Int32) throws {
        try check(mqtt_options_set_protocol_version(handle, version))
    }

    public func tlsCAFile(_ path: String) throws {
        try check(mqtt_options_set_tls_ca_file(handle, path))
    }

    public func tlsClientCert(certFile: String, keyFile: String) throws {
        try check(mqtt_options_set_tls_client_cert(handle, certFile, keyFile))
    }
}

/// The handlers, fixed for the client's life so that no callback thread
/// reads one while another thread replaces it.
private final class Handlers {
    let onMessage: ((Message) -> Void)?
    let onConnection: ((_ event: Int32, _ reason: Int32) -> Void)?

    init(onMessage: ((Message) -> Void)?, onConnection: ((Int32, Int32) -> Void)?) {
        self.onMessage = onMessage
        self.onConnection = onConnection
    }
}

private let messageTrampoline: mqtt_message_cb = { userData, message in
    guard let userData = userData, let message = message else { return }
    let handlers = Unmanaged<Handlers>.fromOpaque(userData).takeUnretainedValue()
    handlers.onMessage?(Message(copying: message))
}

private let connectionTrampoline: mqtt_connection_cb = { userData, event, reason in
    guard let userData = userData else { return }
    let handlers = Unmanaged<Handlers>.fromOpaque(userData).takeUnretainedValue()
    handlers.onConnection?(event, reason)
}

/// An MQTT client (`mqtt_client`). Every method may be called from any
/// thread at once, and from inside the handlers (blocking ones included).
///
/// Handlers run on the library's threads, never the caller's: one at a
/// time per client, in the order the broker sent the messages. Hop to the
/// main queue yourself for UI work. Do not capture the client strongly in
/// its own handlers (a reference cycle: it would never be freed).
public final class Client {
    private let handle: OpaquePointer
    private let handlers: Handlers

    /// - Parameters:
    ///   - onMessage: every received message (copied).
    ///   - onConnection: `MQTT5C_EVENT_*` with its reason code.
    public init(
        options: Options? = nil,
        onMessage: ((Message) -> Void)? = nil,
        onConnection: ((_ event: Int32, _ reason: Int32) -> Void)? = nil
    ) throws {
        guard let h = mqtt_client_new(options?.handle) else {
            throw MQTT5CError(code: MQTT5C_ERR_INTERNAL, detail: String(cString: mqtt_last_error()))
        }
        handle = h
        handlers = Handlers(onMessage: onMessage, onConnection: onConnection)
        // Unretained: `handlers` lives as long as the client, and
        // mqtt_client_free (deinit) returns only once no callback runs.
        let context = Unmanaged.passUnretained(handlers).toOpaque()
        if onMessage != nil {
            mqtt_set_message_callback(handle, messageTrampoline, context)
        }
        if onConnection != nil {
            mqtt_set_connection_callback(handle, connectionTrampoline, context)
        }
    }

    /// Closes without DISCONNECT (the broker publishes the will): call
    /// `disconnect()` first for a clean end. No handler runs after this.
    deinit {
        mqtt_client_free(handle)
    }

    /// Blocks until CONNACK: "mqtt://host:1883", "mqtts://", "ws://",
    /// "wss://", "unix:///path".
    public func connect(_ url: String) throws {
        try check(mqtt_connect(handle, url))
    }

    public func disconnect() throws {
        try check(mqtt_disconnect(handle, 0, nil))
    }

    public var isConnected: Bool {
        mqtt_is_connected(handle)
    }

    /// Blocks until PUBACK (QoS 1) or PUBCOMP (QoS 2). Returns the reason
    /// code, a success: 0, or 0x10 when nobody subscribes.
    @discardableResult
    public func publish(_ topic: String, _ payload: [UInt8], qos: Int32 = MQTT5C_QOS1,
                        retain: Bool = false) throws -> Int32 {
        try payload.withUnsafeBytes { buf in
            try check(mqtt_publish(handle, topic, buf.baseAddress, buf.count, qos, retain, nil))
        }
    }

    @discardableResult
    public func publish(_ topic: String, _ text: String, qos: Int32 = MQTT5C_QOS1,
                        retain: Bool = false) throws -> Int32 {
        try publish(topic, Array(text.utf8), qos: qos, retain: retain)
    }

    /// Blocks until SUBACK. `options`: a QoS or-ed with `MQTT5C_SUB_*`.
    /// Returns the granted QoS.
    @discardableResult
    public func subscribe(_ filter: String, options: Int32 = MQTT5C_QOS1) throws -> Int32 {
        try check(mqtt_subscribe(handle, filter, options, nil))
    }

    @discardableResult
    public func unsubscribe(_ filter: String) throws -> Int32 {
        try check(mqtt_unsubscribe(handle, filter, nil))
    }

    /// The C handle, for the functions this layer does not wrap
    /// (properties, `mqtt_publish_async`, `mqtt_request`, ...). Valid while
    /// the client lives.
    public var cHandle: OpaquePointer {
        handle
    }
}

/*
 * mqtt5c.hpp: a header-only C++17 binding of mqtt5c (include/mqtt5c.h).
 *
 * Link as for the C API (`pkg-config --cflags --libs mqtt5c`, or the CMake
 * target mqtt5c::mqtt5c); install puts this header beside mqtt5c.h.
 *
 *     mqtt5c::client c(mqtt5c::options().client_id("demo"));
 *     c.on_message([](const mqtt5c::message_view &m) { use(m.topic(), m.payload()); });
 *     c.connect("mqtt://localhost:1883");
 *     c.subscribe("sensors/#", mqtt5c::qos1);
 *     c.publish("sensors/t", "21.5", mqtt5c::qos1);
 *
 * Ownership (RAII, move-only, nothing freed twice): `client`, `options`,
 * `properties` and `message` own their C object and free it in their
 * destructor; a moved-from object owns nothing (its destructor is a no-op;
 * a client call on it throws `errc::invalid_argument`). `message_view` and
 * `properties_view` borrow: the ones a callback receives are valid only
 * during that call (copy with `message_view::copy()` /
 * `properties_view::copy()` to keep them).
 *
 * Errors are EXCEPTIONS: every failing call throws `mqtt5c::error`, a
 * `std::system_error` whose `code()` is a `std::error_code` of
 * `mqtt5c::category()` carrying the C return value (a negative
 * `MQTT5C_ERR_*`, compare with `mqtt5c::errc::timeout` etc., or a broker
 * reason code >= 0x80, e.g. 0x87 not authorized; `error::rc()` gives it as
 * an int), and whose `what()` holds the operation and the library's
 * detailed `mqtt_last_error()` text. A call that succeeded with a non-zero
 * reason code (0x10 no matching subscribers, a granted QoS 1 or 2, 0x11 no
 * subscription existed) does not throw: it returns that code. Why
 * exceptions: the C API's detail text is per thread and must be read right
 * after the failing call; an exception captures it there, while an
 * error_code out-parameter would lose it. Outcomes that arrive later (a
 * `publish_async` completion) are passed to the callback as the C `int`
 * result; test it with `mqtt5c::succeeded(rc)`, never `rc != 0`.
 *
 * Callbacks are any callables (lambdas with captures, std::function,
 * function objects), stored in the client. Threads: they run on library
 * threads (never the thread that reads the socket), one at a time per
 * client, in the order the events arrived; message, connection,
 * per-subscription and publish completion callbacks share that order (the
 * pre-connect and auth callbacks run while the connect they belong to
 * waits, see client::on_pre_connect and client::on_auth). A
 * callback may make any call on the client, blocking ones included
 * (publish at QoS 1/2, subscribe, request, connect), and may replace
 * callbacks. It must not throw: an exception leaving a callback calls
 * std::terminate (as with std::thread). It may destroy its own client (the
 * C free does not wait for the running callback; its arguments stay valid
 * until it returns), but must not use the client afterwards.
 *
 * Lifetime: the C user_data of every callback points to storage owned by
 * the client's heap state (stable across moves of the client). The
 * destructor frees the C client first (mqtt_client_free waits for running
 * callbacks on other threads; after it no callback runs) and then the
 * callables. Publish completions not yet reported when the client is
 * destroyed are dropped without being called (as in C).
 *
 * Thread safety: a `client` may be used from any number of threads at
 * once (except destroying/moving it); `options`, `properties` and
 * `message` from one thread at a time.
 */
#ifndef MQTT5C_HPP
#define MQTT5C_HPP

#include "mqtt5c.h"

#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

namespace mqtt5c {

/* ---- Errors ------------------------------------------------------------ */

/** Whether a return value or callback result means success (< 0x80). */
inline bool succeeded(int rc) noexcept { return static_cast<unsigned>(rc) < 0x80u; } // MQTT5C_SUCCEEDED

/** The library errors, as `std::error_code` values of `category()`. */
enum class errc {
    invalid_argument = MQTT5C_ERR_INVALID_ARGUMENT,
    not_connected = MQTT5C_ERR_NOT_CONNECTED,
    connection_lost = MQTT5C_ERR_CONNECTION_LOST,
    timeout = MQTT5C_ERR_TIMEOUT,
    io = MQTT5C_ERR_IO,
    protocol = MQTT5C_ERR_PROTOCOL,
    packet_too_large = MQTT5C_ERR_PACKET_TOO_LARGE,
    internal = MQTT5C_ERR_INTERNAL,
    not_found = MQTT5C_ERR_NOT_FOUND,
    tls = MQTT5C_ERR_TLS,
    already_connected = MQTT5C_ERR_ALREADY_CONNECTED,
    bad_state = MQTT5C_ERR_BAD_STATE,
    queue_full = MQTT5C_ERR_QUEUE_FULL,
    expired = MQTT5C_ERR_EXPIRED,
    persistence = MQTT5C_ERR_PERSISTENCE,
};

namespace detail {
class category_impl final : public std::error_category {
  public:
    const char *name() const noexcept override { return "mqtt5c"; }
    std::string message(int rc) const override { return mqtt_strerror(rc); }
};
} // namespace detail

/** The error category of mqtt5c return values (message: mqtt_strerror). */
inline const std::error_category &category() noexcept {
    static const detail::category_impl instance;
    return instance;
}

inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), category()};
}

/** Any return value (library error or broker reason code) as an error_code. */
inline std::error_code make_error_code(int rc) noexcept { return {rc, category()}; }

/**
 * A failed call. `code()` carries the return value in `category()`;
 * `what()` is "<operation>: <mqtt_last_error() text>: <mqtt_strerror()>".
 */
class error : public std::system_error {
  public:
    error(int rc, const std::string &what) : std::system_error(rc, category(), what) {}
    /** The C return value: a negative MQTT5C_ERR_* or a reason code >= 0x80. */
    int rc() const noexcept { return code().value(); }
};

namespace detail {
[[noreturn]] inline void fail(int rc, const char *op) {
    std::string what = std::string("mqtt5c: ") + op;
    const char *detail = mqtt_last_error();
    if (detail != nullptr && *detail != '\0')
        what += std::string(": ") + detail;
    throw error(rc, what);
}

/** Throws unless `rc` is a success; returns it (a granted QoS, 0x10, ...). */
inline int check(int rc, const char *op) {
    if (!succeeded(rc))
        fail(rc, op);
    return rc;
}

/** A NUL-terminated view of `s`; a NUL inside would cut it short in C. */
inline const char *cstr(const std::string &s, const char *op) {
    if (s.find('\0') != std::string::npos)
        throw error(MQTT5C_ERR_INVALID_ARGUMENT,
                    std::string("mqtt5c: ") + op + ": a string argument contains a NUL character");
    return s.c_str();
}

inline const char *cstr_or_null(const std::optional<std::string> &s, const char *op) {
    return s ? cstr(*s, op) : nullptr;
}

template <class Ptr> Ptr *not_null(Ptr *p, const char *op) {
    if (p == nullptr)
        fail(MQTT5C_ERR_INTERNAL, op);
    return p;
}
} // namespace detail

/* ---- Constants --------------------------------------------------------- */

enum qos : int { qos0 = MQTT5C_QOS0, qos1 = MQTT5C_QOS1, qos2 = MQTT5C_QOS2 };

/** Subscription options: a QoS and MQTT5C_SUB_* flags. */
struct subscribe_options {
    int qos = MQTT5C_QOS0;
    bool no_local = false;
    bool retain_as_published = false;
    /** 0 send retained on subscribe, 1 only for a new subscription, 2 never. */
    int retain_handling = 0;

    subscribe_options() = default;
    subscribe_options(int q) : qos(q) {} // NOLINT: a QoS is the common case
    int to_c() const noexcept {
        int o = qos;
        if (no_local)
            o |= MQTT5C_SUB_NO_LOCAL;
        if (retain_as_published)
            o |= MQTT5C_SUB_RETAIN_AS_PUBLISHED;
        if (retain_handling == 1)
            o |= MQTT5C_SUB_RETAIN_HANDLING_NEW_ONLY;
        else if (retain_handling == 2)
            o |= MQTT5C_SUB_RETAIN_HANDLING_NONE;
        return o;
    }
};

/** Connection events (the connection callback's first argument). */
enum class event : int {
    connected = MQTT5C_EVENT_CONNECTED,
    disconnected = MQTT5C_EVENT_DISCONNECTED,
    reconnecting = MQTT5C_EVENT_RECONNECTING,
    resubscribe_failed = MQTT5C_EVENT_RESUBSCRIBE_FAILED,
};

/** Property identifiers (MQTT5C_PROP_*). */
enum class prop : int {
    payload_format_indicator = MQTT5C_PROP_PAYLOAD_FORMAT_INDICATOR,
    message_expiry_interval = MQTT5C_PROP_MESSAGE_EXPIRY_INTERVAL,
    content_type = MQTT5C_PROP_CONTENT_TYPE,
    response_topic = MQTT5C_PROP_RESPONSE_TOPIC,
    correlation_data = MQTT5C_PROP_CORRELATION_DATA,
    subscription_identifier = MQTT5C_PROP_SUBSCRIPTION_IDENTIFIER,
    session_expiry_interval = MQTT5C_PROP_SESSION_EXPIRY_INTERVAL,
    assigned_client_identifier = MQTT5C_PROP_ASSIGNED_CLIENT_IDENTIFIER,
    server_keep_alive = MQTT5C_PROP_SERVER_KEEP_ALIVE,
    authentication_method = MQTT5C_PROP_AUTHENTICATION_METHOD,
    authentication_data = MQTT5C_PROP_AUTHENTICATION_DATA,
    request_problem_information = MQTT5C_PROP_REQUEST_PROBLEM_INFORMATION,
    will_delay_interval = MQTT5C_PROP_WILL_DELAY_INTERVAL,
    request_response_information = MQTT5C_PROP_REQUEST_RESPONSE_INFORMATION,
    response_information = MQTT5C_PROP_RESPONSE_INFORMATION,
    server_reference = MQTT5C_PROP_SERVER_REFERENCE,
    reason_string = MQTT5C_PROP_REASON_STRING,
    receive_maximum = MQTT5C_PROP_RECEIVE_MAXIMUM,
    topic_alias_maximum = MQTT5C_PROP_TOPIC_ALIAS_MAXIMUM,
    topic_alias = MQTT5C_PROP_TOPIC_ALIAS,
    maximum_qos = MQTT5C_PROP_MAXIMUM_QOS,
    retain_available = MQTT5C_PROP_RETAIN_AVAILABLE,
    user_property = MQTT5C_PROP_USER_PROPERTY,
    maximum_packet_size = MQTT5C_PROP_MAXIMUM_PACKET_SIZE,
    wildcard_subscription_available = MQTT5C_PROP_WILDCARD_SUBSCRIPTION_AVAILABLE,
    subscription_identifier_available = MQTT5C_PROP_SUBSCRIPTION_IDENTIFIER_AVAILABLE,
    shared_subscription_available = MQTT5C_PROP_SHARED_SUBSCRIPTION_AVAILABLE,
};

/** Bytes borrowed for one call: a payload, a password, correlation data. */
struct bytes {
    const void *data = nullptr;
    size_t size = 0;

    bytes() = default;
    bytes(const void *d, size_t n) : data(d), size(n) {}
    bytes(const char *s) : data(s), size(s ? std::strlen(s) : 0) {} // NOLINT
    bytes(std::string_view s) : data(s.data()), size(s.size()) {}    // NOLINT
    bytes(const std::string &s) : data(s.data()), size(s.size()) {}  // NOLINT
    bytes(const std::vector<unsigned char> &v) : data(v.data()), size(v.size()) {} // NOLINT
    bytes(const std::vector<char> &v) : data(v.data()), size(v.size()) {}          // NOLINT
};

/* ---- Properties -------------------------------------------------------- */

class properties;

/** A borrowed, read-only property list (of a message, an ack, ...). */
class properties_view {
  public:
    properties_view() = default;
    explicit properties_view(const mqtt_properties *p) noexcept : p_(p) {}

    const mqtt_properties *native() const noexcept { return p_; }
    explicit operator bool() const noexcept { return p_ != nullptr; }

    /** An integer property, or nullopt when absent. */
    std::optional<uint32_t> get_int(prop id, size_t index = 0) const {
        uint32_t v = 0;
        int rc = mqtt_properties_get_int_at(p_, static_cast<int>(id), index, &v);
        if (rc == MQTT5C_ERR_NOT_FOUND)
            return std::nullopt;
        detail::check(rc, "properties get_int");
        return v;
    }
    /** A string property, or nullopt when absent. */
    std::optional<std::string> get_string(prop id) const {
        size_t len = 0;
        const char *s = mqtt_properties_get_string_len(p_, static_cast<int>(id), &len);
        if (s == nullptr)
            return std::nullopt;
        return std::string(s, len);
    }
    /** A binary property (Correlation Data, ...), or nullopt when absent. */
    std::optional<std::string> get_binary(prop id) const {
        size_t len = 0;
        const void *b = mqtt_properties_get_binary(p_, static_cast<int>(id), &len);
        if (b == nullptr)
            return std::nullopt;
        return std::string(static_cast<const char *>(b), len);
    }
    /** How many properties with this identifier (User Property, Subscription Identifier: any). */
    size_t count(prop id) const noexcept { return mqtt_properties_count(p_, static_cast<int>(id)); }
    /** The User Properties, in order. */
    std::vector<std::pair<std::string, std::string>> user_properties() const {
        std::vector<std::pair<std::string, std::string>> out;
        size_t n = count(prop::user_property);
        out.reserve(n);
        for (size_t i = 0; i < n; i++) {
            const char *k = nullptr;
            const char *v = nullptr;
            detail::check(mqtt_properties_user_at(p_, i, &k, &v), "properties user_at");
            out.emplace_back(k, v);
        }
        return out;
    }
    /** The first User Property named `key`, or nullopt. */
    std::optional<std::string> user_property(std::string_view key) const {
        size_t n = count(prop::user_property);
        for (size_t i = 0; i < n; i++) {
            const char *k = nullptr;
            const char *v = nullptr;
            if (mqtt_properties_user_at(p_, i, &k, &v) == MQTT5C_OK && key == k)
                return std::string(v);
        }
        return std::nullopt;
    }
    std::optional<std::string> content_type() const { return get_string(prop::content_type); }
    std::optional<std::string> response_topic() const { return get_string(prop::response_topic); }
    std::optional<std::string> correlation_data() const { return get_binary(prop::correlation_data); }
    std::optional<std::string> reason_string() const { return get_string(prop::reason_string); }
    std::optional<uint32_t> message_expiry_interval() const { return get_int(prop::message_expiry_interval); }

    /** An owned copy (to keep a received message's properties). */
    inline properties copy() const;

  protected:
    const mqtt_properties *p_ = nullptr;
};

/**
 * An owned, mutable property list. Setters chain and throw `error` on a
 * bad value (the text names the property); whether a property suits a
 * packet is checked where the list is used.
 */
class properties : public properties_view {
  public:
    properties() : properties(detail::not_null(mqtt_properties_new(), "mqtt_properties_new")) {}
    /** Takes ownership of `p` (from mqtt_properties_new/copy, mqtt_connack_properties, ...). */
    explicit properties(mqtt_properties *p) noexcept : properties_view(p) {}
    properties(properties &&o) noexcept : properties_view(o.p_) { o.p_ = nullptr; }
    properties &operator=(properties &&o) noexcept {
        if (this != &o) {
            mqtt_properties_free(mut());
            p_ = o.p_;
            o.p_ = nullptr;
        }
        return *this;
    }
    properties(const properties &) = delete;
    properties &operator=(const properties &) = delete;
    ~properties() { mqtt_properties_free(mut()); }

    mqtt_properties *native() noexcept { return mut(); }
    const mqtt_properties *native() const noexcept { return p_; }
    /** Gives up ownership (the caller frees with mqtt_properties_free). */
    mqtt_properties *release() noexcept {
        mqtt_properties *p = mut();
        p_ = nullptr;
        return p;
    }

    properties &set_int(prop id, uint32_t v) {
        detail::check(mqtt_properties_set_int(mut(), static_cast<int>(id), v), "properties set_int");
        return *this;
    }
    properties &set_string(prop id, const std::string &v) {
        detail::check(mqtt_properties_set_string(mut(), static_cast<int>(id), detail::cstr(v, "properties set_string")),
                      "properties set_string");
        return *this;
    }
    properties &set_binary(prop id, bytes v) {
        detail::check(mqtt_properties_set_binary(mut(), static_cast<int>(id), v.data, v.size), "properties set_binary");
        return *this;
    }
    properties &add_user(const std::string &key, const std::string &value) {
        detail::check(mqtt_properties_add_user(mut(), detail::cstr(key, "properties add_user"),
                                               detail::cstr(value, "properties add_user")),
                      "properties add_user");
        return *this;
    }
    properties &remove(prop id) {
        detail::check(mqtt_properties_remove(mut(), static_cast<int>(id)), "properties remove");
        return *this;
    }
    properties &content_type(const std::string &v) { return set_string(prop::content_type, v); }
    properties &response_topic(const std::string &v) { return set_string(prop::response_topic, v); }
    properties &correlation_data(bytes v) { return set_binary(prop::correlation_data, v); }
    properties &message_expiry_interval(uint32_t s) { return set_int(prop::message_expiry_interval, s); }
    properties &payload_format_utf8(bool utf8 = true) { return set_int(prop::payload_format_indicator, utf8 ? 1 : 0); }
    properties &subscription_identifier(uint32_t id) { return set_int(prop::subscription_identifier, id); }
    properties &session_expiry_interval(uint32_t s) { return set_int(prop::session_expiry_interval, s); }
    properties &reason_string(const std::string &v) { return set_string(prop::reason_string, v); }
    using properties_view::content_type;
    using properties_view::correlation_data;
    using properties_view::message_expiry_interval;
    using properties_view::reason_string;
    using properties_view::response_topic;

  private:
    mqtt_properties *mut() const noexcept { return const_cast<mqtt_properties *>(p_); }
};

inline properties properties_view::copy() const {
    return properties(detail::not_null(mqtt_properties_copy(p_), "mqtt_properties_copy"));
}

namespace detail {
inline const mqtt_properties *c_props(const properties *p) { return p ? p->native() : nullptr; }
} // namespace detail

/* ---- Messages ---------------------------------------------------------- */

class message;

/** A borrowed received message; the one a callback gets lives during the call. */
class message_view {
  public:
    message_view() = default;
    explicit message_view(const mqtt_message *m) noexcept : m_(m) {}

    const mqtt_message *native() const noexcept { return m_; }
    explicit operator bool() const noexcept { return m_ != nullptr; }
    std::string_view topic() const noexcept {
        const char *t = mqtt_message_topic(m_);
        return t ? std::string_view(t) : std::string_view();
    }
    /** The payload bytes (not NUL-terminated). */
    std::string_view payload() const noexcept {
        size_t len = 0;
        const void *p = mqtt_message_payload(m_, &len);
        return p ? std::string_view(static_cast<const char *>(p), len) : std::string_view();
    }
    int qos() const noexcept { return mqtt_message_qos(m_); }
    bool retain() const noexcept { return mqtt_message_retain(m_); }
    bool dup() const noexcept { return mqtt_message_dup(m_); }
    /** Its properties, borrowed from the message. */
    properties_view props() const noexcept { return properties_view(mqtt_message_properties(m_)); }
    /** For client::ack with manual acknowledgement (0 otherwise). */
    uint64_t ack_id() const noexcept { return mqtt_message_ack_id(m_); }
    /** An owned copy, usable after the callback and from any thread. */
    inline message copy() const;

  protected:
    const mqtt_message *m_ = nullptr;
};

/** An owned message: a copy, or the response of client::request. */
class message : public message_view {
  public:
    message() = default;
    /** Takes ownership of `m` (from mqtt_message_copy or mqtt_request). */
    explicit message(mqtt_message *m) noexcept : message_view(m) {}
    message(message &&o) noexcept : message_view(o.m_) { o.m_ = nullptr; }
    message &operator=(message &&o) noexcept {
        if (this != &o) {
            mqtt_message_free(mut());
            m_ = o.m_;
            o.m_ = nullptr;
        }
        return *this;
    }
    message(const message &) = delete;
    message &operator=(const message &) = delete;
    ~message() { mqtt_message_free(mut()); }

  private:
    mqtt_message *mut() const noexcept { return const_cast<mqtt_message *>(m_); }
};

inline message message_view::copy() const {
    return message(detail::not_null(mqtt_message_copy(m_), "mqtt_message_copy"));
}

/* ---- Options ----------------------------------------------------------- */

/**
 * Connection settings; setters chain and throw `error` on a bad value.
 * The client copies them: one options object may make several clients.
 */
class options {
  public:
    options() : o_(detail::not_null(mqtt_options_new(), "mqtt_options_new")) {}
    options(options &&o) noexcept : o_(std::exchange(o.o_, nullptr)), owned_(o.owned_) {}
    options &operator=(options &&o) noexcept {
        if (this != &o) {
            if (owned_)
                mqtt_options_free(o_);
            o_ = std::exchange(o.o_, nullptr);
            owned_ = o.owned_;
        }
        return *this;
    }
    options(const options &) = delete;
    options &operator=(const options &) = delete;
    ~options() {
        if (owned_)
            mqtt_options_free(o_);
    }
    /** A non-owning wrapper (what a pre-connect callback receives). */
    static options borrow(mqtt_options *o) noexcept { return options(o, false); }

    /** For the C setters this class does not wrap (e.g. the TLS signer). */
    mqtt_options *native() noexcept { return o_; }
    const mqtt_options *native() const noexcept { return o_; }

    options &client_id(const std::string &id) { return set(mqtt_options_set_client_id(o_, cstr(id)), "client_id"); }
    options &keep_alive(std::chrono::seconds s) {
        return set(mqtt_options_set_keep_alive(o_, narrow<uint16_t>(s.count(), "keep_alive")), "keep_alive");
    }
    options &clean_start(bool on) { return set(mqtt_options_set_clean_start(o_, on), "clean_start"); }
    options &session_expiry(std::chrono::seconds s) {
        return set(mqtt_options_set_session_expiry(o_, narrow<uint32_t>(s.count(), "session_expiry")), "session_expiry");
    }
    options &credentials(const std::string &username, bytes password = bytes()) {
        return set(mqtt_options_set_credentials(o_, cstr(username), password.data, password.size), "credentials");
    }
    /** The will: published by the broker when the connection ends without DISCONNECT. */
    options &will(const std::string &topic, bytes payload, int qos = MQTT5C_QOS0, bool retain = false,
                  const properties *props = nullptr) {
        return set(mqtt_options_set_will(o_, cstr(topic), payload.data, payload.size, qos, retain, detail::c_props(props)),
                   "will");
    }
    options &connect_timeout(std::chrono::milliseconds t) {
        return set(mqtt_options_set_connect_timeout(o_, millis(t, "connect_timeout")), "connect_timeout");
    }
    options &operation_timeout(std::chrono::milliseconds t) {
        return set(mqtt_options_set_operation_timeout(o_, millis(t, "operation_timeout")), "operation_timeout");
    }
    /** Automatic reconnection with exponential backoff; min 0 turns it off. */
    options &auto_reconnect(std::chrono::milliseconds min_delay, std::chrono::milliseconds max_delay) {
        return set(mqtt_options_set_auto_reconnect(o_, millis(min_delay, "auto_reconnect"), millis(max_delay, "auto_reconnect")),
                   "auto_reconnect");
    }
    options &connect_retry(bool on) { return set(mqtt_options_set_connect_retry(o_, on), "connect_retry"); }
    options &offline_queue(size_t max_messages, size_t max_bytes, bool drop_oldest = false) {
        return set(mqtt_options_set_offline_queue(o_, max_messages, max_bytes,
                                                  drop_oldest ? MQTT5C_QUEUE_DROP_OLDEST : MQTT5C_QUEUE_FAIL_NEW),
                   "offline_queue");
    }
    options &offline_queue_qos0(bool on) { return set(mqtt_options_set_offline_queue_qos0(o_, on), "offline_queue_qos0"); }
    options &resubscribe(bool on) { return set(mqtt_options_set_resubscribe(o_, on), "resubscribe"); }
    options &add_server(const std::string &url) { return set(mqtt_options_add_server(o_, cstr(url)), "add_server"); }
    options &follow_redirects(unsigned max_hops) {
        return set(mqtt_options_set_follow_redirects(o_, max_hops), "follow_redirects");
    }
    options &protocol_version(int version) {
        return set(mqtt_options_set_protocol_version(o_, version), "protocol_version");
    }
    options &connect_properties(const properties &props) {
        return set(mqtt_options_set_connect_properties(o_, props.native()), "connect_properties");
    }
    options &receive_maximum(uint16_t max) { return set(mqtt_options_set_receive_maximum(o_, max), "receive_maximum"); }
    options &maximum_packet_size(uint32_t bytes_) {
        return set(mqtt_options_set_maximum_packet_size(o_, bytes_), "maximum_packet_size");
    }
    options &topic_alias_maximum(uint16_t max) {
        return set(mqtt_options_set_topic_alias_maximum(o_, max), "topic_alias_maximum");
    }
    options &outgoing_topic_aliases(uint16_t max) {
        return set(mqtt_options_set_outgoing_topic_aliases(o_, max), "outgoing_topic_aliases");
    }
    /** With manual acknowledgement, QoS 1/2 messages are acked by client::ack. */
    options &manual_ack(bool on) { return set(mqtt_options_set_manual_ack(o_, on), "manual_ack"); }
    options &delivery_queue(size_t max_messages, size_t max_bytes) {
        return set(mqtt_options_set_delivery_queue(o_, max_messages, max_bytes), "delivery_queue");
    }
    options &persistence_dir(const std::string &path) {
        return set(mqtt_options_set_persistence_dir(o_, cstr(path)), "persistence_dir");
    }
    options &proxy(const std::string &url) { return set(mqtt_options_set_proxy(o_, cstr(url)), "proxy"); }
    options &proxy_from_env(bool on) { return set(mqtt_options_set_proxy_from_env(o_, on), "proxy_from_env"); }
    options &tcp_nodelay(bool on) { return set(mqtt_options_set_tcp_nodelay(o_, on), "tcp_nodelay"); }
    options &tcp_quickack(bool on) { return set(mqtt_options_set_tcp_quickack(o_, on), "tcp_quickack"); }
    options &receive_maximum_strict(bool strict) {
        return set(mqtt_options_set_receive_maximum_strict(o_, strict), "receive_maximum_strict");
    }
    options &delivery_queue_limit(size_t messages) {
        return set(mqtt_options_set_delivery_queue_limit(o_, messages), "delivery_queue_limit");
    }
    options &auth(const std::string &method, bytes data = bytes()) {
        return set(mqtt_options_set_auth(o_, cstr(method), data.data, data.size), "auth");
    }
    options &ws_header(const std::string &name, const std::string &value) {
        return set(mqtt_options_add_ws_header(o_, cstr(name), cstr(value)), "ws_header");
    }

    /* TLS (mqtts://, wss://) */
    options &tls_ca_file(const std::string &pem_path) {
        return set(mqtt_options_set_tls_ca_file(o_, cstr(pem_path)), "tls_ca_file");
    }
    options &tls_ca_pem(std::string_view pem) {
        return set(mqtt_options_set_tls_ca_pem(o_, pem.data(), pem.size()), "tls_ca_pem");
    }
    options &tls_client_cert(const std::string &cert_pem_path, const std::string &key_pem_path) {
        return set(mqtt_options_set_tls_client_cert(o_, cstr(cert_pem_path), cstr(key_pem_path)), "tls_client_cert");
    }
    options &tls_client_cert_pem(std::string_view cert_pem, std::string_view key_pem) {
        return set(mqtt_options_set_tls_client_cert_pem(o_, cert_pem.data(), cert_pem.size(), key_pem.data(), key_pem.size()),
                   "tls_client_cert_pem");
    }
    options &tls_server_name(const std::string &name) {
        return set(mqtt_options_set_tls_server_name(o_, cstr(name)), "tls_server_name");
    }
    options &tls_alpn(const std::vector<std::string> &protocols) {
        std::vector<const char *> p;
        for (const auto &s : protocols)
            p.push_back(cstr(s));
        return set(mqtt_options_set_tls_alpn(o_, p.data(), p.size()), "tls_alpn");
    }
    options &tls_insecure_skip_verify(bool skip) {
        return set(mqtt_options_set_tls_insecure_skip_verify(o_, skip), "tls_insecure_skip_verify");
    }

  private:
    options &set(int rc, const char *op) {
        detail::check(rc, op);
        return *this;
    }
    static const char *cstr(const std::string &s) { return detail::cstr(s, "options"); }
    template <class T> static T narrow(long long v, const char *op) {
        if (v < 0 || static_cast<unsigned long long>(v) > std::numeric_limits<T>::max())
            throw error(MQTT5C_ERR_INVALID_ARGUMENT, std::string("mqtt5c: ") + op + ": value out of range");
        return static_cast<T>(v);
    }
    static uint32_t millis(std::chrono::milliseconds t, const char *op) { return narrow<uint32_t>(t.count(), op); }

    options(mqtt_options *o, bool owned) noexcept : o_(o), owned_(owned) {}

    mqtt_options *o_;
    bool owned_ = true;
};

/** The answer to an enhanced authentication challenge (client::on_auth). */
class auth_response {
  public:
    explicit auth_response(mqtt_auth_response *r) noexcept : r_(r) {}
    /** The Authentication Data to send back (copied). */
    void set_data(bytes data) {
        detail::check(mqtt_auth_response_set_data(r_, data.data, data.size), "auth_response set_data");
    }

  private:
    mqtt_auth_response *r_;
};

/* ---- Client ------------------------------------------------------------ */

namespace detail {
/**
 * A callable the C side calls through a stable user_data pointer (the slot
 * itself, owned by the client's state). Replacing the callable swaps a
 * shared_ptr under the lock; a running call holds its own reference, so
 * the old callable is destroyed after it returned, on whichever thread.
 */
template <class Sig> class slot {
  public:
    using fn = std::function<Sig>;
    void set(fn f) {
        auto p = f ? std::make_shared<fn>(std::move(f)) : nullptr;
        std::lock_guard<std::mutex> g(mu_);
        cur_.swap(p);
    } // the old one is released here, outside the lock
    std::shared_ptr<fn> get() const {
        std::lock_guard<std::mutex> g(mu_);
        return cur_;
    }
    void swap(std::shared_ptr<fn> &p) {
        std::lock_guard<std::mutex> g(mu_);
        cur_.swap(p);
    }

  private:
    mutable std::mutex mu_;
    std::shared_ptr<fn> cur_;
};

using message_fn = void(const message_view &);
using connection_fn = void(event, int);
using publish_fn = void(int, const properties_view &);
using pre_connect_fn = bool(std::string_view, unsigned, options &);
using auth_fn = int(int, std::string_view, std::optional<std::string_view>, auth_response &);
using log_fn = void(int, std::string_view);

/** A publish_async completion waiting for its callback. */
struct pending_publish {
    struct state *owner;
    std::function<publish_fn> done;
};

/** What the C callbacks' user_data point to; lives on the heap, moves with the client. */
struct state {
    slot<message_fn> on_message;
    slot<connection_fn> on_connection;
    slot<pre_connect_fn> on_pre_connect;
    slot<auth_fn> on_auth;
    slot<log_fn> on_log;

    std::mutex mu; // guards routes and pending
    /** One slot per filter ever given a handler: kept until the client dies,
     *  so a route the library may still call never points to freed memory. */
    std::map<std::string, std::unique_ptr<slot<message_fn>>> routes;
    std::unordered_map<pending_publish *, std::unique_ptr<pending_publish>> pending;

    slot<message_fn> &route(const std::string &filter) {
        std::lock_guard<std::mutex> g(mu);
        auto &s = routes[filter];
        if (!s)
            s = std::make_unique<slot<message_fn>>();
        return *s;
    }
    void clear_route(const std::string &filter) {
        std::shared_ptr<slot<message_fn>::fn> old;
        {
            std::lock_guard<std::mutex> g(mu);
            auto it = routes.find(filter);
            if (it == routes.end())
                return;
            it->second->swap(old);
        }
    }
    std::unique_ptr<pending_publish> take(pending_publish *p) {
        std::lock_guard<std::mutex> g(mu);
        auto it = pending.find(p);
        if (it == pending.end())
            return nullptr;
        auto owned = std::move(it->second);
        pending.erase(it);
        return owned;
    }
};

// The trampolines are noexcept: an exception leaving a callback terminates.
inline void message_trampoline(void *user_data, const mqtt_message *m) noexcept {
    auto f = static_cast<slot<message_fn> *>(user_data)->get();
    if (f)
        (*f)(message_view(m));
}
inline void connection_trampoline(void *user_data, int ev, int reason) noexcept {
    auto f = static_cast<slot<connection_fn> *>(user_data)->get();
    if (f)
        (*f)(static_cast<event>(ev), reason);
}
inline int pre_connect_trampoline(void *user_data, const char *url, unsigned attempt, mqtt_options *opts) noexcept {
    auto f = static_cast<slot<pre_connect_fn> *>(user_data)->get();
    if (!f)
        return 0;
    options borrowed = options::borrow(opts);
    return (*f)(url ? std::string_view(url) : std::string_view(), attempt, borrowed) ? 0 : 1;
}
inline int auth_trampoline(void *user_data, int reason, const char *method, const void *data, size_t len,
                           mqtt_auth_response *response) noexcept {
    auto f = static_cast<slot<auth_fn> *>(user_data)->get();
    if (!f)
        return 0x80;
    std::optional<std::string_view> d;
    if (data != nullptr)
        d = std::string_view(static_cast<const char *>(data), len);
    auth_response r(response);
    return (*f)(reason, method ? std::string_view(method) : std::string_view(), d, r);
}
inline void log_trampoline(void *user_data, int level, const char *line) noexcept {
    auto f = static_cast<slot<log_fn> *>(user_data)->get();
    if (f)
        (*f)(level, line ? std::string_view(line) : std::string_view());
}
inline void publish_trampoline(void *user_data, int result, const mqtt_properties *ack) noexcept {
    auto *p = static_cast<pending_publish *>(user_data);
    // Taken out of the state before the call: the callback may destroy the client.
    auto owned = p->owner->take(p);
    if (owned && owned->done)
        owned->done(result, properties_view(ack));
}
} // namespace detail

/**
 * An MQTT client: RAII owner of an `mqtt_client`, movable, not copyable.
 * Every method may be called from any thread at once and from inside the
 * client's callbacks (blocking ones included). See the top of this file
 * for errors, threads and lifetimes.
 */
class client {
  public:
    /** A disconnected client with these options (copied). */
    explicit client(const options &opts = options())
        : st_(std::make_unique<detail::state>()), c_(mqtt_client_new(opts.native())) {
        if (c_ == nullptr)
            detail::fail(MQTT5C_ERR_INTERNAL, "mqtt_client_new");
    }
    client(client &&o) noexcept : st_(std::move(o.st_)), c_(std::exchange(o.c_, nullptr)) {}
    client &operator=(client &&o) noexcept {
        if (this != &o) {
            reset();
            st_ = std::move(o.st_);
            c_ = std::exchange(o.c_, nullptr);
        }
        return *this;
    }
    client(const client &) = delete;
    client &operator=(const client &) = delete;
    /** Frees the C client (no callback runs after that), then the callables. */
    ~client() { reset(); }

    /** Closes the connection without DISCONNECT (the broker publishes the
     *  will) and frees everything now; the object is then empty. */
    void reset() noexcept {
        mqtt_client_free(std::exchange(c_, nullptr));
        st_.reset();
    }

    mqtt_client *native() const noexcept { return c_; }

    /** Connects ("mqtt://host:port", "mqtts://", "ws://", "wss://", "unix://"). */
    void connect(const std::string &url) { detail::check(mqtt_connect(c_, detail::cstr(url, "connect")), "connect"); }

    /** Sends DISCONNECT (reason 0x04: publish the will) and closes the connection. */
    void disconnect(int reason_code = 0, const properties *props = nullptr) {
        detail::check(mqtt_disconnect(c_, reason_code, detail::c_props(props)), "disconnect");
    }

    /**
     * Publishes and, for QoS 1/2, waits for the acknowledgement. Returns the
     * reason code (0, or 0x10 no matching subscribers); throws on failure
     * (a refusal >= 0x80, a timeout, ...).
     */
    int publish(const std::string &topic, bytes payload, int qos = MQTT5C_QOS0, bool retain = false,
                const properties *props = nullptr) {
        return detail::check(mqtt_publish(c_, detail::cstr(topic, "publish"), payload.data, payload.size, qos, retain,
                                          detail::c_props(props)),
                             "publish");
    }

    /**
     * Publishes without waiting for the acknowledgement; `done(result,
     * ack_properties)` is called once later on the callback thread (result:
     * test with mqtt5c::succeeded; ack_properties valid during the call).
     * Throws when the message could not be sent (then `done` is never called).
     */
    template <class F, class = std::enable_if_t<std::is_invocable_v<F &, int, const properties_view &>>>
    void publish_async(const std::string &topic, bytes payload, int qos, bool retain, F &&done,
                       const properties *props = nullptr) {
        detail::state &s = st();
        auto node = std::make_unique<detail::pending_publish>();
        node->owner = &s;
        node->done = std::forward<F>(done);
        detail::pending_publish *raw = node.get();
        {
            std::lock_guard<std::mutex> g(s.mu);
            s.pending.emplace(raw, std::move(node));
        }
        int rc = mqtt_publish_async(c_, detail::cstr(topic, "publish_async"), payload.data, payload.size, qos, retain,
                                    detail::c_props(props), &detail::publish_trampoline, raw);
        if (!succeeded(rc)) {
            std::string text = mqtt_last_error(); // before take() can touch anything
            s.take(raw);
            throw error(rc, "mqtt5c: publish_async" + (text.empty() ? std::string() : ": " + text));
        }
    }
    /** publish_async without a completion callback. */
    void publish_async(const std::string &topic, bytes payload, int qos = MQTT5C_QOS0, bool retain = false,
                       const properties *props = nullptr) {
        detail::check(mqtt_publish_async(c_, detail::cstr(topic, "publish_async"), payload.data, payload.size, qos, retain,
                                         detail::c_props(props), nullptr, nullptr),
                      "publish_async");
    }

    /** Subscribes; messages go to the message callback. Returns the granted QoS. */
    int subscribe(const std::string &filter, subscribe_options opts = subscribe_options(),
                  const properties *props = nullptr) {
        int rc = detail::check(
            mqtt_subscribe(c_, detail::cstr(filter, "subscribe"), opts.to_c(), detail::c_props(props)), "subscribe");
        st().clear_route(filter); // a handler route of this filter ended
        return rc;
    }

    /**
     * Subscribes and sends this subscription's messages to `handler`
     * (void(const message_view&)) instead of the message callback, until
     * the filter is unsubscribed or subscribed again. Returns the granted QoS.
     */
    template <class F, class = std::enable_if_t<std::is_invocable_v<F &, const message_view &>>>
    int subscribe(const std::string &filter, subscribe_options opts, F &&handler, const properties *props = nullptr) {
        const char *f = detail::cstr(filter, "subscribe");
        auto &route = st().route(filter);
        std::shared_ptr<std::function<detail::message_fn>> fn =
            std::make_shared<std::function<detail::message_fn>>(std::forward<F>(handler));
        route.swap(fn); // fn now holds the previous handler, if any
        int rc = mqtt_subscribe_cb(c_, f, opts.to_c(), detail::c_props(props), &detail::message_trampoline, &route);
        if (!succeeded(rc)) {
            std::string text = mqtt_last_error();
            route.swap(fn); // back to the previous handler
            throw error(rc, "mqtt5c: subscribe" + (text.empty() ? std::string() : ": " + text));
        }
        return rc;
    }

    /** Subscribes to several filters in one SUBSCRIBE; returns each filter's
     *  reason code (granted QoS or a refusal >= 0x80: not thrown). */
    std::vector<int> subscribe_many(const std::vector<std::pair<std::string, subscribe_options>> &subs,
                                    const properties *props = nullptr) {
        std::vector<const char *> filters;
        std::vector<int> opts;
        for (const auto &s : subs) {
            filters.push_back(detail::cstr(s.first, "subscribe_many"));
            opts.push_back(s.second.to_c());
        }
        std::vector<int> results(subs.size());
        int rc = mqtt_subscribe_many(c_, filters.data(), opts.data(), subs.size(), detail::c_props(props), results.data());
        if (rc < 0)
            detail::fail(rc, "subscribe_many");
        for (size_t i = 0; i < subs.size(); i++)
            if (succeeded(results[i]))
                st().clear_route(subs[i].first);
        return results;
    }

    /** Unsubscribes from several filters in one UNSUBSCRIBE; returns each
     *  filter's reason code (0, 0x11, or a failure >= 0x80: not thrown). */
    std::vector<int> unsubscribe_many(const std::vector<std::string> &filters, const properties *props = nullptr) {
        std::vector<const char *> f;
        for (const auto &s : filters)
            f.push_back(detail::cstr(s, "unsubscribe_many"));
        std::vector<int> results(filters.size());
        int rc = mqtt_unsubscribe_many(c_, f.data(), f.size(), detail::c_props(props), results.data());
        if (rc < 0)
            detail::fail(rc, "unsubscribe_many");
        for (size_t i = 0; i < filters.size(); i++)
            if (succeeded(results[i]))
                st().clear_route(filters[i]);
        return results;
    }

    /** Unsubscribes. Returns the reason code (0, or 0x11 no subscription existed). */
    int unsubscribe(const std::string &filter, const properties *props = nullptr) {
        int rc = detail::check(mqtt_unsubscribe(c_, detail::cstr(filter, "unsubscribe"), detail::c_props(props)),
                               "unsubscribe");
        st().clear_route(filter);
        return rc;
    }

    /**
     * Publishes a request (Response Topic and Correlation Data are added)
     * and waits for its response; timeout 0 is the operation timeout.
     */
    message request(const std::string &topic, bytes payload, int qos = MQTT5C_QOS1,
                    std::chrono::milliseconds timeout = std::chrono::milliseconds(0), const properties *props = nullptr) {
        if (timeout.count() < 0 || timeout.count() > static_cast<long long>(UINT32_MAX))
            throw error(MQTT5C_ERR_INVALID_ARGUMENT, "mqtt5c: request: timeout out of range");
        mqtt_message *response = nullptr;
        detail::check(mqtt_request(c_, detail::cstr(topic, "request"), payload.data, payload.size, qos,
                                   detail::c_props(props), static_cast<uint32_t>(timeout.count()), &response),
                      "request");
        return message(response);
    }

    /** Acknowledges a message with manual acknowledgement on (options::manual_ack). */
    void ack(uint64_t ack_id, int reason_code = 0) { detail::check(mqtt_ack(c_, ack_id, reason_code), "ack"); }
    void ack(const message_view &m, int reason_code = 0) { ack(m.ack_id(), reason_code); }

    /**
     * Sets the message callback: any callable taking `const message_view&`
     * (valid during the call; `copy()` it to keep it). nullptr removes it.
     */
    template <class F> void on_message(F &&f) {
        std::function<detail::message_fn> fn(std::forward<F>(f));
        set_callback(st().on_message, std::move(fn), [this](bool on) {
            return mqtt_set_message_callback(c_, on ? &detail::message_trampoline : nullptr, &st().on_message);
        });
    }

    /**
     * Sets the connection callback: any callable taking (mqtt5c::event,
     * int reason_code) (for event::reconnecting, the attempt number).
     * nullptr removes it.
     */
    template <class F> void on_connection(F &&f) {
        std::function<detail::connection_fn> fn(std::forward<F>(f));
        set_callback(st().on_connection, std::move(fn), [this](bool on) {
            return mqtt_set_connection_callback(c_, on ? &detail::connection_trampoline : nullptr, &st().on_connection);
        });
    }

    /**
     * Sets the callback run before every connection attempt (each server
     * of connect, each reconnection attempt, each redirection): a callable
     * bool(std::string_view url, unsigned attempt, mqtt5c::options &opts)
     * returning true to make the attempt, false to skip it. `opts` is the
     * client's own connect settings: credentials(), auth() and
     * connect_properties() set there hold for this attempt and the later
     * ones (fresh tokens); other setters are ignored. It may block; it must
     * not call connect() or disconnect() (they return invalid_argument
     * there). nullptr removes it.
     */
    template <class F> void on_pre_connect(F &&f) {
        std::function<detail::pre_connect_fn> fn(std::forward<F>(f));
        set_callback(st().on_pre_connect, std::move(fn), [this](bool on) {
            return mqtt_set_pre_connect_callback(c_, on ? &detail::pre_connect_trampoline : nullptr,
                                                 &st().on_pre_connect);
        });
    }

    /**
     * Sets the enhanced authentication callback (options::auth sets the
     * method): int(int reason_code, std::string_view method,
     * std::optional<std::string_view> data, mqtt5c::auth_response &r).
     * reason_code 0x18: a challenge, answer with r.set_data(); 0x00: the
     * success, with the broker's final data or nullopt. Return 0 to go on,
     * else the exchange ends with that reason code. Runs on a library
     * thread while connect()/reauthenticate() waits. nullptr removes it.
     */
    template <class F> void on_auth(F &&f) {
        std::function<detail::auth_fn> fn(std::forward<F>(f));
        set_callback(st().on_auth, std::move(fn), [this](bool on) {
            return mqtt_set_auth_callback(c_, on ? &detail::auth_trampoline : nullptr, &st().on_auth);
        });
    }

    /**
     * Sets the log callback: void(int level, std::string_view line) for the
     * client's diagnostic lines at `level` (MQTT5C_LOG_ERROR to
     * MQTT5C_LOG_DEBUG) and more severe; the line is valid during the call.
     * Runs on the callback pool, in order with the other callbacks, never on
     * the socket reader (see mqtt_set_log_callback). nullptr removes it.
     */
    template <class F> void on_log(F &&f, int level = MQTT5C_LOG_INFO) {
        std::function<detail::log_fn> fn(std::forward<F>(f));
        set_callback(st().on_log, std::move(fn), [this, level](bool on) {
            return mqtt_set_log_callback(c_, on ? &detail::log_trampoline : nullptr, &st().on_log, nullptr, level);
        });
    }

    /** Re-authenticates on the live connection (enhanced authentication). */
    void reauthenticate(bytes data, const properties *props = nullptr) {
        detail::check(mqtt_reauthenticate(c_, data.data, data.size, detail::c_props(props)), "reauthenticate");
    }

    bool is_connected() const noexcept { return mqtt_is_connected(c_); }
    bool session_present() const noexcept { return mqtt_session_present(c_); }
    /** The client identifier in use (the assigned one after connect). */
    std::string client_id() const {
        int n = detail::check(mqtt_client_get_id(c_, nullptr, 0), "client_id");
        std::string id(static_cast<size_t>(n) + 1, '\0');
        n = detail::check(mqtt_client_get_id(c_, &id[0], id.size()), "client_id");
        id.resize(static_cast<size_t>(n));
        return id;
    }
    /** The last CONNACK's properties, or nullopt before any. */
    std::optional<properties> connack_properties() const {
        mqtt_properties *p = mqtt_connack_properties(c_);
        if (p == nullptr)
            return std::nullopt;
        return properties(p);
    }
    /** The properties of the server's DISCONNECT that ended the last connection, or nullopt. */
    std::optional<properties> disconnect_properties() const {
        mqtt_properties *p = mqtt_disconnect_properties(c_);
        if (p == nullptr)
            return std::nullopt;
        return properties(p);
    }
    /** The MQTT version of the live connection (MQTT_PROTOCOL_V5 or _V311). */
    int protocol_version() const { return detail::check(mqtt_client_protocol_version(c_), "protocol_version"); }
    /** A counter (MQTT5C_STAT_*). */
    uint64_t stat(int which) const {
        uint64_t v = 0;
        detail::check(mqtt_client_get_stat(c_, which, &v), "stat");
        return v;
    }

    /** All counters (mqtt_client_get_stats): messages and bytes by QoS, reconnects, in flight, dropped. */
    mqtt5c_stats stats() const {
        mqtt5c_stats s{};
        detail::check(mqtt_client_get_stats(c_, &s, sizeof s), "stats");
        return s;
    }

  private:
    detail::state &st() const {
        if (!st_)
            throw error(MQTT5C_ERR_INVALID_ARGUMENT, "mqtt5c: use of a moved-from or reset client");
        return *st_;
    }

    template <class Sig, class Set> void set_callback(detail::slot<Sig> &slot, std::function<Sig> fn, Set c_set) {
        if (!fn) {
            detail::check(c_set(false), "set callback");
            slot.set(nullptr);
            return;
        }
        slot.set(std::move(fn));
        // The C user_data is the slot itself, stable for the client's life.
        detail::check(c_set(true), "set callback");
    }

    // Declared before c_ so that it is destroyed after; reset() frees c_ first anyway.
    std::unique_ptr<detail::state> st_;
    mqtt_client *c_;
};

/** Sets the number of runtime worker threads; before the first client. */
inline void global_init(unsigned worker_threads) {
    detail::check(mqtt_global_init(worker_threads), "global_init");
}

/**
 * mqtt_global_cleanup: once every client is destroyed, stops every thread of
 * the library and waits until they have exited (before a dlclose, say); the
 * next client starts them again. Throws mqtt5c::error with
 * errc::bad_state while a client lives (nothing is stopped) or from a
 * callback, with MQTT5C_ERR_TIMEOUT when a runtime thread stayed busy 30 s.
 */
inline void global_cleanup() { detail::check(mqtt_global_cleanup(), "global_cleanup"); }

/** The library version at run time ("mqtt5c X.Y.Z"); MQTT5C_VERSION is the header's. */
inline std::string version() { return mqtt_version(); }

} // namespace mqtt5c

namespace std {
template <> struct is_error_code_enum<mqtt5c::errc> : true_type {};
} // namespace std

#endif // MQTT5C_HPP

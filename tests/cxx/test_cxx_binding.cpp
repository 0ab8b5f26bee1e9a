// The C++ binding (include/mqtt5c.hpp) against a mosquitto of its own,
// driven by tests/c_api.rs (compiled with -std=c++17 -Wall -Wextra -Werror,
// run under valgrind by `make test`): round trips at QoS 0/1/2 with
// properties and retain, errors as mqtt5c::error with the library's text,
// publish from inside a callback, publish_async completions, request and
// response, the will, destruction while messages flow (also from inside a
// callback), moving clients, and the pre-connect callback supplying the
// credentials this broker requires.
// TLS (server and mutual) through the options, and automatic reconnection
// across a broker restart with the connection events.
// broker-passwd: cxxuser cxxpass
// needs: tls
// needs: broker-control
#include "mqtt5c.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace {

int failures = 0;

#define CHECK(cond, ...)                                                                                       \
    do {                                                                                                       \
        if (!(cond)) {                                                                                         \
            std::fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond);                        \
            std::fprintf(stderr, __VA_ARGS__);                                                                 \
            std::fprintf(stderr, "\n");                                                                        \
            failures++;                                                                                        \
        }                                                                                                      \
    } while (0)

std::chrono::milliseconds patience() {
    const char *v = std::getenv("MQTT5C_VALGRIND");
    bool slow = v && *v && std::strcmp(v, "0") != 0;
    return std::chrono::milliseconds(slow ? 300000 : 30000);
}

std::string url;

/// Received messages (owned copies), waited for with a deadline.
class inbox {
  public:
    void push(const mqtt5c::message_view &m) {
        std::lock_guard<std::mutex> g(mu_);
        q_.push_back(m.copy());
        cv_.notify_all();
    }
    std::optional<mqtt5c::message> pop() {
        std::unique_lock<std::mutex> g(mu_);
        if (!cv_.wait_for(g, patience(), [&] { return !q_.empty(); }))
            return std::nullopt;
        mqtt5c::message m = std::move(q_.front());
        q_.pop_front();
        return m;
    }
    size_t size() {
        std::lock_guard<std::mutex> g(mu_);
        return q_.size();
    }

  private:
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<mqtt5c::message> q_;
};

/// A counter one can wait on.
class counter {
  public:
    void add(long n = 1) {
        std::lock_guard<std::mutex> g(mu_);
        n_ += n;
        cv_.notify_all();
    }
    bool wait_for(long target) {
        std::unique_lock<std::mutex> g(mu_);
        return cv_.wait_for(g, patience(), [&] { return n_ >= target; });
    }
    long get() {
        std::lock_guard<std::mutex> g(mu_);
        return n_;
    }

  private:
    std::mutex mu_;
    std::condition_variable cv_;
    long n_ = 0;
};

mqtt5c::client connected(const std::string &id, mqtt5c::options opts = mqtt5c::options()) {
    opts.client_id(id).credentials("cxxuser", "cxxpass");
    mqtt5c::client c(opts);
    c.connect(url);
    return c;
}

void round_trip() {
    inbox in;
    mqtt5c::client sub = connected("cxx-rt-sub");
    sub.on_message([&in](const mqtt5c::message_view &m) { in.push(m); });
    CHECK(sub.subscribe("cxx/rt/#", mqtt5c::qos2) == 2, "granted QoS 2");
    mqtt5c::client pub = connected("cxx-rt-pub");

    for (int q = 0; q <= 2; q++) {
        mqtt5c::properties props;
        props.add_user("k", "v" + std::to_string(q))
            .add_user("k2", "second")
            .content_type("text/plain")
            .response_topic("cxx/reply")
            .correlation_data(std::string("\0id", 3))
            .message_expiry_interval(3600)
            .payload_format_utf8();
        std::string payload = "payload " + std::to_string(q);
        int rc = pub.publish("cxx/rt/" + std::to_string(q), payload, q, false, &props);
        CHECK(mqtt5c::succeeded(rc), "publish QoS %d: %d", q, rc);
        auto m = in.pop();
        CHECK(m.has_value(), "no message at QoS %d", q);
        if (!m)
            continue;
        CHECK(m->topic() == "cxx/rt/" + std::to_string(q), "topic %.*s", (int)m->topic().size(), m->topic().data());
        CHECK(m->payload() == payload, "payload");
        CHECK(m->qos() == q, "qos %d != %d", m->qos(), q);
        CHECK(!m->retain(), "not retained");
        auto p = m->props();
        CHECK(p.user_property("k") == "v" + std::to_string(q), "user property k");
        auto users = p.user_properties();
        CHECK(users.size() == 2 && users[1].first == "k2" && users[1].second == "second", "user properties in order");
        CHECK(p.content_type() == "text/plain", "content type");
        CHECK(p.response_topic() == "cxx/reply", "response topic");
        CHECK(p.correlation_data() == std::string("\0id", 3), "binary correlation data with a NUL");
        auto expiry = p.message_expiry_interval();
        CHECK(expiry && *expiry > 3000 && *expiry <= 3600, "message expiry");
        CHECK(p.get_int(mqtt5c::prop::payload_format_indicator) == 1u, "payload format");
        CHECK(p.count(mqtt5c::prop::subscription_identifier) == 0, "no subscription identifier");
        // The copy outlives the callback and is independent of the message.
        mqtt5c::properties kept = p.copy();
        kept.remove(mqtt5c::prop::user_property);
        CHECK(kept.count(mqtt5c::prop::user_property) == 0 && p.count(mqtt5c::prop::user_property) == 2, "copy");
    }

    // Retain, an empty payload, and the subscription options.
    CHECK(pub.publish("cxx/retained", "kept", mqtt5c::qos1, true) == 0x10, "retained publish, no subscriber yet");
    mqtt5c::subscribe_options so(mqtt5c::qos1);
    so.retain_as_published = true;
    CHECK(sub.subscribe("cxx/retained", so) == 1, "granted QoS 1");
    auto r = in.pop();
    CHECK(r && r->retain() && r->payload() == "kept", "retained message on subscribe");
    CHECK(pub.publish("cxx/retained", "", mqtt5c::qos1, true) == 0, "clear retained (the subscriber gets it)");
    r = in.pop();
    CHECK(r && r->payload().empty(), "empty payload");
    CHECK(sub.unsubscribe("cxx/retained") == 0, "unsubscribe");
    CHECK(sub.unsubscribe("cxx/never") == 0x11, "0x11 no subscription existed is returned, not thrown");

    // No subscriber: 0x10 is a success, not an exception.
    CHECK(pub.publish("cxx/nobody", "x", mqtt5c::qos1) == 0x10, "no matching subscribers");

    auto connack = sub.connack_properties();
    CHECK(connack.has_value(), "CONNACK properties");
    CHECK(sub.client_id() == "cxx-rt-sub", "client id %s", sub.client_id().c_str());
    CHECK(sub.is_connected() && !sub.session_present(), "connected, no session");

    auto many = sub.subscribe_many({{"cxx/m/a", mqtt5c::qos0}, {"cxx/m/b", mqtt5c::qos2}});
    CHECK(many.size() == 2 && many[0] == 0 && many[1] == 2, "subscribe_many");
    auto gone = sub.unsubscribe_many({"cxx/m/a", "cxx/m/b", "cxx/m/never"});
    CHECK(gone.size() == 3 && gone[0] == 0 && gone[1] == 0 && gone[2] == 0x11, "unsubscribe_many");
    CHECK(sub.protocol_version() == MQTT_PROTOCOL_V5, "protocol version");
    sub.disconnect();
    pub.disconnect();
}

/// The log callback as a lambda (lines at INFO, none more verbose) and
/// the counters of known traffic.
void log_and_stats() {
    std::mutex mu;
    std::vector<std::pair<int, std::string>> lines;
    counter connected_lines;
    mqtt5c::options opts;
    opts.client_id("cxx-log").credentials("cxxuser", "cxxpass");
    mqtt5c::client c(opts);
    c.on_log(
        [&](int level, std::string_view line) {
            std::lock_guard<std::mutex> g(mu);
            lines.emplace_back(level, std::string(line));
            if (level == MQTT5C_LOG_INFO && line.find("connected to") != std::string_view::npos)
                connected_lines.add();
        },
        MQTT5C_LOG_INFO);
    c.connect(url);
    CHECK(connected_lines.wait_for(1), "no INFO line for the connection");
    for (int i = 0; i < 2; i++)
        c.publish("cxx/stats", "12345", mqtt5c::qos1);
    c.publish("cxx/stats", "123", mqtt5c::qos0);
    mqtt5c_stats st = c.stats();
    CHECK(st.size == sizeof st, "stats size %llu", (unsigned long long)st.size);
    CHECK(st.messages_sent[1] == 2 && st.payload_bytes_sent[1] == 10, "QoS 1 sent: %llu, %llu bytes",
          (unsigned long long)st.messages_sent[1], (unsigned long long)st.payload_bytes_sent[1]);
    CHECK(st.messages_sent[0] == 1 && st.payload_bytes_sent[0] == 3, "QoS 0 sent: %llu",
          (unsigned long long)st.messages_sent[0]);
    c.on_log(nullptr);
    std::lock_guard<std::mutex> g(mu);
    for (auto &l : lines) {
        CHECK(l.first >= MQTT5C_LOG_ERROR && l.first <= MQTT5C_LOG_INFO, "level %d: %s", l.first, l.second.c_str());
        CHECK(l.second.find("cxxpass") == std::string::npos, "the password in a line: %s", l.second.c_str());
    }
}

void errors() {
    mqtt5c::client c = connected("cxx-errors");
    bool thrown = false;
    try {
        c.publish("bad/#/topic", "x", mqtt5c::qos1);
    } catch (const mqtt5c::error &e) {
        thrown = true;
        CHECK(e.code() == mqtt5c::errc::invalid_argument, "code %d", e.rc());
        CHECK(e.code().category() == mqtt5c::category() && std::string(e.code().category().name()) == "mqtt5c",
              "category");
        CHECK(e.rc() == MQTT5C_ERR_INVALID_ARGUMENT, "rc");
        std::string what = e.what();
        CHECK(what.find("publish") != std::string::npos && what.find("#") != std::string::npos,
              "what() names the operation and the library's text: %s", what.c_str());
    }
    CHECK(thrown, "a bad topic throws");
    CHECK(c.is_connected(), "the connection survives a bad argument");

    thrown = false;
    try {
        c.publish(std::string("a\0b", 3), "x");
    } catch (const std::system_error &e) { // catchable as the standard type
        thrown = e.code() == mqtt5c::errc::invalid_argument;
    }
    CHECK(thrown, "a NUL inside a string is refused");

    thrown = false;
    try {
        mqtt5c::options().keep_alive(std::chrono::seconds(100000));
    } catch (const mqtt5c::error &e) {
        thrown = e.code() == mqtt5c::errc::invalid_argument;
    }
    CHECK(thrown, "an option out of range");

    // Refused by the broker at connect time: a reason code >= 0x80 is the code.
    mqtt5c::client dup = mqtt5c::client(mqtt5c::options().client_id("cxx-errors"));
    thrown = false;
    try {
        dup.connect("mqtt://127.0.0.1:1"); // nothing listens on port 1
    } catch (const mqtt5c::error &e) {
        thrown = e.rc() < 0 && std::string(e.what()).size() > std::strlen("mqtt5c: connect: ");
        CHECK(thrown, "connect error: %d %s", e.rc(), e.what());
    }
    CHECK(thrown, "connect to a closed port throws");

    // A refusal by the broker: its reason code is the error code.
    mqtt5c::client refused(mqtt5c::options().client_id("cxx-refused").credentials("cxxuser", "wrong"));
    thrown = false;
    try {
        refused.connect(url);
    } catch (const mqtt5c::error &e) {
        thrown = true;
        // mosquitto answers a wrong password with 0x87 (not authorized), others with 0x86.
        CHECK((e.rc() == 0x86 || e.rc() == 0x87) && e.code() == mqtt5c::make_error_code(e.rc()), "bad password: %d %s",
              e.rc(), e.what());
        CHECK(std::string(e.what()).find(mqtt_strerror(e.rc())) != std::string::npos, "what(): %s", e.what());
        CHECK(std::string(e.what()).find("connect") != std::string::npos, "what(): %s", e.what());
    }
    CHECK(thrown, "a refused connect throws");

    std::error_code ec = mqtt5c::make_error_code(0x87);
    CHECK(ec.message() == mqtt_strerror(0x87), "message is mqtt_strerror");
    CHECK(mqtt5c::succeeded(0x10) && mqtt5c::succeeded(2) && !mqtt5c::succeeded(0x80) &&
              !mqtt5c::succeeded(MQTT5C_ERR_TIMEOUT),
          "succeeded()");
    c.disconnect();
}

/// A lambda publishes at QoS 1 from inside the callback (a blocking call).
void publish_from_callback() {
    inbox pongs;
    mqtt5c::client echo = connected("cxx-echo");
    std::atomic<int> bad{0};
    echo.subscribe("cxx/ping", mqtt5c::qos1, [&echo, &bad](const mqtt5c::message_view &m) {
        try {
            int rc = echo.publish("cxx/pong", std::string(m.payload()) + "!", mqtt5c::qos1);
            if (!mqtt5c::succeeded(rc))
                bad++;
        } catch (const mqtt5c::error &) {
            bad++;
        }
    });
    mqtt5c::client peer = connected("cxx-peer");
    peer.on_message([&pongs](const mqtt5c::message_view &m) { pongs.push(m); });
    peer.subscribe("cxx/pong", mqtt5c::qos1);
    const int n = 50;
    for (int i = 0; i < n; i++)
        peer.publish("cxx/ping", std::to_string(i), mqtt5c::qos1);
    for (int i = 0; i < n; i++) {
        auto m = pongs.pop();
        CHECK(m && m->payload() == std::to_string(i) + "!", "pong %d in order", i);
        if (!m)
            break;
    }
    CHECK(bad == 0, "publishes from the callback failed: %d", bad.load());

    // publish_async: every completion once, with a success result.
    counter done;
    std::atomic<int> failed{0};
    for (int i = 0; i < 100; i++)
        peer.publish_async("cxx/async", "x", i % 3, false, [&](int rc, const mqtt5c::properties_view &ack) {
            if (!mqtt5c::succeeded(rc) || !ack)
                failed++;
            done.add();
        });
    CHECK(done.wait_for(100), "publish_async completions: %ld", done.get());
    CHECK(failed == 0, "failed completions: %d", failed.load());

    // Request and response: the responder answers from its handler.
    // (A callback must not throw: this one catches what the publish may
    // throw once main disconnects the client.)
    echo.subscribe("cxx/service", mqtt5c::qos1, [&echo](const mqtt5c::message_view &m) noexcept {
        try {
            auto p = m.props();
            mqtt5c::properties reply;
            reply.correlation_data(*p.correlation_data());
            echo.publish(*p.response_topic(), "answer to " + std::string(m.payload()), mqtt5c::qos0, false, &reply);
        } catch (const mqtt5c::error &e) {
            std::fprintf(stderr, "responder: %s\n", e.what());
        }
    });
    mqtt5c::message answer = peer.request("cxx/service", "question", mqtt5c::qos1, std::chrono::seconds(30));
    CHECK(answer.payload() == "answer to question", "response");
    echo.disconnect();
    peer.disconnect();
}

/// The will of a client reset() without DISCONNECT reaches a subscriber.
void will() {
    inbox in;
    mqtt5c::client watcher = connected("cxx-watcher");
    watcher.on_message([&in](const mqtt5c::message_view &m) { in.push(m); });
    watcher.subscribe("cxx/will", mqtt5c::qos1);
    mqtt5c::properties wp;
    wp.add_user("why", "gone");
    mqtt5c::client dying =
        connected("cxx-dying", std::move(mqtt5c::options().will("cxx/will", "bye", mqtt5c::qos1, false, &wp)));
    dying.reset();
    CHECK(!dying.native(), "reset empties the client");
    auto m = in.pop();
    CHECK(m && m->payload() == "bye" && m->props().user_property("why") == "gone", "will");
    watcher.disconnect();
}

/// Clients destroyed while messages flow into their callbacks, with
/// publish_async completions outstanding; one destroys itself from inside
/// its callback. valgrind checks no callable leaks or is used after free.
void destroy_while_flowing() {
    std::atomic<bool> stop{false};
    mqtt5c::client flood = connected("cxx-flood");
    std::thread t([&] {
        for (int i = 0; !stop; i++) {
            try {
                flood.publish_async("cxx/flood", std::to_string(i), i % 2, false,
                                    [](int, const mqtt5c::properties_view &) {});
            } catch (const mqtt5c::error &) {
            }
        }
    });
    for (int round = 0; round < 3; round++) {
        counter got;
        {
            auto c = std::make_unique<mqtt5c::client>(connected("cxx-victim"));
            std::string captured(1000, 'x'); // a capture that leaks if the callable does
            c->on_message([&got, captured](const mqtt5c::message_view &) { got.add(); });
            c->on_connection([captured](mqtt5c::event, int) {});
            c->subscribe("cxx/flood", mqtt5c::qos1);
            CHECK(got.wait_for(20), "messages flow");
        } // destroyed here with messages queued
    }

    // Destroyed from inside its own message callback (main no longer
    // touches it once the trigger is published).
    counter freed;
    auto self = std::make_unique<mqtt5c::client>(connected("cxx-self"));
    std::string captured(1000, 'y');
    self->on_message([&self, &freed, captured](const mqtt5c::message_view &m) {
        self.reset();
        freed.add(static_cast<long>(m.topic().size())); // m stays valid until the callback returns
    });
    self->subscribe("cxx/self", mqtt5c::qos1);
    flood.publish("cxx/self", "go", mqtt5c::qos1);
    CHECK(freed.wait_for(1), "freed from its callback");

    stop = true;
    t.join();
    // flood destroyed at scope end with completions possibly outstanding.
}

/// The pre-connect callback supplies the credentials for each attempt, or
/// skips it.
void pre_connect() {
    counter attempts;
    std::string seen_url;
    mqtt5c::client c(mqtt5c::options().client_id("cxx-preconnect"));
    c.on_pre_connect([&](std::string_view u, unsigned attempt, mqtt5c::options &opts) {
        seen_url = std::string(u);
        opts.credentials("cxxuser", "cxxpass");
        attempts.add(attempt == 1 ? 1 : 100);
        return true;
    });
    c.connect(url);
    CHECK(attempts.get() == 1, "one attempt, numbered 1: %ld", attempts.get());
    CHECK(seen_url.find(url.substr(url.rfind(':'))) != std::string::npos, "url %s", seen_url.c_str());
    c.disconnect();

    c.on_pre_connect([](std::string_view, unsigned, mqtt5c::options &) { return false; });
    bool thrown = false;
    try {
        c.connect(url);
    } catch (const mqtt5c::error &e) {
        thrown = e.code() == mqtt5c::errc::not_connected;
    }
    CHECK(thrown, "every attempt skipped: not_connected");
    c.on_pre_connect(nullptr);
}

const char *env(const char *name) {
    const char *v = std::getenv(name);
    if (!v) {
        std::fprintf(stderr, "%s not set by the driver\n", name);
        std::exit(2);
    }
    return v;
}

/// TLS options: the test CA, a wrong CA (errc::tls with the text), mutual TLS.
void tls() {
    const std::string tls_url = std::string("mqtts://127.0.0.1:") + env("MQTT_TEST_TLS_PORT");
    const std::string mtls_url = std::string("mqtts://localhost:") + env("MQTT_TEST_MTLS_PORT");
    inbox in;
    mqtt5c::client c(mqtt5c::options().client_id("cxx-tls").credentials("cxxuser", "cxxpass").tls_ca_file(
        env("MQTT_TEST_CAFILE")));
    c.on_message([&in](const mqtt5c::message_view &m) { in.push(m); });
    c.connect(tls_url);
    c.subscribe("cxx/tls", mqtt5c::qos1);
    c.publish("cxx/tls", "secret", mqtt5c::qos1);
    auto m = in.pop();
    CHECK(m && m->payload() == "secret", "round trip over TLS");
    c.disconnect();

    mqtt5c::client wrong(mqtt5c::options().client_id("cxx-tls-wrong").tls_ca_file(env("MQTT_TEST_OTHER_CAFILE")));
    bool thrown = false;
    try {
        wrong.connect(tls_url);
    } catch (const mqtt5c::error &e) {
        thrown = e.code() == mqtt5c::errc::tls;
        CHECK(thrown && std::string(e.what()).find("connect: ") != std::string::npos, "%d %s", e.rc(), e.what());
    }
    CHECK(thrown, "an unknown issuer is errc::tls");

    mqtt5c::client mutual(mqtt5c::options()
                              .client_id("cxx-mtls")
                              .credentials("cxxuser", "cxxpass")
                              .tls_ca_file(env("MQTT_TEST_CAFILE"))
                              .tls_client_cert(env("MQTT_TEST_CLIENT_CERT"), env("MQTT_TEST_CLIENT_KEY")));
    mutual.connect(mtls_url);
    CHECK(mutual.is_connected(), "mutual TLS");
    mutual.disconnect();
}

/// Sends a command to the driver's broker control socket; true on "ok".
bool broker_control(const std::string &command) {
    const char *path = env("MQTT_TEST_BROKER_CONTROL");
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path, sizeof addr.sun_path - 1);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    std::string reply;
    if (fd >= 0 && connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0) {
        std::string line = command + "\n";
        if (write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size())) {
            char buf[32];
            ssize_t n;
            while (reply.find('\n') == std::string::npos && (n = read(fd, buf, sizeof buf)) > 0)
                reply.append(buf, static_cast<size_t>(n));
        }
    }
    if (fd >= 0)
        close(fd);
    return reply.rfind("ok\n", 0) == 0;
}

/// Automatic reconnection: the connection events of a broker restart, and
/// a QoS 1 publish made while the broker is down rides it out.
void reconnect() {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<mqtt5c::event> events;
    mqtt5c::client c(mqtt5c::options()
                         .client_id("cxx-reconnect")
                         .credentials("cxxuser", "cxxpass")
                         .auto_reconnect(std::chrono::milliseconds(100), std::chrono::milliseconds(500))
                         .operation_timeout(patience()));
    c.on_connection([&](mqtt5c::event e, int) {
        std::lock_guard<std::mutex> g(mu);
        events.push_back(e);
        cv.notify_all();
    });
    auto count = [&](mqtt5c::event e) {
        long n = 0;
        for (auto x : events)
            n += x == e;
        return n;
    };
    auto wait_count = [&](mqtt5c::event e, long n) {
        std::unique_lock<std::mutex> g(mu);
        return cv.wait_for(g, patience(), [&] { return count(e) >= n; });
    };
    c.connect(url);
    CHECK(wait_count(mqtt5c::event::connected, 1), "connected");
    CHECK(broker_control("stop"), "broker stopped");
    CHECK(wait_count(mqtt5c::event::disconnected, 1), "disconnected event");
    std::thread restart([] { broker_control("start"); });
    int rc = c.publish("cxx/reconnect", "queued", mqtt5c::qos1); // waits for the new connection
    restart.join();
    CHECK(mqtt5c::succeeded(rc), "publish across the restart: %d", rc);
    CHECK(wait_count(mqtt5c::event::connected, 2), "connected again");
    CHECK(wait_count(mqtt5c::event::reconnecting, 1), "reconnecting event");
    c.disconnect();
}

/// A moved client keeps its callbacks; a moved-from one owns nothing.
void move_client() {
    inbox in;
    counter connects;
    mqtt5c::client a(mqtt5c::options().client_id("cxx-move").credentials("cxxuser", "cxxpass"));
    a.on_message([&in](const mqtt5c::message_view &m) { in.push(m); });
    a.on_connection([&connects](mqtt5c::event e, int) {
        if (e == mqtt5c::event::connected)
            connects.add();
    });
    a.connect(url);
    CHECK(connects.wait_for(1), "connected event");
    mqtt5c::client b(std::move(a));
    CHECK(a.native() == nullptr && b.native() != nullptr, "moved");
    bool thrown = false;
    try {
        a.publish("x", "y");
    } catch (const mqtt5c::error &e) {
        thrown = e.code() == mqtt5c::errc::invalid_argument;
    }
    CHECK(thrown, "a moved-from client throws");
    b.subscribe("cxx/move", mqtt5c::qos1);
    b.publish("cxx/move", "1", mqtt5c::qos1);
    auto m = in.pop();
    CHECK(m && m->payload() == "1", "message through a moved client");

    std::vector<mqtt5c::client> all;
    all.push_back(std::move(b));
    all.emplace_back(mqtt5c::options().client_id("cxx-move-2"));
    all.reserve(16); // reallocation moves the clients again
    all[0].publish("cxx/move", "2", mqtt5c::qos1);
    m = in.pop();
    CHECK(m && m->payload() == "2", "message after the vector moved it");

    mqtt5c::client c = connected("cxx-move-3");
    c = std::move(all[0]); // frees cxx-move-3, takes cxx-move
    c.publish("cxx/move", "3", mqtt5c::qos1);
    m = in.pop();
    CHECK(m && m->payload() == "3", "message after move assignment");
    c.disconnect();

    mqtt5c::message owned = std::move(*m);
    mqtt5c::message other;
    other = std::move(owned);
    CHECK(other.payload() == "3" && !owned, "message moved");
}

/// global_cleanup() refuses while a client lives and works once it is
/// destroyed; a client made afterwards connects again (runs last: no other
/// client lives).
void cleanup() {
    {
        mqtt5c::client c = connected("cxx-cleanup");
        bool refused = false;
        try {
            mqtt5c::global_cleanup();
        } catch (const mqtt5c::error &e) {
            refused = e.code() == mqtt5c::errc::bad_state;
            CHECK(std::string(e.what()).find("global_cleanup") != std::string::npos, "what(): %s", e.what());
        }
        CHECK(refused, "global_cleanup with a live client throws bad_state");
        CHECK(c.is_connected(), "the refused cleanup stopped nothing");
        c.disconnect();
    }
    bool ok = true;
    try {
        mqtt5c::global_cleanup();
    } catch (const mqtt5c::error &e) {
        ok = false;
        std::fprintf(stderr, "global_cleanup: %s\n", e.what());
    }
    CHECK(ok, "global_cleanup once every client is gone");
    mqtt5c::client again = connected("cxx-after-cleanup");
    CHECK(again.is_connected(), "a client after global_cleanup connects");
    again.disconnect();
}

} // namespace

int main(int argc, char **argv) {
    const char *port = argc > 1 ? argv[1] : std::getenv("MQTT_TEST_PORT");
    if (!port) {
        std::fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    url = std::string("mqtt://127.0.0.1:") + port;
    try {
        round_trip();
        log_and_stats();
        errors();
        publish_from_callback();
        will();
        pre_connect();
        tls();
        reconnect();
        destroy_while_flowing();
        move_client();
        cleanup();
    } catch (const std::exception &e) {
        std::fprintf(stderr, "unexpected exception: %s\n", e.what());
        return 1;
    }
    if (failures) {
        std::fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    std::printf("C++ binding: all checks passed (%s)\n", mqtt5c::version().c_str());
    return 0;
}

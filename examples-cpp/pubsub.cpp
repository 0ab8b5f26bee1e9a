// pubsub: the C++ binding (include/mqtt5c.hpp) in one page.
//
//   pubsub [url] [topic]     (default mqtt://localhost:1883, mqtt5c/example)
//
// Subscribes to `topic` with a lambda, publishes three messages to it at
// QoS 0, 1 and 2 with v5 properties, waits until all three came back (the
// callbacks run on a library thread: main waits on a condition variable,
// there is no loop to run), then disconnects. Errors are exceptions
// (mqtt5c::error, code() in mqtt5c::category(), what() with the library's
// text). Exit status: 0 all three received, 1 error or timeout.
#include <mqtt5c.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>

int main(int argc, char **argv) {
    const std::string url = argc > 1 ? argv[1] : "mqtt://localhost:1883";
    const std::string topic = argc > 2 ? argv[2] : "mqtt5c/example";

    std::mutex mu;
    std::condition_variable cv;
    int received = 0;

    try {
        mqtt5c::client client(mqtt5c::options()
                                  .keep_alive(std::chrono::seconds(30))
                                  .auto_reconnect(std::chrono::milliseconds(500), std::chrono::seconds(30)));

        client.on_connection([](mqtt5c::event e, int reason) {
            std::printf("connection event %d (reason %d)\n", static_cast<int>(e), reason);
        });
        client.connect(url);
        // The handler runs on a library thread, one message at a time; it
        // may call the client too, blocking calls included. `m` is valid
        // during the call only (m.copy() keeps it).
        client.subscribe(topic, mqtt5c::qos2, [&](const mqtt5c::message_view &m) {
            auto who = m.props().user_property("sender");
            std::printf("%.*s [QoS %d, from %s]: %.*s\n", static_cast<int>(m.topic().size()), m.topic().data(),
                        m.qos(), who ? who->c_str() : "?", static_cast<int>(m.payload().size()), m.payload().data());
            std::lock_guard<std::mutex> g(mu);
            received++;
            cv.notify_all();
        });

        mqtt5c::properties props;
        props.add_user("sender", "pubsub.cpp").content_type("text/plain");
        for (int qos = 0; qos <= 2; qos++) {
            // Returns the reason code: 0, or 0x10 (no matching subscribers),
            // both successes; a failure throws.
            int rc = client.publish(topic, "hello at QoS " + std::to_string(qos), qos, false, &props);
            std::printf("published at QoS %d: %s\n", qos, mqtt_strerror(rc));
        }

        std::unique_lock<std::mutex> lock(mu);
        bool all = cv.wait_for(lock, std::chrono::seconds(10), [&] { return received == 3; });
        lock.unlock();
        client.disconnect();
        if (!all) {
            std::fprintf(stderr, "pubsub: %d of 3 messages came back\n", received);
            return 1;
        }
        return 0;
    } catch (const mqtt5c::error &e) {
        std::fprintf(stderr, "pubsub: %s (code %d)\n", e.what(), e.rc());
        return 1;
    }
}

// roundtrip.c in C++ through the installed mqtt5c.hpp: connect, subscribe
// with a lambda, publish at QoS 1, receive. tests/install.rs builds it with
// `pkg-config --cflags --libs mqtt5c` against a temporary `make install`
// and runs it against its own mosquitto. Usage: roundtrip URL
//
// First line of output: "version HEADER LIBRARY NUMBER", as roundtrip.c.
#include <mqtt5c.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>

int main(int argc, char **argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: roundtrip URL\n");
        return 2;
    }
    std::printf("version %s %s 0x%06X\n", MQTT5C_VERSION, mqtt5c::version().c_str(),
                static_cast<unsigned>(mqtt_version_number()));
    std::mutex mu;
    std::condition_variable cv;
    std::string received;
    try {
        mqtt5c::client c;
        c.on_message([&](const mqtt5c::message_view &m) {
            std::lock_guard<std::mutex> g(mu);
            received = std::string(m.topic()) + " " + std::string(m.payload());
            cv.notify_all();
        });
        c.connect(argv[1]);
        c.subscribe("mqtt5c/install/roundtrip", mqtt5c::qos1);
        c.publish("mqtt5c/install/roundtrip", "hello", mqtt5c::qos1);
        std::unique_lock<std::mutex> lock(mu);
        if (!cv.wait_for(lock, std::chrono::seconds(30), [&] { return !received.empty(); })) {
            std::fprintf(stderr, "roundtrip: no message within 30 s\n");
            return 1;
        }
        std::printf("received %s\n", received.c_str());
        lock.unlock();
        c.disconnect();
    } catch (const mqtt5c::error &e) {
        std::fprintf(stderr, "roundtrip: %s\n", e.what());
        return 1;
    }
    return 0;
}

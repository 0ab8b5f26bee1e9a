// Compiled by tests/c_api.rs: include/mqtt5c.h must be usable from C++
// (extern "C" linkage, no C-only constructs) and the library must link.
#include "mqtt5c.h"

#include <cstdio>
#include <cstring>

namespace {
void on_message(void *user_data, const mqtt_message *message) {
    (void)user_data;
    (void)mqtt_message_topic(message);
}
void on_connection(void *user_data, int event, int reason_code) {
    (void)user_data;
    (void)event;
    (void)reason_code;
}
} // namespace

int main() {
    const char *v = mqtt_version();
    if (v == nullptr || std::strlen(v) == 0) {
        std::fprintf(stderr, "mqtt_version empty\n");
        return 1;
    }
    mqtt_options *opts = mqtt_options_new();
    if (opts == nullptr || mqtt_options_set_client_id(opts, "cxx") != MQTT5C_OK) {
        std::fprintf(stderr, "options: %s\n", mqtt_last_error());
        return 1;
    }
    mqtt_client *client = mqtt_client_new(opts);
    mqtt_options_free(opts);
    if (client == nullptr) {
        std::fprintf(stderr, "mqtt_client_new: %s\n", mqtt_last_error());
        return 1;
    }
    mqtt_message_cb mcb = on_message;
    mqtt_connection_cb ccb = on_connection;
    int rc = mqtt_set_message_callback(client, mcb, nullptr);
    if (rc == MQTT5C_OK)
        rc = mqtt_set_connection_callback(client, ccb, nullptr);
    if (rc == MQTT5C_OK)
        rc = mqtt_publish(client, "t", "x", 1, MQTT5C_QOS1, false, nullptr) == MQTT5C_ERR_NOT_CONNECTED ? MQTT5C_OK : 1;
    mqtt_client_free(client);
    if (rc != MQTT5C_OK) {
        std::fprintf(stderr, "C++ use of the API failed: %d\n", rc);
        return 1;
    }
    std::printf("%s\n", v);
    return 0;
}

// C halves of the callbacks: functions with the exact signatures the
// library calls, which pass user_data on to the exported Go trampolines
// (callbacks.go) as the integer value of a runtime/cgo.Handle. No Go
// pointer is ever given to the library.
#include <stdbool.h>
#include <stdint.h>
#include <mqtt5c.h>
#include "_cgo_export.h"

static void message_cb(void *user_data, const mqtt_message *message) {
    mqtt5cGoMessage((uintptr_t)user_data, (mqtt_message *)message);
}

static void connection_cb(void *user_data, int event, int reason_code) {
    mqtt5cGoConnection((uintptr_t)user_data, event, reason_code);
}

// Only the callbacks the Go side has a handler for: a message that no
// callback receives is acknowledged by the library (with manual
// acknowledgement too), where a trampoline dropping it would not.
int mqtt5c_go_set_callbacks(mqtt_client *client, uintptr_t handle, bool message,
                            bool connection) {
    int rc = MQTT5C_OK;
    if (message) {
        rc = mqtt_set_message_callback(client, message_cb, (void *)handle);
    }
    if (rc == MQTT5C_OK && connection) {
        rc = mqtt_set_connection_callback(client, connection_cb, (void *)handle);
    }
    return rc;
}

int mqtt5c_go_subscribe_cb(mqtt_client *client, const char *filter, int options,
                           const mqtt_properties *props, uintptr_t handle) {
    return mqtt_subscribe_cb(client, filter, options, props, message_cb, (void *)handle);
}

static void publish_cb(void *user_data, int result, const mqtt_properties *ack_props) {
    mqtt5cGoPublished((uintptr_t)user_data, result, (mqtt_properties *)ack_props);
}

int mqtt5c_go_publish_async(mqtt_client *client, const char *topic, const void *payload,
                            size_t len, int qos, bool retain, const mqtt_properties *props,
                            uintptr_t handle) {
    return mqtt_publish_async(client, topic, payload, len, qos, retain, props, publish_cb,
                              (void *)handle);
}

static int pre_connect_cb(void *user_data, const char *url, unsigned int attempt,
                          mqtt_options *opts) {
    return mqtt5cGoPreConnect((uintptr_t)user_data, (char *)url, attempt, opts);
}

int mqtt5c_go_set_pre_connect(mqtt_client *client, uintptr_t handle) {
    return mqtt_set_pre_connect_callback(client, pre_connect_cb, (void *)handle);
}

static int auth_cb(void *user_data, int reason_code, const char *method, const void *data,
                   size_t len, mqtt_auth_response *response) {
    return mqtt5cGoAuth((uintptr_t)user_data, reason_code, (char *)method, (void *)data, len,
                        response);
}

int mqtt5c_go_set_auth(mqtt_client *client, uintptr_t handle) {
    return mqtt_set_auth_callback(client, auth_cb, (void *)handle);
}

static void log_cb(void *user_data, int level, const char *line) {
    mqtt5cGoLog((uintptr_t)user_data, level, (char *)line);
}

// The client's handle outlives every callback (Close deletes it after
// mqtt_client_free), so no free function is needed.
int mqtt5c_go_set_log(mqtt_client *client, uintptr_t handle, int level) {
    return mqtt_set_log_callback(client, log_cb, (void *)handle, NULL, level);
}

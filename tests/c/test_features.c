/*
 * Builds without TLS or WebSocket (cargo --no-default-features): the same
 * header and functions, but mqtts://, ssl://, tls://, ws:// and wss:// URLs
 * are refused at once (mqtt_connect, mqtt_options_add_server) with
 * MQTT5C_ERR_INVALID_ARGUMENT and a text saying what
 * the build leaves out, as are the TLS options and WebSocket headers; the
 * client stays usable and connects over TCP afterwards. In a build with
 * them, the same setters succeed. The driver names the build's optional
 * transports in MQTT_TEST_FEATURES ("tls websocket" by default).
 */
#include "test_common.h"

static bool has_feature(const char *name) {
    const char *f = getenv("MQTT_TEST_FEATURES");
    return f && strstr(f, name) != NULL;
}

/* rc is MQTT5C_ERR_INVALID_ARGUMENT and the text names what is left out. */
static bool refused(int rc, const char *what) {
    const char *e = test_last_error();
    if (rc != MQTT5C_ERR_INVALID_ARGUMENT || !strstr(e, "this build of libmqtt5c leaves") ||
        !strstr(e, what)) {
        fprintf(stderr, "want MQTT5C_ERR_INVALID_ARGUMENT naming %s, got %d: %s\n", what, rc, e);
        return false;
    }
    return true;
}

int main(int argc, char **argv) {
    const char *url = test_url(argc, argv);
    bool tls = has_feature("tls"), ws = has_feature("websocket");
    mqtt_options *opts = mqtt_options_new();
    mqtt_client *client = NULL;
    CHECK(opts != NULL, "mqtt_options_new");
    TEST_LOG("features: tls %d, websocket %d", tls, ws);

    if (tls) {
        CHECK_RC(mqtt_options_set_tls_ca_file(opts, NULL), MQTT5C_OK);
        CHECK_RC(mqtt_options_set_tls_server_name(opts, "broker.example"), MQTT5C_OK);
        CHECK_RC(mqtt_options_set_tls_alpn(opts, NULL, 0), MQTT5C_OK);
        CHECK_RC(mqtt_options_set_tls_client_cert(opts, NULL, NULL), MQTT5C_OK);
        CHECK_RC(mqtt_options_set_tls_insecure_skip_verify(opts, false), MQTT5C_OK);
        CHECK_RC(mqtt_options_set_tls_ca_pem(opts, NULL, 0), MQTT5C_OK);
        CHECK_RC(mqtt_options_set_tls_client_cert_pem(opts, NULL, 0, NULL, 0), MQTT5C_OK);
    } else {
        CHECK(refused(mqtt_options_set_tls_ca_file(opts, NULL), "TLS"), "ca_file");
        CHECK(refused(mqtt_options_set_tls_server_name(opts, "broker.example"), "TLS"), "sni");
        CHECK(refused(mqtt_options_set_tls_alpn(opts, NULL, 0), "TLS"), "alpn");
        CHECK(refused(mqtt_options_set_tls_client_cert(opts, NULL, NULL), "TLS"), "cert");
        CHECK(refused(mqtt_options_set_tls_insecure_skip_verify(opts, false), "TLS"), "skip");
        CHECK(refused(mqtt_options_set_tls_ca_pem(opts, NULL, 0), "TLS"), "ca_pem");
        CHECK(refused(mqtt_options_set_tls_client_cert_pem(opts, NULL, 0, NULL, 0), "TLS"),
              "cert_pem");
    }
    if (tls)
        CHECK_RC(mqtt_options_add_server(opts, "mqtts://127.0.0.1:1"), MQTT5C_OK);
    else
        CHECK(refused(mqtt_options_add_server(opts, "mqtts://127.0.0.1:1"), "TLS"), "add_server");
    if (ws)
        CHECK_RC(mqtt_options_add_server(opts, "ws://127.0.0.1:1"), MQTT5C_OK);
    else
        CHECK(refused(mqtt_options_add_server(opts, "ws://127.0.0.1:1"), "WebSocket"), "add_server");
    if (ws)
        CHECK_RC(mqtt_options_add_ws_header(opts, "X-Test", "1"), MQTT5C_OK);
    else
        CHECK(refused(mqtt_options_add_ws_header(opts, "X-Test", "1"), "WebSocket"), "ws header");

    client = mqtt_client_new(opts);
    CHECK(client != NULL, "mqtt_client_new: %s", test_last_error());
    /* Port 1: nothing listens there, so a build with the transport fails to
     * connect instead (any other error than the refusal). */
    const char *const tls_urls[] = {"mqtts://127.0.0.1:1", "SSL://127.0.0.1:1",
                                    "tls://127.0.0.1:1"};
    for (size_t i = 0; !tls && i < sizeof tls_urls / sizeof *tls_urls; i++)
        CHECK(refused(mqtt_connect(client, tls_urls[i]), "TLS"), "%s", tls_urls[i]);
    if (!ws)
        CHECK(refused(mqtt_connect(client, "ws://127.0.0.1:1/mqtt"), "WebSocket"), "ws://");
    if (!ws || !tls)
        CHECK(refused(mqtt_connect(client, "wss://127.0.0.1:1/mqtt"), tls ? "WebSocket" : "TLS"),
              "wss://");
    /* Nothing of that stuck: TCP works. */
    CHECK_RC(mqtt_connect(client, url), MQTT5C_OK);
    CHECK_RC(mqtt_disconnect(client, 0, NULL), MQTT5C_OK);

cleanup:
    mqtt_client_free(client);
    mqtt_options_free(opts);
    return test_failed;
}

/*
 * TLS and WebSocket options through the C API, against mosquitto's TLS
 * listeners that the driver configures (// needs: tls) with certificates it
 * generates. The driver passes:
 *   MQTT_TEST_TLS_PORT      TLS listener (server cert for 127.0.0.1, localhost)
 *   MQTT_TEST_MTLS_PORT     TLS listener with require_certificate true
 *   MQTT_TEST_CAFILE        the CA that signed the server and client certs
 *   MQTT_TEST_OTHER_CAFILE  an unrelated CA
 *   MQTT_TEST_CLIENT_CERT / MQTT_TEST_CLIENT_KEY  a client cert and key
 *
 * Checks: bad input to every new setter is refused with a specific text;
 * a round trip over mqtts:// with the CA file; the wrong CA gives
 * MQTT5C_ERR_TLS "unknown issuer"; mutual TLS without a certificate gives
 * MQTT5C_ERR_TLS "certificate required" and with ours connects; a bad URL is
 * MQTT5C_ERR_INVALID_ARGUMENT.
 */
// needs: tls
#include "test_common.h"

static struct {
    sync_t s;
    long count;
    char payload[64];
    size_t len;
} st;

static void on_message(void *ud, const mqtt_message *m) {
    size_t len = 0;
    const void *p = mqtt_message_payload(m, &len);
    (void)ud;
    sync_lock(&st.s);
    st.len = len < sizeof st.payload ? len : sizeof st.payload;
    if (p)
        memcpy(st.payload, p, st.len);
    st.count++;
    sync_unlock_notify(&st.s);
}

static const char *env(const char *name) {
    const char *v = getenv(name);
    if (!v || !*v) {
        fprintf(stderr, "FAIL: %s is not set (run through cargo test --test c_api)\n", name);
        exit(2);
    }
    return v;
}

/* A client with the given CA file and client certificate (either may be NULL). */
static mqtt_client *tls_client(const char *id, const char *cafile, const char *cert,
                               const char *key) {
    mqtt_options *o = mqtt_options_new();
    mqtt_client *c = NULL;
    if (!o)
        return NULL;
    if (mqtt_options_set_client_id(o, id) == MQTT5C_OK &&
        mqtt_options_set_connect_timeout(o, (uint32_t)(10000 * timeout_scale())) == MQTT5C_OK &&
        (!cafile || mqtt_options_set_tls_ca_file(o, cafile) == MQTT5C_OK) &&
        (!cert || mqtt_options_set_tls_client_cert(o, cert, key) == MQTT5C_OK))
        c = mqtt_client_new(o);
    else
        fprintf(stderr, "options for %s: %s\n", id, test_last_error());
    mqtt_options_free(o);
    return c;
}

int main(int argc, char **argv) {
    const char *cafile = env("MQTT_TEST_CAFILE");
    const char *other_ca = env("MQTT_TEST_OTHER_CAFILE");
    const char *cert = env("MQTT_TEST_CLIENT_CERT");
    const char *key = env("MQTT_TEST_CLIENT_KEY");
    char url[96], murl[96];
    mqtt_options *o = NULL;
    mqtt_client *sub = NULL, *pub = NULL, *bad = NULL, *m1 = NULL, *m2 = NULL;
    int rc;

    (void)argc;
    (void)argv;
    sync_init(&st.s);
    snprintf(url, sizeof url, "mqtts://127.0.0.1:%s", env("MQTT_TEST_TLS_PORT"));
    snprintf(murl, sizeof murl, "ssl://localhost:%s", env("MQTT_TEST_MTLS_PORT"));

    /* ---- bad input to the setters ---- */
    o = mqtt_options_new();
    CHECK(o != NULL, "mqtt_options_new: %s", test_last_error());
    CHECK_RC(mqtt_options_set_tls_ca_file(NULL, cafile), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK_RC(mqtt_options_set_tls_ca_file(o, "/nonexistent/ca.pem"), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK(strstr(test_last_error(), "/nonexistent/ca.pem") != NULL, "path not named: %s",
          test_last_error());
    CHECK_RC(mqtt_options_set_tls_ca_file(o, key), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK(contains_ci(test_last_error(), "no PEM certificate"), "%s", test_last_error());
    CHECK_RC(mqtt_options_set_tls_ca_file(o, cafile), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_tls_ca_file(o, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_tls_client_cert(o, cert, NULL), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK_RC(mqtt_options_set_tls_client_cert(o, NULL, key), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK_RC(mqtt_options_set_tls_client_cert(o, cert, cafile), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK(contains_ci(test_last_error(), "no private key"), "%s", test_last_error());
    CHECK_RC(mqtt_options_set_tls_client_cert(o, cert, key), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_tls_client_cert(o, NULL, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_tls_server_name(NULL, "x"), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK_RC(mqtt_options_set_tls_server_name(o, "not a name!"), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK_RC(mqtt_options_set_tls_server_name(o, "broker.example"), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_tls_server_name(o, NULL), MQTT5C_OK);
    {
        const char *ok[] = {"mqtt", "x-amzn-mqtt-ca"};
        const char *empty[] = {""};
        const char *null_entry[] = {"mqtt", NULL};
        CHECK_RC(mqtt_options_set_tls_alpn(o, NULL, 1), MQTT5C_ERR_INVALID_ARGUMENT);
        CHECK_RC(mqtt_options_set_tls_alpn(o, empty, 1), MQTT5C_ERR_INVALID_ARGUMENT);
        CHECK_RC(mqtt_options_set_tls_alpn(o, null_entry, 2), MQTT5C_ERR_INVALID_ARGUMENT);
        CHECK(strstr(test_last_error(), "protocols[1]") != NULL, "%s", test_last_error());
        CHECK_RC(mqtt_options_set_tls_alpn(o, ok, 2), MQTT5C_OK);
        CHECK_RC(mqtt_options_set_tls_alpn(o, NULL, 0), MQTT5C_OK);
    }
    CHECK_RC(mqtt_options_set_tls_insecure_skip_verify(NULL, true), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK_RC(mqtt_options_add_ws_header(o, "Authorization", "Bearer abc"), MQTT5C_OK);
    CHECK_RC(mqtt_options_add_ws_header(o, "Host", "x"), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK_RC(mqtt_options_add_ws_header(o, "X-A", "a\r\nb"), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK_RC(mqtt_options_add_ws_header(o, "bad name", "v"), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK_RC(mqtt_options_add_ws_header(o, NULL, "v"), MQTT5C_ERR_INVALID_ARGUMENT);
    mqtt_options_free(o);
    o = NULL;

    /* ---- a bad URL ---- */
    bad = tls_client("tls-badurl", cafile, NULL, NULL);
    CHECK(bad != NULL, "client");
    CHECK_RC(mqtt_connect(bad, "gopher://127.0.0.1:1"), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK(contains_ci(test_last_error(), "unsupported URL scheme"), "%s", test_last_error());
    mqtt_client_free(bad);
    bad = NULL;

    /* ---- round trip over TLS ---- */
    sub = tls_client("tls-sub", cafile, NULL, NULL);
    pub = tls_client("tls-pub", cafile, NULL, NULL);
    CHECK(sub && pub, "clients");
    mqtt_set_message_callback(sub, on_message, NULL);
    CHECK_RC(mqtt_connect(sub, url), MQTT5C_OK);
    CHECK_RC(mqtt_connect(pub, url), MQTT5C_OK);
    CHECK_RC(mqtt_subscribe(sub, "tls/#", MQTT5C_QOS1, NULL), 1);
    rc = mqtt_publish(pub, "tls/a", "secret", 6, MQTT5C_QOS1, false, NULL);
    CHECK(publish_ok(rc), "publish over TLS: %d %s", rc, test_last_error());
    CHECK(sync_wait_count(&st.s, &st.count, 1, 10), "no message over TLS");
    CHECK(st.len == 6 && memcmp(st.payload, "secret", 6) == 0, "payload differs");
    TEST_LOG("round trip over %s ok", url);

    /* ---- wrong CA ---- */
    bad = tls_client("tls-wrongca", other_ca, NULL, NULL);
    CHECK(bad != NULL, "client");
    CHECK_RC(mqtt_connect(bad, url), MQTT5C_ERR_TLS);
    CHECK(contains_ci(test_last_error(), "unknown issuer"), "%s", test_last_error());
    CHECK(!mqtt_is_connected(bad), "connected with the wrong CA");
    TEST_LOG("wrong CA: %s", test_last_error());
    CHECK(strcmp(mqtt_strerror(MQTT5C_ERR_TLS), "TLS error") == 0, "%s",
          mqtt_strerror(MQTT5C_ERR_TLS));

    /* ---- mutual TLS ---- */
    m1 = tls_client("mtls-none", cafile, NULL, NULL);
    CHECK(m1 != NULL, "client");
    CHECK_RC(mqtt_connect(m1, murl), MQTT5C_ERR_TLS);
    CHECK(contains_ci(test_last_error(), "certificate required"), "%s", test_last_error());
    TEST_LOG("no client certificate: %s", test_last_error());
    m2 = tls_client("mtls-cert", cafile, cert, key);
    CHECK(m2 != NULL, "client");
    CHECK_RC(mqtt_connect(m2, murl), MQTT5C_OK);
    rc = mqtt_publish(m2, "tls/m", "mutual", 6, MQTT5C_QOS1, false, NULL);
    CHECK(publish_ok(rc), "publish over mutual TLS: %d %s", rc, test_last_error());
    CHECK(sync_wait_count(&st.s, &st.count, 2, 10), "no message over mutual TLS");
    CHECK_RC(mqtt_disconnect(m2, 0, NULL), MQTT5C_OK);

    CHECK_RC(mqtt_disconnect(pub, 0, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_disconnect(sub, 0, NULL), MQTT5C_OK);

cleanup:
    mqtt_options_free(o);
    mqtt_client_free(sub);
    mqtt_client_free(pub);
    mqtt_client_free(bad);
    mqtt_client_free(m1);
    mqtt_client_free(m2);
    sync_destroy(&st.s);
    return test_failed ? 1 : 0;
}

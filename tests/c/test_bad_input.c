/*
 * Bad input: every bad argument returns MQTT5C_ERR_INVALID_ARGUMENT (or
 * MQTT5C_ERR_PACKET_TOO_LARGE for an oversized packet) with a specific
 * mqtt_last_error() text, sends nothing and leaves the connection up: a
 * normal round trip on the same connection works afterwards, and no
 * DISCONNECTED event fired. The free functions accept NULL.
 */
// broker-conf: max_packet_size 2000
#include "test_common.h"

static struct {
    sync_t s;
    long received;
    long disconnected;
    int disconnected_reason;
    char last_topic[64];
    size_t last_len;
} st;

static void on_message(void *ud, const mqtt_message *m) {
    (void)ud;
    const char *topic = mqtt_message_topic(m);
    size_t len = 0;
    (void)mqtt_message_payload(m, &len);
    sync_lock(&st.s);
    snprintf(st.last_topic, sizeof st.last_topic, "%s", topic ? topic : "(null)");
    st.last_len = len;
    st.received++;
    sync_unlock_notify(&st.s);
}

static void on_connection(void *ud, int event, int reason) {
    (void)ud;
    if (event != MQTT5C_EVENT_DISCONNECTED)
        return;
    sync_lock(&st.s);
    st.disconnected++;
    st.disconnected_reason = reason;
    sync_unlock_notify(&st.s);
}

/* Calls must fail with `want` and an error text mentioning one of the
 * keywords (NULL-terminated list); NULL keywords: any non-empty text. */
#define CHECK_BAD(expr, want, ...)                                                                   \
    do {                                                                                             \
        static const char *const kw_[] = {__VA_ARGS__, NULL};                                             \
        int rc__ = (expr);                                                                           \
        CHECK(rc__ == (want), "%s returned %d (%s), want %d (%s)", #expr, rc__, test_strerror(rc__), \
              (want), test_strerror(want));                                                          \
        CHECK(mqtt_last_error() && mqtt_last_error()[0], "%s: mqtt_last_error() is empty", #expr);  \
        CHECK(kw_[0] == NULL || last_error_mentions(kw_), "%s: mqtt_last_error() \"%.200s\" lacks a keyword (%s...)", \
              #expr, test_last_error(), kw_[0]);                                                     \
        TEST_LOG("  %-60.60s -> %d: %.200s", #expr, rc__, test_last_error());                            \
    } while (0)

#define ANY NULL
#define INVAL MQTT5C_ERR_INVALID_ARGUMENT

int main(int argc, char **argv) {
    const char *url = test_url(argc, argv);
    mqtt_options *opts = NULL;
    mqtt_client *client = NULL, *dflt = NULL;
    mqtt_properties *props = NULL;
    unsigned char *big = NULL;
    char *long_topic = NULL;
    int rc;

    sync_init(&st.s);

    /* ---- NULL handles everywhere ---- */
    TEST_LOG("NULL handles:");
    CHECK_BAD(mqtt_options_set_client_id(NULL, "x"), INVAL, ANY);
    CHECK_BAD(mqtt_options_set_keep_alive(NULL, 10), INVAL, ANY);
    CHECK_BAD(mqtt_options_set_clean_start(NULL, true), INVAL, ANY);
    CHECK_BAD(mqtt_options_set_session_expiry(NULL, 10), INVAL, ANY);
    CHECK_BAD(mqtt_options_set_credentials(NULL, "u", "p", 1), INVAL, ANY);
    CHECK_BAD(mqtt_options_set_will(NULL, "t", "p", 1, 0, false, NULL), INVAL, ANY);
    CHECK_BAD(mqtt_options_set_connect_timeout(NULL, 1000), INVAL, ANY);
    CHECK_BAD(mqtt_options_set_operation_timeout(NULL, 1000), INVAL, ANY);
    CHECK_BAD(mqtt_options_set_tcp_nodelay(NULL, true), INVAL, ANY);
    CHECK_BAD(mqtt_options_set_tcp_quickack(NULL, true), INVAL, ANY);
    CHECK_BAD(mqtt_options_set_delivery_queue(NULL, 10, 1 << 20), INVAL, ANY);
    CHECK_BAD(mqtt_set_message_callback(NULL, on_message, NULL), INVAL, ANY);
    CHECK_BAD(mqtt_set_connection_callback(NULL, on_connection, NULL), INVAL, ANY);
    CHECK_BAD(mqtt_connect(NULL, url), INVAL, ANY);
    CHECK_BAD(mqtt_publish(NULL, "t", "p", 1, 0, false, NULL), INVAL, ANY);
    CHECK_BAD(mqtt_subscribe(NULL, "t", 0, NULL), INVAL, ANY);
    CHECK_BAD(mqtt_unsubscribe(NULL, "t", NULL), INVAL, ANY);
    CHECK_BAD(mqtt_disconnect(NULL, 0, NULL), INVAL, ANY);
    CHECK_BAD(mqtt_properties_add_user(NULL, "k", "v"), INVAL, ANY);
    /* Predicates answer 0 or 1 only, never an error code, which C reads as
     * true; for NULL they answer 0 and say why. */
    CHECK_BAD(mqtt_is_connected(NULL), 0, "client");
    CHECK_BAD(mqtt_session_present(NULL), 0, "client");
    CHECK_BAD(mqtt_message_retain(NULL), 0, "message");
    CHECK_BAD(mqtt_properties_add_user(NULL, "k", "v"), INVAL, ANY);
    CHECK_BAD(mqtt_message_dup(NULL), 0, "message");

    /* ---- bad option values ---- */
    TEST_LOG("bad option values:");
    opts = mqtt_options_new();
    CHECK(opts != NULL, "mqtt_options_new: %s", test_last_error());
    CHECK_BAD(mqtt_options_set_client_id(opts, "bad\xff\xfe"), INVAL, "utf");
    CHECK_BAD(mqtt_options_set_credentials(opts, "user", NULL, 5), INVAL, "password", "null");
    CHECK_BAD(mqtt_options_set_credentials(opts, "us\xc0\x80r", "p", 1), INVAL, "utf");
    CHECK_BAD(mqtt_options_set_will(opts, "will/+", "p", 1, 1, false, NULL), INVAL, "wildcard", "topic");
    CHECK_BAD(mqtt_options_set_will(opts, "will/t", "p", 1, 3, false, NULL), INVAL, "qos");
    /* Documented: a NULL will topic removes the will. */
    CHECK_RC(mqtt_options_set_will(opts, NULL, NULL, 0, 0, false, NULL), MQTT5C_OK);
    CHECK_BAD(mqtt_options_set_will(opts, "will/t", NULL, 3, 1, false, NULL), INVAL, "payload", "null");
    CHECK_BAD(mqtt_options_set_delivery_queue(opts, 0, 1 << 20), INVAL, "delivery queue");
    CHECK_BAD(mqtt_options_set_delivery_queue(opts, 10, 0), INVAL, "delivery queue");
    CHECK_RC(mqtt_options_set_delivery_queue(opts, 1000, (size_t)8 << 20), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_client_id(opts, "bad-input"), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_operation_timeout(opts, (uint32_t)(30000 * timeout_scale())), MQTT5C_OK);

    /* NULL options: defaults. */
    dflt = mqtt_client_new(NULL);
    CHECK(dflt != NULL, "mqtt_client_new(NULL) must give a client with defaults: %s", test_last_error());
    mqtt_client_free(dflt);
    dflt = NULL;

    client = mqtt_client_new(opts);
    CHECK(client != NULL, "mqtt_client_new: %s", test_last_error());
    CHECK_RC(mqtt_set_message_callback(client, on_message, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_set_connection_callback(client, on_connection, NULL), MQTT5C_OK);

    /* ---- bad URLs, and use before connect ---- */
    TEST_LOG("before connect:");
    CHECK_BAD(mqtt_connect(client, NULL), INVAL, ANY);
    CHECK_BAD(mqtt_connect(client, ""), INVAL, "url", "empty");
    CHECK_BAD(mqtt_connect(client, "http://127.0.0.1:1883"), INVAL, "scheme", "url", "http");
    CHECK_BAD(mqtt_connect(client, "mqtt://127.0.0.1:notaport"), INVAL, "port", "url");
    CHECK_BAD(mqtt_connect(client, "mqtt://127.0.0.1:99999"), INVAL, "port", "url");
    CHECK_BAD(mqtt_publish(client, "t", "p", 1, 0, false, NULL), MQTT5C_ERR_NOT_CONNECTED, ANY);
    CHECK_BAD(mqtt_subscribe(client, "t", 0, NULL), MQTT5C_ERR_NOT_CONNECTED, ANY);

    CHECK_RC(mqtt_connect(client, url), MQTT5C_OK);
    CHECK_RC(mqtt_subscribe(client, "ok/#", MQTT5C_QOS1, NULL), 1);

    /* ---- bad publish arguments on a live connection ---- */
    TEST_LOG("publish:");
    CHECK_BAD(mqtt_publish(client, NULL, "p", 1, 0, false, NULL), INVAL, "topic", "null");
    CHECK_BAD(mqtt_publish(client, "ok/t", NULL, 5, 0, false, NULL), INVAL, "payload", "null");
    CHECK_BAD(mqtt_publish(client, "", "p", 1, 0, false, NULL), INVAL, "topic", "empty");
    CHECK_BAD(mqtt_publish(client, "ok/\xff\xfe", "p", 1, 0, false, NULL), INVAL, "utf");
    CHECK_BAD(mqtt_publish(client, "ok/\xc0\x80", "p", 1, 0, false, NULL), INVAL, "utf"); /* overlong NUL */
    CHECK_BAD(mqtt_publish(client, "ok/\xed\xa0\x80", "p", 1, 0, false, NULL), INVAL, "utf"); /* surrogate */
    CHECK_BAD(mqtt_publish(client, "ok/+/x", "p", 1, 0, false, NULL), INVAL, "wildcard", "'+'");
    CHECK_BAD(mqtt_publish(client, "ok/#", "p", 1, 1, false, NULL), INVAL, "wildcard", "'#'");
    CHECK_BAD(mqtt_publish(client, "ok/t", "p", 1, 3, false, NULL), INVAL, "qos");
    CHECK_BAD(mqtt_publish(client, "ok/t", "p", 1, -1, false, NULL), INVAL, "qos");
    long_topic = malloc(70000);
    CHECK(long_topic != NULL, "malloc");
    memset(long_topic, 'a', 69999);
    long_topic[69999] = '\0';
    CHECK_BAD(mqtt_publish(client, long_topic, "p", 1, 0, false, NULL), INVAL, "long", "65535", "length", "topic");

    /* Bigger than the broker's Maximum Packet Size (2000 in CONNACK). */
    big = calloc(1, 4000);
    CHECK(big != NULL, "calloc");
    rc = mqtt_publish(client, "ok/big", big, 4000, MQTT5C_QOS1, false, NULL);
    CHECK(rc == MQTT5C_ERR_PACKET_TOO_LARGE || rc == INVAL, "oversized publish returned %d (%s)", rc,
          test_strerror(rc));
    {
        static const char *const kw[] = {"large", "size", "maximum", NULL};
        CHECK(last_error_mentions(kw), "oversized publish: mqtt_last_error() \"%s\" lacks a keyword",
              test_last_error());
    }
    TEST_LOG("  oversized publish -> %d: %s", rc, test_last_error());
    rc = mqtt_publish(client, "ok/big", big, 4000, MQTT5C_QOS0, false, NULL);
    CHECK(rc == MQTT5C_ERR_PACKET_TOO_LARGE || rc == INVAL, "oversized QoS 0 publish returned %d (%s)", rc,
          test_strerror(rc));

    /* ---- bad properties ---- */
    TEST_LOG("properties:");
    props = mqtt_properties_new();
    CHECK(props != NULL, "mqtt_properties_new: %s", test_last_error());
    CHECK_BAD(mqtt_properties_add_user(props, NULL, "v"), INVAL, "key", "null");
    CHECK_BAD(mqtt_properties_add_user(props, "k", NULL), INVAL, "value", "null");
    CHECK_BAD(mqtt_properties_add_user(props, "k\xff", "v"), INVAL, "utf");
    CHECK_BAD(mqtt_properties_add_user(props, "k", "v\xfe"), INVAL, "utf");

    /* ---- bad subscribe / unsubscribe arguments ---- */
    TEST_LOG("subscribe:");
    CHECK_BAD(mqtt_subscribe(client, NULL, 0, NULL), INVAL, "filter", "null", "topic");
    CHECK_BAD(mqtt_subscribe(client, "", 0, NULL), INVAL, "filter", "empty", "topic");
    CHECK_BAD(mqtt_subscribe(client, "ok/#/x", 0, NULL), INVAL, "filter", "wildcard", "#");
    CHECK_BAD(mqtt_subscribe(client, "ok/a+", 0, NULL), INVAL, "filter", "wildcard", "+");
    CHECK_BAD(mqtt_subscribe(client, "ok/\xff", 0, NULL), INVAL, "utf");
    CHECK_BAD(mqtt_subscribe(client, "ok/t", 3, NULL), INVAL, "qos");
    CHECK_BAD(mqtt_subscribe(client, "ok/t", MQTT5C_QOS1 | 0x30, NULL), INVAL, "retain");
    CHECK_BAD(mqtt_subscribe(client, "ok/t", MQTT5C_QOS1 | 0x40, NULL), INVAL, "reserved", "option");
    CHECK_BAD(mqtt_subscribe(client, "ok/t", 0x100, NULL), INVAL, "option", "reserved", "range");
    CHECK_BAD(mqtt_subscribe(client, "ok/t", -1, NULL), INVAL, "option", "reserved", "range", "qos");
    CHECK_BAD(mqtt_unsubscribe(client, NULL, NULL), INVAL, "filter", "null", "topic");
    CHECK_BAD(mqtt_unsubscribe(client, "ok/\xff", NULL), INVAL, "utf");
    CHECK_BAD(mqtt_unsubscribe(client, "ok/#/x", NULL), INVAL, "filter", "wildcard", "#");

    /* ---- the connection is still up and works ---- */
    TEST_LOG("round trip after bad input:");
    CHECK(sync_get(&st.s, &st.disconnected) == 0, "bad input closed the connection (DISCONNECTED reason 0x%02x)",
          st.disconnected_reason);
    CHECK_RC(mqtt_subscribe(client, "ok2/#", MQTT5C_QOS1, NULL), 1);
    CHECK_RC(mqtt_unsubscribe(client, "ok2/#", NULL), 0);
    CHECK_RC(mqtt_properties_add_user(props, "k", "v"), MQTT5C_OK);
    CHECK_RC(mqtt_publish(client, "ok/t", "hello", 5, MQTT5C_QOS1, false, props), 0);
    CHECK(sync_wait_count(&st.s, &st.received, 1, 10), "round trip message not received");
    sync_lock(&st.s);
    {
        bool ok = strcmp(st.last_topic, "ok/t") == 0 && st.last_len == 5;
        sync_unlock(&st.s);
        CHECK(ok, "first message after bad input: %s len %zu, want ok/t len 5", st.last_topic, st.last_len);
    }
    /* Just below the limit still goes through. */
    CHECK_RC(mqtt_publish(client, "ok/big", big, 1900, MQTT5C_QOS1, false, NULL), 0);
    CHECK(sync_wait_count(&st.s, &st.received, 2, 10), "1900-byte message not received");
    sync_lock(&st.s);
    {
        bool ok = strcmp(st.last_topic, "ok/big") == 0 && st.last_len == 1900;
        sync_unlock(&st.s);
        CHECK(ok, "got %s len %zu, want ok/big len 1900", st.last_topic, st.last_len);
    }
    /* In-order delivery: a rejected publish that reached the broker anyway
     * would have arrived before these two. */
    CHECK(sync_get(&st.s, &st.received) == 2, "received %ld messages, want exactly 2",
          sync_get(&st.s, &st.received));
    CHECK(sync_get(&st.s, &st.disconnected) == 0, "connection dropped (reason 0x%02x)", st.disconnected_reason);
    CHECK_BAD(mqtt_disconnect(client, 0x100, NULL), INVAL, "reason", "code");
    CHECK_BAD(mqtt_disconnect(client, -1, NULL), INVAL, "reason", "code");
    CHECK_RC(mqtt_disconnect(client, 0, NULL), MQTT5C_OK);
    TEST_LOG("round trip ok");

    /* ---- the free functions accept NULL ---- */
    mqtt_client_free(NULL);
    mqtt_options_free(NULL);
    mqtt_properties_free(NULL);
    CHECK(mqtt_strerror(-424242) != NULL, "mqtt_strerror of an unknown code is NULL");

cleanup:
    free(big);
    free(long_topic);
    mqtt_properties_free(props);
    mqtt_options_free(opts);
    mqtt_client_free(dflt);
    mqtt_client_free(client);
    sync_destroy(&st.s);
    if (!test_failed)
        TEST_LOG("test_bad_input: PASS");
    return test_failed;
}

/*
 * The basic API in one connection: version/strerror/last_error, the
 * success test (MQTT5C_SUCCEEDED, mqtt_succeeded), options,
 * connect, subscribe (granted QoS), publish and receive at QoS 0/1/2, binary
 * and empty payloads, retain, subscription options (retain as published, no
 * local), user properties, unsubscribe, disconnect and the connection events.
 */
#include "test_common.h"

#define MAX_MSGS 64

typedef struct {
    char topic[128];
    unsigned char payload[256];
    size_t len;
    int qos;
    bool retain;
    bool has_props;
} msg_rec;

static struct {
    sync_t s;
    msg_rec msgs[MAX_MSGS];
    long count;
    long connected;
    long disconnected;
    long other_events;
    int connected_reason;
    int disconnected_reason;
} st;

static void on_message(void *user_data, const mqtt_message *m) {
    (void)user_data;
    sync_lock(&st.s);
    if (st.count < MAX_MSGS) {
        msg_rec *r = &st.msgs[st.count];
        const char *topic = mqtt_message_topic(m);
        size_t len = 0;
        const void *payload = mqtt_message_payload(m, &len);
        snprintf(r->topic, sizeof r->topic, "%s", topic ? topic : "(null)");
        r->len = len;
        if (payload && len <= sizeof r->payload)
            memcpy(r->payload, payload, len);
        r->qos = mqtt_message_qos(m);
        r->retain = mqtt_message_retain(m);
        r->has_props = mqtt_message_properties(m) != NULL;
    }
    st.count++;
    sync_unlock_notify(&st.s);
}

static void on_connection(void *user_data, int event, int reason) {
    (void)user_data;
    sync_lock(&st.s);
    if (event == MQTT5C_EVENT_CONNECTED) {
        st.connected++;
        st.connected_reason = reason;
    } else if (event == MQTT5C_EVENT_DISCONNECTED) {
        st.disconnected++;
        st.disconnected_reason = reason;
    } else {
        st.other_events++;
    }
    sync_unlock_notify(&st.s);
}

/* Waits for message number n (1-based) and returns its record, or NULL. */
static const msg_rec *wait_message(long n) {
    if (!sync_wait_count(&st.s, &st.count, n, 10)) {
        fprintf(stderr, "timed out waiting for message #%ld (have %ld)\n", n,
                sync_get(&st.s, &st.count));
        return NULL;
    }
    return &st.msgs[n - 1];
}

static bool payload_is(const msg_rec *r, const void *p, size_t len) {
    return r->len == len && (len == 0 || memcmp(r->payload, p, len) == 0);
}

int main(int argc, char **argv) {
    const char *url = test_url(argc, argv);
    mqtt_options *opts = NULL;
    mqtt_client *client = NULL;
    mqtt_properties *props = NULL;
    const msg_rec *r;
    long n = 0; /* messages expected so far */
    int rc;

    sync_init(&st.s);

    /* ---- static information ---- */
    CHECK(mqtt_version() != NULL && mqtt_version()[0] != '\0', "mqtt_version empty");
    TEST_LOG("mqtt_version: %s", mqtt_version());
    CHECK(mqtt_version_number() == MQTT5C_VERSION_NUMBER, "library 0x%06x, header 0x%06x",
          (unsigned)mqtt_version_number(), (unsigned)MQTT5C_VERSION_NUMBER);
    /* Negative codes are parenthesised: these are expressions, not `x--5`. */
    _Static_assert(0 - MQTT5C_ERR_IO == 5, "MQTT5C_ERR_IO must expand to a parenthesised -5");
    _Static_assert(-MQTT5C_ERR_INVALID_ARGUMENT == 1, "MQTT5C_ERR_INVALID_ARGUMENT must be (-1)");
    {
        const int codes[] = {MQTT5C_OK,
                             MQTT5C_ERR_INVALID_ARGUMENT,
                             MQTT5C_ERR_NOT_CONNECTED,
                             MQTT5C_ERR_CONNECTION_LOST,
                             MQTT5C_ERR_TIMEOUT,
                             MQTT5C_ERR_IO,
                             MQTT5C_ERR_PROTOCOL,
                             MQTT5C_ERR_PACKET_TOO_LARGE,
                             MQTT5C_ERR_INTERNAL,
                             MQTT5C_ERR_NOT_FOUND,
                             MQTT5C_ERR_TLS,
                             MQTT5C_ERR_ALREADY_CONNECTED,
                             0x10,
                             0x80,
                             0x87,
                             -12345,
                             12345};
        for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
            const char *s = mqtt_strerror(codes[i]);
            bool success = codes[i] >= 0 && codes[i] < 0x80;
            CHECK(s != NULL && s[0] != '\0', "mqtt_strerror(%d) is NULL or empty", codes[i]);
            CHECK(MQTT5C_SUCCEEDED(codes[i]) == success, "MQTT5C_SUCCEEDED(%d) is not %d", codes[i], success);
            CHECK(mqtt_succeeded(codes[i]) == success, "mqtt_succeeded(%d) is not %d", codes[i], success);
        }
        for (int v = -300; v <= 300; v++)
            CHECK(MQTT5C_SUCCEEDED(v) == mqtt_succeeded(v), "macro and function differ on %d", v);
        /* The macro evaluates its argument once: it may wrap a call. */
        rc = 0;
        CHECK(MQTT5C_SUCCEEDED(rc++) && rc == 1, "MQTT5C_SUCCEEDED evaluated its argument %d times", rc);
        CHECK(strcmp(mqtt_strerror(MQTT5C_OK), mqtt_strerror(MQTT5C_ERR_TIMEOUT)) != 0,
              "strerror(OK) == strerror(TIMEOUT): %s", mqtt_strerror(MQTT5C_OK));
        CHECK(strcmp(mqtt_strerror(MQTT5C_ERR_IO), mqtt_strerror(MQTT5C_ERR_PROTOCOL)) != 0,
              "strerror(IO) == strerror(PROTOCOL): %s", mqtt_strerror(MQTT5C_ERR_IO));
    }
    CHECK(mqtt_last_error() != NULL, "mqtt_last_error() returned NULL");

    /* ---- options ---- */
    opts = mqtt_options_new();
    CHECK(opts != NULL, "mqtt_options_new: %s", test_last_error());
    CHECK_RC(mqtt_options_set_client_id(opts, "mqtt5c-basic"), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_keep_alive(opts, 30), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_clean_start(opts, true), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_session_expiry(opts, 0), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_connect_timeout(opts, (uint32_t)(10000 * timeout_scale())), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_operation_timeout(opts, (uint32_t)(30000 * timeout_scale())), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_tcp_nodelay(opts, true), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_tcp_quickack(opts, true), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_credentials(opts, "user", "secret", 6), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_will(opts, "basic-will/gone", "bye", 3, MQTT5C_QOS1, false, NULL), MQTT5C_OK);

    client = mqtt_client_new(opts);
    CHECK(client != NULL, "mqtt_client_new: %s", test_last_error());
    /* The client copied the options: freeing them now must be harmless. */
    mqtt_options_free(opts);
    opts = NULL;

    CHECK_RC(mqtt_set_message_callback(client, on_message, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_set_connection_callback(client, on_connection, NULL), MQTT5C_OK);

    /* ---- connect ---- */
    CHECK_RC(mqtt_publish(client, "basic/early", "x", 1, MQTT5C_QOS0, false, NULL), MQTT5C_ERR_NOT_CONNECTED);
    CHECK_RC(mqtt_connect(client, url), MQTT5C_OK);
    CHECK(sync_wait_count(&st.s, &st.connected, 1, 10), "no MQTT5C_EVENT_CONNECTED after connect");
    CHECK(st.connected_reason == 0, "CONNECTED reason %d, want 0", st.connected_reason);
    CHECK_RC(mqtt_connect(client, url), MQTT5C_ERR_ALREADY_CONNECTED);
    TEST_LOG("connected to %s", url);

    /* ---- subscribe: the return value is the granted QoS ---- */
    CHECK_RC(mqtt_subscribe(client, "basic/#", MQTT5C_QOS2, NULL), 2);
    CHECK_RC(mqtt_subscribe(client, "basic-q1/#", MQTT5C_QOS1, NULL), 1);
    CHECK_RC(mqtt_subscribe(client, "basic-q0/#", MQTT5C_QOS0, NULL), 0);

    /* ---- publish and receive at each QoS ---- */
    for (int qos = 0; qos <= 2; qos++) {
        char topic[32], payload[32];
        snprintf(topic, sizeof topic, "basic/q%d", qos);
        snprintf(payload, sizeof payload, "payload at qos %d", qos);
        CHECK_RC(mqtt_publish(client, topic, payload, strlen(payload), qos, false, NULL), 0);
        CHECK((r = wait_message(++n)) != NULL, "QoS %d message not received", qos);
        CHECK(strcmp(r->topic, topic) == 0, "topic '%s', want '%s'", r->topic, topic);
        CHECK(payload_is(r, payload, strlen(payload)), "payload mismatch at QoS %d (len %zu)", qos, r->len);
        CHECK(r->qos == qos, "received QoS %d, want %d", r->qos, qos);
        CHECK(!r->retain, "retain set on a non-retained message");
        TEST_LOG("QoS %d round trip ok", qos);
    }

    /* Delivered QoS is the minimum of publish QoS and granted QoS. */
    CHECK_RC(mqtt_publish(client, "basic-q0/down", "d", 1, MQTT5C_QOS2, false, NULL), 0);
    CHECK((r = wait_message(++n)) != NULL, "downgraded message not received");
    CHECK(strcmp(r->topic, "basic-q0/down") == 0 && r->qos == 0, "got '%s' qos %d, want basic-q0/down qos 0",
          r->topic, r->qos);
    CHECK_RC(mqtt_publish(client, "basic-q1/down", "d", 1, MQTT5C_QOS2, false, NULL), 0);
    CHECK((r = wait_message(++n)) != NULL, "downgraded message not received");
    CHECK(strcmp(r->topic, "basic-q1/down") == 0 && r->qos == 1, "got '%s' qos %d, want basic-q1/down qos 1",
          r->topic, r->qos);

    /* Binary payload with zero bytes, and an empty payload (NULL, 0). */
    {
        const unsigned char bin[] = {0x00, 0x01, 0xff, 0x00, 0x7f, 0x80};
        CHECK_RC(mqtt_publish(client, "basic/binary", bin, sizeof bin, MQTT5C_QOS1, false, NULL), 0);
        CHECK((r = wait_message(++n)) != NULL, "binary message not received");
        CHECK(payload_is(r, bin, sizeof bin), "binary payload mangled (len %zu)", r->len);
        CHECK_RC(mqtt_publish(client, "basic/empty", NULL, 0, MQTT5C_QOS1, false, NULL), 0);
        CHECK((r = wait_message(++n)) != NULL, "empty message not received");
        CHECK(strcmp(r->topic, "basic/empty") == 0 && r->len == 0, "got '%s' len %zu, want empty", r->topic,
              r->len);
    }

    /* ---- user property round trip ---- */
    props = mqtt_properties_new();
    CHECK(props != NULL, "mqtt_properties_new: %s", test_last_error());
    CHECK_RC(mqtt_properties_add_user(props, "color", "blue"), MQTT5C_OK);
    CHECK_RC(mqtt_properties_add_user(props, "color", "green"), MQTT5C_OK); /* keys may repeat */
    CHECK_RC(mqtt_properties_add_user(props, "empty-value", ""), MQTT5C_OK);
    CHECK_RC(mqtt_publish(client, "basic/props", "p", 1, MQTT5C_QOS1, false, props), 0);
    CHECK((r = wait_message(++n)) != NULL, "message with properties not received");
    CHECK(strcmp(r->topic, "basic/props") == 0, "topic '%s'", r->topic);
    CHECK(r->has_props, "mqtt_message_properties() is NULL for a message with user properties");
    /* The same properties object on subscribe/unsubscribe is accepted too. */
    CHECK_RC(mqtt_subscribe(client, "basic-props/#", MQTT5C_QOS1, props), 1);
    CHECK_RC(mqtt_unsubscribe(client, "basic-props/#", props), 0);
    mqtt_properties_free(props);
    props = NULL;
    TEST_LOG("user properties ok");

    /* ---- retain ---- */
    rc = mqtt_publish(client, "retained/t", "kept", 4, MQTT5C_QOS1, true, NULL);
    CHECK(rc == 0 || rc == 0x10, "retained publish returned %d (%s)", rc, test_strerror(rc));
    CHECK_RC(mqtt_subscribe(client, "retained/#", MQTT5C_QOS1, NULL), 1);
    CHECK((r = wait_message(++n)) != NULL, "retained message not delivered on subscribe");
    CHECK(strcmp(r->topic, "retained/t") == 0, "topic '%s'", r->topic);
    CHECK(payload_is(r, "kept", 4), "retained payload mismatch");
    CHECK(r->retain, "retain flag not set on a retained message delivered at subscribe");
    /* Live delivery clears the flag unless retain-as-published was asked for. */
    CHECK_RC(mqtt_publish(client, "retained/t", "live", 4, MQTT5C_QOS1, true, NULL), 0);
    CHECK((r = wait_message(++n)) != NULL, "live retained message not received");
    CHECK(payload_is(r, "live", 4) && !r->retain, "live retained message: retain=%d, want 0", r->retain);
    CHECK_RC(mqtt_subscribe(client, "rap/#", MQTT5C_QOS1 | MQTT5C_SUB_RETAIN_AS_PUBLISHED, NULL), 1);
    CHECK_RC(mqtt_publish(client, "rap/t", "rap", 3, MQTT5C_QOS1, true, NULL), 0);
    CHECK((r = wait_message(++n)) != NULL, "retain-as-published message not received");
    CHECK(strcmp(r->topic, "rap/t") == 0 && r->retain, "rap/t: topic '%s' retain=%d, want retain=1", r->topic,
          r->retain);
    /* Retain handling "none": no retained message on subscribe. Then a marker
     * proves nothing came before it. */
    CHECK_RC(mqtt_subscribe(client, "retained/t", MQTT5C_QOS1 | MQTT5C_SUB_RETAIN_HANDLING_NONE, NULL), 1);
    CHECK_RC(mqtt_publish(client, "basic/marker1", "m", 1, MQTT5C_QOS1, false, NULL), 0);
    CHECK((r = wait_message(++n)) != NULL, "marker not received");
    CHECK(strcmp(r->topic, "basic/marker1") == 0,
          "got '%s' before the marker: retained message sent despite RETAIN_HANDLING_NONE", r->topic);
    /* Clear the retained messages (empty retained payload). */
    CHECK_RC(mqtt_unsubscribe(client, "retained/t", NULL), 0);
    CHECK_RC(mqtt_publish(client, "retained/t", NULL, 0, MQTT5C_QOS1, true, NULL), 0);
    CHECK((r = wait_message(++n)) != NULL, "retained clear not received");
    CHECK(strcmp(r->topic, "retained/t") == 0 && r->len == 0, "got '%s' len %zu", r->topic, r->len);
    TEST_LOG("retain ok");

    /* ---- no local ---- */
    rc = mqtt_subscribe(client, "nolocal/#", MQTT5C_QOS1 | MQTT5C_SUB_NO_LOCAL, NULL);
    CHECK_RC(rc, 1);
    CHECK(MQTT5C_SUCCEEDED(rc), "granted QoS 1 read as a failure");
    rc = mqtt_publish(client, "nolocal/t", "self", 4, MQTT5C_QOS1, false, NULL);
    CHECK(rc == 0 || rc == 0x10, "publish to nolocal/t returned %d (%s)", rc, test_strerror(rc));
    CHECK_RC(mqtt_publish(client, "basic/marker2", "m", 1, MQTT5C_QOS1, false, NULL), 0);
    CHECK((r = wait_message(++n)) != NULL, "marker not received");
    CHECK(strcmp(r->topic, "basic/marker2") == 0, "got '%s' before the marker: no-local not honoured",
          r->topic);
    TEST_LOG("no local ok");

    /* ---- unsubscribe ---- */
    CHECK_RC(mqtt_unsubscribe(client, "basic/#", NULL), 0);
    /* Nobody subscribes to basic/after now: PUBACK says No matching subscribers. */
    rc = mqtt_publish(client, "basic/after", "a", 1, MQTT5C_QOS1, false, NULL);
    CHECK_RC(rc, 0x10);
    CHECK(MQTT5C_SUCCEEDED(rc), "no matching subscribers read as a failure");
    /* mosquitto answers 0x11 No subscription existed. */
    rc = mqtt_unsubscribe(client, "never/subscribed", NULL);
    CHECK_RC(rc, 0x11);
    CHECK(MQTT5C_SUCCEEDED(rc), "no subscription existed read as a failure");
    CHECK(sync_get(&st.s, &st.count) == n, "unexpected extra messages: have %ld, want %ld",
          sync_get(&st.s, &st.count), n);
    TEST_LOG("unsubscribe ok");

    /* ---- disconnect ---- */
    CHECK(sync_get(&st.s, &st.disconnected) == 0, "DISCONNECTED fired while connected (reason 0x%02x)",
          st.disconnected_reason);
    CHECK_RC(mqtt_disconnect(client, 0, NULL), MQTT5C_OK);
    CHECK(sync_wait_count(&st.s, &st.disconnected, 1, 10), "no MQTT5C_EVENT_DISCONNECTED after mqtt_disconnect");
    CHECK(st.disconnected_reason == 0, "DISCONNECTED reason 0x%02x after a normal disconnect, want 0",
          st.disconnected_reason);
    CHECK_RC(mqtt_publish(client, "basic/late", "x", 1, MQTT5C_QOS1, false, NULL), MQTT5C_ERR_NOT_CONNECTED);
    CHECK(sync_get(&st.s, &st.connected) == 1, "CONNECTED fired %ld times", sync_get(&st.s, &st.connected));
    CHECK(sync_get(&st.s, &st.other_events) == 0, "unknown connection events");
    TEST_LOG("disconnect ok");

cleanup:
    mqtt_properties_free(props);
    mqtt_options_free(opts);
    mqtt_client_free(client);
    sync_destroy(&st.s);
    if (!test_failed)
        TEST_LOG("test_basic: PASS");
    return test_failed;
}

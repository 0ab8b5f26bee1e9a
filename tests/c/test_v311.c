/*
 * MQTT 3.1.1 against mosquitto (issue 12): mqtt_options_set_protocol_version
 * (MQTT_PROTOCOL_V311) and mqtt_client_protocol_version; QoS 0/1/2 both
 * ways (the client receives its own messages: 3.1.1 has no No Local),
 * retained messages, the will, Clean Session 0 and a resumed session with
 * the messages queued for it meanwhile, the keep-alive; what only v5 has
 * refused with MQTT5C_ERR_INVALID_ARGUMENT and a specific
 * mqtt_last_error(), nothing sent (the connection carries on, nothing
 * arrives from a refused publish); bad version values refused;
 * MQTT_PROTOCOL_AUTO agreeing on v5 with a broker that speaks it;
 * mqtt_subscribe_cb routing by topic (no Subscription Identifier);
 * blocking calls from callbacks: a QoS 2 publish from a route callback,
 * a blocking mqtt_subscribe and QoS 1 mqtt_publish from the client-wide
 * message callback.
 */
#include "test_common.h"

#define MAX_MSGS 64

typedef struct {
    char topic[64];
    char payload[64];
    int qos;
    bool retain;
} msg_rec;

typedef struct {
    sync_t s;
    msg_rec msgs[MAX_MSGS];
    long count, connected, disconnected;
} box;

static box a_box, b_box;

static void on_message(void *ud, const mqtt_message *m) {
    box *b = ud;
    size_t len = 0;
    const void *p = mqtt_message_payload(m, &len);
    sync_lock(&b->s);
    if (b->count < MAX_MSGS) {
        msg_rec *r = &b->msgs[b->count];
        snprintf(r->topic, sizeof r->topic, "%s", mqtt_message_topic(m));
        snprintf(r->payload, sizeof r->payload, "%.*s", (int)(len < 63 ? len : 63),
                 p ? (const char *)p : "");
        r->qos = mqtt_message_qos(m);
        r->retain = mqtt_message_retain(m);
    }
    b->count++;
    sync_unlock_notify(&b->s);
}

static void on_connection(void *ud, int event, int reason) {
    box *b = ud;
    (void)reason;
    sync_lock(&b->s);
    if (event == MQTT5C_EVENT_CONNECTED)
        b->connected++;
    if (event == MQTT5C_EVENT_DISCONNECTED)
        b->disconnected++;
    sync_unlock_notify(&b->s);
}

/* Message n (1-based) of b, once it arrived; NULL on timeout. */
static const msg_rec *nth(box *b, long n) {
    if (!sync_wait_count(&b->s, &b->count, n, 10 * timeout_scale())) {
        fprintf(stderr, "timed out waiting for message #%ld (have %ld)\n", n,
                sync_get(&b->s, &b->count));
        return NULL;
    }
    return &b->msgs[n - 1];
}

static bool is(const msg_rec *r, const char *topic, const char *payload, int qos, bool retain) {
    if (!r)
        return false;
    if (strcmp(r->topic, topic) || strcmp(r->payload, payload) || r->qos != qos ||
        r->retain != retain) {
        fprintf(stderr, "got %s '%s' qos %d retain %d, want %s '%s' qos %d retain %d\n", r->topic,
                r->payload, r->qos, r->retain, topic, payload, qos, retain);
        return false;
    }
    return true;
}

/* A 3.1.1 client with the test defaults, callbacks into b. */
static mqtt_client *client_311(const char *id, bool clean, box *b, const char *will_topic) {
    mqtt_options *o = mqtt_options_new();
    mqtt_client *c = NULL;
    if (!o)
        return NULL;
    if (mqtt_options_set_client_id(o, id) == MQTT5C_OK &&
        mqtt_options_set_protocol_version(o, MQTT_PROTOCOL_V311) == MQTT5C_OK &&
        mqtt_options_set_clean_start(o, clean) == MQTT5C_OK &&
        mqtt_options_set_keep_alive(o, 1) == MQTT5C_OK &&
        mqtt_options_set_connect_timeout(o, (uint32_t)(10000 * timeout_scale())) == MQTT5C_OK &&
        (!will_topic ||
         mqtt_options_set_will(o, will_topic, "gone", 4, MQTT5C_QOS1, false, NULL) == MQTT5C_OK))
        c = mqtt_client_new(o);
    mqtt_options_free(o);
    if (c && b) {
        mqtt_set_message_callback(c, on_message, b);
        mqtt_set_connection_callback(c, on_connection, b);
    }
    return c;
}

/* 1 once the blocking publish made by on_echo succeeded. */
static long echo_rc;

static void on_echo(void *ud, const mqtt_message *m) {
    (void)m;
    int rc = mqtt_publish(ud, "v311/t/echo", "pong", 4, 2, false, NULL);
    sync_add(&a_box.s, &echo_rc, publish_ok(rc) ? 1 : 0);
}

/* The client-wide message callback of client e (ud): on "v311/cb2/in" it
 * subscribes to "v311/cb2/back" and publishes a QoS 1 message there, both
 * blocking, and counts each that succeeded; it records every message in
 * e_box (e gets its own message back: 3.1.1 has no No Local). */
static box e_box;
static long e_sub_ok, e_pub_ok;

static void on_blocking(void *ud, const mqtt_message *m) {
    on_message(&e_box, m);
    if (strcmp(mqtt_message_topic(m), "v311/cb2/in") != 0)
        return;
    int rc = mqtt_subscribe(ud, "v311/cb2/back", MQTT5C_QOS1, NULL);
    if (rc != 1)
        fprintf(stderr, "mqtt_subscribe in the message callback: %d (%s)\n", rc,
                mqtt_last_error());
    sync_add(&e_box.s, &e_sub_ok, rc == 1 ? 1 : 0);
    rc = mqtt_publish(ud, "v311/cb2/back", "back", 4, 1, false, NULL);
    if (!publish_ok(rc))
        fprintf(stderr, "mqtt_publish in the message callback: %d (%s)\n", rc,
                mqtt_last_error());
    sync_add(&e_box.s, &e_pub_ok, publish_ok(rc) ? 1 : 0);
}

/* The last error mentions every keyword (case-insensitively). */
static bool says(const char *k1, const char *k2) {
    const char *e = mqtt_last_error();
    if (contains_ci(e, k1) && contains_ci(e, k2))
        return true;
    fprintf(stderr, "mqtt_last_error() '%s' does not say '%s' and '%s'\n", e, k1, k2);
    return false;
}

int main(int argc, char **argv) {
    const char *url = test_url(argc, argv);
    mqtt_client *a = NULL, *b = NULL, *w = NULL, *bad = NULL, *e = NULL;
    mqtt_options *o = mqtt_options_new();
    mqtt_properties *props = mqtt_properties_new();
    mqtt_message *resp = NULL;
    memset(&a_box, 0, sizeof a_box);
    memset(&b_box, 0, sizeof b_box);
    sync_init(&a_box.s);
    sync_init(&b_box.s);
    memset(&e_box, 0, sizeof e_box);
    sync_init(&e_box.s);
    CHECK(o && props, "allocations");

    /* Bad values. */
    CHECK_RC(mqtt_options_set_protocol_version(o, 3), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK(says("protocol version 3", "MQTT_PROTOCOL_V311"), "text");
    CHECK_RC(mqtt_options_set_protocol_version(NULL, 4), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK_RC(mqtt_client_protocol_version(NULL), MQTT5C_ERR_INVALID_ARGUMENT);

    /* Connect-time refusals: a session expiry has no 3.1.1 form. */
    CHECK_RC(mqtt_options_set_protocol_version(o, MQTT_PROTOCOL_V311), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_session_expiry(o, 60), MQTT5C_OK);
    bad = mqtt_client_new(o);
    CHECK(bad != NULL, "mqtt_client_new");
    CHECK_RC(mqtt_client_protocol_version(bad), MQTT5C_ERR_NOT_CONNECTED);
    CHECK_RC(mqtt_connect(bad, url), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK(says("Session Expiry", "3.1.1"), "session expiry text");
    CHECK(!mqtt_is_connected(bad), "connected anyway");

    a = client_311("v311-a", true, &a_box, NULL);
    b = client_311("v311-b", false, &b_box, NULL);
    CHECK(a && b, "clients");
    CHECK_RC(mqtt_connect(a, url), MQTT5C_OK);
    CHECK_RC(mqtt_client_protocol_version(a), MQTT_PROTOCOL_V311);

    /* QoS 0/1/2 out and back in, granted as asked. */
    CHECK_RC(mqtt_subscribe(a, "v311/t/#", MQTT5C_QOS2, NULL), 2);
    CHECK(publish_ok(mqtt_publish(a, "v311/t/0", "zero", 4, 0, false, NULL)), "qos 0");
    CHECK(publish_ok(mqtt_publish(a, "v311/t/1", "one", 3, 1, false, NULL)), "qos 1");
    CHECK(publish_ok(mqtt_publish(a, "v311/t/2", "two", 3, 2, false, NULL)), "qos 2");
    CHECK(is(nth(&a_box, 1), "v311/t/0", "zero", 0, false), "qos 0 message");
    CHECK(is(nth(&a_box, 2), "v311/t/1", "one", 1, false), "qos 1 message");
    CHECK(is(nth(&a_box, 3), "v311/t/2", "two", 2, false), "qos 2 message");
    TEST_LOG("QoS 0/1/2 both ways over 3.1.1");

    /* What only v5 has: refused, nothing sent. */
    CHECK_RC(mqtt_properties_set_string(props, MQTT5C_PROP_CONTENT_TYPE, "text/plain"), MQTT5C_OK);
    CHECK_RC(mqtt_publish(a, "v311/t/refused", "x", 1, 1, false, props),
             MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK(says("PUBLISH properties", "3.1.1"), "publish text");
    CHECK_RC(mqtt_publish_async(a, "v311/t/refused", "x", 1, 1, false, props, NULL, NULL),
             MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK(says("PUBLISH properties", "3.1.1"), "publish_async text");
    CHECK_RC(mqtt_subscribe(a, "v311/nl", MQTT5C_QOS1 | MQTT5C_SUB_NO_LOCAL, NULL),
             MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK(says("No Local", "3.1.1"), "subscription options text");
    CHECK_RC(mqtt_subscribe(a, "v311/p", MQTT5C_QOS1, props), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK(says("SUBSCRIBE properties", "3.1.1"), "subscribe text");
    CHECK_RC(mqtt_unsubscribe(a, "v311/p", props), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK(says("UNSUBSCRIBE properties", "3.1.1"), "unsubscribe text");
    CHECK_RC(mqtt_request(a, "v311/req", "q", 1, 1, NULL, 1000, &resp),
             MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK(says("mqtt_request", "3.1.1"), "request text");
    CHECK_RC(mqtt_reauthenticate(a, NULL, 0, NULL), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK(says("re-authentication", "3.1.1"), "reauthenticate text");
    CHECK_RC(mqtt_disconnect(a, 0x04, NULL), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK(says("DISCONNECT reason code", "3.1.1"), "disconnect text");
    /* The connection carries on, and the refused publishes never went out:
     * the next message is the fourth. */
    CHECK(mqtt_is_connected(a), "the connection ended after a refusal");
    CHECK(publish_ok(mqtt_publish(a, "v311/t/after", "after", 5, 1, false, NULL)), "after");
    CHECK(is(nth(&a_box, 4), "v311/t/after", "after", 1, false), "message after the refusals");
    TEST_LOG("v5-only calls refused with a specific text, nothing sent");

    /* mqtt_subscribe_cb: routed by topic, no Subscription Identifier (3.1.1
     * has none; one was refused as a SUBSCRIBE property). */
    CHECK_RC(mqtt_subscribe_cb(a, "v311/cb/+", MQTT5C_QOS1, NULL, on_message, &a_box), 1);
    CHECK(publish_ok(mqtt_publish(a, "v311/cb/x", "routed", 6, 1, false, NULL)), "routed");
    CHECK(is(nth(&a_box, 5), "v311/cb/x", "routed", 1, false), "routed message");
    TEST_LOG("mqtt_subscribe_cb over 3.1.1");

    /* Retained: published by a, seen by b as retained when it subscribes. */
    CHECK(publish_ok(mqtt_publish(a, "v311/r", "kept", 4, 1, true, NULL)), "retained");
    CHECK_RC(mqtt_connect(b, url), MQTT5C_OK);
    CHECK_RC(mqtt_subscribe(b, "v311/r", MQTT5C_QOS1, NULL), 1);
    CHECK(is(nth(&b_box, 1), "v311/r", "kept", 1, true), "retained message");
    /* Clear it for the next run of the broker. */
    CHECK(publish_ok(mqtt_publish(a, "v311/r", "", 0, 1, true, NULL)), "clear retained");
    TEST_LOG("retained message over 3.1.1");

    /* The will: w goes away without DISCONNECT, b gets its will. */
    CHECK_RC(mqtt_subscribe(b, "v311/will", MQTT5C_QOS1, NULL), 1);
    w = client_311("v311-w", true, NULL, "v311/will");
    CHECK(w != NULL, "will client");
    CHECK_RC(mqtt_connect(w, url), MQTT5C_OK);
    mqtt_client_free(w);
    w = NULL;
    /* b's messages: the retained one (and perhaps the empty one clearing
     * it, which b's subscription also matches), then the will. */
    {
        bool got = false;
        double until = now_s() + 10 * timeout_scale();
        long seen = 1;
        while (!got && now_s() < until) {
            const msg_rec *r = nth(&b_box, seen + 1);
            CHECK(r != NULL, "no will");
            seen++;
            got = strcmp(r->topic, "v311/will") == 0 && strcmp(r->payload, "gone") == 0;
        }
        CHECK(got, "the will did not arrive");
    }
    TEST_LOG("the will over 3.1.1");

    /* Clean Session 0: b leaves, a publishes for it, b comes back to its
     * session (present) and gets the message queued meanwhile. */
    CHECK_RC(mqtt_subscribe(b, "v311/s", MQTT5C_QOS1, NULL), 1);
    CHECK_RC(mqtt_disconnect(b, 0, NULL), MQTT5C_OK);
    CHECK(publish_ok(mqtt_publish(a, "v311/s", "queued", 6, 1, false, NULL)), "queued");
    {
        long before = sync_get(&b_box.s, &b_box.count);
        const msg_rec *r;
        CHECK_RC(mqtt_connect(b, url), MQTT5C_OK);
        CHECK(mqtt_session_present(b), "no session present on the resume");
        r = nth(&b_box, before + 1);
        CHECK(is(r, "v311/s", "queued", 1, false), "message queued for the session");
    }
    TEST_LOG("Clean Session 0 and a resumed session over 3.1.1");

    /* A per-subscription callback (routed by topic: 3.1.1 has no
     * Subscription Identifier) making a blocking QoS 2 publish, whose
     * echo a's message callback gets. */
    CHECK_RC(mqtt_subscribe_cb(b, "v311/echo/in", MQTT5C_QOS1, NULL, on_echo, b), 1);
    CHECK(publish_ok(mqtt_publish(a, "v311/echo/in", "ping", 4, 1, false, NULL)), "echo in");
    CHECK(is(nth(&a_box, 6), "v311/t/echo", "pong", 2, false), "echo from a callback");
    CHECK(sync_wait_count(&a_box.s, &echo_rc, 1, 10 * timeout_scale()),
          "the blocking publish in the callback failed");
    TEST_LOG("a blocking publish from a route callback over 3.1.1");

    /* The client-wide message callback makes a blocking subscribe and a
     * blocking QoS 1 publish: both complete, and the message comes back
     * on the subscription made from the callback. */
    e = client_311("v311-e", true, NULL, NULL);
    CHECK(e != NULL, "client e");
    mqtt_set_message_callback(e, on_blocking, e);
    CHECK_RC(mqtt_connect(e, url), MQTT5C_OK);
    CHECK_RC(mqtt_subscribe(e, "v311/cb2/in", MQTT5C_QOS1, NULL), 1);
    CHECK(publish_ok(mqtt_publish(a, "v311/cb2/in", "go", 2, 1, false, NULL)), "cb2 in");
    CHECK(sync_wait_count(&e_box.s, &e_sub_ok, 1, 10 * timeout_scale()),
          "the blocking subscribe in the message callback failed");
    CHECK(sync_wait_count(&e_box.s, &e_pub_ok, 1, 10 * timeout_scale()),
          "the blocking publish in the message callback failed");
    CHECK(is(nth(&e_box, 1), "v311/cb2/in", "go", 1, false), "message into the callback");
    CHECK(is(nth(&e_box, 2), "v311/cb2/back", "back", 1, false),
          "the message published from the callback, on its subscription");
    CHECK_RC(mqtt_disconnect(e, 0, NULL), MQTT5C_OK);
    TEST_LOG("a blocking subscribe and publish from the message callback over 3.1.1");

    /* Keep-alive 1 s: idle for 3 s, mosquitto would close a client that
     * sent no PINGREQ within 1.5 s. */
    sleep_ms(3000);
    CHECK(mqtt_is_connected(a) && mqtt_is_connected(b), "lost an idle connection");
    CHECK(sync_get(&a_box.s, &a_box.disconnected) == 0, "a was disconnected");
    CHECK(publish_ok(mqtt_publish(a, "v311/t/late", "late", 4, 2, false, NULL)), "late");
    CHECK(is(nth(&a_box, 7), "v311/t/late", "late", 2, false), "message after idling");
    CHECK_RC(mqtt_unsubscribe(a, "v311/t/#", NULL), MQTT5C_OK);
    TEST_LOG("keep-alive and unsubscribe over 3.1.1");

    CHECK_RC(mqtt_disconnect(a, 0, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_disconnect(b, 0, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_client_protocol_version(a), MQTT5C_ERR_NOT_CONNECTED);

    /* MQTT_PROTOCOL_AUTO with a broker that speaks v5: v5. */
    mqtt_client_free(bad);
    bad = NULL;
    CHECK_RC(mqtt_options_set_session_expiry(o, 0), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_protocol_version(o, MQTT_PROTOCOL_AUTO), MQTT5C_OK);
    bad = mqtt_client_new(o);
    CHECK(bad != NULL, "mqtt_client_new (AUTO)");
    CHECK_RC(mqtt_connect(bad, url), MQTT5C_OK);
    CHECK_RC(mqtt_client_protocol_version(bad), MQTT_PROTOCOL_V5);
    CHECK_RC(mqtt_disconnect(bad, 0, NULL), MQTT5C_OK);
    TEST_LOG("MQTT_PROTOCOL_AUTO speaks v5 with mosquitto");

cleanup:
    mqtt_message_free(resp);
    mqtt_properties_free(props);
    mqtt_options_free(o);
    mqtt_client_free(a);
    mqtt_client_free(b);
    mqtt_client_free(w);
    mqtt_client_free(bad);
    mqtt_client_free(e);
    sync_destroy(&a_box.s);
    sync_destroy(&e_box.s);
    sync_destroy(&b_box.s);
    return test_failed ? 1 : 0;
}

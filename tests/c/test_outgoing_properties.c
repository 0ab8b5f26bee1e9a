/*
 * Properties only the server may send are refused in what the client sends
 * (issue 7, defect 15): a client PUBLISH must not carry a Subscription
 * Identifier (MQTT-3.3.4-6). mqtt_publish, mqtt_publish_async, mqtt_request
 * and the will refuse it with MQTT5C_ERR_INVALID_ARGUMENT naming the property,
 * nothing is sent and the connection stays up. A bridge that forwards a
 * received message with mqtt_message_properties(m) is refused the same way
 * (the server put Subscription Identifiers in it), and forwards once it
 * removed them from a copy.
 */
#include "test_common.h"

#define SUB_ID 7

static struct {
    sync_t s;
    long forwarded;   /* messages the bridge callback handled */
    long watched;     /* messages the watcher saw, any topic */
    long markers;     /* the watcher's fwd/marker messages */
    long out_ok;      /* fwd/out messages (forwarded without the ids) */
    long leaked;      /* messages on a topic whose publish was refused */
    int raw_rc;       /* forwarding the received properties as they are */
    bool raw_named;   /* ...and mqtt_last_error named the property */
    uint32_t raw_id;  /* the Subscription Identifier the message carried */
    int clean_rc;     /* forwarding without the Subscription Identifiers */
} st;

static mqtt_client *bridge_client;

static bool err_mentions(const char *word) {
    const char *k[] = {word, NULL};
    return last_error_mentions(k);
}

/* The bridge: forwards fwd/in/... to fwd/out/..., first as a naive bridge
 * would (the received properties as they are), then without the ids. */
static void on_bridge_message(void *ud, const mqtt_message *m) {
    (void)ud;
    const mqtt_properties *props = mqtt_message_properties(m);
    size_t len = 0;
    const void *payload = mqtt_message_payload(m, &len);
    uint32_t id = 0;
    mqtt_properties_get_int(props, MQTT5C_PROP_SUBSCRIPTION_IDENTIFIER, &id);
    int raw = mqtt_publish(bridge_client, "fwd/out/raw", payload, len, MQTT5C_QOS1, false, props);
    bool named = err_mentions("Subscription Identifier"); /* this thread's, right after the call */
    mqtt_properties *copy = mqtt_properties_copy(props);
    int clean = MQTT5C_ERR_INTERNAL;
    if (copy && mqtt_properties_remove(copy, MQTT5C_PROP_SUBSCRIPTION_IDENTIFIER) == MQTT5C_OK)
        clean = mqtt_publish(bridge_client, "fwd/out/clean", payload, len, MQTT5C_QOS1, false, copy);
    mqtt_properties_free(copy);
    sync_lock(&st.s);
    st.raw_rc = raw;
    st.raw_named = named;
    st.raw_id = id;
    st.clean_rc = clean;
    st.forwarded++;
    sync_unlock_notify(&st.s);
}

static void on_watch_message(void *ud, const mqtt_message *m) {
    (void)ud;
    const char *t = mqtt_message_topic(m);
    sync_lock(&st.s);
    st.watched++;
    if (strcmp(t, "fwd/marker") == 0)
        st.markers++;
    else if (strcmp(t, "fwd/out/clean") == 0)
        st.out_ok++;
    else if (strncmp(t, "fwd/refused/", 12) == 0 || strcmp(t, "fwd/out/raw") == 0)
        st.leaked++;
    sync_unlock_notify(&st.s);
}

static void on_async_done(void *ud, int result, const mqtt_properties *ack) {
    (void)ack;
    *(int *)ud = result; /* never runs: the call is refused */
}

/* Publishes a QoS 1 marker and waits for the watcher to see it: everything
 * published before it on this client has been routed by then. */
static bool marker_round_trip(mqtt_client *c, long want) {
    int rc = mqtt_publish(c, "fwd/marker", "m", 1, MQTT5C_QOS1, false, NULL);
    if (!publish_ok(rc)) {
        fprintf(stderr, "marker publish: %d (%s) %s\n", rc, test_strerror(rc), test_last_error());
        return false;
    }
    return sync_wait_count(&st.s, &st.markers, want, 10);
}

int main(int argc, char **argv) {
    const char *url = test_url(argc, argv);
    mqtt_client *c = NULL, *watch = NULL;
    mqtt_properties *ids = NULL, *sub = NULL;
    mqtt_options *o = NULL;
    mqtt_message *response = NULL;
    int async_result = 12345;

    sync_init(&st.s);
    c = test_client_new("outprops-bridge");
    watch = test_client_new("outprops-watch");
    CHECK(c && watch, "client creation failed");
    bridge_client = c;
    CHECK_RC(mqtt_set_message_callback(c, on_bridge_message, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_set_message_callback(watch, on_watch_message, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_connect(c, url), MQTT5C_OK);
    CHECK_RC(mqtt_connect(watch, url), MQTT5C_OK);
    CHECK_RC(mqtt_subscribe(watch, "fwd/#", MQTT5C_QOS1, NULL), 1);

    ids = mqtt_properties_new();
    CHECK(ids != NULL, "mqtt_properties_new");
    CHECK_RC(mqtt_properties_set_int(ids, MQTT5C_PROP_SUBSCRIPTION_IDENTIFIER, 5), MQTT5C_OK);
    CHECK_RC(mqtt_properties_add_user(ids, "k", "v"), MQTT5C_OK);

    /* ---- every way of publishing refuses it, naming it ---- */
    CHECK_RC(mqtt_publish(c, "fwd/refused/q1", "x", 1, MQTT5C_QOS1, false, ids), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK(err_mentions("Subscription Identifier"), "publish QoS 1: %s", test_last_error());
    CHECK_RC(mqtt_publish(c, "fwd/refused/q0", "x", 1, MQTT5C_QOS0, false, ids), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK(err_mentions("Subscription Identifier"), "publish QoS 0: %s", test_last_error());
    CHECK_RC(mqtt_publish_async(c, "fwd/refused/async", "x", 1, MQTT5C_QOS1, false, ids, on_async_done, &async_result),
             MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK(err_mentions("Subscription Identifier"), "publish_async: %s", test_last_error());
    CHECK_RC(mqtt_request(c, "fwd/refused/request", "x", 1, MQTT5C_QOS1, ids, 1000, &response),
             MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK(err_mentions("Subscription Identifier"), "request: %s", test_last_error());
    CHECK(response == NULL, "a refused request wrote its response argument");
    o = mqtt_options_new();
    CHECK(o != NULL, "mqtt_options_new");
    CHECK_RC(mqtt_options_set_will(o, "fwd/refused/will", "x", 1, MQTT5C_QOS1, false, ids), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK(err_mentions("Subscription Identifier"), "will: %s", test_last_error());

    /* Nothing was sent: the marker published after them arrives alone. */
    CHECK(marker_round_trip(c, 1), "marker not received");
    CHECK(mqtt_is_connected(c) == 1, "connection dropped after the refused calls");
    CHECK(sync_get(&st.s, &st.leaked) == 0, "a refused publish reached the broker");
    CHECK(sync_get(&st.s, &st.watched) == 1, "the watcher saw %ld messages, want only the marker",
          sync_get(&st.s, &st.watched));
    CHECK(async_result == 12345, "the refused publish_async ran its callback (%d)", async_result);
    TEST_LOG("publish, publish_async, request and will refuse a Subscription Identifier");

    /* ---- a bridge forwarding what it received ---- */
    sub = mqtt_properties_new();
    CHECK(sub != NULL, "mqtt_properties_new");
    CHECK_RC(mqtt_properties_set_int(sub, MQTT5C_PROP_SUBSCRIPTION_IDENTIFIER, SUB_ID), MQTT5C_OK);
    CHECK_RC(mqtt_subscribe(c, "fwd/in/#", MQTT5C_QOS1, sub), 1);
    CHECK(publish_ok(mqtt_publish(watch, "fwd/in/1", "payload", 7, MQTT5C_QOS1, false, NULL)), "publish to the bridge");
    CHECK(sync_wait_count(&st.s, &st.forwarded, 1, 10), "the bridge got no message");
    CHECK(sync_wait_count(&st.s, &st.out_ok, 1, 10), "the cleaned forward did not arrive");
    CHECK(marker_round_trip(c, 2), "second marker not received");
    sync_lock(&st.s);
    {
        int raw = st.raw_rc, clean = st.clean_rc;
        bool named = st.raw_named;
        uint32_t id = st.raw_id;
        long leaked = st.leaked;
        sync_unlock(&st.s);
        CHECK(id == SUB_ID, "the received message carries Subscription Identifier %u, want %d", id, SUB_ID);
        CHECK(raw == MQTT5C_ERR_INVALID_ARGUMENT && named,
              "forwarding mqtt_message_properties(m) returned %d (%s), error named the property: %d", raw,
              test_strerror(raw), named);
        CHECK(publish_ok(clean), "forwarding without the ids returned %d (%s)", clean, test_strerror(clean));
        CHECK(leaked == 0, "the refused forward reached the broker");
    }
    CHECK(mqtt_is_connected(c) == 1, "bridge connection dropped");
    TEST_LOG("a forwarded message's Subscription Identifiers are refused; without them it goes out");

    CHECK_RC(mqtt_disconnect(c, 0, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_disconnect(watch, 0, NULL), MQTT5C_OK);
    TEST_LOG("test_outgoing_properties: PASS");

cleanup:
    mqtt_client_free(c);
    mqtt_client_free(watch);
    mqtt_options_free(o);
    mqtt_properties_free(ids);
    mqtt_properties_free(sub);
    mqtt_message_free(response);
    sync_destroy(&st.s);
    return test_failed;
}

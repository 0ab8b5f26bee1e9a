/*
 * Nothing acknowledged is lost (issue 7, #12): the README's ending,
 * mqtt_disconnect then mqtt_client_free, in the middle of a stream of QoS 1
 * (then QoS 2) messages on a persistent session.
 *
 * A subscriber's session (Session Expiry 600) is subscribed and left; 3000
 * numbered messages (1000 under valgrind) are queued for it at the broker.
 * The subscriber comes back with a slow callback (2 ms per message) and,
 * after 100 callbacks, disconnects and frees the client while messages are
 * still queued for its callback. A second client object with the same id
 * resumes the session: every message published must reach a callback of
 * one or the other, because a message is acknowledged only after its
 * callback returned; what was queued but not delivered stays
 * unacknowledged and the broker sends it again.
 */
// broker-conf: max_queued_messages 0
#include "test_common.h"

#define N_MAX 3000
#define STOP_AFTER 100

static struct {
    sync_t s;
    long slow_ms;
    long callbacks;
    long distinct;
    unsigned char seen[N_MAX];
} st;

static void on_message(void *ud, const mqtt_message *m) {
    (void)ud;
    long seq = test_message_seq(m);
    sync_lock(&st.s);
    long slow = st.slow_ms;
    if (seq >= 0 && seq < N_MAX && !st.seen[seq]) {
        st.seen[seq] = 1;
        st.distinct++;
    }
    st.callbacks++;
    sync_unlock_notify(&st.s);
    if (slow > 0)
        sleep_ms(slow); /* a slow consumer, on purpose */
}

/* A client of the persistent session `id`. */
static mqtt_client *session_client(const char *id, bool clean_start) {
    mqtt_options *o = mqtt_options_new();
    mqtt_client *c = NULL;
    if (o && mqtt_options_set_client_id(o, id) == MQTT5C_OK && mqtt_options_set_clean_start(o, clean_start) == MQTT5C_OK &&
        mqtt_options_set_session_expiry(o, 600) == MQTT5C_OK &&
        mqtt_options_set_connect_timeout(o, (uint32_t)(10000 * timeout_scale())) == MQTT5C_OK)
        c = mqtt_client_new(o);
    if (!c)
        fprintf(stderr, "cannot create client %s: %s\n", id, test_last_error());
    mqtt_options_free(o);
    if (c && mqtt_set_message_callback(c, on_message, NULL) != MQTT5C_OK) {
        mqtt_client_free(c);
        c = NULL;
    }
    return c;
}

/* One round at `qos`: returns false (test_failed set) on failure. */
static bool run(const char *url, int qos, int n) {
    char id[32], topic[32], payload[16];
    mqtt_client *sub = NULL, *pub = NULL;
    long first_callbacks = 0;
    bool ok = false;

    snprintf(id, sizeof id, "ack-sub-q%d", qos);
    snprintf(topic, sizeof topic, "ack/q%d", qos);
    sync_lock(&st.s);
    memset(st.seen, 0, sizeof st.seen);
    st.callbacks = st.distinct = 0;
    st.slow_ms = 2;
    sync_unlock(&st.s);

    /* The session: subscribed, then left. */
    sub = session_client(id, true);
    CHECK(sub, "client creation failed");
    CHECK_RC(mqtt_connect(sub, url), MQTT5C_OK);
    CHECK_RC(mqtt_subscribe(sub, topic, qos, NULL), qos);
    CHECK_RC(mqtt_disconnect(sub, 0, NULL), MQTT5C_OK);
    mqtt_client_free(sub);
    sub = NULL;

    pub = test_client_new("ack-pub");
    CHECK(pub, "client creation failed");
    CHECK_RC(mqtt_connect(pub, url), MQTT5C_OK);
    for (int i = 0; i < n; i++) {
        int len = snprintf(payload, sizeof payload, "%d", i);
        int rc = mqtt_publish(pub, topic, payload, (size_t)len, qos, false, NULL);
        CHECK(publish_ok(rc), "publish %d: %d (%s) %s", i, rc, test_strerror(rc), test_last_error());
    }
    TEST_LOG("QoS %d: %d messages queued for the session", qos, n);

    /* Back with a slow callback; the README's ending mid-stream. */
    sub = session_client(id, false);
    CHECK(sub, "client creation failed");
    CHECK_RC(mqtt_connect(sub, url), MQTT5C_OK);
    CHECK(sync_wait_count(&st.s, &st.callbacks, STOP_AFTER, 30), "only %ld callbacks",
          sync_get(&st.s, &st.callbacks));
    CHECK_RC(mqtt_disconnect(sub, 0, NULL), MQTT5C_OK);
    mqtt_client_free(sub);
    sub = NULL;
    first_callbacks = sync_get(&st.s, &st.callbacks);
    CHECK(first_callbacks < n, "all %d delivered before the free: nothing tested", n);

    /* The session resumed: the broker resends what was not acknowledged. */
    sync_lock(&st.s);
    st.slow_ms = 0;
    sync_unlock(&st.s);
    sub = session_client(id, false);
    CHECK(sub, "client creation failed");
    CHECK_RC(mqtt_connect(sub, url), MQTT5C_OK);
    CHECK(sync_wait_count(&st.s, &st.distinct, n, 60),
          "QoS %d: %ld of %d messages reached a callback (%ld callbacks before the free): the rest were lost", qos,
          sync_get(&st.s, &st.distinct), n, first_callbacks);
    TEST_LOG("QoS %d: %ld callbacks before the free, all %d delivered after the resume (%ld callbacks in all)", qos,
             first_callbacks, n, sync_get(&st.s, &st.callbacks));
    CHECK_RC(mqtt_disconnect(sub, 0, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_disconnect(pub, 0, NULL), MQTT5C_OK);
    ok = true;

cleanup:
    mqtt_client_free(sub);
    mqtt_client_free(pub);
    return ok;
}

int main(int argc, char **argv) {
    const char *url = test_url(argc, argv);
    /* Fewer under valgrind, still well beyond what is delivered before
     * the free. */
    int n = timeout_scale() > 1.0 ? 1000 : N_MAX;

    sync_init(&st.s);
    if (run(url, MQTT5C_QOS1, n))
        run(url, MQTT5C_QOS2, n);
    sync_destroy(&st.s);
    if (!test_failed)
        TEST_LOG("test_ack_after_callback: PASS");
    return test_failed;
}

/*
 * A network path that dies without a word, seen from C (issue 9; the Rust
 * side is tests/blackhole.rs): the publisher reaches mosquitto through the
 * driver's TCP proxy, which stops forwarding in both directions without
 * closing anything ("blackhole-drop": it takes the bytes and drops them,
 * as a proxy whose far side died does), then forwards new connections
 * again ("forward").
 *  - MQTT5C_EVENT_DISCONNECTED (MQTT5C_ERR_TIMEOUT: the keep-alive) comes
 *    within 1.5 x the keep-alive (2 s) of the blackhole, plus a margin;
 *  - reconnect attempts go into the blackhole too, then one gets through
 *    and resumes the session;
 *  - every mqtt_publish (QoS 1, from a thread of its own, riding out the
 *    outage) that succeeded arrives at a subscriber keeping its session;
 *  - QoS 0 chatter from another thread all along does not delay the
 *    detection (its bytes are taken by the blackhole, acknowledged by TCP).
 */
// needs: proxy
#include "test_common.h"

#define KEEP_ALIVE 2
#define MAX_MSGS 100000
/* For the DISCONNECTED event to reach the callback on a loaded machine. */
#define MARGIN_S 1.0

static struct {
    sync_t s;
    long connected, disconnected, reconnecting;
    int lost_reason;
    double lost_at;
    long acked, failed, stop;
    unsigned char acked_ids[MAX_MSGS];
    unsigned char seen[MAX_MSGS];
    long seen_count;
} st;

static void on_pub_connection(void *ud, int event, int reason) {
    (void)ud;
    sync_lock(&st.s);
    if (event == MQTT5C_EVENT_CONNECTED)
        st.connected++;
    if (event == MQTT5C_EVENT_RECONNECTING)
        st.reconnecting++;
    if (event == MQTT5C_EVENT_DISCONNECTED) {
        if (st.disconnected == 0) {
            st.lost_at = now_s();
            st.lost_reason = reason;
        }
        st.disconnected++;
    }
    sync_unlock_notify(&st.s);
}

static void on_message(void *ud, const mqtt_message *m) {
    (void)ud;
    size_t len = 0;
    const char *p = mqtt_message_payload(m, &len);
    char buf[16] = {0};
    if (len == 0 || len >= sizeof buf)
        return;
    memcpy(buf, p, len);
    long i = atol(buf);
    sync_lock(&st.s);
    if (i >= 0 && i < MAX_MSGS && !st.seen[i]) {
        st.seen[i] = 1;
        st.seen_count++;
    }
    sync_unlock_notify(&st.s);
}

static void *publisher(void *arg) {
    mqtt_client *c = arg;
    for (long i = 0; i < MAX_MSGS; i++) {
        if (sync_get(&st.s, &st.stop))
            break;
        char payload[16];
        int n = snprintf(payload, sizeof payload, "%ld", i);
        int rc = mqtt_publish(c, "bhc/t", payload, (size_t)n, MQTT5C_QOS1, false, NULL);
        sync_lock(&st.s);
        if (publish_ok(rc)) {
            st.acked_ids[i] = 1;
            st.acked++;
        } else {
            st.failed++;
            fprintf(stderr, "publish %ld returned %d (%s): %s\n", i, rc, test_strerror(rc),
                    test_last_error());
        }
        sync_unlock_notify(&st.s);
    }
    return NULL;
}

/* QoS 0 chatter all along (not counted): the client keeps writing, and the
 * blackhole takes the bytes, so only the broker's silence can make the
 * keep-alive's PINGREQ due, and TCP acknowledgements of our bytes must not
 * pass for the broker's life. */
static void *chatter(void *arg) {
    mqtt_client *c = arg;
    static const char noise[512];
    while (!sync_get(&st.s, &st.stop)) {
        mqtt_publish(c, "chatter", noise, sizeof noise, MQTT5C_QOS0, false, NULL);
        sleep_ms(5); /* a pace, not a wait for anything */
    }
    return NULL;
}

static mqtt_client *make(const char *id, int keep_alive) {
    mqtt_options *o = mqtt_options_new();
    mqtt_client *c = NULL;
    if (!o)
        return NULL;
    if (mqtt_options_set_client_id(o, id) == MQTT5C_OK &&
        mqtt_options_set_keep_alive(o, (uint16_t)keep_alive) == MQTT5C_OK &&
        /* An attempt that goes into the blackhole gives up soon. */
        mqtt_options_set_connect_timeout(o, 1000) == MQTT5C_OK &&
        mqtt_options_set_operation_timeout(o, (uint32_t)(120000 * timeout_scale())) == MQTT5C_OK &&
        mqtt_options_set_auto_reconnect(o, 50, 300) == MQTT5C_OK &&
        mqtt_options_set_clean_start(o, false) == MQTT5C_OK &&
        mqtt_options_set_session_expiry(o, 600) == MQTT5C_OK)
        c = mqtt_client_new(o);
    mqtt_options_free(o);
    return c;
}

int main(int argc, char **argv) {
    const char *url = test_url(argc, argv);
    const char *proxy_port = getenv("MQTT_TEST_PROXY_PORT");
    char proxy_url[64];
    mqtt_client *p = NULL, *s = NULL;
    pthread_t thread, chatter_thread;
    bool started = false, chatting = false, holed = false;
    memset(&st, 0, sizeof st);
    sync_init(&st.s);
    CHECK(proxy_port && *proxy_port, "MQTT_TEST_PROXY_PORT not set");
    snprintf(proxy_url, sizeof proxy_url, "mqtt://127.0.0.1:%s", proxy_port);

    s = make("bhc-sub", 60);
    p = make("bhc-pub", KEEP_ALIVE);
    CHECK(p && s, "clients: %s", test_last_error());
    CHECK_RC(mqtt_set_message_callback(s, on_message, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_set_connection_callback(p, on_pub_connection, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_connect(s, url), MQTT5C_OK);
    CHECK_RC(mqtt_subscribe(s, "bhc/#", MQTT5C_QOS1, NULL), MQTT5C_QOS1);
    CHECK_RC(mqtt_connect(p, proxy_url), MQTT5C_OK);
    CHECK(pthread_create(&thread, NULL, publisher, p) == 0, "pthread_create");
    started = true;
    CHECK(pthread_create(&chatter_thread, NULL, chatter, p) == 0, "pthread_create");
    chatting = true;
    CHECK(sync_wait_count(&st.s, &st.acked, 100, 30), "the stream did not start");

    long connects = sync_get(&st.s, &st.connected);
    CHECK(broker_control("blackhole-drop"), "blackhole");
    holed = true;
    double t0 = now_s();
    CHECK(sync_wait_count(&st.s, &st.disconnected, 1, 30), "the blackhole was never found");
    sync_lock(&st.s);
    double found = st.lost_at - t0;
    int reason = st.lost_reason;
    long in_hole = st.acked;
    sync_unlock(&st.s);
    CHECK(reason == MQTT5C_ERR_TIMEOUT, "DISCONNECTED with %d (%s), want the keep-alive's timeout",
          reason, test_strerror(reason));
    CHECK(found <= 1.5 * KEEP_ALIVE + MARGIN_S * timeout_scale(),
          "found after %.2f s, over 1.5 x %d s + %.1f s", found, KEEP_ALIVE, MARGIN_S);
    TEST_LOG("blackhole found by the keep-alive after %.2f s", found);
    CHECK(sync_wait_count(&st.s, &st.reconnecting, 2, 30), "no second reconnect attempt");
    CHECK(sync_get(&st.s, &st.connected) == connects, "connected through the blackhole");
    CHECK(sync_get(&st.s, &st.acked) == in_hole, "a publish succeeded through the blackhole");

    CHECK(broker_control("forward"), "forward");
    holed = false;
    CHECK(sync_wait_count(&st.s, &st.connected, connects + 1, 30),
          "no reconnect once forwarding again");
    CHECK_RC(mqtt_session_present(p), 1);
    CHECK(sync_wait_count(&st.s, &st.acked, in_hole + 100, 30), "the stream did not go on");
    sync_add(&st.s, &st.stop, 1);
    pthread_join(thread, NULL);
    started = false;
    pthread_join(chatter_thread, NULL);
    chatting = false;
    CHECK(sync_get(&st.s, &st.failed) == 0, "publishes failed");

    {
        long want = sync_get(&st.s, &st.acked);
        struct timespec deadline = deadline_after(30);
        long missing = 0, first_missing = -1;
        sync_lock(&st.s);
        for (;;) {
            missing = 0;
            first_missing = -1;
            for (long i = 0; i < MAX_MSGS; i++)
                if (st.acked_ids[i] && !st.seen[i]) {
                    missing++;
                    if (first_missing < 0)
                        first_missing = i;
                }
            if (missing == 0 || !sync_wait_locked(&st.s, &deadline))
                break;
        }
        sync_unlock(&st.s);
        CHECK(missing == 0, "%ld of %ld acknowledged messages never arrived (first: %ld)", missing,
              want, first_missing);
        TEST_LOG("%ld messages acknowledged, all arrived", want);
    }
    CHECK_RC(mqtt_disconnect(p, 0, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_disconnect(s, 0, NULL), MQTT5C_OK);

cleanup:
    if (holed)
        broker_control("forward");
    if (started) {
        /* Stops the reconnection: a publish waiting for it returns. */
        sync_add(&st.s, &st.stop, 1);
        mqtt_disconnect(p, 0, NULL);
        pthread_join(thread, NULL);
    }
    if (chatting) {
        sync_add(&st.s, &st.stop, 1);
        pthread_join(chatter_thread, NULL);
    }
    mqtt_client_free(p);
    mqtt_client_free(s);
    sync_destroy(&st.s);
    return test_failed ? 1 : 0;
}

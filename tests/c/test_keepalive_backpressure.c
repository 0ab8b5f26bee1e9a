/*
 * A slow callback does not make a healthy broker look dead (issue 7, #6).
 *
 * The subscriber has a delivery queue of 10, a keep-alive of 2 s and a
 * callback that takes 200 ms per message; 50 QoS 0 messages arrive at once,
 * so its reader stops reading for about 8 s (four keep-alive intervals)
 * while the queue is full, and the PINGRESP to its PINGREQ waits in the
 * socket behind the messages. QoS 0, so that no acknowledgement is sent
 * meanwhile and the keep-alive has to send PINGREQ. The connection must
 * stay up: no MQTT5C_EVENT_DISCONNECTED, all 50 messages delivered in order.
 */
#include "test_common.h"

#define N_MSGS 50
#define LIMIT 10
#define KEEP_ALIVE_S 2
#define CALLBACK_MS 200

static struct {
    sync_t s;
    long received;
    long out_of_order;
    long disconnects;
    int reason;
} st;

static void on_message(void *ud, const mqtt_message *m) {
    (void)ud;
    long seq = test_message_seq(m);
    sleep_ms(CALLBACK_MS); /* a slow consumer, on purpose */
    sync_lock(&st.s);
    if (seq != st.received)
        st.out_of_order++;
    st.received++;
    sync_unlock_notify(&st.s);
}

static void on_connection(void *ud, int event, int reason) {
    (void)ud;
    if (event != MQTT5C_EVENT_DISCONNECTED)
        return;
    sync_lock(&st.s);
    st.disconnects++;
    st.reason = reason;
    sync_unlock_notify(&st.s);
}

/* Waits until every message arrived or the connection was lost. */
static bool wait_all_or_disconnect(double seconds) {
    struct timespec deadline = deadline_after(seconds);
    bool in_time = true;
    sync_lock(&st.s);
    while (st.received < N_MSGS && st.disconnects == 0 && in_time)
        in_time = sync_wait_locked(&st.s, &deadline);
    in_time = st.received >= N_MSGS || st.disconnects > 0;
    sync_unlock(&st.s);
    return in_time;
}

int main(int argc, char **argv) {
    const char *url = test_url(argc, argv);
    mqtt_options *o = NULL;
    mqtt_client *sub = NULL, *pub = NULL;
    char payload[16];
    double t0;

    sync_init(&st.s);
    o = mqtt_options_new();
    CHECK(o, "options");
    CHECK_RC(mqtt_options_set_client_id(o, "ka-bp-sub"), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_keep_alive(o, KEEP_ALIVE_S), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_delivery_queue_limit(o, LIMIT), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_connect_timeout(o, (uint32_t)(10000 * timeout_scale())), MQTT5C_OK);
    sub = mqtt_client_new(o);
    pub = test_client_new("ka-bp-pub");
    CHECK(sub && pub, "client creation failed");
    CHECK_RC(mqtt_set_message_callback(sub, on_message, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_set_connection_callback(sub, on_connection, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_connect(sub, url), MQTT5C_OK);
    CHECK_RC(mqtt_connect(pub, url), MQTT5C_OK);
    CHECK_RC(mqtt_subscribe(sub, "ka/t", MQTT5C_QOS0, NULL), 0);

    t0 = now_s();
    for (int i = 0; i < N_MSGS; i++) {
        int n = snprintf(payload, sizeof payload, "%d", i);
        CHECK_RC(mqtt_publish(pub, "ka/t", payload, (size_t)n, MQTT5C_QOS0, false, NULL), MQTT5C_OK);
    }
    CHECK(wait_all_or_disconnect(30 + N_MSGS * CALLBACK_MS / 1000.0), "received %ld of %d (disconnects: %ld)",
          sync_get(&st.s, &st.received), N_MSGS, sync_get(&st.s, &st.disconnects));
    TEST_LOG("%d messages at %d ms each took %.1f s with a %d s keep-alive", N_MSGS, CALLBACK_MS, now_s() - t0,
             KEEP_ALIVE_S);
    sync_lock(&st.s);
    {
        long disconnects = st.disconnects, ooo = st.out_of_order;
        int reason = st.reason;
        sync_unlock(&st.s);
        CHECK(disconnects == 0, "%ld disconnects (last reason %d: %s) against a healthy broker", disconnects, reason,
              test_strerror(reason));
        CHECK(ooo == 0, "%ld messages out of order", ooo);
    }
    CHECK_RC(mqtt_is_connected(sub), 1);
    CHECK_RC(mqtt_disconnect(sub, 0, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_disconnect(pub, 0, NULL), MQTT5C_OK);

cleanup:
    mqtt_options_free(o);
    mqtt_client_free(sub);
    mqtt_client_free(pub);
    sync_destroy(&st.s);
    if (!test_failed)
        TEST_LOG("test_keepalive_backpressure: PASS");
    return test_failed;
}

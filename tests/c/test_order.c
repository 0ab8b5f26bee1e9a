/*
 * Ordering under a slow consumer: the subscriber's callback takes a few ms per
 * message for the first messages, so the library must buffer while the
 * publisher sends 2000 numbered QoS 1 messages. All arrive, in order, none
 * twice.
 */
// broker-conf: max_queued_messages 0
#include "test_common.h"

#define N_MSGS 2000
#define N_SLOW 100
#define SLOW_MS 3

static struct {
    sync_t s;
    long received;
    long out_of_order;
    long first_bad_seq;
    long first_bad_want;
    long wrong_qos;
    long after_marker;
    long marker;
} st;

static void on_message(void *ud, const mqtt_message *m) {
    (void)ud;
    long seq = test_message_seq(m);
    const char *topic = mqtt_message_topic(m);
    if (topic && strcmp(topic, "order/marker") == 0) {
        sync_add(&st.s, &st.marker, 1);
        return;
    }

    sync_lock(&st.s);
    long n = st.received;
    if (seq != n && st.out_of_order++ == 0) {
        st.first_bad_seq = seq;
        st.first_bad_want = n;
    }
    if (mqtt_message_qos(m) != MQTT5C_QOS1)
        st.wrong_qos++;
    if (st.marker > 0)
        st.after_marker++;
    st.received++;
    sync_unlock_notify(&st.s);

    if (n < N_SLOW)
        sleep_ms(SLOW_MS); /* the slow consumer */
}

int main(int argc, char **argv) {
    const char *url = test_url(argc, argv);
    mqtt_client *sub = NULL, *pub = NULL;
    char payload[32];
    double t0;

    sync_init(&st.s);
    sub = test_client_new("order-sub");
    pub = test_client_new("order-pub");
    CHECK(sub && pub, "client creation failed");
    CHECK_RC(mqtt_set_message_callback(sub, on_message, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_connect(sub, url), MQTT5C_OK);
    CHECK_RC(mqtt_connect(pub, url), MQTT5C_OK);
    CHECK_RC(mqtt_subscribe(sub, "order/#", MQTT5C_QOS1, NULL), 1);

    t0 = now_s();
    for (int i = 0; i < N_MSGS; i++) {
        snprintf(payload, sizeof payload, "%d", i);
        CHECK_RC(mqtt_publish(pub, "order/seq", payload, strlen(payload), MQTT5C_QOS1, false, NULL), 0);
    }
    TEST_LOG("published %d in %.2f s", N_MSGS, now_s() - t0);
    CHECK(sync_wait_count(&st.s, &st.received, N_MSGS, 60), "received %ld of %d", sync_get(&st.s, &st.received),
          N_MSGS);
    /* A marker after the last message: anything numbered arriving after it
     * would be a duplicate. */
    CHECK_RC(mqtt_publish(pub, "order/marker", "m", 1, MQTT5C_QOS1, false, NULL), 0);
    CHECK(sync_wait_count(&st.s, &st.marker, 1, 10), "marker not received");
    TEST_LOG("received %d in %.2f s", N_MSGS, now_s() - t0);

    sync_lock(&st.s);
    {
        long received = st.received, ooo = st.out_of_order, bad = st.first_bad_seq, want = st.first_bad_want;
        long wrong_qos = st.wrong_qos, after = st.after_marker;
        sync_unlock(&st.s);
        CHECK(ooo == 0, "%ld messages out of order or duplicated (first: got %ld, want %ld)", ooo, bad, want);
        CHECK(received == N_MSGS, "received %ld numbered messages, want exactly %d", received, N_MSGS);
        CHECK(after == 0, "%ld numbered messages arrived after the marker", after);
        CHECK(wrong_qos == 0, "%ld messages not delivered at QoS 1", wrong_qos);
    }
    CHECK_RC(mqtt_disconnect(sub, 0, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_disconnect(pub, 0, NULL), MQTT5C_OK);

cleanup:
    mqtt_client_free(pub);
    mqtt_client_free(sub);
    sync_destroy(&st.s);
    if (!test_failed)
        TEST_LOG("test_order: PASS");
    return test_failed;
}

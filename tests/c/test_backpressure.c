/*
 * A slow callback slows reading from the socket; memory stays bounded and
 * nothing is dropped or reordered. The subscriber's delivery queue holds
 * 10 messages; its callback stalls on the first message until the test
 * releases it, while another client publishes 3000 numbered QoS 1 messages.
 * The queue fills to its limit and no further (MQTT5C_STAT_DELIVERY_QUEUE_PEAK
 * stays at most 10 for the whole run, so the reader stopped reading instead
 * of buffering); after the release all 3000 arrive, in order, once.
 */
// broker-conf: max_queued_messages 0
#include "test_common.h"

#define N_MSGS 3000
#define LIMIT 10

static struct {
    sync_t s;
    long received;
    long out_of_order;
    long released;
    long stalled;
} st;

static void on_message(void *ud, const mqtt_message *m) {
    (void)ud;
    long seq = test_message_seq(m);
    sync_lock(&st.s);
    if (seq != st.received)
        st.out_of_order++;
    st.received++;
    if (st.received == 1) {
        /* Stall the first delivery until the test has seen the queue full. */
        st.stalled = 1;
        pthread_cond_broadcast(&st.s.cv);
        struct timespec deadline = deadline_after(60);
        while (!st.released && sync_wait_locked(&st.s, &deadline)) {
        }
    }
    sync_unlock_notify(&st.s);
}

static uint64_t queue_peak(mqtt_client *c) {
    uint64_t v = 0;
    if (mqtt_client_get_stat(c, MQTT5C_STAT_DELIVERY_QUEUE_PEAK, &v) != MQTT5C_OK)
        return UINT64_MAX;
    return v;
}

int main(int argc, char **argv) {
    const char *url = test_url(argc, argv);
    mqtt_client *sub = NULL, *pub = NULL;
    char payload[16];
    uint64_t peak = 0;
    double end;

    sync_init(&st.s);
    sub = test_client_new_queue("bp-sub", LIMIT);
    pub = test_client_new("bp-pub");
    CHECK(sub && pub, "client creation failed");
    CHECK_RC(mqtt_set_message_callback(sub, on_message, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_connect(sub, url), MQTT5C_OK);
    CHECK_RC(mqtt_connect(pub, url), MQTT5C_OK);
    CHECK_RC(mqtt_subscribe(sub, "bp/t", MQTT5C_QOS1, NULL), 1);

    for (int i = 0; i < N_MSGS; i++) {
        int n = snprintf(payload, sizeof payload, "%d", i);
        int rc = mqtt_publish(pub, "bp/t", payload, (size_t)n, MQTT5C_QOS1, false, NULL);
        CHECK(publish_ok(rc), "publish %d: %d (%s) %s", i, rc, test_strerror(rc), test_last_error());
    }
    TEST_LOG("published %d while the subscriber's callback stalls", N_MSGS);

    /* The queue fills up to its limit. Polling the counter: there is no
     * event for it. */
    end = now_s() + 10 * timeout_scale();
    while ((peak = queue_peak(sub)) < LIMIT && now_s() < end)
        sleep_ms(10);
    CHECK(peak == LIMIT, "delivery queue peak %llu, want the limit %d", (unsigned long long)peak, LIMIT);
    sync_lock(&st.s);
    CHECK(st.stalled && st.received == 1, "callback not stalled on the first message (received %ld)",
          st.received);
    st.released = 1;
    sync_unlock_notify(&st.s);

    CHECK(sync_wait_count(&st.s, &st.received, N_MSGS, 60), "received %ld of %d",
          sync_get(&st.s, &st.received), N_MSGS);
    CHECK(sync_get(&st.s, &st.out_of_order) == 0, "%ld messages out of order",
          sync_get(&st.s, &st.out_of_order));
    peak = queue_peak(sub);
    CHECK(peak <= LIMIT, "delivery queue peaked at %llu messages, above its limit %d",
          (unsigned long long)peak, LIMIT);
    TEST_LOG("all %d arrived in order; queue peak %llu (limit %d)", N_MSGS, (unsigned long long)peak, LIMIT);

cleanup:
    sync_lock(&st.s);
    st.released = 1;
    sync_unlock_notify(&st.s);
    mqtt_client_free(sub);
    mqtt_client_free(pub);
    sync_destroy(&st.s);
    return test_failed;
}

/*
 * Memory stays bounded while a callback blocks (issue 7, #7).
 *
 * Client A (delivery queue limit 10, Receive Maximum 10) gets a trigger
 * message; its callback makes an mqtt_request that a responder answers
 * after 3 s. Meanwhile client F floods A with QoS 0 messages and, every
 * tenth, a QoS 1 one. While its callback blocks, A's reader goes on
 * reading (the response must get through), so:
 * - the request succeeds: the response is neither stuck behind queued
 *   messages nor held back by the broker's flow control, though the QoS 1
 *   flood fills A's Receive Maximum (they are acknowledged only after their
 *   callbacks, and the trigger's callback is the one waiting);
 * - A's delivery queue never holds more than the limit, plus the limit
 *   again in QoS 0 messages, plus the Receive Maximum in QoS 1/2 messages
 *   (MQTT5C_STAT_DELIVERY_QUEUE_PEAK <= 30): mosquitto keeps our Receive
 *   Maximum for unacknowledged messages (the stated bound allows twice
 *   it, for brokers that exceed it in bursts);
 * - QoS 0 messages beyond that were dropped and counted: each QoS 0 flood
 *   message was either delivered or counted in MQTT5C_STAT_QOS0_DROPPED, and
 *   every QoS 1 flood message was delivered.
 */
// broker-conf: max_queued_messages 0
#include "test_common.h"

#define LIMIT 10
#define RECEIVE_MAX 10
#define RESPONDER_DELAY_MS 3000

static const char *url;
static mqtt_client *a, *responder, *flooder;

static struct {
    sync_t s;
    /* A */
    long request_done;
    int request_rc;
    char answer[32];
    long q0_received, q1_received;
    /* F */
    long q0_published, q1_published;
    long flood_stop;
    long flood_failures;
} st;

static void a_on_message(void *ud, const mqtt_message *m) {
    (void)ud;
    const char *topic = mqtt_message_topic(m);
    if (!topic)
        return;
    if (strcmp(topic, "bb/trigger") == 0) {
        mqtt_message *r = NULL;
        int rc = mqtt_request(a, "bb/svc", "q", 1, MQTT5C_QOS1, NULL, (uint32_t)(30000 * timeout_scale()), &r);
        sync_lock(&st.s);
        st.request_rc = rc;
        if (r) {
            size_t len = 0;
            const char *p = mqtt_message_payload(r, &len);
            snprintf(st.answer, sizeof st.answer, "%.*s", (int)(len < 30 ? len : 30), p);
        }
        st.request_done = 1;
        sync_unlock_notify(&st.s);
        mqtt_message_free(r);
    } else if (strcmp(topic, "bb/flood/0") == 0) {
        sync_add(&st.s, &st.q0_received, 1);
    } else if (strcmp(topic, "bb/flood/1") == 0) {
        sync_add(&st.s, &st.q1_received, 1);
    }
}

/* Answers each request after a delay, at QoS 1. */
static void responder_on_message(void *ud, const mqtt_message *m) {
    (void)ud;
    const mqtt_properties *p = mqtt_message_properties(m);
    const char *rt = mqtt_properties_get_string(p, MQTT5C_PROP_RESPONSE_TOPIC);
    size_t cdlen = 0;
    const void *cd = mqtt_properties_get_binary(p, MQTT5C_PROP_CORRELATION_DATA, &cdlen);
    if (!rt || !cd)
        return;
    sleep_ms(RESPONDER_DELAY_MS); /* a slow service, on purpose */
    mqtt_properties *rp = mqtt_properties_new();
    mqtt_properties_set_binary(rp, MQTT5C_PROP_CORRELATION_DATA, cd, cdlen);
    if (mqtt_publish(responder, rt, "answer", 6, MQTT5C_QOS1, false, rp) < 0)
        fprintf(stderr, "responder publish: %s\n", test_last_error());
    mqtt_properties_free(rp);
}

/* Floods A until told to stop. */
static void *flood(void *arg) {
    (void)arg;
    char payload[16];
    for (long i = 0;; i++) {
        sync_lock(&st.s);
        bool stop = st.flood_stop != 0;
        sync_unlock(&st.s);
        if (stop)
            break;
        int n = snprintf(payload, sizeof payload, "%ld", i);
        bool q1 = i % 10 == 9;
        int rc = mqtt_publish(flooder, q1 ? "bb/flood/1" : "bb/flood/0", payload, (size_t)n,
                              q1 ? MQTT5C_QOS1 : MQTT5C_QOS0, false, NULL);
        sync_lock(&st.s);
        if (!publish_ok(rc))
            st.flood_failures++;
        else if (q1)
            st.q1_published++;
        else
            st.q0_published++;
        sync_unlock(&st.s);
    }
    return NULL;
}

static uint64_t stat(mqtt_client *c, int which) {
    uint64_t v = 0;
    if (mqtt_client_get_stat(c, which, &v) != MQTT5C_OK)
        return UINT64_MAX;
    return v;
}

int main(int argc, char **argv) {
    mqtt_options *o = NULL;
    pthread_t flood_thread;
    bool flooding = false;
    uint64_t peak, dropped;
    long q0_published, q1_published;

    url = test_url(argc, argv);
    sync_init(&st.s);
    o = mqtt_options_new();
    CHECK(o, "options");
    CHECK_RC(mqtt_options_set_client_id(o, "bb-a"), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_delivery_queue_limit(o, LIMIT), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_receive_maximum(o, RECEIVE_MAX), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_connect_timeout(o, (uint32_t)(10000 * timeout_scale())), MQTT5C_OK);
    a = mqtt_client_new(o);
    responder = test_client_new("bb-responder");
    flooder = test_client_new("bb-flooder");
    CHECK(a && responder && flooder, "client creation failed");
    CHECK_RC(mqtt_set_message_callback(a, a_on_message, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_set_message_callback(responder, responder_on_message, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_connect(a, url), MQTT5C_OK);
    CHECK_RC(mqtt_connect(responder, url), MQTT5C_OK);
    CHECK_RC(mqtt_connect(flooder, url), MQTT5C_OK);
    CHECK_RC(mqtt_subscribe(responder, "bb/svc", MQTT5C_QOS1, NULL), 1);
    CHECK_RC(mqtt_subscribe(a, "bb/flood/#", MQTT5C_QOS1, NULL), 1);
    CHECK_RC(mqtt_subscribe(a, "bb/trigger", MQTT5C_QOS1, NULL), 1);

    CHECK_RC(mqtt_publish(flooder, "bb/trigger", "go", 2, MQTT5C_QOS1, false, NULL), MQTT5C_OK);
    CHECK(pthread_create(&flood_thread, NULL, flood, NULL) == 0, "pthread_create");
    flooding = true;
    CHECK(sync_wait_count(&st.s, &st.request_done, 1, 60), "the request in A's callback did not return");
    sync_lock(&st.s);
    st.flood_stop = 1;
    sync_unlock(&st.s);
    pthread_join(flood_thread, NULL);
    flooding = false;
    sync_lock(&st.s);
    q0_published = st.q0_published;
    q1_published = st.q1_published;
    sync_unlock(&st.s);
    TEST_LOG("flood while the callback waited: %ld QoS 0, %ld QoS 1 (exceeded so far %llu)", q0_published, q1_published, (unsigned long long)stat(a, MQTT5C_STAT_RECEIVE_MAXIMUM_EXCEEDED));
    CHECK(sync_get(&st.s, &st.flood_failures) == 0, "flood publishes failed");
    CHECK(st.request_rc == MQTT5C_OK && strcmp(st.answer, "answer") == 0,
          "request from the callback: rc %d (%s), answer '%s'", st.request_rc, test_strerror(st.request_rc),
          st.answer);

    /* Every QoS 1 flood message arrives; the last one is behind every QoS 0
     * message published before it. */
    CHECK(sync_wait_count(&st.s, &st.q1_received, q1_published, 60), "QoS 1 flood: %ld of %ld delivered",
          sync_get(&st.s, &st.q1_received), q1_published);
    peak = stat(a, MQTT5C_STAT_DELIVERY_QUEUE_PEAK);
    dropped = stat(a, MQTT5C_STAT_QOS0_DROPPED);
    TEST_LOG("A: queue peak %llu (bound %d), %llu QoS 0 dropped, %ld delivered, inbound in flight peak %llu, exceeded %llu",
             (unsigned long long)peak, 2 * LIMIT + RECEIVE_MAX, (unsigned long long)dropped,
             sync_get(&st.s, &st.q0_received), (unsigned long long)stat(a, MQTT5C_STAT_INBOUND_INFLIGHT_PEAK), (unsigned long long)stat(a, MQTT5C_STAT_RECEIVE_MAXIMUM_EXCEEDED));
    CHECK(peak <= 2 * LIMIT + RECEIVE_MAX, "A's delivery queue peaked at %llu, above the bound %d",
          (unsigned long long)peak, 2 * LIMIT + RECEIVE_MAX);
    CHECK(dropped > 0 && dropped != UINT64_MAX, "no QoS 0 message dropped (%llu): the flood did not test the bound",
          (unsigned long long)dropped);
    /* Messages past the last QoS 1 one may still be on their way. */
    CHECK(sync_wait_count(&st.s, &st.q0_received, q0_published - (long)dropped, 60),
          "QoS 0 flood: %ld delivered + %llu dropped of %ld", sync_get(&st.s, &st.q0_received),
          (unsigned long long)dropped, q0_published);
    CHECK(sync_get(&st.s, &st.q0_received) + (long)dropped == q0_published,
          "QoS 0 flood: %ld delivered + %llu dropped != %ld published", sync_get(&st.s, &st.q0_received),
          (unsigned long long)dropped, q0_published);
    CHECK_RC(mqtt_disconnect(a, 0, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_disconnect(responder, 0, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_disconnect(flooder, 0, NULL), MQTT5C_OK);

cleanup:
    if (flooding) {
        sync_lock(&st.s);
        st.flood_stop = 1;
        sync_unlock(&st.s);
        pthread_join(flood_thread, NULL);
    }
    mqtt_options_free(o);
    mqtt_client_free(a);
    mqtt_client_free(responder);
    mqtt_client_free(flooder);
    sync_destroy(&st.s);
    if (!test_failed)
        TEST_LOG("test_blocking_bound: PASS");
    return test_failed;
}

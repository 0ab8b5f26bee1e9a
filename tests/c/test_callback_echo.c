/*
 * Blocking calls from inside the message callback.
 *
 * Part 1: client A subscribes to req/#; its callback republishes every message
 * at QoS 1 to echo/... (a blocking call inside the callback) and, once, calls
 * mqtt_subscribe from inside the callback. Client B subscribes to echo/# and
 * publishes 1000 QoS 1 requests: all 1000 echoes arrive, in order.
 *
 * Part 2: while client C floods A with QoS 0 and QoS 1 messages, A's callback
 * publishes QoS 1 for each one. Nothing deadlocks: every QoS 1 flood message
 * is echoed exactly once and every publish from the callback succeeds. A's
 * delivery queue holds 4 messages, so the flood keeps it full while the
 * callback waits; the reader goes on reading then, queueing QoS 1 messages
 * (unacknowledged until their callbacks, so bounded by the broker's flow
 * control) and QoS 0 ones up to a second allowance of 4: each QoS 0 flood
 * message is echoed at most once, and those not echoed are exactly the
 * ones A counted as dropped (MQTT5C_STAT_QOS0_DROPPED).
 */
// broker-conf: max_queued_messages 0
#include "test_common.h"

#define N_REQ 1000
#define N_FLOOD 2000

static struct {
    sync_t s;
    mqtt_client *a;
    /* A's callback */
    long a_req_seen;
    long a_req2_seen;
    long a_flood_seen;
    long a_publish_failures;
    int a_first_failure;
    int a_subscribe_rc;
    bool a_subscribed_inside;
    /* B's echo/# */
    long echoes;
    long echo_out_of_order;
    long echo_first_bad;
    /* B's floodecho/# */
    long flood_echoes;
    long flood_qos1_echoes;
    long flood_dups;
    unsigned char flood_seen[N_FLOOD];
} st;

static void a_on_message(void *ud, const mqtt_message *m) {
    (void)ud;
    const char *topic = mqtt_message_topic(m);
    size_t len = 0;
    const void *payload = mqtt_message_payload(m, &len);
    char out[128];
    int rc;

    if (!topic)
        return;
    if (strncmp(topic, "req/", 4) == 0) {
        bool first;
        sync_lock(&st.s);
        first = !st.a_subscribed_inside;
        st.a_subscribed_inside = true;
        sync_unlock(&st.s);
        if (first) {
            /* A blocking SUBSCRIBE from inside the callback. */
            rc = mqtt_subscribe(st.a, "req2/#", MQTT5C_QOS1, NULL);
            sync_lock(&st.s);
            st.a_subscribe_rc = rc;
            sync_unlock_notify(&st.s);
        }
        snprintf(out, sizeof out, "echo/%s", topic + 4);
        rc = mqtt_publish(st.a, out, payload, len, MQTT5C_QOS1, false, NULL);
        sync_lock(&st.s);
        if (rc != 0) {
            if (st.a_publish_failures++ == 0)
                st.a_first_failure = rc;
        }
        st.a_req_seen++;
        sync_unlock_notify(&st.s);
    } else if (strncmp(topic, "req2/", 5) == 0) {
        sync_add(&st.s, &st.a_req2_seen, 1);
    } else if (strncmp(topic, "flood/", 6) == 0) {
        snprintf(out, sizeof out, "floodecho/%s", topic + 6);
        rc = mqtt_publish(st.a, out, payload, len, MQTT5C_QOS1, false, NULL);
        sync_lock(&st.s);
        if (rc != 0) {
            if (st.a_publish_failures++ == 0)
                st.a_first_failure = rc;
        }
        st.a_flood_seen++;
        sync_unlock_notify(&st.s);
    }
}

/* Payload "<n>" as a number, or -1. */
static long payload_number(const mqtt_message *m) {
    size_t len = 0;
    const char *p = mqtt_message_payload(m, &len);
    char buf[32];
    if (!p || len == 0 || len >= sizeof buf)
        return -1;
    memcpy(buf, p, len);
    buf[len] = '\0';
    return strtol(buf, NULL, 10);
}

static void b_on_message(void *ud, const mqtt_message *m) {
    (void)ud;
    const char *topic = mqtt_message_topic(m);
    long seq = payload_number(m);
    if (!topic)
        return;
    sync_lock(&st.s);
    if (strncmp(topic, "echo/", 5) == 0) {
        if (seq != st.echoes && st.echo_out_of_order++ == 0)
            st.echo_first_bad = seq;
        st.echoes++;
    } else if (strncmp(topic, "floodecho/", 10) == 0) {
        if (seq >= 0 && seq < N_FLOOD) {
            if (st.flood_seen[seq])
                st.flood_dups++;
            st.flood_seen[seq] = 1;
            if (seq % 2 == 1)
                st.flood_qos1_echoes++;
        }
        st.flood_echoes++;
    }
    sync_unlock_notify(&st.s);
}

int main(int argc, char **argv) {
    const char *url = test_url(argc, argv);
    mqtt_client *b = NULL, *c = NULL;
    char topic[64], payload[32];
    uint64_t dropped = 0;
    double t0;

    sync_init(&st.s);
    st.a_subscribe_rc = -1000;

    /* A tiny delivery queue: the flood fills it while A's callback waits
     * for its own PUBACK, which is the case that would deadlock if the
     * bound were not lifted during a blocking call from a callback. */
    st.a = test_client_new_queue("echo-a", 4);
    b = test_client_new("echo-b");
    c = test_client_new("echo-c");
    CHECK(st.a && b && c, "client creation failed");
    CHECK_RC(mqtt_set_message_callback(st.a, a_on_message, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_set_message_callback(b, b_on_message, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_connect(st.a, url), MQTT5C_OK);
    CHECK_RC(mqtt_connect(b, url), MQTT5C_OK);
    CHECK_RC(mqtt_connect(c, url), MQTT5C_OK);
    CHECK_RC(mqtt_subscribe(st.a, "req/#", MQTT5C_QOS1, NULL), 1);
    CHECK_RC(mqtt_subscribe(b, "echo/#", MQTT5C_QOS1, NULL), 1);

    /* ---- part 1: 1000 requests, 1000 echoes in order ---- */
    t0 = now_s();
    for (int i = 0; i < N_REQ; i++) {
        snprintf(topic, sizeof topic, "req/%d", i);
        snprintf(payload, sizeof payload, "%d", i);
        CHECK_RC(mqtt_publish(b, topic, payload, strlen(payload), MQTT5C_QOS1, false, NULL), 0);
    }
    CHECK(sync_wait_count(&st.s, &st.echoes, N_REQ, 60), "only %ld of %d echoes arrived (A saw %ld requests)",
          sync_get(&st.s, &st.echoes), N_REQ, sync_get(&st.s, &st.a_req_seen));
    TEST_LOG("part 1: %d echoes in %.2f s", N_REQ, now_s() - t0);
    sync_lock(&st.s);
    {
        long ooo = st.echo_out_of_order, bad = st.echo_first_bad, fails = st.a_publish_failures;
        int first = st.a_first_failure, sub_rc = st.a_subscribe_rc;
        sync_unlock(&st.s);
        CHECK(ooo == 0, "%ld echoes out of order (first unexpected: %ld)", ooo, bad);
        CHECK(fails == 0, "%ld publishes from A's callback failed (first rc %d: %s)", fails, first,
              test_strerror(first));
        CHECK(sub_rc == 1, "mqtt_subscribe inside the callback returned %d (%s), want 1", sub_rc,
              test_strerror(sub_rc));
    }
    /* The subscription made inside the callback works. */
    CHECK_RC(mqtt_publish(b, "req2/x", "r2", 2, MQTT5C_QOS1, false, NULL), 0);
    CHECK(sync_wait_count(&st.s, &st.a_req2_seen, 1, 10), "req2/x not delivered to A");

    /* ---- part 2: A publishes QoS 1 from its callback under a flood ---- */
    CHECK_RC(mqtt_subscribe(st.a, "flood/#", MQTT5C_QOS1, NULL), 1);
    CHECK_RC(mqtt_subscribe(b, "floodecho/#", MQTT5C_QOS1, NULL), 1);
    t0 = now_s();
    for (int i = 0; i < N_FLOOD; i++) {
        int qos = (i % 2 == 0) ? MQTT5C_QOS0 : MQTT5C_QOS1;
        snprintf(topic, sizeof topic, "flood/%d", i);
        snprintf(payload, sizeof payload, "%d", i);
        CHECK_RC(mqtt_publish(c, topic, payload, strlen(payload), qos, false, NULL), 0);
    }
    /* The last flood message is QoS 1: once its echo is in, A has read
     * every flood message (the broker sends a QoS 0 one as it comes, so
     * none is behind it) and echoed each one it did not drop. */
    CHECK(sync_wait_count(&st.s, &st.flood_qos1_echoes, N_FLOOD / 2, 90),
          "only %ld of %d QoS 1 flood echoes arrived (A's callback ran %ld times)",
          sync_get(&st.s, &st.flood_qos1_echoes), N_FLOOD / 2, sync_get(&st.s, &st.a_flood_seen));
    CHECK_RC(mqtt_client_get_stat(st.a, MQTT5C_STAT_QOS0_DROPPED, &dropped), MQTT5C_OK);
    TEST_LOG("part 2: %ld flood echoes in %.2f s, %llu QoS 0 dropped while A's callback waited",
             sync_get(&st.s, &st.flood_echoes), now_s() - t0, (unsigned long long)dropped);
    sync_lock(&st.s);
    {
        long dups = st.flood_dups, fails = st.a_publish_failures, missing_q1 = 0, missing_q0 = 0;
        int first = st.a_first_failure;
        for (int i = 0; i < N_FLOOD; i++) {
            if (!st.flood_seen[i]) {
                if (i % 2 == 1)
                    missing_q1++;
                else
                    missing_q0++;
            }
        }
        sync_unlock(&st.s);
        CHECK(dups == 0, "%ld flood echoes arrived twice", dups);
        CHECK(missing_q1 == 0, "%ld QoS 1 flood messages never echoed", missing_q1);
        CHECK((uint64_t)missing_q0 == dropped, "%ld QoS 0 flood messages not echoed, but A dropped %llu",
              missing_q0, (unsigned long long)dropped);
        CHECK(fails == 0, "%ld publishes from A's callback failed (first rc %d: %s)", fails, first,
              test_strerror(first));
    }

    CHECK_RC(mqtt_disconnect(st.a, 0, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_disconnect(b, 0, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_disconnect(c, 0, NULL), MQTT5C_OK);

cleanup:
    mqtt_client_free(c);
    mqtt_client_free(b);
    mqtt_client_free(st.a);
    sync_destroy(&st.s);
    if (!test_failed)
        TEST_LOG("test_callback_echo: PASS");
    return test_failed;
}

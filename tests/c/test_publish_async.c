/*
 * mqtt_publish_async against mosquitto.
 *
 * 1. 10000 QoS 1 async publishes from one thread: each callback is called
 *    exactly once, with success, and a subscriber receives all in order.
 * 2. The same with 1000 QoS 2 publishes, and 1000 QoS 0 publishes (whose
 *    callback is called with MQTT5C_OK after the write).
 * 3. A completion callback that itself calls mqtt_publish (blocking, QoS 1)
 *    and mqtt_publish_async: both work.
 * 4. Bad input returns the same code and text as mqtt_publish and never
 *    calls the callback; a client that is not connected too.
 * 5. mqtt_client_free with publishes in flight: the first callback is
 *    slow, and free is called while it runs; free waits for it, and the
 *    other 19 completions (queued or not yet acknowledged) never run (their
 *    user_data is freed right after, so valgrind would see a late one).
 */
// broker-conf: max_packet_size 2000
// broker-conf: max_queued_messages 0
#include "test_common.h"

#define N_QOS1 10000
#define N_QOS2 1000
#define N_QOS0 1000
#define N_FREE 20 /* mosquitto's Receive Maximum: none waits for a slot */

/* One slot per message: how often its callback ran, and with what. */
typedef struct {
    int calls;
    int result;
} slot_t;

static struct {
    sync_t s;
    mqtt_client *pub;
    /* completions */
    slot_t q1[N_QOS1];
    slot_t q2[N_QOS2];
    slot_t q0[N_QOS0];
    long done_q1, done_q2, done_q0;
    long bad_calls;
    bool after_free;
    long slow_entered;
    long late_calls;
    long completions_out_of_order;
    long last_q1;
    /* callback that publishes */
    long inner_done;
    int inner_blocking_rc;
    int inner_async_rc;
    int inner_async_result;
    long inner_async_done;
    /* subscriber */
    long recv[3];
    long recv_out_of_order[3];
    long recv_expect[3];
} st;

static void on_completion(void *ud, int result, const mqtt_properties *props) {
    slot_t *slot = ud;
    sync_lock(&st.s);
    slot->calls++;
    slot->result = result;
    if (!props)
        slot->result = -1000; /* ack_props must never be NULL */
    if (slot >= st.q1 && slot < st.q1 + N_QOS1) {
        long i = slot - st.q1;
        if (i != st.last_q1 + 1)
            st.completions_out_of_order++;
        st.last_q1 = i;
        st.done_q1++;
    } else if (slot >= st.q2 && slot < st.q2 + N_QOS2) {
        st.done_q2++;
    } else if (slot >= st.q0 && slot < st.q0 + N_QOS0) {
        st.done_q0++;
    }
    sync_unlock_notify(&st.s);
}

static void on_freed_completion(void *ud, int result, const mqtt_properties *props) {
    slot_t *slot = ud;
    (void)props;
    sync_lock(&st.s);
    bool first = st.slow_entered == 0;
    st.slow_entered++;
    sync_unlock_notify(&st.s);
    if (first)
        sleep_ms(300); /* a slow callback, on purpose: free comes meanwhile */
    sync_lock(&st.s);
    if (st.after_free)
        st.late_calls++;
    slot->calls++;
    slot->result = result;
    sync_unlock_notify(&st.s);
}

static void on_bad(void *ud, int result, const mqtt_properties *props) {
    (void)ud;
    (void)result;
    (void)props;
    sync_add(&st.s, &st.bad_calls, 1);
}

static void on_inner_async(void *ud, int result, const mqtt_properties *props) {
    (void)ud;
    (void)props;
    sync_lock(&st.s);
    st.inner_async_result = result;
    st.inner_async_done++;
    sync_unlock_notify(&st.s);
}

/* Publishes from inside a completion callback: blocking, then async. */
static void on_publishing_completion(void *ud, int result, const mqtt_properties *props) {
    (void)ud;
    (void)props;
    (void)result;
    int rc1 = mqtt_publish(st.pub, "pa/inner", "blocking", 8, MQTT5C_QOS1, false, NULL);
    int rc2 = mqtt_publish_async(st.pub, "pa/inner", "async", 5, MQTT5C_QOS1, false, NULL,
                                 on_inner_async, NULL);
    sync_lock(&st.s);
    st.inner_blocking_rc = rc1;
    st.inner_async_rc = rc2;
    st.inner_done++;
    sync_unlock_notify(&st.s);
}

static void on_message(void *ud, const mqtt_message *m) {
    (void)ud;
    size_t len = 0;
    const char *p = mqtt_message_payload(m, &len);
    const char *topic = mqtt_message_topic(m);
    char buf[32];
    int k;
    if (!topic || strncmp(topic, "pa/q", 4) != 0)
        return;
    k = topic[4] - '0';
    if (k < 0 || k > 2 || len == 0 || len >= sizeof buf)
        return;
    memcpy(buf, p, len);
    buf[len] = 0;
    sync_lock(&st.s);
    if (atol(buf) != st.recv_expect[k])
        st.recv_out_of_order[k]++;
    st.recv_expect[k] = atol(buf) + 1;
    st.recv[k]++;
    sync_unlock_notify(&st.s);
}

/* Publishes n messages to pa/q<qos> with a slot each; returns the first
 * failing return code, or MQTT5C_OK. */
static int publish_run(int qos, slot_t *slots, int n) {
    char topic[16], payload[16];
    snprintf(topic, sizeof topic, "pa/q%d", qos);
    for (int i = 0; i < n; i++) {
        int len = snprintf(payload, sizeof payload, "%d", i);
        int rc = mqtt_publish_async(st.pub, topic, payload, (size_t)len, qos, false, NULL,
                                    on_completion, &slots[i]);
        if (rc != MQTT5C_OK) {
            fprintf(stderr, "publish %d at QoS %d: %d %s\n", i, qos, rc, test_last_error());
            return rc;
        }
    }
    return MQTT5C_OK;
}

/* Every slot called exactly once with `want`. */
static bool slots_ok(const char *what, slot_t *slots, int n, int want) {
    for (int i = 0; i < n; i++) {
        if (slots[i].calls != 1 || slots[i].result != want) {
            fprintf(stderr, "%s %d: called %d times, result %d (want once, %d)\n", what, i,
                    slots[i].calls, slots[i].result, want);
            return false;
        }
    }
    return true;
}

/* mqtt_publish and mqtt_publish_async give the same code and text. */
static bool same_error(const char *label, mqtt_client *c, const char *topic, const void *payload,
                       size_t len, int qos, bool retain, const mqtt_properties *props, int want) {
    char text[512];
    int rc1 = mqtt_publish(c, topic, payload, len, qos, retain, props);
    snprintf(text, sizeof text, "%s", test_last_error());
    int rc2 = mqtt_publish_async(c, topic, payload, len, qos, retain, props, on_bad, NULL);
    if (rc1 != want || rc2 != want || strcmp(text, test_last_error()) != 0 || !*text) {
        fprintf(stderr, "%s: mqtt_publish %d (%s), mqtt_publish_async %d (%s), want %d\n", label,
                rc1, text, rc2, test_last_error(), want);
        return false;
    }
    TEST_LOG("  %s: %d, \"%s\"", label, rc2, text);
    return true;
}

int main(int argc, char **argv) {
    const char *url = test_url(argc, argv);
    mqtt_client *sub = NULL, *idle = NULL, *freed = NULL;
    mqtt_properties *bad_props = NULL;
    slot_t *free_slots = NULL;
    static char big[3000];
    double t0;

    sync_init(&st.s);
    st.last_q1 = -1;
    sub = test_client_new("pa-sub");
    st.pub = test_client_new("pa-pub");
    idle = test_client_new("pa-idle");
    CHECK(sub && st.pub && idle, "client_new");
    CHECK_RC(mqtt_set_message_callback(sub, on_message, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_connect(sub, url), MQTT5C_OK);
    CHECK_RC(mqtt_subscribe(sub, "pa/#", MQTT5C_QOS2, NULL), 2);
    CHECK_RC(mqtt_connect(st.pub, url), MQTT5C_OK);

    /* 1. QoS 1 */
    t0 = now_s();
    CHECK_RC(publish_run(MQTT5C_QOS1, st.q1, N_QOS1), MQTT5C_OK);
    TEST_LOG("%d QoS 1 async publishes written in %.3f s", N_QOS1, now_s() - t0);
    CHECK(sync_wait_count(&st.s, &st.done_q1, N_QOS1, 60), "QoS 1 completions: %ld",
          sync_get(&st.s, &st.done_q1));
    TEST_LOG("all completed after %.3f s", now_s() - t0);
    CHECK(sync_wait_count(&st.s, &st.recv[1], N_QOS1, 60), "QoS 1 received: %ld",
          sync_get(&st.s, &st.recv[1]));
    sync_lock(&st.s);
    bool ok = slots_ok("QoS 1", st.q1, N_QOS1, MQTT5C_OK);
    sync_unlock(&st.s);
    CHECK(ok, "QoS 1 callbacks");
    CHECK(sync_get(&st.s, &st.recv_out_of_order[1]) == 0, "QoS 1 received out of order");
    /* mosquitto acknowledges in order, and completions keep that order. */
    CHECK(sync_get(&st.s, &st.completions_out_of_order) == 0, "QoS 1 completions out of order");
    TEST_LOG("1. %d QoS 1: each callback once with success, all received in order", N_QOS1);

    /* 2. QoS 2, QoS 0 */
    CHECK_RC(publish_run(MQTT5C_QOS2, st.q2, N_QOS2), MQTT5C_OK);
    CHECK(sync_wait_count(&st.s, &st.done_q2, N_QOS2, 60), "QoS 2 completions: %ld",
          sync_get(&st.s, &st.done_q2));
    CHECK(sync_wait_count(&st.s, &st.recv[2], N_QOS2, 60), "QoS 2 received: %ld",
          sync_get(&st.s, &st.recv[2]));
    CHECK_RC(publish_run(MQTT5C_QOS0, st.q0, N_QOS0), MQTT5C_OK);
    CHECK(sync_wait_count(&st.s, &st.done_q0, N_QOS0, 60), "QoS 0 completions: %ld",
          sync_get(&st.s, &st.done_q0));
    CHECK(sync_wait_count(&st.s, &st.recv[0], N_QOS0, 60), "QoS 0 received: %ld",
          sync_get(&st.s, &st.recv[0]));
    sync_lock(&st.s);
    ok = slots_ok("QoS 2", st.q2, N_QOS2, MQTT5C_OK) && slots_ok("QoS 0", st.q0, N_QOS0, MQTT5C_OK);
    sync_unlock(&st.s);
    CHECK(ok, "QoS 2 / QoS 0 callbacks");
    CHECK(sync_get(&st.s, &st.recv_out_of_order[2]) == 0, "QoS 2 received out of order");
    CHECK(sync_get(&st.s, &st.recv_out_of_order[0]) == 0, "QoS 0 received out of order");
    /* A NULL callback is allowed at every QoS. */
    CHECK_RC(mqtt_publish_async(st.pub, "pa/nocb", "x", 1, MQTT5C_QOS1, false, NULL, NULL, NULL),
             MQTT5C_OK);
    CHECK_RC(mqtt_publish_async(st.pub, "pa/nocb", "x", 1, MQTT5C_QOS0, false, NULL, NULL, NULL),
             MQTT5C_OK);
    TEST_LOG("2. %d QoS 2 and %d QoS 0: each callback once with success, all received in order",
             N_QOS2, N_QOS0);

    /* 3. publishing from a completion callback */
    CHECK_RC(mqtt_publish_async(st.pub, "pa/outer", "o", 1, MQTT5C_QOS1, false, NULL,
                                on_publishing_completion, NULL),
             MQTT5C_OK);
    CHECK(sync_wait_count(&st.s, &st.inner_done, 1, 30), "the completion callback did not return");
    CHECK(sync_wait_count(&st.s, &st.inner_async_done, 1, 30), "inner async completion");
    sync_lock(&st.s);
    int rc_b = st.inner_blocking_rc, rc_a = st.inner_async_rc, res_a = st.inner_async_result;
    sync_unlock(&st.s);
    CHECK(publish_ok(rc_b), "mqtt_publish inside the callback: %d", rc_b);
    CHECK_RC(rc_a, MQTT5C_OK);
    CHECK(publish_ok(res_a), "inner async result %d", res_a);
    TEST_LOG("3. mqtt_publish (%d) and mqtt_publish_async (%d, then %d) from a completion callback",
             rc_b, rc_a, res_a);

    /* 4. bad input */
    bad_props = mqtt_properties_new();
    CHECK(bad_props, "properties_new");
    CHECK_RC(mqtt_properties_set_int(bad_props, MQTT5C_PROP_SESSION_EXPIRY_INTERVAL, 5), MQTT5C_OK);
    CHECK(same_error("NULL client", NULL, "t", "x", 1, 1, false, NULL, MQTT5C_ERR_INVALID_ARGUMENT),
          "NULL client");
    CHECK(same_error("NULL topic", st.pub, NULL, "x", 1, 1, false, NULL,
                     MQTT5C_ERR_INVALID_ARGUMENT),
          "NULL topic");
    CHECK(same_error("wildcard", st.pub, "pa/+", "x", 1, 1, false, NULL,
                     MQTT5C_ERR_INVALID_ARGUMENT),
          "wildcard");
    CHECK(same_error("empty topic", st.pub, "", "x", 1, 1, false, NULL,
                     MQTT5C_ERR_INVALID_ARGUMENT),
          "empty topic");
    CHECK(same_error("QoS 3", st.pub, "pa/x", "x", 1, 3, false, NULL, MQTT5C_ERR_INVALID_ARGUMENT),
          "QoS 3");
    CHECK(same_error("NULL payload", st.pub, "pa/x", NULL, 5, 1, false, NULL,
                     MQTT5C_ERR_INVALID_ARGUMENT),
          "NULL payload");
    CHECK(same_error("CONNECT property", st.pub, "pa/x", "x", 1, 1, false, bad_props,
                     MQTT5C_ERR_INVALID_ARGUMENT),
          "property");
    CHECK(same_error("too large", st.pub, "pa/x", big, sizeof big, 1, false, NULL,
                     MQTT5C_ERR_PACKET_TOO_LARGE),
          "too large");
    CHECK(same_error("not connected", idle, "pa/x", "x", 1, 1, false, NULL,
                     MQTT5C_ERR_NOT_CONNECTED),
          "not connected");
    /* A later completion has run, so one for the bad calls would have too. */
    sync_lock(&st.s);
    st.inner_async_done = 0;
    sync_unlock(&st.s);
    CHECK_RC(mqtt_publish_async(st.pub, "pa/after-bad", "x", 1, MQTT5C_QOS1, false, NULL,
                                on_inner_async, NULL),
             MQTT5C_OK);
    CHECK(sync_wait_count(&st.s, &st.inner_async_done, 1, 30), "completion after bad input");
    CHECK(sync_get(&st.s, &st.bad_calls) == 0, "a callback ran for a refused publish");
    CHECK(mqtt_is_connected(st.pub) == 1, "bad input cost the connection");
    TEST_LOG("4. bad input: same codes and texts as mqtt_publish, no callback");

    /* 5. free with publishes in flight */
    freed = test_client_new_queue("pa-freed", 4);
    CHECK(freed, "client_new");
    CHECK_RC(mqtt_connect(freed, url), MQTT5C_OK);
    free_slots = calloc(N_FREE, sizeof *free_slots);
    CHECK(free_slots, "calloc");
    for (int i = 0; i < N_FREE; i++)
        CHECK_RC(mqtt_publish_async(freed, "pa/freed", "f", 1, MQTT5C_QOS1, false, NULL,
                                    on_freed_completion, &free_slots[i]),
                 MQTT5C_OK);
    CHECK(sync_wait_count(&st.s, &st.slow_entered, 1, 30), "first completion");
    mqtt_client_free(freed);
    freed = NULL;
    sync_lock(&st.s);
    st.after_free = true;
    sync_unlock(&st.s);
    /* Callbacks that already ran did so before free returned; count them,
     * then free their memory: a late callback writes into freed memory,
     * which valgrind reports. */
    long ran = 0;
    sync_lock(&st.s);
    for (int i = 0; i < N_FREE; i++)
        ran += free_slots[i].calls;
    sync_unlock(&st.s);
    free(free_slots);
    free_slots = NULL;
    /* Gives a wrongly late callback the time to show up (a real purpose:
     * we check that something does not happen). */
    sleep_ms(300);
    CHECK(sync_get(&st.s, &st.late_calls) == 0, "a callback ran after mqtt_client_free");
    /* Only the one running when free was called. */
    CHECK(ran == 1, "%ld callbacks ran before free returned; want 1", ran);
    TEST_LOG("5. freed with %d publishes in flight, one callback running: it finished, the "
             "others never ran",
             N_FREE);

cleanup:
    mqtt_properties_free(bad_props);
    if (freed)
        mqtt_client_free(freed);
    if (st.pub)
        mqtt_disconnect(st.pub, 0, NULL);
    if (sub)
        mqtt_disconnect(sub, 0, NULL);
    mqtt_client_free(st.pub);
    mqtt_client_free(sub);
    mqtt_client_free(idle);
    free(free_slots);
    sync_destroy(&st.s);
    if (!test_failed)
        TEST_LOG("PASS");
    return test_failed;
}

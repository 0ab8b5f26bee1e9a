/*
 * The offline queue (mqtt_options_set_offline_queue) against mosquitto
 * stopped and started again by the driver (broker-control), persistent so
 * that the subscriber's session survives the restart:
 *  - the setters' validation;
 *  - while the broker is down, publishes of clients that reconnect are
 *    queued: MQTT5C_EVENT_RECONNECTING before each attempt, numbered from 1;
 *  - MQTT5C_QUEUE_FAIL_NEW: a full queue refuses the new message
 *    (MQTT5C_ERR_QUEUE_FULL from mqtt_publish_async and mqtt_publish, no
 *    callback);
 *  - MQTT5C_QUEUE_DROP_OLDEST: the oldest QoS 0 message goes first, then the
 *    oldest message; their callbacks get MQTT5C_ERR_QUEUE_FULL;
 *  - a message whose Message Expiry Interval passes while queued is
 *    dropped, its callback gets MQTT5C_ERR_EXPIRED, MQTT5C_STAT_QUEUE_EXPIRED
 *    counts it, and it never arrives;
 *  - a blocking mqtt_publish that times out stays queued and is delivered;
 *  - QoS 0 refused by option, and no queue at all: MQTT5C_ERR_NOT_CONNECTED;
 *  - after the restart, every queued message arrives, in order per
 *    publisher (mosquitto forwards a QoS 2 message at PUBREL, after QoS
 *    0/1 messages sent behind it: only the last message is QoS 2), and each
 *    callback is called once with success.
 */
// needs: broker-control
// broker-persistent
// broker-conf: queue_qos0_messages true
#include "test_common.h"

#define MAX_REC 64

typedef struct {
    long connected, disconnected, reconnecting;
    int attempts[MAX_REC];
} conn_t;

typedef struct {
    const char *tag;
    long calls;
    int result;
} done_t;

static struct {
    sync_t s;
    conn_t a, b, sub;
    char topics[MAX_REC][32];
    long n_topics;
} st;

static void on_connection(void *ud, int event, int reason) {
    conn_t *c = ud;
    sync_lock(&st.s);
    if (event == MQTT5C_EVENT_CONNECTED)
        c->connected++;
    else if (event == MQTT5C_EVENT_DISCONNECTED)
        c->disconnected++;
    else if (event == MQTT5C_EVENT_RECONNECTING) {
        if (c->reconnecting < MAX_REC)
            c->attempts[c->reconnecting] = reason;
        c->reconnecting++;
    }
    sync_unlock_notify(&st.s);
}

static void on_message(void *ud, const mqtt_message *m) {
    (void)ud;
    sync_lock(&st.s);
    if (st.n_topics < MAX_REC)
        snprintf(st.topics[st.n_topics], sizeof st.topics[0], "%s", mqtt_message_topic(m));
    st.n_topics++;
    sync_unlock_notify(&st.s);
}

static void on_done(void *ud, int result, const mqtt_properties *props) {
    (void)props;
    done_t *d = ud;
    sync_lock(&st.s);
    d->calls++;
    d->result = result;
    sync_unlock_notify(&st.s);
}

static mqtt_client *make(const char *id, size_t max_messages, int policy, bool qos0,
                         bool persistent_session, conn_t *events) {
    mqtt_options *o = mqtt_options_new();
    mqtt_client *c = NULL;
    if (!o)
        return NULL;
    if (mqtt_options_set_client_id(o, id) == MQTT5C_OK &&
        mqtt_options_set_connect_timeout(o, (uint32_t)(5000 * timeout_scale())) == MQTT5C_OK &&
        mqtt_options_set_operation_timeout(o, (uint32_t)(300 * timeout_scale())) == MQTT5C_OK &&
        mqtt_options_set_auto_reconnect(o, 50, 200) == MQTT5C_OK &&
        mqtt_options_set_offline_queue(o, max_messages, 1 << 20, policy) == MQTT5C_OK &&
        mqtt_options_set_offline_queue_qos0(o, qos0) == MQTT5C_OK &&
        mqtt_options_set_clean_start(o, !persistent_session) == MQTT5C_OK &&
        mqtt_options_set_session_expiry(o, persistent_session ? 600 : 0) == MQTT5C_OK)
        c = mqtt_client_new(o);
    mqtt_options_free(o);
    if (c && events)
        mqtt_set_connection_callback(c, on_connection, events);
    return c;
}

static long stat_of(mqtt_client *c, int stat) {
    uint64_t v = 0;
    if (mqtt_client_get_stat(c, stat, &v) != MQTT5C_OK)
        return -1;
    return (long)v;
}

/* Waits until d's callback ran once; returns its result (or 1000). */
static int wait_done(done_t *d) {
    if (!sync_wait_count(&st.s, &d->calls, 1, 20))
        return 1000;
    sync_lock(&st.s);
    int r = d->calls == 1 ? d->result : 2000;
    sync_unlock(&st.s);
    return r;
}

/* Index of `topic` in the received list, or -1. */
static long position(const char *topic) {
    for (long i = 0; i < st.n_topics && i < MAX_REC; i++)
        if (strcmp(st.topics[i], topic) == 0)
            return i;
    return -1;
}

int main(int argc, char **argv) {
    const char *url = test_url(argc, argv);
    mqtt_options *opts = NULL;
    mqtt_client *sub = NULL, *a = NULL, *b = NULL, *c = NULL, *d = NULL;
    mqtt_properties *expiring = NULL;
    done_t a1 = {"a/1", 0, 0}, a2 = {"a/2", 0, 0}, a3 = {"a/3", 0, 0}, a4 = {"a/4", 0, 0};
    done_t a5 = {"a/5", 0, 0};
    done_t b1 = {"b/1", 0, 0}, b2 = {"b/2", 0, 0}, b3 = {"b/3", 0, 0}, b4 = {"b/4", 0, 0};
    done_t b5 = {"b/5", 0, 0}, d1 = {"d/1", 0, 0};
    bool stopped = false;
    memset(&st, 0, sizeof st);
    sync_init(&st.s);

    /* ---- the setters ---- */
    opts = mqtt_options_new();
    CHECK(opts != NULL, "mqtt_options_new");
    CHECK_RC(mqtt_options_set_offline_queue(NULL, 1, 1, MQTT5C_QUEUE_FAIL_NEW),
             MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK_RC(mqtt_options_set_offline_queue(opts, 1, 1, 2), MQTT5C_ERR_INVALID_ARGUMENT);
    {
        const char *kw[] = {"policy", NULL};
        CHECK(last_error_mentions(kw), "last error names the policy: %s", test_last_error());
    }
    CHECK_RC(mqtt_options_set_offline_queue(opts, 0, 0, MQTT5C_QUEUE_DROP_OLDEST), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_offline_queue_qos0(NULL, true), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK_RC(mqtt_options_set_connect_retry(NULL, true), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK_RC(mqtt_options_set_resubscribe(NULL, true), MQTT5C_ERR_INVALID_ARGUMENT);
    mqtt_options_free(opts);
    opts = NULL;
    CHECK(strcmp(mqtt_strerror(MQTT5C_ERR_QUEUE_FULL), "unknown error code") != 0, "strerror -13");
    CHECK(strcmp(mqtt_strerror(MQTT5C_ERR_EXPIRED), "unknown error code") != 0, "strerror -14");

    /* ---- the clients: a subscriber with a session that survives ---- */
    sub = make("oq-sub", 100, MQTT5C_QUEUE_FAIL_NEW, true, true, &st.sub);
    a = make("oq-a", 4, MQTT5C_QUEUE_FAIL_NEW, true, false, &st.a);
    b = make("oq-b", 3, MQTT5C_QUEUE_DROP_OLDEST, true, false, &st.b);
    c = make("oq-c", 4, MQTT5C_QUEUE_FAIL_NEW, false, false, NULL); /* QoS 0 refused */
    d = make("oq-d", 0, MQTT5C_QUEUE_FAIL_NEW, true, false, NULL);  /* no queue */
    CHECK(sub && a && b && c && d, "clients: %s", test_last_error());
    CHECK_RC(mqtt_set_message_callback(sub, on_message, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_connect(sub, url), MQTT5C_OK);
    CHECK_RC(mqtt_subscribe(sub, "oq/#", MQTT5C_QOS1, NULL), MQTT5C_QOS1);
    CHECK_RC(mqtt_connect(a, url), MQTT5C_OK);
    CHECK_RC(mqtt_connect(b, url), MQTT5C_OK);
    CHECK_RC(mqtt_connect(c, url), MQTT5C_OK);
    CHECK_RC(mqtt_connect(d, url), MQTT5C_OK);

    /* ---- the broker goes down ---- */
    CHECK(broker_control("stop"), "stop the broker");
    stopped = true;
    CHECK(sync_wait_count(&st.s, &st.a.reconnecting, 2, 20), "a: no RECONNECTING 1, 2");
    CHECK(sync_wait_count(&st.s, &st.b.reconnecting, 1, 20), "b: no RECONNECTING");
    CHECK_RC(mqtt_is_connected(a), 0);
    TEST_LOG("broker stopped; the clients reconnect");

    /* ---- FAIL_NEW, expiry, a blocking publish timing out ---- */
    expiring = mqtt_properties_new();
    CHECK(expiring != NULL, "mqtt_properties_new");
    CHECK_RC(mqtt_properties_set_int(expiring, MQTT5C_PROP_MESSAGE_EXPIRY_INTERVAL, 1), MQTT5C_OK);
    CHECK_RC(mqtt_publish_async(a, "oq/a/1", "1", 1, MQTT5C_QOS1, false, NULL, on_done, &a1), MQTT5C_OK);
    CHECK_RC(mqtt_publish_async(a, "oq/a/2", "2", 1, MQTT5C_QOS1, false, NULL, on_done, &a2), MQTT5C_OK);
    CHECK_RC(mqtt_publish_async(a, "oq/a/3", "3", 1, MQTT5C_QOS0, false, NULL, on_done, &a3), MQTT5C_OK);
    CHECK_RC(mqtt_publish_async(a, "oq/a/4", "4", 1, MQTT5C_QOS1, false, expiring, on_done, &a4),
             MQTT5C_OK);
    CHECK_RC(mqtt_publish_async(a, "oq/a/5", "5", 1, MQTT5C_QOS1, false, NULL, on_done, &a5),
             MQTT5C_ERR_QUEUE_FULL);
    {
        const char *kw[] = {"full", NULL};
        CHECK(last_error_mentions(kw), "last error says full: %s", test_last_error());
    }
    CHECK_RC(mqtt_publish(a, "oq/a/5", "5", 1, MQTT5C_QOS1, false, NULL), MQTT5C_ERR_QUEUE_FULL);
    CHECK(stat_of(a, MQTT5C_STAT_QUEUED) == 4, "queued %ld", stat_of(a, MQTT5C_STAT_QUEUED));
    CHECK(stat_of(a, MQTT5C_STAT_QUEUE_LENGTH) == 4, "length %ld", stat_of(a, MQTT5C_STAT_QUEUE_LENGTH));
    /* Lets a/4's one-second Message Expiry Interval pass. */
    sleep_ms(1500);
    CHECK(stat_of(a, MQTT5C_STAT_QUEUE_EXPIRED) == 1, "expired %ld",
          stat_of(a, MQTT5C_STAT_QUEUE_EXPIRED));
    CHECK(stat_of(a, MQTT5C_STAT_QUEUE_LENGTH) == 3, "length %ld", stat_of(a, MQTT5C_STAT_QUEUE_LENGTH));
    CHECK_RC(wait_done(&a4), MQTT5C_ERR_EXPIRED);
    /* Room again; a blocking publish waits for the broker and times out,
     * its message staying queued. */
    CHECK_RC(mqtt_publish(a, "oq/a/6", "6", 1, MQTT5C_QOS1, false, NULL), MQTT5C_ERR_TIMEOUT);
    CHECK(stat_of(a, MQTT5C_STAT_QUEUE_LENGTH) == 4, "length %ld", stat_of(a, MQTT5C_STAT_QUEUE_LENGTH));
    TEST_LOG("FAIL_NEW refuses the fifth, a/4 expired, a/6 timed out and stays queued");

    /* ---- DROP_OLDEST: QoS 0 first, then the oldest ---- */
    CHECK_RC(mqtt_publish_async(b, "oq/b/1", "1", 1, MQTT5C_QOS1, false, NULL, on_done, &b1), MQTT5C_OK);
    CHECK_RC(mqtt_publish_async(b, "oq/b/2", "2", 1, MQTT5C_QOS0, false, NULL, on_done, &b2), MQTT5C_OK);
    CHECK_RC(mqtt_publish_async(b, "oq/b/3", "3", 1, MQTT5C_QOS1, false, NULL, on_done, &b3), MQTT5C_OK);
    CHECK_RC(mqtt_publish_async(b, "oq/b/4", "4", 1, MQTT5C_QOS1, false, NULL, on_done, &b4), MQTT5C_OK);
    CHECK_RC(wait_done(&b2), MQTT5C_ERR_QUEUE_FULL);
    CHECK_RC(mqtt_publish_async(b, "oq/b/5", "5", 1, MQTT5C_QOS2, false, NULL, on_done, &b5), MQTT5C_OK);
    CHECK_RC(wait_done(&b1), MQTT5C_ERR_QUEUE_FULL);
    CHECK(stat_of(b, MQTT5C_STAT_QUEUED) == 5, "queued %ld", stat_of(b, MQTT5C_STAT_QUEUED));
    CHECK(stat_of(b, MQTT5C_STAT_QUEUE_DROPPED) == 2, "dropped %ld",
          stat_of(b, MQTT5C_STAT_QUEUE_DROPPED));
    CHECK(stat_of(b, MQTT5C_STAT_QUEUE_LENGTH) == 3, "length %ld", stat_of(b, MQTT5C_STAT_QUEUE_LENGTH));
    TEST_LOG("DROP_OLDEST dropped b/2 (QoS 0) then b/1");

    /* ---- QoS 0 refused by option; no queue ---- */
    CHECK_RC(mqtt_publish(c, "oq/c/1", "1", 1, MQTT5C_QOS0, false, NULL), MQTT5C_ERR_NOT_CONNECTED);
    CHECK_RC(mqtt_publish_async(d, "oq/d/1", "1", 1, MQTT5C_QOS1, false, NULL, on_done, &d1),
             MQTT5C_ERR_NOT_CONNECTED);

    /* ---- the broker comes back: everything queued goes out ---- */
    CHECK(broker_control("start"), "start the broker");
    stopped = false;
    CHECK_RC(wait_done(&a1), 0);
    CHECK_RC(wait_done(&a2), 0);
    CHECK_RC(wait_done(&a3), 0);
    CHECK_RC(wait_done(&b3), 0);
    CHECK_RC(wait_done(&b4), 0);
    CHECK_RC(wait_done(&b5), 0);
    CHECK(sync_wait_count(&st.s, &st.n_topics, 7, 30), "the subscriber got %ld of 7",
          sync_get(&st.s, &st.n_topics));
    {
        static const char *const order_a[] = {"oq/a/1", "oq/a/2", "oq/a/3", "oq/a/6"};
        static const char *const order_b[] = {"oq/b/3", "oq/b/4", "oq/b/5"};
        static const char *const never[] = {"oq/a/4", "oq/a/5", "oq/b/1", "oq/b/2",
                                            "oq/c/1", "oq/d/1"};
        sync_lock(&st.s);
        long n = st.n_topics;
        long last = -1, bad = 0;
        for (size_t i = 0; i < 4; i++) {
            long p = position(order_a[i]);
            bad += p <= last;
            last = p;
        }
        last = -1;
        for (size_t i = 0; i < 3; i++) {
            long p = position(order_b[i]);
            bad += p <= last;
            last = p;
        }
        for (size_t i = 0; i < sizeof never / sizeof never[0]; i++)
            bad += position(never[i]) >= 0;
        if (bad || n != 7)
            for (long i = 0; i < n && i < MAX_REC; i++)
                fprintf(stderr, "received %ld: %s\n", i, st.topics[i]);
        sync_unlock(&st.s);
        CHECK(bad == 0 && n == 7, "%ld out of place among %ld received", bad, n);
    }
    /* Each callback once: a/5 and d/1 were refused, so never called. */
    sync_lock(&st.s);
    long calls = a1.calls + a2.calls + a3.calls + a4.calls + a5.calls + b1.calls + b2.calls +
                 b3.calls + b4.calls + b5.calls + d1.calls;
    int attempts_ok = 1;
    for (long i = 0; i < st.a.reconnecting && i < MAX_REC; i++)
        attempts_ok &= st.a.attempts[i] == i + 1;
    sync_unlock(&st.s);
    CHECK(calls == 9, "%ld callbacks, want 9", calls);
    CHECK(attempts_ok, "RECONNECTING numbers count from 1");
    CHECK(stat_of(a, MQTT5C_STAT_QUEUE_LENGTH) == 0, "a's queue is empty");
    TEST_LOG("after the restart: every queued message arrived once, in order");

    CHECK_RC(mqtt_disconnect(a, 0, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_disconnect(b, 0, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_disconnect(sub, 0, NULL), MQTT5C_OK);

cleanup:
    if (stopped)
        broker_control("start");
    mqtt_options_free(opts);
    mqtt_properties_free(expiring);
    mqtt_client_free(sub);
    mqtt_client_free(a);
    mqtt_client_free(b);
    mqtt_client_free(c);
    mqtt_client_free(d);
    sync_destroy(&st.s);
    return test_failed ? 1 : 0;
}

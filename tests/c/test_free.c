/*
 * mqtt_client_free while messages stream in.
 *
 * Part 1: a thread other than the creator frees client V while a flooder
 * keeps publishing to V's subscription. After free returns, V's callback must
 * never run again: we check this after a witness client W has received
 * hundreds more messages of the same stream.
 *
 * Part 2: the message callback frees its own client X; the main thread waits
 * for the callback's signal, then again lets W receive more of the stream and
 * checks that X's callback ran exactly once.
 *
 * Part 3: freeing a never-connected client and a connected client without
 * mqtt_disconnect (valgrind checks for leaks).
 */
#include "test_common.h"

#define WITNESS_MORE 300

static struct {
    sync_t s;
    /* part 1 */
    long v_calls;
    bool v_freed;
    long v_calls_after_free;
    /* part 2 */
    mqtt_client *x;
    long x_calls;
    bool x_freed;
    /* witness */
    long w_count;
    /* flooder */
    bool stop;
    long flood_sent;
    long flood_failures;
    int flood_first_rc;
} st;

static void v_on_message(void *ud, const mqtt_message *m) {
    (void)m;
    int *cookie = ud; /* user data must still be what we passed */
    sync_lock(&st.s);
    if (!cookie || *cookie != 0x5eed)
        st.v_calls_after_free += 1000000; /* garbage user data: count loudly */
    st.v_calls++;
    if (st.v_freed)
        st.v_calls_after_free++;
    sync_unlock_notify(&st.s);
}

static void x_on_message(void *ud, const mqtt_message *m) {
    (void)ud;
    (void)m;
    bool first;
    sync_lock(&st.s);
    first = st.x_calls++ == 0;
    sync_unlock_notify(&st.s);
    if (first) {
        /* Free our own client from inside its callback. `m` must not be
         * touched after this. */
        mqtt_client_free(st.x);
        sync_lock(&st.s);
        st.x_freed = true;
        sync_unlock_notify(&st.s);
    }
}

static void w_on_message(void *ud, const mqtt_message *m) {
    (void)ud;
    (void)m;
    sync_add(&st.s, &st.w_count, 1);
}

typedef struct {
    mqtt_client *client;
    const char *topic;
} flood_args;

static void *flooder(void *arg) {
    flood_args *fa = arg;
    char payload[32];
    for (long i = 0;; i++) {
        sync_lock(&st.s);
        bool stop = st.stop;
        sync_unlock(&st.s);
        if (stop)
            break;
        int len = snprintf(payload, sizeof payload, "%ld", i);
        /* QoS 1 paces the flood by the broker's acks. */
        int rc = mqtt_publish(fa->client, fa->topic, payload, (size_t)len, MQTT5C_QOS1, false, NULL);
        sync_lock(&st.s);
        bool failed = !publish_ok(rc);
        if (failed && st.flood_failures++ == 0)
            st.flood_first_rc = rc;
        st.flood_sent++;
        sync_unlock_notify(&st.s);
        if (failed)
            break; /* reported by main */
    }
    return NULL;
}

static void *free_client(void *arg) {
    mqtt_client_free(arg);
    return NULL;
}

/* Stops and joins a running flooder. */
static void stop_flooder(pthread_t *t, bool *running) {
    if (!*running)
        return;
    sync_lock(&st.s);
    st.stop = true;
    sync_unlock_notify(&st.s);
    pthread_join(*t, NULL);
    *running = false;
    sync_lock(&st.s);
    st.stop = false;
    sync_unlock(&st.s);
}

int main(int argc, char **argv) {
    const char *url = test_url(argc, argv);
    static int cookie = 0x5eed;
    mqtt_client *v = NULL, *w = NULL, *f = NULL, *idle = NULL, *conn = NULL;
    pthread_t flood_thread, freer;
    bool flooding = false;
    flood_args fa;
    long snap, base;

    sync_init(&st.s);
    v = test_client_new("free-v");
    w = test_client_new("free-w");
    f = test_client_new("free-f");
    st.x = test_client_new("free-x");
    CHECK(v && w && f && st.x, "client creation failed");
    CHECK_RC(mqtt_set_message_callback(v, v_on_message, &cookie), MQTT5C_OK);
    CHECK_RC(mqtt_set_message_callback(w, w_on_message, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_set_message_callback(st.x, x_on_message, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_connect(v, url), MQTT5C_OK);
    CHECK_RC(mqtt_connect(w, url), MQTT5C_OK);
    CHECK_RC(mqtt_connect(f, url), MQTT5C_OK);
    CHECK_RC(mqtt_connect(st.x, url), MQTT5C_OK);
    CHECK_RC(mqtt_subscribe(v, "stream/#", MQTT5C_QOS1, NULL), 1);
    CHECK_RC(mqtt_subscribe(w, "stream/#", MQTT5C_QOS0, NULL), 0);
    CHECK_RC(mqtt_subscribe(w, "selffree/#", MQTT5C_QOS0, NULL), 0);
    CHECK_RC(mqtt_subscribe(st.x, "selffree/#", MQTT5C_QOS1, NULL), 1);

    /* ---- part 1: free from another thread while messages stream in ---- */
    fa.client = f;
    fa.topic = "stream/data";
    CHECK(pthread_create(&flood_thread, NULL, flooder, &fa) == 0, "pthread_create");
    flooding = true;
    CHECK(sync_wait_count(&st.s, &st.v_calls, 200, 20), "V got only %ld messages of the stream (flood failures: %ld, first rc %d)",
          sync_get(&st.s, &st.v_calls), sync_get(&st.s, &st.flood_failures), st.flood_first_rc);

    CHECK(pthread_create(&freer, NULL, free_client, v) == 0, "pthread_create");
    pthread_join(freer, NULL);
    v = NULL;
    sync_lock(&st.s);
    st.v_freed = true;
    snap = st.v_calls;
    base = st.w_count;
    sync_unlock(&st.s);
    TEST_LOG("freed V after %ld callbacks", snap);

    /* Something real to wait for: more of the same stream reaching W. */
    CHECK(sync_wait_count(&st.s, &st.w_count, base + WITNESS_MORE, 20), "W received only %ld more messages",
          sync_get(&st.s, &st.w_count) - base);
    sync_lock(&st.s);
    {
        long calls = st.v_calls, after = st.v_calls_after_free;
        sync_unlock(&st.s);
        CHECK(after == 0 && calls == snap, "V's callback ran %ld times after mqtt_client_free returned", calls - snap);
    }
    stop_flooder(&flood_thread, &flooding);
    TEST_LOG("part 1 ok");

    /* ---- part 2: the callback frees its own client ---- */
    fa.topic = "selffree/data";
    CHECK(pthread_create(&flood_thread, NULL, flooder, &fa) == 0, "pthread_create");
    flooding = true;
    CHECK(sync_wait_flag(&st.s, &st.x_freed, 20), "X's callback never signalled that it freed X (calls: %ld)",
          sync_get(&st.s, &st.x_calls));
    st.x = NULL; /* freed by its callback */
    base = sync_get(&st.s, &st.w_count);
    CHECK(sync_wait_count(&st.s, &st.w_count, base + WITNESS_MORE, 20), "W received only %ld more messages",
          sync_get(&st.s, &st.w_count) - base);
    CHECK(sync_get(&st.s, &st.x_calls) == 1, "X's callback ran %ld times, want exactly 1",
          sync_get(&st.s, &st.x_calls));
    stop_flooder(&flood_thread, &flooding);
    sync_lock(&st.s);
    {
        long fails = st.flood_failures, sent = st.flood_sent;
        int first = st.flood_first_rc;
        sync_unlock(&st.s);
        CHECK(fails == 0, "%ld of %ld flood publishes failed (first rc %d: %s)", fails, sent, first,
              test_strerror(first));
    }
    TEST_LOG("part 2 ok");

    /* ---- part 3: free without connect, free without disconnect ---- */
    idle = test_client_new("free-idle");
    CHECK(idle != NULL, "client creation failed");
    mqtt_client_free(idle);
    idle = NULL;
    conn = test_client_new("free-conn");
    CHECK(conn != NULL, "client creation failed");
    CHECK_RC(mqtt_connect(conn, url), MQTT5C_OK);
    CHECK_RC(mqtt_subscribe(conn, "stream/#", MQTT5C_QOS1, NULL), 1);
    mqtt_client_free(conn);
    conn = NULL;
    TEST_LOG("part 3 ok");

    CHECK_RC(mqtt_disconnect(w, 0, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_disconnect(f, 0, NULL), MQTT5C_OK);

cleanup:
    stop_flooder(&flood_thread, &flooding);
    mqtt_client_free(v);
    if (sync_get(&st.s, &st.x_calls) > 0)
        st.x = NULL; /* its callback frees it (or is freeing it) */
    mqtt_client_free(st.x);
    mqtt_client_free(idle);
    mqtt_client_free(conn);
    mqtt_client_free(w);
    mqtt_client_free(f);
    sync_destroy(&st.s);
    if (!test_failed)
        TEST_LOG("test_free: PASS");
    return test_failed;
}

/*
 * Calls that ride out a reconnect, against mosquitto stopped and started
 * again by the driver (broker-control; persistent, so sessions survive a
 * stop, and "wipe" makes the broker lose them):
 *  1. While the broker is down, blocking calls made from four threads wait
 *     for the reconnect and succeed: mqtt_publish (QoS 1), mqtt_subscribe,
 *     mqtt_unsubscribe, mqtt_request (answered by a responder client that
 *     reconnects too).
 *  2. mqtt_connect with mqtt_options_set_connect_retry to the stopped
 *     broker returns the first attempt's error, keeps trying in the
 *     background (MQTT5C_EVENT_RECONNECTING 1, 2, ...), and a publish made
 *     meanwhile completes after the connection came.
 *  3. The broker loses every session ("wipe"): the client subscribes again
 *     by itself (mqtt_options_set_resubscribe is on by default), so the
 *     callback of its mqtt_subscribe_cb route receives what it publishes
 *     after the reconnect, and the subscription made in 1 works too.
 */
// needs: broker-control
// broker-persistent
#include "test_common.h"

static struct {
    sync_t s;
    long p_connected, p_disconnected;
    long q_connected, q_reconnecting;
    int q_attempts[8];
    long routed, other;
    long q_done;
    int q_result;
} st;

typedef struct {
    mqtt_client *c;
    int rc;
    mqtt_message *response;
    long done;
} call_t;

static call_t pub_call, sub_call, unsub_call, req_call;

static void on_p_connection(void *ud, int event, int reason) {
    (void)ud;
    (void)reason;
    sync_lock(&st.s);
    if (event == MQTT5C_EVENT_CONNECTED)
        st.p_connected++;
    if (event == MQTT5C_EVENT_DISCONNECTED)
        st.p_disconnected++;
    sync_unlock_notify(&st.s);
}

static void on_q_connection(void *ud, int event, int reason) {
    (void)ud;
    sync_lock(&st.s);
    if (event == MQTT5C_EVENT_CONNECTED)
        st.q_connected++;
    if (event == MQTT5C_EVENT_RECONNECTING) {
        if (st.q_reconnecting < 8)
            st.q_attempts[st.q_reconnecting] = reason;
        st.q_reconnecting++;
    }
    sync_unlock_notify(&st.s);
}

static void on_route(void *ud, const mqtt_message *m) {
    (void)ud;
    (void)m;
    sync_add(&st.s, &st.routed, 1);
}

static void on_other(void *ud, const mqtt_message *m) {
    (void)ud;
    (void)m;
    sync_add(&st.s, &st.other, 1);
}

/* The responder: answers a request with its own payload. */
static void on_request(void *ud, const mqtt_message *m) {
    size_t len = 0;
    const void *payload = mqtt_message_payload(m, &len);
    test_respond(ud, m, payload, len, MQTT5C_QOS0);
}

static void on_q_done(void *ud, int result, const mqtt_properties *props) {
    (void)ud;
    (void)props;
    sync_lock(&st.s);
    st.q_done++;
    st.q_result = result;
    sync_unlock_notify(&st.s);
}

static void finish(call_t *call, int rc) {
    sync_lock(&st.s);
    call->rc = rc;
    call->done = 1;
    sync_unlock_notify(&st.s);
}

static void *do_publish(void *arg) {
    call_t *call = arg;
    finish(call, mqtt_publish(call->c, "ro/pub", "p", 1, MQTT5C_QOS1, false, NULL));
    return NULL;
}

static void *do_subscribe(void *arg) {
    call_t *call = arg;
    finish(call, mqtt_subscribe(call->c, "ro/late", MQTT5C_QOS1, NULL));
    return NULL;
}

static void *do_unsubscribe(void *arg) {
    call_t *call = arg;
    finish(call, mqtt_unsubscribe(call->c, "ro/none", NULL));
    return NULL;
}

static void *do_request(void *arg) {
    call_t *call = arg;
    finish(call, mqtt_request(call->c, "ro/svc", "ping", 4, MQTT5C_QOS1, NULL, 0, &call->response));
    return NULL;
}

static mqtt_client *make(const char *id, bool session, bool retry) {
    mqtt_options *o = mqtt_options_new();
    mqtt_client *c = NULL;
    if (!o)
        return NULL;
    if (mqtt_options_set_client_id(o, id) == MQTT5C_OK &&
        mqtt_options_set_connect_timeout(o, (uint32_t)(5000 * timeout_scale())) == MQTT5C_OK &&
        mqtt_options_set_operation_timeout(o, (uint32_t)(30000 * timeout_scale())) == MQTT5C_OK &&
        mqtt_options_set_auto_reconnect(o, 50, 300) == MQTT5C_OK &&
        mqtt_options_set_connect_retry(o, retry) == MQTT5C_OK &&
        mqtt_options_set_clean_start(o, !session) == MQTT5C_OK &&
        mqtt_options_set_session_expiry(o, session ? 600 : 0) == MQTT5C_OK)
        c = mqtt_client_new(o);
    mqtt_options_free(o);
    return c;
}

int main(int argc, char **argv) {
    const char *url = test_url(argc, argv);
    mqtt_client *p = NULL, *r = NULL, *q = NULL;
    pthread_t threads[4];
    int started = 0;
    bool stopped = false;
    memset(&st, 0, sizeof st);
    sync_init(&st.s);

    p = make("ro-caller", true, false);
    r = make("ro-responder", true, false);
    q = make("ro-retry", false, true);
    CHECK(p && r && q, "clients: %s", test_last_error());
    CHECK_RC(mqtt_set_connection_callback(p, on_p_connection, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_set_message_callback(p, on_other, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_set_connection_callback(q, on_q_connection, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_set_message_callback(r, on_request, r), MQTT5C_OK);
    CHECK_RC(mqtt_connect(r, url), MQTT5C_OK);
    CHECK_RC(mqtt_subscribe(r, "ro/svc", MQTT5C_QOS1, NULL), MQTT5C_QOS1);
    CHECK_RC(mqtt_connect(p, url), MQTT5C_OK);
    CHECK_RC(mqtt_subscribe_cb(p, "ro/route", MQTT5C_QOS1, NULL, on_route, NULL), MQTT5C_QOS1);

    /* ---- 1: calls made while the broker is down ---- */
    CHECK(broker_control("stop"), "stop");
    stopped = true;
    CHECK(sync_wait_count(&st.s, &st.p_disconnected, 1, 20), "no DISCONNECTED");
    pub_call.c = sub_call.c = unsub_call.c = req_call.c = p;
    void *(*fns[4])(void *) = {do_publish, do_subscribe, do_unsubscribe, do_request};
    call_t *calls[4] = {&pub_call, &sub_call, &unsub_call, &req_call};
    for (; started < 4; started++)
        CHECK(pthread_create(&threads[started], NULL, fns[started], calls[started]) == 0,
              "pthread_create");

    /* ---- 2: connect with retry to the stopped broker ---- */
    {
        int rc = mqtt_connect(q, url);
        CHECK(rc == MQTT5C_ERR_IO || rc == MQTT5C_ERR_TIMEOUT || rc == MQTT5C_ERR_CONNECTION_LOST,
              "mqtt_connect to a stopped broker returned %d (%s)", rc, test_strerror(rc));
    }
    CHECK_RC(mqtt_is_connected(q), 0);
    CHECK_RC(mqtt_publish_async(q, "ro/q", "q", 1, MQTT5C_QOS1, false, NULL, on_q_done, NULL), MQTT5C_OK);
    CHECK(sync_wait_count(&st.s, &st.q_reconnecting, 2, 20), "no RECONNECTING 1, 2");
    sync_lock(&st.s);
    int a1 = st.q_attempts[0], a2 = st.q_attempts[1];
    long calls_done = pub_call.done + sub_call.done + unsub_call.done + req_call.done;
    sync_unlock(&st.s);
    CHECK(a1 == 1 && a2 == 2, "attempts numbered %d, %d", a1, a2);
    CHECK(calls_done == 0, "%ld calls returned while the broker was down", calls_done);

    CHECK(broker_control("start"), "start");
    stopped = false;
    CHECK(sync_wait_count(&st.s, &pub_call.done, 1, 30), "publish did not return");
    CHECK(sync_wait_count(&st.s, &sub_call.done, 1, 30), "subscribe did not return");
    CHECK(sync_wait_count(&st.s, &unsub_call.done, 1, 30), "unsubscribe did not return");
    CHECK(sync_wait_count(&st.s, &req_call.done, 1, 30), "request did not return");
    for (; started > 0; started--)
        pthread_join(threads[started - 1], NULL);
    CHECK(publish_ok(pub_call.rc), "publish returned %d", pub_call.rc);
    CHECK(sub_call.rc == MQTT5C_QOS1, "subscribe returned %d", sub_call.rc);
    CHECK(unsub_call.rc == 0 || unsub_call.rc == 0x11, "unsubscribe returned %d", unsub_call.rc);
    CHECK(req_call.rc == MQTT5C_OK, "request returned %d", req_call.rc);
    {
        size_t len = 0;
        const void *payload = mqtt_message_payload(req_call.response, &len);
        CHECK(len == 4 && memcmp(payload, "ping", 4) == 0, "the response echoes the request");
    }
    TEST_LOG("publish, subscribe, unsubscribe and request made while down all succeeded");
    CHECK(sync_wait_count(&st.s, &st.q_connected, 1, 30), "the retrying connect never connected");
    CHECK(sync_wait_count(&st.s, &st.q_done, 1, 30), "the queued publish never completed");
    CHECK(publish_ok(st.q_result), "queued publish completed with %d", st.q_result);
    TEST_LOG("mqtt_connect with retry: connected in the background, queued publish delivered");

    /* ---- 3: the broker loses the session ---- */
    CHECK(broker_control("wipe"), "wipe");
    CHECK(sync_wait_count(&st.s, &st.p_connected, 3, 30), "no reconnect after the wipe");
    CHECK_RC(mqtt_session_present(p), 0);
    /* Published after the reconnect: it goes out after the re-subscription. */
    CHECK(publish_ok(mqtt_publish(p, "ro/route", "r", 1, MQTT5C_QOS1, false, NULL)), "publish");
    CHECK(publish_ok(mqtt_publish(p, "ro/late", "l", 1, MQTT5C_QOS1, false, NULL)), "publish");
    CHECK(sync_wait_count(&st.s, &st.routed, 1, 20), "the route callback got nothing");
    CHECK(sync_wait_count(&st.s, &st.other, 1, 20), "ro/late got nothing");
    {
        uint64_t failed = 99;
        CHECK_RC(mqtt_client_get_stat(p, MQTT5C_STAT_RESUBSCRIBE_FAILED, &failed), MQTT5C_OK);
        CHECK(failed == 0, "%llu re-subscriptions failed", (unsigned long long)failed);
    }
    TEST_LOG("session lost: subscriptions restored, the route callback keeps working");

    CHECK_RC(mqtt_disconnect(p, 0, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_disconnect(q, 0, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_disconnect(r, 0, NULL), MQTT5C_OK);

cleanup:
    if (stopped)
        broker_control("start");
    mqtt_client_free(p);
    mqtt_client_free(q);
    mqtt_client_free(r);
    for (; started > 0; started--)
        pthread_join(threads[started - 1], NULL);
    mqtt_message_free(req_call.response);
    sync_destroy(&st.s);
    return test_failed ? 1 : 0;
}

/*
 * Replacing or ending a callback while it runs on the callback thread: the
 * function that replaces it returns only after the running call of the old
 * callback has returned, so the old user data may be freed right after
 * (valgrind: no invalid read). For the message callback
 * (mqtt_set_message_callback), the connection callback
 * (mqtt_set_connection_callback), and a mqtt_subscribe_cb route ended by
 * mqtt_unsubscribe, replaced by mqtt_subscribe_cb, or handed back to the
 * message callback by mqtt_subscribe.
 *
 * From inside a callback, a setter returns without waiting (it would wait
 * for itself).
 *
 * Last, the ending a program that needs MQTT5C_EVENT_DISCONNECTED uses:
 * mqtt_disconnect, wait for the event in the connection callback, then
 * mqtt_client_free (which drops events still queued).
 *
 * Each old callback sleeps a while (a slow callback, the point of the
 * test), sets a flag when it leaves, and reads its user data last.
 */
#include "test_common.h"

#define MAGIC 0x5eed

typedef struct {
    int magic;
    long entered, exited;
} cookie_t;

static struct {
    sync_t s;
    mqtt_client *client;
    long bad_cookie;
    long new_messages, new_routed, self_set, after_self_set;
    int self_set_rc;
    long connected, disconnected;
    long disconnect_reason;
} st;

static long slow_ms(void) { return (long)(300 * timeout_scale()); }

static cookie_t *cookie_new(void) {
    cookie_t *c = calloc(1, sizeof *c);
    if (c)
        c->magic = MAGIC;
    return c;
}

/* The body of every old callback: enter, stay a while, leave; the
 * cookie's magic is read last (valgrind reports it if freed). */
static void slow_call(cookie_t *c) {
    sync_lock(&st.s);
    c->entered++;
    sync_unlock_notify(&st.s);
    sleep_ms(slow_ms());
    sync_lock(&st.s);
    c->exited++;
    if (c->magic != MAGIC)
        st.bad_cookie++;
    sync_unlock_notify(&st.s);
}

static void old_message(void *ud, const mqtt_message *m) {
    (void)m;
    slow_call(ud);
}

static void old_connection(void *ud, int event, int reason) {
    (void)event;
    (void)reason;
    slow_call(ud);
}

static void old_route(void *ud, const mqtt_message *m) {
    (void)m;
    slow_call(ud);
}

static void new_route(void *ud, const mqtt_message *m) {
    (void)ud;
    (void)m;
    sync_add(&st.s, &st.new_routed, 1);
}

static void after_self_set(void *ud, const mqtt_message *m) {
    (void)ud;
    (void)m;
    sync_add(&st.s, &st.after_self_set, 1);
}

static void new_message(void *ud, const mqtt_message *m) {
    (void)ud;
    if (strcmp(mqtt_message_topic(m), "cr/self") == 0) {
        /* From inside a callback: must return without waiting. */
        int rc = mqtt_set_message_callback(st.client, after_self_set, NULL);
        sync_lock(&st.s);
        st.self_set_rc = rc;
        st.self_set++;
        sync_unlock_notify(&st.s);
        return;
    }
    sync_add(&st.s, &st.new_messages, 1);
}

static void new_connection(void *ud, int event, int reason) {
    (void)ud;
    sync_lock(&st.s);
    if (event == MQTT5C_EVENT_CONNECTED)
        st.connected++;
    if (event == MQTT5C_EVENT_DISCONNECTED) {
        st.disconnected++;
        st.disconnect_reason = reason;
    }
    sync_unlock_notify(&st.s);
}

/* Waits until the old callback with cookie `c` runs. */
static bool wait_entered(cookie_t *c) { return sync_wait_count(&st.s, &c->entered, 1, 20); }

static long exited(cookie_t *c) { return sync_get(&st.s, &c->exited); }

static int publish(const char *topic) {
    return mqtt_publish(st.client, topic, "x", 1, MQTT5C_QOS1, false, NULL);
}

int main(int argc, char **argv) {
    const char *url = test_url(argc, argv);
    cookie_t *msg = cookie_new(), *conn = cookie_new(), *unsub = cookie_new(), *resub = cookie_new(),
             *plain = cookie_new();

    sync_init(&st.s);
    st.self_set_rc = -1000;
    CHECK(msg && conn && unsub && resub && plain, "calloc");
    st.client = test_client_new("callback-replace");
    CHECK(st.client != NULL, "client creation failed");

    /* ---- the connection callback, during the CONNECTED event ---- */
    CHECK_RC(mqtt_set_connection_callback(st.client, old_connection, conn), MQTT5C_OK);
    CHECK_RC(mqtt_connect(st.client, url), MQTT5C_OK);
    CHECK(wait_entered(conn), "no CONNECTED event");
    CHECK_RC(mqtt_set_connection_callback(st.client, new_connection, NULL), MQTT5C_OK);
    CHECK(exited(conn) == 1, "mqtt_set_connection_callback returned while the old callback ran");
    free(conn);
    conn = NULL;
    TEST_LOG("connection callback replaced");

    /* ---- the message callback ---- */
    CHECK_RC(mqtt_set_message_callback(st.client, old_message, msg), MQTT5C_OK);
    CHECK_RC(mqtt_subscribe(st.client, "cr/m/#", MQTT5C_QOS1, NULL), 1);
    CHECK(publish_ok(publish("cr/m/1")), "publish");
    CHECK(wait_entered(msg), "the message callback was not called");
    CHECK_RC(mqtt_set_message_callback(st.client, new_message, NULL), MQTT5C_OK);
    CHECK(exited(msg) == 1, "mqtt_set_message_callback returned while the old callback ran");
    free(msg);
    msg = NULL;
    CHECK(publish_ok(publish("cr/m/2")), "publish");
    CHECK(sync_wait_count(&st.s, &st.new_messages, 1, 20), "the new message callback got nothing");
    TEST_LOG("message callback replaced");

    /* ---- a route ended by mqtt_unsubscribe ---- */
    CHECK_RC(mqtt_subscribe_cb(st.client, "cr/u", MQTT5C_QOS1, NULL, old_route, unsub), 1);
    CHECK(publish_ok(publish("cr/u")), "publish");
    CHECK(wait_entered(unsub), "the route was not called");
    CHECK_RC(mqtt_unsubscribe(st.client, "cr/u", NULL), 0);
    CHECK(exited(unsub) == 1, "mqtt_unsubscribe returned while the route's callback ran");
    free(unsub);
    unsub = NULL;
    TEST_LOG("route ended by mqtt_unsubscribe");

    /* ---- a route replaced by mqtt_subscribe_cb ---- */
    CHECK_RC(mqtt_subscribe_cb(st.client, "cr/r", MQTT5C_QOS1, NULL, old_route, resub), 1);
    CHECK(publish_ok(publish("cr/r")), "publish");
    CHECK(wait_entered(resub), "the route was not called");
    CHECK_RC(mqtt_subscribe_cb(st.client, "cr/r", MQTT5C_QOS1, NULL, new_route, NULL), 1);
    CHECK(exited(resub) == 1, "mqtt_subscribe_cb returned while the replaced route's callback ran");
    free(resub);
    resub = NULL;
    CHECK(publish_ok(publish("cr/r")), "publish");
    CHECK(sync_wait_count(&st.s, &st.new_routed, 1, 20), "the new route got nothing");
    TEST_LOG("route replaced by mqtt_subscribe_cb");

    /* ---- a route handed back to the message callback by mqtt_subscribe ---- */
    CHECK_RC(mqtt_subscribe_cb(st.client, "cr/p", MQTT5C_QOS1, NULL, old_route, plain), 1);
    CHECK(publish_ok(publish("cr/p")), "publish");
    CHECK(wait_entered(plain), "the route was not called");
    CHECK_RC(mqtt_subscribe(st.client, "cr/p", MQTT5C_QOS1, NULL), 1);
    CHECK(exited(plain) == 1, "mqtt_subscribe returned while the replaced route's callback ran");
    free(plain);
    plain = NULL;
    TEST_LOG("route replaced by mqtt_subscribe");

    /* ---- a setter called from inside a callback ---- */
    CHECK_RC(mqtt_subscribe(st.client, "cr/self", MQTT5C_QOS1, NULL), 1);
    CHECK(publish_ok(publish("cr/self")), "publish");
    CHECK(sync_wait_count(&st.s, &st.self_set, 1, 20), "the callback's own mqtt_set_message_callback did not return");
    CHECK(st.self_set_rc == MQTT5C_OK, "mqtt_set_message_callback from a callback returned %d", st.self_set_rc);
    CHECK(publish_ok(publish("cr/m/3")), "publish");
    CHECK(sync_wait_count(&st.s, &st.after_self_set, 1, 20), "the callback set from a callback got nothing");
    TEST_LOG("setter from inside a callback");

    CHECK(sync_get(&st.s, &st.bad_cookie) == 0, "a callback saw a clobbered cookie");

    /* ---- disconnect, wait for DISCONNECTED, then free ---- */
    CHECK_RC(mqtt_disconnect(st.client, 0, NULL), MQTT5C_OK);
    CHECK(sync_wait_count(&st.s, &st.disconnected, 1, 20), "no MQTT5C_EVENT_DISCONNECTED after mqtt_disconnect");
    CHECK(sync_get(&st.s, &st.disconnect_reason) == 0, "DISCONNECTED with reason %ld, want 0", st.disconnect_reason);
    mqtt_client_free(st.client);
    st.client = NULL;
    TEST_LOG("DISCONNECTED seen before mqtt_client_free");

cleanup:
    mqtt_client_free(st.client);
    /* On failure an old callback may still run with its cookie: keep it. */
    if (!test_failed) {
        free(msg);
        free(conn);
        free(unsub);
        free(resub);
        free(plain);
    }
    sync_destroy(&st.s);
    if (!test_failed)
        TEST_LOG("test_callback_replace: PASS");
    return test_failed;
}

/*
 * Two mqtt_subscribe_cb routes match one message (their subscriptions
 * share a Subscription Identifier, so the one message mosquitto sends
 * carries it for both), and the first route's callback changes what the
 * second one would use:
 *
 * 1. it unsubscribes the second route and frees that route's user data:
 *    the second callback must not run (a later message to the message
 *    callback of the same client shows that the first one has been handled
 *    completely, callbacks of a client running in order);
 * 2. it frees the client (allowed from a callback) and then the second
 *    route's user data, as allowed once mqtt_client_free returned: the
 *    second callback must not run (checked after a round trip on another
 *    client, and by valgrind: it would read freed memory).
 */
#include "test_common.h"

#define MAGIC 0x5eed

typedef struct {
    int magic;
} cookie_t;

static struct {
    sync_t s;
    mqtt_client *client;
    cookie_t *second_cookie;
    long first_calls, second_calls, done_calls, freed;
    int unsubscribe_rc;
    long bad_cookie;
} st;

/* The second route: counts, and reads its cookie (freed by the first). */
static void second_route(void *ud, const mqtt_message *m) {
    cookie_t *cookie = ud;
    (void)m;
    sync_lock(&st.s);
    if (cookie->magic != MAGIC)
        st.bad_cookie++;
    st.second_calls++;
    sync_unlock_notify(&st.s);
}

/* Part 1: ends the second route from inside the first. */
static void first_route_unsubscribes(void *ud, const mqtt_message *m) {
    (void)ud;
    (void)m;
    int rc = mqtt_unsubscribe(st.client, "rf/b", NULL);
    sync_lock(&st.s);
    st.unsubscribe_rc = rc;
    st.first_calls++;
    free(st.second_cookie);
    st.second_cookie = NULL;
    sync_unlock_notify(&st.s);
}

/* Part 2: frees the client from inside the first route. */
static void first_route_frees(void *ud, const mqtt_message *m) {
    (void)ud;
    (void)m;
    mqtt_client_free(st.client);
    sync_lock(&st.s);
    st.first_calls++;
    free(st.second_cookie);
    st.second_cookie = NULL;
    st.freed++;
    sync_unlock_notify(&st.s);
}

static void on_message(void *ud, const mqtt_message *m) {
    (void)ud;
    (void)m;
    sync_add(&st.s, &st.done_calls, 1);
}

/* Subscribes `filter` with `cb` and Subscription Identifier `id`. */
static int route(mqtt_client *c, const char *filter, int id, mqtt_message_cb cb, void *ud) {
    mqtt_properties *p = mqtt_properties_new();
    int rc = p ? mqtt_properties_set_int(p, MQTT5C_PROP_SUBSCRIPTION_IDENTIFIER, (uint32_t)id) : MQTT5C_ERR_INTERNAL;
    if (rc == MQTT5C_OK)
        rc = mqtt_subscribe_cb(c, filter, MQTT5C_QOS1, p, cb, ud);
    mqtt_properties_free(p);
    return rc;
}

static void reset(void) {
    sync_lock(&st.s);
    st.first_calls = st.second_calls = st.done_calls = st.freed = 0;
    sync_unlock(&st.s);
}

int main(int argc, char **argv) {
    const char *url = test_url(argc, argv);
    mqtt_client *pub = NULL;
    long first, second;

    sync_init(&st.s);
    pub = test_client_new("rf-pub");
    CHECK(pub != NULL, "client creation failed");
    CHECK_RC(mqtt_connect(pub, url), MQTT5C_OK);

    /* ---- 1: the first route unsubscribes the second ---- */
    st.second_cookie = malloc(sizeof *st.second_cookie);
    CHECK(st.second_cookie != NULL, "malloc");
    st.second_cookie->magic = MAGIC;
    st.client = test_client_new("rf-unsub");
    CHECK(st.client != NULL, "client creation failed");
    CHECK_RC(mqtt_set_message_callback(st.client, on_message, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_connect(st.client, url), MQTT5C_OK);
    CHECK_RC(route(st.client, "rf/a", 7, first_route_unsubscribes, NULL), 1);
    CHECK_RC(route(st.client, "rf/b", 7, second_route, st.second_cookie), 1);
    CHECK_RC(mqtt_subscribe(st.client, "rf/done", MQTT5C_QOS1, NULL), 1);
    CHECK(publish_ok(mqtt_publish(pub, "rf/a", "x", 1, MQTT5C_QOS1, false, NULL)), "publish rf/a");
    CHECK(publish_ok(mqtt_publish(pub, "rf/done", "x", 1, MQTT5C_QOS1, false, NULL)), "publish rf/done");
    CHECK(sync_wait_count(&st.s, &st.done_calls, 1, 20), "the message after the routed one never arrived");
    sync_lock(&st.s);
    first = st.first_calls;
    second = st.second_calls;
    sync_unlock(&st.s);
    CHECK(first == 1, "the first route ran %ld times, want 1", first);
    CHECK(st.unsubscribe_rc == 0, "mqtt_unsubscribe from the first route returned %d", st.unsubscribe_rc);
    CHECK(second == 0, "the second route ran %ld times after the first one had ended it", second);
    CHECK_RC(mqtt_disconnect(st.client, 0, NULL), MQTT5C_OK);
    mqtt_client_free(st.client);
    st.client = NULL;
    TEST_LOG("1: an ended route is not called");

    /* ---- 2: the first route frees the client ---- */
    reset();
    st.second_cookie = malloc(sizeof *st.second_cookie);
    CHECK(st.second_cookie != NULL, "malloc");
    st.second_cookie->magic = MAGIC;
    st.client = test_client_new("rf-free");
    CHECK(st.client != NULL, "client creation failed");
    CHECK_RC(mqtt_connect(st.client, url), MQTT5C_OK);
    CHECK_RC(route(st.client, "rf/c", 9, first_route_frees, NULL), 1);
    CHECK_RC(route(st.client, "rf/d", 9, second_route, st.second_cookie), 1);
    CHECK(publish_ok(mqtt_publish(pub, "rf/c", "x", 1, MQTT5C_QOS1, false, NULL)), "publish rf/c");
    CHECK(sync_wait_count(&st.s, &st.freed, 1, 20), "the first route never freed the client");
    /* The second call would follow the first at once, on the same thread:
     * a round trip with the broker on another client is far longer. */
    CHECK(publish_ok(mqtt_publish(pub, "rf/other", "x", 1, MQTT5C_QOS1, false, NULL)), "publish rf/other");
    sync_lock(&st.s);
    second = st.second_calls;
    sync_unlock(&st.s);
    CHECK(second == 0, "the second route ran %ld times after the first had freed the client", second);
    CHECK(sync_get(&st.s, &st.bad_cookie) == 0, "a route saw a clobbered cookie");
    TEST_LOG("2: no route runs once a route freed the client");
    CHECK_RC(mqtt_disconnect(pub, 0, NULL), MQTT5C_OK);

cleanup:
    if (st.client && sync_get(&st.s, &st.freed) == 0)
        mqtt_client_free(st.client);
    mqtt_client_free(pub);
    sync_destroy(&st.s);
    if (!test_failed)
        TEST_LOG("test_route_free: PASS");
    return test_failed;
}

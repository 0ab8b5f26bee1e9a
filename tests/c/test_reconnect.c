/*
 * Automatic reconnection (mqtt_options_set_auto_reconnect) against a
 * scripted broker (tests/scripted, script "reconnect"), which checks that
 * every CONNECT carries the user name and password:
 *  - the setter's validation (NULL, max < min, 0 turns it off);
 *  - a server DISCONNECT 0x8B: DISCONNECTED, then CONNECTED again by
 *    itself, and a QoS 1 publish on the new connection;
 *  - the socket closed: mqtt_disconnect from the DISCONNECTED callback
 *    stops the reconnection (MQTT5C_OK); a publish then is NOT_CONNECTED;
 *  - DISCONNECT 0x8E (session taken over): no reconnection (mqtt_disconnect
 *    from the callback finds none: NOT_CONNECTED), and mqtt_connect from
 *    the same callback connects by hand;
 *  - that connection closed: back by itself, a publish, a clean end.
 * The events must come in exactly this order, MQTT5C_EVENT_RECONNECTING
 * (with the attempt number) before each automatic attempt.
 */
// fake-broker: reconnect
#include "test_common.h"

#define MAX_EVENTS 32

typedef struct {
    sync_t s;
    mqtt_client *client;
    const char *url;
    long connected;
    long disconnected;
    long callbacks_done;
    long stop_done; /* the DISCONNECTED #2 callback has finished its calls */
    int events[MAX_EVENTS][2];
    long n_events;
    int stop_rc;          /* mqtt_disconnect in DISCONNECTED #2 */
    int publish_rc;       /* mqtt_publish right after it */
    int takeover_stop_rc; /* mqtt_disconnect in DISCONNECTED #3 */
    int takeover_connect_rc;
} state_t;

static void on_connection(void *ud, int event, int reason) {
    state_t *st = ud;
    sync_lock(&st->s);
    if (st->n_events < MAX_EVENTS) {
        st->events[st->n_events][0] = event;
        st->events[st->n_events][1] = reason;
    }
    st->n_events++;
    long disc = event == MQTT5C_EVENT_DISCONNECTED ? ++st->disconnected : 0;
    sync_unlock_notify(&st->s);

    if (disc == 2) {
        /* Lost while auto-reconnecting: stop it from the callback. */
        int rc = mqtt_disconnect(st->client, 0, NULL);
        int prc = mqtt_publish(st->client, "rc/never", "x", 1, MQTT5C_QOS1, false, NULL);
        sync_lock(&st->s);
        st->stop_rc = rc;
        st->publish_rc = prc;
        st->stop_done = 1;
        sync_unlock_notify(&st->s);
    } else if (disc == 3) {
        /* Session taken over: nothing to stop; connect by hand. */
        int rc = mqtt_disconnect(st->client, 0, NULL);
        int crc = mqtt_connect(st->client, st->url);
        sync_lock(&st->s);
        st->takeover_stop_rc = rc;
        st->takeover_connect_rc = crc;
        sync_unlock_notify(&st->s);
    }
    sync_lock(&st->s);
    if (event == MQTT5C_EVENT_CONNECTED)
        st->connected++;
    st->callbacks_done++;
    sync_unlock_notify(&st->s);
}

int main(int argc, char **argv) {
    const char *url = test_url(argc, argv);
    mqtt_options *opts = NULL;
    mqtt_client *c = NULL;
    state_t st;
    memset(&st, 0, sizeof st);
    sync_init(&st.s);
    st.url = url;

    /* ---- the setter ---- */
    opts = mqtt_options_new();
    CHECK(opts != NULL, "mqtt_options_new");
    CHECK_RC(mqtt_options_set_auto_reconnect(NULL, 100, 200), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK_RC(mqtt_options_set_auto_reconnect(opts, 200, 100), MQTT5C_ERR_INVALID_ARGUMENT);
    {
        const char *kw[] = {"max_delay_ms", NULL};
        CHECK(last_error_mentions(kw), "last error names the argument: %s", test_last_error());
    }
    CHECK_RC(mqtt_options_set_auto_reconnect(opts, 0, 0), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_auto_reconnect(opts, 0, 5), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_auto_reconnect(opts, 100, 100), MQTT5C_OK);
    /* Long enough that the callback's mqtt_disconnect (#2) comes first,
     * even under valgrind. */
    CHECK_RC(mqtt_options_set_auto_reconnect(opts, 1000, 2000), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_client_id(opts, "c-reconnect"), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_credentials(opts, "user", "secret", 6), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_connect_timeout(opts, (uint32_t)(10000 * timeout_scale())), MQTT5C_OK);
    c = mqtt_client_new(opts);
    CHECK(c != NULL, "mqtt_client_new: %s", test_last_error());
    mqtt_options_free(opts);
    opts = NULL;
    st.client = c;
    CHECK_RC(mqtt_set_connection_callback(c, on_connection, &st), MQTT5C_OK);

    /* ---- 1: DISCONNECT 0x8B, back by itself ---- */
    CHECK_RC(mqtt_connect(c, url), MQTT5C_OK);
    CHECK(sync_wait_count(&st.s, &st.connected, 2, 20), "no CONNECTED after the reconnect");
    CHECK_RC(mqtt_publish(c, "rc/after-reconnect", "1", 1, MQTT5C_QOS1, false, NULL), 0);
    TEST_LOG("reconnected after DISCONNECT 0x8B and published");

    /* ---- 2: socket closed; the callback stops the reconnection ---- */
    CHECK(sync_wait_count(&st.s, &st.stop_done, 1, 20), "no DISCONNECTED #2");
    sync_lock(&st.s);
    int stop_rc = st.stop_rc, publish_rc = st.publish_rc;
    sync_unlock(&st.s);
    CHECK(stop_rc == MQTT5C_OK, "mqtt_disconnect while reconnecting returned %d", stop_rc);
    CHECK(publish_rc == MQTT5C_ERR_NOT_CONNECTED, "publish while stopped returned %d", publish_rc);
    CHECK_RC(mqtt_is_connected(c), 0);
    CHECK_RC(mqtt_disconnect(c, 0, NULL), MQTT5C_ERR_NOT_CONNECTED);
    TEST_LOG("mqtt_disconnect from the DISCONNECTED callback stopped the reconnection");

    /* ---- 3, 4, 5: by hand; 0x8E; by hand from the callback; back ---- */
    CHECK_RC(mqtt_connect(c, url), MQTT5C_OK);
    CHECK(sync_wait_count(&st.s, &st.connected, 5, 30), "no CONNECTED #5");
    sync_lock(&st.s);
    int takeover_stop_rc = st.takeover_stop_rc, takeover_connect_rc = st.takeover_connect_rc;
    sync_unlock(&st.s);
    CHECK(takeover_stop_rc == MQTT5C_ERR_NOT_CONNECTED,
          "after 0x8E nothing reconnects, but mqtt_disconnect returned %d", takeover_stop_rc);
    CHECK(takeover_connect_rc == MQTT5C_OK, "mqtt_connect from the callback returned %d",
          takeover_connect_rc);
    CHECK_RC(mqtt_publish(c, "rc/final", "5", 1, MQTT5C_QOS1, false, NULL), 0);
    CHECK_RC(mqtt_disconnect(c, 0, NULL), MQTT5C_OK);
    CHECK(sync_wait_count(&st.s, &st.disconnected, 5, 10), "no DISCONNECTED for ours");

    {
        static const int want[][2] = {
            {MQTT5C_EVENT_CONNECTED, 0},    {MQTT5C_EVENT_DISCONNECTED, 0x8B},
            {MQTT5C_EVENT_RECONNECTING, 1}, {MQTT5C_EVENT_CONNECTED, 0},
            {MQTT5C_EVENT_DISCONNECTED, MQTT5C_ERR_CONNECTION_LOST},
            {MQTT5C_EVENT_CONNECTED, 0},    {MQTT5C_EVENT_DISCONNECTED, 0x8E},
            {MQTT5C_EVENT_CONNECTED, 0},    {MQTT5C_EVENT_DISCONNECTED, MQTT5C_ERR_CONNECTION_LOST},
            {MQTT5C_EVENT_RECONNECTING, 1}, {MQTT5C_EVENT_CONNECTED, 0},
            {MQTT5C_EVENT_DISCONNECTED, 0},
        };
        long n = (long)(sizeof want / sizeof want[0]);
        sync_lock(&st.s);
        long got = st.n_events;
        bool same = got == n;
        for (long i = 0; same && i < n; i++)
            same = st.events[i][0] == want[i][0] && st.events[i][1] == want[i][1];
        if (!same)
            for (long i = 0; i < got && i < MAX_EVENTS; i++)
                fprintf(stderr, "event %ld: %d reason %d\n", i, st.events[i][0], st.events[i][1]);
        sync_unlock(&st.s);
        CHECK(same, "event sequence (%ld events, want %ld)", got, n);
    }
    TEST_LOG("events: CONNECTED, DISCONNECTED 0x8B, RECONNECTING 1, CONNECTED, DISCONNECTED lost, "
             "CONNECTED, DISCONNECTED 0x8E, CONNECTED, DISCONNECTED lost, RECONNECTING 1, "
             "CONNECTED, DISCONNECTED 0");

cleanup:
    mqtt_options_free(opts);
    mqtt_client_free(c);
    sync_destroy(&st.s);
    return test_failed ? 1 : 0;
}

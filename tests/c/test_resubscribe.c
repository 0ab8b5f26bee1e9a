/*
 * Re-subscription after a lost session (mqtt_options_set_resubscribe, on
 * by default), against a scripted broker (tests/scripted/reliability.rs,
 * script "resubscribe"): the client subscribes with mqtt_subscribe_cb
 * (a route, matched by its Subscription Identifier) and mqtt_subscribe;
 * the connection drops; the reconnect finds no session (Session Present
 * 0). The client subscribes again to both, with the same identifier; the
 * broker refuses one (0x87): MQTT5C_EVENT_RESUBSCRIBE_FAILED with 0x87,
 * mqtt_last_error() in that callback naming the filter and the broker's
 * reason string, MQTT5C_STAT_RESUBSCRIBE_FAILED 1; a message then sent for
 * the route reaches the route's callback.
 */
// fake-broker: resubscribe
#include "test_common.h"

static struct {
    sync_t s;
    long connected, failed, routed, other;
    int failed_reason;
    bool text_names_filter, text_has_reason;
} st;

static void on_connection(void *ud, int event, int reason) {
    (void)ud;
    sync_lock(&st.s);
    if (event == MQTT5C_EVENT_CONNECTED)
        st.connected++;
    if (event == MQTT5C_EVENT_RESUBSCRIBE_FAILED) {
        st.failed++;
        st.failed_reason = reason;
        st.text_names_filter = contains_ci(mqtt_last_error(), "rs/denied");
        st.text_has_reason = contains_ci(mqtt_last_error(), "not for you");
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

int main(int argc, char **argv) {
    const char *url = test_url(argc, argv);
    mqtt_options *o = mqtt_options_new();
    mqtt_client *c = NULL;
    memset(&st, 0, sizeof st);
    sync_init(&st.s);
    CHECK(o != NULL, "mqtt_options_new");
    CHECK_RC(mqtt_options_set_client_id(o, "c-resubscribe"), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_auto_reconnect(o, 50, 200), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_resubscribe(o, true), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_connect_timeout(o, (uint32_t)(10000 * timeout_scale())), MQTT5C_OK);
    c = mqtt_client_new(o);
    CHECK(c != NULL, "mqtt_client_new: %s", test_last_error());
    CHECK_RC(mqtt_set_connection_callback(c, on_connection, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_set_message_callback(c, on_other, NULL), MQTT5C_OK);

    CHECK_RC(mqtt_connect(c, url), MQTT5C_OK);
    CHECK_RC(mqtt_subscribe_cb(c, "rs/route", MQTT5C_QOS1, NULL, on_route, NULL), MQTT5C_QOS1);
    CHECK_RC(mqtt_subscribe(c, "rs/denied", MQTT5C_QOS1, NULL), MQTT5C_QOS1);
    CHECK(sync_wait_count(&st.s, &st.connected, 2, 20), "no reconnect");
    CHECK(sync_wait_count(&st.s, &st.failed, 1, 20), "no MQTT5C_EVENT_RESUBSCRIBE_FAILED");
    /* Two messages: once the second is seen, the first callback returned
     * and its PUBACK is due before our DISCONNECT (the script checks). */
    CHECK(sync_wait_count(&st.s, &st.routed, 2, 20), "the route callback got less than 2");
    sync_lock(&st.s);
    int reason = st.failed_reason;
    bool names = st.text_names_filter, why = st.text_has_reason;
    long failed = st.failed, other = st.other;
    sync_unlock(&st.s);
    CHECK(reason == 0x87, "refused with 0x%x, want 0x87", (unsigned)reason);
    CHECK(names && why, "mqtt_last_error() in the callback names the filter (%d) and the reason "
                        "string (%d)", names, why);
    CHECK(failed == 1 && other == 0, "%ld failure events, %ld unrouted messages", failed, other);
    {
        uint64_t n = 0;
        CHECK_RC(mqtt_client_get_stat(c, MQTT5C_STAT_RESUBSCRIBE_FAILED, &n), MQTT5C_OK);
        CHECK(n == 1, "MQTT5C_STAT_RESUBSCRIBE_FAILED %llu", (unsigned long long)n);
    }
    TEST_LOG("re-subscribed after the lost session; the refusal reported; the route works");
    CHECK_RC(mqtt_disconnect(c, 0, NULL), MQTT5C_OK);

cleanup:
    mqtt_options_free(o);
    mqtt_client_free(c);
    sync_destroy(&st.s);
    return test_failed ? 1 : 0;
}

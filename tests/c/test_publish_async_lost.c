/*
 * mqtt_publish_async against a scripted broker (tests/scripted: the
 * publish_async_lost script), for what mosquitto cannot show:
 *
 * - a PUBACK 0x10 with a reason string and a user property reaches the
 *   callback as result and ack_props;
 * - a QoS 2 publish refused at PUBREC (0x87) gives the callback 0x87 and
 *   the reason string in mqtt_last_error();
 * - five publishes the broker never acknowledges before it closes the
 *   socket: each callback is called once with MQTT5C_ERR_CONNECTION_LOST,
 *   all before the DISCONNECTED event;
 * - afterwards mqtt_publish_async returns MQTT5C_ERR_NOT_CONNECTED and its
 *   callback is never called.
 */
// fake-broker: publish_async_lost
#include "test_common.h"

#define N_PENDING 5

static struct {
    sync_t s;
    /* 1 */
    int ack_result;
    char ack_reason[64];
    char ack_user[64];
    long ack_done;
    /* 2 */
    int refused_result;
    char refused_text[256];
    long refused_done;
    /* 3 */
    int pending_calls[N_PENDING];
    int pending_result[N_PENDING];
    long pending_done;
    long pending_after_disconnect;
    long disconnected;
    int disconnect_reason;
    /* afterwards */
    long bad_calls;
} st;

static void on_ack(void *ud, int result, const mqtt_properties *props) {
    (void)ud;
    const char *reason = mqtt_properties_get_string(props, MQTT5C_PROP_REASON_STRING);
    const char *k = NULL, *v = NULL;
    sync_lock(&st.s);
    st.ack_result = result;
    snprintf(st.ack_reason, sizeof st.ack_reason, "%s", reason ? reason : "(none)");
    if (mqtt_properties_user_at(props, 0, &k, &v) == MQTT5C_OK)
        snprintf(st.ack_user, sizeof st.ack_user, "%s=%s", k, v);
    st.ack_done++;
    sync_unlock_notify(&st.s);
}

static void on_refused(void *ud, int result, const mqtt_properties *props) {
    (void)ud;
    (void)props;
    sync_lock(&st.s);
    st.refused_result = result;
    snprintf(st.refused_text, sizeof st.refused_text, "%s", test_last_error());
    st.refused_done++;
    sync_unlock_notify(&st.s);
}

static void on_pending(void *ud, int result, const mqtt_properties *props) {
    int i = (int)(intptr_t)ud;
    sync_lock(&st.s);
    if (props && mqtt_properties_count(props, MQTT5C_PROP_USER_PROPERTY) == 0) {
        st.pending_calls[i]++;
        st.pending_result[i] = result;
    }
    if (st.disconnected)
        st.pending_after_disconnect++;
    st.pending_done++;
    sync_unlock_notify(&st.s);
}

static void on_bad(void *ud, int result, const mqtt_properties *props) {
    (void)ud;
    (void)result;
    (void)props;
    sync_add(&st.s, &st.bad_calls, 1);
}

static void on_connection(void *ud, int event, int reason) {
    (void)ud;
    if (event != MQTT5C_EVENT_DISCONNECTED)
        return;
    sync_lock(&st.s);
    st.disconnect_reason = reason;
    st.disconnected++;
    sync_unlock_notify(&st.s);
}

int main(int argc, char **argv) {
    const char *url = test_url(argc, argv);
    mqtt_client *c = test_client_new("pa-lost");

    sync_init(&st.s);
    CHECK(c, "client_new");
    CHECK_RC(mqtt_set_connection_callback(c, on_connection, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_connect(c, url), MQTT5C_OK);

    CHECK_RC(mqtt_publish_async(c, "lost/ack", "a", 1, MQTT5C_QOS1, false, NULL, on_ack, NULL),
             MQTT5C_OK);
    CHECK_RC(mqtt_publish_async(c, "lost/refused", "r", 1, MQTT5C_QOS2, false, NULL, on_refused,
                                NULL),
             MQTT5C_OK);
    for (int i = 0; i < N_PENDING; i++)
        CHECK_RC(mqtt_publish_async(c, "lost/pending", "p", 1, MQTT5C_QOS1, false, NULL, on_pending,
                                    (void *)(intptr_t)i),
                 MQTT5C_OK);

    CHECK(sync_wait_count(&st.s, &st.ack_done, 1, 30), "PUBACK callback");
    CHECK(sync_wait_count(&st.s, &st.refused_done, 1, 30), "PUBREC callback");
    CHECK(sync_wait_count(&st.s, &st.disconnected, 1, 30), "DISCONNECTED event");
    CHECK(sync_wait_count(&st.s, &st.pending_done, N_PENDING, 30), "pending callbacks: %ld",
          sync_get(&st.s, &st.pending_done));

    sync_lock(&st.s);
    int ack_result = st.ack_result, refused_result = st.refused_result;
    sync_unlock(&st.s);
    CHECK_RC(ack_result, 0x10);
    CHECK(strcmp(st.ack_reason, "nobody listens") == 0, "reason string '%s'", st.ack_reason);
    CHECK(strcmp(st.ack_user, "k=v") == 0, "user property '%s'", st.ack_user);
    TEST_LOG("PUBACK 0x10: reason string '%s', user property %s", st.ack_reason, st.ack_user);
    CHECK_RC(refused_result, 0x87);
    CHECK(contains_ci(st.refused_text, "not yours"), "last error in callback: '%s'",
          st.refused_text);
    TEST_LOG("PUBREC 0x87: mqtt_last_error() in the callback: %s", st.refused_text);
    for (int i = 0; i < N_PENDING; i++) {
        CHECK(st.pending_calls[i] == 1, "pending %d called %d times", i, st.pending_calls[i]);
        CHECK_RC(st.pending_result[i], MQTT5C_ERR_CONNECTION_LOST);
    }
    CHECK(sync_get(&st.s, &st.pending_after_disconnect) == 0,
          "a CONNECTION_LOST completion came after the DISCONNECTED event");
    CHECK_RC(st.disconnect_reason, MQTT5C_ERR_CONNECTION_LOST);
    TEST_LOG("%d unacknowledged: each callback once with MQTT5C_ERR_CONNECTION_LOST, before "
             "DISCONNECTED",
             N_PENDING);

    CHECK_RC(mqtt_publish_async(c, "lost/after", "x", 1, MQTT5C_QOS1, false, NULL, on_bad, NULL),
             MQTT5C_ERR_NOT_CONNECTED);
    CHECK_RC(mqtt_publish_async(c, "lost/after", "x", 1, MQTT5C_QOS0, false, NULL, on_bad, NULL),
             MQTT5C_ERR_NOT_CONNECTED);

cleanup:
    mqtt_client_free(c);
    /* After free no callback runs; the refused calls never queued one. */
    if (!test_failed && st.bad_calls != 0) {
        fprintf(stderr, "FAIL: a callback ran for a refused publish\n");
        test_failed = 1;
    }
    sync_destroy(&st.s);
    if (!test_failed)
        TEST_LOG("PASS");
    return test_failed;
}

/*
 * What mqtt_disconnect may send (issue 7, defect 14 and the reason codes).
 *
 *  - A Session Expiry Interval above 0 in DISCONNECT when the CONNECT of
 *    the connection had none (spec 3.14.2.2.2; mosquitto takes it as a
 *    protocol error and publishes the will): refused with
 *    MQTT5C_ERR_INVALID_ARGUMENT and a text naming it, nothing sent; the
 *    connection still works (QoS 1 round trip) and a clean disconnect
 *    afterwards does not publish the will. When the CONNECT had one (from
 *    mqtt_options_set_session_expiry or the connect properties), DISCONNECT
 *    may change it.
 *  - Reason codes follow the reason table's DISCONNECT rule: 0x10 (a PUBACK
 *    reason) and 0x01 (a SUBACK one) are refused, connected or not, before
 *    anything happens; 0x00, 0x04 (the will is published) and 0x80 are sent.
 *
 * The will of the cleanly disconnected client is looked for until a marker
 * published after that disconnect has come back to the watching subscriber.
 */
#include "test_common.h"

static struct {
    sync_t s;
    long echoes;    /* dr/echo */
    long markers;   /* dr/marker */
    long will_a;    /* dr/will/a: must never come */
    long will_b04;  /* dr/will/b04: the will of DISCONNECT 0x04 */
} st;

static void on_watch(void *ud, const mqtt_message *m) {
    (void)ud;
    const char *t = mqtt_message_topic(m);
    sync_lock(&st.s);
    if (strcmp(t, "dr/echo") == 0)
        st.echoes++;
    else if (strcmp(t, "dr/marker") == 0)
        st.markers++;
    else if (strcmp(t, "dr/will/a") == 0)
        st.will_a++;
    else if (strcmp(t, "dr/will/b04") == 0)
        st.will_b04++;
    sync_unlock_notify(&st.s);
}

static bool err_mentions(const char *word) {
    const char *k[] = {word, NULL};
    return last_error_mentions(k);
}

/* A client with a will on `will_topic` (NULL: none), a Session Expiry
 * Interval set with the option (`option_expiry`) or in the connect
 * properties (`prop_expiry`), 0 for none. */
static mqtt_client *client_new(const char *id, const char *will_topic, uint32_t option_expiry, uint32_t prop_expiry) {
    mqtt_options *o = mqtt_options_new();
    mqtt_properties *cp = mqtt_properties_new();
    mqtt_client *c = NULL;
    int rc = o && cp ? MQTT5C_OK : MQTT5C_ERR_INTERNAL;
    if (rc == MQTT5C_OK)
        rc = mqtt_options_set_client_id(o, id);
    if (rc == MQTT5C_OK)
        rc = mqtt_options_set_operation_timeout(o, (uint32_t)(30000 * timeout_scale()));
    if (rc == MQTT5C_OK && will_topic)
        rc = mqtt_options_set_will(o, will_topic, "gone", 4, MQTT5C_QOS1, false, NULL);
    if (rc == MQTT5C_OK && option_expiry)
        rc = mqtt_options_set_session_expiry(o, option_expiry);
    if (rc == MQTT5C_OK && prop_expiry) {
        rc = mqtt_properties_set_int(cp, MQTT5C_PROP_SESSION_EXPIRY_INTERVAL, prop_expiry);
        if (rc == MQTT5C_OK)
            rc = mqtt_options_set_connect_properties(o, cp);
    }
    if (rc == MQTT5C_OK)
        c = mqtt_client_new(o);
    if (!c)
        fprintf(stderr, "client %s: rc %d, %s\n", id, rc, test_last_error());
    mqtt_properties_free(cp);
    mqtt_options_free(o);
    return c;
}

int main(int argc, char **argv) {
    const char *url = test_url(argc, argv);
    mqtt_client *watch = NULL, *a = NULL, *b = NULL, *c = NULL, *d = NULL;
    mqtt_properties *expiry600 = NULL;

    sync_init(&st.s);
    expiry600 = mqtt_properties_new();
    CHECK(expiry600 != NULL, "mqtt_properties_new");
    CHECK_RC(mqtt_properties_set_int(expiry600, MQTT5C_PROP_SESSION_EXPIRY_INTERVAL, 600), MQTT5C_OK);

    watch = test_client_new("dr-watch");
    a = client_new("dr-a", "dr/will/a", 0, 0);
    CHECK(watch && a, "client creation failed");
    CHECK_RC(mqtt_set_message_callback(watch, on_watch, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_connect(watch, url), MQTT5C_OK);
    CHECK_RC(mqtt_subscribe(watch, "dr/#", MQTT5C_QOS1, NULL), 1);

    /* ---- reason codes that are not DISCONNECT reasons, before connecting ---- */
    CHECK_RC(mqtt_disconnect(a, 0x10, NULL), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK(err_mentions("DISCONNECT reason"), "0x10 unconnected: %s", test_last_error());
    CHECK_RC(mqtt_disconnect(a, 0x01, NULL), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK_RC(mqtt_disconnect(a, 0, NULL), MQTT5C_ERR_NOT_CONNECTED);

    CHECK_RC(mqtt_connect(a, url), MQTT5C_OK);

    /* ---- refused while connected: nothing sent, connection intact ---- */
    CHECK_RC(mqtt_disconnect(a, 0x10, NULL), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK(err_mentions("DISCONNECT reason"), "0x10: %s", test_last_error());
    CHECK_RC(mqtt_disconnect(a, 0, expiry600), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK(err_mentions("Session Expiry Interval"), "expiry 600: %s", test_last_error());
    TEST_LOG("refused: %s", test_last_error());
    CHECK_RC(mqtt_disconnect(a, 0x04, expiry600), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK(mqtt_is_connected(a) == 1, "the refused disconnects closed the connection");
    CHECK(publish_ok(mqtt_publish(a, "dr/echo", "e", 1, MQTT5C_QOS1, false, NULL)), "QoS 1 publish after the refusals: %s",
          test_last_error());
    CHECK(sync_wait_count(&st.s, &st.echoes, 1, 10), "the QoS 1 message did not come round");

    /* ---- a clean disconnect then publishes no will ---- */
    CHECK_RC(mqtt_disconnect(a, 0, NULL), MQTT5C_OK);
    CHECK(mqtt_is_connected(a) == 0, "connected after mqtt_disconnect");
    CHECK(publish_ok(mqtt_publish(watch, "dr/marker", "m", 1, MQTT5C_QOS1, false, NULL)), "marker publish");
    CHECK(sync_wait_count(&st.s, &st.markers, 1, 10), "the marker did not come round");
    CHECK(sync_get(&st.s, &st.will_a) == 0, "the broker published the will of a clean disconnect");
    TEST_LOG("refused Session Expiry: connection kept, clean disconnect without will");

    /* ---- the CONNECT had a Session Expiry: DISCONNECT may change it ---- */
    c = client_new("dr-c", NULL, 30, 0);
    d = client_new("dr-d", NULL, 0, 30);
    CHECK(c && d, "client creation failed");
    CHECK_RC(mqtt_connect(c, url), MQTT5C_OK);
    CHECK_RC(mqtt_disconnect(c, 0, expiry600), MQTT5C_OK);
    CHECK_RC(mqtt_connect(d, url), MQTT5C_OK);
    CHECK_RC(mqtt_disconnect(d, 0, expiry600), MQTT5C_OK);

    /* ---- DISCONNECT reasons are sent: 0x04 publishes the will, 0x80 ---- */
    b = client_new("dr-b04", "dr/will/b04", 0, 0);
    CHECK(b != NULL, "client creation failed");
    CHECK_RC(mqtt_connect(b, url), MQTT5C_OK);
    CHECK_RC(mqtt_disconnect(b, 0x04, NULL), MQTT5C_OK);
    CHECK(sync_wait_count(&st.s, &st.will_b04, 1, 10), "no will after DISCONNECT 0x04");
    CHECK_RC(mqtt_connect(b, url), MQTT5C_OK);
    CHECK_RC(mqtt_disconnect(b, 0x80, NULL), MQTT5C_OK);
    CHECK(mqtt_is_connected(b) == 0, "connected after DISCONNECT 0x80");
    CHECK(sync_get(&st.s, &st.will_a) == 0, "the will of the clean disconnect came late");
    TEST_LOG("DISCONNECT 0x00, 0x04 and 0x80 sent");

    CHECK_RC(mqtt_disconnect(watch, 0, NULL), MQTT5C_OK);
    TEST_LOG("test_disconnect_rules: PASS");

cleanup:
    mqtt_client_free(watch);
    mqtt_client_free(a);
    mqtt_client_free(b);
    mqtt_client_free(c);
    mqtt_client_free(d);
    mqtt_properties_free(expiry600);
    sync_destroy(&st.s);
    return test_failed;
}

/*
 * Reliability over MQTT 3.1.1 against mosquitto (issue 12), the publisher
 * going through the driver's proxy:
 *  - a QoS 1 message in flight (mqtt_publish_async) when the path dies
 *    ("blackhole-drop"): the keep-alive ends the connection, the client
 *    reconnects once the path is back ("forward"), resumes its Clean
 *    Session 0 session and resends the message; the subscriber gets it and
 *    the completion reports success;
 *  - the broker restarted without its sessions ("wipe"): both clients
 *    reconnect to no session, the publisher subscribes again by itself
 *    (resubscribe) and receives what the subscriber then publishes.
 */
// needs: proxy
#include "test_common.h"

static struct {
    sync_t s;
    long p_connected, p_disconnected, p_acked, p_got;
    long s_connected, s_got;
    int ack_result;
} st;

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

static void on_s_connection(void *ud, int event, int reason) {
    (void)ud;
    (void)reason;
    if (event == MQTT5C_EVENT_CONNECTED)
        sync_add(&st.s, &st.s_connected, 1);
}

static void on_p_message(void *ud, const mqtt_message *m) {
    (void)ud;
    if (strcmp(mqtt_message_topic(m), "v311/back") == 0)
        sync_add(&st.s, &st.p_got, 1);
}

static void on_s_message(void *ud, const mqtt_message *m) {
    (void)ud;
    size_t len = 0;
    const void *p = mqtt_message_payload(m, &len);
    if (strcmp(mqtt_message_topic(m), "v311/rc") == 0 && len == 8 && memcmp(p, "inflight", 8) == 0)
        sync_add(&st.s, &st.s_got, 1);
}

static void on_ack(void *ud, int result, const mqtt_properties *props) {
    (void)ud;
    (void)props;
    sync_lock(&st.s);
    st.ack_result = result;
    st.p_acked++;
    sync_unlock_notify(&st.s);
}

static mqtt_client *client_311(const char *id, bool clean) {
    mqtt_options *o = mqtt_options_new();
    mqtt_client *c = NULL;
    if (!o)
        return NULL;
    if (mqtt_options_set_client_id(o, id) == MQTT5C_OK &&
        mqtt_options_set_protocol_version(o, MQTT_PROTOCOL_V311) == MQTT5C_OK &&
        mqtt_options_set_clean_start(o, clean) == MQTT5C_OK &&
        mqtt_options_set_keep_alive(o, 2) == MQTT5C_OK &&
        mqtt_options_set_auto_reconnect(o, 50, 500) == MQTT5C_OK &&
        mqtt_options_set_resubscribe(o, true) == MQTT5C_OK &&
        mqtt_options_set_connect_timeout(o, (uint32_t)(2000 * timeout_scale())) == MQTT5C_OK &&
        mqtt_options_set_operation_timeout(o, (uint32_t)(30000 * timeout_scale())) == MQTT5C_OK)
        c = mqtt_client_new(o);
    mqtt_options_free(o);
    return c;
}

int main(int argc, char **argv) {
    const char *url = test_url(argc, argv);
    const char *proxy_port = getenv("MQTT_TEST_PROXY_PORT");
    char proxy_url[64];
    mqtt_client *p = NULL, *s = NULL;
    memset(&st, 0, sizeof st);
    sync_init(&st.s);
    CHECK(proxy_port && *proxy_port, "MQTT_TEST_PROXY_PORT not set");
    snprintf(proxy_url, sizeof proxy_url, "mqtt://127.0.0.1:%s", proxy_port);
    p = client_311("v311-rc-pub", false);
    s = client_311("v311-rc-sub", false);
    CHECK(p && s, "clients");
    mqtt_set_connection_callback(p, on_p_connection, NULL);
    mqtt_set_message_callback(p, on_p_message, NULL);
    mqtt_set_connection_callback(s, on_s_connection, NULL);
    mqtt_set_message_callback(s, on_s_message, NULL);
    CHECK_RC(mqtt_connect(s, url), MQTT5C_OK);
    CHECK_RC(mqtt_subscribe(s, "v311/rc", MQTT5C_QOS1, NULL), 1);
    CHECK_RC(mqtt_connect(p, proxy_url), MQTT5C_OK);
    CHECK_RC(mqtt_client_protocol_version(p), MQTT_PROTOCOL_V311);
    CHECK_RC(mqtt_subscribe(p, "v311/back", MQTT5C_QOS1, NULL), 1);

    /* In flight when the path dies: resent on the resumed session. */
    CHECK(broker_control("blackhole-drop"), "blackhole");
    CHECK_RC(mqtt_publish_async(p, "v311/rc", "inflight", 8, 1, false, NULL, on_ack, NULL),
             MQTT5C_OK);
    CHECK(sync_wait_count(&st.s, &st.p_disconnected, 1, 15 * timeout_scale()),
          "the keep-alive did not end the dead connection");
    CHECK(sync_get(&st.s, &st.p_acked) == 0, "acknowledged through a blackhole");
    CHECK(broker_control("forward"), "forward");
    CHECK(sync_wait_count(&st.s, &st.p_connected, 2, 20 * timeout_scale()), "no reconnect");
    CHECK(mqtt_session_present(p), "the session was not resumed");
    CHECK(sync_wait_count(&st.s, &st.p_acked, 1, 20 * timeout_scale()), "no completion");
    CHECK(st.ack_result >= 0 && st.ack_result < 0x80, "completion %d", st.ack_result);
    CHECK(sync_wait_count(&st.s, &st.s_got, 1, 20 * timeout_scale()),
          "the in-flight message never arrived");
    TEST_LOG("in-flight QoS 1 message resent on the resumed 3.1.1 session");

    /* The broker loses every session: the publisher subscribes again. */
    CHECK(broker_control("wipe"), "wipe");
    CHECK(sync_wait_count(&st.s, &st.p_connected, 3, 30 * timeout_scale()), "p: no reconnect");
    CHECK(sync_wait_count(&st.s, &st.s_connected, 2, 30 * timeout_scale()), "s: no reconnect");
    CHECK(!mqtt_session_present(p), "a wiped broker kept the session");
    CHECK_RC(mqtt_client_protocol_version(p), MQTT_PROTOCOL_V311);
    {
        /* The resubscription is sent right after CONNACK, before this
         * publish can reach the broker from the other client; retried
         * until it arrives, which bounds the race without a sleep. */
        double until = now_s() + 20 * timeout_scale();
        bool got = false;
        while (!got && now_s() < until) {
            CHECK(publish_ok(mqtt_publish(s, "v311/back", "b", 1, 1, false, NULL)), "publish");
            got = sync_wait_count(&st.s, &st.p_got, 1, 1);
        }
        CHECK(got, "the resubscription did not happen");
    }
    TEST_LOG("re-subscribed after a broker restart without sessions over 3.1.1");
    CHECK_RC(mqtt_disconnect(p, 0, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_disconnect(s, 0, NULL), MQTT5C_OK);

cleanup:
    broker_control("forward");
    mqtt_client_free(p);
    mqtt_client_free(s);
    sync_destroy(&st.s);
    return test_failed ? 1 : 0;
}

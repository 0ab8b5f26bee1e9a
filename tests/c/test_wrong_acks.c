/*
 * Acknowledgements of the wrong kind (issue 8, #6), against a scripted
 * broker (tests/scripted/protocol.rs, script "wrong_acks"). MQTT v5 4.3:
 * QoS 1 ends with PUBACK only; QoS 2 gets PUBREC, then ends with PUBCOMP.
 * Each wrong answer is a protocol error: the broker receives DISCONNECT
 * 0x82 (and nothing else first: no PUBREL), and the waiting publish fails
 * with MQTT5C_ERR_PROTOCOL instead of reporting the message delivered:
 *
 * 1. QoS 2 answered by PUBACK; 2. QoS 2 answered by PUBCOMP without
 *    PUBREC; 3. QoS 1 answered by PUBCOMP; 4. an asynchronous QoS 2
 *    publish answered by PUBACK (its completion gets the error);
 * 5. QoS 1 answered by PUBREC: the message is not taken as released, so
 *    the resend when the session resumes is the PUBLISH (with DUP), not a
 *    PUBREL (the script checks);
 * 6. right acknowledgements still complete publishes.
 * Each wrongly acknowledged message stays in the session: the next (new)
 * session gets it published afresh first (issue 9; the script checks).
 */
// fake-broker: wrong_acks
#include "test_common.h"

typedef struct {
    sync_t s;
    long completions;
    int result;
} state_t;

static void on_complete(void *ud, int result, const mqtt_properties *props) {
    state_t *st = ud;
    (void)props;
    sync_lock(&st->s);
    st->result = result;
    st->completions++;
    sync_unlock_notify(&st->s);
}

/* Connects, publishes at `qos` and expects MQTT5C_ERR_PROTOCOL naming `ack`. */
static int wrong_ack(mqtt_client *c, const char *url, const char *topic, int qos, const char *ack) {
    const char *kw[] = {ack, NULL};
    CHECK_RC(mqtt_connect(c, url), 0);
    CHECK_RC(mqtt_publish(c, topic, "m", 1, qos, false, NULL), MQTT5C_ERR_PROTOCOL);
    CHECK(last_error_mentions(kw), "last error: %s", test_last_error());
    CHECK_RC(mqtt_is_connected(c), 0);
    TEST_LOG("%s: QoS %d answered by %s is a protocol error", topic, qos, ack);
cleanup:
    return test_failed;
}

int main(int argc, char **argv) {
    const char *url = test_url(argc, argv);
    state_t st;
    memset(&st, 0, sizeof st);
    sync_init(&st.s);
    mqtt_options *opts = mqtt_options_new();
    mqtt_client *c = NULL;
    CHECK(opts != NULL, "mqtt_options_new");
    CHECK_RC(mqtt_options_set_client_id(opts, "wrong-acks"), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_clean_start(opts, false), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_session_expiry(opts, 600), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_connect_timeout(opts, (uint32_t)(10000 * timeout_scale())), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_operation_timeout(opts, (uint32_t)(10000 * timeout_scale())), MQTT5C_OK);
    c = mqtt_client_new(opts);
    CHECK(c != NULL, "mqtt_client_new: %s", test_last_error());

    CHECK(wrong_ack(c, url, "wrong/qos2-puback", MQTT5C_QOS2, "PUBACK") == 0, "1");
    CHECK(wrong_ack(c, url, "wrong/qos2-pubcomp", MQTT5C_QOS2, "PUBCOMP") == 0, "2");
    CHECK(wrong_ack(c, url, "wrong/qos1-pubcomp", MQTT5C_QOS1, "PUBCOMP") == 0, "3");

    /* 4: the completion of an asynchronous publish gets the error. */
    CHECK_RC(mqtt_connect(c, url), 0);
    st.result = -1000;
    CHECK_RC(mqtt_publish_async(c, "wrong/async-puback", "m", 1, MQTT5C_QOS2, false, NULL, on_complete, &st),
             MQTT5C_OK);
    CHECK(sync_wait_count(&st.s, &st.completions, 1, 10), "no completion");
    sync_lock(&st.s);
    int result = st.result;
    sync_unlock(&st.s);
    CHECK(result == MQTT5C_ERR_PROTOCOL, "the completion got %d (%s)", result, test_strerror(result));
    TEST_LOG("4: an asynchronous QoS 2 publish answered by PUBACK fails");

    /* 5: QoS 1 answered by PUBREC; the resumed session resends it. */
    CHECK(wrong_ack(c, url, "wrong/qos1-pubrec", MQTT5C_QOS1, "PUBREC") == 0, "5");
    CHECK_RC(mqtt_connect(c, url), 0);

    /* 6: after the resend, the right flows succeed. */
    CHECK_RC(mqtt_publish(c, "wrong/qos2-right", "m", 1, MQTT5C_QOS2, false, NULL), 0);
    CHECK_RC(mqtt_publish(c, "wrong/qos1-right", "m", 1, MQTT5C_QOS1, false, NULL), 0);
    CHECK_RC(mqtt_disconnect(c, 0, NULL), MQTT5C_OK);
    TEST_LOG("5, 6: resent as PUBLISH; right acknowledgements complete");

cleanup:
    mqtt_client_free(c);
    mqtt_options_free(opts);
    sync_destroy(&st.s);
    return test_failed;
}

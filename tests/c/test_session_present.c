/*
 * Session Present 1 in answer to Clean Start 1 (issue 8, #6), against a
 * scripted broker (tests/scripted/protocol.rs, script "session_present"):
 *
 * 1. A QoS 2 message (packet id 7) is delivered and PUBRECed; the
 *    connection ends before its PUBREL.
 * 2. The broker answers the next CONNECT (Clean Start 1) with Session
 *    Present 1: the client closes the connection (MQTT-3.2.2-4) with
 *    DISCONNECT 0x82 and mqtt_connect returns MQTT5C_ERR_PROTOCOL with a
 *    text naming Session Present.
 * 3. A proper new session: a new message on packet id 7 is delivered
 *    (the old id was not kept as awaiting PUBREL).
 */
// fake-broker: session_present
#include "test_common.h"

typedef struct {
    sync_t s;
    long old_messages, new_messages, done, disconnects;
} state_t;

static void on_message(void *ud, const mqtt_message *m) {
    state_t *st = ud;
    const char *topic = mqtt_message_topic(m);
    if (topic && strcmp(topic, "sp/old") == 0)
        sync_add(&st->s, &st->old_messages, 1);
    else if (topic && strcmp(topic, "sp/new") == 0)
        sync_add(&st->s, &st->new_messages, 1);
    else if (topic && strcmp(topic, "sp/done") == 0)
        sync_add(&st->s, &st->done, 1);
}

static void on_connection(void *ud, int event, int reason) {
    state_t *st = ud;
    (void)reason;
    if (event == MQTT5C_EVENT_DISCONNECTED)
        sync_add(&st->s, &st->disconnects, 1);
}

int main(int argc, char **argv) {
    const char *url = test_url(argc, argv);
    state_t st;
    memset(&st, 0, sizeof st);
    sync_init(&st.s);
    mqtt_options *opts = mqtt_options_new();
    mqtt_client *c = NULL;
    CHECK(opts != NULL, "mqtt_options_new");
    CHECK_RC(mqtt_options_set_client_id(opts, "session-present"), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_clean_start(opts, true), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_connect_timeout(opts, (uint32_t)(10000 * timeout_scale())), MQTT5C_OK);
    c = mqtt_client_new(opts);
    CHECK(c != NULL, "mqtt_client_new: %s", test_last_error());
    CHECK_RC(mqtt_set_message_callback(c, on_message, &st), MQTT5C_OK);
    CHECK_RC(mqtt_set_connection_callback(c, on_connection, &st), MQTT5C_OK);

    /* 1: a QoS 2 message awaiting PUBREL when the connection ends. */
    CHECK_RC(mqtt_connect(c, url), 0);
    CHECK(sync_wait_count(&st.s, &st.old_messages, 1, 10), "the first message was not delivered");
    CHECK(sync_wait_count(&st.s, &st.disconnects, 1, 10), "the connection did not end");
    TEST_LOG("1: a QoS 2 message delivered, then the connection lost before PUBREL");

    /* 2: Session Present 1 in answer to Clean Start 1. */
    CHECK_RC(mqtt_connect(c, url), MQTT5C_ERR_PROTOCOL);
    {
        const char *kw[] = {"Session Present", NULL};
        CHECK(last_error_mentions(kw), "last error: %s", test_last_error());
    }
    CHECK_RC(mqtt_is_connected(c), 0);
    TEST_LOG("2: Session Present 1 after Clean Start 1 refused: %s", test_last_error());

    /* 3: a new session; packet id 7 carries a new message. */
    CHECK_RC(mqtt_connect(c, url), 0);
    CHECK(sync_wait_count(&st.s, &st.new_messages, 1, 10), "the new message on id 7 was not delivered");
    /* The broker's word that PUBREC, PUBREL and PUBCOMP went through. */
    CHECK(sync_wait_count(&st.s, &st.done, 1, 10), "the QoS 2 flow did not complete");
    CHECK_RC(mqtt_disconnect(c, 0, NULL), MQTT5C_OK);
    CHECK(sync_get(&st.s, &st.old_messages) == 1, "the old message was delivered again");
    TEST_LOG("3: the new session delivers a new message on the old id");

cleanup:
    mqtt_client_free(c);
    mqtt_options_free(opts);
    sync_destroy(&st.s);
    return test_failed;
}

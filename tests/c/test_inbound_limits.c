/*
 * What the broker sends us, against our advertised limits, with a scripted
 * broker (tests/scripted, script "inbound"; mosquitto respects the limits,
 * so it cannot show the violations): inbound topic aliases resolved, an
 * alias above our Topic Alias Maximum (DISCONNECT 0x94), an alias never
 * set (0x82), a packet above our Maximum Packet Size (0x95), and a broker
 * exceeding our Receive Maximum: counted in the default mode, DISCONNECT
 * 0x93 in strict mode.
 */
// fake-broker: inbound
#include "test_common.h"

#define MAX_MSGS 16

typedef struct {
    sync_t s;
    long msgs;
    char topics[MAX_MSGS][32];
    char payloads[MAX_MSGS][8];
    long disconnects;
    int reason;
} state_t;

static void on_message(void *ud, const mqtt_message *m) {
    state_t *st = ud;
    size_t len;
    const void *p = mqtt_message_payload(m, &len);
    sync_lock(&st->s);
    if (st->msgs < MAX_MSGS) {
        snprintf(st->topics[st->msgs], sizeof st->topics[0], "%s", mqtt_message_topic(m));
        snprintf(st->payloads[st->msgs], sizeof st->payloads[0], "%.*s", (int)(len < 7 ? len : 7),
                 (const char *)p);
    }
    st->msgs++;
    sync_unlock_notify(&st->s);
}

static void on_connection(void *ud, int event, int reason) {
    state_t *st = ud;
    if (event != MQTT5C_EVENT_DISCONNECTED)
        return;
    sync_lock(&st->s);
    st->disconnects++;
    st->reason = reason;
    sync_unlock_notify(&st->s);
}

static mqtt_client *limited_client(const char *id, bool strict, state_t *st) {
    mqtt_options *o = mqtt_options_new();
    mqtt_client *c = NULL;
    if (!o)
        return NULL;
    if (mqtt_options_set_client_id(o, id) == MQTT5C_OK &&
        mqtt_options_set_connect_timeout(o, (uint32_t)(10000 * timeout_scale())) == MQTT5C_OK &&
        mqtt_options_set_topic_alias_maximum(o, 2) == MQTT5C_OK &&
        mqtt_options_set_maximum_packet_size(o, 200) == MQTT5C_OK &&
        mqtt_options_set_receive_maximum(o, 2) == MQTT5C_OK &&
        mqtt_options_set_receive_maximum_strict(o, strict) == MQTT5C_OK)
        c = mqtt_client_new(o);
    mqtt_options_free(o);
    if (c) {
        mqtt_set_message_callback(c, on_message, st);
        mqtt_set_connection_callback(c, on_connection, st);
    }
    return c;
}

/* Waits for the n-th disconnect and returns its reason (or -1000). */
static int wait_disconnect(state_t *st, long n) {
    if (!sync_wait_count(&st->s, &st->disconnects, n, 10))
        return -1000;
    sync_lock(&st->s);
    int r = st->reason;
    sync_unlock(&st->s);
    return r;
}

int main(int argc, char **argv) {
    const char *url = test_url(argc, argv);
    static state_t st, st2;
    uint64_t v = 0;
    sync_init(&st.s);
    sync_init(&st2.s);
    mqtt_client *c = limited_client("inbound", false, &st);
    mqtt_client *strict = limited_client("inbound-strict", true, &st2);
    CHECK(c && strict, "clients: %s", test_last_error());

    CHECK_RC(mqtt_options_set_receive_maximum(NULL, 5), MQTT5C_ERR_INVALID_ARGUMENT);
    {
        mqtt_options *o = mqtt_options_new();
        int rc0 = mqtt_options_set_receive_maximum(o, 0);
        int rc1 = mqtt_options_set_maximum_packet_size(o, 10);
        mqtt_options_free(o);
        CHECK(rc0 == MQTT5C_ERR_INVALID_ARGUMENT, "receive maximum 0 refused");
        CHECK(rc1 == MQTT5C_ERR_INVALID_ARGUMENT, "maximum packet size 10 refused");
    }
    CHECK_RC(mqtt_client_get_stat(c, 99, &v), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK_RC(mqtt_client_get_stat(c, MQTT5C_STAT_RECEIVE_MAXIMUM_EXCEEDED, NULL),
             MQTT5C_ERR_INVALID_ARGUMENT);

    /* 1: aliases resolved, then one out of range. */
    CHECK_RC(mqtt_connect(c, url), 0);
    CHECK_RC(wait_disconnect(&st, 1), 0x94);
    {
        static const char *topics[] = {"in/a", "in/a", "in/b", "in/b", "in/c", "in/c"};
        sync_lock(&st.s);
        long n = st.msgs;
        sync_unlock(&st.s);
        CHECK(n == 6, "6 messages before the bad alias, got %ld", n);
        for (int i = 0; i < 6; i++) {
            char want[4];
            snprintf(want, sizeof want, "%d", i + 1);
            CHECK(strcmp(st.topics[i], topics[i]) == 0, "message %d topic '%s', want '%s'", i,
                  st.topics[i], topics[i]);
            CHECK(strcmp(st.payloads[i], want) == 0, "message %d payload '%s'", i, st.payloads[i]);
        }
    }
    TEST_LOG("aliases resolved; alias 3 > maximum 2 gave DISCONNECT 0x94");

    /* 2: an alias this connection never set. */
    CHECK_RC(mqtt_connect(c, url), 0);
    CHECK_RC(wait_disconnect(&st, 2), 0x82);
    CHECK(sync_get(&st.s, &st.msgs) == 6, "nothing delivered for the unknown alias");
    TEST_LOG("unknown alias gave DISCONNECT 0x82");

    /* 3: a packet above our Maximum Packet Size. */
    CHECK_RC(mqtt_connect(c, url), 0);
    CHECK_RC(wait_disconnect(&st, 3), 0x95);
    CHECK(sync_get(&st.s, &st.msgs) == 6, "the big packet was not delivered");
    TEST_LOG("packet above 200 bytes gave DISCONNECT 0x95");

    /* 4: lenient: three QoS 2 messages in flight against Receive Maximum 2. */
    CHECK_RC(mqtt_connect(c, url), 0);
    /* Three QoS 2 messages, then (after PUBREL/PUBCOMP) a marker. */
    CHECK(sync_wait_count(&st.s, &st.msgs, 10, 10), "three QoS 2 messages and the marker");
    CHECK(strcmp(st.topics[9], "in/done") == 0, "marker last, got %s", st.topics[9]);
    CHECK_RC(mqtt_client_get_stat(c, MQTT5C_STAT_RECEIVE_MAXIMUM_EXCEEDED, &v), MQTT5C_OK);
    CHECK(v == 1, "one message beyond the Receive Maximum counted, got %llu",
          (unsigned long long)v);
    CHECK_RC(mqtt_client_get_stat(c, MQTT5C_STAT_INBOUND_INFLIGHT_PEAK, &v), MQTT5C_OK);
    CHECK(v == 3, "peak of 3 in flight, got %llu", (unsigned long long)v);
    CHECK_RC(mqtt_is_connected(c), 1);
    CHECK_RC(mqtt_disconnect(c, 0, NULL), MQTT5C_OK);
    TEST_LOG("lenient: exceeding the Receive Maximum counted, connection kept");

    /* 5: strict: the third message in flight ends the connection. */
    CHECK_RC(mqtt_connect(strict, url), 0);
    CHECK_RC(wait_disconnect(&st2, 1), 0x93);
    CHECK(sync_get(&st2.s, &st2.msgs) == 2, "the first two were delivered");
    CHECK_RC(mqtt_client_get_stat(strict, MQTT5C_STAT_RECEIVE_MAXIMUM_EXCEEDED, &v), MQTT5C_OK);
    CHECK(v == 1, "counted in strict mode too, got %llu", (unsigned long long)v);
    TEST_LOG("strict: DISCONNECT 0x93");

cleanup:
    mqtt_client_free(c);
    mqtt_client_free(strict);
    sync_destroy(&st.s);
    sync_destroy(&st2.s);
    return test_failed;
}

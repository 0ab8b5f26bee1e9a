/*
 * What the broker said in CONNACK is obeyed, and outgoing topic aliases,
 * against mosquitto configured with Maximum QoS 1, no retain and a Topic
 * Alias Maximum of 2: a QoS 2 or retained publish fails before anything is
 * sent; publishes cycling over more topics than aliases (so aliases are
 * rebound, least recently used first) arrive at a subscriber with the
 * right topics, in order; with aliases turned off as well.
 */
// broker-conf: max_qos 1
// broker-conf: retain_available false
// broker-conf: max_topic_alias 2
#include "test_common.h"

#define N 40

typedef struct {
    sync_t s;
    long msgs;
    char topics[N * 2][16];
    char payloads[N * 2][8];
} state_t;

static void on_message(void *ud, const mqtt_message *m) {
    state_t *st = ud;
    size_t len;
    const void *p = mqtt_message_payload(m, &len);
    sync_lock(&st->s);
    if (st->msgs < N * 2) {
        snprintf(st->topics[st->msgs], sizeof st->topics[0], "%s", mqtt_message_topic(m));
        snprintf(st->payloads[st->msgs], sizeof st->payloads[0], "%.*s", (int)(len < 7 ? len : 7),
                 (const char *)p);
    }
    st->msgs++;
    sync_unlock_notify(&st->s);
}

/* Topic of the i-th publish: a pattern over 3 topics with re-use, so with
 * 2 aliases some are known and some rebound. */
static const char *topic_of(int i) {
    static const char *t[] = {"flow/a", "flow/b", "flow/a", "flow/c", "flow/a", "flow/b", "flow/c",
                              "flow/c"};
    return t[i % 8];
}

static int publish_cycle(mqtt_client *pub, state_t *st, long base) {
    for (int i = 0; i < N; i++) {
        char payload[8];
        snprintf(payload, sizeof payload, "%d", i);
        int qos = i % 2 ? MQTT5C_QOS1 : MQTT5C_QOS0;
        int rc = mqtt_publish(pub, topic_of(i), payload, strlen(payload), qos, false, NULL);
        if (!publish_ok(rc)) {
            fprintf(stderr, "publish %d: %d %s\n", i, rc, test_last_error());
            return 1;
        }
    }
    if (!sync_wait_count(&st->s, &st->msgs, base + N, 10)) {
        fprintf(stderr, "only %ld of %d messages arrived\n", sync_get(&st->s, &st->msgs) - base, N);
        return 1;
    }
    sync_lock(&st->s);
    for (int i = 0; i < N; i++) {
        char want[8];
        snprintf(want, sizeof want, "%d", i);
        if (strcmp(st->topics[base + i], topic_of(i)) != 0 || strcmp(st->payloads[base + i], want)) {
            fprintf(stderr, "message %d: '%s' '%s', want '%s' '%s'\n", i, st->topics[base + i],
                    st->payloads[base + i], topic_of(i), want);
            sync_unlock(&st->s);
            return 1;
        }
    }
    sync_unlock(&st->s);
    return 0;
}

int main(int argc, char **argv) {
    const char *url = test_url(argc, argv);
    static state_t st;
    sync_init(&st.s);
    mqtt_client *sub = test_client_new("flow-sub");
    mqtt_client *pub = test_client_new("flow-pub");
    mqtt_client *plain = NULL;
    mqtt_options *o = mqtt_options_new();
    CHECK(sub && pub && o, "clients");
    CHECK_RC(mqtt_options_set_client_id(o, "flow-pub-noalias"), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_outgoing_topic_aliases(o, 0), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_outgoing_topic_aliases(NULL, 0), MQTT5C_ERR_INVALID_ARGUMENT);
    plain = mqtt_client_new(o);
    CHECK(plain != NULL, "client without aliases");

    CHECK_RC(mqtt_set_message_callback(sub, on_message, &st), MQTT5C_OK);
    CHECK_RC(mqtt_connect(sub, url), 0);
    CHECK_RC(mqtt_subscribe(sub, "flow/#", MQTT5C_QOS1, NULL), 1);
    CHECK_RC(mqtt_connect(pub, url), 0);
    CHECK_RC(mqtt_connect(plain, url), 0);

    /* Maximum QoS 1 and Retain Available 0: refused, nothing sent. */
    CHECK_RC(mqtt_publish(pub, "flow/x", "q2", 2, MQTT5C_QOS2, false, NULL),
             MQTT5C_ERR_INVALID_ARGUMENT);
    {
        const char *kw[] = {"maximum qos", NULL};
        CHECK(last_error_mentions(kw), "last error: %s", test_last_error());
    }
    CHECK_RC(mqtt_publish(pub, "flow/x", "r", 1, MQTT5C_QOS0, true, NULL),
             MQTT5C_ERR_INVALID_ARGUMENT);
    {
        const char *kw[] = {"retain", NULL};
        CHECK(last_error_mentions(kw), "last error: %s", test_last_error());
    }
    CHECK_RC(mqtt_is_connected(pub), 1);
    TEST_LOG("QoS 2 and retain refused before sending");

    /* Aliases: mosquitto resolves them, so the subscriber sees topics. */
    CHECK(publish_cycle(pub, &st, 0) == 0, "with aliases");
    CHECK(sync_get(&st.s, &st.msgs) == N, "nothing else arrived (the refused ones were not sent)");
    TEST_LOG("%d publishes over 3 topics with 2 aliases arrived with their topics", N);
    CHECK(publish_cycle(plain, &st, N) == 0, "without aliases");
    TEST_LOG("and without aliases");
    CHECK_RC(mqtt_disconnect(pub, 0, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_disconnect(plain, 0, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_disconnect(sub, 0, NULL), MQTT5C_OK);

cleanup:
    mqtt_client_free(sub);
    mqtt_client_free(pub);
    mqtt_client_free(plain);
    mqtt_options_free(o);
    sync_destroy(&st.s);
    return test_failed;
}

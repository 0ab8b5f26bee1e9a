/*
 * Per-subscription callbacks (mqtt_subscribe_cb): messages of a routed
 * subscription go to its callback with its user_data, the rest to the
 * client's message callback, all in the order the broker sent them; a
 * caller's own subscription identifier works too; routing set up from
 * inside a callback works; unsubscribing or a plain subscribe of the same
 * filter sends the messages back to the message callback; a second
 * mqtt_subscribe_cb of a filter replaces its callback.
 */
#include "test_common.h"

#define MAX_LOG 256

static mqtt_client *client;

static struct {
    sync_t s;
    char who[MAX_LOG];
    char topic[MAX_LOG][32];
    long n;
    int sub_in_cb_rc;
} st;

static void record(char who, const mqtt_message *m) {
    sync_lock(&st.s);
    if (st.n < MAX_LOG) {
        st.who[st.n] = who;
        snprintf(st.topic[st.n], sizeof st.topic[0], "%s", mqtt_message_topic(m));
    }
    st.n++;
    sync_unlock_notify(&st.s);
}

static void on_default(void *ud, const mqtt_message *m) {
    (void)ud;
    record('D', m);
}

static void on_routed(void *ud, const mqtt_message *m) {
    char who = *(const char *)ud;
    if (who == 'A' && strcmp(mqtt_message_topic(m), "cb/a/sub") == 0) {
        static const char tag_c = 'C';
        /* A blocking call from inside a routed callback. */
        int rc = mqtt_subscribe_cb(client, "cb/c/#", MQTT5C_QOS1, NULL, on_routed, (void *)&tag_c);
        sync_lock(&st.s);
        st.sub_in_cb_rc = rc;
        sync_unlock(&st.s);
    }
    record(who, m);
}

/* Publishes `topic` and expects it to reach `who` as message number n+1. */
typedef struct {
    const char *topic;
    char who;
} step;

static bool run_steps(mqtt_client *pub, const step *steps, size_t count) {
    long base = sync_get(&st.s, &st.n);
    for (size_t i = 0; i < count; i++)
        if (!publish_ok(mqtt_publish(pub, steps[i].topic, "x", 1, MQTT5C_QOS1, false, NULL))) {
            fprintf(stderr, "publish %s: %s\n", steps[i].topic, test_last_error());
            return false;
        }
    if (!sync_wait_count(&st.s, &st.n, base + (long)count, 10)) {
        fprintf(stderr, "only %ld of %zu messages arrived\n", sync_get(&st.s, &st.n) - base, count);
        return false;
    }
    bool ok = true;
    sync_lock(&st.s);
    for (size_t i = 0; i < count; i++) {
        long j = base + (long)i;
        if (st.who[j] != steps[i].who || strcmp(st.topic[j], steps[i].topic) != 0) {
            fprintf(stderr, "message #%zu: got %c %s, want %c %s\n", i, st.who[j], st.topic[j], steps[i].who,
                    steps[i].topic);
            ok = false;
        }
    }
    sync_unlock(&st.s);
    return ok;
}

int main(int argc, char **argv) {
    const char *url = test_url(argc, argv);
    static const char tag_a = 'A', tag_b = 'B', tag_e = 'E';
    mqtt_client *pub = NULL;
    mqtt_properties *props = NULL;
    sync_init(&st.s);
    client = test_client_new("mqtt5c-subcb");
    pub = test_client_new("mqtt5c-subcb-pub");
    CHECK(client && pub, "client_new");
    CHECK_RC(mqtt_set_message_callback(client, on_default, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_connect(client, url), MQTT5C_OK);
    CHECK_RC(mqtt_connect(pub, url), MQTT5C_OK);

    CHECK_RC(mqtt_subscribe_cb(client, "cb/a/#", MQTT5C_QOS1, NULL, NULL, NULL), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK_RC(mqtt_subscribe_cb(client, "cb/a/#", MQTT5C_QOS1, NULL, on_routed, (void *)&tag_a), 1);
    props = mqtt_properties_new();
    CHECK_RC(mqtt_properties_set_int(props, MQTT5C_PROP_SUBSCRIPTION_IDENTIFIER, 42), MQTT5C_OK);
    CHECK_RC(mqtt_subscribe_cb(client, "cb/b/+", MQTT5C_QOS1, props, on_routed, (void *)&tag_b), 1);
    CHECK_RC(mqtt_subscribe(client, "other/#", MQTT5C_QOS1, NULL), 1);

    {
        /* Interleaved: each goes to its callback, in publish order. */
        const step steps[] = {
            {"cb/a/1", 'A'},  {"other/1", 'D'}, {"cb/b/x", 'B'}, {"cb/a/2/deep", 'A'}, {"other/2", 'D'},
            {"cb/b/y", 'B'},  {"cb/b/y", 'B'},  {"other/3", 'D'}, {"cb/a/3", 'A'},      {"cb/a/sub", 'A'},
        };
        CHECK(run_steps(pub, steps, sizeof steps / sizeof steps[0]), "routing or order wrong");
        /* cb/c/# was subscribed by the callback of cb/a/sub. */
        const step steps2[] = {{"cb/c/1", 'C'}, {"other/4", 'D'}, {"cb/c/2/x", 'C'}, {"cb/a/4", 'A'}};
        CHECK(run_steps(pub, steps2, sizeof steps2 / sizeof steps2[0]), "routing or order wrong");
        CHECK(st.sub_in_cb_rc == 1, "mqtt_subscribe_cb from a callback returned %d", st.sub_in_cb_rc);
        TEST_LOG("routed by subscription (own and allocated identifiers), in order");
    }
    {
        /* The message carries the caller's identifier 42. */
        CHECK_RC(mqtt_unsubscribe(client, "cb/a/#", NULL), 0);
        CHECK_RC(mqtt_subscribe(client, "cb/c/#", MQTT5C_QOS1, NULL), 1);     /* plain: back to default */
        CHECK_RC(mqtt_subscribe_cb(client, "cb/b/+", MQTT5C_QOS1, NULL, on_routed, (void *)&tag_e), 1); /* replace */
        CHECK_RC(mqtt_subscribe(client, "cb/a/#", MQTT5C_QOS1, NULL), 1);
        const step steps[] = {{"cb/a/5", 'D'}, {"cb/c/3", 'D'}, {"cb/b/z", 'E'}, {"other/5", 'D'}};
        CHECK(run_steps(pub, steps, sizeof steps / sizeof steps[0]), "after unsubscribe/replace");
        TEST_LOG("unsubscribe, plain resubscribe and replaced callback ok");
    }
    CHECK_RC(mqtt_disconnect(client, 0, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_disconnect(pub, 0, NULL), MQTT5C_OK);
    TEST_LOG("test_subscribe_cb passed");
cleanup:
    mqtt_client_free(client);
    mqtt_client_free(pub);
    mqtt_properties_free(props);
    sync_destroy(&st.s);
    return test_failed;
}

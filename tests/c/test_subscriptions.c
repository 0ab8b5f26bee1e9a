/*
 * Subscriptions against mosquitto: several filters in one SUBSCRIBE /
 * UNSUBSCRIBE with per-filter results; No Local; Retain As Published;
 * Retain Handling 0, 1 and 2; subscription identifiers delivered with each
 * message (all of them when overlapping subscriptions match).
 *
 * "Nothing arrived" is shown without sleeping: after the action, the same
 * client publishes a marker message to a topic it subscribed separately;
 * the broker handles one client's packets in order, so anything the action
 * caused is delivered before the marker.
 */
#include "test_common.h"

#define MAX_RECS 128

typedef struct {
    char topic[64];
    bool retain;
    size_t n_ids;
    uint32_t ids[4];
} rec;

static struct {
    sync_t s;
    rec recs[MAX_RECS];
    long count;
} st;

static void on_message(void *ud, const mqtt_message *m) {
    (void)ud;
    const mqtt_properties *p = mqtt_message_properties(m);
    sync_lock(&st.s);
    if (st.count < MAX_RECS) {
        rec *r = &st.recs[st.count];
        snprintf(r->topic, sizeof r->topic, "%s", mqtt_message_topic(m));
        r->retain = mqtt_message_retain(m);
        r->n_ids = mqtt_properties_count(p, MQTT5C_PROP_SUBSCRIPTION_IDENTIFIER);
        for (size_t i = 0; i < r->n_ids && i < 4; i++)
            mqtt_properties_get_int_at(p, MQTT5C_PROP_SUBSCRIPTION_IDENTIFIER, i, &r->ids[i]);
    }
    st.count++;
    sync_unlock_notify(&st.s);
}

static long count_topic(const char *topic) {
    long n = 0;
    sync_lock(&st.s);
    for (long i = 0; i < st.count && i < MAX_RECS; i++)
        if (strcmp(st.recs[i].topic, topic) == 0)
            n++;
    sync_unlock(&st.s);
    return n;
}

/* The last record with this topic (copied), false if none. */
static bool last_of(const char *topic, rec *out) {
    bool found = false;
    sync_lock(&st.s);
    for (long i = 0; i < st.count && i < MAX_RECS; i++)
        if (strcmp(st.recs[i].topic, topic) == 0) {
            *out = st.recs[i];
            found = true;
        }
    sync_unlock(&st.s);
    return found;
}

/* Waits until `topic` was received `n` times. */
static bool wait_topic(const char *topic, long n) {
    struct timespec deadline = deadline_after(10);
    for (;;) {
        if (count_topic(topic) >= n)
            return true;
        sync_lock(&st.s);
        bool alive = sync_wait_locked(&st.s, &deadline);
        sync_unlock(&st.s);
        if (!alive)
            return count_topic(topic) >= n;
    }
}

static int marker_n;

/* Publishes a marker from `c` and waits for it. */
static bool marker(mqtt_client *c) {
    char t[32];
    snprintf(t, sizeof t, "mk/%d", ++marker_n);
    if (!publish_ok(mqtt_publish(c, t, "m", 1, MQTT5C_QOS1, false, NULL)))
        return false;
    return wait_topic(t, 1);
}

static bool has_id(const rec *r, uint32_t id) {
    for (size_t i = 0; i < r->n_ids && i < 4; i++)
        if (r->ids[i] == id)
            return true;
    return false;
}

int main(int argc, char **argv) {
    const char *url = test_url(argc, argv);
    mqtt_client *sub = NULL, *pub = NULL;
    mqtt_properties *props = NULL;
    rec r;

    sync_init(&st.s);
    sub = test_client_new("mqtt5c-subs");
    pub = test_client_new("mqtt5c-subs-pub");
    CHECK(sub && pub, "client_new");
    CHECK_RC(mqtt_set_message_callback(sub, on_message, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_connect(sub, url), MQTT5C_OK);
    CHECK_RC(mqtt_connect(pub, url), MQTT5C_OK);
    CHECK_RC(mqtt_subscribe(sub, "mk/#", MQTT5C_QOS1, NULL), 1);

    /* ---- several filters in one SUBSCRIBE / UNSUBSCRIBE ---- */
    {
        const char *filters[] = {"sm/a", "sm/b/#", "sm/+/c"};
        const int options[] = {MQTT5C_QOS0, MQTT5C_QOS1, MQTT5C_QOS2};
        const char *bad[] = {"sm/ok", "sm/#/x"};
        const char *gone[] = {"sm/a", "never/subscribed"};
        int results[3] = {-99, -99, -99};
        CHECK_RC(mqtt_subscribe_many(sub, bad, options, 2, NULL, results), MQTT5C_ERR_INVALID_ARGUMENT);
        CHECK(results[0] == -99 && results[1] == -99, "results written on failure");
        CHECK_RC(mqtt_subscribe_many(sub, filters, options, 0, NULL, results), MQTT5C_ERR_INVALID_ARGUMENT);
        CHECK_RC(mqtt_subscribe_many(sub, filters, options, 3, NULL, results), MQTT5C_OK);
        CHECK(results[0] == 0 && results[1] == 1 && results[2] == 2, "granted %d %d %d, want 0 1 2", results[0],
              results[1], results[2]);
        CHECK(publish_ok(mqtt_publish(pub, "sm/b/x", "1", 1, MQTT5C_QOS1, false, NULL)), "publish");
        CHECK(publish_ok(mqtt_publish(pub, "sm/z/c", "1", 1, MQTT5C_QOS1, false, NULL)), "publish");
        CHECK(wait_topic("sm/b/x", 1) && wait_topic("sm/z/c", 1), "messages of subscribe_many filters");
        CHECK_RC(mqtt_unsubscribe_many(sub, filters, 3, NULL, results), MQTT5C_OK);
        CHECK(results[0] == 0 && results[1] == 0 && results[2] == 0, "unsubscribed %d %d %d", results[0],
              results[1], results[2]);
        CHECK_RC(mqtt_unsubscribe_many(sub, gone, 2, NULL, results), MQTT5C_OK);
        CHECK(results[0] == 0x11 && results[1] == 0x11, "want 0x11 0x11, got 0x%X 0x%X", results[0], results[1]);
        CHECK(publish_ok(mqtt_publish(pub, "sm/b/x", "2", 1, MQTT5C_QOS1, false, NULL)), "publish");
        CHECK(marker(sub), "marker");
        CHECK(count_topic("sm/b/x") == 1, "message after unsubscribe_many");
        TEST_LOG("subscribe_many / unsubscribe_many ok");
    }

    /* ---- No Local ---- */
    CHECK_RC(mqtt_subscribe(sub, "nl/t", MQTT5C_QOS1 | MQTT5C_SUB_NO_LOCAL, NULL), 1);
    CHECK_RC(mqtt_subscribe(sub, "nl/control", MQTT5C_QOS1, NULL), 1);
    CHECK(publish_ok(mqtt_publish(sub, "nl/t", "own", 3, MQTT5C_QOS1, false, NULL)), "publish own");
    CHECK(publish_ok(mqtt_publish(sub, "nl/control", "own", 3, MQTT5C_QOS1, false, NULL)), "publish own");
    CHECK(marker(sub), "marker");
    CHECK(count_topic("nl/t") == 0, "No Local: own message delivered");
    CHECK(count_topic("nl/control") == 1, "without No Local own message not delivered");
    CHECK(publish_ok(mqtt_publish(pub, "nl/t", "other", 5, MQTT5C_QOS1, false, NULL)), "publish other");
    CHECK(wait_topic("nl/t", 1), "No Local: message of another client not delivered");
    TEST_LOG("No Local ok");

    /* ---- Retain As Published ---- */
    CHECK_RC(mqtt_subscribe(sub, "rap/a", MQTT5C_QOS1 | MQTT5C_SUB_RETAIN_AS_PUBLISHED, NULL), 1);
    CHECK_RC(mqtt_subscribe(sub, "rap/b", MQTT5C_QOS1, NULL), 1);
    CHECK(publish_ok(mqtt_publish(pub, "rap/a", "r", 1, MQTT5C_QOS1, true, NULL)), "publish");
    CHECK(publish_ok(mqtt_publish(pub, "rap/b", "r", 1, MQTT5C_QOS1, true, NULL)), "publish");
    CHECK(wait_topic("rap/a", 1) && wait_topic("rap/b", 1), "retained live messages");
    CHECK(last_of("rap/a", &r) && r.retain, "Retain As Published: retain flag cleared");
    CHECK(last_of("rap/b", &r) && !r.retain, "without Retain As Published: retain flag kept");
    TEST_LOG("Retain As Published ok");

    /* ---- Retain Handling ---- */
    CHECK(publish_ok(mqtt_publish(pub, "rh/t", "R", 1, MQTT5C_QOS1, true, NULL)), "publish retained");
    /* 0: sent at every subscribe. */
    CHECK_RC(mqtt_subscribe(sub, "rh/t", MQTT5C_QOS1, NULL), 1);
    CHECK(wait_topic("rh/t", 1), "RH 0: retained message not sent");
    CHECK(last_of("rh/t", &r) && r.retain, "retained message without retain flag");
    CHECK_RC(mqtt_subscribe(sub, "rh/t", MQTT5C_QOS1, NULL), 1);
    CHECK(wait_topic("rh/t", 2), "RH 0: retained message not sent again on resubscribe");
    /* 1: only for a new subscription. */
    CHECK_RC(mqtt_subscribe(sub, "rh/+", MQTT5C_QOS1 | MQTT5C_SUB_RETAIN_HANDLING_NEW_ONLY, NULL), 1);
    CHECK(wait_topic("rh/t", 3), "RH 1: retained message not sent for a new subscription");
    CHECK_RC(mqtt_subscribe(sub, "rh/+", MQTT5C_QOS1 | MQTT5C_SUB_RETAIN_HANDLING_NEW_ONLY, NULL), 1);
    CHECK(marker(sub), "marker");
    CHECK(count_topic("rh/t") == 3, "RH 1: retained message sent for an existing subscription");
    /* 2: never. */
    CHECK_RC(mqtt_subscribe(sub, "rh/#", MQTT5C_QOS1 | MQTT5C_SUB_RETAIN_HANDLING_NONE, NULL), 1);
    CHECK(marker(sub), "marker");
    CHECK(count_topic("rh/t") == 3, "RH 2: retained message sent");
    TEST_LOG("Retain Handling 0/1/2 ok");

    /* ---- subscription identifiers ---- */
    props = mqtt_properties_new();
    CHECK_RC(mqtt_properties_set_int(props, MQTT5C_PROP_SUBSCRIPTION_IDENTIFIER, 5), MQTT5C_OK);
    CHECK_RC(mqtt_subscribe(sub, "sid/#", MQTT5C_QOS1, props), 1);
    CHECK_RC(mqtt_properties_remove(props, MQTT5C_PROP_SUBSCRIPTION_IDENTIFIER), MQTT5C_OK);
    CHECK_RC(mqtt_properties_set_int(props, MQTT5C_PROP_SUBSCRIPTION_IDENTIFIER, 7), MQTT5C_OK);
    CHECK_RC(mqtt_subscribe(sub, "sid/a", MQTT5C_QOS1, props), 1);
    CHECK_RC(mqtt_properties_set_int(props, MQTT5C_PROP_SUBSCRIPTION_IDENTIFIER, 8), MQTT5C_OK); /* a 2nd one */
    CHECK_RC(mqtt_subscribe(sub, "sid/z", MQTT5C_QOS1, props), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK(publish_ok(mqtt_publish(pub, "sid/a", "x", 1, MQTT5C_QOS1, false, NULL)), "publish");
    CHECK(publish_ok(mqtt_publish(pub, "sid/b", "x", 1, MQTT5C_QOS1, false, NULL)), "publish");
    CHECK(wait_topic("sid/a", 1) && wait_topic("sid/b", 1), "sid messages");
    CHECK(marker(sub), "marker");
    {
        /* mosquitto 2.0 sends one copy per matching subscription, each with
         * its identifier; a server may also send one copy with all of them.
         * Either way every identifier must arrive. */
        bool got5 = false, got7 = false, other = false;
        long copies = 0;
        sync_lock(&st.s);
        for (long i = 0; i < st.count && i < MAX_RECS; i++) {
            rec *x = &st.recs[i];
            if (strcmp(x->topic, "sid/a") != 0)
                continue;
            copies++;
            for (size_t j = 0; j < x->n_ids && j < 4; j++) {
                got5 |= x->ids[j] == 5;
                got7 |= x->ids[j] == 7;
                other |= x->ids[j] != 5 && x->ids[j] != 7;
            }
        }
        sync_unlock(&st.s);
        TEST_LOG("sid/a arrived as %ld cop%s", copies, copies == 1 ? "y" : "ies");
        CHECK(got5 && got7 && !other, "sid/a: identifiers 5 and 7 expected (5:%d 7:%d other:%d)", got5, got7,
              other);
    }
    CHECK(last_of("sid/b", &r) && r.n_ids == 1 && has_id(&r, 5), "sid/b carries %zu ids (want 5)", r.n_ids);
    TEST_LOG("subscription identifiers ok");

    CHECK_RC(mqtt_disconnect(sub, 0, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_disconnect(pub, 0, NULL), MQTT5C_OK);
    TEST_LOG("test_subscriptions passed");

cleanup:
    mqtt_client_free(sub);
    mqtt_client_free(pub);
    mqtt_properties_free(props);
    sync_destroy(&st.s);
    return test_failed;
}

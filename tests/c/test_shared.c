/*
 * Shared subscriptions: two clients in group $share/g/shared/# split a
 * stream of 1000 QoS 1 messages: each message arrives exactly once in
 * total, and both clients get some.
 */
#include "test_common.h"

#define N 1000

static struct {
    sync_t s;
    unsigned char seen[N]; /* times each message arrived, over both clients */
    long per_client[2];
    long total;
    long bad;
} st;

static void on_message(void *ud, const mqtt_message *m) {
    int who = (int)(intptr_t)ud;
    size_t len = 0;
    const char *p = mqtt_message_payload(m, &len);
    char buf[16] = {0};
    memcpy(buf, p, len < sizeof buf - 1 ? len : sizeof buf - 1);
    long i = atol(buf);
    sync_lock(&st.s);
    if (i >= 0 && i < N)
        st.seen[i]++;
    else
        st.bad++;
    st.per_client[who]++;
    st.total++;
    sync_unlock_notify(&st.s);
}

int main(int argc, char **argv) {
    const char *url = test_url(argc, argv);
    mqtt_client *a = NULL, *b = NULL, *pub = NULL;
    sync_init(&st.s);
    a = test_client_new("mqtt5c-shared-a");
    b = test_client_new("mqtt5c-shared-b");
    pub = test_client_new("mqtt5c-shared-pub");
    CHECK(a && b && pub, "client_new");
    CHECK_RC(mqtt_set_message_callback(a, on_message, (void *)(intptr_t)0), MQTT5C_OK);
    CHECK_RC(mqtt_set_message_callback(b, on_message, (void *)(intptr_t)1), MQTT5C_OK);
    CHECK_RC(mqtt_connect(a, url), MQTT5C_OK);
    CHECK_RC(mqtt_connect(b, url), MQTT5C_OK);
    CHECK_RC(mqtt_connect(pub, url), MQTT5C_OK);
    {
        mqtt_properties *ca = mqtt_connack_properties(a);
        uint32_t avail = 1;
        int rc = mqtt_properties_get_int(ca, MQTT5C_PROP_SHARED_SUBSCRIPTION_AVAILABLE, &avail);
        mqtt_properties_free(ca);
        CHECK(rc == MQTT5C_ERR_NOT_FOUND || avail == 1, "broker says shared subscriptions unavailable");
    }
    CHECK_RC(mqtt_subscribe(a, "$share/g/shared/#", MQTT5C_QOS1, NULL), 1);
    CHECK_RC(mqtt_subscribe(b, "$share/g/shared/#", MQTT5C_QOS1, NULL), 1);
    for (int i = 0; i < N; i++) {
        char payload[16];
        int n = snprintf(payload, sizeof payload, "%d", i);
        CHECK(publish_ok(mqtt_publish(pub, "shared/t", payload, (size_t)n, MQTT5C_QOS1, false, NULL)),
              "publish %d: %s", i, test_last_error());
    }
    CHECK(sync_wait_count(&st.s, &st.total, N, 30), "only %ld of %d messages arrived", sync_get(&st.s, &st.total),
          N);
    /* Any message beyond N would be a duplicate: check after the others
     * are acknowledged by a round trip of each subscriber. */
    CHECK_RC(mqtt_subscribe(a, "shared-none/x", MQTT5C_QOS1, NULL), 1);
    CHECK_RC(mqtt_subscribe(b, "shared-none/x", MQTT5C_QOS1, NULL), 1);
    sync_lock(&st.s);
    long missing = 0, doubled = 0;
    for (int i = 0; i < N; i++) {
        missing += st.seen[i] == 0;
        doubled += st.seen[i] > 1;
    }
    long pa = st.per_client[0], pb = st.per_client[1], total = st.total, bad = st.bad;
    sync_unlock(&st.s);
    TEST_LOG("client a got %ld, client b got %ld", pa, pb);
    CHECK(missing == 0 && doubled == 0 && total == N && bad == 0, "missing %ld, doubled %ld, total %ld, bad %ld",
          missing, doubled, total, bad);
    CHECK(pa > 0 && pb > 0, "the group did not split the stream: %ld / %ld", pa, pb);
    CHECK_RC(mqtt_disconnect(a, 0, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_disconnect(b, 0, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_disconnect(pub, 0, NULL), MQTT5C_OK);
    TEST_LOG("test_shared passed");
cleanup:
    mqtt_client_free(a);
    mqtt_client_free(b);
    mqtt_client_free(pub);
    sync_destroy(&st.s);
    return test_failed;
}

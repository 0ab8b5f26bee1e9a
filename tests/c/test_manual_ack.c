/*
 * Manual acknowledgement (issue 9): mqtt_options_set_manual_ack,
 * mqtt_message_ack_id, mqtt_ack.
 *
 * 1. Ids and bad input: QoS 0 has ack id 0 (mqtt_ack of it is a no-op), a
 *    copy keeps the id, reason codes are checked, unknown ids and a client
 *    without manual ack are refused, a second ack is MQTT5C_ERR_BAD_STATE.
 * 2. Back-pressure: with Receive Maximum 3 and no acks, mosquitto sends 3
 *    of 5 QoS 1 messages; each ack, made from another thread after the
 *    callback returned, lets one more through.
 * 3. The PUBACK waits for mqtt_ack: a message not acknowledged when the
 *    client is freed is sent again to the next client of the session (DUP,
 *    a new ack id); acknowledged, it is not.
 * 4. A resumed session (same client object): the broker's resend of a
 *    message not yet acknowledged is not delivered again, and the old ack
 *    id acknowledges it on the new connection; an ack made while
 *    disconnected answers the resend.
 * 5. QoS 2: mqtt_ack inside the callback sends PUBREC; the exchange ends
 *    (not sent again).
 * 6. A lost session (the broker wiped): the old ack id is stale,
 *    MQTT5C_ERR_NOT_FOUND.
 */
// needs: broker-control
#include "test_common.h"

#define MAX_RECS 64

typedef struct {
    char payload[32];
    uint64_t ack_id;
    uint64_t copy_ack_id;
    int qos;
    bool dup;
} rec_t;

static struct {
    sync_t s;
    long n;
    rec_t recs[MAX_RECS];
    /* Set: the callback acknowledges its own message. */
    bool ack_inside;
    mqtt_client *client;
    int inside_rc;
} st;

static void on_message(void *ud, const mqtt_message *m) {
    (void)ud;
    size_t len = 0;
    const char *p = mqtt_message_payload(m, &len);
    mqtt_message *copy = mqtt_message_copy(m);
    uint64_t id = mqtt_message_ack_id(m);
    sync_lock(&st.s);
    bool inside = st.ack_inside;
    mqtt_client *c = st.client;
    sync_unlock(&st.s);
    int rc = MQTT5C_OK;
    if (inside)
        rc = mqtt_ack(c, id, 0);
    sync_lock(&st.s);
    if (st.n < MAX_RECS) {
        rec_t *r = &st.recs[st.n];
        memset(r, 0, sizeof *r);
        if (len >= sizeof r->payload)
            len = sizeof r->payload - 1;
        memcpy(r->payload, p, len);
        r->ack_id = id;
        r->copy_ack_id = mqtt_message_ack_id(copy);
        r->qos = mqtt_message_qos(m);
        r->dup = mqtt_message_dup(m);
    }
    st.n++;
    if (inside && rc != MQTT5C_OK)
        st.inside_rc = rc;
    sync_unlock_notify(&st.s);
    mqtt_message_free(copy);
}

static void reset(void) {
    sync_lock(&st.s);
    st.n = 0;
    st.ack_inside = false;
    st.inside_rc = MQTT5C_OK;
    memset(st.recs, 0, sizeof st.recs);
    sync_unlock(&st.s);
}

static rec_t rec(long i) {
    sync_lock(&st.s);
    rec_t r = st.recs[i];
    sync_unlock(&st.s);
    return r;
}

/* A manual-ack client of the persistent session `id`. */
static mqtt_client *manual_client(const char *id, bool clean_start, uint16_t receive_max) {
    mqtt_options *o = mqtt_options_new();
    mqtt_client *c = NULL;
    if (o && mqtt_options_set_client_id(o, id) == MQTT5C_OK &&
        mqtt_options_set_clean_start(o, clean_start) == MQTT5C_OK &&
        mqtt_options_set_session_expiry(o, 600) == MQTT5C_OK &&
        mqtt_options_set_receive_maximum(o, receive_max) == MQTT5C_OK &&
        mqtt_options_set_manual_ack(o, true) == MQTT5C_OK &&
        mqtt_options_set_connect_timeout(o, (uint32_t)(10000 * timeout_scale())) == MQTT5C_OK)
        c = mqtt_client_new(o);
    if (!c)
        fprintf(stderr, "cannot create client %s: %s\n", id, test_last_error());
    mqtt_options_free(o);
    if (c && mqtt_set_message_callback(c, on_message, NULL) != MQTT5C_OK) {
        mqtt_client_free(c);
        c = NULL;
    }
    sync_lock(&st.s);
    st.client = c;
    sync_unlock(&st.s);
    return c;
}

static bool wait_n(long n) { return sync_wait_count(&st.s, &st.n, n, 20); }

static int pub(mqtt_client *p, const char *topic, const char *payload, int qos) {
    int rc = mqtt_publish(p, topic, payload, strlen(payload), qos, false, NULL);
    return publish_ok(rc) ? MQTT5C_OK : rc;
}

typedef struct {
    mqtt_client *client;
    uint64_t id;
    int rc;
} ack_job;

static void *ack_thread(void *arg) {
    ack_job *j = arg;
    j->rc = mqtt_ack(j->client, j->id, 0);
    return NULL;
}

/* Acknowledges `id` from a thread of its own. */
static int ack_from_thread(mqtt_client *c, uint64_t id) {
    ack_job j = {c, id, -100};
    pthread_t t;
    if (pthread_create(&t, NULL, ack_thread, &j) != 0)
        return -100;
    pthread_join(t, NULL);
    return j.rc;
}

/* A fresh client object of session `id` (so nothing of the old one's
 * state hides a resend): publishes `marker` to `topic` and checks that it is
 * the first message, i.e. the broker had nothing left to resend. */
static bool nothing_resent(const char *url, const char *id, mqtt_client *p, const char *topic,
                           const char *marker) {
    bool ok = false;
    mqtt_client *c = manual_client(id, false, 10);
    reset();
    CHECK(c, "client");
    CHECK_RC(mqtt_connect(c, url), MQTT5C_OK);
    CHECK_RC(mqtt_session_present(c), 1);
    CHECK_RC(pub(p, topic, marker, 1), MQTT5C_OK);
    CHECK(wait_n(1), "marker not delivered");
    CHECK(strcmp(rec(0).payload, marker) == 0, "resent after its ack: '%s' (dup %d) before the marker",
          rec(0).payload, rec(0).dup);
    CHECK_RC(mqtt_ack(c, rec(0).ack_id, 0), MQTT5C_OK);
    ok = true;
cleanup:
    if (c) {
        mqtt_disconnect(c, 0, NULL);
        mqtt_client_free(c);
    }
    return ok;
}

int main(int argc, char **argv) {
    const char *url = test_url(argc, argv);
    mqtt_client *sub = NULL, *p = NULL;
    uint64_t old_id = 0;
    sync_init(&st.s);

    p = test_client_new("mack-pub");
    CHECK(p, "client");
    CHECK_RC(mqtt_connect(p, url), MQTT5C_OK);

    /* 1. Ids and bad input. */
    sub = manual_client("mack-1", true, 3);
    CHECK(sub, "client");
    CHECK_RC(mqtt_connect(sub, url), MQTT5C_OK);
    CHECK_RC(mqtt_subscribe(sub, "mack/1", 2, NULL), 2);
    reset();
    CHECK_RC(pub(p, "mack/1", "zero", 0), MQTT5C_OK);
    CHECK_RC(pub(p, "mack/1", "one", 1), MQTT5C_OK);
    CHECK(wait_n(2), "only %ld messages", sync_get(&st.s, &st.n));
    CHECK(rec(0).ack_id == 0, "QoS 0 has ack id %llu", (unsigned long long)rec(0).ack_id);
    CHECK(rec(1).ack_id != 0 && rec(1).qos == 1, "QoS 1 has no ack id");
    CHECK(rec(1).copy_ack_id == rec(1).ack_id, "the copy lost the ack id");
    CHECK_RC(mqtt_ack(sub, 0, 0), MQTT5C_OK);
    CHECK_RC(mqtt_ack(sub, rec(1).ack_id, 0x10), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK_RC(mqtt_ack(sub, rec(1).ack_id, 0x01), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK_RC(mqtt_ack(sub, rec(1).ack_id, 0x81), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK_RC(mqtt_ack(sub, rec(1).ack_id, 300), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK_RC(mqtt_ack(sub, rec(1).ack_id, -1), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK(contains_ci(mqtt_last_error(), "reason"), "last error: %s", test_last_error());
    CHECK_RC(mqtt_ack(sub, rec(1).ack_id + (1ull << 30), 0), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK(contains_ci(mqtt_last_error(), "not handed out"), "last error: %s", test_last_error());
    CHECK_RC(mqtt_ack(sub, UINT64_MAX, 0), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK_RC(mqtt_ack(NULL, rec(1).ack_id, 0), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK_RC(mqtt_ack(p, rec(1).ack_id, 0), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK(contains_ci(mqtt_last_error(), "manual acknowledgement is off"), "last error: %s",
          test_last_error());
    CHECK(mqtt_message_ack_id(NULL) == 0, "ack id of NULL");
    CHECK_RC(mqtt_options_set_manual_ack(NULL, true), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK_RC(mqtt_ack(sub, rec(1).ack_id, 0), MQTT5C_OK);
    CHECK_RC(mqtt_ack(sub, rec(1).ack_id, 0), MQTT5C_ERR_BAD_STATE);
    CHECK(contains_ci(mqtt_last_error(), "acknowledged already"), "last error: %s",
          test_last_error());
    TEST_LOG("1: ids and bad input ok");

    /* 2. Back-pressure: Receive Maximum 3, five QoS 1 messages. */
    reset();
    for (int i = 0; i < 5; i++) {
        char payload[8];
        snprintf(payload, sizeof payload, "bp%d", i);
        CHECK_RC(pub(p, "mack/1", payload, 1), MQTT5C_OK);
    }
    CHECK(wait_n(3), "only %ld of the first 3", sync_get(&st.s, &st.n));
    /* Nothing to wait for but time: the broker must hold the 4th back. */
    sleep_ms((long)(500 * timeout_scale()));
    CHECK(sync_get(&st.s, &st.n) == 3, "%ld delivered with 3 unacknowledged and Receive Maximum 3",
          sync_get(&st.s, &st.n));
    CHECK_RC(ack_from_thread(sub, rec(0).ack_id), MQTT5C_OK);
    CHECK(wait_n(4), "an ack did not let the 4th through");
    CHECK_RC(ack_from_thread(sub, rec(1).ack_id), MQTT5C_OK);
    CHECK(wait_n(5), "an ack did not let the 5th through");
    for (int i = 2; i < 5; i++)
        CHECK_RC(ack_from_thread(sub, rec(i).ack_id), MQTT5C_OK);
    CHECK(strcmp(rec(4).payload, "bp4") == 0, "out of order: %s", rec(4).payload);
    TEST_LOG("2: back-pressure ok");
    CHECK_RC(mqtt_disconnect(sub, 0, NULL), MQTT5C_OK);
    mqtt_client_free(sub);
    sub = NULL;

    /* 3. Not acknowledged when freed: sent again to the next client. */
    sub = manual_client("mack-3", true, 10);
    CHECK(sub, "client");
    CHECK_RC(mqtt_connect(sub, url), MQTT5C_OK);
    CHECK_RC(mqtt_subscribe(sub, "mack/3", 1, NULL), 1);
    reset();
    CHECK_RC(pub(p, "mack/3", "keep", 1), MQTT5C_OK);
    CHECK(wait_n(1), "not delivered");
    old_id = rec(0).ack_id;
    CHECK_RC(mqtt_disconnect(sub, 0, NULL), MQTT5C_OK);
    mqtt_client_free(sub);
    sub = manual_client("mack-3", false, 10);
    reset();
    CHECK(sub, "client");
    CHECK_RC(mqtt_connect(sub, url), MQTT5C_OK);
    CHECK(wait_n(1), "the unacknowledged message was not sent again");
    CHECK(strcmp(rec(0).payload, "keep") == 0 && rec(0).dup, "'%s' dup %d", rec(0).payload,
          rec(0).dup);
    CHECK(rec(0).ack_id != 0, "no ack id");
    CHECK_RC(mqtt_ack(sub, rec(0).ack_id, 0), MQTT5C_OK);
    CHECK_RC(mqtt_disconnect(sub, 0, NULL), MQTT5C_OK);
    mqtt_client_free(sub);
    sub = NULL;
    CHECK(nothing_resent(url, "mack-3", p, "mack/3", "m3"), "part 3");
    TEST_LOG("3: redelivered until acknowledged ok");

    /* 4. A resumed session on the same client object. */
    sub = manual_client("mack-4", false, 10);
    CHECK(sub, "client");
    CHECK_RC(mqtt_connect(sub, url), MQTT5C_OK);
    CHECK_RC(mqtt_subscribe(sub, "mack/4", 1, NULL), 1);
    reset();
    CHECK_RC(pub(p, "mack/4", "held", 1), MQTT5C_OK);
    CHECK_RC(pub(p, "mack/4", "acked-offline", 1), MQTT5C_OK);
    CHECK(wait_n(2), "not delivered");
    old_id = rec(0).ack_id;
    CHECK_RC(mqtt_disconnect(sub, 0, NULL), MQTT5C_OK);
    /* Acknowledged while disconnected: answers the broker's resend. */
    CHECK_RC(mqtt_ack(sub, rec(1).ack_id, 0), MQTT5C_OK);
    CHECK_RC(mqtt_connect(sub, url), MQTT5C_OK);
    CHECK_RC(mqtt_session_present(sub), 1);
    CHECK_RC(pub(p, "mack/4", "after", 1), MQTT5C_OK);
    CHECK(wait_n(3), "the message after the resume was not delivered");
    CHECK(strcmp(rec(2).payload, "after") == 0, "a resend was delivered again: '%s'",
          rec(2).payload);
    CHECK_RC(mqtt_ack(sub, old_id, 0), MQTT5C_OK);
    CHECK_RC(mqtt_ack(sub, rec(2).ack_id, 0), MQTT5C_OK);
    CHECK_RC(mqtt_disconnect(sub, 0, NULL), MQTT5C_OK);
    mqtt_client_free(sub);
    sub = NULL;
    CHECK(nothing_resent(url, "mack-4", p, "mack/4", "m4"), "part 4");
    TEST_LOG("4: resumed session ok");

    /* 5. QoS 2, acknowledged inside the callback. */
    sub = manual_client("mack-5", true, 10);
    CHECK(sub, "client");
    CHECK_RC(mqtt_connect(sub, url), MQTT5C_OK);
    CHECK_RC(mqtt_subscribe(sub, "mack/5", 2, NULL), 2);
    reset();
    sync_lock(&st.s);
    st.ack_inside = true;
    sync_unlock(&st.s);
    CHECK_RC(pub(p, "mack/5", "two", 2), MQTT5C_OK);
    CHECK(wait_n(1), "not delivered");
    CHECK(rec(0).qos == 2 && rec(0).ack_id != 0, "qos %d", rec(0).qos);
    CHECK_RC(st.inside_rc, MQTT5C_OK);
    CHECK_RC(mqtt_ack(sub, rec(0).ack_id, 0), MQTT5C_ERR_BAD_STATE);
    CHECK_RC(mqtt_disconnect(sub, 0, NULL), MQTT5C_OK);
    mqtt_client_free(sub);
    sub = NULL;
    CHECK(nothing_resent(url, "mack-5", p, "mack/5", "m5"), "part 5");
    TEST_LOG("5: QoS 2 ok");

    /* 6. The broker loses the session: the old id is stale. */
    sub = manual_client("mack-6", false, 10);
    CHECK(sub, "client");
    CHECK_RC(mqtt_connect(sub, url), MQTT5C_OK);
    CHECK_RC(mqtt_subscribe(sub, "mack/6", 1, NULL), 1);
    reset();
    CHECK_RC(pub(p, "mack/6", "lost", 1), MQTT5C_OK);
    CHECK(wait_n(1), "not delivered");
    old_id = rec(0).ack_id;
    CHECK_RC(mqtt_disconnect(sub, 0, NULL), MQTT5C_OK);
    mqtt_disconnect(p, 0, NULL);
    CHECK(broker_control("wipe"), "wipe");
    CHECK_RC(mqtt_connect(sub, url), MQTT5C_OK);
    CHECK_RC(mqtt_session_present(sub), 0);
    CHECK_RC(mqtt_ack(sub, old_id, 0), MQTT5C_ERR_NOT_FOUND);
    CHECK(contains_ci(mqtt_last_error(), "no longer"), "last error: %s", test_last_error());
    TEST_LOG("6: stale id ok");

cleanup:
    if (sub) {
        mqtt_disconnect(sub, 0, NULL);
        mqtt_client_free(sub);
    }
    if (p) {
        mqtt_disconnect(p, 0, NULL);
        mqtt_client_free(p);
    }
    sync_destroy(&st.s);
    if (!test_failed)
        TEST_LOG("PASS");
    return test_failed;
}

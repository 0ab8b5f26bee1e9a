/*
 * Losing the connection, and connect and operation timeouts, with exact
 * bytes from the scripted broker `lost_connection` (tests/scripted), one
 * connection per case, in this order:
 *  - DISCONNECT 0x8E from the server: DISCONNECTED with reason 0x8E;
 *  - CONNACK 0x87: mqtt_connect returns 0x87 and no CONNECTED event fires;
 *  - the socket closes while a QoS 1 publish waits: MQTT5C_ERR_CONNECTION_LOST;
 *  - no CONNACK: MQTT5C_ERR_TIMEOUT after the connect timeout;
 *  - no PUBACK: MQTT5C_ERR_TIMEOUT after the operation timeout.
 * The same against mosquitto (session takeover, a refusal, a will, a
 * closed port) is in test_disconnect.c.
 */
// fake-broker: lost_connection
#include "test_common.h"

/* ------------------------------------------------------------------ */
/* connection events                                                   */

#define MAX_EVENTS 16

typedef struct {
    sync_t s;
    long count; /* events seen */
    long connected;
    long disconnected;
    int events[MAX_EVENTS];
    int reasons[MAX_EVENTS];
} events_t;

static void on_connection(void *ud, int event, int reason) {
    events_t *e = ud;
    sync_lock(&e->s);
    if (e->count < MAX_EVENTS) {
        e->events[e->count] = event;
        e->reasons[e->count] = reason;
    }
    e->count++;
    if (event == MQTT5C_EVENT_CONNECTED)
        e->connected++;
    if (event == MQTT5C_EVENT_DISCONNECTED)
        e->disconnected++;
    sync_unlock_notify(&e->s);
}

static void events_init(events_t *e) {
    memset(e, 0, sizeof *e);
    sync_init(&e->s);
}

/* The reason of the last DISCONNECTED event, or -1000. */
static int last_disconnect_reason(events_t *e) {
    int r = -1000;
    sync_lock(&e->s);
    for (long i = 0; i < e->count && i < MAX_EVENTS; i++)
        if (e->events[i] == MQTT5C_EVENT_DISCONNECTED)
            r = e->reasons[i];
    sync_unlock(&e->s);
    return r;
}

static mqtt_client *client_with_events(const char *id, events_t *e, uint32_t connect_ms, uint32_t op_ms) {
    mqtt_options *o = mqtt_options_new();
    mqtt_client *c = NULL;
    if (!o)
        return NULL;
    if (mqtt_options_set_client_id(o, id) == MQTT5C_OK &&
        mqtt_options_set_connect_timeout(o, connect_ms) == MQTT5C_OK &&
        mqtt_options_set_operation_timeout(o, op_ms) == MQTT5C_OK)
        c = mqtt_client_new(o);
    mqtt_options_free(o);
    if (c && mqtt_set_connection_callback(c, on_connection, e) != MQTT5C_OK) {
        mqtt_client_free(c);
        c = NULL;
    }
    if (!c)
        fprintf(stderr, "creating client %s failed: %s\n", id, test_last_error());
    return c;
}

static bool lost(int rc) { return rc == MQTT5C_ERR_NOT_CONNECTED || rc == MQTT5C_ERR_CONNECTION_LOST; }

/* ------------------------------------------------------------------ */

int main(int argc, char **argv) {
    const char *url = test_url(argc, argv);
    const uint32_t long_ms = (uint32_t)(30000 * timeout_scale());
    events_t ef;
    mqtt_client *f = NULL;
    int rc;
    double t0;

    /* ---- DISCONNECT 0x8E ---- */
    events_init(&ef);
    f = client_with_events("fake-8e", &ef, long_ms, long_ms);
    CHECK(f != NULL, "client creation failed");
    CHECK_RC(mqtt_connect(f, url), MQTT5C_OK);
    CHECK(sync_wait_count(&ef.s, &ef.disconnected, 1, 10), "no DISCONNECTED after the server's DISCONNECT");
    CHECK(last_disconnect_reason(&ef) == 0x8e, "DISCONNECTED reason 0x%02x, want 0x8e",
          (unsigned)last_disconnect_reason(&ef));
    sync_lock(&ef.s);
    {
        long n = ef.count;
        int e0 = ef.events[0], e1 = n > 1 ? ef.events[1] : 0, r0 = ef.reasons[0], r1 = n > 1 ? ef.reasons[1] : 0;
        sync_unlock(&ef.s);
        CHECK(n <= 2 && e0 == MQTT5C_EVENT_CONNECTED, "events: %ld: [%d reason %d, %d reason %d], want CONNECTED then DISCONNECTED", n, e0, r0, e1, r1);
    }
    rc = mqtt_publish(f, "x", "x", 1, MQTT5C_QOS1, false, NULL);
    CHECK(lost(rc), "publish after server DISCONNECT returned %d (%s)", rc, test_strerror(rc));
    mqtt_client_free(f);
    f = NULL;
    TEST_LOG("server DISCONNECT 0x8E ok");

    /* ---- CONNACK 0x87 ---- */
    sync_destroy(&ef.s);
    events_init(&ef);
    f = client_with_events("fake-87", &ef, long_ms, long_ms);
    CHECK(f != NULL, "client creation failed");
    CHECK_RC(mqtt_connect(f, url), 0x87);
    mqtt_client_free(f);
    f = NULL;
    CHECK(sync_get(&ef.s, &ef.connected) == 0, "CONNECTED fired for a refused connection");
    TEST_LOG("CONNACK 0x87 ok");

    /* ---- socket closed while a QoS 1 publish waits ---- */
    sync_destroy(&ef.s);
    events_init(&ef);
    f = client_with_events("fake-close", &ef, long_ms, long_ms);
    CHECK(f != NULL, "client creation failed");
    CHECK_RC(mqtt_connect(f, url), MQTT5C_OK);
    CHECK_RC(mqtt_publish(f, "x", "x", 1, MQTT5C_QOS1, false, NULL), MQTT5C_ERR_CONNECTION_LOST);
    CHECK(sync_wait_count(&ef.s, &ef.disconnected, 1, 10), "no DISCONNECTED after the socket closed");
    rc = mqtt_publish(f, "x", "x", 1, MQTT5C_QOS1, false, NULL);
    CHECK(lost(rc), "publish after the socket closed returned %d (%s)", rc, test_strerror(rc));
    mqtt_client_free(f);
    f = NULL;
    TEST_LOG("socket closed ok");

    /* ---- no CONNACK ---- */
    sync_destroy(&ef.s);
    events_init(&ef);
    f = client_with_events("fake-silent", &ef, 300, long_ms);
    CHECK(f != NULL, "client creation failed");
    t0 = now_s();
    CHECK_RC(mqtt_connect(f, url), MQTT5C_ERR_TIMEOUT);
    CHECK(now_s() - t0 < 5 * timeout_scale(), "connect timeout of 300 ms took %.1f s", now_s() - t0);
    mqtt_client_free(f);
    f = NULL;
    TEST_LOG("connect timeout ok");

    /* ---- no PUBACK ---- */
    sync_destroy(&ef.s);
    events_init(&ef);
    f = client_with_events("fake-nopuback", &ef, long_ms, 300);
    CHECK(f != NULL, "client creation failed");
    CHECK_RC(mqtt_connect(f, url), MQTT5C_OK);
    t0 = now_s();
    CHECK_RC(mqtt_publish(f, "x", "x", 1, MQTT5C_QOS1, false, NULL), MQTT5C_ERR_TIMEOUT);
    CHECK(now_s() - t0 < 5 * timeout_scale(), "operation timeout of 300 ms took %.1f s", now_s() - t0);
    mqtt_client_free(f);
    f = NULL;
    TEST_LOG("operation timeout ok");

cleanup:
    mqtt_client_free(f);
    sync_destroy(&ef.s);
    if (!test_failed)
        TEST_LOG("test_lost_connection: PASS");
    return test_failed;
}

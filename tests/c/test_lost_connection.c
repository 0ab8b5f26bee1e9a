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

int main(int argc, char **argv) {
    const char *url = test_url(argc, argv);
    const uint32_t long_ms = (uint32_t)(30000 * timeout_scale());
    test_events_t ef;
    mqtt_client *f = NULL;
    int rc;
    double t0;

    /* ---- DISCONNECT 0x8E ---- */
    test_events_init(&ef);
    f = test_client_with_events("fake-8e", &ef, long_ms, long_ms);
    CHECK(f != NULL, "client creation failed");
    CHECK_RC(mqtt_connect(f, url), MQTT5C_OK);
    CHECK(sync_wait_count(&ef.s, &ef.disconnected, 1, 10), "no DISCONNECTED after the server's DISCONNECT");
    CHECK(test_last_disconnect_reason(&ef) == 0x8e, "DISCONNECTED reason 0x%02x, want 0x8e",
          (unsigned)test_last_disconnect_reason(&ef));
    sync_lock(&ef.s);
    {
        long n = ef.count;
        int e0 = ef.events[0], e1 = n > 1 ? ef.events[1] : 0, r0 = ef.reasons[0], r1 = n > 1 ? ef.reasons[1] : 0;
        sync_unlock(&ef.s);
        CHECK(n <= 2 && e0 == MQTT5C_EVENT_CONNECTED, "events: %ld: [%d reason %d, %d reason %d], want CONNECTED then DISCONNECTED", n, e0, r0, e1, r1);
    }
    rc = mqtt_publish(f, "x", "x", 1, MQTT5C_QOS1, false, NULL);
    CHECK(test_rc_lost(rc), "publish after server DISCONNECT returned %d (%s)", rc, test_strerror(rc));
    mqtt_client_free(f);
    f = NULL;
    TEST_LOG("server DISCONNECT 0x8E ok");

    /* ---- CONNACK 0x87 ---- */
    test_events_reset(&ef);
    f = test_client_with_events("fake-87", &ef, long_ms, long_ms);
    CHECK(f != NULL, "client creation failed");
    CHECK_RC(mqtt_connect(f, url), 0x87);
    mqtt_client_free(f);
    f = NULL;
    CHECK(sync_get(&ef.s, &ef.connected) == 0, "CONNECTED fired for a refused connection");
    TEST_LOG("CONNACK 0x87 ok");

    /* ---- socket closed while a QoS 1 publish waits ---- */
    test_events_reset(&ef);
    f = test_client_with_events("fake-close", &ef, long_ms, long_ms);
    CHECK(f != NULL, "client creation failed");
    CHECK_RC(mqtt_connect(f, url), MQTT5C_OK);
    CHECK_RC(mqtt_publish(f, "x", "x", 1, MQTT5C_QOS1, false, NULL), MQTT5C_ERR_CONNECTION_LOST);
    CHECK(sync_wait_count(&ef.s, &ef.disconnected, 1, 10), "no DISCONNECTED after the socket closed");
    rc = mqtt_publish(f, "x", "x", 1, MQTT5C_QOS1, false, NULL);
    CHECK(test_rc_lost(rc), "publish after the socket closed returned %d (%s)", rc, test_strerror(rc));
    mqtt_client_free(f);
    f = NULL;
    TEST_LOG("socket closed ok");

    /* ---- no CONNACK ---- */
    test_events_reset(&ef);
    f = test_client_with_events("fake-silent", &ef, 300, long_ms);
    CHECK(f != NULL, "client creation failed");
    t0 = now_s();
    CHECK_RC(mqtt_connect(f, url), MQTT5C_ERR_TIMEOUT);
    CHECK(now_s() - t0 < 5 * timeout_scale(), "connect timeout of 300 ms took %.1f s", now_s() - t0);
    mqtt_client_free(f);
    f = NULL;
    TEST_LOG("connect timeout ok");

    /* ---- no PUBACK ---- */
    test_events_reset(&ef);
    f = test_client_with_events("fake-nopuback", &ef, long_ms, 300);
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
    test_events_destroy(&ef);
    if (!test_failed)
        TEST_LOG("test_lost_connection: PASS");
    return test_failed;
}

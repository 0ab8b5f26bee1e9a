/*
 * Losing the connection, and connect failures.
 *
 * With the real broker:
 *  - session takeover: a second client with the SAME client id makes the
 *    broker drop the first. The first client's connection callback fires
 *    MQTT5C_EVENT_DISCONNECTED and a later publish returns NOT_CONNECTED or
 *    CONNECTION_LOST. (MQTT v5 says the broker sends DISCONNECT 0x8E Session
 *    taken over; mosquitto 2.0.11 closes the socket without sending it, so
 *    0x8E is asserted only against the scripted broker of
 *    test_lost_connection.c.)
 *  - CONNACK refusal: a zero-length client id, refused by this broker's
 *    config, makes mqtt_connect return the CONNACK reason (>= 0x80).
 *  - a will published after mqtt_disconnect with reason 0x04.
 *  - connection refused at TCP level: MQTT5C_ERR_IO.
 *
 * The same with exact bytes from a scripted broker (a DISCONNECT 0x8E, a
 * CONNACK 0x87, a socket closed under a publish, connect and operation
 * timeouts) is in test_lost_connection.c.
 */
// broker-conf: allow_zero_length_clientid false
#include "test_common.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
    const char *url = test_url(argc, argv);
    const uint32_t long_ms = (uint32_t)(30000 * timeout_scale());
    test_events_t ea, eb, ew, es, ef;
    mqtt_client *a = NULL, *b = NULL, *w = NULL, *s = NULL, *f = NULL, *anon = NULL;
    int rc;

    test_events_init(&ea);
    test_events_init(&eb);
    test_events_init(&ew);
    test_events_init(&es);
    test_events_init(&ef);

    /* ---- session takeover on the real broker ---- */
    a = test_client_with_events("dup-id", &ea, long_ms, long_ms);
    b = test_client_with_events("dup-id", &eb, long_ms, long_ms);
    CHECK(a && b, "client creation failed");
    CHECK_RC(mqtt_connect(a, url), MQTT5C_OK);
    CHECK(sync_wait_count(&ea.s, &ea.connected, 1, 10), "A: no CONNECTED event");
    CHECK_RC(mqtt_connect(b, url), MQTT5C_OK);
    CHECK(sync_wait_count(&ea.s, &ea.disconnected, 1, 10), "A: no DISCONNECTED event after the session takeover");
    rc = test_last_disconnect_reason(&ea);
    TEST_LOG("takeover: A disconnected with reason %d (0x%02x)", rc, (unsigned)rc);
    CHECK(rc == 0x8e || rc >= 0x80 || rc < 0,
          "A's DISCONNECTED reason is 0x%02x: a lost connection must not look like a normal disconnect", rc);
    rc = mqtt_publish(a, "takeover/a", "x", 1, MQTT5C_QOS1, false, NULL);
    CHECK(test_rc_lost(rc), "publish QoS 1 on the dropped client returned %d (%s)", rc, test_strerror(rc));
    rc = mqtt_publish(a, "takeover/a", "x", 1, MQTT5C_QOS0, false, NULL);
    CHECK(test_rc_lost(rc), "publish QoS 0 on the dropped client returned %d (%s)", rc, test_strerror(rc));
    rc = mqtt_subscribe(a, "takeover/#", MQTT5C_QOS1, NULL);
    CHECK(test_rc_lost(rc), "subscribe on the dropped client returned %d (%s)", rc, test_strerror(rc));
    /* B, the new owner of the id, works. */
    CHECK_RC(mqtt_subscribe(b, "takeover/#", MQTT5C_QOS1, NULL), 1);
    CHECK_RC(mqtt_publish(b, "takeover/b", "b", 1, MQTT5C_QOS1, false, NULL), 0);
    CHECK(sync_wait_count(&eb.s, &eb.messages, 1, 10), "B did not receive its own message");
    CHECK(sync_get(&eb.s, &eb.disconnected) == 0, "B was disconnected too");
    CHECK_RC(mqtt_disconnect(b, 0, NULL), MQTT5C_OK);
    TEST_LOG("session takeover ok");

    /* ---- CONNACK refusal by the real broker ---- */
    anon = test_client_with_events("", &ef, long_ms, long_ms);
    CHECK(anon != NULL, "client creation failed");
    rc = mqtt_connect(anon, url);
    CHECK(rc >= 0x80 && rc <= 0xff, "connect with an empty client id (refused by config) returned %d (%s)", rc,
          test_strerror(rc));
    TEST_LOG("refused by broker: 0x%02x %s", (unsigned)rc, test_strerror(rc));
    CHECK(mqtt_strerror(rc) && mqtt_strerror(rc)[0], "no text for CONNACK reason %d", rc);
    CHECK_RC(mqtt_publish(anon, "x", "x", 1, 0, false, NULL), MQTT5C_ERR_NOT_CONNECTED);
    mqtt_client_free(anon);
    anon = NULL;
    CHECK(sync_get(&ef.s, &ef.connected) == 0, "CONNECTED fired for a refused connection");
    test_events_reset(&ef);

    /* ---- will message on DISCONNECT 0x04 ---- */
    s = test_client_with_events("will-sub", &es, long_ms, long_ms);
    CHECK(s != NULL, "client creation failed");
    {
        mqtt_options *o = mqtt_options_new();
        CHECK(o != NULL, "mqtt_options_new");
        rc = mqtt_options_set_client_id(o, "will-pub");
        if (rc == MQTT5C_OK)
            rc = mqtt_options_set_will(o, "will/w", "gone", 4, MQTT5C_QOS1, false, NULL);
        w = rc == MQTT5C_OK ? mqtt_client_new(o) : NULL;
        mqtt_options_free(o);
        CHECK(w != NULL, "client with a will: rc %d, %s", rc, test_last_error());
        CHECK_RC(mqtt_set_connection_callback(w, test_on_connection, &ew), MQTT5C_OK);
    }
    CHECK_RC(mqtt_connect(s, url), MQTT5C_OK);
    CHECK_RC(mqtt_subscribe(s, "will/#", MQTT5C_QOS1, NULL), 1);
    CHECK_RC(mqtt_connect(w, url), MQTT5C_OK);
    CHECK_RC(mqtt_disconnect(w, 0x04, NULL), MQTT5C_OK);
    CHECK(sync_wait_count(&es.s, &es.messages, 1, 10), "will not delivered after DISCONNECT 0x04");
    sync_lock(&es.s);
    {
        bool ok = strcmp(es.last_topic, "will/w") == 0 && strcmp(es.last_payload, "gone") == 0;
        sync_unlock(&es.s);
        CHECK(ok, "will arrived as %s '%s'", es.last_topic, es.last_payload);
    }
    CHECK(sync_wait_count(&ew.s, &ew.disconnected, 1, 10), "no DISCONNECTED event after mqtt_disconnect");
    CHECK_RC(mqtt_disconnect(s, 0, NULL), MQTT5C_OK);
    TEST_LOG("will ok");

    /* ---- TCP connection refused ---- */
    {
        struct sockaddr_in sa;
        socklen_t slen = sizeof sa;
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        char closed_url[64];
        CHECK(fd >= 0, "socket");
        memset(&sa, 0, sizeof sa);
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        CHECK(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 && getsockname(fd, (struct sockaddr *)&sa, &slen) == 0,
              "bind");
        close(fd); /* nothing listens there now */
        snprintf(closed_url, sizeof closed_url, "mqtt://127.0.0.1:%d", ntohs(sa.sin_port));
        f = test_client_with_events("refused", &ef, long_ms, long_ms);
        CHECK(f != NULL, "client creation failed");
        rc = mqtt_connect(f, closed_url);
        CHECK(rc == MQTT5C_ERR_IO, "connect to a closed port returned %d (%s), want MQTT5C_ERR_IO", rc,
              test_strerror(rc));
        CHECK(mqtt_last_error()[0] != '\0', "no mqtt_last_error after a refused connection");
        TEST_LOG("closed port: %s", test_last_error());
        mqtt_client_free(f);
        f = NULL;
    }

cleanup:
    mqtt_client_free(f);
    mqtt_client_free(anon);
    mqtt_client_free(a);
    mqtt_client_free(b);
    mqtt_client_free(w);
    mqtt_client_free(s);
    test_events_destroy(&ea);
    test_events_destroy(&eb);
    test_events_destroy(&ew);
    test_events_destroy(&es);
    test_events_destroy(&ef);
    if (!test_failed)
        TEST_LOG("test_disconnect: PASS");
    return test_failed;
}

/*
 * Losing the connection, and connect failures.
 *
 * With the real broker:
 *  - session takeover: a second client with the SAME client id makes the
 *    broker drop the first. The first client's connection callback fires
 *    MQTT5C_EVENT_DISCONNECTED and a later publish returns NOT_CONNECTED or
 *    CONNECTION_LOST. (MQTT v5 says the broker sends DISCONNECT 0x8E Session
 *    taken over; mosquitto 2.0.11 closes the socket without sending it, so
 *    0x8E is asserted only against the scripted broker below.)
 *  - CONNACK refusal: a zero-length client id, refused by this broker's
 *    config, makes mqtt_connect return the CONNACK reason (>= 0x80).
 *  - a will published after mqtt_disconnect with reason 0x04.
 *  - connection refused at TCP level: MQTT5C_ERR_IO.
 *
 * With a scripted fake broker in this process (exact bytes):
 *  - DISCONNECT 0x8E from the server: DISCONNECTED with reason 0x8E;
 *  - CONNACK 0x87: mqtt_connect returns 0x87 and no CONNECTED event fires;
 *  - the socket closes while a QoS 1 publish waits: MQTT5C_ERR_CONNECTION_LOST;
 *  - no CONNACK: MQTT5C_ERR_TIMEOUT after the connect timeout;
 *  - no PUBACK: MQTT5C_ERR_TIMEOUT after the operation timeout.
 */
// broker-conf: allow_zero_length_clientid false
#include "test_common.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

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
    long messages;
    char last_topic[64];
    char last_payload[64];
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

static void on_message(void *ud, const mqtt_message *m) {
    events_t *e = ud;
    size_t len = 0;
    const char *p = mqtt_message_payload(m, &len);
    const char *t = mqtt_message_topic(m);
    sync_lock(&e->s);
    snprintf(e->last_topic, sizeof e->last_topic, "%s", t ? t : "(null)");
    if (len >= sizeof e->last_payload)
        len = sizeof e->last_payload - 1;
    if (p)
        memcpy(e->last_payload, p, len);
    e->last_payload[len] = '\0';
    e->messages++;
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
    if (c && (mqtt_set_connection_callback(c, on_connection, e) != MQTT5C_OK ||
              mqtt_set_message_callback(c, on_message, e) != MQTT5C_OK)) {
        mqtt_client_free(c);
        c = NULL;
    }
    if (!c)
        fprintf(stderr, "creating client %s failed: %s\n", id, test_last_error());
    return c;
}

static bool lost(int rc) { return rc == MQTT5C_ERR_NOT_CONNECTED || rc == MQTT5C_ERR_CONNECTION_LOST; }

/* ------------------------------------------------------------------ */
/* a scripted fake broker                                              */

enum fb_script {
    FB_DISCONNECT_8E,      /* CONNACK ok, then DISCONNECT 0x8E, then close */
    FB_REFUSE_87,          /* CONNACK 0x87 Not authorized */
    FB_CLOSE_AFTER_PUBLISH, /* CONNACK ok, close when a PUBLISH arrives */
    FB_SILENT,             /* never answer CONNECT */
    FB_NO_PUBACK,          /* CONNACK ok, never answer PUBLISH */
};

typedef struct {
    enum fb_script script;
    int listen_fd;
    int port;
    pthread_t thread;
    bool started;
    char error[160]; /* set by the thread when the client misbehaved */
} fake_broker;

static int fb_io_timeout_ms(void) { return (int)(10000 * timeout_scale()); }

/* Reads exactly n bytes; 0 ok, -1 error/EOF/timeout. */
static int read_full(int fd, unsigned char *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        struct pollfd p = {fd, POLLIN, 0};
        int r = poll(&p, 1, fb_io_timeout_ms());
        if (r <= 0)
            return -1;
        ssize_t k = read(fd, buf + got, n - got);
        if (k <= 0)
            return -1;
        got += (size_t)k;
    }
    return 0;
}

/* Reads one MQTT packet; returns its first byte or -1. */
static int read_packet(int fd, unsigned char *body, size_t cap, size_t *len) {
    unsigned char b;
    size_t n = 0;
    int shift = 0;
    if (read_full(fd, &b, 1) != 0)
        return -1;
    int first = b;
    do {
        unsigned char c;
        if (read_full(fd, &c, 1) != 0 || shift > 21)
            return -1;
        n |= (size_t)(c & 0x7f) << shift;
        shift += 7;
        b = c;
    } while (b & 0x80);
    if (n > cap)
        return -1;
    if (n && read_full(fd, body, n) != 0)
        return -1;
    *len = n;
    return first;
}

static int write_all(int fd, const unsigned char *p, size_t n) {
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Reads until the client closes (or the I/O timeout). */
static void drain(int fd) {
    unsigned char body[4096];
    size_t len;
    while (read_packet(fd, body, sizeof body, &len) >= 0) {
    }
}

static void *fb_main(void *arg) {
    fake_broker *fb = arg;
    static const unsigned char connack_ok[] = {0x20, 0x03, 0x00, 0x00, 0x00};
    static const unsigned char connack_87[] = {0x20, 0x03, 0x00, 0x87, 0x00};
    static const unsigned char disconnect_8e[] = {0xe0, 0x02, 0x8e, 0x00};
    unsigned char body[4096];
    size_t len;
    int fd, type;
    struct pollfd p = {fb->listen_fd, POLLIN, 0};

    if (poll(&p, 1, fb_io_timeout_ms()) <= 0 || (fd = accept(fb->listen_fd, NULL, NULL)) < 0) {
        snprintf(fb->error, sizeof fb->error, "no connection from the client");
        return NULL;
    }
    type = read_packet(fd, body, sizeof body, &len);
    if (type != 0x10) {
        snprintf(fb->error, sizeof fb->error, "expected CONNECT, got first byte %d", type);
        close(fd);
        return NULL;
    }
    if (len < 7 || body[6] != 5)
        snprintf(fb->error, sizeof fb->error, "CONNECT is not MQTT v5 (len %zu)", len);

    switch (fb->script) {
    case FB_DISCONNECT_8E:
        write_all(fd, connack_ok, sizeof connack_ok);
        write_all(fd, disconnect_8e, sizeof disconnect_8e);
        break; /* and close: the server closes after DISCONNECT */
    case FB_REFUSE_87:
        write_all(fd, connack_87, sizeof connack_87);
        break; /* and close, as a server does after a refusal */
    case FB_CLOSE_AFTER_PUBLISH:
        write_all(fd, connack_ok, sizeof connack_ok);
        do
            type = read_packet(fd, body, sizeof body, &len);
        while (type >= 0 && (type & 0xf0) != 0x30);
        if (type < 0)
            snprintf(fb->error, sizeof fb->error, "no PUBLISH arrived");
        break;
    case FB_SILENT:
        drain(fd);
        break;
    case FB_NO_PUBACK:
        write_all(fd, connack_ok, sizeof connack_ok);
        drain(fd);
        break;
    }
    close(fd);
    return NULL;
}

static bool fb_start(fake_broker *fb, enum fb_script script) {
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    memset(fb, 0, sizeof *fb);
    fb->script = script;
    fb->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fb->listen_fd < 0)
        return false;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (bind(fb->listen_fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fb->listen_fd, 4) != 0 ||
        getsockname(fb->listen_fd, (struct sockaddr *)&a, &alen) != 0) {
        close(fb->listen_fd);
        return false;
    }
    fb->port = ntohs(a.sin_port);
    if (pthread_create(&fb->thread, NULL, fb_main, fb) != 0) {
        close(fb->listen_fd);
        return false;
    }
    fb->started = true;
    return true;
}

/* Joins the thread; returns false (and prints) if the script saw a problem. */
static bool fb_stop(fake_broker *fb) {
    if (!fb->started)
        return true;
    pthread_join(fb->thread, NULL);
    close(fb->listen_fd);
    fb->started = false;
    if (fb->error[0]) {
        fprintf(stderr, "fake broker: %s\n", fb->error);
        return false;
    }
    return true;
}

static const char *fb_url(const fake_broker *fb) {
    static char url[64];
    snprintf(url, sizeof url, "mqtt://127.0.0.1:%d", fb->port);
    return url;
}

/* ------------------------------------------------------------------ */

int main(int argc, char **argv) {
    const char *url = test_url(argc, argv);
    const uint32_t long_ms = (uint32_t)(30000 * timeout_scale());
    events_t ea, eb, ew, es, ef;
    mqtt_client *a = NULL, *b = NULL, *w = NULL, *s = NULL, *f = NULL, *anon = NULL;
    fake_broker fb = {0};
    int rc;
    double t0;

    events_init(&ea);
    events_init(&eb);
    events_init(&ew);
    events_init(&es);
    events_init(&ef);

    /* ---- session takeover on the real broker ---- */
    a = client_with_events("dup-id", &ea, long_ms, long_ms);
    b = client_with_events("dup-id", &eb, long_ms, long_ms);
    CHECK(a && b, "client creation failed");
    CHECK_RC(mqtt_connect(a, url), MQTT5C_OK);
    CHECK(sync_wait_count(&ea.s, &ea.connected, 1, 10), "A: no CONNECTED event");
    CHECK_RC(mqtt_connect(b, url), MQTT5C_OK);
    CHECK(sync_wait_count(&ea.s, &ea.disconnected, 1, 10), "A: no DISCONNECTED event after the session takeover");
    rc = last_disconnect_reason(&ea);
    TEST_LOG("takeover: A disconnected with reason %d (0x%02x)", rc, (unsigned)rc);
    CHECK(rc == 0x8e || rc >= 0x80 || rc < 0,
          "A's DISCONNECTED reason is 0x%02x: a lost connection must not look like a normal disconnect", rc);
    rc = mqtt_publish(a, "takeover/a", "x", 1, MQTT5C_QOS1, false, NULL);
    CHECK(lost(rc), "publish QoS 1 on the dropped client returned %d (%s)", rc, test_strerror(rc));
    rc = mqtt_publish(a, "takeover/a", "x", 1, MQTT5C_QOS0, false, NULL);
    CHECK(lost(rc), "publish QoS 0 on the dropped client returned %d (%s)", rc, test_strerror(rc));
    rc = mqtt_subscribe(a, "takeover/#", MQTT5C_QOS1, NULL);
    CHECK(lost(rc), "subscribe on the dropped client returned %d (%s)", rc, test_strerror(rc));
    /* B, the new owner of the id, works. */
    CHECK_RC(mqtt_subscribe(b, "takeover/#", MQTT5C_QOS1, NULL), 1);
    CHECK_RC(mqtt_publish(b, "takeover/b", "b", 1, MQTT5C_QOS1, false, NULL), 0);
    CHECK(sync_wait_count(&eb.s, &eb.messages, 1, 10), "B did not receive its own message");
    CHECK(sync_get(&eb.s, &eb.disconnected) == 0, "B was disconnected too");
    CHECK_RC(mqtt_disconnect(b, 0, NULL), MQTT5C_OK);
    TEST_LOG("session takeover ok");

    /* ---- CONNACK refusal by the real broker ---- */
    anon = client_with_events("", &ef, long_ms, long_ms);
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
    sync_destroy(&ef.s);
    events_init(&ef);

    /* ---- will message on DISCONNECT 0x04 ---- */
    s = client_with_events("will-sub", &es, long_ms, long_ms);
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
        CHECK_RC(mqtt_set_connection_callback(w, on_connection, &ew), MQTT5C_OK);
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
        f = client_with_events("refused", &ef, long_ms, long_ms);
        CHECK(f != NULL, "client creation failed");
        rc = mqtt_connect(f, closed_url);
        CHECK(rc == MQTT5C_ERR_IO, "connect to a closed port returned %d (%s), want MQTT5C_ERR_IO", rc,
              test_strerror(rc));
        CHECK(mqtt_last_error()[0] != '\0', "no mqtt_last_error after a refused connection");
        TEST_LOG("closed port: %s", test_last_error());
        mqtt_client_free(f);
        f = NULL;
    }

    /* ---- scripted broker: DISCONNECT 0x8E ---- */
    sync_destroy(&ef.s);
    events_init(&ef);
    CHECK(fb_start(&fb, FB_DISCONNECT_8E), "fake broker start");
    f = client_with_events("fake-8e", &ef, long_ms, long_ms);
    CHECK(f != NULL, "client creation failed");
    CHECK_RC(mqtt_connect(f, fb_url(&fb)), MQTT5C_OK);
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
    CHECK(fb_stop(&fb), "fake broker script failed");
    TEST_LOG("server DISCONNECT 0x8E ok");

    /* ---- scripted broker: CONNACK 0x87 ---- */
    sync_destroy(&ef.s);
    events_init(&ef);
    CHECK(fb_start(&fb, FB_REFUSE_87), "fake broker start");
    f = client_with_events("fake-87", &ef, long_ms, long_ms);
    CHECK(f != NULL, "client creation failed");
    CHECK_RC(mqtt_connect(f, fb_url(&fb)), 0x87);
    mqtt_client_free(f);
    f = NULL;
    CHECK(sync_get(&ef.s, &ef.connected) == 0, "CONNECTED fired for a refused connection");
    CHECK(fb_stop(&fb), "fake broker script failed");
    TEST_LOG("CONNACK 0x87 ok");

    /* ---- scripted broker: socket closed while a QoS 1 publish waits ---- */
    sync_destroy(&ef.s);
    events_init(&ef);
    CHECK(fb_start(&fb, FB_CLOSE_AFTER_PUBLISH), "fake broker start");
    f = client_with_events("fake-close", &ef, long_ms, long_ms);
    CHECK(f != NULL, "client creation failed");
    CHECK_RC(mqtt_connect(f, fb_url(&fb)), MQTT5C_OK);
    CHECK_RC(mqtt_publish(f, "x", "x", 1, MQTT5C_QOS1, false, NULL), MQTT5C_ERR_CONNECTION_LOST);
    CHECK(sync_wait_count(&ef.s, &ef.disconnected, 1, 10), "no DISCONNECTED after the socket closed");
    rc = mqtt_publish(f, "x", "x", 1, MQTT5C_QOS1, false, NULL);
    CHECK(lost(rc), "publish after the socket closed returned %d (%s)", rc, test_strerror(rc));
    mqtt_client_free(f);
    f = NULL;
    CHECK(fb_stop(&fb), "fake broker script failed");
    TEST_LOG("socket closed ok");

    /* ---- scripted broker: no CONNACK ---- */
    sync_destroy(&ef.s);
    events_init(&ef);
    CHECK(fb_start(&fb, FB_SILENT), "fake broker start");
    f = client_with_events("fake-silent", &ef, 300, long_ms);
    CHECK(f != NULL, "client creation failed");
    t0 = now_s();
    CHECK_RC(mqtt_connect(f, fb_url(&fb)), MQTT5C_ERR_TIMEOUT);
    CHECK(now_s() - t0 < 5 * timeout_scale(), "connect timeout of 300 ms took %.1f s", now_s() - t0);
    mqtt_client_free(f);
    f = NULL;
    CHECK(fb_stop(&fb), "fake broker script failed");
    TEST_LOG("connect timeout ok");

    /* ---- scripted broker: no PUBACK ---- */
    sync_destroy(&ef.s);
    events_init(&ef);
    CHECK(fb_start(&fb, FB_NO_PUBACK), "fake broker start");
    f = client_with_events("fake-nopuback", &ef, long_ms, 300);
    CHECK(f != NULL, "client creation failed");
    CHECK_RC(mqtt_connect(f, fb_url(&fb)), MQTT5C_OK);
    t0 = now_s();
    CHECK_RC(mqtt_publish(f, "x", "x", 1, MQTT5C_QOS1, false, NULL), MQTT5C_ERR_TIMEOUT);
    CHECK(now_s() - t0 < 5 * timeout_scale(), "operation timeout of 300 ms took %.1f s", now_s() - t0);
    mqtt_client_free(f);
    f = NULL;
    CHECK(fb_stop(&fb), "fake broker script failed");
    TEST_LOG("operation timeout ok");

cleanup:
    mqtt_client_free(f);
    fb_stop(&fb);
    mqtt_client_free(anon);
    mqtt_client_free(a);
    mqtt_client_free(b);
    mqtt_client_free(w);
    mqtt_client_free(s);
    sync_destroy(&ea.s);
    sync_destroy(&eb.s);
    sync_destroy(&ew.s);
    sync_destroy(&es.s);
    sync_destroy(&ef.s);
    if (!test_failed)
        TEST_LOG("test_disconnect: PASS");
    return test_failed;
}

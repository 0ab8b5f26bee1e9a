/*
 * Keep-alive and mqtt_disconnect against a broker that goes silent while a
 * publisher is blocked in a write (issue 7, defect 5). The fault is real:
 * the broker process is stopped with SIGSTOP (the driver passes its pid in
 * MQTT_TEST_BROKER_PID) and resumed with SIGCONT.
 *
 * 1. Keep-alive 2 s, automatic reconnection on. The broker is stopped and a
 *    publisher thread floods 8 MiB QoS 0 messages until a write blocks (the
 *    socket buffers fill up). Within 1.5 x keep-alive of the stop (plus a
 *    margin for slow machines): DISCONNECTED with MQTT5C_ERR_TIMEOUT, the
 *    blocked mqtt_publish returns MQTT5C_ERR_CONNECTION_LOST and
 *    mqtt_is_connected() is 0. Once the broker runs again the client is
 *    back by itself, a QoS 1 publish goes through, and mqtt_disconnect
 *    returns at once.
 * 2. Keep-alive 0 (mosquitto makes it 65535 s with Server Keep Alive:
 *    nothing watches the broker in time), connect timeout 2 s. The broker
 *    is stopped and one 64 MiB publish blocks in its write (the client's
 *    socket is no longer writable). mqtt_disconnect waits for the writer at
 *    most the connect timeout, then closes the connection anyway: it
 *    returns MQTT5C_ERR_TIMEOUT, and the blocked publish returns
 *    MQTT5C_ERR_CONNECTION_LOST.
 */
#include "test_common.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/types.h>

#define KEEP_ALIVE_S 2
#define CONNECT_TIMEOUT_S 2.0
/* For a slow machine (scaled under valgrind). */
#define MARGIN_S 2.0
#define FLOOD_LEN ((size_t)8 << 20)
#define BIG_LEN ((size_t)64 << 20)

static pid_t broker_pid;
static bool broker_stopped;

static bool stop_broker(void) {
    if (kill(broker_pid, SIGSTOP) != 0)
        return false;
    broker_stopped = true;
    return true;
}

static void resume_broker(void) {
    if (broker_stopped && kill(broker_pid, SIGCONT) == 0)
        broker_stopped = false;
}

typedef struct {
    sync_t s;
    long connected;
    long disconnected;
    int disconnect_reason;
    double disconnected_at;
} events_t;

static void on_connection(void *ud, int event, int reason) {
    events_t *e = ud;
    sync_lock(&e->s);
    if (event == MQTT5C_EVENT_CONNECTED)
        e->connected++;
    if (event == MQTT5C_EVENT_DISCONNECTED && e->disconnected++ == 0) {
        e->disconnect_reason = reason;
        e->disconnected_at = now_s();
    }
    sync_unlock_notify(&e->s);
}

/* A thread publishing `payload` at QoS 0: once, or until a call fails or
 * `stop` is set. */
typedef struct {
    sync_t s;
    mqtt_client *client;
    const char *payload;
    size_t len;
    bool once;
    bool stop;
    long published;
    long done;
    int rc;
    pthread_t thread;
    bool started;
} publisher_t;

static void *publish_thread(void *arg) {
    publisher_t *p = arg;
    int rc;
    bool again;
    do {
        rc = mqtt_publish(p->client, "ka/flood", p->payload, p->len, MQTT5C_QOS0, false, NULL);
        sync_lock(&p->s);
        if (rc == MQTT5C_OK)
            p->published++;
        again = rc == MQTT5C_OK && !p->once && !p->stop;
        sync_unlock_notify(&p->s);
    } while (again);
    sync_lock(&p->s);
    p->rc = rc;
    p->done = 1;
    sync_unlock_notify(&p->s);
    return NULL;
}

static bool publisher_start(publisher_t *p, mqtt_client *c, const char *payload, size_t len, bool once) {
    memset(p, 0, sizeof *p);
    sync_init(&p->s);
    p->client = c;
    p->payload = payload;
    p->len = len;
    p->once = once;
    p->started = pthread_create(&p->thread, NULL, publish_thread, p) == 0;
    return p->started;
}

/* Ends the thread (after a failure too: the broker runs again by then, so
 * a blocked write goes through) and joins it. */
static void publisher_end(publisher_t *p) {
    if (!p->started)
        return;
    sync_lock(&p->s);
    p->stop = true;
    sync_unlock(&p->s);
    pthread_join(p->thread, NULL);
    sync_destroy(&p->s);
    p->started = false;
}

static mqtt_client *client_new(const char *id, uint16_t keep_alive, double connect_timeout_s,
                               bool reconnect, events_t *e) {
    mqtt_options *o = mqtt_options_new();
    mqtt_client *c = NULL;
    if (!o)
        return NULL;
    if (mqtt_options_set_client_id(o, id) == MQTT5C_OK &&
        mqtt_options_set_keep_alive(o, keep_alive) == MQTT5C_OK &&
        mqtt_options_set_connect_timeout(o, (uint32_t)(connect_timeout_s * 1000 * timeout_scale())) ==
            MQTT5C_OK &&
        (!reconnect || mqtt_options_set_auto_reconnect(o, 100, 1000) == MQTT5C_OK))
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

/* Whether one of this process's sockets to the broker cannot take more
 * bytes now: a write on it is blocked (its send buffer is full). */
static bool socket_to_broker_full(int port) {
    for (int fd = 3; fd < 1024; fd++) {
        struct sockaddr_in peer;
        socklen_t len = sizeof peer;
        if (getpeername(fd, (struct sockaddr *)&peer, &len) != 0 || peer.sin_family != AF_INET ||
            ntohs(peer.sin_port) != port)
            continue;
        struct pollfd p = {fd, POLLOUT, 0};
        if (poll(&p, 1, 0) == 0)
            return true;
    }
    return false;
}

/* Waits (checking every 10 ms, at most `seconds`, scaled) until a write to
 * the broker is blocked. */
static bool wait_blocked_write(int port, double seconds) {
    double until = now_s() + seconds * timeout_scale();
    while (!socket_to_broker_full(port)) {
        if (now_s() > until)
            return false;
        sleep_ms(10);
    }
    return true;
}

int main(int argc, char **argv) {
    const char *url = test_url(argc, argv);
    const char *pid_env = getenv("MQTT_TEST_BROKER_PID");
    int port = atoi(argc > 1 ? argv[1] : getenv("MQTT_TEST_PORT"));
    double scale = timeout_scale();
    char *payload = NULL;
    mqtt_client *c = NULL;
    events_t ev;
    publisher_t pub = {0};
    memset(&ev, 0, sizeof ev);
    sync_init(&ev.s);

    CHECK(pid_env && atoi(pid_env) > 0, "MQTT_TEST_BROKER_PID not set");
    broker_pid = (pid_t)atoi(pid_env);
    payload = malloc(BIG_LEN);
    CHECK(payload, "out of memory");
    memset(payload, 'x', BIG_LEN);

    /* 1: keep-alive with a publisher blocked in a write. */
    c = client_new("ka-flood", KEEP_ALIVE_S, 10.0, true, &ev);
    CHECK(c, "client");
    CHECK_RC(mqtt_connect(c, url), MQTT5C_OK);
    CHECK(stop_broker(), "SIGSTOP %d failed", (int)broker_pid);
    double stopped_at = now_s();
    CHECK(publisher_start(&pub, c, payload, FLOOD_LEN, false), "pthread_create");
    double limit = 1.5 * KEEP_ALIVE_S + MARGIN_S;
    CHECK(sync_wait_count(&ev.s, &ev.disconnected, 1, limit),
          "no DISCONNECTED within %.1f s of stopping the broker (%ld publishes went through)",
          limit * scale, sync_get(&pub.s, &pub.published));
    double took = ev.disconnected_at - stopped_at;
    TEST_LOG("DISCONNECTED %.2f s after the stop (keep-alive %d s), reason %d, %ld x 8 MiB written",
             took, KEEP_ALIVE_S, ev.disconnect_reason, sync_get(&pub.s, &pub.published));
    CHECK(ev.disconnect_reason == MQTT5C_ERR_TIMEOUT, "reason %d (%s), want MQTT5C_ERR_TIMEOUT",
          ev.disconnect_reason, test_strerror(ev.disconnect_reason));
    CHECK(sync_wait_count(&pub.s, &pub.done, 1, MARGIN_S), "the blocked publish did not return");
    CHECK(pub.rc == MQTT5C_ERR_CONNECTION_LOST, "blocked publish returned %d (%s)", pub.rc,
          test_strerror(pub.rc));
    CHECK(mqtt_is_connected(c) == 0, "still connected after the keep-alive timeout");
    resume_broker();
    publisher_end(&pub);
    CHECK(sync_wait_count(&ev.s, &ev.connected, 2, 30), "no reconnection once the broker runs again");
    int rc = mqtt_publish(c, "ka/after", "ok", 2, MQTT5C_QOS1, false, NULL);
    CHECK(publish_ok(rc), "QoS 1 publish after reconnecting: %d (%s)", rc, test_strerror(rc));
    double t = now_s();
    CHECK_RC(mqtt_disconnect(c, 0, NULL), MQTT5C_OK);
    CHECK(now_s() - t < MARGIN_S * scale, "mqtt_disconnect took %.2f s", now_s() - t);
    mqtt_client_free(c);
    c = NULL;

    /* 2: mqtt_disconnect while a write is blocked and nothing watches. */
    sync_lock(&ev.s);
    ev.connected = ev.disconnected = 0;
    sync_unlock(&ev.s);
    c = client_new("ka-none", 0, CONNECT_TIMEOUT_S, false, &ev);
    CHECK(c, "client");
    CHECK_RC(mqtt_connect(c, url), MQTT5C_OK);
    CHECK(stop_broker(), "SIGSTOP %d failed", (int)broker_pid);
    CHECK(publisher_start(&pub, c, payload, BIG_LEN, true), "pthread_create");
    CHECK(wait_blocked_write(port, 30), "the 64 MiB publish never blocked");
    t = now_s();
    rc = mqtt_disconnect(c, 0, NULL);
    double waited = now_s() - t;
    TEST_LOG("mqtt_disconnect behind a blocked write: %d after %.2f s (bound %.1f s)", rc, waited,
             CONNECT_TIMEOUT_S * scale);
    CHECK(rc == MQTT5C_ERR_TIMEOUT, "mqtt_disconnect returned %d (%s)", rc, test_strerror(rc));
    CHECK(waited < (CONNECT_TIMEOUT_S + MARGIN_S) * scale, "mqtt_disconnect took %.2f s", waited);
    CHECK(sync_wait_count(&pub.s, &pub.done, 1, MARGIN_S), "the blocked publish did not return");
    CHECK(pub.rc == MQTT5C_ERR_CONNECTION_LOST, "blocked publish returned %d (%s)", pub.rc,
          test_strerror(pub.rc));
    CHECK(mqtt_is_connected(c) == 0, "still connected after mqtt_disconnect");
    TEST_LOG("ok");

cleanup:
    resume_broker();
    publisher_end(&pub);
    mqtt_client_free(c);
    free(payload);
    sync_destroy(&ev.s);
    return test_failed;
}

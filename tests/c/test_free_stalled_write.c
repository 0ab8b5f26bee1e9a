/*
 * A QoS 0 mqtt_publish half written (it starts on the caller's thread,
 * the socket takes part of it, the rest waits for a broker that stopped
 * reading), and meanwhile another thread:
 *  - frees the client: mqtt_client_free returns promptly, the publish
 *    returns an error, nothing touches freed memory (valgrind);
 *  - disconnects: mqtt_disconnect returns within its bound (the keep-alive,
 *    2 s here: the DISCONNECT cannot get past the half-written PUBLISH),
 *    the publish returns an error, the client is freed cleanly.
 * The broker runs in this program: CONNACK, then it never reads again.
 */
#include "test_common.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define BIG (32u << 20)

static struct {
    sync_t s;
    int conn_fd; /* the accepted connection, -1 before */
    bool publish_done;
    int publish_rc;
} st;

static int listen_fd, port;

/* Accepts one connection, reads its CONNECT, answers CONNACK; never reads
 * again (the connection is closed by the main thread). */
static void *deaf_broker(void *arg) {
    (void)arg;
    static const unsigned char connack[] = {0x20, 0x03, 0x00, 0x00, 0x00};
    unsigned char buf[512];
    size_t len = 0;
    int fd = accept(listen_fd, NULL, NULL);
    if (fd < 0)
        return NULL;
    for (;;) {
        ssize_t k = read(fd, buf + len, sizeof buf - len);
        if (k <= 0) {
            close(fd);
            return NULL;
        }
        len += (size_t)k;
        size_t n = 0, i = 1;
        int shift = 0;
        bool whole = false;
        while (i < len) {
            n |= (size_t)(buf[i] & 0x7f) << shift;
            shift += 7;
            if (!(buf[i++] & 0x80)) {
                whole = i + n <= len;
                break;
            }
        }
        if (whole)
            break;
    }
    if (write(fd, connack, sizeof connack) != (ssize_t)sizeof connack) {
        close(fd);
        return NULL;
    }
    sync_lock(&st.s);
    st.conn_fd = fd;
    sync_unlock_notify(&st.s);
    return NULL;
}

static void *publisher(void *arg) {
    mqtt_client *c = arg;
    char *payload = malloc(BIG);
    int rc = -1000;
    if (payload) {
        memset(payload, 'x', BIG);
        rc = mqtt_publish(c, "stalled/big", payload, BIG, MQTT5C_QOS0, false, NULL);
        free(payload);
    }
    sync_lock(&st.s);
    st.publish_rc = rc;
    st.publish_done = true;
    sync_unlock_notify(&st.s);
    return NULL;
}

/* Waits until the broker's socket holds at least `bytes` unread (its
 * receive window does not grow while it does not read): the publish is
 * being written and cannot finish. */
static bool stalled(int fd, int bytes) {
    double until = now_s() + 20 * timeout_scale();
    while (now_s() < until) {
        int n = 0;
        if (ioctl(fd, FIONREAD, &n) == 0 && n >= bytes)
            return true;
        sleep_ms(10);
    }
    return false;
}

static bool listen_start(void) {
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(listen_fd, 4) != 0 ||
        getsockname(listen_fd, (struct sockaddr *)&a, &alen) != 0)
        return false;
    port = ntohs(a.sin_port);
    return true;
}

/* One round: a client whose QoS 0 publish stalls, then `disconnect` (else
 * free) from this thread. */
static int round_trip(bool disconnect) {
    pthread_t broker, pub;
    bool broker_started = false, pub_started = false;
    mqtt_client *c = NULL;
    mqtt_options *o = NULL;
    char url[64];

    sync_lock(&st.s);
    st.conn_fd = -1;
    st.publish_done = false;
    st.publish_rc = -1000;
    sync_unlock(&st.s);
    CHECK(pthread_create(&broker, NULL, deaf_broker, NULL) == 0, "pthread_create");
    broker_started = true;
    snprintf(url, sizeof url, "mqtt://127.0.0.1:%d", port);
    o = mqtt_options_new();
    CHECK(o != NULL, "options");
    CHECK_RC(mqtt_options_set_keep_alive(o, 2), MQTT5C_OK);
    c = mqtt_client_new(o);
    CHECK(c != NULL, "client: %s", test_last_error());
    CHECK_RC(mqtt_connect(c, url), MQTT5C_OK);
    pthread_join(broker, NULL);
    broker_started = false;
    CHECK(st.conn_fd >= 0, "the broker has no connection");
    CHECK(pthread_create(&pub, NULL, publisher, c) == 0, "pthread_create");
    pub_started = true;
    CHECK(stalled(st.conn_fd, 32 << 10), "the publish did not start writing");
    double t0 = now_s();
    if (disconnect) {
        int rc = mqtt_disconnect(c, 0, NULL);
        double took = now_s() - t0;
        CHECK(took < 2 + 5 * timeout_scale(), "mqtt_disconnect took %.1f s (rc %d)", took, rc);
        CHECK(sync_wait_flag(&st.s, &st.publish_done, 10 * timeout_scale()),
              "the publish did not return after mqtt_disconnect");
        mqtt_client_free(c);
        c = NULL;
    } else {
        mqtt_client_free(c);
        c = NULL;
        double took = now_s() - t0;
        CHECK(took < 5 * timeout_scale(), "mqtt_client_free took %.1f s", took);
    }
    pthread_join(pub, NULL);
    pub_started = false;
    CHECK(st.publish_rc < 0, "the stalled publish returned %d (%s)", st.publish_rc, test_strerror(st.publish_rc));

cleanup:
    if (pub_started && c)
        mqtt_client_free(c), c = NULL;
    if (pub_started)
        pthread_join(pub, NULL);
    if (c)
        mqtt_client_free(c);
    mqtt_options_free(o);
    if (broker_started)
        pthread_join(broker, NULL);
    if (st.conn_fd >= 0)
        close(st.conn_fd);
    st.conn_fd = -1;
    return test_failed;
}

int main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    sync_init(&st.s);
    st.conn_fd = -1;
    CHECK(listen_start(), "listen");
    for (int i = 0; i < 2 && !test_failed; i++) {
        if (round_trip(false) == 0)
            round_trip(true);
    }
cleanup:
    close(listen_fd);
    sync_destroy(&st.s);
    mqtt_global_cleanup();
    return test_failed ? 1 : 0;
}

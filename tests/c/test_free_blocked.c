/*
 * mqtt_client_free while other threads are inside blocking calls on the
 * same client (as a finalizer of a garbage-collected binding may do): the
 * calls must return promptly with an error, free must wait until they
 * have left, and nothing may touch freed memory (valgrind).
 *
 * Brokers that never answer, run in this program (a poll loop on its own
 * thread), which count the packets they receive, so the test frees only
 * once every call is known to be waiting inside the library:
 *  - "mute": CONNACK, then never anything: threads blocked in mqtt_publish
 *    QoS 1 (no PUBACK), mqtt_subscribe (no SUBACK), mqtt_request (no
 *    SUBACK for its response topic) and mqtt_reauthenticate (no AUTH);
 *  - "silent": never answers CONNECT: a thread blocked in mqtt_connect;
 *  - "challenge": answers CONNECT with an AUTH challenge; the auth callback
 *    then calls mqtt_connect on its own client, which waits for the
 *    connecting lock that the first mqtt_connect holds while it waits for
 *    the callback (a deadlock only freeing ends). That call may also start
 *    only while free runs, which is allowed for calls from callbacks.
 * The operation and connect timeouts are far longer than the test, so only
 * mqtt_client_free can make these calls return. A call returns an error:
 * negative, or a reason code >= 0x80 (the outer connect may end with the
 * auth callback's abort when it completes while free begins). Repeated
 * several times.
 */
#include "test_common.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#define ROUNDS 5
#define MAX_CONNS 32

/* ------------------------------------------------------------------ */
/* never-answering brokers                                             */

enum mode { MUTE, SILENT, CHALLENGE };

typedef struct {
    int fd;
    unsigned char buf[8192];
    size_t len;
} conn_t;

typedef struct {
    enum mode mode;
    int listen_fd, port;
    int stop_pipe[2];
    pthread_t thread;
    conn_t conns[MAX_CONNS];
    int nconns;
    /* Packets received, by type (the first byte's high nibble), under st.s. */
    long packets[16];
} broker_t;

static struct {
    sync_t s;
} st;

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

/* Handles the whole packets buffered on `c`; false when it must close. */
static bool handle(broker_t *b, conn_t *c) {
    static const unsigned char connack[] = {0x20, 0x03, 0x00, 0x00, 0x00};
    /* AUTH 0x18 with Authentication Method "TOY". */
    static const unsigned char challenge[] = {0xf0, 0x08, 0x18, 0x06, 0x15, 0x00, 0x03, 'T', 'O', 'Y'};
    for (;;) {
        size_t n = 0, i = 1;
        int shift = 0;
        if (c->len < 2)
            return true;
        do {
            if (i >= c->len)
                return true;
            n |= (size_t)(c->buf[i] & 0x7f) << shift;
            shift += 7;
        } while (c->buf[i++] & 0x80 && shift < 28);
        if (i + n > sizeof c->buf)
            return false;
        if (i + n > c->len)
            return true;
        int type = c->buf[0] >> 4;
        sync_lock(&st.s);
        b->packets[type]++;
        sync_unlock_notify(&st.s);
        if (type == 1 && b->mode == MUTE && write_all(c->fd, connack, sizeof connack) != 0)
            return false;
        if (type == 1 && b->mode == CHALLENGE && write_all(c->fd, challenge, sizeof challenge) != 0)
            return false;
        memmove(c->buf, c->buf + i + n, c->len - i - n);
        c->len -= i + n;
    }
}

static void *broker_main(void *arg) {
    broker_t *b = arg;
    for (;;) {
        struct pollfd p[MAX_CONNS + 2];
        p[0] = (struct pollfd){b->stop_pipe[0], POLLIN, 0};
        p[1] = (struct pollfd){b->listen_fd, POLLIN, 0};
        for (int i = 0; i < b->nconns; i++)
            p[i + 2] = (struct pollfd){b->conns[i].fd, POLLIN, 0};
        if (poll(p, (nfds_t)b->nconns + 2, -1) < 0 && errno != EINTR)
            break;
        if (p[0].revents)
            break;
        for (int i = b->nconns - 1; i >= 0; i--) {
            conn_t *c = &b->conns[i];
            if (!p[i + 2].revents)
                continue;
            ssize_t k = read(c->fd, c->buf + c->len, sizeof c->buf - c->len);
            if (k > 0)
                c->len += (size_t)k;
            if (k <= 0 || !handle(b, c)) {
                close(c->fd);
                b->conns[i] = b->conns[--b->nconns];
            }
        }
        if (p[1].revents && b->nconns < MAX_CONNS) {
            int fd = accept(b->listen_fd, NULL, NULL);
            if (fd >= 0)
                b->conns[b->nconns++] = (conn_t){.fd = fd};
        }
    }
    for (int i = 0; i < b->nconns; i++)
        close(b->conns[i].fd);
    return NULL;
}

static bool broker_start(broker_t *b, enum mode mode) {
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    memset(b, 0, sizeof *b);
    b->mode = mode;
    if (pipe(b->stop_pipe) != 0)
        return false;
    b->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (b->listen_fd < 0 || bind(b->listen_fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(b->listen_fd, 16) != 0 || getsockname(b->listen_fd, (struct sockaddr *)&a, &alen) != 0)
        return false;
    b->port = ntohs(a.sin_port);
    return pthread_create(&b->thread, NULL, broker_main, b) == 0;
}

static void broker_stop(broker_t *b) {
    if (write(b->stop_pipe[1], "x", 1) == 1)
        pthread_join(b->thread, NULL);
    close(b->listen_fd);
    close(b->stop_pipe[0]);
    close(b->stop_pipe[1]);
}

static const char *broker_url(const broker_t *b, char *buf, size_t n) {
    snprintf(buf, n, "mqtt://127.0.0.1:%d", b->port);
    return buf;
}

/* Waits until broker `b` received at least `want` packets of `type`. */
static bool wait_packets(broker_t *b, int type, long want) {
    return sync_wait_count(&st.s, &b->packets[type], want, 20);
}

/* ------------------------------------------------------------------ */
/* the blocked calls                                                   */

enum call { PUBLISH, SUBSCRIBE, REQUEST, REAUTH, CONNECT };

typedef struct {
    enum call call;
    mqtt_client *client;
    const char *url;
    pthread_t thread;
    int rc;
    long done;
} blocked_t;

static void *blocked_main(void *arg) {
    blocked_t *b = arg;
    mqtt_message *response = NULL;
    int rc = -1000;
    switch (b->call) {
    case PUBLISH:
        rc = mqtt_publish(b->client, "fb/q1", "x", 1, MQTT5C_QOS1, false, NULL);
        break;
    case SUBSCRIBE:
        rc = mqtt_subscribe(b->client, "fb/#", MQTT5C_QOS1, NULL);
        break;
    case REQUEST:
        rc = mqtt_request(b->client, "fb/req", "x", 1, MQTT5C_QOS0, NULL, 0, &response);
        mqtt_message_free(response);
        break;
    case REAUTH:
        rc = mqtt_reauthenticate(b->client, "again", 5, NULL);
        break;
    case CONNECT:
        rc = mqtt_connect(b->client, b->url);
        break;
    }
    sync_lock(&st.s);
    b->rc = rc;
    b->done = 1;
    sync_unlock_notify(&st.s);
    return NULL;
}

static bool start_call(blocked_t *b, enum call call, mqtt_client *client, const char *url) {
    memset(b, 0, sizeof *b);
    b->call = call;
    b->client = client;
    b->url = url;
    b->rc = -1000;
    return pthread_create(&b->thread, NULL, blocked_main, b) == 0;
}

/* The challenge broker's auth callback: connects its own client again. */
typedef struct {
    mqtt_client *client;
    const char *url;
    long calls, returned;
    int inner_rc;
} challenge_t;

static int on_auth(void *ud, int reason, const char *method, const void *data, size_t len,
                   mqtt_auth_response *response) {
    challenge_t *ch = ud;
    (void)reason;
    (void)method;
    (void)data;
    (void)len;
    (void)response;
    sync_add(&st.s, &ch->calls, 1);
    int rc = mqtt_connect(ch->client, ch->url);
    sync_lock(&st.s);
    ch->inner_rc = rc;
    ch->returned = 1;
    sync_unlock_notify(&st.s);
    return 0x80;
}

static mqtt_client *client_new(const char *id, bool auth) {
    mqtt_options *o = mqtt_options_new();
    mqtt_client *c = NULL;
    uint32_t forever = (uint32_t)(600000 * timeout_scale());
    if (o && mqtt_options_set_client_id(o, id) == MQTT5C_OK && mqtt_options_set_connect_timeout(o, forever) == MQTT5C_OK &&
        mqtt_options_set_operation_timeout(o, forever) == MQTT5C_OK &&
        (!auth || mqtt_options_set_auth(o, "TOY", NULL, 0) == MQTT5C_OK))
        c = mqtt_client_new(o);
    mqtt_options_free(o);
    if (!c)
        fprintf(stderr, "creating %s failed: %s\n", id, test_last_error());
    return c;
}

/* Frees `c` and checks it returned promptly. */
static bool free_promptly(mqtt_client *c, const char *what) {
    double t0 = now_s();
    mqtt_client_free(c);
    double took = now_s() - t0;
    if (took > 5 * timeout_scale()) {
        fprintf(stderr, "FAIL: freeing %s took %.1f s\n", what, took);
        return false;
    }
    return true;
}

/* Joins a call's thread; it must have returned an error. */
static bool returned_error(blocked_t *b, const char *what) {
    pthread_join(b->thread, NULL);
    if ((b->rc >= 0 && b->rc < 0x80) || b->rc == -1000) {
        fprintf(stderr, "FAIL: %s returned %d (%s) when its client was freed\n", what, b->rc, test_strerror(b->rc));
        return false;
    }
    return true;
}

static const char *call_names[] = {"mqtt_publish", "mqtt_subscribe", "mqtt_request", "mqtt_reauthenticate",
                                   "mqtt_connect"};

int main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    broker_t mute, silent, challenge;
    bool brokers = false;
    char mute_url[64], silent_url[64], challenge_url[64];
    blocked_t calls[5], outer;
    int ncalls = 0;
    mqtt_client *p = NULL, *q = NULL, *a = NULL;
    challenge_t ch = {0};

    sync_init(&st.s);
    CHECK(broker_start(&mute, MUTE) && broker_start(&silent, SILENT) && broker_start(&challenge, CHALLENGE),
          "starting the brokers");
    brokers = true;
    broker_url(&mute, mute_url, sizeof mute_url);
    broker_url(&silent, silent_url, sizeof silent_url);
    broker_url(&challenge, challenge_url, sizeof challenge_url);

    for (int round = 1; round <= ROUNDS; round++) {
        /* P: four calls waiting for the mute broker. */
        p = client_new("fb-p", true);
        CHECK(p != NULL, "client creation failed");
        CHECK_RC(mqtt_connect(p, mute_url), MQTT5C_OK);
        for (enum call c = PUBLISH; c <= REAUTH; c++) {
            CHECK(start_call(&calls[ncalls], c, p, NULL), "pthread_create");
            ncalls++;
        }
        CHECK(wait_packets(&mute, 3, round) && wait_packets(&mute, 8, 2L * round) && wait_packets(&mute, 15, round),
              "the mute broker did not get the PUBLISH, both SUBSCRIBEs and the AUTH");
        /* Q: a connect waiting for CONNACK. */
        q = client_new("fb-q", false);
        CHECK(q != NULL, "client creation failed");
        CHECK(start_call(&calls[ncalls], CONNECT, q, silent_url), "pthread_create");
        ncalls++;
        CHECK(wait_packets(&silent, 1, round), "the silent broker did not get the CONNECT");
        /* A: a connect waiting for its auth callback, which waits for
         * the connecting lock in a connect of its own. */
        a = client_new("fb-a", true);
        CHECK(a != NULL, "client creation failed");
        memset(&ch, 0, sizeof ch);
        ch.client = a;
        ch.url = challenge_url;
        CHECK_RC(mqtt_set_auth_callback(a, on_auth, &ch), MQTT5C_OK);
        CHECK(start_call(&outer, CONNECT, a, challenge_url), "pthread_create");
        CHECK(sync_wait_count(&st.s, &ch.calls, 1, 20), "the auth callback was not called");

        CHECK(free_promptly(p, "a client with four calls waiting"), "free P");
        p = NULL;
        CHECK(free_promptly(q, "a client with a connect waiting"), "free Q");
        q = NULL;
        CHECK(free_promptly(a, "a client with a connect and its auth callback waiting"), "free A");
        a = NULL;
        CHECK(sync_get(&st.s, &ch.returned) == 1, "mqtt_client_free returned while the auth callback ran");
        CHECK(ch.inner_rc < 0 || ch.inner_rc >= 0x80, "the connect from the auth callback returned %d",
              ch.inner_rc);
        for (int i = 0; i < ncalls; i++)
            CHECK(returned_error(&calls[i], call_names[calls[i].call]), "a call did not fail");
        ncalls = 0;
        CHECK(returned_error(&outer, "mqtt_connect waiting for its auth callback"), "the outer connect did not fail");
        TEST_LOG("round %d: every call returned an error", round);
    }

cleanup:
    /* On failure the calls may still block: give up on them. */
    if (!test_failed && brokers) {
        broker_stop(&mute);
        broker_stop(&silent);
        broker_stop(&challenge);
    }
    sync_destroy(&st.s);
    if (!test_failed)
        TEST_LOG("test_free_blocked: PASS");
    return test_failed;
}

/*
 * Benchmark of libmosquitto (see common.h for usage and output).
 *
 * Used as its documentation recommends for threaded programs:
 * mosquitto_new + MOSQ_OPT_PROTOCOL_VERSION = MQTT_PROTOCOL_V5,
 * mosquitto_connect then mosquitto_loop_start (one network thread per
 * client), results through callbacks. Default socket options (libmosquitto
 * leaves Nagle on unless MOSQ_OPT_TCP_NODELAY is set) and default
 * max_inflight_messages (20). mosquitto_publish never blocks (it queues), so
 * the latency responder publishes from inside on_message, as allowed.
 */
#include "common.h"

#include <mosquitto.h>

static const char *g_host;
static int g_port;
static bool g_nodelay; /* BENCH_TCP_NODELAY=1 (diagnostic only): MOSQ_OPT_TCP_NODELAY on */

/* Per-client state for waiting on CONNACK / SUBACK. */
struct cl {
    struct mosquitto *m;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int connack;  /* -1 until on_connect */
    int granted;  /* -1 until on_subscribe */
    bool disconnected;
    int disconnect_rc;
    void (*on_msg)(struct cl *, const struct mosquitto_message *);
    void *ud;
};

static void mcheck(int rc, const char *what) {
    if (rc != MOSQ_ERR_SUCCESS)
        die("%s: %d %s", what, rc, mosquitto_strerror(rc));
}

static void on_connect(struct mosquitto *m, void *obj, int rc, int flags, const mosquitto_property *p) {
    (void)m, (void)flags, (void)p;
    struct cl *c = obj;
    pthread_mutex_lock(&c->mu);
    c->connack = rc;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static void on_disconnect(struct mosquitto *m, void *obj, int rc, const mosquitto_property *p) {
    (void)m, (void)p;
    struct cl *c = obj;
    pthread_mutex_lock(&c->mu);
    c->disconnected = true;
    c->disconnect_rc = rc;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static void on_subscribe(struct mosquitto *m, void *obj, int mid, int n, const int *granted, const mosquitto_property *p) {
    (void)m, (void)mid, (void)p;
    struct cl *c = obj;
    pthread_mutex_lock(&c->mu);
    c->granted = n == 1 ? granted[0] : 0x80;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static void on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg) {
    (void)m;
    struct cl *c = obj;
    if (c->on_msg)
        c->on_msg(c, msg);
}

/* Waits until *field != -1 (set by a callback) or the connection ended. */
static int wait_field(struct cl *c, int *field, const char *what) {
    pthread_mutex_lock(&c->mu);
    struct timespec dl = deadline_in_ms(WAIT_TIMEOUT_MS);
    while (*field == -1 && !c->disconnected) {
        if (pthread_cond_timedwait(&c->cv, &c->mu, &dl) == ETIMEDOUT) {
            pthread_mutex_unlock(&c->mu);
            die("%s: timed out", what);
        }
    }
    int v = *field;
    bool lost = c->disconnected;
    int lrc = c->disconnect_rc;
    pthread_mutex_unlock(&c->mu);
    if (v == -1 && lost)
        die("%s: connection ended (%d %s)", what, lrc, mosquitto_strerror(lrc));
    return v;
}

static struct cl *new_client(const char *id, void (*on_msg)(struct cl *, const struct mosquitto_message *), void *ud) {
    struct cl *c = calloc(1, sizeof *c);
    if (!c)
        die("out of memory");
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    c->connack = -1;
    c->granted = -1;
    c->on_msg = on_msg;
    c->ud = ud;
    c->m = mosquitto_new(id, true, c);
    if (!c->m)
        die("mosquitto_new: %s", strerror(errno));
    mcheck(mosquitto_int_option(c->m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5), "MOSQ_OPT_PROTOCOL_VERSION");
    if (g_nodelay)
        mcheck(mosquitto_int_option(c->m, MOSQ_OPT_TCP_NODELAY, 1), "MOSQ_OPT_TCP_NODELAY");
    mosquitto_connect_v5_callback_set(c->m, on_connect);
    mosquitto_disconnect_v5_callback_set(c->m, on_disconnect);
    mosquitto_subscribe_v5_callback_set(c->m, on_subscribe);
    mosquitto_message_callback_set(c->m, on_message);
    mcheck(mosquitto_connect(c->m, g_host, g_port, 60), "mosquitto_connect");
    mcheck(mosquitto_loop_start(c->m), "mosquitto_loop_start");
    int rc = wait_field(c, &c->connack, "CONNACK");
    if (rc != 0)
        die("connect refused: %d %s", rc, mosquitto_reason_string(rc));
    return c;
}

static void subscribe(struct cl *c, const char *filter, int qos) {
    c->granted = -1;
    mcheck(mosquitto_subscribe_v5(c->m, NULL, filter, qos, 0, NULL), "mosquitto_subscribe_v5");
    int g = wait_field(c, &c->granted, "SUBACK");
    if (g != qos)
        die("subscribe %s: granted %d", filter, g);
}

static void finish(struct cl *c) {
    mcheck(mosquitto_disconnect_v5(c->m, 0, NULL), "mosquitto_disconnect_v5");
    mcheck(mosquitto_loop_stop(c->m, false), "mosquitto_loop_stop");
    mosquitto_destroy(c->m);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c);
}

/* ---- latency ---------------------------------------------------------- */

static char g_resp_topic[128];
static int g_echo_qos = 1; /* 1 for latency, 0 for echo0 */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long got;
    long responder_errors;
} lat = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, -1, 0};

static void responder_msg(struct cl *c, const struct mosquitto_message *msg) {
    int rc = mosquitto_publish_v5(c->m, NULL, g_resp_topic, msg->payloadlen, msg->payload, g_echo_qos, false, NULL);
    if (rc != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "ERROR %s: responder publish: %d %s\n", g_lib, rc, mosquitto_strerror(rc));
        pthread_mutex_lock(&lat.mu);
        lat.responder_errors++;
        pthread_cond_broadcast(&lat.cv);
        pthread_mutex_unlock(&lat.mu);
    }
}

static void requester_msg(struct cl *c, const struct mosquitto_message *msg) {
    (void)c;
    long seq = parse_payload(msg->payload, (size_t)msg->payloadlen);
    pthread_mutex_lock(&lat.mu);
    lat.got = seq;
    pthread_cond_broadcast(&lat.cv);
    pthread_mutex_unlock(&lat.mu);
}

/*
 * latency: QoS 1 request/echo; echo0: the same at QoS 0 (g_echo_qos). The
 * responder publishes its echo at the same QoS.
 */
static void scenario_latency(const struct args *a, int qos) {
    const char *name = qos ? "latency" : "echo0";
    g_echo_qos = qos;
    char req[128], id[128];
    snprintf(req, sizeof req, "bench/req/%s", a->run);
    snprintf(g_resp_topic, sizeof g_resp_topic, "bench/resp/%s", a->run);
    snprintf(id, sizeof id, "%s-resp", a->run);
    struct cl *resp = new_client(id, responder_msg, NULL);
    subscribe(resp, req, qos);
    snprintf(id, sizeof id, "%s-req", a->run);
    struct cl *rq = new_client(id, requester_msg, NULL);
    subscribe(rq, g_resp_topic, qos);

    int64_t *rtt = calloc((size_t)a->count, sizeof *rtt);
    if (!rtt)
        die("out of memory");
    char payload[PAYLOAD_LEN];
    long done = 0;
    struct usage u = usage_start();
    int64_t start = now_ns();
    for (long i = 0; i < a->count && now_ns() - start < LATENCY_CAP_NS; i++) {
        make_payload(payload, i);
        int64_t t0 = now_ns();
        mcheck(mosquitto_publish_v5(rq->m, NULL, req, sizeof payload, payload, g_echo_qos, false, NULL), "mosquitto_publish_v5");
        pthread_mutex_lock(&lat.mu);
        struct timespec dl = deadline_in_ms(WAIT_TIMEOUT_MS);
        while (lat.got != i && lat.responder_errors == 0) {
            if (pthread_cond_timedwait(&lat.cv, &lat.mu, &dl) == ETIMEDOUT) {
                pthread_mutex_unlock(&lat.mu);
                die("latency: no echo of request %ld within %d ms", i, WAIT_TIMEOUT_MS);
            }
        }
        long errs = lat.responder_errors;
        pthread_mutex_unlock(&lat.mu);
        if (errs)
            die("latency: the responder failed");
        rtt[done++] = now_ns() - t0;
    }
    usage_stop(&u);
    long threads = proc_threads();
    finish(rq);
    finish(resp);
    report_latency(name, rtt, done, a->count);
    report_usage(name, &u, done);
    report_process(name, threads);
    free(rtt);
}

/* ---- puback: QoS 1 publish -> PUBACK, one at a time ----------------------- */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int acked_mid;
    int reason;
} pa = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, -1, 0};

static void on_publish(struct mosquitto *m, void *obj, int mid, int reason, const mosquitto_property *p) {
    (void)m, (void)obj, (void)p;
    pthread_mutex_lock(&pa.mu);
    pa.acked_mid = mid;
    pa.reason = reason;
    pthread_cond_broadcast(&pa.cv);
    pthread_mutex_unlock(&pa.mu);
}

/*
 * puback: one client publishes QoS 1 messages one at a time, each timed from
 * the publish call until on_publish (its PUBACK) woke the publishing thread.
 * Nobody subscribes (the broker acknowledges at once).
 */
static void scenario_puback(const struct args *a) {
    const char *name = "puback";
    char topic[128], id[128];
    snprintf(topic, sizeof topic, "bench/puback/%s", a->run);
    snprintf(id, sizeof id, "%s-pub", a->run);
    struct cl *pub = new_client(id, NULL, NULL);
    mosquitto_publish_v5_callback_set(pub->m, on_publish);
    int64_t *rtt = calloc((size_t)a->count, sizeof *rtt);
    if (!rtt)
        die("out of memory");
    char payload[PAYLOAD_LEN];
    long done = 0;
    struct usage u = usage_start();
    int64_t start = now_ns();
    for (long i = 0; i < a->count && now_ns() - start < LATENCY_CAP_NS; i++) {
        make_payload(payload, i);
        int mid = 0;
        int64_t t0 = now_ns();
        pthread_mutex_lock(&pa.mu);
        mcheck(mosquitto_publish_v5(pub->m, &mid, topic, sizeof payload, payload, 1, false, NULL), "mosquitto_publish_v5");
        struct timespec dl = deadline_in_ms(WAIT_TIMEOUT_MS);
        while (pa.acked_mid != mid) {
            if (pthread_cond_timedwait(&pa.cv, &pa.mu, &dl) == ETIMEDOUT) {
                pthread_mutex_unlock(&pa.mu);
                die("puback: no PUBACK for message %ld within %d ms", i, WAIT_TIMEOUT_MS);
            }
        }
        int reason = pa.reason;
        pthread_mutex_unlock(&pa.mu);
        if (reason != 0 && reason != 0x10)
            die("puback: reason %d", reason);
        rtt[done++] = now_ns() - t0;
    }
    usage_stop(&u);
    long threads = proc_threads();
    finish(pub);
    report_latency(name, rtt, done, a->count);
    report_usage(name, &u, done);
    report_process(name, threads);
    free(rtt);
}

/* ---- throughput ----------------------------------------------------------- */

static void sink_msg(struct cl *c, const struct mosquitto_message *msg) {
    sink_add(c->ud, msg->payload, (size_t)msg->payloadlen);
}

static void scenario_throughput(const struct args *a, int qos) {
    const char *name = qos ? "qos1" : "qos0";
    char topic[128], id[128];
    snprintf(topic, sizeof topic, "bench/tp/%s", a->run);
    struct sink s;
    sink_init(&s, a->count);
    snprintf(id, sizeof id, "%s-sub", a->run);
    struct cl *sub = new_client(id, sink_msg, &s);
    subscribe(sub, topic, qos);
    snprintf(id, sizeof id, "%s-pub", a->run);
    struct cl *pub = new_client(id, NULL, NULL);

    char payload[PAYLOAD_LEN];
    struct usage u = usage_start();
    int64_t t0 = now_ns();
    long i = 0;
    for (; keep_publishing(i, a->count, t0); i++) {
        make_payload(payload, i);
        mcheck(mosquitto_publish_v5(pub->m, NULL, topic, sizeof payload, payload, qos, false, NULL),
               "mosquitto_publish_v5");
    }
    int64_t t_pub = now_ns(); /* queued, not necessarily written: mosquitto_publish does not block */
    sink_set_sent(&s, i);
    sink_wait(&s, qos);
    usage_stop(&u);
    sink_report(&s, name, qos, t0, t_pub);
    report_usage(name, &u, s.sent);
    report_process(name, proc_threads());
    finish(pub);
    finish(sub);
}

/* ---- idle clients --------------------------------------------------------- */

/*
 * idle10k: a client that cannot connect, start its loop thread or get its
 * CONNACK within IDLE10K_CONNACK_MS ends the ramp (NULL, reason on stderr).
 * The threaded loop select()s on its socket and a socket pair, so it fails
 * once a descriptor passes FD_SETSIZE (1024): at about 340 clients.
 */
#define IDLE10K_CONNACK_MS 5000

static struct cl *try_new_client(const char *id) {
    struct cl *c = calloc(1, sizeof *c);
    if (!c)
        die("out of memory");
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    c->connack = -1;
    c->granted = -1;
    c->m = mosquitto_new(id, true, c);
    if (!c->m) {
        fprintf(stderr, "idle10k: mosquitto_new: %s\n", strerror(errno));
        return NULL; /* leaked: the run ends soon */
    }
    mcheck(mosquitto_int_option(c->m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5), "MOSQ_OPT_PROTOCOL_VERSION");
    mosquitto_connect_v5_callback_set(c->m, on_connect);
    mosquitto_disconnect_v5_callback_set(c->m, on_disconnect);
    int rc = mosquitto_connect(c->m, g_host, g_port, 60);
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_loop_start(c->m);
    if (rc != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "idle10k: connect or loop start: %d %s (errno %s)\n", rc, mosquitto_strerror(rc), strerror(errno));
        return NULL;
    }
    pthread_mutex_lock(&c->mu);
    struct timespec dl = deadline_in_ms(IDLE10K_CONNACK_MS);
    while (c->connack == -1 && !c->disconnected)
        if (pthread_cond_timedwait(&c->cv, &c->mu, &dl) == ETIMEDOUT)
            break;
    int ack = c->connack;
    pthread_mutex_unlock(&c->mu);
    if (ack != 0) {
        fprintf(stderr, "idle10k: no CONNACK 0 within %d ms (got %d): the loop thread ended\n", IDLE10K_CONNACK_MS, ack);
        return NULL;
    }
    return c;
}

static void scenario_idle(const struct args *a, bool many) {
    const char *name = many ? "idle10k" : "idle";
    if (many)
        raise_fd_limit();
    struct idle_readings r = {.wanted = a->count, .th0 = proc_threads(), .rss0 = proc_status_kb("VmRSS"), .fds0 = proc_fds()};
    struct cl **c = calloc((size_t)a->count, sizeof *c);
    if (!c)
        die("out of memory");
    char id[128];
    for (long i = 0; i < a->count; i++) {
        snprintf(id, sizeof id, "%s-idle-%ld", a->run, i);
        c[i] = many ? try_new_client(id) : new_client(id, NULL, NULL);
        if (!c[i]) {
            fprintf(stderr, "idle10k: stopped at client %ld\n", i);
            break;
        }
        r.n = i + 1;
        if (i == 0)
            r.rss_first = proc_status_kb("VmRSS");
    }
    sleep_ms(IDLE_SETTLE_MS);
    for (long i = 0; i < r.n; i++) {
        pthread_mutex_lock(&c[i]->mu);
        bool lost = c[i]->disconnected;
        pthread_mutex_unlock(&c[i]->mu);
        if (lost)
            die("%s: client %ld is not connected", name, i);
    }
    r.th1 = proc_threads();
    r.rss1 = proc_status_kb("VmRSS");
    r.fds1 = proc_fds();
    report_idle(name, &r);
    if (r.n < a->count)
        _exit(0); /* a client whose loop thread ended is left as it is */
    for (long i = 0; i < r.n; i++)
        finish(c[i]);
    free(c);
}

int main(int argc, char **argv) {
    g_lib = "mosquitto";
    struct args a = parse_args(argc, argv);
    g_host = a.host;
    g_port = a.port;
    const char *nd = getenv("BENCH_TCP_NODELAY");
    g_nodelay = nd && !strcmp(nd, "1");
    mcheck(mosquitto_lib_init(), "mosquitto_lib_init");
    if (!strcmp(a.scenario, "latency"))
        scenario_latency(&a, 1);
    else if (!strcmp(a.scenario, "echo0"))
        scenario_latency(&a, 0);
    else if (!strcmp(a.scenario, "qos0"))
        scenario_throughput(&a, 0);
    else if (!strcmp(a.scenario, "qos1"))
        scenario_throughput(&a, 1);
    else if (!strcmp(a.scenario, "puback"))
        scenario_puback(&a);
    else if (!strcmp(a.scenario, "qos1mt"))
        die("qos1mt is an mqtt5c-only scenario");
    else
        scenario_idle(&a, !strcmp(a.scenario, "idle10k"));
    mosquitto_lib_cleanup();
    return 0;
}

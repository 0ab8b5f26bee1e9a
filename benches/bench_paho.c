/*
 * Benchmark of Eclipse Paho C, synchronous MQTTClient API (libpaho-mqtt3c),
 * MQTT v5 (see common.h for usage and output).
 *
 * Used as its documentation recommends: MQTTClient_createWithOptions with
 * MQTTVERSION_5, in-memory persistence (MQTTCLIENT_PERSISTENCE_NONE, as in
 * every Paho example), MQTTClient_setCallbacks (the "asynchronous mode": a
 * background thread receives and calls messageArrived), connect5 with
 * MQTTClient_connectOptions_initializer5 unchanged. Those defaults include
 * "reliable" = 1, i.e. one QoS 1/2 message in flight per client; Paho leaves
 * Nagle on. Paho forbids calling the API from inside a callback, so the
 * latency responder hands messages to its own thread through a queue; and
 * since MQTTClient "is not thread safe" in asynchronous mode, calls from our
 * two application threads are serialised by a mutex.
 */
#include "common.h"

#include <MQTTClient.h>

static char g_uri[300];
static pthread_mutex_t api_mu = PTHREAD_MUTEX_INITIALIZER; /* see above */

struct cl {
    MQTTClient h;
    void (*on_msg)(struct cl *, const void *, size_t);
    void *ud;
    volatile int lost;
};

static int msg_arrived(void *ctx, char *topic, int topic_len, MQTTClient_message *m) {
    (void)topic_len;
    struct cl *c = ctx;
    if (c->on_msg)
        c->on_msg(c, m->payload, (size_t)m->payloadlen);
    MQTTClient_freeMessage(&m);
    MQTTClient_free(topic);
    return 1;
}

static void conn_lost(void *ctx, char *cause) {
    struct cl *c = ctx;
    c->lost = 1;
    fprintf(stderr, "%s: connection lost: %s\n", g_lib, cause ? cause : "(no cause)");
}

static struct cl *new_client(const char *id, void (*on_msg)(struct cl *, const void *, size_t), void *ud) {
    struct cl *c = calloc(1, sizeof *c);
    if (!c)
        die("out of memory");
    c->on_msg = on_msg;
    c->ud = ud;
    MQTTClient_createOptions co = MQTTClient_createOptions_initializer;
    co.MQTTVersion = MQTTVERSION_5;
    pthread_mutex_lock(&api_mu);
    int rc = MQTTClient_createWithOptions(&c->h, g_uri, id, MQTTCLIENT_PERSISTENCE_NONE, NULL, &co);
    if (rc != MQTTCLIENT_SUCCESS)
        die("MQTTClient_createWithOptions: %d %s", rc, MQTTClient_strerror(rc));
    rc = MQTTClient_setCallbacks(c->h, c, conn_lost, msg_arrived, NULL);
    if (rc != MQTTCLIENT_SUCCESS)
        die("MQTTClient_setCallbacks: %d %s", rc, MQTTClient_strerror(rc));
    MQTTClient_connectOptions opts = MQTTClient_connectOptions_initializer5;
    MQTTResponse r = MQTTClient_connect5(c->h, &opts, NULL, NULL);
    pthread_mutex_unlock(&api_mu);
    if (r.reasonCode != MQTTCLIENT_SUCCESS)
        die("MQTTClient_connect5: %d %s", (int)r.reasonCode, MQTTClient_strerror((int)r.reasonCode));
    MQTTResponse_free(r);
    return c;
}

static void subscribe(struct cl *c, const char *filter, int qos) {
    pthread_mutex_lock(&api_mu);
    MQTTResponse r = MQTTClient_subscribe5(c->h, filter, qos, NULL, NULL);
    pthread_mutex_unlock(&api_mu);
    if ((int)r.reasonCode != qos)
        die("MQTTClient_subscribe5 %s: %d %s", filter, (int)r.reasonCode, MQTTClient_strerror((int)r.reasonCode));
    MQTTResponse_free(r);
}

static void publish(struct cl *c, const char *topic, const void *p, size_t len, int qos) {
    pthread_mutex_lock(&api_mu);
    MQTTResponse r = MQTTClient_publish5(c->h, topic, (int)len, p, qos, 0, NULL, NULL);
    pthread_mutex_unlock(&api_mu);
    if (r.reasonCode != MQTTCLIENT_SUCCESS)
        die("MQTTClient_publish5 %s qos %d: %d %s", topic, qos, (int)r.reasonCode,
            MQTTClient_strerror((int)r.reasonCode));
    MQTTResponse_free(r);
}

static void finish(struct cl *c) {
    pthread_mutex_lock(&api_mu);
    int rc = MQTTClient_disconnect5(c->h, 1000, MQTTREASONCODE_NORMAL_DISCONNECTION, NULL);
    if (rc != MQTTCLIENT_SUCCESS)
        die("MQTTClient_disconnect5: %d %s", rc, MQTTClient_strerror(rc));
    MQTTClient_destroy(&c->h);
    pthread_mutex_unlock(&api_mu);
    free(c);
}

/* ---- latency ---------------------------------------------------------- */

static char g_resp_topic[128];
static int g_echo_qos = 1; /* 1 for latency, 0 for echo0 */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long got;
    /* responder queue (payloads are always PAYLOAD_LEN bytes here) */
    char q[64][PAYLOAD_LEN];
    int q_head, q_len;
    bool stop;
} lat = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, -1, {{0}}, 0, 0, false};
static pthread_cond_t q_cv = PTHREAD_COND_INITIALIZER;

static void responder_msg(struct cl *c, const void *p, size_t len) {
    (void)c;
    if (len != PAYLOAD_LEN) {
        fprintf(stderr, "%s: responder: unexpected payload of %zu bytes\n", g_lib, len);
        return;
    }
    pthread_mutex_lock(&lat.mu);
    while (lat.q_len == 64) /* cannot happen with one request in flight */
        pthread_cond_wait(&q_cv, &lat.mu);
    memcpy(lat.q[(lat.q_head + lat.q_len) % 64], p, PAYLOAD_LEN);
    lat.q_len++;
    pthread_cond_broadcast(&q_cv);
    pthread_mutex_unlock(&lat.mu);
}

static void *responder_thread(void *arg) {
    struct cl *c = arg;
    char buf[PAYLOAD_LEN];
    for (;;) {
        pthread_mutex_lock(&lat.mu);
        while (lat.q_len == 0 && !lat.stop)
            pthread_cond_wait(&q_cv, &lat.mu);
        if (lat.q_len == 0) {
            pthread_mutex_unlock(&lat.mu);
            return NULL;
        }
        memcpy(buf, lat.q[lat.q_head], PAYLOAD_LEN);
        lat.q_head = (lat.q_head + 1) % 64;
        lat.q_len--;
        pthread_cond_broadcast(&q_cv);
        pthread_mutex_unlock(&lat.mu);
        publish(c, g_resp_topic, buf, PAYLOAD_LEN, g_echo_qos); /* dies on failure */
    }
}

static void requester_msg(struct cl *c, const void *p, size_t len) {
    (void)c;
    long seq = parse_payload(p, len);
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
    pthread_t rt;
    int prc = pthread_create(&rt, NULL, responder_thread, resp);
    if (prc != 0)
        die("pthread_create: %s", strerror(prc));
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
        publish(rq, req, payload, sizeof payload, qos);
        pthread_mutex_lock(&lat.mu);
        struct timespec dl = deadline_in_ms(WAIT_TIMEOUT_MS);
        while (lat.got != i) {
            if (pthread_cond_timedwait(&lat.cv, &lat.mu, &dl) == ETIMEDOUT) {
                pthread_mutex_unlock(&lat.mu);
                die("latency: no echo of request %ld within %d ms", i, WAIT_TIMEOUT_MS);
            }
        }
        pthread_mutex_unlock(&lat.mu);
        rtt[done++] = now_ns() - t0;
    }
    usage_stop(&u);
    long threads = proc_threads(); /* includes our responder thread */
    pthread_mutex_lock(&lat.mu);
    lat.stop = true;
    pthread_cond_broadcast(&q_cv);
    pthread_mutex_unlock(&lat.mu);
    pthread_join(rt, NULL);
    finish(rq);
    finish(resp);
    report_latency(name, rtt, done, a->count);
    report_usage(name, &u, done);
    report_process(name, threads);
    free(rtt);
}

/* ---- throughput ----------------------------------------------------------- */

static void sink_msg(struct cl *c, const void *p, size_t len) {
    sink_add(c->ud, p, len);
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
        publish(pub, topic, payload, sizeof payload, qos); /* blocks while the in-flight window is full */
    }
    int64_t t_pub = now_ns();
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

static void scenario_idle(const struct args *a) {
    struct idle_readings r = {.n = a->count, .wanted = a->count, .th0 = proc_threads(), .rss0 = proc_status_kb("VmRSS"), .fds0 = proc_fds()};
    struct cl **c = calloc((size_t)a->count, sizeof *c);
    if (!c)
        die("out of memory");
    char id[128];
    for (long i = 0; i < a->count; i++) {
        snprintf(id, sizeof id, "%s-idle-%ld", a->run, i);
        c[i] = new_client(id, NULL, NULL);
        if (i == 0)
            r.rss_first = proc_status_kb("VmRSS");
    }
    sleep_ms(IDLE_SETTLE_MS);
    for (long i = 0; i < a->count; i++)
        if (c[i]->lost || !MQTTClient_isConnected(c[i]->h))
            die("idle: client %ld is not connected", i);
    r.th1 = proc_threads();
    r.rss1 = proc_status_kb("VmRSS");
    r.fds1 = proc_fds();
    report_idle("idle", &r);
    for (long i = 0; i < a->count; i++)
        finish(c[i]);
    free(c);
}

int main(int argc, char **argv) {
    g_lib = "paho";
    struct args a = parse_args(argc, argv);
    snprintf(g_uri, sizeof g_uri, strchr(a.host, ':') ? "tcp://[%s]:%d" : "tcp://%s:%d", a.host, a.port);
    if (!strcmp(a.scenario, "latency"))
        scenario_latency(&a, 1);
    else if (!strcmp(a.scenario, "echo0"))
        scenario_latency(&a, 0);
    else if (!strcmp(a.scenario, "qos0"))
        scenario_throughput(&a, 0);
    else if (!strcmp(a.scenario, "qos1"))
        scenario_throughput(&a, 1);
    else if (!strcmp(a.scenario, "qos1mt"))
        die("qos1mt is an mqtt5c-only scenario");
    else
        scenario_idle(&a);
    return 0;
}

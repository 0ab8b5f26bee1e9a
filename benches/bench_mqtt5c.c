/*
 * Benchmark of mqtt5c (see common.h for usage and output).
 *
 * Used as its header documents: blocking calls (mqtt_connect, mqtt_subscribe,
 * mqtt_publish; mqtt_publish_async in the qos1async and qos1persist
 * scenarios), callbacks on
 * library threads, default options (which turn on TCP_NODELAY and
 * TCP_QUICKACK), one client per connection. The
 * latency responder republishes from inside its message callback.
 */
#include "common.h"

#include "mqtt5c.h"

static char g_url[300];
static bool g_plain_tcp; /* BENCH_PLAIN_TCP=1: TCP_NODELAY and TCP_QUICKACK off */

static void check(int rc, const char *what) {
    if (rc != MQTT5C_OK)
        die("%s: %d %s (%s)", what, rc, mqtt_strerror(rc), mqtt_last_error());
}

/* A connected client; `dir` non-NULL turns on persistence there. */
static mqtt_client *new_client_in(const char *id, const char *dir, mqtt_message_cb cb, void *ud) {
    mqtt_options *o = mqtt_options_new();
    if (!o)
        die("mqtt_options_new: %s", mqtt_last_error());
    check(mqtt_options_set_client_id(o, id), "mqtt_options_set_client_id");
    if (dir)
        check(mqtt_options_set_persistence_dir(o, dir), "mqtt_options_set_persistence_dir");
    if (g_plain_tcp) { /* diagnostic only (BENCH_PLAIN_TCP=1): Nagle and delayed ACKs as the others have */
        check(mqtt_options_set_tcp_nodelay(o, false), "mqtt_options_set_tcp_nodelay");
        check(mqtt_options_set_tcp_quickack(o, false), "mqtt_options_set_tcp_quickack");
    }
    mqtt_client *c = mqtt_client_new(o);
    mqtt_options_free(o);
    if (!c)
        die("mqtt_client_new: %s", mqtt_last_error());
    if (cb)
        check(mqtt_set_message_callback(c, cb, ud), "mqtt_set_message_callback");
    check(mqtt_connect(c, g_url), "mqtt_connect");
    return c;
}

static mqtt_client *new_client(const char *id, mqtt_message_cb cb, void *ud) {
    return new_client_in(id, NULL, cb, ud);
}

static void subscribe(mqtt_client *c, const char *filter, int qos) {
    int rc = mqtt_subscribe(c, filter, qos, NULL);
    if (rc != qos)
        die("mqtt_subscribe %s: %d %s (%s)", filter, rc, mqtt_strerror(rc), mqtt_last_error());
}

static void publish(mqtt_client *c, const char *topic, const void *p, size_t len, int qos) {
    int rc = mqtt_publish(c, topic, p, len, qos, false, NULL);
    /* 0x10 "no matching subscribers" would mean our subscriber is gone. */
    if (rc != MQTT5C_OK)
        die("mqtt_publish %s qos %d: %d %s (%s)", topic, qos, rc, mqtt_strerror(rc), mqtt_last_error());
}

static void finish(mqtt_client *c) {
    check(mqtt_disconnect(c, 0, NULL), "mqtt_disconnect");
    mqtt_client_free(c);
}

/* ---- latency ---------------------------------------------------------- */

static char g_resp_topic[128];
static int g_echo_qos = 1; /* 1 for latency, 0 for echo0 */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long got; /* latest echoed sequence number */
    long responder_errors;
    /* The round trips are done: a responder's publish still waiting for its
     * PUBACK when the client is disconnected fails, and that is expected. */
    bool stopping;
} lat = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, -1, 0, false};

/* Responder: republish from inside the callback (a blocking QoS 1 publish). */
static void responder_cb(void *ud, const mqtt_message *m) {
    mqtt_client *self = ud;
    size_t len = 0;
    const void *p = mqtt_message_payload(m, &len);
    int rc = mqtt_publish(self, g_resp_topic, p, len, g_echo_qos, false, NULL);
    pthread_mutex_lock(&lat.mu);
    bool stopping = lat.stopping;
    pthread_mutex_unlock(&lat.mu);
    if (rc != MQTT5C_OK && !stopping) {
        fprintf(stderr, "ERROR %s: responder publish: %d %s (%s)\n", g_lib, rc, mqtt_strerror(rc),
                mqtt_last_error());
        pthread_mutex_lock(&lat.mu);
        lat.responder_errors++;
        pthread_cond_broadcast(&lat.cv);
        pthread_mutex_unlock(&lat.mu);
    }
}

static void requester_cb(void *ud, const mqtt_message *m) {
    (void)ud;
    size_t len = 0;
    const void *p = mqtt_message_payload(m, &len);
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

    /* The responder's callback needs its own client pointer: set it after creation. */
    snprintf(id, sizeof id, "%s-resp", a->run);
    mqtt_client *resp = new_client(id, NULL, NULL);
    check(mqtt_set_message_callback(resp, responder_cb, resp), "mqtt_set_message_callback");
    subscribe(resp, req, g_echo_qos);
    snprintf(id, sizeof id, "%s-req", a->run);
    mqtt_client *rq = new_client(id, requester_cb, NULL);
    subscribe(rq, g_resp_topic, g_echo_qos);

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
        publish(rq, req, payload, sizeof payload, g_echo_qos);
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
    pthread_mutex_lock(&lat.mu);
    lat.stopping = true;
    pthread_mutex_unlock(&lat.mu);
    finish(rq);
    finish(resp);
    report_latency(name, rtt, done, a->count);
    report_usage(name, &u, done);
    report_process(name, threads);
    free(rtt);
}

/*
 * puback: one client publishes QoS 1 messages one at a time with the
 * blocking mqtt_publish, which returns at the PUBACK; each call is timed.
 * Nobody subscribes (the broker acknowledges at once).
 */
static void scenario_puback(const struct args *a) {
    const char *name = "puback";
    char topic[128], id[128];
    snprintf(topic, sizeof topic, "bench/puback/%s", a->run);
    snprintf(id, sizeof id, "%s-pub", a->run);
    mqtt_client *pub = new_client(id, NULL, NULL);
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
        int rc = mqtt_publish(pub, topic, payload, sizeof payload, MQTT5C_QOS1, false, NULL);
        int64_t t1 = now_ns();
        if (rc != MQTT5C_OK && rc != 0x10) /* 0x10: no matching subscribers */
            die("mqtt_publish: %d %s (%s)", rc, mqtt_strerror(rc), mqtt_last_error());
        rtt[done++] = t1 - t0;
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

static void sink_cb(void *ud, const mqtt_message *m) {
    size_t len = 0;
    const void *p = mqtt_message_payload(m, &len);
    sink_add(ud, p, len);
}

static void scenario_throughput(const struct args *a, int qos) {
    const char *name = qos ? "qos1" : "qos0";
    char topic[128], id[128];
    snprintf(topic, sizeof topic, "bench/tp/%s", a->run);
    struct sink s;
    sink_init(&s, a->count);

    snprintf(id, sizeof id, "%s-sub", a->run);
    mqtt_client *sub = new_client(id, sink_cb, &s);
    subscribe(sub, topic, qos);
    snprintf(id, sizeof id, "%s-pub", a->run);
    mqtt_client *pub = new_client(id, NULL, NULL);

    char payload[PAYLOAD_LEN];
    struct usage u = usage_start();
    int64_t t0 = now_ns();
    long i = 0;
    for (; keep_publishing(i, a->count, t0); i++) {
        make_payload(payload, i);
        publish(pub, topic, payload, sizeof payload, qos);
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

/*
 * qos1mt: PUB_THREADS threads share one publishing client (allowed: "Threads:
 * any, concurrently"); each blocking mqtt_publish waits for its own PUBACK,
 * so up to PUB_THREADS messages are in flight. Thread k sends the sequence
 * numbers k, k + PUB_THREADS, ... so order across threads is not defined.
 */
struct mt_pub {
    mqtt_client *c;
    const char *topic;
    long first, count;
    int64_t t0;
    long sent;
    bool async; /* mqtt_publish_async, completions counted by ack_cb */
};

static void publish_async(mqtt_client *c, const char *topic, const void *p, size_t len);

static void *mt_pub_thread(void *arg) {
    struct mt_pub *p = arg;
    char payload[PAYLOAD_LEN];
    long n = 0;
    for (long seq = p->first; keep_publishing(seq, p->count, p->t0); seq += PUB_THREADS, n++) {
        make_payload(payload, seq);
        if (p->async)
            publish_async(p->c, p->topic, payload, sizeof payload);
        else
            publish(p->c, p->topic, payload, sizeof payload, MQTT5C_QOS1);
    }
    p->sent = n;
    return NULL;
}

static void scenario_qos1mt(const struct args *a) {
    const char *name = "qos1mt";
    char topic[128], id[128];
    snprintf(topic, sizeof topic, "bench/tp/%s", a->run);
    struct sink s;
    sink_init(&s, a->count);
    snprintf(id, sizeof id, "%s-sub", a->run);
    mqtt_client *sub = new_client(id, sink_cb, &s);
    subscribe(sub, topic, MQTT5C_QOS1);
    snprintf(id, sizeof id, "%s-pub", a->run);
    mqtt_client *pub = new_client(id, NULL, NULL);

    struct mt_pub p[PUB_THREADS];
    pthread_t th[PUB_THREADS];
    struct usage u = usage_start();
    int64_t t0 = now_ns();
    for (int k = 0; k < PUB_THREADS; k++) {
        p[k] = (struct mt_pub){pub, topic, k, a->count, t0, 0, false};
        int rc = pthread_create(&th[k], NULL, mt_pub_thread, &p[k]);
        if (rc != 0)
            die("pthread_create: %s", strerror(rc));
    }
    long sent = 0;
    for (int k = 0; k < PUB_THREADS; k++) {
        pthread_join(th[k], NULL);
        sent += p[k].sent;
    }
    int64_t t_pub = now_ns();
    sink_set_sent(&s, sent);
    sink_wait(&s, 1);
    usage_stop(&u);
    /* Interleaved threads make "out of order" meaningless here: clear it. */
    s.out_of_order = 0;
    result(name, "publisher_threads", "%d", PUB_THREADS);
    sink_report(&s, name, 1, t0, t_pub);
    report_usage(name, &u, s.sent);
    report_process(name, proc_threads());
    finish(pub);
    finish(sub);
}

/*
 * qos1async: one thread publishes with mqtt_publish_async, which returns once
 * the PUBLISH is written (after waiting for a free slot of the broker's
 * Receive Maximum, 20 for mosquitto); the completion callback counts the
 * PUBACKs. The publisher then waits for all completions. The sink still
 * measures from the first publish to the last receipt.
 *
 * qos1persist: the same with a persistence directory (BENCH_PERSIST_DIR):
 * each publish returns once its message is also on disk (fdatasync, shared
 * by the messages stored meanwhile).
 */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long done, failed;
    int first_failure;
} acks = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0};

static void ack_cb(void *ud, int result, const mqtt_properties *props) {
    (void)ud;
    (void)props;
    pthread_mutex_lock(&acks.mu);
    if (result != MQTT5C_OK && acks.failed++ == 0)
        acks.first_failure = result;
    acks.done++;
    pthread_cond_broadcast(&acks.cv);
    pthread_mutex_unlock(&acks.mu);
}

static void publish_async(mqtt_client *c, const char *topic, const void *p, size_t len) {
    int rc = mqtt_publish_async(c, topic, p, len, MQTT5C_QOS1, false, NULL, ack_cb, NULL);
    if (rc != MQTT5C_OK)
        die("mqtt_publish_async: %d %s (%s)", rc, mqtt_strerror(rc), mqtt_last_error());
}

static void wait_for_acks(const char *name, long n) {
    pthread_mutex_lock(&acks.mu);
    while (acks.done < n) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += WAIT_TIMEOUT_MS / 1000;
        if (pthread_cond_timedwait(&acks.cv, &acks.mu, &ts) == ETIMEDOUT)
            die("%s: %ld of %ld completions", name, acks.done, n);
    }
    if (acks.failed)
        die("%s: %ld publishes failed, first with %d", name, acks.failed, acks.first_failure);
    pthread_mutex_unlock(&acks.mu);
}

/*
 * qos1persistmt: PUB_THREADS threads publish with mqtt_publish_async on one
 * client with persistence: their records share fdatasyncs (group commit).
 */
static void scenario_qos1persistmt(const struct args *a, const char *dir) {
    const char *name = "qos1persistmt";
    char topic[128], id[128];
    snprintf(topic, sizeof topic, "bench/tp/%s", a->run);
    struct sink s;
    sink_init(&s, a->count);
    snprintf(id, sizeof id, "%s-sub", a->run);
    mqtt_client *sub = new_client(id, sink_cb, &s);
    subscribe(sub, topic, MQTT5C_QOS1);
    snprintf(id, sizeof id, "%s-pub", a->run);
    mqtt_client *pub = new_client_in(id, dir, NULL, NULL);

    struct mt_pub p[PUB_THREADS];
    pthread_t th[PUB_THREADS];
    struct usage u = usage_start();
    int64_t t0 = now_ns();
    for (int k = 0; k < PUB_THREADS; k++) {
        p[k] = (struct mt_pub){pub, topic, k, a->count, t0, 0, true};
        int rc = pthread_create(&th[k], NULL, mt_pub_thread, &p[k]);
        if (rc != 0)
            die("pthread_create: %s", strerror(rc));
    }
    long sent = 0;
    for (int k = 0; k < PUB_THREADS; k++) {
        pthread_join(th[k], NULL);
        sent += p[k].sent;
    }
    int64_t t_pub = now_ns();
    wait_for_acks(name, sent);
    result(name, "all_acked_s", "%.3f", (double)(now_ns() - t0) / 1e9);
    sink_set_sent(&s, sent);
    sink_wait(&s, 1);
    usage_stop(&u);
    s.out_of_order = 0; /* interleaved threads: see qos1mt */
    result(name, "publisher_threads", "%d", PUB_THREADS);
    sink_report(&s, name, 1, t0, t_pub);
    report_usage(name, &u, s.sent);
    report_process(name, proc_threads());
    finish(pub);
    finish(sub);
}

static void scenario_qos1async(const struct args *a, const char *dir) {
    const char *name = dir ? "qos1persist" : "qos1async";
    char topic[128], id[128];
    snprintf(topic, sizeof topic, "bench/tp/%s", a->run);
    struct sink s;
    sink_init(&s, a->count);
    snprintf(id, sizeof id, "%s-sub", a->run);
    mqtt_client *sub = new_client(id, sink_cb, &s);
    subscribe(sub, topic, MQTT5C_QOS1);
    snprintf(id, sizeof id, "%s-pub", a->run);
    mqtt_client *pub = new_client_in(id, dir, NULL, NULL);

    char payload[PAYLOAD_LEN];
    struct usage u = usage_start();
    int64_t t0 = now_ns();
    long i = 0;
    for (; keep_publishing(i, a->count, t0); i++) {
        make_payload(payload, i);
        publish_async(pub, topic, payload, sizeof payload);
    }
    int64_t t_pub = now_ns();
    wait_for_acks(name, i);
    result(name, "all_acked_s", "%.3f", (double)(now_ns() - t0) / 1e9);
    sink_set_sent(&s, i);
    sink_wait(&s, 1);
    usage_stop(&u);
    sink_report(&s, name, 1, t0, t_pub);
    report_usage(name, &u, s.sent);
    report_process(name, proc_threads());
    finish(pub);
    finish(sub);
}

/* ---- idle clients --------------------------------------------------------- */

/*
 * idle and idle10k: COUNT clients connect one after another and sit idle.
 * For idle10k a client that cannot connect ends the ramp (reported on
 * stderr, `clients` says how many made it) instead of failing the run.
 */
static void scenario_idle(const struct args *a, bool many) {
    const char *name = many ? "idle10k" : "idle";
    if (many)
        raise_fd_limit();
    struct idle_readings r = {.wanted = a->count, .th0 = proc_threads(), .rss0 = proc_status_kb("VmRSS"), .fds0 = proc_fds()};
    mqtt_client **c = calloc((size_t)a->count, sizeof *c);
    if (!c)
        die("out of memory");
    char id[128];
    for (long i = 0; i < a->count; i++) {
        snprintf(id, sizeof id, "%s-idle-%ld", a->run, i);
        if (!many) {
            c[i] = new_client(id, NULL, NULL);
        } else {
            mqtt_options *o = mqtt_options_new();
            if (!o || mqtt_options_set_client_id(o, id) != MQTT5C_OK)
                die("mqtt_options: %s", mqtt_last_error());
            c[i] = mqtt_client_new(o);
            mqtt_options_free(o);
            int rc = c[i] ? mqtt_connect(c[i], g_url) : MQTT5C_ERR_INTERNAL;
            if (rc != MQTT5C_OK) {
                fprintf(stderr, "idle10k: client %ld did not connect: %d %s (%s)\n", i, rc, mqtt_strerror(rc),
                        mqtt_last_error());
                mqtt_client_free(c[i]);
                c[i] = NULL;
                break;
            }
        }
        r.n = i + 1;
        if (i == 0)
            r.rss_first = proc_status_kb("VmRSS");
    }
    sleep_ms(IDLE_SETTLE_MS);
    for (long i = 0; i < r.n; i++)
        if (mqtt_is_connected(c[i]) != 1)
            die("%s: client %ld is not connected", name, i);
    r.th1 = proc_threads();
    r.rss1 = proc_status_kb("VmRSS");
    r.fds1 = proc_fds();
    report_idle(name, &r);
    for (long i = 0; i < r.n; i++)
        finish(c[i]);
    free(c);
}

int main(int argc, char **argv) {
    g_lib = "mqtt5c";
    struct args a = parse_args(argc, argv);
    if (mqtt_version_number() != MQTT5C_VERSION_NUMBER)
        die("header version %d, library version %u", MQTT5C_VERSION_NUMBER, mqtt_version_number());
    const char *plain = getenv("BENCH_PLAIN_TCP");
    g_plain_tcp = plain && !strcmp(plain, "1");
    snprintf(g_url, sizeof g_url, strchr(a.host, ':') ? "mqtt://[%s]:%d" : "mqtt://%s:%d", a.host, a.port);
    if (!strcmp(a.scenario, "latency"))
        scenario_latency(&a, 1);
    else if (!strcmp(a.scenario, "echo0"))
        scenario_latency(&a, 0);
    else if (!strcmp(a.scenario, "puback"))
        scenario_puback(&a);
    else if (!strcmp(a.scenario, "qos0"))
        scenario_throughput(&a, 0);
    else if (!strcmp(a.scenario, "qos1"))
        scenario_throughput(&a, 1);
    else if (!strcmp(a.scenario, "qos1mt"))
        scenario_qos1mt(&a);
    else if (!strcmp(a.scenario, "qos1async"))
        scenario_qos1async(&a, NULL);
    else if (!strcmp(a.scenario, "qos1persist") || !strcmp(a.scenario, "qos1persistmt")) {
        const char *dir = getenv("BENCH_PERSIST_DIR");
        if (!dir || !*dir)
            die("BENCH_PERSIST_DIR is not set");
        if (!strcmp(a.scenario, "qos1persist"))
            scenario_qos1async(&a, dir);
        else
            scenario_qos1persistmt(&a, dir);
    }
    else if (!strcmp(a.scenario, "idle10k"))
        scenario_idle(&a, true);
    else
        scenario_idle(&a, false);
    return 0;
}

/*
 * Benchmark of mqtt5c (see common.h for usage and output).
 *
 * Used as its header documents: blocking calls (mqtt_connect, mqtt_subscribe,
 * mqtt_publish), callbacks on library threads, default options (which turn
 * on TCP_NODELAY and TCP_QUICKACK), one client per connection. The
 * latency responder republishes from inside its message callback.
 */
#include "common.h"

#include "mqtt5c.h"

static char g_url[300];

static void check(int rc, const char *what) {
    if (rc != MQTT_OK)
        die("%s: %d %s (%s)", what, rc, mqtt_strerror(rc), mqtt_last_error());
}

static mqtt_client *new_client(const char *id, mqtt_message_cb cb, void *ud) {
    mqtt_options *o = mqtt_options_new();
    if (!o)
        die("mqtt_options_new: %s", mqtt_last_error());
    check(mqtt_options_set_client_id(o, id), "mqtt_options_set_client_id");
    mqtt_client *c = mqtt_client_new(o);
    mqtt_options_free(o);
    if (!c)
        die("mqtt_client_new: %s", mqtt_last_error());
    if (cb)
        check(mqtt_set_message_callback(c, cb, ud), "mqtt_set_message_callback");
    check(mqtt_connect(c, g_url), "mqtt_connect");
    return c;
}

static void subscribe(mqtt_client *c, const char *filter, int qos) {
    int rc = mqtt_subscribe(c, filter, qos, NULL);
    if (rc != qos)
        die("mqtt_subscribe %s: %d %s (%s)", filter, rc, mqtt_strerror(rc), mqtt_last_error());
}

static void publish(mqtt_client *c, const char *topic, const void *p, size_t len, int qos) {
    int rc = mqtt_publish(c, topic, p, len, qos, false, NULL);
    /* 0x10 "no matching subscribers" would mean our subscriber is gone. */
    if (rc != MQTT_OK)
        die("mqtt_publish %s qos %d: %d %s (%s)", topic, qos, rc, mqtt_strerror(rc), mqtt_last_error());
}

static void finish(mqtt_client *c) {
    check(mqtt_disconnect(c, 0, NULL), "mqtt_disconnect");
    mqtt_client_free(c);
}

/* ---- latency ---------------------------------------------------------- */

static char g_resp_topic[128];
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long got; /* latest echoed sequence number */
    long responder_errors;
} lat = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, -1, 0};

/* Responder: republish from inside the callback (a blocking QoS 1 publish). */
static void responder_cb(void *ud, const mqtt_message *m) {
    mqtt_client *self = ud;
    size_t len = 0;
    const void *p = mqtt_message_payload(m, &len);
    int rc = mqtt_publish(self, g_resp_topic, p, len, MQTT_QOS1, false, NULL);
    if (rc != MQTT_OK) {
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

static void scenario_latency(const struct args *a) {
    char req[128], id[128];
    snprintf(req, sizeof req, "bench/req/%s", a->run);
    snprintf(g_resp_topic, sizeof g_resp_topic, "bench/resp/%s", a->run);

    /* The responder's callback needs its own client pointer: set it after creation. */
    snprintf(id, sizeof id, "%s-resp", a->run);
    mqtt_client *resp = new_client(id, NULL, NULL);
    check(mqtt_set_message_callback(resp, responder_cb, resp), "mqtt_set_message_callback");
    subscribe(resp, req, MQTT_QOS1);
    snprintf(id, sizeof id, "%s-req", a->run);
    mqtt_client *rq = new_client(id, requester_cb, NULL);
    subscribe(rq, g_resp_topic, MQTT_QOS1);

    int64_t *rtt = calloc((size_t)a->count, sizeof *rtt);
    if (!rtt)
        die("out of memory");
    char payload[PAYLOAD_LEN];
    long done = 0;
    int64_t start = now_ns();
    for (long i = 0; i < a->count && now_ns() - start < LATENCY_CAP_NS; i++) {
        make_payload(payload, i);
        int64_t t0 = now_ns();
        publish(rq, req, payload, sizeof payload, MQTT_QOS1);
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
    finish(rq);
    finish(resp);
    report_latency("latency", rtt, done, a->count);
    report_peak_rss("latency");
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
    int64_t t0 = now_ns();
    for (long i = 0; i < a->count; i++) {
        make_payload(payload, i);
        publish(pub, topic, payload, sizeof payload, qos);
    }
    int64_t t_pub = now_ns();
    sink_wait(&s, qos);
    sink_report(&s, name, qos, t0, t_pub);
    report_peak_rss(name);
    finish(pub);
    finish(sub);
}

/* ---- idle clients --------------------------------------------------------- */

static void scenario_idle(const struct args *a) {
    long th0 = proc_threads(), rss0 = proc_status_kb("VmRSS");
    mqtt_client **c = calloc((size_t)a->count, sizeof *c);
    if (!c)
        die("out of memory");
    char id[128];
    for (long i = 0; i < a->count; i++) {
        snprintf(id, sizeof id, "%s-idle-%ld", a->run, i);
        c[i] = new_client(id, NULL, NULL);
    }
    sleep_ms(IDLE_SETTLE_MS);
    for (long i = 0; i < a->count; i++)
        if (mqtt_is_connected(c[i]) != 1)
            die("idle: client %ld is not connected", i);
    long th1 = proc_threads(), rss1 = proc_status_kb("VmRSS");
    result("idle", "clients", "%ld", a->count);
    result("idle", "threads_before", "%ld", th0);
    result("idle", "threads_after", "%ld", th1);
    result("idle", "rss_before_kb", "%ld", rss0);
    result("idle", "rss_after_kb", "%ld", rss1);
    result("idle", "rss_per_client_kb", "%.1f", (double)(rss1 - rss0) / (double)a->count);
    for (long i = 0; i < a->count; i++)
        finish(c[i]);
    free(c);
}

int main(int argc, char **argv) {
    g_lib = "mqtt5c";
    struct args a = parse_args(argc, argv);
    if (mqtt_version_number() != MQTT5C_VERSION_NUMBER)
        die("header version %d, library version %u", MQTT5C_VERSION_NUMBER, mqtt_version_number());
    snprintf(g_url, sizeof g_url, strchr(a.host, ':') ? "mqtt://[%s]:%d" : "mqtt://%s:%d", a.host, a.port);
    if (!strcmp(a.scenario, "latency"))
        scenario_latency(&a);
    else if (!strcmp(a.scenario, "qos0"))
        scenario_throughput(&a, 0);
    else if (!strcmp(a.scenario, "qos1"))
        scenario_throughput(&a, 1);
    else
        scenario_idle(&a);
    return 0;
}

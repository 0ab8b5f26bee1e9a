/*
 * Benchmark of Eclipse Paho C's asynchronous API (MQTTAsync,
 * libpaho-mqtt3a), MQTT v5, for the one scenario with persistence (see
 * common.h for usage and output):
 *
 *   qos1persist  as qos1async, with Paho's file persistence
 *                (MQTTCLIENT_PERSISTENCE_DEFAULT) in BENCH_PERSIST_DIR
 *
 * One thread publishes with MQTTAsync_sendMessage, which queues the
 * message (and, with persistence, writes it to a file of its own) and
 * returns, or refuses it while its queue is full (maxBufferedMessages, 100
 * by default): then the thread waits for an acknowledgement and tries
 * again. onSuccess5 counts the acknowledgements, and the thread then
 * waits for all of them. Defaults otherwise: connect options
 * MQTTAsync_connectOptions_initializer5 (maxInflight 65535, so the broker's
 * Receive Maximum, 20, is the limit), Nagle on. The subscriber is an
 * MQTTAsync client without persistence. Callbacks run on Paho's threads.
 */
/* One scenario: most of the shared helpers go unused here. */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "common.h"

#include <MQTTAsync.h>

static char g_uri[300];

/* A call's completion, waited for by the application thread. */
struct done {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int finished, failed, code;
};

static void done_init(struct done *d) {
    memset(d, 0, sizeof *d);
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
}

static void done_set(struct done *d, int failed, int code) {
    pthread_mutex_lock(&d->mu);
    d->finished = 1;
    d->failed = failed;
    d->code = code;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

static void on_ok(void *ctx, MQTTAsync_successData5 *r) {
    (void)r;
    done_set(ctx, 0, 0);
}

static void on_fail(void *ctx, MQTTAsync_failureData5 *r) {
    done_set(ctx, 1, r ? r->code : -1);
}

static void done_wait(struct done *d, const char *what) {
    pthread_mutex_lock(&d->mu);
    struct timespec dl = deadline_in_ms(WAIT_TIMEOUT_MS);
    while (!d->finished)
        if (pthread_cond_timedwait(&d->cv, &d->mu, &dl) == ETIMEDOUT)
            die("%s: no answer within %d ms", what, WAIT_TIMEOUT_MS);
    int failed = d->failed, code = d->code;
    pthread_mutex_unlock(&d->mu);
    if (failed)
        die("%s failed: %d %s", what, code, MQTTAsync_strerror(code));
}

static int msg_arrived(void *ctx, char *topic, int topic_len, MQTTAsync_message *m) {
    (void)topic_len;
    if (ctx)
        sink_add(ctx, m->payload, (size_t)m->payloadlen);
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    return 1;
}

static void conn_lost(void *ctx, char *cause) {
    (void)ctx;
    fprintf(stderr, "%s: connection lost: %s\n", g_lib, cause ? cause : "(no cause)");
}

/* A connected client; `dir` non-NULL turns on Paho's file persistence. */
static MQTTAsync new_client(const char *id, const char *dir, struct sink *s) {
    MQTTAsync h;
    MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer5;
    int type = dir ? MQTTCLIENT_PERSISTENCE_DEFAULT : MQTTCLIENT_PERSISTENCE_NONE;
    int rc = MQTTAsync_createWithOptions(&h, g_uri, id, type, (void *)dir, &co);
    if (rc != MQTTASYNC_SUCCESS)
        die("MQTTAsync_createWithOptions: %d %s", rc, MQTTAsync_strerror(rc));
    rc = MQTTAsync_setCallbacks(h, s, conn_lost, msg_arrived, NULL);
    if (rc != MQTTASYNC_SUCCESS)
        die("MQTTAsync_setCallbacks: %d %s", rc, MQTTAsync_strerror(rc));
    struct done d;
    done_init(&d);
    MQTTAsync_connectOptions o = MQTTAsync_connectOptions_initializer5;
    o.onSuccess5 = on_ok;
    o.onFailure5 = on_fail;
    o.context = &d;
    rc = MQTTAsync_connect(h, &o);
    if (rc != MQTTASYNC_SUCCESS)
        die("MQTTAsync_connect: %d %s", rc, MQTTAsync_strerror(rc));
    done_wait(&d, "connect");
    return h;
}

static void subscribe(MQTTAsync h, const char *filter) {
    struct done d;
    done_init(&d);
    MQTTAsync_responseOptions o = MQTTAsync_responseOptions_initializer;
    o.onSuccess5 = on_ok;
    o.onFailure5 = on_fail;
    o.context = &d;
    int rc = MQTTAsync_subscribe(h, filter, 1, &o);
    if (rc != MQTTASYNC_SUCCESS)
        die("MQTTAsync_subscribe: %d %s", rc, MQTTAsync_strerror(rc));
    done_wait(&d, "subscribe");
}

static void finish(MQTTAsync h) {
    struct done d;
    done_init(&d);
    MQTTAsync_disconnectOptions o = MQTTAsync_disconnectOptions_initializer5;
    o.onSuccess5 = on_ok;
    o.onFailure5 = on_fail;
    o.context = &d;
    int rc = MQTTAsync_disconnect(h, &o);
    if (rc != MQTTASYNC_SUCCESS)
        die("MQTTAsync_disconnect: %d %s", rc, MQTTAsync_strerror(rc));
    done_wait(&d, "disconnect");
    MQTTAsync_destroy(&h);
}

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long done, failed;
    int first_failure;
} acks = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0};

static void ack(int failed, int code) {
    pthread_mutex_lock(&acks.mu);
    if (failed && acks.failed++ == 0)
        acks.first_failure = code;
    acks.done++;
    pthread_cond_broadcast(&acks.cv);
    pthread_mutex_unlock(&acks.mu);
}

static void on_sent(void *ctx, MQTTAsync_successData5 *r) {
    (void)ctx;
    (void)r;
    ack(0, 0);
}

static void on_not_sent(void *ctx, MQTTAsync_failureData5 *r) {
    (void)ctx;
    ack(1, r ? r->code : -1);
}

static long acks_done(void) {
    pthread_mutex_lock(&acks.mu);
    long n = acks.done;
    pthread_mutex_unlock(&acks.mu);
    return n;
}

/* Waits until more than `seen` acknowledgements came. */
static void wait_for_ack_after(long seen) {
    pthread_mutex_lock(&acks.mu);
    struct timespec dl = deadline_in_ms(WAIT_TIMEOUT_MS);
    while (acks.done <= seen)
        if (pthread_cond_timedwait(&acks.cv, &acks.mu, &dl) == ETIMEDOUT)
            die("no acknowledgement within %d ms", WAIT_TIMEOUT_MS);
    pthread_mutex_unlock(&acks.mu);
}

static void scenario_qos1persist(const struct args *a, const char *dir) {
    const char *name = "qos1persist";
    char topic[128], id[128];
    snprintf(topic, sizeof topic, "bench/tp/%s", a->run);
    struct sink s;
    sink_init(&s, a->count);
    snprintf(id, sizeof id, "%s-sub", a->run);
    MQTTAsync sub = new_client(id, NULL, &s);
    subscribe(sub, topic);
    snprintf(id, sizeof id, "%s-pub", a->run);
    MQTTAsync pub = new_client(id, dir, NULL);

    char payload[PAYLOAD_LEN];
    struct usage u = usage_start();
    int64_t t0 = now_ns();
    long i = 0;
    for (; keep_publishing(i, a->count, t0); i++) {
        make_payload(payload, i);
        MQTTAsync_message m = MQTTAsync_message_initializer;
        m.payload = payload;
        m.payloadlen = PAYLOAD_LEN;
        m.qos = 1;
        MQTTAsync_responseOptions o = MQTTAsync_responseOptions_initializer;
        o.onSuccess5 = on_sent;
        o.onFailure5 = on_not_sent;
        int rc;
        /* Paho's flow control: a full command queue (maxBufferedMessages,
         * 100 by default) refuses more; wait for an acknowledgement. */
        while ((rc = MQTTAsync_sendMessage(pub, topic, &m, &o)) == MQTTASYNC_MAX_BUFFERED_MESSAGES)
            wait_for_ack_after(acks_done());
        if (rc != MQTTASYNC_SUCCESS)
            die("MQTTAsync_sendMessage: %d %s", rc, MQTTAsync_strerror(rc));
    }
    int64_t t_pub = now_ns();
    pthread_mutex_lock(&acks.mu);
    struct timespec dl = deadline_in_ms(WAIT_TIMEOUT_MS);
    while (acks.done < i)
        if (pthread_cond_timedwait(&acks.cv, &acks.mu, &dl) == ETIMEDOUT)
            die("%s: %ld of %ld completions", name, acks.done, i);
    if (acks.failed)
        die("%s: %ld publishes failed, first with %d", name, acks.failed, acks.first_failure);
    pthread_mutex_unlock(&acks.mu);
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

int main(int argc, char **argv) {
    g_lib = "paho";
    struct args a = parse_args(argc, argv);
    const char *dir = getenv("BENCH_PERSIST_DIR");
    if (!dir || !*dir)
        die("BENCH_PERSIST_DIR is not set");
    snprintf(g_uri, sizeof g_uri, "tcp://%s:%d", a.host, a.port);
    if (strcmp(a.scenario, "qos1persist") != 0)
        die("only the qos1persist scenario uses MQTTAsync");
    scenario_qos1persist(&a, dir);
    return 0;
}

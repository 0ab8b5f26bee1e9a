/*
 * Shared helpers of the three benchmark programs (bench_mqtt5c.c,
 * bench_mosquitto.c, bench_paho.c): argument parsing, clocks, statistics,
 * /proc readings, payload encoding and the RESULT output format.
 *
 * Every program is invoked as
 *
 *   bench_<lib> HOST PORT SCENARIO [COUNT]
 *
 *   SCENARIO  latency  COUNT QoS 1 round trips (default 200, capped at ~10 s)
 *             echo0    as latency at QoS 0 (request and echo)
 *             qos0     COUNT QoS 0 messages publisher -> subscriber (default 100000)
 *             qos1     COUNT QoS 1 messages publisher -> subscriber (default 20000)
 *             qos1mt   as qos1, but PUB_THREADS application threads share the
 *                      one publishing client (mqtt5c only: its mqtt_publish
 *                      blocks until PUBACK, so this is how its users get
 *                      several messages in flight)
 *             qos1async as qos1, one thread publishing with
 *                      mqtt_publish_async (mqtt5c only), then waiting for
 *                      every completion
 *             qos1persist as qos1async with persistence to disk in
 *                      BENCH_PERSIST_DIR (mqtt5c; Paho C's MQTTAsync with
 *                      its file persistence in bench_paho_async.c)
 *             qos1persistmt as qos1persist from PUB_THREADS threads sharing
 *                      the publisher (mqtt5c only)
 *             idle     COUNT idle connected clients (default 100)
 *             idle10k  as idle with 10,000 clients by default; a client that
 *                      cannot connect ends the ramp instead of the run, and
 *                      `clients` says how many were connected (libmosquitto's
 *                      select() loop stops at about 340)
 *
 * and prints lines "RESULT <lib> <scenario> <metric> <value>" on stdout.
 * Any failure prints "ERROR ..." on stderr and exits with status 1.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#define _GNU_SOURCE

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define PAYLOAD_LEN 64
#define LATENCY_CAP_NS (10LL * 1000000000LL) /* stop the latency loop after ~10 s */
#define PUBLISH_CAP_NS (10LL * 1000000000LL) /* stop a throughput publisher after ~10 s */
#define WAIT_TIMEOUT_MS 60000                /* longest wait for any single step */
#define QOS0_QUIET_MS 2000                   /* QoS 0: give up after 2 s without a message */
#define PUB_THREADS 4                        /* qos1mt */
#define IDLE_SETTLE_MS 2500                  /* idle clients sit this long before measuring */

static const char *g_lib = "?";

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "ERROR %s: ", g_lib);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fflush(stdout);
    _exit(1); /* do not run library destructors with threads in an unknown state */
}

static void result(const char *scenario, const char *metric, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void result(const char *scenario, const char *metric, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    printf("RESULT %s %s %s ", g_lib, scenario, metric);
    vprintf(fmt, ap);
    putchar('\n');
    fflush(stdout);
    va_end(ap);
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Absolute CLOCK_REALTIME deadline for pthread_cond_timedwait. */
static struct timespec deadline_in_ms(long ms) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

/* ---- /proc/self ---------------------------------------------------------- */

static long proc_threads(void) {
    DIR *d = opendir("/proc/self/task");
    if (!d)
        die("opendir /proc/self/task: %s", strerror(errno));
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* Open file descriptors of this process. */
static long proc_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        die("opendir /proc/self/fd: %s", strerror(errno));
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory being read */
}

/* A "Key:   123 kB" line of /proc/self/status, in kB. */
static long proc_status_kb(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        die("fopen /proc/self/status: %s", strerror(errno));
    char line[256];
    size_t klen = strlen(key);
    long v = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            v = strtol(line + klen + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    if (v < 0)
        die("no %s in /proc/self/status", key);
    return v;
}

/*
 * Results of the idle scenarios (RSS in kB, taken from VmRSS): `scenario` is
 * "idle" or "idle10k", `n` the clients connected (for idle10k possibly fewer
 * than asked: `wanted`), fds0/fds1 the open descriptors before and after.
 */
struct idle_readings {
    long n, wanted, th0, th1, rss0, rss_first, rss1, fds0, fds1;
};

static void report_idle(const char *scenario, const struct idle_readings *r) {
    result(scenario, "clients", "%ld", r->n);
    if (r->n < r->wanted)
        result(scenario, "clients_wanted", "%ld", r->wanted);
    result(scenario, "threads_before", "%ld", r->th0);
    result(scenario, "threads_after", "%ld", r->th1);
    result(scenario, "rss_before_kb", "%ld", r->rss0);
    result(scenario, "rss_after_kb", "%ld", r->rss1);
    result(scenario, "rss_first_client_kb", "%ld", r->rss_first - r->rss0);
    if (r->n > 1)
        result(scenario, "rss_per_extra_client_kb", "%.1f", (double)(r->rss1 - r->rss_first) / (double)(r->n - 1));
    if (r->n > 0)
        result(scenario, "fds_per_client", "%.2f", (double)(r->fds1 - r->fds0) / (double)r->n);
}

/* Raises the soft descriptor limit to the hard one (idle10k). */
static __attribute__((unused)) void raise_fd_limit(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* threads: the thread count while the clients were still connected. */
static void report_process(const char *scenario, long threads) {
    result(scenario, "threads_active", "%ld", threads);
    result(scenario, "peak_rss_kb", "%ld", proc_status_kb("VmHWM"));
}

/* ---- CPU time and context switches (getrusage) -------------------------- */

/*
 * getrusage(RUSAGE_SELF) around a scenario's message phase: every thread of
 * this (client) process, the library's threads included; not the broker.
 */
struct usage {
    struct rusage start, end;
};

static struct rusage rusage_self(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        die("getrusage: %s", strerror(errno));
    return ru;
}

static struct usage usage_start(void) {
    struct usage u;
    memset(&u, 0, sizeof u);
    u.start = rusage_self();
    return u;
}

static void usage_stop(struct usage *u) {
    u->end = rusage_self();
}

static double tv_s(struct timeval tv) {
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/*
 * cpu_s_per_100k: user + system CPU seconds per 100,000 messages;
 * csw_per_msg: context switches (voluntary + involuntary) per message, and
 * each kind alone. `messages` is what the scenario counts as one message
 * (a published message; a round trip for the latency scenarios).
 */
static void report_usage(const char *scenario, const struct usage *u, long messages) {
    if (messages <= 0)
        return;
    double cpu = tv_s(u->end.ru_utime) - tv_s(u->start.ru_utime) + tv_s(u->end.ru_stime) - tv_s(u->start.ru_stime);
    long vol = u->end.ru_nvcsw - u->start.ru_nvcsw, invol = u->end.ru_nivcsw - u->start.ru_nivcsw;
    double n = (double)messages;
    result(scenario, "cpu_s_per_100k", "%.3f", cpu * 100000.0 / n);
    result(scenario, "csw_per_msg", "%.5f", (double)(vol + invol) / n);
    result(scenario, "vcsw_per_msg", "%.5f", (double)vol / n);
    result(scenario, "ivcsw_per_msg", "%.5f", (double)invol / n);
}

/* ---- payloads: 64 bytes, "<seq>" then filler ----------------------------- */

static void make_payload(char *buf, long seq) {
    memset(buf, 'x', PAYLOAD_LEN);
    int n = snprintf(buf, PAYLOAD_LEN, "%ld;", seq);
    buf[n] = 'x'; /* overwrite the NUL snprintf wrote */
}

/* The sequence number of a payload, or -1 if it is not one of ours. */
static long parse_payload(const void *p, size_t len) {
    if (len != PAYLOAD_LEN)
        return -1;
    const char *s = p;
    long v = 0;
    size_t i = 0;
    for (; i < 20 && s[i] >= '0' && s[i] <= '9'; i++)
        v = v * 10 + (s[i] - '0');
    if (i == 0 || s[i] != ';')
        return -1;
    return v;
}

/* ---- statistics ---------------------------------------------------------- */

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void report_latency(const char *scenario, int64_t *rtt_ns, long n, long wanted) {
    if (n <= 0)
        die("latency: no round trip completed");
    qsort(rtt_ns, (size_t)n, sizeof *rtt_ns, cmp_i64);
    double sum = 0;
    for (long i = 0; i < n; i++)
        sum += (double)rtt_ns[i];
    long p99 = (long)((double)(n - 1) * 0.99 + 0.5);
    result(scenario, "round_trips", "%ld", n);
    if (n < wanted)
        result(scenario, "capped_at_10s", "%ld", wanted);
    result(scenario, "rtt_median_us", "%.1f", (double)rtt_ns[(n - 1) / 2] / 1000.0);
    result(scenario, "rtt_p99_us", "%.1f", (double)rtt_ns[p99] / 1000.0);
    result(scenario, "rtt_mean_us", "%.1f", sum / (double)n / 1000.0);
}

/* ---- receive bookkeeping shared by the throughput subscribers ------------ */

struct sink {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long expected;    /* COUNT: the sequence numbers are 0..expected-1 */
    long sent;        /* how many were published (< expected if capped at 10 s) */
    long received;    /* callbacks with one of our payloads */
    long unique;      /* distinct sequence numbers */
    long duplicates;
    long out_of_order;
    long last_seq;
    long foreign;     /* messages that are not ours */
    int64_t last_ns;  /* time of the latest receipt */
    unsigned char *seen;
};

static void sink_init(struct sink *s, long expected) {
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->expected = expected;
    s->sent = expected;
    s->last_seq = -1;
    s->seen = calloc((size_t)expected, 1);
    if (!s->seen)
        die("out of memory");
}

/* Called from a message callback. */
static void sink_add(struct sink *s, const void *payload, size_t len) {
    int64_t t = now_ns();
    long seq = parse_payload(payload, len);
    pthread_mutex_lock(&s->mu);
    if (seq < 0 || seq >= s->expected) {
        s->foreign++;
    } else {
        s->received++;
        if (s->seen[seq]) {
            s->duplicates++;
        } else {
            s->seen[seq] = 1;
            s->unique++;
        }
        if (seq < s->last_seq)
            s->out_of_order++;
        s->last_seq = seq;
        s->last_ns = t;
        if (s->unique == s->sent)
            pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
}

/* The publisher stopped after `sent` messages. */
static void sink_set_sent(struct sink *s, long sent) {
    pthread_mutex_lock(&s->mu);
    s->sent = sent;
    pthread_mutex_unlock(&s->mu);
}

/* Whether a throughput publisher should go on with message i. */
static bool keep_publishing(long i, long count, int64_t t0) {
    return i < count && now_ns() - t0 < PUBLISH_CAP_NS;
}

/*
 * Waits until all sent messages arrived; for QoS 0, gives up once no
 * message came for QOS0_QUIET_MS (losses are reported, not hidden).
 */
static void sink_wait(struct sink *s, int qos) {
    pthread_mutex_lock(&s->mu);
    int64_t start = now_ns();
    long last_count = -1;
    int64_t last_change = start;
    while (s->unique < s->sent) {
        struct timespec dl = deadline_in_ms(100);
        pthread_cond_timedwait(&s->cv, &s->mu, &dl);
        int64_t t = now_ns();
        if (s->unique != last_count) {
            last_count = s->unique;
            last_change = t;
        }
        if (qos == 0 && t - last_change > (int64_t)QOS0_QUIET_MS * 1000000)
            break;
        if (t - start > (int64_t)WAIT_TIMEOUT_MS * 1000000)
            break;
    }
    pthread_mutex_unlock(&s->mu);
}

/* Prints the throughput results; exits non-zero when QoS 1 lost messages. */
static void sink_report(struct sink *s, const char *scenario, int qos, int64_t t0, int64_t t_published) {
    pthread_mutex_lock(&s->mu);
    long unique = s->unique, dups = s->duplicates, ooo = s->out_of_order,
         foreign = s->foreign;
    int64_t last = s->last_ns;
    long sent = s->sent;
    pthread_mutex_unlock(&s->mu);
    if (sent < s->expected)
        result(scenario, "capped_at_10s", "%ld", s->expected);
    result(scenario, "sent", "%ld", sent);
    result(scenario, "received", "%ld", unique);
    result(scenario, "lost", "%ld", sent - unique);
    if (dups)
        result(scenario, "duplicates", "%ld", dups);
    if (ooo)
        result(scenario, "out_of_order", "%ld", ooo);
    if (foreign)
        result(scenario, "foreign", "%ld", foreign);
    result(scenario, "publish_s", "%.3f", (double)(t_published - t0) / 1e9);
    if (unique > 0 && last > t0) {
        result(scenario, "msgs_per_s", "%.0f", (double)unique / ((double)(last - t0) / 1e9));
    }
    if (unique == 0)
        die("%s: no message arrived", scenario);
    if (qos > 0 && unique != sent)
        die("%s: only %ld of %ld QoS %d messages arrived", scenario, unique, sent, qos);
}

/* ---- arguments ------------------------------------------------------------ */

struct args {
    const char *host;
    int port;
    const char *scenario;
    long count;
    char run[48]; /* unique per process: topics bench/.../<run> */
};

static struct args parse_args(int argc, char **argv) {
    struct args a;
    memset(&a, 0, sizeof a);
    if (argc < 4 || argc > 5) {
        fprintf(stderr,
                "usage: %s HOST PORT latency|echo0|qos0|qos1|qos1mt|qos1async|qos1persist|idle|idle10k [COUNT]\n"
                "  latency  COUNT QoS 1 round trips via a responder client (default 200, ~10 s cap)\n"
                "  echo0    as latency at QoS 0 (the echo published from the message callback)\n"
                "  qos0     COUNT QoS 0 messages of %d bytes, publisher -> subscriber (default 100000)\n"
                "  qos1     COUNT QoS 1 messages of %d bytes (default 20000)\n"
                "  qos1mt   as qos1 from %d threads sharing the publisher (mqtt5c only)\n"
                "  qos1async as qos1 with mqtt_publish_async from one thread (mqtt5c only)\n"
                "  qos1persist as qos1async with persistence in $BENCH_PERSIST_DIR\n"
                "  qos1persistmt as qos1persist from %d threads (mqtt5c only)\n"
                "  idle     COUNT idle connected clients: threads, RSS and descriptors (default 100)\n"
                "  idle10k  as idle, 10,000 clients by default, stopping at the first that fails\n",
                argv[0], PAYLOAD_LEN, PAYLOAD_LEN, PUB_THREADS, PUB_THREADS);
        exit(2);
    }
    a.host = argv[1];
    char *end;
    long port = strtol(argv[2], &end, 10);
    if (*end || port <= 0 || port > 65535)
        die("bad port '%s'", argv[2]);
    a.port = (int)port;
    a.scenario = argv[3];
    long def;
    if (!strcmp(a.scenario, "latency") || !strcmp(a.scenario, "echo0"))
        def = 200;
    else if (!strcmp(a.scenario, "puback"))
        def = 2000;
    else if (!strcmp(a.scenario, "qos0"))
        def = 100000;
    else if (!strcmp(a.scenario, "qos1") || !strcmp(a.scenario, "qos1mt") ||
             !strcmp(a.scenario, "qos1async") || !strcmp(a.scenario, "qos1persist") ||
             !strcmp(a.scenario, "qos1persistmt"))
        def = 20000;
    else if (!strcmp(a.scenario, "idle"))
        def = 100;
    else if (!strcmp(a.scenario, "idle10k"))
        def = 10000;
    else
        die("unknown scenario '%s'", a.scenario);
    a.count = def;
    if (argc == 5) {
        a.count = strtol(argv[4], &end, 10);
        if (*end || a.count <= 0 || a.count > 100000000)
            die("bad count '%s'", argv[4]);
    }
    snprintf(a.run, sizeof a.run, "%s-%ld-%lld", g_lib, (long)getpid(), (long long)(now_ns() % 1000000007LL));
    return a;
}

#endif /* BENCH_COMMON_H */

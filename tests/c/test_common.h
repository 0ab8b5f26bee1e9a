/*
 * Shared helpers for the C tests in tests/c/. Include this first: it sets the
 * feature-test macro before any system header.
 *
 * Every test program takes the broker port in argv[1] (or env MQTT_TEST_PORT),
 * prints progress to stdout, prints "FAIL file:line: ..." to stderr on the
 * first failed check and exits non-zero.
 *
 * Waiting is always on a condition (counter reached, event seen) with a
 * timeout; timeouts are multiplied by 10 under valgrind (MQTT5C_VALGRIND=1)
 * or by MQTT5C_TEST_TIMEOUT_SCALE.
 */
#ifndef MQTT5C_TEST_COMMON_H
#define MQTT5C_TEST_COMMON_H

#define _POSIX_C_SOURCE 200809L

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "mqtt5c.h"

static int test_failed;

#define TEST_LOG(...)                                                          \
    do {                                                                       \
        printf(__VA_ARGS__);                                                   \
        putchar('\n');                                                         \
        fflush(stdout);                                                        \
    } while (0)

/* Fails the test (goto cleanup) unless cond holds. */
#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "FAIL %s:%d: `%s`: ", __FILE__, __LINE__, #cond);  \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
            test_failed = 1;                                                   \
            goto cleanup;                                                      \
        }                                                                      \
    } while (0)

/* Fails the test (goto cleanup) unless expr returns want. */
#define CHECK_RC(expr, want)                                                   \
    do {                                                                       \
        int rc_ = (expr);                                                      \
        int want_ = (want);                                                    \
        if (rc_ != want_) {                                                    \
            fprintf(stderr,                                                    \
                    "FAIL %s:%d: %s returned %d (%s), want %d (%s); "          \
                    "mqtt_last_error: %.300s\n",                                   \
                    __FILE__, __LINE__, #expr, rc_, test_strerror(rc_),        \
                    want_, test_strerror(want_), test_last_error());           \
            test_failed = 1;                                                   \
            goto cleanup;                                                      \
        }                                                                      \
    } while (0)

static inline const char *test_strerror(int rc) {
    const char *s = mqtt_strerror(rc);
    return s ? s : "(null)";
}

static inline const char *test_last_error(void) {
    const char *s = mqtt_last_error();
    return s ? s : "(null)";
}

/* Case-insensitive substring test. */
static inline bool contains_ci(const char *haystack, const char *needle) {
    if (!haystack || !needle)
        return false;
    size_t n = strlen(needle);
    for (const char *h = haystack; *h; h++) {
        size_t i = 0;
        while (i < n && h[i] &&
               tolower((unsigned char)h[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n)
            return true;
    }
    return n == 0;
}

/* True when mqtt_last_error() is non-empty and contains one of the
 * (NULL-terminated list of) keywords, case-insensitively. */
static inline bool last_error_mentions(const char *const *keywords) {
    const char *e = mqtt_last_error();
    if (!e || !*e)
        return false;
    for (; *keywords; keywords++)
        if (contains_ci(e, *keywords))
            return true;
    return false;
}

/* Whether the environment variable `name` is set, and not to "" or "0". */
static inline bool test_env_on(const char *name) {
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0") != 0;
}

/* Whether the driver runs this test under valgrind (MQTT5C_VALGRIND). */
static inline bool test_under_valgrind(void) { return test_env_on("MQTT5C_VALGRIND"); }

static inline double timeout_scale(void) {
    const char *s = getenv("MQTT5C_TEST_TIMEOUT_SCALE");
    if (s && atof(s) > 0)
        return atof(s);
    if (test_under_valgrind())
        return 10.0;
    return 1.0;
}

/* The entries of a directory, without "." and "..": -1 if it cannot be
 * read. */
static inline long test_count_entries(const char *dir) {
    DIR *d = opendir(dir);
    long n = 0;
    struct dirent *e;
    if (!d)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* This process's threads now; -1 if they cannot be counted. */
static inline int test_count_threads(void) { return (int)test_count_entries("/proc/self/task"); }

static inline double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sleeps for a real purpose only (simulating a slow consumer), never to
 * wait for something to happen. */
static inline void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* $MQTT_TEST_URL when the driver runs a test over another transport (e.g.
 * mqtts://127.0.0.1:TLSPORT), else "mqtt://127.0.0.1:PORT" from argv[1] or
 * $MQTT_TEST_PORT. */
static inline const char *test_url(int argc, char **argv) {
    static char url[64];
    const char *forced = getenv("MQTT_TEST_URL");
    if (forced && *forced)
        return forced;
    const char *port = argc > 1 ? argv[1] : getenv("MQTT_TEST_PORT");
    if (!port || !*port) {
        fprintf(stderr, "usage: %s PORT (or set MQTT_TEST_PORT)\n", argv[0]);
        exit(2);
    }
    snprintf(url, sizeof url, "mqtt://127.0.0.1:%s", port);
    return url;
}

/* A mutex + condition variable (on CLOCK_MONOTONIC) guarding test state. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
} sync_t;

static inline void sync_init(sync_t *s) {
    pthread_condattr_t attr;
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &attr);
    pthread_condattr_destroy(&attr);
}

static inline void sync_destroy(sync_t *s) {
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
}

static inline void sync_lock(sync_t *s) { pthread_mutex_lock(&s->mu); }

/* Unlocks and wakes every waiter (call after changing state). */
static inline void sync_unlock_notify(sync_t *s) {
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static inline void sync_unlock(sync_t *s) { pthread_mutex_unlock(&s->mu); }

static inline struct timespec deadline_after(double seconds) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    seconds *= timeout_scale();
    time_t whole = (time_t)seconds;
    long frac = (long)((seconds - (double)whole) * 1e9);
    ts.tv_sec += whole;
    ts.tv_nsec += frac;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

/* Waits (s->mu held) on the condition variable until the deadline.
 * Returns false once the deadline has passed. */
static inline bool sync_wait_locked(sync_t *s, const struct timespec *deadline) {
    int rc = pthread_cond_timedwait(&s->cv, &s->mu, deadline);
    return rc != ETIMEDOUT;
}

/* Waits until *counter >= target (read under s->mu) or `seconds` pass
 * (scaled). Returns true when reached. */
static inline bool sync_wait_count(sync_t *s, const long *counter, long target, double seconds) {
    struct timespec deadline = deadline_after(seconds);
    bool ok = true;
    sync_lock(s);
    while (*counter < target) {
        if (!sync_wait_locked(s, &deadline)) {
            ok = *counter >= target;
            break;
        }
    }
    sync_unlock(s);
    return ok;
}

/* Waits until *flag is set (read under s->mu) or `seconds` pass
 * (scaled). Returns true when set. */
static inline bool sync_wait_flag(sync_t *s, const bool *flag, double seconds) {
    struct timespec deadline = deadline_after(seconds);
    bool ok = true;
    sync_lock(s);
    while (!*flag && ok)
        ok = sync_wait_locked(s, &deadline) || *flag;
    sync_unlock(s);
    return ok;
}

/* Reads *counter under s->mu. */
static inline long sync_get(sync_t *s, const long *counter) {
    sync_lock(s);
    long v = *counter;
    sync_unlock(s);
    return v;
}

/* Adds n to *counter under s->mu and wakes the waiters. */
static inline void sync_add(sync_t *s, long *counter, long n) {
    sync_lock(s);
    *counter += n;
    sync_unlock_notify(s);
}

/* A client with an id and defaults suitable for tests; NULL on failure
 * (with a message on stderr). */
/* A client with test defaults; queue_limit > 0 also sets its delivery
 * queue limit. */
static inline mqtt_client *test_client_new_queue(const char *client_id, size_t queue_limit) {
    mqtt_options *opts = mqtt_options_new();
    mqtt_client *client = NULL;
    if (!opts) {
        fprintf(stderr, "mqtt_options_new failed: %s\n", test_last_error());
        return NULL;
    }
    if (mqtt_options_set_client_id(opts, client_id) != MQTT5C_OK ||
        mqtt_options_set_connect_timeout(opts, (uint32_t)(10000 * timeout_scale())) != MQTT5C_OK ||
        mqtt_options_set_operation_timeout(opts, (uint32_t)(30000 * timeout_scale())) != MQTT5C_OK) {
        fprintf(stderr, "setting options for %s failed: %s\n", client_id, test_last_error());
        mqtt_options_free(opts);
        return NULL;
    }
    /* Set by the driver when it runs the test over TLS. */
    if (getenv("MQTT_TEST_CAFILE") && *getenv("MQTT_TEST_CAFILE") &&
        mqtt_options_set_tls_ca_file(opts, getenv("MQTT_TEST_CAFILE")) != MQTT5C_OK) {
        fprintf(stderr, "setting the CA file for %s failed: %s\n", client_id, test_last_error());
        mqtt_options_free(opts);
        return NULL;
    }
    if (queue_limit > 0 && mqtt_options_set_delivery_queue_limit(opts, queue_limit) != MQTT5C_OK) {
        fprintf(stderr, "setting the queue limit for %s failed: %s\n", client_id, test_last_error());
        mqtt_options_free(opts);
        return NULL;
    }
    client = mqtt_client_new(opts);
    if (!client)
        fprintf(stderr, "mqtt_client_new(%s) failed: %s\n", client_id, test_last_error());
    mqtt_options_free(opts);
    return client;
}

static inline mqtt_client *test_client_new(const char *client_id) {
    return test_client_new_queue(client_id, 0);
}

/* The number a message's payload spells in decimal (a sequence number);
 * -1 for an empty payload or one of 32 bytes or more. */
static inline long test_message_seq(const mqtt_message *m) {
    size_t len = 0;
    const char *p = mqtt_message_payload(m, &len);
    char buf[32];
    if (!p || len == 0 || len >= sizeof buf)
        return -1;
    memcpy(buf, p, len);
    buf[len] = '\0';
    return strtol(buf, NULL, 10);
}

/* What test_respond returns for a message that is not a request. */
#define TEST_NOT_A_REQUEST (-1000)

/* Answers the request `m` as a responder does: publishes `answer` to its
 * Response Topic with its Correlation Data, at `qos`. Returns
 * mqtt_publish's result, or TEST_NOT_A_REQUEST when `m` lacks either
 * property (MQTT5C_ERR_INVALID_ARGUMENT when properties cannot be made). */
static inline int test_respond(mqtt_client *c, const mqtt_message *m, const void *answer, size_t len, int qos) {
    const mqtt_properties *p = mqtt_message_properties(m);
    const char *topic = mqtt_properties_get_string(p, MQTT5C_PROP_RESPONSE_TOPIC);
    size_t cd_len = 0;
    const void *cd = mqtt_properties_get_binary(p, MQTT5C_PROP_CORRELATION_DATA, &cd_len);
    if (!topic || !cd)
        return TEST_NOT_A_REQUEST;
    mqtt_properties *rp = mqtt_properties_new();
    int rc = rp ? mqtt_properties_set_binary(rp, MQTT5C_PROP_CORRELATION_DATA, cd, cd_len) : MQTT5C_ERR_INVALID_ARGUMENT;
    if (rc == MQTT5C_OK)
        rc = mqtt_publish(c, topic, answer, len, qos, false, rp);
    mqtt_properties_free(rp);
    return rc;
}

/* Success from a publish: 0, or a v5 reason below 0x80 (0x10 No matching
 * subscribers). */
static inline bool publish_ok(int rc) { return rc >= 0 && rc < 0x80; }

/* A call's result once the connection is gone: not connected (any more),
 * or lost while the call waited. */
static inline bool test_rc_lost(int rc) {
    return rc == MQTT5C_ERR_NOT_CONNECTED || rc == MQTT5C_ERR_CONNECTION_LOST;
}

/* ------------------------------------------------------------------ */
/* A recorder of a client's events: its connection events (in order, the
 * first TEST_EVENTS_MAX kept) and its messages (the last one kept). Give
 * it to test_client_with_events, or to mqtt_set_connection_callback with
 * test_on_connection and mqtt_set_message_callback with test_on_message. */

#define TEST_EVENTS_MAX 16

typedef struct {
    sync_t s;
    long count; /* connection events seen */
    long connected;
    long disconnected;
    int events[TEST_EVENTS_MAX];
    int reasons[TEST_EVENTS_MAX];
    long messages;
    char last_topic[64];
    char last_payload[64];
} test_events_t;

static inline void test_events_init(test_events_t *e) {
    memset(e, 0, sizeof *e);
    sync_init(&e->s);
}

static inline void test_events_destroy(test_events_t *e) { sync_destroy(&e->s); }

/* Forgets what was recorded (for the next client). */
static inline void test_events_reset(test_events_t *e) {
    test_events_destroy(e);
    test_events_init(e);
}

static inline void test_on_connection(void *ud, int event, int reason) {
    test_events_t *e = ud;
    sync_lock(&e->s);
    if (e->count < TEST_EVENTS_MAX) {
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

static inline void test_on_message(void *ud, const mqtt_message *m) {
    test_events_t *e = ud;
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

/* The reason of the last DISCONNECTED event recorded, or -1000. */
static inline int test_last_disconnect_reason(test_events_t *e) {
    int r = -1000;
    sync_lock(&e->s);
    for (long i = 0; i < e->count && i < TEST_EVENTS_MAX; i++)
        if (e->events[i] == MQTT5C_EVENT_DISCONNECTED)
            r = e->reasons[i];
    sync_unlock(&e->s);
    return r;
}

/* A client with connect and operation timeouts (ms) whose events go to
 * `e`; NULL on failure (with a message on stderr). */
static inline mqtt_client *test_client_with_events(const char *id, test_events_t *e, uint32_t connect_ms,
                                                   uint32_t op_ms) {
    mqtt_options *o = mqtt_options_new();
    mqtt_client *c = NULL;
    if (!o)
        return NULL;
    if (mqtt_options_set_client_id(o, id) == MQTT5C_OK &&
        mqtt_options_set_connect_timeout(o, connect_ms) == MQTT5C_OK &&
        mqtt_options_set_operation_timeout(o, op_ms) == MQTT5C_OK)
        c = mqtt_client_new(o);
    mqtt_options_free(o);
    if (c && (mqtt_set_connection_callback(c, test_on_connection, e) != MQTT5C_OK ||
              mqtt_set_message_callback(c, test_on_message, e) != MQTT5C_OK)) {
        mqtt_client_free(c);
        c = NULL;
    }
    if (!c)
        fprintf(stderr, "creating client %s failed: %s\n", id, test_last_error());
    return c;
}

/* For a test marked `// needs: broker-control`: asks the driver to "stop"
 * the broker (SIGTERM; a persistent broker saves its database), "start" it
 * again on the same port, or "wipe" it (stop, delete its database, start:
 * every session is lost). Returns once done: true on success. */
static inline bool broker_control(const char *command) {
    const char *path = getenv("MQTT_TEST_BROKER_CONTROL");
    struct sockaddr_un addr;
    char reply[32] = {0};
    size_t got = 0;
    int fd = -1;
    bool ok = false;
    if (!path || strlen(path) >= sizeof addr.sun_path) {
        fprintf(stderr, "broker_control: MQTT_TEST_BROKER_CONTROL not set\n");
        return false;
    }
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    strcpy(addr.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0)
        goto done;
    if (write(fd, command, strlen(command)) != (ssize_t)strlen(command) || write(fd, "\n", 1) != 1)
        goto done;
    while (got < sizeof reply - 1) {
        ssize_t n = read(fd, reply + got, sizeof reply - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
        if (memchr(reply, '\n', got))
            break;
    }
    ok = strncmp(reply, "ok\n", 3) == 0;
done:
    if (fd >= 0)
        close(fd);
    if (!ok)
        fprintf(stderr, "broker_control(%s) failed: '%s'\n", command, reply);
    return ok;
}

#endif /* MQTT5C_TEST_COMMON_H */

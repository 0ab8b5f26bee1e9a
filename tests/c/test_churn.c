/*
 * Churn: connect/publish/disconnect cycles leave nothing behind, on one
 * handle (part 1: the same client connects again each cycle) and on a new
 * handle each cycle (part 2: mqtt_client_new ... mqtt_client_free).
 *
 * A cycle: connect (clean start), subscribe to the cycle's topic, publish
 * QoS 1 and QoS 0 to it, wait until the message callback has seen both
 * (payload = the cycle's number: nothing stale from an earlier cycle),
 * mqtt_disconnect. Part 1 counts the connection events (every CONNECTED and
 * DISCONNECTED delivered, in order); part 2 frees each client right after
 * mqtt_disconnect (which drops the DISCONNECTED event if still queued).
 *
 * Measured: after WARMUP cycles, the process's resident memory
 * (/proc/self/statm), open descriptors (/proc/self/fd) and threads
 * (/proc/self/task) are the baseline; after all cycles, descriptors are back
 * to the baseline, threads at most THREAD_SLACK above it (the callback pool
 * and the blocking pool leave a second after their last work: waited for),
 * resident memory at most RSS_SLACK_MIB above it.
 *
 * How many cycles per part:
 *  - `make test`: CYCLES_TEST (about 1 ms per cycle on an idle machine);
 *  - MQTT5C_SOAK=1 (`make soak`): 10,000;
 *  - under valgrind (MQTT5C_VALGRIND=1, set by the driver for `make test`'s
 *    test-c stage): CYCLES_VALGRIND, where valgrind's leak check ("definitely
 *    lost" fails the test) is the memory measure: the resident memory of
 *    valgrind's process is not ours, so its bound is not checked there;
 *  - under AddressSanitizer (`make asan`): CYCLES_TEST, the resident memory
 *    bound not checked either (ASan's quarantine keeps freed memory resident
 *    on purpose; its leak checker runs at exit instead).
 * Descriptors and threads are checked in every mode.
 */
#include "test_common.h"


#define CYCLES_SOAK 50000
#define CYCLES_TEST 10000
#define CYCLES_VALGRIND 1000
#define THREAD_SLACK 2
#define RSS_SLACK_MIB 2

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

static struct {
    sync_t s;
    long cycle;       /* the cycle whose messages are expected */
    long got_qos0, got_qos1;
    long stale;       /* messages of another cycle, or a wrong payload */
    char first_stale[96];
    long connected, disconnected;
    long out_of_order; /* a CONNECTED while connected, or the reverse */
    bool up;
} st;

/* Open descriptors, without the one opendir uses to count them. */
static long count_fds(void) { return test_count_entries("/proc/self/fd") - 1; }

static long count_threads(void) { return test_count_threads(); }

/* Resident memory in bytes (second field of /proc/self/statm, in pages). */
static long rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, resident = -1;
    if (!f)
        return -1;
    if (fscanf(f, "%ld %ld", &size, &resident) != 2)
        resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * sysconf(_SC_PAGESIZE);
}

typedef struct {
    long rss, fds, threads;
} usage_t;

static usage_t usage_now(void) {
    usage_t u = {rss_bytes(), count_fds(), count_threads()};
    return u;
}

/* Waits until descriptors and threads are within the bounds (sockets are
 * closed by runtime tasks just after mqtt_disconnect or mqtt_client_free
 * returns; idle pool threads leave after a second). Polls /proc: there is
 * no event to wait on. Returns the last measurement. */
static usage_t wait_settled(const usage_t *base, double seconds) {
    double end = now_s() + seconds * timeout_scale();
    usage_t u = usage_now();
    while ((u.fds > base->fds || u.threads > base->threads + THREAD_SLACK) && now_s() < end) {
        sleep_ms(50);
        u = usage_now();
    }
    return u;
}

static void on_message(void *ud, const mqtt_message *m) {
    (void)ud;
    size_t len = 0;
    const char *p = mqtt_message_payload(m, &len);
    char want[32];
    sync_lock(&st.s);
    int n = snprintf(want, sizeof want, "%ld", st.cycle);
    bool ok = (size_t)n == len && memcmp(p, want, len) == 0;
    if (!ok) {
        if (st.stale++ == 0)
            snprintf(st.first_stale, sizeof st.first_stale, "cycle %ld got '%.*s' on %s", st.cycle,
                     (int)(len < 32 ? len : 32), p, mqtt_message_topic(m));
    } else if (mqtt_message_qos(m) == MQTT5C_QOS1) {
        st.got_qos1++;
    } else {
        st.got_qos0++;
    }
    sync_unlock_notify(&st.s);
}

static void on_connection(void *ud, int event, int reason) {
    (void)ud;
    (void)reason;
    sync_lock(&st.s);
    if (event == MQTT5C_EVENT_CONNECTED) {
        if (st.up)
            st.out_of_order++;
        st.up = true;
        st.connected++;
    } else if (event == MQTT5C_EVENT_DISCONNECTED) {
        if (!st.up)
            st.out_of_order++;
        st.up = false;
        st.disconnected++;
    }
    sync_unlock_notify(&st.s);
}

/* One cycle on a client with on_message set: connect, subscribe, publish
 * QoS 1 and QoS 0, see both arrive, disconnect. Returns 0 or fails. */
static int cycle(mqtt_client *c, const char *url, long i) {
    char payload[32];
    int len = snprintf(payload, sizeof payload, "%ld", i);
    sync_lock(&st.s);
    st.cycle = i;
    st.got_qos0 = st.got_qos1 = 0;
    sync_unlock(&st.s);
    CHECK_RC(mqtt_connect(c, url), MQTT5C_OK);
    CHECK_RC(mqtt_subscribe(c, "churn/t", MQTT5C_QOS1, NULL), 1);
    CHECK(publish_ok(mqtt_publish(c, "churn/t", payload, (size_t)len, MQTT5C_QOS1, false, NULL)), "cycle %ld: QoS 1 publish: %s",
          i, test_last_error());
    CHECK(publish_ok(mqtt_publish(c, "churn/t", payload, (size_t)len, MQTT5C_QOS0, false, NULL)), "cycle %ld: QoS 0 publish: %s",
          i, test_last_error());
    CHECK(sync_wait_count(&st.s, &st.got_qos1, 1, 20) && sync_wait_count(&st.s, &st.got_qos0, 1, 20),
          "cycle %ld: own messages not received (QoS 1: %ld, QoS 0: %ld, stale: %ld %s)", i, sync_get(&st.s, &st.got_qos1),
          sync_get(&st.s, &st.got_qos0), sync_get(&st.s, &st.stale), st.first_stale);
    CHECK_RC(mqtt_disconnect(c, 0, NULL), MQTT5C_OK);
    return 0;
cleanup:
    return -1;
}

/* Checks the usage after the cycles against `base`. */
static int check_usage(const char *part, const usage_t *base, long cycles, bool check_rss) {
    usage_t u = wait_settled(base, 15);
    double growth_mib = (double)(u.rss - base->rss) / (1024.0 * 1024.0);
    TEST_LOG("%s: after %ld cycles: rss %+.2f MiB (%ld -> %ld KiB), fds %ld -> %ld, threads %ld -> %ld", part, cycles,
             growth_mib, base->rss / 1024, u.rss / 1024, base->fds, u.fds, base->threads, u.threads);
    CHECK(u.fds >= 0 && u.threads >= 0 && u.rss >= 0, "cannot read /proc/self");
    CHECK(u.fds <= base->fds, "%s: %ld descriptors open after %ld cycles, %ld at the baseline", part, u.fds, cycles, base->fds);
    CHECK(u.threads <= base->threads + THREAD_SLACK, "%s: %ld threads after %ld cycles, %ld at the baseline", part, u.threads,
          cycles, base->threads);
    if (check_rss)
        CHECK(growth_mib <= RSS_SLACK_MIB, "%s: resident memory grew by %.2f MiB over %ld cycles (bound %d MiB)", part,
              growth_mib, cycles, RSS_SLACK_MIB);
    return 0;
cleanup:
    return -1;
}

int main(int argc, char **argv) {
    const char *url = test_url(argc, argv);
    bool valgrind = test_under_valgrind();
    long cycles = valgrind ? CYCLES_VALGRIND : test_env_on("MQTT5C_SOAK") ? CYCLES_SOAK : CYCLES_TEST;
    long warmup = cycles / 10 < 200 ? cycles / 10 : 200;
    bool check_rss = !valgrind && !UNDER_ASAN;
    mqtt_client *one = NULL, *c = NULL;
    usage_t base = {0, 0, 0};
    double started;

    sync_init(&st.s);
    TEST_LOG("%ld cycles per part (warm-up %ld)%s", cycles, warmup,
             check_rss ? "" : "; resident memory not bounded in this mode");

    /* ---- part 1: one handle ---- */
    one = test_client_new("churn-one");
    CHECK(one != NULL, "client creation failed");
    CHECK_RC(mqtt_set_message_callback(one, on_message, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_set_connection_callback(one, on_connection, NULL), MQTT5C_OK);
    started = now_s();
    for (long i = 0; i < cycles; i++) {
        if (i == warmup)
            base = usage_now();
        CHECK(cycle(one, url, i) == 0, "part 1, cycle %ld", i);
    }
    CHECK(sync_wait_count(&st.s, &st.disconnected, cycles, 20), "%ld DISCONNECTED events of %ld", sync_get(&st.s, &st.disconnected),
          cycles);
    CHECK(sync_get(&st.s, &st.connected) == cycles, "%ld CONNECTED events of %ld", sync_get(&st.s, &st.connected), cycles);
    CHECK(sync_get(&st.s, &st.out_of_order) == 0, "connection events out of order");
    CHECK(sync_get(&st.s, &st.stale) == 0, "%s", st.first_stale);
    TEST_LOG("part 1: %ld cycles on one handle in %.1f s", cycles, now_s() - started);
    CHECK(check_usage("one handle", &base, cycles - warmup, check_rss) == 0, "part 1 usage");
    mqtt_client_free(one);
    one = NULL;

    /* ---- part 2: a new handle each cycle ---- */
    started = now_s();
    for (long i = 0; i < cycles; i++) {
        if (i == warmup)
            base = usage_now();
        c = test_client_new("churn-new");
        CHECK(c != NULL, "client creation failed");
        CHECK_RC(mqtt_set_message_callback(c, on_message, NULL), MQTT5C_OK);
        CHECK(cycle(c, url, i) == 0, "part 2, cycle %ld", i);
        mqtt_client_free(c);
        c = NULL;
    }
    CHECK(sync_get(&st.s, &st.stale) == 0, "%s", st.first_stale);
    TEST_LOG("part 2: %ld cycles on new handles in %.1f s", cycles, now_s() - started);
    CHECK(check_usage("new handles", &base, cycles - warmup, check_rss) == 0, "part 2 usage");

cleanup:
    mqtt_client_free(one);
    mqtt_client_free(c);
    sync_destroy(&st.s);
    if (!test_failed)
        TEST_LOG("test_churn: PASS");
    return test_failed;
}

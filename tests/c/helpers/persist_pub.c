/*
 * A helper of tests/persistence.rs, not a test of its own: a publisher
 * with persistence on, to be killed and started again.
 *
 * Usage: persist_pub URL DIR COUNT1 COUNT2
 *
 * Connects as client "persist-pub" (Clean Start 0, Session Expiry 600)
 * with its persistence directory DIR and publishes numbers from 0 up to
 * "persist/kill" at QoS 1 with mqtt_publish_async, printing each number
 * whose publish returned MQTT5C_OK on a line of its own (written at once:
 * the test kills this process and must know what was accepted): COUNT1
 * of them, then "paused", and after a line on stdin COUNT2 more. Then it
 * prints "idle" and waits until stdin closes (the test's word that what
 * it waited for arrived), disconnects and exits 0.
 * With PERSIST_OFF=1 in the environment it runs without persistence (to
 * see the test fail without it); with PERSIST_CLEAN=1, with Clean Start 1;
 * with PERSIST_OFFLINE=1, after the go it first waits until the
 * connection is lost (automatic reconnection is on), so that the second
 * batch goes into the offline queue.
 */
#include "test_common.h"

#include <unistd.h>

static void put_line(const char *s) {
    size_t n = strlen(s);
    while (n > 0) {
        ssize_t w = write(STDOUT_FILENO, s, n);
        if (w <= 0)
            exit(3);
        s += w;
        n -= (size_t)w;
    }
}

static sync_t lost_s;
static long lost;

static void on_connection(void *ud, int event, int reason) {
    (void)ud;
    (void)reason;
    if (event == MQTT5C_EVENT_DISCONNECTED)
        sync_add(&lost_s, &lost, 1);
}

static bool env_on(const char *name) {
    const char *v = getenv(name);
    return v && strcmp(v, "1") == 0;
}

/* Publishes `count` numbers from *next on, printing each accepted one. */
static int publish_numbers(mqtt_client *c, long *next, long count) {
    char line[32];
    for (long end = *next + count; *next < end; (*next)++) {
        int len = snprintf(line, sizeof line, "%ld", *next);
        int rc = mqtt_publish_async(c, "persist/kill", line, (size_t)len, MQTT5C_QOS1, false, NULL,
                                    NULL, NULL);
        if (rc != MQTT5C_OK)
            return rc;
        snprintf(line, sizeof line, "%ld\n", *next);
        put_line(line);
    }
    return MQTT5C_OK;
}

int main(int argc, char **argv) {
    mqtt_options *opts = NULL;
    mqtt_client *c = NULL;
    char line[32];
    CHECK(argc == 5, "usage: %s URL DIR COUNT1 COUNT2", argv[0]);
    long next = 0;
    sync_init(&lost_s);
    opts = mqtt_options_new();
    CHECK(opts != NULL, "mqtt_options_new");
    CHECK_RC(mqtt_options_set_client_id(opts, "persist-pub"), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_clean_start(opts, env_on("PERSIST_CLEAN")), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_auto_reconnect(opts, 50, 500), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_session_expiry(opts, 600), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_connect_timeout(opts, (uint32_t)(10000 * timeout_scale())), MQTT5C_OK);
    if (!env_on("PERSIST_OFF"))
        CHECK_RC(mqtt_options_set_persistence_dir(opts, argv[2]), MQTT5C_OK);
    c = mqtt_client_new(opts);
    CHECK(c != NULL, "mqtt_client_new: %s", test_last_error());
    CHECK_RC(mqtt_set_connection_callback(c, on_connection, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_connect(c, argv[1]), 0);
    CHECK_RC(publish_numbers(c, &next, atol(argv[3])), MQTT5C_OK);
    put_line("paused\n");
    CHECK(read(STDIN_FILENO, line, sizeof line) > 0, "stdin closed before the go");
    if (env_on("PERSIST_OFFLINE"))
        CHECK(sync_wait_count(&lost_s, &lost, 1, 20), "the connection was not lost");
    CHECK_RC(publish_numbers(c, &next, atol(argv[4])), MQTT5C_OK);
    put_line("idle\n");
    while (read(STDIN_FILENO, line, sizeof line) > 0) {
    }
    CHECK_RC(mqtt_disconnect(c, 0, NULL), MQTT5C_OK);

cleanup:
    mqtt_client_free(c);
    mqtt_options_free(opts);
    sync_destroy(&lost_s);
    return test_failed;
}

/*
 * The log callback (mqtt_set_log_callback) and the counters
 * (mqtt_client_get_stats), against a private mosquitto that the test stops
 * and starts again:
 *  - known traffic (3 QoS 0, 2 QoS 1, 2 QoS 2 messages of known sizes) is
 *    counted exactly: messages and payload bytes sent by the publisher,
 *    received by the subscriber, by QoS; nothing in flight afterwards;
 *  - mqtt5c_stats grows safely: a short buffer gets only what fits, a long
 *    one the library's fields and zeros after them; a bad size is refused;
 *  - a broker restart is counted as one reconnect, and logged: a WARNING
 *    line for the lost connection, INFO lines for the reconnection;
 *  - a callback set at MQTT5C_LOG_WARNING gets no INFO or DEBUG line;
 *  - a replaced or removed callback's free function runs exactly once,
 *    when the setter returns; the last one's inside mqtt_client_free,
 *    and no log callback runs after it;
 *  - no line holds the password or a payload byte (markers in both).
 */
// needs: broker-control
#include "test_common.h"

#include <stddef.h>

#define PASSWORD "pw-SECRET-7f3a"
#define MARKER "PAYLOAD-MARKER-91c2"
#define MAX_LINES 256

typedef struct {
    sync_t s;
    long lines;
    long warnings;          /* level MQTT5C_LOG_WARNING lines */
    long lost_lines;        /* a WARNING line about the lost connection */
    long reconnect_lines;   /* INFO lines about the reconnection */
    long above_level;       /* lines more verbose than asked for */
    long leaks;             /* lines holding the password or the marker */
    long after_free;        /* calls after the user data was released */
    long freed;             /* free function calls */
    int max_level;
    bool released;
    char first_leak[256];
} logger_t;

typedef struct {
    sync_t s;
    long messages;
    long connected;
} state_t;

static void on_log(void *ud, int level, const char *line) {
    logger_t *l = ud;
    sync_lock(&l->s);
    if (l->released)
        l->after_free++;
    l->lines++;
    if (level > l->max_level || level < MQTT5C_LOG_ERROR)
        l->above_level++;
    if (level == MQTT5C_LOG_WARNING) {
        l->warnings++;
        if (strstr(line, "connection to") && strstr(line, "ended"))
            l->lost_lines++;
    }
    if (level == MQTT5C_LOG_INFO && strstr(line, "reconnect"))
        l->reconnect_lines++;
    if (strstr(line, "SECRET") || strstr(line, MARKER)) {
        if (!l->leaks)
            snprintf(l->first_leak, sizeof l->first_leak, "%s", line);
        l->leaks++;
    }
    sync_unlock_notify(&l->s);
}

static void free_logger(void *ud) {
    logger_t *l = ud;
    sync_lock(&l->s);
    l->freed++;
    l->released = true;
    sync_unlock_notify(&l->s);
}

static void logger_init(logger_t *l, int max_level) {
    memset(l, 0, sizeof *l);
    sync_init(&l->s);
    l->max_level = max_level;
}

static void on_message(void *ud, const mqtt_message *m) {
    (void)m;
    state_t *st = ud;
    sync_add(&st->s, &st->messages, 1);
}

static void on_connection(void *ud, int event, int reason) {
    (void)reason;
    state_t *st = ud;
    if (event == MQTT5C_EVENT_CONNECTED)
        sync_add(&st->s, &st->connected, 1);
}

static mqtt_client *new_client(const char *id, bool password) {
    mqtt_options *o = mqtt_options_new();
    mqtt_client *c = NULL;
    if (!o)
        return NULL;
    if (mqtt_options_set_client_id(o, id) == MQTT5C_OK &&
        (!password ||
         mqtt_options_set_credentials(o, "user", PASSWORD, strlen(PASSWORD)) == MQTT5C_OK) &&
        mqtt_options_set_auto_reconnect(o, 50, 500) == MQTT5C_OK &&
        mqtt_options_set_connect_timeout(o, (uint32_t)(10000 * timeout_scale())) == MQTT5C_OK)
        c = mqtt_client_new(o);
    mqtt_options_free(o);
    return c;
}

/* Publishes `n` messages of `len` bytes (the marker first) at `qos`. */
static int publish_n(mqtt_client *c, int qos, int n, size_t len) {
    char payload[64];
    memset(payload, 'x', sizeof payload);
    memcpy(payload, MARKER, strlen(MARKER));
    for (int i = 0; i < n; i++) {
        int rc = mqtt_publish(c, "ls/data", payload, len, qos, false, NULL);
        if (!MQTT5C_SUCCEEDED(rc))
            return rc;
    }
    return MQTT5C_OK;
}

int main(int argc, char **argv) {
    const char *url = test_url(argc, argv);
    logger_t la, lb, la2, la3;
    logger_init(&la, MQTT5C_LOG_DEBUG);
    logger_init(&lb, MQTT5C_LOG_WARNING);
    logger_init(&la2, MQTT5C_LOG_DEBUG);
    logger_init(&la3, MQTT5C_LOG_DEBUG);
    state_t sa, sb;
    memset(&sa, 0, sizeof sa);
    memset(&sb, 0, sizeof sb);
    sync_init(&sa.s);
    sync_init(&sb.s);
    mqtt5c_stats s;
    uint64_t big[sizeof(mqtt5c_stats) / 8 + 4];
    const int n[3] = {3, 2, 2};
    const size_t len[3] = {20, 30, 40};

    mqtt_client *a = new_client("ls-pub", true);
    mqtt_client *b = new_client("ls-sub", false);
    CHECK(a && b, "mqtt_client_new: %s", test_last_error());
    /* Bad arguments change nothing. */
    CHECK_RC(mqtt_set_log_callback(a, on_log, &la, free_logger, 0), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK_RC(mqtt_set_log_callback(a, on_log, &la, free_logger, 5), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK_RC(mqtt_set_log_callback(NULL, on_log, &la, free_logger, 1), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK(sync_get(&la.s, &la.freed) == 0, "a refused registration freed its user data");

    CHECK_RC(mqtt_set_log_callback(a, on_log, &la, free_logger, MQTT5C_LOG_DEBUG), MQTT5C_OK);
    CHECK_RC(mqtt_set_log_callback(b, on_log, &lb, free_logger, MQTT5C_LOG_WARNING), MQTT5C_OK);
    CHECK_RC(mqtt_set_connection_callback(a, on_connection, &sa), MQTT5C_OK);
    CHECK_RC(mqtt_set_connection_callback(b, on_connection, &sb), MQTT5C_OK);
    CHECK_RC(mqtt_set_message_callback(b, on_message, &sb), MQTT5C_OK);
    CHECK_RC(mqtt_connect(a, url), 0);
    CHECK_RC(mqtt_connect(b, url), 0);
    CHECK_RC(mqtt_subscribe(b, "ls/#", MQTT5C_QOS2, NULL), MQTT5C_QOS2);
    CHECK(sync_wait_count(&la.s, &la.lines, 2, 20), "no log line for the connect");

    /* 1: known traffic, counted exactly. */
    for (int q = 0; q < 3; q++)
        CHECK_RC(publish_n(a, q, n[q], len[q]), MQTT5C_OK);
    CHECK(sync_wait_count(&sb.s, &sb.messages, 7, 20), "the subscriber got %ld of 7",
          sync_get(&sb.s, &sb.messages));
    CHECK_RC(mqtt_client_get_stats(a, &s, sizeof s), MQTT5C_OK);
    CHECK(s.size == sizeof s, "size %llu", (unsigned long long)s.size);
    for (int q = 0; q < 3; q++) {
        CHECK(s.messages_sent[q] == (uint64_t)n[q] &&
                  s.payload_bytes_sent[q] == (uint64_t)n[q] * len[q],
              "QoS %d sent: %llu messages, %llu bytes", q, (unsigned long long)s.messages_sent[q],
              (unsigned long long)s.payload_bytes_sent[q]);
        CHECK(s.messages_received[q] == 0, "the publisher received %llu",
              (unsigned long long)s.messages_received[q]);
    }
    CHECK(s.outbound_in_flight == 0 && s.reconnects == 0, "in flight %llu, reconnects %llu",
          (unsigned long long)s.outbound_in_flight, (unsigned long long)s.reconnects);
    CHECK_RC(mqtt_client_get_stats(b, &s, sizeof s), MQTT5C_OK);
    for (int q = 0; q < 3; q++) {
        CHECK(s.messages_received[q] == (uint64_t)n[q] &&
                  s.payload_bytes_received[q] == (uint64_t)n[q] * len[q],
              "QoS %d received: %llu messages, %llu bytes", q,
              (unsigned long long)s.messages_received[q],
              (unsigned long long)s.payload_bytes_received[q]);
        CHECK(s.messages_sent[q] == 0, "the subscriber sent %llu",
              (unsigned long long)s.messages_sent[q]);
    }
    TEST_LOG("1: 3/2/2 messages of 20/30/40 bytes counted exactly on both sides");

    /* 2: the struct's size: shorter and longer than the library's. */
    memset(&s, 0xAB, sizeof s);
    CHECK_RC(mqtt_client_get_stats(a, &s, 16), MQTT5C_OK);
    CHECK(s.size == 16 && s.messages_sent[0] == 3, "short: size %llu, [0] %llu",
          (unsigned long long)s.size, (unsigned long long)s.messages_sent[0]);
    CHECK(s.messages_sent[1] == 0xABABABABABABABABull, "wrote past the 16 bytes asked for");
    memset(big, 0xAB, sizeof big);
    CHECK_RC(mqtt_client_get_stats(a, (mqtt5c_stats *)big, sizeof big), MQTT5C_OK);
    CHECK(big[0] == sizeof(mqtt5c_stats), "long: size %llu", (unsigned long long)big[0]);
    for (size_t i = sizeof(mqtt5c_stats) / 8; i < sizeof big / 8; i++)
        CHECK(big[i] == 0, "long: word %zu not zeroed", i);
    CHECK_RC(mqtt_client_get_stats(a, &s, 7), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK_RC(mqtt_client_get_stats(a, &s, 12), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK_RC(mqtt_client_get_stats(a, NULL, sizeof s), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK_RC(mqtt_client_get_stats(NULL, &s, sizeof s), MQTT5C_ERR_INVALID_ARGUMENT);
    TEST_LOG("2: short and long buffers, bad sizes refused");

    /* 3: a broker restart: one reconnect each, logged. */
    CHECK(broker_control("stop"), "stopping the broker");
    CHECK(broker_control("start"), "starting the broker");
    CHECK(sync_wait_count(&sa.s, &sa.connected, 2, 30), "the publisher did not reconnect");
    CHECK(sync_wait_count(&sb.s, &sb.connected, 2, 30), "the subscriber did not reconnect");
    CHECK_RC(mqtt_client_get_stats(a, &s, sizeof s), MQTT5C_OK);
    CHECK(s.reconnects == 1 && s.reconnect_attempts >= 1, "reconnects %llu, attempts %llu",
          (unsigned long long)s.reconnects, (unsigned long long)s.reconnect_attempts);
    CHECK(sync_wait_count(&la.s, &la.lost_lines, 1, 20), "no WARNING line for the loss");
    CHECK(sync_wait_count(&la.s, &la.reconnect_lines, 1, 20), "no INFO line for the reconnection");
    CHECK(sync_wait_count(&lb.s, &lb.lost_lines, 1, 20), "no WARNING line at level WARNING");
    CHECK(sync_get(&lb.s, &lb.above_level) == 0, "INFO or DEBUG lines for a WARNING callback");
    CHECK(sync_get(&la.s, &la.above_level) == 0, "a line with a level out of range");
    TEST_LOG("3: the restart counted as one reconnect; %ld lines (%ld at WARNING level)",
             sync_get(&la.s, &la.lines), sync_get(&lb.s, &lb.lines));

    /* 4: the password and the payload never in a line. */
    CHECK(sync_get(&la.s, &la.leaks) == 0 && sync_get(&lb.s, &lb.leaks) == 0,
          "a log line holds a secret or a payload: %s", la.leaks ? la.first_leak : lb.first_leak);

    /* 5: replaced, removed, replaced: each free function once, at once. */
    CHECK_RC(mqtt_set_log_callback(a, on_log, &la2, free_logger, MQTT5C_LOG_DEBUG), MQTT5C_OK);
    CHECK(sync_get(&la.s, &la.freed) == 1, "replaced: freed %ld times", la.freed);
    CHECK_RC(mqtt_set_log_callback(a, NULL, &la3, free_logger, MQTT5C_LOG_DEBUG), MQTT5C_OK);
    CHECK(sync_get(&la2.s, &la2.freed) == 1, "removed: freed %ld times", la2.freed);
    CHECK(sync_get(&la3.s, &la3.freed) == 0, "a NULL callback's user data was freed");
    CHECK_RC(mqtt_set_log_callback(a, on_log, &la3, free_logger, MQTT5C_LOG_DEBUG), MQTT5C_OK);
    CHECK_RC(mqtt_disconnect(a, 0, NULL), MQTT5C_OK);
    CHECK(sync_wait_count(&la3.s, &la3.lines, 1, 20), "no line for our DISCONNECT");
    /* Connected while freed: the close has lines to log, and must not. */
    CHECK_RC(mqtt_connect(a, url), 0);
    mqtt_client_free(a);
    a = NULL;
    CHECK(sync_get(&la3.s, &la3.freed) == 1, "freed with the client: %ld times", la3.freed);
    mqtt_client_free(b);
    b = NULL;
    CHECK(sync_get(&lb.s, &lb.freed) == 1, "freed with the client: %ld times", lb.freed);
    CHECK(sync_get(&la.s, &la.freed) == 1 && sync_get(&la2.s, &la2.freed) == 1,
          "freed again: %ld, %ld", la.freed, la2.freed);
    CHECK(la.after_free + la2.after_free + la3.after_free + lb.after_free == 0,
          "a log callback ran after its user data was released");
    TEST_LOG("5: each free function once; nothing logged after it");

cleanup:
    mqtt_client_free(a);
    mqtt_client_free(b);
    sync_destroy(&la.s);
    sync_destroy(&lb.s);
    sync_destroy(&la2.s);
    sync_destroy(&la3.s);
    sync_destroy(&sa.s);
    sync_destroy(&sb.s);
    return test_failed;
}

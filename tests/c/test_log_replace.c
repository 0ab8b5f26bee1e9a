/*
 * A log callback replaced while lines are queued for it: the new callback
 * gets only the levels it asked for.
 *
 * Callback A (MQTT5C_LOG_DEBUG) holds its first call ("connecting to")
 * until mqtt_connect has returned, so that the INFO line "connected to"
 * is queued behind it, made while A's level took it. Then A replaces
 * itself with B at MQTT5C_LOG_ERROR (from inside the callback: no wait).
 * A message to ourselves, queued after that line, tells when the queue
 * has been run past it. B must not have been handed the INFO line that
 * was queued for A (a C user filtering nothing would print what it
 * never asked for), and A's free function runs exactly once (at the
 * latest inside mqtt_client_free).
 *
 * Before that: setting the callback again with the same user data and
 * free function, to change its level (the only way to change it), must
 * not release the user data the new registration still holds; it is
 * released once, when a registration with other user data replaces it.
 */
#include "test_common.h"

typedef struct {
    sync_t s;
    mqtt_client *client;
    long a_calls;
    long b_calls;
    long b_above_level; /* lines more verbose than B asked for */
    long a_freed;
    long ctx_freed;
    long b_freed;
    long connect_returned;
    long replaced;
    long messages;
    int replace_rc;
    char first_above[256];
} state_t;

static state_t st;

static void on_log_b(void *ud, int level, const char *line) {
    (void)ud;
    state_t *s = &st;
    sync_lock(&s->s);
    s->b_calls++;
    if (level > MQTT5C_LOG_ERROR || level < MQTT5C_LOG_ERROR) {
        if (!s->b_above_level)
            snprintf(s->first_above, sizeof s->first_above, "%d %s", level, line);
        s->b_above_level++;
    }
    sync_unlock_notify(&s->s);
}

static void free_a(void *ud) {
    (void)ud;
    sync_add(&st.s, &st.a_freed, 1);
}
/* Each registration's user data is a distinct pointer (a field of `st`). */
static void free_ctx(void *ud) { sync_add(&st.s, ud, 1); }
static void on_log_ctx(void *ud, int level, const char *line) {
    (void)ud;
    (void)level;
    (void)line;
}
static void free_b(void *ud) {
    (void)ud;
    sync_add(&st.s, &st.b_freed, 1);
}

static void on_log_a(void *ud, int level, const char *line) {
    (void)level;
    (void)line;
    (void)ud;
    state_t *s = &st;
    sync_lock(&s->s);
    bool first = s->a_calls++ == 0;
    sync_unlock_notify(&s->s);
    if (!first)
        return;
    /* Lines made while this call runs queue up behind it. */
    if (!sync_wait_count(&s->s, &s->connect_returned, 1, 30))
        fprintf(stderr, "mqtt_connect did not return\n");
    int rc = mqtt_set_log_callback(s->client, on_log_b, &s->b_calls, free_b, MQTT5C_LOG_ERROR);
    sync_lock(&s->s);
    s->replace_rc = rc;
    s->replaced = 1;
    sync_unlock_notify(&s->s);
}

static void on_message(void *ud, const mqtt_message *m) {
    (void)m;
    state_t *s = ud;
    sync_add(&s->s, &s->messages, 1);
}

int main(int argc, char **argv) {
    const char *url = test_url(argc, argv);
    memset(&st, 0, sizeof st);
    sync_init(&st.s);
    mqtt_client *c = test_client_new("log-replace");
    CHECK(c, "mqtt_client_new: %s", test_last_error());
    st.client = c;
    CHECK_RC(mqtt_set_message_callback(c, on_message, &st), MQTT5C_OK);
    /* The same user data registered again at another level: still in use. */
    CHECK_RC(mqtt_set_log_callback(c, on_log_ctx, &st.ctx_freed, free_ctx, MQTT5C_LOG_WARNING), MQTT5C_OK);
    CHECK_RC(mqtt_set_log_callback(c, on_log_ctx, &st.ctx_freed, free_ctx, MQTT5C_LOG_ERROR), MQTT5C_OK);
    CHECK(sync_get(&st.s, &st.ctx_freed) == 0,
          "setting the callback again with the same user data released it (%ld times) while "
          "the new registration holds it",
          sync_get(&st.s, &st.ctx_freed));
    CHECK_RC(mqtt_set_log_callback(c, on_log_a, &st.a_calls, free_a, MQTT5C_LOG_DEBUG), MQTT5C_OK);
    CHECK(sync_get(&st.s, &st.ctx_freed) == 1, "replaced, the user data was released %ld times",
          sync_get(&st.s, &st.ctx_freed));
    TEST_LOG("a level change kept the user data; its replacement released it once");
    CHECK_RC(mqtt_connect(c, url), 0);
    sync_add(&st.s, &st.connect_returned, 1);
    CHECK(sync_wait_count(&st.s, &st.replaced, 1, 30), "the log callback was not replaced");
    CHECK_RC(st.replace_rc, MQTT5C_OK);
    CHECK_RC(mqtt_subscribe(c, "log-replace/t", MQTT5C_QOS1, NULL), MQTT5C_QOS1);
    CHECK(publish_ok(mqtt_publish(c, "log-replace/t", "x", 1, MQTT5C_QOS1, false, NULL)),
          "publish: %s", test_last_error());
    /* Queued after the lines made during the connect: they have been run. */
    CHECK(sync_wait_count(&st.s, &st.messages, 1, 30), "no message");
    CHECK(sync_get(&st.s, &st.b_above_level) == 0,
          "the callback set at MQTT5C_LOG_ERROR got %ld more verbose line(s), first: %s",
          sync_get(&st.s, &st.b_above_level), st.first_above);
    CHECK(sync_get(&st.s, &st.a_calls) == 1, "A called %ld times after it was replaced",
          sync_get(&st.s, &st.a_calls));
    TEST_LOG("a replacement at MQTT5C_LOG_ERROR got no line queued for the DEBUG callback");

cleanup:
    mqtt_client_free(c);
    /* A's user data once (retired, released by the free), B's once. */
    if (c && st.replaced && (st.a_freed != 1 || st.b_freed != 1)) {
        fprintf(stderr, "FAIL: freed A %ld times, B %ld times\n", st.a_freed, st.b_freed);
        test_failed = 1;
    }
    sync_destroy(&st.s);
    return test_failed;
}

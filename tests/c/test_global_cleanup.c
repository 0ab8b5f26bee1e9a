/*
 * mqtt_global_cleanup: refused while a client exists and from a callback
 * (even one whose client freed itself), harmless before any client and
 * twice; once every client is freed it returns only after every library
 * thread has exited (the thread count is back to the count before the
 * library started, checked at once, without waiting), waiting for a
 * callback that freed its own client; afterwards mqtt_global_init works
 * again, and a client connects, publishes and receives on a new runtime,
 * with or without mqtt_global_init.
 */
#include "test_common.h"


static struct {
    sync_t s;
    long received;
    /* From the message callback of the client that frees itself. */
    long self_freed;
    long self_returned;
    int cleanup_rc_in_callback;
    char cleanup_error_in_callback[256];
} st;

static void record_cleanup_from_callback(void) {
    int rc = mqtt_global_cleanup();
    sync_lock(&st.s);
    st.cleanup_rc_in_callback = rc;
    snprintf(st.cleanup_error_in_callback, sizeof st.cleanup_error_in_callback, "%s",
             test_last_error());
    sync_unlock(&st.s);
}

static void on_message(void *ud, const mqtt_message *m) {
    (void)ud;
    (void)m;
    sync_add(&st.s, &st.received, 1);
}

/* Frees its own client, then tries mqtt_global_cleanup (refused: this is a
 * library thread), then works on for a while: the main thread's
 * mqtt_global_cleanup, called once it sees the client freed, must wait
 * for this callback to return. */
static void on_message_free_self(void *ud, const mqtt_message *m) {
    (void)m;
    mqtt_client_free((mqtt_client *)ud);
    record_cleanup_from_callback();
    sync_add(&st.s, &st.self_freed, 1);
    sleep_ms(300); /* the slow end of a callback, on purpose */
    sync_add(&st.s, &st.self_returned, 1);
}

/* Connects `c` and subscribes it to `topic` (its message callback is
 * already set). */
static bool connect_subscribe(mqtt_client *c, const char *url, const char *topic) {
    if (mqtt_connect(c, url) != MQTT5C_OK) {
        fprintf(stderr, "connect: %s\n", test_last_error());
        return false;
    }
    if (mqtt_subscribe(c, topic, MQTT5C_QOS1, NULL) != MQTT5C_QOS1) {
        fprintf(stderr, "subscribe: %s\n", test_last_error());
        return false;
    }
    return true;
}

static bool publish_one(mqtt_client *c, const char *topic) {
    if (!publish_ok(mqtt_publish(c, topic, "x", 1, MQTT5C_QOS1, false, NULL))) {
        fprintf(stderr, "publish: %s\n", test_last_error());
        return false;
    }
    return true;
}

int main(int argc, char **argv) {
    const char *url = test_url(argc, argv);
    mqtt_client *c = NULL, *publisher = NULL;
    int before, n;
    static const char *const not_freed[] = {"not freed", NULL};

    sync_init(&st.s);
    before = test_count_threads();
    CHECK(before == 1, "expected a single thread before the library starts, found %d", before);

    /* Before any client: nothing to stop. */
    CHECK_RC(mqtt_global_cleanup(), MQTT5C_OK);
    CHECK(test_count_threads() == before, "threads after an early cleanup: %d", test_count_threads());

    /* Round 1: refused while the client exists, and from its callback. */
    c = test_client_new("cleanup-1");
    CHECK(c != NULL, "client 1");
    CHECK_RC(mqtt_set_message_callback(c, on_message, NULL), MQTT5C_OK);
    CHECK(connect_subscribe(c, url, "cleanup/1") && publish_one(c, "cleanup/1"), "round trip 1");
    CHECK(sync_wait_count(&st.s, &st.received, 1, 10), "message 1");
    CHECK_RC(mqtt_global_cleanup(), MQTT5C_ERR_BAD_STATE);
    CHECK(last_error_mentions(not_freed), "error text: %s", test_last_error());
    CHECK(strstr(test_last_error(), "1 client") != NULL, "error text: %s", test_last_error());
    TEST_LOG("refused with a live client: %s", test_last_error());
    CHECK(mqtt_is_connected(c) == 1, "the refused cleanup broke the client");
    CHECK_RC(mqtt_global_init(1), MQTT5C_ERR_BAD_STATE);
    CHECK_RC(mqtt_disconnect(c, 0, NULL), MQTT5C_OK);
    mqtt_client_free(c);
    c = NULL;
    CHECK_RC(mqtt_global_cleanup(), MQTT5C_OK);
    n = test_count_threads();
    CHECK(n == before, "threads right after cleanup: %d, want %d", n, before);
    CHECK_RC(mqtt_global_cleanup(), MQTT5C_OK);
    CHECK(test_count_threads() == before, "threads after a second cleanup: %d", test_count_threads());

    /* Round 2: init works again; a callback that frees its own client is
     * refused, and the main thread's cleanup waits for it to return. */
    CHECK_RC(mqtt_global_init(1), MQTT5C_OK);
    c = test_client_new("cleanup-2");
    CHECK(c != NULL, "client 2");
    CHECK_RC(mqtt_global_init(2), MQTT5C_ERR_BAD_STATE);
    CHECK_RC(mqtt_set_message_callback(c, on_message_free_self, c), MQTT5C_OK);
    CHECK(connect_subscribe(c, url, "cleanup/2"), "subscriber 2");
    publisher = test_client_new("cleanup-2p");
    CHECK(publisher != NULL, "publisher 2");
    CHECK_RC(mqtt_connect(publisher, url), MQTT5C_OK);
    c = NULL; /* freed by its callback once the message arrives */
    CHECK(publish_one(publisher, "cleanup/2"), "publish 2");
    CHECK_RC(mqtt_disconnect(publisher, 0, NULL), MQTT5C_OK);
    mqtt_client_free(publisher);
    publisher = NULL;
    CHECK(sync_wait_count(&st.s, &st.self_freed, 1, 10), "the callback freed its client");
    CHECK_RC(mqtt_global_cleanup(), MQTT5C_OK);
    CHECK(sync_get(&st.s, &st.self_returned) == 1,
          "mqtt_global_cleanup returned while a callback still ran");
    n = test_count_threads();
    CHECK(n == before, "threads right after cleanup 2: %d, want %d", n, before);
    sync_lock(&st.s);
    n = st.cleanup_rc_in_callback;
    sync_unlock(&st.s);
    CHECK(n == MQTT5C_ERR_BAD_STATE, "mqtt_global_cleanup from a callback returned %d", n);
    CHECK(contains_ci(st.cleanup_error_in_callback, "callback"), "error text from the callback: %s",
          st.cleanup_error_in_callback);
    TEST_LOG("refused in a callback: %s", st.cleanup_error_in_callback);

    /* Round 3: no mqtt_global_init, the runtime starts again by itself. */
    c = test_client_new("cleanup-3");
    CHECK(c != NULL, "client 3");
    CHECK_RC(mqtt_set_message_callback(c, on_message, NULL), MQTT5C_OK);
    CHECK(connect_subscribe(c, url, "cleanup/3") && publish_one(c, "cleanup/3"), "round trip 3");
    CHECK(sync_wait_count(&st.s, &st.received, 2, 10), "message 3");
    CHECK(test_count_threads() > before, "a connected client and no thread?");
    CHECK_RC(mqtt_disconnect(c, 0, NULL), MQTT5C_OK);
    mqtt_client_free(c);
    c = NULL;
    CHECK_RC(mqtt_global_cleanup(), MQTT5C_OK);
    n = test_count_threads();
    CHECK(n == before, "threads right after cleanup 3: %d, want %d", n, before);
    TEST_LOG("three rounds, %d thread(s) left", n);

cleanup:
    mqtt_client_free(c);
    mqtt_client_free(publisher);
    sync_destroy(&st.s);
    return test_failed;
}

/*
 * Thread budget: all clients share the runtime's worker threads, and
 * callback threads exist only while there is something to deliver. 100
 * connected idle clients (each with a connection callback that fired) add
 * no threads once idle. Also checks mqtt_global_init: the worker count it
 * sets is the one used, and it is refused once the runtime runs.
 */
#include "test_common.h"


#define N_CLIENTS 100
#define WORKERS 2

/* Waits until the thread count is at most `want`; returns the last count. */
static int wait_threads_at_most(int want, double seconds) {
    double end = now_s() + seconds * timeout_scale();
    int n = test_count_threads();
    while (n > want && now_s() < end) {
        sleep_ms(50); /* polling /proc: there is no event to wait on */
        n = test_count_threads();
    }
    return n;
}

static struct {
    sync_t s;
    long connected;
} st;

static void on_connection(void *ud, int event, int reason) {
    (void)ud;
    (void)reason;
    if (event == MQTT5C_EVENT_CONNECTED)
        sync_add(&st.s, &st.connected, 1);
}

int main(int argc, char **argv) {
    const char *url = test_url(argc, argv);
    mqtt_client *clients[N_CLIENTS] = {0};
    char id[32];
    int before, idle, i;

    sync_init(&st.s);
    before = test_count_threads();
    CHECK(before == 1, "expected a single thread before the library starts, found %d", before);
    CHECK_RC(mqtt_global_init(WORKERS), MQTT5C_OK);

    clients[0] = test_client_new("idle-0");
    CHECK(clients[0] != NULL, "client 0");
    CHECK_RC(mqtt_global_init(4), MQTT5C_ERR_BAD_STATE);
    CHECK_RC(mqtt_set_connection_callback(clients[0], on_connection, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_connect(clients[0], url), MQTT5C_OK);
    CHECK(sync_wait_count(&st.s, &st.connected, 1, 10), "client 0 CONNECTED event");
    /* main + the workers, once the callback thread has gone idle. */
    idle = wait_threads_at_most(1 + WORKERS, 10);
    CHECK(idle == 1 + WORKERS, "one connected client: %d threads, want %d", idle, 1 + WORKERS);
    TEST_LOG("one idle client: %d threads", idle);

    for (i = 1; i < N_CLIENTS; i++) {
        snprintf(id, sizeof id, "idle-%d", i);
        clients[i] = test_client_new(id);
        CHECK(clients[i] != NULL, "client %d", i);
        CHECK_RC(mqtt_set_connection_callback(clients[i], on_connection, NULL), MQTT5C_OK);
        CHECK_RC(mqtt_connect(clients[i], url), MQTT5C_OK);
    }
    CHECK(sync_wait_count(&st.s, &st.connected, N_CLIENTS, 10), "all CONNECTED events");
    idle = wait_threads_at_most(1 + WORKERS, 10);
    CHECK(idle == 1 + WORKERS, "%d idle clients: %d threads, want %d", N_CLIENTS, idle, 1 + WORKERS);
    for (i = 0; i < N_CLIENTS; i++)
        CHECK(mqtt_is_connected(clients[i]) == 1, "client %d lost its connection", i);
    TEST_LOG("%d idle clients: %d threads", N_CLIENTS, idle);

    /* Idle clients still work. */
    CHECK(publish_ok(mqtt_publish(clients[N_CLIENTS - 1], "idle/x", "x", 1, MQTT5C_QOS1, false, NULL)),
          "publish from an idle client: %s", test_last_error());

cleanup:
    for (i = 0; i < N_CLIENTS; i++)
        mqtt_client_free(clients[i]);
    sync_destroy(&st.s);
    return test_failed;
}

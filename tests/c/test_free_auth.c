/*
 * The auth callback and the user data it uses, against a scripted broker
 * that sends an AUTH challenge on every connect (tests/scripted, script
 * "free_auth"):
 *
 * 1. mqtt_set_auth_callback while the old auth callback runs (answering
 *    the challenge of a connect on another thread) returns only after the
 *    old callback has returned, so its user data may be freed right after.
 * 2. The broker drops the connection; the automatic reconnect gets a
 *    challenge and the auth callback runs on a library thread. The main
 *    thread frees the client meanwhile: mqtt_client_free returns only after
 *    the callback has returned, and the callback's user data is freed right
 *    after (valgrind: no invalid read).
 *
 * Each callback sleeps a while (a slow callback, the point of the test),
 * sets a flag when it leaves, and reads its user data last.
 */
// fake-broker: free_auth
#include "test_common.h"

#define MAGIC 0x5eed

typedef struct {
    int magic;
} cookie_t;

static struct {
    sync_t s;
    long entered_a, exited_a, entered_b, exited_b;
    long bad_cookie;
} st;

/* How long a callback stays inside: long enough for the main thread to
 * call the setter or free while it runs. */
static long slow_ms(void) { return (long)(500 * timeout_scale()); }

static bool data_is(const void *data, size_t len, const char *want) {
    return data && len == strlen(want) && memcmp(data, want, len) == 0;
}

/* Reads the cookie last: valgrind reports it if it was freed meanwhile. */
static void leave(cookie_t *cookie, long *exited) {
    sync_lock(&st.s);
    if (cookie->magic != MAGIC)
        st.bad_cookie++;
    (*exited)++;
    sync_unlock_notify(&st.s);
}

static int auth_a(void *ud, int reason, const char *method, const void *data, size_t len,
                  mqtt_auth_response *response) {
    (void)method;
    if (reason != 0x18 || !data_is(data, len, "slow-1"))
        return 0x80;
    sync_add(&st.s, &st.entered_a, 1);
    sleep_ms(slow_ms());
    int rc = mqtt_auth_response_set_data(response, "answer-1", 8);
    leave(ud, &st.exited_a);
    return rc;
}

static int auth_b(void *ud, int reason, const char *method, const void *data, size_t len,
                  mqtt_auth_response *response) {
    (void)method;
    (void)response;
    /* The first connect's CONNACK success (asked after the replacement). */
    if (reason == 0x00)
        return 0;
    if (reason != 0x18 || !data_is(data, len, "slow-2"))
        return 0x80;
    sync_add(&st.s, &st.entered_b, 1);
    sleep_ms(slow_ms());
    leave(ud, &st.exited_b);
    return 0x87;
}

typedef struct {
    mqtt_client *client;
    const char *url;
    int rc;
} connect_args;

static void *connect_thread(void *arg) {
    connect_args *a = arg;
    a->rc = mqtt_connect(a->client, a->url);
    return NULL;
}

int main(int argc, char **argv) {
    const char *url = test_url(argc, argv);
    mqtt_options *opts = NULL;
    mqtt_client *c = NULL;
    cookie_t *cookie_a = malloc(sizeof *cookie_a);
    cookie_t *cookie_b = malloc(sizeof *cookie_b);
    connect_args ca = {0};
    pthread_t t;
    bool joined = true;
    double t0;

    sync_init(&st.s);
    CHECK(cookie_a && cookie_b, "malloc");
    cookie_a->magic = MAGIC;
    cookie_b->magic = MAGIC;
    opts = mqtt_options_new();
    CHECK(opts != NULL, "mqtt_options_new");
    CHECK_RC(mqtt_options_set_client_id(opts, "free-auth"), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_auth(opts, "TOY", NULL, 0), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_connect_timeout(opts, (uint32_t)(30000 * timeout_scale())), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_auto_reconnect(opts, 50, 1000), MQTT5C_OK);
    c = mqtt_client_new(opts);
    CHECK(c != NULL, "mqtt_client_new: %s", test_last_error());
    CHECK_RC(mqtt_set_auth_callback(c, auth_a, cookie_a), MQTT5C_OK);

    /* ---- 1: replace the auth callback while it runs ---- */
    ca.client = c;
    ca.url = url;
    ca.rc = -1000;
    CHECK(pthread_create(&t, NULL, connect_thread, &ca) == 0, "pthread_create");
    joined = false;
    CHECK(sync_wait_count(&st.s, &st.entered_a, 1, 20), "the auth callback was not called for the first connect");
    CHECK_RC(mqtt_set_auth_callback(c, auth_b, cookie_b), MQTT5C_OK);
    CHECK(sync_get(&st.s, &st.exited_a) == 1,
          "mqtt_set_auth_callback returned while the old auth callback was still running");
    free(cookie_a);
    cookie_a = NULL;
    pthread_join(t, NULL);
    joined = true;
    CHECK(ca.rc == MQTT5C_OK, "the first connect returned %d (%s)", ca.rc, test_strerror(ca.rc));
    TEST_LOG("1: the setter waited for the running auth callback");

    /* ---- 2: free while the reconnect's auth callback runs ---- */
    CHECK(sync_wait_count(&st.s, &st.entered_b, 1, 20), "the auth callback was not called for the reconnect");
    t0 = now_s();
    mqtt_client_free(c);
    c = NULL;
    TEST_LOG("2: mqtt_client_free took %.0f ms", (now_s() - t0) * 1000);
    CHECK(sync_get(&st.s, &st.exited_b) == 1,
          "mqtt_client_free returned while the reconnect's auth callback was still running");
    free(cookie_b);
    cookie_b = NULL;
    CHECK(sync_get(&st.s, &st.bad_cookie) == 0, "a callback saw a clobbered cookie");

cleanup:
    if (!joined)
        pthread_join(t, NULL);
    mqtt_client_free(c);
    mqtt_options_free(opts);
    /* On failure a callback may still run with its cookie: keep them. */
    if (!test_failed) {
        free(cookie_a);
        free(cookie_b);
    }
    sync_destroy(&st.s);
    if (!test_failed)
        TEST_LOG("test_free_auth: PASS");
    return test_failed;
}

/*
 * mqtt_global_cleanup after one that timed out: a host name lookup of a
 * freed client outlives the runtime's shutdown (MQTT5C_ERR_TIMEOUT), and
 * every later cleanup must keep saying MQTT5C_ERR_TIMEOUT while that
 * lookup still runs (a host that retried and got MQTT5C_OK would unload
 * the library under it), then MQTT5C_OK once it returned.
 *
 * The lookup is held by this program's own getaddrinfo (it interposes
 * libc's for the library) until the test releases it, for "held.invalid"
 * only; MQTT5C_CLEANUP_TIMEOUT_MS keeps the timed-out waits short.
 */
#include "test_common.h"

#include <netdb.h>

static struct {
    sync_t s;
    long entered;
    long released;
    long returned;
    int connect_rc;
} st;

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res) {
    (void)service;
    (void)hints;
    (void)res;
    if (node && strstr(node, "held.invalid")) {
        sync_lock(&st.s);
        st.entered++;
        pthread_cond_broadcast(&st.s.cv);
        sync_unlock(&st.s);
        sync_wait_count(&st.s, &st.released, 1, 60);
        sync_add(&st.s, &st.returned, 1);
    }
    return EAI_NONAME;
}

static void *connect_held(void *arg) {
    int rc = mqtt_connect((mqtt_client *)arg, "mqtt://held.invalid:1883");
    sync_lock(&st.s);
    st.connect_rc = rc;
    sync_unlock(&st.s);
    return NULL;
}

int main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    mqtt_client *c = NULL;
    pthread_t t;
    bool started = false;

    sync_init(&st.s);
    setenv("MQTT5C_CLEANUP_TIMEOUT_MS", "300", 1);

    c = test_client_new("cleanup-timeout");
    CHECK(c != NULL, "client");
    CHECK(pthread_create(&t, NULL, connect_held, c) == 0, "thread");
    started = true;
    CHECK(sync_wait_count(&st.s, &st.entered, 1, 10), "the lookup never started");
    mqtt_client_free(c); /* the lookup goes on without it */
    c = NULL;
    pthread_join(t, NULL);
    started = false;
    TEST_LOG("connect returned %d once its client was freed", st.connect_rc);

    CHECK_RC(mqtt_global_cleanup(), MQTT5C_ERR_TIMEOUT);
    TEST_LOG("first cleanup: %s", test_last_error());
    /* Nothing new started: the lookup thread of the old runtime still runs. */
    CHECK_RC(mqtt_global_cleanup(), MQTT5C_ERR_TIMEOUT);
    /* A new runtime comes and goes; the old thread still runs. */
    c = test_client_new("cleanup-timeout-2");
    CHECK(c != NULL, "client after a timed-out cleanup");
    mqtt_client_free(c);
    c = NULL;
    CHECK_RC(mqtt_global_cleanup(), MQTT5C_ERR_TIMEOUT);
    CHECK(sync_get(&st.s, &st.returned) == 0, "the lookup returned on its own");

    /* Released: the next cleanup (at the default limit) waits for it. */
    unsetenv("MQTT5C_CLEANUP_TIMEOUT_MS");
    sync_add(&st.s, &st.released, 1);
    CHECK_RC(mqtt_global_cleanup(), MQTT5C_OK);
    CHECK(sync_get(&st.s, &st.returned) == 1,
          "mqtt_global_cleanup returned MQTT5C_OK while the lookup still ran");
    CHECK_RC(mqtt_global_cleanup(), MQTT5C_OK);

cleanup:
    if (started) {
        sync_add(&st.s, &st.released, 1);
        pthread_join(t, NULL);
    }
    mqtt_client_free(c);
    sync_destroy(&st.s);
    return test_failed;
}

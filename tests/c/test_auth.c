/*
 * Enhanced authentication against a scripted broker (tests/scripted, script
 * "auth"; stock mosquitto needs a plugin for it): a challenge answered by
 * the auth callback during connect, the server's final data verified,
 * re-authentication on the live connection (with a blocking publish made
 * from inside the auth callback), a refused re-authentication, a refused
 * method, and a challenge the callback rejects.
 */
// fake-broker: auth
#include "test_common.h"

typedef struct {
    sync_t s;
    mqtt_client *client;
    pthread_t main_thread;
    long challenges;
    long successes;
    long on_main_thread;
    int inner_publish_rc;
    long disconnects;
    int disconnect_reason;
} state_t;

static bool data_is(const void *data, size_t len, const char *want) {
    return data && len == strlen(want) && memcmp(data, want, len) == 0;
}

static int on_auth(void *ud, int reason, const char *method, const void *data, size_t len,
                   mqtt_auth_response *response) {
    state_t *st = ud;
    if (pthread_equal(pthread_self(), st->main_thread))
        sync_add(&st->s, &st->on_main_thread, 1);
    if (!method || strcmp(method, "TOY") != 0)
        return 0x80;
    if (reason == 0x00) {
        sync_add(&st->s, &st->successes, 1);
        return data_is(data, len, "server-final") ? 0 : 0x80;
    }
    if (reason != 0x18)
        return 0x80;
    sync_add(&st->s, &st->challenges, 1);
    if (data_is(data, len, "challenge-1"))
        return mqtt_auth_response_set_data(response, "response-1", 10);
    if (data_is(data, len, "challenge-2")) {
        /* A blocking call from the auth callback: the reader must still
         * read its PUBACK while the exchange waits for this answer. */
        int rc = mqtt_publish(st->client, "auth/inside-callback", "x", 1, MQTT5C_QOS1, false, NULL);
        sync_lock(&st->s);
        st->inner_publish_rc = rc;
        sync_unlock_notify(&st->s);
        return mqtt_auth_response_set_data(response, "response-2", 10);
    }
    if (data_is(data, len, "reject-me"))
        return 0x83;
    return 0x80;
}

static void on_connection(void *ud, int event, int reason) {
    state_t *st = ud;
    if (event != MQTT5C_EVENT_DISCONNECTED)
        return;
    sync_lock(&st->s);
    st->disconnects++;
    st->disconnect_reason = reason;
    sync_unlock_notify(&st->s);
}

int main(int argc, char **argv) {
    const char *url = test_url(argc, argv);
    state_t st;
    memset(&st, 0, sizeof st);
    sync_init(&st.s);
    st.main_thread = pthread_self();
    st.inner_publish_rc = -100;
    mqtt_options *opts = mqtt_options_new();
    mqtt_client *c = NULL;
    mqtt_client *plain = NULL;
    CHECK(opts != NULL, "mqtt_options_new");
    CHECK_RC(mqtt_options_set_client_id(opts, "auth-client"), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_connect_timeout(opts, (uint32_t)(10000 * timeout_scale())), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_auth(opts, "TOY", "client-first", 12), MQTT5C_OK);
    c = mqtt_client_new(opts);
    CHECK(c != NULL, "mqtt_client_new: %s", test_last_error());
    st.client = c;
    CHECK_RC(mqtt_set_auth_callback(c, on_auth, &st), MQTT5C_OK);
    CHECK_RC(mqtt_set_connection_callback(c, on_connection, &st), MQTT5C_OK);

    /* Bad input: nothing sent, specific errors. */
    CHECK_RC(mqtt_options_set_auth(NULL, "TOY", NULL, 0), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK_RC(mqtt_options_set_auth(opts, "TOY", NULL, 3), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK_RC(mqtt_auth_response_set_data(NULL, "x", 1), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK_RC(mqtt_set_auth_callback(NULL, on_auth, NULL), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK_RC(mqtt_reauthenticate(NULL, NULL, 0, NULL), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK_RC(mqtt_reauthenticate(c, NULL, 0, NULL), MQTT5C_ERR_NOT_CONNECTED);
    plain = test_client_new("no-auth-method");
    CHECK(plain != NULL, "client");
    CHECK_RC(mqtt_reauthenticate(plain, "x", 1, NULL), MQTT5C_ERR_INVALID_ARGUMENT);
    {
        const char *kw[] = {"method", NULL};
        CHECK(last_error_mentions(kw), "last error: %s", test_last_error());
    }

    /* 1: challenge and response during connect, final data verified. */
    CHECK_RC(mqtt_connect(c, url), 0);
    CHECK(sync_get(&st.s, &st.challenges) == 1, "one challenge at connect");
    CHECK(sync_get(&st.s, &st.successes) == 1, "server-final data verified");
    CHECK(sync_get(&st.s, &st.on_main_thread) == 0,
          "the auth callback runs on a library thread, not the caller's");
    TEST_LOG("connected after a challenge");

    /* Re-authentication; the callback publishes at QoS 1 meanwhile. */
    CHECK_RC(mqtt_reauthenticate(c, "again", 5, NULL), 0);
    CHECK(sync_get(&st.s, &st.challenges) == 2, "second challenge");
    CHECK(sync_get(&st.s, &st.successes) == 2, "the final AUTH success was verified");
    sync_lock(&st.s);
    int inner = st.inner_publish_rc;
    sync_unlock(&st.s);
    CHECK(inner == 0, "publish from the auth callback returned %d", inner);
    CHECK_RC(mqtt_is_connected(c), 1);
    CHECK_RC(mqtt_publish(c, "auth/after", "y", 1, MQTT5C_QOS1, false, NULL), 0);
    TEST_LOG("re-authenticated");

    /* A re-authentication the broker refuses with DISCONNECT 0x87. */
    CHECK_RC(mqtt_reauthenticate(c, "wrong", 5, NULL), 0x87);
    {
        const char *kw[] = {"bad secret", NULL};
        CHECK(last_error_mentions(kw), "last error: %s", test_last_error());
    }
    CHECK(sync_wait_count(&st.s, &st.disconnects, 1, 10), "disconnect event");
    sync_lock(&st.s);
    int reason = st.disconnect_reason;
    sync_unlock(&st.s);
    CHECK(reason == 0x87, "disconnect reason 0x%X", reason);
    CHECK_RC(mqtt_is_connected(c), 0);
    TEST_LOG("refused re-authentication reported");

    /* 2: the broker does not support the method. */
    CHECK_RC(mqtt_connect(c, url), 0x8C);
    TEST_LOG("bad authentication method refused");

    /* 3: the callback rejects a challenge: DISCONNECT 0x83 goes out. */
    CHECK_RC(mqtt_connect(c, url), 0x83);
    {
        const char *kw[] = {"auth", NULL};
        CHECK(last_error_mentions(kw), "last error: %s", test_last_error());
    }
    CHECK_RC(mqtt_is_connected(c), 0);
    TEST_LOG("challenge rejected by the callback");

cleanup:
    mqtt_client_free(plain);
    mqtt_client_free(c);
    mqtt_options_free(opts);
    sync_destroy(&st.s);
    return test_failed;
}

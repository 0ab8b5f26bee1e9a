/*
 * The server's half of enhanced authentication (issue 8, #5), against a
 * scripted broker (tests/scripted/protocol.rs, script "auth_verify"):
 *
 * 1. An impostor answers CONNECT with a CONNACK success without any
 *    authentication data: the auth callback is still asked (reason 0, data
 *    NULL, len 0); it refuses, so mqtt_connect returns its reason and the
 *    broker receives DISCONNECT with it.
 * 2. AUTH 0x18 without an Authentication Method, and 3. with another
 *    method: a protocol error (MQTT 3.15.2.2.2): DISCONNECT 0x82,
 *    mqtt_connect returns MQTT5C_ERR_PROTOCOL, the callback is never called.
 * 4. The same during mqtt_reauthenticate.
 * 5. A re-authentication ended by AUTH success without data: the callback
 *    is asked (data NULL) and refuses: mqtt_reauthenticate returns its
 *    reason and the broker receives DISCONNECT with it.
 */
// fake-broker: auth_verify
#include "test_common.h"

typedef struct {
    sync_t s;
    long challenges;
    long successes;
    long successes_without_data;
    long bad_arguments;
} state_t;

static bool data_is(const void *data, size_t len, const char *want) {
    return data && len == strlen(want) && memcmp(data, want, len) == 0;
}

/* Accepts only a success that carries the server's proof. */
static int on_auth(void *ud, int reason, const char *method, const void *data, size_t len,
                   mqtt_auth_response *response) {
    state_t *st = ud;
    (void)response;
    if (!method || strcmp(method, "TOY") != 0)
        sync_add(&st->s, &st->bad_arguments, 1);
    if (reason == 0x18) {
        sync_add(&st->s, &st->challenges, 1);
        return 0x80;
    }
    if (reason != 0x00) {
        sync_add(&st->s, &st->bad_arguments, 1);
        return 0x80;
    }
    sync_add(&st->s, &st->successes, 1);
    if (data == NULL && len == 0)
        sync_add(&st->s, &st->successes_without_data, 1);
    else if (data == NULL || len == 0)
        sync_add(&st->s, &st->bad_arguments, 1);
    return data_is(data, len, "server-final") ? 0 : 0x87;
}

int main(int argc, char **argv) {
    const char *url = test_url(argc, argv);
    state_t st;
    memset(&st, 0, sizeof st);
    sync_init(&st.s);
    mqtt_options *opts = mqtt_options_new();
    mqtt_client *c = NULL;
    CHECK(opts != NULL, "mqtt_options_new");
    CHECK_RC(mqtt_options_set_client_id(opts, "auth-verify"), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_connect_timeout(opts, (uint32_t)(10000 * timeout_scale())), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_operation_timeout(opts, (uint32_t)(10000 * timeout_scale())), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_auth(opts, "TOY", "client-first", 12), MQTT5C_OK);
    c = mqtt_client_new(opts);
    CHECK(c != NULL, "mqtt_client_new: %s", test_last_error());
    CHECK_RC(mqtt_set_auth_callback(c, on_auth, &st), MQTT5C_OK);

    /* 1: CONNACK success without data: asked with NULL, refused. */
    CHECK_RC(mqtt_connect(c, url), 0x87);
    CHECK(sync_get(&st.s, &st.successes) == 1, "the success step was not given to the callback");
    CHECK(sync_get(&st.s, &st.successes_without_data) == 1, "the success step came with data");
    CHECK_RC(mqtt_is_connected(c), 0);
    {
        const char *kw[] = {"auth", NULL};
        CHECK(last_error_mentions(kw), "last error: %s", test_last_error());
    }
    TEST_LOG("1: a CONNACK success without the server's proof is refused");

    /* 2: AUTH 0x18 without an Authentication Method. */
    CHECK_RC(mqtt_connect(c, url), MQTT5C_ERR_PROTOCOL);
    {
        const char *kw[] = {"Authentication Method", NULL};
        CHECK(last_error_mentions(kw), "last error: %s", test_last_error());
    }
    CHECK_RC(mqtt_is_connected(c), 0);
    TEST_LOG("2: a challenge without a method is a protocol error");

    /* 3: AUTH 0x18 with another method. */
    CHECK_RC(mqtt_connect(c, url), MQTT5C_ERR_PROTOCOL);
    {
        const char *kw[] = {"method", NULL};
        CHECK(last_error_mentions(kw), "last error: %s", test_last_error());
    }
    CHECK_RC(mqtt_is_connected(c), 0);
    CHECK(sync_get(&st.s, &st.challenges) == 0, "a bad challenge reached the callback");
    TEST_LOG("3: a challenge with another method is a protocol error");

    /* 4: the same during re-authentication. */
    CHECK_RC(mqtt_connect(c, url), 0);
    CHECK(sync_get(&st.s, &st.successes) == 2, "the proven success was not verified");
    CHECK_RC(mqtt_reauthenticate(c, "again", 5, NULL), MQTT5C_ERR_PROTOCOL);
    CHECK(sync_get(&st.s, &st.challenges) == 0, "a bad challenge reached the callback");
    CHECK_RC(mqtt_is_connected(c), 0);
    TEST_LOG("4: a re-authentication challenge without a method is a protocol error");

    /* 5: a re-authentication's success without data: asked, refused. */
    CHECK_RC(mqtt_connect(c, url), 0);
    CHECK_RC(mqtt_reauthenticate(c, "again", 5, NULL), 0x87);
    CHECK(sync_get(&st.s, &st.successes) == 4, "the final AUTH success was not given to the callback");
    CHECK(sync_get(&st.s, &st.successes_without_data) == 2, "the final AUTH success came with data");
    CHECK_RC(mqtt_is_connected(c), 0);
    TEST_LOG("5: a re-authentication success without the server's proof is refused");

    CHECK(sync_get(&st.s, &st.bad_arguments) == 0, "the callback got a bad method, reason or data");

cleanup:
    mqtt_client_free(c);
    mqtt_options_free(opts);
    sync_destroy(&st.s);
    return test_failed;
}

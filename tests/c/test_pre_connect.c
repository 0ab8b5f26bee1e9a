/*
 * The pre-connect callback (mqtt_set_pre_connect_callback) rotating a
 * password, against mosquitto with a password file (`// broker-passwd`):
 *  - the setter's validation (NULL client);
 *  - the options hold a wrong password; the callback, called before the
 *    attempt with the URL and attempt number 1, sets the right one: the
 *    connect succeeds;
 *  - a callback returning non-zero skips the attempt: mqtt_connect
 *    returns MQTT5C_ERR_NOT_CONNECTED and nothing reaches the broker;
 *  - the password is changed in the file (mosquitto_passwd -b) and the
 *    broker reloads it (SIGHUP): it drops the client, whose password no
 *    longer holds, and refuses the old password from then on (a second
 *    client tries it). The reconnection asks the callback again, which
 *    now supplies the new password: connected again, a publish works;
 *  - replacing the callback returns once no call of the old one runs,
 *    and removing it (NULL) leaves the last credentials in place.
 */
// broker-passwd: rotator first-secret
#include "test_common.h"

#include <signal.h>
#include <sys/types.h>

#define USER "rotator"

typedef struct {
    sync_t s;
    char password[32];
    long calls;
    unsigned last_attempt;
    char last_url[128];
    int skip;
    long connected;
    long disconnected;
} state_t;

static int pre_connect(void *ud, const char *url, unsigned attempt, mqtt_options *opts) {
    state_t *st = ud;
    char pw[32];
    int skip;
    sync_lock(&st->s);
    snprintf(pw, sizeof pw, "%s", st->password);
    skip = st->skip;
    sync_unlock(&st->s);
    int rc = mqtt_options_set_credentials(opts, USER, pw, strlen(pw));
    sync_lock(&st->s);
    if (rc == MQTT5C_OK) {
        st->calls++;
        st->last_attempt = attempt;
        snprintf(st->last_url, sizeof st->last_url, "%s", url);
    }
    sync_unlock_notify(&st->s);
    return skip;
}

static void on_connection(void *ud, int event, int reason) {
    state_t *st = ud;
    (void)reason;
    sync_lock(&st->s);
    if (event == MQTT5C_EVENT_CONNECTED)
        st->connected++;
    else if (event == MQTT5C_EVENT_DISCONNECTED)
        st->disconnected++;
    sync_unlock_notify(&st->s);
}

/* The password file's entry for USER set to `password`, then the broker
 * told to reload it. */
static bool rotate(const char *password) {
    const char *file = getenv("MQTT_TEST_PASSWD_FILE");
    const char *pid = getenv("MQTT_TEST_BROKER_PID");
    char cmd[512];
    if (!file || !pid)
        return false;
    snprintf(cmd, sizeof cmd, "mosquitto_passwd -b '%s' %s %s", file, USER, password);
    if (system(cmd) != 0)
        return false;
    return kill((pid_t)atol(pid), SIGHUP) == 0;
}

/* Connects a client of its own with `password`; returns mqtt_connect's
 * result. */
static int try_password(const char *url, const char *password) {
    mqtt_options *o = mqtt_options_new();
    mqtt_client *c = NULL;
    int rc = MQTT5C_ERR_INTERNAL;
    if (o && mqtt_options_set_client_id(o, "c-pre-connect-probe") == MQTT5C_OK &&
        mqtt_options_set_credentials(o, USER, password, strlen(password)) == MQTT5C_OK)
        c = mqtt_client_new(o);
    if (c) {
        rc = mqtt_connect(c, url);
        if (rc == MQTT5C_OK)
            mqtt_disconnect(c, 0, NULL);
    }
    mqtt_client_free(c);
    mqtt_options_free(o);
    return rc;
}

int main(int argc, char **argv) {
    const char *url = test_url(argc, argv);
    mqtt_options *opts = NULL;
    mqtt_client *c = NULL;
    state_t st;
    memset(&st, 0, sizeof st);
    sync_init(&st.s);
    double scale = timeout_scale();
    snprintf(st.password, sizeof st.password, "first-secret");

    CHECK_RC(mqtt_set_pre_connect_callback(NULL, pre_connect, &st), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK(strstr(test_last_error(), "client") != NULL, "%s", test_last_error());

    opts = mqtt_options_new();
    CHECK(opts != NULL, "mqtt_options_new");
    CHECK_RC(mqtt_options_set_client_id(opts, "c-pre-connect"), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_credentials(opts, USER, "wrong", 5), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_connect_timeout(opts, (uint32_t)(10000 * scale)), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_auto_reconnect(opts, 50, 400), MQTT5C_OK);
    c = mqtt_client_new(opts);
    CHECK(c != NULL, "mqtt_client_new: %s", test_last_error());
    CHECK_RC(mqtt_set_connection_callback(c, on_connection, &st), MQTT5C_OK);

    /* Without the callback the options' wrong password is refused. */
    int rc = mqtt_connect(c, url);
    CHECK(rc >= 0x80, "connect with the wrong password: %d", rc);

    /* Skipped by the callback: no attempt made. */
    CHECK_RC(mqtt_set_pre_connect_callback(c, pre_connect, &st), MQTT5C_OK);
    sync_lock(&st.s);
    st.skip = 1;
    sync_unlock(&st.s);
    CHECK_RC(mqtt_connect(c, url), MQTT5C_ERR_NOT_CONNECTED);
    CHECK(strstr(test_last_error(), "pre-connect") != NULL, "%s", test_last_error());
    CHECK(sync_get(&st.s, &st.calls) == 1, "calls %ld", sync_get(&st.s, &st.calls));
    sync_lock(&st.s);
    st.skip = 0;
    sync_unlock(&st.s);

    /* The callback supplies the password. */
    CHECK_RC(mqtt_connect(c, url), MQTT5C_OK);
    sync_lock(&st.s);
    long calls = st.calls;
    unsigned attempt = st.last_attempt;
    char seen[128];
    snprintf(seen, sizeof seen, "%s", st.last_url);
    sync_unlock(&st.s);
    CHECK(calls == 2 && attempt == 1, "calls %ld attempt %u", calls, attempt);
    CHECK(strcmp(seen, url) == 0, "url '%s', want '%s'", seen, url);
    CHECK(sync_wait_count(&st.s, &st.connected, 1, 10 * scale), "no CONNECTED");
    TEST_LOG("connected with the callback's password");

    /* Rotation: the callback has the new password before the broker
     * drops the client. */
    sync_lock(&st.s);
    snprintf(st.password, sizeof st.password, "second-secret");
    sync_unlock(&st.s);
    CHECK(rotate("second-secret"), "rotate the password");
    CHECK(sync_wait_count(&st.s, &st.disconnected, 1, 20 * scale),
          "the broker did not drop the client after the reload");
    rc = try_password(url, "first-secret");
    CHECK(rc >= 0x80, "the old password still works: %d", rc);
    CHECK(sync_wait_count(&st.s, &st.connected, 2, 20 * scale),
          "not reconnected with the new password");
    CHECK(sync_get(&st.s, &st.calls) >= 3, "the reconnect did not ask the callback");
    CHECK(publish_ok(mqtt_publish(c, "pre/after", "x", 1, MQTT5C_QOS1, false, NULL)), "publish");
    TEST_LOG("reconnected with the rotated password after %ld calls", sync_get(&st.s, &st.calls));

    /* Removed: the last credentials stay. */
    CHECK_RC(mqtt_set_pre_connect_callback(c, NULL, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_disconnect(c, 0, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_connect(c, url), MQTT5C_OK);
    CHECK_RC(mqtt_disconnect(c, 0, NULL), MQTT5C_OK);

cleanup:
    mqtt_client_free(c);
    mqtt_options_free(opts);
    sync_destroy(&st.s);
    return test_failed ? 1 : 0;
}

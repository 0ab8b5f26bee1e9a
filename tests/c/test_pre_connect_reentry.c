/*
 * The pre-connect callback calling back into its client:
 *  - replacing the callback from inside it returns (no wait for itself);
 *  - during a reconnection (connect_retry after a skipped first attempt),
 *    a blocking QoS 1 mqtt_publish from inside it returns promptly with
 *    MQTT5C_ERR_INVALID_ARGUMENT: the reconnection waits for the callback,
 *    so a publish that waited for the reconnection would hold both until
 *    the operation timeout;
 *  - mqtt_client_free from another thread while the callback runs (it
 *    blocks a while) waits for it, mqtt_connect returns, and no callback
 *    runs after the free returned;
 *  - mqtt_client_free from inside the callback during a reconnection.
 */
#include "test_common.h"

typedef struct {
    sync_t s;
    long calls;
    long returned;
    long replaced_calls;
    int set_rc;
    int publish_rc;
    double publish_s;
    int mode;
    mqtt_client *client;
    long connected;
} state_t;

enum { REPLACE = 1, PUBLISH = 2, BLOCK = 3, FREE_INSIDE = 4 };

static int replacement(void *ud, const char *url, unsigned attempt, mqtt_options *opts) {
    state_t *st = ud;
    (void)url, (void)attempt, (void)opts;
    sync_add(&st->s, &st->replaced_calls, 1);
    return 0;
}

static int pre_connect(void *ud, const char *url, unsigned attempt, mqtt_options *opts) {
    state_t *st = ud;
    (void)url, (void)opts;
    sync_add(&st->s, &st->calls, 1);
    int rc = 0;
    switch (st->mode) {
    case REPLACE:
        st->set_rc = mqtt_set_pre_connect_callback(st->client, replacement, st);
        break;
    case PUBLISH:
        if (attempt == 1 && sync_get(&st->s, &st->calls) == 1) {
            rc = 1; /* skip mqtt_connect's attempt: the reconnection follows */
        } else if (sync_get(&st->s, &st->calls) == 2) {
            double t0 = now_s();
            st->publish_rc = mqtt_publish(st->client, "reentry/pub", "x", 1, MQTT5C_QOS1, false, NULL);
            st->publish_s = now_s() - t0;
        }
        break;
    case BLOCK:
        sleep_ms(1500);
        break;
    case FREE_INSIDE:
        if (sync_get(&st->s, &st->calls) == 1) {
            rc = 1;
        } else {
            mqtt_client_free(st->client);
            rc = 1;
        }
        break;
    }
    sync_add(&st->s, &st->returned, 1);
    return rc;
}

static void on_connection(void *ud, int event, int reason) {
    state_t *st = ud;
    (void)reason;
    if (event == MQTT5C_EVENT_CONNECTED)
        sync_add(&st->s, &st->connected, 1);
}

static mqtt_client *make(const char *id, state_t *st, int mode, bool retry) {
    mqtt_options *o = mqtt_options_new();
    mqtt_options_set_client_id(o, id);
    mqtt_options_set_connect_timeout(o, (uint32_t)(10000 * timeout_scale()));
    mqtt_options_set_operation_timeout(o, (uint32_t)(20000 * timeout_scale()));
    if (retry) {
        mqtt_options_set_auto_reconnect(o, 50, 200);
        mqtt_options_set_connect_retry(o, true);
    }
    mqtt_client *c = mqtt_client_new(o);
    mqtt_options_free(o);
    memset(st, 0, sizeof *st);
    sync_init(&st->s);
    st->mode = mode;
    st->client = c;
    mqtt_set_connection_callback(c, on_connection, st);
    mqtt_set_pre_connect_callback(c, pre_connect, st);
    return c;
}

typedef struct {
    mqtt_client *c;
    const char *url;
    int rc;
} connect_arg;

static void *connect_thread(void *p) {
    connect_arg *a = p;
    a->rc = mqtt_connect(a->c, a->url);
    return NULL;
}

int main(int argc, char **argv) {
    const char *url = test_url(argc, argv);
    double scale = timeout_scale();
    state_t st;

    /* Replacing the callback from inside it. */
    mqtt_client *c = make("reentry-replace", &st, REPLACE, false);
    CHECK_RC(mqtt_connect(c, url), MQTT5C_OK);
    CHECK(st.set_rc == MQTT5C_OK, "set from inside: %d", st.set_rc);
    mqtt_disconnect(c, 0, NULL);
    CHECK_RC(mqtt_connect(c, url), MQTT5C_OK);
    CHECK(sync_get(&st.s, &st.replaced_calls) == 1, "the replacement ran");
    mqtt_disconnect(c, 0, NULL);
    mqtt_client_free(c);
    sync_destroy(&st.s);

    /* A blocking publish from inside the callback of a reconnection. */
    c = make("reentry-publish", &st, PUBLISH, true);
    CHECK_RC(mqtt_connect(c, url), MQTT5C_ERR_NOT_CONNECTED);
    CHECK(sync_wait_count(&st.s, &st.connected, 1, 30 * scale), "reconnected");
    TEST_LOG("publish inside the pre-connect callback: rc %d after %.1f s", st.publish_rc,
             st.publish_s);
    CHECK(st.publish_s < 5 * scale, "the publish inside the callback took %.1f s", st.publish_s);
    CHECK(st.publish_rc == MQTT5C_ERR_INVALID_ARGUMENT, "publish inside: %d", st.publish_rc);
    mqtt_disconnect(c, 0, NULL);
    mqtt_client_free(c);
    sync_destroy(&st.s);

    /* mqtt_client_free from another thread while the callback blocks. */
    c = make("reentry-free-other", &st, BLOCK, false);
    connect_arg a = {c, url, 0};
    pthread_t th;
    pthread_create(&th, NULL, connect_thread, &a);
    CHECK(sync_wait_count(&st.s, &st.calls, 1, 20 * scale), "callback called");
    mqtt_client_free(c);
    long after_free = sync_get(&st.s, &st.calls);
    CHECK(sync_get(&st.s, &st.returned) == after_free, "a callback still ran after free returned");
    pthread_join(th, NULL);
    TEST_LOG("mqtt_connect during the free: %d", a.rc);
    sleep_ms(200);
    CHECK(sync_get(&st.s, &st.calls) == after_free, "a callback started after free returned");
    sync_destroy(&st.s);

    /* mqtt_client_free from inside the callback of a reconnection. */
    c = make("reentry-free-inside", &st, FREE_INSIDE, true);
    CHECK_RC(mqtt_connect(c, url), MQTT5C_ERR_NOT_CONNECTED);
    CHECK(sync_wait_count(&st.s, &st.returned, 2, 20 * scale), "freed from inside");
    sleep_ms(300);
    CHECK(sync_get(&st.s, &st.calls) == 2, "calls after free: %ld", sync_get(&st.s, &st.calls));
    sync_destroy(&st.s);

cleanup:
    return test_failed;
}

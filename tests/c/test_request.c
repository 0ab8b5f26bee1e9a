/*
 * Request/response: an rpc server client answers requests on rpc/echo by
 * publishing "re:<payload>" to the request's Response Topic with its
 * Correlation Data (both read from the received message). mqtt_request from
 * 8 threads x 50 requests on one client gets each its own answer; a
 * request from inside a message callback works; no responder gives
 * MQTT5C_ERR_TIMEOUT; Response Topic / Correlation Data in props are refused.
 * The requester asks for Response Information in CONNECT.
 */
#include "test_common.h"

#define THREADS 8
#define PER_THREAD 50

static const char *url;
static mqtt_client *server, *requester, *cbclient;

static struct {
    sync_t s;
    long served;
    long served_bad; /* requests without response topic or correlation data */
    long cb_done;
    int cb_rc;
    char cb_answer[32];
    long thread_fail;
} st;

/* The rpc server: answers from its message callback. */
static void on_request(void *ud, const mqtt_message *m) {
    (void)ud;
    size_t len = 0;
    const char *payload = mqtt_message_payload(m, &len);
    char answer[64];
    int n = snprintf(answer, sizeof answer, "re:%.*s", (int)(len < 40 ? len : 40), payload);
    int rc = test_respond(server, m, answer, (size_t)n, MQTT5C_QOS1);
    if (rc == TEST_NOT_A_REQUEST) {
        sync_add(&st.s, &st.served_bad, 1);
        return;
    }
    if (rc < 0)
        fprintf(stderr, "server publish: %s\n", test_last_error());
    sync_add(&st.s, &st.served, 1);
}

static bool answer_is(mqtt_message *r, const char *want) {
    size_t len = 0;
    const char *p = mqtt_message_payload(r, &len);
    return len == strlen(want) && memcmp(p, want, len) == 0;
}

static void *requester_thread(void *arg) {
    int t = (int)(intptr_t)arg;
    for (int i = 0; i < PER_THREAD; i++) {
        char q[32], want[40];
        snprintf(q, sizeof q, "t%d-%d", t, i);
        snprintf(want, sizeof want, "re:%s", q);
        mqtt_message *r = NULL;
        int rc = mqtt_request(requester, "rpc/echo", q, strlen(q), MQTT5C_QOS1, NULL,
                              (uint32_t)(10000 * timeout_scale()), &r);
        bool ok = rc == MQTT5C_OK && r && answer_is(r, want) &&
                  mqtt_properties_count(mqtt_message_properties(r), MQTT5C_PROP_CORRELATION_DATA) == 1;
        if (!ok) {
            fprintf(stderr, "thread %d request %d: rc %d (%s)\n", t, i, rc, test_last_error());
            sync_add(&st.s, &st.thread_fail, 1);
        }
        mqtt_message_free(r);
    }
    return NULL;
}

/* A request made from inside a message callback. */
static void on_trigger(void *ud, const mqtt_message *m) {
    (void)ud;
    (void)m;
    mqtt_message *r = NULL;
    int rc = mqtt_request(cbclient, "rpc/echo", "from-cb", 7, MQTT5C_QOS1, NULL, (uint32_t)(10000 * timeout_scale()),
                          &r);
    sync_lock(&st.s);
    st.cb_rc = rc;
    if (r) {
        size_t len = 0;
        const char *p = mqtt_message_payload(r, &len);
        snprintf(st.cb_answer, sizeof st.cb_answer, "%.*s", (int)len, p);
    }
    st.cb_done++;
    sync_unlock_notify(&st.s);
    mqtt_message_free(r);
}

int main(int argc, char **argv) {
    mqtt_options *o = NULL;
    mqtt_properties *cp = NULL, *bad = NULL;
    mqtt_message *r = NULL;
    pthread_t threads[THREADS];
    int started = 0;
    url = test_url(argc, argv);
    sync_init(&st.s);

    server = test_client_new("mqtt5c-rpc-server");
    cbclient = test_client_new("mqtt5c-rpc-cb");
    CHECK(server && cbclient, "client_new");
    CHECK_RC(mqtt_set_message_callback(server, on_request, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_connect(server, url), MQTT5C_OK);
    CHECK_RC(mqtt_subscribe(server, "rpc/echo", MQTT5C_QOS1, NULL), 1);

    o = mqtt_options_new();
    cp = mqtt_properties_new();
    CHECK_RC(mqtt_options_set_client_id(o, "mqtt5c-rpc-client"), MQTT5C_OK);
    CHECK_RC(mqtt_properties_set_int(cp, MQTT5C_PROP_REQUEST_RESPONSE_INFORMATION, 1), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_connect_properties(o, cp), MQTT5C_OK);
    requester = mqtt_client_new(o);
    CHECK(requester != NULL, "client_new");
    CHECK_RC(mqtt_request(requester, "rpc/echo", "x", 1, MQTT5C_QOS1, NULL, 1000, &r), MQTT5C_ERR_NOT_CONNECTED);
    CHECK_RC(mqtt_connect(requester, url), MQTT5C_OK);
    {
        mqtt_properties *ca = mqtt_connack_properties(requester);
        const char *ri = mqtt_properties_get_string(ca, MQTT5C_PROP_RESPONSE_INFORMATION);
        TEST_LOG("Response Information from the broker: %s", ri ? ri : "(none; mosquitto 2.0 sends none)");
        mqtt_properties_free(ca);
    }

    /* Bad input: nothing sent. */
    bad = mqtt_properties_new();
    CHECK_RC(mqtt_properties_set_string(bad, MQTT5C_PROP_RESPONSE_TOPIC, "mine"), MQTT5C_OK);
    CHECK_RC(mqtt_request(requester, "rpc/echo", "x", 1, MQTT5C_QOS1, bad, 1000, &r), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK_RC(mqtt_request(requester, "rpc/echo", "x", 1, MQTT5C_QOS1, NULL, 1000, NULL), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK_RC(mqtt_request(requester, "rpc/+", "x", 1, MQTT5C_QOS1, NULL, 1000, &r), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK(r == NULL, "response written on failure");

    /* One request. */
    CHECK_RC(mqtt_request(requester, "rpc/echo", "ping", 4, MQTT5C_QOS1, NULL, (uint32_t)(10000 * timeout_scale()), &r),
             MQTT5C_OK);
    CHECK(answer_is(r, "re:ping"), "wrong answer");
    TEST_LOG("response on %s", mqtt_message_topic(r));
    mqtt_message_free(r);
    r = NULL;

    /* No responder: timeout. */
    CHECK_RC(mqtt_request(requester, "rpc/nobody", "x", 1, MQTT5C_QOS1, NULL, 300, &r), MQTT5C_ERR_TIMEOUT);
    CHECK(r == NULL, "response written on timeout");

    /* Many threads at once. */
    double t0 = now_s();
    for (; started < THREADS; started++)
        CHECK(pthread_create(&threads[started], NULL, requester_thread, (void *)(intptr_t)started) == 0,
              "pthread_create");
    for (int i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    started = 0;
    TEST_LOG("%d requests from %d threads in %.2f s", THREADS * PER_THREAD, THREADS, now_s() - t0);
    CHECK(sync_get(&st.s, &st.thread_fail) == 0, "%ld requests failed or got a wrong answer",
          sync_get(&st.s, &st.thread_fail));
    CHECK(sync_get(&st.s, &st.served_bad) == 0, "requests without Response Topic / Correlation Data");

    /* From inside a message callback. */
    CHECK_RC(mqtt_set_message_callback(cbclient, on_trigger, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_connect(cbclient, url), MQTT5C_OK);
    CHECK_RC(mqtt_subscribe(cbclient, "trigger/x", MQTT5C_QOS1, NULL), 1);
    CHECK(publish_ok(mqtt_publish(server, "trigger/x", "go", 2, MQTT5C_QOS1, false, NULL)), "trigger");
    CHECK(sync_wait_count(&st.s, &st.cb_done, 1, 15), "request inside a callback did not finish");
    CHECK(st.cb_rc == MQTT5C_OK && strcmp(st.cb_answer, "re:from-cb") == 0, "request in callback: rc %d answer '%s'",
          st.cb_rc, st.cb_answer);
    TEST_LOG("request from inside a callback ok");

    CHECK_RC(mqtt_disconnect(requester, 0, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_disconnect(cbclient, 0, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_disconnect(server, 0, NULL), MQTT5C_OK);
    TEST_LOG("test_request passed");

cleanup:
    for (int i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    mqtt_client_free(requester);
    mqtt_client_free(cbclient);
    mqtt_client_free(server);
    mqtt_options_free(o);
    mqtt_properties_free(cp);
    mqtt_properties_free(bad);
    mqtt_message_free(r);
    sync_destroy(&st.s);
    return test_failed;
}

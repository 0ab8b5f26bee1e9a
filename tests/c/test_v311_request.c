/*
 * mqtt_request on MQTT 3.1.1 (issue 12) against mosquitto: the reply
 * suffix convention (mqtt_options_set_reply_suffix). A responder on 3.1.1
 * written as for v5 (it answers to the message's Response Topic, which the
 * client reports as topic + suffix) serves a requester on 3.1.1: several
 * requests in a row; requests from threads at once on different topics and
 * on one shared topic (made one at a time), each getting its own answer; a
 * request nobody answers times out (valgrind: nothing leaks); without a
 * suffix mqtt_request is refused naming the option; properties, and a
 * request topic ending in the suffix, are refused.
 */
#include "test_common.h"

#define THREADS 4
#define PER_THREAD 10

static const char *url;
static mqtt_client *server, *requester, *plain;

static struct {
    sync_t s;
    long served, served_bad, thread_fail;
} st;

/* The responder: exactly what a v5 responder does, minus correlation data. */
static void on_request(void *ud, const mqtt_message *m) {
    (void)ud;
    const mqtt_properties *p = mqtt_message_properties(m);
    const char *rt = mqtt_properties_get_string(p, MQTT5C_PROP_RESPONSE_TOPIC);
    size_t len = 0;
    const char *payload = mqtt_message_payload(m, &len);
    char want[96];
    snprintf(want, sizeof want, "%s/reply", mqtt_message_topic(m));
    if (!rt || strcmp(rt, want) != 0) {
        fprintf(stderr, "response topic %s, want %s\n", rt ? rt : "(none)", want);
        sync_add(&st.s, &st.served_bad, 1);
        return;
    }
    char answer[64];
    int n = snprintf(answer, sizeof answer, "re:%.*s", (int)(len < 40 ? len : 40), payload);
    if (mqtt_publish(server, rt, answer, (size_t)n, MQTT5C_QOS1, false, NULL) < 0)
        fprintf(stderr, "server publish: %s\n", test_last_error());
    sync_add(&st.s, &st.served, 1);
}

static mqtt_client *client_311(const char *id, const char *suffix) {
    mqtt_options *o = mqtt_options_new();
    mqtt_client *c = NULL;
    if (!o)
        return NULL;
    if (mqtt_options_set_client_id(o, id) == MQTT5C_OK &&
        mqtt_options_set_protocol_version(o, MQTT_PROTOCOL_V311) == MQTT5C_OK &&
        mqtt_options_set_connect_timeout(o, (uint32_t)(10000 * timeout_scale())) == MQTT5C_OK &&
        (!suffix || mqtt_options_set_reply_suffix(o, suffix) == MQTT5C_OK))
        c = mqtt_client_new(o);
    mqtt_options_free(o);
    return c;
}

/* One request on topic; true when the answer is "re:<payload>". */
static bool ask(const char *topic, const char *payload) {
    mqtt_message *r = NULL;
    char want[64];
    snprintf(want, sizeof want, "re:%s", payload);
    int rc = mqtt_request(requester, topic, payload, strlen(payload), MQTT5C_QOS1, NULL,
                          (uint32_t)(15000 * timeout_scale()), &r);
    if (rc != MQTT5C_OK) {
        fprintf(stderr, "request %s '%s': rc %d: %s\n", topic, payload, rc, test_last_error());
        return false;
    }
    size_t len = 0;
    const char *p = mqtt_message_payload(r, &len);
    bool ok = len == strlen(want) && memcmp(p, want, len) == 0 &&
              strcmp(mqtt_message_topic(r), topic) != 0;
    if (!ok)
        fprintf(stderr, "request %s '%s': answer '%.*s' on %s\n", topic, payload, (int)len, p,
                mqtt_message_topic(r));
    mqtt_message_free(r);
    return ok;
}

/* Thread t: on its own topic when t is even, else on the shared one. */
static void *requester_thread(void *arg) {
    int t = (int)(intptr_t)arg;
    char topic[32];
    if (t % 2 == 0)
        snprintf(topic, sizeof topic, "rpc311/t%d", t);
    else
        snprintf(topic, sizeof topic, "rpc311/shared");
    for (int i = 0; i < PER_THREAD; i++) {
        char q[32];
        snprintf(q, sizeof q, "t%d-%d", t, i);
        if (!ask(topic, q)) {
            sync_add(&st.s, &st.thread_fail, 1);
            break;
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    mqtt_message *r = NULL;
    mqtt_properties *props = NULL;
    pthread_t threads[THREADS];
    int started = 0;
    static const char *const names_option[] = {"mqtt_options_set_reply_suffix", NULL};
    url = test_url(argc, argv);
    sync_init(&st.s);

    CHECK_RC(mqtt_options_set_reply_suffix(NULL, "/reply"), MQTT5C_ERR_INVALID_ARGUMENT);
    server = client_311("mqtt5c-rpc311-server", "/reply");
    requester = client_311("mqtt5c-rpc311-client", "/reply");
    plain = client_311("mqtt5c-rpc311-plain", NULL);
    CHECK(server && requester && plain, "client_new");
    CHECK_RC(mqtt_set_message_callback(server, on_request, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_connect(server, url), MQTT5C_OK);
    CHECK_RC(mqtt_subscribe(server, "rpc311/+", MQTT5C_QOS1, NULL), 1);
    CHECK_RC(mqtt_connect(requester, url), MQTT5C_OK);
    CHECK_RC(mqtt_connect(plain, url), MQTT5C_OK);
    CHECK(mqtt_client_protocol_version(requester) == MQTT_PROTOCOL_V311, "not 3.1.1");

    /* Without a suffix: refused, naming the option; nothing sent. */
    CHECK_RC(mqtt_request(plain, "rpc311/a", "x", 1, MQTT5C_QOS1, NULL, 1000, &r),
             MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK(last_error_mentions(names_option), "refusal does not name the option: %s",
          test_last_error());
    /* Properties, and a topic the responders take for a reply: refused. */
    props = mqtt_properties_new();
    CHECK_RC(mqtt_properties_set_string(props, MQTT5C_PROP_CONTENT_TYPE, "text"), MQTT5C_OK);
    CHECK_RC(mqtt_request(requester, "rpc311/a", "x", 1, MQTT5C_QOS1, props, 1000, &r),
             MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK_RC(mqtt_request(requester, "rpc311/a/reply", "x", 1, MQTT5C_QOS1, NULL, 1000, &r),
             MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK(r == NULL, "response written on failure");
    CHECK(sync_get(&st.s, &st.served) == 0, "a refused request was sent");

    /* Several in a row. */
    for (int i = 0; i < 5; i++) {
        char q[16];
        snprintf(q, sizeof q, "seq-%d", i);
        CHECK(ask("rpc311/a", q), "sequential request %d", i);
    }
    TEST_LOG("sequential requests ok");

    /* Threads at once: own topics and one shared topic. */
    for (; started < THREADS; started++)
        if (pthread_create(&threads[started], NULL, requester_thread, (void *)(intptr_t)started))
            break;
    CHECK(started == THREADS, "pthread_create");
    for (int i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    started = 0;
    CHECK(st.thread_fail == 0, "%ld threads failed", st.thread_fail);
    CHECK(st.served_bad == 0, "%ld requests without the response topic", st.served_bad);
    TEST_LOG("concurrent requests ok");

    /* Nobody answers: a timeout; the next request on the topic still works. */
    CHECK_RC(mqtt_request(requester, "nobody311/x", "x", 1, MQTT5C_QOS1, NULL, 300, &r),
             MQTT5C_ERR_TIMEOUT);
    CHECK(r == NULL, "response written on timeout");
    CHECK(ask("rpc311/a", "after-timeout"), "request after a timeout");

    CHECK_RC(mqtt_disconnect(requester, 0, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_disconnect(plain, 0, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_disconnect(server, 0, NULL), MQTT5C_OK);
    TEST_LOG("test_v311_request passed");

cleanup:
    for (int i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    mqtt_client_free(requester);
    mqtt_client_free(plain);
    mqtt_client_free(server);
    mqtt_properties_free(props);
    mqtt_message_free(r);
    sync_destroy(&st.s);
    return test_failed;
}

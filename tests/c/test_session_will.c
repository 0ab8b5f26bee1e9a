/*
 * Sessions and wills against mosquitto.
 *
 * Session: Clean Start false with a Session Expiry Interval; after a
 * disconnect, QoS 1 messages published meanwhile are queued by the broker
 * and arrive on reconnect with the same client id, which reports session
 * present.
 *
 * Will: a will with properties and a Will Delay Interval is published
 * after an abnormal end (mqtt_client_free without mqtt_disconnect), no
 * earlier than the delay, with its properties; a client that disconnects
 * normally has its will discarded.
 */
#include "test_common.h"

#define WILL_DELAY 2

static struct {
    sync_t s;
    long sess;      /* session messages */
    long will_a;    /* will of the normally disconnected client */
    long will_b;    /* will of the abnormally ended client */
    double will_b_at;
    char will_b_ct[32];
    char will_b_user[32];
} st;

static void on_session(void *ud, const mqtt_message *m) {
    (void)ud;
    (void)m;
    sync_add(&st.s, &st.sess, 1);
}

static void on_will(void *ud, const mqtt_message *m) {
    (void)ud;
    const char *t = mqtt_message_topic(m);
    const mqtt_properties *p = mqtt_message_properties(m);
    sync_lock(&st.s);
    if (strcmp(t, "will/a") == 0) {
        st.will_a++;
    } else if (strcmp(t, "will/b") == 0) {
        const char *ct = mqtt_properties_get_string(p, MQTT5C_PROP_CONTENT_TYPE);
        const char *k = NULL, *v = NULL;
        st.will_b++;
        st.will_b_at = now_s();
        snprintf(st.will_b_ct, sizeof st.will_b_ct, "%s", ct ? ct : "");
        if (mqtt_properties_user_at(p, 0, &k, &v) == MQTT5C_OK)
            snprintf(st.will_b_user, sizeof st.will_b_user, "%s=%s", k, v);
    }
    sync_unlock_notify(&st.s);
}

/* A client with a will on `topic` (delay WILL_DELAY s, session expiry
 * long enough for the delay to count). */
static mqtt_client *will_client(const char *id, const char *topic) {
    mqtt_options *o = mqtt_options_new();
    mqtt_properties *wp = mqtt_properties_new();
    mqtt_client *c = NULL;
    if (mqtt_options_set_client_id(o, id) == MQTT5C_OK && mqtt_options_set_session_expiry(o, 60) == MQTT5C_OK &&
        mqtt_properties_set_int(wp, MQTT5C_PROP_WILL_DELAY_INTERVAL, WILL_DELAY) == MQTT5C_OK &&
        mqtt_properties_set_string(wp, MQTT5C_PROP_CONTENT_TYPE, "text/x-will") == MQTT5C_OK &&
        mqtt_properties_add_user(wp, "who", id) == MQTT5C_OK &&
        mqtt_options_set_will(o, topic, "gone", 4, MQTT5C_QOS1, false, wp) == MQTT5C_OK)
        c = mqtt_client_new(o);
    else
        fprintf(stderr, "will options: %s\n", test_last_error());
    mqtt_properties_free(wp);
    mqtt_options_free(o);
    return c;
}

int main(int argc, char **argv) {
    const char *url = test_url(argc, argv);
    mqtt_options *o = NULL;
    mqtt_client *s = NULL, *pub = NULL, *watch = NULL, *wa = NULL, *wb = NULL;
    sync_init(&st.s);

    /* ---- session resumption ---- */
    o = mqtt_options_new();
    CHECK_RC(mqtt_options_set_client_id(o, "mqtt5c-session"), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_clean_start(o, false), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_session_expiry(o, 300), MQTT5C_OK);
    s = mqtt_client_new(o);
    pub = test_client_new("mqtt5c-session-pub");
    CHECK(s && pub, "client_new");
    CHECK_RC(mqtt_set_message_callback(s, on_session, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_connect(pub, url), MQTT5C_OK);
    CHECK_RC(mqtt_connect(s, url), MQTT5C_OK);
    CHECK_RC(mqtt_session_present(s), 0);
    CHECK_RC(mqtt_subscribe(s, "sess/t", MQTT5C_QOS1, NULL), 1);
    CHECK_RC(mqtt_disconnect(s, 0, NULL), MQTT5C_OK);
    for (int i = 0; i < 5; i++)
        CHECK_RC(mqtt_publish(pub, "sess/t", "queued", 6, MQTT5C_QOS1, false, NULL), 0);
    CHECK(sync_get(&st.s, &st.sess) == 0, "message arrived while disconnected");
    CHECK_RC(mqtt_connect(s, url), MQTT5C_OK);
    CHECK_RC(mqtt_session_present(s), 1);
    CHECK(sync_wait_count(&st.s, &st.sess, 5, 10), "queued messages: %ld of 5 arrived", sync_get(&st.s, &st.sess));
    /* A separate client object with the same id resumes it too. */
    CHECK_RC(mqtt_disconnect(s, 0, NULL), MQTT5C_OK);
    mqtt_client_free(s);
    s = mqtt_client_new(o);
    CHECK(s != NULL, "client_new");
    CHECK_RC(mqtt_set_message_callback(s, on_session, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_publish(pub, "sess/t", "queued", 6, MQTT5C_QOS1, false, NULL), 0);
    CHECK_RC(mqtt_connect(s, url), MQTT5C_OK);
    CHECK_RC(mqtt_session_present(s), 1);
    CHECK(sync_wait_count(&st.s, &st.sess, 6, 10), "queued message for a new client object did not arrive");
    CHECK_RC(mqtt_disconnect(s, 0, NULL), MQTT5C_OK);
    TEST_LOG("session resumed, queued messages delivered");

    /* ---- will with properties and delay ---- */
    watch = test_client_new("mqtt5c-will-watch");
    CHECK(watch != NULL, "client_new");
    CHECK_RC(mqtt_set_message_callback(watch, on_will, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_connect(watch, url), MQTT5C_OK);
    CHECK_RC(mqtt_subscribe(watch, "will/#", MQTT5C_QOS1, NULL), 1);
    wa = will_client("mqtt5c-will-a", "will/a");
    wb = will_client("mqtt5c-will-b", "will/b");
    CHECK(wa && wb, "will clients");
    CHECK_RC(mqtt_connect(wa, url), MQTT5C_OK);
    CHECK_RC(mqtt_connect(wb, url), MQTT5C_OK);
    /* a: normal disconnect, its will is discarded. */
    CHECK_RC(mqtt_disconnect(wa, 0, NULL), MQTT5C_OK);
    /* b: abnormal end (no DISCONNECT), later than a. */
    double ended = now_s();
    mqtt_client_free(wb);
    wb = NULL;
    CHECK(sync_wait_count(&st.s, &st.will_b, 1, WILL_DELAY + 10), "will of the abnormally ended client missing");
    sync_lock(&st.s);
    double delay = st.will_b_at - ended;
    char ct[32], user[32];
    snprintf(ct, sizeof ct, "%s", st.will_b_ct);
    snprintf(user, sizeof user, "%s", st.will_b_user);
    sync_unlock(&st.s);
    TEST_LOG("will arrived %.2f s after the abnormal end (delay %d s)", delay, WILL_DELAY);
    CHECK(delay >= WILL_DELAY - 0.05, "will arrived after %.2f s, before its delay of %d s", delay, WILL_DELAY);
    CHECK(strcmp(ct, "text/x-will") == 0, "will content type '%s'", ct);
    CHECK(strcmp(user, "who=mqtt5c-will-b") == 0, "will user property '%s'", user);
    /* a ended before b and has the same delay: its will would be in by now. */
    CHECK(sync_get(&st.s, &st.will_a) == 0, "will published after a normal disconnect");
    CHECK_RC(mqtt_disconnect(watch, 0, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_disconnect(pub, 0, NULL), MQTT5C_OK);
    TEST_LOG("test_session_will passed");

cleanup:
    mqtt_client_free(s);
    mqtt_client_free(pub);
    mqtt_client_free(watch);
    mqtt_client_free(wa);
    mqtt_client_free(wb);
    mqtt_options_free(o);
    sync_destroy(&st.s);
    return test_failed;
}

/*
 * The properties API: MQTT5C_PROP_* ids, setters and getters of every kind,
 * wrong types and values, copies; properties that a packet does not allow
 * (refused before anything is sent, connection intact); every PUBLISH
 * property reaching the message callback, and a message copy used after the
 * callback; CONNECT properties, CONNACK properties, the assigned client id,
 * session present.
 */
#include "test_common.h"

static struct {
    sync_t s;
    long count;
    mqtt_message *kept; /* copy made in the callback */
    long in_cb_ok;      /* properties read fine inside the callback */
} st;

static void on_message(void *ud, const mqtt_message *m) {
    (void)ud;
    const mqtt_properties *p = mqtt_message_properties(m);
    const char *ct = mqtt_properties_get_string(p, MQTT5C_PROP_CONTENT_TYPE);
    mqtt_message *copy = mqtt_message_copy(m);
    /* The message of a callback is not the caller's to free: refused. */
    mqtt_message_free((mqtt_message *)m);
    sync_lock(&st.s);
    if (ct && strcmp(ct, "text/plain") == 0)
        st.in_cb_ok++;
    if (!st.kept)
        st.kept = copy;
    else
        mqtt_message_free(copy);
    st.count++;
    sync_unlock_notify(&st.s);
}

static bool err_mentions(const char *word) {
    const char *k[] = {word, NULL};
    return last_error_mentions(k);
}

int main(int argc, char **argv) {
    const char *url = test_url(argc, argv);
    mqtt_properties *p = NULL, *q = NULL, *cp = NULL, *connack = NULL;
    mqtt_options *opts = NULL;
    mqtt_client *client = NULL, *anon = NULL;
    uint32_t v = 0;
    size_t len = 0;
    const char *s, *k, *val;
    char idbuf[128];

    sync_init(&st.s);

    /* ---- ids equal the spec's ---- */
    CHECK(MQTT5C_PROP_PAYLOAD_FORMAT_INDICATOR == 0x01 && MQTT5C_PROP_CORRELATION_DATA == 0x09 &&
              MQTT5C_PROP_SUBSCRIPTION_IDENTIFIER == 0x0B && MQTT5C_PROP_USER_PROPERTY == 0x26 &&
              MQTT5C_PROP_SHARED_SUBSCRIPTION_AVAILABLE == 0x2A && MQTT5C_PROP_WILL_DELAY_INTERVAL == 0x18,
          "property ids differ from the spec");

    /* ---- setters and getters ---- */
    p = mqtt_properties_new();
    CHECK(p != NULL, "mqtt_properties_new");
    CHECK_RC(mqtt_properties_get_int(p, MQTT5C_PROP_MESSAGE_EXPIRY_INTERVAL, &v), MQTT5C_ERR_NOT_FOUND);
    CHECK(mqtt_properties_get_string(p, MQTT5C_PROP_CONTENT_TYPE) == NULL, "absent string not NULL");
    CHECK(mqtt_properties_get_binary(p, MQTT5C_PROP_CORRELATION_DATA, &len) == NULL, "absent binary not NULL");
    CHECK_RC(mqtt_properties_set_int(p, MQTT5C_PROP_PAYLOAD_FORMAT_INDICATOR, 1), MQTT5C_OK);
    CHECK_RC(mqtt_properties_set_int(p, MQTT5C_PROP_MESSAGE_EXPIRY_INTERVAL, 3600), MQTT5C_OK);
    CHECK_RC(mqtt_properties_set_int(p, MQTT5C_PROP_MESSAGE_EXPIRY_INTERVAL, 7200), MQTT5C_OK); /* replaces */
    CHECK_RC(mqtt_properties_set_string(p, MQTT5C_PROP_CONTENT_TYPE, "text/plain"), MQTT5C_OK);
    CHECK_RC(mqtt_properties_set_string(p, MQTT5C_PROP_RESPONSE_TOPIC, "props/reply"), MQTT5C_OK);
    CHECK_RC(mqtt_properties_set_binary(p, MQTT5C_PROP_CORRELATION_DATA, "\x00\x01\x02", 3), MQTT5C_OK);
    CHECK_RC(mqtt_properties_add_user(p, "k1", "v1"), MQTT5C_OK);
    CHECK_RC(mqtt_properties_add_user(p, "k2", "v2"), MQTT5C_OK);
    CHECK_RC(mqtt_properties_add_user(p, "k1", "v3"), MQTT5C_OK);

    CHECK_RC(mqtt_properties_get_int(p, MQTT5C_PROP_MESSAGE_EXPIRY_INTERVAL, &v), MQTT5C_OK);
    CHECK(v == 7200, "expiry %u, want 7200", v);
    CHECK(mqtt_properties_count(p, MQTT5C_PROP_MESSAGE_EXPIRY_INTERVAL) == 1, "set did not replace");
    s = mqtt_properties_get_string_len(p, MQTT5C_PROP_CONTENT_TYPE, &len);
    CHECK(s && strcmp(s, "text/plain") == 0 && len == 10, "content type '%s' len %zu", s ? s : "(null)", len);
    {
        const unsigned char *b = mqtt_properties_get_binary(p, MQTT5C_PROP_CORRELATION_DATA, &len);
        CHECK(b && len == 3 && b[0] == 0 && b[2] == 2, "correlation data mangled (len %zu)", len);
    }
    CHECK(mqtt_properties_count(p, MQTT5C_PROP_USER_PROPERTY) == 3, "user count %zu",
          mqtt_properties_count(p, MQTT5C_PROP_USER_PROPERTY));
    CHECK_RC(mqtt_properties_user_at(p, 2, &k, &val), MQTT5C_OK);
    CHECK(strcmp(k, "k1") == 0 && strcmp(val, "v3") == 0, "user #2 = %s=%s, want k1=v3", k, val);
    CHECK_RC(mqtt_properties_user_at(p, 1, &k, &val), MQTT5C_OK);
    CHECK(strcmp(k, "k2") == 0 && strcmp(val, "v2") == 0, "user #1 = %s=%s, want k2=v2", k, val);
    CHECK_RC(mqtt_properties_user_at(p, 3, &k, &val), MQTT5C_ERR_NOT_FOUND);

    /* Subscription identifiers repeat; get_int_at reads each. */
    q = mqtt_properties_new();
    CHECK_RC(mqtt_properties_set_int(q, MQTT5C_PROP_SUBSCRIPTION_IDENTIFIER, 5), MQTT5C_OK);
    CHECK_RC(mqtt_properties_set_int(q, MQTT5C_PROP_SUBSCRIPTION_IDENTIFIER, 9), MQTT5C_OK);
    CHECK(mqtt_properties_count(q, MQTT5C_PROP_SUBSCRIPTION_IDENTIFIER) == 2, "two sub ids expected");
    CHECK_RC(mqtt_properties_get_int_at(q, MQTT5C_PROP_SUBSCRIPTION_IDENTIFIER, 1, &v), MQTT5C_OK);
    CHECK(v == 9, "sub id #1 = %u", v);
    CHECK_RC(mqtt_properties_get_int_at(q, MQTT5C_PROP_SUBSCRIPTION_IDENTIFIER, 2, &v), MQTT5C_ERR_NOT_FOUND);

    /* Every settable client property, by kind. */
    {
        const int ints[] = {MQTT5C_PROP_SESSION_EXPIRY_INTERVAL, MQTT5C_PROP_RECEIVE_MAXIMUM,
                            MQTT5C_PROP_MAXIMUM_PACKET_SIZE,     MQTT5C_PROP_TOPIC_ALIAS_MAXIMUM,
                            MQTT5C_PROP_REQUEST_RESPONSE_INFORMATION, MQTT5C_PROP_REQUEST_PROBLEM_INFORMATION,
                            MQTT5C_PROP_WILL_DELAY_INTERVAL,     MQTT5C_PROP_TOPIC_ALIAS};
        mqtt_properties *all = mqtt_properties_new();
        for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
            int rc = mqtt_properties_set_int(all, ints[i], 1);
            if (rc != MQTT5C_OK) {
                mqtt_properties_free(all);
                CHECK(false, "set_int(0x%02X, 1) = %d: %s", ints[i], rc, test_last_error());
            }
            uint32_t got = 0;
            mqtt_properties_get_int(all, ints[i], &got);
            if (got != 1) {
                mqtt_properties_free(all);
                CHECK(false, "get_int(0x%02X) = %u", ints[i], got);
            }
        }
        int rc1 = mqtt_properties_set_string(all, MQTT5C_PROP_AUTHENTICATION_METHOD, "SCRAM-SHA-1");
        int rc2 = mqtt_properties_set_binary(all, MQTT5C_PROP_AUTHENTICATION_DATA, "abc", 3);
        mqtt_properties_free(all);
        CHECK(rc1 == MQTT5C_OK && rc2 == MQTT5C_OK, "auth method/data: %d %d", rc1, rc2);
    }

    /* ---- wrong types and values name the property ---- */
    CHECK_RC(mqtt_properties_set_string(p, MQTT5C_PROP_MESSAGE_EXPIRY_INTERVAL, "x"), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK(err_mentions("Message Expiry Interval"), "error does not name the property: %s", test_last_error());
    CHECK_RC(mqtt_properties_set_int(p, MQTT5C_PROP_CONTENT_TYPE, 1), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK(err_mentions("Content Type"), "error does not name the property: %s", test_last_error());
    CHECK_RC(mqtt_properties_set_binary(p, MQTT5C_PROP_RESPONSE_TOPIC, "x", 1), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK(err_mentions("Response Topic"), "error does not name the property: %s", test_last_error());
    CHECK_RC(mqtt_properties_set_string(p, MQTT5C_PROP_USER_PROPERTY, "x"), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK_RC(mqtt_properties_get_int(p, MQTT5C_PROP_CONTENT_TYPE, &v), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK(mqtt_properties_get_string(p, MQTT5C_PROP_MESSAGE_EXPIRY_INTERVAL) == NULL, "string of an int");
    CHECK_RC(mqtt_properties_set_int(p, 0x7F, 1), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK_RC(mqtt_properties_set_int(p, MQTT5C_PROP_PAYLOAD_FORMAT_INDICATOR, 2), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK_RC(mqtt_properties_set_int(p, MQTT5C_PROP_RECEIVE_MAXIMUM, 0), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK_RC(mqtt_properties_set_int(p, MQTT5C_PROP_RECEIVE_MAXIMUM, 70000), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK_RC(mqtt_properties_set_string(p, MQTT5C_PROP_RESPONSE_TOPIC, "a/+"), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK_RC(mqtt_properties_set_int(NULL, MQTT5C_PROP_RECEIVE_MAXIMUM, 1), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK_RC(mqtt_properties_get_int(p, MQTT5C_PROP_MESSAGE_EXPIRY_INTERVAL, NULL), MQTT5C_ERR_INVALID_ARGUMENT);
    /* A failed set changed nothing. */
    CHECK_RC(mqtt_properties_get_int(p, MQTT5C_PROP_PAYLOAD_FORMAT_INDICATOR, &v), MQTT5C_OK);
    CHECK(v == 1, "payload format changed by a failed set: %u", v);

    /* ---- copy is independent ---- */
    cp = mqtt_properties_copy(p);
    CHECK(cp != NULL, "copy");
    CHECK_RC(mqtt_properties_remove(p, MQTT5C_PROP_CONTENT_TYPE), MQTT5C_OK);
    CHECK(mqtt_properties_get_string(p, MQTT5C_PROP_CONTENT_TYPE) == NULL, "remove did not remove");
    s = mqtt_properties_get_string(cp, MQTT5C_PROP_CONTENT_TYPE);
    CHECK(s && strcmp(s, "text/plain") == 0, "copy lost content type");
    CHECK(mqtt_properties_count(cp, MQTT5C_PROP_USER_PROPERTY) == 3, "copy lost user properties");
    CHECK(mqtt_properties_copy(NULL) == NULL, "copy(NULL) not NULL");
    mqtt_properties_free(p);
    p = cp; /* all PUBLISH properties */
    cp = NULL;

    /* ---- connect properties, CONNACK, client id ---- */
    opts = mqtt_options_new();
    CHECK_RC(mqtt_options_set_client_id(opts, "mqtt5c-props"), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_operation_timeout(opts, (uint32_t)(30000 * timeout_scale())), MQTT5C_OK);
    /* A PUBLISH-only property is refused in CONNECT, naming it. */
    CHECK_RC(mqtt_options_set_connect_properties(opts, p), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK(err_mentions("Payload Format Indicator"), "error does not name it: %s", test_last_error());
    cp = mqtt_properties_new();
    CHECK_RC(mqtt_properties_set_int(cp, MQTT5C_PROP_RECEIVE_MAXIMUM, 100), MQTT5C_OK);
    CHECK_RC(mqtt_properties_set_int(cp, MQTT5C_PROP_REQUEST_RESPONSE_INFORMATION, 1), MQTT5C_OK);
    CHECK_RC(mqtt_properties_set_int(cp, MQTT5C_PROP_REQUEST_PROBLEM_INFORMATION, 1), MQTT5C_OK);
    CHECK_RC(mqtt_properties_set_int(cp, MQTT5C_PROP_TOPIC_ALIAS_MAXIMUM, 10), MQTT5C_OK);
    CHECK_RC(mqtt_properties_set_int(cp, MQTT5C_PROP_MAXIMUM_PACKET_SIZE, 100000), MQTT5C_OK);
    CHECK_RC(mqtt_properties_add_user(cp, "app", "props-test"), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_connect_properties(opts, cp), MQTT5C_OK);
    client = mqtt_client_new(opts);
    CHECK(client != NULL, "client_new: %s", test_last_error());
    CHECK(mqtt_connack_properties(client) == NULL, "CONNACK properties before connecting");
    /* Before any CONNACK: 0 (a predicate never returns an error code), and why. */
    CHECK_RC(mqtt_session_present(client), 0);
    CHECK(err_mentions("CONNACK"), "no reason given: %s", test_last_error());
    CHECK_RC(mqtt_set_message_callback(client, on_message, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_connect(client, url), MQTT5C_OK);
    CHECK_RC(mqtt_session_present(client), 0);
    connack = mqtt_connack_properties(client);
    CHECK(connack != NULL, "no CONNACK properties: %s", test_last_error());
    TEST_LOG("CONNACK carries %zu topic alias maximum, %zu receive maximum",
             mqtt_properties_count(connack, MQTT5C_PROP_TOPIC_ALIAS_MAXIMUM),
             mqtt_properties_count(connack, MQTT5C_PROP_RECEIVE_MAXIMUM));
    CHECK(mqtt_properties_get_string(connack, MQTT5C_PROP_ASSIGNED_CLIENT_IDENTIFIER) == NULL,
          "assigned id though we gave one");
    CHECK_RC(mqtt_client_get_id(client, NULL, 0), 12);
    CHECK_RC(mqtt_client_get_id(client, idbuf, 12), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK(err_mentions("13"), "too-small buffer error does not say the size: %s", test_last_error());
    CHECK_RC(mqtt_client_get_id(client, idbuf, sizeof idbuf), 12);
    CHECK(strcmp(idbuf, "mqtt5c-props") == 0, "client id '%s'", idbuf);

    /* Server-assigned id. */
    anon = mqtt_client_new(NULL);
    CHECK(anon != NULL, "client_new");
    CHECK_RC(mqtt_client_get_id(anon, idbuf, sizeof idbuf), 0);
    CHECK_RC(mqtt_connect(anon, url), MQTT5C_OK);
    {
        mqtt_properties *ca = mqtt_connack_properties(anon);
        const char *assigned = mqtt_properties_get_string(ca, MQTT5C_PROP_ASSIGNED_CLIENT_IDENTIFIER);
        int n = mqtt_client_get_id(anon, idbuf, sizeof idbuf);
        bool same = assigned && n > 0 && strcmp(assigned, idbuf) == 0;
        TEST_LOG("assigned client id: %s", n > 0 ? idbuf : "(none)");
        mqtt_properties_free(ca);
        CHECK(same, "assigned id not reported (get_id %d)", n);
    }
    CHECK_RC(mqtt_disconnect(anon, 0, NULL), MQTT5C_OK);

    /* ---- not allowed on the packet: refused, nothing sent, connection up ---- */
    mqtt_properties_free(cp);
    cp = mqtt_properties_new();
    CHECK_RC(mqtt_properties_set_int(cp, MQTT5C_PROP_SESSION_EXPIRY_INTERVAL, 10), MQTT5C_OK);
    CHECK_RC(mqtt_publish(client, "props/x", "x", 1, MQTT5C_QOS1, false, cp), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK(err_mentions("Session Expiry Interval"), "publish error: %s", test_last_error());
    CHECK_RC(mqtt_subscribe(client, "props/#", MQTT5C_QOS1, cp), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK(err_mentions("Session Expiry Interval"), "subscribe error: %s", test_last_error());
    CHECK_RC(mqtt_unsubscribe(client, "props/#", p), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK(err_mentions("Payload Format Indicator"), "unsubscribe error: %s", test_last_error());
    CHECK_RC(mqtt_disconnect(client, 0, p), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK(err_mentions("Payload Format Indicator"), "disconnect error: %s", test_last_error());
    {
        mqtt_options *o2 = mqtt_options_new();
        int rc = mqtt_options_set_will(o2, "props/will", "w", 1, 0, false, cp);
        bool named = err_mentions("Session Expiry Interval");
        mqtt_options_free(o2);
        CHECK(rc == MQTT5C_ERR_INVALID_ARGUMENT && named, "will: %d %s", rc, test_last_error());
    }
    CHECK(mqtt_is_connected(client) == 1, "connection dropped after refused calls");

    /* ---- every PUBLISH property reaches the callback ---- */
    CHECK_RC(mqtt_subscribe(client, "props/#", MQTT5C_QOS1, NULL), 1);
    CHECK_RC(mqtt_publish(client, "props/all", "hello", 5, MQTT5C_QOS1, false, p), 0);
    CHECK(sync_wait_count(&st.s, &st.count, 1, 10), "message with properties not received");
    CHECK(sync_get(&st.s, &st.in_cb_ok) == 1, "content type not readable in the callback");
    {
        /* The copy outlives the callback. */
        mqtt_message *m = st.kept;
        const mqtt_properties *mp = mqtt_message_properties(m);
        const unsigned char *cd;
        size_t plen = 0;
        const char *payload = mqtt_message_payload(m, &plen);
        CHECK(strcmp(mqtt_message_topic(m), "props/all") == 0, "copy topic %s", mqtt_message_topic(m));
        CHECK(plen == 5 && memcmp(payload, "hello", 5) == 0, "copy payload");
        CHECK(mqtt_message_qos(m) == 1, "copy qos");
        CHECK_RC(mqtt_properties_get_int(mp, MQTT5C_PROP_PAYLOAD_FORMAT_INDICATOR, &v), MQTT5C_OK);
        CHECK(v == 1, "payload format %u", v);
        CHECK_RC(mqtt_properties_get_int(mp, MQTT5C_PROP_MESSAGE_EXPIRY_INTERVAL, &v), MQTT5C_OK);
        CHECK(v > 7000 && v <= 7200, "message expiry %u", v);
        s = mqtt_properties_get_string(mp, MQTT5C_PROP_CONTENT_TYPE);
        CHECK(s && strcmp(s, "text/plain") == 0, "content type");
        s = mqtt_properties_get_string(mp, MQTT5C_PROP_RESPONSE_TOPIC);
        CHECK(s && strcmp(s, "props/reply") == 0, "response topic");
        cd = mqtt_properties_get_binary(mp, MQTT5C_PROP_CORRELATION_DATA, &len);
        CHECK(cd && len == 3 && cd[1] == 1, "correlation data");
        CHECK(mqtt_properties_count(mp, MQTT5C_PROP_USER_PROPERTY) == 3, "user properties lost");
        CHECK_RC(mqtt_properties_user_at(mp, 0, &k, &val), MQTT5C_OK);
        CHECK(strcmp(k, "k1") == 0 && strcmp(val, "v1") == 0, "user #0 %s=%s", k, val);
        CHECK_RC(mqtt_properties_user_at(mp, 2, &k, &val), MQTT5C_OK);
        CHECK(strcmp(k, "k1") == 0 && strcmp(val, "v3") == 0, "user #2 %s=%s (order lost)", k, val);
        TEST_LOG("all PUBLISH properties received and kept past the callback");
    }
    CHECK_RC(mqtt_disconnect(client, 0, NULL), MQTT5C_OK);
    TEST_LOG("test_properties passed");

cleanup:
    mqtt_client_free(client);
    mqtt_client_free(anon);
    mqtt_options_free(opts);
    mqtt_properties_free(p);
    mqtt_properties_free(q);
    mqtt_properties_free(cp);
    mqtt_properties_free(connack);
    mqtt_message_free(st.kept);
    mqtt_message_free(NULL);
    sync_destroy(&st.s);
    return test_failed;
}

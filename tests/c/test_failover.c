/*
 * Several servers (mqtt_options_add_server) against mosquitto:
 *  - the setters' validation: NULL arguments, a bad URL (the options
 *    unchanged, a specific mqtt_last_error);
 *  - mqtt_connect to a closed port with the broker added as a further
 *    server: connected to the broker, and a QoS 1 publish works;
 *  - the broker stopped: DISCONNECTED, then rounds over both servers
 *    (MQTT5C_EVENT_RECONNECTING before each attempt, the closed port among
 *    them) until the broker is back: CONNECTED, and a publish works.
 */
// needs: broker-control
#include "test_common.h"

#include <netinet/in.h>

typedef struct {
    sync_t s;
    long connected;
    long disconnected;
    long reconnecting;
} state_t;

static void on_connection(void *ud, int event, int reason) {
    state_t *st = ud;
    (void)reason;
    sync_lock(&st->s);
    if (event == MQTT5C_EVENT_CONNECTED)
        st->connected++;
    else if (event == MQTT5C_EVENT_DISCONNECTED)
        st->disconnected++;
    else if (event == MQTT5C_EVENT_RECONNECTING)
        st->reconnecting++;
    sync_unlock_notify(&st->s);
}

/* A loopback port nothing listens on (free when we looked). */
static int closed_port(void) {
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int port = -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

int main(int argc, char **argv) {
    const char *url = test_url(argc, argv);
    mqtt_options *opts = NULL;
    mqtt_client *c = NULL;
    char down[64];
    state_t st;
    memset(&st, 0, sizeof st);
    sync_init(&st.s);
    double scale = timeout_scale();

    int port = closed_port();
    CHECK(port > 0, "no free port");
    snprintf(down, sizeof down, "mqtt://127.0.0.1:%d", port);

    opts = mqtt_options_new();
    CHECK(opts != NULL, "mqtt_options_new");

    /* Validation. */
    CHECK_RC(mqtt_options_add_server(NULL, url), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK(strstr(test_last_error(), "opts") != NULL, "%s", test_last_error());
    CHECK_RC(mqtt_options_add_server(opts, NULL), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK(strstr(test_last_error(), "url") != NULL, "%s", test_last_error());
    CHECK_RC(mqtt_options_add_server(opts, "http://127.0.0.1:1"), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK(strstr(test_last_error(), "scheme") != NULL, "%s", test_last_error());
    CHECK_RC(mqtt_options_add_server(opts, "mqtt://127.0.0.1:0"), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK(strstr(test_last_error(), "port") != NULL, "%s", test_last_error());
    CHECK_RC(mqtt_options_set_follow_redirects(NULL, 1), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK_RC(mqtt_options_set_follow_redirects(opts, 0), MQTT5C_OK);

    CHECK_RC(mqtt_options_set_client_id(opts, "c-failover"), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_connect_timeout(opts, (uint32_t)(10000 * scale)), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_auto_reconnect(opts, 50, 400), MQTT5C_OK);
    CHECK_RC(mqtt_options_add_server(opts, url), MQTT5C_OK);
    c = mqtt_client_new(opts);
    CHECK(c != NULL, "mqtt_client_new: %s", test_last_error());
    CHECK_RC(mqtt_set_connection_callback(c, on_connection, &st), MQTT5C_OK);

    /* The URL given is down: the added server takes over. */
    CHECK_RC(mqtt_connect(c, down), MQTT5C_OK);
    CHECK(mqtt_is_connected(c) == 1, "not connected");
    CHECK(sync_wait_count(&st.s, &st.connected, 1, 10 * scale), "no CONNECTED");
    CHECK(publish_ok(mqtt_publish(c, "failover/a", "1", 1, MQTT5C_QOS1, false, NULL)), "publish");
    TEST_LOG("connected to the second server");

    /* The broker goes away: rounds over both servers until it is back. */
    CHECK(broker_control("stop"), "stop");
    CHECK(sync_wait_count(&st.s, &st.disconnected, 1, 10 * scale), "no DISCONNECTED");
    CHECK(sync_wait_count(&st.s, &st.reconnecting, 3, 20 * scale),
          "fewer than 3 attempts while the broker was down");
    CHECK(broker_control("start"), "start");
    CHECK(sync_wait_count(&st.s, &st.connected, 2, 20 * scale), "no CONNECTED after the restart");
    CHECK(publish_ok(mqtt_publish(c, "failover/b", "2", 1, MQTT5C_QOS1, false, NULL)), "publish after");
    TEST_LOG("reconnected after %ld attempts", sync_get(&st.s, &st.reconnecting));
    CHECK_RC(mqtt_disconnect(c, 0, NULL), MQTT5C_OK);

cleanup:
    mqtt_client_free(c);
    mqtt_options_free(opts);
    sync_destroy(&st.s);
    return test_failed ? 1 : 0;
}

/*
 * A helper of tests/gateway.rs, not a test of its own: a subscriber with
 * manual acknowledgement, to be killed before it acknowledges.
 *
 * Usage: manual_sub URL ACK
 *
 * Connects as client "manual-sub" (Clean Start 0, Session Expiry 600,
 * manual acknowledgement on), subscribes to "manual/kill" at QoS 2 and
 * prints "ready". Each message is printed on a line of its own as
 * "PAYLOAD DUP" (DUP 0 or 1), written at once (the test kills this
 * process); with ACK=1 it is then acknowledged (mqtt_ack, inside the
 * callback), with ACK=0 never. Once stdin closes it disconnects, frees the
 * client and exits 0.
 */
#include "test_common.h"

#include <unistd.h>

static bool ack_each;
static mqtt_client *client;
static int ack_failed;

static void put_line(const char *s, size_t n) {
    while (n > 0) {
        ssize_t w = write(STDOUT_FILENO, s, n);
        if (w <= 0)
            exit(3);
        s += w;
        n -= (size_t)w;
    }
}

static void on_message(void *ud, const mqtt_message *m) {
    (void)ud;
    size_t len = 0;
    const char *p = mqtt_message_payload(m, &len);
    char line[96];
    int n = snprintf(line, sizeof line, "%.*s %d\n", (int)(len < 64 ? len : 64), p,
                     mqtt_message_dup(m) ? 1 : 0);
    /* Acknowledged before the line is printed: the test closes stdin (and
     * so makes us disconnect) once it has read every line, and an ack made
     * after the DISCONNECT would be kept for a resend to this process. */
    if (ack_each && mqtt_ack(client, mqtt_message_ack_id(m), 0) != MQTT5C_OK)
        ack_failed = 1;
    put_line(line, (size_t)n);
}

int main(int argc, char **argv) {
    mqtt_options *o = NULL;
    char buf[64];
    int rc = 1;
    if (argc < 3) {
        fprintf(stderr, "usage: %s URL ACK\n", argv[0]);
        return 2;
    }
    ack_each = strcmp(argv[2], "1") == 0;
    o = mqtt_options_new();
    if (!o || mqtt_options_set_client_id(o, "manual-sub") != MQTT5C_OK ||
        mqtt_options_set_clean_start(o, false) != MQTT5C_OK ||
        mqtt_options_set_session_expiry(o, 600) != MQTT5C_OK ||
        mqtt_options_set_manual_ack(o, true) != MQTT5C_OK) {
        fprintf(stderr, "options: %s\n", test_last_error());
        goto cleanup;
    }
    client = mqtt_client_new(o);
    if (!client || mqtt_set_message_callback(client, on_message, NULL) != MQTT5C_OK ||
        mqtt_connect(client, argv[1]) != MQTT5C_OK ||
        mqtt_subscribe(client, "manual/kill", MQTT5C_QOS2, NULL) != MQTT5C_QOS2) {
        fprintf(stderr, "setup: %s\n", test_last_error());
        goto cleanup;
    }
    put_line("ready\n", 6);
    while (read(STDIN_FILENO, buf, sizeof buf) > 0) {
    }
    if (mqtt_disconnect(client, 0, NULL) != MQTT5C_OK) {
        fprintf(stderr, "disconnect: %s\n", test_last_error());
        goto cleanup;
    }
    rc = ack_failed || test_failed;
cleanup:
    mqtt_client_free(client);
    mqtt_options_free(o);
    return rc;
}

/*
 * request_response: sends MQTT v5 requests and prints the responses.
 *
 *   request_response [-V 311|5|auto] [-S suffix] [url] [topic] [payload] [count]
 *
 * On MQTT 3.1.1 (-V 311, or auto with a 3.1.1 broker) requests need the
 * reply suffix convention: -S (default "/reply"), the same on rpc_server.
 *
 * Connects to `url` (default mqtt://127.0.0.1:1883), asks for Response
 * Information, and makes `count` (default 1) requests with `payload`
 * (default "hello") to `topic` (default "rpc/echo") with mqtt_request: the
 * library subscribes to a response topic once, sends each request with a
 * Response Topic and a fresh Correlation Data, and returns the matching
 * response. Run examples-c/rpc_server.c to answer them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "mqtt5c.h"

int main(int argc, char **argv) {
    int protocol = MQTT_PROTOCOL_V5, opt;
    const char *suffix = "/reply";
    while ((opt = getopt(argc, argv, "V:S:")) != -1) {
        if (opt == 'V' && parse_protocol(optarg, &protocol))
            continue;
        if (opt == 'S') {
            suffix = optarg;
            continue;
        }
        fprintf(stderr, "usage: request_response [-V 311|5|auto] [-S suffix] [url] [topic] [payload] [count]\n");
        return 2;
    }
    argc -= optind - 1;
    argv += optind - 1;
    const char *url = argc > 1 ? argv[1] : "mqtt://127.0.0.1:1883";
    const char *topic = argc > 2 ? argv[2] : "rpc/echo";
    const char *payload = argc > 3 ? argv[3] : "hello";
    long count = argc > 4 ? atol(argv[4]) : 1;
    int status = 1;

    mqtt_options *opts = mqtt_options_new();
    mqtt_options_set_protocol_version(opts, protocol);
    mqtt_options_set_reply_suffix(opts, suffix); /* used on 3.1.1 only */
    if (protocol == MQTT_PROTOCOL_V5) {          /* 3.1.1 has no properties */
        mqtt_properties *cp = mqtt_properties_new();
        mqtt_properties_set_int(cp, MQTT5C_PROP_REQUEST_RESPONSE_INFORMATION, 1);
        mqtt_options_set_connect_properties(opts, cp);
        mqtt_properties_free(cp);
    }
    mqtt_client *client = mqtt_client_new(opts);
    mqtt_options_free(opts);
    if (!client)
        return 1;
    int rc = mqtt_connect(client, url);
    if (!MQTT5C_SUCCEEDED(rc)) {
        fprintf(stderr, "request_response: connect: %s: %s\n", mqtt_strerror(rc), mqtt_last_error());
        goto out;
    }
    for (long i = 0; i < count; i++) {
        mqtt_message *response = NULL;
        rc = mqtt_request(client, topic, payload, strlen(payload), MQTT5C_QOS1, NULL, 5000, &response);
        if (!MQTT5C_SUCCEEDED(rc)) {
            fprintf(stderr, "request_response: request: %s: %s\n", mqtt_strerror(rc), mqtt_last_error());
            goto out;
        }
        size_t len = 0;
        const char *p = mqtt_message_payload(response, &len);
        printf("%s %.*s\n", mqtt_message_topic(response), (int)len, p);
        mqtt_message_free(response); /* owned by us */
    }
    status = 0;
    mqtt_disconnect(client, 0, NULL);
out:
    mqtt_client_free(client);
    return status;
}

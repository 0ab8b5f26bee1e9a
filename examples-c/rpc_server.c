/*
 * rpc_server: answers MQTT v5 requests (see request_response.c).
 *
 *   rpc_server [-V 311|5|auto] [-S suffix] [url] [topic] [count]
 *
 * On MQTT 3.1.1 a request's Response Topic is its topic plus the reply
 * suffix (-S, default "/reply"; mqtt_options_set_reply_suffix): the
 * answering code below is the same for both versions.
 *
 * Subscribes to `topic` (default "rpc/echo") on `url` (default
 * mqtt://127.0.0.1:1883) and answers each request by publishing
 * "re:<payload>" to the request's Response Topic with its Correlation
 * Data. Requests without a Response Topic are ignored. Exits after `count`
 * answers (default: never) or when the connection ends.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "mqtt5c.h"

static mqtt_client *client;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static long answered, limit;
static bool ended;

/* Runs on a library thread; a blocking publish is fine in a callback. */
static void on_request(void *ud, const mqtt_message *m) {
    (void)ud;
    const mqtt_properties *p = mqtt_message_properties(m);
    const char *response_topic = mqtt_properties_get_string(p, MQTT5C_PROP_RESPONSE_TOPIC);
    size_t cd_len = 0, len = 0;
    const void *cd = mqtt_properties_get_binary(p, MQTT5C_PROP_CORRELATION_DATA, &cd_len);
    const char *payload = mqtt_message_payload(m, &len);
    if (!response_topic)
        return;
    size_t n = len + 3;
    char *answer = malloc(n);
    if (!answer)
        return;
    memcpy(answer, "re:", 3);
    memcpy(answer + 3, payload, len);
    mqtt_properties *rp = mqtt_properties_new();
    if (cd)
        mqtt_properties_set_binary(rp, MQTT5C_PROP_CORRELATION_DATA, cd, cd_len);
    int rc = mqtt_publish(client, response_topic, answer, n, mqtt_message_qos(m), false, rp);
    if (!MQTT5C_SUCCEEDED(rc))
        fprintf(stderr, "rpc_server: answer failed: %s: %s\n", mqtt_strerror(rc), mqtt_last_error());
    mqtt_properties_free(rp);
    free(answer);
    pthread_mutex_lock(&mu);
    answered++;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static void on_connection(void *ud, int event, int reason) {
    (void)ud;
    if (event != MQTT5C_EVENT_DISCONNECTED)
        return;
    fprintf(stderr, "rpc_server: disconnected (%s)\n", mqtt_strerror(reason));
    pthread_mutex_lock(&mu);
    ended = true;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

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
        fprintf(stderr, "usage: rpc_server [-V 311|5|auto] [-S suffix] [url] [topic] [count]\n");
        return 2;
    }
    argc -= optind - 1;
    argv += optind - 1;
    const char *url = argc > 1 ? argv[1] : "mqtt://127.0.0.1:1883";
    const char *topic = argc > 2 ? argv[2] : "rpc/echo";
    limit = argc > 3 ? atol(argv[3]) : 0;
    int status = 1;

    mqtt_options *opts = mqtt_options_new();
    mqtt_options_set_protocol_version(opts, protocol);
    mqtt_options_set_reply_suffix(opts, suffix); /* used on 3.1.1 only */
    client = mqtt_client_new(opts);
    mqtt_options_free(opts);
    if (!client)
        return 1;
    mqtt_set_message_callback(client, on_request, NULL);
    mqtt_set_connection_callback(client, on_connection, NULL);
    int rc = mqtt_connect(client, url);
    if (!MQTT5C_SUCCEEDED(rc)) {
        fprintf(stderr, "rpc_server: connect: %s: %s\n", mqtt_strerror(rc), mqtt_last_error());
        goto out;
    }
    rc = mqtt_subscribe(client, topic, MQTT5C_QOS1, NULL);
    if (!MQTT5C_SUCCEEDED(rc)) {
        fprintf(stderr, "rpc_server: subscribe: %s: %s\n", mqtt_strerror(rc), mqtt_last_error());
        goto out;
    }
    fprintf(stderr, "rpc_server: serving %s\n", topic);
    pthread_mutex_lock(&mu);
    while (!ended && (limit == 0 || answered < limit))
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    printf("answered %ld requests\n", answered);
    status = ended ? 1 : 0;
    mqtt_disconnect(client, 0, NULL);
out:
    mqtt_client_free(client);
    return status;
}

/*
 * pub: publish one message, like mosquitto_pub.
 *
 *   pub [-h host] [-p port | -L url] -t topic (-m message | -n) [-q qos] [-r]
 *       [-i client_id] [-k keepalive] [-u user [-P password]] [-V 311|5|auto]
 *       [--cafile ca.pem] [--cert cert.pem --key key.pem] [--insecure]
 *
 * Exit status: 0 published (for QoS 1/2: acknowledged with a success
 * reason), 1 error, 2 usage.
 */
#define _POSIX_C_SOURCE 200809L

#include "cli.h"

static void usage(FILE *out, const char *prog) {
    fprintf(out,
            "usage: %s [-h host] [-p port | -L url] -t topic (-m message | -n)\n"
            "          [-q qos] [-r] [-i client_id] [-k keepalive] [-u user [-P password]]\n"
            "          [-V 311|5|auto]\n"
            "          [--cafile ca.pem] [--cert cert.pem --key key.pem] [--insecure]\n"
            "\n"
            "Publishes one MQTT v5 message (%s).\n"
            "  -t topic      topic to publish to\n"
            "  -m message    message payload\n"
            "  -n            send an empty (zero-length) message\n"
            "  -q qos        0, 1 or 2 (default 0)\n"
            "  -r            retain the message\n" CLI_USAGE,
            prog, mqtt_version());
}

int main(int argc, char **argv) {
    struct cli cli;
    const char *topic = NULL, *message = NULL;
    long qos = 0;
    bool retain = false, null_msg = false;
    mqtt_client *client = NULL;
    int rc, status = 1, opt;

    cli_init(&cli, argv[0]);
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "t:m:nq:r" CLI_SHORT_OPTS, cli_long_opts, NULL)) != -1) {
        int taken = cli_option(&cli, opt, optarg);
        if (taken < 0)
            return 2;
        if (taken)
            continue;
        switch (opt) {
        case 't': topic = optarg; break;
        case 'm': message = optarg; break;
        case 'n': null_msg = true; break;
        case 'r': retain = true; break;
        case 'q':
            if (!parse_long(optarg, 0, 2, &qos)) {
                fprintf(stderr, "%s: invalid QoS '%s' (0, 1 or 2)\n", cli.prog, optarg);
                return 2;
            }
            break;
        case '?':
            if (cli_help_asked(&cli, argv)) {
                usage(stdout, cli.prog);
                return 0;
            }
            usage(stderr, cli.prog);
            return 2;
        default:
            usage(stderr, cli.prog);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s'\n", cli.prog, argv[optind]);
        usage(stderr, cli.prog);
        return 2;
    }
    if (!topic) {
        fprintf(stderr, "%s: a topic is required (-t)\n", cli.prog);
        usage(stderr, cli.prog);
        return 2;
    }
    if (!message && !null_msg) {
        fprintf(stderr, "%s: a message is required (-m message, or -n for an empty one)\n", cli.prog);
        usage(stderr, cli.prog);
        return 2;
    }
    if (message && null_msg) {
        fprintf(stderr, "%s: -m and -n exclude each other\n", cli.prog);
        return 2;
    }
    if (!cli_finish(&cli))
        return 2;

    client = cli_client(&cli);
    if (!client || !cli_connect(&cli, client))
        goto cleanup;
    rc = mqtt_publish(client, topic, message, message ? strlen(message) : 0, (int)qos, retain, NULL);
    if (!MQTT5C_SUCCEEDED(rc)) {
        fprintf(stderr, "%s: publish failed: %s (%d): %s\n", cli.prog, mqtt_strerror(rc), rc,
                rc < 0 ? mqtt_last_error() : "refused by the broker");
        goto cleanup;
    }
    if (rc == 0x10)
        fprintf(stderr, "%s: note: no matching subscribers\n", cli.prog);
    status = 0;
    rc = mqtt_disconnect(client, 0, NULL);
    if (!MQTT5C_SUCCEEDED(rc))
        fprintf(stderr, "%s: disconnect: %s (%d)\n", cli.prog, mqtt_strerror(rc), rc);

cleanup:
    mqtt_client_free(client);
    return status;
}

/*
 * pub: publish one message, like mosquitto_pub.
 *
 *   pub [-h host] [-p port | -L url] -t topic (-m message | -n) [-q qos] [-r]
 *       [-i client_id] [-k keepalive] [-u user [-P password]]
 *       [--cafile ca.pem] [--cert cert.pem --key key.pem] [--insecure]
 *
 * Exit status: 0 published (for QoS 1/2: acknowledged with a success
 * reason), 1 error, 2 usage.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mqtt5c.h"

static void usage(FILE *out, const char *prog) {
    fprintf(out,
            "usage: %s [-h host] [-p port | -L url] -t topic (-m message | -n)\n"
            "          [-q qos] [-r] [-i client_id] [-k keepalive] [-u user [-P password]]\n"
            "          [--cafile ca.pem] [--cert cert.pem --key key.pem] [--insecure]\n"
            "\n"
            "Publishes one MQTT v5 message (%s).\n"
            "  -h host       broker host (default localhost)\n"
            "  -p port       broker port (default 1883)\n"
            "  -L url        broker URL (instead of -h/-p): mqtt://host:port,\n"
            "                mqtts://host:8883, ws://host:80/mqtt, wss://host:443/mqtt,\n"
            "                unix:///path/to/socket\n"
            "  -t topic      topic to publish to\n"
            "  -m message    message payload\n"
            "  -n            send an empty (zero-length) message\n"
            "  -q qos        0, 1 or 2 (default 0)\n"
            "  -r            retain the message\n"
            "  -i client_id  client id (default: assigned by the broker)\n"
            "  -k keepalive  keep alive in seconds (default 60)\n"
            "  -u user       user name; -P password\n"
            "  --cafile f    trust the CA certificates in PEM file f (TLS; default:\n"
            "                the system trust store)\n"
            "  --cert f --key k  client certificate and key (PEM) for mutual TLS\n"
            "  --insecure    do not verify the server certificate (test rigs only)\n"
            "  -?            this help\n",
            prog, mqtt_version());
}

/* Parses a decimal in [min, max]; false on junk or range error. */
static bool parse_long(const char *s, long min, long max, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* mqtt://host:port; brackets an IPv6 literal. */
static int make_url(char *buf, size_t size, const char *host, long port) {
    const char *fmt = strchr(host, ':') && host[0] != '[' ? "mqtt://[%s]:%ld" : "mqtt://%s:%ld";
    int n = snprintf(buf, size, fmt, host, port);
    return n > 0 && (size_t)n < size ? 0 : -1;
}

int main(int argc, char **argv) {
    const char *prog = argv[0];
    const char *host = "localhost", *url_opt = NULL, *topic = NULL, *message = NULL;
    const char *client_id = NULL, *user = NULL, *password = NULL;
    long port = 1883, qos = 0, keepalive = 60;
    bool retain = false, null_msg = false;
    char url[512];
    const char *cafile = NULL, *cert = NULL, *key = NULL;
    bool insecure = false;
    mqtt_options *opts = NULL;
    mqtt_client *client = NULL;
    int rc, status = 1, opt;

    static const struct option long_opts[] = {
        {"cafile", required_argument, NULL, 1},
        {"cert", required_argument, NULL, 2},
        {"key", required_argument, NULL, 3},
        {"insecure", no_argument, NULL, 4},
        {NULL, 0, NULL, 0},
    };

    opterr = 0;
    while ((opt = getopt_long(argc, argv, "h:p:L:t:m:nq:ri:k:u:P:?", long_opts, NULL)) != -1) {
        switch (opt) {
        case 1: cafile = optarg; break;
        case 2: cert = optarg; break;
        case 3: key = optarg; break;
        case 4: insecure = true; break;
        case 'h': host = optarg; break;
        case 'L': url_opt = optarg; break;
        case 't': topic = optarg; break;
        case 'm': message = optarg; break;
        case 'n': null_msg = true; break;
        case 'r': retain = true; break;
        case 'i': client_id = optarg; break;
        case 'u': user = optarg; break;
        case 'P': password = optarg; break;
        case 'p':
            if (!parse_long(optarg, 1, 65535, &port)) {
                fprintf(stderr, "%s: invalid port '%s' (1-65535)\n", prog, optarg);
                return 2;
            }
            break;
        case 'q':
            if (!parse_long(optarg, 0, 2, &qos)) {
                fprintf(stderr, "%s: invalid QoS '%s' (0, 1 or 2)\n", prog, optarg);
                return 2;
            }
            break;
        case 'k':
            if (!parse_long(optarg, 0, 65535, &keepalive)) {
                fprintf(stderr, "%s: invalid keep alive '%s' (0-65535 seconds)\n", prog, optarg);
                return 2;
            }
            break;
        case '?':
            if (optopt == '?' || (optopt == 0 && strcmp(argv[optind - 1], "-?") == 0)) {
                usage(stdout, prog);
                return 0;
            }
            if (optopt > 4)
                fprintf(stderr, "%s: unknown option or missing argument: -%c\n", prog, optopt);
            else
                fprintf(stderr, "%s: unknown option or missing argument: %s\n", prog,
                        argv[optind - 1]);
            usage(stderr, prog);
            return 2;
        default:
            usage(stderr, prog);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s'\n", prog, argv[optind]);
        usage(stderr, prog);
        return 2;
    }
    if (!topic) {
        fprintf(stderr, "%s: a topic is required (-t)\n", prog);
        usage(stderr, prog);
        return 2;
    }
    if (!message && !null_msg) {
        fprintf(stderr, "%s: a message is required (-m message, or -n for an empty one)\n", prog);
        usage(stderr, prog);
        return 2;
    }
    if (message && null_msg) {
        fprintf(stderr, "%s: -m and -n exclude each other\n", prog);
        return 2;
    }
    if (password && !user) {
        fprintf(stderr, "%s: -P needs -u\n", prog);
        return 2;
    }
    if (!cert != !key) {
        fprintf(stderr, "%s: --cert and --key go together\n", prog);
        return 2;
    }
    if (url_opt) {
        if (snprintf(url, sizeof url, "%s", url_opt) >= (int)sizeof url) {
            fprintf(stderr, "%s: URL too long\n", prog);
            return 2;
        }
    } else if (make_url(url, sizeof url, host, port) != 0) {
        fprintf(stderr, "%s: host name too long\n", prog);
        return 2;
    }

    opts = mqtt_options_new();
    if (!opts) {
        fprintf(stderr, "%s: %s\n", prog, mqtt_last_error());
        goto cleanup;
    }
    if ((rc = mqtt_options_set_client_id(opts, client_id)) != MQTT_OK ||
        (rc = mqtt_options_set_keep_alive(opts, (uint16_t)keepalive)) != MQTT_OK ||
        (user && (rc = mqtt_options_set_credentials(opts, user, password, password ? strlen(password) : 0)) !=
                     MQTT_OK) ||
        (cafile && (rc = mqtt_options_set_tls_ca_file(opts, cafile)) != MQTT_OK) ||
        (cert && (rc = mqtt_options_set_tls_client_cert(opts, cert, key)) != MQTT_OK) ||
        (insecure && (rc = mqtt_options_set_tls_insecure_skip_verify(opts, true)) != MQTT_OK)) {
        fprintf(stderr, "%s: bad option: %s (%s)\n", prog, mqtt_strerror(rc), mqtt_last_error());
        goto cleanup;
    }
    client = mqtt_client_new(opts);
    if (!client) {
        fprintf(stderr, "%s: cannot create client: %s\n", prog, mqtt_last_error());
        goto cleanup;
    }
    rc = mqtt_connect(client, url);
    if (rc != MQTT_OK) {
        fprintf(stderr, "%s: connect to %s failed: %s (%d): %s\n", prog, url, mqtt_strerror(rc), rc,
                mqtt_last_error());
        goto cleanup;
    }
    rc = mqtt_publish(client, topic, message, message ? strlen(message) : 0, (int)qos, retain, NULL);
    if (rc < 0 || rc >= 0x80) {
        fprintf(stderr, "%s: publish failed: %s (%d): %s\n", prog, mqtt_strerror(rc), rc,
                rc < 0 ? mqtt_last_error() : "refused by the broker");
        goto cleanup;
    }
    if (rc == 0x10)
        fprintf(stderr, "%s: note: no matching subscribers\n", prog);
    status = 0;
    rc = mqtt_disconnect(client, 0, NULL);
    if (rc != MQTT_OK)
        fprintf(stderr, "%s: disconnect: %s (%d)\n", prog, mqtt_strerror(rc), rc);

cleanup:
    mqtt_client_free(client);
    mqtt_options_free(opts);
    return status;
}

/*
 * cli.h: what the pub and sub examples share: the options that say where
 * and how to connect (broker address, client id, keep alive, credentials,
 * TLS), and the client made from them.
 */
#ifndef MQTT5C_EXAMPLES_CLI_H
#define MQTT5C_EXAMPLES_CLI_H

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mqtt5c.h"

/* The short options of the connection, to append to a tool's own. */
#define CLI_SHORT_OPTS "h:p:L:i:k:u:P:V:?"

/* Help text of the connection options, for a tool's usage(). */
#define CLI_USAGE                                                                      \
    "  -h host       broker host (default localhost)\n"                                \
    "  -p port       broker port (default 1883)\n"                                     \
    "  -L url        broker URL (instead of -h/-p): mqtt://host:port,\n"               \
    "                mqtts://host:8883, ws://host:80/mqtt, wss://host:443/mqtt,\n"     \
    "                unix:///path/to/socket\n"                                         \
    "  -i client_id  client id (default: assigned by the broker)\n"                    \
    "  -k keepalive  keep alive in seconds (default 60)\n"                             \
    "  -u user       user name; -P password\n"                                         \
    "  -V version    MQTT version: 5 (default), 311, or auto (5, else 3.1.1)\n"       \
    "  --cafile f    trust the CA certificates in PEM file f (TLS; default:\n"         \
    "                the system trust store)\n"                                        \
    "  --cert f --key k  client certificate and key (PEM) for mutual TLS\n"            \
    "  --insecure    do not verify the server certificate (test rigs only)\n"          \
    "  -?            this help\n"

static const struct option cli_long_opts[] = {
    {"cafile", required_argument, NULL, 1},
    {"cert", required_argument, NULL, 2},
    {"key", required_argument, NULL, 3},
    {"insecure", no_argument, NULL, 4},
    {NULL, 0, NULL, 0},
};

struct cli {
    const char *prog;
    const char *host, *url_opt, *client_id, *user, *password;
    const char *cafile, *cert, *key;
    long port, keepalive;
    int protocol;
    bool insecure;
    char url[512];
};

static inline void cli_init(struct cli *c, const char *prog) {
    memset(c, 0, sizeof *c);
    c->prog = prog;
    c->host = "localhost";
    c->port = 1883;
    c->keepalive = 60;
    c->protocol = MQTT_PROTOCOL_V5;
}

/* -V 311|5|auto as an MQTT_PROTOCOL_* value; false on anything else. */
static inline bool parse_protocol(const char *s, int *out) {
    if (strcmp(s, "311") == 0 || strcmp(s, "3.1.1") == 0)
        *out = MQTT_PROTOCOL_V311;
    else if (strcmp(s, "5") == 0)
        *out = MQTT_PROTOCOL_V5;
    else if (strcmp(s, "auto") == 0)
        *out = MQTT_PROTOCOL_AUTO;
    else
        return false;
    return true;
}

/* Parses a decimal in [min, max]; false on junk or range error. */
static inline bool parse_long(const char *s, long min, long max, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* Takes a connection option from getopt_long: 1 taken, 0 not one of ours,
 * -1 a bad value (reported). */
static inline int cli_option(struct cli *c, int opt, const char *arg) {
    switch (opt) {
    case 1: c->cafile = arg; return 1;
    case 2: c->cert = arg; return 1;
    case 3: c->key = arg; return 1;
    case 4: c->insecure = true; return 1;
    case 'h': c->host = arg; return 1;
    case 'L': c->url_opt = arg; return 1;
    case 'i': c->client_id = arg; return 1;
    case 'u': c->user = arg; return 1;
    case 'P': c->password = arg; return 1;
    case 'p':
        if (parse_long(arg, 1, 65535, &c->port))
            return 1;
        fprintf(stderr, "%s: invalid port '%s' (1-65535)\n", c->prog, arg);
        return -1;
    case 'V':
        if (parse_protocol(arg, &c->protocol))
            return 1;
        fprintf(stderr, "%s: invalid MQTT version '%s' (311, 5 or auto)\n", c->prog, arg);
        return -1;
    case 'k':
        if (parse_long(arg, 0, 65535, &c->keepalive))
            return 1;
        fprintf(stderr, "%s: invalid keep alive '%s' (0-65535 seconds)\n", c->prog, arg);
        return -1;
    default:
        return 0;
    }
}

/* For getopt's '?': true when the user asked for help (-?), otherwise
 * reports the unknown option or missing argument. */
static inline bool cli_help_asked(const struct cli *c, char **argv) {
    if (optopt == '?' || (optopt == 0 && strcmp(argv[optind - 1], "-?") == 0))
        return true;
    if (optopt > 4)
        fprintf(stderr, "%s: unknown option or missing argument: -%c\n", c->prog, optopt);
    else
        fprintf(stderr, "%s: unknown option or missing argument: %s\n", c->prog, argv[optind - 1]);
    return false;
}

/* Checks how the connection options combine and builds the URL; false
 * (reported) when they do not fit. */
static inline bool cli_finish(struct cli *c) {
    if (c->password && !c->user) {
        fprintf(stderr, "%s: -P needs -u\n", c->prog);
        return false;
    }
    if (!c->cert != !c->key) {
        fprintf(stderr, "%s: --cert and --key go together\n", c->prog);
        return false;
    }
    if (c->url_opt) {
        if (snprintf(c->url, sizeof c->url, "%s", c->url_opt) >= (int)sizeof c->url) {
            fprintf(stderr, "%s: URL too long\n", c->prog);
            return false;
        }
        return true;
    }
    /* mqtt://host:port, with an IPv6 literal in brackets. */
    const char *fmt = strchr(c->host, ':') && c->host[0] != '[' ? "mqtt://[%s]:%ld" : "mqtt://%s:%ld";
    int n = snprintf(c->url, sizeof c->url, fmt, c->host, c->port);
    if (n <= 0 || (size_t)n >= sizeof c->url) {
        fprintf(stderr, "%s: host name too long\n", c->prog);
        return false;
    }
    return true;
}

/* Makes a client from the options; NULL (reported) on failure. */
static inline mqtt_client *cli_client(const struct cli *c) {
    mqtt_options *opts = mqtt_options_new();
    mqtt_client *client = NULL;
    int rc = MQTT5C_OK;
    if (!opts) {
        fprintf(stderr, "%s: %s\n", c->prog, mqtt_last_error());
        return NULL;
    }
    if (!MQTT5C_SUCCEEDED(rc = mqtt_options_set_client_id(opts, c->client_id)) ||
        !MQTT5C_SUCCEEDED(rc = mqtt_options_set_keep_alive(opts, (uint16_t)c->keepalive)) ||
        !MQTT5C_SUCCEEDED(rc = mqtt_options_set_protocol_version(opts, c->protocol)) ||
        (c->user && !MQTT5C_SUCCEEDED(rc = mqtt_options_set_credentials(
                                          opts, c->user, c->password,
                                          c->password ? strlen(c->password) : 0))) ||
        (c->cafile && !MQTT5C_SUCCEEDED(rc = mqtt_options_set_tls_ca_file(opts, c->cafile))) ||
        (c->cert && !MQTT5C_SUCCEEDED(rc = mqtt_options_set_tls_client_cert(opts, c->cert, c->key))) ||
        (c->insecure && !MQTT5C_SUCCEEDED(rc = mqtt_options_set_tls_insecure_skip_verify(opts, true)))) {
        fprintf(stderr, "%s: bad option: %s (%s)\n", c->prog, mqtt_strerror(rc), mqtt_last_error());
    } else if (!(client = mqtt_client_new(opts))) {
        fprintf(stderr, "%s: cannot create client: %s\n", c->prog, mqtt_last_error());
    }
    mqtt_options_free(opts);
    return client;
}

/* Connects to the URL; false (reported) on failure. */
static inline bool cli_connect(const struct cli *c, mqtt_client *client) {
    int rc = mqtt_connect(client, c->url);
    if (MQTT5C_SUCCEEDED(rc))
        return true;
    fprintf(stderr, "%s: connect to %s failed: %s (%d): %s\n", c->prog, c->url, mqtt_strerror(rc), rc,
            mqtt_last_error());
    return false;
}

#endif /* MQTT5C_EXAMPLES_CLI_H */

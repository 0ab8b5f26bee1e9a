/*
 * sub: print received messages, like mosquitto_sub -v.
 *
 *   sub [-h host] [-p port | -L url] -t filter [-t filter ...] [-q qos]
 *       [-C count] [-i client_id] [-k keepalive] [-u user [-P password]]
 *       [--cafile ca.pem] [--cert cert.pem --key key.pem] [--insecure]
 *
 * Prints one "topic payload" line per message on stdout (flushed), and
 * "subscribed" on stderr once every subscription is acknowledged. Runs until
 * -C count messages arrived, SIGINT/SIGTERM, or the connection is lost.
 * Exit status: 0 done, 1 error or connection lost, 2 usage.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mqtt5c.h"

#define MAX_FILTERS 32

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long count;    /* stop after this many (0: never) */
    long received;
    bool stop;     /* signal */
    bool lost;     /* connection ended */
    int lost_reason;
} st = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, false, false, 0};

static void on_message(void *ud, const mqtt_message *m) {
    (void)ud;
    size_t len = 0;
    const void *payload = mqtt_message_payload(m, &len);
    const char *topic = mqtt_message_topic(m);
    pthread_mutex_lock(&st.mu);
    if (st.count == 0 || st.received < st.count) {
        fputs(topic ? topic : "", stdout);
        fputc(' ', stdout);
        if (payload && len)
            fwrite(payload, 1, len, stdout);
        fputc('\n', stdout);
        fflush(stdout);
        st.received++;
        pthread_cond_broadcast(&st.cv);
    }
    pthread_mutex_unlock(&st.mu);
}

static void on_connection(void *ud, int event, int reason) {
    (void)ud;
    if (event != MQTT_EVENT_DISCONNECTED)
        return;
    pthread_mutex_lock(&st.mu);
    st.lost = true;
    st.lost_reason = reason;
    pthread_cond_broadcast(&st.cv);
    pthread_mutex_unlock(&st.mu);
}

/* Waits for SIGINT/SIGTERM/SIGHUP (blocked in every thread) and asks main to stop. */
static void *signal_thread(void *arg) {
    sigset_t *set = arg;
    int sig;
    if (sigwait(set, &sig) == 0) {
        pthread_mutex_lock(&st.mu);
        st.stop = true;
        pthread_cond_broadcast(&st.cv);
        pthread_mutex_unlock(&st.mu);
    }
    return NULL;
}

static void usage(FILE *out, const char *prog) {
    fprintf(out,
            "usage: %s [-h host] [-p port | -L url] -t filter [-t filter ...] [-q qos]\n"
            "          [-C count] [-i client_id] [-k keepalive] [-u user [-P password]]\n"
            "          [--cafile ca.pem] [--cert cert.pem --key key.pem] [--insecure]\n"
            "\n"
            "Subscribes (%s) and prints \"topic payload\" per message.\n"
            "  -h host       broker host (default localhost)\n"
            "  -p port       broker port (default 1883)\n"
            "  -L url        broker URL (instead of -h/-p): mqtt://host:port,\n"
            "                mqtts://host:8883, ws://host:80/mqtt, wss://host:443/mqtt,\n"
            "                unix:///path/to/socket\n"
            "  -t filter     topic filter to subscribe to (repeatable, up to %d)\n"
            "  -q qos        maximum QoS 0, 1 or 2 (default 0)\n"
            "  -C count      exit after count messages\n"
            "  -i client_id  client id (default: assigned by the broker)\n"
            "  -k keepalive  keep alive in seconds (default 60)\n"
            "  -u user       user name; -P password\n"
            "  --cafile f    trust the CA certificates in PEM file f (TLS; default:\n"
            "                the system trust store)\n"
            "  --cert f --key k  client certificate and key (PEM) for mutual TLS\n"
            "  --insecure    do not verify the server certificate (test rigs only)\n"
            "  -?            this help\n",
            prog, mqtt_version(), MAX_FILTERS);
}

static bool parse_long(const char *s, long min, long max, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static int make_url(char *buf, size_t size, const char *host, long port) {
    const char *fmt = strchr(host, ':') && host[0] != '[' ? "mqtt://[%s]:%ld" : "mqtt://%s:%ld";
    int n = snprintf(buf, size, fmt, host, port);
    return n > 0 && (size_t)n < size ? 0 : -1;
}

int main(int argc, char **argv) {
    const char *prog = argv[0];
    const char *host = "localhost", *url_opt = NULL, *client_id = NULL, *user = NULL, *password = NULL;
    const char *filters[MAX_FILTERS];
    int n_filters = 0;
    long port = 1883, qos = 0, keepalive = 60, count = 0;
    char url[512];
    const char *cafile = NULL, *cert = NULL, *key = NULL;
    bool insecure = false;
    mqtt_options *opts = NULL;
    mqtt_client *client = NULL;
    static sigset_t sigs;
    pthread_t sig_thread;
    int rc, status = 1, opt;

    static const struct option long_opts[] = {
        {"cafile", required_argument, NULL, 1},
        {"cert", required_argument, NULL, 2},
        {"key", required_argument, NULL, 3},
        {"insecure", no_argument, NULL, 4},
        {NULL, 0, NULL, 0},
    };

    opterr = 0;
    while ((opt = getopt_long(argc, argv, "h:p:L:t:q:C:i:k:u:P:?", long_opts, NULL)) != -1) {
        switch (opt) {
        case 1: cafile = optarg; break;
        case 2: cert = optarg; break;
        case 3: key = optarg; break;
        case 4: insecure = true; break;
        case 'h': host = optarg; break;
        case 'L': url_opt = optarg; break;
        case 'i': client_id = optarg; break;
        case 'u': user = optarg; break;
        case 'P': password = optarg; break;
        case 't':
            if (n_filters == MAX_FILTERS) {
                fprintf(stderr, "%s: at most %d filters\n", prog, MAX_FILTERS);
                return 2;
            }
            filters[n_filters++] = optarg;
            break;
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
        case 'C':
            if (!parse_long(optarg, 1, 1000000000L, &count)) {
                fprintf(stderr, "%s: invalid count '%s' (a positive number)\n", prog, optarg);
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
    if (n_filters == 0) {
        fprintf(stderr, "%s: at least one topic filter is required (-t)\n", prog);
        usage(stderr, prog);
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
    st.count = count;

    /* Block the stop signals before the library starts its threads, so they
     * inherit the mask and only signal_thread receives them. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    if (pthread_sigmask(SIG_BLOCK, &sigs, NULL) != 0 ||
        pthread_create(&sig_thread, NULL, signal_thread, &sigs) != 0) {
        fprintf(stderr, "%s: cannot set up signal handling\n", prog);
        return 1;
    }
    pthread_detach(sig_thread);

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
    if (mqtt_set_message_callback(client, on_message, NULL) != MQTT_OK ||
        mqtt_set_connection_callback(client, on_connection, NULL) != MQTT_OK) {
        fprintf(stderr, "%s: cannot set callbacks: %s\n", prog, mqtt_last_error());
        goto cleanup;
    }
    rc = mqtt_connect(client, url);
    if (rc != MQTT_OK) {
        fprintf(stderr, "%s: connect to %s failed: %s (%d): %s\n", prog, url, mqtt_strerror(rc), rc,
                mqtt_last_error());
        goto cleanup;
    }
    for (int i = 0; i < n_filters; i++) {
        rc = mqtt_subscribe(client, filters[i], (int)qos, NULL);
        if (rc < 0 || rc >= 0x80) {
            fprintf(stderr, "%s: subscribe to '%s' failed: %s (%d): %s\n", prog, filters[i], mqtt_strerror(rc), rc,
                    rc < 0 ? mqtt_last_error() : "refused by the broker");
            goto cleanup;
        }
    }
    fprintf(stderr, "subscribed\n");
    fflush(stderr);

    pthread_mutex_lock(&st.mu);
    while (!st.stop && !st.lost && !(st.count > 0 && st.received >= st.count))
        pthread_cond_wait(&st.cv, &st.mu);
    bool lost = st.lost && !(st.count > 0 && st.received >= st.count) && !st.stop;
    int reason = st.lost_reason;
    pthread_mutex_unlock(&st.mu);

    if (lost) {
        fprintf(stderr, "%s: connection lost: %s (0x%02x)\n", prog, mqtt_strerror(reason), (unsigned)reason);
        goto cleanup;
    }
    status = 0;
    rc = mqtt_disconnect(client, 0, NULL);
    if (rc != MQTT_OK && rc != MQTT_ERR_NOT_CONNECTED)
        fprintf(stderr, "%s: disconnect: %s (%d)\n", prog, mqtt_strerror(rc), rc);

cleanup:
    mqtt_client_free(client);
    mqtt_options_free(opts);
    return status;
}

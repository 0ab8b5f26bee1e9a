/*
 * sub: print received messages, like mosquitto_sub -v.
 *
 *   sub [-h host] [-p port | -L url] -t filter [-t filter ...] [-q qos]
 *       [-C count] [-i client_id] [-k keepalive] [-u user [-P password]] [-V 311|5|auto]
 *       [--cafile ca.pem] [--cert cert.pem --key key.pem] [--insecure]
 *
 * Prints one "topic payload" line per message on stdout (flushed), and
 * "subscribed" on stderr once every subscription is acknowledged. Runs until
 * -C count messages arrived, SIGINT/SIGTERM, or the connection is lost.
 * Exit status: 0 done, 1 error or connection lost, 2 usage.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <signal.h>

#include "cli.h"

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
    if (event != MQTT5C_EVENT_DISCONNECTED)
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
            "          [-V 311|5|auto]\n"
            "          [--cafile ca.pem] [--cert cert.pem --key key.pem] [--insecure]\n"
            "\n"
            "Subscribes (%s) and prints \"topic payload\" per message.\n"
            "  -t filter     topic filter to subscribe to (repeatable, up to %d)\n"
            "  -q qos        maximum QoS 0, 1 or 2 (default 0)\n"
            "  -C count      exit after count messages\n" CLI_USAGE,
            prog, mqtt_version(), MAX_FILTERS);
}

int main(int argc, char **argv) {
    struct cli cli;
    const char *filters[MAX_FILTERS];
    int n_filters = 0;
    long qos = 0, count = 0;
    mqtt_client *client = NULL;
    static sigset_t sigs;
    pthread_t sig_thread;
    int rc, status = 1, opt;

    cli_init(&cli, argv[0]);
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "t:q:C:" CLI_SHORT_OPTS, cli_long_opts, NULL)) != -1) {
        int taken = cli_option(&cli, opt, optarg);
        if (taken < 0)
            return 2;
        if (taken)
            continue;
        switch (opt) {
        case 't':
            if (n_filters == MAX_FILTERS) {
                fprintf(stderr, "%s: at most %d filters\n", cli.prog, MAX_FILTERS);
                return 2;
            }
            filters[n_filters++] = optarg;
            break;
        case 'q':
            if (!parse_long(optarg, 0, 2, &qos)) {
                fprintf(stderr, "%s: invalid QoS '%s' (0, 1 or 2)\n", cli.prog, optarg);
                return 2;
            }
            break;
        case 'C':
            if (!parse_long(optarg, 1, 1000000000L, &count)) {
                fprintf(stderr, "%s: invalid count '%s' (a positive number)\n", cli.prog, optarg);
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
    if (n_filters == 0) {
        fprintf(stderr, "%s: at least one topic filter is required (-t)\n", cli.prog);
        usage(stderr, cli.prog);
        return 2;
    }
    if (!cli_finish(&cli))
        return 2;
    st.count = count;

    /* Block the stop signals before the library starts its threads, so they
     * inherit the mask and only signal_thread receives them. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    if (pthread_sigmask(SIG_BLOCK, &sigs, NULL) != 0 ||
        pthread_create(&sig_thread, NULL, signal_thread, &sigs) != 0) {
        fprintf(stderr, "%s: cannot set up signal handling\n", cli.prog);
        return 1;
    }
    pthread_detach(sig_thread);

    client = cli_client(&cli);
    if (!client)
        goto cleanup;
    if (!MQTT5C_SUCCEEDED(mqtt_set_message_callback(client, on_message, NULL)) ||
        !MQTT5C_SUCCEEDED(mqtt_set_connection_callback(client, on_connection, NULL))) {
        fprintf(stderr, "%s: cannot set callbacks: %s\n", cli.prog, mqtt_last_error());
        goto cleanup;
    }
    if (!cli_connect(&cli, client))
        goto cleanup;
    for (int i = 0; i < n_filters; i++) {
        rc = mqtt_subscribe(client, filters[i], (int)qos, NULL);
        if (!MQTT5C_SUCCEEDED(rc)) {
            fprintf(stderr, "%s: subscribe to '%s' failed: %s (%d): %s\n", cli.prog, filters[i], mqtt_strerror(rc), rc,
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
        fprintf(stderr, "%s: connection lost: %s (0x%02x)\n", cli.prog, mqtt_strerror(reason), (unsigned)reason);
        goto cleanup;
    }
    status = 0;
    rc = mqtt_disconnect(client, 0, NULL);
    if (!MQTT5C_SUCCEEDED(rc) && rc != MQTT5C_ERR_NOT_CONNECTED)
        fprintf(stderr, "%s: disconnect: %s (%d)\n", cli.prog, mqtt_strerror(rc), rc);

cleanup:
    mqtt_client_free(client);
    return status;
}

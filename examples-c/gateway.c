/*
 * gateway: forward one topic tree from one broker to another, losing
 * nothing through outages of either broker or a crash of the gateway.
 *
 *   gateway [-i name] [-V 311|5|auto] SOURCE_URL FILTER DESTINATION_URL PERSISTENCE_DIR [PREFIX]
 *
 * -V picks the MQTT version of both clients (default 5). On 3.1.1 the
 * source session is kept by Clean Session 0 alone (no expiry to set) and
 * messages are forwarded without properties (3.1.1 has none).
 *
 * Subscribes to FILTER (QoS 1) on the source broker and publishes every
 * message to the destination broker at QoS 1, on its topic with PREFIX in
 * front (default: none), with its payload, retain flag and properties
 * (Subscription Identifiers excepted).
 *
 * How nothing is lost:
 * - the source client has manual acknowledgement on: a message is
 *   acknowledged to the source broker (mqtt_ack) only in the completion of
 *   its publish to the destination, i.e. once the destination broker has
 *   it. Killed before that, the gateway's persistent source session
 *   (Clean Start 0, Session Expiry 1 day) makes the source broker send the
 *   message again when the gateway comes back;
 * - the destination client has persistence on (PERSISTENCE_DIR): a publish
 *   that returned MQTT5C_OK is on disk, and a restarted gateway resends it;
 *   while the destination is unreachable, publishes wait in the offline
 *   queue (also on disk);
 * - both clients reconnect automatically (connect retry too: the gateway
 *   may start before either broker is up).
 * The price: a message may arrive twice at the destination after a crash
 * (at least once); its Receive Maximum slots give end-to-end
 * back-pressure: at most 100 messages are between the brokers at a time.
 * A message the destination refuses (reason >= 0x80, e.g. not authorized)
 * is logged and acknowledged to the source with 0x80 (unspecified error):
 * sending it again would not help; so is one mqtt_publish_async refuses
 * for good (bad argument, too large). One that expires in the offline
 * queue is acknowledged with 0x00. A forward refused for now (offline
 * queue full, disk) is tried again every second, the message callback
 * waiting meanwhile. Nothing is left unacknowledged while the gateway
 * runs: the source resends only when its session resumes, so a message
 * left so would hold one of its Receive Maximum slots until then.
 *
 * Client ids: NAME-src and NAME-dst (-i NAME, default mqtt5c-gateway); run
 * one gateway per NAME and directory. Prints "subscribed" on stderr once
 * forwarding, and the count forwarded on exit. SIGINT/SIGTERM: stops
 * taking messages, waits (up to 10 s) for the forwards in flight to be
 * acknowledged, then disconnects both clients; exit status 0. Anything
 * not finished by then is forwarded by the next run.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mqtt5c.h"

/* A forward waiting for the destination's acknowledgement. Kept in a list
 * so that those still waiting when the gateway stops are freed. */
struct forward {
    uint64_t ack_id;
    struct forward *prev, *next;
};

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    mqtt_client *src;   /* NULL once being freed: completions stop acking */
    struct forward head; /* circular list of forwards in flight */
    long in_flight;
    long forwarded;
    bool stopping;
    const char *prefix;
} g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, {0, &g.head, &g.head}, 0, 0, false,
       ""};

static mqtt_client *dst;
static int protocol = MQTT_PROTOCOL_V5;

/* Whether c speaks 3.1.1 (with -V auto: once it agreed on 3.1.1). Then
 * publishes go without properties and subscriptions have a QoS only. */
static bool speaks_311(mqtt_client *c) {
    return protocol == MQTT_PROTOCOL_V311 ||
           (protocol == MQTT_PROTOCOL_AUTO && mqtt_client_protocol_version(c) == MQTT_PROTOCOL_V311);
}

static void unlink_forward(struct forward *f) {
    f->prev->next = f->next;
    f->next->prev = f->prev;
    g.in_flight--;
}

/* The destination's answer to one forward: acknowledge it to the source. */
static void on_forwarded(void *user_data, int result, const mqtt_properties *ack_props) {
    (void)ack_props;
    struct forward *f = user_data;
    pthread_mutex_lock(&g.mu);
    unlink_forward(f);
    if (MQTT5C_SUCCEEDED(result))
        g.forwarded++;
    if (g.src && (result >= 0 || result == MQTT5C_ERR_EXPIRED)) {
        /* A refusal (>= 0x80) is final: sending it again would not help.
         * An expired message (its Message Expiry Interval passed while the
         * destination was down) is done with: the source would not send it
         * again either. Left unacknowledged, it would hold one of the
         * source's Receive Maximum slots for as long as the source
         * connection lives, and enough of them stop forwarding for good. */
        int reason = result >= 0x80 ? 0x80 : 0x00;
        if (result >= 0x80)
            fprintf(stderr, "gateway: the destination refused a message: 0x%02x %s\n",
                    (unsigned)result, mqtt_last_error());
        else if (result < 0)
            fprintf(stderr, "gateway: a message expired before the destination took it\n");
        int rc = mqtt_ack(g.src, f->ack_id, reason);
        if (!MQTT5C_SUCCEEDED(rc))
            fprintf(stderr, "gateway: mqtt_ack: %s: %s\n", mqtt_strerror(rc), mqtt_last_error());
    }
    /* Other negative results (connection lost with no reconnect following:
     * only when stopping): not acknowledged; the source sends it again
     * when the gateway's session resumes. */
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.mu);
    free(f);
}

/* A publish that can never succeed, whatever the destination does. */
static bool refused(int rc) {
    return rc == MQTT5C_ERR_INVALID_ARGUMENT || rc == MQTT5C_ERR_PACKET_TOO_LARGE;
}

/* A forward failed for now (the destination's offline queue is full, its
 * disk, ...): waits a second, or until stopping. Returns whether to try
 * again. The message callback waits here, so the source's messages wait
 * too (back-pressure); giving up instead would leave the message
 * unacknowledged, holding a slot of the source's Receive Maximum and
 * never sent again while the source connection lives. */
static bool wait_to_retry(int rc) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_sec += 1;
    pthread_mutex_lock(&g.mu);
    if (!g.stopping) {
        fprintf(stderr, "gateway: publish to the destination failed: %s: %s; retrying\n",
                mqtt_strerror(rc), mqtt_last_error());
        pthread_cond_timedwait(&g.cv, &g.mu, &t);
    }
    bool again = !g.stopping;
    pthread_mutex_unlock(&g.mu);
    return again;
}

/* A message from the source: publish it to the destination. */
static void on_message(void *user_data, const mqtt_message *m) {
    (void)user_data;
    char topic[1024];
    size_t len = 0;
    const void *payload = mqtt_message_payload(m, &len);
    uint64_t ack_id = mqtt_message_ack_id(m);
    pthread_mutex_lock(&g.mu);
    bool stopping = g.stopping;
    pthread_mutex_unlock(&g.mu);
    if (stopping)
        return; /* not acknowledged: the next run forwards it */
    int n = snprintf(topic, sizeof topic, "%s%s", g.prefix, mqtt_message_topic(m));
    if (n < 0 || (size_t)n >= sizeof topic) {
        fprintf(stderr, "gateway: topic too long, refused: %s\n", mqtt_message_topic(m));
        pthread_mutex_lock(&g.mu);
        mqtt_ack(g.src, ack_id, 0x90); /* topic name invalid */
        pthread_mutex_unlock(&g.mu);
        return;
    }
    /* Subscription Identifiers are the source broker's; only a server may
     * send them. */
    mqtt_properties *props = mqtt_properties_copy(mqtt_message_properties(m));
    struct forward *f = calloc(1, sizeof *f);
    if (!props || !f) {
        fprintf(stderr, "gateway: out of memory; message left to the source's resend\n");
        mqtt_properties_free(props);
        free(f);
        return;
    }
    mqtt_properties_remove(props, MQTT5C_PROP_SUBSCRIPTION_IDENTIFIER);
    mqtt_properties_remove(props, MQTT5C_PROP_TOPIC_ALIAS);
    f->ack_id = ack_id;
    pthread_mutex_lock(&g.mu);
    f->next = &g.head;
    f->prev = g.head.prev;
    g.head.prev->next = f;
    g.head.prev = f;
    g.in_flight++;
    pthread_mutex_unlock(&g.mu);
    /* Waits for a slot of the destination's Receive Maximum: back-pressure
     * reaches the source through our unacknowledged messages. */
    int rc;
    while (!MQTT5C_SUCCEEDED(rc = mqtt_publish_async(dst, topic, payload, len, MQTT5C_QOS1,
                                                     mqtt_message_retain(m),
                                                     speaks_311(dst) ? NULL : props, on_forwarded,
                                                     f)) &&
           !refused(rc) && wait_to_retry(rc)) {
    }
    mqtt_properties_free(props);
    if (!MQTT5C_SUCCEEDED(rc)) {
        fprintf(stderr, "gateway: publish to the destination failed: %s: %s\n", mqtt_strerror(rc),
                mqtt_last_error());
        pthread_mutex_lock(&g.mu);
        unlink_forward(f);
        /* Refused for good: acknowledged as refused, as the destination's
         * own refusals are. Otherwise we are stopping: left to the
         * source's resend. (A QoS 0 message has ack id 0: nothing to hold
         * back.) */
        if (refused(rc) && g.src)
            mqtt_ack(g.src, ack_id, 0x80);
        pthread_mutex_unlock(&g.mu);
        free(f);
    }
}

static void on_connection(void *user_data, int event, int reason_code) {
    const char *which = user_data;
    if (event == MQTT5C_EVENT_CONNECTED)
        fprintf(stderr, "gateway: %s connected (session present %d)\n", which,
                which[0] == 's' ? mqtt_session_present(g.src) : mqtt_session_present(dst));
    else if (event == MQTT5C_EVENT_DISCONNECTED)
        fprintf(stderr, "gateway: %s connection lost: %s (%d); reconnecting\n", which,
                mqtt_strerror(reason_code), reason_code);
}

static void *signal_thread(void *arg) {
    sigset_t *set = arg;
    int sig;
    if (sigwait(set, &sig) == 0) {
        pthread_mutex_lock(&g.mu);
        g.stopping = true;
        pthread_cond_broadcast(&g.cv);
        pthread_mutex_unlock(&g.mu);
    }
    return NULL;
}

/* A client with the gateway's common options; NULL with a message. */
static mqtt_client *new_client(const char *id, const char *persistence_dir, bool manual_ack) {
    mqtt_options *o = mqtt_options_new();
    mqtt_client *c = NULL;
    if (o && MQTT5C_SUCCEEDED(mqtt_options_set_client_id(o, id)) &&
        MQTT5C_SUCCEEDED(mqtt_options_set_clean_start(o, false)) &&
        MQTT5C_SUCCEEDED(mqtt_options_set_protocol_version(o, protocol)) &&
        /* 3.1.1 has no expiry: Clean Session 0 keeps the session. */
        (protocol != MQTT_PROTOCOL_V5 ||
         MQTT5C_SUCCEEDED(mqtt_options_set_session_expiry(o, 86400))) &&
        MQTT5C_SUCCEEDED(mqtt_options_set_auto_reconnect(o, 250, 10000)) &&
        MQTT5C_SUCCEEDED(mqtt_options_set_connect_retry(o, true)) &&
        MQTT5C_SUCCEEDED(mqtt_options_set_manual_ack(o, manual_ack)) &&
        MQTT5C_SUCCEEDED(mqtt_options_set_persistence_dir(o, persistence_dir)))
        c = mqtt_client_new(o);
    if (!c)
        fprintf(stderr, "gateway: client %s: %s\n", id, mqtt_last_error());
    mqtt_options_free(o);
    return c;
}

static void usage(const char *prog) {
    fprintf(stderr,
            "usage: %s [-i name] [-V 311|5|auto] SOURCE_URL FILTER DESTINATION_URL "
            "PERSISTENCE_DIR [PREFIX]\n",
            prog);
}

int main(int argc, char **argv) {
    const char *name = "mqtt5c-gateway";
    char src_id[256], dst_id[256];
    static sigset_t sigs;
    pthread_t sig_thread;
    mqtt_client *src = NULL;
    int status = 1, opt, rc;

    while ((opt = getopt(argc, argv, "i:V:")) != -1) {
        if (opt == 'i') {
            name = optarg;
        } else if (opt == 'V' && strcmp(optarg, "311") == 0) {
            protocol = MQTT_PROTOCOL_V311;
        } else if (opt == 'V' && strcmp(optarg, "5") == 0) {
            protocol = MQTT_PROTOCOL_V5;
        } else if (opt == 'V' && strcmp(optarg, "auto") == 0) {
            protocol = MQTT_PROTOCOL_AUTO;
        } else {
            usage(argv[0]);
            return 2;
        }
    }
    if (argc - optind < 4 || argc - optind > 5) {
        usage(argv[0]);
        return 2;
    }
    const char *src_url = argv[optind], *filter = argv[optind + 1];
    const char *dst_url = argv[optind + 2], *dir = argv[optind + 3];
    g.prefix = argc - optind == 5 ? argv[optind + 4] : "";
    snprintf(src_id, sizeof src_id, "%s-src", name);
    snprintf(dst_id, sizeof dst_id, "%s-dst", name);

    /* Only signal_thread takes the stop signals (the library's threads
     * inherit the mask). */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    if (pthread_sigmask(SIG_BLOCK, &sigs, NULL) != 0 ||
        pthread_create(&sig_thread, NULL, signal_thread, &sigs) != 0) {
        fprintf(stderr, "gateway: cannot set up signal handling\n");
        return 1;
    }
    pthread_detach(sig_thread);

    dst = new_client(dst_id, dir, false);
    src = new_client(src_id, NULL, true);
    if (!dst || !src)
        goto cleanup;
    g.src = src;
    if (!MQTT5C_SUCCEEDED(mqtt_set_connection_callback(dst, on_connection, "destination")) ||
        !MQTT5C_SUCCEEDED(mqtt_set_connection_callback(src, on_connection, "source")) ||
        !MQTT5C_SUCCEEDED(mqtt_set_message_callback(src, on_message, NULL)))
        goto cleanup;
    /* The destination may be down: its client keeps trying (connect
     * retry), and forwards wait in its offline queue meanwhile. */
    rc = mqtt_connect(dst, dst_url);
    if (!MQTT5C_SUCCEEDED(rc))
        fprintf(stderr, "gateway: destination %s: %s (%s); retrying in the background\n", dst_url,
                mqtt_strerror(rc), mqtt_last_error());
    rc = mqtt_connect(src, src_url);
    if (!MQTT5C_SUCCEEDED(rc)) {
        fprintf(stderr, "gateway: source %s: %s: %s\n", src_url, mqtt_strerror(rc),
                mqtt_last_error());
        goto cleanup;
    }
    /* Again on every start: harmless on a resumed session; retained
     * messages only for a new subscription. 3.1.1 subscriptions have a
     * QoS only (a retained message then arrives with RETAIN when it is
     * sent because of the subscription, without it otherwise). */
    rc = mqtt_subscribe(src, filter,
                        speaks_311(src)
                            ? MQTT5C_QOS1
                            : MQTT5C_QOS1 | MQTT5C_SUB_RETAIN_AS_PUBLISHED |
                                  MQTT5C_SUB_RETAIN_HANDLING_NEW_ONLY,
                        NULL);
    if (!MQTT5C_SUCCEEDED(rc)) {
        fprintf(stderr, "gateway: subscribe to %s: %s (%d): %s\n", filter, mqtt_strerror(rc), rc,
                rc < 0 ? mqtt_last_error() : "refused");
        goto cleanup;
    }
    fprintf(stderr, "subscribed\n");

    pthread_mutex_lock(&g.mu);
    while (!g.stopping)
        pthread_cond_wait(&g.cv, &g.mu);
    /* Stopping: no new forwards; give those in flight 10 s to finish. */
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10;
    while (g.in_flight > 0 && pthread_cond_timedwait(&g.cv, &g.mu, &deadline) != ETIMEDOUT) {
    }
    pthread_mutex_unlock(&g.mu);
    status = 0;

cleanup:
    /* The source first, so no message callback runs when the destination
     * goes; completions stop acknowledging before the source is freed. */
    if (src) {
        mqtt_disconnect(src, 0, NULL);
        pthread_mutex_lock(&g.mu);
        g.src = NULL;
        pthread_mutex_unlock(&g.mu);
        mqtt_client_free(src);
    }
    if (dst) {
        mqtt_disconnect(dst, 0, NULL);
        mqtt_client_free(dst);
    }
    /* Forwards whose completion never came (freed with the client). */
    while (g.head.next != &g.head) {
        struct forward *f = g.head.next;
        unlink_forward(f);
        free(f);
    }
    fprintf(stderr, "gateway: forwarded %ld messages\n", g.forwarded);
    return status;
}

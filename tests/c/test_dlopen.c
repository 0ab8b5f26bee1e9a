// needs: dlopen
/*
 * A plugin host's cycle, 100 times: dlopen the library (the path in
 * MQTT_TEST_LIB; this program is not linked to it), connect a client,
 * receive its own QoS 1 message, disconnect, free, mqtt_global_cleanup,
 * dlclose. No crash, and no thread left: after each cycle the process has
 * exactly its threads from before the first one.
 *
 * Each cycle runs on a thread of its own that has exited before the
 * dlclose: a thread that called into the library keeps it mapped until it
 * exits (its thread-local destructors are the library's code, see
 * mqtt_global_cleanup), so this way glibc really unmaps the library at
 * each dlclose, and the next dlopen loads it afresh (checked with
 * RTLD_NOLOAD): statics start over, and code of the library still
 * running would crash the program. (A library thread left would also
 * keep it mapped: its thread-local destructors are the library's.)
 *
 * Under valgrind (MQTT5C_VALGRIND) 3 cycles, not 100: valgrind reads the
 * library's debug information at each load. It also finds any allocation
 * that a static of the library keeps: unmapped, it is lost.
 */
#include "test_common.h"

#include <dlfcn.h>

#define CYCLES 100
#define CYCLES_VALGRIND 3

/* The library's functions, typed from the header. */
struct lib {
    void *handle;
    __typeof__(&mqtt_options_new) options_new;
    __typeof__(&mqtt_options_set_client_id) options_set_client_id;
    __typeof__(&mqtt_options_free) options_free;
    __typeof__(&mqtt_client_new) client_new;
    __typeof__(&mqtt_client_free) client_free;
    __typeof__(&mqtt_set_message_callback) set_message_callback;
    __typeof__(&mqtt_connect) connect;
    __typeof__(&mqtt_subscribe) subscribe;
    __typeof__(&mqtt_publish) publish;
    __typeof__(&mqtt_disconnect) disconnect;
    __typeof__(&mqtt_message_payload) message_payload;
    __typeof__(&mqtt_global_cleanup) global_cleanup;
    __typeof__(&mqtt_last_error) last_error;
};

#define RESOLVE(l, field, name)                                                \
    do {                                                                       \
        *(void **)(&(l)->field) = dlsym((l)->handle, name);                    \
        if (!(l)->field) {                                                     \
            fprintf(stderr, "dlsym(%s): %s\n", name, dlerror());               \
            return false;                                                      \
        }                                                                      \
    } while (0)

static bool resolve(struct lib *l) {
    RESOLVE(l, options_new, "mqtt_options_new");
    RESOLVE(l, options_set_client_id, "mqtt_options_set_client_id");
    RESOLVE(l, options_free, "mqtt_options_free");
    RESOLVE(l, client_new, "mqtt_client_new");
    RESOLVE(l, client_free, "mqtt_client_free");
    RESOLVE(l, set_message_callback, "mqtt_set_message_callback");
    RESOLVE(l, connect, "mqtt_connect");
    RESOLVE(l, subscribe, "mqtt_subscribe");
    RESOLVE(l, publish, "mqtt_publish");
    RESOLVE(l, disconnect, "mqtt_disconnect");
    RESOLVE(l, message_payload, "mqtt_message_payload");
    RESOLVE(l, global_cleanup, "mqtt_global_cleanup");
    RESOLVE(l, last_error, "mqtt_last_error");
    return true;
}

struct cycle {
    struct lib *lib;
    const char *url;
    int n;
    sync_t s;
    long received;
    bool ok;
};

static void on_message(void *ud, const mqtt_message *m) {
    struct cycle *cy = ud;
    size_t len = 0;
    const void *p = cy->lib->message_payload(m, &len);
    if (len == 2 && memcmp(p, "hi", 2) == 0)
        sync_add(&cy->s, &cy->received, 1);
}

/* One cycle's use of the library, on a thread of its own. */
static void *run_cycle(void *arg) {
    struct cycle *cy = arg;
    struct lib *l = cy->lib;
    mqtt_options *opts = NULL;
    mqtt_client *c = NULL;
    char id[32], topic[32];
    int rc;

    snprintf(id, sizeof id, "dlopen-%d", cy->n);
    snprintf(topic, sizeof topic, "dlopen/%d", cy->n);
    opts = l->options_new();
    CHECK(opts != NULL, "options");
    CHECK(l->options_set_client_id(opts, id) == MQTT5C_OK, "client id: %s", l->last_error());
    c = l->client_new(opts);
    CHECK(c != NULL, "client_new: %s", l->last_error());
    CHECK(l->set_message_callback(c, on_message, cy) == MQTT5C_OK, "callback");
    rc = l->connect(c, cy->url);
    CHECK(rc == MQTT5C_OK, "connect: %d %s", rc, l->last_error());
    rc = l->subscribe(c, topic, MQTT5C_QOS1, NULL);
    CHECK(rc == MQTT5C_QOS1, "subscribe: %d %s", rc, l->last_error());
    rc = l->publish(c, topic, "hi", 2, MQTT5C_QOS1, false, NULL);
    CHECK(publish_ok(rc), "publish: %d %s", rc, l->last_error());
    CHECK(sync_wait_count(&cy->s, &cy->received, 1, 10), "the message came back");
    rc = l->disconnect(c, 0, NULL);
    CHECK(rc == MQTT5C_OK, "disconnect: %d %s", rc, l->last_error());
    l->client_free(c);
    c = NULL;
    rc = l->global_cleanup();
    CHECK(rc == MQTT5C_OK, "mqtt_global_cleanup: %d %s", rc, l->last_error());
    cy->ok = true;

cleanup:
    if (c)
        l->client_free(c);
    if (opts)
        l->options_free(opts);
    return NULL;
}

int main(int argc, char **argv) {
    const char *url = test_url(argc, argv);
    const char *path = getenv("MQTT_TEST_LIB");
    int cycles = test_under_valgrind() ? CYCLES_VALGRIND : CYCLES;
    struct lib l;
    int before, n, i, unmapped = 0;
    double started = now_s();

    memset(&l, 0, sizeof l);
    CHECK(path && *path, "MQTT_TEST_LIB names the library to load");
    before = test_count_threads();
    CHECK(before == 1, "expected a single thread at the start, found %d", before);
    CHECK(dlopen(path, RTLD_NOW | RTLD_NOLOAD) == NULL, "the library is loaded before dlopen");

    for (i = 0; i < cycles; i++) {
        struct cycle cy;
        pthread_t t;
        void *again;

        memset(&cy, 0, sizeof cy);
        l.handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        CHECK(l.handle != NULL, "dlopen(%s): %s", path, dlerror());
        CHECK(resolve(&l), "cycle %d: resolving the functions", i);
        cy.lib = &l;
        cy.url = url;
        cy.n = i;
        sync_init(&cy.s);
        CHECK(pthread_create(&t, NULL, run_cycle, &cy) == 0, "pthread_create");
        pthread_join(t, NULL);
        sync_destroy(&cy.s);
        CHECK(cy.ok, "cycle %d failed", i);
        n = test_count_threads();
        CHECK(n == before, "cycle %d: %d threads after mqtt_global_cleanup, want %d", i, n, before);
        CHECK(dlclose(l.handle) == 0, "dlclose: %s", dlerror());
        l.handle = NULL;
        again = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
        if (again)
            dlclose(again);
        else
            unmapped++;
        n = test_count_threads();
        CHECK(n == before, "cycle %d: %d threads after dlclose, want %d", i, n, before);
    }
    TEST_LOG("%d cycles in %.1f s; the library was unmapped after %d of them", cycles,
             now_s() - started, unmapped);
    /* Nothing of the library is left to keep it mapped (no thread of it, no
     * live thread that called it): each dlopen loaded it afresh. */
    CHECK(unmapped == cycles, "the library stayed mapped after %d of %d dlclose calls",
          cycles - unmapped, cycles);

cleanup:
    if (l.handle)
        dlclose(l.handle);
    return test_failed;
}

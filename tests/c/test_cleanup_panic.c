/*
 * A panic inside mqtt_global_cleanup comes back as MQTT5C_ERR_INTERNAL and
 * leaves the library usable. The panic is real: this program's own
 * clock_gettime (it interposes libc's for the library) fails on the thread
 * that asks for it, and std's Instant::now panics on that. Before the fix
 * the panic skipped the end of the stop (`stopping` stayed set), and every
 * later mqtt_global_cleanup, mqtt_client_new and mqtt_global_init waited
 * for ever.
 */
#define _GNU_SOURCE
#include "test_common.h"

#include <sys/syscall.h>

static _Thread_local bool clock_fails_here;

int clock_gettime(clockid_t id, struct timespec *ts) {
    if (clock_fails_here) {
        errno = EINVAL;
        return -1;
    }
    return (int)syscall(SYS_clock_gettime, id, ts);
}

static struct {
    sync_t s;
    long done;
    int rc;
} st;

static void *cleanup_again(void *arg) {
    (void)arg;
    int rc = mqtt_global_cleanup();
    sync_lock(&st.s);
    st.rc = rc;
    sync_unlock(&st.s);
    sync_add(&st.s, &st.done, 1);
    return NULL;
}

int main(void) {
    mqtt_client *c = NULL;
    pthread_t t;
    bool started = false;
    sync_init(&st.s);

    c = mqtt_client_new(NULL);
    CHECK(c != NULL, "mqtt_client_new: %s", test_last_error());
    mqtt_client_free(c);
    c = NULL;

    clock_fails_here = true;
    int rc = mqtt_global_cleanup();
    clock_fails_here = false;
    CHECK(rc == MQTT5C_ERR_INTERNAL, "cleanup with a failing clock returned %d (%s): %s", rc,
          test_strerror(rc), test_last_error());
    TEST_LOG("cleanup with a failing clock: %s", test_last_error());

    /* On a thread of its own: before the fix it never returned. */
    CHECK(pthread_create(&t, NULL, cleanup_again, NULL) == 0, "thread");
    started = true;
    CHECK(sync_wait_count(&st.s, &st.done, 1, 30 * timeout_scale()),
          "mqtt_global_cleanup after a caught panic did not return within 30 s");
    pthread_join(t, NULL);
    started = false;
    CHECK_RC(st.rc, MQTT5C_OK);

    c = mqtt_client_new(NULL);
    CHECK(c != NULL, "mqtt_client_new after the panic: %s", test_last_error());
    mqtt_client_free(c);
    c = NULL;
    CHECK_RC(mqtt_global_cleanup(), MQTT5C_OK);

cleanup:
    if (started) /* hung: the process exits without it */
        pthread_detach(t);
    mqtt_client_free(c);
    return test_failed;
}

/*
 * One client shared by 8 threads, each publishing 1000 QoS 1 messages. Every
 * call succeeds; a subscriber on another connection receives all 8000, and
 * each thread's messages in the order that thread sent them.
 */
// broker-conf: max_queued_messages 0
#include "test_common.h"

#define N_THREADS 8
#define N_PER_THREAD 1000
#define N_TOTAL (N_THREADS * N_PER_THREAD)

static struct {
    sync_t s;
    mqtt_client *pub;
    bool go;
    long ready;
    /* publisher side */
    long publish_failures;
    int first_failure_rc;
    char first_failure_text[256];
    /* subscriber side */
    long received;
    long per_thread[N_THREADS];
    long next[N_THREADS];
    long out_of_order;
    long garbage;
    char first_bad[96];
} st;

static void *publisher(void *arg) {
    int t = (int)(intptr_t)arg;
    char topic[32], payload[32];

    /* Start all threads at once for maximum contention. */
    sync_lock(&st.s);
    st.ready++;
    pthread_cond_broadcast(&st.s.cv);
    while (!st.go)
        pthread_cond_wait(&st.s.cv, &st.s.mu);
    sync_unlock(&st.s);

    snprintf(topic, sizeof topic, "threads/%d", t);
    for (int i = 0; i < N_PER_THREAD; i++) {
        int len = snprintf(payload, sizeof payload, "%d %d", t, i);
        int rc = mqtt_publish(st.pub, topic, payload, (size_t)len, MQTT5C_QOS1, false, NULL);
        if (rc != 0 && rc != 0x10) {
            sync_lock(&st.s);
            if (st.publish_failures++ == 0) {
                st.first_failure_rc = rc;
                snprintf(st.first_failure_text, sizeof st.first_failure_text, "thread %d msg %d: %s", t, i,
                         test_last_error());
            }
            sync_unlock(&st.s);
        }
    }
    return NULL;
}

static void on_message(void *ud, const mqtt_message *m) {
    (void)ud;
    size_t len = 0;
    const char *p = mqtt_message_payload(m, &len);
    char buf[32];
    int t = -1, i = -1;
    if (p && len < sizeof buf) {
        memcpy(buf, p, len);
        buf[len] = '\0';
        if (sscanf(buf, "%d %d", &t, &i) != 2)
            t = -1;
    }
    sync_lock(&st.s);
    if (t < 0 || t >= N_THREADS) {
        st.garbage++;
    } else {
        if (i != st.next[t] && st.out_of_order++ == 0)
            snprintf(st.first_bad, sizeof st.first_bad, "thread %d: got %d, want %ld", t, i, st.next[t]);
        st.next[t] = i + 1;
        st.per_thread[t]++;
    }
    st.received++;
    sync_unlock_notify(&st.s);
}

int main(int argc, char **argv) {
    const char *url = test_url(argc, argv);
    mqtt_client *sub = NULL;
    pthread_t threads[N_THREADS];
    int started = 0;
    double t0 = 0;

    sync_init(&st.s);
    st.pub = test_client_new("threads-pub");
    sub = test_client_new("threads-sub");
    CHECK(st.pub && sub, "client creation failed");
    CHECK_RC(mqtt_set_message_callback(sub, on_message, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_connect(sub, url), MQTT5C_OK);
    CHECK_RC(mqtt_connect(st.pub, url), MQTT5C_OK);
    CHECK_RC(mqtt_subscribe(sub, "threads/#", MQTT5C_QOS1, NULL), 1);

    for (; started < N_THREADS; started++)
        CHECK(pthread_create(&threads[started], NULL, publisher, (void *)(intptr_t)started) == 0,
              "pthread_create failed");
    sync_lock(&st.s);
    while (st.ready < N_THREADS)
        pthread_cond_wait(&st.s.cv, &st.s.mu);
    st.go = true;
    t0 = now_s();
    sync_unlock_notify(&st.s);

cleanup:
    /* Always join what was started (the threads use st.pub). */
    if (started > 0 && started < N_THREADS) {
        sync_lock(&st.s);
        st.go = true;
        sync_unlock_notify(&st.s);
    }
    for (int i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    if (!test_failed && started == N_THREADS) {
        TEST_LOG("8 threads published %d in %.2f s", N_TOTAL, now_s() - t0);
        sync_lock(&st.s);
        long fails = st.publish_failures;
        int first = st.first_failure_rc;
        sync_unlock(&st.s);
        if (fails != 0) {
            fprintf(stderr, "FAIL: %ld publishes failed; first rc %d (%s): %s\n", fails, first,
                    test_strerror(first), st.first_failure_text);
            test_failed = 1;
        } else if (!sync_wait_count(&st.s, &st.received, N_TOTAL, 60)) {
            fprintf(stderr, "FAIL: subscriber received %ld of %d\n", sync_get(&st.s, &st.received), N_TOTAL);
            test_failed = 1;
        } else {
            TEST_LOG("subscriber received %d in %.2f s", N_TOTAL, now_s() - t0);
            sync_lock(&st.s);
            if (st.out_of_order || st.garbage) {
                fprintf(stderr, "FAIL: %ld out of order (%s), %ld unparsable\n", st.out_of_order, st.first_bad,
                        st.garbage);
                test_failed = 1;
            }
            for (int t = 0; t < N_THREADS; t++) {
                if (st.per_thread[t] != N_PER_THREAD) {
                    fprintf(stderr, "FAIL: thread %d: %ld messages received, want %d\n", t, st.per_thread[t],
                            N_PER_THREAD);
                    test_failed = 1;
                }
            }
            sync_unlock(&st.s);
        }
    }
    if (!test_failed) {
        if (mqtt_disconnect(st.pub, 0, NULL) != MQTT5C_OK || mqtt_disconnect(sub, 0, NULL) != MQTT5C_OK) {
            fprintf(stderr, "FAIL: disconnect: %s\n", test_last_error());
            test_failed = 1;
        }
    }
    mqtt_client_free(st.pub);
    mqtt_client_free(sub);
    sync_destroy(&st.s);
    if (!test_failed)
        TEST_LOG("test_threads: PASS");
    return test_failed;
}

/*
 * A round trip through an installed libmqtt5c: connect, subscribe, publish
 * at QoS 1, receive. tests/install.rs builds it against a temporary
 * `make install` with pkg-config, with CMake (find_package) and statically,
 * and runs it against its own mosquitto. Usage: roundtrip URL
 *
 * First line of output: "version HEADER LIBRARY NUMBER", which the test
 * compares with Cargo.toml's version.
 */
#define _POSIX_C_SOURCE 200809L
#include <mqtt5c.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define TOPIC "mqtt5c/install/roundtrip"
#define WAIT_SECONDS 30

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t arrived = PTHREAD_COND_INITIALIZER;
static char received[128];

static void on_message(void *user_data, const mqtt_message *m) {
    (void)user_data;
    size_t len = 0;
    const void *payload = mqtt_message_payload(m, &len);
    pthread_mutex_lock(&lock);
    snprintf(received, sizeof received, "%s %.*s", mqtt_message_topic(m), (int)len,
             (const char *)payload);
    pthread_cond_signal(&arrived);
    pthread_mutex_unlock(&lock);
}

/* A call that waits for the broker succeeded: 0, or a v5 reason code below
 * 0x80 (a granted QoS 1 in the SUBACK, 0x10 no matching subscribers). */
static int ok(int rc) {
    return rc >= 0 && rc < 0x80;
}

static int fail(const char *what, int rc) {
    fprintf(stderr, "roundtrip: %s: %d %s: %s\n", what, rc, mqtt_strerror(rc), mqtt_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: roundtrip URL\n");
        return 2;
    }
    printf("version %s %s 0x%06X\n", MQTT5C_VERSION, mqtt_version(),
           (unsigned)mqtt_version_number());
    if (mqtt_version_number() != MQTT5C_VERSION_NUMBER) {
        fprintf(stderr, "roundtrip: library 0x%06X, header 0x%06X\n",
                (unsigned)mqtt_version_number(), (unsigned)MQTT5C_VERSION_NUMBER);
        return 1;
    }
    mqtt_client *c = mqtt_client_new(NULL);
    if (!c)
        return fail("mqtt_client_new", 0);
    int status = 1, rc;
    if ((rc = mqtt_set_message_callback(c, on_message, NULL)) != 0) {
        status = fail("mqtt_set_message_callback", rc);
        goto cleanup;
    }
    if ((rc = mqtt_connect(c, argv[1])) != 0) {
        status = fail("mqtt_connect", rc);
        goto cleanup;
    }
    if (!ok(rc = mqtt_subscribe(c, TOPIC, 1, NULL))) {
        status = fail("mqtt_subscribe", rc);
        goto cleanup;
    }
    if (!ok(rc = mqtt_publish(c, TOPIC, "hello", 5, 1, false, NULL))) {
        status = fail("mqtt_publish", rc);
        goto cleanup;
    }
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += WAIT_SECONDS;
    pthread_mutex_lock(&lock);
    while (received[0] == '\0' && pthread_cond_timedwait(&arrived, &lock, &deadline) == 0) {
    }
    if (received[0] != '\0') {
        printf("received %s\n", received);
        status = 0;
    } else {
        fprintf(stderr, "roundtrip: no message within %d s\n", WAIT_SECONDS);
    }
    pthread_mutex_unlock(&lock);
    mqtt_disconnect(c, 0, NULL);
cleanup:
    mqtt_client_free(c);
    return status;
}

/*
 * Writing to a connection the broker has closed must return an error, not
 * kill the process with SIGPIPE: this program keeps SIGPIPE's default
 * action (terminate), as C programs do. A tiny broker in this file answers
 * CONNECT with CONNACK and closes the socket; the client then publishes
 * until the library reports the loss. Over a Unix socket and over TCP.
 */
#include "test_common.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Accepts one connection, reads CONNECT, answers CONNACK, closes. */
static void *one_shot_broker(void *arg) {
    int listener = *(int *)arg;
    static const unsigned char connack[] = {0x20, 0x03, 0x00, 0x00, 0x00};
    unsigned char buf[512];
    int fd = accept(listener, NULL, NULL);
    if (fd < 0)
        return NULL;
    if (read(fd, buf, sizeof buf) > 0 && write(fd, connack, sizeof connack) == (ssize_t)sizeof connack) {
        /* Let the client read CONNACK before the socket goes away. */
        shutdown(fd, SHUT_WR);
        (void)read(fd, buf, sizeof buf);
    }
    close(fd);
    return NULL;
}

/* Publishes until an error; returns the error (or 0 if none came). */
static int publish_until_error(mqtt_client *c) {
    static char payload[64 * 1024];
    for (int i = 0; i < 2000; i++) {
        int rc = mqtt_publish(c, "sigpipe/t", payload, sizeof payload, MQTT5C_QOS0, false, NULL);
        if (rc != MQTT5C_OK)
            return rc;
    }
    return 0;
}

static bool lost(int rc) {
    return rc == MQTT5C_ERR_CONNECTION_LOST || rc == MQTT5C_ERR_NOT_CONNECTED || rc == MQTT5C_ERR_IO;
}

int main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    int ul = -1, tl = -1;
    pthread_t th;
    bool th_started = false;
    mqtt_client *c = NULL;
    char path[108], url[160];
    struct sockaddr_un sun;
    struct sockaddr_in sin;
    socklen_t slen = sizeof sin;
    int rc;

    signal(SIGPIPE, SIG_DFL);

    /* ---- Unix socket ---- */
    snprintf(path, sizeof path, "/tmp/mqtt5c-sigpipe-%d.sock", (int)getpid());
    unlink(path);
    ul = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(ul >= 0, "socket");
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    strncpy(sun.sun_path, path, sizeof sun.sun_path - 1);
    CHECK(bind(ul, (struct sockaddr *)&sun, sizeof sun) == 0 && listen(ul, 1) == 0, "bind %s", path);
    CHECK(pthread_create(&th, NULL, one_shot_broker, &ul) == 0, "thread");
    th_started = true;
    c = test_client_new("sigpipe-unix");
    CHECK(c != NULL, "client");
    snprintf(url, sizeof url, "unix://%s", path);
    CHECK_RC(mqtt_connect(c, url), MQTT5C_OK);
    rc = publish_until_error(c);
    CHECK(lost(rc), "publishing to a closed Unix socket returned %d (%s)", rc, test_strerror(rc));
    TEST_LOG("unix: publish after close returned %s, process alive", test_strerror(rc));
    mqtt_client_free(c);
    c = NULL;
    pthread_join(th, NULL);
    th_started = false;

    /* ---- TCP ---- */
    tl = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(tl >= 0, "socket");
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(tl, (struct sockaddr *)&sin, sizeof sin) == 0 && listen(tl, 1) == 0 &&
              getsockname(tl, (struct sockaddr *)&sin, &slen) == 0,
          "bind tcp");
    CHECK(pthread_create(&th, NULL, one_shot_broker, &tl) == 0, "thread");
    th_started = true;
    c = test_client_new("sigpipe-tcp");
    CHECK(c != NULL, "client");
    snprintf(url, sizeof url, "mqtt://127.0.0.1:%d", ntohs(sin.sin_port));
    CHECK_RC(mqtt_connect(c, url), MQTT5C_OK);
    rc = publish_until_error(c);
    CHECK(lost(rc), "publishing to a closed TCP socket returned %d (%s)", rc, test_strerror(rc));
    TEST_LOG("tcp: publish after close returned %s, process alive", test_strerror(rc));

cleanup:
    mqtt_client_free(c);
    if (th_started)
        pthread_join(th, NULL);
    if (ul >= 0) {
        close(ul);
        unlink(path);
    }
    if (tl >= 0)
        close(tl);
    return test_failed;
}

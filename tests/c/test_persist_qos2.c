/*
 * Persistence of the QoS 2 state across a crash (issue 9), against a
 * scripted broker (tests/scripted/persist.rs, script "persist_qos2"):
 *
 * 1. A child process with a persistence directory publishes at QoS 2
 *    (the broker PUBRECs it, the client sends PUBREL, no PUBCOMP comes)
 *    and receives a QoS 2 message (delivered, PUBRECed, no PUBREL yet);
 *    then it is killed with SIGKILL.
 * 2. A client with the same id and directory (in this process) resumes
 *    the session: it resends PUBREL, not the message (which the broker
 *    could take for a new one), and when the broker resends the message
 *    it had PUBRECed, answers PUBREC without delivering it again; the
 *    broker's PUBREL gets PUBCOMP Success.
 */
// fake-broker: persist_qos2
#include "test_common.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#define CLIENT_ID "persist-qos2"
#define STORE_DIR "pstore"

typedef struct {
    sync_t s;
    long in, done;
    int signal_fd; /* the child tells the parent through it */
} state_t;

static void on_message(void *ud, const mqtt_message *m) {
    state_t *st = ud;
    const char *topic = mqtt_message_topic(m);
    if (strcmp(topic, "p2/in") == 0)
        sync_add(&st->s, &st->in, 1);
    else if (strcmp(topic, "p2/done") == 0)
        sync_add(&st->s, &st->done, 1);
    else if (strcmp(topic, "p2/ack-seen") == 0 && st->signal_fd >= 0 &&
             write(st->signal_fd, "k", 1) != 1)
        abort();
}

static mqtt_client *persistent_client(state_t *st) {
    mqtt_options *opts = mqtt_options_new();
    mqtt_client *c = NULL;
    if (opts && mqtt_options_set_client_id(opts, CLIENT_ID) == MQTT5C_OK &&
        mqtt_options_set_clean_start(opts, false) == MQTT5C_OK &&
        mqtt_options_set_session_expiry(opts, 600) == MQTT5C_OK &&
        mqtt_options_set_connect_timeout(opts, (uint32_t)(10000 * timeout_scale())) == MQTT5C_OK &&
        mqtt_options_set_persistence_dir(opts, STORE_DIR) == MQTT5C_OK)
        c = mqtt_client_new(opts);
    mqtt_options_free(opts);
    if (c && mqtt_set_message_callback(c, on_message, st) != MQTT5C_OK) {
        mqtt_client_free(c);
        c = NULL;
    }
    return c;
}

/* The first process: publishes, receives, then waits to be killed. */
static int child(const char *url, int signal_fd) {
    state_t st;
    memset(&st, 0, sizeof st);
    sync_init(&st.s);
    st.signal_fd = signal_fd;
    mqtt_client *c = persistent_client(&st);
    CHECK(c != NULL, "mqtt_client_new: %s", test_last_error());
    CHECK_RC(mqtt_connect(c, url), 0);
    CHECK_RC(mqtt_publish_async(c, "p2/out", "x", 1, MQTT5C_QOS2, false, NULL, NULL, NULL), MQTT5C_OK);
    for (;;)
        pause();
cleanup:
    return 1;
}

int main(int argc, char **argv) {
    const char *url = test_url(argc, argv);
    state_t st;
    memset(&st, 0, sizeof st);
    sync_init(&st.s);
    st.signal_fd = -1;
    mqtt_client *c = NULL;
    int fds[2] = {-1, -1};
    pid_t pid = -1;
    char byte;

    /* Before any library call: the child must not inherit its threads. */
    CHECK(pipe(fds) == 0, "pipe: %s", strerror(errno));
    pid = fork();
    CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        close(fds[0]);
        _exit(child(url, fds[1]));
    }
    close(fds[1]);
    fds[1] = -1;

    /* 1: once the child has the broker's word that both PUBREL and PUBREC
     * went out, it is killed. */
    struct pollfd pfd = {fds[0], POLLIN, 0};
    CHECK(poll(&pfd, 1, (int)(20000 * timeout_scale())) == 1, "the child did not get to the crash point");
    CHECK(read(fds[0], &byte, 1) == 1, "the child died early");
    CHECK(kill(pid, SIGKILL) == 0, "kill: %s", strerror(errno));
    CHECK(waitpid(pid, NULL, 0) == pid, "waitpid: %s", strerror(errno));
    pid = -1;
    TEST_LOG("1: the first process was killed between PUBREC and PUBREL, both ways");

    /* 2: the next client resumes from the directory. */
    c = persistent_client(&st);
    CHECK(c != NULL, "mqtt_client_new: %s", test_last_error());
    CHECK_RC(mqtt_connect(c, url), 0);
    CHECK(sync_wait_count(&st.s, &st.done, 1, 20), "the broker did not see the QoS 2 flows complete");
    CHECK(sync_get(&st.s, &st.in) == 0, "the message PUBRECed before the crash was delivered again");
    CHECK_RC(mqtt_disconnect(c, 0, NULL), MQTT5C_OK);
    TEST_LOG("2: PUBREL resent, the resent message acknowledged without a second delivery");

cleanup:
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    mqtt_client_free(c);
    if (fds[0] >= 0)
        close(fds[0]);
    if (fds[1] >= 0)
        close(fds[1]);
    sync_destroy(&st.s);
    return test_failed;
}

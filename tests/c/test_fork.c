/*
 * fork() and the library's threads. A child forked while they ran has a
 * copy of the runtime without its threads that shares the parent's epoll
 * instance: a client made there would register its socket in the
 * parent's driver with the child's pointers (the parent crashed), so
 * mqtt_client_new and mqtt_global_cleanup refuse in that child. A child
 * forked after mqtt_global_cleanup returned MQTT5C_OK starts its own
 * runtime and works; so does the parent, on.
 */
#include "test_common.h"

#include <sys/wait.h>

static bool round_trip(const char *url, const char *id) {
    mqtt_client *c = test_client_new(id);
    bool ok = c != NULL && mqtt_connect(c, url) == MQTT5C_OK &&
              publish_ok(mqtt_publish(c, "fork/x", "x", 1, MQTT5C_QOS1, false, NULL)) &&
              mqtt_disconnect(c, 0, NULL) == MQTT5C_OK;
    if (!ok)
        fprintf(stderr, "round trip %s: %s\n", id, test_last_error());
    mqtt_client_free(c);
    return ok;
}

/* Runs `child` in a child process (never returning there): its result,
 * sent through a pipe, or -1 when it sent none; -2 when its exit status
 * says otherwise. Under valgrind, a child forked while the library's
 * threads ran holds their memory with no thread to own it, which valgrind
 * reports as lost in that child: its exit status is not checked then
 * (`leaks_expected`), its result still is. */
static int in_child(int (*child)(const char *), const char *url, bool leaks_expected) {
    int fds[2], status, result = -1;
    pid_t pid;
    if (pipe(fds) != 0)
        return -1;
    pid = fork();
    if (pid == 0) {
        alarm(120); /* a hang is a failure, not a stuck test */
        close(fds[0]);
        result = child(url);
        if (write(fds[1], &result, sizeof result) != (ssize_t)sizeof result)
            _exit(6);
        _exit(result);
    }
    close(fds[1]);
    if (pid > 0 && read(fds[0], &result, sizeof result) != (ssize_t)sizeof result)
        result = -1;
    close(fds[0]);
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return -1;
    if (!(WIFEXITED(status) && WEXITSTATUS(status) == result)) {
        if (!(leaks_expected && test_under_valgrind() && WIFEXITED(status)))
            return -2;
        TEST_LOG("valgrind in the child forked while the library ran: status %d",
                 WEXITSTATUS(status));
    }
    return result;
}

/* Forked while the parent's runtime ran: refused, and not used. */
static int child_of_running(const char *url) {
    (void)url;
    mqtt_client *c = mqtt_client_new(NULL);
    if (c != NULL) {
        fprintf(stderr, "child: mqtt_client_new worked on the parent's runtime\n");
        return 1; /* not freed: that would use the parent's runtime too */
    }
    if (!contains_ci(test_last_error(), "fork")) {
        fprintf(stderr, "child: error text: %s\n", test_last_error());
        return 2;
    }
    if (mqtt_global_cleanup() != MQTT5C_ERR_BAD_STATE) {
        fprintf(stderr, "child: mqtt_global_cleanup did not refuse\n");
        return 3;
    }
    TEST_LOG("child of a running library: %s", test_last_error());
    return 0;
}

/* Forked after mqtt_global_cleanup: a library of its own. */
static int child_after_cleanup(const char *url) {
    if (!round_trip(url, "fork-child"))
        return 4;
    return mqtt_global_cleanup() == MQTT5C_OK ? 0 : 5;
}

int main(int argc, char **argv) {
    const char *url = test_url(argc, argv);
    int rc;

    CHECK(round_trip(url, "fork-parent-1"), "parent round trip");
    rc = in_child(child_of_running, url, true);
    CHECK(rc == 0, "child forked while the library ran: status %d", rc);
    CHECK(round_trip(url, "fork-parent-2"), "parent round trip after that child");

    CHECK_RC(mqtt_global_cleanup(), MQTT5C_OK);
    rc = in_child(child_after_cleanup, url, false);
    CHECK(rc == 0, "child forked after cleanup: status %d", rc);
    CHECK(round_trip(url, "fork-parent-3"), "parent round trip at the end");
    CHECK_RC(mqtt_global_cleanup(), MQTT5C_OK);

cleanup:
    return test_failed;
}

/*
 * The persistence directory (issue 9), against a scripted broker
 * (tests/scripted/persist.rs, script "persist_torn"):
 *
 * 1. A client with a persistence directory publishes three QoS 1
 *    messages the broker never acknowledges.
 * 2. While it lives, a second client with the same directory and client
 *    id is refused, in this process and in another one: mqtt_client_new
 *    returns NULL and mqtt_last_error() names the directory.
 * 3. It is freed; its log then loses its last byte, as a power cut in the
 *    middle of the last write would leave it.
 * 4. The next client loads the log: the torn record is discarded with a
 *    warning line, handed to the first log callback set
 *    (mqtt_set_log_callback), and the two whole ones are resent when the
 *    session resumes; the third is not.
 */
// fake-broker: persist_torn
#include "test_common.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define CLIENT_ID "persist-torn"
#define STORE_DIR "pstore"
#define LOG_FILE STORE_DIR "/" CLIENT_ID ".mqlog"

typedef struct {
    sync_t s;
    long done;
    /* Log lines about the torn record seen, at MQTT5C_LOG_WARNING. */
    long torn_lines;
} state_t;

static void on_log(void *ud, int level, const char *line) {
    state_t *st = ud;
    if (level == MQTT5C_LOG_WARNING && strstr(line, "persist-torn.mqlog") &&
        strstr(line, "damaged"))
        sync_add(&st->s, &st->torn_lines, 1);
}

static void on_message(void *ud, const mqtt_message *m) {
    state_t *st = ud;
    if (strcmp(mqtt_message_topic(m), "torn/done") == 0)
        sync_add(&st->s, &st->done, 1);
}

static mqtt_options *persistent_options(void) {
    mqtt_options *opts = mqtt_options_new();
    if (opts && mqtt_options_set_client_id(opts, CLIENT_ID) == MQTT5C_OK &&
        mqtt_options_set_clean_start(opts, false) == MQTT5C_OK &&
        mqtt_options_set_session_expiry(opts, 600) == MQTT5C_OK &&
        mqtt_options_set_connect_timeout(opts, (uint32_t)(10000 * timeout_scale())) == MQTT5C_OK &&
        mqtt_options_set_persistence_dir(opts, STORE_DIR) == MQTT5C_OK)
        return opts;
    mqtt_options_free(opts);
    return NULL;
}

/* Whether a client on the store is refused, naming the directory. */
static bool refused(mqtt_options *opts) {
    mqtt_client *c = mqtt_client_new(opts);
    if (c) {
        mqtt_client_free(c);
        return false;
    }
    const char *kw[] = {"in use", NULL};
    return strstr(test_last_error(), STORE_DIR) != NULL && last_error_mentions(kw);
}

/* The other process of step 2 (this program run again, without valgrind:
 * the library's threads are not to be forked). */
static int other_process(void) {
    mqtt_options *opts = persistent_options();
    bool ok = opts && refused(opts);
    if (!ok)
        fprintf(stderr, "the other process was not refused: %s\n", test_last_error());
    mqtt_options_free(opts);
    return ok ? 0 : 1;
}

/* Runs this program with "other-process"; its exit status. */
static int run_other_process(const char *self) {
    pid_t pid = fork();
    if (pid == 0) {
        execl(self, self, "other-process", (char *)NULL);
        _exit(127);
    }
    int status = -1;
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "other-process") == 0)
        return other_process();
    const char *url = test_url(argc, argv);
    state_t st;
    memset(&st, 0, sizeof st);
    sync_init(&st.s);
    mqtt_options *opts = persistent_options();
    mqtt_client *c = NULL;
    struct stat sb;
    CHECK(opts != NULL, "persistence options");

    /* 1: three messages in flight. */
    c = mqtt_client_new(opts);
    CHECK(c != NULL, "mqtt_client_new: %s", test_last_error());
    CHECK_RC(mqtt_connect(c, url), 0);
    CHECK_RC(mqtt_publish_async(c, "torn/1", "1", 1, MQTT5C_QOS1, false, NULL, NULL, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_publish_async(c, "torn/2", "2", 1, MQTT5C_QOS1, false, NULL, NULL, NULL), MQTT5C_OK);
    CHECK_RC(mqtt_publish_async(c, "torn/3", "3", 1, MQTT5C_QOS1, false, NULL, NULL, NULL), MQTT5C_OK);
    TEST_LOG("1: three QoS 1 messages accepted, unacknowledged");

    /* 2: one user at a time. */
    CHECK(refused(opts), "a second client in this process was not refused: %s", test_last_error());
    TEST_LOG("2: a second client is refused: %s", test_last_error());
    CHECK(run_other_process(argv[0]) == 0, "another process was not refused");
    TEST_LOG("2: another process is refused too");

    /* 3: freed; the last record torn. */
    mqtt_client_free(c);
    c = NULL;
    CHECK(stat(LOG_FILE, &sb) == 0, "stat %s: %s", LOG_FILE, strerror(errno));
    CHECK(truncate(LOG_FILE, sb.st_size - 1) == 0, "truncate: %s", strerror(errno));
    TEST_LOG("3: the log cut from %ld to %ld bytes", (long)sb.st_size, (long)sb.st_size - 1);

    /* 4: the torn record is discarded with a log line; the others resent. */
    c = mqtt_client_new(opts);
    CHECK(c != NULL, "mqtt_client_new after the cut: %s", test_last_error());
    CHECK_RC(mqtt_set_log_callback(c, on_log, &st, NULL, MQTT5C_LOG_WARNING), MQTT5C_OK);
    CHECK(sync_wait_count(&st.s, &st.torn_lines, 1, 20), "no log line about the torn record");
    CHECK_RC(mqtt_set_message_callback(c, on_message, &st), MQTT5C_OK);
    CHECK_RC(mqtt_connect(c, url), 0);
    CHECK(sync_wait_count(&st.s, &st.done, 1, 20), "the broker did not get the resends");
    CHECK_RC(mqtt_disconnect(c, 0, NULL), MQTT5C_OK);
    TEST_LOG("4: the two whole records resent, the torn one skipped with a log line");

cleanup:
    mqtt_client_free(c);
    mqtt_options_free(opts);
    sync_destroy(&st.s);
    return test_failed;
}

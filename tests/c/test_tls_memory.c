/*
 * Issue 13 through the C API (under valgrind in `make test`): TLS material
 * from PEM buffers, the external signer's callback, and proxy settings.
 * The driver's TLS listeners (// needs: tls) and certificates are used:
 *   - CA, client chain and key as buffers (not NUL-terminated) connect to
 *     the require_certificate listener; bad buffers are refused when set;
 *   - a signer callback that fails, and one that "signs" with garbage,
 *     both give MQTT5C_ERR_TLS with a text naming the cause; user_data
 *     reaches the callback; bad signer arguments are refused; a signer
 *     that frees its own client inside its mqtt_connect: that call
 *     returns, the client is freed as it does;
 *   - malformed proxy URLs are refused without echoing the password, and
 *     a proxy nobody listens on gives MQTT5C_ERR_IO naming the proxy.
 * (Signing for real, per key type, is tests/tls_signer.rs.)
 */
// needs: tls
#include "test_common.h"

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n = -1;
    if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n)) && fread(buf, 1, (size_t)n, f) == (size_t)n)
        *len = (size_t)n;
    else {
        free(buf);
        buf = NULL;
    }
    if (f)
        fclose(f);
    return buf;
}

struct signer {
    int calls;
    int fail;             /* return this when non-zero; else write garbage */
    mqtt_client *victim;  /* freed by the callback when set (its own client) */
    int disconnect_rc;    /* what mqtt_disconnect on it returned */
    int victim_signs;     /* after freeing the victim, sign (garbage) all the same */
};

static int sign(void *user_data, uint16_t scheme, const void *message, size_t message_len,
                void *signature, size_t *signature_len) {
    struct signer *s = user_data;
    __atomic_fetch_add(&s->calls, 1, __ATOMIC_SEQ_CST);
    if (scheme != 0x0403 || !message || message_len == 0 || *signature_len < 72)
        return -100;
    if (s->victim) {
        /* Its own client: refused at once (it would wait for this
         * handshake), then freed; that client's mqtt_connect returns. */
        s->disconnect_rc = mqtt_disconnect(s->victim, 0, NULL);
        mqtt_client_free(s->victim);
        s->victim = NULL;
        if (!s->victim_signs)
            return -1;
    } else if (s->fail)
        return s->fail;
    /* A well-formed DER ECDSA signature (r = s = 1) that verifies nothing. */
    static const unsigned char bogus[] = {0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01};
    memcpy(signature, bogus, sizeof bogus);
    *signature_len = sizeof bogus;
    return 0;
}

/* Connects a client made from `o` to `url`; returns mqtt_connect's code. */
static int try_connect(mqtt_options *o, const char *url) {
    mqtt_client *c = mqtt_client_new(o);
    if (!c)
        return -1000;
    int rc = mqtt_connect(c, url);
    if (rc == MQTT5C_OK)
        mqtt_disconnect(c, 0, NULL);
    mqtt_client_free(c);
    return rc;
}

int main(void) {
    char url[128], proxied[128];
    size_t ca_len = 0, cert_len = 0, key_len = 0;
    char *ca = slurp(getenv("MQTT_TEST_CAFILE"), &ca_len);
    char *cert = slurp(getenv("MQTT_TEST_CLIENT_CERT"), &cert_len);
    char *key = slurp(getenv("MQTT_TEST_CLIENT_KEY"), &key_len);
    mqtt_options *o = mqtt_options_new();
    struct signer s = {0, -7, NULL, 0, 0};
    CHECK(ca && cert && key && o, "test files or options");
    snprintf(url, sizeof url, "mqtts://127.0.0.1:%s", getenv("MQTT_TEST_MTLS_PORT"));

    /* PEM buffers: bad ones refused with the file variants' texts. */
    CHECK_RC(mqtt_options_set_tls_ca_pem(o, "junk", 4), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK(strstr(test_last_error(), "no PEM certificate"), "%s", test_last_error());
    CHECK_RC(mqtt_options_set_tls_ca_pem(o, NULL, 3), MQTT5C_OK); /* system store again */
    CHECK_RC(mqtt_options_set_tls_client_cert_pem(o, cert, cert_len, "junk", 4),
             MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK(strstr(test_last_error(), "no private key"), "%s", test_last_error());
    CHECK_RC(mqtt_options_set_tls_client_cert_pem(o, cert, cert_len, NULL, 0),
             MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK(strstr(test_last_error(), "key_pem is NULL"), "%s", test_last_error());
    CHECK_RC(mqtt_options_set_tls_ca_pem(o, ca, ca_len), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_tls_client_cert_pem(o, cert, cert_len, key, key_len), MQTT5C_OK);
    memset(key, 0, key_len);
    CHECK_RC(try_connect(o, url), MQTT5C_OK);
    TEST_LOG("mutual TLS from PEM buffers: connected");

    /* The signer: failing, then signing garbage. */
    CHECK_RC(mqtt_options_set_tls_client_signer(o, cert, cert_len, 99, sign, &s),
             MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK_RC(mqtt_options_set_tls_client_signer(o, cert, cert_len, MQTT_TLS_KEY_RSA, sign, &s),
             MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK(strstr(test_last_error(), "not an RSA key"), "%s", test_last_error());
    CHECK_RC(mqtt_options_set_tls_client_signer(o, cert, cert_len, MQTT_TLS_KEY_ECDSA_P256, NULL,
                                                &s),
             MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK_RC(mqtt_options_set_tls_client_signer(o, NULL, 0, MQTT_TLS_KEY_ECDSA_P256, sign, &s),
             MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK_RC(mqtt_options_set_tls_client_signer(o, cert, cert_len, MQTT_TLS_KEY_ECDSA_P256, sign,
                                                &s),
             MQTT5C_OK);
    CHECK_RC(try_connect(o, url), MQTT5C_ERR_TLS);
    CHECK(strstr(test_last_error(), "client signer callback failed") &&
              strstr(test_last_error(), "returned -7"),
          "%s", test_last_error());
    CHECK(s.calls == 1, "calls %d", s.calls);
    TEST_LOG("failing signer: %s", test_last_error());
    s.fail = 0;
    CHECK_RC(try_connect(o, url), MQTT5C_ERR_TLS);
    CHECK(strstr(test_last_error(), "could not verify a signature"), "%s", test_last_error());
    CHECK(s.calls == 2, "calls %d", s.calls);
    TEST_LOG("wrong signature: %s", test_last_error());
    /* A signer that frees its own client inside that client's mqtt_connect
     * (the header allows a callback to free its client): the connect
     * returns MQTT5C_ERR_BAD_STATE (the client was freed; 4ef52b7), and the
     * client is freed as it does (valgrind checks); whether the signer
     * then fails or signs all the same. */
    for (int signs = 0; signs < 2; signs++) {
        mqtt_client *victim = mqtt_client_new(o);
        CHECK(victim, "client");
        int calls = s.calls;
        s.victim = victim;
        s.victim_signs = signs;
        int rc = mqtt_connect(victim, url); /* victim is freed from here on */
        CHECK(rc == MQTT5C_ERR_BAD_STATE, "signs %d: rc %d: %s", signs, rc, test_last_error());
        CHECK(s.victim == NULL && s.calls == calls + 1, "calls %d", s.calls);
        CHECK(s.disconnect_rc == MQTT5C_ERR_INVALID_ARGUMENT, "disconnect from the signer: %d",
              s.disconnect_rc);
        TEST_LOG("signer freeing its client (signs %d): connect %d", signs, rc);
    }
    CHECK_RC(mqtt_options_set_tls_client_cert(o, NULL, NULL), MQTT5C_OK); /* removes the signer */

    /* Proxies. */
    CHECK_RC(mqtt_options_set_proxy(o, "ftp://user:pw-SECRET@proxy:21"),
             MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK(strstr(test_last_error(), "unknown scheme") && !strstr(test_last_error(), "SECRET"),
          "%s", test_last_error());
    CHECK_RC(mqtt_options_set_proxy(o, "http://proxy:0"), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK_RC(mqtt_options_set_proxy(NULL, "http://proxy:1"), MQTT5C_ERR_INVALID_ARGUMENT);
    CHECK_RC(mqtt_options_set_proxy_from_env(o, false), MQTT5C_OK);
    CHECK_RC(mqtt_options_set_proxy(o, "socks5h://user:pw-SECRET@127.0.0.1:1"), MQTT5C_OK);
    snprintf(proxied, sizeof proxied, "mqtt://127.0.0.1:%s", getenv("MQTT_TEST_TLS_PORT"));
    CHECK_RC(try_connect(o, proxied), MQTT5C_ERR_IO);
    CHECK(strstr(test_last_error(), "proxy 127.0.0.1:1: cannot connect") &&
              !strstr(test_last_error(), "SECRET"),
          "%s", test_last_error());
    TEST_LOG("no proxy listening: %s", test_last_error());
    CHECK_RC(mqtt_options_set_proxy(o, NULL), MQTT5C_OK);

cleanup:
    mqtt_options_free(o);
    free(ca);
    free(cert);
    free(key);
    return test_failed ? 1 : 0;
}

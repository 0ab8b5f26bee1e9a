/*
 * tls_pem: mutual TLS with the CA, the client certificate and its key
 * given as PEM buffers (a device that keeps them in flash, not in files),
 * then publish one QoS 1 message.
 *
 *   tls_pem mqtts://broker:8883 ca.pem client.pem client.key topic message
 *
 * The files here only stand in for the device's storage: the library sees
 * buffers. Each buffer is checked when set (like the file variants), and
 * the decoded key is wiped before the setter returns; the application
 * wipes its own copy. Exit status: 0 published, 1 error, 2 usage.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <mqtt5c.h>

/* The whole file in a malloc'd buffer; *len its size. NULL on error. */
static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;
    if (!f || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0 ||
        !(buf = malloc((size_t)n + 1)) || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        perror(path);
        free(buf);
        buf = NULL;
    } else {
        *len = (size_t)n;
    }
    if (f)
        fclose(f);
    return buf;
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: %s url ca.pem client.pem client.key topic message\n", argv[0]);
        return 2;
    }
    size_t ca_len = 0, cert_len = 0, key_len = 0;
    char *ca = slurp(argv[2], &ca_len), *cert = slurp(argv[3], &cert_len);
    char *key = slurp(argv[4], &key_len);
    mqtt_options *o = mqtt_options_new();
    mqtt_client *c = NULL;
    int status = 1, rc;
    if (!ca || !cert || !key || !o)
        goto cleanup;
    if (!MQTT5C_SUCCEEDED(mqtt_options_set_tls_ca_pem(o, ca, ca_len)) ||
        !MQTT5C_SUCCEEDED(mqtt_options_set_tls_client_cert_pem(o, cert, cert_len, key, key_len))) {
        fprintf(stderr, "TLS material: %s\n", mqtt_last_error());
        goto cleanup;
    }
    memset(key, 0, key_len); /* our copy of the key: the library keeps none */
    if (!(c = mqtt_client_new(o)))
        goto cleanup;
    if (!MQTT5C_SUCCEEDED(rc = mqtt_connect(c, argv[1]))) {
        fprintf(stderr, "connect: %s: %s\n", mqtt_strerror(rc), mqtt_last_error());
        goto cleanup;
    }
    rc = mqtt_publish(c, argv[5], argv[6], strlen(argv[6]), 1, false, NULL);
    if (MQTT5C_SUCCEEDED(rc))
        status = 0;
    else
        fprintf(stderr, "publish: %s: %s\n", mqtt_strerror(rc), mqtt_last_error());
    mqtt_disconnect(c, 0, NULL);
cleanup:
    mqtt_client_free(c);
    mqtt_options_free(o);
    if (key)
        memset(key, 0, key_len);
    free(ca);
    free(cert);
    free(key);
    return status;
}

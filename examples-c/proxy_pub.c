/*
 * proxy_pub: publish one QoS 1 message through an HTTP CONNECT or SOCKS5
 * proxy (a gateway behind a corporate proxy).
 *
 *   proxy_pub broker_url proxy_url topic message
 *   proxy_pub mqtts://broker.example:8883 http://user:pass@proxy:3128 t hi
 *   proxy_pub mqtt://broker.example socks5h://proxy:1080 t hi
 *   proxy_pub mqtt://broker.example env t hi   (ALL_PROXY, HTTPS_PROXY, NO_PROXY)
 *
 * TLS runs end to end through the tunnel: the broker's certificate is
 * verified (system trust store here), the proxy only carries bytes.
 * Exit status: 0 published, 1 error, 2 usage.
 */
#include <stdio.h>
#include <string.h>
#include <mqtt5c.h>

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s broker_url proxy_url|env topic message\n", argv[0]);
        return 2;
    }
    const char *url = argv[1], *proxy = argv[2], *topic = argv[3], *msg = argv[4];
    int status = 1, rc;
    mqtt_client *c = NULL;
    mqtt_options *o = mqtt_options_new();
    if (!o)
        return 1;
    /* The environment is read only when asked; an explicit proxy wins. */
    rc = strcmp(proxy, "env") == 0 ? mqtt_options_set_proxy_from_env(o, true)
                                   : mqtt_options_set_proxy(o, proxy);
    if (!MQTT5C_SUCCEEDED(rc)) {
        fprintf(stderr, "proxy: %s\n", mqtt_last_error());
        goto cleanup;
    }
    c = mqtt_client_new(o);
    if (!c)
        goto cleanup;
    /* A refusing proxy, missing or wrong proxy credentials, an answer that
     * is not the proxy's protocol: MQTT5C_ERR_IO, "proxy HOST:PORT: ...". */
    if (!MQTT5C_SUCCEEDED(rc = mqtt_connect(c, url))) {
        fprintf(stderr, "connect: %s: %s\n", mqtt_strerror(rc), mqtt_last_error());
        goto cleanup;
    }
    if (!MQTT5C_SUCCEEDED(rc = mqtt_publish(c, topic, msg, strlen(msg), 1, false, NULL)))
        fprintf(stderr, "publish: %s: %s\n", mqtt_strerror(rc), mqtt_last_error());
    else
        status = 0;
    mqtt_disconnect(c, 0, NULL);
cleanup:
    mqtt_client_free(c);
    mqtt_options_free(o); /* wipes the proxy password */
    return status;
}

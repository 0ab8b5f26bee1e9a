/*
 * tls_signer: mutual TLS where the private key never enters libmqtt5c:
 * the library asks a callback to sign during the handshake, and the
 * callback signs with the key where it lives. Here that is OpenSSL with a
 * key file standing in for the hardware; with a TPM or a PKCS#11 token the
 * same callback would use its provider (for example an OSSL_STORE
 * "pkcs11:..." URI) or the token's own API. Publishes one QoS 1 message.
 *
 *   tls_signer mqtts://broker:8883 ca.pem client.pem client.key topic message
 *
 * link: -lcrypto
 * Exit status: 0 published, 1 error, 2 usage.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <mqtt5c.h>

/* Signs `message` with the scheme asked for (see mqtt_tls_sign_cb: the
 * data, not its hash; ECDSA in DER; RSA-PSS with salt = hash length). Runs
 * on a library thread during the handshake and may block. */
static int sign(void *user_data, uint16_t scheme, const void *message, size_t message_len,
                void *signature, size_t *signature_len) {
    EVP_PKEY *key = user_data;
    const EVP_MD *md;
    switch (scheme) {
    case 0x0403: case 0x0804: case 0x0401: md = EVP_sha256(); break;
    case 0x0503: case 0x0805: case 0x0501: md = EVP_sha384(); break;
    case 0x0806: case 0x0601: md = EVP_sha512(); break;
    case 0x0807: md = NULL; break; /* Ed25519 hashes itself */
    default: return -1;
    }
    int pss = scheme >= 0x0804 && scheme <= 0x0806;
    EVP_PKEY_CTX *pctx = NULL;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestSignInit(ctx, &pctx, md, NULL, key) == 1;
    if (ok && pss)
        ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1;
    /* On entry *signature_len is the buffer's size: OpenSSL checks it. */
    ok = ok && EVP_DigestSign(ctx, signature, signature_len, message, message_len) == 1;
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : -1;
}

/* The MQTT_TLS_KEY_* of `key`, or 0. */
static int key_type(EVP_PKEY *key) {
    switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA: return MQTT_TLS_KEY_RSA;
    case EVP_PKEY_ED25519: return MQTT_TLS_KEY_ED25519;
    case EVP_PKEY_EC:
        return EVP_PKEY_get_bits(key) == 256   ? MQTT_TLS_KEY_ECDSA_P256
               : EVP_PKEY_get_bits(key) == 384 ? MQTT_TLS_KEY_ECDSA_P384
                                               : 0;
    default: return 0;
    }
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: %s url ca.pem client.pem client.key topic message\n", argv[0]);
        return 2;
    }
    int status = 1, rc;
    char chain[16384];
    size_t chain_len = 0;
    EVP_PKEY *key = NULL;
    mqtt_client *c = NULL;
    mqtt_options *o = mqtt_options_new();
    FILE *f = fopen(argv[3], "rb");
    if (f) {
        chain_len = fread(chain, 1, sizeof chain, f);
        fclose(f);
    }
    if ((f = fopen(argv[4], "rb"))) {
        key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        fclose(f);
    }
    if (!o || chain_len == 0 || !key) {
        fprintf(stderr, "cannot read %s or %s\n", argv[3], argv[4]);
        goto cleanup;
    }
    /* `key` must outlive the options and every client made from them. */
    if (!MQTT5C_SUCCEEDED(mqtt_options_set_tls_ca_file(o, argv[2])) ||
        !MQTT5C_SUCCEEDED(
            mqtt_options_set_tls_client_signer(o, chain, chain_len, key_type(key), sign, key))) {
        fprintf(stderr, "TLS setup: %s\n", mqtt_last_error());
        goto cleanup;
    }
    if (!(c = mqtt_client_new(o)))
        goto cleanup;
    /* A callback that fails or signs wrongly: MQTT5C_ERR_TLS, with the
     * reason in mqtt_last_error(). */
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
    mqtt_client_free(c); /* no callback runs after this returns */
    mqtt_options_free(o);
    EVP_PKEY_free(key);
    return status;
}

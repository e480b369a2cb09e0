/* metasync-sim over TLS (--tls-cert, --tls-key, --tls-client-ca): loads the PEM files, builds the
 * daemon options, and makes a client certificate mandatory when a client CA is given.
 * libmicrohttpd only *requests* a client certificate when given a trust list, so a client
 * without one would get through; we tighten that on each new connection (before its handshake)
 * and check the verified peer again before answering. */
#include "sim.h"

#include <errno.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* PEM files for one certificate chain or key are a few KiB; refuse anything absurd. */
#define MAX_PEM ((size_t)1 << 20)

static char *read_pem(const char *what, const char *path)
{
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "metasync-sim: %s %s: cannot read: %s\n", what, path, strerror(errno));
    return NULL;
  }
  char *buf = malloc(MAX_PEM + 1);
  size_t n = buf ? fread(buf, 1, MAX_PEM + 1, f) : 0;
  int err = ferror(f) ? errno : 0;
  fclose(f);
  const char *why = NULL;
  if (!buf)
    why = "out of memory";
  else if (err)
    why = err == EISDIR ? "is a directory" : strerror(err);
  else if (n == 0)
    why = "file is empty";
  else if (n > MAX_PEM)
    why = "larger than 1 MiB";
  if (!why) {
    buf[n] = '\0';
    if (memchr(buf, 0, n) || !strstr(buf, "-----BEGIN "))
      why = "not a PEM file";
  }
  if (why) {
    fprintf(stderr, "metasync-sim: %s %s: %s\n", what, path, why);
    free(buf);
    return NULL;
  }
  return buf;
}

int sim_tls_load(struct sim_tls *t, const char *cert, const char *key, const char *client_ca)
{
  memset(t, 0, sizeof *t);
  if (!cert && !key && !client_ca)
    return 0;
  if (!cert || !key) {
    fprintf(stderr, "metasync-sim: TLS needs both --tls-cert and --tls-key\n");
    return 64;
  }
  if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
    fprintf(stderr, "metasync-sim: this libmicrohttpd was built without TLS support\n");
    return 69;
  }
  t->cert = read_pem("--tls-cert", cert);
  t->key = t->cert ? read_pem("--tls-key", key) : NULL;
  t->client_ca = t->key && client_ca ? read_pem("--tls-client-ca", client_ca) : NULL;
  if (!t->cert || !t->key || (client_ca && !t->client_ca)) {
    sim_tls_free(t);
    return 66;
  }
  t->on = true;
  return 0;
}

void sim_tls_free(struct sim_tls *t)
{
  free(t->cert);
  if (t->key) /* the private key does not linger in freed memory */
    memset(t->key, 0, strlen(t->key));
  free(t->key);
  free(t->client_ca);
  memset(t, 0, sizeof *t);
}

/* MHD_OPTION_NOTIFY_CONNECTION: runs when a connection is accepted, after MHD set up its TLS
 * session (asking for, not requiring, a client certificate) and before the handshake. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
  (void)cls, (void)socket_context;
  if (code != MHD_CONNECTION_NOTIFY_STARTED)
    return;
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
  if (!ci || !ci->tls_session)
    return;
  gnutls_session_t s = ci->tls_session;
  gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUIRE);
  /* The handshake itself then fails for a certificate the trust list does not vouch for. */
  gnutls_session_set_verify_cert(s, NULL, 0);
}

size_t sim_tls_options(const struct sim_tls *t, struct MHD_OptionItem *out, size_t max)
{
  size_t n = 0;
  /* The list is always terminated: the caller hands it to MHD_OPTION_ARRAY either way. */
  if (max > 0)
    out[0] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
  if (!t->on || max < 5)
    return 0;
  out[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, t->cert};
  out[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, t->key};
  if (t->client_ca) {
    out[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0, t->client_ca};
    out[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, NULL};
  }
  out[n] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
  return n;
}

bool sim_tls_peer_ok(const struct sim_tls *t, struct MHD_Connection *conn)
{
  if (!t->on || !t->client_ca)
    return true;
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
  unsigned status = 0;
  if (!ci || !ci->tls_session ||
      gnutls_certificate_verify_peers2((gnutls_session_t)ci->tls_session, &status) != 0)
    return false;
  return status == 0;
}

/* Masking of credentials in everything metasync shows: log records (every sink), log.redact,
 * the REPL printer and error reports. The registry of secret values is process-wide, like the
 * log: one engine, one thread. */
#ifndef METASYNC_REDACT_H
#define METASYNC_REDACT_H

#include <stddef.h>
#include <stdio.h>

/* Values shorter than this are not registered: masking every "ab" or "x" would shred every
 * line and, worse, show the secret to anyone who looks where the "***" land. Such a password is
 * still masked where it is labelled ("password=x"), by the keyword rule. */
#define MSLOG_SECRET_MIN 4

/* Registers a secret value: from now on every occurrence of it in redacted text becomes "***".
 * Also registers the forms it takes inside a JSON string and URL-encoded, and for "Basic X" or
 * "Bearer X" the credential X on its own. Returns 1 when registered (or already known), 0 when
 * ignored as shorter than MSLOG_SECRET_MIN bytes, -1 when out of memory. */
int mslog_add_secret(const char *s, size_t n);

/* Forgets every registered secret (tests only: a running engine never unlearns a secret). */
void mslog_clear_secrets(void);

/* s[0..n) with registered secrets and the values after credential keywords ("password=...",
 * "Authorization: ...", see redact.c) replaced by "***". Returns 0 when nothing needed masking
 * (use s as it is), 1 with *out a malloc'd NUL-terminated copy of *outn bytes (the caller frees
 * it), -1 when out of memory (then show nothing of s). */
int mslog_redact(const char *s, size_t n, char **out, size_t *outn);

/* fwrite of s[0..n) redacted; when out of memory a placeholder is written instead of s. */
void mslog_fwrite_redacted(FILE *f, const char *s, size_t n);

/* Does a table key name a credential? Case-insensitive: it contains "password", "passwd",
 * "secret", "authorization", "apikey", "api_key" or "api-key", or it ends in "token" (so
 * "access_token" and "accessToken" count, "tokenUrl" does not). */
int mslog_secret_key(const char *k, size_t n);

#endif

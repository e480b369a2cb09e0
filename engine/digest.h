/* A keyed digest of a set of (name, value) pairs of text, shared by the SQL function
 * pairs_digest (engine/digest.c) and metasync.unchanged (engine/unchanged.c), which must
 * compute the same number from the same pairs.
 *
 * Each pair is hashed on its own, with a key, and the set's digest is the XOR of its pairs'
 * hashes, so neither side needs the pairs in any order (SQLite hands an aggregate its rows in
 * whatever order the plan reads them). A set holds each name once (the caller's rows are
 * keyed by name), so no pair cancels itself. The empty set's digest is 0.
 *
 * Why keyed: the pairs are values from API responses. The key is random per state file, so
 * nobody can craft values whose digests collide without reading that file; a collision could
 * only make a run take a baseline as already holding values that both sides already agree on.
 * This is not a cryptographic MAC, only one that cannot be aimed without the key. */
#ifndef METASYNC_DIGEST_H
#define METASYNC_DIGEST_H

#include <stddef.h>
#include <stdint.h>

static inline uint64_t digest_mix(uint64_t h) {
  /* a 64-bit finaliser: every input bit reaches every output bit */
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

static inline uint64_t digest_bytes(uint64_t h, const void *p, size_t n) {
  const unsigned char *s = p;
  /* the length first, so that ("ab", "c") and ("a", "bc") differ */
  h = digest_mix(h ^ (uint64_t)n);
  for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 0x100000001b3ULL;
  return h;
}

/* The hash of one pair under key. */
static inline uint64_t digest_pair(uint64_t key, const char *name, size_t nn, const char *value,
                                   size_t nv) {
  uint64_t h = digest_mix(key ^ 0x9e3779b97f4a7c15ULL);
  h = digest_bytes(h, name, nn);
  h = digest_bytes(h, value, nv);
  return digest_mix(h);
}

#ifdef SQLITE_API
/* Registers pairs_digest(key, name, value[, names]) on db: the aggregate digest of the rows'
 * pairs under key (an integer); a row whose name or value is NULL adds nothing, nor, with
 * names (each name followed by a NUL byte), a row whose name is not listed. */
int digest_register(sqlite3 *db);
#endif

#endif

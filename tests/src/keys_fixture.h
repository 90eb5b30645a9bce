/*
 * keys_fixture.h - a store, writer, local KMS and keyring in a temporary
 * directory, shared by the keyring and secrets suites (tests/src/test_keyring.c
 * defines the functions).
 */
#ifndef SV_TESTS_KEYS_FIXTURE_H
#define SV_TESTS_KEYS_FIXTURE_H

#include "src/keyring.h"
#include "src/kms.h"
#include "store/env.h"
#include "wal/writer.h"

typedef struct {
    char *dir;
    sv_config_t cfg;
    sv_store_t *st;
    sv_writer_t *w;
    sv_kms_t *kms;
    sv_keyring_t *kr;
    sv_store_reader_t *reader;
} keys_fixture_t;

/** Sets everything up; ttl_ms and max_keys for the keyring (0: defaults). */
void keys_fixture_setup(keys_fixture_t *f, int64_t ttl_ms, unsigned max_keys);
void keys_fixture_teardown(keys_fixture_t *f);

/** Runs fn(tx, arg) as one writer unit and returns its result. */
sv_err_t keys_fixture_unit(keys_fixture_t *f, sv_err_t (*fn)(sv_wtxn_t *tx, void *arg), void *arg);

/** Creates, stores and caches o's data key (the first-write path); the key
 * returned is pinned. */
sv_dkey_t *keys_fixture_new_key(keys_fixture_t *f, const sv_owner_t *o);

/** Reads o's stored record into *rec. */
sv_err_t keys_fixture_read(keys_fixture_t *f, const sv_owner_t *o, sv_keyrec_t *rec);

#endif

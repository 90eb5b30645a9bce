/* tests/src/test_keyring.c - tenant data keys: stored records, the cache of
 * unwrapped keys, races and crypto-shredding (src/keyring.c). Also defines
 * the fixture of keys_fixture.h. */
#include "sv_autoconf.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "store/migrate.h"
#include "tests/src/keys_fixture.h"
#include "tests/unit.h"

/* ---- the fixture ---- */

void keys_fixture_setup(keys_fixture_t *f, int64_t ttl_ms, unsigned max_keys)
{
    memset(f, 0, sizeof(*f));
    CU_ASSERT_FATAL(sv_test_store_open("keys", 64 << 20, 32, &f->dir, &f->st, &f->w));
    f->cfg.kms_provider = SV_KMS_LOCAL;
    f->cfg.data_dir = f->dir;
    char msg[512];
    CU_ASSERT_EQUAL_FATAL(sv_kms_open(&f->cfg, &f->kms, msg, sizeof(msg)), SV_OK);
    sv_keyring_opts_t ko = {.ttl_ms = ttl_ms, .max_keys = max_keys};
    CU_ASSERT_EQUAL_FATAL(sv_keyring_new(f->kms, &ko, &f->kr), SV_OK);
    CU_ASSERT_EQUAL_FATAL(sv_store_reader_new(f->st, &f->reader), SV_OK);
}

void keys_fixture_teardown(keys_fixture_t *f)
{
    sv_store_reader_free(f->reader);
    sv_keyring_free(f->kr);
    sv_kms_close(f->kms);
    sv_test_store_close(f->dir, f->st, f->w);
}

sv_err_t keys_fixture_unit(keys_fixture_t *f, sv_err_t (*fn)(sv_wtxn_t *tx, void *arg), void *arg)
{
    return sv_test_in_writer(f->w, fn, arg);
}

typedef struct {
    const sv_owner_t *o;
    const sv_dkey_t *k;
    const sv_keyrec_t *insert;
} use_args_t;

static sv_err_t apply_use(sv_wtxn_t *tx, void *arg)
{
    use_args_t *a = arg;
    return sv_keyring_apply_use(tx, a->o, a->k, a->insert);
}

static sv_err_t apply_shred(sv_wtxn_t *tx, void *arg)
{
    return sv_keyring_apply_shred(tx, arg);
}

static sv_err_t apply_forget(sv_wtxn_t *tx, void *arg)
{
    return sv_keyring_apply_forget(tx, arg);
}

static sv_err_t use_key(keys_fixture_t *f, const sv_owner_t *o, const sv_dkey_t *k, const sv_keyrec_t *insert)
{
    use_args_t a = {o, k, insert};
    return keys_fixture_unit(f, apply_use, &a);
}

sv_dkey_t *keys_fixture_new_key(keys_fixture_t *f, const sv_owner_t *o)
{
    sv_keyrec_t rec;
    sv_dkey_t *k = NULL;
    CU_ASSERT_EQUAL_FATAL(sv_keyring_create(f->kr, o, sv_keyring_epoch(f->kr), &rec, &k, NULL, NULL), SV_OK);
    CU_ASSERT_EQUAL_FATAL(use_key(f, o, NULL, &rec), SV_OK);
    return sv_keyring_install(f->kr, k);
}

sv_err_t keys_fixture_read(keys_fixture_t *f, const sv_owner_t *o, sv_keyrec_t *rec)
{
    sv_txn_t *tx;
    sv_err_t err = sv_store_read_begin(f->reader, &tx);
    if (err == SV_OK) {
        err = sv_keyring_read(tx, o, rec);
        sv_store_read_end(f->reader);
    }
    return err;
}

static sv_owner_t tenant(const char *id)
{
    sv_owner_t o;
    CU_ASSERT_FATAL(sv_owner_tenant(&o, id, strlen(id)));
    return o;
}

static unsigned cached(keys_fixture_t *f)
{
    sv_keyring_stats_t s;
    sv_keyring_stats(f->kr, &s);
    return s.cached;
}

/* ---- tests ---- */

static void test_owners(void)
{
    sv_owner_t o;
    CU_ASSERT_TRUE(sv_owner_tenant(&o, "tnt_x", 5));
    CU_ASSERT_STRING_EQUAL(o.id, "tnt_x");
    CU_ASSERT_FALSE(sv_owner_is_partner(&o));
    CU_ASSERT_FALSE(sv_owner_tenant(&o, "a:b", 3));
    CU_ASSERT_FALSE(sv_owner_tenant(&o, "", 0));
    CU_ASSERT_TRUE(sv_owner_partner(&o, "acme", 4));
    CU_ASSERT_STRING_EQUAL(o.id, "partner:acme");
    CU_ASSERT_EQUAL(o.len, 12);
    CU_ASSERT_TRUE(sv_owner_is_partner(&o));
    CU_ASSERT_FALSE(sv_owner_partner(&o, "ac me", 5));
    char id63[64];
    memset(id63, 'p', 63);
    CU_ASSERT_TRUE(sv_owner_partner(&o, id63, 63));
    CU_ASSERT(o.len < SV_OWNER_MAX);
}

static void test_create_store_load(void)
{
    keys_fixture_t f;
    keys_fixture_setup(&f, 0, 0);
    sv_owner_t o = tenant("tA");
    sv_dkey_t *k = keys_fixture_new_key(&f, &o);
    CU_ASSERT_EQUAL(sv_dkey_id(k), 1);
    uint8_t bytes[32];
    memcpy(bytes, sv_dkey_bytes(k), 32);
    sv_dkey_t *hit = sv_keyring_lookup(f.kr, &o, 1);
    CU_ASSERT_PTR_EQUAL(hit, k);
    sv_keyring_release(f.kr, hit);
    sv_keyring_release(f.kr, k);
    CU_ASSERT_PTR_NULL(sv_keyring_lookup(f.kr, &o, 2));

    sv_keyrec_t rec;
    CU_ASSERT_EQUAL_FATAL(keys_fixture_read(&f, &o, &rec), SV_OK);
    CU_ASSERT_EQUAL(rec.state, SV_KEYREC_ACTIVE);
    CU_ASSERT_EQUAL(rec.key_id, 1);
    CU_ASSERT_STRING_EQUAL(rec.kms_key_id, sv_kms_key_id(f.kms));
    CU_ASSERT(rec.wrapped_len > 32);
    CU_ASSERT_PTR_NULL(memmem(rec.wrapped, rec.wrapped_len, bytes, 8));

    /* a cold keyring (a restart) unwraps the record to the same key */
    sv_keyring_t *kr2;
    sv_keyring_opts_t ko = {0};
    CU_ASSERT_EQUAL_FATAL(sv_keyring_new(f.kms, &ko, &kr2), SV_OK);
    CU_ASSERT_PTR_NULL(sv_keyring_lookup(kr2, &o, 1));
    sv_dkey_t *loaded = NULL;
    CU_ASSERT_EQUAL(sv_keyring_load(kr2, &o, &rec, sv_keyring_epoch(kr2), &loaded, NULL, NULL), SV_OK);
    CU_ASSERT_FATAL(loaded != NULL);
    CU_ASSERT(memcmp(sv_dkey_bytes(loaded), bytes, 32) == 0);
    sv_keyring_release(kr2, loaded);
    sv_dkey_t *again = sv_keyring_lookup(kr2, &o, 1);
    CU_ASSERT_PTR_NOT_NULL(again);
    sv_keyring_release(kr2, again);
    sv_keyring_stats_t s;
    sv_keyring_stats(kr2, &s);
    CU_ASSERT_EQUAL(s.hits, 1);
    CU_ASSERT_EQUAL(s.misses, 1);
    CU_ASSERT_EQUAL(s.loads, 1);
    CU_ASSERT_EQUAL(s.cached, 1);
    CU_ASSERT_EQUAL(sv_keyring_hits(kr2), 1);
    CU_ASSERT_EQUAL(sv_keyring_misses(kr2), 1);
    sv_keyring_free(kr2);
    memset(bytes, 0, sizeof(bytes));
    keys_fixture_teardown(&f);
}

/* Two first writes of one owner: the writer keeps the first key inserted;
 * the other is refused and never used. */
static void test_first_write_race(void)
{
    keys_fixture_t f;
    keys_fixture_setup(&f, 0, 0);
    sv_owner_t o = tenant("tR");
    sv_keyrec_t r1, r2;
    sv_dkey_t *k1, *k2;
    CU_ASSERT_EQUAL_FATAL(sv_keyring_create(f.kr, &o, 0, &r1, &k1, NULL, NULL), SV_OK);
    CU_ASSERT_EQUAL_FATAL(sv_keyring_create(f.kr, &o, 0, &r2, &k2, NULL, NULL), SV_OK);
    CU_ASSERT(memcmp(r1.uid, r2.uid, SV_DKEY_UID_BYTES) != 0);
    CU_ASSERT_EQUAL(use_key(&f, &o, NULL, &r1), SV_OK);
    CU_ASSERT_EQUAL(use_key(&f, &o, NULL, &r2), SV_ECONFLICT);
    CU_ASSERT_EQUAL(use_key(&f, &o, NULL, &r1), SV_OK); /* a replayed insert of the same key */
    CU_ASSERT_EQUAL(use_key(&f, &o, k1, NULL), SV_OK);
    CU_ASSERT_EQUAL(use_key(&f, &o, k2, NULL), SV_ECONFLICT);
    k1 = sv_keyring_install(f.kr, k1);
    sv_keyring_release(f.kr, k2); /* never cached: wiped now */
    CU_ASSERT_EQUAL(cached(&f), 1);
    sv_keyrec_t stored;
    CU_ASSERT_EQUAL(keys_fixture_read(&f, &o, &stored), SV_OK);
    CU_ASSERT(memcmp(stored.uid, r1.uid, SV_DKEY_UID_BYTES) == 0);
    sv_keyring_release(f.kr, k1);
    keys_fixture_teardown(&f);
}

/* A wrapped key is bound to its owner: copied to another, it does not unwrap. */
static void test_record_bound_to_owner(void)
{
    keys_fixture_t f;
    keys_fixture_setup(&f, 0, 0);
    sv_owner_t a = tenant("tX"), b = tenant("tY");
    sv_keyring_release(f.kr, keys_fixture_new_key(&f, &a));
    sv_keyrec_t rec;
    CU_ASSERT_EQUAL_FATAL(keys_fixture_read(&f, &a, &rec), SV_OK);
    sv_dkey_t *k = NULL;
    CU_ASSERT_EQUAL(sv_keyring_load(f.kr, &b, &rec, sv_keyring_epoch(f.kr), &k, NULL, NULL), SV_ECRYPTO);
    CU_ASSERT_PTR_NULL(k);
    CU_ASSERT_PTR_NULL(sv_keyring_lookup(f.kr, &b, 1));
    sv_keyring_stats_t s;
    sv_keyring_stats(f.kr, &s);
    CU_ASSERT_EQUAL(s.failures, 1);
    /* a changed key id does not unwrap either */
    rec.key_id = 2;
    CU_ASSERT_EQUAL(sv_keyring_load(f.kr, &a, &rec, sv_keyring_epoch(f.kr), &k, NULL, NULL), SV_ECRYPTO);
    keys_fixture_teardown(&f);
}

static void test_idle_keys_are_swept(void)
{
    keys_fixture_t f;
    keys_fixture_setup(&f, 50, 0);
    sv_owner_t a = tenant("tIdle"), b = tenant("tBusy");
    sv_keyring_release(f.kr, keys_fixture_new_key(&f, &a));
    sv_dkey_t *busy = keys_fixture_new_key(&f, &b); /* stays pinned */
    CU_ASSERT_EQUAL(cached(&f), 2);
    for (int i = 0; i < 200 && cached(&f) > 1; i++)
        usleep(20000);
    CU_ASSERT_EQUAL(cached(&f), 1);
    CU_ASSERT_PTR_NULL(sv_keyring_lookup(f.kr, &a, 1));
    /* the pinned one is still there and usable */
    sv_dkey_t *again = sv_keyring_lookup(f.kr, &b, 1);
    CU_ASSERT_PTR_EQUAL(again, busy);
    sv_keyring_release(f.kr, again);
    sv_keyring_release(f.kr, busy);
    for (int i = 0; i < 200 && cached(&f) > 0; i++)
        usleep(20000);
    CU_ASSERT_EQUAL(cached(&f), 0);
    keys_fixture_teardown(&f);
}

static void test_drop_and_epoch(void)
{
    keys_fixture_t f;
    keys_fixture_setup(&f, 0, 0);
    sv_owner_t o = tenant("tDrop"), other = tenant("tOther");
    sv_dkey_t *k = keys_fixture_new_key(&f, &o);
    uint8_t before[32];
    memcpy(before, sv_dkey_bytes(k), 32);
    uint64_t e0 = sv_keyring_epoch(f.kr);
    sv_keyring_drop(f.kr, &o);
    CU_ASSERT(sv_keyring_epoch(f.kr) > e0);
    CU_ASSERT_PTR_NULL(sv_keyring_lookup(f.kr, &o, 1));
    CU_ASSERT(memcmp(sv_dkey_bytes(k), before, 32) == 0); /* the pinned key is still usable */
    sv_keyring_release(f.kr, k);
    CU_ASSERT_EQUAL(cached(&f), 0);

    /* a load that began before a drop is used once but never cached */
    sv_keyrec_t rec;
    CU_ASSERT_EQUAL_FATAL(keys_fixture_read(&f, &o, &rec), SV_OK);
    uint64_t e1 = sv_keyring_epoch(f.kr);
    sv_keyring_drop(f.kr, &other);
    sv_dkey_t *loaded = NULL;
    CU_ASSERT_EQUAL(sv_keyring_load(f.kr, &o, &rec, e1, &loaded, NULL, NULL), SV_OK);
    CU_ASSERT_FATAL(loaded != NULL);
    CU_ASSERT(memcmp(sv_dkey_bytes(loaded), before, 32) == 0);
    CU_ASSERT_PTR_NULL(sv_keyring_lookup(f.kr, &o, 1));
    sv_keyring_release(f.kr, loaded);
    /* with the current epoch it is cached */
    CU_ASSERT_EQUAL(sv_keyring_load(f.kr, &o, &rec, sv_keyring_epoch(f.kr), &loaded, NULL, NULL), SV_OK);
    sv_keyring_release(f.kr, loaded);
    loaded = sv_keyring_lookup(f.kr, &o, 1);
    CU_ASSERT_PTR_NOT_NULL(loaded);
    sv_keyring_release(f.kr, loaded);
    keys_fixture_teardown(&f);
}

static void test_shred_and_forget(void)
{
    keys_fixture_t f;
    keys_fixture_setup(&f, 0, 0);
    sv_owner_t o = tenant("tShred");
    sv_dkey_t *k = keys_fixture_new_key(&f, &o);
    CU_ASSERT_EQUAL(keys_fixture_unit(&f, apply_shred, &o), SV_OK);
    sv_keyrec_t rec;
    CU_ASSERT_EQUAL_FATAL(keys_fixture_read(&f, &o, &rec), SV_OK);
    CU_ASSERT_EQUAL(rec.state, SV_KEYREC_SHREDDED);
    CU_ASSERT_EQUAL(rec.wrapped_len, 0);
    CU_ASSERT_EQUAL(keys_fixture_unit(&f, apply_shred, &o), SV_EDELETED);
    CU_ASSERT_EQUAL(use_key(&f, &o, k, NULL), SV_EDELETED);
    sv_dkey_t *l = NULL;
    CU_ASSERT_EQUAL(sv_keyring_load(f.kr, &o, &rec, 0, &l, NULL, NULL), SV_EINVAL);
    CU_ASSERT_EQUAL(keys_fixture_unit(&f, apply_forget, &o), SV_OK);
    CU_ASSERT_EQUAL(keys_fixture_read(&f, &o, &rec), SV_ENOTFOUND);
    CU_ASSERT_EQUAL(use_key(&f, &o, k, NULL), SV_ECONFLICT); /* gone: start again with a new key */
    CU_ASSERT_EQUAL(keys_fixture_unit(&f, apply_shred, &o), SV_ENOTFOUND);
    CU_ASSERT_EQUAL(keys_fixture_unit(&f, apply_forget, &o), SV_ENOTFOUND);
    sv_keyring_release(f.kr, k);
    keys_fixture_teardown(&f);
}

/* Keys share slabs; a full cache evicts the least recently used. */
static void create_cached(keys_fixture_t *f, int n, const char *prefix)
{
    for (int i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof(id), "%s%d", prefix, i);
        sv_owner_t o = tenant(id);
        sv_keyrec_t rec;
        sv_dkey_t *k;
        CU_ASSERT_EQUAL_FATAL(sv_keyring_create(f->kr, &o, sv_keyring_epoch(f->kr), &rec, &k, NULL, NULL), SV_OK);
        sv_keyring_release(f->kr, sv_keyring_install(f->kr, k));
    }
}

static void test_slabs_and_eviction(void)
{
    keys_fixture_t f;
    keys_fixture_setup(&f, 0, 0);
    create_cached(&f, 1100, "t");
    sv_keyring_stats_t s;
    sv_keyring_stats(f.kr, &s);
    CU_ASSERT_EQUAL(s.cached, 1100);
    CU_ASSERT_EQUAL(s.slabs, 2);
    keys_fixture_teardown(&f);

    keys_fixture_setup(&f, 0, 1024);
    create_cached(&f, 1100, "e");
    sv_keyring_stats(f.kr, &s);
    CU_ASSERT_EQUAL(s.cached, 1024);
    CU_ASSERT_EQUAL(s.slabs, 1);
    sv_owner_t newest = tenant("e1099"), oldest = tenant("e0");
    sv_dkey_t *k = sv_keyring_lookup(f.kr, &newest, 1);
    CU_ASSERT_PTR_NOT_NULL(k);
    sv_keyring_release(f.kr, k);
    CU_ASSERT_PTR_NULL(sv_keyring_lookup(f.kr, &oldest, 1));
    keys_fixture_teardown(&f);
}

/* A KMS that answers later, from another thread (SCAIVAULT_TEST_KMS_DELAY):
 * loads and creates return SV_EAGAIN and call back once. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    sv_err_t result;
    sv_dkey_t *key;
    pthread_t thread;
} waiter_t;

static void on_key(void *arg, sv_err_t result, sv_dkey_t *key)
{
    waiter_t *w = arg;
    pthread_mutex_lock(&w->mu);
    w->result = result;
    w->key = key;
    w->thread = pthread_self();
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void waiter_init(waiter_t *w)
{
    memset(w, 0, sizeof(*w));
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
}

static void waiter_wait(waiter_t *w)
{
    pthread_mutex_lock(&w->mu);
    while (!w->done)
        pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
}

static void test_async_kms(void)
{
    keys_fixture_t f;
    keys_fixture_setup(&f, 0, 0);
    sv_config_t c = f.cfg;
    c.test_faults = true;
    c.test_kms_delay_ms = 20;
    sv_kms_t *slow;
    char msg[256];
    CU_ASSERT_EQUAL_FATAL(sv_kms_open(&c, &slow, msg, sizeof(msg)), SV_OK);
    CU_ASSERT_EQUAL(sv_kms_check(slow), SV_OK); /* inline even then */
    sv_keyring_t *kr, *kr2;
    sv_keyring_opts_t ko = {0};
    CU_ASSERT_EQUAL_FATAL(sv_keyring_new(slow, &ko, &kr), SV_OK);
    CU_ASSERT_EQUAL_FATAL(sv_keyring_new(slow, &ko, &kr2), SV_OK);
    sv_owner_t o = tenant("tAsync"), other = tenant("tOther");

    waiter_t w;
    waiter_init(&w);
    sv_keyrec_t rec;
    sv_dkey_t *k = NULL;
    CU_ASSERT_EQUAL(sv_keyring_create(kr, &o, sv_keyring_epoch(kr), &rec, &k, on_key, &w), SV_EAGAIN);
    CU_ASSERT_PTR_NULL(k);
    waiter_wait(&w);
    CU_ASSERT_EQUAL(w.result, SV_OK);
    CU_ASSERT_FATAL(w.key != NULL);
    CU_ASSERT_FALSE(pthread_equal(w.thread, pthread_self()));
    CU_ASSERT_EQUAL(rec.state, SV_KEYREC_ACTIVE);
    CU_ASSERT_EQUAL(use_key(&f, &o, NULL, &rec), SV_OK);
    k = sv_keyring_install(kr, w.key);
    uint8_t bytes[32];
    memcpy(bytes, sv_dkey_bytes(k), 32);

    waiter_init(&w);
    sv_dkey_t *l = NULL;
    CU_ASSERT_EQUAL(sv_keyring_load(kr2, &o, &rec, sv_keyring_epoch(kr2), &l, on_key, &w), SV_EAGAIN);
    waiter_wait(&w);
    CU_ASSERT_EQUAL(w.result, SV_OK);
    CU_ASSERT_FATAL(w.key != NULL);
    CU_ASSERT(memcmp(sv_dkey_bytes(w.key), bytes, 32) == 0);
    sv_keyring_release(kr2, w.key);
    l = sv_keyring_lookup(kr2, &o, 1);
    CU_ASSERT_PTR_NOT_NULL(l);
    sv_keyring_release(kr2, l);

    /* a failure comes back the same way */
    waiter_init(&w);
    CU_ASSERT_EQUAL(sv_keyring_load(kr2, &other, &rec, sv_keyring_epoch(kr2), &l, on_key, &w), SV_EAGAIN);
    waiter_wait(&w);
    CU_ASSERT_EQUAL(w.result, SV_ECRYPTO);
    CU_ASSERT_PTR_NULL(w.key);

    sv_keyring_release(kr, k);
    sv_keyring_free(kr);
    sv_keyring_free(kr2);
    sv_kms_close(slow);
    keys_fixture_teardown(&f);
}

void sv_test_suite_keyring(void)
{
    SV_SUITE("src/keyring", {"owners", test_owners}, {"create_store_load", test_create_store_load},
             {"first_write_race", test_first_write_race}, {"record_bound_to_owner", test_record_bound_to_owner},
             {"idle_keys_are_swept", test_idle_keys_are_swept}, {"drop_and_epoch", test_drop_and_epoch},
             {"shred_and_forget", test_shred_and_forget}, {"slabs_and_eviction", test_slabs_and_eviction},
             {"async_kms", test_async_kms});
}

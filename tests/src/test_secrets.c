/* tests/src/test_secrets.c - the secrets domain (src/secrets.c): paths,
 * plaintext, sealing bound to tenant/path/version/key, changes, listing,
 * cursors and the bounded deletion of an owner. */
#include "sv_autoconf.h"

#include <stdlib.h>
#include <unistd.h>

#include "src/secrets.h"
#include "store/record.h"
#include "tests/src/keys_fixture.h"
#include "tests/unit.h"

static sv_owner_t tenant(const char *id)
{
    sv_owner_t o;
    CU_ASSERT_FATAL(sv_owner_tenant(&o, id, strlen(id)));
    return o;
}

/* ---- paths and values (no storage) ---- */

static void test_paths(void)
{
    static const char *const good[] = {"a",       "app/db/password", "A-Z_a.z-0/9", "x/.hidden",    "a/..b",
                                       "a/b../c", "versions/x",      "config/a/b",  "app/rotate.d", "a/Versions"};
    static const char *const bad[] = {"",      "/a",         "a/",     "a//b",       ".",         "..",
                                      "a/./b", "a/../b",     "a b",    "a\\b",       "a?b",       "a%b",
                                      "é",     "a/versions", "config", "a/undelete", "a/destroy", "x/rotate"};
    for (size_t i = 0; i < SV_ARRAY_LEN(good); i++) {
        if (!sv_secret_path_usable(good[i], strlen(good[i])))
            fprintf(stderr, "\n  refused '%s'\n", good[i]);
        CU_ASSERT_TRUE(sv_secret_path_usable(good[i], strlen(good[i])));
    }
    for (size_t i = 0; i < SV_ARRAY_LEN(bad); i++) {
        if (sv_secret_path_usable(bad[i], strlen(bad[i])))
            fprintf(stderr, "\n  accepted '%s'\n", bad[i]);
        CU_ASSERT_FALSE(sv_secret_path_usable(bad[i], strlen(bad[i])));
    }
    CU_ASSERT_FALSE(sv_secret_path_usable("a\0b", 3));
    char p[514];
    memset(p, 'x', sizeof(p));
    CU_ASSERT_TRUE(sv_secret_path_usable(p, 512));
    CU_ASSERT_FALSE(sv_secret_path_usable(p, 513));
    CU_ASSERT_TRUE(sv_secret_prefix_valid("", 0));
    CU_ASSERT_TRUE(sv_secret_prefix_valid("app/", 4));
    CU_ASSERT_TRUE(sv_secret_prefix_valid("app/d", 5));
    CU_ASSERT_FALSE(sv_secret_prefix_valid("app db", 6));
    CU_ASSERT_FALSE(sv_secret_prefix_valid(p, 513));
}

static sv_json_doc_t *parse(const char *json)
{
    sv_json_doc_t *doc;
    sv_json_error_t e;
    CU_ASSERT_EQUAL_FATAL(sv_json_parse(json, strlen(json), true, &doc, &e), SV_JSON_OK);
    return doc;
}

static void test_plaintext(void)
{
    sv_json_doc_t *doc = parse("{\"value\":\"s3\\\"c\",\"metadata\":{\"a\":\"b\"},\"o\":{\"k\":[1,true,null]}}");
    sv_json_t *root = sv_json_root(doc);
    sv_buf_t b;
    sv_buf_init(&b, true);
    CU_ASSERT_EQUAL(sv_secret_plaintext(&b, sv_json_get(root, "value"), sv_json_get(root, "metadata"), 100), SV_OK);
    CU_ASSERT_EQUAL(b.len, strlen("\"value\":\"s3\\\"c\",\"metadata\":{\"a\":\"b\"}"));
    CU_ASSERT(memcmp(b.base, "\"value\":\"s3\\\"c\",\"metadata\":{\"a\":\"b\"}", b.len) == 0);
    sv_buf_free(&b);
    sv_buf_init(&b, true);
    CU_ASSERT_EQUAL(sv_secret_plaintext(&b, sv_json_get(root, "o"), NULL, 100), SV_OK);
    CU_ASSERT(memcmp(b.base, "\"value\":{\"k\":[1,true,null]},\"metadata\":{}", b.len) == 0);
    sv_buf_free(&b);
    /* the limit counts the string's bytes, or the object's compact JSON */
    sv_buf_init(&b, true);
    CU_ASSERT_EQUAL(sv_secret_plaintext(&b, sv_json_get(root, "value"), NULL, 4), SV_OK);
    sv_buf_free(&b);
    sv_buf_init(&b, true);
    CU_ASSERT_EQUAL(sv_secret_plaintext(&b, sv_json_get(root, "value"), NULL, 3), SV_ETOOBIG);
    sv_buf_free(&b);
    sv_buf_init(&b, true);
    CU_ASSERT_EQUAL(sv_secret_plaintext(&b, sv_json_get(root, "o"), NULL, 19), SV_OK);
    sv_buf_free(&b);
    sv_buf_init(&b, true);
    CU_ASSERT_EQUAL(sv_secret_plaintext(&b, sv_json_get(root, "o"), NULL, 18), SV_ETOOBIG);
    CU_ASSERT_EQUAL(sv_secret_plaintext(&b, NULL, NULL, 16), SV_EINVAL);
    CU_ASSERT_EQUAL(sv_secret_plaintext(&b, sv_json_get(root, "metadata"), NULL, 16), SV_OK);
    sv_buf_free(&b);
    char field[64];
    CU_ASSERT_EQUAL(sv_secret_check_metadata(sv_json_get(root, "metadata"), "metadata", field, sizeof(field)), SV_OK);
    CU_ASSERT_EQUAL(sv_secret_check_metadata(NULL, "metadata", field, sizeof(field)), SV_OK);
    CU_ASSERT_EQUAL(sv_secret_check_metadata(sv_json_get(root, "o"), "metadata", field, sizeof(field)), SV_EINVAL);
    CU_ASSERT_STRING_EQUAL(field, "metadata.k");
    CU_ASSERT_EQUAL(sv_secret_check_metadata(sv_json_get(root, "value"), "md", field, sizeof(field)), SV_EINVAL);
    CU_ASSERT_STRING_EQUAL(field, "md");
    sv_json_doc_free(doc);
    char d[32];
    sv_duration_format(d, sizeof(d), 30LL * 86400000);
    CU_ASSERT_STRING_EQUAL(d, "30d");
    sv_duration_format(d, sizeof(d), 90 * 60000);
    CU_ASSERT_STRING_EQUAL(d, "90m");
    sv_duration_format(d, sizeof(d), 1500);
    CU_ASSERT_STRING_EQUAL(d, "1500ms");
}

/* ---- with storage ---- */

typedef struct {
    sv_secret_put_t put;
    sv_buf_t pt;
} put_ctx_t;

static sv_err_t apply_put(sv_wtxn_t *tx, void *arg)
{
    return sv_secret_put_apply(tx, &((put_ctx_t *)arg)->put);
}

static void put_init(put_ctx_t *p, const sv_owner_t *o, const char *path, const char *pt, const sv_dkey_t *k)
{
    memset(p, 0, sizeof(*p));
    sv_buf_init(&p->pt, true);
    sv_buf_puts(&p->pt, pt);
    sv_buf_init(&p->put.sealed, false);
    p->put.owner = o;
    p->put.path = path;
    p->put.path_len = strlen(path);
    p->put.plaintext = p->pt.base;
    p->put.plaintext_len = p->pt.len;
    p->put.key = k;
    p->put.cas = -1;
    p->put.created_by = "sa:test";
}

static void put_prepare(keys_fixture_t *f, put_ctx_t *p)
{
    sv_txn_t *tx;
    CU_ASSERT_EQUAL_FATAL(sv_store_read_begin(f->reader, &tx), SV_OK);
    CU_ASSERT_EQUAL(sv_secret_put_prepare(tx, &p->put), SV_OK);
    sv_store_read_end(f->reader);
}

static void put_free(put_ctx_t *p)
{
    sv_secret_put_free(&p->put);
    sv_buf_free(&p->pt);
}

/* Writes a version; returns its number (0 on error, *err set). */
static uint64_t put(keys_fixture_t *f, const sv_owner_t *o, const char *path, const char *pt, const sv_dkey_t *k,
                    int64_t cas, sv_err_t *err)
{
    put_ctx_t p;
    put_init(&p, o, path, pt, k);
    p.put.cas = cas;
    put_prepare(f, &p);
    *err = keys_fixture_unit(f, apply_put, &p);
    uint64_t v = *err == SV_OK ? p.put.version : 0;
    put_free(&p);
    return v;
}

/* Opens (o, path, v) with k into a secure buffer; the result. */
static sv_err_t open_version(keys_fixture_t *f, const sv_owner_t *o, const char *path, uint64_t v, const sv_dkey_t *k,
                             char *out, size_t cap)
{
    sv_txn_t *tx;
    CU_ASSERT_EQUAL_FATAL(sv_store_read_begin(f->reader, &tx), SV_OK);
    sv_secret_version_t ver;
    sv_err_t err = sv_secret_version_get(tx, o, path, strlen(path), v, &ver);
    sv_buf_t b;
    sv_buf_init(&b, true);
    if (err == SV_OK)
        err = sv_secret_open(&b, o, path, strlen(path), v, &ver, k);
    sv_store_read_end(f->reader);
    if (err == SV_OK)
        snprintf(out, cap, "%.*s", (int)b.len, (const char *)b.base);
    sv_buf_free(&b);
    return err;
}

static void test_put_and_open(void)
{
    keys_fixture_t f;
    keys_fixture_setup(&f, 0, 0);
    sv_owner_t o = tenant("tnt_a");
    sv_dkey_t *k = keys_fixture_new_key(&f, &o);
    sv_err_t err;
    CU_ASSERT_EQUAL(put(&f, &o, "app/db", "\"value\":\"one\",\"metadata\":{}", k, -1, &err), 1);
    CU_ASSERT_EQUAL(put(&f, &o, "app/db", "\"value\":\"two\",\"metadata\":{}", k, -1, &err), 2);
    char out[128];
    CU_ASSERT_EQUAL(open_version(&f, &o, "app/db", 1, k, out, sizeof(out)), SV_OK);
    CU_ASSERT_STRING_EQUAL(out, "\"value\":\"one\",\"metadata\":{}");
    CU_ASSERT_EQUAL(open_version(&f, &o, "app/db", 2, k, out, sizeof(out)), SV_OK);
    CU_ASSERT_STRING_EQUAL(out, "\"value\":\"two\",\"metadata\":{}");
    /* the read representation */
    sv_txn_t *tx;
    CU_ASSERT_EQUAL_FATAL(sv_store_read_begin(f.reader, &tx), SV_OK);
    sv_secret_head_t h;
    CU_ASSERT_EQUAL(sv_secret_head_get(tx, &o, "app/db", 6, &h), SV_OK);
    CU_ASSERT_EQUAL(h.current, 2);
    CU_ASSERT_EQUAL(h.oldest, 1);
    CU_ASSERT_EQUAL(h.max_versions, SV_SECRET_DEFAULT_MAX_VERSIONS);
    sv_secret_version_t ver;
    CU_ASSERT_EQUAL(sv_secret_version_get(tx, &o, "app/db", 6, 2, &ver), SV_OK);
    CU_ASSERT_EQUAL(ver.key_id, 1);
    CU_ASSERT(ver.created_by.len == 7 && memcmp(ver.created_by.base, "sa:test", 7) == 0);
    sv_buf_t b;
    sv_buf_init(&b, true);
    sv_jw_t jw;
    sv_jw_init(&jw, &b);
    CU_ASSERT_EQUAL(sv_secret_read_json(&jw, &o, "app/db", 6, 2, &ver, k), SV_OK);
    sv_store_read_end(f.reader);
    sv_json_doc_t *doc;
    sv_json_error_t je;
    CU_ASSERT_EQUAL_FATAL(sv_json_parse(b.base, b.len, true, &doc, &je), SV_JSON_OK);
    CU_ASSERT_STRING_EQUAL(sv_json_get_str(sv_json_root(doc), "value", NULL), "two");
    CU_ASSERT_STRING_EQUAL(sv_json_get_str(sv_json_root(doc), "path", NULL), "app/db");
    CU_ASSERT_STRING_EQUAL(sv_json_get_str(sv_json_root(doc), "created_by", NULL), "sa:test");
    sv_json_doc_free(doc);
    sv_buf_free(&b);
    /* the stored bytes hold no plaintext */
    CU_ASSERT_EQUAL_FATAL(sv_store_read_begin(f.reader, &tx), SV_OK);
    CU_ASSERT_EQUAL(sv_secret_version_get(tx, &o, "app/db", 6, 1, &ver), SV_OK);
    CU_ASSERT_PTR_NULL(memmem(ver.sealed.base, ver.sealed.len, "one", 3));
    sv_store_read_end(f.reader);
    sv_keyring_release(f.kr, k);
    keys_fixture_teardown(&f);
}

/* The associated data binds tenant, path, version and key id: a ciphertext
 * moved to another path, another version or another tenant fails to open,
 * both in memory and when the record is actually moved in storage. */
typedef struct {
    const sv_owner_t *o;
    const char *path;
    uint64_t v;
    uint8_t *rec;
    size_t len;
} raw_put_t;

static sv_err_t apply_raw_put(sv_wtxn_t *tx, void *arg)
{
    raw_put_t *r = arg;
    sv_key_t k;
    sv_key_init(&k);
    sv_key_str(&k, r->o->id, r->o->len);
    sv_key_str(&k, r->path, strlen(r->path));
    sv_key_u64(&k, r->v);
    return sv_wtxn_put(tx, SV_DB_VERSIONS, sv_key_bytes(&k), SV_BYTES(r->rec, r->len));
}

static void test_moved_ciphertext_does_not_open(void)
{
    keys_fixture_t f;
    keys_fixture_setup(&f, 0, 0);
    sv_owner_t a = tenant("tnt_a"), b = tenant("tnt_b");
    sv_dkey_t *ka = keys_fixture_new_key(&f, &a);
    sv_dkey_t *kb = keys_fixture_new_key(&f, &b);
    sv_err_t err;
    CU_ASSERT_EQUAL(put(&f, &a, "app/db", "\"value\":\"secret-a\",\"metadata\":{}", ka, -1, &err), 1);
    CU_ASSERT_EQUAL(put(&f, &a, "app/other", "\"value\":\"x\",\"metadata\":{}", ka, -1, &err), 1);
    CU_ASSERT_EQUAL(put(&f, &b, "app/db", "\"value\":\"secret-b\",\"metadata\":{}", kb, -1, &err), 1);

    /* the raw record of (tnt_a, app/db, 1) */
    sv_txn_t *tx;
    CU_ASSERT_EQUAL_FATAL(sv_store_read_begin(f.reader, &tx), SV_OK);
    sv_key_t k;
    sv_key_init(&k);
    sv_key_str(&k, "tnt_a", 5);
    sv_key_str(&k, "app/db", 6);
    sv_key_u64(&k, 1);
    sv_bytes_t raw;
    CU_ASSERT_EQUAL_FATAL(sv_txn_get(tx, SV_DB_VERSIONS, sv_key_bytes(&k), &raw), SV_OK);
    uint8_t *copy = malloc(raw.len);
    memcpy(copy, raw.base, raw.len);
    size_t copy_len = raw.len;
    sv_secret_version_t ver;
    CU_ASSERT_EQUAL(sv_secret_version_get(tx, &a, "app/db", 6, 1, &ver), SV_OK);

    /* in memory: every other binding fails, and leaves nothing behind */
    sv_buf_t out;
    sv_buf_init(&out, true);
    sv_buf_puts(&out, "prefix");
    CU_ASSERT_EQUAL(sv_secret_open(&out, &a, "app/db", 6, 1, &ver, ka), SV_OK);
    CU_ASSERT_PTR_NOT_NULL(memmem(out.base, out.len, "secret-a", 8));
    out.len = 6;
    CU_ASSERT_EQUAL(sv_secret_open(&out, &a, "app/dc", 6, 1, &ver, ka), SV_ECRYPTO); /* another path */
    CU_ASSERT_EQUAL(sv_secret_open(&out, &a, "app/db", 6, 2, &ver, ka), SV_ECRYPTO); /* another version */
    CU_ASSERT_EQUAL(sv_secret_open(&out, &b, "app/db", 6, 1, &ver, kb), SV_ECRYPTO); /* another tenant */
    CU_ASSERT_EQUAL(sv_secret_open(&out, &b, "app/db", 6, 1, &ver, ka), SV_ECRYPTO); /* owner in the AAD */
    CU_ASSERT_EQUAL(out.len, 6);
    CU_ASSERT_PTR_NULL(memmem(out.base, out.cap, "secret-a", 8)); /* wiped */
    sv_secret_version_t other_key = ver;
    other_key.key_id = 2;
    CU_ASSERT_EQUAL(sv_secret_open(&out, &a, "app/db", 6, 1, &other_key, ka), SV_ECRYPTO); /* another key id */
    sv_buf_free(&out);
    sv_store_read_end(f.reader);

    /* in storage: copy the record to another path, another version, another tenant */
    raw_put_t moves[] = {
        {&a, "app/other", 1, copy, copy_len}, {&a, "app/db", 2, copy, copy_len}, {&b, "app/db", 1, copy, copy_len}};
    for (size_t i = 0; i < SV_ARRAY_LEN(moves); i++)
        CU_ASSERT_EQUAL(keys_fixture_unit(&f, apply_raw_put, &moves[i]), SV_OK);
    char text[128];
    CU_ASSERT_EQUAL(open_version(&f, &a, "app/other", 1, ka, text, sizeof(text)), SV_ECRYPTO);
    CU_ASSERT_EQUAL(open_version(&f, &a, "app/db", 2, ka, text, sizeof(text)), SV_ECRYPTO);
    CU_ASSERT_EQUAL(open_version(&f, &b, "app/db", 1, kb, text, sizeof(text)), SV_ECRYPTO);
    CU_ASSERT_EQUAL(open_version(&f, &b, "app/db", 1, ka, text, sizeof(text)), SV_ECRYPTO);
    /* where it belongs, it still opens */
    CU_ASSERT_EQUAL(open_version(&f, &a, "app/db", 1, ka, text, sizeof(text)), SV_OK);
    free(copy);
    sv_keyring_release(f.kr, ka);
    sv_keyring_release(f.kr, kb);
    keys_fixture_teardown(&f);
}

/* Two writes prepared from one snapshot both expect version 1: the second
 * apply seals again for version 2. */
static void test_reseal_when_version_taken(void)
{
    keys_fixture_t f;
    keys_fixture_setup(&f, 0, 0);
    sv_owner_t o = tenant("tnt_r");
    sv_dkey_t *k = keys_fixture_new_key(&f, &o);
    put_ctx_t p1, p2;
    put_init(&p1, &o, "r/x", "\"value\":\"first\",\"metadata\":{}", k);
    put_init(&p2, &o, "r/x", "\"value\":\"second\",\"metadata\":{}", k);
    put_prepare(&f, &p1);
    put_prepare(&f, &p2);
    CU_ASSERT_EQUAL(p1.put.sealed_version, 1);
    CU_ASSERT_EQUAL(p2.put.sealed_version, 1);
    CU_ASSERT_EQUAL(keys_fixture_unit(&f, apply_put, &p1), SV_OK);
    CU_ASSERT_TRUE(p1.put.created);
    CU_ASSERT_EQUAL(keys_fixture_unit(&f, apply_put, &p2), SV_OK);
    CU_ASSERT_FALSE(p2.put.created);
    CU_ASSERT_EQUAL(p2.put.version, 2);
    CU_ASSERT_EQUAL(p2.put.sealed_version, 2);
    char out[128];
    CU_ASSERT_EQUAL(open_version(&f, &o, "r/x", 2, k, out, sizeof(out)), SV_OK);
    CU_ASSERT_STRING_EQUAL(out, "\"value\":\"second\",\"metadata\":{}");
    CU_ASSERT_EQUAL(open_version(&f, &o, "r/x", 1, k, out, sizeof(out)), SV_OK);
    CU_ASSERT_STRING_EQUAL(out, "\"value\":\"first\",\"metadata\":{}");
    put_free(&p1);
    put_free(&p2);
    sv_keyring_release(f.kr, k);
    keys_fixture_teardown(&f);
}

static sv_err_t apply_shred(sv_wtxn_t *tx, void *arg)
{
    return sv_keyring_apply_shred(tx, arg);
}

static void test_cas_and_key_checks(void)
{
    keys_fixture_t f;
    keys_fixture_setup(&f, 0, 0);
    sv_owner_t o = tenant("tnt_c"), other = tenant("tnt_c2");
    sv_dkey_t *k = keys_fixture_new_key(&f, &o);
    sv_dkey_t *k2 = keys_fixture_new_key(&f, &other);
    sv_err_t err;
    CU_ASSERT_EQUAL(put(&f, &o, "c", "\"value\":\"1\",\"metadata\":{}", k, 0, &err), 1);
    CU_ASSERT_EQUAL(put(&f, &o, "c", "\"value\":\"1\",\"metadata\":{}", k, 0, &err), 0);
    CU_ASSERT_EQUAL(err, SV_ECONFLICT);
    put_ctx_t p;
    put_init(&p, &o, "c", "\"value\":\"2\",\"metadata\":{}", k);
    p.put.cas = 5;
    put_prepare(&f, &p);
    CU_ASSERT_EQUAL(keys_fixture_unit(&f, apply_put, &p), SV_ECONFLICT);
    CU_ASSERT_FALSE(p.put.key_changed);
    p.put.cas = 1;
    CU_ASSERT_EQUAL(keys_fixture_unit(&f, apply_put, &p), SV_OK);
    CU_ASSERT_EQUAL(p.put.version, 2);
    /* a key that is not the owner's */
    p.put.cas = -1;
    p.put.key = k2;
    CU_ASSERT_EQUAL(keys_fixture_unit(&f, apply_put, &p), SV_ECONFLICT);
    CU_ASSERT_TRUE(p.put.key_changed);
    /* the owner's key shredded: it is being deleted */
    p.put.key = k;
    CU_ASSERT_EQUAL(keys_fixture_unit(&f, apply_shred, &o), SV_OK);
    CU_ASSERT_EQUAL(keys_fixture_unit(&f, apply_put, &p), SV_EDELETED);
    put_free(&p);
    sv_keyring_release(f.kr, k);
    sv_keyring_release(f.kr, k2);
    keys_fixture_teardown(&f);
}

static sv_err_t apply_vop(sv_wtxn_t *tx, void *arg)
{
    return sv_secret_vop_apply(tx, arg);
}

typedef struct {
    const sv_owner_t *o;
    const char *path;
} purge_args_t;

static sv_err_t apply_purge(sv_wtxn_t *tx, void *arg)
{
    purge_args_t *p = arg;
    return sv_secret_purge_apply(tx, p->o, p->path, strlen(p->path));
}

static sv_err_t apply_config(sv_wtxn_t *tx, void *arg)
{
    return sv_secret_config_apply(tx, arg);
}

static uint8_t state_of(keys_fixture_t *f, const sv_owner_t *o, const char *path, uint64_t v, size_t *sealed_len)
{
    sv_txn_t *tx;
    CU_ASSERT_EQUAL_FATAL(sv_store_read_begin(f->reader, &tx), SV_OK);
    sv_secret_version_t ver;
    uint8_t st = 0xFF;
    if (sv_secret_version_get(tx, o, path, strlen(path), v, &ver) == SV_OK) {
        st = ver.state;
        if (sealed_len != NULL)
            *sealed_len = ver.sealed.len;
    }
    sv_store_read_end(f->reader);
    return st;
}

static void test_versions_and_config(void)
{
    keys_fixture_t f;
    keys_fixture_setup(&f, 0, 0);
    sv_owner_t o = tenant("tnt_v");
    sv_dkey_t *k = keys_fixture_new_key(&f, &o);
    sv_err_t err;
    for (int i = 0; i < 4; i++)
        put(&f, &o, "v/x", "\"value\":\"v\",\"metadata\":{}", k, -1, &err);
    put(&f, &o, "v/keep", "\"value\":\"v\",\"metadata\":{}", k, -1, &err);
    sv_secret_vop_t del = {.owner = &o, .path = "v/x", .path_len = 3, .op = SV_VOP_DELETE};
    CU_ASSERT_EQUAL(keys_fixture_unit(&f, apply_vop, &del), SV_OK);
    CU_ASSERT_EQUAL(del.changed, 1);
    CU_ASSERT_EQUAL(state_of(&f, &o, "v/x", 4, NULL), SV_VSTATE_DELETED);
    uint64_t some[] = {1, 2, 40};
    sv_secret_vop_t del2 = {
        .owner = &o, .path = "v/x", .path_len = 3, .op = SV_VOP_DELETE, .versions = some, .n_versions = 3};
    CU_ASSERT_EQUAL(keys_fixture_unit(&f, apply_vop, &del2), SV_OK);
    CU_ASSERT_EQUAL(del2.changed, 2);
    sv_secret_vop_t un = {
        .owner = &o, .path = "v/x", .path_len = 3, .op = SV_VOP_UNDELETE, .versions = some, .n_versions = 1};
    CU_ASSERT_EQUAL(keys_fixture_unit(&f, apply_vop, &un), SV_OK);
    CU_ASSERT_EQUAL(state_of(&f, &o, "v/x", 1, NULL), SV_VSTATE_ACTIVE);
    CU_ASSERT_EQUAL(state_of(&f, &o, "v/x", 2, NULL), SV_VSTATE_DELETED);
    sv_secret_vop_t de = {
        .owner = &o, .path = "v/x", .path_len = 3, .op = SV_VOP_DESTROY, .versions = some, .n_versions = 1};
    CU_ASSERT_EQUAL(keys_fixture_unit(&f, apply_vop, &de), SV_OK);
    size_t sealed = 99;
    CU_ASSERT_EQUAL(state_of(&f, &o, "v/x", 1, &sealed), SV_VSTATE_DESTROYED);
    CU_ASSERT_EQUAL(sealed, 0);
    char out[64];
    CU_ASSERT_EQUAL(open_version(&f, &o, "v/x", 1, k, out, sizeof(out)), SV_EDESTROYED);
    sv_secret_vop_t missing = {.owner = &o, .path = "v/none", .path_len = 6, .op = SV_VOP_DELETE};
    CU_ASSERT_EQUAL(keys_fixture_unit(&f, apply_vop, &missing), SV_ENOTFOUND);

    /* config: a lower max_versions prunes the oldest now */
    sv_secret_config_t cfg = {.owner = &o,
                              .path = "v/x",
                              .path_len = 3,
                              .set_max_versions = true,
                              .max_versions = 2,
                              .set_rotation = true,
                              .rotation_interval_ms = 86400000,
                              .rotation_notify_ms = 3600000,
                              .set_custom_metadata = true,
                              .custom_metadata = "{\"a\":\"b\"}",
                              .custom_metadata_len = 9};
    sv_buf_init(&cfg.out_custom_metadata, false);
    CU_ASSERT_EQUAL(keys_fixture_unit(&f, apply_config, &cfg), SV_OK);
    CU_ASSERT_EQUAL(cfg.pruned, 2);
    CU_ASSERT_EQUAL(cfg.out_max_versions, 2);
    CU_ASSERT_EQUAL(cfg.out_interval_ms, 86400000);
    CU_ASSERT_EQUAL(state_of(&f, &o, "v/x", 2, NULL), 0xFF);
    CU_ASSERT_EQUAL(state_of(&f, &o, "v/x", 3, NULL), SV_VSTATE_ACTIVE);
    /* the next write prunes one more, and keeps the settings */
    CU_ASSERT_EQUAL(put(&f, &o, "v/x", "\"value\":\"5\",\"metadata\":{}", k, -1, &err), 5);
    CU_ASSERT_EQUAL(state_of(&f, &o, "v/x", 3, NULL), 0xFF);
    sv_txn_t *tx;
    CU_ASSERT_EQUAL_FATAL(sv_store_read_begin(f.reader, &tx), SV_OK);
    sv_secret_head_t h;
    CU_ASSERT_EQUAL(sv_secret_head_get(tx, &o, "v/x", 3, &h), SV_OK);
    CU_ASSERT_EQUAL(h.oldest, 4);
    CU_ASSERT_EQUAL(h.current, 5);
    CU_ASSERT_EQUAL(h.rotation_notify_ms, 3600000);
    CU_ASSERT(h.custom_metadata.len == 9 && memcmp(h.custom_metadata.base, "{\"a\":\"b\"}", 9) == 0);
    sv_store_read_end(f.reader);
    /* replaying the unit (as after a map growth) gives the same outcome */
    CU_ASSERT_EQUAL(keys_fixture_unit(&f, apply_config, &cfg), SV_OK);
    CU_ASSERT_EQUAL(cfg.out_custom_metadata.len, 9);
    sv_buf_free(&cfg.out_custom_metadata);

    /* purge removes the head and every version; the neighbour stays */
    purge_args_t pa = {&o, "v/x"};
    CU_ASSERT_EQUAL(keys_fixture_unit(&f, apply_purge, &pa), SV_OK);
    CU_ASSERT_EQUAL(state_of(&f, &o, "v/x", 5, NULL), 0xFF);
    CU_ASSERT_EQUAL(state_of(&f, &o, "v/keep", 1, NULL), SV_VSTATE_ACTIVE);
    CU_ASSERT_EQUAL(keys_fixture_unit(&f, apply_purge, &pa), SV_ENOTFOUND);
    CU_ASSERT_EQUAL(put(&f, &o, "v/x", "\"value\":\"new\",\"metadata\":{}", k, -1, &err), 1);
    sv_keyring_release(f.kr, k);
    keys_fixture_teardown(&f);
}

static void test_listing_and_cursors(void)
{
    keys_fixture_t f;
    keys_fixture_setup(&f, 0, 0);
    sv_owner_t a = tenant("ta"), a2 = tenant("ta2");
    sv_dkey_t *k = keys_fixture_new_key(&f, &a);
    sv_dkey_t *k2 = keys_fixture_new_key(&f, &a2);
    static const char *const paths[] = {"app/a", "app/b", "app/b/c", "apps", "zed"};
    sv_err_t err;
    for (size_t i = 0; i < SV_ARRAY_LEN(paths); i++)
        put(&f, &a, paths[i], "\"value\":\"v\",\"metadata\":{}", k, -1, &err);
    put(&f, &a2, "app/z", "\"value\":\"v\",\"metadata\":{}", k2, -1, &err);
    sv_txn_t *tx;
    CU_ASSERT_EQUAL_FATAL(sv_store_read_begin(f.reader, &tx), SV_OK);
    sv_secret_iter_t it;
    sv_bytes_t p;
    CU_ASSERT_EQUAL(sv_secret_iter_open(&it, tx, &a, "app", 3, NULL, 0), SV_OK);
    const char *want[] = {"app/a", "app/b", "app/b/c", "apps"};
    size_t n = 0;
    while (sv_secret_iter_next(&it, &p) == SV_OK) {
        CU_ASSERT_FATAL(n < 4);
        CU_ASSERT(p.len == strlen(want[n]) && memcmp(p.base, want[n], p.len) == 0);
        n++;
    }
    sv_secret_iter_close(&it);
    CU_ASSERT_EQUAL(n, 4);
    /* after a path */
    CU_ASSERT_EQUAL(sv_secret_iter_open(&it, tx, &a, "app/", 4, "app/b", 5), SV_OK);
    CU_ASSERT_EQUAL(sv_secret_iter_next(&it, &p), SV_OK);
    CU_ASSERT(p.len == 7 && memcmp(p.base, "app/b/c", 7) == 0);
    CU_ASSERT_EQUAL(sv_secret_iter_next(&it, &p), SV_ENOTFOUND);
    sv_secret_iter_close(&it);
    /* a tenant whose id starts like another's sees only its own */
    CU_ASSERT_EQUAL(sv_secret_iter_open(&it, tx, &a, "", 0, NULL, 0), SV_OK);
    n = 0;
    while (sv_secret_iter_next(&it, &p) == SV_OK)
        n++;
    sv_secret_iter_close(&it);
    CU_ASSERT_EQUAL(n, 5);
    sv_store_read_end(f.reader);

    /* cursors: opaque, bound to key, owner, kind and scope */
    char cur[SV_SECRET_CURSOR_MAX + 1];
    CU_ASSERT_EQUAL(sv_secret_cursor_make(cur, sizeof(cur), k, "list", &a, "app/", 4, "app/b", 5), SV_OK);
    CU_ASSERT_PTR_NULL(strstr(cur, "app"));
    CU_ASSERT_EQUAL(sv_secret_cursor_key_id(cur, strlen(cur)), 1);
    char out[600];
    size_t ol;
    CU_ASSERT_EQUAL(sv_secret_cursor_open(out, sizeof(out), &ol, cur, strlen(cur), k, "list", &a, "app/", 4), SV_OK);
    CU_ASSERT(ol == 5 && memcmp(out, "app/b", 5) == 0);
    CU_ASSERT_EQUAL(sv_secret_cursor_open(out, sizeof(out), &ol, cur, strlen(cur), k2, "list", &a2, "app/", 4),
                    SV_EINVAL);
    CU_ASSERT_EQUAL(sv_secret_cursor_open(out, sizeof(out), &ol, cur, strlen(cur), k, "list", &a2, "app/", 4),
                    SV_EINVAL);
    CU_ASSERT_EQUAL(sv_secret_cursor_open(out, sizeof(out), &ol, cur, strlen(cur), k, "list", &a, "apps", 4),
                    SV_EINVAL);
    CU_ASSERT_EQUAL(sv_secret_cursor_open(out, sizeof(out), &ol, cur, strlen(cur), k, "versions", &a, "app/", 4),
                    SV_EINVAL);
    cur[10] = cur[10] == 'A' ? 'B' : 'A';
    CU_ASSERT_EQUAL(sv_secret_cursor_open(out, sizeof(out), &ol, cur, strlen(cur), k, "list", &a, "app/", 4),
                    SV_EINVAL);
    CU_ASSERT_EQUAL(sv_secret_cursor_open(out, sizeof(out), &ol, "!!", 2, k, "list", &a, "app/", 4), SV_EINVAL);
    CU_ASSERT_EQUAL(sv_secret_cursor_open(out, sizeof(out), &ol, "", 0, k, "list", &a, "app/", 4), SV_EINVAL);
    CU_ASSERT_EQUAL(sv_secret_cursor_key_id("x", 1), 0);
    sv_keyring_release(f.kr, k);
    sv_keyring_release(f.kr, k2);
    keys_fixture_teardown(&f);
}

typedef struct {
    const sv_owner_t *o;
    bool first, finished;
    size_t deleted;
} owner_del_t;

static sv_err_t apply_owner_delete(sv_wtxn_t *tx, void *arg)
{
    owner_del_t *d = arg;
    return sv_secrets_owner_delete_apply(tx, d->o, d->first, &d->finished, &d->deleted);
}

static size_t count_owner_records(keys_fixture_t *f, const sv_owner_t *o)
{
    sv_txn_t *tx;
    CU_ASSERT_EQUAL_FATAL(sv_store_read_begin(f->reader, &tx), SV_OK);
    sv_key_t prefix;
    sv_key_init(&prefix);
    sv_key_str(&prefix, o->id, o->len);
    size_t n = 0;
    for (int db = 0; db < 2; db++) {
        sv_iter_t it;
        sv_bytes_t k, v;
        CU_ASSERT_EQUAL_FATAL(
            sv_iter_open(tx, db ? SV_DB_VERSIONS : SV_DB_SECRETS, sv_key_bytes(&prefix), SV_BYTES(NULL, 0), false, &it),
            SV_OK);
        while (sv_iter_next(&it, &k, &v) == SV_OK)
            n++;
        sv_iter_close(&it);
    }
    sv_store_read_end(f->reader);
    return n;
}

static void test_owner_delete(void)
{
    keys_fixture_t f;
    keys_fixture_setup(&f, 0, 0);
    sv_owner_t o = tenant("tdel"), keep = tenant("tdel2");
    sv_dkey_t *k = keys_fixture_new_key(&f, &o);
    sv_dkey_t *k2 = keys_fixture_new_key(&f, &keep);
    sv_err_t err;
    for (int i = 0; i < 600; i++) {
        char p[32];
        snprintf(p, sizeof(p), "d/%04d", i);
        put(&f, &o, p, "\"value\":\"v\",\"metadata\":{}", k, -1, &err);
    }
    put(&f, &keep, "d/0001", "\"value\":\"v\",\"metadata\":{}", k2, -1, &err);
    CU_ASSERT_EQUAL(count_owner_records(&f, &o), 1200);
    owner_del_t d = {.o = &o, .first = true};
    CU_ASSERT_EQUAL(keys_fixture_unit(&f, apply_owner_delete, &d), SV_OK);
    CU_ASSERT_FALSE(d.finished);
    CU_ASSERT_EQUAL(d.deleted, SV_OWNER_DELETE_BATCH);
    sv_keyrec_t rec;
    CU_ASSERT_EQUAL(keys_fixture_read(&f, &o, &rec), SV_OK);
    CU_ASSERT_EQUAL(rec.state, SV_KEYREC_SHREDDED);
    CU_ASSERT_EQUAL(rec.wrapped_len, 0);
    /* a second first step finds the deletion under way */
    owner_del_t again = {.o = &o, .first = true};
    CU_ASSERT_EQUAL(keys_fixture_unit(&f, apply_owner_delete, &again), SV_EDELETED);
    /* what a restart does: resume in the background until done */
    unsigned resumed = 0;
    CU_ASSERT_EQUAL(sv_secrets_resume_deletions(f.st, f.w, &resumed), SV_OK);
    CU_ASSERT_EQUAL(resumed, 1);
    for (int i = 0; i < 500 && keys_fixture_read(&f, &o, &rec) == SV_OK; i++)
        usleep(10000);
    CU_ASSERT_EQUAL(keys_fixture_read(&f, &o, &rec), SV_ENOTFOUND);
    CU_ASSERT_EQUAL(count_owner_records(&f, &o), 0);
    CU_ASSERT_EQUAL(count_owner_records(&f, &keep), 2);
    CU_ASSERT_EQUAL(sv_secrets_resume_deletions(f.st, f.w, &resumed), SV_OK);
    CU_ASSERT_EQUAL(resumed, 0);
    /* an owner with neither key nor data */
    owner_del_t none = {.o = &o, .first = true};
    CU_ASSERT_EQUAL(keys_fixture_unit(&f, apply_owner_delete, &none), SV_ENOTFOUND);
    /* a small owner goes in one step */
    owner_del_t small = {.o = &keep, .first = true};
    CU_ASSERT_EQUAL(keys_fixture_unit(&f, apply_owner_delete, &small), SV_OK);
    CU_ASSERT_TRUE(small.finished);
    CU_ASSERT_EQUAL(small.deleted, 2);
    CU_ASSERT_EQUAL(keys_fixture_read(&f, &keep, &rec), SV_ENOTFOUND);
    sv_keyring_release(f.kr, k);
    sv_keyring_release(f.kr, k2);
    keys_fixture_teardown(&f);
}

void sv_test_suite_secrets(void)
{
    SV_SUITE("src/secrets", {"paths", test_paths}, {"plaintext", test_plaintext}, {"put_and_open", test_put_and_open},
             {"moved_ciphertext_does_not_open", test_moved_ciphertext_does_not_open},
             {"reseal_when_version_taken", test_reseal_when_version_taken},
             {"cas_and_key_checks", test_cas_and_key_checks}, {"versions_and_config", test_versions_and_config},
             {"listing_and_cursors", test_listing_and_cursors}, {"owner_delete", test_owner_delete});
}

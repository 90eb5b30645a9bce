/* tests/src/test_json.c - the JSON parser and writer (src/json.c). */
#include "sv_autoconf.h"

#include "src/json.h"
#include "tests/unit.h"

static sv_json_status_t parse(const char *s, sv_json_doc_t **doc, sv_json_error_t *e)
{
    return sv_json_parse(s, strlen(s), false, doc, e);
}

static void test_parse_values(void)
{
    sv_json_doc_t *doc;
    sv_json_error_t e;
    const char *text = "{\"s\":\"a\\u00e9\\n\",\"i\":-42,\"big\":123456789012345678901,\"d\":1.5,"
                       "\"t\":true,\"n\":null,\"a\":[1,2,3],\"o\":{\"x\":{}}}";
    CU_ASSERT_EQUAL_FATAL(parse(text, &doc, &e), SV_JSON_OK);
    sv_json_t *root = sv_json_root(doc);
    size_t len;
    const char *s = sv_json_get_str(root, "s", &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(len, 4);
    CU_ASSERT(memcmp(s, "a\xc3\xa9\n", 4) == 0);
    sv_json_t *i = sv_json_get(root, "i");
    CU_ASSERT(i->type == SV_JSON_NUMBER && i->u.num.is_int && i->u.num.i == -42);
    CU_ASSERT_FALSE(sv_json_get(root, "big")->u.num.is_int);
    CU_ASSERT_FALSE(sv_json_get(root, "d")->u.num.is_int);
    CU_ASSERT_DOUBLE_EQUAL(sv_json_get(root, "d")->u.num.d, 1.5, 1e-9);
    CU_ASSERT(sv_json_get(root, "t")->u.b);
    CU_ASSERT_EQUAL(sv_json_get(root, "n")->type, SV_JSON_NULL);
    CU_ASSERT_EQUAL(sv_json_get(root, "a")->u.kids.n, 3);
    CU_ASSERT_PTR_NULL(sv_json_get(root, "missing"));
    sv_buf_t out;
    sv_buf_init(&out, false);
    sv_json_serialize(root, &out);
    sv_buf_putc(&out, 0);
    CU_ASSERT_STRING_EQUAL((char *)out.base, "{\"s\":\"a\xc3\xa9\\n\",\"i\":-42,\"big\":123456789012345678901,"
                                             "\"d\":1.5,\"t\":true,\"n\":null,\"a\":[1,2,3],\"o\":{\"x\":{}}}");
    sv_buf_free(&out);
    sv_json_doc_free(doc);
}

static void test_parse_errors(void)
{
    sv_json_doc_t *doc;
    sv_json_error_t e;
    CU_ASSERT_EQUAL(parse("{\"a\":", &doc, &e), SV_JSON_ESYNTAX);
    CU_ASSERT_STRING_EQUAL(e.field, "body");
    CU_ASSERT_EQUAL(parse("{\"a\":1} trailing", &doc, &e), SV_JSON_ESYNTAX);
    CU_ASSERT_EQUAL(parse("{/*c*/\"a\":1}", &doc, &e), SV_JSON_ESYNTAX);
    CU_ASSERT_EQUAL(parse("{\"a\":\"\x01\"}", &doc, &e), SV_JSON_ESYNTAX);     /* a raw control character */
    CU_ASSERT_EQUAL(parse("{\"a\":1,\xc3\xa9:1}", &doc, &e), SV_JSON_ESYNTAX); /* not in a string */
    CU_ASSERT_EQUAL(parse("", &doc, &e), SV_JSON_ESYNTAX);
    CU_ASSERT_EQUAL(parse("{\"a\":1,\"b\":{\"c\":1,\"c\":2}}", &doc, &e), SV_JSON_EDUPKEY);
    CU_ASSERT_STRING_EQUAL(e.field, "b.c");
}

/* yajl lets these through, or turns them into other characters: the parser
 * must refuse them and name the member */
static void test_utf8(void)
{
    static const struct {
        const char *text;
        const char *field; /* NULL: accepted */
    } cases[] = {
        {"{\"v\":\"\\ud83d\\ude00 \\u00e9 \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf\"}", NULL}, /* pairs, BMP, U+10FFFF */
        {"{\"v\":\"\\\\ud800\"}", NULL},                      /* an escaped backslash, then text */
        {"{\"v\":\"\\ud800\\u0041\"}", "v"},                  /* high surrogate, then not a low one */
        {"{\"v\":\"\\ud800\"}", "v"},                         /* lone high surrogate */
        {"{\"v\":\"\\ud800\\n\"}", "v"},                      /* high surrogate, then another escape */
        {"{\"v\":\"\\udfff\"}", "v"},                         /* lone low surrogate */
        {"{\"v\":\"\\ude00\\ud83d\"}", "v"},                  /* a pair in the wrong order */
        {"{\"a\":{\"b\":[\"ok\",\"\xed\xa0\x80\"]}}", "a.b"}, /* an encoded surrogate */
        {"{\"v\":\"\xf4\x90\x80\x80\"}", "v"},                /* above U+10FFFF */
        {"{\"v\":\"\xc0\xaf\"}", "v"},                        /* overlong '/' */
        {"{\"v\":\"\xe0\x80\xaf\"}", "v"},                    /* overlong, 3 bytes */
        {"{\"a\":{\"\\udc00\":1}}", "a"},                     /* a key: the object is named */
        {"{\"ok\":\"x\",\"k\\ud800\":\"\xc3\xa9\"}", "body"}, /* a top-level key */
        {"[\"\\ud800", NULL},                                 /* truncated: a syntax error */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sv_json_doc_t *doc = NULL;
        sv_json_error_t e;
        sv_json_status_t st = parse(cases[i].text, &doc, &e);
        if (i == sizeof(cases) / sizeof(cases[0]) - 1) {
            CU_ASSERT_EQUAL(st, SV_JSON_ESYNTAX);
        } else if (cases[i].field == NULL) {
            CU_ASSERT_EQUAL(st, SV_JSON_OK);
        } else {
            CU_ASSERT_EQUAL(st, SV_JSON_EUTF8);
            CU_ASSERT_STRING_EQUAL(e.field, cases[i].field);
        }
        sv_json_doc_free(doc);
    }
    /* the pair decodes to the one character */
    sv_json_doc_t *doc;
    sv_json_error_t e;
    CU_ASSERT_EQUAL_FATAL(parse("{\"v\":\"\\ud83d\\ude00\"}", &doc, &e), SV_JSON_OK);
    size_t len;
    const char *v = sv_json_get_str(sv_json_root(doc), "v", &len);
    CU_ASSERT(v != NULL && len == 4 && memcmp(v, "\xf0\x9f\x98\x80", 4) == 0);
    sv_json_doc_free(doc);
    /* the same checks on a secure parse */
    const char *bad = "{\"value\":\"\\ud800\\u0041\"}";
    CU_ASSERT_EQUAL(sv_json_parse(bad, strlen(bad), true, &doc, &e), SV_JSON_EUTF8);
    CU_ASSERT_STRING_EQUAL(e.field, "value");
    CU_ASSERT_TRUE(sv_utf8_valid("a\xc3\xa9", 3));
    CU_ASSERT_FALSE(sv_utf8_valid("a\xc3", 2));
}

/* Byte sequences that are not UTF-8 at all (truncated, a lone continuation
 * byte, 0xFE/0xFF): refused with the member named like the subtler faults of
 * test_utf8, not as a syntax error of the whole text (finding: yajl's own
 * check made them "malformed JSON" of the body), in a secure parse too, and
 * a file holding one does not load. */
static void test_utf8_structure(void)
{
    static const struct {
        const char *text;
        const char *field;
    } cases[] = {
        {"{\"value\":\"\xe9\"}", "value"},         /* truncated: 3-byte lead, then the quote */
        {"{\"value\":\"\xc3\"}", "value"},         /* truncated: 2-byte lead */
        {"{\"value\":\"\xf0\x9f\x98\"}", "value"}, /* truncated: 4-byte lead, two more */
        {"{\"value\":\"ab\351cd\"}", "value"},     /* a lead byte, then ASCII */
        {"{\"value\":\"\x80\"}", "value"},         /* a lone continuation byte */
        {"{\"value\":\"\xc3\xa9\xbf\"}", "value"}, /* one continuation byte too many */
        {"{\"value\":\"ab\377cd\"}", "value"},     /* 0xFF */
        {"{\"value\":\"\xfe\"}", "value"},         /* 0xFE */
        {"{\"value\":\"x\",\"metadata\":{\"k\":\"\xe2\x82\"}}", "metadata.k"}, /* nested member */
        {"{\"a\":[\"ok\",\"\x80\"]}", "a"},                                    /* an array element: the array */
        {"{\"metadata\":{\"k\xe9\":\"v\"}}", "metadata"},                      /* a key: its object */
        {"{\"ok\":1,\"\xff\":1}", "body"},                                     /* a top-level key */
        {"{\"\x80\":{\"k\":\"v\"}}", "body"},                                  /* a key before a nested object */
    };
    for (int secure = 0; secure < 2; secure++) {
        for (size_t i = 0; i < SV_ARRAY_LEN(cases); i++) {
            sv_json_doc_t *doc = NULL;
            sv_json_error_t e;
            sv_json_status_t st = sv_json_parse(cases[i].text, strlen(cases[i].text), secure, &doc, &e);
            if (st != SV_JSON_EUTF8 || strcmp(e.field, cases[i].field) != 0)
                fprintf(stderr, "\n  case %zu (secure %d): status %d, field %s\n", i, secure, (int)st, e.field);
            CU_ASSERT_EQUAL(st, SV_JSON_EUTF8);
            CU_ASSERT_STRING_EQUAL(e.field, cases[i].field);
            CU_ASSERT_PTR_NULL(doc);
            sv_json_doc_free(doc);
        }
    }
    /* well-formed text around the same bytes still parses */
    sv_json_doc_t *doc;
    sv_json_error_t e;
    CU_ASSERT_EQUAL_FATAL(parse("{\"k\xc3\xa9\":\"\xe2\x82\xac \xf0\x9f\x98\x80\"}", &doc, &e), SV_JSON_OK);
    size_t len;
    const char *v = sv_json_get_str(sv_json_root(doc), "k\xc3\xa9", &len);
    CU_ASSERT(v != NULL && len == 8 && memcmp(v, "\xe2\x82\xac \xf0\x9f\x98\x80", 8) == 0);
    sv_json_doc_free(doc);
    /* a file with any of them is still refused as a whole (SV_ECORRUPT) */
    const char *dir = sv_test_tmpdir("json_utf8");
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    char path[512];
    snprintf(path, sizeof(path), "%s/f.json", dir);
    static const char *const files[] = {"{\"k\":\"\xe9\"}", "{\"k\":\"\xc0\xaf\"}", "{\"k\xff\":1}", "{\"k\":\"v\"}"};
    for (size_t i = 0; i < SV_ARRAY_LEN(files); i++) {
        FILE *f = fopen(path, "w");
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        fputs(files[i], f);
        fclose(f);
        doc = NULL;
        sv_err_t err = sv_json_load_file(path, &doc);
        CU_ASSERT_EQUAL(err, i + 1 < SV_ARRAY_LEN(files) ? SV_ECORRUPT : SV_OK);
        sv_json_doc_free(doc);
    }
    sv_test_rmdir(dir);
}

static void test_depth_limit(void)
{
    char deep[200];
    size_t n = 0;
    for (int i = 0; i < SV_JSON_MAX_DEPTH; i++)
        deep[n++] = '[';
    for (int i = 0; i < SV_JSON_MAX_DEPTH; i++)
        deep[n++] = ']';
    deep[n] = 0;
    sv_json_doc_t *doc;
    sv_json_error_t e;
    CU_ASSERT_EQUAL(parse(deep, &doc, &e), SV_JSON_OK);
    sv_json_doc_free(doc);
    char deeper[200] = "{\"v\":";
    n = strlen(deeper);
    for (int i = 0; i < SV_JSON_MAX_DEPTH; i++)
        deeper[n++] = '[';
    deeper[n] = 0;
    CU_ASSERT_EQUAL(parse(deeper, &doc, &e), SV_JSON_EDEPTH);
    CU_ASSERT_STRING_EQUAL(e.field, "v");
}

static void test_secure_parse(void)
{
    sv_json_doc_t *doc;
    sv_json_error_t e;
    const char *text = "{\"value\":{\"password\":\"hunter2\\\"x\"}}";
    CU_ASSERT_EQUAL_FATAL(sv_json_parse(text, strlen(text), true, &doc, &e), SV_JSON_OK);
    sv_buf_t out;
    sv_buf_init(&out, true);
    sv_json_serialize(sv_json_get(sv_json_root(doc), "value"), &out);
    CU_ASSERT_EQUAL(out.len, strlen("{\"password\":\"hunter2\\\"x\"}"));
    CU_ASSERT(memcmp(out.base, "{\"password\":\"hunter2\\\"x\"}", out.len) == 0);
    sv_buf_free(&out);
    sv_json_doc_free(doc);
}

static void test_writer(void)
{
    sv_buf_t b;
    sv_buf_init(&b, false);
    sv_jw_t jw;
    sv_jw_init(&jw, &b);
    sv_jw_obj_begin(&jw);
    sv_jw_key(&jw, "a\"b");
    sv_jw_str(&jw, "x\x01y", 3);
    sv_jw_key(&jw, "list");
    sv_jw_arr_begin(&jw);
    sv_jw_int(&jw, -1);
    sv_jw_uint(&jw, 2);
    sv_jw_bool(&jw, false);
    sv_jw_null(&jw);
    sv_jw_obj_begin(&jw);
    sv_jw_obj_end(&jw);
    sv_jw_arr_end(&jw);
    sv_jw_key(&jw, "t");
    sv_jw_time(&jw, 0);
    sv_jw_obj_end(&jw);
    sv_buf_putc(&b, 0);
    CU_ASSERT_STRING_EQUAL((char *)b.base,
                           "{\"a\\\"b\":\"x\\u0001y\",\"list\":[-1,2,false,null,{}],\"t\":\"1970-01-01T00:00:00Z\"}");
    sv_buf_free(&b);
}

void sv_test_suite_json(void)
{
    SV_SUITE("src/json", {"parse_values", test_parse_values}, {"parse_errors", test_parse_errors}, {"utf8", test_utf8},
             {"utf8_structure", test_utf8_structure}, {"depth_limit", test_depth_limit},
             {"secure_parse", test_secure_parse}, {"writer", test_writer});
}

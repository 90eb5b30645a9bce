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
    CU_ASSERT_EQUAL(parse("{\"a\":\"\xff\"}", &doc, &e), SV_JSON_ESYNTAX);
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
    SV_SUITE("src/json", {"parse_values", test_parse_values}, {"parse_errors", test_parse_errors},
             {"utf8", test_utf8}, {"depth_limit", test_depth_limit}, {"secure_parse", test_secure_parse}, {"writer", test_writer});
}

/* tests/src/test_pattern.c - secret paths and policy path patterns (src/pattern.c). */
#include "sv_autoconf.h"

#include <stdlib.h>

#include "src/pattern.h"
#include "tests/unit.h"

static const struct {
    const char *pattern, *path;
    bool match;
} cases[] = {
    /* the product page's own example */
    {"app/*", "app/db/password", false},
    {"app/**", "app/db/password", true},
    /* '*' is exactly one segment */
    {"app/*", "app/db", true},
    {"app/*", "app", false},
    {"*", "a", true},
    {"*", "a/b", false},
    {"*/*", "a/b", true},
    {"*/*", "a", false},
    {"*/b", "a/b", true},
    {"*/b", "a/c/b", false},
    {"app/*/password", "app/db/password", true},
    {"app/*/password", "app/db/x/password", false},
    /* '**' is any number of segments, zero included */
    {"app/**", "app", true},
    {"app/**", "app/a/b/c/d/e/f", true},
    {"app/**", "apple", false},
    {"app/**", "app2/x", false},
    {"app/db/**", "app/db", true},
    {"app/db/**", "app/dbx/y", false},
    {"app/db/**", "app/d", false},
    {"**", "a", true},
    {"**", "a/b/c", true},
    {"**/b", "b", true},
    {"**/b", "a/b", true},
    {"**/b", "a/x/y/b", true},
    {"**/b", "a/b/c", false},
    {"**/secret", "x/y/secret", true},
    {"**/secret", "secret2", false},
    /* '**' in the middle */
    {"a/**/b", "a/b", true},
    {"a/**/b", "a/x/b", true},
    {"a/**/b", "a/x/y/b", true},
    {"a/**/b", "a/x/y/c", false},
    {"a/**/b", "a/b/x", false},
    {"a/**/b", "b", false},
    {"a/**/b", "a/b/b", true},
    {"a/**/b/**", "a/b", true},
    {"a/**/b/**", "a/x/b/y/z", true},
    {"a/**/b/**", "a/x/c", false},
    {"a/**/**/b", "a/b", true},
    {"x/**/y/**/z", "x/y/z", true},
    {"x/**/y/**/z", "x/a/y/b/z", true},
    {"x/**/y/**/z", "x/a/z", false},
    {"app/**/password", "app/db/x/password", true},
    {"app/**/password", "app/password", true},
    {"**/*", "a", true},
    {"**/*/*", "a", false},
    {"**/*/*", "a/b", true},
    {"a/*/c/**", "a/b/c", true},
    {"a/*/c/**", "a/b/d", false},
    /* '*' inside a segment */
    {"db-*", "db-prod", true},
    {"db-*", "db-", true},
    {"db-*", "db", false},
    {"db-*", "xdb-prod", false},
    {"*-prod", "db-prod", true},
    {"*-prod", "db-prod/x", false},
    {"app/*.json", "app/config.json", true},
    {"app/*.json", "app/config.yaml", false},
    {"app/*.json", "app/dir/config.json", false},
    {"a*b*c", "abc", true},
    {"a*b*c", "aXbYc", true},
    {"a*b*c", "aXbY", false},
    {"a*b*c", "acb", false},
    {"*a*", "banana", true},
    {"*a", "banana", true},
    {"b*", "banana", true},
    {"n*", "banana", false},
    {"*an*an*", "banana", true},
    /* literals: anchored, exact, case-sensitive */
    {"app", "app", true},
    {"app", "app/x", false},
    {"app/db", "app/db", true},
    {"app/db", "app/dbx", false},
    {"app/db", "app", false},
    {"App/*", "app/x", false},
    {"a.b/c_d-e", "a.b/c_d-e", true},
    {"app/db/password", "app/db/password", true},
    {"app/db/password", "app/db/password2", false},
};

static void test_match_table(void)
{
    CU_ASSERT(SV_ARRAY_LEN(cases) >= 60);
    for (size_t i = 0; i < SV_ARRAY_LEN(cases); i++) {
        bool got = sv_pattern_match_str(cases[i].pattern, cases[i].path);
        if (got != cases[i].match)
            fprintf(stderr, "\n  pattern '%s' path '%s': got %d, want %d\n", cases[i].pattern, cases[i].path, got,
                    cases[i].match);
        CU_ASSERT_EQUAL(got, cases[i].match);
    }
}

static void test_compiled_reuse(void)
{
    /* one split path against many compiled patterns, as evaluation does */
    sv_path_segs_t segs;
    CU_ASSERT_FATAL(sv_path_split("app/db/password", 15, &segs));
    CU_ASSERT_EQUAL(segs.n, 3);
    const char *pats[] = {"app/**", "app/*/password", "**/password", "app/db/*", "*/*/*"};
    for (size_t i = 0; i < SV_ARRAY_LEN(pats); i++) {
        sv_pattern_t p;
        CU_ASSERT_EQUAL_FATAL(sv_pattern_compile(pats[i], strlen(pats[i]), &p, NULL), SV_OK);
        CU_ASSERT(sv_pattern_match(&p, &segs));
        sv_pattern_free(&p);
    }
    sv_pattern_t p;
    CU_ASSERT_EQUAL(sv_pattern_compile("app/**", 6, &p, NULL), SV_OK);
    CU_ASSERT_EQUAL(p.prefix_len, 3); /* "app", since the pattern also matches "app" itself */
    CU_ASSERT_FALSE(p.exact);
    sv_pattern_free(&p);
    CU_ASSERT_EQUAL(sv_pattern_compile("app/db", 6, &p, NULL), SV_OK);
    CU_ASSERT(p.exact);
    sv_pattern_free(&p);
}

static void test_bad_patterns(void)
{
    const char *bad[] = {"",    "/app",    "app/", "app//x", "a/./b", "a/../b",     "..",   "a**",
                         "**b", "a/***/b", "a b",  "a/$",    "a?",    "@partner/x", "a\\b", "x/**x"};
    for (size_t i = 0; i < SV_ARRAY_LEN(bad); i++) {
        const char *why = NULL;
        CU_ASSERT_EQUAL(sv_pattern_check(bad[i], strlen(bad[i]), &why), SV_EINVAL);
        CU_ASSERT_PTR_NOT_NULL(why);
    }
    const char *good[] = {"a/**", "**", "a/*/b", "a-*", "*.json", "a/**/b/**", "A.b_c-d/e"};
    for (size_t i = 0; i < SV_ARRAY_LEN(good); i++)
        CU_ASSERT_EQUAL(sv_pattern_check(good[i], strlen(good[i]), NULL), SV_OK);
    char big[600];
    memset(big, 'a', sizeof(big));
    CU_ASSERT_EQUAL(sv_pattern_check(big, 513, NULL), SV_EINVAL);
    CU_ASSERT_EQUAL(sv_pattern_check(big, 512, NULL), SV_OK);
    /* an invalid pattern or path never matches */
    CU_ASSERT_FALSE(sv_pattern_match_str("a**", "a"));
    CU_ASSERT_FALSE(sv_pattern_match_str("**", "a//b"));
}

static void test_secret_paths(void)
{
    const char *bad[] = {"", "/a", "a/", "a//b", ".", "a/..", "a/./b", "a b", "a/*", "a\nb", "@partner/x"};
    for (size_t i = 0; i < SV_ARRAY_LEN(bad); i++)
        CU_ASSERT_FALSE(sv_secret_path_valid(bad[i], strlen(bad[i])));
    CU_ASSERT(sv_secret_path_valid("app/db/password", 15));
    CU_ASSERT(sv_secret_path_valid("a..b/.x/x.", 10));
    char big[600];
    memset(big, 'a', sizeof(big));
    CU_ASSERT(sv_secret_path_valid(big, 512));
    CU_ASSERT_FALSE(sv_secret_path_valid(big, 513));
    /* 256 one-letter segments fit in 511 bytes */
    for (int i = 0; i < 511; i++)
        big[i] = i % 2 ? '/' : 'x';
    sv_path_segs_t segs;
    CU_ASSERT(sv_path_split(big, 511, &segs));
    CU_ASSERT_EQUAL(segs.n, 256);
    CU_ASSERT(sv_pattern_match_str("**/x", "x/x/x"));
}

void sv_test_suite_pattern(void)
{
    SV_SUITE("src/pattern", {"match_table", test_match_table}, {"compiled_reuse", test_compiled_reuse},
             {"bad_patterns", test_bad_patterns}, {"secret_paths", test_secret_paths});
}

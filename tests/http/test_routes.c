/* tests/http/test_routes.c - the route table (http/routes.c) against the
 * endpoint table of doc/api.md: every route has a row naming its scope, rate
 * category and audit action, and every row is a route. Adding an endpoint
 * without documenting it fails here. */
#include "sv_autoconf.h"

#include <stdlib.h>

#include "http/server.h"
#include "src/principal.h"
#include "tests/unit.h"

#define TABLE_HEADING "## Endpoints, scopes and rate categories"

static char *read_doc(void)
{
    const char *src = getenv("SV_SRCDIR");
    char path[1024];
    snprintf(path, sizeof(path), "%s/doc/api.md", src != NULL && src[0] ? src : "..");
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "\n  cannot open %s (set SV_SRCDIR to the source tree)\n", path);
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    buf[got] = 0;
    fclose(f);
    return buf;
}

/* The doc's row for a route, as the table spells it. */
static void row_of(const sv_route_t *rt, char *out, size_t cap)
{
    char scope[48], rate[32], action[64];
    if (rt->flags & SV_ROUTE_PUBLIC)
        snprintf(scope, sizeof(scope), "none (public)");
    else if (rt->scope == 0)
        snprintf(scope, sizeof(scope), "any");
    else
        snprintf(scope, sizeof(scope), "`%s`", sv_scope_name(rt->scope));
    if (rt->rate_category < 0)
        snprintf(rate, sizeof(rate), "none");
    else
        snprintf(rate, sizeof(rate), "`%s`", sv_rl_category_name((sv_rl_category_t)rt->rate_category));
    if (rt->flags & SV_ROUTE_NO_AUDIT)
        snprintf(action, sizeof(action), "not audited");
    else
        snprintf(action, sizeof(action), "`%s`", rt->action != NULL ? rt->action : "http_request");
    snprintf(out, cap, "| %s | `%s` | %s | %s | %s |", rt->method, rt->pattern, scope, rate, action);
}

typedef struct {
    const char *table; /* the table's text */
    unsigned routes, missing;
    char rows[256][200];
} check_t;

static void check_route(void *arg, const sv_route_t *rt)
{
    check_t *c = arg;
    char row[200];
    row_of(rt, row, sizeof(row));
    if (c->routes < 256)
        snprintf(c->rows[c->routes], sizeof(c->rows[0]), "%s", row);
    c->routes++;
    if (strstr(c->table, row) == NULL) {
        fprintf(stderr, "\n  doc/api.md lacks the row: %s\n", row);
        c->missing++;
    }
}

static void test_every_route_documented(void)
{
    char *doc = read_doc();
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    char *table = strstr(doc, TABLE_HEADING);
    CU_ASSERT_PTR_NOT_NULL_FATAL(table);
    char *end = strstr(table + 1, "\n## ");
    if (end != NULL)
        *end = 0;
    sv_router_t *r;
    CU_ASSERT_EQUAL_FATAL(sv_router_new(&r), SV_OK);
    CU_ASSERT_EQUAL_FATAL(sv_http_register_routes(r), SV_OK);
    check_t *c = calloc(1, sizeof(*c));
    c->table = table;
    sv_router_each(r, check_route, c);
    CU_ASSERT(c->routes > 0);
    CU_ASSERT_EQUAL(c->missing, 0);
    /* and every row of the table is a route */
    for (char *line = strstr(table, "\n| "); line != NULL; line = strstr(line + 1, "\n| ")) {
        char *eol = strchr(line + 1, '\n');
        size_t len = eol ? (size_t)(eol - line - 1) : strlen(line + 1);
        if (strncmp(line + 1, "| method", 8) == 0 || strncmp(line + 1, "|---", 4) == 0)
            continue;
        bool known = false;
        for (unsigned i = 0; i < c->routes && i < 256 && !known; i++)
            known = strlen(c->rows[i]) == len && strncmp(c->rows[i], line + 1, len) == 0;
        if (!known)
            fprintf(stderr, "\n  doc/api.md has a row for no route: %.*s\n", (int)len, line + 1);
        CU_ASSERT(known);
    }
    free(c);
    sv_router_free(r);
    free(doc);
}

void sv_test_suite_routes(void)
{
    SV_SUITE("http/routes", {"every_route_documented", test_every_route_documented});
}

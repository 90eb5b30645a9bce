/* tests/http/test_request.c - the client address of a request
 * (sv_http_client_ip in http/request.c): the socket peer, or X-Forwarded-For
 * only behind a trusted proxy. */
#include "sv_autoconf.h"

#include "http/request.h"
#include "tests/unit.h"

static sv_ip_t ip(const char *s)
{
    sv_ip_t a;
    CU_ASSERT_EQUAL_FATAL(sv_ip_parse(s, strlen(s), &a), SV_OK);
    return a;
}

/* The address chosen for peer with the given X-Forwarded-For headers (NULL
 * terminated) and TRUSTED_PROXIES list (comma separated, may be ""). */
static const char *client(const char *peer, const char *const *xff, const char *trusted)
{
    static char out[46];
    sv_cidr_t cidrs[8];
    unsigned n = 0;
    for (const char *p = trusted; *p != 0 && n < 8;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        CU_ASSERT_EQUAL_FATAL(sv_cidr_parse(p, len, &cidrs[n]), SV_OK);
        n++;
        p += len + (e ? 1 : 0);
    }
    h2o_iovec_t headers[8];
    size_t nh = 0;
    for (; xff != NULL && xff[nh] != NULL; nh++)
        headers[nh] = h2o_iovec_init(xff[nh], strlen(xff[nh]));
    sv_ip_t p = ip(peer), c;
    sv_http_client_ip(&p, headers, nh, cidrs, n, &c);
    sv_ip_format(&c, out);
    return out;
}

static void test_untrusted_peer(void)
{
    const char *xff[] = {"203.0.113.9", NULL};
    CU_ASSERT_STRING_EQUAL(client("198.51.100.1", NULL, ""), "198.51.100.1");
    /* without TRUSTED_PROXIES the header is never believed */
    CU_ASSERT_STRING_EQUAL(client("198.51.100.1", xff, ""), "198.51.100.1");
    /* nor from a peer outside the list */
    CU_ASSERT_STRING_EQUAL(client("198.51.100.1", xff, "10.0.0.0/8"), "198.51.100.1");
}

static void test_trusted_proxy(void)
{
    const char *one[] = {"203.0.113.9", NULL};
    CU_ASSERT_STRING_EQUAL(client("10.0.0.5", one, "10.0.0.0/8"), "203.0.113.9");
    /* the client may send its own header: only the entry our proxy added counts */
    const char *spoof[] = {"6.6.6.6, 203.0.113.9", NULL};
    CU_ASSERT_STRING_EQUAL(client("10.0.0.5", spoof, "10.0.0.0/8"), "203.0.113.9");
    /* a chain of trusted proxies is skipped from the right */
    const char *chain[] = {"6.6.6.6,203.0.113.9 , 10.0.0.7,10.0.0.8", NULL};
    CU_ASSERT_STRING_EQUAL(client("10.0.0.5", chain, "10.0.0.0/8"), "203.0.113.9");
    /* a proxy that adds a second header instead of appending: the last header counts */
    const char *two[] = {"6.6.6.6", "203.0.113.9", NULL};
    CU_ASSERT_STRING_EQUAL(client("10.0.0.5", two, "10.0.0.0/8"), "203.0.113.9");
    const char *two_chain[] = {"6.6.6.6, 203.0.113.9", "10.0.0.7", NULL};
    CU_ASSERT_STRING_EQUAL(client("10.0.0.5", two_chain, "10.0.0.0/8"), "203.0.113.9");
    /* everything trusted: the leftmost address */
    const char *all[] = {"10.0.0.1, 10.0.0.2", NULL};
    CU_ASSERT_STRING_EQUAL(client("10.0.0.5", all, "10.0.0.0/8"), "10.0.0.1");
    /* IPv6, and an IPv4 client behind an IPv6 proxy */
    const char *v6[] = {"2001:db8::7", NULL};
    CU_ASSERT_STRING_EQUAL(client("fd00::1", v6, "fd00::/8"), "2001:db8::7");
    CU_ASSERT_STRING_EQUAL(client("fd00::1", one, "fd00::/8,10.0.0.0/8"), "203.0.113.9");
    /* an IPv4 peer seen as IPv4-mapped IPv6 still matches an IPv4 CIDR */
    CU_ASSERT_STRING_EQUAL(client("::ffff:10.0.0.5", one, "10.0.0.0/8"), "203.0.113.9");
}

static void test_malformed(void)
{
    /* a malformed entry ends the walk at the last address found */
    const char *junk_right[] = {"203.0.113.9, junk", NULL};
    CU_ASSERT_STRING_EQUAL(client("10.0.0.5", junk_right, "10.0.0.0/8"), "10.0.0.5");
    const char *junk_left[] = {"junk, 10.0.0.7", NULL};
    CU_ASSERT_STRING_EQUAL(client("10.0.0.5", junk_left, "10.0.0.0/8"), "10.0.0.7");
    const char *empty[] = {"", NULL};
    CU_ASSERT_STRING_EQUAL(client("10.0.0.5", empty, "10.0.0.0/8"), "10.0.0.5");
    const char *port[] = {"203.0.113.9:443", NULL};
    CU_ASSERT_STRING_EQUAL(client("10.0.0.5", port, "10.0.0.0/8"), "10.0.0.5");
}

void sv_test_suite_request(void)
{
    SV_SUITE("http/request", {"untrusted_peer", test_untrusted_peer}, {"trusted_proxy", test_trusted_proxy},
             {"malformed", test_malformed});
}

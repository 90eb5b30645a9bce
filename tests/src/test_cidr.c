/* tests/src/test_cidr.c - addresses and CIDR blocks (src/cidr.c). */
#include "sv_autoconf.h"

#include "src/cidr.h"
#include "tests/unit.h"

static bool in(const char *block, const char *ip)
{
    sv_cidr_t c;
    sv_ip_t a;
    CU_ASSERT_EQUAL_FATAL(sv_cidr_parse(block, strlen(block), &c), SV_OK);
    CU_ASSERT_EQUAL_FATAL(sv_ip_parse(ip, strlen(ip), &a), SV_OK);
    return sv_cidr_contains(&c, &a);
}

static void test_contains(void)
{
    CU_ASSERT(in("10.0.0.0/8", "10.255.1.2"));
    CU_ASSERT_FALSE(in("10.0.0.0/8", "11.0.0.1"));
    CU_ASSERT(in("192.168.1.0/24", "192.168.1.255"));
    CU_ASSERT_FALSE(in("192.168.1.0/24", "192.168.2.0"));
    CU_ASSERT(in("0.0.0.0/0", "8.8.8.8"));
    CU_ASSERT_FALSE(in("0.0.0.0/0", "::1"));
    CU_ASSERT(in("127.0.0.1", "127.0.0.1"));
    CU_ASSERT_FALSE(in("127.0.0.1", "127.0.0.2"));
    CU_ASSERT(in("2001:db8::/32", "2001:db8:1::5"));
    CU_ASSERT_FALSE(in("2001:db8::/32", "2001:db9::1"));
    CU_ASSERT(in("::/0", "::1"));
}

static void test_rejects(void)
{
    sv_cidr_t c;
    const char *bad[] = {"10.0.0.1/8", "10.0.0.0/33", "10.0.0.0/", "10.0.0.0/08", "::/129", "300.0.0.0/8", "x", ""};
    for (size_t i = 0; i < SV_ARRAY_LEN(bad); i++)
        CU_ASSERT_EQUAL(sv_cidr_parse(bad[i], strlen(bad[i]), &c), SV_EINVAL);
}

static void test_format(void)
{
    sv_ip_t a;
    char out[46];
    sv_ip_parse("10.1.2.3", 8, &a);
    sv_ip_format(&a, out);
    CU_ASSERT_STRING_EQUAL(out, "10.1.2.3");
    sv_ip_parse("2001:db8::1", 11, &a);
    sv_ip_format(&a, out);
    CU_ASSERT_STRING_EQUAL(out, "2001:db8::1");
}

void sv_test_suite_cidr(void)
{
    SV_SUITE("src/cidr", {"contains", test_contains}, {"rejects", test_rejects}, {"format", test_format});
}

/*
 * cidr.c - addresses and CIDR blocks (cidr.h). Pure functions; any thread.
 */
#include "sv_autoconf.h"

#include "src/cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

static const uint8_t v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static bool parse_addr(const char *s, size_t len, uint8_t out[16], bool *is_v4)
{
    char buf[64];
    if (len == 0 || len >= sizeof(buf))
        return false;
    memcpy(buf, s, len);
    buf[len] = 0;
    struct in_addr a4;
    if (inet_pton(AF_INET, buf, &a4) == 1) {
        memcpy(out, v4_mapped_prefix, 12);
        memcpy(out + 12, &a4, 4);
        *is_v4 = true;
        return true;
    }
    if (inet_pton(AF_INET6, buf, out) == 1) {
        *is_v4 = false;
        return true;
    }
    return false;
}

sv_err_t sv_ip_parse(const char *s, size_t len, sv_ip_t *out)
{
    bool v4;
    return parse_addr(s, len, out->addr, &v4) ? SV_OK : SV_EINVAL;
}

sv_err_t sv_cidr_parse(const char *s, size_t len, sv_cidr_t *out)
{
    const char *slash = memchr(s, '/', len);
    size_t alen = slash ? (size_t)(slash - s) : len;
    bool v4;
    if (!parse_addr(s, alen, out->addr, &v4))
        return SV_EINVAL;
    unsigned max = v4 ? 32 : 128, bits = max;
    if (slash != NULL) {
        size_t plen = len - alen - 1;
        if (plen == 0 || plen > 3)
            return SV_EINVAL;
        bits = 0;
        for (size_t i = 0; i < plen; i++) {
            char c = slash[1 + i];
            if (c < '0' || c > '9')
                return SV_EINVAL;
            bits = bits * 10 + (unsigned)(c - '0');
        }
        if (bits > max || (plen > 1 && slash[1] == '0'))
            return SV_EINVAL;
    }
    out->prefix = (uint8_t)(v4 ? bits + 96 : bits);
    /* host bits must be zero */
    for (unsigned i = out->prefix; i < 128; i++)
        if (out->addr[i / 8] & (0x80 >> (i % 8)))
            return SV_EINVAL;
    return SV_OK;
}

sv_err_t sv_ip_from_sockaddr(const struct sockaddr *sa, sv_ip_t *out)
{
    if (sa == NULL)
        return SV_EINVAL;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        memcpy(out->addr, v4_mapped_prefix, 12);
        memcpy(out->addr + 12, &in->sin_addr, 4);
        return SV_OK;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        memcpy(out->addr, &in6->sin6_addr, 16);
        return SV_OK;
    }
    return SV_EINVAL;
}

bool sv_cidr_contains(const sv_cidr_t *block, const sv_ip_t *ip)
{
    unsigned full = block->prefix / 8, rest = block->prefix % 8;
    if (memcmp(block->addr, ip->addr, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (block->addr[full] & mask) == (ip->addr[full] & mask);
}

void sv_ip_format(const sv_ip_t *ip, char out[46])
{
    if (memcmp(ip->addr, v4_mapped_prefix, 12) == 0)
        inet_ntop(AF_INET, ip->addr + 12, out, 46);
    else
        inet_ntop(AF_INET6, ip->addr, out, 46);
}

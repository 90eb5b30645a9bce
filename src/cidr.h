/*
 * cidr.h - IPv4 and IPv6 addresses and CIDR blocks, for TRUSTED_PROXIES and
 * the `ip_allow` policy condition. IPv4 is held as an IPv4-mapped IPv6
 * address so that one comparison serves both.
 */
#ifndef SV_CIDR_H
#define SV_CIDR_H

#include <sys/socket.h>

#include "src/sv.h"

typedef struct {
    uint8_t addr[16]; /* IPv6, or IPv4-mapped (::ffff:a.b.c.d) */
    uint8_t prefix;   /* 0..128, counted on the 128-bit form */
} sv_cidr_t;

typedef struct {
    uint8_t addr[16];
} sv_ip_t;

/** Parses "10.0.0.0/8", "2001:db8::/32", or a bare address (a /32 or /128).
 * Host bits past the prefix must be zero. SV_EINVAL otherwise. */
sv_err_t sv_cidr_parse(const char *s, size_t len, sv_cidr_t *out);
/** Parses a bare IPv4 or IPv6 address. */
sv_err_t sv_ip_parse(const char *s, size_t len, sv_ip_t *out);
/** Takes the address of a socket peer. */
sv_err_t sv_ip_from_sockaddr(const struct sockaddr *sa, sv_ip_t *out);
/** Whether ip lies in block. */
bool sv_cidr_contains(const sv_cidr_t *block, const sv_ip_t *ip);
/** Formats ip (IPv4-mapped ones as a.b.c.d) into out (>= 46 bytes). */
void sv_ip_format(const sv_ip_t *ip, char out[46]);

#endif

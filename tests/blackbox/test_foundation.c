/* tests/blackbox/test_foundation.c - the HTTP layer, errors, configuration,
 * command line and graceful shutdown, through the real binary. */
#include "sv_autoconf.h"

#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tests/blackbox/bb.h"

static bb_server_t srv;
static const char *const test_env[] = {"SCAIVAULT_TEST_FAULTS=true", NULL};

static int suite_init(void)
{
    return bb_start(&srv, test_env) ? 0 : 1;
}

static int suite_clean(void)
{
    bb_stop(&srv);
    bb_cleanup(&srv);
    return 0;
}

static void test_health(void)
{
    bb_resp_t r;
    CU_ASSERT_FATAL(bb_req(&srv, "GET", "/v1/health", NULL, NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 200);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "status"), "ok");
    char id[128];
    CU_ASSERT_PTR_NOT_NULL_FATAL(bb_header(&r, "x-request-id", id, sizeof(id)));
    CU_ASSERT_EQUAL(strlen(id), 30);
    CU_ASSERT(strncmp(id, "req_", 4) == 0);
    char ct[64];
    CU_ASSERT_PTR_NOT_NULL(bb_header(&r, "content-type", ct, sizeof(ct)));
    CU_ASSERT_STRING_EQUAL(ct, "application/json");
    bb_resp_free(&r);
}

static void test_request_id(void)
{
    bb_resp_t r;
    const char *good[] = {"X-Request-ID: my-trace.123_ABC", NULL};
    CU_ASSERT_FATAL(bb_req_h(&srv, "GET", "/v1/nope", good, NULL, 0, &r));
    char id[128];
    bb_header(&r, "x-request-id", id, sizeof(id));
    CU_ASSERT_STRING_EQUAL(id, "my-trace.123_ABC");
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "error.request_id"), "my-trace.123_ABC");
    bb_resp_free(&r);
    const char *bad[] = {"X-Request-ID: has space/and<angle>", NULL};
    CU_ASSERT_FATAL(bb_req_h(&srv, "GET", "/v1/health", bad, NULL, 0, &r));
    bb_header(&r, "x-request-id", id, sizeof(id));
    CU_ASSERT(strncmp(id, "req_", 4) == 0);
    bb_resp_free(&r);
}

static void test_not_found_and_method(void)
{
    bb_resp_t r;
    CU_ASSERT_FATAL(bb_req(&srv, "GET", "/v1/does/not/exist", NULL, NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 404);
    BB_ASSERT_CODE(&r, "not_found");
    CU_ASSERT_PTR_NOT_NULL(bb_json_str(&r, "error.message"));
    CU_ASSERT_PTR_NOT_NULL(bb_json(&r, "error.details"));
    char id[128];
    bb_header(&r, "x-request-id", id, sizeof(id));
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "error.request_id"), id);
    bb_resp_free(&r);
    CU_ASSERT_FATAL(bb_req(&srv, "DELETE", "/v1/health", NULL, NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 405);
    BB_ASSERT_CODE(&r, "method_not_allowed");
    char allow[64];
    CU_ASSERT_PTR_NOT_NULL(bb_header(&r, "allow", allow, sizeof(allow)));
    CU_ASSERT_STRING_EQUAL(allow, "GET");
    bb_resp_free(&r);
}

static void test_authentication_errors(void)
{
    bb_resp_t r;
    CU_ASSERT_FATAL(bb_req(&srv, "DELETE", "/v1/sys/faults", NULL, NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 401);
    BB_ASSERT_CODE(&r, "authentication_required");
    char wa[128];
    CU_ASSERT_PTR_NOT_NULL(bb_header(&r, "www-authenticate", wa, sizeof(wa)));
    bb_resp_free(&r);
    CU_ASSERT_FATAL(bb_req(&srv, "DELETE", "/v1/sys/faults", "not-the-token", NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 401);
    BB_ASSERT_CODE(&r, "token_invalid");
    CU_ASSERT_PTR_NOT_NULL(bb_header(&r, "www-authenticate", wa, sizeof(wa)));
    CU_ASSERT_PTR_NOT_NULL(strstr(wa, "error=\"invalid_token\""));
    bb_resp_free(&r);
    CU_ASSERT_FATAL(bb_req(&srv, "DELETE", "/v1/sys/faults", srv.token, NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 204);
    bb_resp_free(&r);
    /* a header that decides who acts, given twice: which one counts would be
     * up to each hop on the way, so neither does */
    char auth[120];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", srv.token);
    const char *two_auth[] = {auth, "Authorization: Bearer not-the-token", NULL};
    CU_ASSERT_FATAL(bb_req_h(&srv, "GET", "/v1/secrets?prefix=a", two_auth, NULL, 0, &r));
    BB_ASSERT_STATUS(&r, 400);
    BB_ASSERT_CODE(&r, "invalid_request");
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "error.details.field"), "Authorization");
    bb_resp_free(&r);
    const char *two_tenants[] = {auth, "X-ScaiVault-Tenant: tnt_one", "X-ScaiVault-Tenant: tnt_two", NULL};
    CU_ASSERT_FATAL(bb_req_h(&srv, "GET", "/v1/secrets?prefix=a", two_tenants, NULL, 0, &r));
    BB_ASSERT_STATUS(&r, 400);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "error.details.field"), "X-ScaiVault-Tenant");
    bb_resp_free(&r);
    const char *one_tenant[] = {auth, "X-ScaiVault-Tenant: tnt_one", NULL};
    CU_ASSERT_FATAL(bb_req_h(&srv, "GET", "/v1/secrets?prefix=a", one_tenant, NULL, 0, &r));
    BB_ASSERT_STATUS(&r, 200);
    bb_resp_free(&r);
}

static void test_body_limits(void)
{
    size_t big = 2 * 1024 * 1024;
    char *body = malloc(big + 1);
    memset(body, ' ', big);
    memcpy(body, "{\"op\":\"", 7);
    body[big - 2] = '"';
    body[big - 1] = '}';
    body[big] = 0;
    bb_resp_t r;
    CU_ASSERT_FATAL(bb_req(&srv, "POST", "/v1/sys/faults", srv.token, NULL, body, &r));
    BB_ASSERT_STATUS(&r, 413);
    BB_ASSERT_CODE(&r, "payload_too_large");
    bb_resp_free(&r);
    free(body);

    CU_ASSERT_FATAL(bb_req(&srv, "POST", "/v1/sys/faults", srv.token, NULL, "{\"op\": ", &r));
    BB_ASSERT_STATUS(&r, 400);
    BB_ASSERT_CODE(&r, "invalid_request");
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "error.details.field"), "body");
    bb_resp_free(&r);

    char deep[256] = "{\"op\":";
    size_t n = strlen(deep);
    for (int i = 0; i < 40; i++)
        deep[n++] = '[';
    deep[n] = 0;
    CU_ASSERT_FATAL(bb_req(&srv, "POST", "/v1/sys/faults", srv.token, NULL, deep, &r));
    BB_ASSERT_STATUS(&r, 400);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "error.details.field"), "op");
    bb_resp_free(&r);

    CU_ASSERT_FATAL(bb_req(&srv, "POST", "/v1/sys/faults", srv.token, NULL, "{\"op\":\"disk\"}", &r));
    BB_ASSERT_STATUS(&r, 400);
    CU_ASSERT_STRING_EQUAL(bb_json_str(&r, "error.details.field"), "op");
    bb_resp_free(&r);

    CU_ASSERT_FATAL(bb_req(&srv, "POST", "/v1/sys/faults", srv.token, NULL, "[1,2]", &r));
    BB_ASSERT_STATUS(&r, 400);
    bb_resp_free(&r);
}

static void test_bad_path_encoding(void)
{
    bb_resp_t r;
    CU_ASSERT_FATAL(bb_req(&srv, "GET", "/v1/health%zz", NULL, NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 400);
    BB_ASSERT_CODE(&r, "invalid_request");
    bb_resp_free(&r);
    CU_ASSERT_FATAL(bb_req(&srv, "GET", "/v1/health%00", NULL, NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 400);
    bb_resp_free(&r);
}

static void test_access_log(void)
{
    bb_resp_t r;
    const char *hdr[] = {"X-Request-ID: access-log-probe-1", "Authorization: Bearer should-not-be-logged-xyz", NULL};
    CU_ASSERT_FATAL(bb_req_h(&srv, "GET", "/v1/health", hdr, NULL, 0, &r));
    bb_resp_free(&r);
    usleep(300000); /* the access log is flushed every 50 ms */
    CU_ASSERT(bb_file_contains_str(srv.log_path, "\"request_id\":\"access-log-probe-1\""));
    CU_ASSERT(bb_file_contains_str(srv.log_path, "\"route\":\"/v1/health\""));
    CU_ASSERT(bb_file_contains_str(srv.log_path, "\"duration_us\":"));
    CU_ASSERT_FALSE(bb_file_contains_str(srv.log_path, "should-not-be-logged"));
}

static void test_bad_config_exits_2(void)
{
    char out[2048];
    const char *args[] = {"server", NULL};
    const char *env1[] = {"SCAIVAULT_THREADS=lots", NULL};
    CU_ASSERT_EQUAL(bb_run(args, env1, out, sizeof(out)), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "SCAIVAULT_THREADS"));
    const char *env2[] = {"SCAIVAULT_LISTEN=nowhere", NULL};
    CU_ASSERT_EQUAL(bb_run(args, env2, out, sizeof(out)), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "SCAIVAULT_LISTEN"));
    const char *env3[] = {"RATE_LIMIT_WRITE=many", NULL};
    CU_ASSERT_EQUAL(bb_run(args, env3, out, sizeof(out)), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "RATE_LIMIT_WRITE"));
    /* "keep forever" written as a huge duration: refused, not overflowed into
     * a retention that prunes everything */
    const char *env5[] = {"AUDIT_RETENTION=999999999d", NULL};
    CU_ASSERT_EQUAL(bb_run(args, env5, out, sizeof(out)), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "AUDIT_RETENTION"));
    /* a port another server holds: refused, not shared through SO_REUSEPORT */
    char taken[64];
    snprintf(taken, sizeof(taken), "SCAIVAULT_LISTEN=127.0.0.1:%d", srv.port);
    const char *env4[] = {taken, NULL};
    CU_ASSERT_EQUAL(bb_run(args, env4, out, sizeof(out)), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "already in use"));
    const char *bad_opt[] = {"server", "--frobnicate", NULL};
    CU_ASSERT_EQUAL(bb_run(bad_opt, NULL, out, sizeof(out)), 2);
    const char *flag_value[] = {"server", "--dev=true", NULL}; /* not a dev server in disguise */
    CU_ASSERT_EQUAL(bb_run(flag_value, NULL, out, sizeof(out)), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "takes no value"));
    const char *bad_cmd[] = {"frobnicate", NULL};
    CU_ASSERT_EQUAL(bb_run(bad_cmd, NULL, out, sizeof(out)), 2);
    const char *version[] = {"version", NULL};
    CU_ASSERT_EQUAL(bb_run(version, NULL, out, sizeof(out)), 0);
    CU_ASSERT(strncmp(out, "scaivault ", 10) == 0);
}

static void test_config_file(void)
{
    bb_server_t s = {0};
    const char *dir = sv_test_tmpdir("cfgfile");
    char path[600], arg[620];
    snprintf(path, sizeof(path), "%s/sv.env", dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "SCAIVAULT_THREADS=1\nexport\tLOG_LEVEL=debug\n"); /* "export" and a tab, as a shell takes it */
    fclose(f);
    snprintf(arg, sizeof(arg), "--config=%s", path);
    const char *args[] = {arg, NULL};
    /* SCAIVAULT_THREADS unset: the file's value applies; a misspelt variable is named in a warning */
    const char *env[] = {"SCAIVAULT_THREADS=", "SCAIVAULT_THRAEDS=3", NULL};
    CU_ASSERT_FATAL(bb_start_args(&s, env, args, true));
    CU_ASSERT_EQUAL(bb_stop(&s), 0);
    /* read once stopped: the "started" line may follow the first answer */
    CU_ASSERT(bb_file_contains_str(s.log_path, "\"threads\":1"));
    CU_ASSERT(bb_file_contains_str(s.log_path, "SCAIVAULT_THRAEDS: not a ScaiVault setting"));
    bb_cleanup(&s);
    /* a bad value in the file names the variable too */
    f = fopen(path, "w");
    fprintf(f, "AUDIT_DURABILITY=sometimes\n");
    fclose(f);
    char out[1024];
    const char *args2[] = {"server", arg, NULL};
    CU_ASSERT_EQUAL(bb_run(args2, NULL, out, sizeof(out)), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "AUDIT_DURABILITY"));
    /* a NUL byte would cut a value short (or hide a comment's end): refused */
    f = fopen(path, "w");
    fwrite("LOG_LEVEL=warn\0garbage\n", 1, 24, f);
    fclose(f);
    CU_ASSERT_EQUAL(bb_run(args2, NULL, out, sizeof(out)), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "line 1: contains a NUL byte"));
    /* a directory, or no value at all: refused, not a start on the defaults */
    char dir_arg[620];
    snprintf(dir_arg, sizeof(dir_arg), "--config=%s", dir);
    const char *args3[] = {"server", dir_arg, NULL};
    CU_ASSERT_EQUAL(bb_run(args3, NULL, out, sizeof(out)), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "not a regular file"));
    /* a key set twice: an edit of the first copy would have no effect */
    f = fopen(path, "w");
    fputs("SCAIVAULT_THREADS=bogus\nSCAIVAULT_THREADS=2\n", f);
    fclose(f);
    CU_ASSERT_EQUAL(bb_run(args2, NULL, out, sizeof(out)), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "SCAIVAULT_THREADS: set twice"));
    /* nor a FIFO with no writer, which opening would wait for (given up after 10 s) */
    char fifo[620], fifo_arg[640];
    snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
    CU_ASSERT_EQUAL_FATAL(mkfifo(fifo, 0600), 0);
    snprintf(fifo_arg, sizeof(fifo_arg), "--config=%s", fifo);
    const char *args5[] = {"server", fifo_arg, NULL};
    CU_ASSERT_EQUAL(bb_run_exe(bb_bin(), args5, NULL, out, sizeof(out), 10000), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "not a regular file"));
    unlink(fifo);
    const char *args4[] = {"server", "--config", NULL};
    CU_ASSERT_EQUAL(bb_run(args4, NULL, out, sizeof(out)), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "no value given for '--config'"));
    sv_test_rmdir(dir);
}

static void test_tls_and_http2(void)
{
    const char *dir = sv_test_tmpdir("tls");
    char cmd[1400], cert[600], key[600];
    snprintf(cert, sizeof(cert), "%s/tls.crt", dir);
    snprintf(key, sizeof(key), "%s/tls.key", dir);
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
             "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout %s -out %s 2>/dev/null",
             key, cert);
    CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
    char env_cert[700], env_key[700];
    snprintf(env_cert, sizeof(env_cert), "SCAIVAULT_TLS_CERT=%s", cert);
    snprintf(env_key, sizeof(env_key), "SCAIVAULT_TLS_KEY=%s", key);
    const char *env[] = {env_cert, env_key, NULL};
    bb_server_t s = {.tls = true};
    CU_ASSERT_FATAL(bb_start(&s, env));
    bb_resp_t r;
    CU_ASSERT(bb_req(&s, "GET", "/v1/health", NULL, NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 200);
    CU_ASSERT_EQUAL(s.http_version, CURL_HTTP_VERSION_2_0); /* negotiated by ALPN */
    bb_resp_free(&r);
    CU_ASSERT(bb_req(&s, "GET", "/v1/nope", NULL, NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 404);
    BB_ASSERT_CODE(&r, "not_found");
    bb_resp_free(&r);
    /* over HTTP/2 as over HTTP/1.1: no more than 100 header fields (HPACK has no bound of its own) */
    static char names[120][24];
    const char *many[121];
    for (int i = 0; i < 120; i++) {
        snprintf(names[i], sizeof(names[i]), "x-filler-%d: %d", i, i);
        many[i] = names[i];
    }
    many[120] = NULL;
    CU_ASSERT(bb_req_h(&s, "GET", "/v1/health", many, NULL, 0, &r));
    BB_ASSERT_STATUS(&r, 400);
    BB_ASSERT_CODE(&r, "invalid_request");
    bb_resp_free(&r);
    many[90] = NULL; /* with curl's own few: below 100 */
    CU_ASSERT(bb_req_h(&s, "GET", "/v1/health", many, NULL, 0, &r));
    BB_ASSERT_STATUS(&r, 200);
    bb_resp_free(&r);
    CU_ASSERT_EQUAL(bb_stop(&s), 0);
    bb_cleanup(&s);
    /* a key that does not match the certificate: exit 2 naming the variable */
    snprintf(cmd, sizeof(cmd), "openssl genpkey -algorithm ed25519 -out %s 2>/dev/null", key);
    CU_ASSERT_EQUAL(system(cmd), 0);
    char out[1024];
    const char *args[] = {"server", NULL};
    const char *env2[] = {env_cert, env_key, "SCAIVAULT_LISTEN=127.0.0.1:0", NULL};
    CU_ASSERT_EQUAL(bb_run(args, env2, out, sizeof(out)), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "SCAIVAULT_TLS_KEY"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "does not match the certificate"));
    /* a key protected by a passphrase: refused at once (OpenSSL would have asked on the terminal,
     * with SIGINT and SIGTERM blocked), saying why */
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -passout pass:secret -days 1 "
             "-subj /CN=127.0.0.1 -keyout %s -out %s 2>/dev/null",
             key, cert);
    CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
    CU_ASSERT_EQUAL(bb_run(args, env2, out, sizeof(out)), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "is encrypted (protected by a passphrase)"));
    CU_ASSERT_PTR_NULL(strstr(out, "pass phrase"));
    sv_test_rmdir(dir);
}

/* ---- SIGTERM under load ---- */

typedef struct {
    char url[128];
    atomic_bool *stop, *signalled;
    long ok, refused, reset, broken;
    int first_error;
    long first_status;
} hammer_t;

static size_t sink(char *p, size_t s, size_t n, void *u)
{
    return s * n;
}

/* A reset (ECONNRESET or EPIPE, on sending or receiving) means the server
 * closed the socket with the request unread: a kept-alive connection closed as
 * idle while this request was on its way, or a connection the kernel completed
 * in the instant a listener closed, before the server could accept it. The
 * request was never seen, so RFC 9112 9.3.1 has a client retry it on a new
 * connection, which must then be answered or refused. A request the server
 * read and left unanswered ends in a plain close (CURLE_GOT_NOTHING, after
 * libcurl's own retry of a reused connection) and counts as dropped. */
static bool is_reset(CURLcode rc, long status)
{
    return status == 0 && (rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR);
}

static void *hammer(void *arg)
{
    hammer_t *h = arg;
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, h->url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    while (!atomic_load(h->stop)) {
        CURLcode rc = curl_easy_perform(c);
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        for (int retry = 0; retry < 3 && is_reset(rc, status); retry++) {
            curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, 1L);
            rc = curl_easy_perform(c);
            curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, 0L);
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        }
        if (rc == CURLE_OK && status == 200)
            h->ok++;
        else if (rc == CURLE_COULDNT_CONNECT)
            h->refused++;
        else if (is_reset(rc, status) && atomic_load(h->signalled))
            h->reset++; /* new connections reset as the listeners closed */
        else if (h->broken++ == 0) {
            h->first_error = (int)rc;
            h->first_status = status;
        }
        if (rc == CURLE_COULDNT_CONNECT || is_reset(rc, status))
            break;
    }
    curl_easy_cleanup(c);
    return NULL;
}

static void test_sigterm_drops_nothing(void)
{
    bb_server_t s = {0};
    CU_ASSERT_FATAL(bb_start(&s, NULL));
    atomic_bool stop = false, signalled = false;
    enum { N = 8 };
    hammer_t h[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        memset(&h[i], 0, sizeof(h[i]));
        snprintf(h[i].url, sizeof(h[i].url), "%s/v1/health", s.url);
        h[i].stop = &stop;
        h[i].signalled = &signalled;
        pthread_create(&th[i], NULL, hammer, &h[i]);
    }
    usleep(500000);
    atomic_store(&signalled, true);
    int rc = bb_stop(&s);
    usleep(200000);
    atomic_store(&stop, true);
    long ok = 0, broken = 0, reset = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        ok += h[i].ok;
        broken += h[i].broken;
        reset += h[i].reset;
        if (h[i].broken)
            fprintf(stderr, "\n  client %d: first failure curl %d (%s), status %ld", i, h[i].first_error,
                    curl_easy_strerror((CURLcode)h[i].first_error), h[i].first_status);
    }
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT(ok > 100);
    if (broken != 0)
        fprintf(stderr, "\n  %ld responses dropped of %ld\n", broken, ok + broken);
    if (reset != 0) /* not an error: see is_reset() */
        fprintf(stderr, "\n  (%ld new connection(s) reset as the listeners closed)", reset);
    CU_ASSERT_EQUAL(broken, 0);
    bb_cleanup(&s);
}

/* HTTP/2 frame header: length, type, flags, stream */
static size_t h2_frame(uint8_t *p, size_t len, uint8_t type, uint8_t flags, uint32_t stream)
{
    p[0] = (uint8_t)(len >> 16);
    p[1] = (uint8_t)(len >> 8);
    p[2] = (uint8_t)len;
    p[3] = type;
    p[4] = flags;
    p[5] = (uint8_t)(stream >> 24);
    p[6] = (uint8_t)(stream >> 16);
    p[7] = (uint8_t)(stream >> 8);
    p[8] = (uint8_t)stream;
    return 9;
}

/* HPACK: a literal header field without indexing, new name, no Huffman (the
 * lengths here stay below 127) */
static size_t hpack_literal(uint8_t *p, const char *name, const char *value)
{
    size_t n = 0, nl = strlen(name), vl = strlen(value);
    p[n++] = 0x00;
    p[n++] = (uint8_t)nl;
    memcpy(p + n, name, nl);
    n += nl;
    p[n++] = (uint8_t)vl;
    memcpy(p + n, value, vl);
    return n + vl;
}

/* A client that stops reading a streamed response (an audit export) does not
 * hold the server up past the grace period (10 s): the stream is cut. The
 * client speaks HTTP/2 with an initial window of 0, so the export stalls
 * whatever its size. */
/* A large answer still going out to a slow reader when SIGTERM comes is
 * sent to its end within the grace period: the server does not take its
 * connection for an idle one (it did, and cut the body after 2 s). */
static void test_sigterm_finishes_slow_answer(void)
{
    bb_server_t s = {0};
    /* a batch answer holds up to 8 x MAX_SECRET_BYTES of values: 16 MiB here */
    const char *env[] = {"MAX_SECRET_BYTES=2097152", "MAX_BODY_BYTES=3145728", NULL};
    CU_ASSERT_FATAL(bb_start(&s, env));
    enum { N = 5, SIZE = 2000000 }; /* 10 MB: more than the kernel's socket buffers hold */
    size_t blen = SIZE + 32;
    char *body = malloc(blen);
    int n = snprintf(body, blen, "{\"value\":\"");
    memset(body + n, 'Z', SIZE);
    snprintf(body + n + SIZE, blen - n - SIZE, "\"}");
    char paths[N * 32] = "{\"paths\":[";
    for (int i = 0; i < N; i++) {
        char p[64];
        snprintf(p, sizeof(p), "/v1/secrets/slow/s%d", i);
        bb_resp_t r;
        CU_ASSERT_FATAL(bb_req(&s, "PUT", p, s.token, "tnt_a", body, &r));
        BB_ASSERT_STATUS(&r, 201);
        bb_resp_free(&r);
        snprintf(paths + strlen(paths), sizeof(paths) - strlen(paths), "%s\"slow/s%d\"", i ? "," : "", i);
    }
    strcat(paths, "]}");
    free(body);
    int fd = bb_connect(&s, 65536, 15);
    CU_ASSERT_FATAL(fd >= 0);
    char head[512];
    int hl = snprintf(head, sizeof(head),
                      "POST /v1/secrets/batch HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                      "X-ScaiVault-Tenant: tnt_a\r\nContent-Length: %zu\r\n\r\n%s",
                      s.token, strlen(paths), paths);
    CU_ASSERT_FATAL(write(fd, head, (size_t)hl) == hl);
    usleep(200000);
    kill(s.pid, SIGTERM);
    /* read about 2 MB/s: some 5 s for the 10 MB answer, past the 2 s after
     * which an idle connection is closed, within the 10 s grace period */
    static char got[N * SIZE + 8192];
    size_t len = 0;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (ssize_t k; len < sizeof(got) && (k = read(fd, got + len, sizeof(got) - len)) > 0;) {
        len += (size_t)k;
        clock_gettime(CLOCK_MONOTONIC, &t);
        double ahead = (double)len / 2e6 - ((double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9);
        if (ahead > 0) /* paced at 2 MB/s */
            usleep((useconds_t)(ahead * 1e6));
    }
    close(fd);
    const char *cl = strcasestr(got, "content-length: ");
    const char *end = strstr(got, "\r\n\r\n");
    CU_ASSERT_FATAL(cl != NULL && end != NULL);
    size_t want = (size_t)strtoull(cl + 16, NULL, 10);
    CU_ASSERT(want > (size_t)N * SIZE);
    if (len - (size_t)(end + 4 - got) != want)
        fprintf(stderr, "\n  got %zu bytes of a %zu-byte answer\n", len - (size_t)(end + 4 - got), want);
    CU_ASSERT_EQUAL(len - (size_t)(end + 4 - got), want);
    CU_ASSERT_EQUAL(bb_stop(&s), 0);
    bb_cleanup(&s);
}

static void test_sigterm_cuts_stalled_stream(void)
{
    bb_server_t s = {0};
    CU_ASSERT_FATAL(bb_start(&s, NULL));
    int fd = bb_connect(&s, 0, 0);
    CU_ASSERT_FATAL(fd >= 0);
    uint8_t out[1024];
    size_t n = 0;
    memcpy(out, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
    n = 24;
    n += h2_frame(out + n, 6, 0x4, 0, 0); /* SETTINGS: INITIAL_WINDOW_SIZE 0 */
    static const uint8_t window0[6] = {0x00, 0x04, 0, 0, 0, 0};
    memcpy(out + n, window0, 6);
    n += 6;
    uint8_t block[512];
    char auth[120];
    snprintf(auth, sizeof(auth), "Bearer %s", s.token);
    size_t b = hpack_literal(block, ":method", "GET");
    b += hpack_literal(block + b, ":scheme", "http");
    b += hpack_literal(block + b, ":authority", "x");
    b += hpack_literal(block + b, ":path", "/v1/audit/export?from_seq=1");
    b += hpack_literal(block + b, "authorization", auth);
    n += h2_frame(out + n, b, 0x1, 0x4 | 0x1, 1); /* HEADERS, END_HEADERS | END_STREAM, stream 1 */
    memcpy(out + n, block, b);
    n += b;
    CU_ASSERT_FATAL(write(fd, out, n) == (ssize_t)n);
    usleep(500000); /* the server answers the headers and waits for a window that never opens */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = bb_stop(&s); /* SIGKILL, and -1, after 20 s */
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    CU_ASSERT_EQUAL(rc, 0);
    /* it waited for the stream (so the export was in flight), then cut it */
    if (took < 9.0 || took > 16.0)
        fprintf(stderr, "\n  stopped in %.1f s, want the 10 s grace period\n", took);
    CU_ASSERT(took >= 9.0 && took <= 16.0);
    CU_ASSERT(bb_file_contains_str(s.log_path, "streamed response(s) cut off"));
    close(fd);
    bb_cleanup(&s);
}

/* HTTP/2 "rapid reset": streams opened and reset at once leave h2o's count
 * of 100 streams but not the server's, whose requests wait for their audit
 * entries; past 256 held on one connection, the connection is closed. */
static void test_http2_rapid_reset(void)
{
    bb_server_t s = {0};
    CU_ASSERT_FATAL(bb_start(&s, NULL));
    int fd = bb_connect(&s, 0, 10);
    CU_ASSERT_FATAL(fd >= 0);
    enum { STREAMS = 3000 };
    size_t cap = 64 + (size_t)STREAMS * 96;
    uint8_t *out = malloc(cap);
    CU_ASSERT_FATAL(out != NULL);
    memcpy(out, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
    size_t n = 24;
    n += h2_frame(out + n, 0, 0x4, 0, 0); /* SETTINGS, empty */
    uint8_t block[128];
    size_t b = hpack_literal(block, ":method", "GET");
    b += hpack_literal(block + b, ":scheme", "http");
    b += hpack_literal(block + b, ":authority", "x");
    b += hpack_literal(block + b, ":path", "/v1/secrets/x");
    for (uint32_t i = 0; i < STREAMS; i++) {
        uint32_t id = 2 * i + 1;
        n += h2_frame(out + n, b, 0x1, 0x4 | 0x1, id); /* HEADERS, END_HEADERS | END_STREAM */
        memcpy(out + n, block, b);
        n += b;
        n += h2_frame(out + n, 4, 0x3, 0, id); /* RST_STREAM, CANCEL */
        static const uint8_t cancel[4] = {0, 0, 0, 0x8};
        memcpy(out + n, cancel, 4);
        n += 4;
    }
    /* the server may close before it has read it all */
    for (size_t off = 0; off < n;) {
        ssize_t k = send(fd, out + off, n - off, MSG_NOSIGNAL);
        if (k <= 0)
            break;
        off += (size_t)k;
    }
    free(out);
    char buf[65536];
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    bool closed = false;
    do { /* read until the server closes the connection (at most 10 s) */
        ssize_t k = recv(fd, buf, sizeof(buf), 0);
        closed = k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR);
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while (!closed && t.tv_sec - t0.tv_sec < 10);
    close(fd);
    CU_ASSERT(closed);
    bb_resp_t r;
    CU_ASSERT_FATAL(bb_req(&s, "GET", "/v1/health", NULL, NULL, NULL, &r));
    BB_ASSERT_STATUS(&r, 200);
    bb_resp_free(&r);
    CU_ASSERT_EQUAL(bb_stop(&s), 0);
    CU_ASSERT(bb_file_contains_str(s.log_path, "closing an HTTP/2 connection that holds 257 requests in flight"));
    /* said once for the connection, not for each request it had sent meanwhile */
    FILE *lf = fopen(s.log_path, "r");
    CU_ASSERT_FATAL(lf != NULL);
    int said = 0;
    for (char line[4096]; fgets(line, sizeof(line), lf) != NULL;)
        said += strstr(line, "closing an HTTP/2 connection") != NULL;
    fclose(lf);
    CU_ASSERT_EQUAL(said, 1);
    bb_cleanup(&s);
}

void sv_bb_suite_foundation(void)
{
    CU_pSuite s = CU_add_suite("blackbox/foundation", suite_init, suite_clean);
    CU_add_test(s, "health", test_health);
    CU_add_test(s, "request_id", test_request_id);
    CU_add_test(s, "not_found_and_method", test_not_found_and_method);
    CU_add_test(s, "authentication_errors", test_authentication_errors);
    CU_add_test(s, "body_limits", test_body_limits);
    CU_add_test(s, "bad_path_encoding", test_bad_path_encoding);
    CU_add_test(s, "access_log", test_access_log);
    CU_add_test(s, "bad_config_exits_2", test_bad_config_exits_2);
    CU_add_test(s, "config_file", test_config_file);
    CU_add_test(s, "tls_and_http2", test_tls_and_http2);
    CU_add_test(s, "sigterm_drops_nothing", test_sigterm_drops_nothing);
    CU_add_test(s, "sigterm_finishes_slow_answer", test_sigterm_finishes_slow_answer);
    CU_add_test(s, "sigterm_cuts_stalled_stream", test_sigterm_cuts_stalled_stream);
    CU_add_test(s, "http2_rapid_reset", test_http2_rapid_reset);
}

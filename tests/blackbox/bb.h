/*
 * bb.h - the black-box harness: starts the real `scaivault` binary on a free
 * loopback port with a fresh data directory, talks to it over HTTP with
 * libcurl, and stops it. Suites are listed in blackbox/suites.def.
 */
#ifndef SV_TESTS_BB_H
#define SV_TESTS_BB_H

#include <CUnit/CUnit.h>
#include <stdbool.h>
#include <sys/types.h>

#include "src/json.h"
#include "tests/unit.h"

/* every black-box suite's registration function */
#define SUITE(name) void sv_bb_suite_##name(void);
#include "tests/blackbox/suites.def"
#undef SUITE

typedef struct {
    pid_t pid;
    int port;
    char url[64];        /* http://127.0.0.1:PORT */
    char dir[256];       /* the test's temp dir (holds data/ and server.log) */
    char data_dir[300];  /* dir/data, unless the env overrides it */
    char log_path[300];  /* dir/server.log: the server's stdout and stderr */
    char token[80];      /* the BOOTSTRAP_TOKEN it was started with */
    bool tls;            /* set before bb_start when the env configures TLS: https:// URLs */
    long http_version;   /* CURL_HTTP_VERSION_* of the last response (bb_req_h) */
} bb_server_t;

/** Starts the server. env: NULL-terminated "KEY=VALUE" overrides (may be
 * NULL). Waits up to 10 s for /v1/health. Returns false (and logs why) when it
 * does not come up. The data dir is reused when s->dir is already set (a
 * restart), otherwise a new temp dir is made. */
bool bb_start(bb_server_t *s, const char *const *env);
/** Like bb_start with extra command-line arguments after `server`. wait: poll
 * /v1/health until ready. */
bool bb_start_args(bb_server_t *s, const char *const *env, const char *const *args, bool wait);
/** SIGTERM, then waits (up to 20 s, then SIGKILL). Returns the exit status,
 * or -1 when killed by a signal. */
int bb_stop(bb_server_t *s);
/** SIGKILL and reap. */
void bb_kill(bb_server_t *s);
/** Removes the temp dir. */
void bb_cleanup(bb_server_t *s);
/** Whether the server process is still running. */
bool bb_alive(bb_server_t *s);

/** Runs `scaivault args...` to completion with env overrides; stdout and
 * stderr go to out (NUL-terminated, truncated to cap). Returns the exit status
 * (-1 for a signal). */
int bb_run(const char *const *args, const char *const *env, char *out, size_t cap);

/** Like bb_run for any program: exe (a path, or a name looked up in PATH)
 * with args (argv[1...]). timeout_ms > 0 kills it (SIGKILL) after that long
 * and returns -2. */
int bb_run_exe(const char *exe, const char *const *args, const char *const *env, char *out, size_t cap,
               int timeout_ms);

/** The storage crash/disk-full driver (SV_CRASHDRIVER, else
 * tests/crash/sv_crashdriver beside the binary under test). */
const char *bb_crashdriver(void);

/** The path of the binary under test. */
const char *bb_bin(void);
/** A random string of n hex characters (n < cap). */
void bb_random_hex(char *out, size_t n);
/** A raw TCP connection to the server (for what curl cannot do: pipelining,
 * half closes, resets, slow reading). rcvbuf: SO_RCVBUF, set before the
 * connect (0: the default); timeout_s: SO_RCVTIMEO (0: none). -1 on failure. */
int bb_connect(const bb_server_t *s, int rcvbuf, int timeout_s);
/** Whether file path contains the bytes needle (for plaintext hygiene tests). */
bool bb_file_contains(const char *path, const void *needle, size_t len);
#define bb_file_contains_str(path, s) bb_file_contains((path), (s), strlen(s))
/** Whether any regular file under dir contains needle. */
bool bb_dir_contains(const char *dir, const void *needle, size_t len);

typedef struct {
    long status;          /* 0 when the request failed at the transport */
    char *body;           /* NUL-terminated */
    size_t body_len;
    char *headers;        /* raw response headers */
    sv_json_doc_t *json;  /* parsed body, or NULL */
    char curl_error[256];
} bb_resp_t;

/** One request. token: bearer token (NULL: none). tenant: X-ScaiVault-Tenant
 * (NULL: none). body: JSON text (NULL: none). */
bool bb_req(bb_server_t *s, const char *method, const char *path, const char *token, const char *tenant,
            const char *body, bb_resp_t *r);
/** One request with arbitrary headers ("Name: value", NULL-terminated) and a
 * body of body_len bytes. */
bool bb_req_h(bb_server_t *s, const char *method, const char *path, const char *const *headers, const char *body,
              size_t body_len, bb_resp_t *r);
void bb_resp_free(bb_resp_t *r);
/** A response header's value (case-insensitive name), copied into out. */
const char *bb_header(const bb_resp_t *r, const char *name, char *out, size_t cap);
/** The JSON value at a dotted path ("error.details.field"; array items by
 * index, "items.0.path"), or NULL. */
sv_json_t *bb_json(const bb_resp_t *r, const char *path);
/** The string at a dotted path, or NULL. */
const char *bb_json_str(const bb_resp_t *r, const char *path);
/** The integer at a dotted path; false when missing or not an integer. */
bool bb_json_int(const bb_resp_t *r, const char *path, int64_t *out);
/** The boolean at a dotted path; false when missing or not a boolean. */
bool bb_json_bool(const bb_resp_t *r, const char *path, bool *out);

/* Assertions that print the response on failure. */
#define BB_ASSERT_STATUS(r, want)                                                                                     \
    do {                                                                                                               \
        if ((r)->status != (want))                                                                                     \
            fprintf(stderr, "\n  %s:%d: status %ld, want %d; body: %.400s\n", __FILE__, __LINE__, (r)->status,       \
                    (int)(want), (r)->body ? (r)->body : "(none)");                                                    \
        CU_ASSERT_EQUAL((r)->status, (want));                                                                          \
    } while (0)

#define BB_ASSERT_CODE(r, want)                                                                                       \
    do {                                                                                                               \
        const char *c_ = bb_json_str((r), "error.code");                                                               \
        if (c_ == NULL || strcmp(c_, (want)) != 0)                                                                     \
            fprintf(stderr, "\n  %s:%d: error.code %s, want %s; body: %.400s\n", __FILE__, __LINE__,                  \
                    c_ ? c_ : "(none)", (want), (r)->body ? (r)->body : "(none)");                                     \
        CU_ASSERT_PTR_NOT_NULL(c_);                                                                                    \
        if (c_ != NULL)                                                                                                \
            CU_ASSERT_STRING_EQUAL(c_, (want));                                                                        \
    } while (0)

#endif

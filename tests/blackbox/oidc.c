/* tests/blackbox/oidc.c - the ScaiKey stand-in peer (oidc.h). */
#include "sv_autoconf.h"

#include "tests/blackbox/oidc.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "src/json.h"

bool bb_oidc_start(bb_oidc_t *o)
{
    memset(o, 0, sizeof(*o));
    const char *peers = getenv("SV_PEERS_DIR");
    char script[1024], mods[1024];
    snprintf(script, sizeof(script), "%s/oidc/server.mjs", peers ? peers : "tests/peers");
    snprintf(mods, sizeof(mods), "%s/oidc/node_modules/oidc-provider", peers ? peers : "tests/peers");
    if (access(mods, F_OK) != 0) {
        fprintf(stderr, "\n  the OIDC peer is not installed: run `npm ci` in %s/oidc (scripts/test does)\n",
                peers ? peers : "tests/peers");
        return false;
    }
    int fds[2];
    if (pipe(fds) != 0)
        return false;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        int devnull = open("/dev/null", 1);
        if (devnull >= 0)
            dup2(devnull, 2); /* oidc-provider's development warnings */
        execlp("node", "node", script, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        return false;
    }
    o->pid = pid;
    char buf[128];
    size_t n = 0;
    struct pollfd p = {.fd = fds[0], .events = POLLIN};
    while (n < sizeof(buf) - 1 && memchr(buf, '\n', n) == NULL) {
        if (poll(&p, 1, 30000) <= 0)
            break;
        ssize_t r = read(fds[0], buf + n, sizeof(buf) - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    buf[n] = 0;
    close(fds[0]);
    if (sscanf(buf, "READY %d", &o->port) != 1) {
        fprintf(stderr, "\n  the OIDC peer did not start (output: %s)\n", buf);
        bb_oidc_stop(o);
        return false;
    }
    snprintf(o->url, sizeof(o->url), "http://127.0.0.1:%d", o->port);
    snprintf(o->env_issuer, sizeof(o->env_issuer), "SCAIKEY_ISSUER=%s", o->url);
    snprintf(o->env_directory, sizeof(o->env_directory), "SCAIKEY_DIRECTORY_URL=%s/scim/v2", o->url);
    return true;
}

bool bb_oidc_server_start(bb_oidc_t *o, bb_server_t *s, const char *extra)
{
    const char *env[] = {
        o->env_issuer, o->env_directory, "SCAIKEY_CLIENT_ID=scaivault-sync", "SCAIKEY_CLIENT_SECRET=secret-sync", extra,
        NULL};
    return bb_start(s, env);
}

void bb_oidc_stop_all(bb_oidc_t *o, bb_server_t *s)
{
    bb_stop(s);
    bb_cleanup(s);
    bb_oidc_stop(o);
}

void bb_oidc_stop(bb_oidc_t *o)
{
    if (o->pid <= 0)
        return;
    kill(o->pid, SIGTERM);
    int st;
    for (int i = 0; i < 100; i++) {
        if (waitpid(o->pid, &st, WNOHANG) == o->pid) {
            o->pid = 0;
            return;
        }
        usleep(50000);
    }
    kill(o->pid, SIGKILL);
    waitpid(o->pid, &st, 0);
    o->pid = 0;
}

typedef struct {
    char *p;
    size_t n;
} body_t;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
    body_t *b = ud;
    size_t add = size * nmemb;
    char *np = realloc(b->p, b->n + add + 1);
    if (np == NULL)
        return 0;
    b->p = np;
    memcpy(b->p + b->n, ptr, add);
    b->n += add;
    b->p[b->n] = 0;
    return add;
}

static long post(const char *url, const char *userpwd, const char *ctype, const char *data, body_t *b)
{
    CURL *c = curl_easy_init();
    if (c == NULL)
        return 0;
    struct curl_slist *h = NULL;
    char ct[128];
    snprintf(ct, sizeof(ct), "Content-Type: %s", ctype);
    h = curl_slist_append(h, ct);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, data);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (userpwd != NULL) {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERPWD, userpwd);
    }
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return status;
}

/* The string member name of a JSON body, malloc'd, or NULL. */
static char *json_member(const body_t *b, const char *name)
{
    if (b->p == NULL)
        return NULL;
    sv_json_doc_t *doc;
    sv_json_error_t je;
    if (sv_json_parse(b->p, b->n, false, &doc, &je) != SV_JSON_OK)
        return NULL;
    size_t n;
    const char *v = sv_json_get_str(sv_json_root(doc), name, &n);
    char *out = v != NULL ? strndup(v, n) : NULL;
    sv_json_doc_free(doc);
    return out;
}

char *bb_oidc_token(bb_oidc_t *o, const char *client_id, const char *scope)
{
    char url[128], userpwd[256], data[512];
    snprintf(url, sizeof(url), "%s/token", o->url);
    const char *colon = strchr(client_id, ':');
    /* client_secret_basic: the id is form-urlencoded first (':' → %3A, '@' → %40) */
    char *eid = curl_easy_escape(NULL, client_id, 0);
    snprintf(userpwd, sizeof(userpwd), "%s:secret-%s", eid, colon ? colon + 1 : "sync");
    if (colon != NULL && strncmp(client_id, "user:", 5) == 0)
        snprintf(userpwd, sizeof(userpwd), "%s:secret-admin", eid);
    curl_free(eid);
    char *escope = curl_easy_escape(NULL, scope, 0);
    snprintf(data, sizeof(data), "grant_type=client_credentials&scope=%s", escope);
    curl_free(escope);
    body_t b = {0};
    long st = post(url, userpwd, "application/x-www-form-urlencoded", data, &b);
    char *tok = st == 200 ? json_member(&b, "access_token") : NULL;
    if (tok == NULL)
        fprintf(stderr, "\n  token for %s failed: HTTP %ld %s\n", client_id, st, b.p ? b.p : "");
    free(b.p);
    return tok;
}

long bb_oidc_control(bb_oidc_t *o, const char *path, const char *json, char *out, size_t cap)
{
    char url[256];
    snprintf(url, sizeof(url), "%s%s", o->url, path);
    body_t b = {0};
    long st = post(url, NULL, "application/json", json, &b);
    if (out != NULL && cap > 0)
        snprintf(out, cap, "%s", b.p ? b.p : "");
    free(b.p);
    return st;
}

void bb_oidc_reset(bb_oidc_t *o)
{
    bb_oidc_control(o, "/control/state",
                    "{\"sign_kid\":\"rs-1\",\"published\":[\"rs-1\",\"es-1\"],\"down\":false,"
                    "\"audience\":\"scaivault\",\"ttl\":300}",
                    NULL, 0);
}

char *bb_oidc_sign(bb_oidc_t *o, const char *kid, const char *payload_json, const char *header_json)
{
    size_t cap = strlen(payload_json) + (header_json ? strlen(header_json) : 4) + 128;
    char *req = malloc(cap);
    snprintf(req, cap, "{\"kid\":\"%s\",\"payload\":%s,\"header\":%s}", kid, payload_json,
             header_json ? header_json : "{}");
    char url[256];
    snprintf(url, sizeof(url), "%s/control/sign", o->url);
    body_t b = {0};
    long st = post(url, NULL, "application/json", req, &b);
    free(req);
    char *tok = st == 200 ? json_member(&b, "token") : NULL;
    free(b.p);
    return tok;
}

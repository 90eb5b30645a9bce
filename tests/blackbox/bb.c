/*
 * bb.c - the black-box harness (bb.h). Runs on the test runner's main thread.
 */
#include "sv_autoconf.h"

#include "tests/blackbox/bb.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

const char *bb_bin(void)
{
    const char *b = getenv("SCAIVAULT_BIN");
    return b != NULL ? b : "./scaivault";
}

const char *bb_crashdriver(void)
{
    static char path[1024];
    const char *d = getenv("SV_CRASHDRIVER");
    if (d != NULL)
        return d;
    char bin[900];
    snprintf(bin, sizeof(bin), "%s", bb_bin());
    snprintf(path, sizeof(path), "%s/tests/crash/sv_crashdriver", dirname(bin));
    return path;
}

void bb_random_hex(char *out, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++)
        out[i] = hex[randombytes_uniform(16)];
    out[n] = 0;
}

int bb_connect(const bb_server_t *s, int rcvbuf, int timeout_s)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    if (timeout_s > 0) {
        struct timeval tv = {.tv_sec = timeout_s};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || getsockname(fd, (struct sockaddr *)&a, &l) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

/* environ + overrides; overrides win. The result is malloc'd (strings not). */
static char **build_env(const char *const *const *lists, size_t nlists)
{
    size_t n = 0;
    for (char **e = environ; *e; e++)
        n++;
    for (size_t l = 0; l < nlists; l++)
        for (const char *const *e = lists[l]; e && *e; e++)
            n++;
    char **env = calloc(n + 1, sizeof(char *));
    size_t k = 0;
    for (char **e = environ; *e; e++) {
        size_t kl = strcspn(*e, "=");
        bool overridden = false;
        for (size_t l = 0; l < nlists && !overridden; l++)
            for (const char *const *o = lists[l]; o && *o && !overridden; o++)
                overridden = strncmp(*o, *e, kl) == 0 && (*o)[kl] == '=';
        if (!overridden)
            env[k++] = *e;
    }
    for (size_t l = 0; l < nlists; l++) {
        for (const char *const *o = lists[l]; o && *o; o++) {
            /* a later list overrides an earlier one */
            size_t kl = strcspn(*o, "=");
            bool later = false;
            for (size_t m = l + 1; m < nlists && !later; m++)
                for (const char *const *p = lists[m]; p && *p && !later; p++)
                    later = strncmp(*p, *o, kl) == 0 && (*p)[kl] == '=';
            if (!later && (*o)[kl] == '=' && (*o)[kl + 1] != 0)
                env[k++] = (char *)*o;
        }
    }
    env[k] = NULL;
    return env;
}

static bool wait_ready(bb_server_t *s)
{
    for (int i = 0; i < 200; i++) {
        if (!bb_alive(s))
            return false;
        bb_resp_t r;
        if (bb_req(s, "GET", "/v1/health", NULL, NULL, NULL, &r) && r.status == 200) {
            bb_resp_free(&r);
            return true;
        }
        bb_resp_free(&r);
        usleep(50000);
    }
    return false;
}

bool bb_start_args(bb_server_t *s, const char *const *env, const char *const *args, bool wait)
{
    if (s->dir[0] == 0) {
        const char *base = getenv("TMPDIR");
        snprintf(s->dir, sizeof(s->dir), "%s/sv-bb-XXXXXX", base && base[0] ? base : "/tmp");
        if (mkdtemp(s->dir) == NULL)
            return false;
        snprintf(s->data_dir, sizeof(s->data_dir), "%s/data", s->dir);
        snprintf(s->log_path, sizeof(s->log_path), "%s/server.log", s->dir);
        char hex[33];
        bb_random_hex(hex, 32);
        snprintf(s->token, sizeof(s->token), "svb_%s", hex);
        s->port = 0;
    }
    if (s->port == 0)
        s->port = free_port();
    snprintf(s->url, sizeof(s->url), "%s://127.0.0.1:%d", s->tls ? "https" : "http", s->port);
    char listen[64], data[340], token[120];
    snprintf(listen, sizeof(listen), "SCAIVAULT_LISTEN=127.0.0.1:%d", s->port);
    snprintf(data, sizeof(data), "SCAIVAULT_DATA_DIR=%s", s->data_dir);
    snprintf(token, sizeof(token), "BOOTSTRAP_TOKEN=%s", s->token);
    const char *const base_env[] = {listen, data, token, "SCAIVAULT_THREADS=2", "LOG_LEVEL=info", NULL};
    const char *const *lists[] = {base_env, env};
    char **full_env = build_env(lists, 2);
    const char *argv[32] = {bb_bin(), "server"};
    size_t ac = 2;
    for (const char *const *a = args; a && *a && ac < 31; a++)
        argv[ac++] = *a;
    argv[ac] = NULL;
    int logfd = open(s->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(logfd, 1);
        dup2(logfd, 2);
        execve(argv[0], (char *const *)argv, full_env);
        _exit(127);
    }
    close(logfd);
    free(full_env);
    if (pid < 0)
        return false;
    s->pid = pid;
    if (!wait)
        return true;
    if (!wait_ready(s)) {
        fprintf(stderr, "\n  server did not come up; log %s\n", s->log_path);
        bb_kill(s);
        return false;
    }
    return true;
}

bool bb_start(bb_server_t *s, const char *const *env)
{
    return bb_start_args(s, env, NULL, true);
}

bool bb_alive(bb_server_t *s)
{
    if (s->pid <= 0)
        return false;
    int st;
    pid_t r = waitpid(s->pid, &st, WNOHANG);
    if (r == s->pid) {
        s->pid = 0;
        return false;
    }
    return true;
}

int bb_stop(bb_server_t *s)
{
    if (s->pid <= 0)
        return -1;
    kill(s->pid, SIGTERM);
    int st = 0;
    for (int i = 0; i < 400; i++) {
        pid_t r = waitpid(s->pid, &st, WNOHANG);
        if (r == s->pid) {
            s->pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        }
        usleep(50000);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, &st, 0);
    s->pid = 0;
    return -1;
}

void bb_kill(bb_server_t *s)
{
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGKILL);
    int st;
    waitpid(s->pid, &st, 0);
    s->pid = 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

void bb_cleanup(bb_server_t *s)
{
    if (s->pid > 0)
        bb_kill(s);
    if (s->dir[0] != 0 && getenv("BB_KEEP") == NULL)
        nftw(s->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    memset(s, 0, sizeof(*s));
}

int bb_run_exe(const char *exe, const char *const *args, const char *const *env, char *out, size_t cap,
               int timeout_ms)
{
    int pipefd[2];
    if (pipe(pipefd) != 0)
        return -1;
    const char *const *lists[] = {env};
    char **full_env = build_env(lists, 1);
    const char *argv[32] = {exe};
    size_t ac = 1;
    for (const char *const *a = args; a && *a && ac < 31; a++)
        argv[ac++] = *a;
    argv[ac] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pipefd[1], 1);
        dup2(pipefd[1], 2);
        close(pipefd[0]);
        environ = full_env;
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(pipefd[1]);
    free(full_env);
    size_t off = 0;
    char buf[4096];
    ssize_t n;
    bool timed_out = false;
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        if (timeout_ms > 0) {
            clock_gettime(CLOCK_MONOTONIC, &now);
            long left = timeout_ms - ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000);
            struct pollfd pfd = {.fd = pipefd[0], .events = POLLIN};
            if (left <= 0 || poll(&pfd, 1, (int)left) == 0) {
                kill(pid, SIGKILL);
                timed_out = true;
            }
        }
        if ((n = read(pipefd[0], buf, sizeof(buf))) <= 0)
            break;
        if (out != NULL && off + 1 < cap) {
            size_t take = (size_t)n < cap - 1 - off ? (size_t)n : cap - 1 - off;
            memcpy(out + off, buf, take);
            off += take;
        }
    }
    if (out != NULL && cap > 0)
        out[off] = 0;
    close(pipefd[0]);
    int st;
    waitpid(pid, &st, 0);
    if (timed_out)
        return -2;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int bb_run(const char *const *args, const char *const *env, char *out, size_t cap)
{
    return bb_run_exe(bb_bin(), args, env, out, cap, 0);
}

bool bb_file_contains(const char *path, const void *needle, size_t len)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return false;
    struct stat st;
    bool found = false;
    if (fstat(fd, &st) == 0 && st.st_size > 0) {
        void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m != MAP_FAILED) {
            found = memmem(m, (size_t)st.st_size, needle, len) != NULL;
            munmap(m, (size_t)st.st_size);
        }
    }
    close(fd);
    return found;
}

static const void *scan_needle;
static size_t scan_len;
static bool scan_found;

static int scan_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    if (flag == FTW_F && bb_file_contains(path, scan_needle, scan_len)) {
        fprintf(stderr, "\n  found the marker in %s\n", path);
        scan_found = true;
    }
    return 0;
}

bool bb_dir_contains(const char *dir, const void *needle, size_t len)
{
    scan_needle = needle;
    scan_len = len;
    scan_found = false;
    nftw(dir, scan_entry, 16, FTW_PHYS);
    return scan_found;
}

/* ---- HTTP ---- */

typedef struct {
    char *p;
    size_t len;
} grow_t;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
    grow_t *g = ud;
    size_t n = size * nmemb;
    char *np = realloc(g->p, g->len + n + 1);
    if (np == NULL)
        return 0;
    memcpy(np + g->len, ptr, n);
    g->p = np;
    g->len += n;
    g->p[g->len] = 0;
    return n;
}

bool bb_req_h(bb_server_t *s, const char *method, const char *path, const char *const *headers, const char *body,
              size_t body_len, bb_resp_t *r)
{
    memset(r, 0, sizeof(*r));
    CURL *c = curl_easy_init();
    if (c == NULL)
        return false;
    char url[4096];
    snprintf(url, sizeof(url), "%s%s", s->url, path);
    grow_t b = {0}, h = {0};
    struct curl_slist *hl = NULL;
    for (const char *const *p = headers; p && *p; p++)
        hl = curl_slist_append(hl, *p);
    if (body != NULL)
        hl = curl_slist_append(hl, "Content-Type: application/json");
    hl = curl_slist_append(hl, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, r->curl_error);
    if (s->tls) {
        /* the tests' own self-signed certificate */
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
        curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    }
    if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    }
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
        curl_easy_getinfo(c, CURLINFO_HTTP_VERSION, &s->http_version);
    }
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    r->body = b.p != NULL ? b.p : calloc(1, 1);
    r->body_len = b.len;
    r->headers = h.p != NULL ? h.p : calloc(1, 1);
    if (r->body_len > 0) {
        sv_json_error_t e;
        if (sv_json_parse(r->body, r->body_len, false, &r->json, &e) != SV_JSON_OK)
            r->json = NULL;
    }
    return rc == CURLE_OK;
}

bool bb_req(bb_server_t *s, const char *method, const char *path, const char *token, const char *tenant,
            const char *body, bb_resp_t *r)
{
    char auth[8300], ten[200];
    const char *headers[4];
    size_t n = 0;
    if (token != NULL) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        headers[n++] = auth;
    }
    if (tenant != NULL) {
        snprintf(ten, sizeof(ten), "X-ScaiVault-Tenant: %s", tenant);
        headers[n++] = ten;
    }
    headers[n] = NULL;
    return bb_req_h(s, method, path, headers, body, body ? strlen(body) : 0, r);
}

void bb_resp_free(bb_resp_t *r)
{
    free(r->body);
    free(r->headers);
    sv_json_doc_free(r->json);
    memset(r, 0, sizeof(*r));
}

const char *bb_header(const bb_resp_t *r, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *p = r->headers; p && *p;) {
        const char *eol = strchr(p, '\n');
        size_t ll = eol ? (size_t)(eol - p) : strlen(p);
        if (ll > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            size_t vl = (size_t)(p + ll - v);
            while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == ' '))
                vl--;
            if (vl >= cap)
                vl = cap - 1;
            memcpy(out, v, vl);
            out[vl] = 0;
            return out;
        }
        p = eol ? eol + 1 : p + ll;
    }
    return NULL;
}

sv_json_t *bb_json(const bb_resp_t *r, const char *path)
{
    if (r->json == NULL)
        return NULL;
    sv_json_t *cur = sv_json_root(r->json);
    char part[256];
    const char *p = path;
    while (cur != NULL && *p) {
        size_t l = strcspn(p, ".");
        if (l >= sizeof(part))
            return NULL;
        memcpy(part, p, l);
        part[l] = 0;
        if (cur->type == SV_JSON_ARRAY) {
            long idx = strtol(part, NULL, 10);
            sv_json_t *k = cur->u.kids.first;
            while (k != NULL && idx-- > 0)
                k = k->next;
            cur = k;
        } else {
            cur = sv_json_get(cur, part);
        }
        p += l;
        if (*p == '.')
            p++;
    }
    return cur;
}

const char *bb_json_str(const bb_resp_t *r, const char *path)
{
    sv_json_t *v = bb_json(r, path);
    return v != NULL && v->type == SV_JSON_STRING ? v->u.str.s : NULL;
}

bool bb_json_int(const bb_resp_t *r, const char *path, int64_t *out)
{
    sv_json_t *v = bb_json(r, path);
    if (v == NULL || v->type != SV_JSON_NUMBER || !v->u.num.is_int)
        return false;
    *out = v->u.num.i;
    return true;
}

bool bb_json_bool(const bb_resp_t *r, const char *path, bool *out)
{
    sv_json_t *v = bb_json(r, path);
    if (v == NULL || v->type != SV_JSON_BOOL)
        return false;
    *out = v->u.b;
    return true;
}

/* A C load generator for the line ports (syslog, JSON lines): N nonblocking connections
 * on one thread write numbered lines as fast as the service reads them, for S seconds; then
 * each half-closes (shutdown SHUT_WR, as nc -q and a closing program do) and waits for the
 * service to close its side. Prints one line per connection: "conn <i> lines <n> eof <0|1>".
 * bench/socket_flood.py compiles it with cc at run time and checks every line was stored
 * exactly once, and how evenly the connections were served.
 *
 * usage: socket_flood HOST PORT CONNS SECONDS syslog|jsonl TAG [UNTERMINATED]
 * UNTERMINATED=1 leaves each connection's last line without its newline.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64 /* lines formatted per write */

typedef struct {
    int fd;
    long lines;    /* lines fully written */
    char buf[BATCH * 160];
    size_t len, off; /* bytes of buf pending */
    long pending;  /* lines in buf */
    int shut, eof;
} conn_t;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void fill(conn_t *c, int i, int syslog, const char *tag) {
    c->len = c->off = 0;
    for (int k = 0; k < BATCH; k++) {
        long n = c->lines + k;
        int w = syslog
            ? snprintf(c->buf + c->len, sizeof c->buf - c->len,
                       "<14>1 2026-11-30T10:00:00Z h %s-%d - - - line %ld\n", tag, i, n)
            : snprintf(c->buf + c->len, sizeof c->buf - c->len,
                       "{\"message\":\"line %ld\",\"service.name\":\"%s-%d\"}\n", n, tag, i);
        c->len += (size_t)w;
    }
    c->pending = BATCH;
}

int main(int argc, char **argv) {
    if (argc < 7) {
        fprintf(stderr, "usage: %s HOST PORT CONNS SECONDS syslog|jsonl TAG [UNTERMINATED]\n", argv[0]);
        return 2;
    }
    const char *host = argv[1], *tag = argv[6];
    int port = atoi(argv[2]), n = atoi(argv[3]), syslog = strcmp(argv[5], "syslog") == 0;
    int unterminated = argc > 7 && atoi(argv[7]);
    double seconds = atof(argv[4]);
    conn_t *cs = calloc((size_t)n, sizeof *cs);
    struct pollfd *pf = calloc((size_t)n, sizeof *pf);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    inet_pton(AF_INET, host, &sa.sin_addr);
    for (int i = 0; i < n; i++) {
        cs[i].fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(cs[i].fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
            perror("connect");
            return 1;
        }
        fcntl(cs[i].fd, F_SETFL, O_NONBLOCK);
        fill(&cs[i], i, syslog, tag);
    }
    double end = now() + seconds;
    int open = n;
    while (open > 0) {
        int writing = now() < end;
        for (int i = 0; i < n; i++) {
            conn_t *c = &cs[i];
            if (!writing && !c->shut && c->off == 0) { /* between batches: finish here */
                if (unterminated) { /* one last line without its newline */
                    int k = syslog
                        ? snprintf(c->buf, sizeof c->buf, "<14>1 2026-11-30T10:00:00Z h %s-%d - - - line %ld",
                                   tag, i, c->lines)
                        : snprintf(c->buf, sizeof c->buf,
                                   "{\"message\":\"line %ld\",\"service.name\":\"%s-%d\"}", c->lines, tag, i);
                    size_t off = 0;
                    while (off < (size_t)k) { /* a few bytes: spin until the socket takes them */
                        ssize_t x = write(c->fd, c->buf + off, (size_t)k - off);
                        if (x > 0) off += (size_t)x;
                        else if (errno != EAGAIN) break;
                    }
                    if (off == (size_t)k) c->lines += 1;
                }
                c->shut = 1;
                shutdown(c->fd, SHUT_WR);
            }
            pf[i].fd = c->eof ? -1 : c->fd;
            pf[i].events = c->shut ? POLLIN : POLLOUT | POLLIN;
        }
        if (poll(pf, (nfds_t)n, 100) < 0 && errno != EINTR) {
            perror("poll");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            conn_t *c = &cs[i];
            if (c->eof) continue;
            if (pf[i].revents & (POLLIN | POLLHUP | POLLERR)) {
                char sink[256];
                ssize_t r = read(c->fd, sink, sizeof sink);
                if (r == 0 || (r < 0 && errno != EAGAIN)) {
                    c->eof = 1;
                    open--;
                    continue;
                }
            }
            if (c->shut || !(pf[i].revents & POLLOUT)) continue;
            size_t want = c->len - c->off;
            ssize_t w = write(c->fd, c->buf + c->off, want);
            if (w < 0) {
                if (errno == EAGAIN) continue;
                c->eof = 1;
                open--;
                continue;
            }
            c->off += (size_t)w;
            if (c->off == c->len) {
                c->lines += c->pending;
                if (now() < end) {
                    fill(c, i, syslog, tag);
                } else {
                    c->off = c->len = 0;
                }
            }
        }
    }
    for (int i = 0; i < n; i++) {
        printf("conn %d lines %ld eof %d\n", i, cs[i].lines, cs[i].eof);
        close(cs[i].fd);
    }
    return 0;
}

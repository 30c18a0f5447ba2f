// libcurl's own cost as an HTTP client, for BENCHMARKS.md ("the floors of the parts"):
// N keep-alive handles on one multi handle, each re-added as soon as its GET completes,
// against a loopback upstream; prints req/s and this process's CPU µs per request.
// It is the least a libcurl-based proxy can spend on its upstream side.
//
//   cc -O2 -o /tmp/libcurl_floor bench/libcurl_floor.c -lcurl
//   /tmp/libcurl_floor http://127.0.0.1:PORT/ [handles=50] [seconds=5] [reset=1]
//
// reset=1 resets and re-configures each handle per request, as the gateway does;
// reset=0 keeps it configured. Only loopback targets belong here.
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
static size_t sink(char *p, size_t s, size_t n, void *u) { (void)p; (void)u; return s * n; }
static size_t hsink(char *p, size_t s, size_t n, void *u) { (void)p; (void)u; return s * n; }
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
static double cpu(void) { struct rusage r; getrusage(RUSAGE_SELF, &r); return r.ru_utime.tv_sec + r.ru_utime.tv_usec / 1e6 + r.ru_stime.tv_sec + r.ru_stime.tv_usec / 1e6; }
static int reset_mode;
static struct curl_slist *hdrs;
static void setup(CURL *e, const char *url) {
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, hsink);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
}
int main(int argc, char **argv) {
  const char *url = argc > 1 ? argv[1] : "http://127.0.0.1:19400/";
  int n = argc > 2 ? atoi(argv[2]) : 50;
  double dur = argc > 3 ? atof(argv[3]) : 5;
  // Load goes to loopback only, for a bounded time and handle count.
  if (strncmp(url, "http://127.", 11) != 0 && strncmp(url, "http://[::1]", 12) != 0 &&
      strncmp(url, "http://localhost", 16) != 0) {
    fprintf(stderr, "loopback URLs only (http://127.x.y.z, http://[::1], http://localhost)\n");
    return 2;
  }
  if (n < 1 || n > 1000 || dur <= 0 || dur > 60) {
    fprintf(stderr, "handles must be 1..1000 and seconds 0..60\n");
    return 2;
  }
  reset_mode = argc > 4 ? atoi(argv[4]) : 1;
  curl_global_init(CURL_GLOBAL_ALL);
  hdrs = curl_slist_append(NULL, "X-Forwarded-For: 127.0.0.1");
  hdrs = curl_slist_append(hdrs, "X-Request-Id: abcdefabcdef");
  hdrs = curl_slist_append(hdrs, "Accept:");
  CURLM *m = curl_multi_init();
  curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)n * 2);
  CURL **es = calloc(n, sizeof *es);
  for (int i = 0; i < n; i++) { es[i] = curl_easy_init(); setup(es[i], url); curl_multi_add_handle(m, es[i]); }
  long done = 0; double t0 = 0, c0 = 0; long d0 = 0; int warm = 1; double start = now();
  for (;;) {
    int running;
    curl_multi_perform(m, &running);
    CURLMsg *msg; int q;
    while ((msg = curl_multi_info_read(m, &q))) {
      if (msg->msg != CURLMSG_DONE) continue;
      CURL *e = msg->easy_handle;
      if (msg->data.result != CURLE_OK) { fprintf(stderr, "err %d\n", msg->data.result); }
      curl_multi_remove_handle(m, e);
      if (reset_mode) { curl_easy_reset(e); setup(e, url); }
      curl_multi_add_handle(m, e);
      done++;
    }
    double t = now();
    if (warm && t - start > 1) { warm = 0; t0 = t; c0 = cpu(); d0 = done; }
    if (!warm && t - t0 > dur) break;
    curl_multi_poll(m, NULL, 0, 100, NULL);
  }
  double t1 = now(), c1 = cpu(); long r = done - d0;
  printf("reset=%d conns=%d req/s %.0f  cpu us/req %.2f\n", reset_mode, n, r / (t1 - t0), (c1 - c0) * 1e6 / r);
  return 0;
}

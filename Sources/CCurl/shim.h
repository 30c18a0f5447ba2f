// Typed, non-variadic wrappers around libcurl's variadic entry points, which Swift
// cannot call directly, plus the Linux headers (epoll, eventfd) that Glibc's Swift
// module does not export. Every wrapper is a plain forward; no logic lives here.
#ifndef GATEHOUSE_CCURL_SHIM_H
#define GATEHOUSE_CCURL_SHIM_H

#include <curl/curl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

static inline CURLcode gh_easy_setopt_long(CURL *h, CURLoption o, long v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode gh_easy_setopt_off(CURL *h, CURLoption o, curl_off_t v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode gh_easy_setopt_ptr(CURL *h, CURLoption o, void *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode gh_easy_setopt_str(CURL *h, CURLoption o, const char *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode gh_easy_setopt_slist(CURL *h, CURLoption o, struct curl_slist *v) { return curl_easy_setopt(h, o, v); }

typedef size_t (*gh_data_callback)(char *buffer, size_t size, size_t nitems, void *userdata);
static inline CURLcode gh_easy_setopt_data_callback(CURL *h, CURLoption o, gh_data_callback f) { return curl_easy_setopt(h, o, f); }

typedef curl_socket_t (*gh_opensocket_callback)(void *clientp, curlsocktype purpose, struct curl_sockaddr *address);
static inline CURLcode gh_easy_setopt_opensocket_callback(CURL *h, gh_opensocket_callback f) { return curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, f); }
typedef int (*gh_closesocket_callback)(void *clientp, curl_socket_t item);
static inline CURLcode gh_easy_setopt_closesocket_callback(CURL *h, gh_closesocket_callback f) { return curl_easy_setopt(h, CURLOPT_CLOSESOCKETFUNCTION, f); }
// What libcurl's default open-socket function does, plus close-on-exec.
static inline curl_socket_t gh_open_socket(struct curl_sockaddr *a) { return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol); }

static inline int gh_close_socket(curl_socket_t s) { return close(s); }

static inline CURLcode gh_easy_getinfo_long(CURL *h, CURLINFO i, long *v) { return curl_easy_getinfo(h, i, v); }
static inline CURLcode gh_easy_getinfo_ptr(CURL *h, CURLINFO i, void **v) { return curl_easy_getinfo(h, i, v); }

typedef int (*gh_socket_callback)(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp);
typedef int (*gh_timer_callback)(CURLM *multi, long timeout_ms, void *userp);
static inline CURLMcode gh_multi_setopt_long(CURLM *m, CURLMoption o, long v) { return curl_multi_setopt(m, o, v); }
static inline CURLMcode gh_multi_setopt_ptr(CURLM *m, CURLMoption o, void *v) { return curl_multi_setopt(m, o, v); }
static inline CURLMcode gh_multi_setopt_socket_callback(CURLM *m, gh_socket_callback f) { return curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, f); }
static inline CURLMcode gh_multi_setopt_timer_callback(CURLM *m, gh_timer_callback f) { return curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, f); }

// CURLMsg's payload is a union; Swift imports it awkwardly, so read it here.
static inline CURLcode gh_msg_result(CURLMsg *msg) { return msg->data.result; }

// epoll_event is packed on x86_64, which Swift imports without field access in some
// toolchains; these helpers keep the layout knowledge in C.
static inline int gh_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data) {
    struct epoll_event ev;
    ev.events = events;
    ev.data.u64 = data;
    return epoll_ctl(epfd, op, fd, &ev);
}
static inline int gh_epoll_wait(int epfd, uint32_t *events, uint64_t *data, int max, int timeout_ms) {
    struct epoll_event evs[256];
    if (max > 256) max = 256;
    int n = epoll_wait(epfd, evs, max, timeout_ms);
    for (int i = 0; i < n; i++) { events[i] = evs[i].events; data[i] = evs[i].data.u64; }
    return n;
}

static inline int gh_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }
static inline int gh_eventfd_create(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }
static inline void gh_eventfd_signal(int fd) { (void)eventfd_write(fd, 1); }
static inline void gh_eventfd_drain(int fd) { eventfd_t v; (void)eventfd_read(fd, &v); }
static const uint32_t GH_EPOLLIN = EPOLLIN;
static const uint32_t GH_EPOLLOUT = EPOLLOUT;
static const uint32_t GH_EPOLLERR = EPOLLERR;
static const uint32_t GH_EPOLLHUP = EPOLLHUP;
static const uint32_t GH_EPOLLONESHOT = EPOLLONESHOT;
static const long GH_CURL_WRITEFUNC_PAUSE = CURL_WRITEFUNC_PAUSE;
static const long GH_CURL_READFUNC_PAUSE = CURL_READFUNC_PAUSE;
static const long GH_CURL_READFUNC_ABORT = CURL_READFUNC_ABORT;
static const int GH_CURLPAUSE_RECV = CURLPAUSE_RECV;
static const int GH_CURLPAUSE_SEND = CURLPAUSE_SEND;
static const long GH_CURL_GLOBAL_DEFAULT = CURL_GLOBAL_DEFAULT;
#endif

#!/usr/bin/env python3
"""Latency of the first Server-Sent Event through Gatehouse versus directly from the upstream.

Starts the built-in echo upstream and the gateway (release binary) on 127.0.0.1, warms both
paths up, then for each sample requests `/sse?events=1&interval_ms=1` directly and via the
gateway's `/events` route (alternating which goes first), once on a fresh TCP connection and
once on an already open keep-alive connection. Each time runs from just before sendall to the
arrival of the first complete event (the `\\n\\n` after the response head). Blocking sockets
and a tight recv loop, so the client's overhead is small and the same on both paths.
Prints median/p90/p99/max per path and variant, the gateway - direct difference, and the
gateway's CPU time per sample. Target: median difference <= 1.0 ms (p99 is for information).
Loopback only; every socket operation and the whole run are bounded.

usage: bench/first_event.py [--samples 500] [--warmup 50] [--limit-ms 1.0] [--timeout 300]
"""
import argparse, gc, math, os, shutil, signal, socket, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import cpu_seconds, free_port, stop_all, wait_port  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.environ.get("GATEHOUSE_BIN", os.path.join(HERE, "..", ".build-release", "release", "gatehouse"))
SOCKET_TIMEOUT = 5.0
QUERY = b"?events=1&interval_ms=1"


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def dechunk(data):
    """Decode a chunked body prefix: (decoded bytes, True once the terminating chunk and trailers are in)."""
    out, i = [], 0
    while True:
        eol = data.find(b"\r\n", i)
        if eol < 0:
            return b"".join(out), False
        size = int(data[i:eol].split(b";", 1)[0], 16)
        if size == 0:
            # trailers (normally none) end with an empty line
            return b"".join(out), data[eol + 2:eol + 4] == b"\r\n" or data.find(b"\r\n\r\n", eol) >= 0
        start = eol + 2
        if len(data) < start + size + 2:
            out.append(data[start:start + size])
            return b"".join(out), False
        out.append(data[start:start + size])
        i = start + size + 2


def first_event(sock, request):
    """Send one request; return (ns until the first event is complete, connection reusable).
    The rest of the response is read (untimed) so that a kept-alive connection can be reused."""
    recv = sock.recv
    buf = b""
    head_end = -1
    chunked = False
    t0 = time.perf_counter_ns()
    sock.sendall(request)
    while True:
        data = recv(65536)
        if not data:
            raise RuntimeError(f"connection closed before the first event: {buf[:200]!r}")
        buf += data
        if head_end < 0:
            head_end = buf.find(b"\r\n\r\n")
            if head_end < 0:
                continue
            head_end += 4
            chunked = b"chunked" in buf[:head_end].lower()
        if buf.find(b"\n\n", head_end) >= 0 or (chunked and b"\n\n" in dechunk(buf[head_end:])[0]):
            t1 = time.perf_counter_ns()
            break
    # untimed: check the head and read the response to its end
    lines = buf[:head_end].decode("latin-1").split("\r\n")
    if not lines[0].startswith("HTTP/1.1 200"):
        raise RuntimeError(f"unexpected response: {lines[0]!r}")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip().lower()
    reusable = "close" not in headers.get("connection", "")
    if chunked:
        while not dechunk(buf[head_end:])[1]:
            data = recv(65536)
            if not data:
                return t1 - t0, False
            buf += data
    elif "content-length" in headers:
        want = head_end + int(headers["content-length"])
        while len(buf) < want:
            data = recv(65536)
            if not data:
                return t1 - t0, False
            buf += data
    else:  # delimited by close
        while recv(65536):
            pass
        reusable = False
    return t1 - t0, reusable


def pct(sorted_ns, p):
    return sorted_ns[max(0, math.ceil(p / 100 * len(sorted_ns)) - 1)] / 1e6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=500)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--limit-ms", type=float, default=1.0, help="allowed median difference gateway - direct")
    ap.add_argument("--timeout", type=int, default=300, help="bound on the whole measurement, seconds")
    args = ap.parse_args()
    if not os.path.exists(BIN):
        sys.exit(f"{BIN} is missing: build the release binary or set GATEHOUSE_BIN")

    work = tempfile.mkdtemp(prefix="gh-first-event-")
    up, gw = free_port(), free_port()
    conf = os.path.join(work, "proxy.conf")
    with open(conf, "w") as f:
        f.write(f"""[server]
listen = "127.0.0.1:{gw}"
[admin]
listen = "off"
[logs]
access = "off"
denials = "off"
[[routes]]
name = "events"
path = "/events"
upstream = "http://127.0.0.1:{up}/sse"
auth = "none"
""")
    procs = []
    keep = {}
    try:
        procs.append(subprocess.Popen([BIN, "echo", "--listen", f"127.0.0.1:{up}"], stderr=subprocess.DEVNULL))
        wait_port(up)
        procs.append(subprocess.Popen([BIN, "serve", "--config", conf], stderr=subprocess.DEVNULL))
        gateway = procs[-1]
        wait_port(gw)

        paths = {
            "direct": (up, b"GET /sse" + QUERY + b" HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n"),
            "gateway": (gw, b"GET /events" + QUERY + b" HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n"),
        }
        reconnects = {name: 0 for name in paths}

        def new_connection(name):
            port, request = paths[name]
            s = connect(port)
            try:
                return first_event(s, request)[0]
            finally:
                s.close()

        def kept_alive(name):
            port, request = paths[name]
            if name not in keep:
                keep[name] = connect(port)
                first_event(keep[name], request)  # untimed: the connection is now open and used once
            ns, reusable = first_event(keep[name], request)
            if not reusable:
                keep.pop(name).close()
                reconnects[name] += 1
            return ns

        variants = {"new connection": new_connection, "kept-alive connection": kept_alive}
        deadline = time.time() + args.timeout
        for i in range(args.warmup):
            if time.time() > deadline:
                sys.exit(f"warm-up exceeded --timeout {args.timeout}s")
            for fn in variants.values():
                for name in paths:
                    fn(name)
        results = {(v, name): [] for v in variants for name in paths}
        order = list(paths)
        gc.disable()
        cpu0 = cpu_seconds(gateway.pid)
        for i in range(args.samples):
            if time.time() > deadline:
                sys.exit(f"measurement exceeded --timeout {args.timeout}s after {i} samples")
            for v, fn in variants.items():
                for name in (order if i % 2 == 0 else order[::-1]):
                    results[(v, name)].append(fn(name))
        cpu = cpu_seconds(gateway.pid) - cpu0
        gc.enable()

        print(f"first SSE event latency, {args.samples} samples per path and variant"
              f" (after {args.warmup} warm-up requests each; direct and gateway alternate)")
        print(f"{'':32}{'median':>9}{'p90':>9}{'p99':>9}{'max':>9}  ms")
        stats = {}
        for v in variants:
            for name in paths:
                ns = sorted(results[(v, name)])
                stats[(v, name)] = (pct(ns, 50), pct(ns, 90), pct(ns, 99), ns[-1] / 1e6)
                print(f"{v + ', ' + name:32}" + "".join(f"{x:9.3f}" for x in stats[(v, name)]))
        ok = True
        for v in variants:
            d_med = stats[(v, "gateway")][0] - stats[(v, "direct")][0]
            d_p99 = stats[(v, "gateway")][2] - stats[(v, "direct")][2]
            ok = ok and d_med <= args.limit_ms
            print(f"gateway - direct, {v}: median {d_med:+.3f} ms, p99 {d_p99:+.3f} ms")
        if any(reconnects.values()):
            print(f"kept-alive connections closed by the server and reopened: {reconnects}")
        print(f"gateway CPU: {cpu / args.samples * 1e6:.0f} us per sample (2 gateway requests:"
              f" one new connection, one kept-alive; /proc stat resolution {1e3 / os.sysconf('SC_CLK_TCK'):.0f} ms"
              f" over {cpu:.2f} s total)")
        print(f"RESULT: {'ok' if ok else 'FAILED'} (judged on the median difference <= {args.limit_ms} ms"
              f" for both variants; the p99 difference is for information)")
        return 0 if ok else 1
    finally:
        for s in keep.values():
            s.close()
        stop_all(procs)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Idle SSE streams held open through Gatehouse while it serves ordinary load.

Starts the built-in echo upstream and the gateway (release binary) on 127.0.0.1, measures
wrk throughput without streams, then opens N idle Server-Sent-Event streams through the
gateway, measures again with them open, checks every stream is still open afterwards, and
prints the ratio and the gateway's RSS. Loopback only; every wait and load run is bounded.

usage: bench/sse_load.py [--streams 1000] [--duration 10] [--connections 50]
"""
import argparse, asyncio, os, re, resource, shutil, signal, socket, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import cpu_seconds, free_port, rss_mb, stop_all, wait_port  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.environ.get("GATEHOUSE_BIN", os.path.join(HERE, "..", ".build-release", "release", "gatehouse"))


def wrk(port, duration, connections):
    out = subprocess.run(
        ["timeout", str(duration + 15), "wrk", "-t1", f"-c{connections}", f"-d{duration}s", f"http://127.0.0.1:{port}/echo/x"],
        capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Socket errors: (.*)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, (errors.group(1) if errors else "none"), int(non2xx.group(1)) if non2xx else 0


async def open_stream(port, streams_ok):
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
    writer.write(b"GET /events?events=1000&interval_ms=60000 HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n")
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(head[:80])
    await asyncio.wait_for(reader.readuntil(b"\n\n"), 20)  # the first event
    streams_ok.append((reader, writer))


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--streams", type=int, default=1000)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=50)
    args = ap.parse_args()
    # This client holds one descriptor per stream (the gateway raises its own limit).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.streams * 2 + 100 > hard:
        print(f"note: the hard open-file limit is {hard}; the gateway needs two descriptors per stream,"
              f" so {args.streams} streams may not all open (ulimit -Hn)")
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install -y wrk")

    work = tempfile.mkdtemp(prefix="gh-sse-")
    up, gw = free_port(), free_port()
    conf = os.path.join(work, "proxy.conf")
    with open(conf, "w") as f:
        f.write(f"""[server]
listen = "127.0.0.1:{gw}"
stream_idle_timeout = "10m"
[admin]
listen = "off"
[logs]
access = "off"
denials = "off"
[[routes]]
name = "echo"
path = "/echo"
upstream = "http://127.0.0.1:{up}/"
auth = "none"
[[routes]]
name = "events"
path = "/events"
upstream = "http://127.0.0.1:{up}/sse"
auth = "none"
""")
    procs = [subprocess.Popen([BIN, "echo", "--listen", f"127.0.0.1:{up}"], stderr=subprocess.DEVNULL)]
    wait_port(up)
    procs.append(subprocess.Popen([BIN, "serve", "--config", conf], stderr=subprocess.DEVNULL))
    gateway = procs[-1]
    wait_port(gw)
    try:
        wrk(gw, 2, args.connections)  # warm-up
        base_rps, base_err, base_bad = wrk(gw, args.duration, args.connections)
        print(f"without streams: {base_rps:,.0f} req/s, socket errors: {base_err}, non-2xx: {base_bad}")
        rss_before = rss_mb(gateway.pid)

        streams = []
        started = time.time()
        for batch in range(0, args.streams, 100):
            await asyncio.gather(*(open_stream(gw, streams) for _ in range(min(100, args.streams - batch))))
        print(f"opened {len(streams)} SSE streams through the gateway in {time.time() - started:.1f}s;"
              f" gateway RSS {rss_before:.0f} MB -> {rss_mb(gateway.pid):.0f} MB")

        cpu0 = cpu_seconds(gateway.pid)
        rps, err, bad = await asyncio.get_running_loop().run_in_executor(None, wrk, gw, args.duration, args.connections)
        cpu = cpu_seconds(gateway.pid) - cpu0
        print(f"with {len(streams)} streams open: {rps:,.0f} req/s, socket errors: {err}, non-2xx: {bad},"
              f" gateway CPU {cpu / max(rps * args.duration, 1) * 1e6:.0f} us/req")

        alive = 0
        for reader, writer in streams:
            alive += 0 if reader.at_eof() else 1
        print(f"streams still open after the load: {alive}/{len(streams)}; gateway RSS {rss_mb(gateway.pid):.0f} MB")
        print(f"ratio with/without streams: {rps / base_rps:.2f}")
        for _, writer in streams:
            writer.close()
        ok = alive == len(streams) and err == "none" and base_err == "none"
        print("RESULT:", "ok" if ok else "FAILED")
        return 0 if ok else 1
    finally:
        stop_all(procs)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

#!/usr/bin/env python3
"""Instructions per proxied request, counted by valgrind's callgrind: Gatehouse beside
nginx (plain proxy, no auth) and HAProxy (verifying every JWT), same requests, one run.

Why: on this class of machine the CPU speed drifts ~1.7x between runs, so timings need a
same-run reference and still move. An instruction count barely moves: the same binary
given the same requests executes the same instructions whatever else the machine is
doing, so two builds measured in the same minutes can be compared to a fraction of a
percent (over hours a figure can drift by up to 1 %: timers, date-stamped fields). What
it does not see is the kernel (syscalls, loopback TCP), which is about 40 % of the gateway's CPU time under
load (see BENCHMARKS.md); it counts user-space work only.

How: each proxy runs alone under `valgrind --tool=callgrind` on 127.0.0.1 behind a native
nginx upstream. A client sends --warmup requests, the counters are zeroed
(`callgrind_control -z`), the client sends --requests more on one keep-alive connection,
one at a time, and the counters are dumped (`callgrind_control -d`). Sequential requests
keep the work per event-loop wake-up the same on every run, which is what makes the count
repeatable. (Timers that fire during the counted requests, such as the key store's
poll, are counted too; under valgrind they are a small share.) Scenarios: no auth (Gatehouse's auth = "none" route against nginx), and per
algorithm one cached token and a fresh token per request (cache misses). HAProxy caches
nothing, so its two rows differ only by the token.

Gatehouse's binary is copied without its DWARF sections (`objcopy --strip-debug`):
valgrind 3.19 cannot read the DWARF 5 that Swift 6 writes. Machine code is unchanged.

Needs valgrind, nginx, haproxy, objcopy and python3-cryptography (what `make bench` needs,
plus valgrind). Everything listens on 127.0.0.1; every process started is stopped.
"""
import argparse, glob, os, shutil, socket, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import free_port, stop_all, wait_port  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
COMPARE = os.path.join(HERE, "compare")
ISSUER, AUDIENCE, SCOPE, PREFIX = "https://auth.example.test", "mcp-gateway", "mcp:read", "/mcp"
KIDS = {"RS256": "bench-rsa-1", "ES256": "bench-ec-1", "HS256": "bench-hs-1"}


def run(*args, **kw):
    return subprocess.run(list(args), check=True, capture_output=True, text=True, **kw).stdout


def control(command, pid):
    """callgrind_control reaches the process through ptrace (vgdb); where ptrace is
    restricted it waits for the process to wake on its own, so it gets a deadline."""
    try:
        subprocess.run(["callgrind_control", command, str(pid)], check=True, capture_output=True, timeout=60)
    except subprocess.TimeoutExpired:
        raise RuntimeError("callgrind_control got no answer in 60 s: is ptrace restricted "
                           "(/proc/sys/kernel/yama/ptrace_scope)?") from None


class Client:
    """One keep-alive HTTP/1.1 connection, one request at a time."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def get(self, path, token=None):
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: bench\r\n{auth}\r\n".encode())
        while b"\r\n\r\n" not in self.buf:
            self.buf += self._recv()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        status = int(head.split(b" ", 2)[1])
        fields = {}
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            fields[name.strip().lower()] = value.strip()
        if fields.get(b"transfer-encoding", b"").lower() == b"chunked":
            while b"0\r\n\r\n" not in self.buf:
                self.buf += self._recv()
            self.buf = self.buf.split(b"0\r\n\r\n", 1)[1]
        else:
            length = int(fields.get(b"content-length", b"0"))
            while len(self.buf) < length:
                self.buf += self._recv()
            self.buf = self.buf[length:]
        return status

    def _recv(self):
        data = self.sock.recv(65536)
        if not data:
            raise RuntimeError("the proxy closed the connection")
        return data

    def close(self):
        self.sock.close()


class Counted:
    """A proxy process under callgrind, with its dumps in `workdir`."""

    def __init__(self, name, argv, port, workdir, env=None):
        self.name, self.port = name, port
        self.prefix = os.path.join(workdir, f"callgrind.{name}")
        with open(os.path.join(workdir, f"{name}.log"), "a") as log:
            self.proc = subprocess.Popen(
                ["valgrind", "--tool=callgrind", f"--callgrind-out-file={self.prefix}.%p.out"] + argv,
                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            wait_port(port, self.proc, timeout=180)
        except BaseException:
            self.stop()  # its own session: Ctrl-C would not reach it
            raise

    def count(self, path, tokens, warmup, requests):
        """Instructions per request over `requests` sequential requests, after a warm-up.
        `tokens(i)` gives request i's token (None: no Authorization)."""
        client = Client(self.port)
        try:
            for i in range(warmup):
                self._expect_ok(client.get(path, tokens(i)))
            before = set(self._dumps())
            control("-z", self.proc.pid)
            for i in range(warmup, warmup + requests):
                self._expect_ok(client.get(path, tokens(i)))
            control("-d", self.proc.pid)
            return self._dumped(before) / requests
        finally:
            client.close()

    def _dumps(self):
        return glob.glob(f"{self.prefix}.{self.proc.pid}.out*")

    def _expect_ok(self, status):
        if status != 200:
            raise RuntimeError(f"{self.name}: a counted request got {status}, not 200")

    def _dumped(self, before):
        deadline = time.time() + 60
        while time.time() < deadline:
            for path in set(self._dumps()) - before:
                with open(path) as f:
                    for line in f:
                        if line.startswith("summary:"):
                            return int(line.split()[1])
            time.sleep(0.2)
        raise RuntimeError(f"{self.name}: callgrind wrote no dump")

    def stop(self):
        stop_all([self.proc], grace=30)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gatehouse", default=os.path.join(HERE, "..", ".build-release", "release", "gatehouse"))
    ap.add_argument("--algs", default="RS256,ES256,HS256")
    ap.add_argument("--requests", type=int, default=1000, help="counted requests per scenario")
    ap.add_argument("--warmup", type=int, default=200, help="uncounted requests before them")
    ap.add_argument("--targets", default="nginx,haproxy,gatehouse")
    a = ap.parse_args()
    algs = [x for x in a.algs.split(",") if x]
    targets = a.targets.split(",")
    for tool in ("valgrind", "callgrind_control", "nginx", "haproxy", "objcopy"):
        if shutil.which(tool) is None:
            sys.exit(f"instructions.py: {tool} not found (apt-get install valgrind nginx haproxy binutils)")
    if "gatehouse" in targets and not os.path.exists(a.gatehouse):
        sys.exit(f"instructions.py: no gatehouse binary at {a.gatehouse} (make bench builds it)")

    work = tempfile.mkdtemp(prefix="gatehouse-instructions.")
    priv, pub = os.path.join(work, "priv"), os.path.join(work, "pub")
    for d in ("run/nginx-upstream-tmp", "run/nginx-proxy-tmp", "logs"):
        os.makedirs(os.path.join(work, d))
    jwt_tool = [sys.executable, os.path.join(COMPARE, "lib", "jwt_tool.py")]
    run(*jwt_tool, "keys", "--priv-dir", priv, "--pub-dir", pub)
    single, fresh = {}, {}
    for alg in algs:
        single[alg] = run(*jwt_tool, "mint", "--priv-dir", priv, "--alg", alg).strip()
        out = os.path.join(work, f"{alg}.fresh.txt")
        run(*jwt_tool, "mint", "--priv-dir", priv, "--alg", alg, "--count", str(a.warmup + a.requests),
            "--subs", "100", "--jobs", str(os.cpu_count() or 1), "--out", out)
        fresh[alg] = open(out).read().split()

    render = [sys.executable, os.path.join(COMPARE, "lib", "util.py"), "render"]
    up_port = free_port()
    run(*render, os.path.join(COMPARE, "conf", "nginx-upstream.conf.in"), os.path.join(work, "upstream.conf"),
        f"WORK={work}", f"UPSTREAM_PORT={up_port}", f"PUB_DIR={pub}", f"SCOPE_PREFIX={PREFIX}", "WORKERS=1")

    path = f"{PREFIX}/bench"
    none = lambda i: None  # noqa: E731
    rows = {}  # scenario -> {target: instructions per request}
    scenarios = [("no auth", none)]
    for alg in algs:
        scenarios.append((f"{alg}, 1 token", lambda i, t=single[alg]: t))
        scenarios.append((f"{alg}, fresh token per request", lambda i, f=fresh[alg]: f[i]))

    def measure(target, proxy, wanted):
        try:
            for name, tokens in scenarios:
                if wanted(name):
                    per = proxy.count(path, tokens, a.warmup, a.requests)
                    rows.setdefault(name, {})[target] = per
                    print(f"  {target:<10} {name:<32} {per:>12,.0f} instructions/request", flush=True)
        finally:
            proxy.stop()

    upstream = subprocess.Popen(["nginx", "-c", os.path.join(work, "upstream.conf"), "-p", work, "-g", "daemon off;"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_port(up_port, upstream)
        if "nginx" in targets:
            port = free_port()
            run(*render, os.path.join(COMPARE, "conf", "nginx-proxy.conf.in"), os.path.join(work, "proxy.conf"),
                f"WORK={work}", f"UPSTREAM_PORT={up_port}", f"PORT={port}", "WORKERS=1")
            # One process (no master), so the counted process is the one doing the work.
            measure("nginx", Counted("nginx", ["nginx", "-c", os.path.join(work, "proxy.conf"), "-p", work,
                                               "-g", "daemon off; master_process off;"], port, work),
                    lambda name: name == "no auth")
        if "haproxy" in targets:
            port = free_port()
            run(*render, os.path.join(COMPARE, "conf", "haproxy.cfg.in"), os.path.join(work, "haproxy.cfg"),
                "NBTHREAD=1", f"PORT={port}", f"UPSTREAM_PORT={up_port}",
                f"RSA_PUB={pub}/rsa_pub.pem", f"EC_PUB={pub}/ec_pub.pem",
                f"HS_SECRET={open(os.path.join(priv, 'hs256.secret')).read()}",
                *(f"{k}={v}" for k, v in (("RSA_KID", KIDS["RS256"]), ("EC_KID", KIDS["ES256"]), ("HS_KID", KIDS["HS256"]))),
                f"ISSUER={ISSUER}", f"AUDIENCE={AUDIENCE}", f"REQUIRED_SCOPE={SCOPE}", f"SCOPE_PREFIX={PREFIX}",
                "RATE_LIMIT=1000000", "RATE_PERIOD=10s")
            measure("haproxy", Counted("haproxy", ["haproxy", "-db", "-f", os.path.join(work, "haproxy.cfg")], port, work),
                    lambda name: name != "no auth")
        if "gatehouse" in targets:
            binary = os.path.join(work, "gatehouse")
            run("objcopy", "--strip-debug", a.gatehouse, binary)
            env = dict(os.environ, BENCH_UPSTREAM=f"http://127.0.0.1:{up_port}", BENCH_WORKDIR=work,
                       BENCH_RSA_PUB=f"{pub}/rsa_pub.pem", BENCH_EC_PUB=f"{pub}/ec_pub.pem",
                       BENCH_HS_SECRET=f"{priv}/hs256.secret", BENCH_RSA_KID=KIDS["RS256"],
                       BENCH_EC_KID=KIDS["ES256"], BENCH_HS_KID=KIDS["HS256"], BENCH_ISSUER=ISSUER,
                       BENCH_AUDIENCE=AUDIENCE, BENCH_REQUIRED_SCOPE=SCOPE, BENCH_SCOPE_PREFIX=PREFIX,
                       BENCH_THREADS="1", GATEHOUSE_BIN=binary)
            for script, wanted in (("candidate-noauth.sh", lambda n: n == "no auth"),
                                   ("candidate-auth.sh", lambda n: n != "no auth")):
                port = free_port()
                # The candidate script writes the config and execs GATEHOUSE_BIN; valgrind
                # runs the script's shell and follows the exec into the gateway.
                measure("gatehouse", Counted("gatehouse", ["--trace-children=yes", "bash", os.path.join(HERE, script)],
                                             port, work, env=dict(env, BENCH_PORT=str(port))), wanted)
    finally:
        stop_all([upstream])

    print(f"\nInstructions per request (user space only; {a.requests:,} sequential requests after "
          f"{a.warmup:,} warm-up; lower is better)\n")
    print(f"| scenario | nginx (no auth) | HAProxy JWT | Gatehouse | HAProxy / Gatehouse | Gatehouse / nginx |")
    print(f"|---|---|---|---|---|---|")
    nginx_floor = rows.get("no auth", {}).get("nginx")
    for name, _ in scenarios:
        r = rows.get(name, {})
        g, h = r.get("gatehouse"), r.get("haproxy")
        n = r.get("nginx", nginx_floor)
        cell = lambda v: f"{v:,.0f}" if v else "–"  # noqa: E731
        print(f"| {name} | {cell(r.get('nginx'))} | {cell(h)} | {cell(g)} | "
              f"{f'{h / g:.2f}×' if g and h else '–'} | {f'{g / n:.2f}×' if g and n else '–'} |")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

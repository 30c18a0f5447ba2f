#!/usr/bin/env python3
"""Bounded mixed soak test: Gatehouse's memory must stay flat under a steady mix of traffic.

Starts the built-in echo upstream and the gateway (release binary) on 127.0.0.1 with a JWT
issuer (HS256, plus ES256 when `cryptography` is installed), a route that needs a scope,
a per-identity rate limit one identity is made to exceed, and the denial log on. Then, for
--duration seconds, all at once:
  valid    wrk -t1 -c20 in consecutive chunks, rotating a few hundred distinct valid tokens
           (every one must get 200)
  invalid  bad signature, expired, no token (401) and a missing scope (403), each request a
           freshly minted token, from a pool of client IPs (X-Forwarded-For)
  hammer   one identity held far past its rate limit (200 then 429)
  sse      a pool of Server-Sent-Event streams opened, read for a while and closed (or read
           to their end), continuously, each with Accept: text/event-stream
The gateway's RSS is sampled every 10 s. The baseline is the RSS after the warm-up (60 s or
10% of the duration, whichever is smaller); growth from it to the final sample must stay
under --max-growth percent. At the end the gateway must still answer /healthz and a valid
request, and its open-stream gauge must drop back to 0 once the streams are closed.
Loopback only; every wrk run is wrapped in `timeout`, every socket operation has one, and
every child is stopped on the way out. Exit 0 when all holds, else 1.

usage: bench/soak.py [--duration 600] [--connections 20] [--chunk 30] [--streams 200]
                     [--tokens 300] [--invalid-rps 20] [--hammer-rps 40] [--max-growth 5]
                     [--access-log] [--keep]
"""
import argparse, asyncio, base64, collections, hashlib, hmac, json, os, random, re, shutil, signal, socket, \
    subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import free_port, wait_port  # noqa: E402

try:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
except ImportError:  # HS256 only
    ec = None

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.environ.get("GATEHOUSE_BIN", os.path.join(HERE, "..", ".build-release", "release", "gatehouse"))
ISSUER, AUDIENCE, SCOPE, ES_KID = "https://soak.issuer.test", "soak-gateway", "api:read", "soak-es"
IO_TIMEOUT = 10  # seconds, for every socket operation

VALID_LUA = r"""
-- Rotates the tokens of the file given after `--` (one per line), one request each, and
-- counts the responses by status (printed as "STATUS <code> <count>" when wrk is done).
local requests, next_request, threads = {}, 0, {}
counts = {}

function setup(thread) table.insert(threads, thread) end

function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then
      local n = #requests + 1
      requests[n] = wrk.format("GET", "/api/items/" .. n .. "?soak=1", { ["Authorization"] = "Bearer " .. line })
    end
  end
  next_request = math.random(#requests) - 1
end

function request()
  next_request = next_request % #requests + 1
  return requests[next_request]
end

function response(status, headers, body) counts[status] = (counts[status] or 0) + 1 end

function done(summary, latency, requests)
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("counts")) do io.write(string.format("STATUS %d %d\n", status, count)) end
  end
end
"""


# ---------------------------------------------------------------------------------------
# tokens

def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Minter:
    def __init__(self, work):
        self.secret = os.urandom(32).hex().encode()
        self.secret_path = os.path.join(work, "hs256.secret")
        with open(self.secret_path, "wb") as f:
            f.write(self.secret)
        self.es_key, self.es_pub_path = None, None
        if ec is not None:
            self.es_key = ec.generate_private_key(ec.SECP256R1())
            self.es_pub_path = os.path.join(work, "es256.pub.pem")
            with open(self.es_pub_path, "wb") as f:
                f.write(self.es_key.public_key().public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))

    def algorithms(self):
        return ["HS256", "ES256"] if self.es_key else ["HS256"]

    def mint(self, sub, scope=SCOPE, lifetime=3600, age=0, alg="HS256", role=None):
        now = int(time.time()) - age
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "iat": now, "exp": now + lifetime,
                  "jti": os.urandom(8).hex(), "scope": scope}
        if role:
            claims["role"] = role
        header = {"alg": alg, "typ": "JWT"}
        if alg == "ES256":
            header["kid"] = ES_KID
        signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                         b64url(json.dumps(claims, separators=(",", ":")).encode())).encode()
        if alg == "ES256":
            r, s = decode_dss_signature(self.es_key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
            signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        else:
            signature = hmac.new(self.secret, signing_input, hashlib.sha256).digest()
        return signing_input.decode() + "." + b64url(signature)


# ---------------------------------------------------------------------------------------
# processes and probes


def proc_status(pid):
    """(VmRSS in MB, threads, open fds) of a live process."""
    rss, threads = 0.0, 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return rss, threads, len(os.listdir(f"/proc/{pid}/fd"))


def stop(proc, sig=signal.SIGTERM, grace=10, group=False):
    """Stops one child we started (with its process group when `group`), then reaps it."""
    if proc is None or proc.returncode is not None:
        return
    try:
        os.killpg(proc.pid, sig) if group else proc.send_signal(sig)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL) if group else proc.kill()
        except ProcessLookupError:
            pass
        proc.wait(timeout=5)


async def http_get(port, path, headers=(), timeout=IO_TIMEOUT):
    """One GET with Connection: close; returns (status, body). Bounded by `timeout` in all."""
    async def run():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            lines = [f"GET {path} HTTP/1.1", "Host: soak", "Connection: close"]
            lines += [f"{k}: {v}" for k, v in headers]
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
            await writer.drain()
            data = await reader.read(-1)
        finally:
            writer.close()
        head, _, body = data.partition(b"\r\n\r\n")
        match = re.match(rb"HTTP/1\.[01] (\d{3})", head)
        if not match:
            raise ConnectionError("no status line")
        return int(match.group(1)), body
    return await asyncio.wait_for(run(), timeout)


def err_name(exc):
    return "timeout" if isinstance(exc, asyncio.TimeoutError) else "err:" + type(exc).__name__


# ---------------------------------------------------------------------------------------
# the load

class Soak:
    def __init__(self, args, gw_port, admin_port, minter, work):
        self.args, self.gw, self.admin, self.minter, self.work = args, gw_port, admin_port, minter, work
        self.counts = collections.defaultdict(collections.Counter)  # class -> status -> count
        self.sse = collections.Counter()  # opened / events / client_closed / server_ended
        self.wrk_errors = []
        self.wrk_procs = []
        self.deadline = 0.0
        self.valid_tokens = []
        algs = minter.algorithms()
        for i in range(args.tokens):
            self.valid_tokens.append(minter.mint(f"user-{i:04d}", lifetime=args.duration + 3600,
                                                 alg=algs[i % len(algs)]))
        self.tokens_file = os.path.join(work, "valid-tokens.txt")
        with open(self.tokens_file, "w") as f:
            f.write("\n".join(self.valid_tokens) + "\n")
        self.lua = os.path.join(work, "valid.lua")
        with open(self.lua, "w") as f:
            f.write(VALID_LUA)
        self.hammer_token = minter.mint("hammer", role="hammer", lifetime=args.duration + 3600)

    def running(self):
        return time.monotonic() < self.deadline

    # (a) valid requests: wrk in bounded chunks
    async def valid_loop(self):
        while True:
            remaining = self.deadline - time.monotonic()
            if remaining < 1.5:
                return
            chunk = int(min(self.args.chunk, remaining))
            cmd = ["timeout", "-k", "5", str(chunk + 20), "wrk", "-t1", f"-c{self.args.connections}", f"-d{chunk}s",
                   "--timeout", "10s", "-s", self.lua, f"http://127.0.0.1:{self.gw}/api/items", "--", self.tokens_file]
            proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE,
                                                        stderr=asyncio.subprocess.PIPE, start_new_session=True)
            self.wrk_procs.append(proc)
            out, err = await proc.communicate()
            out = out.decode(errors="replace")
            statuses = re.findall(r"^STATUS (\d+) (\d+)$", out, re.M)
            for status, count in statuses:
                self.counts["valid"][int(status)] += int(count)
            socket_errors = re.search(r"Socket errors: (.*)", out)
            if socket_errors:
                self.wrk_errors.append(socket_errors.group(1))
            if proc.returncode != 0 or not statuses:
                self.wrk_errors.append(f"wrk exit {proc.returncode}: {err.decode(errors='replace').strip()[:200]}")

    # (b) invalid requests at a modest rate, from a pool of client IPs
    async def invalid_one(self, kind, xff):
        m = self.minter
        headers = [("X-Forwarded-For", xff)]
        if kind == "bad_signature":
            token = m.mint(f"user-{random.randrange(self.args.tokens):04d}", alg=random.choice(m.algorithms()))
            head, _, sig = token.rpartition(".")
            token = head + "." + b64url(os.urandom(len(base64.urlsafe_b64decode(sig + "==="))))
            headers.append(("Authorization", "Bearer " + token))
        elif kind == "expired":
            headers.append(("Authorization", "Bearer " + m.mint(f"user-{random.randrange(self.args.tokens):04d}",
                                                                 lifetime=600, age=1800)))
        elif kind == "wrong_scope":
            headers.append(("Authorization", "Bearer " + m.mint(f"intruder-{random.randrange(50):02d}",
                                                                 scope="other:read")))
        try:
            status, _ = await http_get(self.gw, f"/api/secret/{kind}", headers)
            self.counts["invalid:" + kind][status] += 1
        except Exception as exc:  # noqa: BLE001 - every failure is counted, none may stop the soak
            self.counts["invalid:" + kind][err_name(exc)] += 1

    async def paced(self, rate, make, name, limit=50):
        """Starts make() `rate` times a second with at most `limit` in flight (else skips)."""
        in_flight, n, start = set(), 0, time.monotonic()
        while self.running():
            n += 1
            if len(in_flight) < limit:
                task = asyncio.ensure_future(make(n))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            else:
                self.counts[name]["skipped"] += 1
            await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
        if in_flight:
            await asyncio.wait(in_flight, timeout=IO_TIMEOUT + 2)

    async def invalid_loop(self):
        kinds = ["bad_signature", "expired", "missing_token", "wrong_scope"]
        await self.paced(self.args.invalid_rps,
                         lambda n: self.invalid_one(kinds[n % 4], f"198.18.{(n // 4) % 4}.{n % 250 + 1}"),
                         "invalid:pacer")

    # (c) one identity far past its rate limit
    async def hammer_one(self, _):
        try:
            status, _ = await http_get(self.gw, "/api/hammer", [("Authorization", "Bearer " + self.hammer_token)])
            self.counts["hammer"][status] += 1
        except Exception as exc:  # noqa: BLE001
            self.counts["hammer"][err_name(exc)] += 1

    async def hammer_loop(self):
        await self.paced(self.args.hammer_rps, self.hammer_one, "hammer:pacer")

    # (d) SSE churn: each worker opens a stream, reads it for a while (or to its end), closes it
    async def sse_worker(self, index):
        await asyncio.sleep(index * 5.0 / self.args.streams)  # spread the first opens over 5 s
        rng = random.Random(index)
        while self.running():
            if rng.random() < 0.3:  # short stream, read to its end
                events, interval, hold = rng.randint(2, 8), rng.choice([100, 250]), 30.0
            else:  # long stream, closed by us mid-way
                events, interval, hold = 10_000, rng.choice([250, 500, 1000]), rng.uniform(2, 12)
            token = self.valid_tokens[rng.randrange(len(self.valid_tokens))]
            request = (f"GET /events?events={events}&interval_ms={interval} HTTP/1.1\r\nHost: soak\r\n"
                       f"Accept: text/event-stream\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n")
            writer = None
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", self.gw), IO_TIMEOUT)
                writer.write(request.encode())
                await asyncio.wait_for(writer.drain(), IO_TIMEOUT)
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IO_TIMEOUT)
                status = int(head[9:12])
                if status == 200 and b"text/event-stream" not in head.lower():
                    status = "200-not-sse"
                self.counts["sse"][status] += 1
                if status != 200:
                    await asyncio.sleep(1)
                    continue
                self.sse["opened"] += 1
                until, tail = min(time.monotonic() + hold, self.deadline), b""
                while True:
                    left = until - time.monotonic()
                    if left <= 0:
                        self.sse["client_closed"] += 1
                        break
                    try:
                        chunk = await asyncio.wait_for(reader.read(4096), min(left, IO_TIMEOUT))
                    except asyncio.TimeoutError:
                        if until - time.monotonic() > 0.05:  # no bytes for IO_TIMEOUT
                            self.counts["sse"]["stalled"] += 1
                        else:
                            self.sse["client_closed"] += 1
                        break
                    if not chunk:
                        self.sse["server_ended"] += 1
                        break
                    buf = tail + chunk
                    self.sse["events"] += buf.count(b"data: ")
                    tail = buf[-5:]
            except Exception as exc:  # noqa: BLE001
                self.counts["sse"][err_name(exc)] += 1
                await asyncio.sleep(1)
            finally:
                if writer is not None:
                    writer.close()
            await asyncio.sleep(rng.uniform(0, 0.5))

    async def sse_loop(self):
        await asyncio.gather(*(self.sse_worker(i) for i in range(self.args.streams)))

    # sampling
    async def open_streams(self):
        try:
            status, body = await http_get(self.admin, "/metrics", timeout=5)
            match = re.search(rb"^gatehouse_open_streams(?:\{[^}]*\})? ([0-9.e+]+)", body, re.M)
            return int(float(match.group(1))) if status == 200 and match else None
        except Exception:  # noqa: BLE001
            return None

    def summary(self):
        def fmt(counter):
            return " ".join(f"{k}={v}" for k, v in sorted(counter.items(), key=lambda kv: str(kv[0]))) or "-"
        invalid = collections.Counter()
        for name, counter in self.counts.items():
            if name.startswith("invalid:"):
                invalid.update(counter)
        return (f"valid {fmt(self.counts['valid'])} | invalid {fmt(invalid)} | hammer {fmt(self.counts['hammer'])}"
                f" | sse {fmt(self.counts['sse'])} ev={self.sse['events']}")


async def run(args, gateway, echo, gw_port, admin_port, minter, work):
    soak = Soak(args, gw_port, admin_port, minter, work)
    warmup = min(60.0, args.duration * 0.1)
    marks = sorted({float(t) for t in range(10, args.duration, 10)} | {warmup, float(args.duration)})
    start = time.monotonic()
    soak.deadline = start + args.duration + 3  # the final sample is taken under full load
    loads = [asyncio.ensure_future(c) for c in
             (soak.valid_loop(), soak.invalid_loop(), soak.hammer_loop(), soak.sse_loop())]
    samples, baseline = [], None  # (t, rss)
    print(f"{'t':>6} {'rss MB':>7} {'thr':>4} {'fds':>5} {'strm':>4}  cumulative counts by status"
          f" (valid: finished {args.chunk}s wrk chunks)")
    try:
        for mark in marks:
            await asyncio.sleep(max(0.0, start + mark - time.monotonic()))
            if gateway.poll() is not None:
                print(f"gateway exited with {gateway.returncode} at t={time.monotonic() - start:.0f}s")
                break
            try:
                rss, threads, fds = proc_status(gateway.pid)
            except OSError:
                print(f"gateway gone at t={time.monotonic() - start:.0f}s")
                break
            streams = await soak.open_streams()
            samples.append((mark, rss))
            tag = ""
            if baseline is None and mark >= warmup:
                baseline, tag = rss, "  <- baseline"
            print(f"{mark:5.0f}s {rss:7.1f} {threads:4d} {fds:5d} {streams if streams is not None else '?':>4}  "
                  f"{soak.summary()}{tag}", flush=True)
        soak.deadline = 0  # stop whatever is still going
        done, pending = await asyncio.wait(loads, timeout=IO_TIMEOUT + 25)
        for task in pending:
            task.cancel()
        for task in done:
            if task.exception():
                print(f"load task failed: {task.exception()!r}")
    finally:
        for task in loads:
            task.cancel()
        for proc in soak.wrk_procs:
            if proc.returncode is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)  # `timeout` and its wrk
                except ProcessLookupError:
                    pass

    # --- verdict -------------------------------------------------------------------------
    print()
    ok, reasons = True, []
    for name in sorted(soak.counts):
        print(f"  {name:22} {dict(sorted(soak.counts[name].items(), key=lambda kv: str(kv[0])))}")
    print(f"  sse streams: {dict(soak.sse)}")
    if soak.wrk_errors:
        print(f"  wrk: {soak.wrk_errors}")

    expected = {"valid": {200}, "sse": {200}, "hammer": {200, 429}, "invalid:bad_signature": {401},
                "invalid:expired": {401}, "invalid:missing_token": {401}, "invalid:wrong_scope": {403}}
    for name, allowed in expected.items():
        counter = soak.counts[name]
        unexpected = {k: v for k, v in counter.items() if k not in allowed}
        if not counter:
            reasons.append(f"no {name} requests completed")
        elif unexpected:
            reasons.append(f"{name}: unexpected {unexpected}")
    if soak.counts["hammer"][429] == 0:
        reasons.append("the hammered identity never got 429")
    if soak.sse["events"] == 0:
        reasons.append("no SSE events received")
    if soak.wrk_errors:
        reasons.append("wrk failed or saw socket errors")

    alive = gateway.poll() is None and echo.poll() is None
    health = valid_final = None
    if alive:
        try:
            health = (await http_get(admin_port, "/healthz", timeout=5))[0]
            valid_final = (await http_get(gw_port, "/api/final", [("Authorization", "Bearer " + soak.valid_tokens[0])],
                                          timeout=5))[0]
        except Exception as exc:  # noqa: BLE001
            print(f"  final probe failed: {exc!r}")
    up = alive and health == 200 and valid_final == 200
    print(f"  processes: gateway {'up' if gateway.poll() is None else 'EXITED'}, echo "
          f"{'up' if echo.poll() is None else 'EXITED'}; /healthz {health}; valid request {valid_final}")
    if not up:
        reasons.append("not all processes still up / answering")
    if alive:  # every stream is closed now: the gateway's gauge must come back to 0
        streams = None
        for _ in range(20):
            streams = await soak.open_streams()
            if streams == 0:
                break
            await asyncio.sleep(0.5)
        print(f"  open streams after the load: {streams}")
        if streams != 0:
            reasons.append(f"open-stream gauge stuck at {streams}")
        rss, threads, fds = proc_status(gateway.pid)
        print(f"  after the load (idle): rss {rss:.1f} MB, threads {threads}, fds {fds}")

    denial_files = [f for f in os.listdir(work) if f.startswith("denials.jsonl")]
    denial_lines = sum(sum(1 for _ in open(os.path.join(work, f), "rb")) for f in denial_files)
    print(f"  denial log: {denial_lines} lines in {len(denial_files)} file(s)")
    if denial_lines == 0:
        reasons.append("denial log is empty")

    growth = None
    if baseline and samples:
        final_t, final = samples[-1]
        last_min = max(r for t, r in samples if t >= final_t - 60)
        growth = (final - baseline) / baseline * 100
        growth_max = (last_min - baseline) / baseline * 100
        print(f"  RSS baseline {baseline:.1f} MB (t={warmup:.0f}s), final {final:.1f} MB (t={final_t:.0f}s):"
              f" growth {growth:+.1f}%; max of the last minute {last_min:.1f} MB: {growth_max:+.1f}%;"
              f" peak {max(r for _, r in samples):.1f} MB")
        if growth >= args.max_growth:
            reasons.append(f"RSS grew {growth:+.1f}% (limit {args.max_growth}%)")
    else:
        reasons.append("no RSS baseline (the gateway died during warm-up?)")
    print(f"  all processes still up: {'yes' if up else 'NO'}")
    ok = not reasons
    for reason in reasons:
        print(f"  problem: {reason}")
    print("RESULT:", "ok" if ok else "FAILED")
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=int, default=600, help="seconds of load (default 600)")
    ap.add_argument("--connections", type=int, default=20, help="wrk connections for valid requests")
    ap.add_argument("--chunk", type=int, default=30, help="seconds per wrk run")
    ap.add_argument("--streams", type=int, default=200, help="SSE streams kept churning")
    ap.add_argument("--tokens", type=int, default=300, help="distinct valid tokens (and subjects)")
    ap.add_argument("--invalid-rps", type=float, default=20)
    ap.add_argument("--hammer-rps", type=float, default=40, help="requests/s of the identity limited to 5/s")
    ap.add_argument("--max-growth", type=float, default=5.0, help="allowed RSS growth in percent")
    ap.add_argument("--access-log", action="store_true", help="access log to a file (it grows quickly)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (config, logs)")
    args = ap.parse_args()
    if args.duration < 20:
        sys.exit("--duration must be at least 20 seconds")
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install -y wrk")
    if not os.access(BIN, os.X_OK):
        sys.exit(f"no gatehouse binary at {BIN} (build with `make bench`, or set GATEHOUSE_BIN)")

    work = tempfile.mkdtemp(prefix="gh-soak-")
    minter = Minter(work)
    up, gw, admin = free_port(), free_port(), free_port()
    conf = os.path.join(work, "proxy.conf")
    keys = f'keys = [{{ path = "{minter.es_pub_path}", kid = "{ES_KID}" }}]\n' if minter.es_key else ""
    access = f'"{os.path.join(work, "access.jsonl")}"' if args.access_log else '"off"'
    with open(conf, "w") as f:
        f.write(f"""[server]
listen = "127.0.0.1:{gw}"
trusted_proxies = ["127.0.0.1/32"]
shutdown_grace = "2s"
[admin]
listen = "127.0.0.1:{admin}"
[logs]
access = {access}
denials = "{os.path.join(work, 'denials.jsonl')}"
denials_max_bytes = "16MiB"
denials_keep = 1
level = "warning"
[[issuers]]
issuer = "{ISSUER}"
audiences = ["{AUDIENCE}"]
algorithms = {json.dumps(minter.algorithms())}
hs256_secret_file = "{minter.secret_path}"
{keys}[api_keys]
store = "{os.path.join(work, 'keys.db')}"
# Valid identities never reach their budget; the "hammer" role gets 5 a second.
[rate_limits]
by = "subject"
default = {{ requests = 1000000, per = "1s", burst = 1000000 }}
[rate_limits.policies]
tight = {{ requests = 5, per = "1s", burst = 5 }}
[rate_limits.roles]
hammer = "tight"
# Invalid requests come from many X-Forwarded-For addresses; none is ever blocked.
[rate_limits.auth_failures]
max = 1000000
per = "1m"
block = "1s"
[[routes]]
name = "api"
path = "/api"
upstream = "http://127.0.0.1:{up}/api"
scopes = ["{SCOPE}"]
[[routes]]
name = "events"
path = "/events"
upstream = "http://127.0.0.1:{up}/sse"
scopes = ["{SCOPE}"]
""")
    check = subprocess.run(["timeout", "30", BIN, "check", "--config", conf], capture_output=True, text=True)
    if check.returncode != 0:
        print(check.stdout + check.stderr)
        shutil.rmtree(work, ignore_errors=True)
        sys.exit("gatehouse check refused the generated config")

    procs = []
    code = 1
    try:
        echo = subprocess.Popen([BIN, "echo", "--listen", f"127.0.0.1:{up}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(echo)
        wait_port(up, echo)
        gateway_err = open(os.path.join(work, "gateway.stderr"), "wb")
        gateway = subprocess.Popen([BIN, "serve", "--config", conf], stdout=subprocess.DEVNULL, stderr=gateway_err)
        procs.append(gateway)
        wait_port(gw, gateway)
        wait_port(admin, gateway)
        print(f"gatehouse soak: {args.duration}s, gateway pid {gateway.pid} on 127.0.0.1:{gw} (admin {admin}),"
              f" echo on {up}; JWT {'/'.join(minter.algorithms())}; {args.tokens} valid tokens; wrk -t1"
              f" -c{args.connections} in {args.chunk}s chunks; {args.invalid_rps:g} invalid/s;"
              f" hammer {args.hammer_rps:g}/s vs 5/s; {args.streams} SSE streams churning; work dir {work}")
        code = asyncio.run(run(args, gateway, echo, gw, admin, minter, work))
        if code != 0:
            with open(os.path.join(work, "gateway.stderr"), "rb") as f:
                tail = f.read()[-2000:].decode(errors="replace").strip()
            if tail:
                print("gateway stderr (tail):\n" + tail)
    except KeyboardInterrupt:
        print("interrupted")
    finally:
        for proc in reversed(procs):
            stop(proc)
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())

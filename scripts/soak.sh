#!/usr/bin/env bash
# Soak test: a release meteord under steady publishing, subscriber churn
# over every transport and admin/API traffic for a bounded time, sampling
# its RSS and open file descriptors. Afterwards the load stops and the
# server must come back to its baseline file descriptors exactly, and its
# RSS must have levelled off: at the end no more than 25% (+2 MB) above
# what it was a quarter of the way in (caches fill up first; after that,
# growth would be a leak).
#
#   bash scripts/soak.sh              # 30 minutes
#   MINUTES=5 bash scripts/soak.sh
#
# Loopback only. Samples go to target/soak/samples.csv.
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${MINUTES:-30}
cargo build --release --locked --bin meteord >/dev/null 2>&1
OUT=target/soak
rm -rf "$OUT" && mkdir -p "$OUT/data"
ulimit -n 20000

exec python3 - "$MINUTES" "$OUT" <<'PY'
import os, random, re, socket, subprocess, sys, threading, time

minutes, out = float(sys.argv[1]), sys.argv[2]

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

ctl, sub = free_port(), free_port()
server = subprocess.Popen(
    ["target/release/meteord", "-ConfigFileLocation", "assets/meteord.conf",
     "-ControllerPort", str(ctl), "-SubscriberPort", str(sub), "-SubscriberIP", "127.0.0.1",
     "-AdminUI", "0", "-DataDirectory", f"{out}/data", "-SnapshotInterval", "2",
     "-MaxTime", "0", "-PingInterval", "2"],
    stderr=open(f"{out}/server.log", "w"))
for _ in range(100):
    try:
        socket.create_connection(("127.0.0.1", ctl), timeout=1).close(); break
    except OSError:
        time.sleep(0.1)

def sample():
    status = open(f"/proc/{server.pid}/status").read()
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
    return rss, len(os.listdir(f"/proc/{server.pid}/fd"))

stop = threading.Event()
counts = {"published": 0, "subscriptions": 0, "requests": 0, "errors": 0}

def publisher(n):
    s = socket.create_connection(("127.0.0.1", ctl))
    f = s.makefile("rb")
    while not stop.is_set():
        batch = b"".join(b"ADDMESSAGE soak%d message %d\r\n" % (random.randrange(10), i) for i in range(20))
        s.sendall(batch)
        for _ in range(20):
            if not f.readline().startswith(b"OK"):
                counts["errors"] += 1
        counts["published"] += 20
        time.sleep(0.1)

def churn(n):
    paths = ["/push/h%d/xhrinteractive/soak%d", "/sse/soak%d.b5?hostid=s%d", "/poll/soak%d?timeout=2&h=%d",
             "/push/l%d/longpoll/soak%d"]
    while not stop.is_set():
        conns = []
        for i in range(50):
            p = random.choice(paths)
            path = p % ((n * 1000 + i, random.randrange(10)) if p.startswith("/push") else (random.randrange(10), n * 1000 + i))
            try:
                c = socket.create_connection(("127.0.0.1", sub), timeout=5)
                c.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: soak\r\n\r\n")
                conns.append(c)
                counts["subscriptions"] += 1
            except OSError:
                counts["errors"] += 1
        deadline = time.time() + random.uniform(1, 4)
        while time.time() < deadline and not stop.is_set():
            for c in conns:
                c.setblocking(False)
                try:
                    c.recv(65536)
                except OSError:
                    pass
            time.sleep(0.2)
        for c in conns:
            c.close()

def other():
    while not stop.is_set():
        for path in ["/healthz", "/metrics", "/meteor.js", "/api/stats", "/nope"]:
            try:
                c = socket.create_connection(("127.0.0.1", sub), timeout=5)
                c.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n")
                while c.recv(65536):
                    pass
                c.close()
                counts["requests"] += 1
            except OSError:
                counts["errors"] += 1
        time.sleep(0.5)

time.sleep(2)
baseline = sample()
threads = [threading.Thread(target=publisher, args=(i,)) for i in range(2)]
threads += [threading.Thread(target=churn, args=(i,)) for i in range(4)]
threads += [threading.Thread(target=other)]
for t in threads:
    t.daemon = True; t.start()

samples = open(f"{out}/samples.csv", "w")
samples.write("seconds,rss_kb,fds\n")
start = time.time(); peak = baseline; quarter = None
while time.time() - start < minutes * 60:
    time.sleep(5)
    rss, fds = sample(); peak = (max(peak[0], rss), max(peak[1], fds))
    if quarter is None and time.time() - start >= minutes * 15:
        quarter = rss
    samples.write(f"{time.time() - start:.0f},{rss},{fds}\n"); samples.flush()
stop.set()
for t in threads:
    t.join(timeout=10)
time.sleep(10)
final = sample()
server.terminate(); code = server.wait(timeout=30)

print(f"soak: {minutes:g} min; published {counts['published']}, subscriptions {counts['subscriptions']}, "
      f"other requests {counts['requests']}, client-side errors {counts['errors']}")
quarter = quarter or peak[0]
print(f"soak: RSS baseline {baseline[0]} kB, at a quarter {quarter} kB, peak {peak[0]} kB, after {final[0]} kB")
print(f"soak: fds baseline {baseline[1]}, peak {peak[1]}, after {final[1]}")
print(f"soak: server exit code {code}")
ok = final[1] <= baseline[1] and final[0] <= quarter * 1.25 + 2048 and code == 0
print("soak: PASS" if ok else "soak: FAIL")
sys.exit(0 if ok else 1)
PY

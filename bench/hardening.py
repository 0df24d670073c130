#!/usr/bin/env python3
"""What the audit's attacks cost a server, one build or two side by side.

usage: bench/hardening.py BINARY [BINARY ...]

For each build, on loopback ports, three attacks (each against a fresh
server) and the figure that tells whether it still hurts:

  signin   100 wrong passwords at once on the admin UI: peak RSS growth
  channels 4 clients looping requests that name 8,000 channels each (the
           second request of a connection, past the first request's line
           limit) for 5 s: /healthz latency meanwhile (median, worst) and
           RSS growth
  backlog  20 clients ask for a 32 MiB backlog (.h) and never read: RSS
           growth after 3 s

Standard library only. Prints one table row per build.
"""

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONF = os.path.join(REPO, "assets", "meteord.conf")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    def __init__(self, binary, *args):
        self.data = tempfile.mkdtemp(prefix="meteord-hardening-")
        self.control, self.sub, self.admin = free_port(), free_port(), free_port()
        self.proc = subprocess.Popen(
            [binary, "--no-tray", "-ConfigFileLocation", CONF,
             "-ControllerPort", str(self.control), "-SubscriberPort", str(self.sub),
             "-SubscriberIP", "127.0.0.1", "-AdminPort", str(self.admin),
             "-DataDirectory", self.data, "-LogDirectory", "off", "-Persistence", "off",
             "-MaxTime", "0", *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.sub), 0.2).close()
                socket.create_connection(("127.0.0.1", self.control), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit(f"{binary} did not start")

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        subprocess.run(["rm", "-rf", self.data])


def http(port, method, path, body=b"", headers=(), timeout=30):
    s = socket.create_connection(("127.0.0.1", port), timeout)
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    for k, v in headers:
        head += f"{k}: {v}\r\n"
    head += f"Content-Length: {len(body)}\r\n\r\n"
    s.sendall(head.encode() + body)
    out = b""
    while True:
        try:
            chunk = s.recv(65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    s.close()
    return out


def sample_peak(server, stop, peak):
    while not stop.is_set():
        peak[0] = max(peak[0], server.rss_kib())
        time.sleep(0.02)


def signin(binary):
    server = Server(binary)
    form = "username=admin&password=correct+horse+battery&password2=correct+horse+battery"
    http(server.admin, "POST", "/setup", form.encode(),
         [("Content-Type", "application/x-www-form-urlencoded")])
    time.sleep(0.3)
    base = server.rss_kib()
    stop, peak = threading.Event(), [base]
    sampler = threading.Thread(target=sample_peak, args=(server, stop, peak))
    sampler.start()
    statuses = []

    def guess(i):
        reply = http(server.admin, "POST", "/login", f"username=admin&password=guess{i}".encode(),
                     [("Content-Type", "application/x-www-form-urlencoded")], timeout=120)
        statuses.append(reply.split(b" ", 2)[1].decode() if reply else "closed")

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(100)]
    started = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.time() - started
    stop.set()
    sampler.join()
    server.stop()
    counts = {s: statuses.count(s) for s in sorted(set(statuses))}
    return {"signin_peak_mib": round((peak[0] - base) / 1024, 1), "signin_s": round(took, 1),
            "signin_statuses": counts}


def channels(binary):
    server = Server(binary)
    many = "/".join(f"c{i}" for i in range(8000))
    request = (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
               + f"GET /sse/{many} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    base = server.rss_kib()
    stop = threading.Event()

    def flood():
        while not stop.is_set():
            try:
                s = socket.create_connection(("127.0.0.1", server.sub), 5)
                s.sendall(request)
                s.settimeout(0.5)
                try:
                    while s.recv(65536):
                        pass
                except OSError:
                    pass
                s.close()
            except OSError:
                time.sleep(0.01)

    floods = [threading.Thread(target=flood) for _ in range(4)]
    for t in floods:
        t.start()
    latencies = []
    end = time.time() + 5
    while time.time() < end:
        started = time.time()
        http(server.sub, "GET", "/healthz", timeout=60)
        latencies.append((time.time() - started) * 1000)
        time.sleep(0.05)
    rss = server.rss_kib()
    stop.set()
    for t in floods:
        t.join()
    server.stop()
    return {"healthz_median_ms": round(statistics.median(latencies), 1),
            "healthz_max_ms": round(max(latencies), 1),
            "channels_rss_mib": round((rss - base) / 1024, 1)}


def backlog(binary):
    server = Server(binary, "-MaxMessagesPerChannel", "0", "-MaxMessageAge", "3600")
    ctl = socket.create_connection(("127.0.0.1", server.control))
    text = "x" * (512 * 1024)
    for _ in range(64):
        ctl.sendall(f"ADDMESSAGE big {text}\r\n".encode())
        reply = b""
        while not reply.endswith(b"\n"):
            reply += ctl.recv(100)
    time.sleep(0.3)
    base = server.rss_kib()
    idle = []
    for i in range(20):
        s = socket.create_connection(("127.0.0.1", server.sub))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(f"GET /push/h{i}/xhrinteractive/big.h HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        idle.append(s)
    time.sleep(3)
    rss = server.rss_kib()
    for s in idle:
        s.close()
    server.stop()
    return {"backlog_rss_mib": round((rss - base) / 1024, 1)}


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    rows = []
    for binary in sys.argv[1:]:
        row = {"build": binary}
        for attack in (signin, channels, backlog):
            row.update(attack(binary))
        rows.append(row)
        print(json.dumps(row), flush=True)
    print()
    print("| build | sign-in flood: peak RSS growth | its answers | /healthz during the channel flood (median / worst) | RSS growth, channel flood | RSS growth, 20 non-reading 32 MiB backlogs |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| `{r['build']}` | {r['signin_peak_mib']} MiB | {r['signin_statuses']} | "
              f"{r['healthz_median_ms']} / {r['healthz_max_ms']} ms | {r['channels_rss_mib']} MiB | "
              f"{r['backlog_rss_mib']} MiB |")


if __name__ == "__main__":
    main()

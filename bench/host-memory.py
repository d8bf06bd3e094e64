#!/usr/bin/env python3
"""How far one task can lower the host's available memory, whatever it does with its memory limit.

Starts `./runbox serve` (one slot, its own data folder and port), then runs each program below as a
task with memory_mb 64, one at a time and several times each, sampling the host's MemAvailable every
10 ms while it runs. The drop is the baseline (before the task) minus the lowest sample during it; it
includes the runtime's and tini's own memory and what the service itself allocates meanwhile, so it
is an upper bound of the task's footprint. Prints a table and writes bench/results/host-memory.json.

    bench/host-memory.py [--repeat 3] [--port 18480]

The socket programs are the hostile suite's (tests/Runbox.Hostile.Tests): four processes
that open as many sockets as their descriptors allow and fill their buffers, then hold them for 3 s.
"""
import argparse, json, os, shutil, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MEMORY_MB = 64

FOUR_PROCESSES = '''
import os, time
pipes = []
for _ in range(4):
    r, w = os.pipe()
    if os.fork() == 0:
        os.close(r)
        try:
            queued, held = fill()
        except MemoryError:
            queued, held = 0, []
        os.write(w, f'{queued}\\n'.encode())
        time.sleep(3)
        os._exit(0)
    os.close(w)
    pipes.append(r)
print('queued_mib', sum(int(os.read(r, 64).decode().strip() or 0) for r in pipes) >> 20, flush=True)
time.sleep(3)
'''

TCP_FILL = '''
import socket
def fill():
    listener = socket.socket(); listener.bind(('127.0.0.1', 0)); listener.listen(512)
    held, queued = [], 0
    while True:
        try:
            client = socket.create_connection(listener.getsockname()); held += [client, listener.accept()[0]]
        except OSError:
            return queued, held
        client.setblocking(False)
        while True:
            try:
                queued += client.send(b'x' * 65536)
            except OSError:
                break
'''

PROGRAMS = {
    "idle (sleep 3)": "import time\ntime.sleep(3)",
    "memory: allocate until the limit": "import time\nx = []\ntry:\n    while True:\n        x.append(bytearray(4 << 20))\nexcept MemoryError:\n    pass",
    "tcp: fill send buffers on loopback": TCP_FILL + FOUR_PROCESSES,
    "udp: fill receive queues on loopback": '''
import os, socket
def fill():
    stats = open('/proc/net/udp')
    held = []
    try:
        while True:
            r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); r.bind(('127.0.0.1', 0))
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); held += [r, s]
            for _ in range(8):
                s.sendto(b'x' * 60000, r.getsockname())
    except OSError:
        pass
    own = {os.fstat(s.fileno()).st_ino for s in held}
    stats.seek(0)
    rows = [l.split() for l in stats.read().splitlines()[1:]]
    return sum(int(r[4].split(':')[1], 16) for r in rows if int(r[9]) in own), held
''' + FOUR_PROCESSES,
    "memory to 48 MiB, then tcp buffers": """
import socket
hold = bytearray(48 << 20)
for i in range(0, len(hold), 4096):
    hold[i] = 1
""" + TCP_FILL + FOUR_PROCESSES,
    "unix: fill socketpair buffers": '''
import socket
def fill():
    held, queued = [], 0
    while True:
        try:
            a, b = socket.socketpair()
        except OSError:
            return queued, held
        held += [a, b]
        for s in (a, b):
            s.setblocking(False)
            while True:
                try:
                    queued += s.send(b'x' * 65536)
                except OSError:
                    break
''' + FOUR_PROCESSES,
}


def available_kib():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1])
    raise RuntimeError("no MemAvailable")


def call(base, method, path, body=None):
    request = urllib.request.Request(base + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def run_one(base, source):
    time.sleep(1)
    baseline = sum(available_kib() for _ in range(10)) / 10
    task = call(base, "POST", "/v1/tasks", {"language": "python", "source": source,
                                           "limits": {"memory_mb": MEMORY_MB, "wall_time_ms": 30000}, "retry": {"max_attempts": 1}})
    lowest = baseline
    while True:
        for _ in range(10):
            lowest = min(lowest, available_kib())
            time.sleep(0.01)
        view = call(base, "GET", f"/v1/tasks/{task['id']}")
        if view["status"] not in ("pending", "running"):
            break
    result = view["result"]
    return {"verdict": result["verdict"], "stdout": result["stdout"].strip(), "drop_mib": round((baseline - lowest) / 1024, 1)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--port", type=int, default=18480)
    args = parser.parse_args()
    data = tempfile.mkdtemp(prefix="runbox-host-memory-")
    base = f"http://127.0.0.1:{args.port}"
    server = subprocess.Popen([os.path.join(ROOT, "runbox"), "serve", "--port", str(args.port), "--data", data, "--slots", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(base + "/health/ready", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        rows = []
        for name, source in PROGRAMS.items():
            runs = [run_one(base, source) for _ in range(args.repeat)]
            rows.append({"program": name, "runs": runs, "max_drop_mib": max(r["drop_mib"] for r in runs)})
            print(f"{name:40} {', '.join(r['verdict'] for r in runs):40} {', '.join(r['stdout'] for r in runs):45} drop {', '.join(str(r['drop_mib']) for r in runs)} MiB", flush=True)
        os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
        with open(os.path.join(ROOT, "bench", "results", "host-memory.json"), "w") as f:
            json.dump({"memory_mb": MEMORY_MB, "kernel": os.uname().release, "rows": rows}, f, indent=2)
    finally:
        server.terminate()
        server.wait(timeout=60)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

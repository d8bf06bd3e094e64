#!/usr/bin/env python3
"""Store statements and Redis commands per task, and per second while idle.

Starts a throwaway PostgreSQL (with pg_stat_statements) and redis-server on ports of their own, then
`runbox serve` from a checkout (this one, or the one given with --checkout: to compare two builds)
on them, measures the background load of the idle service, runs N one-line bash tasks (submitted at
once, no ?wait), and reports per task what the service did beyond its idle background:

    bench/per-task-io.py [--tasks 200] [--checkout /path/to/other/runbox] [--workers 1]

With --workers K it starts K `runbox worker` processes and one `runbox api` instead of `serve`, for the
idle load of K workers (the maintenance is led by one of them). Needs root (containers), the
PostgreSQL server binaries (postgresql package) and redis-server; writes nothing outside /tmp.
"""
import argparse, json, os, shutil, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PG_PORT, REDIS_PORT = 55632, 56579


def sh(*args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw).stdout


def psql(sql, db="postgres"):
    return sh("psql", "-h", "127.0.0.1", "-p", str(PG_PORT), "-U", "postgres", "-d", db, "-Atc", sql).strip()


def redis_calls():
    stats = sh("redis-cli", "-p", str(REDIS_PORT), "INFO", "commandstats")
    total = 0
    for line in stats.splitlines():
        if line.startswith("cmdstat_") and not line.startswith(("cmdstat_info:", "cmdstat_config|resetstat")):
            total += int(line.split("calls=")[1].split(",")[0])
    return total


def store_calls(db):
    return int(psql("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
                    f"WHERE d.datname = '{db}' AND s.query NOT LIKE '%pg_stat_statements%' AND s.query NOT LIKE '%per_task_io_probe%'", db))


def wait_ready(url):
    for _ in range(600):
        try:
            urllib.request.urlopen(url + "/health/ready", timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"{url} never became ready")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--checkout", default=ROOT)
    parser.add_argument("--workers", type=int, default=0, help="0: one `runbox serve`; K: an api and K workers")
    parser.add_argument("--idle-seconds", type=int, default=30)
    args = parser.parse_args()

    state = tempfile.mkdtemp(prefix="runbox-io-")
    os.chmod(state, 0o755)  # the postgres user reaches its data folder through it
    pg_bin = sorted(d for d in os.listdir("/usr/lib/postgresql"))[-1]
    pg = f"/usr/lib/postgresql/{pg_bin}/bin"
    processes = []
    try:
        os.makedirs(f"{state}/pg")
        shutil.chown(f"{state}/pg", "postgres")
        subprocess.run(["runuser", "-u", "postgres", "--", f"{pg}/initdb", "-D", f"{state}/pg", "-A", "trust", "-U", "postgres"], check=True, capture_output=True)
        subprocess.run(["runuser", "-u", "postgres", "--", f"{pg}/pg_ctl", "-D", f"{state}/pg", "-w", "-l", f"{state}/pg/log", "-o",
                        f"-p {PG_PORT} -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off -c shared_preload_libraries=pg_stat_statements", "start"],
                       check=True, capture_output=True)
        psql("CREATE DATABASE runbox_io")
        psql("CREATE EXTENSION pg_stat_statements", "runbox_io")
        subprocess.run(["redis-server", "--port", str(REDIS_PORT), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                        "--maxmemory-policy", "noeviction", "--daemonize", "yes", "--pidfile", f"{state}/redis.pid", "--logfile", f"{state}/redis.log"], check=True)
        time.sleep(0.5)

        build = f"{state}/build"
        sh("dotnet", "build", f"{args.checkout}/src/Runbox.Cli/Runbox.Cli.csproj", "-c", "Release", "-o", build, "-nologo", "-v", "q")
        env = dict(os.environ, Runbox__Redis=f"127.0.0.1:{REDIS_PORT}",
                   Runbox__Store=f"Host=127.0.0.1;Port={PG_PORT};Username=postgres;Database=runbox_io")
        roles = [("serve", 18600)] if args.workers == 0 else [("api", 18600)] + [("worker", 18601 + i) for i in range(args.workers)]
        for role, port in roles:
            processes.append(subprocess.Popen(["dotnet", f"{build}/runbox.dll", role, "--port", str(port), "--data", f"{state}/{role}-{port}", "--slots", "4"],
                                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for _, port in roles:
            wait_ready(f"http://127.0.0.1:{port}")
        base = "http://127.0.0.1:18600"
        time.sleep(10)  # start-up work (reconcile, probes) settles

        psql("SELECT pg_stat_statements_reset()", "runbox_io")
        sh("redis-cli", "-p", str(REDIS_PORT), "CONFIG", "RESETSTAT")
        start = time.time()
        time.sleep(args.idle_seconds)
        idle_seconds = time.time() - start
        idle_store, idle_redis = store_calls("runbox_io"), redis_calls()
        result = {"processes": [r for r, _ in roles], "idle_store_per_second": round(idle_store / idle_seconds, 2),
                  "idle_redis_per_second": round(idle_redis / idle_seconds, 2)}

        if args.tasks > 0:
            psql("SELECT pg_stat_statements_reset()", "runbox_io")
            sh("redis-cli", "-p", str(REDIS_PORT), "CONFIG", "RESETSTAT")
            start = time.time()
            for i in range(args.tasks):
                body = json.dumps({"language": "bash", "source": f"echo {i}"}).encode()
                urllib.request.urlopen(urllib.request.Request(base + "/v1/tasks", data=body, headers={"Content-Type": "application/json"}), timeout=30)
            while int(psql("SELECT /* per_task_io_probe */ count(*) FROM tasks WHERE status = 'completed'", "runbox_io")) < args.tasks:
                time.sleep(0.5)
            seconds = time.time() - start
            store, redis = store_calls("runbox_io"), redis_calls()
            result.update({
                "tasks": args.tasks, "seconds": round(seconds, 1),
                "store_per_task": round((store - idle_store / idle_seconds * seconds) / args.tasks, 1),
                "redis_per_task": round((redis - idle_redis / idle_seconds * seconds) / args.tasks, 1),
            })
        print(json.dumps(result))
    finally:
        for p in processes:
            p.terminate()
        for p in processes:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
        subprocess.run(["redis-cli", "-p", str(REDIS_PORT), "shutdown", "nosave"], capture_output=True)
        subprocess.run(["runuser", "-u", "postgres", "--", f"{pg}/pg_ctl", "-D", f"{state}/pg", "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

"""The scoring service under load, next to ``mlflow models serve`` on the same model version.

Both servers run one after the other (never at the same time: the machine has 2 cores), each as a
subprocess in its own process group, bound to 127.0.0.1 and always killed at the end. Each is measured in
three bounded phases:

(a) single requests at a fixed offered rate (default 100 req/s): locust, headless, one process,
    constant-throughput users (each user sends 1 request/s at its own random phase, so N users offer
    N req/s spread over each second; locust's ``constant_throughput`` would re-align every user to the
    instant it was spawned, and all of them were spawned at once: 100 requests in one burst per second);
    after a warm-up, latency percentiles and the achieved rate over a fixed window, with failures. For
    ``mlcomops serve`` a request is one ``POST /decisions`` and succeeds only when the answer carries a
    receipt and an explanation; for MLflow it is one ``POST /invocations`` with one row.
(b) closed-loop capacity: a few locust users sending back to back for a short window (what each
    server can answer per second on this machine, with locust on the same cores).
(c) a 10,000-row batch (``{"applications": [...]}`` / ``{"dataframe_split": ...}``), one request at a
    time, a warm-up then a few timed repetitions.

The rows are real rows of the home's validated data (resampled, seeded). The service gets the policy's
feature and protected columns (never the target, the time column or identifiers); MLflow gets the
columns of the registered model's signature. Targets: p99 <= 50 ms at 100 req/s, throughput >= MLflow's,
10,000-row batch <= 2 s.

Usage (the default project home must have a champion: ``make run``; if it has none the benchmark runs
``python -m mlcomops_assets.pipeline_run`` first unless ``--no-pipeline``):

    python benchmarks/serving.py [--duration 30] [--rate 100] [--no-mlflow]

Writes the "serving" section of benchmarks/out/results.json and results.md (keeping the other workloads
there); ``benchmarks/run.py`` (``make bench``) calls ``benchmark()`` after its workloads.
The locust side runs in a child process (``serving.py --load SPEC``): locust monkey-patches the
standard library with gevent on import, which must not happen in the process that orchestrates.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OUT = HERE / "out"
PY = sys.executable

TARGET_P99_MS = 50.0
TARGET_BATCH_S = 2.0
# At a fixed offered rate both servers are capped by the offered rate: "throughput >= MLflow's" allows
# this share of the offered rate as measurement noise (one request/s at 100 req/s); the closed-loop
# capacity comparison has no tolerance.
OFFERED_RATE_TOLERANCE = 0.01
# The service's answer to one application (the contract of POST /decisions).
DECISION_KEYS = (
    "receipt_id",
    "decision",
    "favourable",
    "score",
    "threshold",
    "model",
    "reasons",
    "explanation",
    "created_at",
)
DEFAULT_SERVICE_CMD = "{python} -m mlcomops_assets.cli serve --host 127.0.0.1 --port {port}"


# ------------------------------------------------------------------------------------------------
# the load generator (child process: locust and gevent live only here)


def run_load(spec: dict) -> dict:
    """One locust phase described by ``spec``; returns latencies (ms) and rates of the measured window."""
    import gevent
    import locust  # noqa: F401  (before ssl is imported: locust monkey-patches with gevent)
    from locust import FastHttpUser, constant, task
    from locust.env import Environment

    bodies = Path(spec["bodies"]).read_text(encoding="utf-8").splitlines()
    check, path = spec["check"], spec["path"]
    state = {"measuring": False, "latencies": [], "failures": 0, "errors": {}, "sent": 0}
    cap = int(spec["max_requests"])

    def problem(response) -> str | None:
        if response.status_code != 200:
            return f"HTTP {response.status_code}: {(response.text or '')[:200]}"
        try:
            body = response.json()
        except ValueError:
            return "the answer is not JSON"
        if check == "decision":  # a receipt with its per-person reasons (the text only for adverse decisions)
            missing = [k for k in DECISION_KEYS if k not in body]
            missing += [k for k in ("receipt_id", "decision", "model", "reasons") if not missing and not body[k]]
            if not missing and (body["score"] is None or (body["favourable"] is False and not body["explanation"])):
                missing.append("score" if body["score"] is None else "explanation")
            return f"decision without {missing}" if missing else None
        if check == "mlflow":
            return None if isinstance(body, dict) and len(body.get("predictions") or []) == 1 else "no prediction"
        return None

    interval = 1 / spec["per_user_rps"] if spec["per_user_rps"] else 0.0

    def constant_throughput_with_phase(user) -> float:
        """One task per ``interval`` on the user's own schedule (no catching up after a slow answer)."""
        now = time.perf_counter()
        user.due = max(user.due + interval, now)
        return user.due - now

    class Client(FastHttpUser):
        host = spec["host"]
        wait_time = constant_throughput_with_phase if interval else constant(0)
        network_timeout = float(spec["request_timeout_s"])
        connection_timeout = 5.0

        def on_start(self) -> None:
            self.next_body = random.randrange(len(bodies))
            gevent.sleep(random.uniform(0, interval))  # a random phase within the interval
            self.due = time.perf_counter()

        @task
        def send(self) -> None:
            body = bodies[self.next_body % len(bodies)]
            self.next_body += 1
            with self.client.post(
                path, data=body, headers={"Content-Type": "application/json"}, catch_response=True, name=path
            ) as response:
                reason = problem(response)
                if reason:
                    response.failure(reason)

    def on_request(response_time, exception=None, **_: object) -> None:
        state["sent"] += 1
        if not state["measuring"]:
            return
        state["latencies"].append(float(response_time))
        if exception is not None:
            state["failures"] += 1
            key = str(exception)[:160]
            state["errors"][key] = state["errors"].get(key, 0) + 1

    env = Environment(user_classes=[Client], catch_exceptions=True)
    env.events.request.add_listener(on_request)
    runner = env.create_local_runner()
    cpu0 = os.times()
    runner.start(int(spec["users"]), spawn_rate=float(spec["spawn_rate"]))
    gevent.sleep(float(spec["warmup_s"]))
    state["measuring"] = True
    began = time.perf_counter()
    while time.perf_counter() - began < float(spec["duration_s"]) and state["sent"] < cap:
        gevent.sleep(0.1)
    state["measuring"] = False
    window = time.perf_counter() - began
    runner.quit()
    cpu1 = os.times()
    return {
        "window_s": round(window, 2),
        "latencies_ms": state["latencies"],
        "failures": state["failures"],
        "errors": state["errors"],
        "stopped_by_request_cap": state["sent"] >= cap,
        "load_generator_cpu_s": round((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system), 2),
    }


# ------------------------------------------------------------------------------------------------
# servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def group_cpu_s(pgid: int) -> float:
    """User + system CPU seconds of the live processes of process group ``pgid`` (from /proc)."""
    total, tick = 0, os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:  # fields after "(comm)": state ppid pgrp ... utime(11) stime(12)
                total += int(fields[11]) + int(fields[12])
    return round(total / tick, 2)


class Server:
    """A server subprocess in its own process group; killed (the whole group) by ``stop``."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], port: int, ready_path: str, log: Path):
        self.name, self.cmd, self.env, self.port, self.ready_path, self.log = name, cmd, env, port, ready_path, log
        self.proc: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float) -> float:
        """Start and wait until ``ready_path`` answers 200; returns the seconds it took."""
        import requests

        self.log.parent.mkdir(parents=True, exist_ok=True)
        sink = self.log.open("w")
        began = time.perf_counter()
        self.proc = subprocess.Popen(
            self.cmd, env=self.env, cwd=REPO, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
        sink.close()
        while time.perf_counter() - began < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} before it was ready: {self.tail()}")
            with suppress(requests.RequestException):
                if requests.get(self.base + self.ready_path, timeout=2).status_code == 200:
                    return round(time.perf_counter() - began, 2)
            time.sleep(0.25)
        raise RuntimeError(f"{self.name} was not ready after {timeout:.0f} s: {self.tail()}")

    def cpu_s(self) -> float:
        return group_cpu_s(self.proc.pid) if self.proc else 0.0

    def tail(self, lines: int = 15) -> str:
        with suppress(OSError):
            return " | ".join(self.log.read_text(errors="replace").strip().splitlines()[-lines:])[-2000:]
        return ""

    def stop(self) -> None:
        if self.proc is None:
            return
        with suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGINT)
        with suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=15)
        with suppress(ProcessLookupError):  # the leader may be gone while workers it spawned are not
            os.killpg(self.proc.pid, signal.SIGKILL)
        with suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        self.proc = None


@contextmanager
def running(server: Server, timeout: float):
    """The server, started; stopped on leaving, also on SIGTERM/SIGHUP to this process."""

    def on_signal(signum, _frame):
        server.stop()
        raise SystemExit(128 + signum)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        server.ready_s = server.start(timeout)
        yield server
    finally:
        server.stop()
        for s, handler in previous.items():
            signal.signal(s, handler)


# ------------------------------------------------------------------------------------------------
# measurements


def percentiles(values: list[float]) -> dict:
    import numpy as np

    if not values:
        return {"count": 0}
    a = np.asarray(values)
    p50, p95, p99 = np.percentile(a, [50, 95, 99])
    return {
        "count": int(a.size),
        "p50_ms": round(float(p50), 2),
        "p95_ms": round(float(p95), 2),
        "p99_ms": round(float(p99), 2),
        "max_ms": round(float(a.max()), 2),
        "mean_ms": round(float(a.mean()), 2),
    }


def load_phase(server: Server, path: str, bodies: Path, check: str, users: int, per_user_rps: float, args) -> dict:
    """Run one locust phase against ``server`` in a child process; summarize it."""
    duration = args.duration if per_user_rps else args.capacity_duration
    spec = {
        "host": server.base,
        "path": path,
        "bodies": str(bodies),
        "check": check,
        "users": users,
        "spawn_rate": users,
        "per_user_rps": per_user_rps,
        "warmup_s": args.warmup,
        "duration_s": duration,
        "max_requests": args.max_requests,
        "request_timeout_s": 10,
    }
    spec_file = bodies.with_suffix(f".{check}.{users}.spec.json")
    spec_file.write_text(json.dumps(spec))
    cpu0 = server.cpu_s()
    out = subprocess.run(
        [PY, str(Path(__file__).resolve()), "--load", str(spec_file)],
        capture_output=True,
        text=True,
        timeout=args.warmup + duration + 60,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    server_cpu = round(server.cpu_s() - cpu0, 2)
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"the load generator failed ({out.returncode}): {out.stderr.strip()[-1500:]}")
    raw = json.loads(lines[-1])
    stats = percentiles(raw.pop("latencies_ms"))
    achieved = round(stats["count"] / raw["window_s"], 1) if raw["window_s"] else None
    return {
        "users": users,
        "offered_rps": round(users * per_user_rps, 1) if per_user_rps else None,
        "achieved_rps": achieved,
        **stats,
        **raw,
        "server_cpu_s": server_cpu,
    }


def batch_phase(server: Server, path: str, bodies: list[bytes], rows: int, check: str, args) -> dict:
    """``rows`` rows in ``bodies`` (one request each, sent one after the other): one warm-up round, then up
    to ``args.batch_reps`` timed rounds (stopping after ``args.batch_budget`` s, or after a refused round)."""
    import requests

    times: list[float] = []
    problems: list[str] = []
    with requests.Session() as session:
        began = time.perf_counter()
        for rep in range(args.batch_reps + 1):
            t0, answered, refusal = time.perf_counter(), 0, None
            for body in bodies:
                response = session.post(
                    server.base + path, data=body, headers={"Content-Type": "application/json"}, timeout=120
                )
                count = _batch_count(response, check)
                if count is None:
                    refusal = f"HTTP {response.status_code}: {response.text[:300]}"
                    break
                answered += count
            elapsed = time.perf_counter() - t0
            if refusal or answered != rows:
                problems.append(refusal or f"{answered} answers to {rows} rows")
                if len(problems) >= 2:
                    break
            elif rep > 0:
                times.append(round(elapsed, 3))
            if rep > 0 and time.perf_counter() - began > args.batch_budget:
                break
    ordered = sorted(times)
    return {
        "rows": rows,
        "requests_per_round": len(bodies),
        "request_bytes": sum(len(b) for b in bodies),
        "repetitions": len(times),
        "times_s": times,
        "min_s": ordered[0] if ordered else None,
        "median_s": ordered[len(ordered) // 2] if ordered else None,
        "max_s": ordered[-1] if ordered else None,
        "rows_per_s": round(rows / ordered[len(ordered) // 2]) if ordered else None,
        "failures": problems[:5],
    }


def _batch_count(response, check: str) -> int | None:
    if response.status_code != 200:
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    if check == "decision":
        decisions = body.get("decisions") or []
        ok = all(d.get("receipt_id") and d.get("decision") is not None for d in decisions[:1] + decisions[-1:])
        return len(decisions) if ok else None
    return len(body.get("predictions") or [])


# ------------------------------------------------------------------------------------------------
# the project home: champion, rows, environment


def env_for(home: Path) -> dict[str, str]:
    from mlcomops_assets.settings import ProjectPaths

    paths = ProjectPaths(home)
    env = dict(os.environ)
    # The venv's scripts first, as the Makefile does: `mlflow models serve` execs `uvicorn` from PATH.
    path = os.pathsep.join([str(Path(PY).parent), env.get("PATH", "")])
    env.update(MLCOMOPS_HOME=str(home), PYTHONPATH=str(REPO), PATH=path)
    env.setdefault("DAGSTER_HOME", str(paths.dagster_home))
    # Telemetry off as the Makefile exports it (MLflow needs the literal "true").
    env.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true", DVC_NO_ANALYTICS="1", GX_ANALYTICS_ENABLED="False")
    env.update(MLFLOW_TRACKING_URI=paths.mlflow_tracking_uri, MLFLOW_REGISTRY_URI=paths.mlflow_tracking_uri)
    return env


def service_environment(env: dict[str, str], policy, tmp: Path, args) -> tuple[dict[str, str], list[str]]:
    """The service's environment: the benchmark's receipts go to a throwaway decision log (same engine,
    SQLite, unless ``--decision-log`` names one), never into the home's; without a configured pseudonym
    key, a random one for this run only (the key hashes the inputs kept in that throwaway log)."""
    import secrets

    from mlcomops_assets.serving.settings import DECISION_LOG_ENV

    service_env = dict(env)
    notes = []
    service_env[DECISION_LOG_ENV] = args.decision_log or f"sqlite:///{tmp / 'decisions.db'}"
    notes.append(
        f"decision log {args.decision_log}"
        if args.decision_log
        else "receipts written to a throwaway SQLite decision log (deleted afterwards), not the home's"
    )
    spec = policy.pseudonymization
    if not env.get(spec.key_env) and not env.get(spec.key_file_env):
        service_env[spec.key_env] = secrets.token_hex(32)
        notes.append(f"{spec.key_env} was not set: a random key for this run")
    return service_env, notes


def verified_champion(env: dict[str, str]) -> tuple[str | None, str]:
    """(version, message) from ``python -m mlcomops_assets.champion verify`` (version None if it fails)."""
    out = subprocess.run(
        [PY, "-m", "mlcomops_assets.champion", "verify"], env=env, capture_output=True, text=True, timeout=300
    )
    text = (out.stdout + out.stderr).strip()
    if out.returncode != 0:
        return None, text.splitlines()[-1] if text else f"exit {out.returncode}"
    for word in text.split():
        if word.startswith("v") and word[1:-1].isdigit() and word.endswith(":"):
            return word[1:-1], text
    return None, f"could not read the version from: {text}"


def ensure_champion(env: dict[str, str], run_pipeline: bool) -> tuple[str | None, str]:
    version, message = verified_champion(env)
    if version or not run_pipeline:
        return version, message
    print(f"serving benchmark: no verified champion ({message}); running python -m mlcomops_assets.pipeline_run")
    subprocess.run([PY, "-m", "mlcomops_assets.pipeline_run"], env=env, timeout=3600, check=False)
    return verified_champion(env)


def sample_rows(home: Path, count: int, seed: int):
    """``count`` rows of the home's validated data, resampled with replacement (seeded)."""
    import pandas as pd

    from mlcomops_assets.settings import ProjectPaths

    files = sorted(ProjectPaths(home).validated_dir.glob("*.parquet"))
    if not files:
        raise RuntimeError(f"no validated data under {ProjectPaths(home).validated_dir}: run `make run` first")
    frame = pd.read_parquet(files[0])
    return frame.sample(n=count, replace=True, random_state=seed).reset_index(drop=True)


def _plain(value):
    """A JSON value for a cell: numpy scalars to Python, missing values to null."""
    import pandas as pd

    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def signature_columns(env: dict[str, str], name: str, version: str) -> list[str]:
    import mlflow

    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    mlflow.set_registry_uri(env["MLFLOW_REGISTRY_URI"])
    info = mlflow.models.get_model_info(f"models:/{name}/{version}")
    return list(info.signature.inputs.input_names())


# ------------------------------------------------------------------------------------------------
# the benchmark


def benchmark(home: Path, args: argparse.Namespace) -> dict:
    from mlcomops_assets.policy import load_policy
    from mlcomops_assets.settings import ProjectPaths

    home = home.resolve()
    env = env_for(home)
    began = time.perf_counter()
    result: dict = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "home": str(home),
        "settings": {
            "offered_rps": args.rate,
            "warmup_s": args.warmup,
            "duration_s": args.duration,
            "capacity_users": args.capacity_users,
            "capacity_duration_s": args.capacity_duration,
            "batch_rows": args.batch_rows,
            "batch_repetitions": args.batch_reps,
            "load_generator": f"locust (FastHttpUser), 1 process, on the same {os.cpu_count()} cores",
            "servers": "one at a time, 1 process each (uvicorn, 1 worker)",
        },
    }
    result["settings"]["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    version, message = ensure_champion(env, run_pipeline=not args.no_pipeline)
    if not version:
        result["skipped"] = (
            f"no verified champion in {home}: {message}. The serving benchmark needs one: run `make run` "
            "(or python -m mlcomops_assets.pipeline_run) first."
        )
        print(f"serving benchmark skipped: {result['skipped']}")
        return result
    policy = load_policy(ProjectPaths(home).policy_file)
    name = policy.model.registered_name
    result["model"] = {"name": name, "version": version, "uri": f"models:/{name}/{version}", "verified": message}
    service_columns = list(dict.fromkeys(policy.data.feature_columns + policy.data.protected_attributes))
    mlflow_columns = signature_columns(env, name, version)
    result["columns"] = {"mlcomops_serve": service_columns, "mlflow": mlflow_columns}

    frame = sample_rows(home, max(args.batch_rows, 2000), policy.seed)
    singles = frame.head(2000)
    records = [{c: _plain(row[c]) for c in service_columns} for _, row in singles.iterrows()]
    work = OUT / "work" / "serving"
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="serving-", dir=work) as tmp:
        tmp = Path(tmp)
        decisions = tmp / "decisions.jsonl"
        decisions.write_text("\n".join(json.dumps(r) for r in records), encoding="utf-8")
        invocations = tmp / "invocations.jsonl"
        invocations.write_text(
            "\n".join(
                json.dumps({"dataframe_split": {"columns": mlflow_columns, "data": [[r[c] for c in mlflow_columns]]}})
                for r in ({c: _plain(row[c]) for c in mlflow_columns} for _, row in singles.iterrows())
            ),
            encoding="utf-8",
        )
        batch = frame.head(args.batch_rows)
        service_rows = [
            {c: _plain(v) for c, v in zip(service_columns, values, strict=True)}
            for values in batch[service_columns].itertuples(index=False)
        ]
        # A service that refuses the whole batch (its largest accepted batch, MAX_BATCH, is smaller) is
        # also timed on the same rows in batches of that size, next to the refusal.
        chunk = service_max_batch()
        service_batches = {"batch": [json.dumps({"applications": service_rows}).encode()]}
        if chunk and chunk < len(service_rows):
            service_batches["batch_in_chunks"] = [
                json.dumps({"applications": service_rows[i : i + chunk]}).encode()
                for i in range(0, len(service_rows), chunk)
            ]
        mlflow_batch = json.dumps(
            {
                "dataframe_split": {
                    "columns": mlflow_columns,
                    "data": [[_plain(v) for v in values] for values in batch[mlflow_columns].itertuples(index=False)],
                }
            }
        ).encode()

        template = args.service_cmd or DEFAULT_SERVICE_CMD
        port = free_port()
        service_env, notes = service_environment(env, policy, tmp, args)
        result["settings"]["service_environment"] = notes
        service = Server(
            "mlcomops serve",
            [part.format(python=PY, port=port) for part in shlex.split(template)],
            service_env,
            port,
            "/ready",
            work / "mlcomops-serve.log",
        )
        result["mlcomops_serve"] = measure_server(
            service, "/decisions", "decision", decisions, service_batches, version, args
        )
        if not args.no_mlflow:
            port = free_port()
            mlflow_server = Server(
                "mlflow models serve",
                [
                    str(Path(PY).parent / "mlflow"),
                    "models",
                    "serve",
                    "-m",
                    f"models:/{name}/{version}",
                    "--env-manager",
                    "local",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--workers",
                    "1",
                ],
                env,
                port,
                "/ping",
                work / "mlflow-models-serve.log",
            )
            result["mlflow"] = measure_server(
                mlflow_server, "/invocations", "mlflow", invocations, {"batch": [mlflow_batch]}, version, args
            )
    result["verdicts"] = verdicts(result, args)
    result["settings"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["wall_s"] = round(time.perf_counter() - began, 1)
    return result


def service_max_batch() -> int | None:
    """The largest batch the service accepts, if its settings name one."""
    from mlcomops_assets.serving import settings

    return getattr(settings, "MAX_BATCH", None)


def measure_server(
    server: Server, path: str, check: str, singles: Path, batches: dict[str, list[bytes]], version: str, args
) -> dict:
    """Every phase against one server; a phase that fails is recorded with its error, the others still run.
    ``batches["batch"]`` is the whole batch in one request; ``batches["batch_in_chunks"]``, if given, the
    same rows in several requests, timed only when the whole batch was refused."""
    import requests

    out: dict = {"command": " ".join(server.cmd)}
    try:
        with running(server, args.ready_timeout):
            out["ready_s"] = server.ready_s
            first = json.loads(singles.read_text(encoding="utf-8").splitlines()[0])
            answer = requests.post(server.base + path, json=first, timeout=30)
            out["example_status"] = answer.status_code
            if check == "decision":
                body = answer.json() if answer.status_code == 200 else {}
                out["example_keys"] = sorted(body)
                served = str((body.get("model") or {}).get("version"))
                out["model_version"] = served
                if served != version:
                    out["error"] = f"the service answered with model version {served}, the champion is {version}"
            phases = {
                "fixed_rate": lambda: load_phase(server, path, singles, check, args.rate, 1.0, args),
                "capacity": lambda: load_phase(server, path, singles, check, args.capacity_users, 0, args),
                "batch": lambda: batch_phase(server, path, batches["batch"], args.batch_rows, check, args),
                "batch_in_chunks": lambda: batch_phase(
                    server, path, batches["batch_in_chunks"], args.batch_rows, check, args
                ),
            }
            for phase, run in phases.items():
                if phase == "batch_in_chunks" and ("batch_in_chunks" not in batches or out["batch"].get("times_s")):
                    continue
                try:
                    out[phase] = run()
                except Exception as exc:  # noqa: BLE001 (recorded; the other phases still run)
                    out[phase] = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
                print(f"serving benchmark: {server.name} {phase}: {json.dumps(out[phase])[:400]}", flush=True)
            if check == "decision":
                metrics = requests.get(server.base + "/metrics", timeout=10)
                out["metrics_endpoint"] = {"status": metrics.status_code, "bytes": len(metrics.content)}
    except Exception as exc:  # noqa: BLE001 (a server that does not start is a result too)
        out["error"] = f"{type(exc).__name__}: {exc}"[:2000]
    out["log"] = str(server.log)
    return out


def _verdict(target: str, measured, limit, unit: str, passed: bool | None, note: str = "") -> dict:
    return {"target": target, "measured": measured, "limit": limit, "unit": unit, "pass": passed, "note": note}


def verdicts(result: dict, args) -> list[dict]:
    service, baseline = result.get("mlcomops_serve", {}), result.get("mlflow", {})
    fixed, base_fixed = service.get("fixed_rate", {}), baseline.get("fixed_rate", {})
    cap, base_cap = service.get("capacity", {}), baseline.get("capacity", {})
    batch = service.get("batch", {})
    out = []
    p99 = fixed.get("p99_ms")
    out.append(
        _verdict(
            f"single decisions p99 <= {TARGET_P99_MS:g} ms at {args.rate} req/s offered, no failures",
            p99,
            TARGET_P99_MS,
            "ms",
            None if p99 is None else p99 <= TARGET_P99_MS and fixed.get("failures") == 0,
            f"{fixed.get('failures')} failures of {fixed.get('count')}" if p99 is not None else fixed.get("error", ""),
        )
    )
    rps, base_rps = fixed.get("achieved_rps"), base_fixed.get("achieved_rps")
    tolerance = OFFERED_RATE_TOLERANCE * args.rate
    out.append(
        _verdict(
            f"throughput at {args.rate} req/s offered >= MLflow's (tolerance {tolerance:g} req/s: both are capped "
            "by the offered rate)",
            rps,
            base_rps,
            "req/s",
            None if rps is None or base_rps is None else rps >= base_rps - tolerance,
        )
    )
    rps, base_rps = cap.get("achieved_rps"), base_cap.get("achieved_rps")
    out.append(
        _verdict(
            f"closed-loop capacity ({args.capacity_users} users, no wait) >= MLflow's",
            rps,
            base_rps,
            "req/s",
            None if rps is None or base_rps is None else rps >= base_rps,
            "a decision carries validation, explanation and a stored receipt; an MLflow invocation is predict only",
        )
    )
    worst, chunks = batch.get("max_s"), service.get("batch_in_chunks", {})
    note = f"MLflow: {baseline.get('batch', {}).get('max_s')} s"
    if batch.get("failures") and not batch.get("times_s"):
        note = f"refused: {batch['failures'][0][:160]}; {note}"
    if chunks.get("times_s"):
        note += f"; the same rows in {chunks['requests_per_round']} requests: {chunks['max_s']} s"
    out.append(
        _verdict(
            f"{args.batch_rows:,}-row batch <= {TARGET_BATCH_S:g} s per request (slowest of the repetitions)",
            worst,
            TARGET_BATCH_S,
            "s",
            False if batch.get("failures") else None if worst is None else worst <= TARGET_BATCH_S,
            note,
        )
    )
    return out


# ------------------------------------------------------------------------------------------------
# results.md


def _flag(passed: bool | None) -> str:
    return {True: "pass", False: "**miss**", None: "not measured"}[passed]


def _latency(phase: dict) -> str:
    if "p99_ms" not in phase:
        return _cell(phase.get("error", "not measured"))
    return f"{phase['p50_ms']} / {phase['p95_ms']} / {phase['p99_ms']} ms"


def _rate(phase: dict) -> str:
    if "achieved_rps" not in phase:
        return _cell(phase.get("error", "not measured"))
    return f"{phase['achieved_rps']} req/s ({phase['failures']} failures of {phase['count']})"


def _cell(text: str) -> str:
    return " ".join(str(text).replace("|", "/").split())[:240]


def _batch(phase: dict) -> str:
    if not phase.get("times_s"):
        return _cell(phase.get("error") or "; ".join(phase.get("failures", [])) or "not measured")
    return f"{phase['min_s']} / {phase['median_s']} / {phase['max_s']} s ({phase['repetitions']} repetitions)"


def markdown_section(serving: dict) -> str:
    lines = ["## Scoring service (`mlcomops serve`) against `mlflow models serve`", ""]
    if serving.get("skipped"):
        return "\n".join(lines + [f"Skipped: {serving['skipped']}", ""])
    s, m, settings = serving.get("mlcomops_serve", {}), serving.get("mlflow", {}), serving["settings"]
    model = serving["model"]
    lines += [
        f"{serving['date']}, home {serving['home']}, model {model['uri']} (the verified champion) served by both. "
        f"Servers: {settings['servers']}; load: {settings['load_generator']}. Warm-up {settings['warmup_s']} s before "
        f"each window; windows of {settings['duration_s']} s (fixed rate) and {settings['capacity_duration_s']} s "
        f"(capacity, {settings['capacity_users']} users). Load average (1, 5, 15 min) of the machine "
        f"({os.cpu_count()} cores) at start {settings.get('load_average_at_start')}, at end "
        f"{settings.get('load_average_at_end')}: above the core count, other processes shared the cores. Service: "
        + "; ".join(settings.get("service_environment", []))
        + ".",
        "",
        "| measure | mlcomops serve | mlflow models serve |",
        "|---|---|---|",
        f"| ready after start | {s.get('ready_s')} s | {m.get('ready_s')} s |",
        f"| single, {settings['offered_rps']} req/s offered: p50 / p95 / p99 | {_latency(s.get('fixed_rate', {}))} "
        f"| {_latency(m.get('fixed_rate', {}))} |",
        f"| single, {settings['offered_rps']} req/s offered: achieved | {_rate(s.get('fixed_rate', {}))} "
        f"| {_rate(m.get('fixed_rate', {}))} |",
        f"| closed loop: p50 / p95 / p99 | {_latency(s.get('capacity', {}))} | {_latency(m.get('capacity', {}))} |",
        f"| closed loop: throughput | {_rate(s.get('capacity', {}))} | {_rate(m.get('capacity', {}))} |",
        f"| {settings['batch_rows']:,}-row batch: min / median / max | {_batch(s.get('batch', {}))} "
        f"| {_batch(m.get('batch', {}))} |",
    ]
    if s.get("batch_in_chunks"):
        chunks = s["batch_in_chunks"]
        lines.append(
            f"| the same rows in {chunks.get('requests_per_round')} requests (the service's largest batch) "
            f"| {_batch(chunks)} | |"
        )
    lines += [
        "",
        "| target | measured | limit | verdict | note |",
        "|---|---|---|---|---|",
    ]
    for v in serving.get("verdicts", []):
        lines.append(
            f"| {v['target']} | {v['measured']} {v['unit']} | {v['limit']} {v['unit']} | {_flag(v['pass'])} "
            f"| {_cell(v['note'])} |"
        )
    errors = [(n, d["error"]) for n, d in (("mlcomops serve", s), ("mlflow models serve", m)) if d.get("error")]
    lines += [""] + [f"- {n}: {_cell(e)}" for n, e in errors] + ([""] if errors else [])
    return "\n".join(lines) + "\n"


def write_results(serving: dict) -> None:
    """Put ``serving`` into benchmarks/out/results.json and regenerate results.md, keeping the workloads."""
    OUT.mkdir(parents=True, exist_ok=True)
    results_file = OUT / "results.json"
    results = {}
    if results_file.exists():
        with suppress(ValueError):
            results = json.loads(results_file.read_text())
    results["serving"] = serving
    results_file.write_text(json.dumps(results, indent=2))
    if "workloads" in results:
        sys.path.insert(0, str(HERE))
        from run import markdown  # renders the serving section too

        text = markdown(results)
    else:
        text = "# Benchmark results\n\n" + markdown_section(serving)
    (OUT / "results.md").write_text(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rate", type=int, default=100, help="offered single requests per second (phase a)")
    parser.add_argument("--duration", type=float, default=30, help="measured window at the fixed rate, seconds")
    parser.add_argument("--warmup", type=float, default=5, help="load before each measured window, seconds")
    parser.add_argument("--capacity-users", type=int, default=8, help="closed-loop users (phase b)")
    parser.add_argument("--capacity-duration", type=float, default=15, help="closed-loop window, seconds")
    parser.add_argument("--max-requests", type=int, default=50_000, help="cap on requests per locust phase")
    parser.add_argument("--batch-rows", type=int, default=10_000)
    parser.add_argument("--batch-reps", type=int, default=5, help="timed batch requests after one warm-up")
    parser.add_argument("--batch-budget", type=float, default=60, help="stop repeating batches after this, seconds")
    parser.add_argument("--ready-timeout", type=float, default=180, help="seconds a server may take to be ready")
    parser.add_argument("--no-mlflow", action="store_true", help="skip the mlflow models serve baseline")
    parser.add_argument(
        "--decision-log", default=None, help="SQLAlchemy URL of the service's decision log (default: a throwaway one)"
    )
    parser.add_argument(
        "--no-pipeline", action="store_true", help="without a champion, say so instead of running the pipeline"
    )
    parser.add_argument(
        "--service-cmd",
        default=None,
        help=f"command starting the service ({{python}} and {{port}} are filled in); default {DEFAULT_SERVICE_CMD!r}",
    )


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--load":
        print(json.dumps(run_load(json.loads(Path(sys.argv[2]).read_text()))), flush=True)
        os._exit(0)  # gevent's hub and locust's greenlets: no interpreter teardown needed
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    parser.add_argument("--home", type=Path, default=None, help="project home (default: $MLCOMOPS_HOME or the repo)")
    parser.add_argument("--no-write", action="store_true", help="print the results only")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from mlcomops_assets.settings import default_home

    serving = benchmark(args.home or default_home(), args)
    if not args.no_write:
        write_results(serving)
    print(markdown_section(serving))


if __name__ == "__main__":
    main()

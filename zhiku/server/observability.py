"""Structured logs (one JSON object per line) and Prometheus-style metrics.

Metrics are kept per process and shared every few seconds: on the embedded default in
``ZHIKU_HOME/run/metrics/<pid>.json``, on a shared database (several nodes) as one row
per process in ``node_metrics`` (:mod:`zhiku.storage.nodes`). ``/metrics`` on any
process of any node adds up the snapshots of every live process, so a scrape through the
load balancer sees the whole cluster, whichever process answers it
(``zhiku_server_process{node="host:pid"}`` names them). Ingestion queue gauges are read
from the job table at scrape time.

Why not ``prometheus_client``: its multi-process mode sums mmap files in one local
directory, which cannot span machines; the exposition format below is the small part.
"""

from __future__ import annotations

import bisect
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from zhiku.storage.db import Database
from zhiku.storage.nodes import SqlNodeMetrics

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

_STD_ATTRS = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "color_message",
}


class JsonFormatter(logging.Formatter):
    """``{"ts": ..., "level": ..., "logger": ..., "msg": ..., <extra fields>}``."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for k, v in record.__dict__.items():
            if k not in _STD_ATTRS and not k.startswith("_"):
                out[k] = v
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def log_config(level: str = "info") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the server and uvicorn: JSON lines on stderr."""
    lvl = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "zhiku.server.observability.JsonFormatter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "zhiku": {"handlers": ["stderr"], "level": lvl, "propagate": False},
            "uvicorn": {"handlers": ["stderr"], "level": lvl, "propagate": False},
            "uvicorn.error": {"handlers": ["stderr"], "level": lvl, "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
    }


Labels = tuple[tuple[str, str], ...]


def _labels(d: Mapping[str, str] | None) -> Labels:
    return tuple(sorted((d or {}).items()))


class Metrics:
    """Counters and histograms of one process, with a snapshot for the others to read."""

    def __init__(
        self, run_dir: Path | None = None, shared: Callable[[], Database] | None = None
    ) -> None:
        """``run_dir``: share snapshots as files (one machine); ``shared``: through the
        database that callable gives the calling thread (several nodes)."""
        self._lock = threading.Lock()
        self.counters: dict[tuple[str, Labels], float] = {}
        self.histograms: dict[tuple[str, Labels], list[float]] = {}
        self.run_dir = run_dir
        self.shared = shared
        self.node = f"{socket.gethostname()}:{os.getpid()}"
        self.flush_s = 5.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def inc(self, name: str, labels: Mapping[str, str] | None = None, value: float = 1.0) -> None:
        key = (name, _labels(labels))
        with self._lock:
            self.counters[key] = self.counters.get(key, 0.0) + value

    def observe(self, name: str, value: float, labels: Mapping[str, str] | None = None) -> None:
        key = (name, _labels(labels))
        with self._lock:
            h = self.histograms.get(key)
            if h is None:
                # bucket counts (non-cumulative), then +Inf, sum, count
                h = self.histograms[key] = [0.0] * (len(LATENCY_BUCKETS) + 3)
            h[bisect.bisect_left(LATENCY_BUCKETS, value)] += 1
            h[-2] += value
            h[-1] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "counters": [[n, list(map(list, lb)), v] for (n, lb), v in self.counters.items()],
                "histograms": [
                    [n, list(map(list, lb)), list(h)] for (n, lb), h in self.histograms.items()
                ],
            }

    # --- several processes -------------------------------------------------------------

    def _file(self) -> Path | None:
        return None if self.run_dir is None else self.run_dir / f"{os.getpid()}.json"

    def flush(self) -> None:
        if self.shared is not None:
            now = time.time()
            repo = SqlNodeMetrics(self.shared())
            repo.publish(self.node, self.snapshot(), now)
            repo.prune(now - 10 * self.flush_s - 60)
            return
        path = self._file()
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.snapshot()), "utf-8")
        os.replace(tmp, path)

    def start(self, every_s: float = 5.0) -> None:
        if (self.run_dir is None and self.shared is None) or self._thread is not None:
            return
        self.flush_s = every_s
        self._flush_quietly()

        def loop() -> None:
            while not self._stop.wait(every_s):
                self._flush_quietly()

        self._thread = threading.Thread(target=loop, name="zhiku-metrics", daemon=True)
        self._thread.start()

    def _flush_quietly(self) -> None:
        try:
            self.flush()
        except Exception:  # noqa: BLE001 - a busy or unreachable database: next time
            logging.getLogger("zhiku.server").debug("metrics not shared", exc_info=True)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.shared is not None:
            try:
                SqlNodeMetrics(self.shared()).remove(self.node)
            except Exception:  # noqa: BLE001 - stopping; the row ages out
                pass
            return
        path = self._file()
        if path is not None:
            path.unlink(missing_ok=True)

    def _others(self) -> Iterable[tuple[str, dict[str, Any]]]:
        """(node, snapshot) of every other live process."""
        if self.shared is not None:
            # a process that missed three flushes is taken for dead
            yield from SqlNodeMetrics(self.shared()).snapshots(
                time.time() - 3 * self.flush_s - 2, exclude=self.node
            )
            return
        if self.run_dir is None or not self.run_dir.exists():
            return
        host = socket.gethostname()
        for f in self.run_dir.glob("*.json"):
            try:
                pid = int(f.stem)
            except ValueError:
                continue
            if pid == os.getpid():
                continue
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                f.unlink(missing_ok=True)
                continue
            except PermissionError:
                pass
            try:
                yield f"{host}:{pid}", json.loads(f.read_text("utf-8"))
            except (OSError, ValueError):
                continue

    def render(
        self,
        gauges: Mapping[str, tuple[str, Mapping[str, float]]] | None = None,
        help_: Mapping[str, str] | None = None,
    ) -> str:
        """The Prometheus text format of every live process, plus ``gauges``
        (name → (label name, {label value: value}))."""
        counters: dict[tuple[str, Labels], float] = {}
        hists: dict[tuple[str, Labels], list[float]] = {}
        nodes: list[str] = []
        for node, snap in [(self.node, self.snapshot()), *self._others()]:
            nodes.append(node)
            for n, lb, v in snap["counters"]:
                key = (n, tuple(tuple(x) for x in lb))
                counters[key] = counters.get(key, 0.0) + v
            for n, lb, h in snap["histograms"]:
                key = (n, tuple(tuple(x) for x in lb))
                acc = hists.setdefault(key, [0.0] * len(h))
                for i, x in enumerate(h):
                    acc[i] += x
        help_ = help_ or {}
        lines: list[str] = []

        def head(name: str, kind: str) -> None:
            if help_.get(name):
                lines.append(f"# HELP {name} {help_[name]}")
            lines.append(f"# TYPE {name} {kind}")

        def fmt(lb: Iterable[tuple[str, str]]) -> str:
            items = [f'{k}="{_esc(v)}"' for k, v in lb]
            return "{" + ",".join(items) + "}" if items else ""

        for name in sorted({n for n, _ in counters}):
            head(name, "counter")
            for (n, lb), v in sorted(counters.items()):
                if n == name:
                    lines.append(f"{name}{fmt(lb)} {v:g}")
        for name in sorted({n for n, _ in hists}):
            head(name, "histogram")
            for (n, lb), h in sorted(hists.items()):
                if n != name:
                    continue
                cum = 0.0
                for i, le in enumerate(LATENCY_BUCKETS):
                    cum += h[i]
                    lines.append(f"{name}_bucket{fmt((*lb, ('le', f'{le:g}')))} {cum:g}")
                cum += h[len(LATENCY_BUCKETS)]
                lines.append(f"{name}_bucket{fmt((*lb, ('le', '+Inf')))} {cum:g}")
                lines.append(f"{name}_sum{fmt(lb)} {h[-2]:.6f}")
                lines.append(f"{name}_count{fmt(lb)} {h[-1]:g}")
        for name, (label, values) in sorted((gauges or {}).items()):
            head(name, "gauge")
            for value_label, v in sorted(values.items()):
                lb = ((label, value_label),) if label else ()
                lines.append(f"{name}{fmt(lb)} {v:g}")
        head("zhiku_server_processes", "gauge")
        lines.append(f"zhiku_server_processes {len(nodes)}")
        head("zhiku_server_process", "gauge")
        for node in sorted(nodes):
            lines.append(f"zhiku_server_process{fmt((('node', node),))} 1")
        return "\n".join(lines) + "\n"


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

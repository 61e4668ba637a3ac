"""Structured logs (one JSON object per line) and Prometheus-style metrics.

Metrics are kept per process and written to ``ZHIKU_HOME/run/metrics/<pid>.json`` every
few seconds; ``/metrics`` on any worker adds up the files of every live worker, so a
scrape sees the whole server whichever process answers it. Ingestion queue gauges are
read from the job table at scrape time.
"""

from __future__ import annotations

import bisect
import json
import logging
import os
import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

_STD_ATTRS = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message", "color_message"}


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
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json",
                                "stream": "ext://sys.stderr"}},
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

    def __init__(self, run_dir: Path | None = None) -> None:
        self._lock = threading.Lock()
        self.counters: dict[tuple[str, Labels], float] = {}
        self.histograms: dict[tuple[str, Labels], list[float]] = {}
        self.run_dir = run_dir
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
                "histograms": [[n, list(map(list, lb)), list(h)]
                               for (n, lb), h in self.histograms.items()],
            }

    # --- several processes -------------------------------------------------------------

    def _file(self) -> Path | None:
        return None if self.run_dir is None else self.run_dir / f"{os.getpid()}.json"

    def flush(self) -> None:
        path = self._file()
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.snapshot()), "utf-8")
        os.replace(tmp, path)

    def start(self, every_s: float = 5.0) -> None:
        if self.run_dir is None or self._thread is not None:
            return
        try:
            self.flush()
        except OSError:
            pass

        def loop() -> None:
            while not self._stop.wait(every_s):
                try:
                    self.flush()
                except OSError:
                    pass

        self._thread = threading.Thread(target=loop, name="zhiku-metrics", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        path = self._file()
        if path is not None:
            path.unlink(missing_ok=True)

    def _others(self) -> Iterable[dict[str, Any]]:
        if self.run_dir is None or not self.run_dir.exists():
            return
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
                yield json.loads(f.read_text("utf-8"))
            except (OSError, ValueError):
                continue

    def render(self, gauges: Mapping[str, tuple[str, Mapping[str, float]]] | None = None,
               help_: Mapping[str, str] | None = None) -> str:
        """The Prometheus text format of every live process, plus ``gauges``
        (name → (label name, {label value: value}))."""
        counters: dict[tuple[str, Labels], float] = {}
        hists: dict[tuple[str, Labels], list[float]] = {}
        processes = 0
        for snap in [self.snapshot(), *self._others()]:
            processes += 1
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
        lines.append(f"zhiku_server_processes {processes}")
        return "\n".join(lines) + "\n"


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

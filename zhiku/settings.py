"""One settings mechanism: every ``ZHIKU_*`` environment variable is read here.

Each group of settings is a pydantic-settings class with its own prefix
(:mod:`zhiku.settings_schema`):

- :class:`~zhiku.settings_schema.CoreSettings` (``ZHIKU_``): the data directory, the one
  language setting (``ZHIKU_LANG``), the model configuration file and the per-file
  reading caps of the loaders and OCR;
- :class:`zhiku.server.settings.ServerSettings` (``ZHIKU_``): the server;
- :class:`zhiku.limits.Limits` (``ZHIKU_LIMIT_``): the budgets of reading one file;
- :func:`model_env` (``ZHIKU_CHAT_*``, ``ZHIKU_EMBED_*``, ``ZHIKU_RERANK_*``): overrides
  of ``zhiku.toml``'s backends.

Values are parsed and validated by pydantic; a bad one fails fast with
:class:`SettingsError`, whose zh-TW (or English) message names the variable and the
value. :func:`load` takes an explicit mapping instead of ``os.environ`` (tests, and the
``zhiku serve`` options that set the same variables for its worker processes); read
without overrides, a class is parsed again only when one of its variables changes.

**The validated snapshot.** Importing pydantic-settings costs more than the rest of a
``zhiku ask`` process, so :func:`core` and :func:`model_env` (the settings every command
reads from the process environment) keep the values pydantic-settings validated in a
small JSON file under the home (:data:`SNAPSHOT_NAME`). It is keyed by the values of all
``ZHIKU_*`` environment variables, the stat (path, size, mtime_ns) of the configuration
file (``zhiku.toml`` or ``ZHIKU_CONFIG``), zhiku's version and the stat of
:mod:`zhiku.settings_schema`; when the key matches, the values are read back without
pydantic. Any change is a miss: the settings are validated again (an invalid value
fails exactly as without a snapshot, and is never written) and the snapshot rewritten.
The snapshot is a cache: a missing, unreadable or unwritable file only costs a
validation.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from zhiku.errors import ZhikuError

if TYPE_CHECKING:
    from zhiku.settings_schema import CoreSettings, ZhikuSettings

    S = TypeVar("S", bound=ZhikuSettings)

SNAPSHOT_NAME = ".settings-snapshot.json"
# The classes whose values the snapshot holds (those read by every command).
SNAPSHOT_CLASSES = ("CoreSettings", "ModelEnv")
_SCHEMA_FILE = Path(__file__).with_name("settings_schema.py")


class SettingsError(ZhikuError):
    """A ``ZHIKU_*`` variable (or option) with a value that cannot be used."""

    exit_code = 2


def _raw_lang() -> str:
    """The language straight from ``ZHIKU_LANG``, for the messages about bad settings
    (the settings that hold the language may be the bad ones)."""
    return normalize_lang(os.environ.get("ZHIKU_LANG", "zh-TW"))


def normalize_lang(value: object) -> str:
    """``en`` for any English tag (``en``, ``en-US``…), else ``zh-TW``."""
    return "en" if str(value or "").strip().lower().startswith("en") else "zh-TW"


def load(cls: type[S], env: Mapping[str, str] | None = None, **overrides: Any) -> S:
    """``cls`` from the environment (or ``env``), then ``overrides`` (None ones ignored),
    validated by pydantic-settings (:func:`zhiku.settings_schema.load`).

    Raises :class:`SettingsError` naming the variable and its value when one is bad.
    """
    from zhiku.settings_schema import load as validate

    return validate(cls, env, **overrides)


class SettingsValues:
    """Validated values read back from the snapshot: the fields of a settings class as
    attributes, read-only (what :func:`core` returns when the snapshot matches)."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_values", dict(values))

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"settings are read-only: {name}")

    def __repr__(self) -> str:
        return f"SettingsValues({self._values!r})"


# This process's environment (its ZHIKU_* items) when last read, and what it gave.
_MEMO: tuple[tuple[tuple[str, str], ...], dict[str, SettingsValues]] | None = None


def _zhiku_env() -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("ZHIKU_")))


def _snapshot_home() -> Path:
    """Where the snapshot lives: the home as :func:`zhiku.config.home_dir` finds it,
    from the raw variable (validated or not, it only says where to look)."""
    raw = os.environ.get("ZHIKU_HOME", "")
    if raw:
        return Path(raw).expanduser().resolve()
    import platformdirs

    return Path(platformdirs.user_data_dir("zhiku", appauthor=False))


def _stat(path: Path) -> list[Any]:
    try:
        st = path.stat()
    except OSError:
        return [str(path), None, None]
    return [str(path), st.st_size, st.st_mtime_ns]


def _snapshot_key(env: tuple[tuple[str, str], ...], home: Path) -> dict[str, Any]:
    """What the snapshot must have been made under. The variables enter as a digest: the
    file holds no value of any variable (API keys and secrets among them)."""
    import hashlib

    from zhiku import __version__

    named = dict(env).get("ZHIKU_CONFIG", "")
    config = Path(named).expanduser() if named else home / "zhiku.toml"
    digest = hashlib.sha256(json.dumps(env, ensure_ascii=False).encode("utf-8")).hexdigest()
    return {
        "version": __version__,
        "schema": _stat(_SCHEMA_FILE)[1:],
        "env": digest,
        "files": [_stat(config)],
    }


def _is_secret(field: str) -> bool:
    return "secret" in field or field.endswith("api_key")


def _encode(field: str, value: Any, env_name: str) -> Any:
    if _is_secret(field):
        # Never written: read back from the variable itself, which the key's digest
        # guarantees is the one validated (a str field validates to the raw value).
        raw = os.environ.get(env_name) or None
        if value != raw:
            raise TypeError(field)
        return {"env": env_name}
    if isinstance(value, Path):
        return {"path": str(value)}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(type(value).__name__)


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if "env" in value:
            return os.environ.get(value["env"]) or None
        return Path(value["path"])
    return value


def _read_snapshot(path: Path, key: Mapping[str, Any]) -> dict[str, SettingsValues] | None:
    try:
        data = json.loads(path.read_text("utf-8"))
        if data.get("key") != key:
            return None
        return {
            name: SettingsValues({f: _decode(v) for f, v in data["values"][name].items()})
            for name in SNAPSHOT_CLASSES
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # missing, foreign or damaged: validate again


def _validate_and_write(path: Path, key: Mapping[str, Any]) -> dict[str, SettingsValues]:
    from zhiku import settings_schema

    values: dict[str, dict[str, Any]] = {}
    encoded: dict[str, dict[str, Any]] | None = {}
    for name in SNAPSHOT_CLASSES:  # raises SettingsError, as without a snapshot
        cls = getattr(settings_schema, name)
        model = load(cls)
        values[name] = {f: getattr(model, f) for f in cls.model_fields}
        try:
            if encoded is not None:
                encoded[name] = {f: _encode(f, v, cls.env_name(f)) for f, v in values[name].items()}
        except TypeError:  # a value the file cannot hold: validate every time
            encoded = None
    if encoded is not None and path.parent.is_dir():
        text = json.dumps({"key": key, "values": encoded}, ensure_ascii=False)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, path)
        except OSError:  # a read-only home: validate next time too
            tmp.unlink(missing_ok=True)
    return {n: SettingsValues(fields) for n, fields in values.items()}


def _current(name: str) -> SettingsValues:
    """The validated values of settings class ``name`` for this process's environment:
    from memory, else the snapshot when its key matches, else validated (and written)."""
    global _MEMO
    env = _zhiku_env()
    if _MEMO is None or _MEMO[0] != env:
        home = _snapshot_home()
        key = _snapshot_key(env, home)
        path = home / SNAPSHOT_NAME
        found = _read_snapshot(path, key) or _validate_and_write(path, key)
        _MEMO = (env, found)
    return _MEMO[1][name]


def core(env: Mapping[str, str] | None = None) -> CoreSettings:
    """The current :class:`~zhiku.settings_schema.CoreSettings` (its fields; re-read when
    one of its variables changes). ``env`` given: validated from that mapping."""
    if env is not None:
        from zhiku.settings_schema import CoreSettings

        return load(CoreSettings, env)
    return cast("CoreSettings", _current("CoreSettings"))


def lang() -> str:
    """User-facing language: ``zh-TW`` (default) or ``en`` (``ZHIKU_LANG=en``); readable
    even while another setting is bad (to word the error about it)."""
    try:
        return str(core().lang)
    except SettingsError:
        return _raw_lang()


MODEL_ROLES = ("chat", "embed", "rerank")
# ZHIKU_<ROLE>_<KEY> -> the backend attribute it overrides.
MODEL_KEYS = (
    ("URL", "url"),
    ("MODEL", "model"),
    ("API_KEY", "api_key"),
    ("PATH", "path"),
    ("TIMEOUT", "timeout"),
    ("CONTEXT", "context_tokens"),
    ("DEVICE", "device"),
    ("PROVIDER", "provider"),
)


def _model_env(env: Mapping[str, str] | None) -> Any:
    if env is None:
        return _current("ModelEnv")
    from zhiku.settings_schema import ModelEnv

    return load(ModelEnv, env)


def model_env(role: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The backend attributes ``ZHIKU_<ROLE>_*`` override for ``role``."""
    found = _model_env(env)
    out: dict[str, Any] = {}
    for key, attr in MODEL_KEYS:
        value = getattr(found, f"{role}_{key.lower()}")
        if value is not None and value.strip() != "":
            out[attr] = value.strip()
    return out


def dense_weight(env: Mapping[str, str] | None = None) -> str | None:
    """``ZHIKU_DENSE_WEIGHT`` (``[hybrid] dense_weight``), as given."""
    value = _model_env(env).dense_weight
    return None if value is None else str(value)

# containerrunner stdout callback plugin.
#
# Loaded by Ansible from a plain directory (ANSIBLE_CALLBACK_PLUGINS), possibly inside an
# execution-environment image where containerrunner is not installed: it imports the standard
# library and ansible only, never containerrunner.
#
# It prints what the `default` stdout callback prints (`minimal` for ad-hoc runs) and, when
# CONTAINERRUNNER_ARTIFACT_DIR is set, writes one JSON event per callback in ansible-runner's
# event schema: as one JSON line to the FIFO named by CONTAINERRUNNER_EVENT_FIFO (the runner
# numbers it in stream order and writes the file), or, without a FIFO (or once nobody reads
# it), to <artifact dir>/job_events/<counter>-<uuid>.json itself.
#
# Environment (all optional):
#   CONTAINERRUNNER_ARTIFACT_DIR           where job_events/ goes; unset: behave like `default`
#   CONTAINERRUNNER_IDENT                  copied into each event's runner_ident
#   CONTAINERRUNNER_EVENT_FIFO             path of a FIFO the runner reads (opened once); the
#                                          stats event's line also carries the recap under
#                                          "containerrunner_stats", the first event's the
#                                          ansible-core version under
#                                          "containerrunner_ansible_version" (the runner
#                                          removes both)
#   CONTAINERRUNNER_MARK_OUTPUT=1          write OUTPUT_MARK on stdout and stderr when the
#                                          plugin loads: what came before it is no event's
#   CONTAINERRUNNER_JSON_MODE=1            print nothing of the events' output (the runner
#                                          prints each event as a JSON line instead)
#   CONTAINERRUNNER_OMIT_EVENT_DATA=1      event_data is {}
#   CONTAINERRUNNER_ONLY_FAILED_EVENT_DATA=1
#                                          event_data is {} except for failed events
#                                          (runner_on_failed, runner_on_async_failed,
#                                          runner_item_on_failed)
#   CONTAINERRUNNER_MAX_EVENT_RES          results whose JSON is longer are replaced by a
#                                          truncation marker (see _truncated_res; default
#                                          700000, like ansible-runner, which puts {})
#   CONTAINERRUNNER_AD_HOC=1|0             ad-hoc (`ansible`) semantics; auto-detected from
#                                          the program name when unset
#   CONTAINERRUNNER_DISPLAY_CALLBACK       stdout callback whose output is kept (default:
#                                          `default`, `minimal` for ad-hoc)

from __future__ import annotations

import collections
import contextlib
import datetime
import errno
import fcntl
import functools
import inspect
import json
import os
import random
import sys
import threading
import uuid
from collections.abc import Mapping, Sequence, Set

from ansible import constants as C
from ansible.plugins.callback import CallbackBase
from ansible.plugins.loader import callback_loader

try:  # the class of the `default` callback, the fallback display base
    from ansible.plugins.callback.default import CallbackModule as _DefaultCallbackModule
except ImportError:  # pragma: no cover - every ansible-core ships `default`
    _DefaultCallbackModule = CallbackBase

DOCUMENTATION = """
    name: containerrunner
    type: stdout
    short_description: default output plus ansible-runner style job events for containerrunner
    version_added: historical
    description:
      - Prints what the default stdout callback prints and writes one JSON event per callback
        into CONTAINERRUNNER_ARTIFACT_DIR/job_events (and CONTAINERRUNNER_EVENT_FIFO if set).
    extends_documentation_fragment:
      - default_callback
      - result_format_callback
    requirements:
      - set as stdout callback in configuration
"""

CENSORED = (
    "the output has been hidden due to the fact that 'no_log: true' was specified for this result"
)

# events that keep their event_data under CONTAINERRUNNER_ONLY_FAILED_EVENT_DATA
FAILED_EVENTS = frozenset({"runner_on_failed", "runner_on_async_failed", "runner_item_on_failed"})
# events whose oversized `res` is kept (the recap is host -> count only)
FULL_RES_EVENTS = frozenset({"playbook_on_stats"})
# written on stdout and stderr when the plugin loads (CONTAINERRUNNER_MARK_OUTPUT): an APC
# string, invisible on a terminal; containerrunner's joboutput.OUTPUT_MARK, removed by it
OUTPUT_MARK = "\x1b_containerrunner-events\x1b\\"
# an oversized `res` becomes {TRUNCATED_KEY: true, "size": N, "limit": L} plus these keys of
# the result (texts cut to TRUNCATED_HEAD characters)
TRUNCATED_KEY = "_containerrunner_truncated"
TRUNCATED_KEPT = ("msg", "stdout", "stderr", "rc", "changed", "failed", "skipped", "unreachable")
TRUNCATED_HEAD = 1024
# the recap's key on the stats event's FIFO line
STATS_KEY = "containerrunner_stats"
# the key on the first event's FIFO line that gives the ansible-core version (provenance)
ANSIBLE_VERSION_KEY = "containerrunner_ansible_version"
# events that never carry a play / a task (as in ansible-runner)
EVENTS_WITHOUT_PLAY = frozenset({"playbook_on_start", "playbook_on_stats"})
EVENTS_WITHOUT_TASK = EVENTS_WITHOUT_PLAY | {
    "playbook_on_setup",
    "playbook_on_notify",
    "playbook_on_import_for_host",
    "playbook_on_not_import_for_host",
    "playbook_on_no_hosts_matched",
    "playbook_on_no_hosts_remaining",
}
# Display methods whose output, outside any callback, becomes an event of that name;
# when several are active (deprecated() calls warning()) the first in this order wins
_DISPLAY_KINDS = ("debug", "verbose", "deprecated", "warning", "system_warning", "error")
_DISPLAY_METHODS = {
    "debug": "debug",
    "verbose": "verbose",
    "_verbose_display": "verbose",  # 2.19: proxied from workers
    "deprecated": "deprecated",
    "_deprecated": "deprecated",  # 2.19: proxied from workers / callbacks
    "warning": "warning",
    "_warning": "warning",
    "error_as_warning": "warning",
    "system_warning": "system_warning",
    "error": "error",
    "_error": "error",
}
_TASK_KEYS = (
    "task",
    "task_path",
    "task_uuid",
    "task_action",
    "task_args",
    "resolved_action",
    "role",
    "resolved_role",
)
_PLAY_KEYS = ("play", "play_uuid", "play_pattern")
_FACT_ACTIONS = frozenset(
    {
        "setup",
        "gather_facts",
        "ansible.builtin.setup",
        "ansible.builtin.gather_facts",
        "ansible.legacy.setup",
        "ansible.legacy.gather_facts",
    }
)
_TRUE = frozenset({"1", "true", "yes", "on"})
# a generator of our own, reseeded in each process (forked workers would share the parent's)
_RANDOM = random.Random()
_random_bits = _RANDOM.getrandbits
# this process's id, kept up to date in forked workers: os.getpid() is a system call, and
# the Display hooks ask for it on each call (thousands per play)
_PID = [os.getpid()]


def _after_fork():
    _RANDOM.seed()
    _PID[0] = os.getpid()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)

    def _pid():
        return _PID[0]

else:  # pragma: no cover - every POSIX Python has it
    _pid = os.getpid


def _env_flag(name):
    return os.environ.get(name, "").strip().lower() in _TRUE


def _is_ad_hoc():
    value = os.environ.get("CONTAINERRUNNER_AD_HOC")
    if value is not None and value.strip():
        return value.strip().lower() in _TRUE
    return os.path.basename(sys.argv[0] if sys.argv else "") == "ansible"


def _ansible_version():
    try:
        from ansible.release import __version__
    except ImportError:  # pragma: no cover - every ansible-core has ansible.release
        return ""
    return __version__


def _now():
    # not datetime.UTC: the plugin runs on the image's Python, which may predate 3.11
    return datetime.datetime.now(datetime.timezone.utc)  # noqa: UP017


# --------------------------------------------------------------------------------------------
# JSON conversion. ansible-core 2.19 passes tagged str/int/dict subclasses, lazy containers,
# EncryptedString and Marker (undefined) objects; older versions AnsibleUnsafeText and
# AnsibleVaultEncryptedUnicode. Everything becomes plain JSON types; nothing may raise.


def _fallback_text(value):
    for render in (str, repr):
        try:
            return str.__str__(render(value))
        except Exception:  # Marker/Undefined objects raise on str()
            continue
    return f"<{type(value).__name__}>"


def _vault_ciphertext(value):
    name = type(value).__name__
    if name not in ("EncryptedString", "AnsibleVaultEncryptedUnicode"):
        try:
            if object.__getattribute__(value, "yaml_tag") != "!vault":
                return None
        except Exception:
            return None
    try:
        ciphertext = object.__getattribute__(value, "_ciphertext")
    except Exception:
        return None
    if isinstance(ciphertext, (bytes, bytearray)):
        return bytes(ciphertext).decode("utf-8", "replace")
    return str.__str__(ciphertext) if isinstance(ciphertext, str) else None


def _json_key(key):
    if isinstance(key, str):
        return str.__str__(key)
    if key is None or isinstance(key, (bool, int, float)):
        return json.dumps(_jsonable(key))  # what json does with such keys: 1 -> "1"
    return _fallback_text(key)


def _jsonable(value, _depth=0):
    """A copy of value made of dict/list/str/int/float/bool/None only."""
    if value is None or value is True or value is False:
        return value
    # exact built-in types first (most of an event): no ABC isinstance checks, no vault probe
    kind = type(value)
    if kind is str or kind is int or kind is float:
        return value
    if _depth <= 100:
        if kind is dict:
            return {
                k if type(k) is str else _json_key(k): _jsonable(v, _depth + 1)
                for k, v in value.items()
            }
        if kind is list or kind is tuple:
            return [_jsonable(v, _depth + 1) for v in value]
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if _depth > 100:
        return _fallback_text(value)
    ciphertext = _vault_ciphertext(value)
    if ciphertext is not None:
        return {"__ansible_vault": ciphertext}
    try:
        if isinstance(value, Mapping):
            return {_json_key(k): _jsonable(v, _depth + 1) for k, v in value.items()}
        if isinstance(value, (bytes, bytearray)):
            return bytes(value).decode("utf-8", "replace")
        if isinstance(value, (Sequence, Set)):
            return [_jsonable(v, _depth + 1) for v in value]
        if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
            return value.isoformat()
    except Exception:  # lazy containers may fail to template outside of a task
        return _fallback_text(value)
    return _fallback_text(value)


# json.dumps(value, default=_fallback_text), without a new JSONEncoder per call (dumps makes
# one for any non-default argument)
_encode = json.JSONEncoder(default=_fallback_text).encode


def _censor(res):
    """ansible-runner's no_log censoring, without mutating Ansible's result."""
    if not isinstance(res, Mapping) or not res:
        return res
    if res.get("_ansible_no_log", False):
        return {"censored": CENSORED}
    results = res.get("results")
    if isinstance(results, list) and results:
        censored = [
            {"censored": CENSORED}
            if isinstance(item, Mapping) and item.get("_ansible_no_log", False)
            else item
            for item in results
        ]
        res = dict(res)
        res["results"] = censored
    return res


def _truncated_res(res, size, limit):
    """What replaces a `res` whose JSON has more than `limit` characters: a visible marker with
    its size, the scalar status keys and the first TRUNCATED_HEAD characters of its texts."""
    marker = {TRUNCATED_KEY: True, "size": size, "limit": limit}
    if isinstance(res, Mapping):
        for key in TRUNCATED_KEPT:
            value = res.get(key)
            if isinstance(value, str):
                marker[key] = value[:TRUNCATED_HEAD]
            elif key in res and (value is None or isinstance(value, (bool, int, float))):
                marker[key] = value
    return marker


def _result_attr(result, name):
    """result.host/.task/.result (2.19+) or result._host/._task/._result (older)."""
    try:
        return getattr(result, name)
    except AttributeError:
        return getattr(result, "_" + name)


# --------------------------------------------------------------------------------------------
# Output capture: Display.display() writes to sys.stdout/sys.stderr; while it runs on behalf of
# an event, those are swapped for tees that record what was written.


class _Tee:
    """Records what is written; passes it on to `stream` unless `silent` (JSON mode)."""

    def __init__(self, stream, parts, silent=False):
        self._stream = stream
        self._parts = parts
        self._silent = silent

    def write(self, text):
        self._parts.append(text if isinstance(text, str) else _fallback_text(text))
        if self._silent:
            return len(text)
        return self._stream.write(text)

    def __getattr__(self, name):
        return getattr(self._stream, name)


class _FifoWriter:
    """Writes one JSON line per event to the runner's FIFO; gives up on EPIPE/ENXIO.

    Writes block while the FIFO is full (the runner's reader fell behind): back-pressure,
    never a dropped line. Once a write fails the writer stays broken: every later event goes
    to its file, so the events the runner got on the FIFO all come before the ones it finds
    as files when the job ends (it delivers those then, in counter order).
    """

    def __init__(self, path):
        self._path = path
        self._fd = None
        self._broken = False

    def _open(self):
        # O_NONBLOCK: fail with ENXIO instead of hanging when nobody reads; then block on
        # writes so the runner applies back-pressure instead of losing events.
        fd = os.open(self._path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_NONBLOCK)
        return fd

    def write(self, line):
        """True when the line was written; False once nobody reads the FIFO."""
        if self._broken:
            return False
        try:
            if self._fd is None:
                self._fd = self._open()
            data = memoryview(line.encode("utf-8"))
            while data:
                data = data[os.write(self._fd, data) :]
            return True
        except OSError as exc:
            self._broken = True
            self.close()
            if exc.errno not in (errno.EPIPE, errno.ENXIO, errno.ENOENT):
                _report(f"cannot write events to FIFO {self._path}: {exc}")
            return False

    def close(self):
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


_REPORTED = set()


def _report(message):
    """One line on the real stderr, once per message (never through Display: no recursion)."""
    if message in _REPORTED:
        return
    _REPORTED.add(message)
    with contextlib.suppress(Exception):
        sys.__stderr__.write(f"[containerrunner callback] {message}\n")
        sys.__stderr__.flush()


class _Recorder:
    """Builds, numbers and writes events. One per process, attached to the Display singleton."""

    def __init__(self, display, artifact_dir):
        self.display = display
        self.pid = _pid()
        self.lock = getattr(display, "_lock", None) or threading.RLock()
        self.ident = os.environ.get("CONTAINERRUNNER_IDENT", "")
        self.events_dir = os.path.join(os.path.abspath(artifact_dir), "job_events")
        fifo = os.environ.get("CONTAINERRUNNER_EVENT_FIFO", "")
        self.fifo = _FifoWriter(fifo) if fifo else None
        self.omit = _env_flag("CONTAINERRUNNER_OMIT_EVENT_DATA")
        self.only_failed = _env_flag("CONTAINERRUNNER_ONLY_FAILED_EVENT_DATA")
        self.silent = _env_flag("CONTAINERRUNNER_JSON_MODE")
        try:
            self.max_res = int(os.environ.get("CONTAINERRUNNER_MAX_EVENT_RES", "700000"))
        except ValueError:
            self.max_res = 700000
        self.counter = 0
        self.line = 0
        self.global_ctx = {}
        self.tls = threading.local()
        self._display_signature = None
        self._log_only_index = None

    # ---- context ------------------------------------------------------------------------
    def capture(self):
        return getattr(self.tls, "capture", None)

    def kinds(self):
        stack = getattr(self.tls, "kinds", None)
        if stack is None:
            stack = self.tls.kinds = []
        return stack

    # ---- building -----------------------------------------------------------------------
    def begin(self, event, data, drop=()):
        """The event without stdout/lines, as plain JSON data, taken before the display runs.

        event_data is the global context (playbook, play, current task) minus the keys in
        drop, updated with data.
        """
        event_data = {k: v for k, v in self.global_ctx.items() if k not in drop}
        event_data.update(data)
        if "uuid" not in event_data:
            event_data["uuid"] = _uuid4()
        if "res" in event_data:
            event_data["res"] = _censor(event_data["res"])
        verbosity = event_data.pop("verbosity", None)
        event_data = _jsonable(event_data)
        if event in ("runner_on_ok",) and event_data.get("task_action") in _FACT_ACTIONS:
            facts = event_data.get("res", {}).get("ansible_facts")
            if isinstance(facts, dict):
                facts.pop("ansible_env", None)  # environment: possibly secret, like ansible-runner
        record = {
            "uuid": event_data["uuid"],
            "event": event,
            "pid": self.pid,
            "created": _now().isoformat(),
        }
        for key in ("task_uuid", "play_uuid", "playbook_uuid"):
            parent = event_data.get(key)
            if parent and parent != event_data["uuid"]:
                record["parent_uuid"] = parent
                break
        if verbosity is not None:
            record["verbosity"] = verbosity
        keep = not (self.omit or (self.only_failed and event not in FAILED_EVENTS))
        if event == "playbook_on_stats":  # the recap travels aside: Runner.stats needs it
            record[STATS_KEY] = event_data
        if not keep:
            event_data = {}
        record["event_data"] = event_data  # an oversized res is cut in finish (_fit)
        return record

    def finish(self, record, text):
        """Number the event, attach its output, send it on the FIFO (else write its file)."""
        self.counter += 1
        n_lines = text.count("\n")
        event = {
            "uuid": record["uuid"],
            "counter": self.counter,
            "stdout": text.rstrip("\r\n"),
            "start_line": self.line,
            "end_line": self.line + n_lines,
            "runner_ident": self.ident,
        }
        self.line += n_lines
        event.update((k, v) for k, v in record.items() if k not in ("uuid", STATS_KEY))
        if self.fifo is not None and STATS_KEY in record:
            event[STATS_KEY] = record[STATS_KEY]
        if self.fifo is not None and self.counter == 1:
            event[ANSIBLE_VERSION_KEY] = _ansible_version()
        try:
            payload = _encode(event)
            if len(payload) > self.max_res and self._fit(event):
                payload = _encode(event)
        except Exception as exc:  # e.g. NaN keys, recursion: keep the event, lose its data
            _report(f"event {event['event']} #{event['counter']} not serialisable: {exc}")
            event["event_data"] = {}
            event.pop(STATS_KEY, None)
            payload = _encode(event)
        # a record starts and ends with a newline: a line cut short (its writer killed
        # mid-write) is ended by the next record's first byte and never swallows it
        if self.fifo is not None and self.fifo.write("\n" + payload + "\n"):
            return  # the runner writes the file
        side = [event.pop(key, None) for key in (STATS_KEY, ANSIBLE_VERSION_KEY)]
        if any(value is not None for value in side):
            payload = _encode(event)
        self._write_file(event, payload)

    def _fit(self, event):
        """Cut event_data.res to its truncation marker when its JSON exceeds max_res.

        Called only when the whole event's JSON exceeds max_res: res's JSON is a part of it,
        so a smaller event cannot hold an oversized res and pays one serialisation, not two.
        True when res was cut (the event must be serialised again).
        """
        data = event.get("event_data")
        if not isinstance(data, dict) or "res" not in data or event["event"] in FULL_RES_EVENTS:
            return False
        size = len(_encode(data["res"]))
        if size <= self.max_res:
            return False
        data["res"] = _truncated_res(data["res"], size, self.max_res)
        return True

    def _write_file(self, event, payload):
        name = f"{event['counter']}-{event['uuid']}.json"
        final = os.path.join(self.events_dir, name)
        temp = os.path.join(self.events_dir, f".{name}.tmp")
        try:
            os.makedirs(self.events_dir, mode=0o700, exist_ok=True)
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(payload)
            os.rename(temp, final)
        except OSError as exc:  # reported once per reason, not once per event
            _report(f"cannot write job events to {self.events_dir}: {exc.strerror or exc}")

    # ---- display hooks ------------------------------------------------------------------
    def is_log_only(self, original, args, kwargs):
        if "log_only" in kwargs:
            return bool(kwargs["log_only"])
        if self._display_signature is None:
            try:
                self._display_signature = inspect.signature(original)
            except (TypeError, ValueError):
                self._display_signature = False
            self._log_only_index = _positional_index(self._display_signature, "log_only")
        if self._log_only_index is not None and len(args) <= self._log_only_index:
            return False  # the common call: display(msg, color=...), log_only not passed
        if self._display_signature:
            try:
                bound = self._display_signature.bind(*args, **kwargs)
            except TypeError:
                return False
            return bool(bound.arguments.get("log_only", False))
        return False

    def on_display(self, original, args, kwargs):
        if _pid() != self.pid or self.is_log_only(original, args, kwargs):
            return original(*args, **kwargs)  # in a worker fork Display proxies to the parent
        with self.lock:
            capture = self.capture()
            if capture is not None:  # inside a callback: part of that event's stdout
                return self._tee_call(original, capture, args, kwargs)
            parts = []
            active = self.kinds()
            names = {kind for kind, _ in active}
            event = next((k for k in _DISPLAY_KINDS if k in names), "verbose")
            data = {}
            for kind, extra in active:
                data[kind] = True  # ansible-runner marks display events {"warning": true}
                data.update(extra.resolve() if isinstance(extra, _LazyExtra) else extra)
            record = self.begin(event, data)
            try:
                return self._tee_call(original, parts, args, kwargs)
            finally:
                self.finish(record, "".join(parts))

    def _tee_call(self, original, parts, args, kwargs):
        stdout, stderr = sys.stdout, sys.stderr
        sys.stdout = _Tee(stdout, parts, self.silent)
        sys.stderr = _Tee(stderr, parts, self.silent)
        try:
            return original(*args, **kwargs)
        finally:
            sys.stdout, sys.stderr = stdout, stderr

    def flagged(self, kind, original):
        try:
            signature = inspect.signature(original) if kind == "verbose" else None
        except (TypeError, ValueError):
            signature = None

        @functools.wraps(original)
        def wrapper(*args, **kwargs):
            if _pid() != self.pid:
                return original(*args, **kwargs)
            # the call's arguments, bound only if it displays outside of a callback (most
            # verbose() calls print nothing: binding each one cost more than the event)
            extra = _LazyExtra(signature, args, kwargs) if signature is not None else {}
            stack = self.kinds()
            stack.append((kind, extra))
            try:
                return original(*args, **kwargs)
            finally:
                stack.pop()

        return wrapper


def _positional_index(signature, name):
    """The index in a bound method's *args that fills parameter `name`, or None."""
    if not signature:
        return None
    for index, param in enumerate(signature.parameters.values()):
        if param.kind not in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            return None
        if param.name == name:
            return index
    return None


class _LazyExtra:
    """verbose()'s host/caplevel as event_data keys, computed when an event needs them."""

    __slots__ = ("_args", "_kwargs", "_signature")

    def __init__(self, signature, args, kwargs):
        self._signature, self._args, self._kwargs = signature, args, kwargs

    def resolve(self):
        extra = {}
        try:
            bound = self._signature.bind(*self._args, **self._kwargs)
            bound.apply_defaults()
            host = bound.arguments.get("host")
            caplevel = bound.arguments.get("caplevel")
        except (TypeError, ValueError):
            host, caplevel = None, None
        if isinstance(caplevel, int):
            extra["verbosity"] = caplevel + 1
        if host is not None:
            extra["remote_addr"] = host
        return extra


def _uuid4():
    """A random (version 4) uuid's text, like str(uuid.uuid4()) without its os.urandom
    syscall and UUID object per event (ids, not secrets: random's generator suffices)."""
    value = (_random_bits(128) & ~(0xF000 << 64) | (0x4000 << 64)) & ~(0xC000 << 48) | (
        0x8000 << 48
    )
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _get_recorder(display):
    """The process-wide recorder, its Display hooks installed once (even if loaded twice)."""
    recorder = getattr(display, "_containerrunner_recorder", None)
    if recorder is not None and recorder.pid == _pid():
        return recorder
    artifact_dir = os.environ.get("CONTAINERRUNNER_ARTIFACT_DIR", "")
    if not artifact_dir:
        return None
    recorder = _Recorder(display, artifact_dir)
    _mark_output()
    if not getattr(display, "_containerrunner_hooked", False):
        original_display = display.display

        def display_hook(*args, **kwargs):
            current = getattr(display, "_containerrunner_recorder", None)
            if current is None:
                return original_display(*args, **kwargs)
            return current.on_display(original_display, args, kwargs)

        display.display = display_hook
        for name, kind in _DISPLAY_METHODS.items():
            if kind == "debug" and not C.DEFAULT_DEBUG:
                # debug() prints nothing without ANSIBLE_DEBUG, and Ansible calls it about
                # ten times per event: a wrapper there costs each call and marks nothing
                continue
            method = getattr(display, name, None)
            if callable(method):
                setattr(display, name, recorder.flagged(kind, method))
        display._containerrunner_hooked = True
    display._containerrunner_recorder = recorder
    return recorder


_MARKED = []  # module state: a forked worker inherits it and never marks again


def _mark_output():
    """Tell the runner, on both streams, that from here on output belongs to events."""
    if _MARKED or not _env_flag("CONTAINERRUNNER_MARK_OUTPUT"):
        return
    _MARKED.append(True)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.write(OUTPUT_MARK)
            stream.flush()


# --------------------------------------------------------------------------------------------
# The plugin


def _display_base():
    name = os.environ.get("CONTAINERRUNNER_DISPLAY_CALLBACK", "").strip()
    if not name or name == "containerrunner":
        name = "minimal" if _is_ad_hoc() else "default"
    if name != "default":
        with contextlib.suppress(Exception):
            base = callback_loader.get(name, class_only=True)
            if base is not None:
                return base
        _report(f"cannot load stdout callback {name!r}; using 'default'")
    return _DefaultCallbackModule


_DisplayBase = _display_base()


class CallbackModule(_DisplayBase):
    """Default output on stdout plus one ansible-runner style JSON event per callback."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "containerrunner"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._cr = _get_recorder(self._display)
        self._cr_ad_hoc = _is_ad_hoc()
        self._cr_host_start = {}
        self._cr_task_uuids = set()
        self._cr_task_counts = collections.defaultdict(lambda: 1)
        self._cr_play_uuids = set()
        self._cr_play_counts = collections.defaultdict(lambda: 1)
        self._cr_playbook_uuid = str(uuid.uuid4())
        self._cr_task_ctx = {}  # task uuid -> (the task first seen, its context)

    def set_options(self, *args, **kwargs):
        # a non-default display base may have options our DOCUMENTATION does not declare
        base_name = getattr(_DisplayBase, "_load_name", None) or getattr(
            _DisplayBase, "CALLBACK_NAME", "default"
        )
        if base_name not in ("default", "minimal"):
            with contextlib.suppress(Exception):
                defs = dict(
                    C.config.get_configuration_definitions(plugin_type="callback", name=base_name)
                    or {}
                )
                defs.update(
                    C.config.get_configuration_definitions(
                        plugin_type="callback", name=self._load_name
                    )
                    or {}
                )
                C.config.initialize_plugin_configuration_definitions(
                    "callback", self._load_name, defs
                )
        return super().set_options(*args, **kwargs)

    # ---- context ------------------------------------------------------------------------
    @contextlib.contextmanager
    def _event(self, event, task=None, **data):
        recorder = self._cr
        if recorder is None or _pid() != recorder.pid:
            yield
            return
        with recorder.lock:
            drop = ()
            if task is not None and event not in EVENTS_WITHOUT_TASK:
                # this event's own task replaces the current (global) one
                drop = _TASK_KEYS
                data = {**self._cached_task_context(task), **data}
            record = recorder.begin(event, data, drop)
            parts = []
            previous = recorder.capture()
            recorder.tls.capture = parts
            try:
                yield
            finally:
                recorder.tls.capture = previous
                recorder.finish(record, "".join(parts))

    def _set_global(self, **values):
        # under the lock: the results thread may be building an event from this context
        if self._cr is not None:
            with self._cr.lock:
                for key, value in values.items():
                    if value is None:
                        self._cr.global_ctx.pop(key, None)
                    else:
                        self._cr.global_ctx[key] = value

    def _set_playbook(self, playbook):
        self._set_global(
            playbook=getattr(playbook, "_file_name", "???"), playbook_uuid=self._cr_playbook_uuid
        )
        self._clear_play()

    @staticmethod
    def _play_pattern(play):
        hosts = getattr(play, "hosts", "")
        if isinstance(hosts, list):
            return ",".join(str(h) for h in hosts)
        return hosts if hosts is not None else ""

    def _set_play(self, play, play_uuid):
        pattern = self._play_pattern(play)
        name = str(play.get_name()).strip() or pattern
        self._set_global(play=name, play_uuid=play_uuid, play_pattern=pattern)
        self._clear_task()

    def _clear_play(self):
        self._set_global(**dict.fromkeys(_PLAY_KEYS))
        self._clear_task()

    def _set_task(self, task):
        self._clear_task()
        self._set_global(**self._cached_task_context(task))

    def _cached_task_context(self, task):
        # constant per task: computed on its start, reused by each of its hosts' events.
        # Keyed by the task's uuid, holding the first object seen (the play's own task, at
        # its start): a result's task is a copy made for that one result (ansible-core
        # 2.19), computed each time and never kept (keeping it held a task per result alive)
        key = getattr(task, "_uuid", None) or id(task)
        cached = self._cr_task_ctx.get(key)
        if cached is not None and cached[0] is task:
            return cached[1]
        ctx = self._task_context(task)
        if cached is None:
            if len(self._cr_task_ctx) >= 256:
                self._cr_task_ctx.clear()
            self._cr_task_ctx[key] = (task, ctx)
        return ctx

    def _clear_task(self):
        self._set_global(**dict.fromkeys(_TASK_KEYS))

    @staticmethod
    def _task_context(task):
        ctx = {
            "task": task.name or task.action,
            "task_uuid": str(task._uuid),
            "task_action": task.action,
            "resolved_action": getattr(task, "resolved_action", task.action),
            "task_args": "",
        }
        with contextlib.suppress(Exception):
            ctx["task_path"] = task.get_path()
        if C.DISPLAY_ARGS_TO_STDOUT:
            if task.no_log:
                ctx["task_args"] = CENSORED
            else:
                with contextlib.suppress(Exception):
                    ctx["task_args"] = ", ".join(f"{k}={v}" for k, v in task.args.items())
        role = getattr(task, "_role", None)
        if role:
            role_name = getattr(role, "_role_name", None)
            with contextlib.suppress(Exception):
                resolved = role.get_name()
                if resolved != role_name:
                    ctx["resolved_role"] = resolved
        else:
            role_name = getattr(task, "role_name", "")
        if role_name:
            ctx["role"] = role_name
        return ctx

    def _unique_uuid(self, value, seen, counts):
        # free strategy / serial: the same play or task starts more than once
        if value in seen:
            counts[value] += 1
            value = f"{value}_{counts[value]}"
        seen.add(value)
        return value

    def _timing(self, host_name):
        start = self._cr_host_start.get(host_name)
        if start is None:
            return None, None, None
        end = _now()
        return start, end, (end - start).total_seconds()

    def _result_data(self, result, timing=True, loop=True, **extra):
        host = _result_attr(result, "host")
        data = {"host": host.get_name(), "remote_addr": host.address}
        if timing:
            data["start"], data["end"], data["duration"] = self._timing(host.get_name())
        if loop:
            data["event_loop"] = getattr(_result_attr(result, "task"), "loop_with", None)
        data.update(extra)
        return data

    def _res(self, result):
        res = _result_attr(result, "result")
        task = _result_attr(result, "task")
        if getattr(task, "no_log", False) is True:  # belt and braces on top of _ansible_no_log
            return {"censored": CENSORED}
        return res

    def _super(self, name, *args, **kwargs):
        method = getattr(super(), name, None)
        if method is not None:
            return method(*args, **kwargs)
        return None

    # ---- playbook callbacks -------------------------------------------------------------
    def v2_playbook_on_start(self, playbook):
        if getattr(playbook, "_file_name", None) == "__adhoc_playbook__":
            self._cr_ad_hoc = True
        self._set_playbook(playbook)
        with self._event("playbook_on_start", uuid=self._cr_playbook_uuid):
            super().v2_playbook_on_start(playbook)

    def v2_playbook_on_vars_prompt(
        self,
        varname,
        private=True,
        prompt=None,
        encrypt=None,
        confirm=False,
        salt_size=None,
        salt=None,
        default=None,
        unsafe=None,
    ):
        data = {
            "varname": varname,
            "private": private,
            "prompt": prompt,
            "encrypt": encrypt,
            "confirm": confirm,
            "salt_size": salt_size,
            "salt": salt,
            "default": default,
            "unsafe": unsafe,
        }
        with self._event("playbook_on_vars_prompt", **data):
            super().v2_playbook_on_vars_prompt(
                varname, private, prompt, encrypt, confirm, salt_size, salt, default
            )

    def v2_playbook_on_include(self, included_file):
        filename = getattr(included_file, "_filename", None) if included_file else None
        with self._event("playbook_on_include", included_file=filename):
            super().v2_playbook_on_include(included_file)

    def v2_playbook_on_play_start(self, play):
        if self._cr_ad_hoc:
            return self._super("v2_playbook_on_play_start", play)
        play_uuid = self._unique_uuid(str(play._uuid), self._cr_play_uuids, self._cr_play_counts)
        self._set_play(play, play_uuid)
        pattern = self._play_pattern(play)
        name = str(play.get_name()).strip() or pattern
        with self._event("playbook_on_play_start", name=name, pattern=pattern, uuid=play_uuid):
            super().v2_playbook_on_play_start(play)
        return None

    def v2_playbook_on_import_for_host(self, result, imported_file):
        with self._event("playbook_on_import_for_host"):
            self._super("v2_playbook_on_import_for_host", result, imported_file)

    def v2_playbook_on_not_import_for_host(self, result, missing_file):
        with self._event("playbook_on_not_import_for_host"):
            self._super("v2_playbook_on_not_import_for_host", result, missing_file)

    def v2_playbook_on_setup(self):
        with self._event("playbook_on_setup"):
            self._super("v2_playbook_on_setup")

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._set_task(task)
        if self._cr_ad_hoc:
            return self._super("v2_playbook_on_task_start", task, is_conditional)
        event_uuid = self._unique_uuid(str(task._uuid), self._cr_task_uuids, self._cr_task_counts)
        with self._event(
            "playbook_on_task_start",
            task=task,
            name=task.get_name(),
            is_conditional=is_conditional,
            uuid=event_uuid,
        ):
            super().v2_playbook_on_task_start(task, is_conditional)
        return None

    def v2_playbook_on_cleanup_task_start(self, task):
        self._set_task(task)
        with self._event(
            "playbook_on_task_start",
            task=task,
            name=task.get_name(),
            is_conditional=True,
            uuid=str(task._uuid),
        ):
            self._super("v2_playbook_on_cleanup_task_start", task)

    def v2_playbook_on_handler_task_start(self, task):
        # a handler is reported as playbook_on_task_start with is_conditional=True
        self._set_task(task)
        with self._event(
            "playbook_on_task_start",
            task=task,
            name=task.get_name(),
            is_conditional=True,
            uuid=str(task._uuid),
        ):
            super().v2_playbook_on_handler_task_start(task)

    def v2_playbook_on_no_hosts_matched(self):
        with self._event("playbook_on_no_hosts_matched"):
            super().v2_playbook_on_no_hosts_matched()

    def v2_playbook_on_no_hosts_remaining(self):
        with self._event("playbook_on_no_hosts_remaining"):
            super().v2_playbook_on_no_hosts_remaining()

    def v2_playbook_on_notify(self, handler, host):
        host_name = host.get_name() if hasattr(host, "get_name") else host
        with self._event("playbook_on_notify", host=host_name, handler=handler.get_name()):
            super().v2_playbook_on_notify(handler, host)

    def v2_playbook_on_stats(self, stats):
        self._clear_play()
        custom = getattr(stats, "custom", None)
        data = {
            "changed": stats.changed,
            "dark": stats.dark,
            "failures": stats.failures,
            "ignored": getattr(stats, "ignored", {}),
            "ok": stats.ok,
            "processed": stats.processed,
            "rescued": getattr(stats, "rescued", {}),
            "skipped": stats.skipped,
            "artifact_data": custom.get("_run", {}) if isinstance(custom, dict) else {},
        }
        with self._event("playbook_on_stats", **data):
            super().v2_playbook_on_stats(stats)

    # ---- runner callbacks ---------------------------------------------------------------
    def v2_runner_on_start(self, host, task):
        self._cr_host_start[host.get_name()] = _now()
        with self._event("runner_on_start", task=task, host=host.get_name()):
            super().v2_runner_on_start(host, task)

    def v2_runner_on_ok(self, result):
        data = self._result_data(result, res=self._res(result))
        with self._event("runner_on_ok", task=_result_attr(result, "task"), **data):
            super().v2_runner_on_ok(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        data = self._result_data(result, res=self._res(result), ignore_errors=ignore_errors)
        with self._event("runner_on_failed", task=_result_attr(result, "task"), **data):
            super().v2_runner_on_failed(result, ignore_errors)

    def v2_runner_on_skipped(self, result):
        data = self._result_data(result)
        with self._event("runner_on_skipped", task=_result_attr(result, "task"), **data):
            super().v2_runner_on_skipped(result)

    def v2_runner_on_unreachable(self, result):
        data = self._result_data(result, loop=False, res=self._res(result))
        with self._event("runner_on_unreachable", task=_result_attr(result, "task"), **data):
            super().v2_runner_on_unreachable(result)

    def v2_runner_on_no_hosts(self, task):
        with self._event("runner_on_no_hosts", task=task):
            self._super("v2_runner_on_no_hosts", task)

    def _async_data(self, result):
        res = self._res(result)
        jid = res.get("ansible_job_id") if isinstance(res, Mapping) else None
        host = _result_attr(result, "host").get_name()
        return {"host": host, "res": res, "jid": jid}

    def v2_runner_on_async_poll(self, result):
        data = self._async_data(result)
        with self._event("runner_on_async_poll", task=_result_attr(result, "task"), **data):
            super().v2_runner_on_async_poll(result)

    def v2_runner_on_async_ok(self, result):
        data = self._async_data(result)
        with self._event("runner_on_async_ok", task=_result_attr(result, "task"), **data):
            super().v2_runner_on_async_ok(result)

    def v2_runner_on_async_failed(self, result):
        data = self._async_data(result)
        with self._event("runner_on_async_failed", task=_result_attr(result, "task"), **data):
            super().v2_runner_on_async_failed(result)

    def v2_runner_on_file_diff(self, result, diff):
        host = _result_attr(result, "host").get_name()
        task = _result_attr(result, "task")
        with self._event("runner_on_file_diff", task=task, host=host, diff=diff):
            self._super("v2_runner_on_file_diff", result, diff)

    def v2_on_file_diff(self, result):
        host = _result_attr(result, "host").get_name()
        res = _result_attr(result, "result")
        diff = res.get("diff") if isinstance(res, Mapping) else None
        if getattr(_result_attr(result, "task"), "no_log", False) is True:
            diff = CENSORED
        task = _result_attr(result, "task")
        with self._event("runner_on_file_diff", task=task, host=host, diff=diff):
            super().v2_on_file_diff(result)

    def _item_data(self, result):
        host = _result_attr(result, "host").get_name()
        return {"host": host, "res": self._res(result)}

    def v2_runner_item_on_ok(self, result):
        data = self._item_data(result)
        with self._event("runner_item_on_ok", task=_result_attr(result, "task"), **data):
            super().v2_runner_item_on_ok(result)

    def v2_runner_item_on_failed(self, result):
        data = self._item_data(result)
        with self._event("runner_item_on_failed", task=_result_attr(result, "task"), **data):
            super().v2_runner_item_on_failed(result)

    def v2_runner_item_on_skipped(self, result):
        data = self._item_data(result)
        with self._event("runner_item_on_skipped", task=_result_attr(result, "task"), **data):
            super().v2_runner_item_on_skipped(result)

    def v2_runner_retry(self, result):
        data = self._item_data(result)
        with self._event("runner_retry", task=_result_attr(result, "task"), **data):
            super().v2_runner_retry(result)

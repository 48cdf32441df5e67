"""The callback plugin's pure parts: JSON conversion, no_log censoring, FIFO writer, event data.

The plugin is loaded from its file, as Ansible loads it (it is not imported as a package
module). Processes: none; the FIFO tests use a real FIFO in tmp_path.
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import containerrunner

PLUGIN = Path(containerrunner.__file__).parent / "callback" / "containerrunner.py"


@pytest.fixture(scope="module")
def plugin() -> ModuleType:
    spec = importlib.util.spec_from_file_location("containerrunner_callback_under_test", PLUGIN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_plugin_imports_nothing_from_containerrunner() -> None:
    source = PLUGIN.read_text()
    assert "import containerrunner" not in source
    assert "from containerrunner" not in source


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("undefined")

    def __repr__(self) -> str:
        raise RuntimeError("undefined")


class VaultLike:  # what ansible-core < 2.19 used (AnsibleVaultEncryptedUnicode)
    yaml_tag = "!vault"

    def __init__(self) -> None:
        self._ciphertext = b"$ANSIBLE_VAULT;1.1;AES256\n3132"


def test_jsonable_plain_types(plugin: ModuleType) -> None:
    when = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)  # noqa: UP017
    value = {
        "t": (1, 2),
        "s": {3},
        "b": b"\xffbytes",
        "d": when,
        ("tuple", "key"): 1,
        1: None,
        "nested": [{"x": [True, 1.5]}],
    }
    out = plugin._jsonable(value)
    assert json.loads(json.dumps(out)) == out
    assert out["t"] == [1, 2]
    assert out["s"] == [3]
    assert out["b"] == "\ufffdbytes"
    assert out["d"] == "2024-01-02T03:04:05+00:00"
    assert out["('tuple', 'key')"] == 1
    assert out["nested"] == [{"x": [True, 1.5]}]


def test_jsonable_gives_exact_builtin_types(plugin: ModuleType) -> None:
    """Plain values take the fast path; subclasses (2.19's tagged types) still become plain."""

    class Text(str):
        pass

    class Number(int):
        pass

    class Data(dict):  # type: ignore[type-arg]
        pass

    value = {"plain": ["a", 1, 2.5, {"k": None}], "sub": Data(t=Text("x"), n=Number(3)), 2: "i"}
    out = plugin._jsonable(value)
    assert out == {"plain": ["a", 1, 2.5, {"k": None}], "sub": {"t": "x", "n": 3}, "2": "i"}
    assert type(out["sub"]) is dict
    assert type(out["sub"]["t"]) is str and type(out["sub"]["n"]) is int
    assert out["plain"] is not value["plain"]  # a copy: the caller may change it


def test_jsonable_never_raises(plugin: ModuleType) -> None:
    out = plugin._jsonable({"u": Unprintable(), "v": VaultLike(), "o": object()})
    assert out["u"] == "<Unprintable>"
    assert out["v"] == {"__ansible_vault": "$ANSIBLE_VAULT;1.1;AES256\n3132"}
    assert out["o"].startswith("<object object")
    deep: Any = []
    cursor = deep
    for _ in range(500):
        cursor.append([])
        cursor = cursor[0]
    json.dumps(plugin._jsonable(deep))


def test_jsonable_ansible_219_types(plugin: ModuleType) -> None:
    tags = pytest.importorskip("ansible._internal._datatag._tags")
    jinja_common = pytest.importorskip("ansible._internal._templating._jinja_common")
    vault = pytest.importorskip("ansible.parsing.vault")
    tagged = tags.TrustedAsTemplate().tag("{{ x }}")
    value = {
        tagged: tagged,
        "marker": jinja_common.UndefinedMarker(hint="x is undefined", _no_template_source=True),
        "vault": vault.EncryptedString(ciphertext="$ANSIBLE_VAULT;1.1;AES256\n3132"),
    }
    with pytest.raises(TypeError):
        json.dumps(value)
    out = plugin._jsonable(value)
    assert json.loads(json.dumps(out)) == out
    assert type(next(iter(out))) is str
    assert type(out["{{ x }}"]) is str
    assert out["marker"] == "<UndefinedMarker>"
    assert out["vault"] == {"__ansible_vault": "$ANSIBLE_VAULT;1.1;AES256\n3132"}


def test_censor(plugin: ModuleType) -> None:
    censored = {"censored": plugin.CENSORED}
    assert plugin._censor({"_ansible_no_log": True, "stdout": "secret"}) == censored
    res: dict[str, Any] = {
        "results": [{"_ansible_no_log": True, "x": "secret"}, {"x": "shown"}],
        "changed": 1,
    }
    out = plugin._censor(res)
    assert out["results"] == [censored, {"x": "shown"}]
    assert res["results"][0]["x"] == "secret"  # Ansible's result is not modified
    assert plugin._censor({"x": 1}) == {"x": 1}
    assert plugin.CENSORED == (
        "the output has been hidden due to the fact that 'no_log: true' "
        "was specified for this result"
    )


def test_fifo_writer_without_reader_gives_up_quietly(plugin: ModuleType, tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    writer = plugin._FifoWriter(str(fifo))
    writer.write('{"a": 1}\n')  # ENXIO: nobody reads
    assert writer._broken
    writer.write('{"a": 2}\n')  # no second attempt, no error


def test_fifo_writer_writes_lines_and_stops_on_epipe(plugin: ModuleType, tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    writer = plugin._FifoWriter(str(fifo))
    writer.write('{"a": 1}\n')
    assert os.read(reader, 100) == b'{"a": 1}\n'
    os.close(reader)
    writer.write('{"a": 2}\n')  # EPIPE
    assert writer._broken
    writer.close()


def _recorder(plugin: ModuleType, tmp_path: Path) -> Any:
    class FakeDisplay:
        pass

    return plugin._Recorder(FakeDisplay(), str(tmp_path))


@pytest.mark.parametrize(
    ("env", "kept"),
    [
        ({}, {"runner_on_ok", "runner_on_failed", "playbook_on_stats"}),
        ({"CONTAINERRUNNER_OMIT_EVENT_DATA": "1"}, set()),
        (
            {"CONTAINERRUNNER_ONLY_FAILED_EVENT_DATA": "1"},
            {"runner_on_failed"},
        ),
    ],
)
def test_event_data_omission(
    plugin: ModuleType,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    kept: set[str],
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    recorder = _recorder(plugin, tmp_path)
    recorder.global_ctx.update(playbook="site.yml", playbook_uuid="pb")
    for event in ("runner_on_ok", "runner_on_failed", "playbook_on_stats"):
        record = recorder.begin(event, {"host": "h", "res": {"x": 1}})
        assert record["event"] == event
        assert record["parent_uuid"] == "pb"
        assert bool(record["event_data"]) == (event in kept)
        # the recap travels aside, whatever event_data keeps (Runner.stats needs it)
        assert ("containerrunner_stats" in record) == (event == "playbook_on_stats")


def test_finish_writes_numbered_files_and_lines(
    plugin: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONTAINERRUNNER_IDENT", "job1")
    monkeypatch.delenv("CONTAINERRUNNER_EVENT_FIFO", raising=False)
    recorder = _recorder(plugin, tmp_path)
    recorder.finish(recorder.begin("verbose", {}), "one\ntwo\n")
    recorder.finish(recorder.begin("verbose", {}), "")
    files = sorted(os.listdir(tmp_path / "job_events"))
    assert len(files) == 2
    events = sorted(
        (json.loads((tmp_path / "job_events" / f).read_text()) for f in files),
        key=lambda e: e["counter"],
    )
    first, second = events
    assert files[0] == f"1-{first['uuid']}.json"
    assert (first["stdout"], first["start_line"], first["end_line"]) == ("one\ntwo", 0, 2)
    assert (second["stdout"], second["start_line"], second["end_line"]) == ("", 2, 2)
    assert first["runner_ident"] == "job1"
    assert datetime.datetime.fromisoformat(first["created"]).utcoffset() == datetime.timedelta(0)


def test_oversized_res_is_truncated_with_a_visible_marker(
    plugin: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONTAINERRUNNER_MAX_EVENT_RES", "50")
    recorder = _recorder(plugin, tmp_path)

    def written(res: object, text: str = "") -> Any:
        recorder.finish(recorder.begin("runner_on_ok", {"res": res}), text)
        name = next(
            f for f in os.listdir(recorder.events_dir) if f.startswith(f"{recorder.counter}-")
        )
        return json.loads((Path(recorder.events_dir) / name).read_text())["event_data"]["res"]

    res = {"stdout": "x" * 5000, "rc": 3, "changed": True, "msg": None, "big": list(range(99))}
    size = len(json.dumps(res))
    assert written(res) == {
        "_containerrunner_truncated": True,
        "size": size,
        "limit": 50,
        "stdout": "x" * 1024,
        "rc": 3,
        "changed": True,
        "msg": None,
    }
    assert written(["not", "a", "mapping"] * 20)["_containerrunner_truncated"] is True
    assert written({"stdout": "x"}) == {"stdout": "x"}
    # a long event (its output) with a small res keeps the res whole
    assert written({"stdout": "x"}, "y" * 500 + "\n") == {"stdout": "x"}


def test_the_cached_process_id_follows_a_fork(plugin: ModuleType) -> None:
    # the Display hooks tell the parent (which records events) from a forked worker (which
    # must not) by this id, kept without a getpid() system call per call
    assert plugin._pid() == os.getpid()
    read_fd, write_fd = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child's report goes through the pipe
        try:
            os.write(write_fd, f"{plugin._pid()} {os.getpid()}".encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    try:
        seen, real = os.read(read_fd, 100).decode().split()
    finally:
        os.close(read_fd)
        os.waitpid(child, 0)
    assert int(seen) == int(real) == child
    assert plugin._pid() == os.getpid() != child


class FakeDisplay:
    """The Display methods the plugin hooks; display() prints a line on sys.stdout."""

    def display(self, msg: str, color: str | None = None, log_only: bool = False) -> None:
        sys.stdout.write(msg + "\n")

    def debug(self, msg: str, host: str | None = None) -> None:
        self.display(msg)

    def warning(self, msg: str) -> None:
        self.display(msg)


@pytest.mark.parametrize("debug", [False, True])
def test_debug_is_hooked_only_when_ansible_debug_is_on(
    plugin: ModuleType,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    debug: bool,
) -> None:
    monkeypatch.setattr(plugin.C, "DEFAULT_DEBUG", debug)
    monkeypatch.setenv("CONTAINERRUNNER_ARTIFACT_DIR", str(tmp_path))
    monkeypatch.delenv("CONTAINERRUNNER_EVENT_FIFO", raising=False)
    display = FakeDisplay()
    debug_method = display.debug
    assert plugin._get_recorder(display) is not None
    assert (display.debug == debug_method) is not debug  # untouched without ANSIBLE_DEBUG
    display.warning("careful")
    display.debug("details")
    events = [json.loads(p.read_text()) for p in (tmp_path / "job_events").iterdir()]
    kinds = {e["stdout"]: e["event"] for e in events}
    # outside a callback, what debug() prints is a "debug" event only when it is hooked
    assert kinds == {"careful": "warning", "details": "debug" if debug else "verbose"}
    assert capsys.readouterr().out == "careful\ndetails\n"


class FakeTask:
    def __init__(self, uuid: str, name: str) -> None:
        self._uuid, self.name, self.action = uuid, name, "debug"
        self.args: dict[str, Any] = {}
        self.no_log, self._role, self.role_name = False, None, ""

    def get_path(self) -> str:
        return f"site.yml:{self._uuid}"


def test_task_context_is_kept_for_the_plays_task_not_for_each_results_copy(
    plugin: ModuleType,
) -> None:
    holder = type(
        "Holder", (), {"_task_context": staticmethod(plugin.CallbackModule._task_context)}
    )()
    holder._cr_task_ctx = {}
    context = plugin.CallbackModule._cached_task_context
    task = FakeTask("t1", "Task 1")
    first = context(holder, task)
    assert first["task"] == "Task 1" and first["task_path"] == "site.yml:t1"
    assert context(holder, task) is first  # the play's task again: from the cache
    for host in range(300):  # a copy per result (ansible-core 2.19), its own name
        copy = FakeTask("t1", f"Task 1 on h{host}")
        assert context(holder, copy)["task"] == f"Task 1 on h{host}"
    assert list(holder._cr_task_ctx) == ["t1"]  # no copy held
    assert context(holder, task) is first

"""Issue 11, item 4: bad input, fuzzed. Every case ends in a containerrunner error naming the
offending input or in a normal job, never in another exception (a traceback from inside), a
hang, or a change to an earlier run's artifacts.

Hypothesis runs a fixed, derandomized example budget per test (40; the environment variable
CONTAINERRUNNER_FUZZ_EXAMPLES sets another, e.g. 2000 for a long trial). Building a job starts
nothing, so most cases only build; the ident cases run the job (a local `true`) when the ident
is accepted, the event-line cases run a scripted callback through the real Runner. One real
run is made first and its artifacts are hashed before and after the whole module.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import string
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import containerrunner
from containerrunner.cli.main import main
from containerrunner.config.execution import ExecutionOptions
from containerrunner.errors import ContainerRunnerError
from containerrunner.interface import command_runner, run_runner
from containerrunner.job import Job
from containerrunner.runner import Runner
from containerrunner.tempdirs import runtime_dir_path

FUZZ_EXAMPLES = int(os.environ.get("CONTAINERRUNNER_FUZZ_EXAMPLES", "40"))
FUZZ = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _tree_digest(root: Path) -> dict[str, str]:
    digests = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            digests[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
        elif path.is_dir():
            digests[str(path.relative_to(root)) + "/"] = oct(path.stat().st_mode)
    return digests


@pytest.fixture(scope="module")
def earlier(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private data dir with one real run's artifacts, unchanged by the whole module."""
    pdd = tmp_path_factory.mktemp("fuzz-pdd")
    (pdd / "project").mkdir()
    (pdd / "project" / "site.yml").write_text("- hosts: localhost\n  tasks: []\n")
    _out, err, rc = containerrunner.run_command(
        "true", private_data_dir=str(pdd), ident="earlier", process_isolation=False
    )
    assert rc == 0, err
    run_dir = pdd / "artifacts" / "earlier"
    before = _tree_digest(run_dir)
    assert before
    yield pdd
    assert _tree_digest(run_dir) == before, "an earlier run's artifacts changed"


def _named(exc: ContainerRunnerError, *names: str) -> bool:
    message = str(exc)
    return any(name and name in message for name in names)


# ---- env/ files ------------------------------------------------------------------------------
ENV_FILES = ("envvars", "extravars", "settings", "passwords", "cmdline", "ssh_key")

garbage = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(str.encode),
    st.sampled_from(
        [
            b"{",
            b"[1, 2",
            b"- a\n- b\n",
            b"42",
            b"null",
            b"key: [unclosed",
            b"\x00\xff\xfe",
            b"a: !!python/object/apply:os.system ['true']",
            b"&a [*a]",
            b'{"k": {"nested": [1, {"x": null}]}}',
            b"k: 1\nk: 2\n",
            b"? [a, b]\n: c\n",
        ]
    ),
    st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20)),
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=10,
    ).map(lambda value: json.dumps(value).encode()),
    st.integers(min_value=100_000, max_value=2_000_000).map(lambda n: b"k: " + b"v" * n),
)


@FUZZ
@given(name=st.sampled_from(ENV_FILES), content=garbage)
@example(name="envvars", content=b"- a\n- b\n")
@example(name="settings", content=b"42")
@example(name="passwords", content=b"\x00\xff\xfe")
def test_env_files(earlier: Path, name: str, content: bytes) -> None:
    env = earlier / "env"
    env.mkdir(exist_ok=True)
    (env / name).write_bytes(content)
    try:
        run_runner(
            {"private_data_dir": str(earlier), "playbook": "site.yml", "process_isolation": False}
        )
    except ContainerRunnerError as exc:
        assert _named(exc, name), exc
    finally:
        shutil.rmtree(env)


# ---- helper kwargs ---------------------------------------------------------------------------
KNOWN = sorted(
    [
        "playbook",
        "module",
        "module_args",
        "host_pattern",
        "role",
        "ident",
        "inventory",
        "limit",
        "forks",
        "verbosity",
        "extravars",
        "envvars",
        "passwords",
        "settings",
        "cmdline",
        "tags",
        "skip_tags",
        "timeout",
        "rotate_artifacts",
        "artifact_dir",
        "container_volume_mounts",
        "container_options",
        "container_image",
        "process_isolation_executable",
        "json_mode",
        "quiet",
        "runner_mode",
        "event_handler",
        "status_handler",
        "omit_event_data",
        "fact_cache_type",
        "directory_isolation_base_path",
        "binary",
        "ssh_key",
        "suppress_output_file",
    ]
)
values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.binary(max_size=10),
    st.lists(st.one_of(st.integers(), st.text(max_size=5)), max_size=3),
    st.dictionaries(st.text(max_size=5), st.one_of(st.integers(), st.text(max_size=5)), max_size=3),
    st.just(object()),
)


@FUZZ
@given(kwargs=st.dictionaries(st.sampled_from(KNOWN), values, min_size=1, max_size=4))
def test_wrong_typed_kwargs(earlier: Path, kwargs: dict[str, Any]) -> None:
    base: dict[str, Any] = {"private_data_dir": str(earlier), "process_isolation": False}
    try:
        run_runner({**base, **kwargs})
    except ContainerRunnerError as exc:
        assert _named(exc, *kwargs, "playbook", "module", "role", "private"), exc


@FUZZ
@given(name=st.text(string.ascii_letters + "_", min_size=1, max_size=20))
def test_unknown_kwarg_names(earlier: Path, name: str) -> None:
    if name in KNOWN or name in containerrunner.config.run.RUN_KWARGS:
        return
    kwargs = {"private_data_dir": str(earlier), "playbook": "site.yml", name: 1}
    with pytest.raises(ContainerRunnerError) as caught:
        run_runner(kwargs)
    assert name in str(caught.value)


# ---- idents ----------------------------------------------------------------------------------
idents = st.one_of(
    st.sampled_from(["..", ".", "/", "a/b", "../earlier", "a\x00b", "x" * 10_000, "", " ", "-rf"]),
    st.text(max_size=40),
    st.text(alphabet="./\x00-_ ", max_size=10),
)


@FUZZ
@given(ident=idents)
@example(ident="x" * 10_000)  # found: OSError ENAMETOOLONG from inside (now ConfigurationError)
@example(ident="earlier")  # the earlier run's own ident: replaced only by a run that starts
def test_idents(earlier: Path, ident: str) -> None:
    if ident == "earlier":
        return  # reuse replaces an ident's artifacts by design (python-api.md)
    try:
        runner = command_runner(
            "true",
            [],
            {"private_data_dir": str(earlier), "ident": ident, "process_isolation": False},
            "run_command",
        )
    except ContainerRunnerError as exc:
        assert "ident" in str(exc), exc
        return
    assert runner.run() == ("successful", 0)
    art = Path(runner.config.artifact_dir).resolve()
    assert art.parent == (earlier / "artifacts").resolve()  # inside artifacts/, never beside it
    shutil.rmtree(art)


# ---- volume mount specs ----------------------------------------------------------------------
mount_part = st.one_of(
    st.sampled_from(["", "/", "/tmp", "relative", "..", ":", "ro", "rw", "Z", "z,ro", "x" * 5000]),
    st.text(max_size=15),
)


@FUZZ
@given(
    specs=st.lists(
        st.one_of(
            st.lists(mount_part, min_size=1, max_size=4).map(":".join),
            st.integers(),
            st.none(),
        ),
        min_size=1,
        max_size=3,
    )
)
@example(specs=["/tmp:/x:ro:extra"])
@example(specs=[":::"])
def test_volume_mount_specs(earlier: Path, specs: list[Any]) -> None:
    kwargs = {
        "private_data_dir": str(earlier),
        "playbook": "site.yml",
        "process_isolation": True,
        "process_isolation_executable": "podman",
        "container_image": "example.invalid/ee:1",
        "container_volume_mounts": specs,
    }
    try:
        config, _handlers = containerrunner.RunnerConfig.from_run_kwargs(**kwargs)
        config.prepare()
    except ContainerRunnerError as exc:
        assert _named(exc, "container_volume_mounts", "volume", "mount", *map(str, specs)), exc


# ---- CLI argv ------------------------------------------------------------------------------
token = st.one_of(
    st.sampled_from(
        [
            "-p",
            "--playbook",
            "-m",
            "-a",
            "--hosts",
            "-i",
            "--ident",
            "--limit",
            "--rotate-artifacts",
            "-j",
            "-q",
            "-v",
            "--debug",
            "--container-volume-mount",
            "--process-isolation",
            "--container-image",
            "--cmdline",
            "--help",
            "--",
            "-",
            "=",
            "--ident=",
            "\x00",
        ]
    ),
    st.text(min_size=1, max_size=12),
).filter(lambda t: "/" not in t and t not in (".", ".."))


@FUZZ
@given(
    command=st.sampled_from(["run", "stop", "is-alive", "images", "nonsense", "", "-x"]),
    rest=st.lists(token, max_size=6),
)
@example(command="run", rest=["x", "--rotate-artifacts", "abc"])
@example(command="is-alive", rest=["0"])  # exit 1 without a message is is-alive's "no"
def test_cli_argv(tmp_path: Path, command: str, rest: list[str]) -> None:
    """In an empty cwd, with no '/' in any token: no private data dir exists, nothing runs."""
    if command == "images" and rest[:1] != ["--help"]:
        rest = ["--help", *rest]  # `images list` would ask the engines: not this test's subject
    err = io.StringIO()
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main([command, *rest])
    finally:
        os.chdir(cwd)
    text = err.getvalue()
    assert "Traceback" not in text
    assert code in (0, 1, 2), (code, text)
    if code and not (command == "is-alive" and code == 1 and not text):  # 1: "not alive"
        assert text.count("\n") == 1 and text.startswith("containerrunner: error: "), text
    assert os.listdir(tmp_path) == []


# ---- malformed event lines -------------------------------------------------------------------
FEEDER = r"""
import json, os, sys
MARK = "\x1b_containerrunner-events\x1b\\"
sys.stdout.write(MARK); sys.stdout.flush(); sys.stderr.write(MARK); sys.stderr.flush()
fd = os.open(os.environ["CONTAINERRUNNER_EVENT_FIFO"], os.O_WRONLY)
with open(sys.argv[1]) as handle:
    garbage = [bytes.fromhex(h) for h in json.load(handle)]
for n, line in enumerate(garbage, start=1):
    os.write(fd, b"\n" + line)  # may be cut short: the next record starts with a newline
    event = {"uuid": "u%d" % n, "counter": n, "event": "verbose", "stdout": "",
             "start_line": 0, "end_line": 0, "event_data": {}}
    os.write(fd, b"\n" + json.dumps(event).encode() + b"\n")
"""
event_lines = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=100).map(str.encode),
    st.dictionaries(
        st.sampled_from(["counter", "uuid", "event", "start_line", "end_line", "event_data"]),
        st.one_of(
            st.none(), st.integers(), st.text(max_size=300), st.booleans(), st.lists(st.none())
        ),
    ).map(lambda d: json.dumps(d).encode()),
    st.sampled_from(
        [
            b"{",
            b"[]",
            b"null",
            b'{"counter": "x", "uuid": "a"}',
            b'{"counter": 1, "uuid": "../../x"}',
            b'{"counter": 1, "uuid": "' + b"u" * 10_000 + b'"}',
            b'{"counter": 1e400, "uuid": "a"}',
            b"\xff" * 70000,
        ]
    ),
)


@FUZZ
@given(garbage_lines=st.lists(event_lines, min_size=1, max_size=6))
@example(garbage_lines=[b'{"counter": "x", "uuid": "a"}'])  # found: ValueError in the sequencer
@example(
    garbage_lines=[
        b'{"counter": 1, "uuid": "a", "event": "runner_on_ok", "event_data": {"host": [1], '
        b'"task": {}, "task_uuid": [], "play": 3, "res": [1]}}',
        b'{"counter": 2, "uuid": "b", "event": "playbook_on_stats", "event_data": {"ok": 3}}',
        b'{"counter": 3, "uuid": "c", "event": "playbook_on_task_start", "event_data": '
        b'{"name": [], "uuid": {}, "task_uuid": 1}}',
    ]
)
@example(garbage_lines=[b'{"counter": 1, "uuid": "' + b"u" * 10_000 + b'"}'])  # ENAMETOOLONG
def test_malformed_event_lines_cost_only_themselves(
    tmp_path_factory: pytest.TempPathFactory, garbage_lines: list[bytes]
) -> None:
    work = tmp_path_factory.mktemp("feed")
    (work / "feed.py").write_text(FEEDER)
    (work / "garbage.json").write_text(json.dumps([line.hex() for line in garbage_lines]))
    seen: list[str] = []
    job = Job(
        command=(sys.executable, str(work / "feed.py"), str(work / "garbage.json")),
        execution=ExecutionOptions(host_cwd=str(work)),
        ident="feed",
        artifact_base=str(work / "art"),
        runtime_dir=runtime_dir_path("feed"),
        events=True,
    )
    runner = Runner(SimpleNamespace(job=job), event_handler=lambda e: seen.append(e.get("uuid")))
    assert runner.run() == ("successful", 0)
    expected = [f"u{n}" for n in range(1, len(garbage_lines) + 1)]
    assert [u for u in seen if u in expected] == expected  # every real event, once, in order
    shutil.rmtree(work)


# ---- conflicting options ---------------------------------------------------------------------
# Each case: options that cannot go together (or that ansible-runner accepts together), the
# option names an error must name (all of them), and whether an error is required. Derived
# from config/run.py, config/execution.py, jobs.py and session.check_session_options.
Conflict = tuple[str, dict[str, Any], tuple[str, ...], bool]
SESSION = object()  # replaced by a (not started) podman session in the test
STREAM = {"container_transport": "stream", "process_isolation": True}
CONFLICTS: list[Conflict] = [
    ("run", {"module": "ping", "host_pattern": "all"}, ("playbook", "module"), True),
    ("run", {"role": "r"}, ("playbook", "role"), True),
    ("run", {"playbook": None, "module": "ping", "role": "r"}, ("module", "role"), True),
    ("run", {"playbook": None, "module": "ping"}, ("module", "host_pattern"), True),
    ("run", {"module_args": "x"}, ("module_args", "playbook"), True),
    ("run", {"host_pattern": "all"}, ("host_pattern", "playbook"), True),
    (
        "run",
        {"playbook": None, "module": "ping", "hosts": "a", "host_pattern": "b"},
        ("host_pattern", "hosts"),
        True,
    ),
    (
        "run",
        {"playbook": None, "module": "ping", "host_pattern": "all", "tags": "t"},
        ("tags", "module"),
        True,
    ),
    (
        "run",
        {"playbook": None, "module": "ping", "host_pattern": "all", "skip_tags": "t"},
        ("skip_tags", "module"),
        True,
    ),
    ("run", {"role_vars": {"a": 1}}, ("role_vars", "playbook"), True),
    ("run", {"timeout": 5, "job_timeout": 6}, ("timeout", "job_timeout"), True),
    ("run", {"timeout": -1}, ("timeout",), True),
    ("run", {"idle_timeout": -3}, ("idle_timeout",), True),
    ("run", {"envvars": {"A": "1"}, "secret_envvars": ["B"]}, ("secret_envvars", "envvars"), True),
    (
        "run",
        {"container_network": "host", "container_options": ["--network=none"]},
        ("container_network", "container_options"),
        True,
    ),
    (
        "run",
        {"process_isolation": True, "scheduler": "swarm", "passwords": {"x": "y"}},
        ("scheduler", "passwords"),
        True,
    ),
    (
        "run",
        {"process_isolation": True, "scheduler": "swarm", "ssh_key": "KEY"},
        ("scheduler", "ssh_key"),
        True,
    ),
    (
        "run",
        {**STREAM, "session": SESSION},
        ("container_transport", "session"),
        True,
    ),
    (
        "run",
        {"session": SESSION, "process_isolation_executable": "docker"},
        ("process_isolation_executable", "session"),
        True,
    ),
    (
        "run",
        {"session": SESSION, "container_image": "example.invalid/other:1"},
        ("container_image", "session"),
        True,
    ),
    (
        "run",
        {"session": SESSION, "container_options": ["--cap-add=ALL"]},
        ("container_options", "session"),
        True,
    ),
    (
        "run",
        {"session": SESSION, "container_network": "host"},
        ("container_network", "session"),
        True,
    ),
    ("run", {"streamer": "worker"}, ("streamer",), True),
    ("run", {"directory_isolation_base_path": "/tmp"}, ("directory_isolation_base_path",), True),
    # ansible-runner accepts these together; so may containerrunner (or name both)
    (
        "run",
        {"process_isolation": False, "container_image": "example.invalid/ee:1"},
        ("process_isolation", "container_image"),
        False,
    ),
    (
        "run",
        {"process_isolation": False, "container_volume_mounts": ["/tmp:/tmp"]},
        ("process_isolation", "container_volume_mounts"),
        False,
    ),
    (
        "run",
        {"process_isolation": False, "container_options": ["--cap-add=ALL"]},
        ("process_isolation", "container_options"),
        False,
    ),
    (
        "run",
        {"process_isolation": False, "container_transport": "stream", "passwords": {"x": "y"}},
        ("process_isolation", "container_transport"),
        False,
    ),
    (
        "run",
        {"session": SESSION, "process_isolation": False},
        ("process_isolation", "session"),
        False,
    ),
    ("run", {"json_mode": True, "quiet": True}, ("json_mode", "quiet"), False),
    ("run", {"json_mode": True, "suppress_output_file": True}, ("json_mode", "quiet"), False),
    (
        "run",
        {"omit_event_data": True, "only_failed_event_data": True},
        ("omit_event_data", "only_failed_event_data"),
        False,
    ),
    (
        "run",
        {"runner_mode": "subprocess", "passwords": {"x": "y"}},
        ("runner_mode", "passwords"),
        False,
    ),
    ("run", {"timeout": 5, "job_timeout": 5}, ("timeout", "job_timeout"), False),
    (
        "run_command",
        {**STREAM, "input_fd": 0},
        ("container_transport", "input_fd"),
        True,
    ),
    (
        "run_command",
        {"process_isolation": True, "scheduler": "swarm", "passwords": {"x": "y"}},
        ("scheduler", "passwords"),
        True,
    ),
    ("run_command", {"runner_mode": "pexpect", "input_fd": 0}, ("runner_mode", "input_fd"), True),
    (
        "run_command",
        {"session": SESSION, "process_isolation_executable": "docker"},
        ("process_isolation_executable", "session"),
        True,
    ),
    ("run_command", {"timeout": -0.5}, ("timeout",), True),
    (
        "run_command",
        {"process_isolation": False, "container_image": "example.invalid/ee:1"},
        ("process_isolation", "container_image"),
        False,
    ),
    ("run_command", {"json_mode": True, "quiet": True}, ("json_mode", "quiet"), False),
]
#: options that go with any of the cases above, drawn as noise around them
BENIGN: dict[str, Any] = {
    "quiet": True,
    "json_mode": True,
    "suppress_output_file": True,
    "rotate_artifacts": 2,
    "verbosity": 1,
    "forks": 2,
    "ident": "conflict",
}


@pytest.fixture
def not_started_session(tmp_path: Path) -> Iterator[containerrunner.Session]:
    """A podman Session that looks started (nothing runs: building a job starts nothing)."""
    from containerrunner.session import make_engine

    session = containerrunner.Session(mounts=[str(tmp_path)])
    session._engine = make_engine("podman", "podman")
    session._runtime_dir = str(tmp_path)
    session._attached = True  # close() only lets go
    yield session


@pytest.mark.parametrize("case", CONFLICTS, ids=lambda case: "+".join(case[2]))
@settings(FUZZ, max_examples=max(4, FUZZ_EXAMPLES // 8))
@given(
    noise=st.dictionaries(st.sampled_from(sorted(BENIGN)), st.just(None), max_size=3),
    isolated=st.booleans(),
)
@example(noise={}, isolated=False)  # found: "tags only applies to ..." did not name the module run
def test_conflicting_options(
    earlier: Path,
    not_started_session: containerrunner.Session,
    case: Conflict,
    noise: dict[str, None],
    isolated: bool,
) -> None:
    helper, conflict, names, required = case
    options: dict[str, Any] = {"private_data_dir": str(earlier)}
    if isolated:
        options |= {"process_isolation": True, "process_isolation_executable": "podman"}
    options |= {name: BENIGN[name] for name in noise}
    options |= {
        name: not_started_session if value is SESSION else value for name, value in conflict.items()
    }
    try:
        if helper == "run":
            options.setdefault("playbook", "site.yml")
            options = {name: value for name, value in options.items() if value is not None}
            run_runner(options)
        else:
            command_runner("true", [], options, "run_command")
    except ContainerRunnerError as exc:
        message = str(exc)
        assert all(name in message for name in names), (names, message)
        return
    assert not required, f"{conflict} was accepted"

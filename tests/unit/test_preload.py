"""The session preloader's protocol without an engine: the real preloader runs on the host, a
stand-in `ansible-config` (a Python script with this interpreter's shebang) is what it forks,
and the process layer talks to it as to one in a session's container."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from containerrunner.isolation.engine import Engine
from containerrunner.isolation.types import ExecSpec, Invocation
from containerrunner.preload import PRELOADER
from containerrunner.process import ProcessControls, run_process
from containerrunner.process.preload import PRELOAD_LOG
from containerrunner.session import Session
from tests.integration.support import short_temp_dir

# an engine that cannot run: a stop's `exec kill` fails (logged); the socket's signal stops it
NO_ENGINE = Engine(name="podman", executable="/nonexistent/podman")
LIMIT = 60.0  # seconds; only so that a bug fails the test instead of hanging it

FAKE_CLI = """#!{python}
import os, sys
print("argv", sys.argv[1:])
print("cwd", os.getcwd())
print("forks", os.environ.get("ANSIBLE_FORKS"))
print("stdin", repr(sys.stdin.read()))
print("to stderr", file=sys.stderr)
if sys.argv[1:] == ["wait"]:
    print("waiting", flush=True)
    sys.stdin = open(os.environ["FIFO"])
    sys.stdin.read()
sys.exit(int(os.environ.get("RC", "0")))
"""


@pytest.fixture
def preloader(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A running preloader on the host: (its socket, the dir of the stand-in CLI)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    cli = bin_dir / "ansible-config"
    cli.write_text(FAKE_CLI.format(python=sys.executable))
    cli.chmod(0o755)
    with short_temp_dir("cr-pl") as run_dir:
        sock = str(run_dir / "preload.sock")
        log = run_dir / PRELOAD_LOG
        with log.open("w") as log_file:
            proc = subprocess.Popen(
                [sys.executable, PRELOADER, sock],
                stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file,
                env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"},
            )  # fmt: skip
        try:
            yield sock, bin_dir
        finally:
            proc.kill()
            proc.wait()


def call(
    sock: str | None, command: list[str], cwd: str, env: dict[str, str], cancel_on: str = ""
) -> tuple[int, str, str, str]:
    """(rc, stdout, stderr, outcome) of `command` asked of the preloader at `sock`, canceled
    once `cancel_on` is in its stdout; its fallback (the "exec" argv) echoes `fallback`."""
    spec = ExecSpec(
        engine=NO_ENGINE, container="c", workdir=cwd, pidfile=os.path.join(cwd, "exec.pid"),
        env_names=tuple(sorted(env)), command=tuple(command), preload_socket=sock,
    )  # fmt: skip
    inv = Invocation(
        argv=("sh", "-c", "echo fallback"), cwd=cwd, env={**os.environ, **env},
        container_name=None, engine=NO_ENGINE, exec_spec=spec,
    )  # fmt: skip
    out: list[str] = []
    err: list[str] = []
    cancel = threading.Event()

    def stdout(text: str) -> None:
        out.append(text)
        if cancel_on and cancel_on in "".join(out):
            cancel.set()

    controls = ProcessControls(
        stdout=stdout, stderr=err.append, cancel_event=cancel, termination_grace=LIMIT
    )
    result = run_process(inv, controls)
    return result.rc, "".join(out), "".join(err), result.outcome


def test_a_preloaded_call_gets_its_own_argv_env_cwd_and_rc(
    preloader: tuple[str, Path], tmp_path: Path
) -> None:
    sock, _bin = preloader
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    rc, out, err, _ = call(sock, ["ansible-config", "dump"], str(first), {"ANSIBLE_FORKS": "731"})
    assert (rc, err) == (0, "to stderr\n")
    assert out == f"argv ['dump']\ncwd {first}\nforks 731\nstdin ''\n"
    assert (first / "exec.pid").read_text().strip().isdigit()
    # nothing of the first call is left in the second: env, cwd
    rc, out, _err, outcome = call(sock, ["ansible-config", "x"], str(second), {"RC": "3"})
    assert (rc, outcome) == (3, "failed")
    assert out == f"argv ['x']\ncwd {second}\nforks None\nstdin ''\n"
    log = Path(sock).with_name(PRELOAD_LOG).read_text()
    assert log.count("served ansible-config") == 2
    assert "731" not in log and "dump" not in log  # no value, no argument


def test_what_the_preloader_does_not_serve_falls_back_to_exec(
    preloader: tuple[str, Path], tmp_path: Path
) -> None:
    sock, _bin = preloader
    # a command the preloader does not run, and a session without a preloader
    assert call(sock, ["ansible-playbook", "x"], str(tmp_path), {})[1] == "fallback\n"
    missing = str(tmp_path / "none.sock")
    assert call(missing, ["ansible-config", "dump"], str(tmp_path), {})[1] == "fallback\n"


def test_a_canceled_preloaded_call_is_stopped_through_the_socket(
    preloader: tuple[str, Path], tmp_path: Path
) -> None:
    sock, _bin = preloader
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    done: list[tuple[int, str, str, str]] = []
    worker = threading.Thread(
        target=lambda: done.append(
            call(
                sock,
                ["ansible-config", "wait"],
                str(tmp_path),
                {"FIFO": str(fifo)},
                cancel_on="waiting",
            )
        ),
        daemon=True,
    )
    worker.start()
    worker.join(LIMIT)
    assert done, "the call did not end"
    rc, out, _err, outcome = done[0]
    assert outcome == "canceled"
    assert "waiting" in out
    assert rc == 128 + signal.SIGTERM  # SIGTERM through the socket ended it
    pid = int((tmp_path / "exec.pid").read_text())
    with pytest.raises(ProcessLookupError):  # its process group is gone
        os.killpg(pid, 0)


def test_a_session_offers_its_preloader_for_the_helper_clis_only() -> None:
    session = Session(image="localhost/x", engine="podman", mounts=[])
    session._attached, session._runtime_dir = True, "/tmp/run"  # as Session.attach makes it
    session._engine = NO_ENGINE
    sock = "/tmp/run/preload.sock"
    for command in ("ansible-doc", "ansible-inventory", "ansible-config"):
        assert session.preload_socket_for([command, "x"]) == sock
    assert session.preload_socket_for(["ansible-playbook", "site.yml"]) is None
    assert session.preload_socket_for(["ansible-doc"], tty=True) is None
    assert session.preload_socket_for(["ansible-doc"], interactive=True) is None
    session.preload = False
    assert session.preload_socket_for(["ansible-doc"]) is None


ROUTING_CHECK = """
import os, sys
sys.path.insert(0, os.path.dirname({preloader!r}))
import preloader
assert preloader.cache_builtin_routing()
assert "ansible.constants" not in sys.modules  # nothing of the configuration read
import ansible, yaml
from ansible.utils.collection_loader import _collection_finder
hook = _collection_finder._meta_yml_to_dict
path = os.path.join(os.path.dirname(ansible.__file__), "config", preloader.BUILTIN_ROUTING)
raw = open(path, "rb").read()
fresh = yaml.load(raw, Loader=yaml.BaseLoader)
pid = os.fork()
if pid == 0:  # a child: the parsed dict once, then parsed again, as in a fresh process
    first, second = hook(raw, ("ansible.builtin", "runtime.yml")), hook(raw, None)
    os._exit(0 if first == second == fresh and first is not second else 1)
assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
first = hook(raw, None)  # the parent's cache is still whole: the child's use was its own
assert first == fresh and hook(raw, None) is not first
assert hook(b"plugin_routing: {{}}", None) == {{"plugin_routing": {{}}}}  # other data: parsed
print("ok")
"""


def test_the_builtin_routing_is_parsed_once_in_the_preloader_and_once_per_child() -> None:
    pytest.importorskip("ansible")
    code = ROUTING_CHECK.format(preloader=PRELOADER)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=LIMIT
    )
    assert (done.returncode, done.stdout.strip()) == (0, "ok"), done.stderr

"""Docker Swarm backend: one service per job, the payload as swarm secrets.

The service (`--replicas 1 --restart-condition none --init`, our labels) runs a small
standard-library wrapper (`WRAPPER`) in the EE image: it reads the job's payload from the
secrets mounted at /run/secrets/cr-payload-NNN (in order; a payload over the secret size limit
is split), the bootstrap's argv and the job's environment from /run/secrets/cr-meta, runs the
bootstrap with the payload on its stdin and writes its stdout as text lines
`CRS SEQ BASE64` (log drivers keep text lines, not binary), then `CRS END RC`. The adapter
reads them with `docker service logs -f --raw`, drops duplicates by SEQ, and removes the
service and its secrets at the end, on cancel and timeout; services of a dead caller are
removed by `reap` at the next job's start.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from containerrunner.cluster.base import (
    AdapterSpec,
    ClusterJobRef,
    SchedulerOptions,
    adapter_argv,
)
from containerrunner.cluster.lines import parse_line, split_payload, wrapper_source
from containerrunner.isolation.engine import LABEL, LABEL_IDENT, LABEL_OWNER_HOST, LABEL_OWNER_PID

#: swarm refuses secrets over 500 KB; parts stay under it
SECRET_PART = 480 * 1024
#: states of a task that has ended
ENDED = {"complete", "failed", "shutdown", "rejected", "orphaned", "remove"}
#: seconds to keep reading the log once the task ended without its END line
LOG_GRACE = 10.0

WRAPPER = wrapper_source(
    'd = "/run/secrets"\n'
    'meta = json.load(open(os.path.join(d, "cr-meta")))\n'
    'parts = sorted(n for n in os.listdir(d) if n.startswith("cr-payload-"))\n'
    'data = b"".join(open(os.path.join(d, n), "rb").read() for n in parts)\n'
)


@contextlib.contextmanager
def private_docker_config() -> Iterator[dict[str, str]]:
    """An environment whose `DOCKER_CONFIG` is a fresh 0700 dir (in the temp dir: the
    adapter's is the job's runtime dir), removed on exit: `docker login` stores the registry
    credential there for the one `service create --with-registry-auth` that sends it to the
    manager, never in the user's ~/.docker/config.json."""
    path = tempfile.mkdtemp(prefix="cr-swarm-auth-")
    try:
        yield {**os.environ, "DOCKER_CONFIG": path}
    finally:
        shutil.rmtree(path, ignore_errors=True)


def service_name(ident: str) -> str:
    return f"cr-{ident}"[:63]


class SwarmBackend:
    name = "swarm"

    def __init__(self, options: SchedulerOptions) -> None:
        self.options = options
        self._rc: dict[str, int] = {}

    # the docker CLI against the swarm manager

    def docker_argv(self, *args: str) -> list[str]:
        host = ["-H", self.options.engine_url] if self.options.engine_url else []
        return ["docker", *host, *args]

    def _docker(
        self,
        *args: str,
        input: bytes | None = None,
        check: bool = True,
        env: dict[str, str] | None = None,
    ) -> str:
        done = subprocess.run(
            self.docker_argv(*args), input=input, capture_output=True, check=False, env=env
        )
        if check and done.returncode != 0:
            raise RuntimeError(
                f"docker {args[0]} {args[1] if len(args) > 1 else ''} failed "
                f"(rc {done.returncode}): {done.stderr.decode(errors='replace').strip()}"
            )
        return done.stdout.decode(errors="replace")

    def adapter_argv(self, spec_path: str) -> list[str]:
        return adapter_argv(spec_path)

    def create_argv(self, spec: AdapterSpec, secrets: list[tuple[str, str]]) -> list[str]:
        """`docker service create ...` for `spec` with (secret name, target) pairs (pure)."""
        opts = self.options
        argv = [
            "service",
            "create",
            "--detach",
            "--quiet",
            "--name",
            service_name(spec.ident),
            "--replicas",
            "1",
            "--restart-condition",
            "none",
            "--init",
            "--no-healthcheck",
        ]
        for key, value in sorted(spec.labels.items()):
            argv += ["--label", f"{key}={value}", "--container-label", f"{key}={value}"]
        for name, target in secrets:
            argv += ["--secret", f"source={name},target={target}"]
        for constraint in opts.constraints:
            argv += ["--constraint", constraint]
        if opts.cpu_limit:
            argv += ["--limit-cpu", opts.cpu_limit]
        if opts.memory_limit:
            argv += ["--limit-memory", opts.memory_limit]
        if opts.registry_auth is not None:
            argv.append("--with-registry-auth")
        for key, value in sorted(opts.extra.items()):
            argv += [f"--{key}", value] if value else [f"--{key}"]
        argv += [spec.image, "python3", "-c", WRAPPER]
        return argv

    def submit(self, spec: AdapterSpec, payload: bytes) -> ClusterJobRef:
        name = service_name(spec.ident)
        labels = {**spec.labels}
        label_args = [a for k, v in sorted(labels.items()) for a in ("--label", f"{k}={v}")]
        secrets: list[tuple[str, str]] = []
        meta = json.dumps({"command": spec.command, "env": spec.env()}).encode()
        parts = split_payload(payload, SECRET_PART)
        chunks = [("cr-meta", meta)] + [(f"cr-payload-{i:03d}", p) for i, p in enumerate(parts)]
        ref = ClusterJobRef(
            self.name,
            name,
            int(labels.get(LABEL_OWNER_PID, "0")) or None,
            labels.get(LABEL_OWNER_HOST),
            labels,
        )
        try:
            for target, data in chunks:
                secret = f"{name}-{target}"[:64]
                self._docker("secret", "create", *label_args, secret, "-", input=data)
                secrets.append((secret, target))
            if self.options.registry_auth is None:
                self._docker(*self.create_argv(spec, secrets))
            else:
                with private_docker_config() as env:
                    auth = self.options.registry_auth
                    login = ["login", "--username", auth.username, "--password-stdin", auth.host]
                    self._docker(*login, input=auth.password.encode(), env=env)
                    self._docker(*self.create_argv(spec, secrets), env=env)
        except BaseException:
            self.remove(ref)
            raise
        return ref

    def _task_state(self, ref: ClusterJobRef) -> tuple[str | None, str | None]:
        """(current state, node) of the service's task; (None, None) before it has one."""
        out = self._docker(
            "service",
            "ps",
            "--no-trunc",
            "--format",
            "{{json .}}",
            ref.id,
            check=False,
        )
        for line in out.splitlines():
            try:
                task = json.loads(line)
            except ValueError:
                continue
            state = str(task.get("CurrentState", "")).split(" ")[0].lower()
            return state or None, task.get("Node") or None
        return None, None

    def node_of(self, ref: ClusterJobRef) -> str | None:
        return self._task_state(ref)[1]

    def follow(self, ref: ClusterJobRef) -> Iterator[bytes]:
        logs = subprocess.Popen(
            self.docker_argv("service", "logs", "--follow", "--raw", "--no-trunc", ref.id),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert logs.stdout is not None
        lines: queue.Queue[str | None] = queue.Queue()

        def pump() -> None:
            assert logs.stdout is not None
            for line in logs.stdout:
                lines.put(line)
            lines.put(None)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        seen = -1
        ended_at: float | None = None
        try:
            while True:
                try:
                    line = lines.get(timeout=1.0)
                except queue.Empty:
                    line = ""
                if line is None:
                    break
                parsed = parse_line(line) if line else None
                if parsed is not None:
                    kind, number, data = parsed
                    if kind == "end":
                        self._rc[ref.id] = number
                        return
                    if number > seen:  # a log line read twice is dropped
                        seen = number
                        yield data
                    continue
                if line:
                    continue  # the job's stderr or engine noise: not the stream
                if ended_at is None:
                    state, _node = self._task_state(ref)
                    if state in ENDED:
                        ended_at = time.monotonic()
                elif time.monotonic() - ended_at > LOG_GRACE:
                    break
        finally:
            logs.terminate()
            logs.wait()
            reader.join(timeout=5)

    def exit_code(self, ref: ClusterJobRef) -> int:
        if ref.id in self._rc:
            return self._rc[ref.id]
        out = self._docker(
            "service",
            "ps",
            "--no-trunc",
            "--format",
            "{{.ID}}",
            ref.id,
            check=False,
        ).split()
        if out:
            code = self._docker(
                "inspect", "--format", "{{.Status.ContainerStatus.ExitCode}}", out[0], check=False
            ).strip()
            if code.lstrip("-").isdigit() and int(code) != 0:
                return int(code)
        return 125

    def list_ours(self) -> list[ClusterJobRef]:
        ids = self._docker(
            "service", "ls", "--filter", f"label={LABEL}", "--format", "{{.Name}}", check=False
        ).split()
        if not ids:
            return []
        out = self._docker("service", "inspect", *ids, check=False)
        try:
            found: list[dict[str, Any]] = json.loads(out or "[]")
        except ValueError:
            return []
        refs = []
        for service in found:
            spec = service.get("Spec", {})
            labels = dict(spec.get("Labels") or {})
            pid = labels.get(LABEL_OWNER_PID, "")
            refs.append(
                ClusterJobRef(
                    self.name,
                    str(spec.get("Name")),
                    int(pid) if pid.isdigit() else None,
                    labels.get(LABEL_OWNER_HOST),
                    labels,
                )
            )
        return refs

    def remove(self, ref: ClusterJobRef) -> None:
        self._docker("service", "rm", ref.id, check=False)
        ident = ref.labels.get(LABEL_IDENT)
        filters = ["--filter", f"label={LABEL_IDENT}={ident}"] if ident else []
        names = self._docker("secret", "ls", *filters, "--format", "{{.Name}}", check=False).split()
        names = [n for n in names if n.startswith(ref.id + "-")]
        # a secret stays in use until the task's container is gone on its node
        deadline = time.monotonic() + 30
        while names:
            self._docker("secret", "rm", *names, check=False)
            left = self._docker(
                "secret", "ls", *filters, "--format", "{{.Name}}", check=False
            ).split()
            names = [n for n in left if n.startswith(ref.id + "-")]
            if not names or time.monotonic() > deadline:
                break
            time.sleep(0.5)

    def reap(self, is_alive: Callable[[ClusterJobRef], bool]) -> list[ClusterJobRef]:
        removed = []
        for ref in self.list_ours():
            if not is_alive(ref):
                self.remove(ref)
                removed.append(ref)
        return removed

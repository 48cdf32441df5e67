"""The Kubernetes backend against API responses in tests/unit/fixtures/k8s/.

The official client runs its real code paths (models, serialisation, the REST layer); only its
urllib3 pool manager is replaced by `FakePool`, which answers each request with the next
scripted fixture and records what was sent. No traffic leaves the process.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

pytest.importorskip("kubernetes")

import urllib3
from kubernetes import client

from containerrunner.cluster.base import AdapterSpec, ClusterJobRef, SchedulerOptions
from containerrunner.cluster.kubernetes import (
    SECRET_PART,
    KubernetesBackend,
    LogGapError,
    parse_timestamp,
)

FIXTURES = Path(__file__).parent / "fixtures" / "k8s"
HOST = "https://k8s.invalid:6443"


class FakePool:
    """Stands in for urllib3.PoolManager: answers from a script of (method, path, fixture)."""

    def __init__(self, script: list[tuple[str, str, str]]) -> None:
        self.script = list(script)
        self.sent: list[dict[str, Any]] = []

    def request(self, method: str, url: str, **kwargs: Any) -> urllib3.HTTPResponse:
        parts = urlsplit(url)
        body = kwargs.get("body")
        self.sent.append(
            {
                "method": method,
                "path": parts.path,
                "query": {k: v[0] for k, v in parse_qs(parts.query).items()},
                "body": json.loads(body) if body else None,
            }
        )
        assert self.script, f"unexpected request {method} {url}"
        want_method, want_path, fixture = self.script.pop(0)
        assert (method, parts.path) == (want_method, want_path), (method, url)
        if fixture.endswith(".txt"):
            status, data, ctype = 200, (FIXTURES / fixture).read_bytes(), "text/plain"
        else:
            recorded = json.loads((FIXTURES / fixture).read_text())
            status, ctype = recorded["status"], "application/json"
            data = json.dumps(recorded["body"]).encode()
        return urllib3.HTTPResponse(
            body=_Chunked(data),
            status=status,
            headers={"content-type": ctype},
            preload_content=kwargs.get("preload_content", True),
        )

    def clear(self) -> None:
        pass


class _Chunked:
    """A body that arrives in small pieces, as a followed log does."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self, amt: int | None = None) -> bytes:
        size = len(self.data) if amt is None else min(amt, 37)
        piece, self.data = self.data[:size], self.data[size:]
        return piece

    def close(self) -> None:
        pass

    @property
    def closed(self) -> bool:
        return not self.data


def backend(
    script: list[tuple[str, str, str]], **options: Any
) -> tuple[KubernetesBackend, FakePool]:
    config = client.Configuration(host=HOST)
    api = client.ApiClient(config)
    pool = FakePool(script)
    api.rest_client.pool_manager = pool
    opts = SchedulerOptions.from_mapping({"namespace": "jobs", **options})
    made = KubernetesBackend(opts, api_client=api)
    made.sleep = lambda _seconds: None
    made.clock = lambda: parse_timestamp("2026-12-02T20:40:07Z") or 0.0
    return made, pool


def spec(env_names: list[str] | None = None) -> AdapterSpec:
    return AdapterSpec(
        backend="kubernetes",
        options={},
        image="registry.example/ee:latest",
        command=["python3", "-c", "BOOTSTRAP"],
        labels={
            "containerrunner": "true",
            "containerrunner.ident": "abc123",
            "containerrunner.owner-pid": "4242",
            "containerrunner.owner-host": "ctl-1",
        },
        ident="abc123",
        env_names=env_names or [],
    )


PODS = "/api/v1/namespaces/jobs/pods"
SECRETS = "/api/v1/namespaces/jobs/secrets"
POD = f"{PODS}/cr-abc123"


def ref(ident: str = "abc123", name: str = "cr-abc123") -> ClusterJobRef:
    return ClusterJobRef(
        "kubernetes",
        name,
        4242,
        "ctl-1",
        {"containerrunner": "true", "containerrunner.ident": ident},
    )


def test_submit_creates_the_secret_and_the_pod_manifest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CR_TEST_TOKEN", "s3cret-marker")
    made, pool = backend(
        [("POST", SECRETS, "secret_created.json"), ("POST", PODS, "pod_created.json")],
        service_account="runner",
        image_pull_secrets=["regcred"],
        cpu_limit="0.5",
        memory_limit="256Mi",
        constraints=["disktype=ssd"],
    )
    got = made.submit(spec(["CR_TEST_TOKEN"]), b"PAYLOAD" * 10)
    assert got == ClusterJobRef("kubernetes", "cr-abc123", 4242, "ctl-1", got.labels)
    secret, pod = pool.sent[0]["body"], pool.sent[1]["body"]
    assert secret["metadata"]["name"] == "cr-abc123-p000"
    assert secret["immutable"] is True
    assert base64.b64decode(secret["data"]["data"]) == b"PAYLOAD" * 10
    meta = json.loads(base64.b64decode(secret["data"]["meta"]))
    assert meta == {
        "command": ["python3", "-c", "BOOTSTRAP"],
        "env": {"CR_TEST_TOKEN": "s3cret-marker"},
    }
    # the secret value is in the Secret only: nowhere in the pod manifest
    assert "s3cret-marker" not in json.dumps(pod)
    container = pod["spec"]["containers"][0]
    assert "env" not in container
    assert pod["spec"]["restartPolicy"] == "Never"
    assert pod["spec"]["serviceAccountName"] == "runner"
    assert pod["spec"]["imagePullSecrets"] == [{"name": "regcred"}]
    assert pod["spec"]["nodeSelector"] == {"disktype": "ssd"}
    assert container["resources"]["limits"] == {"cpu": "0.5", "memory": "256Mi"}
    assert container["image"] == "registry.example/ee:latest"
    assert container["volumeMounts"] == [
        {"name": "payload-000", "mountPath": "/run/containerrunner/payload-000", "readOnly": True}
    ]
    assert pod["spec"]["volumes"] == [
        {"name": "payload-000", "secret": {"secretName": "cr-abc123-p000", "defaultMode": 0o400}}
    ]
    assert pod["metadata"]["labels"]["containerrunner.owner-pid"] == "4242"
    assert pod["metadata"]["labels"]["containerrunner.ident"] == "abc123"


def test_a_payload_over_the_secret_limit_is_split() -> None:
    payload = bytes(range(256)) * (SECRET_PART // 256 * 2 + 10)
    made, pool = backend(
        [("POST", SECRETS, "secret_created.json")] * 3 + [("POST", PODS, "pod_created.json")]
    )
    made.submit(spec(), payload)
    secrets = [sent["body"] for sent in pool.sent[:3]]
    assert [s["metadata"]["name"] for s in secrets] == [f"cr-abc123-p00{i}" for i in range(3)]
    assert b"".join(base64.b64decode(s["data"]["data"]) for s in secrets) == payload
    # each object stays under the API server's 1 MiB
    assert all(len(json.dumps(s)) < 1024 * 1024 for s in secrets)
    assert len(pool.sent[3]["body"]["spec"]["volumes"]) == 3


def test_a_failed_submit_removes_what_it_made() -> None:
    made, pool = backend(
        [
            ("POST", SECRETS, "secret_created.json"),
            ("POST", PODS, "pod_not_found.json"),
            ("DELETE", POD, "pod_not_found.json"),
            ("DELETE", SECRETS, "secrets_deleted.json"),
        ]
    )
    with pytest.raises(client.ApiException):
        made.submit(spec(), b"x")
    assert pool.sent[3]["query"]["labelSelector"] == "containerrunner,containerrunner.ident=abc123"


def test_follow_survives_a_log_rotation_without_lost_or_doubled_lines() -> None:
    made, pool = backend(
        [
            ("GET", POD, "pod_pending.json"),
            ("GET", POD, "pod_running.json"),
            ("GET", f"{POD}/log", "log_part1.txt"),
            ("GET", POD, "pod_running.json"),
            ("GET", f"{POD}/log", "log_part2.txt"),
        ]
    )
    job = ref()
    got = b"".join(made.follow(job))
    chunks = json.loads((FIXTURES / "stream_chunks.json").read_text())
    assert got.decode() == "".join(chunks)
    counters = [json.loads(line).get("counter") for line in got.decode().splitlines()]
    assert counters == [1, 2, 3, 4, 5, None]
    first, second = (s["query"] for s in pool.sent if s["path"].endswith("/log"))
    assert first == {"follow": "true", "timestamps": "true", "container": "job", "stream": "Stdout"}
    # the reconnect reaches back before the last line seen (20:40:05.2, now 20:40:07)
    assert int(second["sinceSeconds"]) >= 2
    assert made.exit_code(job) == 2
    assert made.node_of(job) == "worker-2"


def test_lines_rotated_away_before_the_reconnect_are_an_error_not_a_silent_loss() -> None:
    made, _pool = backend(
        [
            ("GET", POD, "pod_running.json"),
            ("GET", f"{POD}/log", "log_part1.txt"),
            ("GET", POD, "pod_running.json"),
            ("GET", f"{POD}/log", "log_gap.txt"),
        ]
    )
    with pytest.raises(LogGapError, match=r"log lines 3\.\.4 were lost"):
        b"".join(made.follow(ref()))


def test_an_image_that_cannot_be_pulled_ends_follow_with_the_reason() -> None:
    made, _pool = backend([("GET", POD, "pod_image_pull_backoff.json")])
    with pytest.raises(RuntimeError, match="ImagePullBackOff: Back-off pulling image"):
        list(made.follow(ref()))


def test_cancel_deletes_the_pod_with_a_grace_period_and_its_secrets() -> None:
    made, pool = backend(
        [("DELETE", POD, "pod_deleted.json"), ("DELETE", SECRETS, "secrets_deleted.json")],
        extra={"grace_period": "3"},
    )
    made.remove(ref())
    assert pool.sent[0]["query"]["gracePeriodSeconds"] == "3"
    assert pool.sent[1]["query"]["labelSelector"] == "containerrunner,containerrunner.ident=abc123"


def test_removing_a_pod_already_gone_is_no_error() -> None:
    made, pool = backend(
        [("DELETE", POD, "pod_not_found.json"), ("DELETE", SECRETS, "secrets_deleted.json")]
    )
    made.remove(ref())
    assert len(pool.sent) == 2


def test_reap_removes_only_the_pods_of_a_dead_owner_of_this_host() -> None:
    made, pool = backend(
        [
            ("GET", PODS, "pods_ours.json"),
            ("DELETE", f"{PODS}/cr-dead01", "pod_deleted.json"),
            ("DELETE", SECRETS, "secrets_deleted.json"),
        ]
    )
    alive = {"cr-live01", "cr-other1"}
    gone = made.reap(lambda r: r.id in alive)
    assert [r.id for r in gone] == ["cr-dead01"]
    assert gone[0].owner_pid == 999999 and gone[0].owner_host == "ctl-1"
    assert pool.sent[0]["query"] == {"labelSelector": "containerrunner"}
    assert re.search(r"ident=dead01$", pool.sent[2]["query"]["labelSelector"])


def test_a_log_that_ends_without_its_end_line_takes_the_containers_exit_code() -> None:
    made, pool = backend(
        [("GET", POD, "pod_running.json"), ("GET", f"{POD}/log", "log_part1.txt")]
        + [("GET", POD, "pod_terminated.json"), ("GET", f"{POD}/log", "log_part1.txt")] * 2
        + [("GET", POD, "pod_terminated.json")]
    )
    job = ref()
    got = b"".join(made.follow(job))
    chunks = json.loads((FIXTURES / "stream_chunks.json").read_text())
    # the lines read once each; the one cut by the drop never arrived whole
    assert got.decode() == "".join(chunks[:3])
    assert made.exit_code(job) == 2
    assert pool.script == []


def test_cleanup_with_no_reachable_cluster_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from containerrunner.cli.main import main

    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-such-kubeconfig"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    rc = main(["cleanup", "--scheduler", "kubernetes", "--namespace", "jobs"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "error: cleanup --scheduler kubernetes: ConfigException" in err
    assert "Traceback" not in err

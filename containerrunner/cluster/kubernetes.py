"""Kubernetes backend: one Pod per job (restartPolicy Never), the payload in Secrets.

The pod runs a small standard-library wrapper (`WRAPPER`) in the EE image: it reads the job's
payload from the Secrets mounted read-only under /run/containerrunner/payload-NNN (in order; a
payload over `SECRET_PART` is split over several Secrets, each under the 1 MiB object limit),
the bootstrap's argv and the job's environment from the first one's `meta` key (never the pod
spec's env), runs the bootstrap with the payload on its stdin and writes its stdout as text lines
`CRS SEQ BASE64`, then `CRS END RC` (the line format of the swarm backend).

`follow` reads the pod log with `follow=True, timestamps=True`. When the stream drops (API server
or kubelet restart, kubelet log rotation ends a follow) it reconnects with `sinceSeconds` reaching
back before the last line it saw (`RESUME_MARGIN`) and drops every line whose SEQ it already has,
so no line is doubled; a gap in SEQ (lines rotated away before the reconnect) is an error naming
the lost lines, never a silent loss. It ends at the END line.

The client is the official `kubernetes` package (the `kubernetes` extra), imported on first use.
"""

from __future__ import annotations

import base64
import json
import math
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from containerrunner.cluster.base import (
    AdapterSpec,
    ClusterJobRef,
    SchedulerOptions,
    adapter_argv,
)
from containerrunner.cluster.lines import parse_line, split_payload, wrapper_source
from containerrunner.isolation.engine import LABEL, LABEL_IDENT, LABEL_OWNER_HOST, LABEL_OWNER_PID

#: raw payload bytes per Secret (base64 in the object: about 930 KiB, under etcd's 1 MiB)
SECRET_PART = 700 * 1024
#: where the payload Secrets are mounted in the pod
MOUNT_ROOT = "/run/containerrunner"
#: seconds a reconnect reaches back before the last line seen (clock skew, sub-second stamps)
RESUME_MARGIN = 5
#: reconnects in a row without a new line before `follow` gives up
MAX_IDLE_RECONNECTS = 30
#: default grace period of a cancelled pod (seconds; scheduler_options extra "grace_period")
GRACE_PERIOD = 10
#: container waiting reasons that mean the job will never start
FATAL_WAITING = {
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
}

WRAPPER = wrapper_source(
    'root = "/run/containerrunner"\n'
    'parts = sorted(n for n in os.listdir(root) if n.startswith("payload-"))\n'
    'meta = json.load(open(os.path.join(root, parts[0], "meta")))\n'
    'data = b"".join(open(os.path.join(root, n, "data"), "rb").read() for n in parts)\n'
)


class LogGapError(RuntimeError):
    """Lines of the job's log were rotated away before `follow` could read them."""


def pod_name(ident: str) -> str:
    return _dns_name(f"cr-{ident}")


def secret_name(ident: str, index: int) -> str:
    return _dns_name(f"cr-{ident}")[:56] + f"-p{index:03d}"


def _dns_name(text: str) -> str:
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower())[:63]
    return name.strip("-") or "cr"


def label_value(value: str) -> str:
    """`value` as a valid label value (63 chars of [A-Za-z0-9._-], alphanumeric at both ends)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", value)[:63]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", cleaned)


def parse_log_line(line: str) -> tuple[float | None, str, int, bytes] | None:
    """(timestamp, "data", seq, bytes) or (timestamp, "end", rc, b"") for a wrapper line read
    with `timestamps=True`; None for any other line."""
    stamp: float | None = None
    head, _, rest = line.strip().partition(" ")
    if head != "CRS":
        stamp = parse_timestamp(head)
        line = rest
    parsed = parse_line(line)
    return None if parsed is None else (stamp, *parsed)


def parse_timestamp(text: str) -> float | None:
    """Seconds since the epoch of an RFC 3339 stamp as the kubelet writes it (nanoseconds)."""
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z", text)
    if match is None:
        return None
    whole = datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    fraction = float("0." + match.group(2)) if match.group(2) else 0.0
    return whole.timestamp() + fraction


class KubernetesBackend:
    name = "kubernetes"

    def __init__(self, options: SchedulerOptions, api_client: Any = None) -> None:
        self.options = options
        self.namespace = options.namespace or "default"
        self._api_client = api_client
        self._core: Any = None
        self._rc: dict[str, int] = {}
        self._node: dict[str, str] = {}
        self.clock: Callable[[], float] = time.time
        self.sleep: Callable[[float], None] = time.sleep

    # the API

    @property
    def core(self) -> Any:
        if self._core is None:
            from kubernetes import client, config  # the `kubernetes` extra

            if self._api_client is None:
                try:
                    config.load_kube_config(context=self.options.engine_url)  # type: ignore[no-untyped-call]
                except config.ConfigException:
                    config.load_incluster_config()  # type: ignore[no-untyped-call]
                self._api_client = client.ApiClient()
            self._core = client.CoreV1Api(self._api_client)
        return self._core

    def adapter_argv(self, spec_path: str) -> list[str]:
        return adapter_argv(spec_path)

    # the objects we create (pure: asserted by the unit tests)

    def labels_for(self, spec: AdapterSpec) -> dict[str, str]:
        labels = {key: label_value(value) for key, value in spec.labels.items()}
        labels[LABEL] = labels.get(LABEL) or "true"
        labels[LABEL_IDENT] = label_value(spec.ident)
        return labels

    def secret_manifests(self, spec: AdapterSpec, payload: bytes) -> list[dict[str, Any]]:
        labels = self.labels_for(spec)
        meta = json.dumps({"command": spec.command, "env": spec.env()}).encode()
        manifests = []
        for index, part in enumerate(split_payload(payload, SECRET_PART)):
            data = {"data": base64.b64encode(part).decode()}
            if index == 0:
                data["meta"] = base64.b64encode(meta).decode()
            manifests.append(
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": secret_name(spec.ident, index), "labels": labels},
                    "type": "Opaque",
                    "immutable": True,
                    "data": data,
                }
            )
        return manifests

    def pod_manifest(self, spec: AdapterSpec, secrets: list[str]) -> dict[str, Any]:
        opts = self.options
        container: dict[str, Any] = {
            "name": "job",
            "image": spec.image,
            "command": ["python3", "-c", WRAPPER],
            "volumeMounts": [
                {
                    "name": f"payload-{index:03d}",
                    "mountPath": f"{MOUNT_ROOT}/payload-{index:03d}",
                    "readOnly": True,
                }
                for index in range(len(secrets))
            ],
        }
        if spec.workdir:
            container["workingDir"] = spec.workdir
        resources: dict[str, str] = {}
        if opts.cpu_limit:
            resources["cpu"] = opts.cpu_limit
        if opts.memory_limit:
            resources["memory"] = opts.memory_limit
        if resources:
            container["resources"] = {"limits": resources, "requests": dict(resources)}
        pod_spec: dict[str, Any] = {
            "restartPolicy": "Never",
            "automountServiceAccountToken": opts.service_account is not None,
            "containers": [container],
            "volumes": [
                {
                    "name": f"payload-{index:03d}",
                    "secret": {"secretName": name, "defaultMode": 0o400},
                }
                for index, name in enumerate(secrets)
            ],
        }
        if opts.service_account:
            pod_spec["serviceAccountName"] = opts.service_account
        if opts.image_pull_secrets:
            pod_spec["imagePullSecrets"] = [{"name": name} for name in opts.image_pull_secrets]
        selector = self.node_selector()
        if selector:
            pod_spec["nodeSelector"] = selector
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": pod_name(spec.ident),
                "labels": self.labels_for(spec),
                "annotations": {"containerrunner/owner": json.dumps(spec.labels)},
            },
            "spec": pod_spec,
        }

    def node_selector(self) -> dict[str, str]:
        selector = {}
        for entry in self.options.constraints:
            key, sep, value = entry.partition("=")
            if not sep or not key:
                from containerrunner.errors import ConfigurationError

                raise ConfigurationError(
                    f"scheduler_options['constraints']: {entry!r} is not key=value "
                    "(a kubernetes nodeSelector entry)"
                )
            selector[key.strip()] = value.strip().lstrip("=")
        return selector

    # one job

    def submit(self, spec: AdapterSpec, payload: bytes) -> ClusterJobRef:
        from kubernetes import client

        secrets = self.secret_manifests(spec, payload)
        ref = self._ref(pod_name(spec.ident), self.labels_for(spec))
        try:
            for manifest in secrets:
                self.core.create_namespaced_secret(
                    self.namespace, client.V1Secret.from_dict(manifest)
                )
            pod = self.pod_manifest(spec, [m["metadata"]["name"] for m in secrets])
            self.core.create_namespaced_pod(self.namespace, client.V1Pod.from_dict(pod))
        except BaseException:
            self.remove(ref)
            raise
        return ref

    def _ref(self, name: str, labels: dict[str, str]) -> ClusterJobRef:
        pid = labels.get(LABEL_OWNER_PID, "")
        return ClusterJobRef(
            self.name,
            name,
            int(pid) if pid.isdigit() else None,
            labels.get(LABEL_OWNER_HOST),
            dict(labels),
        )

    def _wait_started(self, ref: ClusterJobRef) -> bool:
        """Wait until the pod's container runs or ran; False when it never will."""
        while True:
            pod = self.core.read_namespaced_pod(ref.id, self.namespace)
            if pod.spec is not None and pod.spec.node_name:
                self._node[ref.id] = pod.spec.node_name
            phase = pod.status.phase if pod.status is not None else None
            if phase in ("Running", "Succeeded", "Failed"):
                return True
            for status in (pod.status.container_statuses or []) if pod.status else []:
                waiting = status.state.waiting if status.state is not None else None
                if waiting is not None and waiting.reason in FATAL_WAITING:
                    raise RuntimeError(
                        f"pod {ref.id}: {waiting.reason}: {waiting.message or ''}".strip()
                    )
            self.sleep(1.0)

    def _terminated_rc(self, ref: ClusterJobRef) -> int | None:
        pod = self.core.read_namespaced_pod(ref.id, self.namespace)
        for status in (pod.status.container_statuses or []) if pod.status else []:
            if status.state is not None and status.state.terminated is not None:
                return int(status.state.terminated.exit_code)
        return None

    def follow(self, ref: ClusterJobRef) -> Iterator[bytes]:
        self._wait_started(ref)
        next_seq = 0
        last_stamp: float | None = None
        idle = 0
        while True:
            kwargs: dict[str, Any] = {
                "follow": True,
                "timestamps": True,
                "container": "job",
                "stream": "Stdout",
                "_preload_content": False,
            }
            if last_stamp is not None:
                reach = self.clock() - last_stamp + RESUME_MARGIN
                kwargs["since_seconds"] = max(1, math.ceil(reach))
            response = self.core.read_namespaced_pod_log(ref.id, self.namespace, **kwargs)
            progressed = False
            try:
                for raw in _lines(response):
                    parsed = parse_log_line(raw.decode(errors="replace"))
                    if parsed is None:
                        continue
                    stamp, kind, number, data = parsed
                    if kind == "end":
                        self._rc[ref.id] = number
                        return
                    if number < next_seq:  # seen before this reconnect
                        continue
                    if number > next_seq:
                        raise LogGapError(
                            f"pod {ref.id}: log lines {next_seq}..{number - 1} were lost "
                            "(rotated away before the reconnect)"
                        )
                    next_seq += 1
                    last_stamp = stamp if stamp is not None else last_stamp
                    progressed = True
                    yield data
            finally:
                response.release_conn()
            # the stream dropped without the END line
            rc = self._terminated_rc(ref)
            if rc is not None and not progressed and idle > 0:
                self._rc[ref.id] = rc
                return
            idle = 0 if progressed else idle + 1
            if idle > MAX_IDLE_RECONNECTS:
                raise RuntimeError(f"pod {ref.id}: its log gives no new line")
            if not progressed:
                self.sleep(1.0)

    def exit_code(self, ref: ClusterJobRef) -> int:
        if ref.id in self._rc:
            return self._rc[ref.id]
        rc = self._terminated_rc(ref)
        return 125 if rc is None else rc

    def node_of(self, ref: ClusterJobRef) -> str | None:
        return self._node.get(ref.id)

    # cleanup

    def list_ours(self) -> list[ClusterJobRef]:
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=LABEL)
        return [self._ref(pod.metadata.name, dict(pod.metadata.labels or {})) for pod in pods.items]

    def remove(self, ref: ClusterJobRef) -> None:
        from kubernetes.client.exceptions import ApiException

        grace = int(self.options.extra.get("grace_period", GRACE_PERIOD))
        try:
            self.core.delete_namespaced_pod(
                ref.id, self.namespace, grace_period_seconds=grace, propagation_policy="Background"
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
        ident = ref.labels.get(LABEL_IDENT)
        if ident:
            self.core.delete_collection_namespaced_secret(
                self.namespace, label_selector=f"{LABEL},{LABEL_IDENT}={ident}"
            )

    def reap(self, is_alive: Callable[[ClusterJobRef], bool]) -> list[ClusterJobRef]:
        gone = [ref for ref in self.list_ours() if not is_alive(ref)]
        for ref in gone:
            self.remove(ref)
        return gone


def _lines(response: Any) -> Iterator[bytes]:
    """The lines of a streamed (not preloaded) urllib3 response, as they come."""
    pending = b""
    for chunk in response.stream(4096, decode_content=True):
        pending += chunk
        *complete, pending = pending.split(b"\n")
        yield from complete
    # a line cut by the dropped stream is not counted: the reconnect reads it again

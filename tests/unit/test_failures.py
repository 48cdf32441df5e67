"""failures.classify: each entry of CONNECTION_MESSAGES against the messages seen from paramiko,
libssh (ansible-pylibssh), netcommon and OpenSSH in network-ee (ansible-core 2.19, netcommon of
ansible 12.3.0) against fakenos devices, a closed port and a silent TCP listener; and what stays
a task failure."""

from __future__ import annotations

import pytest

from containerrunner.failures import CONNECTION_MESSAGES, Failure, classify

AUTH_PARAMIKO = "Failed to authenticate: Authentication failed."
AUTH_LIBSSH = (
    "ssh connection failed: Failed to authenticate with password: Access denied for 'password'."
    " Authentication that can continue: password"
)
TIMEOUT_LIBSSH = "ssh connection failed: ssh connect failed: Timeout connecting to 10.231.17.9"
REFUSED_LIBSSH = "ssh connection failed: ssh connect failed: Connection refused"
REFUSED_PARAMIKO = "[Errno None] Unable to connect to port 43677 on 127.0.0.1"
HOST_KEY_PARAMIKO = (
    "paramiko: The authenticity of host '[127.0.0.1]:47801' can't be established.\n"
    "The ssh-rsa key fingerprint is b'81dd29cb082fd2d0387652dc6649f792'."
)
HOST_KEY_LIBSSH = (
    "libssh: The authenticity of host '127.0.0.1' can't be established due to 'Host is unknown:"
    " b6:54:71:f3'.\nThe ssh-rsa key fingerprint is SHA1:tlRx8xrNzPoQ+Xd5hxDCWZVylvs."
)
HOST_KEY_SSH = (
    "Task failed: Using a SSH password instead of a key is not possible because Host Key checking"
    " is enabled. Please add this host's fingerprint to your known_hosts file to manage this host."
)
SHELL = "unable to set terminal parameters"
SESSION_PARAMIKO = "No existing session"  # paramiko, no SSH banner within banner_timeout
# OpenSSH through ansible's ssh connection: reported unreachable (res["unreachable"] = True)
SSH_AUTH = (
    "Task failed: Failed to connect to the host via ssh: Warning: Permanently added"
    " '[127.0.0.1]:37737' (RSA) to the list of known hosts.\r\nwrongpw\r\n"
    "netops@127.0.0.1: Permission denied (password)."
)
SSH_REFUSED = (
    "Task failed: Failed to connect to the host via ssh: ssh: connect to host 127.0.0.1 port"
    " 41877: Connection refused"
)


FAILED_CASES = [
    (AUTH_PARAMIKO, "authentication"),
    (AUTH_LIBSSH, "authentication"),
    (TIMEOUT_LIBSSH, "timeout"),
    (REFUSED_LIBSSH, "refused"),
    (REFUSED_PARAMIKO, "refused"),
    (HOST_KEY_PARAMIKO, "host_key"),
    (HOST_KEY_LIBSSH, "host_key"),
    (HOST_KEY_SSH, "host_key"),
    (SHELL, "shell"),
    (SESSION_PARAMIKO, "session"),
]
UNREACHABLE_CASES = [(SSH_AUTH, "authentication"), (SSH_REFUSED, "refused")]


@pytest.mark.parametrize(("message", "cause"), FAILED_CASES)
def test_failed_result_from_the_connection_layer(message: str, cause: str) -> None:
    res = {"msg": message, "changed": False, "exception": "(traceback unavailable)"}
    assert classify(res) == Failure("connection", message, cause)  # type: ignore[arg-type]


@pytest.mark.parametrize(("message", "cause"), UNREACHABLE_CASES)
def test_unreachable_result_with_its_cause(message: str, cause: str) -> None:
    res = {"unreachable": True, "msg": message}
    assert classify(res) == Failure("connection", message, cause)  # type: ignore[arg-type]
    assert classify({"msg": message}, unreachable=True).cause == cause


def test_unreachable_without_a_known_cause_is_still_a_connection_failure() -> None:
    failure = classify({"msg": "unreachable since task 'a'"}, unreachable=True)
    assert failure == Failure("connection", "unreachable since task 'a'", "unreachable")


@pytest.mark.parametrize(
    "message",
    [
        "b\"show vlan\\r\\n% Invalid input detected at '^' marker.\\r\\nios1>\"",
        # a device that stops answering mid-command: the command's timeout, not the connection
        "command timeout triggered, timeout value is 5 secs.\nSee the timeout setting options in"
        " the Network Debug and Troubleshooting Guide.",
        # a task that only mentions connection words stays a task failure (matched at the start)
        "Status code was -1 and not [200]: Request failed: <urlopen error [Errno 111] Connection"
        " refused>",
        "non-zero return code",
    ],
)
def test_task_failures(message: str) -> None:
    assert classify({"msg": message, "rc": 1}) == Failure("task", message)


def test_reason_falls_back_to_stderr_and_a_result_that_is_no_mapping() -> None:
    assert classify({"stderr": " boom \n", "rc": 2}) == Failure("task", "boom")
    assert classify(None) == Failure("task", "")


def test_every_table_entry_has_a_seen_message() -> None:
    for cause, pattern, source in CONNECTION_MESSAGES:
        seen = [m for m, c in [*FAILED_CASES, *UNREACHABLE_CASES] if c == cause]
        assert any(pattern.search(m) for m in seen), (cause, pattern.pattern, source)


def test_labels() -> None:
    assert Failure("connection", "x", "timeout").label() == "connection failure (timeout)"
    assert Failure("task", "x").label() == "task failure"

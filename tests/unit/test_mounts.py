"""Mount derivation from Ansible command lines and env, volume-mount parsing, normalisation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from containerrunner.errors import ConfigurationError
from containerrunner.isolation import (
    Mount,
    is_system_dir,
    mounts_from_ansible_args,
    mounts_from_env,
    normalise_mounts,
    parse_volume_mount,
)
from containerrunner.isolation.mounts import runner_layout_mounts


@pytest.fixture()
def proj(tmp_path: Path) -> Path:
    """A project with an inventory file, an inventory dir, a playbook, key and vault files."""
    (tmp_path / "inv").mkdir()
    (tmp_path / "inv" / "hosts.yml").write_text("all: {}\n")
    (tmp_path / "hosts.ini").write_text("localhost\n")
    (tmp_path / "pb").mkdir()
    (tmp_path / "pb" / "site.yml").write_text("- hosts: all\n")
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "id_ed25519").write_text("KEY")
    (tmp_path / "secrets" / "vault.txt").write_text("pw")
    (tmp_path / "secrets" / "vault2.txt").write_text("pw2")
    (tmp_path / "vars.yml").write_text("a: 1\n")
    (tmp_path / "modules").mkdir()
    (tmp_path / "modules2").mkdir()
    return tmp_path


def ro(path: Path | str) -> Mount:
    return Mount.same_path(str(path), read_only=True)


def rw(path: Path | str) -> Mount:
    return Mount.same_path(str(path))


def secret(path: Path | str) -> Mount:
    return Mount.same_path(str(path), secret=True)


def derive(proj: Path, *args: str, exe: str = "ansible-playbook") -> list[Mount]:
    return mounts_from_ansible_args([exe, *args], str(proj))


# -- inventories --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["-i", "hosts.ini"],
        ["-ihosts.ini"],
        ["--inventory", "hosts.ini"],
        ["--inventory=hosts.ini"],
        ["--inventory-file", "hosts.ini"],
        ["--inventory-file=hosts.ini"],
    ],
)
def test_inventory_file_spellings(proj: Path, args: list[str]) -> None:
    assert derive(proj, *args, exe="ansible") == [ro(proj / "hosts.ini")]


def test_inventory_dir_is_mounted_as_dir(proj: Path) -> None:
    assert derive(proj, "-i", "inv", exe="ansible-inventory") == [ro(proj / "inv")]


def test_inventory_file_brings_group_and_host_vars(proj: Path) -> None:
    (proj / "group_vars").mkdir()
    (proj / "host_vars").mkdir()
    assert derive(proj, "-i", str(proj / "hosts.ini")) == [
        ro(proj / "hosts.ini"),
        ro(proj / "group_vars"),
        ro(proj / "host_vars"),
    ]


@pytest.mark.parametrize("hosts", ["localhost,", "host1,host2,", "a,b", "hosts.ini,"])
def test_comma_host_lists_are_not_paths(proj: Path, hosts: str) -> None:
    assert derive(proj, "-i", hosts, exe="ansible") == []
    assert derive(proj, f"--inventory={hosts}", exe="ansible") == []


def test_several_inventories(proj: Path) -> None:
    assert derive(proj, "-i", "hosts.ini", "-i", "inv", "-i", "nope", exe="ansible") == [
        ro(proj / "hosts.ini"),
        ro(proj / "inv"),
    ]


# -- secrets ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "flag",
    [
        "--private-key",
        "--key-file",
        "--vault-password-file",
        "--vault-pass-file",
        "--become-password-file",
        "--connection-password-file",
    ],
)
def test_secret_files_are_read_only(proj: Path, flag: str) -> None:
    path = proj / "secrets" / "id_ed25519"
    expected = [secret(path)]
    assert derive(proj, flag, "secrets/id_ed25519") == expected
    assert derive(proj, f"{flag}=secrets/id_ed25519") == expected
    assert expected[0].read_only


def test_private_key_brings_its_certificate(proj: Path) -> None:
    (proj / "secrets" / "id_ed25519-cert.pub").write_text("CERT")
    assert derive(proj, "--private-key", "secrets/id_ed25519") == [
        secret(proj / "secrets" / "id_ed25519"),
        ro(proj / "secrets" / "id_ed25519-cert.pub"),
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("secrets/vault.txt", "secrets/vault.txt"),
        ("dev@secrets/vault.txt", "secrets/vault.txt"),
        ("prod@secrets/vault2.txt", "secrets/vault2.txt"),
        ("prompt", None),
        ("dev@prompt", None),
        ("dev@missing.txt", None),
        ("missing.txt", None),
    ],
)
def test_vault_id_forms(proj: Path, value: str, expected: str | None) -> None:
    want = [secret(proj / expected)] if expected else []
    assert derive(proj, "--vault-id", value) == want
    assert derive(proj, f"--vault-id={value}") == want


def test_several_vault_ids(proj: Path) -> None:
    got = derive(
        proj, "--vault-id", "a@secrets/vault.txt", "--vault-id", "b@secrets/vault2.txt", "-J"
    )
    assert got == [secret(proj / "secrets/vault.txt"), secret(proj / "secrets/vault2.txt")]


# -- playbooks, module path, playbook dir, extra vars --------------------------------------------


def test_playbook_mounts_its_directory_rw(proj: Path) -> None:
    assert derive(proj, "pb/site.yml") == [rw(proj / "pb")]
    assert derive(proj, str(proj / "pb" / "site.yml")) == [rw(proj / "pb")]


def test_option_values_are_not_playbooks(proj: Path) -> None:
    # `-l pb/site.yml` is a limit, `-t` tags: their values are not positionals.
    assert derive(proj, "-l", "pb/site.yml", "-t", "pb/site.yml", "--tags=x") == []


def test_positionals_of_other_tools_are_not_mounted(proj: Path) -> None:
    assert derive(proj, "pb/site.yml", exe="ansible") == []
    assert derive(proj, "pb/site.yml", exe="ansible-doc") == []


def test_nonexistent_playbook_is_skipped(proj: Path) -> None:
    assert derive(proj, "nope.yml", "ns.coll.playbook") == []


def test_full_path_executable_is_recognised(proj: Path) -> None:
    assert mounts_from_ansible_args(["/usr/bin/ansible-playbook", "pb/site.yml"], str(proj)) == [
        rw(proj / "pb")
    ]


def test_other_executables_derive_nothing(proj: Path) -> None:
    assert mounts_from_ansible_args(["ls", "-i", "hosts.ini"], str(proj)) == []
    assert mounts_from_ansible_args([], str(proj)) == []


@pytest.mark.parametrize(
    "args",
    [["-M", "modules:modules2:nope"], ["--module-path=modules:modules2"], ["-Mmodules:modules2"]],
)
def test_module_path_list(proj: Path, args: list[str]) -> None:
    assert derive(proj, *args, exe="ansible") == [ro(proj / "modules"), ro(proj / "modules2")]


def test_playbook_dir(proj: Path) -> None:
    assert derive(proj, "--playbook-dir", "pb", exe="ansible-doc") == [ro(proj / "pb")]
    assert derive(proj, "--playbook-dir=pb", exe="ansible") == [ro(proj / "pb")]


@pytest.mark.parametrize(
    "args",
    [
        ["-e", "@vars.yml"],
        ["-e@vars.yml"],
        ["--extra-vars", "@vars.yml"],
        ["--extra-vars=@vars.yml"],
    ],
)
def test_extra_vars_files(proj: Path, args: list[str]) -> None:
    assert derive(proj, *args) == [ro(proj / "vars.yml")]


def test_extra_vars_that_are_not_files(proj: Path) -> None:
    assert derive(proj, "-e", "a=1", "-e", '{"b": 2}', "-e", "@missing.yml") == []


def test_ansible_doc_e_is_an_entry_point(proj: Path) -> None:
    assert derive(proj, "-e", "@vars.yml", exe="ansible-doc") == []


def test_ansible_config_c_is_the_config_file(proj: Path) -> None:
    (proj / "my.cfg").write_text("[defaults]\n")
    assert derive(proj, "dump", "-c", "my.cfg", exe="ansible-config") == [ro(proj / "my.cfg")]
    # ... while for ansible-playbook -c is the connection plugin
    assert derive(proj, "-c", "my.cfg") == []


def test_flag_clusters(proj: Path) -> None:
    # -vvv and -bK are flags; in `-bihosts.ini` the value of -i ends the cluster
    got = derive(proj, "-vvv", "-bK", "-bihosts.ini", "pb/site.yml")
    assert got == [ro(proj / "hosts.ini"), rw(proj / "pb")]


def test_double_dash_ends_options(proj: Path) -> None:
    assert derive(proj, "--", "-i") == []
    assert derive(proj, "--", "pb/site.yml") == [rw(proj / "pb")]


def test_relative_paths_resolve_against_cwd_not_process_cwd(
    proj: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    assert derive(proj, "-i", "hosts.ini", "pb/site.yml") == [
        ro(proj / "hosts.ini"),
        rw(proj / "pb"),
    ]


def test_a_complete_command_line(proj: Path) -> None:
    got = derive(
        proj,
        "-i",
        "inv",
        "--private-key=secrets/id_ed25519",
        "--vault-id",
        "dev@secrets/vault.txt",
        "-e",
        "@vars.yml",
        "-e",
        "x=1",
        "-l",
        "web",
        "--check",
        "pb/site.yml",
    )
    assert got == [
        ro(proj / "inv"),
        secret(proj / "secrets/id_ed25519"),
        secret(proj / "secrets/vault.txt"),
        ro(proj / "vars.yml"),
        rw(proj / "pb"),
    ]


def test_symlinked_inventory_also_mounts_its_target(
    proj: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    real = tmp_path_factory.mktemp("real") / "real-inv.ini"
    real.write_text("localhost\n")
    (proj / "link.ini").symlink_to(real)
    assert derive(proj, "-i", "link.ini") == [ro(proj / "link.ini"), ro(real)]


# -- system directories -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", True),
        ("/usr", True),
        ("/usr/", True),
        ("/usr/lib", True),
        ("/var/tmp", True),
        ("/home", True),
        ("/etc", True),
        ("/tmp", True),
        ("/etc/ansible", False),
        ("/usr/share/ansible", False),
        ("/home/alice", False),
        ("/tmp/x", False),
        ("/srv/project", False),
    ],
)
def test_is_system_dir(path: str, expected: bool) -> None:
    assert is_system_dir(path) is expected


def test_playbook_in_a_system_dir_is_mounted_alone(tmp_path: Path) -> None:
    # Simulate with the function on a real file in /tmp directly when possible.
    name = f"/tmp/containerrunner-test-{os.getpid()}.yml"
    Path(name).write_text("- hosts: all\n")
    try:
        got = mounts_from_ansible_args(["ansible-playbook", name], str(tmp_path))
        assert got == [rw(name)]
    finally:
        os.unlink(name)


def test_inventory_dir_that_is_a_system_dir_is_skipped(tmp_path: Path) -> None:
    assert mounts_from_ansible_args(["ansible", "-i", "/etc", "all"], str(tmp_path)) == []


# -- env ----------------------------------------------------------------------------------------


def test_mounts_from_env(proj: Path) -> None:
    (proj / "roles").mkdir()
    (proj / "colls").mkdir()
    (proj / "ansible.cfg").write_text("[defaults]\n")
    (proj / "cb").mkdir()
    (proj / "artifacts").mkdir()
    env = {
        "ANSIBLE_ROLES_PATH": f"roles:{proj}/nope",
        "ANSIBLE_COLLECTIONS_PATH": str(proj / "colls"),
        "ANSIBLE_COLLECTIONS_PATHS": "colls",
        "ANSIBLE_CONFIG": "ansible.cfg",
        "ANSIBLE_CALLBACK_PLUGINS": str(proj / "cb"),
        "ANSIBLE_PRIVATE_KEY_FILE": "secrets/id_ed25519",
        "CONTAINERRUNNER_ARTIFACT_DIR": str(proj / "artifacts"),
        "ANSIBLE_FORCE_COLOR": "1",
        "SECRET_TOKEN": str(proj / "vars.yml"),  # arbitrary variables are not paths
    }
    assert mounts_from_env(env, str(proj)) == [
        ro(proj / "cb"),
        ro(proj / "colls"),
        ro(proj / "colls"),
        ro(proj / "ansible.cfg"),
        secret(proj / "secrets/id_ed25519"),
        ro(proj / "roles"),
        rw(proj / "artifacts"),
    ]


def test_env_missing_paths_are_skipped(proj: Path) -> None:
    env = {"ANSIBLE_CONFIG": "nope.cfg", "ANSIBLE_ROLES_PATH": "", "ANSIBLE_INVENTORY": "a,b"}
    assert mounts_from_env(env, str(proj)) == []


def test_env_fifo_is_mounted_rw(proj: Path) -> None:
    fifo = proj / "events.fifo"
    os.mkfifo(fifo)
    assert mounts_from_env({"CONTAINERRUNNER_EVENT_FIFO": str(fifo)}, str(proj)) == [rw(fifo)]


# -- parse_volume_mount -------------------------------------------------------------------------


def test_parse_volume_mount_forms(proj: Path) -> None:
    cwd = str(proj)
    assert parse_volume_mount("inv:/inv", cwd) == Mount(str(proj / "inv"), "/inv")
    assert parse_volume_mount("inv:/inv:ro", cwd) == Mount(str(proj / "inv"), "/inv", True)
    assert parse_volume_mount("inv:/inv:rw,Z", cwd) == Mount(str(proj / "inv"), "/inv")
    assert parse_volume_mount("inv:/inv:z,ro", cwd) == Mount(str(proj / "inv"), "/inv", True)
    assert parse_volume_mount("inv", cwd) == rw(proj / "inv")
    assert parse_volume_mount(f"{proj}/inv/:/x/y/", cwd) == Mount(str(proj / "inv"), "/x/y")
    assert parse_volume_mount("/usr/share:/usr/share:ro", cwd).source == "/usr/share"


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ("nope:/x", "does not exist"),
        ("/:/host", "refusing to mount '/'"),
        ("/usr:/usr:ro", "refusing to mount '/usr'"),
        ("/usr/:/u", "refusing to mount '/usr'"),
        ("/home:/home", "refusing to mount '/home'"),
        ("inv:relative/dir", "must be an absolute path"),
        ("inv:/x:rox", "unknown option"),
        ("inv:/x:ro,rw", "both 'ro' and 'rw'"),
        ("inv:/x:ro:extra", "expected"),
        (":/x", "source path is empty"),
        ("", "expected"),
        ("inv:/", "root directory"),
    ],
)
def test_parse_volume_mount_errors(proj: Path, entry: str, why: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_volume_mount(entry, str(proj))
    message = str(info.value)
    assert "container_volume_mounts" in message
    assert repr(entry) in message
    assert why in message


def test_parse_volume_mount_refuses_symlink_to_root(proj: Path) -> None:
    (proj / "root-link").symlink_to("/")
    with pytest.raises(ConfigurationError, match="refusing to mount '/'"):
        parse_volume_mount("root-link:/r", str(proj))


# -- normalise_mounts ---------------------------------------------------------------------------


def test_normalise_drops_duplicates_and_sorts() -> None:
    got = normalise_mounts([rw("/b"), ro("/a/x"), rw("/b"), ro("/a/x"), rw("/a")])
    assert got == (rw("/a"), rw("/b"))


def test_normalise_order_is_deterministic() -> None:
    mounts = [ro("/p/q"), rw("/p"), ro("/z"), Mount("/s", "/m/n", True), secret("/p/k")]
    expected = normalise_mounts(mounts)
    assert normalise_mounts(reversed(mounts)) == expected
    assert expected == (Mount("/s", "/m/n", True), rw("/p"), secret("/p/k"), ro("/z"))


def test_same_path_rw_wins_over_ro() -> None:
    assert normalise_mounts([ro("/a"), rw("/a")]) == (rw("/a"),)


def test_same_path_secret_stays_ro() -> None:
    assert normalise_mounts([rw("/k"), secret("/k"), ro("/k")]) == (secret("/k"),)


def test_ro_child_of_rw_parent_is_covered() -> None:
    assert normalise_mounts([rw("/p"), ro("/p/inv")]) == (rw("/p"),)


def test_secret_child_of_rw_parent_is_kept() -> None:
    assert normalise_mounts([rw("/p"), secret("/p/key")]) == (rw("/p"), secret("/p/key"))


def test_secret_child_of_ro_parent_is_covered() -> None:
    assert normalise_mounts([ro("/p"), secret("/p/key")]) == (ro("/p"),)


def test_rw_child_of_ro_parent_is_kept() -> None:
    assert normalise_mounts([ro("/p"), rw("/p/out")]) == (ro("/p"), rw("/p/out"))


def test_coverage_uses_the_nearest_parent() -> None:
    # /x is shown at /a/b over the rw /a; /a/b/c from /a/b/c must stay although /a would
    # "cover" it: inside the container /a/b/c lies in the /x view.
    assert normalise_mounts([rw("/a"), Mount("/x", "/a/b", True), ro("/a/b/c")]) == (
        rw("/a"),
        Mount("/x", "/a/b", True),
        ro("/a/b/c"),
    )
    # a rw parent under a ro grandparent covers a ro grandchild
    assert normalise_mounts([ro("/a"), rw("/a/b"), ro("/a/b/c")]) == (ro("/a"), rw("/a/b"))
    # a ro child of a rw parent is dropped, so its rw child is covered by the rw parent
    assert normalise_mounts([rw("/a"), ro("/a/b"), rw("/a/b/c")]) == (rw("/a"),)


def test_child_at_another_offset_is_kept() -> None:
    # /data is mounted at /w; /w/x from another source is a second view, not covered
    got = normalise_mounts([Mount("/data", "/w"), Mount("/other", "/w/x")])
    assert got == (Mount("/data", "/w"), Mount("/other", "/w/x"))
    # while /data/x at /w/x is inside the /data view
    assert normalise_mounts([Mount("/data", "/w"), Mount("/data/x", "/w/x")]) == (
        Mount("/data", "/w"),
    )


def test_prefix_is_not_a_parent() -> None:
    assert normalise_mounts([rw("/a/b"), ro("/a/bc")]) == (rw("/a/b"), ro("/a/bc"))


def test_same_target_different_sources_is_an_error() -> None:
    with pytest.raises(ConfigurationError, match="same target '/x'"):
        normalise_mounts([Mount("/a", "/x"), Mount("/b", "/x")])


# -- ansible-runner's /runner layout ------------------------------------------------------------


@pytest.fixture()
def pdd(tmp_path: Path) -> Path:
    """A private data dir with ansible-runner's sub-dirs."""
    root = tmp_path / "pdd"
    for sub in ("project", "inventory", "env", "artifacts"):
        (root / sub).mkdir(parents=True)
    (root / "env" / "passwords").write_text("'^pw:': hunter2\n")
    return root


def layout(pdd: Path, artifacts: Path | None = None, *volumes: str) -> list[Mount]:
    base = artifacts if artifacts is not None else pdd / "artifacts"
    return runner_layout_mounts(str(pdd), str(base), volumes, str(pdd / "project"))


def test_runner_layout(pdd: Path) -> None:
    assert layout(pdd) == [
        Mount(str(pdd), "/runner"),
        Mount(str(pdd / "env"), "/runner/env", read_only=True, secret=True),
        Mount(str(pdd / "artifacts"), "/runner/artifacts"),
    ]


def test_runner_layout_mounts_the_callers_artifact_dir(pdd: Path, tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    assert layout(pdd, tmp_path / "elsewhere")[2] == Mount(
        str(tmp_path / "elsewhere"), "/runner/artifacts"
    )


def test_runner_layout_skips_missing_dirs(pdd: Path, tmp_path: Path) -> None:
    (pdd / "env" / "passwords").unlink()
    (pdd / "env").rmdir()
    assert layout(pdd, tmp_path / "missing") == [Mount(str(pdd), "/runner")]
    assert layout(tmp_path / "no-such-pdd") == []


@pytest.mark.parametrize("system", ["/", "/tmp", "/usr/lib"])
def test_runner_layout_never_mounts_a_system_dir(system: str) -> None:
    assert runner_layout_mounts(system, os.path.join(system, "artifacts")) == []


def test_runner_layout_normalised_with_same_path_mounts(pdd: Path) -> None:
    """The same source at two targets; env a read-only secret under the read-write /runner,
    parents before children; artifacts under /runner are covered by it."""
    art = pdd / "artifacts" / "job1"
    art.mkdir()
    same = [rw(pdd / "project"), ro(pdd / "inventory"), rw(art)]
    got = normalise_mounts([*same, *layout(pdd)])
    assert got == (
        Mount(str(pdd), "/runner"),
        Mount(str(pdd / "env"), "/runner/env", read_only=True, secret=True),
        *sorted([rw(pdd / "project"), ro(pdd / "inventory"), rw(art)], key=lambda m: m.target),
    )
    assert got.index(Mount(str(pdd), "/runner")) < got.index(
        Mount(str(pdd / "env"), "/runner/env", read_only=True, secret=True)
    )


def test_runner_layout_artifacts_elsewhere_stays_under_runner(pdd: Path, tmp_path: Path) -> None:
    (tmp_path / "art").mkdir()
    got = normalise_mounts(layout(pdd, tmp_path / "art"))
    assert got == (
        Mount(str(pdd), "/runner"),
        Mount(str(tmp_path / "art"), "/runner/artifacts"),
        Mount(str(pdd / "env"), "/runner/env", read_only=True, secret=True),
    )


def test_runner_layout_env_stays_read_only_when_also_mounted_rw(pdd: Path) -> None:
    got = normalise_mounts([*layout(pdd), Mount(str(pdd / "env"), "/runner/env")])
    assert Mount(str(pdd / "env"), "/runner/env", read_only=True, secret=True) in got


def test_runner_layout_gives_way_to_user_volumes(pdd: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    (other / "env").mkdir(parents=True)
    # another dir at /runner: the whole layout gives way (nothing refused, nothing overlaid)
    assert layout(pdd, None, f"{other}:/runner") == []
    # another dir at /runner/artifacts: only that layout mount gives way
    assert [m.target for m in layout(pdd, None, f"{other}:/runner/artifacts:ro")] == [
        "/runner",
        "/runner/env",
    ]
    # the private data dir itself at /runner (ansible-runner habit): the layout stays, env ro
    assert layout(pdd, None, f"{pdd}:/runner:Z") == layout(pdd)
    user = parse_volume_mount(f"{other}:/runner", str(pdd))
    assert normalise_mounts([*layout(pdd, None, f"{other}:/runner"), user]) == (user,)
    # a user mount below the layout is a nested view, as in ansible-runner
    assert layout(pdd, None, f"{other}:/runner/project/data") == layout(pdd)
    # an invalid entry is left to containerize, which refuses it
    assert layout(pdd, None, "/no/such/dir:/runner") == layout(pdd)

"""Cache keying of the rootfs recipe and which directories count as a valid cache."""

import dataclasses
from pathlib import Path

import pytest
from testmachines.errors import UsageError
from testmachines.rootfs import (
    Recipe,
    apply_post_install,
    cached_rootfs,
    prune_rootfs,
    recipe_for,
    validate_release,
)
from testmachines.settings import Settings, load_settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings({"BARESTACK_MACHINES_DIR": str(tmp_path)})


def test_same_recipe_gives_the_same_key(settings: Settings) -> None:
    assert recipe_for("trixie", settings).cache_key == recipe_for("trixie", settings).cache_key
    assert len(recipe_for("trixie", settings).cache_key) == 16


def test_key_does_not_depend_on_where_state_lives(tmp_path: Path) -> None:
    # tests use a temporary state dir but share the cache: the key must match the default one
    first = load_settings({"BARESTACK_MACHINES_DIR": str(tmp_path / "one")})
    second = load_settings({"BARESTACK_MACHINES_DIR": str(tmp_path / "two")})
    assert recipe_for("trixie", first).cache_key == recipe_for("trixie", second).cache_key


def test_release_changes_the_key(settings: Settings) -> None:
    assert recipe_for("trixie", settings).cache_key != recipe_for("bookworm", settings).cache_key


def test_mirror_changes_the_key(tmp_path: Path) -> None:
    default = load_settings({"BARESTACK_MACHINES_DIR": str(tmp_path)})
    mirrored = load_settings(
        {"BARESTACK_MACHINES_DIR": str(tmp_path), "BARESTACK_MACHINES_MIRROR": "http://mirror.example/debian"}
    )
    assert recipe_for("trixie", default).cache_key != recipe_for("trixie", mirrored).cache_key


@pytest.mark.parametrize(
    "change",
    [
        {"packages": ("systemd",)},
        {"variant": "buildd"},
        {"removals": ()},
        {"recipe_format": 999},
    ],
)
def test_any_recipe_change_changes_the_key(settings: Settings, change: dict[str, object]) -> None:
    recipe = recipe_for("trixie", settings)
    assert dataclasses.replace(recipe, **change).cache_key != recipe.cache_key  # type: ignore[arg-type]


def test_changing_a_post_install_file_changes_the_key(settings: Settings) -> None:
    recipe = recipe_for("trixie", settings)
    files = tuple(
        (
            path,
            content + "# changed\n" if path.endswith("sshd_config.d/barestack-test.conf") else content,
            mode,
        )
        for path, content, mode in recipe.files
    )
    assert dataclasses.replace(recipe, files=files).cache_key != recipe.cache_key


def test_recipe_has_what_ansible_and_the_machines_need(settings: Settings) -> None:
    recipe = recipe_for("bookworm", settings)
    for package in ("systemd", "systemd-sysv", "dbus", "python3", "python3-apt", "openssh-server", "sudo"):
        assert package in recipe.packages
    files = {path: content for path, content, _mode in recipe.files}
    assert "deb http://deb.debian.org/debian bookworm main" in files["etc/apt/sources.list"]
    assert "bookworm-security" in files["etc/apt/sources.list"]
    assert "https://" not in files["etc/apt/sources.list"]  # HTTPS does not work from inside
    assert files["etc/machine-id"] == ""
    assert "PermitRootLogin prohibit-password" in files["etc/ssh/sshd_config.d/barestack-test.conf"]


def test_only_a_committed_directory_is_a_cache(settings: Settings) -> None:
    recipe = recipe_for("trixie", settings)
    settings.cache_dir.mkdir(parents=True)
    # what a crashed build leaves behind must never be taken for the cache
    (settings.cache_dir / f".build-{recipe.directory_name}-1234").mkdir()
    assert cached_rootfs(recipe, settings) is None
    (settings.cache_dir / recipe.directory_name).mkdir()
    assert cached_rootfs(recipe, settings) == settings.cache_dir / recipe.directory_name


def test_cache_of_another_recipe_is_not_used(settings: Settings) -> None:
    old = dataclasses.replace(recipe_for("trixie", settings), packages=("systemd",))
    (settings.cache_dir / old.directory_name).mkdir(parents=True)
    assert cached_rootfs(recipe_for("trixie", settings), settings) is None


def test_post_install_writes_files_and_removes_leftovers(tmp_path: Path, settings: Settings) -> None:
    root = tmp_path / "root"
    (root / "etc/ssh").mkdir(parents=True)
    (root / "etc/ssh/ssh_host_ed25519_key").write_text("private")
    (root / "var/lib/dbus").mkdir(parents=True)
    (root / "var/lib/dbus/machine-id").write_text("0123")
    (root / "etc/machine-id").write_text("0123\n")
    (root / "var/lib/apt/lists/partial").mkdir(parents=True)
    (root / "var/lib/apt/lists/deb.debian.org_debian_dists_trixie_InRelease").write_text("stale")
    (root / "etc/resolv.conf").symlink_to("/run/systemd/resolve/stub-resolv.conf")
    recipe: Recipe = recipe_for("trixie", settings)

    apply_post_install(root, recipe)

    assert not (root / "etc/ssh/ssh_host_ed25519_key").exists()
    assert not (root / "var/lib/dbus/machine-id").exists()
    assert (root / "etc/machine-id").read_text() == ""
    assert list((root / "var/lib/apt/lists").iterdir()) == [root / "var/lib/apt/lists/partial"]
    assert not (root / "etc/resolv.conf").is_symlink()
    assert (root / "etc/default/locale").read_text() == "LANG=C.UTF-8\n"
    assert 'APT::Install-Recommends "false";' in (root / "etc/apt/apt.conf.d/90barestack-test").read_text()


def test_unknown_release_is_rejected() -> None:
    with pytest.raises(UsageError, match="choose one of trixie, bookworm"):
        validate_release("sid")


def test_prune_removes_only_outdated_caches_nobody_uses(settings: Settings) -> None:
    current = recipe_for("trixie", settings)
    outdated = dataclasses.replace(current, packages=("systemd",))
    in_use = dataclasses.replace(current, packages=("systemd", "dbus"))
    other_release = recipe_for("bookworm", settings)
    for recipe in (current, outdated, in_use, other_release):
        root = settings.cache_dir / recipe.directory_name
        (root / "etc").mkdir(parents=True)
        (root / "etc/os-release").write_text("ID=debian\n")
    (settings.cache_dir / f"{outdated.directory_name}.recipe.json").write_text("{}")

    keep = {settings.cache_dir / current.directory_name, settings.cache_dir / in_use.directory_name}
    removed = prune_rootfs("trixie", keep, settings)

    assert removed == [settings.cache_dir / outdated.directory_name]
    remaining = sorted(path.name for path in settings.cache_dir.iterdir() if not path.name.startswith("."))
    assert remaining == sorted([current.directory_name, in_use.directory_name, other_release.directory_name])

"""The component catalogue against this machine's real installs, with no installer mocked."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness import components, install
from harness.components import (
    CATALOGUE,
    KAFKA_VERSION,
    PROMETHEUS_VERSION,
    TOXIPROXY_VERSION,
    bin_dir,
    doctor,
    find,
    install_hint,
)
from harness.errors import EnvironmentProblem, MissingComponent
from harness.install import setup


@pytest.fixture
def bare_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A machine where nothing is installed: an empty harness home and an empty PATH."""
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PATH", str(empty))
    return tmp_path


def test_find_redis_server_returns_an_executable() -> None:
    path = find("redis-server")
    assert path.is_file()
    assert os.access(path, os.X_OK)


def test_find_locust_returns_the_interpreter_that_has_it() -> None:
    assert os.access(find("locust"), os.X_OK)


def test_doctor_reports_a_version_for_every_component() -> None:
    statuses = doctor()
    assert [status.name for status in statuses] == [c.name for c in CATALOGUE]
    for status in statuses:
        assert status.found, status
        assert status.path is not None and status.path.exists(), status
        assert status.version, status
    versions = {status.name: status.version for status in statuses}
    assert versions["toxiproxy-server"] == TOXIPROXY_VERSION
    assert versions["prometheus"] == PROMETHEUS_VERSION
    assert versions["kafka-server"] == KAFKA_VERSION


def test_bin_dir_follows_harness_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    assert bin_dir() == tmp_path / "bin"


def test_bin_dir_prefers_the_harness_copy_over_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    (tmp_path / "bin").mkdir()
    own = tmp_path / "bin" / "redis-server"
    own.symlink_to(find("redis-server"))
    assert find("redis-server") == own


def test_missing_binary_names_the_command_that_installs_it(bare_machine: Path) -> None:
    with pytest.raises(MissingComponent) as raised:
        find("redis-server")
    assert raised.value.component == "redis-server"
    assert "apt-get install -y redis-server" in str(raised.value)


def test_missing_toxiproxy_names_the_pinned_go_install(bare_machine: Path) -> None:
    with pytest.raises(MissingComponent) as raised:
        find("toxiproxy-server")
    message = str(raised.value)
    assert install_hint("toxiproxy-server") in message
    assert f"cmd/server@v{TOXIPROXY_VERSION}" in message
    assert str(bare_machine / "home" / "bin" / "toxiproxy-server") in message


def test_without_go_the_hint_is_the_release_download(
    bare_machine: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(components, "GO_FALLBACK", bare_machine / "no-go")
    hint = install_hint("toxiproxy-server")
    assert f"releases/download/v{TOXIPROXY_VERSION}/toxiproxy-server-" in hint
    assert "go.dev/dl" in hint


def test_doctor_on_a_bare_machine_reports_what_is_missing(bare_machine: Path) -> None:
    statuses = {status.name: status for status in doctor()}
    redis = statuses["redis-server"]
    assert (redis.found, redis.path, redis.version) == (False, None, None)
    assert "apt-get install" in redis.install_hint


def test_setup_when_all_is_installed_runs_no_installer() -> None:
    printed: list[str] = []
    first = setup(printed.append)
    second = setup(printed.append)
    # Every installer command is printed before it runs, so silence means none ran.
    assert printed == []
    assert first == second
    assert all(status.found for status in second)


def test_unknown_component_is_a_programming_error() -> None:
    with pytest.raises(KeyError, match="redis-server"):
        find("memcached")


def test_setup_without_go_says_how_to_get_toxiproxy(
    bare_machine: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(components, "GO_FALLBACK", bare_machine / "no-go")
    with pytest.raises(EnvironmentProblem, match="Go is not installed") as raised:
        setup(lambda line: None)
    assert "releases/download" in str(raised.value)


def test_a_failing_install_command_reports_its_output_tail() -> None:
    printed: list[str] = []
    script = "for i in $(seq 1 30); do echo line$i; done; echo broken >&2; exit 3"
    with pytest.raises(EnvironmentProblem) as raised:
        install._run(["sh", "-c", script], {"DEBIAN_FRONTEND": "noninteractive"}, printed.append)
    message = str(raised.value)
    assert printed == [f"$ DEBIAN_FRONTEND=noninteractive sh -c '{script}'"]
    assert "exit code 3" in message
    assert "line30\nbroken" in message
    assert "line1\n" not in message


def test_setup_fetches_kafka_from_maven_into_the_harness_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only Kafka missing: setup fetches its jars once, into a folder per version, and writes a
    launcher that the broker script and doctor use."""
    home = tmp_path / "home"
    (home / "bin").mkdir(parents=True)
    for name in ("prometheus", "toxiproxy-server"):
        (home / "bin" / name).symlink_to(find(name))
    monkeypatch.setenv("HARNESS_HOME", str(home))
    printed: list[str] = []
    statuses = {status.name: status for status in setup(printed.append)}
    assert [line for line in printed if "mvn" in line], printed
    assert len(printed) == 1  # nothing else was installed
    kafka = statuses["kafka-server"]
    assert (kafka.path, kafka.version) == (home / "bin" / "kafka-server", KAFKA_VERSION)
    jars = {jar.name for jar in (home / "lib" / f"kafka-server-{KAFKA_VERSION}").iterdir()}
    assert (
        f"kafka_2.13-{KAFKA_VERSION}.jar" in jars and f"kafka-clients-{KAFKA_VERSION}.jar" in jars
    )

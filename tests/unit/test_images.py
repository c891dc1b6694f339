"""Where the base image's Debian comes from, and what its recipe hashes cover."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.deploy import debian, images

DEB822 = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
"""


def etc(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


@pytest.fixture(autouse=True)
def no_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(debian.MIRROR_ENV, raising=False)


def test_deb822_source_serving_bookworm(tmp_path: Path) -> None:
    apt = etc(tmp_path, {"sources.list.d/debian.sources": DEB822})
    assert debian.mirror(apt) == "http://mirror.example/debian"


def test_classic_line_with_options_and_disabled_files_ignored(tmp_path: Path) -> None:
    apt = etc(
        tmp_path,
        {
            "sources.list": "# deb http://commented.example/debian bookworm main\n"
            "deb-src http://src.example/debian bookworm main\n"
            "deb [arch=amd64 signed-by=/k.gpg] http://classic.example/debian bookworm main\n",
            "sources.list.d/other.sources.disabled-by-farm": DEB822,
        },
    )
    assert debian.mirror(apt) == "http://classic.example/debian"


def test_disabled_stanza_and_other_suites(tmp_path: Path) -> None:
    apt = etc(
        tmp_path,
        {
            "sources.list.d/a.sources": "Enabled: no\nTypes: deb\nURIs: http://off.example/debian\n"
            "Suites: bookworm\n",
            "sources.list.d/b.list": "deb http://ubuntu.example/ubuntu noble main\n"
            "deb http://trixie.example/debian/ trixie main\n",
        },
    )
    # No source serves bookworm: a Debian archive serves every suite, an Ubuntu one does not.
    assert debian.mirror(apt) == "http://trixie.example/debian/"


def test_override_and_fallback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert debian.mirror(tmp_path) == debian.DEFAULT_MIRROR
    monkeypatch.setenv(debian.MIRROR_ENV, "http://given.example/debian")
    apt = etc(tmp_path, {"sources.list.d/debian.sources": DEB822})
    assert debian.mirror(apt) == "http://given.example/debian"


def test_tags_follow_the_recipe(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Another mirror is another base, so every kind's tag changes; another toxiproxy binary
    changes the toxiproxy image's tag only."""
    # The wheels' own resolution (pip download) is exercised where the python image is built,
    # in tests/integration/test_images.py; here only the recipes' hashing is.
    monkeypatch.setattr(images, "wheels", lambda say: [])
    kafka_jars(tmp_path, monkeypatch, "kafka_2.13-4.1.1.jar")  # the harness home is tmp_path
    binaries = {name: tmp_path / "bin" / name for name in images.BINARIES.values()}
    for binary in binaries.values():  # found by components.find in the home's bin folder
        binary.parent.mkdir(exist_ok=True)
        binary.write_bytes(binary.name.encode())
        binary.chmod(0o755)

    def tags() -> dict[str, str]:
        base = images._recipe("base", lambda _: None).tag
        return {kind: images._recipe(kind, lambda _: None, base).tag for kind in images.KINDS}

    first = tags()
    assert [tag.split(":")[0] for tag in first.values()] == [f"harness/{k}" for k in images.KINDS]
    assert all(len(tag.split(":")[1]) == 12 for tag in first.values())
    assert tags() == first
    binaries["toxiproxy-server"].write_bytes(b"another build")
    second = tags()
    assert {k for k in images.KINDS if first[k] != second[k]} == {"toxiproxy"}
    monkeypatch.setenv(debian.MIRROR_ENV, "http://mirror.invalid/debian")
    third = tags()
    assert all(third[k] != second[k] for k in images.KINDS)


def test_where_images_come_from(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(images.SOURCE_ENV, raising=False)
    assert images.source() == "auto"
    monkeypatch.setenv(images.SOURCE_ENV, "built")
    assert images.source() == "built"
    monkeypatch.setenv(images.SOURCE_ENV, "dockerhub")
    with pytest.raises(images.EnvironmentProblem, match="HARNESS_IMAGES='dockerhub' is not one"):
        images.source()


def kafka_jars(home: Path, monkeypatch: pytest.MonkeyPatch, *names: str) -> Path:
    """A harness home whose kafka-server jars are these (empty files)."""
    monkeypatch.setenv("HARNESS_HOME", str(home))
    libs = home / "lib" / f"kafka-server-{images.components.KAFKA_VERSION}"
    if libs.is_dir():
        for old in libs.iterdir():
            old.unlink()
    libs.mkdir(parents=True, exist_ok=True)
    for name in names:
        (libs / name).write_bytes(b"")
    return libs


def test_the_kafka_recipe_follows_its_jars(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The kafka image holds the host's jars and a launcher that reads them where it puts them;
    another Kafka version (other jar names) is another tag."""
    kafka_jars(tmp_path, monkeypatch, "kafka_2.13-4.1.1.jar", "kafka-clients-4.1.1.jar")
    first = images._recipe("kafka", lambda _: None, "harness/base:x")
    assert sorted(first.files) == [
        "kafka/kafka-server",
        "kafka/libs/kafka-clients-4.1.1.jar",
        "kafka/libs/kafka_2.13-4.1.1.jar",
    ]
    launcher = first.files["kafka/kafka-server"].read_text()
    assert f"-cp '{images.KAFKA_LIBS}/*'" in launcher and "kafka.tools.StorageTool" in launcher
    assert "FROM harness/base:x\n" in first.text and "openjdk-17-jre-headless" in first.text
    assert images._recipe("kafka", lambda _: None, "harness/base:x").tag == first.tag
    kafka_jars(tmp_path, monkeypatch, "kafka_2.13-4.2.0.jar", "kafka-clients-4.2.0.jar")
    assert images._recipe("kafka", lambda _: None, "harness/base:x").tag != first.tag
    kafka_jars(tmp_path, monkeypatch)
    with pytest.raises(images.EnvironmentProblem, match="Kafka jars"):
        images._recipe("kafka", lambda _: None, "harness/base:x")

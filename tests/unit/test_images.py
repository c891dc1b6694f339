"""Where the base image's Debian comes from, and what its recipe hashes cover."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.deploy import images

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
    monkeypatch.delenv(images.MIRROR_ENV, raising=False)


def test_deb822_source_serving_bookworm(tmp_path: Path) -> None:
    apt = etc(tmp_path, {"sources.list.d/debian.sources": DEB822})
    assert images.mirror(apt) == "http://mirror.example/debian"


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
    assert images.mirror(apt) == "http://classic.example/debian"


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
    assert images.mirror(apt) == "http://trixie.example/debian/"


def test_override_and_fallback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert images.mirror(tmp_path) == images.DEFAULT_MIRROR
    monkeypatch.setenv(images.MIRROR_ENV, "http://given.example/debian")
    apt = etc(tmp_path, {"sources.list.d/debian.sources": DEB822})
    assert images.mirror(apt) == "http://given.example/debian"


def test_tags_follow_the_recipe(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Another mirror is another base, so every kind's tag changes; another toxiproxy binary
    changes the toxiproxy image's tag only."""
    monkeypatch.setattr(images, "_wheels", lambda say: [])  # no pip download in a unit test
    binary = tmp_path / "toxiproxy-server"
    binary.write_bytes(b"one")
    monkeypatch.setattr(images.components, "find", lambda name: binary)

    def tags() -> dict[str, str]:
        return {kind: images._recipe(kind, lambda _: None).tag for kind in images.KINDS}

    first = tags()
    assert [tag.split(":")[0] for tag in first.values()] == [f"harness/{k}" for k in images.KINDS]
    assert all(len(tag.split(":")[1]) == 12 for tag in first.values())
    assert tags() == first
    binary.write_bytes(b"two")
    second = tags()
    assert {k for k in images.KINDS if first[k] != second[k]} == {"toxiproxy"}
    monkeypatch.setenv(images.MIRROR_ENV, "http://mirror.invalid/debian")
    third = tags()
    assert all(third[k] != second[k] for k in images.KINDS)

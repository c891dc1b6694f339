"""The images the docker deployer runs: public ones where they can be had, else built on this
machine and cached by their content.

Each kind that has a public image (:data:`PUBLIC`) takes it when the engine has it or can pull
it (:func:`provide` says in which order, :func:`source` how ``HARNESS_IMAGES`` narrows it).
Where no registry answers, every image starts from a Debian base made on this machine:
``debootstrap --variant=minbase bookworm`` from the machine's own apt mirror, imported as
``harness/base``. The other kinds are ``docker build``s on top of it: ``redis`` (Debian's
redis-server), ``python`` (Debian's python3 with a venv at :data:`PYTHON` holding the reference
services' packages, installed offline from wheels downloaded on the host, at the versions the
harness's own environment has), ``toxiproxy`` (the toxiproxy-server binary the harness uses),
``rabbitmq`` and ``nats`` (Debian's rabbitmq-server and nats-server), ``kafka`` (Debian's
Java 17 runtime, the Kafka jars ``harness setup`` fetched and a ``kafka-server`` launcher) and
``prometheus`` (the harness's prometheus binary).

Each image is tagged ``harness/<kind>:<first 12 hex of its recipe hash>``; the recipe hash covers
everything that decides the image's content, so :func:`ensure` is one lookup when the image is
there, and a changed recipe gives a new tag instead of a stale image. The debootstrap tarball is
kept under ``components.home()/images``, so an emptied Docker store costs an import (seconds),
not a second debootstrap. A file lock per kind keeps two harnesses from building the same image
at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests

from harness import components
from harness.deploy.debian import debootstrap, debootstrap_args
from harness.deploy.image_cache import LOG_TAIL_LINES, images_dir, locked
from harness.deploy.wheels import wheels
from harness.errors import EnvironmentProblem
from harness.topology import ComponentSpec

KINDS = ("base", "redis", "python", "toxiproxy", "rabbitmq", "nats", "kafka", "prometheus")
PYTHON = "/opt/harness/bin/python"  # the interpreter inside the "python" image (a venv)

LABEL = "harness.image"  # every image carries its kind under this label
RECIPE_LABEL = "harness.recipe"  # and its full recipe hash
# Kinds that are one binary of the harness's components, copied in.
BINARIES = {"toxiproxy": "toxiproxy-server", "prometheus": "prometheus"}
SOURCE_ENV = "HARNESS_IMAGES"
SOURCES = ("auto", "public", "built")
# The public image of each kind, used where the engine has it or can pull it; a kind without
# one (python: the services' packages) is always built, FROM the base, public or not.
# Their entrypoints are bypassed (see harness.deploy.containers), so each needs its program on the
# PATH as the harness's own build has it.
PUBLIC = {
    "base": "debian:bookworm-slim",
    "redis": "redis:7.0-bookworm",
    "toxiproxy": f"ghcr.io/shopify/toxiproxy:{components.TOXIPROXY_VERSION}",
    "prometheus": f"prom/prometheus:v{components.PROMETHEUS_VERSION}",
    "nats": "nats:2.10-alpine",  # nats-server on the PATH, unlike the scratch one
    # The brokers' scripts look for the servers where these images have them too.
    "rabbitmq": "rabbitmq:3.13",
    "kafka": f"apache/kafka:{components.KAFKA_VERSION}",
}
KAFKA_LIBS = "/opt/kafka/libs"  # where the "kafka" image keeps the Kafka jars
# Raised whenever the way an image is made changes in a way its recipe texts do not show.
RECIPE_VERSION = 1
# A build's log is read as it comes; this long without a line ends it.
BUILD_IDLE_TIMEOUT_S = 900

APT_INSTALL = (
    "RUN apt-get update \\\n"
    " && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends {packages} \\\n"
    " && apt-get clean && rm -rf /var/lib/apt/lists/*\n"
)
DOCKERFILES = {
    "redis": "FROM {base}\n" + APT_INSTALL.format(packages="redis-server"),
    "python": "FROM {base}\n"
    + APT_INSTALL.format(packages="python3 python3-venv")
    + "COPY wheels /tmp/wheels\n"
    f"RUN python3 -m venv {Path(PYTHON).parent.parent} \\\n"
    f" && {PYTHON} -m pip install --no-index --no-cache-dir --disable-pip-version-check \\\n"
    "      --find-links /tmp/wheels /tmp/wheels/*.whl \\\n"
    " && rm -rf /tmp/wheels\n",
    # Where the public image has it.
    "toxiproxy": "FROM {base}\nCOPY toxiproxy-server /toxiproxy\n",
    "prometheus": "FROM {base}\nCOPY prometheus /bin/prometheus\n",
    # No init system: policy-rc.d keeps the package from starting its service in the build.
    "rabbitmq": "FROM {base}\n"
    "RUN printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d \\\n"
    " && chmod +x /usr/sbin/policy-rc.d\n" + APT_INSTALL.format(packages="rabbitmq-server"),
    "nats": "FROM {base}\n" + APT_INSTALL.format(packages="nats-server"),
    # The jars the harness fetched from Maven Central, and a launcher like the host's.
    "kafka": "FROM {base}\n"
    + APT_INSTALL.format(packages="openjdk-17-jre-headless")
    + f"COPY kafka/libs {KAFKA_LIBS}\n"
    "COPY kafka/kafka-server /usr/local/bin/kafka-server\n"
    "RUN chmod 755 /usr/local/bin/kafka-server\n",
}


@dataclass(frozen=True)
class Image:
    """What :func:`provide` did for one kind."""

    kind: str
    tag: str
    how: str  # found (the engine had it), pulled, or built
    seconds: float  # the time ensuring it took, building included


@dataclass(frozen=True)
class Recipe:
    """Everything that decides an image's content, and the tag that names it."""

    kind: str
    # The Dockerfile of a built kind; for the base, the debootstrap command (without its
    # target folder) and the changes the import applies.
    text: str
    # Files the build context holds: its name there -> the file on this machine.
    files: dict[str, Path] = field(default_factory=dict)
    # What stands for each file's content in the hash (a wheel's name, a binary's sha256).
    identities: dict[str, str] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        document = {
            "version": RECIPE_VERSION,
            "kind": self.kind,
            "text": self.text,
            "files": self.identities,
        }
        return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()

    @property
    def tag(self) -> str:
        return f"harness/{self.kind}:{self.digest[:12]}"


def connect(timeout: float = 120) -> docker.DockerClient:
    """A ``docker.DockerClient`` for the engine of this machine (``DOCKER_HOST`` and friends),
    or an error that says how to start one."""
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except (docker.errors.DockerException, requests.RequestException) as error:
        sudo = "" if os.geteuid() == 0 else "sudo "
        raise EnvironmentProblem(
            f"the Docker engine is not reachable ({error}); start it as root with "
            f"`{sudo}dockerd > {components.home() / 'dockerd.log'} 2>&1 &` (on Debian it is "
            f"the docker.io package: {sudo}apt-get install -y docker.io), or point DOCKER_HOST "
            "at a running one"
        ) from error
    return client


def ensure(
    client: docker.DockerClient, kind: str, say: Callable[[str], None] = lambda _: None
) -> str:
    """The tag of a ready image of this kind, built now if no image with the same recipe exists."""
    return provide(client, kind, say).tag


def provide(
    client: docker.DockerClient, kind: str, say: Callable[[str], None] = lambda _: None
) -> Image:
    """As :func:`ensure`, saying also how the image was had and how long that took.

    In the order of :func:`source`'s policy: the kind's public image if the engine has it;
    the harness's own build of the same recipe if the engine has that; the public image
    pulled; the harness's own, built now."""
    if kind not in KINDS:
        raise ValueError(f"unknown image kind {kind!r}; the kinds are {', '.join(KINDS)}")
    started = time.monotonic()
    policy = source()
    public = PUBLIC.get(kind) if policy != "built" else None

    def had(tag: str, how: str) -> Image:
        return Image(kind, tag, how, time.monotonic() - started)

    if public is not None and _exists(client, public):
        return had(public, "found")
    if public is not None and policy == "public":
        return had(_pull(client, public, say, required=True), "pulled")
    base = provide(client, "base", say).tag if kind != "base" else ""
    recipe = _recipe(kind, say, base)
    if _exists(client, recipe.tag):
        return had(recipe.tag, "found")
    if public is not None and _pull(client, public, say, required=False):
        return had(public, "pulled")
    with locked(kind, say):
        if _exists(client, recipe.tag):  # another harness has built it meanwhile
            return had(recipe.tag, "found")
        if kind == "base":
            _import_base(client, recipe, say)
        else:
            _build(client, recipe, say)
        return had(recipe.tag, "built")


def own(image: str) -> bool:
    """Whether an image is one of the harness's kinds, built here or public."""
    return image.startswith("harness/") or image in PUBLIC.values()


def source() -> str:
    """Where images come from (``HARNESS_IMAGES``): ``auto`` (the default) takes a kind's
    public image when the engine has it or can pull it and builds the harness's own when not;
    ``public`` never builds a kind that has a public image; ``built`` never pulls."""
    policy = os.environ.get(SOURCE_ENV, "auto").strip() or "auto"
    if policy not in SOURCES:
        raise EnvironmentProblem(
            f"{SOURCE_ENV}={policy!r} is not one of {', '.join(SOURCES)} (where the docker "
            "deployer's images come from)"
        )
    return policy


def _pull(client: Any, image: str, say: Callable[[str], None], required: bool) -> str:
    """Pull a public image; its name, or "" when it cannot be had and was not ``required``."""
    say(f"pulling {image}")
    repository, _, tag = image.rpartition(":")
    try:
        client.images.pull(repository, tag=tag)
    except (docker.errors.DockerException, requests.RequestException) as error:
        if required:
            raise EnvironmentProblem(
                f"pulling {image} failed ({error}); with {SOURCE_ENV}=auto the harness "
                "builds its own image instead when a pull fails"
            ) from error
        say(f"cannot pull {image}; building the harness's own instead")
        return ""
    return image


# --- recipes ------------------------------------------------------------------------------


def _recipe(kind: str, say: Callable[[str], None], base: str = "") -> Recipe:
    """The recipe of a kind; ``base`` is the image a built kind starts FROM."""
    if kind == "base":
        return Recipe("base", json.dumps({"debootstrap": debootstrap_args(), "import": _changes()}))
    text = DOCKERFILES[kind].format(base=base)
    if kind == "python":
        files = {f"wheels/{wheel.name}": wheel for wheel in wheels(say)}
        return Recipe(kind, text, files, {name: name for name in files})
    if kind in BINARIES:
        binary = components.find(BINARIES[kind])
        return Recipe(
            kind,
            text,
            {binary.name: binary},
            {binary.name: hashlib.sha256(binary.read_bytes()).hexdigest()},
        )
    if kind == "kafka":
        return _kafka_recipe(text)
    return Recipe(kind, text)


def _kafka_recipe(text: str) -> Recipe:
    """The jars of the ``kafka-server`` component (named by version, so their names identify
    them) and a launcher written as ``harness setup`` writes the host's, reading them from
    :data:`KAFKA_LIBS`."""
    component = next(c for c in components.CATALOGUE if c.name == "kafka-server")
    libs = components.maven_libs(component)
    jars = sorted(libs.glob("*.jar"))
    if not jars:
        raise EnvironmentProblem(
            f"the kafka image is made from the Kafka jars in {libs}, and there are none: "
            f"{components.install_hint(component.name)}"
        )
    launcher_text = components.maven_launcher(component, KAFKA_LIBS)
    launcher = images_dir() / "kafka-server.launcher"
    if not launcher.is_file() or launcher.read_text() != launcher_text:
        launcher.parent.mkdir(parents=True, exist_ok=True)
        partial = launcher.with_suffix(f".{os.getpid()}")
        partial.write_text(launcher_text)
        os.replace(partial, launcher)
    files = {f"kafka/libs/{jar.name}": jar for jar in jars}
    identities = {name: name for name in files}
    files["kafka/kafka-server"] = launcher
    identities["kafka/kafka-server"] = hashlib.sha256(launcher_text.encode()).hexdigest()
    return Recipe("kafka", text, files, identities)


def _changes() -> list[str]:
    return [
        f"LABEL {LABEL}=base",
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        'CMD ["/bin/bash"]',
    ]


# --- the base: debootstrap, a cached tarball, an import -------------------------------------


def _import_base(client: Any, recipe: Recipe, say: Callable[[str], None]) -> None:
    tarball = images_dir() / f"base-{recipe.digest[:12]}.tar"
    if not tarball.is_file():
        debootstrap(tarball, say)
    repository, tag = recipe.tag.split(":")
    say(f"importing {tarball} as {recipe.tag}")
    with _docker_errors("importing the base image"):
        answer = client.api.import_image(
            src=str(tarball),
            repository=repository,
            tag=tag,
            changes=[*_changes(), f"LABEL {RECIPE_LABEL}={recipe.digest}"],
        )
    for line in str(answer).splitlines():
        with contextlib.suppress(ValueError):
            message = json.loads(line)
            if isinstance(message, dict) and message.get("error"):
                raise EnvironmentProblem(f"importing the base image failed: {message['error']}")
    if not _exists(client, recipe.tag):
        raise EnvironmentProblem(f"importing the base image failed: {str(answer)[-2000:]}")


# --- wheels for the python image -------------------------------------------------------------


# --- building ---------------------------------------------------------------------------------


def _build(client: Any, recipe: Recipe, say: Callable[[str], None]) -> None:
    images_dir().mkdir(parents=True, exist_ok=True)
    log = images_dir() / f"{recipe.kind}.build.log"
    last: deque[str] = deque(maxlen=LOG_TAIL_LINES)
    say(f"building {recipe.tag}")
    with (
        tempfile.TemporaryDirectory(prefix=f"build-{recipe.kind}-", dir=images_dir()) as context,
        log.open("w") as out,
    ):
        (Path(context) / "Dockerfile").write_text(recipe.text)
        for name, source in recipe.files.items():
            (Path(context) / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, Path(context) / name)
        error = ""
        with _docker_errors(f"building the {recipe.kind} image"):
            stream = client.api.build(
                path=context,
                tag=recipe.tag,
                rm=True,
                forcerm=True,
                pull=False,
                labels={LABEL: recipe.kind, RECIPE_LABEL: recipe.digest},
                decode=True,
                timeout=BUILD_IDLE_TIMEOUT_S,
            )
            for chunk in stream:
                text = str(chunk.get("stream", ""))
                if chunk.get("error"):
                    error = str(chunk["error"])
                    text += error + "\n"
                out.write(text)
                for line in text.splitlines():
                    if line.strip():
                        last.append(line.rstrip())
                        if line.startswith("Step "):
                            say(f"{recipe.kind}: {line.strip()}")
    if error or not _exists(client, recipe.tag):
        lines = "\n".join(last)
        raise EnvironmentProblem(
            f"building the {recipe.kind} image failed: {error or 'no image came out'} "
            f"(its log: {log})\n--- last lines of the build log ---\n{lines}"
        )


def _exists(client: Any, tag: str) -> bool:
    with _docker_errors(f"looking up {tag}"):
        try:
            client.images.get(tag)
        except docker.errors.ImageNotFound:
            return False
    return True


@contextlib.contextmanager
def _docker_errors(doing: str) -> Iterator[None]:
    """The SDK's and the transport's errors, as an environment problem naming what failed."""
    try:
        yield
    except (docker.errors.DockerException, requests.RequestException) as error:
        raise EnvironmentProblem(f"{doing} failed: {error}") from error


IMAGE_OF_PROGRAM = {"{python}": "python", "redis-server": "redis", "nats-server": "nats"}

OWN_IMAGE = re.compile(r"harness/([a-z0-9]+)")  # an image named so, with no tag: the harness's


def image_kind(name: str, spec: ComponentSpec) -> str:
    """Which of the harness's own images runs a component that names none."""
    program = spec.command[0] if spec.command else ""
    if program in IMAGE_OF_PROGRAM:
        return IMAGE_OF_PROGRAM[program]
    raise EnvironmentProblem(
        f"{name}: give it an image (components.{name}.image) to run with the docker deployer; "
        f"the harness has images only for {', '.join(sorted(IMAGE_OF_PROGRAM))} commands"
    )


def image_for(
    client: docker.DockerClient,
    name: str,
    spec: ComponentSpec,
    say: Callable[[str], None] = lambda _: None,
) -> str:
    """The image a component runs as: the one it names; ``harness/<kind>`` (no tag) is the
    harness's own image of that kind, built here if it is not yet; none named, the harness's
    own for its command (see :func:`image_kind`)."""
    if spec.image is None:
        return ensure(client, image_kind(name, spec), say)
    own = OWN_IMAGE.fullmatch(spec.image)
    if own is None:
        return spec.image
    if own.group(1) not in KINDS:
        raise EnvironmentProblem(
            f"{name}: image {spec.image} names no image of the harness's; its kinds are "
            f"{', '.join(KINDS)} (or give a tag for an image of your own)"
        )
    return ensure(client, own.group(1), say)

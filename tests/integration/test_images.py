"""The images the docker deployer runs, on the real engine: built here from a debootstrapped
Debian base (no registry), cached by their recipe, and each able to do its job."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis

from harness import components
from harness.deploy import images
from harness.errors import EnvironmentProblem
from harness.topology import ComponentSpec

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TEST_LABEL = "harness.test"
# Everything a test session creates carries both labels; the finalizer removes by them.
SESSION = uuid.uuid4().hex[:12]
LABELS = {TEST_LABEL: "1", f"{TEST_LABEL}.session": SESSION}


def sweep(client: Any) -> None:
    """Remove every container, then every network, that this session created."""
    selector = {"label": f"{TEST_LABEL}.session={SESSION}"}
    for container in client.containers.list(all=True, filters=selector):
        container.remove(force=True)
    for network in client.networks.list(filters=selector):
        network.remove()


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    try:
        engine = images.connect()
    except EnvironmentProblem as exc:
        pytest.fail(str(exc))
    try:
        yield engine
    finally:
        sweep(engine)
        engine.close()


@pytest.fixture
def network(client: Any) -> Iterator[Any]:
    """A user-defined network; on the way out, the test's containers and networks are removed."""
    net = client.networks.create(f"harness-test-{SESSION}-{uuid.uuid4().hex[:6]}", labels=LABELS)
    try:
        yield net
    finally:
        sweep(client)


def start(client: Any, tag: str, command: list[str], network: Any) -> str:
    """Run a container of this image on the network; its address there."""
    container = client.containers.run(
        tag, command, detach=True, network=network.name, labels=LABELS
    )
    container.reload()
    address: str = container.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"]
    assert address, container.attrs["NetworkSettings"]
    return address


def eventually(attempt: Callable[[], Any], *retried: type[Exception], timeout_s: float = 20) -> Any:
    """The first answer of a server that is starting: only a refused connection is tried again."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return attempt()
        except retried:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_redis_image_serves_on_a_user_network_and_is_then_found_not_rebuilt(
    client: Any, network: Any
) -> None:
    tag = images.ensure(client, "redis")
    assert tag.startswith("harness/redis:")
    image = client.images.get(tag)
    assert image.labels[images.LABEL] == "redis"

    # Without a config file, Redis 7 starts in protected mode (no password: loopback only), and
    # --bind alone does not lift it: another container, or the host, is refused with DENIED.
    command = ["redis-server", "--port", "7777", "--bind", "0.0.0.0", "--protected-mode", "no"]
    address = start(client, tag, command, network)
    connection = redis.Redis(host=address, port=7777, socket_timeout=2, socket_connect_timeout=2)
    try:
        assert eventually(connection.ping, redis.ConnectionError, redis.TimeoutError) is True
    finally:
        connection.close()

    said: list[str] = []
    again = images.provide(client, "redis", said.append)
    assert (again.tag, again.how) == (tag, "found")
    assert said == []  # nothing downloaded, imported or built
    assert client.images.get(tag).id == image.id


def test_a_public_image_the_engine_has_comes_first_unless_built_is_asked(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No registry answers here, so the "public" image is the harness's own under a name of
    this test's: what is tested is the order of the choice, on the real engine."""
    built = images.ensure(client, "redis")
    public = f"harness-test/public-redis:{SESSION}"
    monkeypatch.setitem(images.PUBLIC, "redis", public)
    monkeypatch.delenv(images.SOURCE_ENV, raising=False)
    client.images.get(built).tag(public)
    try:
        assert (images.provide(client, "redis").tag, images.provide(client, "redis").how) == (
            public,
            "found",
        )
        monkeypatch.setenv(images.SOURCE_ENV, "built")
        assert images.ensure(client, "redis") == built
    finally:
        client.images.remove(public)
    # Absent and not pullable: "public" says so; "auto" takes the build (here: found).
    monkeypatch.setitem(images.PUBLIC, "redis", "127.0.0.1:9/harness-test/redis:1")
    monkeypatch.setenv(images.SOURCE_ENV, "public")
    with pytest.raises(EnvironmentProblem, match=r"pulling 127\.0\.0\.1:9/harness-test/redis:1"):
        images.ensure(client, "redis")
    monkeypatch.setenv(images.SOURCE_ENV, "auto")
    assert images.ensure(client, "redis") == built


def test_harness_kind_without_a_tag_is_the_harness_s_own_image(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(images.SOURCE_ENV, "built")  # the harness's own, whatever the engine has

    def image(**fields: object) -> str:
        return images.image_for(client, "broker", ComponentSpec.model_validate(fields))

    kafka, nats, python = (images.ensure(client, kind) for kind in ("kafka", "nats", "python"))
    assert kafka.startswith("harness/kafka:")
    assert image(command=["sh", "broker.sh"], image="harness/kafka") == kafka
    assert image(command=["sh", "broker.sh"], image="harness/kafka:mine") == "harness/kafka:mine"
    assert image(command=["x"], image="rabbitmq:3.13") == "rabbitmq:3.13"
    assert image(command=["nats-server", "-js"]) == nats
    assert image(command=["{python}", "api.py"]) == python
    with pytest.raises(EnvironmentProblem, match="names no image of the harness's"):
        image(command=["x"], image="harness/postgres")
    with pytest.raises(EnvironmentProblem, match="give it an image"):
        image(command=["java", "-jar", "x.jar"])


def test_python_image_imports_what_the_reference_services_import(client: Any) -> None:
    tag = images.ensure(client, "python")
    imports = (
        "import redis, httptools, uvloop, prometheus_client, httpx, aio_pika, pika, nats, "
        "confluent_kafka"
    )
    output = client.containers.run(
        tag,
        [images.PYTHON, "-c", f"{imports}; print(redis.__version__)"],
        labels=LABELS,
        remove=True,
    )
    # The versions of the harness's own environment, so that behaviour matches.
    assert output.decode().strip() == redis.__version__


def test_toxiproxy_image_serves_its_api_on_a_user_network(client: Any, network: Any) -> None:
    tag = images.ensure(client, "toxiproxy")
    assert client.images.get(tag).attrs["Config"]["Entrypoint"] in (None, [])
    command = ["/toxiproxy", "-host", "0.0.0.0", "-port", "8474"]  # the public image's path
    address = start(client, tag, command, network)

    def version() -> str:
        answer = httpx.get(f"http://{address}:8474/version", timeout=2)
        answer.raise_for_status()
        return answer.text

    assert components.TOXIPROXY_VERSION in eventually(version, httpx.TransportError)


def test_the_base_cuts_a_container_off_from_inside_its_namespace(client: Any, network: Any) -> None:
    """iptables is in the base (under every kind): a DROP rule in the container's own namespace
    partitions it as a real network fault would, new connections hang rather than fail."""
    tag = images.ensure(client, "toxiproxy")
    container = client.containers.run(
        tag,
        ["/toxiproxy", "-host", "0.0.0.0", "-port", "8474"],
        detach=True,
        network=network.name,
        labels=LABELS,
        cap_add=["NET_ADMIN"],
    )
    container.reload()
    address = container.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"]
    url = f"http://{address}:8474/version"
    eventually(lambda: httpx.get(url, timeout=2).raise_for_status(), httpx.TransportError)

    code, output = container.exec_run(["iptables", "-A", "INPUT", "-p", "tcp", "-j", "DROP"])
    assert code == 0, output
    with pytest.raises(httpx.ConnectTimeout):
        httpx.get(url, timeout=1)
    code, output = container.exec_run(["iptables", "-D", "INPUT", "-p", "tcp", "-j", "DROP"])
    assert code == 0, output
    assert httpx.get(url, timeout=2).status_code == 200


def test_cli_says_found_and_an_absent_engine_is_an_environment_problem(harness_cli) -> None:  # type: ignore[no-untyped-def]
    images.ensure(images.connect(), "toxiproxy")
    found = harness_cli("images", "--kind", "toxiproxy")
    assert found.returncode == 0, found.stderr
    assert "harness/toxiproxy:" in found.stdout and "found" in found.stdout

    absent = harness_cli("images", env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert absent.returncode == 2, absent.stdout + absent.stderr
    assert "dockerd" in absent.stderr and "docker.io" in absent.stderr


def test_a_failed_build_names_its_kind_and_shows_the_log(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = "FROM {base}\nRUN echo the mirror is gone && false\n"
    monkeypatch.setitem(images.DOCKERFILES, "redis", broken)
    with pytest.raises(EnvironmentProblem) as caught:
        images.ensure(client, "redis")
    assert "building the redis image failed" in str(caught.value)
    assert "the mirror is gone" in str(caught.value)  # the last lines of the build log
    assert not client.containers.list(all=True, filters={"label": f"{images.LABEL}=redis"})

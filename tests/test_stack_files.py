"""The observability stack's files, checked without Docker: compose, collector, Prometheus, Grafana."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from otel_memory.alerts import RULES_FILE
from otel_memory.dashboards import DASHBOARDS
from tests.conftest import ROOT, require_tool

COMPOSE = ROOT / "docker-compose.observability.yml"
SERVICES = {"demo", "otel-collector", "prometheus", "alertmanager", "grafana"}


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _compose() -> dict[str, Any]:
    return _yaml(COMPOSE)  # type: ignore[no-any-return]


def _mounts(service: str) -> dict[str, Path]:
    """{container path: host path} of a service's bind mounts."""
    mounts = {}
    for volume in _compose()["services"][service].get("volumes", []):
        host, container = volume.split(":")[:2]
        mounts[container] = (ROOT / host).resolve()
    return mounts


def _host_file(service: str, container_path: str) -> Path:
    """The repository file a container sees at ``container_path`` through the service's mounts."""
    for container, host in sorted(_mounts(service).items(), key=lambda item: -len(item[0])):
        if container_path == container or container_path.startswith(container.rstrip("/") + "/"):
            return host / container_path[len(container):].lstrip("/")
    raise AssertionError(f"{service} mounts nothing at {container_path}")


def _flag(service: str, name: str) -> str:
    command = _compose()["services"][service]["command"]
    for item in command:
        if item.startswith(f"{name}="):
            return str(item.split("=", 1)[1])
    raise AssertionError(f"{service} has no {name} flag: {command}")


def test_compose_file_names_the_stack_and_pins_every_image() -> None:
    services = _compose()["services"]
    assert set(services) == SERVICES
    for name, service in services.items():
        if "image" in service:
            image = service["image"]
            assert re.fullmatch(r"[\w./-]+:v?\d+\.\d+\.\d+", image), f"{name}: {image} is not pinned"
        else:
            dockerfile = ROOT / service["build"]["context"] / service["build"]["dockerfile"]
            bases = re.findall(r"^FROM (\S+)", dockerfile.read_text(), flags=re.MULTILINE)
            pinned = [re.fullmatch(r"[\w./-]+:\d+\.\d+\.\d+[\w.-]*", base) for base in bases]
            assert bases and all(pinned), f"{name}: {bases} are not pinned"


def test_every_mounted_path_exists() -> None:
    for service in SERVICES:
        for container, host in _mounts(service).items():
            assert host.exists(), f"{service} mounts {host} at {container}, which does not exist"
            assert ROOT in host.parents, f"{service} mounts {host} from outside the repository"


def test_the_demo_exports_to_the_collectors_otlp_receiver() -> None:
    demo = _compose()["services"]["demo"]
    endpoint = urlparse(demo["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"])
    assert endpoint.hostname == "otel-collector"
    protocol = demo["environment"]["OTEL_EXPORTER_OTLP_PROTOCOL"]
    collector = _yaml(_host_file("otel-collector", "/etc/otelcol-contrib/config.yaml"))
    receiver = collector["receivers"]["otlp"]["protocols"]["grpc" if protocol == "grpc" else "http"]
    assert receiver["endpoint"].endswith(f":{endpoint.port}")
    assert "otel-collector" in demo["depends_on"]


def test_collector_pipelines_reference_defined_components_and_reach_prometheus() -> None:
    config = _yaml(_host_file("otel-collector", "/etc/otelcol-contrib/config.yaml"))
    pipelines = config["service"]["pipelines"]
    for pipeline in pipelines.values():
        for kind in ("receivers", "processors", "exporters"):
            for component in pipeline.get(kind, []):
                assert component in config[kind], f"{component} is not defined under {kind}"
    metric_exporters = pipelines["metrics"]["exporters"]
    [otlp_http] = [name for name in metric_exporters if name.split("/")[0] == "otlphttp"]
    endpoint = urlparse(config["exporters"][otlp_http]["endpoint"])
    assert endpoint.hostname == "prometheus" and endpoint.path == "/api/v1/otlp"
    prometheus = _compose()["services"]["prometheus"]
    assert "--web.enable-otlp-receiver" in prometheus["command"]
    assert any(port.split(":")[-1] == str(endpoint.port) for port in prometheus["ports"])


def test_promtool_accepts_the_prometheus_config_with_the_mounted_rules(tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    config_path = _flag("prometheus", "--config.file")
    config_file = _host_file("prometheus", config_path)
    config = _yaml(config_file)
    # Rebuild the container's view: the config and the mounted rule folders beside it.
    container_dir = str(Path(config_path).parent)
    (tmp_path / "prometheus.yml").write_text(config_file.read_text())
    for pattern in config["rule_files"]:
        folder = Path(pattern).parent
        (tmp_path / folder).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / folder).symlink_to(_host_file("prometheus", f"{container_dir}/{folder}"))
    result = subprocess.run([promtool, "check", "config", str(tmp_path / "prometheus.yml")],
                            capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout
    assert RULES_FILE in result.stdout
    [target] = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    host, port = target.split(":")
    assert host == "alertmanager"
    assert any(p.split(":")[-1] == port for p in _compose()["services"]["alertmanager"]["ports"])


def test_alertmanager_loads_the_routing_of_alerts() -> None:
    path = _host_file("alertmanager", _flag("alertmanager", "--config.file"))
    assert path == (ROOT / "alerts" / "alertmanager.yml").resolve()


def test_grafana_provisions_the_prometheus_datasource_and_the_dashboards() -> None:
    provisioning = "/etc/grafana/provisioning"
    datasources = _host_file("grafana", f"{provisioning}/datasources")
    [prometheus] = [source for path in sorted(datasources.glob("*.yml"))
                    for source in _yaml(path)["datasources"] if source["type"] == "prometheus"]
    assert prometheus["uid"] == "prometheus", "the dashboards' datasource variable defaults to this uid"
    assert urlparse(prometheus["url"]).hostname == "prometheus"
    provider_files = sorted(_host_file("grafana", f"{provisioning}/dashboards").glob("*.yml"))
    providers = [provider for path in provider_files for provider in _yaml(path)["providers"]]
    assert providers
    for provider in providers:
        folder = _host_file("grafana", provider["options"]["path"])
        assert folder == (ROOT / "dashboards").resolve()
        assert {path.stem for path in folder.glob("*.json")} == {d.file_stem for d in DASHBOARDS}


@pytest.mark.parametrize("service", sorted(SERVICES - {"demo"}))
def test_every_config_file_a_service_loads_is_valid_yaml(service: str) -> None:
    for host in _mounts(service).values():
        files = [host] if host.is_file() else sorted(host.rglob("*.y*ml"))
        for path in files:
            if path.suffix in (".yml", ".yaml"):
                assert isinstance(_yaml(path), dict), f"{path} is not a YAML mapping"

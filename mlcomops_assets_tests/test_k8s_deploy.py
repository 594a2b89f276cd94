"""The Kubernetes files (deploy/k8s/) agree with the code, the team profile and dagster-k8s, without a cluster.

No cluster, Helm or Docker daemon runs here, so this checks what can be checked offline:

* the values name the image the Dockerfile builds (name and the package's version), the code location
  module that workspace.yaml and the Dockerfile load, and every setting the team profile reads; the
  documented settings pass the profile's own validation;
* the run launcher settings, rendered as the chart renders them into the instance, pass
  ``K8sRunLauncher.config_type()``; the code location's settings for launched runs pass
  ``K8sContainerContext``'s schema; a real ``K8sRunLauncher`` (on a kubeconfig naming no reachable
  server, never contacted) then builds the run worker's Job with dagster-k8s's own
  ``construct_dagster_k8s_job``, and the Job carries our image, secrets, volumes and limits;
* the whole dagster.yaml the values render into (PostgreSQL storage, queue, launcher, run monitoring)
  loads as a Dagster instance config, its storage passes dagster-postgres's schema;
* the Dockerfile installs from the lock with hashes and runs as a non-root user.
"""

from __future__ import annotations

import re
import tomllib

import pytest
import yaml

from mlcomops_assets import profile
from mlcomops_assets.settings import REPOSITORY_ROOT

K8S = REPOSITORY_ROOT / "deploy" / "k8s"
MODULE = "mlcomops_assets.definitions"
# The names the chart gives what it creates (release `mlcomops`, as in the README's install command).
CHART_INSTANCE_CONFIG_MAP = "mlcomops-dagster-instance"
CHART_DAGSTER_HOME = "/opt/dagster/dagster_home"
CHART_POSTGRES_SECRET = "dagster-postgresql-secret"


@pytest.fixture(scope="module")
def values() -> dict:
    return yaml.safe_load((K8S / "values.yaml").read_text())


@pytest.fixture(scope="module")
def deployment(values) -> dict:
    (only,) = values["dagster-user-deployments"]["deployments"]
    return only


@pytest.fixture(scope="module")
def secret() -> dict:
    return yaml.safe_load((K8S / "secret.example.yaml").read_text())


def _dockerfile() -> str:
    return (K8S / "Dockerfile").read_text()


# --- (a) the values against the Dockerfile, the code location and the team profile ---------------------------


def test_the_values_name_the_image_the_dockerfile_builds(deployment):
    title = re.search(r'org\.opencontainers\.image\.title="([^"]+)"', _dockerfile()).group(1)
    version = tomllib.loads((REPOSITORY_ROOT / "pyproject.toml").read_text())["project"]["version"]
    image = deployment["image"]
    assert image["repository"].rsplit("/", 1)[-1] == title
    assert image["tag"] == version and image["tag"] != "latest"
    # The build command in the Dockerfile's header builds exactly that reference.
    assert f"-t {image['repository']}:{image['tag']}" in _dockerfile()


def test_the_code_location_is_the_module_workspace_yaml_and_the_image_load(deployment):
    workspace = yaml.safe_load((REPOSITORY_ROOT / "workspace.yaml").read_text())
    assert workspace["load_from"][0]["python_module"]["module_name"] == MODULE
    assert deployment["dagsterApiGrpcArgs"] == ["-m", MODULE]
    assert f'"-m", "{MODULE}"' in _dockerfile()


def test_every_team_setting_is_provided_and_secrets_only_through_the_secret(deployment, secret):
    env, secret_values = deployment["env"], secret["stringData"]
    provided = set(env) | set(secret_values)
    needed = {profile.PROFILE_ENV, *profile.TEAM_VARIABLES, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    assert needed <= provided, f"not provided: {sorted(needed - provided)}"
    assert env[profile.PROFILE_ENV] == profile.TEAM
    # Database URLs carry passwords and the keys are credentials: never in the values' plain env.
    secret_names = {profile.DAGSTER_POSTGRES_URL_ENV, profile.MLFLOW_TRACKING_URI_ENV, "AWS_SECRET_ACCESS_KEY"}
    assert secret_names <= set(secret_values) and not secret_names & set(env)
    assert all("@" not in str(v) for v in env.values())
    assert [s["name"] for s in deployment["envSecrets"]] == [secret["metadata"]["name"]]
    assert all(v.startswith("postgresql") and "CHANGE-ME" in v for k, v in secret_values.items() if "URL" in k)


def test_the_documented_settings_pass_the_team_profiles_validation(deployment, secret):
    loaded = profile.load_profile({**deployment["env"], **secret["stringData"]})
    assert loaded.is_team and loaded.object_store_url == deployment["env"][profile.OBJECT_STORE_URL_ENV]
    assert loaded.dask_scheduler.startswith("tcp://")


def test_key_files_come_from_read_only_secret_volumes(deployment):
    mounts = {m["name"]: m for m in deployment["volumeMounts"]}
    volumes = {v["name"]: v for v in deployment["volumes"]}
    for variable in ("MLCOMOPS_SIGNING_KEY_FILE", "MLCOMOPS_PSEUDONYM_KEY_FILE"):
        path = deployment["env"][variable]
        (mount,) = [m for m in mounts.values() if path.startswith(m["mountPath"] + "/")]
        assert mount.get("readOnly") is True and "secret" in volumes[mount["name"]]
    home = [m for m in mounts.values() if m["mountPath"] == deployment["env"]["MLCOMOPS_HOME"]]
    assert home and "persistentVolumeClaim" in volumes[home[0]["name"]]


def test_no_password_is_written_in_the_values(values):
    assert "postgresqlPassword" not in values["postgresql"] and values["generatePostgresqlPasswordSecret"] is False
    assert not re.search(r"(?i)(password|secret_access_key)\s*:\s*\S", (K8S / "values.yaml").read_text())


def test_one_run_at_a_time_as_in_the_team_instance(values):
    daemon = values["dagsterDaemon"]
    assert daemon["runCoordinator"]["type"] == "QueuedRunCoordinator"
    # The chart renders maxConcurrentRuns into the coordinator's own config, where the team instance
    # sets it too (a top-level concurrency block does not reach an explicitly named coordinator).
    team_instance = yaml.safe_load((REPOSITORY_ROOT / "config" / "dagster.team.yaml").read_text())
    assert (
        daemon["runCoordinator"]["config"]["queuedRunCoordinator"]["maxConcurrentRuns"]
        == team_instance["run_coordinator"]["config"]["max_concurrent_runs"]
        == 1
    )
    assert daemon["runMonitoring"]["enabled"] is True and values["runLauncher"]["type"] == "K8sRunLauncher"


def test_the_dockerfile_installs_the_lock_with_hashes_as_a_non_root_user():
    text = _dockerfile()
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    assert "pip install --require-hashes --no-deps -r requirements/runtime.lock" in text
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1].split(":")[0] not in ("0", "root")
    # Every path the image copies exists, and the build context filter lets exactly those through.
    copied = [p for line in re.findall(r"^COPY\s+(.+)$", text, re.M) for p in line.split()[:-1]]
    assert copied and all((REPOSITORY_ROOT / p).exists() for p in copied)
    allowed = {
        line[1:].rstrip("/") for line in (K8S / "Dockerfile.dockerignore").read_text().split() if line[:1] == "!"
    }
    assert {p.split("/")[0] for p in copied} <= allowed
    assert not {"data", ".venv", ".mlflow", ".dagster_home"} & allowed


# --- (b) the run launcher and the launched runs' settings against dagster-k8s ----------------------------------

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def _snake(name: str) -> str:
    return _CAMEL.sub("_", name).lower()


def _instance_run_launcher(values: dict) -> dict:
    """The run launcher section of dagster.yaml as the chart renders it from the values: its keys in
    snake_case, Secret/ConfigMap references as names, plus the fields the chart itself fills in."""
    rendered = {}
    for key, value in values["runLauncher"]["config"]["k8sRunLauncher"].items():
        if key in ("envConfigMaps", "envSecrets"):
            value = [item["name"] for item in value]
        elif key == "runK8sConfig":
            value = {_snake(k): v for k, v in value.items()}
        rendered[_snake(key)] = value
    return {
        **rendered,
        "instance_config_map": CHART_INSTANCE_CONFIG_MAP,
        "service_account_name": values["global"]["serviceAccountName"],
        "dagster_home": CHART_DAGSTER_HOME,
        "postgres_password_secret": CHART_POSTGRES_SECRET,
    }


def _launched_run_context(values: dict, deployment: dict) -> dict:
    """The container context the chart gives the code location for launched runs
    (includeConfigInLaunchedRuns): env through its ConfigMap, secrets, volumes, pod settings."""
    return {
        "k8s": {
            "namespace": values["runLauncher"]["config"]["k8sRunLauncher"]["jobNamespace"],
            "env_config_maps": [f"mlcomops-{deployment['name']}-user-env"],
            "env_secrets": [s["name"] for s in deployment["envSecrets"]],
            "volume_mounts": deployment["volumeMounts"],
            "volumes": deployment["volumes"],
            "security_context": deployment["securityContext"],
            "run_k8s_config": {"pod_spec_config": {"securityContext": deployment["podSecurityContext"]}},
        }
    }


def _config_result(config: dict):
    from dagster._config import process_config
    from dagster_k8s import K8sRunLauncher

    return process_config(K8sRunLauncher.config_type(), config)


def test_the_run_launcher_settings_pass_dagster_k8s_schema(values):
    result = _config_result(_instance_run_launcher(values))
    assert result.success, [e.message for e in result.errors]
    assert result.value["fail_pod_on_run_failure"] is True and result.value["job_namespace"] == "mlcomops"


def test_the_schema_check_catches_a_misspelled_setting(values):
    """Control: a key the launcher does not know fails the same check."""
    config = {**_instance_run_launcher(values), "fail_pod_on_run_failur": True}
    assert not _config_result(config).success


@pytest.fixture
def kubeconfig(tmp_path):
    """A kubeconfig naming a server that is never contacted: building a launcher parses it, no more."""
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "none", "cluster": {"server": "https://127.0.0.1:9"}}],
                "users": [{"name": "none", "user": {"token": "unused"}}],
                "contexts": [{"name": "none", "context": {"cluster": "none", "user": "none"}}],
                "current-context": "none",
            }
        )
    )
    return str(path)


def test_dagster_k8s_builds_the_run_worker_job_we_document(values, deployment, kubeconfig):
    from dagster._core.code_pointer import ModuleCodePointer
    from dagster._core.origin import JobPythonOrigin, RepositoryPythonOrigin
    from dagster._core.storage.dagster_run import DagsterRun
    from dagster_k8s import K8sRunLauncher
    from dagster_k8s.container_context import K8sContainerContext
    from dagster_k8s.job import construct_dagster_k8s_job
    from kubernetes.client import ApiClient

    config = _config_result(_instance_run_launcher(values)).value
    launcher = K8sRunLauncher(**{**config, "load_incluster_config": False, "kubeconfig_file": kubeconfig})
    context = _launched_run_context(values, deployment)
    K8sContainerContext.create_from_config(context)  # raises on anything its schema refuses
    image = f"{deployment['image']['repository']}:{deployment['image']['tag']}"
    origin = RepositoryPythonOrigin(
        executable_path="/usr/local/bin/python",
        code_pointer=ModuleCodePointer(MODULE, "defs", working_directory=None),
        container_image=image,
        container_context=context,
    )
    run = DagsterRun(job_name="end_to_end", run_id="0" * 32, job_code_origin=JobPythonOrigin("end_to_end", origin))
    container_context = launcher.get_container_context_for_run(run)
    job_config = container_context.get_k8s_job_config(job_image=image, run_launcher=launcher)
    job = construct_dagster_k8s_job(
        job_config,
        args=["dagster", "api", "execute_run"],
        job_name="dagster-run-0",
        user_defined_k8s_config=container_context.run_k8s_config,
        pod_name="dagster-run-0",
        component="run_worker",
        labels={"dagster/job": "end_to_end"},
    )
    manifest = ApiClient().sanitize_for_serialization(job)

    pod = manifest["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == image
    sources = container["envFrom"]
    assert {"secretRef": {"name": "mlcomops-team"}} in sources
    assert {"configMapRef": {"name": f"mlcomops-{deployment['name']}-user-env"}} in sources
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert deployment["env"]["MLCOMOPS_HOME"] in mounts and "/var/run/secrets/mlcomops/signing" in mounts
    assert {v["name"] for v in pod["volumes"]} >= {"project-home", "signing-key", "pseudonym-key"}
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["resources"]["limits"]["memory"] == "2Gi"
    assert manifest["spec"]["backoffLimit"] == 0 and manifest["spec"]["ttlSecondsAfterFinished"] == 86400
    assert pod["serviceAccountName"] == values["global"]["serviceAccountName"]
    assert manifest["metadata"]["labels"]["app.kubernetes.io/part-of"] == "mlcomops"


def _instance_yaml(values: dict) -> dict:
    """The dagster.yaml the chart renders from the values (the sections the values decide)."""
    pg = values["postgresql"]
    daemon = values["dagsterDaemon"]
    queued = daemon["runCoordinator"]["config"]["queuedRunCoordinator"]
    return {
        "telemetry": {"enabled": values["telemetry"]["enabled"]},
        "storage": {
            "postgres": {
                "postgres_db": {
                    "username": pg["postgresqlUsername"],
                    # The chart passes the password from its Secret as this variable.
                    "password": {"env": "DAGSTER_PG_PASSWORD"},
                    "hostname": pg["postgresqlHost"],
                    "db_name": pg["postgresqlDatabase"],
                    "port": pg["service"]["port"],
                    "params": pg["postgresqlParams"],
                }
            }
        },
        "run_coordinator": {
            "module": "dagster.core.run_coordinator",
            "class": daemon["runCoordinator"]["type"],
            "config": {_snake(k): v for k, v in queued.items()},
        },
        "run_launcher": {
            "module": "dagster_k8s",
            "class": values["runLauncher"]["type"],
            "config": _instance_run_launcher(values),
        },
        "run_monitoring": {_snake(k): v for k, v in daemon["runMonitoring"].items()},
        "run_retries": daemon["runRetries"],
    }


def test_the_rendered_instance_passes_dagsters_instance_schema(values, tmp_path, monkeypatch):
    """The whole dagster.yaml the values produce loads as an instance config; its queue is the
    QueuedRunCoordinator with one run, run monitoring never resumes."""
    from dagster._core.instance.config import dagster_instance_config
    from dagster._serdes import ConfigurableClassData

    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(_instance_yaml(values)))
    config, _ = dagster_instance_config(str(tmp_path))
    coordinator = ConfigurableClassData(
        config["run_coordinator"]["module"],
        config["run_coordinator"]["class"],
        yaml.safe_dump(config["run_coordinator"]["config"]),
    ).rehydrate(as_type=object)
    assert coordinator.get_run_queue_config().max_concurrent_runs == 1
    assert config["run_monitoring"]["enabled"] is True and config["run_monitoring"]["max_resume_run_attempts"] == 0
    assert config["telemetry"]["enabled"] is False
    # The storage section against dagster-postgres's own schema (the password is a variable there).
    from dagster._config import process_config
    from dagster_postgres import DagsterPostgresStorage

    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "not-a-real-password")
    storage = process_config(DagsterPostgresStorage.config_type(), config["storage"]["postgres"])
    assert storage.success, [e.message for e in storage.errors]
    assert storage.value["postgres_db"]["params"] == {"sslmode": "require"}

    # Control: a run monitoring key the instance does not know fails the same load.
    broken = _instance_yaml(values)
    broken["run_monitoring"]["start_timeout_second"] = 1
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(broken))
    with pytest.raises(Exception, match="start_timeout_second"):
        dagster_instance_config(str(tmp_path))

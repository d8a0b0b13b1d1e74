"""`ray_cluster.yaml` passes Ray's own config preparation and validation, and installs our pinned Ray."""

import copy
import re
from pathlib import Path

import jsonschema
import pytest
import ray
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "ray_cluster.yaml"


def load():
    return yaml.safe_load(CLUSTER.read_text())


def prepared(config):
    config = prepare_config(copy.deepcopy(config))
    validate_config(config)
    return config


def test_cluster_config_validates():
    config = prepared(load())
    assert config["head_node_type"] in config["available_node_types"]
    assert config["available_node_types"]["head"]["resources"] == {"CPU": 0}


def test_setup_installs_project_and_pinned_ray_not_nightly():
    config = prepared(load())
    commands = "\n".join(config["setup_commands"] + config["head_setup_commands"])
    assert "ray-wheels" not in commands and "ray-3.0.0.dev0" not in commands
    assert "pip install -q -e ~/neobert-pretrain -c ~/neobert-pretrain/constraints.txt" in commands
    assert config["file_mounts"] == {"~/neobert-pretrain": "."}
    pyproject = (ROOT / "pyproject.toml").read_text()
    pin = re.search(r'"ray\[default\]==([\d.]+)"', pyproject).group(1)
    assert pin == ray.__version__, "the cluster must run the Ray this machine tests with"
    excluded = config["rsync_exclude"]
    assert "**/.git" in excluded and ".venv" in excluded


@pytest.mark.parametrize(
    "mutate",
    [
        lambda c: c["available_node_types"]["cpu_worker"]["resources"].update(CPU=0.5),
        lambda c: c["available_node_types"]["cpu_worker"].update(min_wrokers=1),
        lambda c: c.update(head_node_type="nope"),
        lambda c: c["available_node_types"]["cpu_worker"].update(min_workers=99),
    ],
    ids=["fractional-resource", "typo", "unknown-head-type", "min-above-max"],
)
def test_mistakes_fail_validation(mutate):
    config = load()
    mutate(config)
    with pytest.raises((jsonschema.ValidationError, ValueError)):
        prepared(config)

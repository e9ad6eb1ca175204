#!/usr/bin/env python3
"""Generates the bench/policy inputs from one list of checks, so both sides check the same thing:
resources.json (N cloud resources, a flat export), rules.yaml (50 Paved rules) and checks.jq (the
same 50 checks in jq, printing per failing resource: id, count, failing rule ids).
Deterministic (seeded). Usage: policy_gen.py OUTDIR N"""
import json
import random
import sys

out, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(42)

TYPES = ["aws_s3_bucket", "aws_db_instance", "aws_elasticache_cluster", "aws_instance",
         "aws_lambda_function", "aws_mq_broker", "aws_ebs_volume", "aws_sqs_queue"]
TEAMS = ["payments", "identity", "search", "orders", "platform", "data", "growth", "ml"]
ENVS = ["dev", "staging", "prod", "qa"]


def resource(i):
    t = rnd.choice(TYPES)
    r = {"id": f"r-{i:07d}", "type": t, "account": rnd.choice(["111111111111", "222222222222"]),
         "region": rnd.choice(["eu-west-1", "us-east-1", "eu-central-1"])}
    tags = {}
    if rnd.random() < 0.95:
        tags["team"] = rnd.choice(TEAMS)
    if rnd.random() < 0.9:
        tags["env"] = rnd.choice(ENVS)
    if rnd.random() < 0.85:
        tags["cost-center"] = f"cc-{rnd.randint(0, 9999):04d}" if rnd.random() < 0.95 else "none"
    if rnd.random() < 0.3:
        tags["data-classification"] = rnd.choice(["public", "internal", "confidential"])
    if rnd.random() < 0.5:
        tags["owner"] = f"user{rnd.randint(1, 500)}@example.com"
    r["tags"] = tags
    if t == "aws_s3_bucket":
        r.update(acl=rnd.choice(["private", "private", "public-read"]),
                 versioning=rnd.random() < 0.7, encryption=rnd.choice(["AES256", "aws:kms", None]),
                 object_lock=rnd.random() < 0.1)
    elif t == "aws_db_instance":
        r.update(engine=rnd.choice(["postgres", "postgres", "mysql"]),
                 engine_version=rnd.choice(["13.4", "14.11", "15.6", "16.2", "8.0.35"]),
                 instance_class=rnd.choice(["db.t3.micro", "db.r6g.large", "db.m6i.xlarge"]),
                 allocated_storage=rnd.choice([20, 100, 500, 2000]),
                 storage_encrypted=rnd.random() < 0.85, publicly_accessible=rnd.random() < 0.05,
                 multi_az=rnd.random() < 0.5, backup_retention_period=rnd.choice([0, 1, 7, 35]),
                 deletion_protection=rnd.random() < 0.6)
    elif t == "aws_elasticache_cluster":
        r.update(engine="redis", engine_version=rnd.choice(["6.2", "7.0", "7.1"]),
                 node_type=rnd.choice(["cache.t4g.small", "cache.r6g.large"]),
                 num_cache_nodes=rnd.choice([1, 2, 3]), transit_encryption=rnd.random() < 0.8)
    elif t == "aws_instance":
        r.update(instance_type=rnd.choice(["t3.micro", "m6i.large", "c6i.4xlarge", "p4d.24xlarge"]),
                 monitoring=rnd.random() < 0.7, ebs_optimized=rnd.random() < 0.8,
                 associate_public_ip_address=rnd.random() < 0.2, imdsv2=rnd.random() < 0.75,
                 security_groups=[f"sg-{rnd.randint(1, 99):02d}" for _ in range(rnd.randint(1, 3))])
    elif t == "aws_lambda_function":
        r.update(runtime=rnd.choice(["python3.12", "python3.8", "nodejs20.x", "nodejs14.x", "go1.x"]),
                 memory_size=rnd.choice([128, 256, 1024, 4096]), timeout=rnd.choice([3, 30, 900]),
                 tracing=rnd.choice(["Active", "PassThrough"]))
    elif t == "aws_mq_broker":
        r.update(engine_type="RabbitMQ", engine_version=rnd.choice(["3.11.28", "3.12.13", "3.13.2"]),
                 publicly_accessible=rnd.random() < 0.1, deployment_mode=rnd.choice(
                     ["SINGLE_INSTANCE", "CLUSTER_MULTI_AZ"]))
    elif t == "aws_ebs_volume":
        r.update(size=rnd.choice([8, 100, 1000, 16000]), encrypted=rnd.random() < 0.9,
                 volume_type=rnd.choice(["gp2", "gp3", "io2", "st1"]))
    else:
        r.update(visibility_timeout=rnd.choice([30, 300]), sqs_managed_sse=rnd.random() < 0.8,
                 message_retention=rnd.choice([345600, 1209600]))
    return r


# (id, path, op, value, envs) — field rules; the jq twin is derived below.
FIELD = [
    ("s3-private", "acl", "!=", "public-read", None),
    ("s3-versioning", "versioning", "==", True, ["prod"]),
    ("s3-encryption", "encryption", "in", ["AES256", "aws:kms"], None),
    ("db-encrypted", "storage_encrypted", "==", True, None),
    ("db-not-public", "publicly_accessible", "!=", True, None),
    ("db-backups", "backup_retention_period", ">=", 7, ["prod"]),
    ("db-storage-cap", "allocated_storage", "<=", 1000, None),
    ("db-deletion-protection", "deletion_protection", "==", True, ["prod"]),
    ("db-multi-az", "multi_az", "==", True, ["prod"]),
    ("db-class", "instance_class", "matches", "^db\\.(t3|r6g|m6i)\\.", None),
    ("cache-tls", "transit_encryption", "==", True, None),
    ("cache-nodes", "num_cache_nodes", ">=", 2, ["prod"]),
    ("cache-node-type", "node_type", "matches", "^cache\\.", None),
    ("ec2-monitoring", "monitoring", "==", True, ["prod", "staging"]),
    ("ec2-imdsv2", "imdsv2", "==", True, None),
    ("ec2-no-public-ip", "associate_public_ip_address", "!=", True, None),
    ("ec2-no-gpu", "instance_type", "not_in", ["p4d.24xlarge", "p5.48xlarge"], ["dev", "qa"]),
    ("ec2-ebs-optimized", "ebs_optimized", "==", True, None),
    ("ec2-sg", "security_groups", "contains", "sg-01", None),
    ("lambda-runtime", "runtime", "not_in", ["python3.8", "nodejs14.x", "go1.x"], None),
    ("lambda-memory", "memory_size", "<", 4096, None),
    ("lambda-timeout", "timeout", "<=", 300, None),
    ("lambda-tracing", "tracing", "==", "Active", ["prod"]),
    ("mq-not-public", "publicly_accessible", "!=", True, None),
    ("mq-ha", "deployment_mode", "==", "CLUSTER_MULTI_AZ", ["prod"]),
    ("ebs-encrypted", "encrypted", "==", True, None),
    ("ebs-size", "size", "<", 16000, None),
    ("ebs-type", "volume_type", "in", ["gp3", "io2"], None),
    ("sqs-sse", "sqs_managed_sse", "==", True, None),
    ("sqs-retention", "message_retention", ">=", 345600, None),
    ("region-eu", "region", "matches", "^(eu|us)-", None),
    ("account-known", "account", "in", ["111111111111", "222222222222"], None),
    ("owner-email", "tags.owner", "matches", "^[a-z0-9]+@example\\.com$", ["prod", "staging"]),
    ("no-owner-on-dev", "tags.owner", "absent", None, ["qa"]),
    ("type-set", "type", "exists", None, None),
    ("id-format", "id", "matches", "^r-[0-9]{7}$", None),
    ("team-known", "tags.team", "in", ["payments", "identity", "search", "orders", "platform",
                                       "data", "growth"], None),
    ("classified", "tags.data-classification", "not_in", ["secret"], None),
    ("region-set", "region", "exists", None, None),
    ("sqs-timeout", "visibility_timeout", ">", 0, None),
    ("ebs-min", "size", ">=", 8, None),
    ("lambda-mem-min", "memory_size", ">=", 128, None),
    ("db-engine", "engine", "in", ["postgres", "mysql"], None),
    ("prod-no-qa-region", "region", "!=", "us-west-2", ["prod"]),
    ("cache-engine", "engine", "==", "redis", None),
]
# which resource type each field rule is about (scoped with a type condition in both tools)
TYPE_OF = {"s3": "aws_s3_bucket", "db": "aws_db_instance", "cache": "aws_elasticache_cluster",
           "ec2": "aws_instance", "lambda": "aws_lambda_function", "mq": "aws_mq_broker",
           "ebs": "aws_ebs_volume", "sqs": "aws_sqs_queue"}


def rule_type(rid):
    return TYPE_OF.get(rid.split("-")[0])


def yscalar(v):
    return json.dumps(v)


def cond_yaml(path, op, value):
    s = f"{{path: {json.dumps(path) if '-' in path else path}, op: {json.dumps(op)}"
    if op not in ("exists", "absent"):
        s += f", value: {yscalar(value)}"
    return s + "}"


def path_jq(path):
    return "".join(f'["{p}"]' for p in path.split("."))


def cond_jq(path, op, value):
    v = f"$r{path_jq(path)}"
    j = json.dumps(value)
    return {
        "==": f"({v} != null and {v} == {j})",
        "!=": f"({v} != null and {v} != {j})",
        "<": f"(({v}|type) == \"number\" and {v} < {j})",
        "<=": f"(({v}|type) == \"number\" and {v} <= {j})",
        ">": f"(({v}|type) == \"number\" and {v} > {j})",
        ">=": f"(({v}|type) == \"number\" and {v} >= {j})",
        "in": f"({v} != null and ({v} as $x | {j} | any(. == $x)))",
        "not_in": f"({v} != null and ({v} as $x | {j} | all(. != $x)))",
        "matches": f"(({v}|type) == \"string\" and ({v}|test({j})))",
        "exists": f"({v} != null)",
        "absent": f"({v} == null)",
        "contains": f"(({v}|type) == \"array\" and any({v}[]; . == {j}))",
    }[op]


rules = ["apiVersion: pave/v1", "kind: Policy", "metadata: {name: bench}", "rules:"]
jq = ["# generated by bench/lib/policy_gen.py: the same 50 checks as rules.yaml",
      ".resources[] | . as $r | ($r.tags.env) as $env | ["]
checks = []

# 4 required-tags rules
rules.append("  - {id: tag-team, kind: required-tags, remediation: x, tags: {team: {required: true}}}")
checks.append(('"tag-team"', '(($r.tags.team // "") != "")'))
rules.append("  - {id: tag-cost-center, kind: required-tags, remediation: x, tags: "
             "{cost-center: {required: true, pattern: \"^cc-[0-9]{4}$\"}}}")
checks.append(('"tag-cost-center"', '(($r.tags["cost-center"] // "") as $c | $c != "" and '
               '($c|test("^cc-[0-9]{4}$")))'))
rules.append("  - {id: tag-env, kind: required-tags, remediation: x, tags: "
             "{env: {required: true, values: [dev, staging, prod, qa]}}}")
checks.append(('"tag-env"', '(($r.tags.env // "") as $e | $e != "" and '
               '(["dev","staging","prod","qa"] | index([$e])) != null)'))
rules.append("  - {id: tag-class, kind: required-tags, remediation: x, scope: {envs: [prod]}, tags: "
             "{data-classification: {values: [public, internal, confidential]}}}")
checks.append(('"tag-class"', '($env == null or $env == "prod" | not) or '
               '($r.tags["data-classification"] == null or ($r.tags["data-classification"] as $c '
               '| ["public","internal","confidential"] | index([$c])) != null)'))
# approved technologies (resource type mapping: RDS engine, ElastiCache engine, MQ engine_type)
rules.append("  - {id: approved-tech, kind: approved-technologies, remediation: x, technologies: "
             "{postgres: [\"15\", \"16\"], mysql: [\"8.0\"], redis: [\"7\"], "
             "rabbitmq: [\"3.12\", \"3.13\"]}}")
checks.append(('"approved-tech"',
               '(if $r.type == "aws_db_instance" or $r.type == "aws_elasticache_cluster" then '
               '[$r.engine, $r.engine_version] elif $r.type == "aws_mq_broker" then '
               '[($r.engine_type|ascii_downcase), $r.engine_version] else null end) as $t | '
               '$t == null or ({"postgres":["15","16"],"mysql":["8.0"],"redis":["7"],'
               '"rabbitmq":["3.12","3.13"]}[$t[0]] as $ok | $ok != null and '
               '($t[1] == null or any($ok[]; . as $a | $t[1] == $a or ($t[1]|startswith($a + ".")))))'))

for rid, path, op, value, envs in FIELD:
    t = rule_type(rid)
    scope = f"scope: {{envs: [{', '.join(envs)}]}}, " if envs else ""
    conds = []
    # rules about one resource type hold vacuously for other types: any: [type != T, cond]
    if t:
        rules.append(f"  - {{id: {rid}, kind: field, remediation: x, {scope}any: ["
                     f"{cond_yaml('type', '!=', t)}, {cond_yaml(path, op, value)}]}}")
        body = f'($r.type != "{t}") or {cond_jq(path, op, value)}'
    else:
        rules.append(f"  - {{id: {rid}, kind: field, remediation: x, {scope}all: ["
                     f"{cond_yaml(path, op, value)}]}}")
        body = cond_jq(path, op, value)
    if envs:
        body = f'($env == null or ({json.dumps(envs)} | index([$env])) != null | not) or ({body})'
    checks.append((json.dumps(rid), body))

assert len(checks) == 50, len(checks)
for i, (rid, body) in enumerate(checks):
    jq.append(f"  (if {body} then empty else {rid} end){',' if i < len(checks) - 1 else ''}")
jq.append('] | select(length > 0) | "\\($r.id)\\t\\(length)\\t\\(join(","))"')

with open(f"{out}/rules.yaml", "w") as f:
    f.write("\n".join(rules) + "\n")
with open(f"{out}/checks.jq", "w") as f:
    f.write("\n".join(jq) + "\n")
with open(f"{out}/resources.json", "w") as f:
    f.write('{"resources": [\n')
    for i in range(n):
        f.write(json.dumps(resource(i), separators=(",", ":")) + (",\n" if i < n - 1 else "\n"))
    f.write("]}\n")

#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Validates `gpuledger export kueue` output against Kueue's own CRDs.

usage: kueue_validate.py CRD_DIR FILE

FILE holds YAML documents or a JSON List (kubectl apply -f reads both). Each
object must be a ResourceFlavor, ClusterQueue or LocalQueue of
kueue.x-k8s.io/v1beta2 and valid against the openAPIV3Schema of that
version in CRD_DIR (Kueue's config/components/crd/bases files), made strict:
where the schema lists properties and says nothing of others, others are
refused (the API server would prune them silently, hiding a typo). metadata
is only {type: object} there: it is checked against the part of ObjectMeta
an export may set. The CEL rules (x-kubernetes-validations) that bear on
what the export writes are checked by hand below. Prints one line per
object and exits 1 on the first problem.
"""
import copy
import json
import re
import sys

import jsonschema
import yaml

API = "kueue.x-k8s.io/v1beta2"
KINDS = {
    "ResourceFlavor": "kueue.x-k8s.io_resourceflavors.yaml",
    "ClusterQueue": "kueue.x-k8s.io_clusterqueues.yaml",
    "LocalQueue": "kueue.x-k8s.io_localqueues.yaml",
}
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
LABEL_KEY = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$"


def object_meta(namespaced):
    meta = {
        "type": "object",
        "additionalProperties": False,
        "required": ["name"] + (["namespace"] if namespaced else []),
        "properties": {
            "name": {"type": "string", "maxLength": 253 if not namespaced else 63,
                     "pattern": DNS_SUBDOMAIN if not namespaced else DNS_LABEL},
            "labels": {"type": "object",
                       "propertyNames": {"pattern": LABEL_KEY},
                       "additionalProperties": {"type": "string", "pattern": LABEL_VALUE}},
        },
    }
    if namespaced:
        meta["properties"]["namespace"] = {"type": "string", "maxLength": 63,
                                           "pattern": DNS_LABEL}
    return meta


def strict(schema):
    """additionalProperties: false wherever properties are listed and others are not spoken of."""
    if isinstance(schema, dict):
        if "properties" in schema and "additionalProperties" not in schema \
                and not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema["additionalProperties"] = False
        for v in schema.values():
            strict(v)
    elif isinstance(schema, list):
        for v in schema:
            strict(v)
    return schema


def load_schema(crd_dir, kind):
    with open("%s/%s" % (crd_dir, KINDS[kind]), encoding="utf-8") as f:
        crd = yaml.safe_load(f)
    versions = [v for v in crd["spec"]["versions"] if v["name"] == "v1beta2"]
    if not versions or not versions[0].get("served"):
        sys.exit("%s: no served v1beta2 version" % KINDS[kind])
    schema = copy.deepcopy(versions[0]["schema"]["openAPIV3Schema"])
    strict(schema)
    schema["properties"]["metadata"] = object_meta(kind == "LocalQueue")
    schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind",
                                                                   "metadata", "spec"})
    # an export never writes status: the controller does
    schema["properties"].pop("status", None)
    return schema


def quantity(q):
    """A quantity the export writes: a non-negative integer (no suffix)."""
    return q if isinstance(q, int) else int(str(q))


def cel_checks(obj, flavors):
    """The CEL rules (and the description-only rules) that bear on the export."""
    kind, spec = obj["kind"], obj["spec"]
    if kind == "ResourceFlavor":
        # "at least one nodeLabel is required when topology is set"
        assert "topologyName" not in spec or len(spec.get("nodeLabels", {})) >= 1
    if kind == "ClusterQueue":
        groups = spec.get("resourceGroups", [])
        # "borrowingLimit must be nil when cohort is empty"
        if "cohortName" not in spec:
            for rg in groups:
                for f in rg["flavors"]:
                    for r in f["resources"]:
                        assert "borrowingLimit" not in r, "borrowingLimit without a cohort"
                        assert "lendingLimit" not in r, "lendingLimit without a cohort"
        seen = set()
        for rg in groups:
            for f in rg["flavors"]:
                # "flavors must have the same number of resources as the
                # coveredResources", and (description) in the same order
                assert [r["name"] for r in f["resources"]] == rg["coveredResources"], \
                    "flavor %s does not list the covered resources in order" % f["name"]
                # (description) each flavor in one group only; it names a ResourceFlavor
                assert f["name"] not in seen, "flavor %s in two groups" % f["name"]
                seen.add(f["name"])
                assert f["name"] in flavors, "flavor %s has no ResourceFlavor" % f["name"]
                for r in f["resources"]:
                    assert quantity(r["nominalQuota"]) >= 0, "a negative nominalQuota"
        # (description) at most 256 flavors across the groups
        assert len(seen) <= 256
    if kind == "LocalQueue":
        assert obj["metadata"]["namespace"], "a LocalQueue needs its namespace"


def main():
    crd_dir, path = sys.argv[1:3]
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if text.lstrip().startswith("{"):
        lst = json.loads(text)
        assert lst.get("apiVersion") == "v1" and lst.get("kind") == "List", "not a v1 List"
        assert set(lst) == {"apiVersion", "kind", "items"}, "a List with other keys"
        objs = lst["items"]
    else:
        objs = [d for d in yaml.safe_load_all(text) if d is not None]
    schemas = {k: load_schema(crd_dir, k) for k in KINDS}
    flavors = {o["metadata"]["name"] for o in objs if o.get("kind") == "ResourceFlavor"}
    queues = {o["metadata"]["name"] for o in objs if o.get("kind") == "ClusterQueue"}
    for o in objs:
        kind = o.get("kind")
        if kind not in KINDS or o.get("apiVersion") != API:
            sys.exit("FAIL: %s/%s is not a Kueue v1beta2 object we emit" % (o.get("apiVersion"), kind))
        try:
            jsonschema.validate(o, schemas[kind])
            cel_checks(o, flavors)
            if kind == "LocalQueue":
                assert o["spec"]["clusterQueue"] in queues, "LocalQueue of a missing ClusterQueue"
        except (jsonschema.ValidationError, AssertionError) as e:
            msg = e.message if isinstance(e, jsonschema.ValidationError) else str(e)
            sys.exit("FAIL: %s %s: %s" % (kind, o.get("metadata", {}).get("name"), msg))
        print("valid %s %s" % (kind, o["metadata"]["name"]))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Check cairn's protocol messages against the descriptors of the real `wandb` package.

cairn-proto's descriptor set (`crates/cairn-proto/src/generated/descriptor.bin`, produced
from `proto/cairn/*.proto` and kept in step with them by the `codegen` test) is compared,
message by message and enum by enum, with the descriptors compiled into `wandb==0.31.0`.

A difference in any of these fails the check:
  - a message or enum cairn defines that W&B does not, or one W&B defines that cairn lacks;
  - a field's name, number, type, referenced type, label (singular, `optional`, repeated)
    or oneof membership;
  - an enum value's name or number.

Run it with a Python that has wandb==0.31.0 installed (scripts/test does this in a cached
venv). Prints one line per difference, then `N passed, M failed` (N, M counted in
messages and enums).
"""

from __future__ import annotations

import importlib
import os
import sys

from google.protobuf import descriptor_pb2

# The wandb modules whose descriptors define the protocol (shared with the generator).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from protogen import WANDB_FILES as WANDB_MODULES  # noqa: E402
F = descriptor_pb2.FieldDescriptorProto
DEFAULT_SET = os.path.join(
    os.path.dirname(os.path.abspath(__file__)),
    "..", "crates", "cairn-proto", "src", "generated", "descriptor.bin",
)


def flatten(files):
    """Full name -> DescriptorProto / EnumDescriptorProto for every type in `files`."""
    messages, enums = {}, {}

    def walk(msg, prefix):
        name = f"{prefix}.{msg.name}"
        messages[name] = msg
        for nested in msg.nested_type:
            walk(nested, name)
        for enum in msg.enum_type:
            enums[f"{name}.{enum.name}"] = enum

    for fdp in files:
        prefix = f".{fdp.package}" if fdp.package else ""
        for msg in fdp.message_type:
            walk(msg, prefix)
        for enum in fdp.enum_type:
            enums[f"{prefix}.{enum.name}"] = enum
    return messages, enums


def wandb_files():
    out = []
    for name in WANDB_MODULES:
        mod = importlib.import_module(f"wandb.proto.{name}_pb2")
        fdp = descriptor_pb2.FileDescriptorProto()
        mod.DESCRIPTOR.CopyToProto(fdp)
        out.append(fdp)
    return out


def label(field):
    if field.label == F.LABEL_REPEATED:
        return "repeated"
    return "optional" if field.proto3_optional else "singular"


def oneof_of(msg, field):
    if not field.HasField("oneof_index"):
        return None
    return msg.oneof_decl[field.oneof_index].name


def compare_message(name, ours, theirs):
    problems = []
    our_fields = {f.number: f for f in ours.field}
    their_fields = {f.number: f for f in theirs.field}
    for number in sorted(set(our_fields) | set(their_fields)):
        a, b = our_fields.get(number), their_fields.get(number)
        if a is None:
            problems.append(f"{name}: field {number} `{b.name}` is missing in cairn")
            continue
        if b is None:
            problems.append(f"{name}: field {number} `{a.name}` does not exist in wandb")
            continue
        for what, x, y in (
            ("name", a.name, b.name),
            ("type", F.Type.Name(a.type), F.Type.Name(b.type)),
            ("type name", a.type_name, b.type_name),
            ("label", label(a), label(b)),
            ("oneof", oneof_of(ours, a), oneof_of(theirs, b)),
        ):
            if x != y:
                problems.append(f"{name}: field {number} `{b.name}` {what}: cairn {x!r}, wandb {y!r}")
    if bool(ours.options.map_entry) != bool(theirs.options.map_entry):
        problems.append(f"{name}: map entry flag differs")
    return problems


def compare_enum(name, ours, theirs):
    a = [(v.name, v.number) for v in ours.value]
    b = [(v.name, v.number) for v in theirs.value]
    if sorted(a) != sorted(b):
        return [f"{name}: enum values differ: cairn {sorted(a)}, wandb {sorted(b)}"]
    return []


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_SET
    with open(path, "rb") as fh:
        ours_set = descriptor_pb2.FileDescriptorSet.FromString(fh.read())
    import wandb

    ours_files = [f for f in ours_set.file if f.package != "google.protobuf"]
    our_msgs, our_enums = flatten(ours_files)
    their_msgs, their_enums = flatten(wandb_files())
    print(f"cairn: {len(our_msgs)} messages, {len(our_enums)} enums; "
          f"wandb {wandb.__version__}: {len(their_msgs)} messages, {len(their_enums)} enums")

    passed = failed = 0
    for kind, ours, theirs, compare in (
        ("message", our_msgs, their_msgs, compare_message),
        ("enum", our_enums, their_enums, compare_enum),
    ):
        for name in sorted(set(ours) | set(theirs)):
            if name not in theirs:
                problems = [f"{name}: {kind} does not exist in wandb"]
            elif name not in ours:
                problems = [f"{name}: {kind} is missing in cairn"]
            else:
                problems = compare(name, ours[name], theirs[name])
            for p in problems:
                print(f"MISMATCH {p}")
            if problems:
                failed += 1
            else:
                passed += 1
    print(f"conformance: {passed} passed, {failed} failed")
    sys.exit(1 if failed or not passed else 0)


if __name__ == "__main__":
    main()

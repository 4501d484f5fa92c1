#!/usr/bin/env python3
"""Write cairn's `.proto` sources from the facts in the `wandb` package's descriptors.

cairn's protocol types must be wire-compatible with `wandb` 0.31.0: the same package,
message names, field names, numbers, types, labels and oneofs. Those facts live in the
compiled descriptors shipped inside the PyPI package (`wandb/proto/*_pb2.py`). This tool
reads them and writes cairn's own sources under `crates/cairn-proto/proto/cairn/`, laid
out by topic (not by W&B's file split), with fields in number order and cairn's comments.

It is a bootstrap and upgrade tool: run it when moving to a new `wandb` version, review
the diff, then regenerate the Rust code (`cargo test -p cairn-proto --test codegen` with
`CAIRN_BLESS=1`). `tools/conformance.py` is the check that keeps the sources honest.

Usage: python tools/protogen.py [OUT_DIR]     (run with a Python that has wandb==0.31.0)
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections import defaultdict

from google.protobuf import descriptor_pb2

PACKAGE = "wandb_internal"
WANDB_FILES = [
    "wandb_base",
    "wandb_telemetry",
    "wandb_internal",
    "wandb_settings",
    "wandb_sync",
    "wandb_api",
    "wandb_server",
    "wandb_otel",
    "wandb_sweep_scheduler",
]

# cairn's files, in dependency order, with what each is for.
FILES = {
    "routing": "Routing envelopes: which stream a record belongs to, and which request a result answers.",
    "telemetry": "Telemetry: the feature flags, imports and versions a run reports (config `_wandb.t`).",
    "settings": "Run settings as the Python SDK hands them to its core process (wrapper-typed fields).",
    "run": "The run itself: identity, git, exit, header/footer, environment and hardware descriptions, alerts.",
    "history": "Metrics: history rows, summary, config, metric definitions, files, system stats and console output.",
    "artifact": "Artifacts: the artifact record, its manifest, lineage (use_artifact) and job sources.",
    "request": "Requests from the SDK to its core (never written to the transaction log) and their responses.",
    "record": "The `Record` every log entry and socket message carries, its `Control` flags, and `Result` answers.",
    "otel": "OpenTelemetry passthrough requests the SDK may send to its core.",
    "sync": "`wandb sync` orchestration between the SDK and its core.",
    "api": "The public-API proxy: GraphQL passthrough and reads the SDK's `wandb.Api()` routes through its core.",
    "sweep": "Sweep scheduler messages (carried by the service envelope, unused by cairn's core today).",
    "service": "The service socket envelope: `ServerRequest` and `ServerResponse` and their payloads.",
}

ROUTING_OF = {
    "wandb_base": "routing",
    "wandb_telemetry": "telemetry",
    "wandb_settings": "settings",
    "wandb_sync": "sync",
    "wandb_api": "api",
    "wandb_server": "service",
    "wandb_otel": "otel",
    "wandb_sweep_scheduler": "sweep",
}

RUN_TOPIC = {
    "RunRecord", "BranchPoint", "GitRepoRecord", "RunExitRecord", "RunExitResult", "RunPreemptingRecord",
    "HeaderRecord", "FooterRecord", "FinalRecord", "VersionInfo", "SettingsRecord",
    "SettingsItem", "ErrorInfo", "AlertRecord", "TBRecord", "EnvironmentRecord", "DiskInfo",
    "MemoryInfo", "CpuInfo", "AppleInfo", "GpuNvidiaInfo", "GpuAmdInfo", "TrainiumInfo",
    "TPUInfo", "CoreWeaveInfo",
}
HISTORY_TOPIC = {
    "HistoryRecord", "HistoryItem", "HistoryStep", "SummaryRecord", "SummaryItem",
    "ConfigRecord", "ConfigItem", "MetricRecord", "MetricOptions", "MetricControl",
    "MetricSummary", "StatsRecord", "StatsItem", "OutputRecord", "OutputRawRecord",
    "OutputLoggerRecord", "FilesRecord", "FilesItem",
}
ARTIFACT_TOPIC = {
    "ArtifactRecord", "ArtifactManifest", "ArtifactManifestEntry", "ExtraItem",
    "StoragePolicyConfigItem", "UseArtifactRecord", "PartialJobArtifact", "JobSource",
    "Source", "GitSource", "GitInfo", "ImageSource", "ArtifactInfo",
}
RECORD_TOPIC = {"Record", "Control", "Result"}

# cairn's own notes on the messages that matter most; everything else speaks for itself.
NOTES = {
    "_RecordInfo": "Routing info on a record: the stream (run) it belongs to.",
    "Record": "One entry of the transaction log, or one message on the service socket.\n"
    "`num` is assigned by the writer (1, 2, 3, ...) for persisted records.",
    "Control": "Delivery flags: `local` records are never persisted; `always_send` ones are sent even offline.",
    "Result": "The answer to a record or request that asked for one (matched by `_info`/`control.mailbox_slot`).",
    "RunRecord": "Creates or updates the run; the first one is the run's init.",
    "HistoryRecord": "One committed history row (`_step`, `_runtime`, `_timestamp` included as items).",
    "HistoryItem": "A history value: `key` or `nested_key` for nested dicts, the value as JSON text.",
    "SummaryRecord": "Summary changes: keys set (`update`) and keys removed (`remove`).",
    "ConfigRecord": "Config changes: keys set (`update`) and keys removed (`remove`).",
    "MetricRecord": "A `define_metric` definition, by name or by glob.",
    "StatsRecord": "One sample of system metrics.",
    "OutputRawRecord": "A raw chunk of the user's stdout or stderr, with its timestamp.",
    "FilesRecord": "Files the run saves, with when to upload them.",
    "ArtifactRecord": "An artifact to save (offline mode writes these to the log).",
    "EnvironmentRecord": "The machine and software a writer process runs on.",
    "RunExitRecord": "The run finished, with its exit code and runtime.",
    "HeaderRecord": "The first record of every log: who wrote it.",
    "Request": "A request to the core process. Requests are never persisted.",
    "Response": "The answer to a `Request`, carried in `Result.response`.",
    "PartialHistoryRequest": "Values for the current step; the core assigns steps and commits rows.",
    "ServerRequest": "A frame from the SDK to the core: `'W'`, u32 LE length, then this message.",
    "ServerResponse": "A frame from the core to the SDK, same framing as `ServerRequest`.",
    "Settings": "Every setting of a run, as wrapper types so unset differs from zero.",
    "TelemetryRecord": "What the run uses: imports, features, versions (config `_wandb.t`).",
}

SCALAR = {
    descriptor_pb2.FieldDescriptorProto.TYPE_DOUBLE: "double",
    descriptor_pb2.FieldDescriptorProto.TYPE_FLOAT: "float",
    descriptor_pb2.FieldDescriptorProto.TYPE_INT64: "int64",
    descriptor_pb2.FieldDescriptorProto.TYPE_UINT64: "uint64",
    descriptor_pb2.FieldDescriptorProto.TYPE_INT32: "int32",
    descriptor_pb2.FieldDescriptorProto.TYPE_FIXED64: "fixed64",
    descriptor_pb2.FieldDescriptorProto.TYPE_FIXED32: "fixed32",
    descriptor_pb2.FieldDescriptorProto.TYPE_BOOL: "bool",
    descriptor_pb2.FieldDescriptorProto.TYPE_STRING: "string",
    descriptor_pb2.FieldDescriptorProto.TYPE_BYTES: "bytes",
    descriptor_pb2.FieldDescriptorProto.TYPE_UINT32: "uint32",
    descriptor_pb2.FieldDescriptorProto.TYPE_SFIXED32: "sfixed32",
    descriptor_pb2.FieldDescriptorProto.TYPE_SFIXED64: "sfixed64",
    descriptor_pb2.FieldDescriptorProto.TYPE_SINT32: "sint32",
    descriptor_pb2.FieldDescriptorProto.TYPE_SINT64: "sint64",
}
F = descriptor_pb2.FieldDescriptorProto


def load():
    """Top-level messages and enums of every wandb file, keyed by W&B file name."""
    out = {}
    for name in WANDB_FILES:
        mod = importlib.import_module(f"wandb.proto.{name}_pb2")
        fdp = descriptor_pb2.FileDescriptorProto()
        mod.DESCRIPTOR.CopyToProto(fdp)
        assert fdp.package == PACKAGE and fdp.syntax == "proto3", name
        out[name] = fdp
    return out


def topic_of(wandb_file: str, name: str) -> str:
    if wandb_file != "wandb_internal":
        return ROUTING_OF[wandb_file]
    for topic, names in (
        ("record", RECORD_TOPIC), ("run", RUN_TOPIC), ("history", HISTORY_TOPIC),
        ("artifact", ARTIFACT_TOPIC),
    ):
        if name in names:
            return topic
    if name.endswith("Result"):
        return "record"
    return "request"


class Gen:
    def __init__(self, files):
        self.topic = {}  # top-level type name -> cairn file
        self.items = defaultdict(list)  # cairn file -> [(kind, DescriptorProto|EnumDescriptorProto)]
        self.nested = {}  # full name -> set of nested type names (for shadowing checks)
        for wf, fdp in files.items():
            for m in fdp.message_type:
                t = topic_of(wf, m.name)
                self.topic[m.name] = t
                self.items[t].append(("message", m))
                self._index(m, m.name)
            for e in fdp.enum_type:
                self.items["__enums__"].append((wf, e))
        # Top-level enums live with the first topic that uses them.
        for wf, e in self.items.pop("__enums__"):
            t = self._first_user(e.name) or topic_of(wf, e.name)
            self.topic[e.name] = t
            self.items[t].append(("enum", e))
        self.deps = defaultdict(set)

    def _index(self, m, path):
        self.nested[path] = {n.name for n in m.nested_type} | {e.name for e in m.enum_type}
        for n in m.nested_type:
            self._index(n, f"{path}.{n.name}")

    def _first_user(self, enum_name):
        for t in FILES:
            for kind, m in self.items.get(t, []):
                if kind == "message" and self._uses(m, f".{PACKAGE}.{enum_name}"):
                    return t
        return None

    def _uses(self, m, full):
        return any(f.type_name == full for f in m.field) or any(
            self._uses(n, full) for n in m.nested_type
        )

    def type_ref(self, type_name: str, scope: list[str], file: str) -> str:
        if type_name.startswith(".google.protobuf."):
            self.deps[file].add("google/protobuf/" + {
                "Timestamp": "timestamp", "Empty": "empty", "Struct": "struct",
                "Value": "struct", "ListValue": "struct", "NullValue": "struct",
                "StringValue": "wrappers", "Int32Value": "wrappers", "Int64Value": "wrappers",
                "UInt32Value": "wrappers", "UInt64Value": "wrappers", "BoolValue": "wrappers",
                "DoubleValue": "wrappers", "FloatValue": "wrappers", "BytesValue": "wrappers",
                "Any": "any", "Duration": "duration",
            }[type_name.rsplit(".", 1)[1]] + ".proto")
            return type_name[1:]
        assert type_name.startswith(f".{PACKAGE}."), type_name
        rel = type_name[len(PACKAGE) + 2:]
        head = rel.split(".")[0]
        target_file = self.topic[head]
        if target_file != file:
            self.deps[file].add(f"cairn/{target_file}.proto")
        # Name resolution searches the innermost scope first: a nested type of an enclosing
        # message with the same name as `head` would capture the reference, so qualify it.
        for i in range(len(scope), 0, -1):
            if head in self.nested.get(".".join(scope[:i]), ()):
                return f".{PACKAGE}.{rel}"
        return rel

    def field_type(self, f, scope, file, maps):
        if f.type in (F.TYPE_MESSAGE, F.TYPE_ENUM):
            key = f.type_name
            if key in maps:
                k, v = maps[key]
                return f"map<{self.field_type(k, scope, file, {})}, {self.field_type(v, scope, file, {})}>"
            return self.type_ref(f.type_name, scope, file)
        if f.type == F.TYPE_GROUP:
            raise SystemExit("groups are not proto3")
        return SCALAR[f.type]

    def message(self, m, scope, file, indent, top=False):
        pad = "  " * indent
        out = []
        path = scope + [m.name]
        note = NOTES.get(m.name) if top else None
        if note:
            out += [f"{pad}// {line}" for line in note.split("\n")]
        out.append(f"{pad}message {m.name} {{")
        full = "." + ".".join([PACKAGE] + path)
        maps = {}
        for n in m.nested_type:
            if n.options.map_entry:
                kv = {x.name: x for x in n.field}
                maps[f"{full}.{n.name}"] = (kv["key"], kv["value"])
        body = []
        for n in sorted(m.nested_type, key=lambda n: n.name):
            if not n.options.map_entry:
                body += self.message(n, path, file, indent + 1) + [""]
        for e in sorted(m.enum_type, key=lambda e: e.name):
            body += self.enum(e, indent + 1) + [""]
        real_oneofs = {
            i for i, f in ((f.oneof_index, f) for f in m.field)
            if f.HasField("oneof_index") and not f.proto3_optional
        }
        emitted_oneofs = set()
        for f in sorted(m.field, key=lambda f: f.number):
            if f.HasField("oneof_index") and f.oneof_index in real_oneofs:
                if f.oneof_index in emitted_oneofs:
                    continue
                emitted_oneofs.add(f.oneof_index)
                members = sorted(
                    (g for g in m.field if g.HasField("oneof_index") and g.oneof_index == f.oneof_index
                     and not g.proto3_optional),
                    key=lambda g: g.number,
                )
                body.append(f"{pad}  oneof {m.oneof_decl[f.oneof_index].name} {{")
                for g in members:
                    body.append(f"{pad}    {self.field_line(g, path, file, maps)}")
                body.append(f"{pad}  }}")
                continue
            body.append(f"{pad}  {self.field_line(f, path, file, maps)}")
        for r in m.reserved_range:
            end = r.end - 1
            body.append(f"{pad}  reserved {r.start}{'' if end == r.start else f' to {end}'};")
        for name in m.reserved_name:
            body.append(f'{pad}  reserved "{name}";')
        while body and body[-1] == "":
            body.pop()
        if not body:
            out[-1] += "}"
            return out
        out += body
        out.append(f"{pad}}}")
        return out

    def field_line(self, f, scope, file, maps):
        ty = self.field_type(f, scope, file, maps)
        label = ""
        if f.label == F.LABEL_REPEATED and not ty.startswith("map<"):
            label = "repeated "
        elif f.proto3_optional:
            label = "optional "
        opts = []
        if f.options.HasField("packed"):
            opts.append(f"packed = {str(f.options.packed).lower()}")
        if f.options.HasField("deprecated"):
            opts.append(f"deprecated = {str(f.options.deprecated).lower()}")
        default_json = re.sub(r"_([a-z])", lambda mt: mt.group(1).upper(), f.name)
        if f.json_name and f.json_name != default_json:
            opts.append(f'json_name = "{f.json_name}"')
        suffix = f" [{', '.join(opts)}]" if opts else ""
        return f"{label}{ty} {f.name} = {f.number}{suffix};"

    def enum(self, e, indent, top=False):
        pad = "  " * indent
        out = [f"{pad}enum {e.name} {{"]
        if e.options.HasField("allow_alias"):
            out.append(f"{pad}  option allow_alias = true;")
        for v in e.value:
            out.append(f"{pad}  {v.name} = {v.number};")
        out.append(f"{pad}}}")
        return out

    def render(self, file):
        items = sorted(self.items[file], key=lambda kv: (kv[0] != "enum", kv[1].name))
        body = []
        for kind, d in items:
            if kind == "enum":
                body += self.enum(d, 0, top=True)
            else:
                body += self.message(d, [], file, 0, top=True)
            body.append("")
        head = [
            "// cairn's definition of part of W&B's `wandb_internal` protocol (wire-compatible with",
            "// wandb 0.31.0; `tools/conformance.py` checks every message against its descriptors).",
            "// Written by tools/protogen.py from the package's descriptors; edit both together.",
            "//",
            f"// {FILES[file]}",
            "",
            'syntax = "proto3";',
            "",
            f"package {PACKAGE};",
            "",
        ]
        imports = sorted(d for d in self.deps[file] if d != f"cairn/{file}.proto")
        head += [f'import "{d}";' for d in imports]
        if imports:
            head.append("")
        return "\n".join(head + body).rstrip() + "\n"


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(__file__), "..", "crates", "cairn-proto", "proto", "cairn")
    gen = Gen(load())
    rendered = {f: gen.render(f) for f in FILES}
    # The file graph must be acyclic, or protoc-compatible compilers refuse it.
    graph = {f: {d[len("cairn/"):-len(".proto")] for d in gen.deps[f] if d.startswith("cairn/")} - {f}
             for f in FILES}
    state = {}

    def visit(f, stack):
        if state.get(f) == 1:
            raise SystemExit(f"import cycle: {' -> '.join(stack + [f])}")
        if state.get(f) == 2:
            return
        state[f] = 1
        for d in sorted(graph[f]):
            visit(d, stack + [f])
        state[f] = 2

    for f in FILES:
        visit(f, [])
    os.makedirs(out_dir, exist_ok=True)
    for f, text in rendered.items():
        with open(os.path.join(out_dir, f"{f}.proto"), "w", encoding="utf-8") as fh:
            fh.write(text)
    print(f"wrote {len(rendered)} files to {out_dir}")


if __name__ == "__main__":
    main()

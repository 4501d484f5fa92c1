"""Validates every document of the wandb GraphQL corpus against cairn's schema, statically.

Run (scripts/test does, after the protocol conformance step):

    "$(scripts/python-env)/bin/python" tools/graphql_check.py

Inputs, all in testdata/graphql-corpus/:
- `cairn-schema.graphql`: cairn's schema as SDL (async-graphql's `Schema::sdl()`), kept
  current by the cairn-server unit test `graphql::tests::checked_in_sdl_is_current`
  (`CAIRN_UPDATE_SCHEMA=1 cargo test -p cairn-server --lib checked_in_sdl` rewrites it);
- `documents.jsonl`: what released `wandb` clients can send (tools/graphql_corpus.py);
- `expected-failures.json`: operations out of this check's scope, each with its reason
  (the issue that will bring them) and, for information, the first error it had.

Every document that is not a template (a text with a runtime placeholder) and whose
operation is not expected to fail must pass graphql-core's `validate` (the rules every
GraphQL server applies before executing). Failures are printed grouped by version, then
document; the exit status is 1 if any. An expected failure that now validates is reported
too (so the file shrinks as cairn grows), and so is one naming no operation of the corpus.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import graphql

DIR = Path(__file__).resolve().parent.parent / "testdata" / "graphql-corpus"


def main() -> int:
    schema = graphql.build_schema((DIR / "cairn-schema.graphql").read_text())
    expected = json.loads((DIR / "expected-failures.json").read_text())
    corpus = [json.loads(line) for line in (DIR / "documents.jsonl").read_text().splitlines()]

    failures: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    checked = skipped = templates = 0
    now_valid: set[str] = set()
    still_failing: set[str] = set()
    seen: set[str] = set()
    for entry in corpus:
        name = entry["name"] or "(anonymous)"
        seen.add(name)
        if entry.get("template"):
            templates += 1
            continue
        errors = graphql.validate(schema, graphql.parse(entry["document"]))
        if name in expected:
            skipped += 1
            (still_failing if errors else now_valid).add(name)
            continue
        checked += 1
        label = f"{name} ({entry['source']})"
        for version in entry["versions"]:
            failures[version][label].extend(e.message for e in errors)

    failed = {v: {d: m for d, m in docs.items() if m} for v, docs in failures.items()}
    failed = {v: docs for v, docs in failed.items() if docs}
    for version in sorted(failed, key=lambda v: tuple(int(x) for x in v.split("."))):
        print(f"wandb {version}:")
        for label, messages in sorted(failed[version].items()):
            print(f"  {label}")
            for message in dict.fromkeys(messages):
                print(f"    {message}")
    stale = sorted(now_valid - still_failing)
    unknown = sorted(set(expected) - seen)
    for name in stale:
        print(f"expected-failures.json: {name} validates now: remove it")
    for name in unknown:
        print(f"expected-failures.json: {name} is no operation of the corpus")
    distinct = len({label for docs in failed.values() for label in docs})
    print(
        f"graphql corpus: {checked} documents checked, {distinct} failing; "
        f"{skipped} out of scope (expected-failures.json), {templates} templates skipped"
    )
    return 1 if failed or stale or unknown else 0


if __name__ == "__main__":
    sys.exit(main())

"""Builds the corpus of GraphQL documents that released `wandb` clients can send.

Run (needs PyPI for wheels not yet cached, and graphql-core, which scripts/python-env's
venv has):

    "$(scripts/python-env)/bin/python" tools/graphql_corpus.py

For each version in VERSIONS it downloads the x86_64 Linux wheel once (`pip download
wandb==V --no-deps`, cached in ~/.cache/cairn/wheels) and reads every document out of it:

- Python sources (`source: "python"`). Documents live in `gql(...)` calls (0.17–0.22
  mostly build them in place: triple-quoted strings, `+ FRAGMENT`, f-strings,
  `.format()`, and `.replace("_PLACEHOLDER_", …)` chosen by what the server supports) and
  in module constants (ariadne-codegen's `_generated/operations.py`, 0.22+). Each
  `gql(...)` argument is evaluated statically: strings, names and attributes bound to
  strings anywhere in the package, concatenation, f-strings, `%`, `.format`, `.replace`,
  and calls of functions whose returns are such expressions. Both branches of every `if`
  and conditional expression are followed, and of the variants one call can render the
  longest that parses is kept: the document the client sends to a server that announces
  every optional feature (the fields it would drop for an older server are a subset of
  it). A call whose text still holds an unresolved f-string/format placeholder (a value
  known only at runtime, e.g. a caller-chosen field list) is kept with `"template": true`
  and the placeholder left in, as `{expression}`; the check skips those.
- The `wandb-core` Go binary (`source: "wandb-core"`): genqlient's operation strings,
  found by their `query Name (`/`mutation Name {` start and cut at the balancing brace,
  with the `fragment`s genqlient appends after the operation.

Output: testdata/graphql-corpus/documents.jsonl, one line per distinct document (by
source and graphql-core's printed form, so formatting differences collapse), sorted:
`{"name": operation, "document": printed text, "versions": [...], "source": ...}` (plus
`"template": true` where said above). Only documents with an operation are kept
(fragments alone are parts of others).
"""

from __future__ import annotations

import ast
import io
import itertools
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import graphql

VERSIONS = ["0.17.9", "0.18.7", "0.19.11", "0.22.3", "0.25.1", "0.28.2", "0.31.0"]
WHEELS = Path.home() / ".cache" / "cairn" / "wheels"
OUT = Path(__file__).resolve().parent.parent / "testdata" / "graphql-corpus" / "documents.jsonl"

# Variants one expression may take before the evaluator stops forking.
MAX_VARIANTS = 256
# How deep function calls are followed while evaluating an argument.
MAX_CALL_DEPTH = 6


def wheel(version: str) -> Path:
    """The cached wheel of `version`, downloaded on first use."""
    found = sorted(WHEELS.glob(f"wandb-{version}-*.whl"))
    if not found:
        WHEELS.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--disable-pip-version-check", "--only-binary=:all:",
             "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_17_x86_64",
             "--platform", "manylinux2014_x86_64", "-d", str(WHEELS), f"wandb=={version}"],
            check=True,
        )
        found = sorted(WHEELS.glob(f"wandb-{version}-*.whl"))
    return found[0]


# ---- documents: parse, print, name


def printed(text: str) -> tuple[str, str | None] | None:
    """(printed form, operation name) of an executable document with an operation."""
    try:
        doc = graphql.parse(text, no_location=True)
    except graphql.GraphQLError:
        return None
    ops = [d for d in doc.definitions if isinstance(d, graphql.OperationDefinitionNode)]
    if not ops or not all(isinstance(d, graphql.ExecutableDefinitionNode) for d in doc.definitions):
        return None
    return graphql.print_ast(doc), ops[0].name.value if ops[0].name else None


def looks_like_document(text: str) -> bool:
    # `#graphql` (an editor hint some 0.28+ f-strings open with) is a comment.
    return re.match(r"(\s*#[^\n]*\n)*\s*(query|mutation|subscription)\b", text) is not None


# ---- Python sources: a small static evaluator of string expressions

PLACEHOLDER = "\x00"  # marks an unresolved f-string/format value inside a candidate


class Package:
    """Every module of a wheel's `wandb` package, with the strings its names are bound to."""

    def __init__(self, sources: dict[str, str]):
        self.modules: dict[str, ast.Module] = {}
        for path, text in sources.items():
            try:
                self.modules[path] = ast.parse(text)
            except SyntaxError:
                continue
        # Names (module/class level, and `self.x =` attributes) → strings they are bound to.
        self.constants: dict[str, list[ast.expr]] = {}
        self.module_constants: list[tuple[str, str, ast.expr]] = []
        self.functions: dict[str, list[ast.FunctionDef | ast.AsyncFunctionDef]] = {}
        for path, module in self.modules.items():
            for node in ast.walk(module):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    self.functions.setdefault(node.name, []).append(node)
                    # `self.QUERY = …` in a method: the attribute a later call reads.
                    for stmt in ast.walk(node):
                        target, value = assignment(stmt)
                        if target is not None and isinstance(stmt.targets[0] if isinstance(stmt, ast.Assign) else stmt.target, ast.Attribute):
                            self.constants.setdefault(target, []).append(value)
            for scope in [module] + [n for n in ast.walk(module) if isinstance(n, ast.ClassDef)]:
                for stmt in scope.body:
                    target, value = assignment(stmt)
                    if target is not None:
                        self.constants.setdefault(target, []).append(value)
                        if scope is module:
                            self.module_constants.append((path, target, value))
        self.used_names: set[str] = set()
        self._returns: dict[int, list[str] | None] = {}
        self._named: dict[str, list[str] | None] = {}
        self._in_gql = False
        self._depth = 0

    # -- expressions

    def eval(self, node: ast.expr, env: dict[str, list[str]]) -> list[str] | None:
        """The strings `node` may evaluate to, or None when it is not a string expression."""
        if isinstance(node, ast.Constant):
            return [node.value] if isinstance(node.value, str) else None
        if isinstance(node, ast.JoinedStr):
            parts = []
            for value in node.values:
                if isinstance(value, ast.Constant):
                    parts.append([str(value.value)])
                else:
                    inner = self.eval(value.value, env) if isinstance(value, ast.FormattedValue) else None
                    parts.append(inner or [PLACEHOLDER + ast.unparse(value.value) + PLACEHOLDER])
            return join(parts)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self.eval(node.left, env), self.eval(node.right, env)
            return join([left, right]) if left is not None and right is not None else None
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
            left = self.eval(node.left, env)
            items = node.right.elts if isinstance(node.right, ast.Tuple) else [node.right]
            values = [self.eval(i, env) for i in items]
            if left is None or any(v is None for v in values):
                return None
            out = []
            for template in left:
                for combo in itertools.product(*values):
                    try:
                        out.append(template % tuple(combo))
                    except (TypeError, ValueError):
                        return None
            return cap(out)
        if isinstance(node, ast.IfExp):
            body, orelse = self.eval(node.body, env), self.eval(node.orelse, env)
            return cap((body or []) + (orelse or [])) if body or orelse else None
        if isinstance(node, ast.Name):
            if node.id in env:
                return env[node.id]
            return self.named(node.id)
        if isinstance(node, ast.Attribute):
            return self.named(node.attr)
        if isinstance(node, ast.Call):
            return self.call(node, env)
        return None

    def named(self, name: str) -> list[str] | None:
        values = self.constants.get(name)
        if not values:
            return None
        if name not in self._named:
            self._named[name] = None  # breaks cycles (`self.x = self.x + …`)
            out = []
            for value in values:
                got = self.eval(value, {})
                if got is not None:
                    out.extend(got)
            self._named[name] = cap(out) or None
        if self._named[name] and self._in_gql:
            self.used_names.add(name)
        return self._named[name]

    def call(self, node: ast.Call, env: dict[str, list[str]]) -> list[str] | None:
        func = node.func
        if isinstance(func, ast.Attribute):
            method = func.attr
            if method == "replace" and len(node.args) == 2:
                base = self.eval(func.value, env)
                old, new = self.eval(node.args[0], env), self.eval(node.args[1], env)
                if base is None or old is None or new is None:
                    return base
                return cap([b.replace(o, n) for b in base for o in old for n in new])
            if method == "format":
                base = self.eval(func.value, env)
                if base is None:
                    return None
                args = [self.eval(a, env) or ["{}"] for a in node.args]
                kwargs = {k.arg: self.eval(k.value, env) for k in node.keywords if k.arg}
                out = []
                for template in base:
                    for combo in itertools.product(*args):
                        for kw in itertools.product(*[[(k, x) for x in (v or [PLACEHOLDER + k + PLACEHOLDER])]
                                                      for k, v in kwargs.items()]):
                            try:
                                out.append(template.format(*combo, **dict(kw)))
                            except (IndexError, KeyError, ValueError):
                                return None
                return cap(out)
            if method in ("strip", "lstrip", "rstrip") and not node.args:
                base = self.eval(func.value, env)
                return None if base is None else [getattr(b, method)() for b in base]
            name = method
        elif isinstance(func, ast.Name):
            name = func.id
        else:
            return None
        if name == "gql" and node.args:
            return self.eval(node.args[0], env)
        if name in ("dedent", "cleandoc") and node.args:
            return self.eval(node.args[0], env)
        return self.returns_of(name)

    def returns_of(self, name: str) -> list[str] | None:
        if self._depth >= MAX_CALL_DEPTH:
            return None
        out: list[str] = []
        for func in self.functions.get(name, []):
            key = id(func)
            if key not in self._returns:
                self._returns[key] = None  # breaks recursion
                self._depth += 1
                returns: list[str] = []
                self.run(func.body, {}, returns, None)
                self._depth -= 1
                self._returns[key] = returns or None
            out.extend(self._returns[key] or [])
        return cap(out) or None

    # -- statements

    def run(self, body, env, returns, on_gql):
        """Runs `body` over `env` (name → candidate strings), following both branches of
        every `if`; collects return candidates, and calls `on_gql(strings)` for each
        `gql(...)` reached."""
        for stmt in body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            if isinstance(stmt, ast.If):
                self.scan(stmt.test, env, on_gql)
                left = self.run(stmt.body, dict(env), returns, on_gql)
                right = self.run(stmt.orelse, dict(env), returns, on_gql)
                env = merge(left, right)
                continue
            if isinstance(stmt, (ast.For, ast.AsyncFor, ast.While)):
                self.scan(stmt.iter if not isinstance(stmt, ast.While) else stmt.test, env, on_gql)
                env = merge(env, self.run(stmt.body, dict(env), returns, on_gql))
                continue
            if isinstance(stmt, (ast.With, ast.AsyncWith)):
                for item in stmt.items:
                    self.scan(item.context_expr, env, on_gql)
                env = self.run(stmt.body, env, returns, on_gql)
                continue
            if isinstance(stmt, ast.Try) or type(stmt).__name__ == "TryStar":
                env = self.run(stmt.body, env, returns, on_gql)
                for handler in stmt.handlers:
                    env = merge(env, self.run(handler.body, dict(env), returns, on_gql))
                env = self.run(stmt.orelse + stmt.finalbody, env, returns, on_gql)
                continue
            self.scan(stmt, env, on_gql)
            if isinstance(stmt, ast.Return) and stmt.value is not None:
                got = self.eval(stmt.value, env)
                if got is not None:
                    returns.extend(got)
                continue
            target, value = assignment(stmt)
            if target is not None:
                env = dict(env)
                got = self.eval(value, env)
                if got is None:
                    env.pop(target, None)
                else:
                    env[target] = got
            elif isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Name):
                base, extra = env.get(stmt.target.id), self.eval(stmt.value, env)
                if base is not None and extra is not None and isinstance(stmt.op, ast.Add):
                    env = dict(env, **{stmt.target.id: join([base, extra])})
        return env

    def scan(self, node, env, on_gql):
        """Reports the document-like first argument of every call in `node` (`gql(q)`,
        `client.execute(q, …)`, `self.gql(q)`; 0.28+ hands strings to `execute`)."""
        if on_gql is None:
            return
        for sub in ast.walk(node):
            if not isinstance(sub, ast.Call):
                continue
            if isinstance(sub.func, ast.Attribute) and sub.func.attr in STRING_METHODS:
                continue
            args = sub.args[:1] + [k.value for k in sub.keywords if k.arg in SINK_KEYWORDS]
            for arg in args:
                if isinstance(arg, ast.Constant) and not looks_like_document(str(arg.value)):
                    continue
                self._in_gql = True
                try:
                    got = self.eval(arg, env)
                finally:
                    self._in_gql = False
                if got and any(looks_like_document(g) for g in got):
                    on_gql(got)


# Calls on a string that make another string (their arguments are no documents).
STRING_METHODS = {"replace", "format", "strip", "lstrip", "rstrip", "join", "split"}
# Keyword arguments that carry a document.
SINK_KEYWORDS = {"query", "document", "mutation", "request_string"}


def assignment(stmt) -> tuple[str | None, ast.expr | None]:
    """`name = value`, `name: T = value` or `self.name = value`."""
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
        target = stmt.targets[0]
        value = stmt.value
    elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
        target, value = stmt.target, stmt.value
    else:
        return None, None
    if isinstance(target, ast.Name):
        return target.id, value
    if isinstance(target, ast.Attribute):
        return target.attr, value
    return None, None


def cap(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))[:MAX_VARIANTS]


def join(parts: list[list[str]]) -> list[str]:
    out = [""]
    for part in parts:
        out = cap([a + b for a in out for b in part])
    return out


def merge(a: dict, b: dict) -> dict:
    out = {}
    for name in a.keys() | b.keys():
        out[name] = cap(a.get(name, []) + b.get(name, []))
    return out


def python_documents(sources: dict[str, str]) -> list[tuple[str, bool]]:
    """(text, is_template) for every document in the package's sources."""
    package = Package(sources)
    found: list[tuple[str, bool]] = []

    def on_gql(candidates):
        # Candidates of different operations come from a name bound in several places
        # (`self.QUERY` of many classes): keep the longest variant of each operation.
        best: dict[str | None, str] = {}
        for c in candidates:
            got = printed(c) if PLACEHOLDER not in c else None
            if got and len(c) > len(best.get(got[1], "")):
                best[got[1]] = c
        found.extend((c, False) for c in best.values())
        if best:
            return
        templates = [c for c in candidates if looks_like_document(c)]
        if templates:
            text = max(templates, key=len)
            found.append((re.sub(PLACEHOLDER + "(.*?)" + PLACEHOLDER, r"{\1}", text), True))

    for module in package.modules.values():
        package.run(module.body, {}, [], on_gql)
        for node in ast.walk(module):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                package.run(node.body, {}, [], on_gql)
    # Constants never passed through a `gql(...)` seen above (generated operations, or
    # ones the client sends through a helper) are documents as they stand.
    for _path, name, value in package.module_constants:
        if name in package.used_names or not isinstance(value, ast.Constant):
            continue
        if isinstance(value.value, str) and looks_like_document(value.value) and printed(value.value):
            found.append((value.value, False))
    return found


# ---- wandb-core: genqlient's strings in the binary

START = re.compile(rb"(?:query|mutation) [A-Za-z_][A-Za-z0-9_]* ?[({]")
FRAGMENT = re.compile(rb"\s*fragment ([A-Za-z_][A-Za-z0-9_]*) on [A-Za-z_][A-Za-z0-9_]* ?\{")


def balanced_end(data: bytes, start: int) -> int | None:
    """The index after the `}` that closes the first top-level `{` from `start`."""
    depth = 0
    i = data.index(b"{", start)
    # Variable definitions come before the selection; they hold no braces.
    while i < len(data):
        c = data[i]
        if c == ord("{"):
            depth += 1
        elif c == ord("}"):
            depth -= 1
            if depth == 0:
                return i + 1
        elif c < 9 or c > 126:
            return None
        i += 1
    return None


def core_documents(binary: bytes) -> list[str]:
    out = []
    for match in START.finditer(binary):
        end = balanced_end(binary, match.start())
        if end is None:
            continue
        text = binary[match.start():end]
        # genqlient appends the fragments the operation uses.
        while True:
            frag = FRAGMENT.match(binary, end)
            if not frag or (b"..." + frag.group(1)) not in text.replace(b"... ", b"..."):
                break
            frag_end = balanced_end(binary, frag.start())
            if frag_end is None:
                break
            text += b"\n" + binary[frag.start():frag_end].strip()
            end = frag_end
        try:
            decoded = text.decode()
        except UnicodeDecodeError:
            continue
        if printed(decoded):
            out.append(decoded)
    return out


def main() -> None:
    corpus: dict[tuple[str, str], dict] = {}
    for version in VERSIONS:
        with zipfile.ZipFile(wheel(version)) as whl:
            names = whl.namelist()
            sources = {
                n: whl.read(n).decode("utf-8", "replace")
                for n in names
                if n.startswith("wandb/") and n.endswith(".py") and "/vendor/" not in n
            }
            graphql_files = [n for n in names if n.endswith(".graphql")]
            core = [n for n in names if n.endswith("/bin/wandb-core")]
            found = [(text, template, "python") for text, template in python_documents(sources)]
            for name in graphql_files:
                found.append((whl.read(name).decode(), False, "python"))
            for name in core:
                found += [(text, False, "wandb-core") for text in core_documents(whl.read(name))]
        counts: dict[str, int] = {}
        for text, template, source in found:
            if template:
                key_text, op = re.sub(r"\s+", " ", text).strip(), None
                m = re.search(r"(?:query|mutation)\s+([A-Za-z_][A-Za-z0-9_]*)", text)
                op = m.group(1) if m else None
                document = text.strip()
            else:
                document, op = printed(text)
                key_text = document
            entry = corpus.setdefault((source, key_text), {
                "name": op, "document": document, "versions": [], "source": source,
            })
            if template:
                entry["template"] = True
            if version not in entry["versions"]:
                entry["versions"].append(version)
                counts[source] = counts.get(source, 0) + 1
        print(f"wandb {version}: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    lines = sorted(corpus.values(), key=lambda e: (e["source"], e["name"] or "", e["document"]))
    buf = io.StringIO()
    for entry in lines:
        buf.write(json.dumps(entry, ensure_ascii=False) + "\n")
    OUT.write_text(buf.getvalue())
    templates = sum(1 for e in lines if e.get("template"))
    print(f"{len(lines)} distinct documents ({templates} templates) -> {OUT}")


if __name__ == "__main__":
    main()

"""Validates compose files without a Docker engine (run through scripts/check-compose.sh).

For each file:
  1. YAML: parses it (duplicate keys are errors, as in Compose).
  2. Variables: every ${VAR...} / $VAR must be listed in the env example (deploy/.env.example),
     and every variable listed there must be used; `$$` is a literal dollar.
  3. Schema: the file, before and after interpolation with the example's values, against the
     official compose-spec JSON schema, as vendored by the PyPI package check-jsonschema
     (check_jsonschema/builtin_schemas/vendor/compose-spec.json, from compose-spec/compose-spec).
  4. Consistency, as `docker compose config` and `up` would find it: depends_on names existing
     services without cycles; service_healthy targets define a healthcheck;
     service_completed_successfully targets are one-shots; named volumes are declared;
     relative bind mounts, build contexts and Dockerfiles exist; published host ports are
     unique; images without a build are pinned to a tag other than latest.

--self-test breaks the first file in over a dozen ways and fails unless every broken variant is
rejected, so a check that silently stopped checking cannot pass.
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import re
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
ENV_LINE = re.compile(r"^\s*(#\s*)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
# Stand-in for a required secret that the example leaves empty on purpose.
PLACEHOLDER_SECRET = "example-secret"


class InterpolationError(Exception):
    pass


# ------------------------------------------------------------------ loading ---


def load_yaml(text: str) -> Any:
    yaml = YAML(typ="safe", pure=True)
    yaml.allow_duplicate_keys = False
    return yaml.load(io.StringIO(text))


def compose_schema() -> dict[str, Any]:
    vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads(vendor.joinpath("compose-spec.json").read_text(encoding="utf-8"))
    if schema.get("title") != "Compose Specification" or "services" not in schema.get("properties", {}):
        raise SystemExit("check-jsonschema's vendored compose-spec.json is not the compose specification")
    return schema


class EnvExample:
    """The variables an env example documents: `NAME=value`, or `# NAME=default` for optional ones."""

    def __init__(self, path: Path):
        self.path = path
        self.documented: set[str] = set()
        self.values: dict[str, str] = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            m = ENV_LINE.match(line)
            if not m:
                continue
            self.documented.add(m.group(2))
            if not m.group(1):
                value = m.group(3).strip()
                if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                    value = value[1:-1]
                self.values[m.group(2)] = value


# ------------------------------------------------------------ interpolation ---


def interpolate(text: str, env: dict[str, str], refs: set[str]) -> str:
    """Compose interpolation of one string: $VAR, ${VAR}, ${VAR:-d}, ${VAR-d}, ${VAR:?e},
    ${VAR?e}, ${VAR:+r}, ${VAR+r}, nested defaults, $$. Records every name in refs."""
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c != "$":
            out.append(c)
            i += 1
            continue
        if text.startswith("$$", i):
            out.append("$")
            i += 2
            continue
        if text.startswith("${", i):
            depth, j = 1, i + 2
            while j < len(text) and depth:
                if text[j] == "{":
                    depth += 1
                elif text[j] == "}":
                    depth -= 1
                j += 1
            if depth:
                raise InterpolationError(f"unclosed ${{ in {text!r}")
            out.append(substitute(text[i + 2 : j - 1], env, refs, text))
            i = j
            continue
        m = NAME.match(text, i + 1)
        if not m:
            raise InterpolationError(
                f"'$' not followed by a variable name in {text!r} (write $$ for a dollar)"
            )
        refs.add(m.group(0))
        out.append(env.get(m.group(0), ""))
        i = m.end()
    return "".join(out)


def substitute(expr: str, env: dict[str, str], refs: set[str], whole: str) -> str:
    m = NAME.match(expr)
    if not m:
        raise InterpolationError(f"invalid variable name in ${{{expr}}} ({whole!r})")
    name, rest = m.group(0), expr[m.end() :]
    refs.add(name)
    value = env.get(name)
    if rest == "":
        return value or ""
    for op in (":-", ":?", ":+", "-", "?", "+"):
        if rest.startswith(op):
            arg = rest[len(op) :]
            break
    else:
        raise InterpolationError(f"invalid modifier in ${{{expr}}} ({whole!r})")
    unset_or_empty = not value
    missing = unset_or_empty if op.startswith(":") else value is None
    if op in (":-", "-"):
        default = interpolate(arg, env, refs)
        return default if missing else (value or "")
    if op in (":+", "+"):
        replacement = interpolate(arg, env, refs)
        return "" if missing else replacement
    if missing:
        raise InterpolationError(f"required variable {name} is not set: {arg or 'no message'}")
    return value or ""


def interpolate_tree(node: Any, env: dict[str, str], refs: set[str], errors: list[str], path: str) -> Any:
    if isinstance(node, dict):
        return {k: interpolate_tree(v, env, refs, errors, f"{path}.{k}") for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate_tree(v, env, refs, errors, f"{path}[{i}]") for i, v in enumerate(node)]
    if isinstance(node, str):
        try:
            return interpolate(node, env, refs)
        except InterpolationError as err:
            errors.append(f"{path.lstrip('.')}: {err}")
            return node
    return node


# -------------------------------------------------------------- the checks ---


def schema_errors(validator: jsonschema.protocols.Validator, doc: Any) -> list[tuple[str, str]]:
    """(where, message) of every schema violation."""
    found = list(validator.iter_errors(doc))
    specific = [tuple(e.absolute_path) for e in found if e.validator != "unevaluatedProperties"]
    errors = []
    for err in sorted(found, key=lambda e: list(map(str, e.absolute_path))):
        path = tuple(err.absolute_path)
        # An invalid property also makes its object report all its properties as
        # "unevaluated": noise when the specific error below it is reported.
        if err.validator == "unevaluatedProperties" and any(p[: len(path)] == path for p in specific):
            continue
        errors.append((".".join(map(str, path)) or "(top level)", err.message))
    return errors


def depends_on_map(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: "service_started" for name in deps if isinstance(name, str)}
    if isinstance(deps, dict):
        return {
            name: (spec.get("condition", "service_started") if isinstance(spec, dict) else "service_started")
            for name, spec in deps.items()
        }
    return {}


def split_volume(entry: Any) -> tuple[str | None, str | None]:
    """(type, source) of a service volume entry, short or long syntax."""
    if isinstance(entry, dict):
        return entry.get("type"), entry.get("source")
    if not isinstance(entry, str):
        return None, None
    parts = entry.split(":")
    if len(parts) == 1:
        return "volume", None  # anonymous volume
    source = parts[0]
    if source.startswith((".", "/", "~")):
        return "bind", source
    return "volume", source


def published_ports(entry: Any) -> list[str]:
    if isinstance(entry, dict):
        published = entry.get("published")
        if published is None:
            return []
        return [f"{entry.get('host_ip', '')}|{published}/{entry.get('protocol', 'tcp')}"]
    if not isinstance(entry, (str, int)):
        return []
    text = str(entry)
    proto = "tcp"
    if "/" in text:
        text, proto = text.rsplit("/", 1)
    parts = text.rsplit(":", 2)
    if len(parts) == 1:
        return []  # container port only: Docker picks the host port
    host_ip = parts[0] if len(parts) == 3 else ""
    return [f"{host_ip}|{parts[-2]}/{proto}"]


def consistency_errors(doc: Any, project_dir: Path) -> list[str]:
    errors: list[str] = []
    services = doc.get("services") if isinstance(doc, dict) else None
    if not isinstance(services, dict) or not services:
        return ["services: no services defined"]
    declared_volumes = set((doc.get("volumes") or {}).keys())
    ports_seen: dict[str, str] = {}
    graph: dict[str, list[str]] = {}
    for name, svc in services.items():
        if not isinstance(svc, dict):
            continue
        where = f"services.{name}"
        if "image" not in svc and "build" not in svc:
            errors.append(f"{where}: neither image nor build")
        image = svc.get("image")
        if isinstance(image, str) and "build" not in svc and "@sha256:" not in image:
            tag = image.rsplit("/", 1)[-1].partition(":")[2]
            if not tag or tag == "latest":
                errors.append(f"{where}.image: {image!r} is not pinned to a version tag")
        deps = depends_on_map(svc)
        graph[name] = list(deps)
        for dep, condition in deps.items():
            target = services.get(dep)
            if dep == name:
                errors.append(f"{where}.depends_on: depends on itself")
            elif not isinstance(target, dict):
                errors.append(f"{where}.depends_on: unknown service {dep!r}")
            elif condition == "service_healthy":
                hc = target.get("healthcheck")
                if not isinstance(hc, dict) or hc.get("disable") is True or not hc.get("test"):
                    errors.append(f"{where}.depends_on.{dep}: service_healthy, but {dep} has no healthcheck")
            elif condition == "service_completed_successfully":
                restart = str(target.get("restart", "no"))
                if restart in ("always", "unless-stopped"):
                    errors.append(
                        f"{where}.depends_on.{dep}: service_completed_successfully, but {dep} "
                        f"has restart: {restart} (a one-shot must not restart)"
                    )
        for i, entry in enumerate(svc.get("volumes") or []):
            vtype, source = split_volume(entry)
            if vtype == "volume" and source and source not in declared_volumes:
                errors.append(f"{where}.volumes[{i}]: named volume {source!r} is not declared under volumes:")
            if vtype == "bind" and source and source.startswith(".") and not (project_dir / source).exists():
                errors.append(f"{where}.volumes[{i}]: bind mount source {source!r} does not exist")
        build = svc.get("build")
        if build is not None:
            spec = {"context": build} if isinstance(build, str) else build
            context = project_dir / str(spec.get("context", "."))
            if not context.is_dir():
                errors.append(f"{where}.build.context: {spec.get('context')!r} is not a directory")
            elif "dockerfile_inline" not in spec:
                dockerfile = context / str(spec.get("dockerfile", "Dockerfile"))
                if not dockerfile.is_file():
                    errors.append(f"{where}.build.dockerfile: {dockerfile} does not exist")
        for i, env_file in enumerate(
            svc.get("env_file") if isinstance(svc.get("env_file"), list) else [svc.get("env_file")]
        ):
            path = env_file.get("path") if isinstance(env_file, dict) else env_file
            required = env_file.get("required", True) if isinstance(env_file, dict) else True
            if isinstance(path, str) and required and not (project_dir / path).exists():
                errors.append(f"{where}.env_file[{i}]: {path!r} does not exist")
        for entry in svc.get("ports") or []:
            for key in published_ports(entry):
                if key in ports_seen:
                    errors.append(f"{where}.ports: host port {key} is already published by {ports_seen[key]}")
                ports_seen[key] = name
    # Cycles in depends_on.
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                errors.append(f"services: depends_on cycle {' -> '.join([*trail, node, nxt])}")
            elif nxt in graph and state.get(nxt) is None:
                visit(nxt, [*trail, node])
        state[node] = 2

    for node in graph:
        if state.get(node) is None:
            visit(node, [])
    return errors


def check_text(
    text: str,
    example: EnvExample,
    project_dir: Path,
    validator: jsonschema.protocols.Validator,
) -> tuple[list[str], dict[str, Any]]:
    """All problems of one compose file's text, and a few facts for the summary."""
    try:
        raw = load_yaml(text)
    except YAMLError as err:
        return [f"YAML: {' '.join(str(err).split())}"], {}
    if not isinstance(raw, dict):
        return ["YAML: the file is not a mapping"], {}
    raw_schema_errors = schema_errors(validator, raw)
    errors = [f"compose-spec: {where}: {message}" for where, message in raw_schema_errors]
    refs: set[str] = set()
    # The example's values; a value it leaves empty is a required secret: use a stand-in.
    env = {name: value or PLACEHOLDER_SECRET for name, value in example.values.items()}
    interpolation_errors: list[str] = []
    resolved = interpolate_tree(raw, env, refs, interpolation_errors, "")
    errors += [f"interpolation: {e}" for e in interpolation_errors]
    for name in sorted(refs - example.documented):
        errors.append(f"variables: ${{{name}}} is used but not documented in {example.path.name}")
    for name in sorted(example.documented - refs):
        errors.append(f"variables: {name} is documented in {example.path.name} but not used")
    if not interpolation_errors:
        errors += [
            f"compose-spec (after interpolation): {where}: {message}"
            for where, message in schema_errors(validator, resolved)
            if (where, message) not in raw_schema_errors
        ]
        errors += consistency_errors(resolved, project_dir)
    return errors, {"services": len(raw.get("services") or {}), "variables": len(refs)}


# --------------------------------------------------------------- self-test ---


def mutations(text: str) -> list[tuple[str, str, Callable[[], str]]]:
    """Broken variants of a valid compose file: (label, a fragment the error must contain, maker)."""
    base = load_yaml(text)
    services = list(base["services"])
    first = services[0]
    with_deps = next(n for n in services if base["services"][n].get("depends_on"))

    def with_deps_other(avoid: str) -> str:
        return next((n for n in services if n != avoid and base["services"][n].get("depends_on")), with_deps)

    oneshot = next(
        (
            n
            for n in services
            for s in base["services"].values()
            if isinstance(s.get("depends_on"), dict)
            and s["depends_on"].get(n, {}).get("condition") == "service_completed_successfully"
        ),
        None,
    )
    no_healthcheck = next((n for n in services if "healthcheck" not in base["services"][n]), None)
    pinned = next(
        (n for n in services if "image" in base["services"][n] and "build" not in base["services"][n]), None
    )
    bind = next(
        (
            (n, i)
            for n in services
            for i, v in enumerate(base["services"][n].get("volumes") or [])
            if isinstance(v, str) and v.startswith("./")
        ),
        None,
    )

    def edit(fn: Callable[[dict[str, Any]], None]) -> Callable[[], str]:
        def make() -> str:
            doc = copy.deepcopy(base)
            fn(doc)
            return json.dumps(doc)  # JSON is YAML

        return make

    def set_in(doc: dict[str, Any], keys: list[str], value: Any) -> None:
        for k in keys[:-1]:
            doc = doc[k]
        doc[keys[-1]] = value

    cases: list[tuple[str, str, Callable[[], str]]] = [
        (
            "image given as a number (image: 12)",
            "image: 12 is not of type",
            edit(lambda d: set_in(d, ["services", first, "image"], 12)),
        ),
        ("unknown top-level key", "'servics'", edit(lambda d: d.__setitem__("servics", {}))),
        (
            "misspelt service key (healthchek)",
            "'healthchek' was unexpected",
            edit(lambda d: d["services"][first].__setitem__("healthchek", {})),
        ),
        (
            "ports given as a mapping",
            "ports: {'a': 1} is not of type",
            edit(lambda d: set_in(d, ["services", first, "ports"], {"a": 1})),
        ),
        (
            "depends_on names a missing service",
            "unknown service 'no-such-service'",
            edit(
                lambda d: set_in(
                    d,
                    ["services", with_deps, "depends_on"],
                    {"no-such-service": {"condition": "service_started"}},
                )
            ),
        ),
        (
            "undocumented variable",
            "VMBACKUP_NOT_IN_EXAMPLE} is used but not documented",
            edit(
                lambda d: set_in(
                    d, ["services", first, "environment", "X_UNDOCUMENTED"], "${VMBACKUP_NOT_IN_EXAMPLE}"
                )
            ),
        ),
        (
            "'$' without a variable name",
            "not followed by a variable name",
            edit(lambda d: set_in(d, ["services", first, "environment", "X_DOLLAR"], "pa$ word")),
        ),
        (
            "named volume not declared",
            "is not declared under volumes",
            edit(lambda d: d.pop("volumes", None)),
        ),
        (
            "YAML duplicate key",
            "duplicate key",
            lambda: "services:\n  a:\n    image: x:1\n  a:\n    image: y:1\n",
        ),
        ("YAML syntax error", "YAML: while parsing", lambda: "services:\n  a:\n    image: [unclosed\n"),
        (
            "depends_on cycle",
            "depends_on cycle",
            edit(
                lambda d: set_in(
                    d, ["services", first, "depends_on"], {with_deps: {"condition": "service_started"}}
                )
            ),
        ),
    ]
    if oneshot:
        cases.append(
            (
                "one-shot with restart: always",
                "a one-shot must not restart",
                edit(lambda d: set_in(d, ["services", oneshot, "restart"], "always")),
            )
        )
    if no_healthcheck:
        cases.append(
            (
                "service_healthy on a service without healthcheck",
                "has no healthcheck",
                edit(
                    lambda d: set_in(
                        d,
                        ["services", with_deps_other(no_healthcheck), "depends_on"],
                        {no_healthcheck: {"condition": "service_healthy"}},
                    )
                ),
            )
        )
    if pinned:
        cases.append(
            (
                "unpinned image (:latest)",
                "is not pinned to a version tag",
                edit(lambda d: set_in(d, ["services", pinned, "image"], "postgres:latest")),
            )
        )
    if bind:
        cases.append(
            (
                "bind mount of a missing file",
                "bind mount source './deploy/no-such-file' does not exist",
                edit(
                    lambda d: set_in(
                        d, ["services", bind[0], "volumes", bind[1]], "./deploy/no-such-file:/x:ro"
                    )
                ),
            )
        )
    return cases


def self_test(
    text: str, example: EnvExample, project_dir: Path, validator: jsonschema.protocols.Validator
) -> bool:
    ok = True
    cases = mutations(text)
    for label, expected, make in cases:
        errors, _ = check_text(make(), example, project_dir, validator)
        hits = [e for e in errors if expected in e]
        if hits:
            print(f"  self-test: rejected {label}: {hits[0]}")
        else:
            print(
                f"  self-test: FAILED to reject {label} (expected an error with {expected!r}, got {errors})"
            )
            ok = False
    print(f"self-test: {'all' if ok else 'NOT all'} {len(cases)} broken variants rejected")
    return ok


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--env-example", type=Path, required=True)
    parser.add_argument(
        "--project-dir", type=Path, help="relative paths resolve here (default: each file's directory)"
    )
    parser.add_argument(
        "--self-test", action="store_true", help="also break the first file and expect rejections"
    )
    args = parser.parse_args(argv)

    schema = compose_schema()
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema)
    example = EnvExample(args.env_example)

    failed = False
    for path in args.files:
        project_dir = args.project_dir or path.resolve().parent
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as err:
            print(f"{path}: cannot read: {err}")
            failed = True
            continue
        errors, facts = check_text(text, example, project_dir, validator)
        if errors:
            failed = True
            for e in errors:
                print(f"{path}: {e}")
        else:
            print(
                f"{path}: ok (compose-spec schema raw and interpolated, {facts['services']} services, "
                f"{facts['variables']} variables documented in {args.env_example})"
            )
    if args.self_test and not failed:
        base_dir = args.project_dir or args.files[0].resolve().parent
        failed = not self_test(args.files[0].read_text(encoding="utf-8"), example, base_dir, validator)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

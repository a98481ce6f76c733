"""Validate every fake answer against a schema written from the vendor's published API.

A schema file (`tests/fakes/schemas/<vendor>/<operation>.json`) is a tiny OpenAPI-like
document: `source` cites the vendor page it was written from, `responses` maps each documented
status code (or `default`, as in OpenAPI) to a JSON schema (draft 2020-12) of `{"headers":
{lower-case name: value}, "body": ...}`. An answer whose status the vendor does not document,
or whose headers or body do not match, is a violation: it is recorded in `VIOLATIONS` (the
fixture in `tests/registries` fails the test on any, also for fakes served from a thread) and
raised as AssertionError.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SCHEMAS = Path(__file__).parent / "schemas"
BASE = "https://schemas.ci-env.test/"  # an id only: schemas refer to each other by file name
VIOLATIONS: list[str] = []


@cache
def load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((SCHEMAS / name).read_text())
    assert document.get("source"), f"{name} cites no vendor document"
    document["$id"] = BASE + name
    Draft202012Validator.check_schema(document)
    return document


@cache
def _registry() -> Registry[Any]:
    names = (path.relative_to(SCHEMAS).as_posix() for path in SCHEMAS.rglob("*.json"))
    return Registry().with_resources(
        (BASE + name, Resource.from_contents(load(name), DRAFT202012)) for name in names
    )


def check(name: str, status: int, headers: dict[str, str], body: Any) -> None:
    """Record and raise a violation unless the answer is one `name` documents."""
    document = load(name)
    key = str(status) if str(status) in document["responses"] else "default"  # as in OpenAPI
    if key not in document["responses"]:
        _violation(f"{name}: status {status} is not documented ({sorted(document['responses'])})")
    schema = {**document, "$ref": f"#/responses/{key}"}
    answer = {"headers": {key.lower(): value for key, value in headers.items()}, "body": body}
    validator = Draft202012Validator(schema, registry=_registry())
    errors = sorted(validator.iter_errors(answer), key=str)
    if errors:
        where = "/".join(str(part) for part in errors[0].absolute_path)
        _violation(f"{name} {status} at {where or '.'}: {errors[0].message}")


def _violation(text: str) -> None:
    VIOLATIONS.append(text)
    raise AssertionError(f"fake answer drifted from the vendor schema: {text}")


def checked(handler: Any, name: str | None) -> Any:
    """`handler` with each of its answers checked against schema `name` (None: unchecked)."""
    if name is None:
        return handler
    load(name)  # a missing or malformed schema fails when the route is declared

    def answer(call: Any) -> Any:
        status, headers, body = handler(call)
        check(name, status, headers, body)
        return status, headers, body

    answer.schema = name  # type: ignore[attr-defined]  # for the every-route-is-checked test
    return answer

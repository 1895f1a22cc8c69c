"""One value per query parameter, unless the route declares a list.

Starlette keeps every value of a repeated parameter and FastAPI reads the last one for
a parameter that holds a single value: ``?peer=a&peer=b`` would be answered as if it
said ``peer=b``. A request that repeats a single-valued parameter is refused instead,
naming it, before the route runs.
"""

from __future__ import annotations

import types
from collections import Counter
from typing import Any, Union, get_args, get_origin

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel

from infracms.errors import InvalidInput

SEQUENCES = (list, tuple, set, frozenset)


def single_query_values(request: Request) -> None:
    """Refuse a query string that repeats a parameter the route takes one value of."""
    counts = Counter(key for key, _ in request.query_params.multi_items())
    repeated = [key for key, seen in counts.items() if seen > 1]
    if not repeated:
        return
    route = request.scope.get("route")
    lists = _list_parameters(route.dependant) if isinstance(route, APIRoute) else frozenset()
    wrong = sorted(key for key in repeated if key not in lists)
    if wrong:
        raise InvalidInput(
            f"query parameter given more than once: {', '.join(wrong)}",
            errors={key: "give this parameter once" for key in wrong},
        )


def _list_parameters(dependant: Dependant) -> frozenset[str]:
    """The query parameters a route takes several values of (a query model's too); only
    asked when a request repeats a parameter."""
    names: set[str] = set()
    for field in _query_fields(dependant):
        annotation = field.field_info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            for name, inner in annotation.model_fields.items():
                if _takes_several(inner.annotation):
                    names.add(inner.alias or name)
        elif _takes_several(annotation):
            names.add(field.alias)
    return frozenset(names)


def _query_fields(dependant: Dependant) -> list[Any]:
    """The query parameters of `dependant` and of the dependencies it has."""
    fields = list(dependant.query_params)
    for inner in dependant.dependencies:
        fields += _query_fields(inner)
    return fields


def _takes_several(annotation: Any) -> bool:
    origin = get_origin(annotation)
    if origin in SEQUENCES:
        return True
    if origin is Union or origin is types.UnionType:
        return any(_takes_several(arg) for arg in get_args(annotation))
    return False

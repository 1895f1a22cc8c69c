"""A single-valued query parameter given twice is refused, naming it; a list parameter
may repeat."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query
from fastapi.testclient import TestClient
from pydantic import BaseModel

from infracms.api import problems
from infracms.api.query import single_query_values
from tests.api.test_bad_input import admin

__all__ = ["admin"]  # the fixture: the admin signed in, with an organisation `clinic`


def test_a_repeated_single_valued_parameter_is_refused(admin: TestClient) -> None:
    for path in (
        "/api/v1/catalog?peer=a&peer=b",
        "/api/v1/orgs/clinic/hosts?search=a&search=b",
        "/api/v1/orgs/clinic/hosts?limit=1&limit=2",
    ):
        response = admin.get(path)
        assert response.status_code == 422, (path, response.text)
        problem = response.json()
        assert problem["type"].endswith("/invalid-input"), problem
        assert "more than once" in problem["detail"], problem
    assert admin.get("/api/v1/catalog?peer=a").status_code == 200
    assert admin.get("/api/v1/orgs/clinic/hosts?search=a&limit=2").status_code == 200


class Filter(BaseModel):
    hosts: list[str] | None = None
    name: str | None = None


def _things(filters: Annotated[Filter, Query()], tag: Annotated[list[str], Query()] = []) -> Any:
    return {"tags": tag, "hosts": filters.hosts}


def test_a_list_parameter_may_repeat_in_a_route_or_a_query_model() -> None:
    router = APIRouter(dependencies=[Depends(single_query_values)])
    router.add_api_route("/things", _things, methods=["GET"])
    app = FastAPI()
    problems.install(app)
    app.include_router(router)
    client = TestClient(app)
    answer = client.get("/things?tag=a&tag=b&hosts=x&hosts=y")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"tags": ["a", "b"], "hosts": ["x", "y"]}
    assert client.get("/things?name=a&name=b").status_code == 422

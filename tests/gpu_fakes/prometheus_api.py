"""A small Prometheus HTTP API: `/api/v1/query` answering `avg_over_time(METRIC{…}[window])`.

Answers in Prometheus' real JSON (`{"status":"success","data":{"resultType":"vector",
"result":[{"metric":{…},"value":[<unix time>,"<text>"]}]}}`) from series given per metric, and
errors as Prometheus writes them (`{"status":"error","errorType":"bad_data","error":"…"}`, HTTP 400).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence

from tests.gpu_fakes.http_server import Received, Reply

_QUERY = re.compile(
    r"^avg_over_time\((?P<metric>[A-Za-z_:][A-Za-z0-9_:]*)\{(?P<selector>[^}]*)\}\[(?P<window>[0-9a-z]+)\]\)$"
)

Series = tuple[Mapping[str, str], str]  # labels, value as Prometheus writes it ("42.5", "NaN")


class FakePrometheus:
    def __init__(
        self, series: Mapping[str, Sequence[Series]], *, fail_with: tuple[int, str] | None = None
    ) -> None:
        self.series = series
        self.fail_with = fail_with  # (HTTP status, body) for every query

    def __call__(self, request: Received) -> Reply:
        if request.path != "/api/v1/query":
            return Reply(404, b"404 page not found\n")
        if self.fail_with is not None:
            status, body = self.fail_with
            return Reply(status, body.encode(), content_type="application/json")
        query = request.query.get("query", [""])[0]
        at = float(request.query.get("time", ["0"])[0])
        matched = _QUERY.match(query)
        if matched is None:
            error = {
                "status": "error",
                "errorType": "bad_data",
                "error": f'invalid parameter "query": 1:1: parse error: unexpected query {query!r}',
            }
            return Reply(400, json.dumps(error).encode(), content_type="application/json")
        result = [
            {"metric": dict(labels), "value": [at, value]}
            for labels, value in self.series.get(matched["metric"], ())
        ]
        answer = {"status": "success", "data": {"resultType": "vector", "result": result}}
        return Reply(200, json.dumps(answer).encode(), content_type="application/json")

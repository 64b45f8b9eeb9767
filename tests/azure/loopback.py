"""A loopback server speaking the Log Analytics query API and the metrics batch API.

It evaluates, against an in-memory table, the small subset of KQL natlens emits
(``where`` with datetime bounds, ``in~``, ``endswith``, ``and``/``or``; ``project``;
``summarize sum() by bin()``; ``getschema``), using its own tokenizer: a string literal
natlens failed to escape would change what it evaluates. It also plays the service's
limits: the row cap (answering a partial result), 429 with Retry-After, and the
per-user concurrency limit.

A table on the Basic plan (``Table.plan = "basic"``) answers as Microsoft documents
("Query data in a Basic and Auxiliary table", "Azure Monitor service limits"): only
through ``/v1/workspaces/{id}/search`` with the time range in the request, never
through ``/query`` nor in a resource's context (the real service's 400
``UnsupportedApiQueryValidationError``), two concurrent queries per user, no time
filter in the query body, and only its last 30 days (``Loopback.now``) queryable:
older records are simply not there, as they sit in long-term retention.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import polars as pl

_TOKEN = re.compile(
    r"""\s*(?:
    (?P<str>"(?:[^"\\]|\\.)*")
  | (?P<dt>datetime\([^)]*\))
  | (?P<op>>=|<=|==|in~|[|(),=<>])
  | (?P<num>\d+[a-z]*)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | \['(?P<quoted>[A-Za-z_][A-Za-z0-9_]*)'\]
)""",
    re.VERBOSE,
)


class KqlError(ValueError):
    """The query is outside what this server understands (a test failure, not a skip)."""


def tokenize(text: str) -> list[tuple[str, Any]]:
    tokens: list[tuple[str, Any]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise KqlError(f"cannot read KQL at {pos}: {text[pos : pos + 30]!r}")
        pos = match.end()
        kind = match.lastgroup
        value = match.group(kind)  # type: ignore[arg-type]
        if kind == "str":
            tokens.append(("str", json.loads(value)))
        elif kind == "dt":
            inner = value[len("datetime(") : -1]
            tokens.append(("dt", datetime.fromisoformat(inner).astimezone(UTC)))
        elif kind == "quoted":
            tokens.append(("word", value))
        else:
            tokens.append((kind, value))  # type: ignore[arg-type]
    return tokens


def _split_pipes(tokens: list[tuple[str, Any]]) -> list[list[tuple[str, Any]]]:
    parts: list[list[tuple[str, Any]]] = [[]]
    for token in tokens:
        if token == ("op", "|"):
            parts.append([])
        else:
            parts[-1].append(token)
    return parts


def _timespan(text: str) -> timedelta:
    match = re.fullmatch(r"(\d+)([dhm])", text)
    if match is None:
        raise KqlError(f"timespan {text!r}")
    unit = {"d": "days", "h": "hours", "m": "minutes"}[match.group(2)]
    return timedelta(**{unit: int(match.group(1))})


class _Cursor:
    def __init__(self, tokens: list[tuple[str, Any]]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> tuple[str, Any] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, kind: str | None = None, value: Any = None) -> Any:
        token = self.peek()
        if token is None or (kind and token[0] != kind) or (value and token[1] != value):
            raise KqlError(f"expected {kind} {value}, got {token}")
        self.pos += 1
        return token[1]

    def accept(self, kind: str, value: Any) -> bool:
        if self.peek() == (kind, value):
            self.pos += 1
            return True
        return False


def _condition(cur: _Cursor, columns: set[str]) -> pl.Expr:
    terms = [_conjunction(cur, columns)]
    while cur.accept("word", "or"):
        terms.append(_conjunction(cur, columns))
    out = terms[0]
    for term in terms[1:]:
        out = out | term
    return out


def _conjunction(cur: _Cursor, columns: set[str]) -> pl.Expr:
    terms = [_term(cur, columns)]
    while cur.accept("word", "and"):
        terms.append(_term(cur, columns))
    out = terms[0]
    for term in terms[1:]:
        out = out & term
    return out


def _term(cur: _Cursor, columns: set[str]) -> pl.Expr:
    name = cur.take("word")
    if name not in columns:
        raise KqlError(f"unknown column {name}")
    col = pl.col(name)
    token = cur.peek()
    if token == ("op", ">="):
        cur.take()
        at_least: pl.Expr = col >= cur.take("dt")
        return at_least
    if token == ("op", "<"):
        cur.take()
        before: pl.Expr = col < cur.take("dt")
        return before
    if token == ("op", "in~"):
        cur.take()
        cur.take("op", "(")
        values = [cur.take("str").lower()]
        while cur.accept("op", ","):
            values.append(cur.take("str").lower())
        cur.take("op", ")")
        return col.str.to_lowercase().is_in(values)
    if token == ("word", "endswith"):
        cur.take()
        return col.str.to_lowercase().str.ends_with(cur.take("str").lower())
    raise KqlError(f"operator {token}")


@dataclass
class Table:
    """The table the server holds, with the workspace's own column names and KQL types."""

    name: str
    types: dict[str, str]
    frame: pl.DataFrame
    plan: str = "analytics"


def evaluate(
    query: str,
    tables: dict[str, Table],
    span: tuple[datetime, datetime] | None = None,
) -> tuple[list[tuple[str, str]], pl.DataFrame]:
    """Run ``query`` and return the result's (name, KQL type) columns and its frame.

    ``span`` is the request's timespan: like the service, it bounds TimeGenerated first.
    """
    stages = _split_pipes(tokenize(query))
    head = stages[0]
    if len(head) != 1 or head[0][0] != "word" or head[0][1] not in tables:
        raise KqlSemanticError(f"'{head[0][1] if head else ''}' could not be resolved")
    table = tables[head[0][1]]
    frame = table.frame
    if span is not None:
        frame = frame.filter(pl.col("TimeGenerated").is_between(span[0], span[1], closed="left"))
    types = dict(table.types)
    for stage in stages[1:]:
        cur = _Cursor(stage)
        op = cur.take("word")
        if op == "getschema":
            frame = pl.DataFrame(
                {
                    "ColumnName": list(types),
                    "ColumnOrdinal": list(range(len(types))),
                    "DataType": [f"System.{t}" for t in types.values()],
                    "ColumnType": list(types.values()),
                }
            )
            types = {
                "ColumnName": "string",
                "ColumnOrdinal": "int",
                "DataType": "string",
                "ColumnType": "string",
            }
        elif op == "where":
            frame = frame.filter(_condition(cur, set(types)))
        elif op == "project":
            exprs, new_types = [], {}
            while True:
                target = cur.take("word")
                source = cur.take("word") if cur.accept("op", "=") else target
                if source not in types:
                    raise KqlError(f"unknown column {source}")
                exprs.append(pl.col(source).alias(target))
                new_types[target] = types[source]
                if not cur.accept("op", ","):
                    break
            frame, types = frame.select(exprs), new_types
        elif op == "summarize":
            aggs, new_types = [], {}
            while True:
                target = cur.take("word")
                cur.take("op", "=")
                cur.take("word", "sum")
                cur.take("op", "(")
                source = cur.take("word")
                cur.take("op", ")")
                aggs.append(pl.col(source).sum().alias(target))
                new_types[target] = "long"
                if not cur.accept("op", ","):
                    break
            cur.take("word", "by")
            keys, key_types = [], {}
            while True:
                target = cur.take("word")
                cur.take("op", "=")
                if cur.accept("word", "bin"):
                    cur.take("op", "(")
                    source = cur.take("word")
                    cur.take("op", ",")
                    grain = _timespan(cur.take("num"))
                    cur.take("op", ")")
                    keys.append(pl.col(source).dt.truncate(grain).alias(target))
                    key_types[target] = "datetime"
                else:
                    source = cur.take("word")
                    keys.append(pl.col(source).alias(target))
                    key_types[target] = types[source]
                if not cur.accept("op", ","):
                    break
            frame = frame.group_by(keys).agg(aggs)
            types = {**key_types, **new_types}
        else:
            raise KqlError(f"operator {op}")
        if cur.peek() is not None:
            raise KqlError(f"trailing tokens in {op}: {cur.tokens[cur.pos :]}")
    return list(types.items()), frame.select(list(types))


class KqlSemanticError(ValueError):
    """The query names a table or column the workspace does not have."""


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value


@dataclass
class Loopback:
    """State and knobs of the loopback service; tests change them between calls."""

    tables: dict[str, Table] = field(default_factory=dict)
    metrics: pl.DataFrame | None = None
    max_rows: int = 500_000
    max_concurrent: int = 5
    delay: float = 0.0
    throttle: int = 0
    retry_after: int = 1
    partial_when: Callable[[str], bool] | None = None
    max_concurrent_basic: int = 2
    basic_days: int = 30
    now: datetime | None = None  # the service's clock, for the Basic look-back
    log: list[dict[str, Any]] = field(default_factory=list)
    in_flight: int = 0
    peak_in_flight: int = 0
    in_flight_search: int = 0
    peak_in_flight_search: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _span(text: str | None) -> tuple[datetime, datetime] | None:
    """An ISO 8601 ``start/end`` timespan (the only form natlens sends), or None."""
    if not text or "/" not in text:
        return None
    lo, hi = (datetime.fromisoformat(p).astimezone(UTC) for p in text.split("/"))
    return lo, hi


def _head_table(query: str) -> str | None:
    """The table a query starts from."""
    try:
        head = _split_pipes(tokenize(query))[0]
    except KqlError:
        return None
    return str(head[0][1]) if len(head) == 1 and head[0][0] == "word" else None


def _cap(state: Loopback, query: str) -> int:
    """The row cap for a query. Tests lower it to a few rows for data queries; a schema
    answer (17 rows) is far below the real 500,000 and is never capped."""
    return 500_000 if "getschema" in query else state.max_rows


def _handler(state: Loopback) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(
            self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
        ) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"] or 0)) or b"{}")
            entry = {
                "path": url.path,
                "query": parse_qs(url.query),
                "body": body,
                "authorization": self.headers.get("Authorization"),
                "prefer": self.headers.get("Prefer"),
                "at": time.monotonic(),
            }
            with state.lock:
                state.log.append(entry)
                if state.throttle > 0:
                    state.throttle -= 1
                    entry["status"] = 429
                    throttled = True
                else:
                    throttled = False
                    state.in_flight += 1
                    state.peak_in_flight = max(state.peak_in_flight, state.in_flight)
                    over = state.in_flight > state.max_concurrent
                    search = url.path.endswith("/search")
                    if search:
                        state.in_flight_search += 1
                        state.peak_in_flight_search = max(
                            state.peak_in_flight_search, state.in_flight_search
                        )
                        over |= state.in_flight_search > state.max_concurrent_basic
            if throttled:
                self._send(
                    429,
                    {"error": {"code": "TooManyRequests", "message": "throttled"}},
                    {"Retry-After": str(state.retry_after)},
                )
                return
            try:
                if over:
                    entry["status"] = 429
                    self._send(
                        429,
                        {"error": {"code": "TooManyRequests", "message": "too many concurrent"}},
                        {"Retry-After": "1"},
                    )
                    return
                time.sleep(state.delay)
                if url.path.endswith("/metrics:getBatch"):
                    self._metrics(entry)
                elif url.path.startswith("/v1/") and url.path.endswith("/query"):
                    self._query(entry)
                elif url.path.startswith("/v1/workspaces/") and search:
                    self._search(entry)
                elif url.path == "/v2/rest/query":
                    self._kusto(entry)
                else:
                    self._send(404, {"error": {"code": "NotFound", "message": url.path}})
            finally:
                with state.lock:
                    state.in_flight -= 1
                    state.in_flight_search -= int(search)

        def _bad(self, entry: dict[str, Any], code: str, message: str) -> None:
            entry["status"] = 400
            self._send(
                400,
                {
                    "error": {
                        "code": "BadArgumentError",
                        "message": "The request had some invalid properties",
                        "innererror": {"code": code, "message": message},
                    }
                },
            )

        def _query(self, entry: dict[str, Any]) -> None:
            body = entry["body"]
            span = _span(body.get("timespan"))
            head = _head_table(body["query"])
            if head in state.tables and state.tables[head].plan == "basic":
                # The real service's answer (seen in the Azure SDK and Grafana issues).
                workspace = entry["path"].startswith("/v1/workspaces/")
                api = (
                    "/v1/workspaces/{workspaceId}/query" if workspace else "/v1/{resourceId}/query"
                )
                self._bad(
                    entry,
                    "UnsupportedApiQueryValidationError",
                    f"Query of Basic Logs table is not supported with the API "
                    f"'https://api.loganalytics.io{api}'.\nYou can use "
                    "'https://api.loganalytics.io/v1/workspaces/{workspaceId}/search' instead.\n"
                    "To learn more on queries on Basic Logs table, read here: "
                    "https://aka.ms/basicLogsQueryAPI.",
                )
                return
            self._answer(entry, body["query"], span, state.tables)

        def _search(self, entry: dict[str, Any]) -> None:
            """``/search``: a Basic table's only door; the time range comes with the request."""
            body = entry["body"]
            given = entry["query"].get("timespan", [body.get("timespan")])[0]
            span = _span(given)
            if span is None:
                self._bad(entry, "BadArgumentError", "a search query needs a timespan")
                return
            stages = _split_pipes(tokenize(body["query"]))
            if any(
                stage[:1] == [("word", "where")] and ("word", "TimeGenerated") in stage
                for stage in stages
            ):
                self._bad(
                    entry,
                    "BadArgumentError",
                    "Basic Logs: the time range is set in the request, not with a where statement",
                )
                return
            now = state.now or datetime.now(UTC)
            oldest = now - timedelta(days=state.basic_days)
            tables = {
                name: Table(
                    table.name,
                    table.types,
                    table.frame.filter(pl.col("TimeGenerated") >= oldest),
                    table.plan,
                )
                for name, table in state.tables.items()
            }
            self._answer(entry, body["query"], span, tables)

        def _answer(
            self,
            entry: dict[str, Any],
            query: str,
            span: tuple[datetime, datetime] | None,
            tables: dict[str, Table],
        ) -> None:
            body = {"query": query}
            try:
                types, frame = evaluate(query, tables, span)
            except KqlSemanticError as err:
                entry["status"] = 400
                self._send(
                    400,
                    {
                        "error": {
                            "code": "BadArgumentError",
                            "message": "The request had some invalid properties",
                            "innererror": {"code": "SemanticError", "message": str(err)},
                        }
                    },
                )
                return
            answer: dict[str, Any] = {}
            partial = state.partial_when is not None and state.partial_when(body["query"])
            cap = _cap(state, body["query"])
            if frame.height > cap:
                frame = frame.head(cap)
                partial = True
            rows = [[_json_value(v) for v in row] for row in frame.iter_rows()]
            answer["tables"] = [
                {
                    "name": "PrimaryResult",
                    "columns": [{"name": n, "type": t} for n, t in types],
                    "rows": rows,
                }
            ]
            if partial:
                answer["error"] = {
                    "code": "PartialError",
                    "message": "There were some errors when processing your query.",
                    "details": [
                        {
                            "code": "EngineError",
                            "message": "Query result set has exceeded the internal record count "
                            f"limit {cap} records",
                            "innererror": {"code": "E_QUERY_RESULT_SET_TOO_LARGE"},
                        }
                    ],
                }
            entry["status"] = 200
            entry["rows"] = len(rows)
            self._send(200, answer)

        def _kusto(self, entry: dict[str, Any]) -> None:
            """Azure Data Explorer's v2 query protocol: a JSON array of frames."""
            body = entry["body"]
            entry["body"] = {"query": body["csl"], "db": body["db"]}
            entry["properties"] = body.get("properties")
            try:
                types, frame = evaluate(body["csl"], state.tables)
            except KqlSemanticError as err:
                entry["status"] = 400
                self._send(
                    400,
                    {
                        "error": {
                            "code": "General_BadRequest",
                            "message": "Request is invalid and cannot be executed.",
                            "@type": "Kusto.Data.Exceptions.SemanticException",
                            "@message": f"Semantic error: {err}",
                            "@permanent": True,
                        }
                    },
                )
                return
            cap = _cap(state, body["csl"])
            truncated = frame.height > cap
            rows: list[Any] = [[_json_value(v) for v in row] for row in frame.head(cap).iter_rows()]
            entry["rows"] = len(rows)
            if truncated:
                rows.append(
                    {
                        "OneApiErrors": [
                            {
                                "error": {
                                    "code": "LimitsExceeded",
                                    "message": "Request is invalid and cannot be executed.",
                                    "@type": "Kusto.Data.Exceptions."
                                    "KustoServicePartialQueryFailureLimitsExceededException",
                                    "@message": "Query execution has exceeded the allowed "
                                    f"limits: the results exceed the set limit of "
                                    f"{cap} records (E_QUERY_RESULT_SET_TOO_LARGE)",
                                    "@permanent": False,
                                }
                            }
                        ]
                    }
                )
            frames = [
                {"FrameType": "DataSetHeader", "IsProgressive": False, "Version": "v2.0"},
                {
                    "FrameType": "DataTable",
                    "TableId": 0,
                    "TableKind": "PrimaryResult",
                    "TableName": "PrimaryResult",
                    "Columns": [{"ColumnName": n, "ColumnType": t} for n, t in types],
                    "Rows": rows,
                },
                {"FrameType": "DataSetCompletion", "HasErrors": truncated, "Cancelled": False},
            ]
            entry["status"] = 200
            data = json.dumps(frames).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _metrics(self, entry: dict[str, Any]) -> None:
            assert state.metrics is not None
            q = {k: v[0] for k, v in entry["query"].items()}
            start = datetime.fromisoformat(q["starttime"]).astimezone(UTC)
            end = datetime.fromisoformat(q["endtime"]).astimezone(UTC)
            names = q["metricnames"].split(",")
            wanted = set(re.findall(r"(\w+) eq '\*'", q.get("filter", "")))
            values = []
            for rid in entry["body"]["resourceids"]:
                metrics = []
                for name in names:
                    rows = state.metrics.filter(
                        (pl.col("resource_id").str.to_uppercase() == rid.upper())
                        & (pl.col("metric") == name)
                        & (pl.col("time") >= start)
                        & (pl.col("time") < end)
                    )
                    dims = {
                        "Protocol": "protocol",
                        "Direction": "direction",
                        "ConnectionState": "connection_state",
                    }
                    split = [d for d in dims if d in wanted]
                    agg = "average" if name == "DatapathAvailability" else "total"
                    series = []
                    groups = rows.group_by([dims[d] for d in split]) if split else [((), rows)]
                    for raw_key, raw_group in groups:
                        key = raw_key if isinstance(raw_key, tuple) else (raw_key,)
                        group = raw_group.group_by("time").agg(pl.col("value").sum()).sort("time")
                        series.append(
                            {
                                "metadatavalues": [
                                    {"name": {"value": d, "localizedValue": d}, "value": v}
                                    for d, v in zip(split, key, strict=True)
                                ],
                                "data": [
                                    {"timeStamp": _json_value(t), agg: v}
                                    for t, v in group.iter_rows()
                                ],
                            }
                        )
                    metrics.append(
                        {
                            "id": f"{rid}/providers/Microsoft.Insights/metrics/{name}",
                            "type": "Microsoft.Insights/metrics",
                            "name": {"value": name, "localizedValue": name},
                            "unit": "Count",
                            "timeseries": series,
                        }
                    )
                values.append(
                    {
                        "starttime": q["starttime"],
                        "endtime": q["endtime"],
                        "interval": q.get("interval", "PT1M"),
                        "namespace": q["metricnamespace"],
                        "resourceregion": "westeurope",
                        "resourceid": rid,
                        "value": metrics,
                    }
                )
            entry["status"] = 200
            self._send(200, {"values": values})

    return Handler


class LoopbackServer:
    """A threaded HTTP server on 127.0.0.1 with a :class:`Loopback` state."""

    def __init__(self) -> None:
        self.state = Loopback()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.state))
        self.httpd.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def reset(self) -> None:
        tables, metrics = self.state.tables, self.state.metrics
        fresh = Loopback(tables=tables, metrics=metrics)
        for name in fresh.__dataclass_fields__:
            setattr(self.state, name, getattr(fresh, name))

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

"""moto in server mode: DynamoDB and S3 (standing in for R2) over real HTTP, or HTTPS, on loopback.

Records every request it serves (method, path, query, headers), so tests can count what reached the
"bucket" — completed uploads, aborted ones — and check the wire format (no aws-chunked bodies).

DynamoDB requests are served one at a time (``serialise_dynamodb``, on by default): moto's server runs each
request on its own thread and does not lock its tables, so two threads can both pass one
``ConditionExpression``, which real DynamoDB never allows. S3 requests stay concurrent.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wsgi import get_input_stream

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _QuietHandler(MotoRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]


class LocalAws:
    """``with LocalAws() as aws: aws.url`` — a moto server on 127.0.0.1 and a free port."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: tuple[str, str] | None = None,
        *,
        serialise_dynamodb: bool = True,
    ) -> None:
        self._host, self._port, self._tls = host, port, tls
        self._serialise_dynamodb = serialise_dynamodb
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()

    def _recording(self, app: WSGIApp) -> WSGIApp:
        def record(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            headers = {k[5:].replace("_", "-").lower(): str(v) for k, v in environ.items() if k.startswith("HTTP_")}
            if environ.get("CONTENT_TYPE"):
                headers["content-type"] = environ["CONTENT_TYPE"]
            if environ.get("CONTENT_LENGTH"):
                headers["content-length"] = environ["CONTENT_LENGTH"]
            if not environ.get("PATH_INFO", "").startswith("/moto-api"):
                with self._lock:
                    self.requests.append(
                        RecordedRequest(
                            environ["REQUEST_METHOD"],
                            environ.get("PATH_INFO", ""),
                            environ.get("QUERY_STRING", ""),
                            headers,
                        )
                    )
            return app(environ, start_response)

        return record

    @staticmethod
    def _one_dynamodb_request_at_a_time(app: WSGIApp) -> WSGIApp:
        dynamodb_lock = threading.Lock()

        def dispatch(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            if not str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith("DynamoDB_"):
                return app(environ, start_response)
            # The body is read before taking the lock, so a slow or stalled client holds up no one else.
            body = get_input_stream(environ).read()
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            with dynamodb_lock:
                # Drained inside the lock: a lazy answer could still be writing after the lock is released.
                answer = app(environ, start_response)
                try:
                    return list(answer)
                finally:
                    close = getattr(answer, "close", None)
                    if close is not None:
                        close()

        return dispatch

    def start(self) -> LocalAws:
        app: WSGIApp = DomainDispatcherApplication(create_backend_app)
        if self._serialise_dynamodb:
            app = self._one_dynamodb_request_at_a_time(app)
        app = self._recording(app)
        self._server = make_server(
            self._host, self._port, app, threaded=True, request_handler=_QuietHandler, ssl_context=self._tls
        )
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-aws", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> LocalAws:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return int(self._server.server_port)

    @property
    def url(self) -> str:
        scheme = "https" if self._tls else "http"
        host = "localhost" if self._tls else self._host  # the test certificate names localhost
        return f"{scheme}://{host}:{self.port}"

    def reset(self) -> None:
        """Forget every table, bucket, queue and recorded request.

        Deleted one by one rather than by moto's own reset: after that, moto builds its DynamoDB backend again on
        the next request, which costs about a second — on every test that starts from a clean slate."""
        dynamodb, s3, sqs = self.client("dynamodb"), self.client("s3"), self.client("sqs")
        for table in dynamodb.list_tables().get("TableNames", []):
            dynamodb.delete_table(TableName=table)
        for bucket in (b["Name"] for b in s3.list_buckets().get("Buckets", [])):
            for upload in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
                s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                for item in page.get("Contents", []):
                    s3.delete_object(Bucket=bucket, Key=item["Key"])
            s3.delete_bucket(Bucket=bucket)
        for queue in sqs.list_queues().get("QueueUrls", []):
            sqs.delete_queue(QueueUrl=queue)
        with self._lock:
            self.requests.clear()

    def client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client for this server in us-east-1 (for setting up buckets and tables)."""
        import boto3

        verify: Any = self._tls[0] if self._tls else None
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 (moto accepts any key)
            verify=verify,
            **kwargs,
        )

    def create_save_queues(
        self, name: str = "saves", *, max_receives: int = 5, visibility_s: int = 5400
    ) -> tuple[str, str]:
        """The save queue and its dead-letter queue, with serverless.yml's redrive policy; their URLs."""
        import json

        sqs = self.client("sqs")
        dead_letter = sqs.create_queue(QueueName=f"{name}-dead-letter")["QueueUrl"]
        dead_letter_arn = sqs.get_queue_attributes(QueueUrl=dead_letter, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        redrive = {"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": str(max_receives)}
        queue = sqs.create_queue(
            QueueName=name,
            Attributes={"VisibilityTimeout": str(visibility_s), "RedrivePolicy": json.dumps(redrive)},
        )["QueueUrl"]
        return queue, dead_letter

    def requests_matching(self, method: str, *, query_has: str = "", path_has: str = "") -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.method == method and query_has in r.query and path_has in r.path]

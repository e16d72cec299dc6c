"""The faulty proxy, through real boto3 clients against moto (server mode) behind it: what passes through
arrives unchanged, and each fault reaches botocore the way the real failure would."""

from __future__ import annotations

import hashlib
import http.client
import io
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, HTTPClientError, ReadTimeoutError

from devtools.faulty_proxy import (
    CHUNK,
    FaultyProxy,
    Match,
    Respond,
    delay,
    dynamodb,
    dynamodb_throttling,
    dynamodb_throughput_exceeded,
    lose_answer,
    reset,
    respond,
    s3_abort_multipart_upload,
    s3_complete_multipart_upload,
    s3_create_multipart_upload,
    s3_internal_error,
    s3_put_object,
    s3_slow_down,
    s3_upload_part,
    stall,
    too_many_requests,
)
from devtools.local_aws import LocalAws
from tests.conftest import make_video
from video_library import db
from video_library.r2 import r2_config
from video_library.settings import get_settings

BUCKET = "fault-tests"
TABLE = "fault-tests"
MIB = 1024 * 1024
KEY = "campaigns/42/videos/v1.mp4"
NO_RETRIES = {"mode": "standard", "total_max_attempts": 1}  # botocore's "max_attempts" counts retries only


@pytest.fixture
def aws(local_aws: LocalAws) -> LocalAws:
    """moto, emptied, with a bucket and a table (made directly, not through the proxy)."""
    local_aws.reset()
    local_aws.client("s3").create_bucket(Bucket=BUCKET)
    local_aws.client("dynamodb").create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return local_aws


def s3_via(proxy: FaultyProxy, **config: Any) -> Any:
    """An S3 client built as the service builds its R2 client, pointed at the proxy."""
    return boto3.client(
        "s3",
        endpoint_url=proxy.url,
        aws_access_key_id="r2-key-id",
        aws_secret_access_key="r2-secret",
        config=r2_config().merge(Config(**config)),
    )


def dynamodb_via(proxy: FaultyProxy, **config: Any) -> Any:
    return boto3.client(
        "dynamodb",
        endpoint_url=proxy.url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(**config),
    )


def stored(aws: LocalAws, key: str = KEY) -> bytes | None:
    """The object's bytes as moto holds them (read directly, not through the proxy); None when absent."""
    try:
        body: bytes = aws.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()
    except ClientError as error:
        if error.response["Error"]["Code"] == "NoSuchKey":
            return None
        raise
    return body


def stored_item(aws: LocalAws, pk: str) -> dict[str, Any] | None:
    item: dict[str, Any] | None = (
        aws.client("dynamodb").get_item(TableName=TABLE, Key={"pk": {"S": pk}}, ConsistentRead=True).get("Item")
    )
    return item


def payload(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Wait for something another thread does; the bound only turns a hang into a failure."""
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.01)


# --- passing through unchanged -----------------------------------------------------------------------------------


def test_a_20_mib_object_goes_up_and_comes_back_byte_for_byte(aws: LocalAws, faults: FaultyProxy) -> None:
    # GIVEN a client talking to moto through the proxy, with no rules
    s3 = s3_via(faults)
    data = payload(20 * MIB)

    # WHEN it puts a 20 MiB object and reads it back
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=data)
    read_back = s3.get_object(Bucket=BUCKET, Key=KEY)["Body"].read()

    # THEN the bytes are the same both ways, and the log shows two plain forwarded requests
    assert hashlib.sha256(read_back).digest() == hashlib.sha256(data).digest()
    assert stored(aws) == data
    assert [(r.method, r.path, r.rule, r.upstream_status, r.client_status) for r in faults.log] == [
        ("PUT", f"/{BUCKET}/{KEY}", None, 200, 200),
        ("GET", f"/{BUCKET}/{KEY}", None, 200, 200),
    ]


def test_a_multipart_upload_passes_through_and_each_step_is_told_apart(aws: LocalAws, faults: FaultyProxy) -> None:
    # GIVEN three parts of an upload
    s3 = s3_via(faults)
    parts = [payload(5 * MIB, 1), payload(5 * MIB, 2), payload(MIB, 3)]

    # WHEN they are uploaded as one multipart upload through the proxy
    upload_id = s3.create_multipart_upload(Bucket=BUCKET, Key=KEY)["UploadId"]
    etags = [
        s3.upload_part(Bucket=BUCKET, Key=KEY, UploadId=upload_id, PartNumber=number, Body=part)["ETag"]
        for number, part in enumerate(parts, start=1)
    ]
    s3.complete_multipart_upload(
        Bucket=BUCKET,
        Key=KEY,
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etag} for n, etag in enumerate(etags, start=1)]},
    )

    # THEN the object is the parts joined, no upload is left open, and the matchers name each step
    assert stored(aws) == b"".join(parts)
    assert aws.client("s3").list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    assert len(faults.requests(s3_create_multipart_upload(KEY))) == 1
    assert len(faults.requests(s3_upload_part(KEY))) == 3
    assert len(faults.requests(s3_upload_part(KEY, part_number=2))) == 1
    assert len(faults.requests(s3_complete_multipart_upload(KEY))) == 1
    assert faults.requests(s3_put_object(KEY)) == []
    assert faults.requests(s3_abort_multipart_upload(KEY)) == []


def test_an_aborted_multipart_upload_is_told_apart(aws: LocalAws, faults: FaultyProxy) -> None:
    # GIVEN an upload begun through the proxy
    s3 = s3_via(faults)
    upload_id = s3.create_multipart_upload(Bucket=BUCKET, Key=KEY)["UploadId"]

    # WHEN it is aborted
    s3.abort_multipart_upload(Bucket=BUCKET, Key=KEY, UploadId=upload_id)

    # THEN moto holds no upload and the abort is matched as one
    assert aws.client("s3").list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    assert [r.method for r in faults.requests(s3_abort_multipart_upload(KEY))] == ["DELETE"]
    assert faults.requests(s3_complete_multipart_upload(KEY)) == []


def test_dynamodb_requests_pass_through_and_are_told_apart_by_target(aws: LocalAws, faults: FaultyProxy) -> None:
    # GIVEN a DynamoDB client through the proxy
    client = dynamodb_via(faults)

    # WHEN it writes an item and reads it back
    client.put_item(TableName=TABLE, Item={"pk": {"S": "a"}, "n": {"N": "1"}})
    item = client.get_item(TableName=TABLE, Key={"pk": {"S": "a"}}, ConsistentRead=True)["Item"]

    # THEN the item is there, and each operation is matched by its X-Amz-Target
    assert item == {"pk": {"S": "a"}, "n": {"N": "1"}}
    assert stored_item(aws, "a") == item
    assert len(faults.requests(dynamodb("PutItem"))) == 1
    assert len(faults.requests(dynamodb("GetItem"))) == 1
    assert faults.requests(dynamodb("UpdateItem")) == []


def test_a_client_keeps_one_connection_alive_across_requests(aws: LocalAws, faults: FaultyProxy) -> None:
    # GIVEN one client (botocore pools its connections)
    s3 = s3_via(faults)

    # WHEN it makes five requests one after another
    for number in range(5):
        s3.put_object(Bucket=BUCKET, Key=f"k{number}", Body=b"x" * number)

    # THEN they all came on one connection, and all were answered
    assert len({r.connection for r in faults.log}) == 1
    assert [r.client_status for r in faults.log] == [200] * 5
    assert [stored(aws, f"k{number}") for number in range(5)] == [b"x" * number for number in range(5)]


def test_credentials_never_reach_the_log(aws: LocalAws, faults: FaultyProxy) -> None:
    # GIVEN a signed request (its Authorization header carries the signature)
    s3_via(faults).put_object(Bucket=BUCKET, Key=KEY, Body=b"x")

    # THEN the log keeps the request's other headers, not the credentials
    (seen,) = faults.log
    assert "authorization" not in seen.headers
    assert "x-amz-date" in seen.headers


def test_a_chunked_request_body_passes_through_with_its_framing(aws: LocalAws, faults: FaultyProxy) -> None:
    # GIVEN a body sent with Transfer-Encoding: chunked, in chunks larger and smaller than the proxy's buffer
    data = payload(CHUNK * 2 + 123)
    connection = http.client.HTTPConnection("127.0.0.1", int(faults.url.rsplit(":", 1)[1]))

    # WHEN it is PUT through the proxy
    connection.request(
        "PUT", f"/{BUCKET}/{KEY}", body=iter([data[:100], data[100:]]), encode_chunked=True, headers=_moto_auth()
    )
    answer = connection.getresponse()
    answer.read()
    connection.close()

    # THEN moto stored exactly those bytes
    assert answer.status == 200
    assert stored(aws) == data


def _moto_auth() -> dict[str, str]:
    # moto picks the service from the credential scope of the Authorization header
    return {"Authorization": "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/s3/aws4_request, Signature=x"}


class _OddAnswers(BaseHTTPRequestHandler):
    """An upstream answering ``GET /chunked`` with a chunked body and ``GET /short`` with less than it announced."""

    protocol_version = "HTTP/1.1"
    body = payload(3 * CHUNK + 7)

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_GET(self) -> None:
        if self.path == "/short":
            self.send_response(200)
            self.send_header("Content-Length", str(len(self.body)))
            self.end_headers()
            self.wfile.write(self.body[:1000])
            self.close_connection = True
            return
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for start in range(0, len(self.body), 100_000):
            piece = self.body[start : start + 100_000]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        self.wfile.write(b"0\r\n\r\n")


@pytest.fixture
def odd_upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _OddAnswers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_a_chunked_answer_passes_through_whole_and_the_connection_stays_usable(odd_upstream: str) -> None:
    # GIVEN an upstream that answers with chunked bodies
    with FaultyProxy(odd_upstream) as proxy:
        connection = http.client.HTTPConnection("127.0.0.1", proxy.port)

        # WHEN a client reads two answers on one connection
        bodies = []
        for _ in range(2):
            connection.request("GET", "/chunked")
            bodies.append(connection.getresponse().read())
        connection.close()

        # THEN both arrive whole, on that one connection
        assert bodies == [_OddAnswers.body, _OddAnswers.body]
        assert {r.connection for r in proxy.log} == {proxy.log[0].connection}


def test_an_answer_the_upstream_cuts_short_is_cut_short_for_the_client(odd_upstream: str) -> None:
    # GIVEN an upstream that announces a length and closes before sending it all
    with FaultyProxy(odd_upstream) as proxy:
        connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=30)  # a hang becomes a failure

        # WHEN a client reads the answer through the proxy
        connection.request("GET", "/short")
        answer = connection.getresponse()

        # THEN it sees the answer end early, as it would without the proxy, instead of waiting for the rest
        with pytest.raises((http.client.IncompleteRead, ConnectionError)):
            answer.read()
        connection.close()


# --- made-up answers ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["standard", "legacy"])
@pytest.mark.parametrize("answer", [s3_slow_down, s3_internal_error, too_many_requests])
def test_one_s3_error_on_put_object_is_retried_by_botocore_and_the_object_lands(
    aws: LocalAws, faults: FaultyProxy, answer: Callable[[], Respond], mode: str
) -> None:
    # GIVEN the next PutObject of the key answered with a transient S3 error
    rule = faults.add_rule(s3_put_object(KEY), answer())
    data = payload(MIB)

    # WHEN a client with retries puts the object, its body in memory
    s3_via(faults, retries={"mode": mode, "total_max_attempts": 3}).put_object(Bucket=BUCKET, Key=KEY, Body=data)

    # THEN botocore tried twice, and the second attempt stored the object
    assert rule.fired == 1
    attempts = faults.requests(s3_put_object(KEY))
    assert [(r.rule, r.client_status) for r in attempts] == [(rule.name, answer().status), (None, 200)]
    assert stored(aws) == data


@pytest.mark.parametrize(
    ("answer", "status", "code"),
    [(s3_slow_down, 503, "SlowDown"), (s3_internal_error, 500, "InternalError"), (too_many_requests, 429, None)],
)
def test_without_retries_the_s3_error_reaches_the_caller_as_s3_sends_it(
    aws: LocalAws, faults: FaultyProxy, answer: Callable[[], Respond], status: int, code: str | None
) -> None:
    # GIVEN the next PutObject answered with an S3 error, and a client that does not retry
    faults.add_rule(s3_put_object(KEY), answer())
    s3 = s3_via(faults, retries=NO_RETRIES)

    # WHEN it puts the object
    with pytest.raises(ClientError) as raised:
        s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"video bytes")

    # THEN botocore parsed the error as the real one, and nothing was stored
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    if code is not None:
        assert raised.value.response["Error"]["Code"] == code
    assert stored(aws) is None
    assert len(faults.requests(s3_put_object(KEY))) == 1


def test_a_made_up_answer_keeps_the_connection_for_the_next_request(aws: LocalAws, faults: FaultyProxy) -> None:
    # GIVEN a DynamoDB GetItem answered with a made-up 400 (the request's body read, no Expect involved)
    faults.add_rule(dynamodb("GetItem"), dynamodb_throughput_exceeded())
    client = dynamodb_via(faults, retries=NO_RETRIES)

    # WHEN the client gets that error, then makes another request
    with pytest.raises(ClientError):
        client.get_item(TableName=TABLE, Key={"pk": {"S": "a"}})
    client.put_item(TableName=TABLE, Item={"pk": {"S": "a"}})

    # THEN the second request came on the same connection and went through
    assert len({r.connection for r in faults.log}) == 1
    assert stored_item(aws, "a") == {"pk": {"S": "a"}}


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (dynamodb_throughput_exceeded, "ProvisionedThroughputExceededException"),
        (dynamodb_throttling, "ThrottlingException"),
    ],
)
def test_dynamodb_throttling_is_classified_as_the_real_thing(
    aws: LocalAws, faults: FaultyProxy, answer: Callable[[], Respond], code: str
) -> None:
    # GIVEN two PutItems answered with DynamoDB's throttling error
    faults.add_rule(dynamodb("PutItem"), answer(), times=2)

    # WHEN a client without retries puts an item, then one with retries does
    with pytest.raises(ClientError) as raised:
        dynamodb_via(faults, retries=NO_RETRIES).put_item(TableName=TABLE, Item={"pk": {"S": "a"}})
    dynamodb_via(faults, retries={"mode": "standard", "total_max_attempts": 3}).put_item(
        TableName=TABLE, Item={"pk": {"S": "b"}}
    )

    # THEN the first sees the modeled error; the second was retried once and stored its item
    assert raised.value.response["Error"]["Code"] == code
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert stored_item(aws, "a") is None
    assert stored_item(aws, "b") == {"pk": {"S": "b"}}
    assert [r.client_status for r in faults.requests(dynamodb("PutItem"))] == [400, 400, 200]


def test_pynamodb_retries_a_throttled_write(
    aws: LocalAws, faults: FaultyProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the service's own table and model, through the proxy, and the next PutItem throttled
    monkeypatch.setenv("DYNAMODB_ENDPOINT_URL", faults.url)
    get_settings.cache_clear()
    db.create_tables()
    rule = faults.add_rule(dynamodb("PutItem"), dynamodb_throttling())

    # WHEN a video record is created
    record = make_video("task-throttled")

    # THEN it was written on the second attempt
    assert rule.fired == 1
    assert [r.client_status for r in faults.requests(dynamodb("PutItem"))] == [400, 200]
    assert stored_item_of_videos(aws, record.video_id)["task_id"] == {"S": "task-throttled"}


def stored_item_of_videos(aws: LocalAws, video_id: str) -> dict[str, Any]:
    item: dict[str, Any] = aws.client("dynamodb").get_item(
        TableName=get_settings().videos_table, Key={"video_id": {"S": video_id}}, ConsistentRead=True
    )["Item"]
    return item


def test_a_made_up_answer_with_headers_and_body_is_sent_as_given(aws: LocalAws, faults: FaultyProxy) -> None:
    # GIVEN any GET answered 418 with a header and a body
    faults.add_rule(Match("GET"), respond(418, b"short and stout", {"X-Teapot": "yes"}))
    reached_moto = len(aws.requests)
    connection = http.client.HTTPConnection("127.0.0.1", faults.port)

    # WHEN a client asks
    connection.request("GET", "/anything")
    answer = connection.getresponse()

    # THEN it gets exactly that, and the upstream never saw the request
    assert (answer.status, answer.getheader("X-Teapot"), answer.read()) == (418, "yes", b"short and stout")
    connection.close()
    assert len(aws.requests) == reached_moto


# --- resets and lost answers -------------------------------------------------------------------------------------


def test_a_reset_reaches_a_client_without_retries_as_a_connection_error(aws: LocalAws, faults: FaultyProxy) -> None:
    # GIVEN the next PutObject reset once its request has been read
    faults.add_rule(s3_put_object(KEY), reset())

    # WHEN a client that does not retry puts the object
    with pytest.raises(HTTPClientError):
        s3_via(faults, retries=NO_RETRIES).put_object(Bucket=BUCKET, Key=KEY, Body=b"video bytes")

    # THEN nothing reached moto
    assert stored(aws) is None
    assert [(r.action, r.upstream_status, r.client_status) for r in faults.log] == [("reset", None, None)]


@pytest.mark.parametrize("after_bytes", [None, 0, 64 * 1024])
def test_a_reset_is_retried_with_a_rewindable_body_and_the_object_lands(
    aws: LocalAws, faults: FaultyProxy, after_bytes: int | None
) -> None:
    # GIVEN the next PutObject reset (after the whole request, before its body, or in the middle of it)
    rule = faults.add_rule(s3_put_object(KEY), reset(after_bytes=after_bytes))
    data = payload(2 * MIB)

    # WHEN a client with retries puts a body it can rewind
    s3_via(faults).put_object(Bucket=BUCKET, Key=KEY, Body=io.BytesIO(data))

    # THEN the retry stored the whole object
    assert rule.fired == 1
    assert [r.action for r in faults.requests(s3_put_object(KEY))] == ["reset", None]
    assert stored(aws) == data


def test_a_lost_answer_means_the_object_landed_although_the_client_saw_an_error(
    aws: LocalAws, faults: FaultyProxy
) -> None:
    # GIVEN the answer to the next PutObject lost after moto has acted
    faults.add_rule(s3_put_object(KEY), lose_answer())
    data = payload(MIB)

    # WHEN a client that does not retry puts the object
    with pytest.raises(ConnectionClosedError):
        s3_via(faults, retries=NO_RETRIES).put_object(Bucket=BUCKET, Key=KEY, Body=data)

    # THEN the object is in the bucket all the same
    assert stored(aws) == data
    assert [(r.action, r.upstream_status, r.client_status) for r in faults.log] == [("lose_answer", 200, None)]


def test_a_lost_answer_is_retried_and_the_request_applied_twice(aws: LocalAws, faults: FaultyProxy) -> None:
    # GIVEN the answer to the next CompleteMultipartUpload lost after moto has acted
    s3 = s3_via(faults)
    upload_id = s3.create_multipart_upload(Bucket=BUCKET, Key=KEY)["UploadId"]
    part = payload(5 * MIB)
    etag = s3.upload_part(Bucket=BUCKET, Key=KEY, UploadId=upload_id, PartNumber=1, Body=part)["ETag"]
    faults.add_rule(s3_complete_multipart_upload(KEY), lose_answer())

    # WHEN the client completes the upload (botocore retries the dropped connection)
    outcome: Exception | None = None
    try:
        s3.complete_multipart_upload(
            Bucket=BUCKET, Key=KEY, UploadId=upload_id, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]}
        )
    except ClientError as error:  # what S3 says to completing an upload that is already complete
        outcome = error

    # THEN the first attempt completed the upload upstream; the retry met the consequences
    attempts = faults.requests(s3_complete_multipart_upload(KEY))
    assert [(r.action, r.upstream_status) for r in attempts][:1] == [("lose_answer", 200)]
    assert len(attempts) == 2
    assert stored(aws) == part
    assert outcome is None or outcome.response["Error"]["Code"] == "NoSuchUpload"


def test_a_lost_dynamodb_answer_still_wrote_the_item(aws: LocalAws, faults: FaultyProxy) -> None:
    # GIVEN the answer to the next UpdateItem lost
    faults.add_rule(dynamodb("UpdateItem"), lose_answer())

    # WHEN a client that does not retry updates an item
    with pytest.raises(ConnectionClosedError):
        dynamodb_via(faults, retries=NO_RETRIES).update_item(
            TableName=TABLE,
            Key={"pk": {"S": "a"}},
            UpdateExpression="SET saved = :yes",
            ExpressionAttributeValues={":yes": {"BOOL": True}},
        )

    # THEN the update was applied
    assert stored_item(aws, "a") == {"pk": {"S": "a"}, "saved": {"BOOL": True}}


# --- stalls and delays -------------------------------------------------------------------------------------------


def test_a_stall_ends_in_a_read_timeout_and_stop_returns_while_requests_are_stalled(aws: LocalAws) -> None:
    # GIVEN a proxy of its own that stalls every GetItem until it stops
    proxy = FaultyProxy(aws.url).start()
    proxy.add_rule(dynamodb("GetItem"), stall(), times=None)
    client = dynamodb_via(proxy, read_timeout=1, retries=NO_RETRIES)

    # WHEN a client with a 1 s read timeout asks, and another request is left stalled
    with pytest.raises(ReadTimeoutError):
        client.get_item(TableName=TABLE, Key={"pk": {"S": "a"}})
    left_errors: list[Exception] = []

    def ask_and_wait() -> None:
        try:
            dynamodb_via(proxy, read_timeout=300, retries=NO_RETRIES).get_item(TableName=TABLE, Key={"pk": {"S": "a"}})
        except Exception as error:
            left_errors.append(error)

    left = threading.Thread(target=ask_and_wait, daemon=True)
    left.start()
    wait_until(lambda: len(proxy.log) == 2, "the second request reached the proxy")

    # THEN stop() ends the stalled requests and returns (a stall without end would otherwise hold it)
    stopping = threading.Thread(target=proxy.stop, daemon=True)
    stopping.start()
    stopping.join(timeout=30)
    assert not stopping.is_alive()
    left.join(timeout=30)
    assert not left.is_alive()
    assert len(left_errors) == 1 and isinstance(left_errors[0], HTTPClientError)
    assert [r.action for r in proxy.log] == ["stall", "stall"]


def test_clear_drops_a_stalled_request_instead_of_forwarding_it_late(aws: LocalAws, faults: FaultyProxy) -> None:
    # GIVEN a PutItem stalled without end, whose rule would forward it afterwards
    faults.add_rule(dynamodb("PutItem"), stall(then="forward"))
    errors: list[Exception] = []

    def put() -> None:
        try:
            dynamodb_via(faults, retries=NO_RETRIES).put_item(TableName=TABLE, Item={"pk": {"S": "late"}})
        except Exception as error:
            errors.append(error)

    putting = threading.Thread(target=put, daemon=True)
    putting.start()
    wait_until(lambda: len(faults.log) == 1, "the request reached the proxy")

    # WHEN the rules are cleared
    faults.clear()
    putting.join(timeout=30)

    # THEN the client saw the connection drop, and the item was never written
    assert not putting.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], HTTPClientError)
    assert stored_item(aws, "late") is None


@pytest.mark.parametrize(
    "action", [delay(0.2), stall(0.2, then="forward"), stall(0.2, after_bytes=100_000, then="forward")]
)
def test_a_delayed_or_briefly_stalled_request_is_then_forwarded(
    aws: LocalAws, faults: FaultyProxy, action: Any
) -> None:
    # GIVEN the next PutObject held back a moment, then forwarded
    rule = faults.add_rule(s3_put_object(KEY), action)
    data = payload(MIB)

    # WHEN a client with a generous timeout puts the object
    s3_via(faults, retries=NO_RETRIES).put_object(Bucket=BUCKET, Key=KEY, Body=data)

    # THEN it was stored by that one attempt
    assert rule.fired == 1
    assert [(r.action, r.client_status) for r in faults.log] == [(action.kind, 200)]
    assert stored(aws) == data


def test_a_stall_in_the_middle_of_a_body_then_a_reset_stores_nothing(aws: LocalAws, faults: FaultyProxy) -> None:
    # GIVEN the next PutObject stalled after 64 KiB of its body, then reset
    faults.add_rule(s3_put_object(KEY), stall(0.2, after_bytes=64 * 1024))

    # WHEN a client that does not retry puts 1 MiB
    with pytest.raises(HTTPClientError):
        s3_via(faults, retries=NO_RETRIES).put_object(Bucket=BUCKET, Key=KEY, Body=payload(MIB))

    # THEN nothing was stored
    assert stored(aws) is None


# --- how rules fire ----------------------------------------------------------------------------------------------


def test_a_rule_fires_exactly_the_number_of_times_it_was_given(aws: LocalAws, faults: FaultyProxy) -> None:
    # GIVEN a rule answering 503 three times
    rule = faults.add_rule(s3_put_object(), s3_slow_down(), times=3)
    s3 = s3_via(faults, retries=NO_RETRIES)

    # WHEN a client that does not retry puts five objects
    outcomes = []
    for number in range(5):
        try:
            s3.put_object(Bucket=BUCKET, Key=f"k{number}", Body=b"x")
            outcomes.append("stored")
        except ClientError:
            outcomes.append("refused")

    # THEN the first three were refused and the last two stored
    assert outcomes == ["refused"] * 3 + ["stored"] * 2
    assert rule.fired == 3
    assert [stored(aws, f"k{number}") for number in range(5)] == [None, None, None, b"x", b"x"]


def test_rules_apply_in_the_order_added_and_only_to_what_they_match(aws: LocalAws, faults: FaultyProxy) -> None:
    # GIVEN a rule for another key, then two for this key
    other = faults.add_rule(s3_put_object("other-key"), s3_slow_down(), times=None)
    first = faults.add_rule(s3_put_object(KEY), s3_internal_error())
    second = faults.add_rule(s3_put_object(KEY), s3_slow_down())
    s3 = s3_via(faults, retries=NO_RETRIES)

    # WHEN the key is put three times
    statuses = []
    for _ in range(3):
        try:
            s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"x")
            statuses.append(200)
        except ClientError as error:
            statuses.append(error.response["ResponseMetadata"]["HTTPStatusCode"])

    # THEN the first rule fired, then the second, then none
    assert statuses == [500, 503, 200]
    assert (other.fired, first.fired, second.fired) == (0, 1, 1)
    assert [r.rule for r in faults.log] == [first.name, second.name, None]


def test_a_probability_rule_follows_its_seed(aws: LocalAws, faults: FaultyProxy) -> None:
    # GIVEN an object, and a rule refusing reads with probability 0.5 drawn from seed 7
    aws.client("s3").put_object(Bucket=BUCKET, Key=KEY, Body=b"x")
    s3 = s3_via(faults, retries=NO_RETRIES)

    def refused_reads() -> list[bool]:
        refused = []
        for _ in range(40):
            try:
                s3.get_object(Bucket=BUCKET, Key=KEY)["Body"].read()
                refused.append(False)
            except ClientError:
                refused.append(True)
        return refused

    # WHEN 40 reads are made, twice, with the rule added afresh each time
    faults.add_rule(Match("GET"), s3_slow_down(), times=None, probability=0.5, seed=7)
    first_run = refused_reads()
    faults.clear()
    faults.add_rule(Match("GET"), s3_slow_down(), times=None, probability=0.5, seed=7)
    second_run = refused_reads()

    # THEN both runs refused the same reads: those random.Random(7) picks
    coin = random.Random(7)
    assert first_run == second_run == [coin.random() < 0.5 for _ in range(40)]
    assert 0 < sum(first_run) < 40


def test_match_reads_method_path_query_and_header() -> None:
    # GIVEN the requests the usual operations make
    put_object = ("PUT", "/b/k.mp4", "", {})
    upload_part = ("PUT", "/b/k.mp4", "uploadId=u&partNumber=3", {})
    create = ("POST", "/b/k.mp4", "uploads", {})
    complete = ("POST", "/b/k.mp4", "uploadId=u", {})
    abort = ("DELETE", "/b/k.mp4", "uploadId=u", {})
    update_item = ("POST", "/", "", {"x-amz-target": "DynamoDB_20120810.UpdateItem"})
    everything = [put_object, upload_part, create, complete, abort, update_item]

    def matched(match: Match) -> list[tuple[str, str, str, dict[str, str]]]:
        return [request for request in everything if match.matches(*request)]

    # THEN each matcher picks exactly its own
    assert matched(s3_put_object("k.mp4")) == [put_object]
    assert matched(s3_upload_part()) == [upload_part]
    assert matched(s3_upload_part(part_number=3)) == [upload_part]
    assert matched(s3_upload_part(part_number=30)) == []
    assert matched(s3_create_multipart_upload()) == [create]
    assert matched(s3_complete_multipart_upload()) == [complete]
    assert matched(s3_abort_multipart_upload()) == [abort]
    assert matched(dynamodb("UpdateItem")) == [update_item]
    assert matched(dynamodb("PutItem")) == []
    assert matched(s3_put_object("other")) == []
    assert matched(Match()) == everything


def test_a_proxy_refuses_what_it_cannot_do() -> None:
    with pytest.raises(ValueError, match="plain http"):
        FaultyProxy("https://localhost:4566")
    with FaultyProxy("http://127.0.0.1:9") as proxy:
        with pytest.raises(ValueError, match="times"):
            proxy.add_rule(Match(), reset(), times=0)
        with pytest.raises(ValueError, match="probability"):
            proxy.add_rule(Match(), reset(), probability=1.5)


def test_an_upstream_that_cannot_be_reached_is_a_502() -> None:
    # GIVEN a proxy whose upstream port has nothing listening
    with port_without_listener() as port, FaultyProxy(f"http://127.0.0.1:{port}") as proxy:
        connection = http.client.HTTPConnection("127.0.0.1", proxy.port)

        # WHEN a client asks
        connection.request("GET", "/")
        answer = connection.getresponse()

        # THEN it gets a Bad Gateway answer, as from any gateway
        assert answer.status == 502
        answer.read()
        connection.close()
        assert [r.client_status for r in proxy.log] == [502]


@contextmanager
def port_without_listener() -> Iterator[int]:
    """A port on 127.0.0.1 bound (so nothing else takes it) but not listening: connecting is refused."""
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        yield bound.getsockname()[1]

"""The local moto server serves DynamoDB requests one at a time, so conditional writes hold as on AWS."""

from __future__ import annotations

import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import suppress
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from devtools.faulty_proxy import FaultyProxy, dynamodb, stall
from devtools.local_aws import LocalAws

CONTENDERS = 16
ROUNDS = 30
NO_RETRIES = {"mode": "standard", "total_max_attempts": 1}


@pytest.fixture
def table(local_aws: LocalAws) -> str:
    name = f"race-{uuid.uuid4().hex[:8]}"
    local_aws.client("dynamodb").create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return name


@pytest.fixture
def frequent_thread_switches() -> Iterator[None]:
    """Switch threads every 0.1 ms instead of every 5 ms: the server's request threads then interleave inside
    a write, which is what lets two of them pass one condition when nothing serialises them."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(0.0001)
    yield
    sys.setswitchinterval(previous)


def test_racing_conditional_puts_succeed_exactly_once_every_time(
    local_aws: LocalAws, table: str, frequent_thread_switches: None
) -> None:
    # GIVEN contenders, each with its own client and connection to the server
    clients = [
        local_aws.client("dynamodb", config=Config(retries=NO_RETRIES, max_pool_connections=1))
        for _ in range(CONTENDERS)
    ]
    for round_number in range(ROUNDS):
        key = f"round-{round_number}"

        # WHEN they all put the same new key at once, conditional on its absence
        outcomes = race_conditional_puts(clients, table, key)

        # THEN exactly one wins, every other is refused, and the item is the winner's
        winners = [contender for contender, outcome in outcomes.items() if outcome == "won"]
        assert len(winners) == 1, f"round {round_number}: {len(winners)} puts passed one condition"
        assert sorted(outcomes.values()) == ["refused"] * (CONTENDERS - 1) + ["won"]
        item = local_aws.client("dynamodb").get_item(TableName=table, Key={"pk": {"S": key}}, ConsistentRead=True)
        assert item["Item"]["winner"] == {"N": str(winners[0])}


def race_conditional_puts(clients: list[Any], table: str, key: str) -> dict[int, str]:
    """Each client puts ``key`` if absent, all released at once; each one's outcome: won, refused or the error."""
    start = threading.Barrier(len(clients))
    outcomes: dict[int, str] = {}

    def contend(contender: int) -> None:
        start.wait()
        try:
            clients[contender].put_item(
                TableName=table,
                Item={"pk": {"S": key}, "winner": {"N": str(contender)}},
                ConditionExpression="attribute_not_exists(pk)",
            )
            outcomes[contender] = "won"
        except ClientError as error:
            code = error.response["Error"]["Code"]
            outcomes[contender] = "refused" if code == "ConditionalCheckFailedException" else code
        except Exception as error:  # reported in the outcome, so the assertion shows it
            outcomes[contender] = repr(error)

    threads = [threading.Thread(target=contend, args=(contender,)) for contender in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_a_stalled_dynamodb_request_does_not_hold_up_the_others(local_aws: LocalAws, table: str) -> None:
    # GIVEN a PutItem stalled in the middle of its body on its way to the server (the server has its head)
    with FaultyProxy(local_aws.url) as proxy:
        proxy.add_rule(dynamodb("PutItem"), stall(after_bytes=10, then="forward"))
        stalled_client = boto3.client(
            "dynamodb",
            endpoint_url=proxy.url,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
            config=Config(retries=NO_RETRIES),
        )
        stalled = threading.Thread(target=_put_ignoring_errors, args=(stalled_client, table, "stalled"), daemon=True)
        stalled.start()
        _wait_for_one_request(proxy)

        # WHEN another client writes and reads straight at the server
        other = local_aws.client("dynamodb", config=Config(retries=NO_RETRIES, read_timeout=20))
        other.put_item(TableName=table, Item={"pk": {"S": "other"}})
        item = other.get_item(TableName=table, Key={"pk": {"S": "other"}}, ConsistentRead=True)

        # THEN it is served while the stalled request waits (had it kept DynamoDB to itself, this read timed out)
        assert item["Item"] == {"pk": {"S": "other"}}
        proxy.clear()
        stalled.join(timeout=30)
        assert not stalled.is_alive()


def _put_ignoring_errors(client: Any, table: str, key: str) -> None:
    with suppress(Exception):  # clear() drops the request; what matters is the other client
        client.put_item(TableName=table, Item={"pk": {"S": key}})


def _wait_for_one_request(proxy: FaultyProxy) -> None:
    deadline = time.monotonic() + 30
    while not proxy.log:
        assert time.monotonic() < deadline, "the stalled request never reached the proxy"
        time.sleep(0.01)

"""Publishing to the usage outbox (the Pub/Sub emulator) and waiting for the heal_usage function."""
from __future__ import annotations

import os
import time

from tokenledger.metering import heal, outbox


def publish(data: bytes, attributes: dict[str, str] | None = None, topic: str = outbox.OUTBOX_TOPIC) -> str:
    """Publish as the API does (the same client), to the stack's Pub/Sub emulator."""
    publisher = outbox.Publisher(os.environ["GCLOUD_PROJECT"], 10)
    message_id = publisher.publish(topic, data, attributes or {})
    assert message_id, "the Pub/Sub emulator did not take the message"
    return message_id


def wait_for(check, seconds: float = 60, every: float = 0.25):
    """check() until it returns something truthy (returned), or fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds} s: {check.__doc__ or check}")
        time.sleep(every)


def outbox_state(db, generation_id: str) -> dict | None:
    snap = heal.outbox_doc(db, generation_id).get()
    return snap.to_dict() if snap.exists else None


def healed(db, generation_id: str) -> dict | None:
    """The record's outbox document once heal_usage marked it healed."""
    state = outbox_state(db, generation_id)
    return state if state and state.get("state") == heal.HEALED else None

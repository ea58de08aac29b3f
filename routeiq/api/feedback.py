"""``POST /v1/routeiq/feedback``: a caller's score for one of its own requests.

The request is looked up in the decision store. Feedback is accepted only from the credential that
made the request (the same virtual key, or a key of the same team), within
``feedback_window_days``; for anyone else, and for a request id nobody sent, the answer is the
same 404, so the endpoint never tells whether someone else's request exists. One feedback per
request: a second one replaces the first (and the experiment arm's counters are corrected by the
difference). The OpenAI SDK sends it with
``client.post("/routeiq/feedback", body={...}, cast_to=httpx.Response)``.
"""

from __future__ import annotations

import time
from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from routeiq.api.errors import APIError
from routeiq.api.runtime import runtime_of
from routeiq.governance.call import current_call
from routeiq.governance.identity import ANONYMOUS, Identity
from routeiq.store.experiments import Feedback
from routeiq.store.records import DecisionRecord

router = APIRouter()

DAY_SECONDS = 86_400.0
THUMBS = {"up": 1.0, "down": 0.0}


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(min_length=1, max_length=128, description="The x-request-id of the request.")
    score: float | Literal["up", "down"] = Field(
        description="0..1 (1 best), or thumbs: `up` (1) / `down` (0)."
    )
    comment: str | None = Field(default=None, max_length=4000)


class FeedbackResponse(BaseModel):
    request_id: str
    score: float
    replaced: bool  # a feedback for this request existed and was replaced
    experiment: str | None
    arm: str | None


def owns(identity: Identity, record: DecisionRecord) -> bool:
    """The caller made the request: the same key, a key of the same team, or (no keys at all) the
    same kind of credential-less caller."""
    if record.key_id is not None and identity.key_id == record.key_id:
        return True
    if record.team is not None and identity.team == record.team:
        return True
    return record.key_id is None and record.team is None and identity.key_id is None


def not_found() -> APIError:
    return APIError(404, "no request with this id can take feedback from this key", code="request_not_found")


@router.post("/v1/routeiq/feedback", tags=["routeiq"])
async def feedback(body: FeedbackRequest, request: Request) -> FeedbackResponse:
    """Score one of your own requests (0..1 or thumbs up/down); a second feedback replaces the first."""
    runtime = runtime_of(request)
    call = current_call(request.scope)
    identity = call.identity if call is not None else ANONYMOUS
    score = THUMBS[body.score] if isinstance(body.score, str) else body.score
    if not 0.0 <= score <= 1.0:
        raise APIError(400, "score must be between 0 and 1, or 'up' / 'down'", param="score")
    record = await runtime.decision_records.get(body.request_id)
    window = runtime.settings.feedback_window_days * DAY_SECONDS
    if record is None or not owns(identity, record) or record.time < time.time() - window:
        raise not_found()
    replaced = await runtime.experiments.feedback(
        Feedback(
            request_id=body.request_id,
            at=time.time(),
            score=score,
            comment=body.comment,
            key_id=identity.key_id,
            team=identity.team,
            experiment=record.experiment,
            arm=record.arm,
        )
    )
    return FeedbackResponse(
        request_id=body.request_id,
        score=score,
        replaced=replaced is not None,
        experiment=record.experiment,
        arm=record.arm,
    )

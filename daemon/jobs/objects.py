"""The answers of the files and fine-tuning API, as pydantic models: OpenAI's shapes.

Responses mirror openai-python's types (`FileObject`, `FileDeleted`,
`FineTuningJob`, `FineTuningJobEvent`, `FineTuningJobCheckpoint`, cursor pages);
a job also carries its `twin` options (an extra field: the SDK keeps it).
The request of POST /v1/fine_tuning/jobs is validated like every request body,
by its Field tree (`daemon.schema.JOB_REQUEST`).
"""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

JobStatus = Literal["validating_files", "queued", "running", "succeeded", "failed", "cancelled"]
T = TypeVar("T")


class FileObject(BaseModel):
    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    filename: str
    purpose: Literal["fine-tune"] = "fine-tune"
    status: Literal["uploaded", "processed", "error"] = "processed"
    expires_at: int | None = None
    status_details: str | None = None


class FileDeleted(BaseModel):
    id: str
    object: Literal["file"] = "file"
    deleted: bool


class JobError(BaseModel):
    code: str
    message: str
    param: str | None = None


class Hyperparameters(BaseModel):
    """As requested ("auto" or a value); a job answers with the values it used."""

    model_config = ConfigDict(extra="forbid")

    batch_size: Literal["auto"] | int | None = None
    learning_rate_multiplier: Literal["auto"] | float | None = None
    n_epochs: Literal["auto"] | int | None = None


class FineTuningJob(BaseModel):
    id: str
    object: Literal["fine_tuning.job"] = "fine_tuning.job"
    created_at: int
    error: JobError | None = None
    fine_tuned_model: str | None = None
    finished_at: int | None = None
    hyperparameters: Hyperparameters
    model: str
    organization_id: str = "twin"
    result_files: list[str] = Field(default_factory=list)
    seed: int
    status: JobStatus
    trained_tokens: int | None = None
    training_file: str
    validation_file: str | None = None
    estimated_finish: int | None = None
    integrations: list[Any] | None = None
    metadata: dict[str, str] | None = None
    method: dict[str, Any] | None = None
    twin: dict[str, Any] | None = None  # twin's extension: the build options and the twin's name


class FineTuningJobEvent(BaseModel):
    id: str
    object: Literal["fine_tuning.job.event"] = "fine_tuning.job.event"
    created_at: int
    level: Literal["info", "warn", "error"]
    message: str
    data: dict[str, Any] | None = None
    type: Literal["message", "metrics"] = "message"


class CheckpointMetrics(BaseModel):
    step: float | None = None
    train_loss: float | None = None
    valid_loss: float | None = None
    full_valid_loss: float | None = None
    train_mean_token_accuracy: float | None = None
    valid_mean_token_accuracy: float | None = None
    full_valid_mean_token_accuracy: float | None = None


class FineTuningJobCheckpoint(BaseModel):
    id: str
    object: Literal["fine_tuning.job.checkpoint"] = "fine_tuning.job.checkpoint"
    created_at: int
    fine_tuned_model_checkpoint: str
    fine_tuning_job_id: str
    metrics: CheckpointMetrics
    step_number: int


class Page(BaseModel, Generic[T]):
    """A cursor page as the SDK pages it: `after=<last id>` while `has_more`."""

    object: Literal["list"] = "list"
    data: list[T]
    has_more: bool = False
    first_id: str | None = None
    last_id: str | None = None


# The pages each list route answers, named for /openapi.json.
class FilePage(Page[FileObject]):
    pass


class JobPage(Page[FineTuningJob]):
    pass


class EventPage(Page[FineTuningJobEvent]):
    pass


class CheckpointPage(Page[FineTuningJobCheckpoint]):
    pass


def page(items: list[Any], has_more: bool) -> dict[str, Any]:
    ids = [item.id for item in items]
    return Page[Any](
        data=[item.model_dump() for item in items],
        has_more=has_more,
        first_id=ids[0] if ids else None,
        last_id=ids[-1] if ids else None,
    ).model_dump()

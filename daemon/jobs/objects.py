"""The wire objects of the files and fine-tuning API, as pydantic models: OpenAI's shapes, validated in one place.

Responses mirror openai-python's types (`FileObject`, `FileDeleted`,
`FineTuningJob`, `FineTuningJobEvent`, `FineTuningJobCheckpoint`, cursor pages);
a job also carries its `twin` options (an extra field: the SDK keeps it).
Requests (`JobCreate`) forbid unknown fields: a typo is a 400 naming it, not a
silently ignored option.
"""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from daemon.schema import APIError
from trainer.train.config import TrainConfig  # a plain dataclass: its defaults, not the trainer
from twin.build import DEFAULT_BUDGET_S

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


class TwinOptions(BaseModel):
    """`extra_body={"twin": {...}}`: the `twin build` options OpenAI's request has no field for."""

    model_config = ConfigDict(extra="forbid")

    me: list[str] = Field(default_factory=list)  # display names or Telegram ids; a single string is accepted
    base: str | None = None  # overrides `model` (a --base short name, hub id or directory)
    quant: str = "auto"
    max_steps: int = Field(0, ge=0)
    max_length: int = Field(TrainConfig.max_length, ge=16)
    time_budget_s: float = Field(DEFAULT_BUDGET_S, ge=0)  # the build's wall clock, as `twin build` (0: n_epochs decide)
    strip_emoji: bool = False
    device: str = "auto"

    def __init__(self, **data: Any) -> None:
        if isinstance(data.get("me"), str):
            data["me"] = [data["me"]]
        super().__init__(**data)


class SupervisedMethod(BaseModel):
    hyperparameters: Hyperparameters | None = None


class Method(BaseModel):
    type: Literal["supervised"]
    supervised: SupervisedMethod | None = None


class JobCreate(BaseModel):
    """The body of POST /v1/fine_tuning/jobs."""

    model_config = ConfigDict(extra="forbid")

    model: str
    training_file: str
    validation_file: str | None = None
    suffix: str | None = None
    hyperparameters: Hyperparameters | None = None
    method: Method | None = None
    seed: int | None = None
    metadata: dict[str, str] | None = None
    integrations: list[Any] | None = None
    twin: TwinOptions = Field(default_factory=TwinOptions)

    def hyper(self) -> Hyperparameters:
        """The hyperparameters, wherever the client put them (newer SDKs nest them under `method`)."""
        if self.hyperparameters is not None:
            return self.hyperparameters
        if self.method is not None and self.method.supervised is not None and self.method.supervised.hyperparameters:
            return self.method.supervised.hyperparameters
        return Hyperparameters()


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


def page(items: list[Any], has_more: bool) -> dict[str, Any]:
    ids = [item.id for item in items]
    return Page[Any](
        data=[item.model_dump() for item in items],
        has_more=has_more,
        first_id=ids[0] if ids else None,
        last_id=ids[-1] if ids else None,
    ).model_dump()


_TYPE_TAGS = {"int", "float", "str", "bool", "list", "dict", "none"}


def _is_union_branch(part: Any) -> bool:
    """Pydantic puts the union member tried into an error's location (`n_epochs.literal['auto']`): not a field."""
    return isinstance(part, str) and ("[" in part or part in _TYPE_TAGS)


def parse(model: type[BaseModel], body: Any) -> Any:
    """`model` from a request body; the first problem as a 400 naming the field."""
    if not isinstance(body, dict):
        raise APIError(400, "the request body must be a JSON object", code="invalid_request")
    try:
        return model.model_validate(body)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"] if not _is_union_branch(p))
        if first["type"] == "extra_forbidden":
            message = f"Unknown parameter: '{where}'"
        elif first["type"] == "missing":
            message = f"Missing required parameter: '{where}'"
        else:
            message = f"Invalid value for '{where}': {first['msg']}"
        raise APIError(400, message, param=where, code="invalid_value") from None

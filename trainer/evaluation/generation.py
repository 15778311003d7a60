"""Replies written by each variant for the evaluation, with one decoding setting that the report states.

Default: greedy decoding with a repetition penalty of 1.2 over the last 64
generated tokens (as llama.cpp applies it), because the embedded model loops under plain greedy
decoding. Transformers models (base + persona, merged LoRA) generate in batches
here; the served GGUF answers through the daemon's OpenAI API, a few requests in
flight so the daemon's queue never runs dry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from trainer.evaluation.evalset import EvalSample, Messages, with_system
from twin.errors import UserError

PENALTY_LAST_N = 64  # llama-cpp-python's window for repeat_penalty (generated tokens only); the HF side copies it
IN_FLIGHT = 2
MAX_CANDIDATE_ROWS = 32  # rows of one transformers batch when each sample is drawn several times


@dataclass(frozen=True)
class Decoding:
    """How every variant writes its replies."""

    max_new_tokens: int = 64
    temperature: float = 0.0  # 0 = greedy
    repetition_penalty: float = 1.2
    seed: int = 0
    # top_k/top_p/min_p apply only when sampling (temperature > 0); the daemon's defaults, copied to transformers
    top_k: int = 40
    top_p: float = 0.95
    min_p: float = 0.05
    # added to the end-of-reply tokens' logits; None: the served model's default (a twin's calibrated bias, which
    # the evaluation passes to the transformers variant too)
    end_bias: float | None = None
    # sampled replies per sample, one kept by `rerank` (twin.consensus, as the daemon's `candidates`); 1 = one draw
    candidates: int = 1
    rerank: str = "mmi"  # "mmi" (mutual information with the context) or "consensus", as the daemon's `rerank`

    def describe(self) -> str:
        how = (
            "greedy"
            if self.temperature == 0
            else (
                f"sampling at temperature {self.temperature} (top_k {self.top_k}, top_p {self.top_p}, min_p {self.min_p},"
                f" seed {self.seed} plus each sample's line)"
            )
        )
        ending = f", end-of-reply bias {self.end_bias:+g}" if self.end_bias else ""
        if self.temperature > 0 and self.candidates > 1:
            if self.rerank == "mmi":
                from twin.consensus import MMI_WEIGHT

                how += f", the most mutually informative of {self.candidates} candidates (λ = {MMI_WEIGHT:g})"
            else:
                how += f", the consensus of {self.candidates} candidates (chrF β=1)"
        return (
            f"{how}, repetition penalty {self.repetition_penalty} over the last {PENALTY_LAST_N} generated tokens"
            f"{ending}, at most {self.max_new_tokens} new tokens"
        )

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "penalty_last_n": PENALTY_LAST_N, "greedy": self.temperature == 0}


# The daemon's chat default (daemon.schema.SamplingParams; tests/eval/test_collapse.py keeps the two equal):
# what people chat with, so the evaluation shows it next to greedy decoding.
CHAT_DEFAULT = Decoding(temperature=0.8, repetition_penalty=1.1, top_k=40, top_p=0.95, min_p=0.05)


def clean_reply(text: str) -> str:
    """The reply as a person would read it: without a next turn the model began (plain `User:/Bot:` format) or the
    half of a character cut by the token budget (shown as U+FFFD)."""
    for marker in ("\nUser:", "\nBot:"):
        text = text.split(marker, 1)[0]
    return text.strip().rstrip("\ufffd").strip()


def messages_for(sample: EvalSample, system_prompt: str | None) -> Messages:
    return with_system(sample.context, system_prompt)


class _LastNRepetitionPenalty:
    """llama.cpp's repeat_penalty on transformers: only the last N *generated* tokens are penalized.

    llama.cpp's sampler accepts only the tokens it sampled into its penalty
    history, never the prompt; transformers' own processor would penalize the
    whole prompt too, so both backends would not decode alike.
    """

    def __init__(self, penalty: float, last_n: int, prompt_length: int) -> None:
        self.penalty, self.last_n, self.prompt_length = penalty, last_n, prompt_length

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        window = input_ids[:, max(self.prompt_length, input_ids.shape[1] - self.last_n) :]
        if window.shape[1] == 0:
            return scores
        seen = torch.zeros_like(scores, dtype=torch.bool).scatter_(1, window, True)
        return torch.where(seen, torch.where(scores < 0, scores * self.penalty, scores / self.penalty), scores)


class _EndBias:
    """A logits processor adding `bias` to the end-of-reply tokens, as the daemon's end_bias does."""

    def __init__(self, ids: list[int], bias: float) -> None:
        self.ids = ids
        self.bias = bias

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        scores[:, self.ids] += self.bias
        return scores


def hf_generate(
    model: Any,
    tokenizer: Any,
    samples: Sequence[EvalSample],
    system_prompt: str | None,
    decoding: Decoding,
    batch_size: int = 8,
    advance: Callable[[int], None] = lambda n: None,
) -> list[str]:
    """One reply per sample from a transformers model, in batches of similar length (left-padded).

    With `decoding.candidates` k > 1 (and sampling), each sample is drawn k times in its batch and one reply is
    kept by `decoding.rerank` (twin.consensus, as the daemon picks); a batch then holds `batch_size` samples'
    draws, at most MAX_CANDIDATE_ROWS rows.
    """
    k = decoding.candidates if decoding.temperature > 0 else 1
    if k == 1:
        return [d.text for d in _hf_generate(model, tokenizer, samples, system_prompt, decoding, batch_size, advance)]
    from twin.consensus import pick, pick_mmi

    drawn = _hf_generate(
        model,
        tokenizer,
        [s for s in samples for _ in range(k)],
        system_prompt,
        decoding,
        max(k, min(batch_size * k, MAX_CANDIDATE_ROWS) // k * k),
        lambda n: advance(n // k),
        track=decoding.rerank == "mmi",
    )
    kept = []
    for i, sample in enumerate(samples):
        group = drawn[i * k : (i + 1) * k]
        if decoding.rerank == "mmi":
            unconditional = bare_logprobs(model, tokenizer, sample, system_prompt, group)
            kept.append(group[pick_mmi([d.logprob for d in group], unconditional)].text)
        else:
            kept.append(group[pick([d.text for d in group])].text)
    return kept


@dataclass
class Drawn:
    """One generated reply; tracked, its token ids (the end token included) and their summed log-probability."""

    text: str
    ids: list[int]
    logprob: float


def _prompt_ids(tokenizer: Any, messages: Messages) -> list[int]:
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def bare_logprobs(
    model: Any, tokenizer: Any, sample: EvalSample, system_prompt: str | None, group: Sequence[Drawn]
) -> list[float]:
    """log p(reply | bare context) of each tracked draw of `sample` (twin.consensus.bare_context): MMI's second term."""
    from twin.consensus import bare_context

    bare = _prompt_ids(tokenizer, bare_context(messages_for(sample, system_prompt)))
    return reply_logprobs(model, bare, [d.ids for d in group])


def reply_logprobs(model: Any, prefix: list[int], replies: Sequence[list[int]]) -> list[float]:
    """log p(reply | prefix) of each reply (token ids) under `model`, summed over its tokens, in one batch."""
    import torch

    longest = max(len(r) for r in replies)
    ids = torch.tensor([prefix + r + [0] * (longest - len(r)) for r in replies])
    with torch.inference_mode():
        logits = model(input_ids=ids, logits_to_keep=longest + 1).logits[:, :-1].float()
    logp = torch.log_softmax(logits, dim=-1)
    out = []
    for row, r in enumerate(replies):
        picked = logp[row, torch.arange(len(r)), torch.tensor(r, dtype=torch.long)] if r else torch.zeros(0)
        out.append(float(picked.sum()))
    return out


def _hf_generate(
    model: Any,
    tokenizer: Any,
    samples: Sequence[EvalSample],
    system_prompt: str | None,
    decoding: Decoding,
    batch_size: int,
    advance: Callable[[int], None],
    track: bool = False,
) -> list[Drawn]:
    """The replies of `samples`; with `track`, each with its token ids and their log-probability under the model's
    own distribution (the raw logits, before penalties and sampling), as the daemon tracks its candidates."""
    import torch
    from transformers import LogitsProcessorList

    prompts = [_prompt(tokenizer, s, system_prompt) for s in samples]
    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    eos = _eos_ids(model, tokenizer)
    replies: list[Drawn] = [Drawn("", [], 0.0)] * len(samples)
    model.eval()
    torch.manual_seed(decoding.seed)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        longest = max(len(encoded[i]) for i in idx)
        pads = torch.tensor([longest - len(encoded[i]) for i in idx])
        ids = torch.tensor([[pad_id] * (longest - len(encoded[i])) + encoded[i] for i in idx])
        mask = (torch.arange(longest)[None, :] >= pads[:, None]).long()
        sampling = {}
        if decoding.temperature > 0:
            sampling = dict(
                temperature=decoding.temperature, top_k=decoding.top_k, top_p=decoding.top_p, min_p=decoding.min_p
            )
        processors = LogitsProcessorList()
        if decoding.end_bias:
            processors.append(_EndBias(eos, decoding.end_bias))  # first, as the daemon's logit_bias
        if decoding.repetition_penalty != 1.0:
            processors.append(_LastNRepetitionPenalty(decoding.repetition_penalty, PENALTY_LAST_N, longest))
        with torch.inference_mode():
            out = model.generate(
                input_ids=ids,
                attention_mask=mask,
                max_new_tokens=decoding.max_new_tokens,
                do_sample=decoding.temperature > 0,
                logits_processor=processors,
                eos_token_id=eos,
                pad_token_id=pad_id,
                return_dict_in_generate=True,
                output_logits=track,
                **sampling,
            )
        generated = out.sequences[:, longest:]
        if track:
            steps = torch.log_softmax(torch.stack(out.logits, dim=1).float(), dim=-1)  # rows × steps × vocab
            chosen = steps.gather(2, generated[:, : steps.shape[1], None])[..., 0]
        for row, i in enumerate(idx):
            text = clean_reply(tokenizer.decode(generated[row], skip_special_tokens=True))
            if not track:
                replies[i] = Drawn(text, [], 0.0)
                continue
            ids = generated[row].tolist()
            end = next((t + 1 for t, token in enumerate(ids) if token in eos), len(ids))
            replies[i] = Drawn(text, ids[:end], float(chosen[row, :end].sum()))
        advance(len(idx))
    return replies


def _prompt(tokenizer: Any, sample: EvalSample, system_prompt: str | None) -> str:
    """The context rendered for generation; a template that refuses it (roles must alternate, …) gets fewer old messages."""
    from jinja2 import TemplateError

    context = sample.context
    while True:
        try:
            return tokenizer.apply_chat_template(
                messages_for(EvalSample(sample.line, context, sample.real), system_prompt),
                tokenize=False,
                add_generation_prompt=True,
            )
        except TemplateError as e:
            if len(context) <= 1:
                raise UserError(
                    f"the model's chat template refuses validation sample {sample.line} ({e}): rebuild the dataset or pick another base"
                ) from None
            context = context[1:]


def _eos_ids(model: Any, tokenizer: Any) -> list[int]:
    ids = {tokenizer.eos_token_id}
    configured = getattr(model.generation_config, "eos_token_id", None)
    ids.update(configured if isinstance(configured, list) else [configured])
    return sorted(i for i in ids if i is not None)


def sample_seed(seed: int, sample: EvalSample) -> int:
    """The seed of one sample's request: the run's seed plus the sample's line in val.jsonl.

    llama.cpp's sampler draws the same random numbers for the same seed whatever the prompt, so one
    seed for every request would pick the same place in every reply's distribution (measured on the
    development twin: with seed 3, 13% of 150 replies were "no.", against 2% with seed 0). Per
    sample, the draws are independent across samples and still the same for a sample in every run.
    """
    return seed + sample.line


def daemon_generate(
    url: str,
    api_key: str,
    model_id: str,
    samples: Sequence[EvalSample],
    system_prompt: str | None,
    decoding: Decoding,
    advance: Callable[[int], None] = lambda n: None,
) -> list[str]:
    """One reply per sample from a model the daemon serves, through the OpenAI SDK; a few requests in flight."""
    import openai

    client = openai.OpenAI(base_url=url, api_key=api_key or "not-needed-on-loopback", timeout=600, max_retries=2)

    def one(sample: EvalSample) -> str:
        context = sample.context
        while True:
            try:
                reply = client.chat.completions.create(
                    model=model_id,
                    messages=messages_for(EvalSample(sample.line, context, sample.real), system_prompt),  # type: ignore[arg-type]  # plain role/content dicts, what the SDK's TypedDicts describe
                    max_tokens=decoding.max_new_tokens,
                    temperature=decoding.temperature,
                    top_p=decoding.top_p,
                    seed=sample_seed(decoding.seed, sample),
                    extra_body={
                        "repetition_penalty": decoding.repetition_penalty,
                        "top_k": decoding.top_k,
                        "min_p": decoding.min_p,
                        **({} if decoding.end_bias is None else {"end_bias": decoding.end_bias}),
                        # always said: a built twin is served with several candidates by default
                        **({} if decoding.temperature == 0 else {"candidates": decoding.candidates}),
                        **({} if decoding.candidates == 1 else {"rerank": decoding.rerank}),
                    },
                )
            except openai.BadRequestError as e:
                # The daemon's context window is smaller, or the template wants other roles first: drop the oldest message.
                refused = getattr(e, "code", None) == "context_length_exceeded" or "chat template rejected" in str(
                    e.message
                )
                if refused and len(context) > 1:
                    context = context[1:]
                    continue
                raise UserError(f"the daemon at {url} refused a request for {model_id!r}: {e.message}") from None
            except openai.APIConnectionError:
                raise UserError(
                    f"lost the connection to the daemon at {url}: is it still running? Rerun `twin eval`"
                ) from None
            advance(1)
            return clean_reply(reply.choices[0].message.content or "")

    with ThreadPoolExecutor(max_workers=IN_FLIGHT) as pool:
        return list(pool.map(one, samples))

"""The daemon through the official openai SDK: what any OpenAI client sees."""

from __future__ import annotations

import openai
import pytest

from twin.embedded import MODEL_ID

QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]


@pytest.fixture
def client(daemon) -> openai.OpenAI:
    return openai.OpenAI(base_url=daemon.url, api_key="unused", max_retries=0)


def test_models_list_names_the_embedded_model(client):
    ids = [m.id for m in client.models.list().data]
    assert MODEL_ID in ids
    assert client.models.retrieve(MODEL_ID).id == MODEL_ID


def test_chat_non_stream_answers_with_usage(client):
    reply = client.chat.completions.create(model=MODEL_ID, messages=QUESTION, max_tokens=32, temperature=0, seed=1)
    assert reply.object == "chat.completion"
    assert reply.model == MODEL_ID
    text = reply.choices[0].message.content
    assert reply.choices[0].message.role == "assistant"
    assert "Paris" in text
    assert reply.choices[0].finish_reason in ("stop", "length")
    usage = reply.usage
    assert usage.prompt_tokens > 5 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_chat_stream_reassembles_to_the_non_stream_answer(client):
    args = dict(model=MODEL_ID, messages=QUESTION, max_tokens=24, temperature=0, seed=3)
    whole = client.chat.completions.create(**args)
    chunks = list(client.chat.completions.create(**args, stream=True, stream_options={"include_usage": True}))

    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    usage_chunk = chunks[-1]
    assert usage_chunk.choices == [] and usage_chunk.usage is not None
    final = chunks[-2].choices[0]
    assert final.finish_reason == whole.choices[0].finish_reason
    assert not final.delta.content
    assert all(c.choices[0].finish_reason is None for c in chunks[:-2])
    text = "".join(c.choices[0].delta.content or "" for c in chunks[:-1])
    assert text == whole.choices[0].message.content
    assert usage_chunk.usage.completion_tokens == whole.usage.completion_tokens
    assert usage_chunk.usage.prompt_tokens == whole.usage.prompt_tokens


def test_stream_without_include_usage_has_no_usage_chunk(client):
    chunks = list(client.chat.completions.create(model=MODEL_ID, messages=QUESTION, max_tokens=4, stream=True))
    assert all(c.choices for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "length"


def test_completions_endpoint(client):
    reply = client.completions.create(model=MODEL_ID, prompt="The capital of France is", max_tokens=8, temperature=0)
    assert reply.object == "text_completion"
    assert "Paris" in reply.choices[0].text
    assert reply.usage.completion_tokens <= 8


def test_completions_stream_and_echo(client):
    chunks = list(
        client.completions.create(model=MODEL_ID, prompt="One, two,", max_tokens=6, temperature=0, stream=True)
    )
    streamed = "".join(c.choices[0].text for c in chunks)
    whole = client.completions.create(model=MODEL_ID, prompt="One, two,", max_tokens=6, temperature=0)
    assert streamed == whole.choices[0].text
    echoed = client.completions.create(model=MODEL_ID, prompt="One, two,", max_tokens=6, temperature=0, echo=True)
    assert echoed.choices[0].text == "One, two," + whole.choices[0].text


def test_max_tokens_gives_finish_reason_length(client):
    # Greedy, so the answer (a long story) is the same every run and cannot end before the cap.
    reply = client.chat.completions.create(
        model=MODEL_ID,
        messages=[{"role": "user", "content": "Write a long story about a dragon."}],
        max_tokens=5,
        temperature=0,
    )
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage.completion_tokens == 5
    newer = client.chat.completions.create(
        model=MODEL_ID,
        messages=[{"role": "user", "content": "Write a long story."}],
        max_completion_tokens=3,
        temperature=0,
    )
    assert newer.usage.completion_tokens == 3


def test_stop_sequence_is_honoured(client):
    args = dict(model=MODEL_ID, messages=QUESTION, max_tokens=32, temperature=0, seed=1)
    free = client.chat.completions.create(**args).choices[0].message.content
    assert "Paris" in free
    stopped = client.chat.completions.create(**args, stop=["Paris", "never-there"]).choices[0]
    assert stopped.finish_reason == "stop"
    assert stopped.message.content == free[: free.index("Paris")]
    # The same through the stream: the stop text is never sent, even split across tokens.
    chunks = list(client.chat.completions.create(**args, stop="Paris", stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == stopped.message.content


def test_seed_makes_sampling_reproducible(client):
    args = dict(
        model=MODEL_ID, messages=[{"role": "user", "content": "Tell me a fun fact."}], max_tokens=20, temperature=1.0
    )
    a = client.chat.completions.create(**args, seed=42).choices[0].message.content
    b = client.chat.completions.create(**args, seed=42).choices[0].message.content
    assert a == b


def test_n_choices_and_text_parts_and_roles(client):
    reply = client.chat.completions.create(
        model=MODEL_ID,
        messages=[
            {"role": "system", "content": "You answer briefly."},
            {"role": "user", "content": "Hi!"},
            {"role": "assistant", "content": "Hello."},
            {
                "role": "user",
                "content": [{"type": "text", "text": "Name a colour"}, {"type": "text", "text": " please."}],
            },
        ],
        max_tokens=8,
        n=2,
        seed=5,
        temperature=1.0,
        presence_penalty=0.5,
        frequency_penalty=0.5,
        top_p=0.9,
    )
    assert [c.index for c in reply.choices] == [0, 1]
    assert all(c.message.content for c in reply.choices)


def test_unknown_fields_are_ignored(client):
    reply = client.chat.completions.create(
        model=MODEL_ID, messages=QUESTION, max_tokens=2, user="someone", extra_body={"some_future_field": {"x": 1}}
    )
    assert reply.usage.completion_tokens <= 2


def test_cyrillic_streams_without_broken_characters(client):
    chunks = list(
        client.chat.completions.create(
            model=MODEL_ID,
            messages=[{"role": "user", "content": "Напиши слово «привет» пять раз."}],
            max_tokens=40,
            temperature=0,
            stream=True,
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text and "\ufffd" not in text


def _first_token(client, **extra) -> str:
    reply = client.chat.completions.create(
        model=MODEL_ID, messages=QUESTION, max_tokens=1, temperature=0, logprobs=True, **extra
    )
    return reply.choices[0].logprobs.content[0].token


def test_logit_bias_forces_and_bans_tokens(client):
    forced = client.chat.completions.create(
        model=MODEL_ID,
        messages=QUESTION,
        max_tokens=4,
        temperature=0.9,
        seed=5,
        logprobs=True,
        logit_bias={"1000": 100},
    )
    tokens = [t.token for t in forced.choices[0].logprobs.content]
    assert len(tokens) == 4 and len(set(tokens)) == 1  # token 1000, four times, even when sampling
    assert _first_token(client, logit_bias={"2000": 100}) not in ("", tokens[0])
    assert _first_token(client, logit_bias={"1000": 100, "2000": -5}) == tokens[0]
    first = _first_token(client)
    assert first != tokens[0]
    # -100 bans: the greedy first token is never chosen again.
    ids = {t: i for i, t in enumerate(_vocabulary())}
    assert _first_token(client, logit_bias={str(ids[first]): -100}) != first


def _vocabulary() -> list[str]:
    import gguf

    from twin import embedded

    reader = gguf.GGUFReader(embedded.embedded_gguf())
    tokens = reader.fields["tokenizer.ggml.tokens"]
    return [bytes(tokens.parts[i]).decode("utf-8", "replace") for i in tokens.data]


def _end_ids() -> list[int]:
    vocab = _vocabulary()
    return [i for i, t in enumerate(vocab) if t in ("<|im_end|>", "<|endoftext|>")]


def test_logit_bias_against_the_end_tokens_lengthens_the_reply(client):
    args = dict(model=MODEL_ID, messages=QUESTION, max_tokens=60, temperature=0)
    assert client.chat.completions.create(**args).choices[0].finish_reason == "stop"
    banned = client.chat.completions.create(**args, logit_bias={str(i): -100 for i in _end_ids()})
    assert banned.choices[0].finish_reason == "length"


@pytest.mark.parametrize(
    ("bias", "says"),
    [
        ({"abc": 1}, "token ids"),
        ({"-3": 1}, "token ids"),
        ({"5": 101}, "between"),
        ({"5": "x"}, "number"),
        ({"999999999": 1}, "vocabulary"),
    ],
)
def test_a_bad_logit_bias_is_a_400_naming_it(client, bias, says):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=MODEL_ID, messages=QUESTION, max_tokens=1, logit_bias=bias)
    assert info.value.body["param"].startswith("logit_bias")
    assert says in info.value.body["message"]

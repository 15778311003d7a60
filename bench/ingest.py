"""Benchmark `twin ingest` on a generated Telegram whole-account export of 1,000,000 messages.

The export is written to a temporary directory in Telegram Desktop's own layout
(one-space indentation, text_entities, stickers, links, replies, service
messages, groups); the ingest runs in a child process so its peak memory can be
read on its own. Prints one `name=value` a line:

    ingest_mb_per_s      file megabytes (10^6 bytes) per second of ingest() in the child (wall clock)
    ingest_cpu_mb_per_s  the same per second of the child's CPU time (what a busy machine does not change)
    ingest_peak_rss_mb   the child's peak resident memory (MiB), interpreter included

Usage: python bench/ingest.py [--messages N]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from json.encoder import encode_basestring
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OWNER = 7000001
WORDS = [
    "привет",
    "как",
    "дела",
    "норм",
    "го",
    "давай",
    "завтра",
    "сегодня",
    "вечером",
    "да",
    "нет",
    "ну",
    "такое",
    "щас",
    "посмотрю",
    "работа",
    "дом",
    "кино",
    "пиво",
    "созвон",
    "деплой",
    "прод",
    "упал",
    "ок",
    "спасибо",
    "пока",
    "ладно",
    "понял",
    "слушай",
    "кстати",
    "вообще",
    "конечно",
    "может",
    "быть",
    "hello",
    "ok",
    "sure",
    "lol",
    "thanks",
    "meeting",
    "tomorrow",
    "build",
    "failed",
    "review",
    "please",
    "see",
    "you",
    "later",
    "cool",
    "nice",
]
EMOJI = ["🔥", "👌", "🙃", "😂", "❤️", ")))", "))"]

_MSG = (
    '     {{\n      "id": {id},\n      "type": "message",\n      "date": "{date}",\n      "date_unixtime": "{unix}",\n'
    '      "from": {name},\n      "from_id": "user{uid}",{extra}\n      "text": {text},\n      "text_entities": {ents}\n     }}'
)
_SERVICE = (
    '     {{\n      "id": {id},\n      "type": "service",\n      "date": "{date}",\n      "date_unixtime": "{unix}",\n'
    '      "actor": {name},\n      "actor_id": "user{uid}",\n      "action": "phone_call",\n      "duration_seconds": 42,\n'
    '      "text": "",\n      "text_entities": []\n     }}'
)


def _plain_entities(text_json: str) -> str:
    return '[\n       {\n        "type": "plain",\n        "text": ' + text_json + "\n       }\n      ]"


def generate(path: Path, messages: int, seed: int = 1) -> None:
    """Write a whole-account export with `messages` messages over chats of 500–20,000 messages."""
    rng = random.Random(seed)
    t = 1_600_000_000
    written = 0
    chat_no = 0
    with open(path, "w", encoding="utf-8") as f:
        f.write(
            '{\n "about": "Here is the data you requested.",\n "personal_information": {\n  "user_id": %d,\n'
            '  "first_name": "Bench",\n  "last_name": "",\n  "phone_number": "+1 555 0100",\n  "username": "@bench",\n'
            '  "bio": ""\n },\n "chats": {\n  "about": "This page lists all chats from this export.",\n  "list": [\n'
            % OWNER
        )
        while written < messages:
            chat_no += 1
            size = min(messages - written, rng.choice((500, 2000, 5000, 20000)))
            group = chat_no % 5 == 0
            members = [(OWNER, "Bench")] + [
                (8000000 + chat_no * 10 + k, f"Друг {chat_no}-{k}") for k in range(4 if group else 1)
            ]
            if chat_no > 1:
                f.write(",\n")
            f.write(
                '   {\n    "name": %s,\n    "type": "%s",\n    "id": %d,\n    "messages": [\n'
                % (
                    encode_basestring(f"Чат {chat_no}"),
                    "private_supergroup" if group else "personal_chat",
                    9000000 + chat_no,
                )
            )
            first_id = written + 1
            parts = []
            for i in range(size):
                written += 1
                t += rng.choice((15, 40, 90, 240, 600, 7200)) if i else 86400
                uid, name = members[0] if rng.random() < 0.45 else rng.choice(members[1:])
                date = datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
                r = rng.random()
                common = {"id": written, "date": date, "unix": t, "name": encode_basestring(name), "uid": uid}
                if r < 0.02:
                    parts.append(_SERVICE.format(**common))
                    continue
                extra = ""
                if r < 0.06:
                    extra = (
                        '\n      "file": "(File not included.)",\n      "media_type": "sticker",\n'
                        '      "sticker_emoji": "%s",' % rng.choice(EMOJI[:5])
                    )
                    parts.append(_MSG.format(**common, extra=extra, text='""', ents="[]"))
                    continue
                words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 12)))
                if rng.random() < 0.3:
                    words += rng.choice(EMOJI)
                if r < 0.10 and written > first_id:
                    extra = '\n      "reply_to_message_id": %d,' % rng.randint(first_id, written - 1)
                if r > 0.97:
                    link = "https://example.com/p/%d" % rng.randint(1, 10**6)
                    text = (
                        '[\n       %s,\n       {\n        "type": "link",\n        "text": "%s"\n       }\n      ]'
                        % (encode_basestring(words + " "), link)
                    )
                    ents = (
                        '[\n       {\n        "type": "plain",\n        "text": %s\n       },\n       {\n'
                        '        "type": "link",\n        "text": "%s"\n       }\n      ]'
                    ) % (encode_basestring(words + " "), link)
                    parts.append(_MSG.format(**common, extra=extra, text=text, ents=ents))
                    continue
                text_json = encode_basestring(words)
                parts.append(_MSG.format(**common, extra=extra, text=text_json, ents=_plain_entities(text_json)))
            f.write(",\n".join(parts))
            f.write("\n    ]\n   }")
        f.write("\n  ]\n }\n}\n")


_CHILD = """
import json, sys, time
from pathlib import Path
from trainer.ingest.run import IngestConfig, ingest
start, cpu = time.perf_counter(), time.process_time()
result = ingest(IngestConfig(exports=[Path(sys.argv[1])], name="bench", progress=False))
print(json.dumps({"seconds": time.perf_counter() - start, "cpu": time.process_time() - cpu,
                  "train": result.train_samples, "val": result.val_samples}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="twin-bench-ingest-") as tmp:
        export = Path(tmp) / "result.json"
        generate(export, args.messages)
        size = export.stat().st_size
        env = {**os.environ, "TWIN_HOME": str(Path(tmp) / "home"), "PYTHONPATH": str(ROOT)}
        before = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", _CHILD, str(export)], env=env, capture_output=True, text=True)
        wall = time.perf_counter() - before
        if done.returncode != 0:
            sys.exit(f"ingest failed: {done.stderr.strip()}")
        child = json.loads(done.stdout.strip().splitlines()[-1])
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(f"ingest_messages={args.messages}")
    print(f"ingest_file_mb={size / 1e6:.1f}")
    print(f"ingest_seconds={child['seconds']:.2f}")
    print(f"ingest_process_seconds={wall:.2f}")
    print(f"ingest_samples={child['train'] + child['val']}")
    print(f"ingest_cpu_seconds={child['cpu']:.2f}")
    print(f"ingest_mb_per_s={size / 1e6 / child['seconds']:.1f}")
    print(f"ingest_cpu_mb_per_s={size / 1e6 / child['cpu']:.1f}")
    print(f"load_average_1m={os.getloadavg()[0]:.1f}")
    print(f"ingest_peak_rss_mb={peak_kib / 1024:.1f}")


if __name__ == "__main__":
    main()

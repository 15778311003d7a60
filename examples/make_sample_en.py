"""Write examples/telegram_sample_en/result.json: an English Telegram whole-account export made up for twin's demo.

The account belongs to Sam Carter (user300400500). Sam writes in lowercase,
briefly, without full stops; says "yep", "nah", "gonna", "tbh", laughs with
"haha" and "lol" and uses 😅 👍 🙌. The tone changes with the chat: warm with
Jess, dutiful with Mum, banter with Tom, short and to the point in the work
group. The embedded model writes English only, so `make demo` trains on this
one; the Russian sample (make_sample.py) stays for the ingest tests. Generated
from the scenes below with a fixed seed, byte for byte the same on every run:

    python examples/make_sample_en.py        # rewrites examples/telegram_sample_en/result.json
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

from make_sample import Writer

OUT = Path(__file__).resolve().parent / "telegram_sample_en" / "result.json"
SEED = 20240302
START = datetime(2024, 3, 1, 9, 0, tzinfo=timezone.utc)

ME = ("Sam Carter", 300400500)
PEOPLE = {
    "jess": ("Jess Walker", 400500601),
    "mum": ("Mum", 400500602),
    "tom": ("Tom Reed", 400500603),
    "priya": ("Priya Shah", 400500604),
    "dan": ("Dan Miller", 400500605),
}

# A scene is one conversation: (who, variants); "me" is Sam, "o" the chat's other person, else a key of PEOPLE.
SCENES: dict[str, list[list[tuple[str, list[str]]]]] = {
    "jess": [
        [
            ("o", ["Morning! Did you sleep ok?", "Hey you, how was your night?", "Good morning sleepyhead"]),
            ("me", ["morning x not really, neighbours again 😅", "yep like a rock", "kinda, woke up at 5 lol"]),
            ("o", ["Oh no, coffee then?", "Lucky you. Busy day?", "Want me to bring you a coffee?"]),
            ("me", ["yes please, big one", "pretty busy tbh, talk at lunch?", "you're the best x"]),
        ],
        [
            ("o", ["Dinner tonight? I could cook", "What do you fancy for dinner?", "Shall we order in tonight?"]),
            ("me", ["yes! pasta?", "anything but curry again haha", "order in, im wiped"]),
            ("o", ["Pasta it is. Can you grab wine?", "Pizza then?", "Ok, thai?"]),
            ("me", ["yep will get a red", "pizza 🙌", "thai sounds good, the usual"]),
        ],
        [
            ("o", ["Where are you?", "Are you nearly home?", "Train ok?"]),
            ("me", ["5 min away", "stuck at the station, delays again", "on the bus, 10 min"]),
            ("o", ["Ok, see you soon", "Ugh, text me when you're close", "Kettle's on"]),
            ("me", ["👍", "will do x", "love you"]),
        ],
        [
            ("o", ["Look at this dog 😍 photo:", "My sister sent this, look", "We need one of these"]),
            ("me", ["haha that face", "omg yes", "nah we'd never sleep again lol"]),
            ("o", ["Can we get one??", "Imagine him on our sofa", "One day?"]),
            ("me", ["one day, promise", "sofa's already yours, he can share", "maybe next year 😅"]),
        ],
        [
            ("o", ["Movie tonight?", "Shall we finally watch that series?", "Cinema on Saturday?"]),
            ("me", ["yep, you pick", "yes but not the sad one again", "saturday works, evening?"]),
            ("o", ["Deal. Popcorn is on you", "Fine, comedy then", "7pm?"]),
            ("me", ["deal 🙌", "perfect", "7 is good x"]),
        ],
        [
            ("o", ["Night x", "Going to sleep, love you", "Sleep well"]),
            ("me", ["night x", "love you too", "sleep well, see you tomorrow"]),
        ],
    ],
    "mum": [
        [
            ("o", ["Hello love, are you eating properly?", "Did you have lunch today?"]),
            ("me", ["yes mum, had soup", "yep, dont worry", "kind of, a sandwich"]),
            ("o", ["A sandwich is not lunch!", "Good. Vegetables too I hope", "Make sure you eat something warm"]),
            ("me", ["ok ok, proper dinner tonight", "jess is cooking, promise", "will do mum"]),
        ],
        [
            ("o", ["Are you coming on Sunday? Dad is doing a roast", "Sunday lunch, 1pm, bring Jess"]),
            ("me", ["yes, we'll be there", "wouldnt miss it", "might be a bit late, trains"]),
            ("o", ["Lovely. Bring a jumper, the heating is broken", "Shall I make the crumble?"]),
            ("me", ["haha ok", "yes please, the apple one", "👍"]),
        ],
        [
            ("o", ["Call me when you have a minute", "Can you ring me tonight?", "Did you see my message?"]),
            ("me", ["sure, after work", "in a meeting, will call at 6", "yep, sorry, busy day"]),
            ("o", ["Nothing urgent, just about your aunt's birthday", "It's about the car insurance"]),
            ("me", ["ok will call later", "ah ok, send me the details", "got it, talk tonight"]),
        ],
        [
            ("o", ["It's cold today, wear a coat", "Rain all day they say, take an umbrella"]),
            ("me", ["i am mum haha", "already soaked lol", "yep, got one"]),
        ],
        [
            ("o", ["How is work going?", "Are they still making you work late?"]),
            ("me", ["fine, busy but fine", "a bit, big release this week", "better now, new project"]),
            ("o", ["Don't let them walk all over you", "Proud of you love"]),
            ("me", ["i wont", "thanks mum x", "haha ok"]),
        ],
    ],
    "tom": [
        [
            ("o", ["Pub later?", "Pint after work?", "You alive mate?"]),
            ("me", ["always", "yes mate, 6?", "barely lol, yes pub"]),
            ("o", ["The usual place", "Red Lion at 6", "Bring Dan if he's free"]),
            ("me", ["see you there", "👍", "will ask him"]),
        ],
        [
            ("o", ["Did you see the match??", "What a game last night", "Unbelievable ending"]),
            ("me", ["dont talk to me about it", "haha yes that last goal", "missed it, no spoilers"]),
            ("o", ["Your defence was a joke", "Rematch next week", "Too late, 3-2"]),
            ("me", ["harsh but fair lol", "cant wait", "mate. why"]),
        ],
        [
            ("o", ["Five a side on Thursday, you in?", "We need one more for football"]),
            ("me", ["yep in", "my knee says no but im in", "thursday works"]),
            ("o", ["Legend", "Don't be late this time", "8pm, the usual pitch"]),
            ("me", ["haha never", "i was late once", "👍"]),
        ],
        [
            ("o", ["Lend me your drill this weekend?", "Got a ladder I can borrow?"]),
            ("me", ["sure, come grab it", "yep, its in the shed", "only if you bring it back this time lol"]),
            ("o", ["Saturday morning ok?", "Cheers mate", "I always bring it back!"]),
            ("me", ["saturday's fine", "no worries", "sure you do 😅"]),
        ],
        [
            ("o", ["Mate look at this photo:", "Remember this? photo:Uni days"]),
            ("me", ["haha the hair", "delete that", "we look about 12 lol"]),
        ],
    ],
    "work": [
        [
            ("priya", ["Standup moved to 10:30 today", "Reminder: planning at 2pm"]),
            ("dan", ["Thanks, will be there", "Noted"]),
            ("me", ["👍", "ok", "thanks, see you there"]),
        ],
        [
            ("dan", ["The build is red again", "Deploy failed on staging", "Tests are flaky on main"]),
            ("me", ["on it", "looking now", "my bad, pushing a fix"]),
            ("priya", ["Thanks Sam", "Let us know if you need help", "Ping me when it's green"]),
            ("me", ["fixed, green now", "should be ok now, can someone review", "will do"]),
        ],
        [
            ("priya", ["Can someone review my PR?", "Need a second pair of eyes on the migration"]),
            ("me", ["sure, after lunch", "yep, looking now", "will check in 10"]),
            ("priya", ["Thanks!", "No rush", "It's the one about the cache"]),
            ("me", ["left a few comments, looks good", "approved 👍", "one question inline"]),
        ],
        [
            ("dan", ["Anyone up for lunch?", "Pizza on Friday for the release?"]),
            ("me", ["yep, 12:30?", "count me in", "sounds good 🙌"]),
        ],
        [
            ("priya", ["Who's on call this weekend?", "Can anyone swap on-call with me next week?"]),
            ("me", ["me i think", "i can swap, which days?", "not me this time, sorry"]),
            ("priya", ["Thanks, Saturday and Sunday", "You're a star", "No worries"]),
            ("me", ["done, updated the rota", "np", "👍"]),
        ],
        [
            ("dan", ["Release notes are due today", "Can you write up the API changes?"]),
            ("me", ["yep, will do this afternoon", "drafted them in the doc", "on it"]),
        ],
    ],
}

CHATS = [  # key, name, kind, id, sessions
    ("jess", "Jess Walker", "personal_chat", 400500601, 30),
    ("mum", "Mum", "personal_chat", 400500602, 22),
    ("tom", "Tom Reed", "personal_chat", 400500603, 24),
    ("work", "Platform team", "private_supergroup", 1876543210, 28),
]
MY_FLOURISH = [" 😅", " 👍", " 🙌", " haha", " lol"]


def flourish(rng: random.Random, text: str) -> str:
    """Sam's habit: now and then a laugh or an emoji at the end, never after another one."""
    if text.endswith(("😅", "👍", "🙌", "😍", "haha", "lol", "x")) or rng.random() > 0.2:
        return text
    return text + rng.choice(MY_FLOURISH)


def chat_messages(rng: random.Random, w: Writer, key: str, sessions: int, start: datetime) -> list[dict]:
    scenes = SCENES[key]
    other = PEOPLE.get(key)
    when = start
    out: list[dict] = []
    order = list(range(len(scenes))) + [rng.randrange(len(scenes)) for _ in range(sessions - len(scenes))]
    rng.shuffle(order)
    for index in order[:sessions]:
        when += timedelta(hours=rng.randint(5, 60), minutes=rng.randint(0, 59))
        when = when.replace(hour=max(8, min(when.hour, 23)))
        for who, variants in scenes[index]:
            body = rng.choice(variants)
            when += timedelta(seconds=rng.randint(15, 200))
            sender = ME if who == "me" else other if who == "o" else PEOPLE[who]
            if who == "me":
                body = flourish(rng, body)
            if " photo:" in body:  # a message with a photo: the photo carries the text as its caption
                body = "photo:" + body.replace(" photo:", " ").strip()
            out.append(w.message(when, sender, body))
    return out


def build() -> dict:
    rng = random.Random(SEED)
    w = Writer(rng)
    chats = [
        {"name": name, "type": kind, "id": chat_id, "messages": chat_messages(rng, w, key, sessions, START)}
        for key, name, kind, chat_id, sessions in CHATS
    ]
    return {
        "about": "Here is the data you requested. Remember: Telegram is ad free, it doesn't sell your data, and it never will.",
        "personal_information": {
            "user_id": ME[1],
            "first_name": "Sam",
            "last_name": "Carter",
            "phone_number": "+44 7700 900000",
            "username": "@sam_carter_demo",
            "bio": "backend, coffee, five a side",
        },
        "chats": {"about": "This page lists all chats from this export.", "list": chats},
    }


def main() -> None:
    data = build()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    total = sum(len(c["messages"]) for c in data["chats"]["list"])
    print(f"wrote {OUT} ({total} messages)")


if __name__ == "__main__":
    main()

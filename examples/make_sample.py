"""Write examples/telegram_sample/result.json: a Telegram Desktop whole-account export made up for twin.

The account belongs to Дима (user100200300). He writes in lowercase, briefly,
without full stops, says "норм", "го", "ну такое", "щас", laughs with ")))"
and uses 🔥 👌 🙃; with his English-speaking colleague he writes the same way in
English. Everything is generated from the scenes below with a fixed seed, so
running this script again gives the same file byte for byte:

    python examples/make_sample.py            # rewrites examples/telegram_sample/result.json
"""

from __future__ import annotations

import json
import random
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

OUT = Path(__file__).resolve().parent / "telegram_sample" / "result.json"
SEED = 20240301
MSK = timezone(timedelta(hours=3))
START = datetime(2024, 3, 1, 9, 0, tzinfo=MSK)

ME = ("Дима Соколов", 100200300)
PEOPLE = {
    "anya": ("Аня Смирнова", 200300401),
    "max": ("Макс Орлов", 200300402),
    "mama": ("Мама", 200300403),
    "alex": ("Alex Turner", 200300404),
    "lena": ("Лена Ким", 200300405),
    "igor": ("Игорь", 200300406),
}

# A scene is one conversation: (who, variants) lines; "me" is Дима, "o" the chat's other person.
# Variants may hold {link:…}, {phone:…}, {email:…}, {bold:…} entities, or be a
# sticker ("sticker:🔥"), a photo ("photo:caption" / "photo:"), a voice message ("voice:"),
# a forward ("fwd:Channel|text"), or reply to an earlier line of the scene ("^2|text").
SCENES: dict[str, list[list[tuple[str, list[str]]]]] = {
    "anya": [
        [
            ("o", ["Привет! Как дела?", "Приветик) как ты?", "Дим, привет! Как день?"]),
            ("me", ["привет) норм, ты как?", "норм всё, работаю)))", "да норм, устал немного"]),
            ("o", ["Тоже хорошо, только с работы вышла", "Норм, соскучилась", "Устала ужасно, весь день созвоны"]),
            ("me", ["понимаю( отдыхай", "я тоже))) вечером увидимся?", "держись 🙃"]),
        ],
        [
            ("o", ["Пойдём в кино в субботу?", "Может в кино сходим на выходных?"]),
            ("me", ["го 🔥", "давай, на что?)", "го, только не на ужастик)))"]),
            (
                "o",
                [
                    "Там новый Дюна вышел {link:https://www.kinopoisk.ru/film/1266711/}",
                    "Смотри, вот сеансы {link:https://afisha.yandex.ru/moscow/cinema}",
                ],
            ),
            ("me", ["норм, беру билеты", "о, го на вечерний", "ну такое, но давай)))"]),
            ("o", ["Ура! На 19:30?", "Давай на 20:00"]),
            ("me", ["ок 👌", "го", "норм, успею"]),
        ],
        [
            ("o", ["Что на ужин хочешь?", "Я в магазине, что взять?"]),
            ("me", ["да что угодно)", "пасту го", "возьми сыр и хлеб, норм будет"]),
            ("o", ["Опять пасту?)", "А вино брать?"]),
            ("me", ["ну а что, вкусно же)))", "давай 👌", "да не, завтра работать"]),
        ],
        [
            ("o", ["Ты где?", "Ты скоро?"]),
            ("me", ["щас", "щас буду"]),
            ("me", ["5 мин", "в метро уже", "пробки жесть"]),
            ("o", ["Жду у входа", "Ок, жду"]),
            ("me", ["👌", "бегу)))"]),
        ],
        [
            ("o", ["Смотри какого кота видела", "Глянь, какой смешной"]),
            ("o", ["photo:", "photo:Это он 😍"]),
            ("me", ["ахах норм кот)))", "кек 😂", "хочу такого 🔥"]),
            ("o", ["Давай заведём!", "Может тоже заведём?"]),
            ("me", ["ну такое", "давай летом)))", "го, но ты лоток моешь"]),
        ],
        [
            ("o", ["Мама зовёт в воскресенье на обед, поедем?", "Родители зовут в гости в воскресенье"]),
            ("me", ["го", "норм, поехали", "давай, во сколько?"]),
            ("o", ["К двум", "Часа в три"]),
            ("me", ["ок 👌", "норм)))", "успеем"]),
        ],
        [("o", ["sticker:😘", "sticker:🥰"]), ("me", ["sticker:🔥", "sticker:👌", ")))"])],
        [
            ("o", ["Ты не забыл про завтра?", "Помнишь, что завтра?"]),
            ("me", ["да не, помню)))", "конечно 🙃", "эээ напомни)))"]),
            ("o", ["Годовщина!!!", "Мы идём в ресторан!"]),
            ("me", ["помню-помню)))", "конечно, столик уже взял 🔥", "норм, жду)))"]),
        ],
        [
            ("me", ["fwd:Котики 🐱|Кот, который не хочет вставать в понедельник"]),
            ("me", ["это я)))", "про меня)))"]),
            ("o", ["Ахахах точно", "Похож!"]),
            ("me", ["кек", ")))"]),
        ],
        [
            ("o", ["Погода супер, погуляем?", "Пойдём погуляем в парк?"]),
            ("me", ["го", "го через час", "давай, я только поем)))"]),
            ("o", ["В Горький?", "К пруду?"]),
            ("me", ["норм 👌", "го", "давай)))"]),
        ],
        [
            ("o", ["Я купила билеты на концерт!", "Угадай, куда мы идём в пятницу"]),
            ("me", ["о, куда?)", "ого 🔥", "рассказывай)))"]),
            ("o", ["На Земфиру!", "На джаз в Эрмитаж"]),
            ("me", ["норм 🔥", "го)))", "ну такое, но ради тебя го)))"]),
        ],
        [("o", ["Спокойной ночи)", "Я спать, люблю"]), ("me", ["спокойной)))", "сладких снов 🙃", "и я)))"])],
    ],
    "max": [
        [
            ("o", ["Го в доту вечером?", "Катку?", "Доту сегодня?"]),
            ("me", ["го", "го после 9", "ну такое, завтра го"]),
            ("o", ["Ок, кидай инвайт", "Я в лобби", "Договорились"]),
            ("me", ["ща", "щас зайду", "👌"]),
        ],
        [
            ("o", ["fwd:Хабр|Вышел Python 3.13: free-threading и новый REPL"]),
            ("o", ["Видел?", "Наконец-то без GIL"]),
            ("me", ["норм 🔥", "ну такое, посмотрим)))", "кек, ждём 3.14"]),
            ("o", ["Перейдём на него в проекте?", "Надо попробовать"]),
            ("me", ["да не, рано", "го, но после релиза", "ну такое)))"]),
        ],
        [
            ("o", ["Ты смотрел вчера матч?", "Видел как Спартак слил?"]),
            ("me", ["да, жесть", "ну такое)))", "не, спал"]),
            ("o", ["Судья вообще без глаз", "Я чуть телек не разбил"]),
            ("me", ["кек", "согласен)))", "норм, бывает"]),
        ],
        [
            ("o", ["Скинь тот репо с парсером", "Где лежит наш бот?"]),
            (
                "me",
                [
                    "{link:https://github.com/dima-sokolov/tg-parser}",
                    "щас",
                    "вот {link:https://gitlab.com/dsokolov/bot}",
                ],
            ),
            ("o", ["Спасибо!", "Пасиб, гляну"]),
            ("me", ["норм 👌", "го", ")))"]),
        ],
        [
            ("o", ["Пиво в пятницу?", "Может в бар в пятницу?"]),
            ("me", ["го 🔥", "норм, го", "ну такое, я без денег)))"]),
            ("o", ["В наш?", "Куда пойдём?"]),
            ("me", ["давай в наш", "го в Чайхану", "как обычно)))"]),
        ],
        [
            ("o", ["У тебя деплой упал", "Прод лежит!!!"]),
            ("me", ["щас гляну", "ща", "блин, щас"]),
            ("me", ["всё норм, перезапустил", "поднял)))", "норм, это кэш"]),
            ("o", ["Красава", "Фух"]),
            ("me", ["👌", ")))"]),
        ],
        [("o", ["sticker:🤣", "sticker:😂"]), ("me", ["кек", ")))", "sticker:🙃"])],
        [
            ("o", ["Ты где пропал?", "Живой?"]),
            ("me", ["да тут, работы много", "живой)))", "норм всё, завал"]),
            ("o", ["Понял, не пропадай", "Давай на выходных созвонимся"]),
            ("me", ["го", "норм 👌", "давай)))"]),
        ],
        [
            (
                "o",
                [
                    "Глянь, что нашёл {link:https://youtu.be/dQw4w9WgXcQ}",
                    "Смотри {link:https://habr.com/ru/articles/800000/}",
                ],
            ),
            ("me", ["кек", "норм)))", "ахах 🔥"]),
        ],
        [
            ("o", ["Какой ноут брать?", "Посоветуй ноут до 100к"]),
            ("me", ["макбук норм", "бери thinkpad", "ну такое, смотря для чего)))"]),
            ("o", ["Для работы и игр", "Для кода"]),
            ("me", ["тогда thinkpad 👌", "мак норм", "го в днс, там посмотрим)))"]),
        ],
        [
            ("o", ["С днём рождения, бро!!! 🎉", "Дима, с днюхой!!!"]),
            ("me", ["спасибо)))", "спасибо бро 🔥", "пасиб)))"]),
            ("o", ["Вечером отмечаем?", "Где собираемся?"]),
            ("me", ["го ко мне", "норм, в 8 у меня", "го в бар)))"]),
        ],
    ],
    "mama": [
        [
            ("o", ["Дима, ты покушал?", "Сынок, ты обедал?"]),
            ("me", ["да мам)))", "да, норм всё", "щас поем"]),
            ("o", ["Не ешь всухомятку!", "Суп свари себе"]),
            ("me", ["ок)))", "хорошо мам", "норм всё, не переживай"]),
        ],
        [
            (
                "o",
                ["Запиши номер тёти Веры {phone:+7 916 123-45-67}", "Вот телефон дяди Коли {phone:8 (903) 765-43-21}"],
            ),
            ("me", ["записал 👌", "ок", "норм, записал"]),
            ("o", ["Позвони ей, у неё день рождения", "Поздравь его"]),
            ("me", ["ок, позвоню", "хорошо)))", "щас позвоню"]),
        ],
        [
            ("o", ["service:phone_call"]),
            ("o", ["Почему не берёшь трубку?", "Ты занят?"]),
            ("me", ["на созвоне был", "щас перезвоню", "мам, на работе)))"]),
            ("o", ["Перезвони!", "Ладно, вечером поговорим"]),
            ("me", ["ок", "хорошо 👌"]),
        ],
        [("o", ["voice:"]), ("me", ["мам, не могу слушать, напиши)))", "щас послушаю", "ок)))"])],
        [
            ("o", ["Как на работе?", "Как дела у тебя?"]),
            ("me", ["норм всё", "норм, работаю)))", "да всё хорошо, мам"]),
            ("o", ["Не перерабатывай", "Отдыхай больше"]),
            ("me", ["ок)))", "хорошо 🙃", "стараюсь)))"]),
        ],
        [
            ("o", ["В субботу на дачу едем, поможешь?", "Приедешь на дачу в выходные?"]),
            ("me", ["да, приеду", "норм, в субботу го", "ну такое... ладно, приеду)))"]),
            ("o", ["Возьми перчатки", "И Аню бери!"]),
            ("me", ["ок 👌", "возьму)))", "норм"]),
        ],
        [
            ("o", ["photo:Пирожки напекла!", "photo:Смотри, какие помидоры выросли"]),
            ("me", ["ого 🔥", "норм)))", "хочу)))"]),
            ("o", ["Приезжай, угощу", "Заберёшь?"]),
            ("me", ["го в воскресенье", "приеду)))", "норм, заберу"]),
        ],
        [("o", ["Ты шапку надел? Холодно", "Одевайся теплее"]), ("me", ["да мам)))", "надел 🙃", "норм всё"])],
        [
            ("o", ["Купи лекарства папе, список скину", "Нужно в аптеку зайти"]),
            ("me", ["ок, скидывай", "норм, зайду", "щас закажу)))"]),
            ("o", ["Спасибо, сынок", "Ты у меня золото"]),
            ("me", [")))", "да не за что", "👌"]),
        ],
    ],
    "alex": [
        [
            ("o", ["Hey Dima, can you review my PR today?", "Hi! Got a minute for a quick review?"]),
            ("me", ["sure, in 10 min", "ok 👌", "yep, after lunch)))"]),
            ("o", ["Thanks! It's the auth refactor", "Great, thanks a lot"]),
            ("me", ["np", "ok", "np)))"]),
        ],
        [
            ("o", ["The build is failing on main", "CI is red again"]),
            ("me", ["looking", "ща... i mean, on it)))", "yep, saw it"]),
            ("me", ["fixed, flaky test", "should be ok now 👌"]),
            ("o", ["You're a lifesaver", "Thanks!"]),
            ("me", [")))", "np 🔥"]),
        ],
        [
            ("o", ["Are we still on for the 3pm sync?", "Can we move the sync to 4?"]),
            ("me", ["yep", "ok 👌", "sure, 4 is fine"]),
        ],
        [
            ("o", ["What do you think about switching to Postgres 16?", "Should we try the new ORM?"]),
            ("me", ["sounds good 👌", "meh, not now)))", "go for it"]),
            ("o", ["I'll write a proposal", "Ok, I'll check with the team"]),
            ("me", ["ok", "cool 🔥", "np"]),
        ],
        [
            (
                "o",
                [
                    "Here are the docs {link:https://docs.example.com/api/v2}",
                    "Spec: {link:https://confluence.example.com/x/AbCd}",
                ],
            ),
            ("me", ["thx", "ok, will read", "👌"]),
        ],
        [
            ("o", ["Happy Friday! Any plans?", "Have a nice weekend!"]),
            ("me", ["you too)))", "thx, dacha with family)))", "norm... i mean, nothing special)))"]),
        ],
        [
            ("o", ["Can you send me your email for the invite?", "What's your work email?"]),
            ("me", ["{email:dima.sokolov@example.com}", "it's {email:d.sokolov@example.com}"]),
            ("o", ["Got it", "Sent!"]),
            ("me", ["👌", "thx"]),
        ],
    ],
    "group": [
        [
            ("lena", ["Всем привет! Кто сегодня деплоит?", "Кто дежурный сегодня?"]),
            ("igor", ["Не я, я в отпуске с завтра", "Я вчера деплоил"]),
            ("max", ["Дима вроде", "По графику Дима"]),
            ("me", ["^0|я го", "^0|норм, я", "^0|ну такое, но я)))"]),
            ("lena", ["Спасибо!", "Отлично"]),
        ],
        [
            ("igor", ["Обедать идём?", "Кто на обед?"]),
            ("me", ["го", "го 🔥", "щас, 5 мин"]),
            ("lena", ["Я тоже", "Я с вами"]),
            ("max", ["В столовку или в кафе?", "Давайте в новое место"]),
            ("me", ["в кафе го", "норм, го в новое", "да не, в столовку)))"]),
        ],
        [
            (
                "lena",
                [
                    "Ребята, ревью на мой MR {link:https://gitlab.com/team/backend/-/merge_requests/421}",
                    "Посмотрите MR плиз",
                ],
            ),
            ("me", ["щас гляну", "ок 👌", "ща"]),
            ("max", ["Я тоже посмотрю", "+1"]),
            ("me", ["апрув)))", "норм, апрувнул", "пара коментов, а так норм"]),
        ],
        [
            ("max", ["Кто сломал тесты?", "Кто пушнул в main без ревью?"]),
            ("igor", ["Не я!", "Это не я"]),
            ("me", ["кек, это я)))", "упс, щас починю", "ну такое... я)))"]),
            ("lena", ["Дима!!!", "Ну ты даёшь"]),
            ("me", ["уже починил 👌", ")))"]),
        ],
        [
            ("igor", ["Созвон в 11 переносится на 12", "Стендап через 5 минут"]),
            ("me", ["ок", "норм", "👌"]),
            ("lena", ["Ок", "Буду"]),
        ],
        [
            ("lena", ["Кто знает пароль от стейджинга?", "Где лежат креды от тестовой базы?"]),
            ("me", ["в волте", "ща скину в личку", "у игоря спроси)))"]),
            ("igor", ["Да, в волте", "Скинул"]),
        ],
        [
            ("max", ["Го в пятницу пиццу закажем в офис?", "Пятница, может пиццу?"]),
            ("me", ["го 🔥", "го)))", "норм, я за"]),
            ("igor", ["Я за", "+"]),
            ("lena", ["Только без ананасов", "Мне вегетарианскую"]),
            ("me", ["кек", "норм)))"]),
        ],
        [
            ("lena", ["У нас опять 500 на /api/orders", "Мониторинг краснеет"]),
            ("me", ["щас гляну", "ща", "вижу, смотрю"]),
            ("me", ["это база, упёрлись в коннекты", "норм, перезапустил пул"]),
            ("max", ["Может поднимем лимит?", "Надо pgbouncer"]),
            ("me", ["го", "да, го", "ну такое, но давай)))"]),
        ],
        [("igor", ["sticker:👍", "sticker:🎉"]), ("me", ["sticker:🔥", "🔥", ")))"])],
        [
            ("lena", ["Сервер тестовый теперь на 10.20.30.40", "Новый адрес стенда 192.168.10.15"]),
            ("me", ["ок 👌", "пон", "норм"]),
            ("max", ["Спасибо", "Понял"]),
        ],
    ],
}

CHATS = [
    ("anya", "Аня Смирнова", "personal_chat", 200300401, 32),
    ("max", "Макс Орлов", "personal_chat", 200300402, 28),
    ("mama", "Мама", "personal_chat", 200300403, 22),
    ("alex", "Alex Turner", "personal_chat", 200300404, 16),
    ("group", "Бэкенд 🔥", "private_supergroup", 1987654321, 28),
]
MY_FLOURISH = [")))", "))", " 🔥", " 👌", " 🙃"]
ENTITY = re.compile(r"\{(link|phone|email|bold):([^}]*)\}")


class Writer:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.next_id = 1000

    def message(self, when: datetime, sender: tuple[str, int], body: str) -> dict:
        self.next_id += 1
        m: dict = {"id": self.next_id, "type": "message", **_dates(when)}
        m["from"], m["from_id"] = sender[0], f"user{sender[1]}"
        if body.startswith("sticker:"):
            m.update(
                file="(File not included. Change data exporting settings to download.)",
                thumbnail="(File not included. Change data exporting settings to download.)",
                media_type="sticker",
                sticker_emoji=body[8:],
                width=512,
                height=512,
            )
            body = ""
        elif body.startswith("photo:"):
            m.update(photo="(File not included. Change data exporting settings to download.)", width=1280, height=960)
            body = body[6:]
        elif body.startswith("voice:"):
            m.update(
                file="(File not included. Change data exporting settings to download.)",
                media_type="voice_message",
                mime_type="audio/ogg",
                duration_seconds=self.rng.randint(5, 40),
            )
            body = ""
        elif body.startswith("fwd:"):
            source, body = body[4:].split("|", 1)
            m["forwarded_from"] = source
        m["text"], m["text_entities"] = _entities(body)
        return m

    def service(self, when: datetime, actor: tuple[str, int], action: str, **extra: object) -> dict:
        self.next_id += 1
        return {
            "id": self.next_id,
            "type": "service",
            **_dates(when),
            "actor": actor[0],
            "actor_id": f"user{actor[1]}",
            "action": action,
            **extra,
            "text": "",
            "text_entities": [],
        }


def _dates(when: datetime) -> dict:
    return {"date": when.strftime("%Y-%m-%dT%H:%M:%S"), "date_unixtime": str(int(when.timestamp()))}


def _entities(body: str) -> tuple[object, list[dict]]:
    """Telegram's two forms: `text` a string when plain, else a list; `text_entities` always a list."""
    parts: list[dict] = []
    pos = 0
    for m in ENTITY.finditer(body):
        if m.start() > pos:
            parts.append({"type": "plain", "text": body[pos : m.start()]})
        parts.append({"type": m[1], "text": m[2]})
        pos = m.end()
    if pos < len(body):
        parts.append({"type": "plain", "text": body[pos:]})
    if all(p["type"] == "plain" for p in parts):
        return body, parts
    return [p["text"] if p["type"] == "plain" else p for p in parts], parts


def flourish(rng: random.Random, text: str) -> str:
    """Дима's habit: now and then a smile or an emoji at the end, never after another one."""
    if (
        text.startswith(("sticker:", "fwd:", "{"))
        or text.endswith((")", "🔥", "👌", "🙃", "😂", "}"))
        or rng.random() > 0.3
    ):
        return text
    return text + rng.choice(MY_FLOURISH)


def chat_messages(rng: random.Random, w: Writer, key: str, sessions: int, start: datetime) -> list[dict]:
    scenes = SCENES[key]
    other = PEOPLE.get(key)
    when = start
    out: list[dict] = []
    if key == "group":
        out.append(
            w.service(
                when,
                PEOPLE["lena"],
                "create_group",
                title="Бэкенд 🔥",
                members=[PEOPLE[k][0] for k in ("lena", "igor", "max")],
            )
        )
        when += timedelta(minutes=3)
        out.append(w.service(when, PEOPLE["lena"], "invite_members", members=[ME[0]]))
    order = list(range(len(scenes))) + [rng.randrange(len(scenes)) for _ in range(sessions - len(scenes))]
    rng.shuffle(order)
    for index in order[:sessions]:
        when += timedelta(hours=rng.randint(5, 60), minutes=rng.randint(0, 59))
        when = when.replace(hour=max(8, min(when.hour, 23)))
        ids: list[int] = []
        for who, variants in scenes[index]:
            body = rng.choice(variants)
            when += timedelta(seconds=rng.randint(15, 200))
            if body.startswith("service:"):
                out.append(
                    w.service(when, other, body[8:], duration_seconds=rng.randint(0, 1) * 30, discard_reason="missed")
                )
                ids.append(out[-1]["id"])
                continue
            reply_to = None
            if body.startswith("^"):
                ref, body = body[1:].split("|", 1)
                reply_to = ids[int(ref)]
            sender = ME if who == "me" else other if who == "o" else PEOPLE[who]
            if who == "me":
                body = flourish(rng, body)
            m = w.message(when, sender, body)
            if reply_to is not None:
                m["reply_to_message_id"] = reply_to
            if who != "me" and rng.random() < 0.05:
                m["edited"] = (when + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S")
                m["edited_unixtime"] = str(int((when + timedelta(minutes=1)).timestamp()))
            out.append(m)
            ids.append(m["id"])
    return out


def build() -> dict:
    rng = random.Random(SEED)
    w = Writer(rng)
    chats = []
    for key, name, kind, chat_id, sessions in CHATS:
        chats.append(
            {"name": name, "type": kind, "id": chat_id, "messages": chat_messages(rng, w, key, sessions, START)}
        )
    bot_when = START + timedelta(days=3)
    chats.append(
        {
            "name": "BotFather",
            "type": "bot_chat",
            "id": 93372553,
            "messages": [
                w.message(bot_when, ME, "/start"),
                {
                    **w.message(
                        bot_when + timedelta(seconds=2),
                        ("BotFather", 93372553),
                        "I can help you create and manage Telegram bots.",
                    ),
                    "from_id": "user93372553",
                },
            ],
        }
    )
    return {
        "about": "Here is the data you requested. Remember: Telegram is ad free, it doesn't sell your data, and it never will.",
        "personal_information": {
            "user_id": ME[1],
            "first_name": "Дима",
            "last_name": "Соколов",
            "phone_number": "+7 999 000 00 00",
            "username": "@dima_sokolov_demo",
            "bio": "бэкенд, кофе, дота",
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

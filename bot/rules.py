"""Who may do what: the bot's whole access policy, in one table.

Deny by default: someone with no role (a stranger) may only ask for help or
claim the bot with the one-time code; an action missing from the table is
refused to everyone. The owner is the person whose twin this is; `chat` may
talk to the twin, `rate` may take the blind survey.
"""

from __future__ import annotations

from enum import Enum


class Role(str, Enum):
    OWNER = "owner"
    CHAT = "chat"
    RATE = "rate"


class Action(str, Enum):
    HELP = "help"
    CLAIM = "claim"  # /start CODE while the bot has no owner
    GENERATE = "generate"
    CONVERSE = "converse"  # plain messages, /reset
    MODEL = "model"
    STATUS = "status"
    TRAIN = "train"
    CANCEL = "cancel"
    ALLOW = "allow"  # /allow and /deny
    SURVEY_MANAGE = "survey_manage"  # /survey on|off
    SURVEY_TAKE = "survey_take"


_TALKERS = frozenset({Role.OWNER, Role.CHAT})
PERMISSIONS: dict[Action, frozenset[Role | None]] = {
    Action.HELP: frozenset({None, Role.OWNER, Role.CHAT, Role.RATE}),
    Action.CLAIM: frozenset({None}),
    Action.GENERATE: _TALKERS,
    Action.CONVERSE: _TALKERS,
    Action.MODEL: _TALKERS,
    Action.STATUS: frozenset({Role.OWNER, Role.CHAT, Role.RATE}),
    Action.TRAIN: frozenset({Role.OWNER}),
    Action.CANCEL: frozenset({Role.OWNER}),
    Action.ALLOW: frozenset({Role.OWNER}),
    Action.SURVEY_MANAGE: frozenset({Role.OWNER}),
    Action.SURVEY_TAKE: frozenset({Role.RATE}),
}


def may(role: Role | None, action: Action) -> bool:
    """Whether someone with `role` (None: not on the allowlist) may do `action`."""
    return role in PERMISSIONS.get(action, frozenset())


def refusal(role: Role | None, action: Action) -> str:
    """The plain reply to a refused action: what the person can do about it."""
    if role is None:
        return "This is a private bot: its owner has not allowed you. Ask them to send /allow with your @username."
    if action is Action.SURVEY_TAKE and role is Role.OWNER:
        return "The survey is for your friends; rate your twin yourself with `twin chat --rate` on your computer."
    if action is Action.SURVEY_TAKE:
        return "Only people the owner invited to the survey can take it (role rate)."
    if Role.OWNER in PERMISSIONS.get(action, frozenset()) and len(PERMISSIONS[action]) == 1:
        return "Only the owner of this bot can do that."
    return "Your role does not allow that: ask the bot's owner."

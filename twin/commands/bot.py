"""`twin bot` (run the Telegram bot) and `twin bot setup` (its token and owner)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from twin.logs import setup_logging

bot_app = typer.Typer(
    help="The Telegram bot: chat with your twin, train it from an export, let friends rate it.",
    invoke_without_command=True,
)


@bot_app.callback()
def bot_cmd(
    ctx: typer.Context,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging (the token stays hidden).")] = False,
) -> None:
    """Run the bot (long polling) against the daemon at [chat] url; `twin bot setup` first."""
    if ctx.invoked_subcommand is not None:
        return
    from bot.app import run
    from bot.token_store import hide_in_logs, load_token
    from twin.config import BotSettings, ChatSettings, load

    settings, chat = load(BotSettings), load(ChatSettings)
    token = load_token(settings)
    setup_logging(verbose)
    hide_in_logs(token)
    run(token, settings, chat)


@bot_app.command("setup")
def setup_cmd() -> None:
    """Check the token from @BotFather (TWIN_BOT_TOKEN, [bot] token_file, or asked for), store it 0600, print the
    owner's code."""
    from bot.onboard import setup
    from bot.token_store import ENV, load_token, token_path
    from twin.config import BotSettings, load

    settings = load(BotSettings)
    if os.environ.get(ENV) or (settings.token_file and token_path(settings).is_file()):
        token = load_token(settings)
    else:
        token = typer.prompt("Bot token from @BotFather", hide_input=True)
    result = setup(token, settings)
    print(f"token checked (bot @{result.username}) and stored in {token_path(settings)} (readable by you only)")
    if result.code:
        print(f"to become its owner, send this from your own Telegram account: /start {result.code}")
        print(f"  or open https://t.me/{result.username}?start={result.code}")
        print("then run the bot: `twin bot` (or `twin service install --bot`)")
    else:
        print(f"the bot's owner is already {result.owner}; run it with `twin bot`")

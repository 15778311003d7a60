"""The daemon banner: hidden while the daemon answers; otherwise it says why, how to start it, and retries."""

from __future__ import annotations

from textual import work
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Static

from tui.client import DaemonClient, DaemonError, DaemonUnreachable, ModelInfo

START_HINT = "Start it with `twin serve` (or `systemctl --user start twin` if you installed the service)."


class DaemonBanner(Static):
    """Checks the daemon on mount and whenever a request failed; posts Reachable with the model list when it answers."""

    DEFAULT_CSS = """
    DaemonBanner {
        width: 100%;
        height: auto;
        padding: 0 1;
        background: $error-muted;
        color: $text;
        display: none;
    }
    DaemonBanner.-shown { display: block; }
    """

    class Reachable(Message):
        def __init__(self, models: list[ModelInfo]) -> None:
            super().__init__()
            self.models = models

    def __init__(self, client: DaemonClient, retry_seconds: float, *, id: str | None = None) -> None:
        super().__init__("", markup=False, id=id)
        self.client = client
        self.retry_seconds = retry_seconds
        self.reachable: bool | None = None  # None until the first answer or failure
        self._timer: Timer | None = None

    def on_mount(self) -> None:
        self._timer = self.set_interval(self.retry_seconds, self.check, pause=True)
        self.check()

    @work(exclusive=True, group="daemon-check")
    async def check(self) -> None:
        """Ask the daemon for its models: hide and post Reachable, or show why not and keep retrying."""
        try:
            models = await self.client.models()
        except (DaemonUnreachable, DaemonError) as e:
            self.report(e)
            return
        self.reachable = True
        self.remove_class("-shown")
        if self._timer is not None:
            self._timer.pause()
        self.post_message(self.Reachable(models))

    def report(self, error: Exception) -> None:
        """A request failed: say so; retry on a timer unless retrying cannot help (a refused API key)."""
        self.reachable = False
        url = self.client.url
        if isinstance(error, DaemonError) and error.status == 401:
            self.update(
                f"⚠ The daemon at {url} refused the API key ({error}). "
                "Set TWIN_API_KEY or `api_key` under [chat] in config.toml, then start `twin chat` again."
            )
            if self._timer is not None:
                self._timer.pause()
        else:
            reason = str(error) if isinstance(error, DaemonUnreachable) else f"it answered: {error}"
            self.update(
                f"⚠ No twin daemon at {url} ({reason}). {START_HINT} "
                f"Retrying every {self.retry_seconds:g} s; what you typed is kept."
            )
            if self._timer is not None:
                self._timer.resume()
        self.add_class("-shown")

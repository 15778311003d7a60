"""The Telegram bot (`twin bot`): a client of the daemon's HTTP API, never of the trainer or llama.cpp."""

"""The bot's handlers, by concept: `access` (claim, help, allowlist), `talk`, `train`, `survey`.

Each handler checks the rules (`gate.guarded`), calls one service function and
sends what it returns.
"""

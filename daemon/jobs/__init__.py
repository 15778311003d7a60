"""OpenAI's files and fine-tuning jobs API on the daemon: uploads, a SQLite job queue, `twin build` children."""

"""Use cases: the state file, pure rules and outside clients put together; nothing here prints."""

"""tokenledger: meter every OpenRouter call per Firebase user, exactly once."""

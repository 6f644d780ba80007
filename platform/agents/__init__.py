"""Edge agents as the API sees them: who is alive, which devices each owns, commands queued for them."""

"""Words and constants every layer shares: emotions, genres, quadrants, pitch names, file suffixes."""

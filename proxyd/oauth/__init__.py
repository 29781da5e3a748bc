"""OAuth: proxyd's signing keys and the tokens it issues and verifies."""

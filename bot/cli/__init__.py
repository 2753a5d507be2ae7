"""The command-line door: `concierge …`."""

"""forklab.net.core (mirrors net/core/)."""

"""Events: the Redis stream every configuration change is published on, the per-process consumer
that applies each event to the in-memory snapshot, and the in-process bus subscriptions read."""

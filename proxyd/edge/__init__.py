"""Edge: public listeners, the Host dispatcher, per-proxy server objects, routing and forwarding."""

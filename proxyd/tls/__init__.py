"""TLS capability: HTTPS for every proxy.

- `certificate`: the Certificate record (cert:{name} in Redis), keys, PEM parsing, self-signed certs
- `sni`: the in-memory certificate store behind the HTTPS listener's SNI callback, and the
  per-connection TLS info the dispatcher uses for 421
- `challenges`: HTTP-01 and TLS-ALPN-01 responders
- `acme_client`: ACME orders with certbot's synchronous `acme` library (run in worker threads)
- `status`: order stages in cert:status:{name}, published as certificate_status events
- `manager`: certificate CRUD, orders with a Redis lock, proxy reactions, renewal loop
"""

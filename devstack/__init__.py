"""The local stack: embedded AWS (moto's server), the Chalice app and the queue worker."""

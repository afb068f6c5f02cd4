"""Around the Bento, never inside it: building the byte-stable archive, reading it, serving it on
127.0.0.1, the client that talks to it and the parity check against the offline model. Imports core and serve."""

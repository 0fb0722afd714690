"""The pickle layer: one opcode table, one closed table of globals, and the
three readers built on them (the static scanner, the decoder and the
int-list fast path). See ``ARCHITECTURE.md``."""

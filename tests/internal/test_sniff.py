"""White-box tests of safenpz._sniff that tie the test helpers' statement of a
rule to the sniffer's own table."""

from __future__ import annotations

import attacks
from safenpz._sniff import PICKLE_FIRST_BYTES


def test_the_attack_catalogue_knows_the_first_bytes_of_a_bare_pickle() -> None:
    """attacks.py expects a bare file to be scanned as a pickle exactly when
    its first byte is one of these."""
    assert attacks.PICKLE_FIRST_BYTES == PICKLE_FIRST_BYTES

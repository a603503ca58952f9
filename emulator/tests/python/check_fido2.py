"""python-fido2's CTAPHID client against the virtual key over UDP.

Usage: check_fido2.py HOST PORT. Exits non-zero (with a traceback) on the first failure.
"""

import os
import struct
import sys

from fido2.ctap import CtapError
from fido2.hid import CAPABILITY

from udp_hid import open_device

host, port = sys.argv[1], int(sys.argv[2])
dev = open_device(host, port)

# INIT happened in the constructor: a channel was allocated and the nonce checked.
assert dev._channel_id not in (0, 0xFFFFFFFF), hex(dev._channel_id)
assert dev.version == 2, dev.version
assert dev.capabilities & CAPABILITY.WINK, dev.capabilities
assert dev.capabilities & CAPABILITY.NMSG, dev.capabilities
print(f"INIT ok: channel {dev._channel_id:08x}, device version {dev.device_version}")

# PING, short and the largest message CTAPHID can carry.
assert dev.ping(b"hello") == b"hello"
big = os.urandom(7609)
assert dev.ping(big) == big
print("PING ok: 5 and 7609 bytes echoed")

dev.wink()
print("WINK ok")

# Vendor command 0x70: SELECT the OATH secrets app. Status word first, then TLVs.
select = bytes([0x00, 0xA4, 0x04, 0x00, 0x07, 0xA0, 0x00, 0x00, 0x05, 0x27, 0x21, 0x01])
resp = dev.call(0x70, select)
assert resp[:2] == b"\x90\x00", resp[:2].hex()
assert resp[2:5] == b"\x79\x03\x04", resp.hex()
print(f"vendor 0x70 SELECT ok: version {resp[4]}.{resp[5]}.{resp[6]}")

# An unknown vendor command is an INVALID_CMD error, which python-fido2 raises.
try:
    dev.call(0x7E, b"")
    raise SystemExit("vendor 0x7E should have failed")
except CtapError as e:
    assert e.code == CtapError.ERR.INVALID_COMMAND, e.code
print("unknown vendor command -> INVALID_COMMAND ok")

# A second client on its own channel is served too (a browser beside the daemon).
dev2 = open_device(host, port)
assert dev2._channel_id != dev._channel_id
assert dev2.ping(b"second") == b"second"
assert dev.ping(b"first") == b"first"
print("two channels ok")
print("FIDO2 CHECKS PASSED")

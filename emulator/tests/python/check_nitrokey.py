"""Nitrokey's Python SDK (package `nitrokey`, the code behind `nitropy nk3 secrets`) against
the virtual key over UDP: register, list, calculate and delete credentials.

Usage: check_nitrokey.py HOST PORT. Codes are checked against pyotp, an independent TOTP/HOTP
implementation. Exits non-zero on the first failure.
"""

import base64
import sys

import pyotp
from nitrokey.nk3 import NK3
from nitrokey.nk3.secrets_app import Algorithm, Kind, SecretsApp, SecretsAppException
from nitrokey.trussed._connection.ctaphid import CtapHidConnection

from udp_hid import VIRTUAL_PID, VIRTUAL_VID, open_device


class VirtualNK3(NK3):
    """The SDK's Nitrokey 3 class, accepting the virtual key's own USB ID."""

    @property
    def vid(self) -> int:
        return VIRTUAL_VID

    @property
    def pid(self) -> int:
        return VIRTUAL_PID


host, port = sys.argv[1], int(sys.argv[2])
device = VirtualNK3(CtapHidConnection(open_device(host, port)))  # runs admin STATUS
app = SecretsApp(device, logfn=lambda _msg: None)

status = app.select()
assert status.version_str() == "4.13.0", status.version_str()
assert status.serial_number is not None and len(status.serial_number) == 4
assert app.feature_extended_list()
print(f"SELECT ok: {status.version_str()}, serial {status.serial_number.hex()}")

secret = bytes(range(1, 21))
b32 = base64.b32encode(secret).decode()

# TOTP, SHA-1, 6 digits.
app.register(b"0012345:alice@contoso.com", secret, digits=6, kind=Kind.Totp, algo=Algorithm.Sha1)
# TOTP, SHA-256, 8 digits, touch required (the virtual key approves touches by default).
app.register(
    b"60/0012346:bob@contoso.com",
    secret,
    digits=8,
    kind=Kind.Totp,
    algo=Algorithm.Sha256,
    touch_button_required=True,
)
# HOTP with an initial counter.
app.register(b"hotp:carol", secret, digits=6, kind=Kind.Hotp, algo=Algorithm.Sha1,
             initial_counter_value=5)

items = {item.label: item for item in app.list_with_properties()}
assert set(items) == {b"0012345:alice@contoso.com", b"60/0012346:bob@contoso.com", b"hotp:carol"}, items
assert items[b"0012345:alice@contoso.com"].kind == Kind.Totp
assert items[b"60/0012346:bob@contoso.com"].properties.touch_required
assert not items[b"0012345:alice@contoso.com"].properties.touch_required
assert items[b"hotp:carol"].kind == Kind.Hotp
assert sorted(app.list()) == sorted(items), app.list()
print(f"LIST ok: {len(items)} credentials with properties")

for t in (59, 1111111109, 1234567890, 2000000000):
    code = app.calculate(b"0012345:alice@contoso.com", t // 30).decode()
    expected = pyotp.TOTP(b32, digits=6, interval=30).at(t)
    assert code == expected, (t, code, expected)
    code = app.calculate(b"60/0012346:bob@contoso.com", t // 60).decode()
    expected = pyotp.TOTP(b32, digits=8, interval=60, digest="sha256").at(t)
    assert code == expected, (t, code, expected)
hotp = pyotp.HOTP(b32, digits=6)
for counter in (5, 6, 7):
    code = app.calculate(b"hotp:carol").decode()
    assert code == hotp.at(counter), (counter, code, hotp.at(counter))
print("CALCULATE ok: TOTP SHA-1/SHA-256 and HOTP codes match pyotp")

# A duplicate name is refused with 69 83, as on a Nitrokey 3.
try:
    app.register(b"hotp:carol", secret, kind=Kind.Hotp)
    raise SystemExit("duplicate register should fail")
except SecretsAppException as e:
    assert e.code == "6983", e.code

app.delete(b"hotp:carol")
assert b"hotp:carol" not in app.list()
try:
    app.delete(b"hotp:carol")
    raise SystemExit("deleting a missing credential should fail")
except SecretsAppException as e:
    assert e.code == "6a82", e.code
print("DELETE ok")

# PIN: set, verify, a PIN-encrypted credential hidden until the PIN is verified.
app.set_pin_raw("123456")
assert app.select().pin_attempt_counter == 8
app.verify_pin_raw("123456")
app.register(b"secret:dave", secret, kind=Kind.Totp, pin_based_encryption=True)
assert b"secret:dave" not in app.list()
app.verify_pin_raw("123456")
listed = {i.label: i for i in app.list_with_properties()}
assert listed[b"secret:dave"].properties.secret_encryption
try:
    app.verify_pin_raw("000000")
    raise SystemExit("a wrong PIN should fail")
except SecretsAppException as e:
    assert e.code == "6300", e.code
assert app.select().pin_attempt_counter == 7
print("PIN ok: set, verify, PIN-encrypted credential, wrong PIN counted")

# Device settings through the admin app: the vendor tool's Mode and Key Press.
assert device.admin.get_config("otp.key_press") == "false"
device.admin.set_config("otp.key_press", "true")
assert device.admin.get_config("otp.key_press") == "true"
names = [f.name for f in device.admin.list_available_fields()]
assert names == ["mode.keyboard", "mode.u2f", "otp.key_press"], names
print("admin config ok")

app.reset()
assert app.list() == []
assert app.select().pin_attempt_counter is None
print("RESET ok")
print("NITROKEY SDK CHECKS PASSED")

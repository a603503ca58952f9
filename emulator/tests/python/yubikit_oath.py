"""Drives the virtual smart card (yubikey profile) through pcscd with Yubico's own library.

Usage: yubikit_oath.py READER SERIAL

yubikit (yubikey-manager) talks to the card exactly as it talks to a YubiKey in an external
reader: OathSession for the OATH app, ManagementSession for the device config. Every code is
checked against oathtool (an implementation that is neither the card's nor yubikit's).
Prints "TOUCH-NEXT" before a request that waits for the button (the test presses it when the
emulator reports the wait), and "YUBIKIT CHECKS PASSED" at the end.
"""

import base64
import subprocess
import sys
import time

from ykman.pcsc import list_devices
from yubikit.core.smartcard import ApduError, SmartCardConnection
from yubikit.management import CAPABILITY, TRANSPORT, DeviceConfig, ManagementSession
from yubikit.oath import HASH_ALGORITHM, OATH_TYPE, CredentialData, OathSession

READER, SERIAL = sys.argv[1], int(sys.argv[2], 16)
TS = 1_111_111_109  # an RFC 6238 test time


def step(text):
    print(f"OK {text}", flush=True)


def oathtool(secret, *args):
    b32 = base64.b32encode(secret).decode()
    out = subprocess.run(
        ["oathtool", "-b", *args, b32], check=True, capture_output=True, text=True
    )
    return out.stdout.strip()


def totp_ref(cred, ts):
    alg = cred.hash_algorithm.name.lower().replace("sha", "sha")
    return oathtool(
        cred.secret,
        "--totp=" + alg,
        "-d", str(cred.digits),
        "-s", f"{cred.period}s",
        "-N", f"@{ts}",
    )


def hotp_ref(cred, counter):
    return oathtool(cred.secret, "--hotp", "-d", str(cred.digits), "-c", str(counter))


def connect():
    """The card, once pcscd has seen it (its presence polling takes a moment)."""
    deadline = time.time() + 20
    while True:
        try:
            devices = list_devices(READER)
            if devices:
                return devices[0].open_connection(SmartCardConnection)
        except Exception as e:  # not there yet
            last = e
        if time.time() > deadline:
            raise SystemExit(f"no card in {READER!r}: {last!r}")
        time.sleep(0.2)


last = None
conn = connect()
session = OathSession(conn)
assert tuple(session.version) == (5, 4, 3), session.version
assert not session.locked
step(f"SELECT: version {session.version}, device id {session.device_id}")

creds = [
    CredentialData("alice@example.com", OATH_TYPE.TOTP, HASH_ALGORITHM.SHA1,
                   b"12345678901234567890", issuer="Example"),
    CredentialData("bob", OATH_TYPE.TOTP, HASH_ALGORITHM.SHA256,
                   b"12345678901234567890123456789012", digits=8, period=60, issuer="Sixty"),
    CredentialData("carol", OATH_TYPE.HOTP, HASH_ALGORITHM.SHA1, b"12345678901234567890"),
    # 100 bytes: longer than SHA-256's block, so yubikit hashes it before PUT.
    CredentialData("dave", OATH_TYPE.TOTP, HASH_ALGORITHM.SHA256, bytes(range(100)),
                   issuer="Long"),
    CredentialData("eve", OATH_TYPE.TOTP, HASH_ALGORITHM.SHA512, b"short"),
]
touch = CredentialData("trudy", OATH_TYPE.TOTP, HASH_ALGORITHM.SHA1, b"touchtouchtouch1",
                       issuer="Touch")
stored = {c.get_id(): session.put_credential(c) for c in creds}
stored[touch.get_id()] = session.put_credential(touch, touch_required=True)
step("PUT: 6 credentials, one with the 78 02 touch property")

listed = {c.id for c in session.list_credentials()}
assert listed == set(stored), listed
step(f"LIST: {sorted(i.decode() for i in listed)}")

for data in creds:
    cred = stored[data.get_id()]
    if data.oath_type == OATH_TYPE.TOTP:
        for ts in (59, TS, TS + 3600):
            got = session.calculate_code(cred, ts).value
            want = totp_ref(data, ts)
            assert got == want, (data.name, ts, got, want)
    else:
        for counter in (0, 1, 2):
            got = session.calculate_code(cred).value
            want = hotp_ref(data, counter)
            assert got == want, (data.name, counter, got, want)
step("CALCULATE: TOTP SHA-1/256/512, 6 and 8 digits, 30 and 60 s, and HOTP = oathtool")

codes = session.calculate_all(TS)
by_id = {c.id: (c, code) for c, code in codes.items()}
for data in creds:
    cred, code = by_id[data.get_id()]
    if data.oath_type == OATH_TYPE.HOTP:
        assert code is None and cred.oath_type == OATH_TYPE.HOTP, (cred, code)
    else:
        assert code is not None and code.value == totp_ref(data, TS), (data.name, code)
tcred, tcode = by_id[touch.get_id()]
assert tcred.touch_required and tcode is None, (tcred, tcode)
step("CALCULATE ALL: codes = oathtool; 7C for the touch credential, 77 for HOTP")

print("TOUCH-NEXT", flush=True)
got = session.calculate_code(stored[touch.get_id()], TS).value
assert got == totp_ref(touch, TS), got
step("CALCULATE with touch: held until the button was pressed, code = oathtool")

new_id = session.rename_credential(stored[creds[0].get_id()].id, "alice2", "Renamed")
assert new_id == b"Renamed:alice2", new_id
ids = {c.id for c in session.list_credentials()}
assert new_id in ids and creds[0].get_id() not in ids, ids
renamed = next(c for c in session.list_credentials() if c.id == new_id)
assert session.calculate_code(renamed, TS).value == totp_ref(creds[0], TS)
step("RENAME: listed and computed under the new name")

session.delete_credential(new_id)
assert new_id not in {c.id for c in session.list_credentials()}
step("DELETE")

many = [
    CredentialData(f"user{i:02}.with.a.rather.long.name@example.com", OATH_TYPE.TOTP,
                   HASH_ALGORITHM.SHA1, b"12345678901234567890", issuer="Chained")
    for i in range(20)
]
for data in many:
    session.put_credential(data)
listed = session.list_credentials()
assert len(listed) == 5 + 20, len(listed)
all_codes = session.calculate_all(TS)
assert len(all_codes) == 25
assert all(
    code.value == totp_ref(many[0], TS)
    for cred, code in all_codes.items() if cred.issuer == "Chained"
)
for data in many:
    session.delete_credential(data.get_id())
step("chaining: LIST and CALCULATE ALL of 25 credentials through 61xx / SEND REMAINING")

key = session.derive_key("correct horse")
session.set_key(key)
session = OathSession(conn)
assert session.locked and session.has_key
try:
    session.list_credentials()
    raise AssertionError("LIST worked while locked")
except ApduError as e:
    assert e.sw == 0x6982, hex(e.sw)
try:
    session.validate(session.derive_key("wrong horse"))
    raise AssertionError("a wrong key validated")
except ApduError as e:
    assert e.sw == 0x6A80, hex(e.sw)
session.validate(key)
assert len(session.list_credentials()) == 5
step("access code: set, locked (6982), wrong key (6A80), validated (mutual HMAC)")
session.unset_key()
session = OathSession(conn)
assert not session.locked and not session.has_key
step("access code: removed")

mgmt = ManagementSession(conn)
info = mgmt.read_device_info()
assert info.serial == SERIAL, (info.serial, SERIAL)
assert tuple(info.version) == (5, 4, 3)
usb = info.supported_capabilities[TRANSPORT.USB]
assert CAPABILITY.OTP in usb and CAPABILITY.U2F in usb and CAPABILITY.OATH in usb, usb
enabled = info.config.enabled_capabilities[TRANSPORT.USB]
assert CAPABILITY.OTP in enabled and CAPABILITY.U2F in enabled, enabled
step(f"Management: serial {info.serial}, form factor {info.form_factor}, USB {usb!s}")

mgmt.write_device_config(
    DeviceConfig({TRANSPORT.USB: enabled & ~CAPABILITY.OTP & ~CAPABILITY.U2F})
)
enabled2 = mgmt.read_device_info().config.enabled_capabilities[TRANSPORT.USB]
assert CAPABILITY.OTP not in enabled2 and CAPABILITY.U2F not in enabled2, enabled2
assert CAPABILITY.OATH in enabled2
mgmt.write_device_config(DeviceConfig({TRANSPORT.USB: enabled}))
assert mgmt.read_device_info().config.enabled_capabilities[TRANSPORT.USB] == enabled
step("Management: USB applications OTP (keyboard) and U2F off and on again")

# Leave one credential for ykman's CLI, which the test runs next.
session = OathSession(conn)
session.reset()
assert session.list_credentials() == []
session.put_credential(creds[0])
step("RESET: empty, new device id")
conn.close()
print("YUBIKIT CHECKS PASSED", flush=True)

"""Another application on the same smart card as oathkeyd, through the same pcscd.

Usage:
  pcsc_peer.py hold READER        connect EXCLUSIVELY (as gpg's scdaemon does by default), print
                                  "HELD", keep the card until a line arrives on stdin, then let
                                  go and print "RELEASED"
  pcsc_peer.py churn READER N     N rounds of a shared client that does its own work between
                                  oathkeyd's: each round a transaction that selects another
                                  applet (Management) and reads from it; prints "CHURNED N"
  pcsc_peer.py code READER NAME T the code of credential NAME at unix time T, computed by the
                                  card through Yubico's yubikit (OathSession)
  pcsc_peer.py put READER NAME B32 a TOTP credential (SHA-1, 6 digits, 30 s) put by yubikit

The PC/SC socket comes from PCSCLITE_CSOCK_NAME, as for every libpcsclite client.
"""

import base64
import sys
import time

from smartcard.scard import (
    SCARD_LEAVE_CARD,
    SCARD_PROTOCOL_T0,
    SCARD_PROTOCOL_T1,
    SCARD_S_SUCCESS,
    SCARD_SCOPE_USER,
    SCARD_SHARE_EXCLUSIVE,
    SCARD_SHARE_SHARED,
    SCardBeginTransaction,
    SCardConnect,
    SCardDisconnect,
    SCardEndTransaction,
    SCardEstablishContext,
    SCardGetErrorMessage,
    SCardTransmit,
)

PROTOCOLS = SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1
# The Management applet (a YubiKey's, and the virtual card's yubikey profile).
SELECT_MGMT = [0x00, 0xA4, 0x04, 0x00, 0x08, 0xA0, 0x00, 0x00, 0x05, 0x27, 0x47, 0x11, 0x17]
READ_CONFIG = [0x00, 0x1D, 0x00, 0x00, 0x00]


def check(rv, what):
    if rv != SCARD_S_SUCCESS:
        raise SystemExit(f"{what}: {SCardGetErrorMessage(rv)}")


def connect(reader, mode):
    rv, ctx = SCardEstablishContext(SCARD_SCOPE_USER)
    check(rv, "establish")
    deadline = time.time() + 20
    while True:
        rv, card, proto = SCardConnect(ctx, reader, mode, PROTOCOLS)
        if rv == SCARD_S_SUCCESS:
            return ctx, card, proto
        if time.time() > deadline:
            check(rv, "connect")
        time.sleep(0.05)


def hold(reader):
    _, card, _ = connect(reader, SCARD_SHARE_EXCLUSIVE)
    print("HELD", flush=True)
    sys.stdin.readline()
    check(SCardDisconnect(card, SCARD_LEAVE_CARD), "disconnect")
    print("RELEASED", flush=True)


def churn(reader, rounds):
    _, card, proto = connect(reader, SCARD_SHARE_SHARED)
    for _ in range(rounds):
        check(SCardBeginTransaction(card), "begin")
        rv, answer = SCardTransmit(card, proto, SELECT_MGMT)
        check(rv, "select")
        assert answer[-2:] == [0x90, 0x00], f"select management: {answer}"
        rv, answer = SCardTransmit(card, proto, READ_CONFIG)
        check(rv, "read config")
        assert answer[-2:] == [0x90, 0x00], f"read config: {answer}"
        check(SCardEndTransaction(card, SCARD_LEAVE_CARD), "end")
    check(SCardDisconnect(card, SCARD_LEAVE_CARD), "disconnect")
    print(f"CHURNED {rounds}", flush=True)


def oath(reader):
    from ykman.pcsc import list_devices
    from yubikit.core.smartcard import SmartCardConnection
    from yubikit.oath import OathSession

    deadline = time.time() + 20
    while True:
        devices = list_devices(reader)
        if devices:
            try:
                conn = devices[0].open_connection(SmartCardConnection)
                return OathSession(conn)
            except Exception:
                if time.time() > deadline:
                    raise
        time.sleep(0.1)


def code(reader, name, at):
    session = oath(reader)
    for cred in session.list_credentials():
        if cred.id.decode() == name:
            print(session.calculate_code(cred, int(at)).value, flush=True)
            return
    raise SystemExit(f"no credential {name!r}")


def put(reader, name, b32):
    from yubikit.oath import HASH_ALGORITHM, OATH_TYPE, CredentialData

    session = oath(reader)
    issuer, _, account = name.rpartition(":")
    data = CredentialData(
        name=account,
        oath_type=OATH_TYPE.TOTP,
        hash_algorithm=HASH_ALGORITHM.SHA1,
        secret=base64.b32decode(b32),
        digits=6,
        period=30,
        issuer=issuer or None,
    )
    session.put_credential(data)
    print("PUT", flush=True)


if __name__ == "__main__":
    command, reader, *rest = sys.argv[1:]
    {"hold": hold, "churn": churn, "code": code, "put": put}[command](
        reader, *([int(rest[0])] if command == "churn" else rest)
    )

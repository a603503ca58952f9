"""A python-fido2 HID connection over UDP, for oathkey's virtual key.

`oathkey-emulator serve --udp HOST:PORT` takes one 64-byte report per datagram (no report-ID
byte) and answers to the sender; this class gives python-fido2's CtapHidDevice exactly that.
"""

import socket

from fido2.hid import CtapHidDevice
from fido2.hid.base import CtapHidConnection, HidDescriptor

VIRTUAL_VID = 0x1209
VIRTUAL_PID = 0x0001


class UdpConnection(CtapHidConnection):
    def __init__(self, host: str, port: int, timeout: float = 20.0):
        self.addr = (host, port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(timeout)

    def write_packet(self, data: bytes) -> None:
        assert len(data) == 64, len(data)
        self.sock.sendto(data, self.addr)

    def read_packet(self) -> bytes:
        data, _ = self.sock.recvfrom(2048)
        return data

    def close(self) -> None:
        self.sock.close()


def open_device(host: str, port: int) -> CtapHidDevice:
    descriptor = HidDescriptor(
        path=f"udp://{host}:{port}",
        vid=VIRTUAL_VID,
        pid=VIRTUAL_PID,
        report_size_in=64,
        report_size_out=64,
        product_name="oathkey virtual key",
        serial_number=None,
    )
    return CtapHidDevice(descriptor, UdpConnection(host, port))

"""Send ICMP echo requests out of one port of the peer's bridge, past the bridge's forwarding.

Run inside the bench namespace: rawsend.py <ifname> <dst_mac> <src_ip> <dst_ip> <count>. The
frames leave through <ifname> (a tap: they reach the guest's NIC behind it) from the bridge's
MAC and <src_ip>, 10 ms apart, so that a test can put frames on a slave the bridge would not
choose, such as the standby while the primary is active.
"""

import socket
import struct
import sys
import time
from pathlib import Path

from vlanpeer import csum


def echo_request(dst, src, src_ip, dst_ip, seq):
    icmp = bytearray(struct.pack("!BBHHH", 8, 0, 0, 0x4e46, seq) + b"nfr-rawsend".ljust(48, b"."))
    icmp[2:4] = struct.pack("!H", csum(bytes(icmp)))
    iph = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), seq, 0, 64, 1, 0,
                                src_ip, dst_ip))
    iph[10:12] = struct.pack("!H", csum(bytes(iph)))
    return dst + src + struct.pack("!H", 0x0800) + bytes(iph) + bytes(icmp)


def main():
    ifname, dst, src_ip, dst_ip, count = sys.argv[1:6]
    dst = bytes.fromhex(dst.replace(":", ""))
    br = Path(f"/sys/class/net/{ifname}/master/address").read_text().strip()
    src = bytes.fromhex(br.replace(":", ""))
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((ifname, 0))
    for seq in range(int(count)):
        s.send(echo_request(dst, src, socket.inet_aton(src_ip), socket.inet_aton(dst_ip), seq))
        time.sleep(0.01)


if __name__ == "__main__":
    main()

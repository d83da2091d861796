"""A VLAN peer on a bridge: answers ARP and ICMP echo for one IPv4 address on one VLAN id.

Run inside the bench namespace: vlanpeer.py <bridge> <vid> <ipv4>. Frames arrive with the
802.1Q tag moved to metadata (PACKET_AUXDATA); replies go out tagged, from the bridge's MAC.
"""

import socket
import struct
import sys

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_AUXDATA = 8
TP_STATUS_VLAN_VALID = 0x10


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def answer(etype, payload, src, mac, ip, tag):
    """The tagged reply frame to an untagged-by-now `payload` of `etype` from `src`: an ARP
    reply for `ip`, or an ICMP echo reply from it; None for anything else."""
    if etype == 0x0806 and len(payload) >= 28:
        op = struct.unpack("!H", payload[6:8])[0]
        if op == 1 and payload[24:28] == ip:
            # Our addresses as sender, the requester's (hardware and protocol) as target: a
            # full 28-byte ARP body. A virtio NIC hands a frame to the guest as it is,
            # unpadded, and the guest drops a shorter ARP as truncated.
            arp = payload[:6] + struct.pack("!H", 2) + mac + ip + payload[8:18]
            return src + mac + tag + struct.pack("!H", 0x0806) + arp
    elif etype == 0x0800 and len(payload) >= 20 and payload[16:20] == ip and payload[9] == 1:
        ihl = (payload[0] & 0xF) * 4
        tot = struct.unpack("!H", payload[2:4])[0]
        icmp = bytearray(payload[ihl:tot])
        if len(icmp) < 8 or icmp[0] != 8:
            return None
        icmp[0] = 0
        icmp[2:4] = b"\0\0"
        icmp[2:4] = struct.pack("!H", csum(bytes(icmp)))
        iph = bytearray(payload[:ihl])
        iph[12:16], iph[16:20] = payload[16:20], payload[12:16]
        iph[8] = 64
        iph[10:12] = b"\0\0"
        iph[10:12] = struct.pack("!H", csum(bytes(iph)))
        return src + mac + tag + struct.pack("!H", 0x0800) + bytes(iph) + bytes(icmp)
    return None


def main():
    ifname, vid, ip = sys.argv[1], int(sys.argv[2]), socket.inet_aton(sys.argv[3])
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((ifname, 0))
    s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    mac = s.getsockname()[4][:6]
    print("ready", flush=True)
    tag = struct.pack("!HH", 0x8100, vid & 0xFFF)
    while True:
        data, anc, _, addr = s.recvmsg(65536, socket.CMSG_SPACE(20))
        if addr[2] == socket.PACKET_OUTGOING or len(data) < 14:
            continue
        tci = None
        for level, typ, val in anc:
            if level == SOL_PACKET and typ == PACKET_AUXDATA and len(val) >= 16:
                status, _, _, _, _, vtci = struct.unpack("IIIHHH", val[:18])
                if status & TP_STATUS_VLAN_VALID:
                    tci = vtci
        etype = struct.unpack("!H", data[12:14])[0]
        payload = data[14:]
        if tci is None and etype == 0x8100:  # tag still in-band
            tci, etype = struct.unpack("!HH", data[14:18])
            payload = data[18:]
        if tci is None or (tci & 0xFFF) != vid:
            continue
        reply = answer(etype, payload, data[6:12], mac, ip, tag)
        if reply:
            s.send(reply)


if __name__ == "__main__":
    main()

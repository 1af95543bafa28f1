#!/usr/bin/env python3
"""elpkt - tiny sender/receiver of electrode-lab frames for the bpf tests.

Runs INSIDE a lab namespace (nsenter --net=/run/netns/<ns>); it only ever
sends to addresses of that lab. Output: one JSON object per line.

  elpkt.py raw     --ifname IF --src MAC,IP,PORT --dst MAC,IP,PORT [header fields] [--count N]
                   [--truncate N]  cut the frame (IP/UDP lengths then lie: a bridge with
                                   br_netfilter drops it, the sender's TC hook still sees it)
                   [--short N]     el_hdr+payload cut to N bytes, IP/UDP lengths consistent
                   [--udp-len-extra N] UDP length field N bytes larger than the datagram
                   [--bad-magic] [--udp-csum zero|ok|bad]
                   [--more-fragments] IP MF set: a first fragment whose rest never comes
                   [--ip-options]  a 4-byte IP option (NOPs): XDP's fast parse skips such frames
                   [--split-fragments] the datagram as two IP fragments that reassemble (the
                                   el_hdr in the second): XDP sees no header, the socket does
      builds the whole frame (checksums computed here) and sends it with an
      AF_PACKET socket: it goes through the TC egress hook of IF.
  elpkt.py udp     --src IP,PORT --dst IP,PORT [header fields] [--count N]
      sends through a normal UDP socket (the kernel builds the skb, e.g.
      CHECKSUM_PARTIAL with tx offload on).
  elpkt.py capture --ifname IF --port P --until-opnum N [--timeout S]
      AF_PACKET capture of incoming UDP frames to port P; prints each frame
      parsed (el_hdr fields, ip_csum ok/bad, udp_csum ok/partial/none/bad),
      stops after the frame whose opnum is N (the test's sentinel) or at the
      timeout. Prints {"ready":true} once the socket is bound.
  elpkt.py recv    --bind IP,PORT --until-opnum N [--timeout S]
      what user space sees on a UDP socket, same output, same stop rule.

header fields: --type T --flags F --replica R --view V --opnum N --commit C --aux A --payload-len L
  --valid-entry: the L payload bytes are ONE well-formed put entry (L >= 23) instead of a
                 pattern, so the fast reply acknowledges it (it refuses entries the replica would)
"""
import argparse
import json
import select
import socket
import struct
import sys
import time

EL_MAGIC = 0x42414C45
EL_HDR = struct.Struct('<IBBBBQQQQQII')  # 56 bytes, el_proto.h struct el_hdr
ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b'\0'
    s = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s  # folded, NOT inverted


def mac_bytes(m: str) -> bytes:
    return bytes(int(x, 16) for x in m.split(':'))


def el_header(a, payload_len=None) -> bytes:
    pl = a.payload_len if payload_len is None else payload_len
    magic = 0xDEADBEEF if getattr(a, 'bad_magic', False) else EL_MAGIC
    return EL_HDR.pack(magic, 1, a.type, a.flags, a.replica, a.view, a.opnum, a.commit, 0, 0, pl, a.aux)


def payload(a, opnum) -> bytes:
    n = a.payload_len
    if not a.valid_entry:
        return bytes((i * 7) & 0xFF for i in range(n))
    if n < 23 or n > 18 + 4 + 8 + 1024:
        raise SystemExit('--valid-entry needs --payload-len 23..1054')
    kl = min(8, n - 22)
    vl = n - 22 - kl
    # client 1, request opnum (never 0), then a put of kl key bytes and vl value bytes
    return struct.pack('<QQHBBH', 1, opnum or 1, n - 18, 1, kl, vl) + b'k' * kl + b'v' * vl


def build_frame(a, opnum, dst) -> bytes:
    smac, sip, sport = a.src.split(',')
    dmac, dip, dport = dst.split(',')
    a.opnum = opnum
    body = el_header(a) + payload(a, opnum)
    if a.short:
        body = body[: a.short]  # a short el_hdr inside consistent IP/UDP lengths
    udp_len = 8 + len(body)
    src, dst = socket.inet_aton(sip), socket.inet_aton(dip)
    pseudo = src + dst + struct.pack('!BBH', 0, 17, udp_len)
    udp = struct.pack('!HHHH', int(sport), int(dport), udp_len + a.udp_len_extra, 0) + body
    c = 0xFFFF - csum(pseudo + udp)
    if a.udp_csum == 'zero':
        c = 0
    elif a.udp_csum == 'bad':
        c ^= 0x5555
    elif c == 0:
        c = 0xFFFF
    udp = udp[:6] + struct.pack('!H', c) + udp[8:]
    opts = b'\x01\x01\x01\x00' if a.ip_options else b''
    eth = mac_bytes(dmac) + mac_bytes(smac) + struct.pack('!H', ETH_P_IP)

    def ip_hdr(total, frag_word):
        h = struct.pack('!BBHHHBBH4s4s', 0x45 + len(opts) // 4, 0, total, 1, frag_word, 64, 17, 0, src, dst) + opts
        return h[:10] + struct.pack('!H', 0xFFFF - csum(h)) + h[12:]

    if a.split_fragments:
        # 16 bytes of UDP (its header + 8 bytes) in the first, the rest at offset 2 (x 8 bytes)
        first, rest = udp[:16], udp[16:]
        return [eth + ip_hdr(20 + len(opts) + len(first), 0x2000) + first,
                eth + ip_hdr(20 + len(opts) + len(rest), 2) + rest]
    # DF, or MF for a first fragment (offset 0) whose datagram never completes
    frame = eth + ip_hdr(20 + len(opts) + udp_len, 0x2000 if a.more_fragments else 0x4000) + udp
    if a.truncate:
        frame = frame[: a.truncate]
    return [frame]


def parse_frame(frame: bytes):
    out = {'len': len(frame)}
    if len(frame) < 42 or struct.unpack('!H', frame[12:14])[0] != ETH_P_IP:
        return None
    ip = frame[14:34]
    if ip[9] != 17:
        return None
    out['dst_mac'] = ':'.join('%02x' % b for b in frame[0:6])
    out['src_mac'] = ':'.join('%02x' % b for b in frame[6:12])
    out['src_ip'] = socket.inet_ntoa(ip[12:16])
    out['dst_ip'] = socket.inet_ntoa(ip[16:20])
    out['ip_csum'] = 'ok' if csum(ip) == 0xFFFF else 'bad'
    sport, dport, ulen, ucheck = struct.unpack('!HHHH', frame[34:42])
    out.update(sport=sport, dport=dport, udp_len=ulen)
    udp = frame[34 : 34 + ulen]
    pseudo = ip[12:16] + ip[16:20] + struct.pack('!BBH', 0, 17, ulen)
    if ucheck == 0:
        out['udp_csum'] = 'none'
    elif len(udp) == ulen and csum(pseudo + udp) == 0xFFFF:
        out['udp_csum'] = 'ok'
    elif ucheck == csum(pseudo):
        # CHECKSUM_PARTIAL left for the NIC: the field holds the pseudo-header sum
        out['udp_csum'] = 'partial'
    else:
        out['udp_csum'] = 'bad'
    out.update(parse_el(frame[42:]))
    return out


def parse_el(payload: bytes):
    if len(payload) < EL_HDR.size:
        return {'el': None}
    magic, ver, typ, flags, rep, view, opnum, commit, cid, rid, plen, aux = EL_HDR.unpack(payload[: EL_HDR.size])
    return {'el': magic == EL_MAGIC, 'type': typ, 'flags': flags, 'replica': rep, 'view': view, 'opnum': opnum,
            'commit': commit, 'payload_len': plen, 'aux': aux, 'body_len': len(payload) - EL_HDR.size}


def emit(obj):
    sys.stdout.write(json.dumps(obj) + '\n')
    sys.stdout.flush()


def opnums(a):
    return range(a.opnum, a.opnum + a.count)


def cmd_raw(a):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((a.ifname, 0))
    for n in opnums(a):
        for d in a.dst:
            for frame in build_frame(a, n, d):
                s.send(frame)
    emit({'sent': a.count * len(a.dst)})


def cmd_udp(a):
    sip, sport = a.src.split(',')
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((sip, int(sport)))
    for n in opnums(a):
        a.opnum = n
        for d in a.dst:
            dip, dport = d.split(',')
            s.sendto(el_header(a) + (payload(a, n) if a.valid_entry else bytes(a.payload_len)), (dip, int(dport)))
    emit({'sent': a.count * len(a.dst)})


def loop(recv_one, a):
    deadline = time.monotonic() + a.timeout
    emit({'ready': True})
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            emit({'timeout': True})
            return 1
        got = recv_one(left)
        if got is None:
            continue
        emit(got)
        if got.get('opnum') == a.until_opnum:
            emit({'done': True})
            return 0


def cmd_capture(a):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((a.ifname, 0))

    def one(left):
        r, _, _ = select.select([s], [], [], left)
        if not r:
            return None
        frame, addr = s.recvfrom(65535)
        if addr[2] == socket.PACKET_OUTGOING:
            return None
        p = parse_frame(frame)
        if not p or p['dport'] != a.port:
            return None
        return p

    return loop(one, a)


def cmd_recv(a):
    ip, port = a.bind.split(',')
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((ip, int(port)))

    def one(left):
        r, _, _ = select.select([s], [], [], left)
        if not r:
            return None
        data, addr = s.recvfrom(65535)
        p = parse_el(data)
        p['from'] = '%s:%d' % addr
        return p

    return loop(one, a)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('cmd', choices=['raw', 'udp', 'capture', 'recv'])
    ap.add_argument('--ifname')
    ap.add_argument('--src')
    ap.add_argument('--dst', action='append', help='repeatable: each frame goes to every --dst in order')
    ap.add_argument('--bind')
    ap.add_argument('--port', type=int)
    ap.add_argument('--type', type=int, default=3)
    ap.add_argument('--flags', type=int, default=0)
    ap.add_argument('--replica', type=int, default=0)
    ap.add_argument('--view', type=int, default=0)
    ap.add_argument('--opnum', type=int, default=1)
    ap.add_argument('--commit', type=int, default=0)
    ap.add_argument('--aux', type=int, default=1)
    ap.add_argument('--payload-len', type=int, default=0)
    ap.add_argument('--count', type=int, default=1)
    ap.add_argument('--valid-entry', action='store_true')
    ap.add_argument('--truncate', type=int, default=0)
    ap.add_argument('--bad-magic', action='store_true')
    ap.add_argument('--more-fragments', action='store_true')
    ap.add_argument('--ip-options', action='store_true')
    ap.add_argument('--split-fragments', action='store_true')
    ap.add_argument('--short', type=int, default=0)
    ap.add_argument('--udp-len-extra', type=int, default=0)
    ap.add_argument('--udp-csum', choices=['ok', 'zero', 'bad'], default='ok')
    ap.add_argument('--until-opnum', type=int, default=-1)
    ap.add_argument('--timeout', type=float, default=10.0)
    a = ap.parse_args()
    return {'raw': cmd_raw, 'udp': cmd_udp, 'capture': cmd_capture, 'recv': cmd_recv}[a.cmd](a) or 0


if __name__ == '__main__':
    sys.exit(main())

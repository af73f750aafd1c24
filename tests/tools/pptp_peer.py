#!/usr/bin/python3
"""PPP ends for the PPTP cluster test (no kernel PPP needed).

  pptp_peer.py [PPPD-ARGS...]
      stands in for pppd under pptpd (pptpd --ppp): puts its terminal (the
      pty pptpctrl gives it) in raw mode, sends one frame of its own (pptpctrl
      tunnels nothing from the client before its pppd has spoken), then sends
      every byte back, so each PPP frame the client tunnels in GRE comes back
      in GRE.
  pptp_peer.py client SERVER TRIGGER COUNT SECONDS
      runs pptp (pptp-linux) towards SERVER with --nolaunchpppd, speaking
      asynchronous HDLC on its stdin/stdout: once the file TRIGGER exists,
      sends COUNT numbered frames (one every 100 ms) and counts those that
      come back.  Prints "call=up|down sent=N echoed=N".
"""
import os, select, socket, subprocess, sys, termios, time, tty

def fcs16(data):
    fcs = 0xFFFF
    for b in data:
        fcs ^= b
        for _ in range(8):
            fcs = (fcs >> 1) ^ 0x8408 if fcs & 1 else fcs >> 1
    return fcs

def frame(payload):
    body = b"\xff\x03\x00\x21" + payload
    f = fcs16(body) ^ 0xFFFF
    body += bytes([f & 0xFF, f >> 8])
    out = bytearray(b"\x7e")
    for b in body:
        if b < 0x20 or b in (0x7D, 0x7E):
            out += bytes([0x7D, b ^ 0x20])
        else:
            out.append(b)
    out.append(0x7E)
    return bytes(out)

def unframe(buf):
    """split buf at flags; return (complete frames' bodies, rest)"""
    frames = []
    while True:
        i = buf.find(b"\x7e")
        if i < 0:
            return frames, buf
        j = buf.find(b"\x7e", i + 1)
        if j < 0:
            return frames, buf[i:]
        raw, buf = buf[i + 1:j], buf[j:]
        if not raw:
            continue
        body, esc = bytearray(), False
        for b in raw:
            if esc:
                body.append(b ^ 0x20); esc = False
            elif b == 0x7D:
                esc = True
            else:
                body.append(b)
        frames.append(bytes(body))

def echo():
    try:
        tty.setraw(0, termios.TCSANOW)       # keep what already arrived
    except Exception:
        pass
    # pptpctrl reads GRE only once its pppd has spoken: say hello first
    os.write(1, frame(b"hello"))
    while True:
        d = os.read(0, 4096)
        if not d:
            return 0
        os.write(1, d)

def client(server, trigger, count, seconds):
    # pptp --nolaunchpppd reads and writes the PPP stream on its fd 0
    mine, theirs = socket.socketpair()
    p = subprocess.Popen(["pptp", server, "--nolaunchpppd", "--nohostroute", "--debug",
                          "--nobuffer"],
                         stdin=theirs, stdout=subprocess.DEVNULL, stderr=sys.stderr)
    theirs.close()
    end = time.time() + seconds
    while not os.path.exists(trigger) and time.time() < end:
        time.sleep(0.05)
    sent = echoed = 0
    seen = set()
    nxt = time.time()
    buf = b""
    while time.time() < end and (sent < count or time.time() < nxt + 1):
        if sent < count and time.time() >= nxt:
            sent += 1
            mine.sendall(frame(b"ctsync %d" % sent))
            nxt += 0.1
        r, _, _ = select.select([mine], [], [], 0.02)
        if r:
            d = mine.recv(4096)
            if not d:
                break
            fr, buf = unframe(buf + d)
            for f in fr:
                if f[4:11] == b"ctsync " and f not in seen:
                    seen.add(f); echoed += 1
    p.terminate()
    try:
        p.wait(3)
    except subprocess.TimeoutExpired:
        p.kill(); p.wait()
    print("sent=%d echoed=%d" % (sent, echoed), flush=True)
    return 0

if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "client":
        sys.exit(client(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])))
    sys.exit(echo())        # as pptpd's "pppd": whatever arguments it is given

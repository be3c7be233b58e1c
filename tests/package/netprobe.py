#!/usr/bin/python3
"""The package tests' client and server (Python 3, standard library only).

  netprobe.py connect ADDR PORT [TIMEOUT_S]  prints connected | refused | timeout
  netprobe.py listen PORT                    accepts on [::]:PORT (IPv4 too) and
                                             closes each connection; prints
                                             "listening" once bound
"""
import socket
import sys


def connect(addr, port, timeout):
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect((addr, port))
        except ConnectionRefusedError:
            return "refused"
        except (socket.timeout, TimeoutError):
            return "timeout"
        except OSError as e:
            return "error " + e.strerror
    return "connected"


def listen(port):
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.bind(("::", port))
        s.listen(64)
        print("listening", flush=True)
        while True:
            conn, _ = s.accept()
            conn.close()


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "connect":
        print(connect(sys.argv[2], int(sys.argv[3]),
                      float(sys.argv[4]) if len(sys.argv) > 4 else 2.0))
    elif len(sys.argv) == 3 and sys.argv[1] == "listen":
        listen(int(sys.argv[2]))
    else:
        sys.exit(__doc__)

"""Start LocalStack community in host mode with its gateway on 127.0.0.1 only.

Run by LocalStack's own virtual environment (infra/localstack.py builds it), never imported by
riskstream: it imports nothing of ours. Two things LocalStack does not do by itself:

- its default server binds the gateway to every interface whatever GATEWAY_LISTEN's host says;
  here the gateway listens on ``--host`` (127.0.0.1) only;
- its Kinesis (kinesis-mock) and DynamoDB Local engines bind every interface, with no option to
  say otherwise. With ``--netns`` the process first binds the gateway's socket in the machine's
  network namespace, then moves into a private one of its own (only a loopback interface, no
  route out), so every engine it starts listens where nothing outside can reach, while the
  gateway's socket, made before the move, stays on the machine's loopback. Inside, the gateway
  also listens on 127.0.0.1 at the same port: LocalStack calls itself there (Step Functions'
  service integrations). Needs root or unprivileged user namespaces.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import fcntl
import os
import socket
import struct
import sys

CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def _unshare(flags: int) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(flags) != 0:
        return ctypes.get_errno()
    return 0


def enter_private_network() -> str:
    """Move this (still single-threaded) process into a network namespace of its own, with its
    loopback up; return how. Raises OSError when neither way is allowed."""
    uid, gid = os.getuid(), os.getgid()
    err = _unshare(CLONE_NEWNET)
    how = "private network namespace"
    if err in (errno.EPERM, errno.EACCES):
        # Not root: a user namespace of our own gives the right to make a network namespace.
        err = _unshare(CLONE_NEWUSER | CLONE_NEWNET)
        if err == 0:
            with open("/proc/self/setgroups", "w") as handle:
                handle.write("deny")
            with open("/proc/self/uid_map", "w") as handle:
                handle.write(f"{uid} {uid} 1")
            with open("/proc/self/gid_map", "w") as handle:
                handle.write(f"{gid} {gid} 1")
            how = "private user and network namespace"
    if err:
        raise OSError(err, f"cannot make a private network namespace: {os.strerror(err)}")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14s", b"lo", 0, b"\0" * 14)
        flags = struct.unpack("16sH14s", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH14s", b"lo", flags | IFF_UP, b"\0" * 14))
    return how


def _serve_gateway_on(host_socket: socket.socket, inner: bool) -> None:
    """Make LocalStack's twisted server use our socket instead of binding every interface."""
    from localstack.runtime.server import twisted as twisted_server
    from twisted.internet import endpoints, reactor

    def register(self, gateway, listen, ssl_creds=None):  # type: ignore[no-untyped-def]
        # LocalStack's own register, except for where it listens (it serves HTTP and HTTPS on
        # one port, telling them apart by the first bytes).
        from localstack.aws.serving.twisted import TLSMultiplexerFactory
        from rolo.serving.twisted import TwistedGateway
        from twisted.internet import ssl

        factory = site = TwistedGateway(gateway)
        if ssl_creds:
            cert_file_name, key_file_name = ssl_creds
            context_factory = ssl.DefaultOpenSSLContextFactory(key_file_name, cert_file_name)
            context_factory.getContext().use_certificate_chain_file(cert_file_name)
            factory = TLSMultiplexerFactory(context_factory, False, site)
        reactor.adoptStreamPort(host_socket.fileno(), socket.AF_INET, factory)
        if inner:
            for host_and_port in listen:
                endpoints.TCP4ServerEndpoint(
                    reactor, host_and_port.port, interface="127.0.0.1"
                ).listen(factory)

    twisted_server.TwistedRuntimeServer.register = register


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--netns",
        action="store_true",
        help="run LocalStack and its engines in a private network namespace",
    )
    args = parser.parse_args()

    host_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    host_socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    host_socket.bind((args.host, args.port))
    host_socket.listen(128)
    host_socket.setblocking(False)  # twisted adopts it as it is
    host_socket.set_inheritable(False)
    if args.netns:
        how = enter_private_network()
        sys.stdout.write(f"riskstream: LocalStack runs in a {how}\n")
    os.environ["GATEWAY_LISTEN"] = f"127.0.0.1:{args.port}"
    os.environ["LOCALSTACK_HOST"] = f"127.0.0.1:{args.port}"
    sys.stdout.write(f"riskstream: gateway on {args.host}:{args.port}\n")
    sys.stdout.flush()

    _serve_gateway_on(host_socket, inner=args.netns)
    from localstack.runtime.main import main as localstack_main

    localstack_main()


if __name__ == "__main__":
    main()

"""A tiny authoritative DNS server on a loopback UDP port, for dnspython to query for real."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field

import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import dns.rrset


@dataclass
class FakeDns:
    # name (no trailing dot) → its TXT strings
    txt: dict[str, list[str]] = field(default_factory=dict)
    sock: socket.socket | None = None

    def start(self) -> FakeDns:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        threading.Thread(target=self._serve, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.sock is not None:
            self.sock.close()

    @property
    def port(self) -> int:
        assert self.sock is not None
        return int(self.sock.getsockname()[1])

    def resolver(self) -> dns.resolver.Resolver:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = ["127.0.0.1"]
        resolver.port = self.port
        return resolver

    def _serve(self) -> None:
        assert self.sock is not None
        while True:
            try:
                wire, address = self.sock.recvfrom(4096)
            except OSError:
                return
            query = dns.message.from_wire(wire)
            response = dns.message.make_response(query)
            question = query.question[0]
            name = question.name.to_text().rstrip(".").lower()
            if name not in self.txt:
                response.set_rcode(dns.rcode.NXDOMAIN)
            elif question.rdtype == dns.rdatatype.TXT:
                values = [f'"{value}"' for value in self.txt[name]]
                response.answer.append(
                    dns.rrset.from_text_list(question.name, 60, "IN", "TXT", values)
                )
            self.sock.sendto(response.to_wire(), address)

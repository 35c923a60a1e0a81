"""The TXT records of a domain, read with dnspython (the one place that asks DNS)."""

from __future__ import annotations

import dns.exception
import dns.resolver

LOOKUP_SECONDS = 5.0


def resolver() -> dns.resolver.Resolver:
    """The system's resolver; tests point one at a local DNS server instead."""
    return dns.resolver.Resolver()


class DnsUnavailable(Exception):
    """DNS did not answer (timeout, no name servers): try again later."""


def txt_records(domain: str) -> list[str]:
    """Every TXT string published at ``domain``; none when the name or record does not exist."""
    try:
        answer = resolver().resolve(domain, "TXT", lifetime=LOOKUP_SECONDS)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except dns.exception.DNSException as exc:
        raise DnsUnavailable(str(exc)) from exc
    records: list[str] = []
    for rdata in answer:
        # A long TXT value comes in 255-byte strings that belong together.
        records.append(b"".join(rdata.strings).decode("utf-8", "replace"))
    return records

"""Secrets as a careless adapter, a pasted link or a typo would leak them, each with the strings that must
vanish: an oracle for redaction that is independent of the redactor. A leak is judged by whether its own
text survives anywhere, never by the patterns controlplane/redaction.py happens to use."""

from dataclasses import dataclass

from hypothesis import strategies as st

from tests.conftest import TOKENS

# A configured dev token (the suite's conftest configures it): redacted wherever it occurs.
CONFIGURED = TOKENS["viewer"]


@dataclass(frozen=True)
class Leak:
    kind: str
    text: str  # as it is written: in a message, a field, a URL
    vanish: tuple[str, ...]  # what must occur nowhere afterwards


def varied(text: str) -> bool:
    # "AAAAAAAAAAAA" could occur anywhere by chance and proves nothing.
    return len(set(text)) >= 6


def chars(pattern: str):
    return st.from_regex(pattern, fullmatch=True).filter(varied)


aws = st.builds(
    lambda prefix, rest: Leak("aws", prefix + rest, (prefix + rest,)),
    st.sampled_from(["AKIA", "ASIA"]),
    chars(r"[A-Z0-9]{16}"),
)
# "Bearer <token>" as a header writes it; in another case ("bearer", "BEARER") the token carries a digit, as
# issued tokens do, since "a standard bearer node" in prose must stay prose.
bearer = st.one_of(
    st.builds(lambda token: Leak("bearer", f"Bearer {token}", (token,)), chars(r"[A-Za-z0-9._~+/-]{12,30}")),
    st.builds(
        lambda scheme, token: Leak("bearer", f"{scheme} {token}", (token,)),
        st.sampled_from(["bearer", "BEARER"]),
        chars(r"[A-Za-z0-9._~+/-]{6,20}[0-9][A-Za-z0-9._~+/-]{5,9}"),
    ),
)
jwt = st.builds(
    lambda a, b, c: Leak("jwt", f"eyJ{a}.eyJ{b}.{c}", (f"eyJ{a}.eyJ{b}.{c}", f"eyJ{b}.{c}")),
    chars(r"[A-Za-z0-9_-]{8,14}"),
    chars(r"[A-Za-z0-9_-]{8,14}"),
    chars(r"[A-Za-z0-9_-]{8,14}"),
)


def _pem(kind: str, body: list[str], end: bool) -> Leak:
    text = f"-----BEGIN {kind}PRIVATE KEY-----\n" + "\n".join(body)
    if end:
        text += f"\n-----END {kind}PRIVATE KEY-----"
    return Leak("pem", text, tuple(body))


pem = st.builds(
    _pem,
    st.sampled_from(["RSA ", "EC ", "OPENSSH ", "ENCRYPTED ", ""]),
    st.lists(chars(r"[A-Za-z0-9+/]{20,40}"), min_size=1, max_size=2, unique=True),
    st.booleans(),  # a block cut short (no END line) is a leak too
)


def _url(user: str, password: str, name: str, value: str) -> Leak:
    text = f"https://{user}:{password}@grafana.example.com/d/abc?{name}={value}&orgId=1"
    return Leak("url", text, (f"{user}:{password}", password, value))


url = st.builds(
    _url,
    chars(r"[a-z][a-z0-9]{7,11}"),
    chars(r"[A-Za-z0-9]{10,20}"),
    st.sampled_from(
        ["token", "access_token", "password", "api_key", "apikey", "bearer", "client_secret", "sig", "X-Amz-Signature"]
    ),
    chars(r"[A-Za-z0-9_-]{10,24}"),
)
configured = st.just(Leak("configured", CONFIGURED, (CONFIGURED,)))

# Short enough for a release version (at most 64 characters).
short_leaks = st.one_of(aws, bearer, jwt, configured)
leaks = st.one_of(aws, bearer, jwt, pem, url, configured)

# Text around a leak: printable (PostgreSQL keeps no NUL), with a separator, as in a sentence or a log line.
plain_text = st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=8)
separators = st.sampled_from([" ", "\n", ": ", " (", "=", ", ", "\t"])


def embedded(leak_strategy=leaks):
    """(the text with a leak inside it, the leak)."""
    return st.builds(
        lambda before, s1, leak, s2, after: (f"{before}{s1}{leak.text}{s2}{after}", leak),
        plain_text,
        separators,
        leak_strategy,
        separators,
        plain_text,
    )


# What a refusal says it found, per kind of leak: what it is, never what it says.
FOUND = {
    "aws": "an AWS access key id",
    "bearer": "a bearer token",
    "jwt": "a JWT",
    "pem": "a private key",
    "url": "credentials in a URL",
    "configured": "a configured secret",
}

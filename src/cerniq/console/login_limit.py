"""Sign-in rate limiting: after :data:`MAX_PER_EMAIL` failed sign-ins for one email, or
:data:`MAX_PER_IP` from one address, within :data:`WINDOW_SECONDS`, further attempts are refused
(even with the right password) until the window that began with the first failure passes.
A successful sign-in clears the email's counter. Counters are Redis keys with a TTL."""

from __future__ import annotations

from cerniq.console import i18n
from cerniq.kit.redis import get_redis

WINDOW_SECONDS = 15 * 60
MAX_PER_EMAIL = 5
MAX_PER_IP = 20  # several people may share an office address

i18n.add_strings(
    {
        "too_many_attempts": {
            "ro": "Prea multe încercări eșuate. Încercați din nou peste 15 minute.",
            "en": "Too many failed attempts. Try again in 15 minutes.",
        }
    }
)


def _keys(email: str | None, ip: str | None) -> list[tuple[str, int]]:
    keys = []
    if email:
        keys.append((f"console:signin:fail:email:{email.strip().lower()}", MAX_PER_EMAIL))
    if ip:
        keys.append((f"console:signin:fail:ip:{ip}", MAX_PER_IP))
    return keys


async def blocked(email: str | None, ip: str | None) -> bool:
    """True when the email or the address has used up its failures in the current window."""
    redis = get_redis()
    for key, limit in _keys(email, ip):
        if int(await redis.get(key) or 0) >= limit:
            return True
    return False


async def failed(email: str | None, ip: str | None) -> None:
    """Count one failed sign-in; the window starts with the first failure."""
    redis = get_redis()
    for key, _limit in _keys(email, ip):
        async with redis.pipeline(transaction=True) as pipe:
            pipe.set(key, 0, ex=WINDOW_SECONDS, nx=True)  # the window starts at the first failure
            pipe.incr(key)  # INCR keeps the TTL
            await pipe.execute()


async def succeeded(email: str | None) -> None:
    if email:
        await get_redis().delete(*[key for key, _ in _keys(email, None)])

"""How many live streams may be open at once: SANDBOX_STREAMS_PER_LEARNER for one learner, and
SANDBOX_STREAMS_PER_EXPERIMENT for one experiment, counted in Redis so that every web process sees the
same numbers. Beyond them a page updates by polling instead.

Each open stream holds a lease: a member of a sorted set scored by when it runs out. A stream renews its
lease while it runs and removes it when it ends; a lease whose stream died without ending (a killed web
process) runs out by itself, so a lost slot comes back within STREAM_LEASE_SECONDS.
"""

import secrets
import time

from django.conf import settings

STREAM_LEASE_SECONDS = 20

# Atomic across web processes: drop run-out leases, check both caps, then take a slot in both sets.
_ACQUIRE = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 1 end
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[5]) then return 2 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[6])
redis.call('EXPIRE', KEYS[2], ARGV[6])
return 0
"""


class StreamsFull(Exception):
    """No slot: the message says which cap and what the page does meanwhile."""


def learner_streams_key(user_id: int) -> str:
    return f"sandbox:learner:{user_id}:streams"


def experiment_streams_key(experiment_id: int) -> str:
    return f"sandbox:{experiment_id}:streams"


class StreamSlot:
    def __init__(self, redis, *, user_id: int, experiment_id: int) -> None:
        self.redis = redis
        self.keys = (learner_streams_key(user_id), experiment_streams_key(experiment_id))
        self.token = secrets.token_hex(8)

    async def acquire(self) -> None:
        now = time.time()
        refused = await self.redis.eval(
            _ACQUIRE,
            2,
            *self.keys,
            now,
            now + STREAM_LEASE_SECONDS,
            self.token,
            settings.SANDBOX_STREAMS_PER_LEARNER,
            settings.SANDBOX_STREAMS_PER_EXPERIMENT,
            STREAM_LEASE_SECONDS * 2,
        )
        if refused == 1:
            raise StreamsFull(
                f"You already have {settings.SANDBOX_STREAMS_PER_LEARNER} live sandbox pages open. Close one you "
                "no longer need; meanwhile this page updates every few seconds instead of live."
            )
        if refused == 2:
            raise StreamsFull(
                f"This experiment is already open live in {settings.SANDBOX_STREAMS_PER_EXPERIMENT} pages. Close "
                "one you no longer need; meanwhile this page updates every few seconds instead of live."
            )

    async def renew(self) -> None:
        expires = time.time() + STREAM_LEASE_SECONDS
        for key in self.keys:
            await self.redis.zadd(key, {self.token: expires}, xx=True)

    async def release(self) -> None:
        for key in self.keys:
            await self.redis.zrem(key, self.token)

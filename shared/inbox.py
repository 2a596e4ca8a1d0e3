"""The inbox: a message id is handled once, checked inside the business transaction."""

import uuid

import asyncpg


async def claim(conn: asyncpg.Connection, message_id: uuid.UUID, topic: str) -> bool:
    """True the first time this id is seen; False for a redelivery or a replay."""
    row = await conn.fetchrow(
        "INSERT INTO inbox (message_id, topic) VALUES ($1, $2)"
        " ON CONFLICT (message_id) DO NOTHING RETURNING message_id",
        message_id,
        topic,
    )
    return row is not None

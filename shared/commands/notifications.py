"""Commands of `notifications.commands`: a worker says a task in their (or their team's) inbox is done."""

from typing import ClassVar

from shared.commands.base import Actor, Command, Id
from shared.commands.workflow import Text

__all__ = ["Actor", "COMMANDS", "Command", "CompleteTask"]


class CompleteTask(Command):
    """Mark a task done (issue #22 §1): only its recipient worker, or a member of its recipient team; the
    outcome is `task.completed` with the verified actor as `by`, or `command.rejected`."""

    TYPE: ClassVar[str] = "task.complete"
    task_id: Id
    note: Text | None = None


COMMANDS: dict[str, type[Command]] = {CompleteTask.TYPE: CompleteTask}

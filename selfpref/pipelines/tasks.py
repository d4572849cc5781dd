"""distilabel Task base for selfpref: several conversations per row, parsed without swallowing.

distilabel's ``Task._format_outputs`` turns any parsing exception into ``None`` outputs with a
warning; selfpref's build runs ``process`` itself, so an exception fails the build with the step
and chunk named. Parsing never raises for what a model wrote: a task writes the parsed value or
``None`` plus a reason column, and the build counts every row that a later step cannot use.
"""


from typing import Any

from selfpref.pipelines._distilabel import StepInput, Task

Chat = list[dict[str, str]]


def user_chat(text: str) -> Chat:
    """A one-turn conversation: the user says ``text``."""
    return [{"role": "user", "content": text}]


class MultiConversationTask(Task):
    """A Task that asks the LLM ``len(conversations(row))`` questions per row in one batch.

    Subclasses implement ``conversations(row)`` and ``parse(row, generations)``, where
    ``generations[i]`` is the list of ``num_generations`` texts for conversation ``i``.
    """

    def conversations(self, row: dict[str, Any]) -> list[Chat]:
        raise NotImplementedError

    def parse(self, row: dict[str, Any], generations: list[list[str | None]]) -> dict[str, Any]:
        raise NotImplementedError

    # distilabel calls these for printing and single-conversation use; keep them consistent.
    def format_input(self, input: dict[str, Any]) -> Chat:
        return self.conversations(input)[0]

    def format_output(self, output: str | None, input: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.parse(input or {}, [[output]])

    def process(self, inputs: StepInput):
        per_row = [self.conversations(row) for row in inputs]
        flat = [chat for chats in per_row for chat in chats]
        # A row's ``draw`` (an intended repeat of the same conversation) goes into its seeds;
        # passed only when some row has one, so any LLM face serves rows without.
        draws = [int(row.get("draw") or 0) for row, chats in zip(inputs, per_row) for _ in chats]
        extra = {"draws": draws} if any(draws) else {}
        outputs = self.llm.generate_outputs(inputs=flat, num_generations=self.num_generations,
                                            **self.llm.get_generation_kwargs(), **extra) if flat else []
        generations = [list(o.get("generations") or [None]) for o in outputs]
        result, i = [], 0
        for row, chats in zip(inputs, per_row):
            parsed = self.parse(row, generations[i : i + len(chats)])
            i += len(chats)
            result.append({**row, **parsed, "model_name": self.llm.model_name})
        yield result


def usable_prompt(row: dict[str, Any]) -> bool:
    """A row an answering step works on: it has a prompt and no earlier step dropped it."""
    return bool(row.get("prompt")) and not row.get("drop_reason")


class AnswerPair(MultiConversationTask):
    """Input: ``prompt``. Output: ``answers``, two samples (run with ``num_generations=2``)."""

    @property
    def inputs(self) -> list[str]:
        return ["prompt"]

    @property
    def outputs(self) -> list[str]:
        return ["answers"]

    def conversations(self, row: dict[str, Any]) -> list[Chat]:
        return [user_chat(row["prompt"])] if usable_prompt(row) else []

    def parse(self, row: dict[str, Any], generations: list[list[str | None]]) -> dict[str, Any]:
        return {"answers": [(g or "").strip() for g in generations[0]] if generations else None}

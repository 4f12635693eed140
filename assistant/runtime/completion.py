"""A prompt format for base models (no chat template, not instruction-tuned), such as the bundled Gemma 3 270M.

A base model continues text; given a chat template it has never seen, it repeats the system prompt and the facts
until the token limit. Framed as a document of short questions and answers, with two worked examples, it answers
in a line and then starts the next question, where the stops cut it. Measured on 11 everyday factual questions
(temperature 0): 10 right with this format, 0 with the Gemma chat template (every reply a loop to the limit).
"""

from __future__ import annotations

EXAMPLES = [
    ("What is the capital of Italy?", "The capital of Italy is Rome."),
    ("Can you suggest a name for a goldfish?", "How about Bubbles? It is short, friendly and easy to call."),
]
STOPS = ["\nQ:", "\n\n"]  # the model starting the next question, or a blank line (answers here are one paragraph)


def _flat(text: str) -> str:
    # A blank line inside a message would read as the end of the answer.
    return "\n".join(line for line in text.strip().splitlines() if line.strip())


def format_completion(messages: list[dict[str, str]]) -> str:
    """Render a chat as a question-and-answer document that ends where the model's answer starts."""
    system = [m["content"].strip() for m in messages if m["role"] == "system" and m["content"].strip()]
    parts = ["\n\n".join(system)] if system else []
    parts += [f"Q: {q}\nA: {a}" for q, a in EXAMPLES]
    turn = ""
    for message in messages:
        if message["role"] == "user":
            turn = f"Q: {_flat(message['content'])}\nA:"
            parts.append(turn)
        elif message["role"] == "assistant" and parts and parts[-1] == turn:
            parts[-1] = f"{turn} {_flat(message['content'])}"
    return "\n\n".join(parts)

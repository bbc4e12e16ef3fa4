"""The testbed's chat format as plain strings: special tokens, the Jinja chat template, and `render_chat`.

    text = render_chat([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}])

One source for the tokenizer (which carries CHAT_TEMPLATE) and for the pre-training corpus (whose chat
transcripts are rendered here without a tokenizer, so that the base has seen the format before SFT, as real
bases have seen chat-like text). `render_chat(m) == tokenizer.apply_chat_template(m, tokenize=False)` is tested.
"""
from __future__ import annotations

BOS, EOS, PAD = "<|bos|>", "<|end|>", "<|pad|>"
ROLE_TOKENS = ["<|system|>", "<|user|>", "<|assistant|>"]
SPECIAL_TOKENS = [PAD, BOS, EOS, *ROLE_TOKENS]

# One turn: role token, newline, content, end token, newline. `<|end|>` is both the end of a document in
# pre-training and the end of a turn, so generation stops on the tokenizer's eos. The {% generation %}
# markers let `apply_chat_template(..., return_assistant_tokens_mask=True)` find the assistant tokens that
# SFT trains on; the end token is inside them so the model learns to stop.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|assistant|>\n' }}{% generation %}{{ message['content'] + eos_token }}{% endgeneration %}{{ '\n' }}"
    "{% else %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + eos_token + '\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)


def render_chat(messages: list[dict]) -> str:
    """CHAT_TEMPLATE applied to `messages` (no generation prompt), without Jinja or a tokenizer."""
    return BOS + "".join(f"<|{m['role']}|>\n{m['content']}{EOS}\n" for m in messages)

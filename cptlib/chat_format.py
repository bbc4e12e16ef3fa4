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


# Turn formats a real base checkpoint is given when it has none (a base release ships no chat template), by
# `sft.chat_template`. Gemma's (the format of its own instruction-tuned models): user and model turns between
# <start_of_turn>role and <end_of_turn>, a system message folded into the first user turn (Gemma has no system
# role). The {% generation %} markers cover the model's reply and its <end_of_turn>, which SFT trains on, so the
# model learns to stop there (its tokenizer's eos, set by cptlib.family.real_sft).
GEMMA_TEMPLATE = (
    "{{ bos_token }}"
    "{% if messages[0]['role'] == 'system' %}{% set system = messages[0]['content'] + '\n\n' %}"
    "{% set turns = messages[1:] %}{% else %}{% set system = '' %}{% set turns = messages %}{% endif %}"
    "{% for message in turns %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<start_of_turn>model\n' }}{% generation %}{{ message['content'] + '<end_of_turn>' }}{% endgeneration %}"
    "{{ '\n' }}"
    "{% else %}"
    "{{ '<start_of_turn>user\n' + (system if loop.first else '') + message['content'] + '<end_of_turn>\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)
# name -> (template, the token that ends a reply)
TURN_FORMATS = {"gemma": (GEMMA_TEMPLATE, "<end_of_turn>")}

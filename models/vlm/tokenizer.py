"""Byte-level BPE tokeniser for Chinese reports, and the chat format the report LM is instruction-tuned on.

Byte-level BPE (as in GPT-2 and Qwen) has no unknown token: any text falls back to its UTF-8 bytes, and
characters frequent in the training reports become whole tokens (frequent words too). A chat renders as
``<|bos|><|user|>question<|end|><|assistant|>answer<|end|>``; ``<|image|>`` is the placeholder a
vision-language model replaces with visual tokens, and ``<|end|>`` (the eos token) closes every turn and every
document, so generation stops at the end of an answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

PAD_TOKEN = "<|pad|>"
BOS_TOKEN = "<|bos|>"
END_TOKEN = "<|end|>"  # the eos token
IMAGE_TOKEN = "<|image|>"
ROLES = ("system", "user", "assistant")
ROLE_TOKENS = tuple(f"<|{role}|>" for role in ROLES)
IGNORE_INDEX = -100  # label of unsupervised positions (the default ignore_index of torch's cross-entropy)

# Qwen2's pre-tokenisation regex: letter runs (a Chinese phrase stays one piece), digits one by one, punctuation.
_SPLIT = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""

_GENERATION_TAG = re.compile(r"\{%-?\s*generation\s*-?%\}")  # the marker transformers itself looks for
# Assistant turns sit inside {% generation %} so apply_chat_template(return_assistant_tokens_mask=True) can
# tell them apart; an unknown role is an error rather than a silently mis-rendered turn.
CHAT_TEMPLATE = (
    "{{- bos_token -}}"
    "{%- for message in messages -%}"
    "{%- if message['role'] not in ['system', 'user', 'assistant'] -%}"
    "{{- raise_exception('chat roles are system, user and assistant, not ' + message['role']) -}}"
    "{%- endif -%}"
    "{{- '<|' + message['role'] + '|>' -}}"
    "{%- if message['role'] == 'assistant' -%}"
    "{%- generation -%}{{- message['content'] + eos_token -}}{%- endgeneration -%}"
    "{%- else -%}{{- message['content'] + eos_token -}}{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|assistant|>' -}}{%- endif -%}"
)


def train_tokenizer(texts: Iterable[str], vocab_size: int, min_frequency: int = 2) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokeniser of at most ``vocab_size`` entries (special tokens included) trained on
    ``texts``; merges seen fewer than ``min_frequency`` times are not learnt. Deterministic for the same input."""
    specials = [PAD_TOKEN, BOS_TOKEN, END_TOKEN, IMAGE_TOKEN, *ROLE_TOKENS]
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    if vocab_size < len(alphabet) + len(specials):
        raise ValueError(
            f"vocab_size={vocab_size} is below the {len(alphabet)} byte tokens plus {len(specials)} special "
            "tokens; ask for a few thousand entries (LMConfig.vocab_size)."
        )
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=specials,
        initial_alphabet=alphabet,
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=BOS_TOKEN,
        eos_token=END_TOKEN,
        pad_token=PAD_TOKEN,
        image_token=IMAGE_TOKEN,  # gives tokenizer.image_token and .image_token_id
        extra_special_tokens=list(ROLE_TOKENS),
        chat_template=CHAT_TEMPLATE,
    )


def encode_documents(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of each document as the LM is trained on it: bos (when the tokeniser has one), text, eos."""
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no eos token; set tokenizer.eos_token before training or scoring")
    if not texts:
        return []
    bos = [] if tokenizer.bos_token_id is None else [tokenizer.bos_token_id]
    return [bos + ids + [tokenizer.eos_token_id] for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]


def pad_token_id(tokenizer: PreTrainedTokenizerBase) -> int:
    """The id to pad with: the pad token, else eos (a site tokeniser may lack a pad token; padded positions
    are masked out anyway)."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if pad is None:
        raise ValueError("the tokenizer has neither a pad nor an eos token; set tokenizer.pad_token first")
    return pad


def format_chat(
    tokenizer: PreTrainedTokenizerBase, messages: Sequence[dict[str, str]], add_generation_prompt: bool = False
) -> str:
    """The chat as text (``{"role", "content"}`` messages), through the tokeniser's chat template; with
    ``add_generation_prompt`` it ends in an open assistant turn for generation."""
    return tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=add_generation_prompt)


def chat_example(
    tokenizer: PreTrainedTokenizerBase, messages: Sequence[dict[str, str]], max_len: int
) -> dict[str, torch.Tensor]:
    """One instruction-tuning example, right-padded to ``max_len`` tokens (longer chats are cut at the end).

    Returns ``input_ids``, ``labels`` (the token ids on assistant turns, their closing ``<|end|>`` included;
    ``IGNORE_INDEX`` on prompts and padding) and ``attention_mask`` (1 on tokens, 0 on padding), each (max_len,)
    int64. Causal LMs in transformers shift the labels themselves.
    """
    if not any(m["role"] == "assistant" for m in messages):
        raise ValueError("the chat has no assistant turn, so nothing to supervise: end it with the answer")
    if not _GENERATION_TAG.search(tokenizer.chat_template or ""):
        raise ValueError(
            "the tokenizer's chat template does not mark assistant turns with {% generation %}: use a "
            "tokenizer from train_tokenizer, or add those markers to the site tokenizer's chat_template"
        )
    # Cut here rather than through apply_chat_template(truncation=True), which leaves the truncation setting
    # in the tokenizer (and in its tokenizer.json when saved afterwards).
    encoded = tokenizer.apply_chat_template(
        list(messages), tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    ids = torch.tensor(encoded["input_ids"][:max_len], dtype=torch.long)
    supervised = torch.tensor(encoded["assistant_masks"][:max_len], dtype=torch.bool)
    if not supervised.any():
        raise ValueError(
            f"no assistant token within the first max_len={max_len} tokens of the chat: raise max_len or "
            "shorten the prompt"
        )
    padding = max_len - len(ids)
    return {
        "input_ids": torch.nn.functional.pad(ids, (0, padding), value=pad_token_id(tokenizer)),
        "labels": torch.nn.functional.pad(torch.where(supervised, ids, IGNORE_INDEX), (0, padding), value=IGNORE_INDEX),
        "attention_mask": torch.nn.functional.pad(torch.ones_like(ids), (0, padding), value=0),
    }

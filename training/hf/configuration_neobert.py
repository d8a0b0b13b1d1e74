"""NeoBERT's Hugging Face configuration, for `trust_remote_code` loading of an exported folder.

Self-contained: imports only `transformers`. `python -m training export` copies this file next
to `config.json`; the keys are those `neobert.config.NeoBERTConfig.to_dict` writes.
"""

from transformers import PretrainedConfig


class NeoBERTConfig(PretrainedConfig):
    model_type = "neobert"

    def __init__(self, vocab_size=30522, hidden_size=768, num_hidden_layers=28, num_attention_heads=12,
                 intermediate_size=3072, max_length=4096, norm_eps=1e-5, pad_token_id=0,
                 embedding_init_range=0.02, decoder_init_range=0.02, classifier_init_range=0.02,
                 classifier_dropout=0.1, **kwargs):
        if hidden_size % num_attention_heads:
            raise ValueError(f"hidden_size {hidden_size} must be a multiple of num_attention_heads "
                             f"{num_attention_heads}; change one of them")
        kwargs.pop("dim_head", None)  # derived, written for the published code
        kwargs["tie_word_embeddings"] = False  # the MLM decoder is untied
        # first: PretrainedConfig sets a generation `max_length` (20) that would replace the model's
        super().__init__(pad_token_id=pad_token_id, **kwargs)
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.max_length = max_length
        self.norm_eps = norm_eps
        self.embedding_init_range = embedding_init_range
        self.decoder_init_range = decoder_init_range
        self.classifier_init_range = classifier_init_range
        self.classifier_dropout = classifier_dropout
        self.dim_head = hidden_size // num_attention_heads

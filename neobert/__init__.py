"""NeoBERT encoder, exact to the published `chandar-lab/NeoBERT`; imports only torch.

Read `model.py` first, then `attention.py` (packed-document backends) and `checkpoint.py`
(Hugging Face layout). `python -m neobert` runs a demo forward pass.
"""

from neobert.classification import NeoBERTForSequenceClassification
from neobert.config import NeoBERTConfig
from neobert.model import MLMOutput, NeoBERT, NeoBERTLMHead

__all__ = ["MLMOutput", "NeoBERT", "NeoBERTConfig", "NeoBERTForSequenceClassification", "NeoBERTLMHead"]

"""A self-contained Hugging Face export of a training checkpoint (see `training.hf.export`).

`configuration_neobert.py` and `modeling_neobert.py` import only torch and transformers: export
copies them into the output folder for `trust_remote_code`.
"""

"""Post-hoc: what is done to a trained model, as opposed to measuring it (tokfilter.evaluate).

The finetuning attack (attack.py), RMU unlearning (rmu.py), refusal SFT (refusal.py) in the chat format (chat.py),
free-form generation (generate.py) with an optional LLM judge (judge.py); the text and held-out-loss helpers they
share (texts.py, heldout.py, provenance.py); their one set of defaults (settings.py); the builders of results.json's
`robustness` and `refusal` sections (suite.py); and the `attack`, `unlearn`, `align`, `generate` commands (cli.py).
"""

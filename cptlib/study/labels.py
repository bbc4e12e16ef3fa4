"""The study's model labels, defined once: the keys of score tables, the legends of figures and colours.

A label is what a reader sees ("CPT(base_v1)+Θr(v1)"), so it is also the key of a model in every table the study
writes; code names a model by these constants, never by retyping the string.
"""
from __future__ import annotations

CPT_I = "CPT(instruct_v1)"      # C1: continued pre-training of the instruct model
CPT_B = "CPT(base_v1)"          # C2: of the base model
REST = "CPT(base_v1)+Θr(v1)"    # C3: the CPT'd base with the instruction residual added
SFT = "CPT(base_v1)+SFT"        # the paper's expensive alternative: the recipe's SFT again on the CPT'd base
PEFT = "CPT(base_v1)+Θr(v1) as PEFT adapter"  # the same residual attached at load time (study.peft_recipe)
CPT_B2 = "CPT(base_v2)"         # C4: the next version's base, CPT'd

"""Cascade policies and the one cascade engine that runs them.

``policies`` says which samples a stage passes on, ``calibration`` fits the policies on a
held-out split, ``engine`` runs a cascade over any source of per-stage logits (live members or
cached logits), ``cost`` turns exit stages into exit fractions and expected MACs, and
``evaluation`` turns cascade outputs into the tidy metric rows of DESIGN.md.
"""

"""The run layer: one run end to end (``run``), what identifies it (``identity``), its
checkpoint (``checkpoint``) and scoring raw videos with a trained run (``score``)."""

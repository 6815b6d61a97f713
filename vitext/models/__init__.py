"""vitext's backbones (:mod:`.backbones`), the layers they share (:mod:`.layers`), pretrained
weight loading (:mod:`.weights`) and the switch to the re-parameterised deploy form
(:mod:`.deploy`)."""
